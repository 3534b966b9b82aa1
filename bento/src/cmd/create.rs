//! `bento create NAME IMAGE [COMMAND...]`: make a container, and leave its PID 1 waiting.
//!
//! Also the OCI runtime's `create --bundle DIR [--pid-file FILE] [--console-socket SOCK]
//! ID`, as podman's conmon calls it: the same container, made from the bundle's
//! config.json instead of an image, with no supervisor left behind (see
//! [`crate::supervisor::Mode::Engine`]).

use std::path::PathBuf;

use anyhow::Result;

use crate::config::Options;
use crate::home::Home;
use crate::lifecycle::{self, Created, How, Source};

/// Create a container: pull the image if needed, prepare the namespaces, the overlay and
/// the mounts, and leave PID 1 waiting for `bento start`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An OCI bundle (a directory with a config.json) instead of an image: `create
    /// --bundle DIR ID`, as engines call runtimes
    #[arg(short = 'b', long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// With --bundle: write PID 1's pid here
    #[arg(long = "pid-file", value_name = "FILE", requires = "bundle")]
    pub pid_file: Option<PathBuf>,
    /// With --bundle: send the terminal's master to this unix socket (process.terminal)
    #[arg(long = "console-socket", value_name = "SOCKET", requires = "bundle")]
    pub console_socket: Option<PathBuf>,
    /// With --bundle: pass descriptors 3 to 3+N-1 on to the container's command (every
    /// other one past 2 is closed)
    #[arg(
        long = "preserve-fds",
        value_name = "N",
        default_value_t = 0,
        requires = "bundle"
    )]
    pub preserve_fds: u32,
    /// Accepted for engines' sake (runc's flags)
    #[arg(long = "no-pivot", hide = true)]
    pub no_pivot: bool,
    #[arg(long = "no-new-keyring", hide = true)]
    pub no_new_keyring: bool,
    /// The container's name: letters, digits, '_', '.', '-'
    pub name: String,
    /// The image: busybox, docker://REGISTRY/NAME:TAG, docker-archive:FILE, oci:DIR[:TAG], oci-archive:FILE, busybox:[PATH]
    #[arg(required_unless_present = "bundle", conflicts_with = "bundle")]
    pub image: Option<String>,
    /// The command and its arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub options: Options,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let (source, how) = match &self.bundle {
            Some(bundle) => (
                Source::Bundle {
                    dir: bundle,
                    preserve_fds: self.preserve_fds,
                },
                How::Engine {
                    pid_file: self.pid_file.clone(),
                    console_socket: self.console_socket.clone(),
                },
            ),
            None => (
                Source::Image {
                    image: self.image.as_deref().unwrap_or_default(),
                    command: &self.command,
                    options: &self.options,
                },
                How::Detached,
            ),
        };
        match lifecycle::create(home, &self.name, source, how, false)? {
            Created::Ready(container) => {
                container.print_name();
                Ok(0)
            }
            Created::Exited(code) => Ok(code),
        }
    }
}

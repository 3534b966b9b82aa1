//! `bento create NAME IMAGE [COMMAND...]`: make a container, and leave its PID 1 waiting.
//!
//! Also the OCI runtime's `create --bundle DIR [--pid-file FILE] [--console-socket SOCK]
//! ID`, as podman's conmon calls it: the same container, made from the bundle's
//! config.json instead of an image, with no supervisor left behind (see
//! [`Mode::Engine`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Created, Options, check_terminal, create_detached, new_state};
use crate::gate;
use crate::home::Home;
use crate::spec::Spec;
use crate::state::{Container, check_name};
use crate::supervisor::{self, Mode};

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
        if let Some(bundle) = &self.bundle {
            return create_from_bundle(
                home,
                &self.name,
                bundle,
                Mode::Engine {
                    pid_file: self.pid_file.clone(),
                    console_socket: self.console_socket.clone(),
                },
            );
        }
        check_terminal(self.options.tty)?;
        let image = self.image.unwrap_or_default();
        match create_detached(
            home,
            &self.name,
            &image,
            &self.command,
            &self.options,
            false,
        )? {
            Created::Ready(container) => super::done(&container.name),
            Created::Failed(code) => Ok(code),
        }
    }
}

/// The container `id` from the bundle's config.json: `create --bundle` (mode Engine: PID 1
/// waits for `start`), or `run --bundle` (Attached: it runs now, and bento waits). Leaves
/// nothing behind when it fails.
pub fn create_from_bundle(home: &Home, id: &str, bundle: &Path, mode: Mode) -> Result<i32> {
    check_name(id)?;
    let bundle = std::path::absolute(bundle).context("cannot find the bundle")?;
    let spec = Spec::from_config(&bundle)?;
    if matches!(mode, Mode::Attached) {
        // `run`: the terminal is relayed to ours.
        check_terminal(spec.terminal)?;
    }
    if spec.seccomp {
        eprintln!(
            "bento: warning: config.json's seccomp profile is not applied (`bento features` says what is)"
        );
    }
    let (container, lock) = Container::create(home, id, |_| {
        serde_json::to_vec_pretty(&spec).context("cannot encode the spec")
    })?;
    let engine = matches!(mode, Mode::Engine { .. });
    let made = (|| -> Result<i32> {
        if engine {
            gate::make(&container.file("exec.fifo"))?;
        }
        // `run --bundle` removes the container when it ends, as `runc run` does.
        let mut state = new_state(&container, &spec, !engine);
        state.bundle = bundle.clone();
        supervisor::supervise(&container, lock, &spec, state, mode)
    })();
    match made {
        Ok(0) => Ok(0),
        Ok(code) if !engine => Ok(code),
        failed => {
            // PID 1 failed (and said why), or bento could not make it: leave nothing.
            if let Ok(state) = container.state() {
                crate::cgroups::remove(&state.cgroups);
            }
            let _ = container.remove();
            failed
        }
    }
}

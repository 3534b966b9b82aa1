//! `bento run [OPTIONS] IMAGE [COMMAND...]`: create and start in one go.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::Options;
use crate::home::Home;
use crate::lifecycle::{self, Created, How, Source};
use crate::state::random_id;

/// Run a command in a new container, attached to its output (or detached with -d), and
/// exit with its status
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove the container when it stops
    #[arg(long)]
    pub rm: bool,
    /// Detach: print the container's name and return at once (output goes to `bento logs`)
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// The container's name (default: a random id)
    #[arg(long)]
    pub name: Option<String>,
    /// An OCI bundle (a directory with a config.json, e.g. from `runc spec`) instead of
    /// an image: `run --bundle DIR ID`, as `runc run` does
    #[arg(short = 'b', long, value_name = "DIR", conflicts_with_all = ["rm", "detach", "name"])]
    pub bundle: Option<PathBuf>,
    /// With --bundle: pass descriptors 3 to 3+N-1 on to the command
    #[arg(
        long = "preserve-fds",
        value_name = "N",
        default_value_t = 0,
        requires = "bundle"
    )]
    pub preserve_fds: u32,
    #[command(flatten)]
    pub options: Options,
    /// The image (as for `bento create`); with --bundle, the container's id
    pub image: String,
    /// The command and its arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        if let Some(bundle) = &self.bundle {
            anyhow::ensure!(
                self.command.is_empty(),
                "with --bundle, the command is config.json's process.args"
            );
            // `runc run`: attached, and removed when it ends.
            let source = Source::Bundle {
                dir: bundle,
                preserve_fds: self.preserve_fds,
            };
            return exited(lifecycle::create(
                home,
                &self.image,
                source,
                How::Attached,
                true,
            )?);
        }
        let name = match self.name {
            Some(name) => name,
            None => random_id()?,
        };
        let source = Source::Image {
            image: &self.image,
            command: &self.command,
            options: &self.options,
        };
        if !self.detach {
            // Attached: bento itself is the supervisor, and PID 1 inherits our terminal.
            return exited(lifecycle::create(
                home,
                &name,
                source,
                How::Attached,
                self.rm,
            )?);
        }
        match lifecycle::create(home, &name, source, How::Detached, self.rm)? {
            Created::Ready(_) => {
                let container = lifecycle::start(home, &name)?;
                container.print_name();
                Ok(0)
            }
            Created::Exited(code) => Ok(code),
        }
    }
}

/// The status of an attached container (it never stays created).
fn exited(created: Created) -> Result<i32> {
    match created {
        Created::Exited(code) => Ok(code),
        Created::Ready(container) => anyhow::bail!("{} was left created", container.name),
    }
}

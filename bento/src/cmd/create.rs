//! `bento create NAME IMAGE [COMMAND...]`: make a container, and leave its PID 1 waiting.

use anyhow::Result;

use super::{Created, Options, check_terminal, create_detached};
use crate::home::Home;

/// Create a container: pull the image if needed, prepare the namespaces, the overlay and
/// the mounts, and leave PID 1 waiting for `bento start`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name: letters, digits, '_', '.', '-'
    pub name: String,
    /// The image: busybox, docker://REGISTRY/NAME:TAG, docker-archive:FILE, oci:DIR[:TAG], oci-archive:FILE, busybox:[PATH]
    pub image: String,
    /// The command and its arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub options: Options,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        check_terminal(self.options.tty)?;
        match create_detached(
            home,
            &self.name,
            &self.image,
            &self.command,
            &self.options,
            false,
        )? {
            Created::Ready(container) => super::done(&container.name),
            Created::Failed(code) => Ok(code),
        }
    }
}

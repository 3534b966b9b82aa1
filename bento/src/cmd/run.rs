//! `bento run [OPTIONS] IMAGE [COMMAND...]`: create and start in one go.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::create::create_from_bundle;
use super::{Created, Options, build_spec, check_terminal, create_detached, new_state};
use crate::home::Home;
use crate::image::Images;
use crate::state::{Container, check_name, random_id, write_atomically};
use crate::supervisor::{self, Mode};

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
            return create_from_bundle(home, &self.image, bundle, Mode::Attached);
        }
        check_terminal(self.options.tty)?;
        let name = match &self.name {
            Some(name) => name.clone(),
            None => random_id()?,
        };
        check_name(&name)?;
        if self.detach {
            return match create_detached(
                home,
                &name,
                &self.image,
                &self.command,
                &self.options,
                self.rm,
            )? {
                Created::Ready(container) => {
                    super::start::start(&container)?;
                    super::done(&name)
                }
                Created::Failed(code) => Ok(code),
            };
        }
        // Attached: bento itself is the supervisor, and PID 1 inherits our terminal.
        let image = Images::at(&home.images).get_or_pull(&self.image)?;
        let (config, spec) = build_spec(
            &name,
            &image,
            &self.command,
            &self.options,
            &home.containers.join(&name),
        )?;
        let (container, lock) = Container::create(home, &name, |_| {
            serde_json::to_vec_pretty(&spec).context("cannot encode the spec")
        })?;
        if let Err(error) = write_atomically(&container.file("config.json"), &config) {
            let _ = container.remove();
            return Err(error);
        }
        let state = new_state(&container, &spec, self.rm);
        match supervisor::supervise(&container, lock, &spec, state, Mode::Attached) {
            Ok(code) => Ok(code),
            Err(error) => {
                // Nothing ran: leave nothing behind.
                let _ = container.remove();
                Err(error)
            }
        }
    }
}

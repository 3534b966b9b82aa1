//! `bento logs [-f] NAME`: a detached container's output.

use anyhow::Result;

use crate::home::Home;
use crate::state::{Container, Status};

/// Print a detached container's stdout and stderr (kept in its log file)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing what it writes, until it stops
    #[arg(short, long)]
    pub follow: bool,
    /// The container's name
    pub name: String,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let container = Container::open(home, &self.name)?;
        let stopped = || {
            container
                .state()
                .map_or(true, |state| state.status == Status::Stopped)
        };
        crate::log::print(
            &container,
            self.follow,
            stopped,
            &mut std::io::stdout().lock(),
        )?;
        Ok(0)
    }
}

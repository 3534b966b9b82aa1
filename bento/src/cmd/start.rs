//! `bento start NAME`: let a created container's PID 1 exec its command.

use anyhow::Result;

use crate::home::Home;

/// Start a created container: its command runs, and `start` returns at once
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name
    pub name: String,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let container = crate::lifecycle::start(home, &self.name)?;
        container.print_name();
        Ok(0)
    }
}

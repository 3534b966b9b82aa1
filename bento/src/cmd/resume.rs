//! `bento resume NAME`: thaw a paused container (runc's `resume`).

use anyhow::Result;

use crate::home::Home;

/// Resume a paused container
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name
    pub name: String,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        crate::lifecycle::resume(home, &self.name)?.print_name();
        Ok(0)
    }
}

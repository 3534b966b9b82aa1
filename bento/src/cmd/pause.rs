//! `bento pause NAME`: freeze every process of a running container (runc's `pause`).

use anyhow::Result;

use crate::home::Home;

/// Pause a running container: its processes are frozen (the cgroup freezer) until `resume`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name
    pub name: String,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        crate::lifecycle::pause(home, &self.name)?.print_name();
        Ok(0)
    }
}

//! `bento delete [--force] ID`: the OCI runtime's name for `bento rm`.

use anyhow::Result;

use crate::home::Home;

/// Delete a container (OCI): its state, cgroup and layer; --force kills it first
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill the container first if it runs
    #[arg(short, long)]
    pub force: bool,
    /// The container's id (its name)
    pub name: String,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        crate::lifecycle::remove(home, &self.name, self.force)?;
        Ok(0)
    }
}

//! `bento rm [-f] NAME...`: remove containers and everything they left.

use anyhow::Result;

use crate::home::Home;

/// Remove stopped containers (with -f, running ones too): processes, layer, state
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill the container first if it runs
    #[arg(short, long)]
    pub force: bool,
    /// The containers' names
    #[arg(required = true)]
    pub names: Vec<String>,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        for name in &self.names {
            crate::lifecycle::remove(home, name, self.force)?;
            println!("{name}");
        }
        Ok(0)
    }
}

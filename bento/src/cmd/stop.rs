//! `bento stop [-t SECONDS] NAME`: ask the command to end, then make it.

use std::time::Duration;

use anyhow::Result;

use crate::home::Home;
use crate::lifecycle::{self, Stopped};

/// Stop a container gracefully: SIGTERM, then SIGKILL after the grace period
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait after SIGTERM before SIGKILL
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    /// The container's name
    pub name: String,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let grace = Duration::from_secs(self.time);
        let (container, stopped) = lifecycle::stop(home, &self.name, grace)?;
        if let Stopped::Killed = stopped {
            eprintln!(
                "bento: {} did not stop within {} s of SIGTERM: it was sent SIGKILL",
                self.name, self.time
            );
        }
        container.print_name();
        Ok(0)
    }
}

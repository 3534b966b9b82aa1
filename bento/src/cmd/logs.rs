//! `bento logs [-f] NAME`: a detached container's output.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{Context, Result};

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
        // An attached container (`bento run` without -d) wrote to its terminal: no log.
        let Ok(mut log) = std::fs::File::open(container.file("log")) else {
            return Ok(0);
        };
        let mut out = std::io::stdout().lock();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = log.read(&mut buffer).context("cannot read the log")?;
            if n > 0 {
                out.write_all(&buffer[..n]).context("cannot write")?;
                continue;
            }
            out.flush().context("cannot write")?;
            if !self.follow {
                return Ok(0);
            }
            // At the end: follow on while the container may still write.
            let stopped = container
                .state()
                .map_or(true, |state| state.status == Status::Stopped);
            if stopped {
                // One last read: what it wrote just before it stopped.
                std::io::copy(&mut log, &mut out).context("cannot write")?;
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

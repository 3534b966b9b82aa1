//! `bento start NAME`: let a created container's PID 1 exec its command.

use anyhow::{Context, Result};

use crate::errors::Refusal;
use crate::gate;
use crate::home::Home;
use crate::state::{Container, Status, now};

/// Start a created container: its command runs, and `start` returns at once
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name
    pub name: String,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let container = Container::open(home, &self.name)?;
        start(&container)?;
        match container.is_engines() {
            true => Ok(0),
            false => super::done(&self.name),
        }
    }
}

/// Opens the gate, and records that the container runs. The lock is held throughout, so
/// that a command which exits at once is recorded as stopped *after* this.
pub fn start(container: &Container) -> Result<()> {
    let _lock = container.lock()?;
    let mut state = container.state()?;
    state.refresh();
    if state.status != Status::Created {
        let name = &container.name;
        return Err(Refusal::NotCreated.error(
            format!(
                "container {name:?} is {}: only a created container can be started",
                state.status
            ),
            match state.status {
                Status::Running => {
                    "it runs already: `bento exec` runs more commands in it".to_string()
                }
                _ => {
                    format!("make a new one: `bento rm {name}`, then `bento create` or `bento run`")
                }
            },
        ));
    }
    let init = state.init.context("the state names no PID 1")?;
    gate::open_gate(&container.file("exec.fifo"), &init)?;
    let _ = std::fs::remove_file(container.file("exec.fifo"));
    state.status = Status::Running;
    state.started = Some(now());
    container.save(&state)
}

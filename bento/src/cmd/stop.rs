//! `bento stop [-t SECONDS] NAME`: ask the command to end, then make it.

use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::Signal;

use crate::errors::Refusal;
use crate::home::Home;
use crate::process::Process;
use crate::state::{Container, State, Status};

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
        let container = Container::open(home, &self.name)?;
        let (init, state) = running(&container)?;
        // A created container has not run anything that could handle SIGTERM.
        if state.status == Status::Running {
            init.signal(Signal::SIGTERM)?;
        }
        // PID 1 has no default action for SIGTERM (pid_namespaces(7)): a command that does
        // not handle it ignores it, and only SIGKILL, which cannot be ignored, ends it.
        if state.status == Status::Created || !init.wait_gone(Duration::from_secs(self.time)) {
            let _ = init.signal(Signal::SIGKILL);
            init.wait_gone(Duration::from_secs(5));
        }
        wait_for_record(&state);
        super::done(&self.name)
    }
}

/// PID 1 of a created or running container, checked; the container's state.
pub fn running(container: &Container) -> Result<(Process, State)> {
    let mut state = container.state()?;
    state.refresh();
    match (state.status, state.init) {
        (Status::Created | Status::Running, Some(init)) => Ok((init, state)),
        _ => Err(Refusal::NotRunning.error(
            format!("container {:?} is not running", container.name),
            "`bento status --all` shows what runs; `bento start NAME` starts a created one",
        )),
    }
}

/// Waits (a little) for the supervisor to record the exit status, so that `status` right
/// after `stop` shows it.
pub fn wait_for_record(state: &State) {
    if let Some(supervisor) = state.supervisor {
        supervisor.wait_gone(Duration::from_secs(5));
    }
}

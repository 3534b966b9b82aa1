//! `bento rm [-f] NAME...`: remove containers and everything they left.

use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::Signal;

use crate::errors::Refusal;
use crate::home::Home;
use crate::state::{Container, Status};

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
            remove(home, name, self.force)?;
            println!("{name}");
        }
        Ok(0)
    }
}

/// Removes one container. Its mounts live in its own mount namespace, which the kernel
/// tears down with its last process: what is left on the host is its directory, and its
/// cgroup.
pub fn remove(home: &Home, name: &str, force: bool) -> Result<()> {
    let container = Container::open(home, name)?;
    let mut state = container.state()?;
    state.refresh();
    if state.status != Status::Stopped {
        if !force {
            return Err(Refusal::StillRunning.error(
                format!("container {name:?} is {}", state.status),
                format!(
                    "stop it first (`bento stop {name}`), or remove it anyway: `bento rm -f {name}`"
                ),
            ));
        }
        if let Some(init) = state.init {
            let _ = init.signal(Signal::SIGKILL);
            init.wait_gone(Duration::from_secs(5));
        }
    }
    // The supervisor records the exit (or removes a --rm container) as it ends: let it.
    if let Some(supervisor) = state.supervisor {
        supervisor.wait_gone(Duration::from_secs(5));
    }
    let Ok(_lock) = container.lock() else {
        // Removed meanwhile (a --rm container's supervisor did it).
        return Ok(());
    };
    // A supervisor that was killed could not remove the cgroup.
    crate::cgroups::remove(&state.cgroups);
    container.remove()
}

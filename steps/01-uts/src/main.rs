//! # Step 01 — UTS: a hostname of our own (and why it fails)
//!
//! A UTS namespace gives the process its own hostname. Creating one needs CAP_SYS_ADMIN:
//! run as an ordinary user, this step fails with EPERM and explains why. That failure
//! motivates step 02. (Under sudo it works, but root is what we want to avoid.)
//!
//! Run it: `just step 1 hostname`.

use std::ffi::CString;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{execvp, getuid, sethostname};
use plumbing::Hint;

fn main() {
    // Prints any error as one line plus a hint, and exits with the container's status.
    plumbing::run(container)
}

/// The container, one lesson per line, in the order the kernel needs them.
fn container() -> Result<i32> {
    let command = plumbing::command()?;
    let host = procinfo::before_isolation()?;

    isolate_hostname("my-container")?;

    host.after_isolation()?;
    Err(exec_command(&command))
}

/// A hostname of our own. unshare(2) CLONE_NEWUTS gives this process a new UTS namespace
/// (uts_namespaces(7)). Creating it needs CAP_SYS_ADMIN, which an ordinary user does not
/// have: unprivileged, this fails with EPERM. That failure is the lesson of this step.
fn isolate_hostname(name: &str) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWUTS)
        .context("unshare(CLONE_NEWUTS) failed")
        .with_hint(|| {
            format!(
                "creating a UTS namespace needs CAP_SYS_ADMIN, and uid {} does not have it.\n\
                 Step 02 gets it without root, through a user namespace: `just step 2`.\n\
                 `sudo` would work too, but running containers as root is what we avoid.",
                getuid()
            )
        })?;
    // sethostname(2) changes the name in our UTS namespace only; the host keeps its own.
    sethostname(name).context("sethostname failed")?;
    Ok(())
}

/// The command takes over this process: execvp(3) finds it on PATH and calls execve(2),
/// which replaces our program but keeps our pid, namespaces and root. It returns only on
/// failure, with the error to report (127 when there is no such command, 126 when it
/// cannot be executed, as shells do).
fn exec_command(command: &[CString]) -> anyhow::Error {
    let Err(errno) = execvp(&command[0], command);
    plumbing::exec_error(&command[0], errno)
}

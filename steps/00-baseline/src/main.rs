//! # Step 00 — baseline: a plain process runs a command
//!
//! Before isolating anything, look at what an ordinary process sees: its uid, the
//! hostname, its pid, its working directory. Then it turns into the command you gave it,
//! which is also how every container runtime ends its setup. Each later step adds one
//! kind of isolation between these two moments.
//!
//! Run it: `just step 0 hostname`.

use std::ffi::CString;

use anyhow::Result;
use nix::unistd::execvp;

fn main() {
    // Prints any error as one line plus a hint, and exits with the container's status.
    plumbing::run(container)
}

/// The container, one lesson per line, in the order the kernel needs them.
fn container() -> Result<i32> {
    let command = plumbing::command()?;
    let host = procinfo::before_isolation()?;

    // Nothing is isolated yet: each of the next steps adds its lessons here.

    host.after_isolation()?;
    Err(exec_command(&command))
}

/// The command takes over this process: execvp(3) finds it on PATH and calls execve(2),
/// which replaces our program but keeps our pid, namespaces and root. It returns only on
/// failure, with the error to report (127 when there is no such command, 126 when it
/// cannot be executed, as shells do).
fn exec_command(command: &[CString]) -> anyhow::Error {
    let Err(errno) = execvp(&command[0], command);
    plumbing::exec_error(&command[0], errno)
}

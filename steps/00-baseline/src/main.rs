//! # Step 00 — baseline: a plain process runs a command
//!
//! Before isolating anything, look at what an ordinary process sees: its uid, the
//! hostname, its pid, its working directory. Then it turns into the command you gave it,
//! which is also how every container runtime ends its setup. Each later step adds one
//! kind of isolation between these two moments.
//!
//! Run it: `just step 0 hostname`.

use anyhow::Result;
use nix::unistd::execvp;

fn main() {
    // Prints any error as one line plus a hint, and exits with the container's status.
    plumbing::run(container)
}

fn container() -> Result<i32> {
    let command = plumbing::command()?;
    let host = procinfo::before_isolation()?;

    // Nothing is isolated yet: each of the next steps adds one namespace here.

    host.after_isolation()?;
    // execvp(3): find the command on PATH and replace this process with it (execve(2));
    // it keeps our pid, namespaces and root. Returns only on failure.
    let Err(errno) = execvp(&command[0], &command);
    Err(plumbing::exec_error(&command[0], errno))
}

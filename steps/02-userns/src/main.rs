//! # Step 02 — user namespace: root inside, rootless outside
//!
//! Step 01 failed because creating a UTS namespace needs CAP_SYS_ADMIN. Any user may
//! create a *user* namespace, though, and inside it we are uid 0 with every capability
//! over the namespaces it owns. So: user namespace first, then the UTS namespace works,
//! no sudo needed. We are still a host process with a host pid (step 03).
//!
//! Run it: `just step 2 id`, or `just step 2` for a shell ("root" in it is still you).

use std::fs;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{execvp, getgid, getuid, sethostname};
use plumbing::Hint;

fn main() {
    // Prints any error as one line plus a hint, and exits with the container's status.
    plumbing::run(container)
}

fn container() -> Result<i32> {
    let command = plumbing::command()?;
    let host = procinfo::before_isolation()?;

    // === USER NAMESPACE ===
    // The maps below speak in host ids: remember ours before we leave.
    let uid_map = format!("0 {} 1", getuid());
    let gid_map = format!("0 {} 1", getgid());
    // unshare(2) CLONE_NEWUSER: any user may create a user namespace. Inside it we hold all
    // capabilities, but only over namespaces that it owns (user_namespaces(7)).
    unshare(CloneFlags::CLONE_NEWUSER)
        .context("unshare(CLONE_NEWUSER) failed")
        .with_hint(plumbing::user_namespace_hint)?;
    // Map uid 0 inside to our own uid outside, 1 id long. Unprivileged, we may map only our
    // own id, and must write the map ourselves before any exec (user_namespaces(7)).
    fs::write("/proc/self/uid_map", uid_map).context("cannot write /proc/self/uid_map")?;
    // gid_map is refused until setgroups(2) is disabled here: otherwise we could drop a
    // supplementary group that the host uses to *deny* us access (user_namespaces(7)).
    fs::write("/proc/self/setgroups", "deny").context("cannot write /proc/self/setgroups")?;
    fs::write("/proc/self/gid_map", gid_map).context("cannot write /proc/self/gid_map")?;

    // === UTS NAMESPACE ===
    // unshare(2) CLONE_NEWUTS: our own hostname (uts_namespaces(7)). It needs CAP_SYS_ADMIN
    // in the user namespace that will own it: ours, where we have it.
    unshare(CloneFlags::CLONE_NEWUTS).context("unshare(CLONE_NEWUTS) failed")?;
    // sethostname(2) changes the name in our UTS namespace only; the host keeps its own.
    sethostname("my-container").context("sethostname failed")?;

    host.after_isolation()?;
    // execvp(3): find the command on PATH and replace this process with it (execve(2));
    // it keeps our pid, namespaces and root. Returns only on failure.
    let Err(errno) = execvp(&command[0], &command);
    Err(plumbing::exec_error(&command[0], errno))
}

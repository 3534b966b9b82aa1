//! Step 03, pid: the command believes it is PID 1.

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, fork};

use crate::spec::{Namespace, Spec};

/// Forks PID 1 of a new PID namespace. unshare(2) CLONE_NEWPID does not move *us*: a pid
/// never changes. The next child we fork is PID 1 of the new namespace (pid_namespaces(7)).
/// Both copies return from here: the parent (the supervisor) with the child's pid, the
/// child with `Child`. A PID namespace given by path in config.json is joined instead
/// (setns(2): the same rule, only the children enter it).
pub fn fork_pid_1(spec: &Spec) -> Result<ForkResult> {
    match spec.namespaces.iter().find(|ns| ns.kind == "pid") {
        Some(Namespace {
            path: Some(path), ..
        }) => crate::join::join_path(path, "pid", false)?,
        Some(_) => unshare(CloneFlags::CLONE_NEWPID).context("unshare(CLONE_NEWPID) failed")?,
        None => {}
    }
    // From here on the supervisor passes signals on to the container: catch them now, so
    // that none is lost, or kills us, while we fork.
    plumbing::catch_signals()?;
    // SAFETY: bento is single-threaded (checked before the user namespace, which would
    // refuse a threaded process anyway), so the child may go on running Rust code.
    unsafe { fork() }.context("fork failed")
}

/// prctl(2) PR_SET_PDEATHSIG: if the supervisor dies, even of SIGKILL, the kernel kills
/// PID 1, and with it every other process in its namespace. No container outlives its
/// supervisor unnoticed: `bento status` then sees that both are gone.
pub fn die_with_parent() -> Result<()> {
    set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG) failed")?;
    Ok(())
}

//! # no-fork: a PID namespace without the fork (the talk's "not the desired result")
//!
//! Step 02 plus `unshare(CLONE_NEWPID)`, and nothing else: the command still has its host
//! pid, and the checklist says `❌ Believes it is PID 1`. unshare(2) with CLONE_NEWPID puts
//! the *next child* in the new namespace, never the caller: a pid does not change for the
//! life of a process (pid_namespaces(7)). Step 03 adds the fork.
//!
//! Run it: `just demo no-fork sh -c 'echo $$'`.

use std::ffi::CString;
use std::fs;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{execvp, getgid, getuid, sethostname};
use plumbing::Hint;

fn main() {
    // Prints any error as one line plus a hint, and exits with the container's status.
    plumbing::run(container)
}

/// Step 02's table of contents, and one more line.
fn container() -> Result<i32> {
    let command = plumbing::command()?;
    let host = procinfo::before_isolation()?;

    enter_user_namespace()?;
    isolate_hostname("my-container")?;
    // The PID namespace, without the fork: it is for our children, and we exec instead.
    unshare(CloneFlags::CLONE_NEWPID).context("unshare(CLONE_NEWPID) failed")?;

    host.after_isolation()?;
    Err(exec_command(&command))
}

/// Root inside, ourselves outside. unshare(2) CLONE_NEWUSER: any user may create a user
/// namespace. Inside it we hold every capability, but only over the namespaces that it owns
/// (user_namespaces(7)): so it comes first, and every namespace after it is ours to make.
fn enter_user_namespace() -> Result<()> {
    // The maps below speak in host ids: remember ours before we leave.
    let uid_map = format!("0 {} 1", getuid());
    let gid_map = format!("0 {} 1", getgid());
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
    Ok(())
}

/// A hostname of our own. unshare(2) CLONE_NEWUTS gives this process a new UTS namespace
/// (uts_namespaces(7)). Creating it needs CAP_SYS_ADMIN in the user namespace that will own
/// it: ours, where we have it.
fn isolate_hostname(name: &str) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWUTS).context("unshare(CLONE_NEWUTS) failed")?;
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

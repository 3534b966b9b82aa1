//! # Step 03 — PID: the command becomes PID 1
//!
//! A new PID namespace numbers processes from 1 again, but only for processes created
//! after it: so the step forks, and the child, PID 1, runs the command while the parent
//! waits on the host. `ps` still lists the host's processes, because `/proc` is still the
//! host's (steps 04 and 05 fix that).
//!
//! Run it: `just step 3 ps`, or `just step 3 sh -c 'echo $$'`.

use std::ffi::CString;
use std::fs;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, execvp, fork, getgid, getuid, sethostname};
use plumbing::Hint;

fn main() {
    // Prints any error as one line plus a hint, and exits with the container's status.
    plumbing::run(container)
}

/// The container, one lesson per line, in the order the kernel needs them.
fn container() -> Result<i32> {
    let command = plumbing::command()?;
    let host = procinfo::before_isolation()?;

    enter_user_namespace()?;
    isolate_hostname("my-container")?;
    match fork_pid_1()? {
        ForkResult::Parent { child } => wait_for_container(child),
        ForkResult::Child => {
            die_with_parent()?;
            host.after_isolation()?;
            Err(exec_command(&command))
        }
    }
}

/// Forks PID 1 of a new PID namespace. unshare(2) CLONE_NEWPID does not move *us*: a pid
/// never changes. The next child we fork is PID 1 of the new namespace (pid_namespaces(7)).
/// Both copies return from here: the parent with the child's pid, the child with `Child`.
fn fork_pid_1() -> Result<ForkResult> {
    unshare(CloneFlags::CLONE_NEWPID).context("unshare(CLONE_NEWPID) failed")?;
    // From here on the parent passes signals on to the container (wait_for_container):
    // catch them now, so that none is lost, or kills us, while we fork.
    plumbing::catch_signals()?;
    // fork(2) copies this process; both copies continue from here.
    // SAFETY: this program is single-threaded, so the child may go on running Rust code
    // (after fork in a multithreaded program, only async-signal-safe calls are allowed).
    unsafe { fork() }.context("fork failed")
}

/// The parent stays on the host, in charge of the container: signals sent to it are passed
/// on to PID 1, which ignores any it has no handler for. waitpid(2) sleeps until the child
/// ends; its status becomes ours (128+N if it was killed by signal N).
fn wait_for_container(child: Pid) -> Result<i32> {
    plumbing::forward_signals(child);
    let status = waitpid(child, None).context("waitpid failed")?;
    Ok(plumbing::exit_code(status))
}

/// prctl(2) PR_SET_PDEATHSIG: if the parent dies, even of SIGKILL, the kernel kills us, and
/// with PID 1 every other process in its namespace. No container outlives its step.
fn die_with_parent() -> Result<()> {
    set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG) failed")?;
    Ok(())
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

//! The supervisor: the process on the host that makes a container, is PID 1's parent, and
//! stays until it ends.
//!
//! Someone must wait(2) for PID 1: only its parent can collect its exit status, and a
//! detached container outlives the `bento` command that made it. So every container gets
//! a small supervisor of its own, like podman's conmon or containerd's shim. It makes the
//! namespaces (the lessons of steps 01-08, in order), forks PID 1, records it in the
//! state, passes signals on to it, waits for it, and records how it ended.
//!
//! For `bento run` (attached) the supervisor is `bento` itself, in the foreground, as in
//! the steps. For `bento create` (and `run -d`) it is a fork of `bento` in a session of
//! its own (setsid(2)), with stdout and stderr in the container's log file.
//!
//! PID 1 dies with its supervisor (PR_SET_PDEATHSIG), so a killed supervisor cannot leave
//! an unsupervised container behind; `bento status` then sees both gone.

use std::fs::File;
use std::io::{Read, Write};

use anyhow::{Context, Result};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use crate::cgroups::Cgroup;
use crate::container::{self, Start};
use crate::process::Process;
use crate::spec::Spec;
use crate::state::{Container, Lock, State, Status, now};
use crate::terminal::{self, Console};
use crate::{net, pid, userns, uts};

/// How the supervisor runs.
pub enum Mode {
    /// `bento run`: PID 1 starts at once, attached to bento's own stdin/stdout/stderr.
    Attached,
    /// `bento create`: PID 1 waits at the gate; `client` (a pipe to `bento create`) is
    /// told with one byte once the container is created.
    Detached { client: File },
}

/// Makes and supervises the container; returns its exit status. `lock` (the container's)
/// is released once the state says it exists.
pub fn supervise(
    container: &Container,
    lock: Lock,
    spec: &Spec,
    mut state: State,
    mode: Mode,
) -> Result<i32> {
    let layers = container.layers(&spec.rootfs);
    let cgroup = Cgroup::create(&container.name, spec)?;
    state.cgroups = cgroup.as_ref().map(|c| c.dirs.clone()).unwrap_or_default();
    userns::enter_user_namespace()?;
    uts::isolate_hostname(&spec.hostname)?;
    uts::isolate_ipc()?;
    net::enter_network_namespace()?;
    net::bring_up_loopback()?;
    // PID 1 reports on this pipe: one byte "1" once it waits at the gate (detached), or
    // "E" if it fails before its exec. O_CLOEXEC: the exec closes PID 1's end, so reading
    // after it has exited never blocks.
    let (reports, report) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    let (mut reports, report) = (File::from(reports), File::from(report));
    let detached = matches!(mode, Mode::Detached { .. });
    // `-t`: PID 1 sends its terminal's master end over this pair (terminal.rs).
    let console = match spec.terminal {
        true => Some(terminal::console_pair()?),
        false => None,
    };
    let child = match pid::fork_pid_1()? {
        ForkResult::Child => {
            drop(reports);
            let console = console.map(|(ours, its)| {
                drop(ours);
                Console::Pair(its)
            });
            let fifo = container.file("exec.fifo");
            let start = match detached {
                true => Start::AtTheGate {
                    fifo: &fifo,
                    ready: &report,
                },
                false => Start::Now,
            };
            let error = container::init(spec, &layers, cgroup.as_ref(), console.as_ref(), start);
            let _ = (&report).write_all(b"E");
            std::process::exit(plumbing::report(&error));
        }
        ForkResult::Parent { child } => child,
    };
    drop(report);
    plumbing::forward_signals(child);
    // Our end only: when PID 1 is gone, reading it gives end of file.
    let console = console.map(|(ours, its)| {
        drop(its);
        ours
    });
    // Detached with a terminal: PID 1 sends the master before it reports ready.
    let logged = match (&console, detached) {
        (Some(console), true) => terminal::receive_for_log(console)?,
        _ => None,
    };
    if detached && !matches!(read_byte(&mut reports), Some(b'1')) {
        // PID 1 failed, and said why on bento create's stderr: pass its status on.
        let code = wait_for(child);
        if let Some(cgroup) = &cgroup {
            cgroup.remove();
        }
        return code;
    }
    state.pid = child.as_raw();
    state.init = Some(Process::of(child.as_raw()).unwrap_or(Process {
        pid: child.as_raw(),
        start: 0,
    }));
    state.supervisor = Some(Process::me());
    if !detached {
        state.status = Status::Running;
        state.started = Some(now());
    }
    container.save(&state)?;
    drop(lock);
    if let Mode::Detached { mut client } = mode {
        // Our stderr is still bento create's: from now on it is the log, like stdout.
        nix::unistd::dup2_stderr(std::io::stdout()).context("cannot send stderr to the log")?;
        client.write_all(b"1").context("cannot tell bento create")?;
    }
    // The terminal's output, to the user's terminal (attached) or to the log (detached),
    // until no process holds the container's pts; then PID 1's status.
    let relayed = match (&console, &logged) {
        (_, Some(master)) => terminal::log_terminal(master),
        (Some(console), None) => terminal::relay_terminal(console),
        (None, None) => Ok(()),
    };
    drop(console);
    let code = wait_for(child)?;
    relayed?;
    if !detached && read_byte(&mut reports) == Some(b'E') {
        // The command never ran (not found, a mount failed…): PID 1 said why; nothing of
        // the container is worth keeping.
        if let Some(cgroup) = &cgroup {
            cgroup.remove();
        }
        if let Ok(_lock) = container.lock() {
            let _ = container.remove();
        }
        return Ok(code);
    }
    record_exit(container, code, cgroup.as_ref())?;
    Ok(code)
}

/// One byte from PID 1's report pipe, or None at end of file.
fn read_byte(pipe: &mut File) -> Option<u8> {
    let mut byte = [0u8; 1];
    matches!(pipe.read(&mut byte), Ok(1)).then_some(byte[0])
}

/// waitpid(2) until PID 1 has exited; its shell-style status.
fn wait_for(child: Pid) -> Result<i32> {
    let status = waitpid(child, None).context("waitpid failed")?;
    Ok(plumbing::exit_code(status))
}

/// Records how the container ended, or removes it (`--rm`).
fn record_exit(container: &Container, code: i32, cgroup: Option<&Cgroup>) -> Result<()> {
    // `bento rm -f` may have removed it already: nothing left to record.
    let Ok(_lock) = container.lock() else {
        return Ok(());
    };
    let mut state = container.state()?;
    state.status = Status::Stopped;
    state.pid = 0;
    state.exit_code = Some(code);
    state.finished = Some(now());
    if let Some(cgroup) = cgroup {
        state.oom_killed = cgroup.oom_killed();
        cgroup.remove();
    }
    if state.auto_remove {
        return container.remove();
    }
    container.save(&state)
}

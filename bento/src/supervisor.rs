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
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use crate::cgroups::Cgroup;
use crate::container::{self, Start};
use crate::process::Process;
use crate::spec::Spec;
use crate::state::{Container, Lock, State, Status, now};
use crate::terminal::{self, Channel};
use crate::{join, net, pid, userns, uts};
use plumbing::Hint;

/// How the supervisor runs.
pub enum Mode {
    /// `bento run`: PID 1 starts at once, attached to bento's own stdin/stdout/stderr.
    Attached,
    /// `bento create`: PID 1 waits at the gate; `client` (a pipe to `bento create`) is
    /// told with one byte once the container is created.
    Detached { client: File },
    /// An engine's `create --bundle` (OCI): PID 1 waits at the gate, and no supervisor
    /// stays. `bento create` writes PID 1's pid to `pid_file` and exits; PID 1 is then
    /// reparented to the engine's process (conmon, a subreaper: prctl(2)
    /// PR_SET_CHILD_SUBREAPER), which waits for it and keeps its exit status. With a
    /// terminal, PID 1 sends its master to the engine's `console_socket`.
    Engine {
        pid_file: Option<PathBuf>,
        console_socket: Option<PathBuf>,
    },
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
    let layers = spec
        .overlay_lower
        .as_ref()
        .map(|lower| container.layers(lower, &spec.rootfs));
    let cgroup = Cgroup::create(&container.name, spec)?;
    state.cgroups = cgroup.as_ref().map(|c| c.dirs.clone()).unwrap_or_default();
    enter_namespaces(spec)?;
    // PID 1 reports on this pipe: one byte "1" once it waits at the gate (detached), or
    // "E" if it fails before its exec. O_CLOEXEC: the exec closes PID 1's end, so reading
    // after it has exited never blocks.
    let (reports, report) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    let (mut reports, report) = (File::from(reports), File::from(report));
    let detached = !matches!(mode, Mode::Attached);
    let engine = matches!(mode, Mode::Engine { .. });
    // `-t`: PID 1 sends its terminal's master end over this pair (terminal.rs), or to the
    // engine's console socket.
    let console = match (spec.terminal, &mode) {
        (true, Mode::Engine { console_socket, .. }) => {
            let socket = console_socket
                .clone()
                .context("process.terminal is true, and there is no --console-socket")
                .hint("an engine that asks for a terminal gives a socket to send it to")?;
            Some(Channel::new(Some(&socket))?)
        }
        (true, _) => Some(Channel::new(None)?),
        (false, _) => None,
    };
    let child = match pid::fork_pid_1(spec)? {
        ForkResult::Child => {
            drop(reports);
            let console = console.map(Channel::in_child);
            let fifo = container.file("exec.fifo");
            let start = match detached {
                true => Start::AtTheGate {
                    fifo: &fifo,
                    ready: &report,
                    errors_to_log: !engine,
                },
                false => Start::Now,
            };
            let init = container::Init {
                spec,
                layers: layers.as_ref(),
                cgroup: cgroup.as_ref(),
                console: console.as_ref(),
                die_with_parent: !engine,
            };
            let error = container::init(&init, start);
            let _ = (&report).write_all(b"E");
            std::process::exit(plumbing::report(&error));
        }
        ForkResult::Parent { child } => child,
    };
    drop(report);
    if !engine {
        plumbing::forward_signals(child);
    }
    // Our end only: when PID 1 is gone, reading it gives end of file.
    let console = console.and_then(Channel::in_parent);
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
    state.supervisor = (!engine).then(Process::me);
    if !detached {
        state.status = Status::Running;
        state.started = Some(now());
    }
    container.save(&state)?;
    if let Mode::Engine { pid_file, .. } = mode {
        if let Some(path) = pid_file {
            write_pid_file(&path, child.as_raw())?;
        }
        // Done: PID 1 waits at the gate for `bento start`, and is the engine's to wait for.
        return Ok(0);
    }
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

/// The namespaces config.json asks for, except PID (fork_pid_1) and mount (PID 1 makes
/// it), in the kernel's order: the user namespace first, since it owns the others and
/// gives us the capabilities to make them (user_namespaces(7)). Each is new (unshare(2)),
/// or joined by path (setns(2)): podman makes the network namespace itself, sets up its
/// interfaces, and gives us its path.
pub fn enter_namespaces(spec: &Spec) -> Result<()> {
    for kind in ["user", "uts", "ipc", "net", "cgroup"] {
        let Some(ns) = spec.namespaces.iter().find(|ns| ns.kind == kind) else {
            continue;
        };
        if let Some(path) = &ns.path {
            join::join_path(path, kind)?;
            continue;
        }
        match kind {
            "user" => userns::enter_user_namespace(&spec.uid_mappings, &spec.gid_mappings)?,
            "uts" => uts::isolate_hostname(&spec.hostname)?,
            "ipc" => uts::isolate_ipc()?,
            "net" => {
                net::enter_network_namespace()?;
                net::bring_up_loopback()?;
            }
            _ => nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .context("unshare(CLONE_NEWCGROUP) failed")?,
        }
    }
    Ok(())
}

/// `--pid-file`: PID 1's pid on the host, written whole (a new file renamed into place),
/// for the engine to read once `create` returns.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let partial = path.with_extension(format!("bento-{}", std::process::id()));
    std::fs::write(&partial, pid.to_string())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
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

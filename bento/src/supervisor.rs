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
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use crate::cgroups::Cgroup;
use crate::init::{self, Start};
use crate::message::{self, Message};
use crate::process::Process;
use crate::spec::Spec;
use crate::state::{Container, Lock, State, Status};
use crate::terminal::{self, Channel};
use crate::time::now;
use crate::{join, log, net, network, pid, userns, uts};
use plumbing::Hint;

/// How the supervisor runs.
pub enum Mode {
    /// `bento run`: PID 1 starts at once, attached to bento's own stdin/stdout/stderr.
    Attached,
    /// `bento create`: PID 1 waits at the gate; `client` (a pipe to `bento create`) is
    /// told with one byte once the container is created.
    Detached { client: File, log_size_max: u64 },
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
    // Step 12: the published ports and the network's helpers, forked while we are still
    // in the host's namespaces (network.rs).
    let network = network::prepare(container, spec, matches!(mode, Mode::Engine { .. }))?;
    let layers = spec
        .overlay_lower
        .as_ref()
        .map(|lower| container.layers(lower, &spec.rootfs));
    let mut cgroup = Cgroup::create(&crate::cgroups::Request {
        path: spec.cgroups_path.as_deref(),
        name: &container.name,
        resources: &spec.resources,
        always: false,
    })?;
    state.cgroups = cgroup.as_ref().map(|c| c.dirs.clone()).unwrap_or_default();
    if let Some(cgroup) = &mut cgroup
        && spec.new_namespace("user")
    {
        cgroup.remover_on_the_host()?;
    }
    enter_namespaces(spec)?;
    let network = match network.map(network::Prepared::start).transpose() {
        Ok(network) => network,
        Err(error) => {
            if let Some(cgroup) = &cgroup {
                cgroup.remove();
            }
            return Err(error);
        }
    };
    if let (Some(record), Some(network)) = (&mut state.network, &network) {
        record.helpers = network.processes();
    }
    // PID 1 reports on this pipe: Ready once it waits at the gate (detached), or Failed if
    // it fails before its exec. O_CLOEXEC: the exec closes PID 1's end, so reading
    // after it has exited never blocks.
    let (reports, report) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    let (reports, report) = (File::from(reports), File::from(report));
    let detached = !matches!(mode, Mode::Attached);
    let engine = matches!(mode, Mode::Engine { .. });
    // `-t`: PID 1 sends its terminal's master end over this pair (terminal.rs), or to the
    // engine's console socket.
    // Detached: PID 1 writes into this pipe, and we copy it into the log, which we keep
    // within its size (log.rs).
    let output = match detached && !engine {
        true => {
            Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?)
        }
        false => None,
    };
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
            if let Some((_, writer)) = &output
                && let Err(error) = nix::unistd::dup2_stdout(writer)
            {
                std::process::exit(crate::errors::report(&error.into()));
            }
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
            let init = init::Init {
                spec,
                layers: layers.as_ref(),
                cgroup: cgroup.as_ref(),
                console: console.as_ref(),
                die_with_parent: !engine,
                report: report.as_fd(),
            };
            let error = init::container(&init, start);
            let _ = message::send(&report, Message::Failed);
            std::process::exit(crate::errors::report(&error));
        }
        ForkResult::Parent { child } => child,
    };
    drop(report);
    let output = output.map(|(reader, _)| File::from(reader));
    let from_pid_1 = FromPid1 {
        reports: &reports,
        console,
        output,
    };
    let released = release(container, lock, &mut state, mode, child, from_pid_1);
    let relay = match released {
        Ok(Released::Running(relay)) => relay,
        Ok(Released::ToTheEngine) => return Ok(0),
        Ok(Released::Failed) => {
            // PID 1 failed, and said why on bento create's stderr: pass its status on.
            let code = wait_for(child);
            if let Some(cgroup) = &cgroup {
                cgroup.remove();
            }
            return code;
        }
        Err(error) => {
            // We failed after the fork: PID 1 must not stay behind, blocked at the gate
            // with its namespaces. It is our child and not yet waited for, so its pid is
            // still its own: kill it, and collect it.
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(child, None);
            if let Some(cgroup) = &cgroup {
                cgroup.remove();
            }
            return Err(error);
        }
    };
    // The terminal's output, to the user's terminal (attached) or to the log (detached),
    // until no process holds the container's pts; then PID 1's status.
    let relayed = relay.run();
    let code = wait_for(child)?;
    // The container is gone: so are its network and its published ports.
    if let Some(network) = network {
        network.stop();
    }
    relayed?;
    if !detached && message::receive(&reports) == Some(Message::Failed) {
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

/// How far [`release`] got.
enum Released {
    /// PID 1 runs (or waits for `bento start`), and we stay, relaying its terminal.
    Running(Relay),
    /// An engine's container: PID 1 waits at the gate, and is the engine's to wait for.
    ToTheEngine,
    /// PID 1 failed before it was ready.
    Failed,
}

/// Where the container's terminal output goes while we wait for it.
enum Relay {
    None,
    /// To the user's terminal (`run -t`): keys in, output out.
    Terminal(std::os::fd::OwnedFd),
    /// To the log (`run -d -t`): output only.
    TerminalToLog {
        master: std::os::fd::OwnedFd,
        _console: std::os::fd::OwnedFd,
        log: log::Writer,
    },
    /// To the log (`run -d`): what PID 1 writes into its output pipe.
    Log {
        output: File,
        log: log::Writer,
    },
}

impl Relay {
    fn run(self) -> Result<()> {
        match self {
            Relay::None => Ok(()),
            Relay::Terminal(console) => terminal::relay_terminal(&console),
            Relay::TerminalToLog {
                master, mut log, ..
            } => terminal::log_terminal(&master, &mut log),
            Relay::Log { output, mut log } => log.copy_from(output),
        }
    }
}

/// What PID 1 talks to the supervisor on: its reports (Ready, Failed), its terminal, its
/// output (detached).
struct FromPid1<'a> {
    reports: &'a File,
    console: Option<Channel>,
    output: Option<File>,
}

/// After the fork: waits until PID 1 is ready (detached), records it, and tells whoever
/// waits for the container to exist (bento create, the engine's pid file).
fn release(
    container: &Container,
    lock: Lock,
    state: &mut State,
    mode: Mode,
    child: Pid,
    from_pid_1: FromPid1,
) -> Result<Released> {
    let FromPid1 {
        reports,
        console,
        output,
    } = from_pid_1;
    let detached = !matches!(mode, Mode::Attached);
    let engine = matches!(mode, Mode::Engine { .. });
    if !engine {
        plumbing::forward_signals(child);
    }
    // Our end only: when PID 1 is gone, reading it gives end of file.
    let console = console.and_then(Channel::in_parent);
    let log = match &mode {
        Mode::Detached { log_size_max, .. } => Some(log::Writer::new(container, *log_size_max)?),
        _ => None,
    };
    // Detached with a terminal: PID 1 sends the master before it reports ready.
    let relay = match (console, log, output) {
        (Some(console), Some(log), _) => match terminal::receive_for_log(&console)? {
            Some(master) => Relay::TerminalToLog {
                master,
                _console: console,
                log,
            },
            None => Relay::None,
        },
        (Some(console), None, _) => Relay::Terminal(console),
        (None, Some(log), Some(output)) => Relay::Log { output, log },
        (None, _, _) => Relay::None,
    };
    if detached && message::receive(reports) != Some(Message::Ready) {
        return Ok(Released::Failed);
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
    container.save(state)?;
    if let Mode::Engine { pid_file, .. } = mode {
        if let Some(path) = pid_file {
            write_pid_file(&path, child.as_raw())?;
        }
        return Ok(Released::ToTheEngine);
    }
    drop(lock);
    if let Mode::Detached { client, .. } = mode {
        // Our stderr is still bento create's: from now on it is the log, like stdout.
        nix::unistd::dup2_stderr(std::io::stdout()).context("cannot send stderr to the log")?;
        message::send(&client, Message::Ready).context("cannot tell bento create")?;
    }
    Ok(Released::Running(relay))
}

/// The namespaces config.json asks for, except PID (fork_pid_1), mount and a new cgroup
/// namespace (PID 1 makes them: the cgroup namespace once it is in its cgroup, which
/// becomes the namespace's root), in the kernel's order: the user namespace first, since it owns the others and
/// gives us the capabilities to make them (user_namespaces(7)). Each is new (unshare(2)),
/// or joined by path (setns(2)): podman makes the network namespace itself, sets up its
/// interfaces, and gives us its path.
pub fn enter_namespaces(spec: &Spec) -> Result<()> {
    for kind in ["user", "uts", "ipc", "net", "cgroup"] {
        let Some(ns) = spec.namespaces.iter().find(|ns| ns.kind == kind) else {
            continue;
        };
        if let Some(path) = &ns.path {
            let written = spec
                .sysctl
                .keys()
                .any(|key| crate::spec::sysctl_namespace(key) == Some(kind));
            join::join_path(path, kind, written)?;
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
            _ => {} // cgroup: PID 1's (init.rs)
        }
    }
    Ok(())
}

/// `--pid-file`: PID 1's pid on the host, for the engine to read once `create` returns.
/// Root writes it where the engine says, perhaps in a directory another user can write
/// to: so as a new file nobody could plant (O_EXCL|O_NOFOLLOW, an unpredictable name)
/// renamed over the path, which replaces a planted symlink instead of following it.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    plumbing::files::write_atomically(path, pid.to_string().as_bytes(), 0o644)
        .context("cannot write the pid file")
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
    let mut state = container.record()?;
    state.status = Status::Stopped;
    state.pid = 0;
    state.exit_code = Some(code);
    state.finished = Some(now());
    if let Some(network) = &mut state.network {
        network.helpers.clear(); // stopped with the container
    }
    if let Some(cgroup) = cgroup {
        state.oom_killed = cgroup.oom_killed();
        cgroup.remove();
    }
    if state.auto_remove {
        return container.remove();
    }
    container.save(&state)
}

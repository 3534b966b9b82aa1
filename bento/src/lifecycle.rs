//! A container's life, in one place: create, start, exec, stop, kill, remove. The
//! commands in `cmd/` turn their arguments into one call here, and nothing else.
//!
//! ```text
//!            create                start               exit, stop, kill
//!   (none) ─────────► created ─────────────► running ───────────────────► stopped
//!                        │                      │ exec                        │ remove
//!                        └──── kill, stop ──────┴─────────────────────────────┴──────► (none)
//! ```
//!
//! Which status each step needs, and how a command is refused when the container is not
//! in it, is said once, in [`Container::require`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, setsid};

use crate::cgroups::Resources;
use crate::config::{Options, build_spec};
use crate::gate;
use crate::home::Home;
use crate::image::Images;
use crate::join::join_namespaces;
use crate::message::{self, Message};
use crate::spec::{Spec, set_env};
use crate::state::{Container, Lock, Need, State, Status, check_name};
use crate::supervisor::{self, Mode};
use crate::terminal::{self, Channel, require_terminal_on_stdin};
use crate::time::now;

/// What a container is made from.
pub enum Source<'a> {
    /// An image, and the command line of `bento create`/`run` (bento's own front end:
    /// config.rs writes the config.json).
    Image {
        image: &'a str,
        command: &'a [String],
        options: &'a Options,
    },
    /// An OCI bundle: a directory with an engine's config.json; the engine passes
    /// descriptors 3 to 3 + `preserve_fds` - 1 on to the command (runc's --preserve-fds).
    Bundle { dir: &'a Path, preserve_fds: u32 },
}

/// Who waits for the container, and how it starts.
pub enum How {
    /// `bento run`: bento is the supervisor, in the foreground; the command starts at
    /// once, on bento's stdin, stdout and stderr (or a terminal of its own, relayed).
    Attached,
    /// `bento create`, `run -d`: a supervisor of its own in the background; PID 1 waits
    /// for `start`; its output goes to the container's log.
    Detached,
    /// An engine's `create --bundle`: PID 1 waits for `start`, and is the engine's to
    /// wait for (see [`Mode::Engine`]).
    Engine {
        pid_file: Option<PathBuf>,
        console_socket: Option<PathBuf>,
    },
}

/// What became of a creation.
pub enum Created {
    /// The container exists (created: PID 1 waits at the gate).
    Ready(Container),
    /// It ran (attached) or could not be made (its reason was printed): its status.
    Exited(i32),
}

/// Makes the container `name`, and for [`How::Attached`] runs it to its end. Leaves nothing
/// behind when it fails. `auto_remove`: remove it once it stops (`run --rm`, `run
/// --bundle`).
pub fn create(
    home: &Home,
    name: &str,
    source: Source,
    how: How,
    auto_remove: bool,
) -> Result<Created> {
    // PID 1 is bento until its exec, and what the container runs may lead back to it
    // (`#!/proc/self/exe`): run from bento's sealed copy (sealed.rs). This starts the
    // command over, from the copy.
    crate::sealed::run_sealed()?;
    check_name(name)?;
    let (spec, config, bundle) = match source {
        Source::Image {
            image,
            command,
            options,
        } => {
            require_terminal_on_stdin(options.tty)?;
            let image = Images::at(&home.images).get_or_pull(image)?;
            let bundle = home.containers.join(name);
            let (config, spec) = build_spec(name, &image, command, options, &bundle)?;
            (spec, Some(config), None)
        }
        Source::Bundle { dir, preserve_fds } => {
            let bundle = std::path::absolute(dir).context("cannot find the bundle")?;
            let mut spec = Spec::from_config(&bundle)?;
            spec.preserve_fds = preserve_fds;
            if matches!(how, How::Attached) {
                // `run --bundle`: the terminal is relayed to ours.
                require_terminal_on_stdin(spec.terminal)?;
            }
            (spec, None, Some(bundle))
        }
    };
    for what in &spec.not_applied {
        eprintln!("bento: warning: {what}");
    }
    let attached = matches!(how, How::Attached);
    let (container, lock) = Container::create(home, name, &spec)?;
    let made = (|| -> Result<Created> {
        let mut state = State::new(&container, &spec, auto_remove);
        if let Some(config) = &config {
            container.save_config(config)?;
        }
        if spec
            .mounts
            .iter()
            .any(|m| m.destination == "/etc/resolv.conf")
            && spec
                .network
                .is_some_and(|mode| mode != crate::network::Mode::None)
        {
            container.save_resolv_conf()?;
        }
        if let Some(bundle) = bundle {
            // An engine's bundle is where its config.json is, not our directory.
            state.bundle = bundle;
        }
        if !attached {
            gate::make(&container.file("exec.fifo"))?;
        }
        match how {
            How::Attached => supervisor::supervise(&container, lock, &spec, state, Mode::Attached)
                .map(Created::Exited),
            How::Detached => detach(&container, lock, &spec, state),
            How::Engine {
                pid_file,
                console_socket,
            } => {
                let mode = Mode::Engine {
                    pid_file,
                    console_socket,
                };
                match supervisor::supervise(&container, lock, &spec, state, mode)? {
                    0 => Ok(Created::Ready(container.clone())),
                    code => Ok(Created::Exited(code)),
                }
            }
        }
    })();
    match made {
        Ok(Created::Exited(code)) if code != 0 && !attached => {
            forget(&container);
            Ok(Created::Exited(code))
        }
        Ok(created) => Ok(created),
        Err(error) => {
            // Nothing ran, or PID 1 failed and said why: leave nothing behind.
            forget(&container);
            Err(error)
        }
    }
}

/// Removes what a failed creation made (its cgroup and its directory).
fn forget(container: &Container) {
    if let Ok(state) = container.record() {
        crate::cgroups::remove(&state.cgroups);
    }
    let _ = container.remove();
}

/// `bento create`, `run -d`: forks the container's supervisor, which makes PID 1 and
/// tells us (a message on a pipe) once PID 1 waits at the gate.
fn detach(container: &Container, lock: Lock, spec: &Spec, state: State) -> Result<Created> {
    let log = crate::log::create(container)?;
    let (reader, writer) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    // SAFETY: bento is single-threaded, so the child may go on running Rust code.
    match unsafe { fork() }.context("fork failed")? {
        ForkResult::Child => {
            drop(reader);
            // A session of its own (no terminal to hang up on it), stdin from /dev/null,
            // stdout to the log (stderr follows once the container exists).
            let supervised = (|| -> Result<i32> {
                setsid().context("setsid failed")?;
                let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
                nix::unistd::dup2_stdin(&null).context("cannot redirect stdin")?;
                nix::unistd::dup2_stdout(&log).context("cannot redirect stdout")?;
                let client = std::fs::File::from(writer);
                let log_size_max = spec.log_size_max.unwrap_or(crate::log::DEFAULT_SIZE_MAX);
                let mode = Mode::Detached {
                    client,
                    log_size_max,
                };
                supervisor::supervise(container, lock, spec, state, mode)
            })();
            let code = supervised.unwrap_or_else(|error| crate::errors::report(&error));
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            drop(writer);
            if message::receive(&reader) == Some(Message::Ready) {
                return Ok(Created::Ready(container.clone()));
            }
            // The supervisor or PID 1 failed (and said why): take its status, and leave
            // nothing (our copy of the lock is still held).
            let code = waitpid(child, None)
                .map(plumbing::exit_code)
                .unwrap_or(plumbing::EXIT_SETUP_FAILED);
            forget(container);
            drop(lock);
            Ok(Created::Exited(code))
        }
    }
}

/// `bento start`: opens the gate, and records that the container runs. The lock is held
/// throughout, so that a command which exits at once is recorded as stopped *after* this.
pub fn start(home: &Home, name: &str) -> Result<Container> {
    let container = Container::open(home, name)?;
    let _lock = container.lock()?;
    let mut state = container.require(Need::Created)?;
    let init = state.init.context("the state names no PID 1")?;
    gate::open_gate(&container.file("exec.fifo"), &init)?;
    let _ = std::fs::remove_file(container.file("exec.fifo"));
    state.status = Status::Running;
    state.started = Some(now());
    container.save(&state)?;
    Ok(container)
}

/// How `stop` ended the container.
pub enum Stopped {
    /// Its command heeded SIGTERM (or it was only created: SIGKILL at once).
    Gracefully,
    /// SIGTERM was not heeded within the grace period: SIGKILL followed.
    Killed,
}

/// `bento stop`: SIGTERM, then SIGKILL after `grace`.
pub fn stop(home: &Home, name: &str, grace: Duration) -> Result<(Container, Stopped)> {
    let container = Container::open(home, name)?;
    let mut state = container.require(Need::Alive)?;
    let init = state.init.context("the state names no PID 1")?;
    if state.status == Status::Paused {
        // Frozen, it could not heed SIGTERM: thaw it first.
        crate::cgroups::freeze(&state.cgroups, false)?;
        state.status = Status::Running;
    }
    let mut stopped = Stopped::Gracefully;
    // A created container has not run anything that could handle SIGTERM.
    if state.status == Status::Running {
        init.signal(Signal::SIGTERM)?;
    }
    // PID 1 has no default action for SIGTERM (pid_namespaces(7)): a command that does
    // not handle it ignores it, and only SIGKILL, which cannot be ignored, ends it.
    if state.status == Status::Created || !init.wait_gone(grace) {
        if state.status == Status::Running {
            stopped = Stopped::Killed;
        }
        let _ = init.signal(Signal::SIGKILL);
        init.wait_gone(Duration::from_secs(5));
    }
    wait_for_record(&state);
    Ok((container, stopped))
}

/// `bento kill`: a signal to PID 1; after SIGKILL, waits until its end is recorded.
pub fn kill(home: &Home, name: &str, signal: Signal) -> Result<Container> {
    let container = Container::open(home, name)?;
    let state = container.require(Need::Alive)?;
    let init = state.init.context("the state names no PID 1")?;
    init.signal(signal)?;
    if state.status == Status::Paused && signal == Signal::SIGKILL {
        // A frozen process dies only once thawed (the v1 freezer keeps the signal pending).
        let _ = crate::cgroups::freeze(&state.cgroups, false);
    }
    if signal == Signal::SIGKILL {
        init.wait_gone(Duration::from_secs(5));
        wait_for_record(&state);
    }
    Ok(container)
}

/// `bento pause`: freezes every process of the container (the cgroup freezer): they stop
/// where they are, unaware, until `resume`. Kubernetes does not pause; containerd and
/// `docker pause` do.
pub fn pause(home: &Home, name: &str) -> Result<Container> {
    set_frozen(home, name, true)
}

/// `bento resume`: thaws a paused container.
pub fn resume(home: &Home, name: &str) -> Result<Container> {
    set_frozen(home, name, false)
}

fn set_frozen(home: &Home, name: &str, frozen: bool) -> Result<Container> {
    let container = Container::open(home, name)?;
    let _lock = container.lock()?;
    let mut state = container.require(match frozen {
        true => Need::Running,
        false => Need::Paused,
    })?;
    crate::cgroups::freeze(&state.cgroups, frozen)?;
    state.status = match frozen {
        true => Status::Paused,
        false => Status::Running,
    };
    container.save(&state)?;
    Ok(container)
}

/// `bento ps`: the host pids of the container's processes: those in its cgroup, or, with
/// none, those in its PID namespace (proc(5): /proc/PID/ns/pid names it).
pub fn ps(home: &Home, name: &str) -> Result<Vec<i32>> {
    let container = Container::open(home, name)?;
    let state = container.require(Need::Alive)?;
    let init = state.init.context("the state names no PID 1")?;
    if let Some(dir) = state.cgroups.first() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs"))
            .with_context(|| format!("cannot read {}", dir.join("cgroup.procs").display()))?;
        return Ok(procs
            .lines()
            .filter_map(|pid| pid.trim().parse().ok())
            .collect());
    }
    let namespace = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let ours = namespace(&init.pid.to_string()).context("the container's PID 1 is gone")?;
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .context("cannot read /proc")?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| namespace(&pid.to_string()).as_ref() == Some(&ours))
        .collect();
    pids.sort();
    Ok(pids)
}

/// `bento update`: new limits for a running container (Kubernetes resizes pods in place
/// this way): what is given replaces what was, in its cgroup and its spec. Returns what
/// this host cannot enforce.
pub fn update(home: &Home, name: &str, resources: Resources) -> Result<Vec<String>> {
    let container = Container::open(home, name)?;
    let _lock = container.lock()?;
    let state = container.require(Need::Alive)?;
    anyhow::ensure!(
        !state.cgroups.is_empty(),
        "container {name:?} has no cgroup to update (it was made without limits, rootless)"
    );
    let mut spec = container.spec()?;
    let resources = resources.over(&spec.resources);
    let unenforced = crate::cgroups::update(&state.cgroups, &resources)?;
    spec.resources = resources;
    container.save_spec(&spec)?;
    Ok(unenforced)
}

/// Waits (a little) for the supervisor to record the exit status, so that `status` right
/// after `stop` shows it.
fn wait_for_record(state: &State) {
    if let Some(supervisor) = state.supervisor {
        supervisor.wait_gone(Duration::from_secs(5));
    }
}

/// `bento rm`, `delete`: removes one container. Its mounts live in its own mount
/// namespace, which the kernel tears down with its last process: what is left on the host
/// is its directory, and its cgroup. `force`: kill it first if it runs.
pub fn remove(home: &Home, name: &str, force: bool) -> Result<()> {
    let container = Container::open(home, name)?;
    let state = match force {
        true => container.state()?,
        false => container.require(Need::Stopped)?,
    };
    if state.status != Status::Stopped
        && let Some(init) = state.init
    {
        let _ = init.signal(Signal::SIGKILL);
        if state.status == Status::Paused {
            let _ = crate::cgroups::freeze(&state.cgroups, false);
        }
        init.wait_gone(Duration::from_secs(5));
    }
    // The supervisor records the exit (or removes a --rm container) as it ends: let it.
    wait_for_record(&state);
    let Ok(_lock) = container.lock() else {
        // Removed meanwhile (a --rm container's supervisor did it).
        return Ok(());
    };
    // A supervisor that was killed could not remove the cgroup, nor stop the network.
    crate::cgroups::remove(&state.cgroups);
    crate::network::tear_down(state.network.as_ref());
    container.remove()
}

/// What `bento exec` runs.
pub enum Process {
    /// An OCI process.json (what engines pass): it replaces the container's whole process.
    Oci(PathBuf),
    /// A command, with changes to the container's process.
    Command {
        args: Vec<String>,
        env: Vec<String>,
        workdir: Option<String>,
        tty: bool,
    },
}

/// How `exec` hands its process over.
pub struct ExecOptions {
    /// Write the process's pid here.
    pub pid_file: Option<PathBuf>,
    /// Return as soon as it runs (an engine waits for it).
    pub detach: bool,
    /// Send the terminal's master here (an engine's), instead of relaying it.
    pub console_socket: Option<PathBuf>,
    /// Pass descriptors 3 to 3 + N - 1 on to the process.
    pub preserve_fds: u32,
}

/// `bento exec`: one more process in the running container `name`, in its namespaces,
/// root, cgroup, working directory and environment. Its exit status, or 0 detached.
pub fn exec(home: &Home, name: &str, process: Process, options: ExecOptions) -> Result<i32> {
    // Its process joins a container whose processes can see it: from bento's sealed copy.
    crate::sealed::run_sealed()?;
    if options.console_socket.is_none()
        && let Process::Command { tty, .. } = &process
    {
        require_terminal_on_stdin(*tty)?;
    }
    let container = Container::open(home, name)?;
    let state = container.require(Need::Running)?;
    let init = state.init.context("the state names no PID 1")?;
    let mut spec = container.spec()?;
    match process {
        Process::Oci(path) => {
            let process: oci_spec::runtime::Process = serde_json::from_slice(
                &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
            )
            .with_context(|| format!("{} is not an OCI process", path.display()))?;
            crate::spec::check_process(&process)?;
            spec.set_process(&process);
        }
        Process::Command {
            args,
            env,
            workdir,
            tty,
        } => {
            spec.args = args;
            for pair in &env {
                set_env(&mut spec.env, pair);
            }
            if let Some(dir) = workdir {
                spec.cwd = dir;
            }
            spec.terminal = tty;
            if tty {
                set_env(&mut spec.env, "TERM=xterm");
            }
        }
    }
    spec.preserve_fds = options.preserve_fds;
    // Opened now: once in the container's mount namespace, the host's paths are gone.
    let pid_file = match &options.pid_file {
        Some(path) => Some(plumbing::files::open_parent(path)?),
        None => None,
    };
    // Opened now, before the namespaces: as root (v1) its files belong to the real root.
    let cgroup = match state.cgroups.as_slice() {
        [] => None,
        dirs => Some(crate::cgroups::Cgroup::open(dirs)?),
    };
    // `-t`: the command sends its terminal's master end to us or to the engine
    // (terminal.rs); connected before we join the container's mount namespace.
    let console = match spec.terminal {
        true => Some(Channel::new(options.console_socket.as_deref())?),
        false => None,
    };
    // From here on this process is inside the container, where its processes can see it:
    // not dumpable, so that they may not ptrace it nor open its /proc/PID/exe (sealed.rs).
    crate::sealed::not_dumpable()?;
    let shared_mounts = matches!(
        crate::mounts::mount_namespace(&spec),
        Ok(crate::mounts::MountNamespace::Shared)
    );
    join_namespaces(&init)?;
    if shared_mounts {
        // Its PID 1 shares the runtime's mount table, in a root of its own: so does this.
        crate::mounts::chroot_into(&spec.rootfs)?;
    }
    plumbing::catch_signals()?;
    // SAFETY: bento is single-threaded, so the child may go on running Rust code.
    match unsafe { fork() }.context("fork failed")? {
        ForkResult::Child => {
            // Now inside the container's PID namespace, with its root.
            let console = console.map(Channel::in_child);
            let error = crate::init::exec(&spec, cgroup.as_ref(), console.as_ref());
            std::process::exit(crate::errors::report(&error));
        }
        ForkResult::Parent { child } => {
            if let Some((dir, file)) = &pid_file {
                let pid = child.as_raw().to_string();
                if let Err(error) = plumbing::files::write_atomically_at(
                    std::os::fd::AsFd::as_fd(dir),
                    file,
                    pid.as_bytes(),
                    0o644,
                ) {
                    let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    return Err(error.context("cannot write the pid file"));
                }
            }
            if options.detach {
                return Ok(0);
            }
            plumbing::forward_signals(child);
            let relayed = match console.and_then(Channel::in_parent) {
                Some(ours) => terminal::relay_terminal(&ours),
                None => Ok(()),
            };
            let status = waitpid(child, None).context("waitpid failed")?;
            relayed?;
            Ok(plumbing::exit_code(status))
        }
    }
}

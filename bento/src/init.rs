//! The two ways into a container, side by side (as runc keeps its standard and setns
//! inits): what a process does between fork(2) and execve(2).
//!
//! - [`container`]: PID 1 of a new container, one lesson per line, in the order the kernel
//!   needs them. The supervisor has already made the user, UTS, IPC and network
//!   namespaces; this process is PID 1 of the new PID namespace.
//! - [`exec`]: one more process in a running container (`bento exec`), forked after its
//!   parent joined the container's namespaces (join.rs).
//!
//! Both end the same way ([`enter`], then [`become_command`]): find the program, go to the
//! working directory, take the terminal, drop to the user and privileges the spec asks
//! for, and exec.

use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::unistd::{AccessFlags, access, execve};
use plumbing::Hint;

use crate::gate::Gate;
use crate::message::{self, Message};
use crate::mounts::MountNamespace;
use crate::overlay::Layers;
use crate::spec::{Spec, get_env};
use crate::terminal::{self, Console};
use crate::{caller, cgroups, dev, mounts, overlay, pid, privileges, rootfs, userns};

/// How PID 1 starts the command.
pub enum Start<'a> {
    /// At once (`bento run`).
    Now,
    /// When `bento start` opens the gate at this path; `ready` is told (one byte) that
    /// everything is prepared and that PID 1 now waits. `errors_to_log`: from then on,
    /// stderr goes where stdout goes (bento's log; an engine gives both itself).
    AtTheGate {
        fifo: &'a Path,
        ready: &'a std::fs::File,
        errors_to_log: bool,
    },
}

/// What PID 1 is given by its parent.
pub struct Init<'a> {
    pub spec: &'a Spec,
    /// Bento's own containers: the overlay to mount on the root.
    pub layers: Option<&'a Layers>,
    pub cgroup: Option<&'a cgroups::Cgroup>,
    /// `-t` / `process.terminal`: where to send the terminal.
    pub console: Option<&'a Console>,
    /// Die with the supervisor (bento's own); not when an engine waits for PID 1.
    pub die_with_parent: bool,
    /// The pipe on which PID 1 tells the supervisor that it failed: the one descriptor of
    /// bento's that stays open until the exec (a pipe leads to no file).
    pub report: BorrowedFd<'a>,
}

/// PID 1: becomes the container; returns only with the error that stopped it.
pub fn container(init: &Init, start: Start) -> anyhow::Error {
    match prepare(init, start) {
        Ok(program) => become_command(&program, init.spec, Some(init.report)),
        Err(error) => error,
    }
}

/// `bento exec`'s process, already inside the container's namespaces and root: joins the
/// container's cgroup, then ends as PID 1 does. Returns only with the error that stopped it.
pub fn exec(
    spec: &Spec,
    cgroup: Option<&cgroups::Cgroup>,
    console: Option<&Console>,
) -> anyhow::Error {
    let entered = (|| -> Result<CString> {
        if let Some(cgroup) = cgroup {
            cgroup.join()?;
        }
        enter(spec, console)
    })();
    match entered {
        Ok(program) => become_command(&program, spec, None),
        Err(error) => error,
    }
}

/// Everything up to the exec; returns the program to run.
fn prepare(init: &Init, start: Start) -> Result<CString> {
    let spec = init.spec;
    if !spec.new_namespace("pid") {
        // Until its exec, PID 1 holds descriptors of the host (the gate's, its cgroup's).
        // In a PID namespace it joins (a pod's), others see it: not dumpable, so that they
        // may not ptrace it or open them through /proc/PID/fd (sealed.rs; the exec makes
        // it dumpable again). Alone in its own, it stays dumpable: `bento cp` reaches a
        // created container's files through its /proc/PID/root.
        crate::sealed::not_dumpable()?;
    }
    if init.die_with_parent {
        pid::die_with_parent()?;
    }
    if let Some(cgroup) = init.cgroup {
        // Before anything runs: every process the command starts is counted, too.
        cgroup.join()?;
    }
    if spec.new_namespace("user") {
        userns::become_root_inside()?;
    }
    if spec.new_namespace("cgroup") {
        // cgroup_namespaces(7): the namespace's root is the cgroup we are in now, our own:
        // inside, /proc/self/cgroup says `/`, and the cgroups above and beside are out of
        // sight.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .context("unshare(CLONE_NEWCGROUP) failed")?;
    }
    let gate = match mounts::mount_namespace(spec)? {
        // Steps 04-09: a mount table of its own, the root, config.json's mounts, /dev,
        // pivot_root, then what must be hidden or read-only.
        MountNamespace::New => {
            mounts::isolate_mounts()?;
            let root = match init.layers {
                Some(layers) => overlay::mount_overlay(layers)?.to_path_buf(),
                None => rootfs::bind_root(&spec.rootfs)?,
            };
            // config.json's mounts, in order: /proc (step 05), /dev and /dev/pts (step 09)…
            rootfs::mount_all(&root, &spec.mounts)?;
            dev::create_devices(&root, spec)?;
            let null = rootfs::host_dev_null()?;
            let gate = hold_the_gate(&start)?;
            mounts::pivot_into(&root)?;
            rootfs::finish(spec, &null)?;
            gate
        }
        // Another container's (a pod's): its files, as they are there.
        MountNamespace::Joined(path) => {
            let gate = hold_the_gate(&start)?;
            crate::join::join_path(&path, "mnt", false)?;
            gate
        }
        // The runtime's own: no mounts (they would be the host's), only a root.
        MountNamespace::Shared => {
            let gate = hold_the_gate(&start)?;
            mounts::chroot_into(&spec.rootfs)?;
            gate
        }
    };
    // Checked now, not at `start`: a command that is not there is create's error (127).
    let program = enter(spec, init.console)?;
    if let (
        Start::AtTheGate {
            ready,
            errors_to_log,
            ..
        },
        Some(gate),
    ) = (start, gate)
    {
        report_ready(ready, errors_to_log)?;
        gate.wait()?;
    }
    Ok(program)
}

/// PID 1 waiting for `bento start` (not for `bento run`) holds the gate's FIFO before its
/// root changes (gate.rs).
fn hold_the_gate(start: &Start) -> Result<Option<Gate>> {
    match start {
        Start::AtTheGate { fifo, .. } => Ok(Some(Gate::hold(fifo)?)),
        Start::Now => Ok(None),
    }
}

/// The ending both inits share, first half: the program to run (checked to be there),
/// the working directory, and a session of its own: with the terminal of its own (from
/// the container's devpts, now that /dev/ptmx is the container's), or with none, so that
/// the caller's terminal is not its controlling terminal (caller.rs).
fn enter(spec: &Spec, console: Option<&Console>) -> Result<CString> {
    let program = find_program(spec)?;
    enter_working_directory(&spec.cwd)?;
    match console {
        Some(console) => terminal::attach_to_terminal(console)?,
        None => caller::leave_callers_session()?,
    }
    Ok(program)
}

/// The working directory, found *beneath* the container's root (openat2(2)
/// RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS), then entered by its descriptor (fchdir(2)).
/// Bento still holds descriptors of the host here (the caller's, a pid file's directory,
/// a cgroup's): a plain chdir(2) to `/proc/self/fd/N`, or to a symlink in the image that
/// leads there, would start the command in the host's tree, where `..` climbs to the
/// host's / (CVE-2024-21626, runc's "leaky vessels").
fn enter_working_directory(cwd: &str) -> Result<()> {
    let entered = rootfs::open_dir(Path::new("/")).and_then(|root| {
        let dir = rootfs::beneath(&root, cwd)?;
        nix::unistd::fchdir(&dir)?;
        Ok(())
    });
    entered
        .with_context(|| format!("cannot enter the working directory {cwd}"))
        .hint("the directory must exist in the container, and not lead out of it through /proc (-w DIR, or process.cwd)")
}

/// The ending both inits share, second half: a keyring of its own; every descriptor
/// closed but stdin, stdout, stderr, those the engine passes and `keep` (PID 1's pipe to
/// its supervisor); last, once nothing more needs root's powers, the user, limits,
/// capabilities and the seccomp filter; then execve(2). Returns only on failure.
fn become_command(program: &CString, spec: &Spec, keep: Option<BorrowedFd>) -> anyhow::Error {
    let prepared = caller::fresh_keyring()
        .and_then(|()| caller::close_callers_descriptors(spec.preserve_fds, keep))
        .and_then(|()| privileges::apply(spec));
    if let Err(error) = prepared {
        return error;
    }
    exec_command(program, spec)
}

/// Tells the supervisor that PID 1 is prepared. From now on errors go to the log (our
/// stdout), not to the terminal of `bento create`, which is about to return.
fn report_ready(ready: &std::fs::File, errors_to_log: bool) -> Result<()> {
    if errors_to_log {
        nix::unistd::dup2_stderr(std::io::stdout()).context("cannot send stderr to the log")?;
    }
    message::send(ready, Message::Ready).context("cannot tell the supervisor")
}

/// The program that execve(2) will run: `args[0]` itself when it holds a `/`, otherwise
/// the first executable file of that name in the container's PATH, as execvp(3) would
/// search it. 127 when there is none, 126 when there is one that cannot be executed.
fn find_program(spec: &Spec) -> Result<CString> {
    let name = spec
        .args
        .first()
        .filter(|name| !name.is_empty())
        .context("the command is empty")
        .hint("give a command, or use an image that has one")?;
    let candidates: Vec<PathBuf> = if name.contains('/') {
        vec![PathBuf::from(name)]
    } else {
        get_env(&spec.env, "PATH")
            .unwrap_or("/usr/local/bin:/usr/bin:/bin")
            .split(':')
            .map(|dir| Path::new(dir).join(name))
            .collect()
    };
    let mut refused = None;
    for candidate in candidates {
        if !candidate.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        match access(&candidate, AccessFlags::X_OK) {
            Ok(()) => {
                return CString::new(candidate.into_os_string().into_encoded_bytes())
                    .context("the command contains a NUL byte");
            }
            Err(errno) => refused = refused.or(Some(errno)),
        }
    }
    let name = CString::new(name.as_str()).context("the command contains a NUL byte")?;
    Err(plumbing::exec_error(
        &name,
        refused.unwrap_or(Errno::ENOENT),
    ))
}

/// execve(2): the command takes over PID 1, with the container's arguments and
/// environment. Returns only on failure, with the error to report.
fn exec_command(program: &CString, spec: &Spec) -> anyhow::Error {
    let strings = |list: &[String]| -> Result<Vec<CString>> {
        list.iter()
            .map(|s| CString::new(s.as_str()).context("an argument contains a NUL byte"))
            .collect()
    };
    let (args, env) = match (strings(&spec.args), strings(&spec.env)) {
        (Ok(args), Ok(env)) => (args, env),
        (Err(error), _) | (_, Err(error)) => return error,
    };
    let Err(errno) = execve(program, &args, &env);
    plumbing::exec_error(&args[0], errno)
}

//! A real try, rather than a reading of settings: in a child process, do what steps 02 and
//! 05 do — create a user namespace, map ids, set a hostname in a UTS namespace, create mount
//! and PID namespaces, and mount a fresh procfs as PID 1 — and report the first call the
//! kernel (or a container's seccomp filter) refuses.

use std::fmt;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl::set_dumpable;
use nix::sys::wait::waitpid;
use nix::unistd::{
    ForkResult, Gid, Uid, fork, getgid, getuid, pipe, setgid, setgroups, sethostname, setuid,
};

/// The unprivileged uid the probe runs as when the doctor runs as root: root would succeed
/// where an ordinary user does not.
const NOBODY: u32 = 65534;

/// The stages of the probe, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    UserNamespace,
    IdMaps,
    /// A container's seccomp profile may allow the user namespace and still refuse
    /// sethostname(2) to a process without CAP_SYS_ADMIN in the container (podman's does).
    Hostname,
    MountAndPidNamespaces,
    ProcMount,
}

impl Stage {
    /// The call that failed, as the steps name it.
    pub fn call(&self) -> &'static str {
        match self {
            Stage::UserNamespace => "unshare(CLONE_NEWUSER)",
            Stage::IdMaps => "writing /proc/self/uid_map and gid_map",
            Stage::Hostname => "sethostname in a new UTS namespace",
            Stage::MountAndPidNamespaces => "unshare(CLONE_NEWNS | CLONE_NEWPID)",
            Stage::ProcMount => "mount(\"proc\", \"/proc\")",
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Stage::UserNamespace => "userns",
            Stage::IdMaps => "maps",
            Stage::Hostname => "hostname",
            Stage::MountAndPidNamespaces => "namespaces",
            Stage::ProcMount => "proc",
        }
    }

    const ALL: [Stage; 5] = [
        Stage::UserNamespace,
        Stage::IdMaps,
        Stage::Hostname,
        Stage::MountAndPidNamespaces,
        Stage::ProcMount,
    ];
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The uid it ran as.
    pub uid: u32,
    /// `Ok`, or the first stage that failed and why.
    pub outcome: Result<(), (Stage, Errno)>,
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome {
            Ok(()) => write!(f, "ok"),
            Err((stage, errno)) => write!(f, "{}:{errno:?}", stage.name()),
        }
    }
}

impl Probe {
    /// Parses `ok` or `STAGE:ERRNO` (e.g. `userns:EPERM`), the form `--assume-probe` takes.
    pub fn parse(text: &str, uid: u32) -> Result<Probe, String> {
        if text == "ok" {
            return Ok(Probe {
                uid,
                outcome: Ok(()),
            });
        }
        let (stage, errno) = text
            .split_once(':')
            .ok_or_else(|| format!("expected ok or STAGE:ERRNO, got {text:?}"))?;
        let stage = Stage::ALL
            .into_iter()
            .find(|s| s.name() == stage)
            .ok_or_else(|| {
                format!("unknown stage {stage:?}: userns, maps, hostname, namespaces or proc")
            })?;
        let errno = [
            Errno::EPERM,
            Errno::EACCES,
            Errno::EINVAL,
            Errno::ENOSPC,
            Errno::ENOSYS,
            Errno::EUSERS,
        ]
        .into_iter()
        .find(|e| format!("{e:?}") == errno)
        .ok_or_else(|| format!("unknown errno {errno:?}"))?;
        Ok(Probe {
            uid,
            outcome: Err((stage, errno)),
        })
    }

    /// Runs the probe in child processes and reports what happened.
    pub fn run() -> Probe {
        let uid = if getuid().is_root() {
            NOBODY
        } else {
            getuid().as_raw()
        };
        let Ok((reader, writer)) = pipe() else {
            return Probe {
                uid,
                outcome: Err((Stage::UserNamespace, Errno::EMFILE)),
            };
        };
        // SAFETY: the doctor is single-threaded.
        match unsafe { fork() } {
            Err(errno) => Probe {
                uid,
                outcome: Err((Stage::UserNamespace, errno)),
            },
            Ok(ForkResult::Child) => {
                drop(reader);
                let result = try_container();
                report(writer, result)
            }
            Ok(ForkResult::Parent { child }) => {
                drop(writer);
                let mut text = String::new();
                let _ = std::fs::File::from(reader).read_to_string(&mut text);
                let _ = waitpid(child, None);
                let outcome = Probe::parse(text.trim(), uid)
                    .map(|probe| probe.outcome)
                    .unwrap_or(Err((Stage::ProcMount, Errno::EIO)));
                Probe { uid, outcome }
            }
        }
    }
}

/// In the child: writes `ok` or `STAGE:ERRNO` to the pipe and exits.
fn report(writer: OwnedFd, result: Result<(), (Stage, Errno)>) -> ! {
    let probe = Probe {
        uid: 0,
        outcome: result,
    };
    let _ = std::fs::File::from(writer).write_all(probe.to_string().as_bytes());
    // SAFETY: _exit ends this forked child without running the parent's exit handlers.
    unsafe { nix::libc::_exit(0) }
}

/// What steps 02-05 need from the kernel, step by step, as an unprivileged user.
fn try_container() -> Result<(), (Stage, Errno)> {
    if getuid().is_root() {
        let nobody = Gid::from_raw(NOBODY);
        setgroups(&[])
            .and_then(|_| setgid(nobody))
            .and_then(|_| setuid(Uid::from_raw(NOBODY)))
            // Changing uid made us non-dumpable, which makes /proc/self/* root's:
            // become dumpable again so that we may write our own uid_map (proc(5)).
            .and_then(|_| set_dumpable(true))
            .map_err(|errno| (Stage::UserNamespace, errno))?;
    }
    let (uid, gid) = (getuid(), getgid());
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|errno| (Stage::UserNamespace, errno))?;
    let write = |file: &str, text: String| {
        std::fs::write(file, text).map_err(|error| {
            let errno = Errno::from_raw(error.raw_os_error().unwrap_or(0));
            (Stage::IdMaps, errno)
        })
    };
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    unshare(CloneFlags::CLONE_NEWUTS)
        .and_then(|_| sethostname("bento-doctor"))
        .map_err(|errno| (Stage::Hostname, errno))?;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)
        .map_err(|errno| (Stage::MountAndPidNamespaces, errno))?;
    // SAFETY: single-threaded, as above.
    match unsafe { fork() } {
        Err(errno) => Err((Stage::MountAndPidNamespaces, errno)),
        Ok(ForkResult::Child) => {
            // PID 1 of the new namespace: make mounts private, then mount a procfs.
            let mounted = mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .and_then(|_| {
                mount(
                    Some("proc"),
                    "/proc",
                    Some("proc"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    None::<&str>,
                )
            });
            // The result goes through the pipe the grandparent reads (inherited).
            match mounted {
                Ok(()) => Ok(()),
                Err(errno) => Err((Stage::ProcMount, errno)),
            }
        }
        Ok(ForkResult::Parent { child }) => {
            // Let PID 1 report; this process writes nothing itself.
            let _ = waitpid(child, None);
            // SAFETY: as in report().
            unsafe { nix::libc::_exit(0) }
        }
    }
}

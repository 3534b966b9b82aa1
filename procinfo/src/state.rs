//! What a process can see of the system, captured before isolation and again just before
//! the container's command runs.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::readlinkat;
use nix::unistd::{getcwd, gethostname, getpid, getuid};

use crate::checklist::{self, Facts};

/// The process's view of the system at one moment.
struct Snapshot {
    uid: u32,
    hostname: OsString,
    pid: i32,
    cwd: Result<PathBuf, nix::Error>,
    /// The `user`, `uts` and `pid` links of `/proc/self/ns`, e.g. `uts:[4026531838]`:
    /// two processes are in the same namespace exactly when these links are equal
    /// (namespaces(7)).
    user_ns: OsString,
    uts_ns: OsString,
    pid_ns: OsString,
    /// `stat("/")`: device and inode of the root directory this process sees.
    root: (u64, u64),
}

impl Snapshot {
    fn capture(host_proc: &OwnedFd) -> Result<Self> {
        let ns = |name: &str| {
            readlinkat(host_proc.as_fd(), format!("self/ns/{name}").as_str())
                .with_context(|| format!("cannot read /proc/self/ns/{name}"))
        };
        let root = std::fs::metadata("/").context("cannot stat /")?;
        Ok(Snapshot {
            uid: getuid().as_raw(),
            hostname: gethostname().context("gethostname failed")?,
            pid: getpid().as_raw(),
            cwd: getcwd(),
            user_ns: ns("user")?,
            uts_ns: ns("uts")?,
            pid_ns: ns("pid")?,
            root: (root.dev(), root.ino()),
        })
    }

    /// The talk's format: `uid [0]` then the rest indented.
    fn render(&self, label: &str) -> String {
        let cwd = match &self.cwd {
            Ok(cwd) => format!("{cwd:?}"),
            Err(errno) => format!("unreachable: {errno}"),
        };
        format!(
            "[{label}]\nuid [{}]\n    hostname [{:?}]\n    pid [{}]\n    cwd [{cwd}]\n",
            self.uid, self.hostname, self.pid
        )
    }
}

/// The host as the step found it, before any isolation.
pub struct Host {
    /// The host's `/proc`, opened before isolation and kept (close-on-exec, so the container's
    /// command never inherits it). Through it we can still read our namespace links and
    /// uid_map after `chroot` has hidden the host's `/proc` from us.
    proc: OwnedFd,
    before: Snapshot,
}

/// Captures the state of this process before any isolation and prints it as
/// `[Before Isolation]`.
pub fn before_isolation() -> Result<Host> {
    let proc = File::open("/proc")
        .context("cannot open /proc: the steps read /proc/self to show their state")?;
    let proc = OwnedFd::from(proc);
    let before = Snapshot::capture(&proc)?;
    // One write(2) for the whole block: stderr is unbuffered.
    eprint!("{}", before.render("Before Isolation"));
    Ok(Host { proc, before })
}

impl Host {
    /// Prints the state just before the container's command runs, as `[After Isolation]`,
    /// followed by the container checklist comparing it with the host.
    pub fn after_isolation(&self) -> Result<()> {
        let now = Snapshot::capture(&self.proc)?;
        let facts = Facts {
            uid: now.uid,
            uid_map: self.read("self/uid_map")?,
            new_user_ns: now.user_ns != self.before.user_ns,
            new_uts_ns: now.uts_ns != self.before.uts_ns,
            hostname: now.hostname.to_string_lossy().into_owned(),
            pid: now.pid,
            new_pid_ns: now.pid_ns != self.before.pid_ns,
            new_root: now.root != self.before.root,
            // What `/proc/self` means *inside* our current root: the procfs a program like
            // `ps` would read.
            proc_self: std::fs::read_link("/proc/self")
                .ok()
                .and_then(|target| target.to_str()?.parse().ok()),
        };
        let checks = checklist::render(&checklist::evaluate(&facts));
        eprint!("{}{checks}", now.render("After Isolation"));
        Ok(())
    }

    /// Reads a file of the host's `/proc` (relative to it).
    fn read(&self, path: &str) -> Result<String> {
        let fd = nix::fcntl::openat(
            self.proc.as_fd(),
            Path::new(path),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("cannot open /proc/{path}"))?;
        std::io::read_to_string(File::from(fd)).with_context(|| format!("cannot read /proc/{path}"))
    }
}

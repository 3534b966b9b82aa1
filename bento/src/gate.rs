//! The create/start split: PID 1 exists, fully prepared, and waits at a gate until
//! `bento start` opens it.
//!
//! Why split at all: a supervisor (podman, containerd, Kubernetes) wants the container's
//! PID 1 to *exist* before the command runs: to put it in a cgroup, hand its pid to a
//! network plugin, or attach to its output, and only then let it go.
//!
//! The gate is a FIFO, `exec.fifo`, as in runc. PID 1 opens it for writing, and open(2) of
//! a FIFO for writing blocks until someone opens it for reading (fifo(7)): that is the
//! wait, and costs nothing. `bento start` opens it for reading, which releases PID 1; PID 1
//! writes one byte to say it got through, and execs the command.
//!
//! One twist: PID 1 waits *after* pivot_root, when the FIFO's path on the host is out of
//! reach. So before pivoting it opens the FIFO with O_PATH (which does not block and
//! grants nothing but a reference), and after pivoting reopens that reference through
//! `/proc/self/fd/N` for writing (proc(5): these links can be opened, with the file's own
//! permission checks), looked up in a descriptor of /proc/self/fd opened before too. runc
//! does the same.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use nix::unistd::mkfifo;

use crate::message::{self, Message};
use crate::process::Process;

/// Makes the gate: a FIFO only its owner can open.
pub fn make(path: &Path) -> Result<()> {
    mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).context("cannot make the exec FIFO (mkfifo)")
}

/// PID 1's side, taken before its root changes: an O_PATH reference to the FIFO, and our
/// /proc/self/fd directory to reopen it through (a root without /proc, chroot(2)ed into a
/// container that has no mount namespace of its own, has none to look in).
pub struct Gate {
    fifo: OwnedFd,
    fds: OwnedFd,
}

impl Gate {
    pub fn hold(path: &Path) -> Result<Gate> {
        let fifo = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .context("cannot open the exec FIFO")?;
        let fds = open(
            "/proc/self/fd",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context("cannot open /proc/self/fd")?;
        Ok(Gate { fifo, fds })
    }

    /// Waits until `bento start`, then says so with one byte.
    pub fn wait(self) -> Result<()> {
        let fifo = nix::fcntl::openat(
            &self.fds,
            self.fifo.as_raw_fd().to_string().as_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context("cannot open the exec FIFO for writing")?;
        message::send(&fifo, Message::Started).context("cannot write to the exec FIFO")
    }
}

/// `bento start`'s side: opens the FIFO for reading, which releases PID 1, and waits for
/// its byte. O_NONBLOCK, so that a PID 1 that died meanwhile cannot make us wait forever.
pub fn open_gate(path: &Path, init: &Process) -> Result<()> {
    let fifo = open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("cannot open the exec FIFO")?;
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0);
        if ready > 0 && message::receive(&fifo) == Some(Message::Started) {
            return Ok(());
        }
        if !init.is_alive() {
            bail!("the container's PID 1 is gone: it was never started");
        }
        if ready > 0 {
            // Readable without a byte: PID 1 closed the FIFO; give it a moment.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

//! Telling a process from the one that had its pid before.
//!
//! A pid is only a number, reused once its process is gone: a container killed last week
//! (or before a reboot) may have "pid 4242" in its state while 4242 is now someone's
//! editor. bento never signals or joins a pid without checking that it is still the same
//! process: same boot, same start time (field 22 of proc(5)'s /proc/PID/stat, in clock
//! ticks since boot). Signals go through a pidfd (pidfd_open(2)), which names one process
//! and never another, even if its pid is reused while we hold it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

/// One process, for as long as it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: i32,
    /// Its start time, in clock ticks after boot.
    pub start: u64,
}

/// The start time and state letter of `pid`, if it exists.
fn stat(pid: i32) -> Option<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so start after the last
    // ')'. Fields are then numbered from 3 (the state) on; the start time is field 22.
    let fields: Vec<&str> = text.get(text.rfind(')')? + 2..)?.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    Some((fields.get(19)?.parse().ok()?, state))
}

/// This boot's id (random(4), /proc/sys/kernel/random/boot_id): start times only compare
/// within one boot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_string())
        .unwrap_or_default()
}

impl Process {
    /// The process `pid` is now.
    pub fn of(pid: i32) -> Result<Process> {
        let (start, _) = stat(pid).with_context(|| format!("process {pid} is gone"))?;
        Ok(Process { pid, start })
    }

    /// This process.
    pub fn me() -> Process {
        Process::of(std::process::id() as i32)
            .unwrap_or_else(|_| unreachable!("a process can always read its own /proc entry"))
    }

    /// Is it still running? A zombie (exited, not yet waited for) is not.
    pub fn is_alive(&self) -> bool {
        matches!(stat(self.pid), Some((start, state)) if start == self.start && state != 'Z')
    }

    /// A pidfd for it, checked to be this process and not a later one with its pid.
    fn pidfd(&self) -> Result<OwnedFd> {
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("pidfd_open({}) failed", self.pid));
        }
        // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // Opened first, checked second: if the start time still matches now, the pidfd
        // names our process (a pidfd never follows a pid to a new process).
        anyhow::ensure!(self.is_alive(), "process {} is gone", self.pid);
        Ok(pidfd)
    }

    /// Sends `signal` with pidfd_send_signal(2).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pidfd = self.pidfd()?;
        // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                signal as i32,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot send {signal} to {}", self.pid));
        }
        Ok(())
    }

    /// Waits until it has exited, at most `timeout`; true if it has. A pidfd becomes
    /// readable when its process exits (pidfd_open(2)), so poll(2) sleeps until then.
    pub fn wait_gone(&self, timeout: Duration) -> bool {
        let Ok(pidfd) = self.pidfd() else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let millis = u16::try_from(left.as_millis().min(10_000)).unwrap_or(10_000);
            let mut fds = [PollFd::new(
                std::os::fd::AsFd::as_fd(&pidfd),
                PollFlags::POLLIN,
            )];
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(n) if n > 0 => return true,
                // Interrupted by a signal, or the timeout: look again.
                _ if !self.is_alive() => return true,
                _ if left.is_zero() => return false,
                _ => {}
            }
        }
    }
}

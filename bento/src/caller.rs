//! Nothing of the caller reaches a container: not its terminal, not its keyring, not its
//! open files. Whoever runs `bento` (a user at a shell, root, an engine) hands it their
//! session, their session keyring and their descriptors, as every process inherits them
//! from its parent; a process that becomes a container would pass them on, and a hostile
//! image would use them. Both inits call these last, just before the exec (init.rs).
//!
//! - **The terminal** (TIOCSTI). A process may push characters into the input of its
//!   *controlling* terminal (ioctl_tty(2) TIOCSTI), and the caller's shell reads them as if
//!   typed: `rm -rf ~` on the next prompt. Without `-t` the container's stdin is the
//!   caller's terminal, so it gets a session of its own (setsid(2)), in which that terminal
//!   is no one's controlling terminal: pushing into it then needs CAP_SYS_ADMIN in the
//!   host's user namespace, which no container has. (With `-t` it has a terminal of its
//!   own, and the caller's is never its stdin.)
//! - **The keyring** (keyrings(7)). Keys (Kerberos tickets, disk passphrases, tokens)
//!   live in the caller's session keyring, which children inherit. KEYCTL_JOIN_SESSION_KEYRING
//!   with no name gives the process a new, empty one (keyctl(2)).
//! - **The descriptors** (CVE-2024-21626). A descriptor the caller left open (`7</`, a
//!   leaked directory) leads outside the container's root: through /proc/self/fd/7 a
//!   process inside reads the host's files. close_range(2) closes every descriptor past 2
//!   (past the ones an engine asked to pass, `--preserve-fds`) before the exec; the
//!   working directory is found beneath the root, never through /proc/self/fd (init.rs).

use std::os::fd::{AsRawFd, BorrowedFd};

use anyhow::{Context, Result};
use nix::errno::Errno;

/// setsid(2): a session of its own, with no controlling terminal.
pub fn leave_callers_session() -> Result<()> {
    nix::unistd::setsid().context("setsid failed")?;
    Ok(())
}

/// keyctl(2) KEYCTL_JOIN_SESSION_KEYRING, no name: a new, empty session keyring. A kernel
/// without keyrings (ENOSYS) has none to leak.
pub fn fresh_keyring() -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl(2) with an operation and a null name.
    let joined = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    match Errno::result(joined) {
        Ok(_) | Err(Errno::ENOSYS) => Ok(()),
        Err(errno) => Err(errno).context("cannot make a session keyring of its own (keyctl)"),
    }
}

/// close_range(2): every descriptor from 3 + `passed` on is closed, now, but `keep`
/// (stdin, stdout, stderr and the `passed` an engine hands on stay). Marking them
/// close-on-exec is not enough: execve(2) opens the program, its `#!` interpreter and
/// its ELF interpreter *before* it closes those, and each path may lead through
/// /proc/self/fd/N.
pub fn close_callers_descriptors(passed: u32, keep: Option<BorrowedFd>) -> Result<()> {
    let first = 3u32.saturating_add(passed);
    let keep = keep
        .and_then(|fd| u32::try_from(fd.as_raw_fd()).ok())
        .filter(|&fd| fd >= first);
    let ranges = match keep {
        Some(fd) if fd == first => vec![(fd + 1, u32::MAX)],
        Some(fd) => vec![(first, fd - 1), (fd.saturating_add(1), u32::MAX)],
        None => vec![(first, u32::MAX)],
    };
    for (from, to) in ranges {
        // SAFETY: close_range(2) with two numbers. The descriptors it closes are bento's
        // own or the caller's; none is used again in this process, which execs next or
        // exits with an error.
        let done = unsafe { libc::close_range(from, to, 0) };
        Errno::result(done).context("cannot close the caller's descriptors (close_range)")?;
    }
    Ok(())
}

/// Descriptors 3 to 3 + `passed` - 1 (`--preserve-fds`) must all be open when bento starts,
/// before it opens anything (main.rs checks first thing, even before `--log`): a hole would take the next descriptor bento opens itself (a pid
/// file's directory, on the host), which [`close_callers_descriptors`] would then pass into
/// the container. fcntl(2) F_GETFD on each.
pub fn check_passed_descriptors(passed: u32) -> Result<()> {
    let hint = "--preserve-fds N passes descriptors 3 to 3 + N - 1: each must be open";
    if passed > 65536 {
        let error = format!("--preserve-fds {passed} is more than 65536");
        return Err(plumbing::hinted(error, hint));
    }
    for fd in 3..3 + passed {
        // SAFETY: fcntl(2) F_GETFD only reads the descriptor's flags.
        let flags = unsafe { libc::fcntl(fd as libc::c_int, libc::F_GETFD) };
        if flags < 0 {
            return Err(plumbing::hinted(
                format!("--preserve-fds {passed}: descriptor {fd} is not open"),
                hint,
            ));
        }
    }
    Ok(())
}

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
//!   process inside reads the host's files. close_range(2) CLOSE_RANGE_CLOEXEC marks every
//!   descriptor past 2 (past the ones an engine asked to pass, `--preserve-fds`) to close
//!   at the exec.

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

/// close_range(2) CLOSE_RANGE_CLOEXEC: every descriptor from 3 + `passed` on closes at
/// the exec (stdin, stdout, stderr and the `passed` an engine hands on stay).
pub fn close_callers_descriptors(passed: u32) -> Result<()> {
    let first = 3u32.saturating_add(passed);
    // SAFETY: close_range(2) with two numbers and a flag.
    let done = unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as _) };
    Errno::result(done).context("cannot close the caller's descriptors (close_range)")?;
    Ok(())
}

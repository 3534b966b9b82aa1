//! Bento's own binary is never reachable from inside a container (CVE-2019-5736).
//!
//! Every process that becomes part of a container starts as a copy of bento: PID 1 until
//! its exec, and `bento exec`'s process, which joins a running container's namespaces
//! *before* its exec. Meanwhile it is visible in there, and its /proc/PID/exe is bento's
//! binary on the host. A hostile process inside can hold that file open, wait for bento to
//! exit, reopen it for writing through /proc/self/fd and put its own code there: root's
//! next `bento` (or the engine's next call) runs it, on the host, as root. Two defences,
//! as runc has them:
//!
//! - bento runs from a **sealed copy** of itself whenever one of its processes becomes
//!   part of a container: `exec`, `create` and `run`. It copies its binary into a memfd
//!   (memfd_create(2)), seals it against every change (fcntl(2) F_ADD_SEALS: no write, no
//!   shrink, no grow, no more seals) and re-executes itself from it (fexecve(3)).
//!   /proc/PID/exe then leads to that copy, which nobody can change, and never to the file
//!   on disk. PID 1 in a new PID namespace needs it too, though nobody sees it before its
//!   exec: the exec itself can lead back to bento. A command that is a script starting
//!   with `#!/proc/self/exe` makes the kernel run *bento's* binary as the container's
//!   process, and the image's ld.so (the ELF interpreter is looked up in the container)
//!   then runs the attacker's code with /proc/self/exe open on bento. The copy costs about
//!   a millisecond per megabyte of binary;
//! - the process that joins a running container is **not dumpable** (prctl(2)
//!   PR_SET_DUMPABLE 0): its /proc/PID entries belong to root, and the container's
//!   processes may not ptrace it or open its /proc/PID/exe at all (ptrace(2), "Ptrace
//!   access mode checking"). Its exec of the container's command makes it dumpable again.
//!
//! runc 1.1 copies itself for every container; runc 1.2 avoids the copy with a read-only
//! overlayfs over its binary. `just bench` times `bento run` and `bento exec`, which pay for
//! the copy.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};
use nix::fcntl::{FcntlArg, OFlag, SealFlag, fcntl, open};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::stat::Mode;

/// The seals that make the copy unchangeable.
fn seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

/// Are we running from a sealed copy already? A memfd answers F_GET_SEALS with its seals;
/// a file on disk does not answer (EINVAL).
fn running_sealed() -> bool {
    let Ok(exe) = open(
        "/proc/self/exe",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    fcntl(&exe, FcntlArg::F_GET_SEALS)
        .is_ok_and(|sealed| SealFlag::from_bits_truncate(sealed).contains(seals()))
}

/// Re-executes bento from a sealed copy of itself, with the same arguments and
/// environment; returns at once when it already runs from one. Returns only then, or
/// with the error that stopped it.
pub fn run_sealed() -> Result<()> {
    if running_sealed() {
        return Ok(());
    }
    let copy = sealed_copy()?;
    let args: Vec<CString> = std::env::args_os()
        .map(|arg| CString::new(arg.into_encoded_bytes()))
        .collect::<Result<_, _>>()
        .context("an argument holds a NUL byte")?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(key, value)| {
            let mut pair = key.into_encoded_bytes();
            pair.push(b'=');
            pair.extend(value.into_encoded_bytes());
            CString::new(pair)
        })
        .collect::<Result<_, _>>()
        .context("the environment holds a NUL byte")?;
    // fexecve(3): exec the file a descriptor holds; the copy is close-on-exec, so the
    // new bento does not keep it open (its /proc/self/exe still leads to it).
    let Err(errno) = nix::unistd::fexecve(copy.as_fd(), &args, &env);
    Err(errno).context("cannot run bento's sealed copy (fexecve)")
}

/// A memfd holding bento's binary, sealed.
fn sealed_copy() -> Result<OwnedFd> {
    let exe = open(
        "/proc/self/exe",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("cannot open bento's own binary")?;
    let size = nix::sys::stat::fstat(&exe)
        .context("cannot stat bento's binary")?
        .st_size;
    let copy = memfd_create(
        c"bento",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .context("cannot make a memfd for bento's sealed copy (memfd_create)")?;
    // sendfile(2) copies inside the kernel, without a trip through our memory.
    let mut left = usize::try_from(size).unwrap_or(0);
    while left > 0 {
        match nix::sys::sendfile::sendfile(copy.as_fd(), exe.as_fd(), None, left) {
            Ok(0) => break,
            Ok(sent) => left -= sent,
            Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno).context("cannot copy bento's binary (sendfile)"),
        }
    }
    fcntl(&copy, FcntlArg::F_ADD_SEALS(seals())).context("cannot seal bento's copy")?;
    Ok(copy)
}

/// prctl(2) PR_SET_DUMPABLE 0: the process that joins a running container cannot be
/// ptraced or have its /proc/PID/exe opened by the container's processes.
pub fn not_dumpable() -> Result<()> {
    nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE, 0) failed")
}

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
//! - bento runs from **a binary nobody can change** whenever one of its processes becomes
//!   part of a container: `exec`, `create` and `run`. As root, that is a read-only view of
//!   its own file: a bind mount of it attached nowhere and made read-only (open_tree(2),
//!   mount_setattr(2)), from which it re-executes itself (fexecve(3)): about 0.1 ms.
//!   Rootless, an installed bento (root's file, which the user may not write) is safe as
//!   it is: the container can do no more on the host than its user. A bento of the user's
//!   own (`just bento`'s build) cannot be mounted over: it copies its binary into a memfd
//!   (memfd_create(2)), seals it against every change (fcntl(2) F_ADD_SEALS: no write, no
//!   shrink, no grow, no more seals) and re-executes itself from that (5 ms for 10 MB).
//!   /proc/PID/exe then leads to the view or the copy, never to a file the container could
//!   write.
//!   PID 1 in a new PID namespace needs it too, though nobody sees it before its exec: the
//!   exec itself can lead back to bento. A command that is a script starting with
//!   `#!/proc/self/exe` makes the kernel run *bento's* binary as the container's process,
//!   and the image's ld.so (the ELF interpreter is looked up in the container) then runs
//!   the attacker's code with /proc/self/exe open on bento;
//! - the process that joins a running container is **not dumpable** (prctl(2)
//!   PR_SET_DUMPABLE 0): its /proc/PID entries belong to root, and the container's
//!   processes may not ptrace it or open its /proc/PID/exe at all (ptrace(2), "Ptrace
//!   access mode checking"). Its exec of the container's command makes it dumpable again.
//!
//! runc 1.1 copies itself for every container; runc 1.2 avoids the copy with a read-only
//! overlayfs over its binary, and falls back to the copy rootless, as bento does.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SealFlag, fcntl, open};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::stat::Mode;

/// The seals that make the copy unchangeable.
fn seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

/// Is the binary we run one that no container can change? A sealed memfd answers
/// F_GET_SEALS with its seals (a file on disk does not answer: EINVAL); a file on a
/// read-only mount (the view below, or an installation on a read-only filesystem) says so
/// in its mount's flags (statvfs(3) ST_RDONLY). And rootless, a file of root's that only
/// root may write (an installed bento, `/usr/local/bin/bento`): a container started by an
/// ordinary user runs, on the host, as that user at most (its user namespace maps no more),
/// and may not write it. Root may write anything, so as root only the first two count.
fn unchangeable_from_inside() -> bool {
    let Ok(exe) = open(
        "/proc/self/exe",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let sealed = fcntl(&exe, FcntlArg::F_GET_SEALS)
        .is_ok_and(|sealed| SealFlag::from_bits_truncate(sealed).contains(seals()));
    let read_only = nix::sys::statvfs::fstatvfs(&exe)
        .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    let roots_own = !nix::unistd::geteuid().is_root()
        && nix::sys::stat::fstat(&exe)
            .is_ok_and(|stat| stat.st_uid == 0 && stat.st_mode & 0o022 == 0);
    sealed || read_only || roots_own
}

/// Re-executes bento from a binary nobody can change, with the same arguments and
/// environment; returns at once when it already runs from one ([`unchangeable_from_inside`]). As root, that is a
/// read-only view of its own file ([`read_only_view`], no copy); otherwise (rootless, or
/// where the kernel lacks the new mount API) a sealed copy. Returns only then, or with the
/// error that stopped it.
pub fn run_sealed() -> Result<()> {
    if unchangeable_from_inside() {
        return Ok(());
    }
    let binary = match read_only_view() {
        Ok(view) => view,
        Err(_) => sealed_copy()?,
    };
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
    // fexecve(3): exec the file a descriptor holds; the descriptor is close-on-exec, so
    // the new bento does not keep it open (its /proc/self/exe still leads to the file).
    let Err(errno) = nix::unistd::fexecve(binary.as_fd(), &args, &env);
    Err(errno).context("cannot run bento's sealed copy (fexecve)")
}

/// Bento's own file, seen through a read-only bind mount that is attached nowhere: a
/// detached copy of the mount that holds it (open_tree(2) OPEN_TREE_CLONE: no path leads to
/// it, and the host's mount table is untouched), made read-only (mount_setattr(2)
/// MOUNT_ATTR_RDONLY). /proc/PID/exe then leads there, and opening it for writing fails
/// (EROFS), root or not. It needs CAP_SYS_ADMIN, so only root has it: about 0.1 ms, where
/// the copy costs 5 ms for 10 MB. runc 1.2 does the same with a read-only overlayfs. A
/// container holding CAP_SYS_ADMIN (a privileged one) could make the view writable again;
/// it can do anything on the host anyway.
fn read_only_view() -> Result<OwnedFd> {
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    // SAFETY: open_tree(2) with a C string; returns a new descriptor or -1.
    let view = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            flags,
        )
    };
    let view = Errno::result(view).context("cannot copy the mount of bento's binary")?;
    // SAFETY: open_tree(2) returned this descriptor, which nothing else owns.
    let view = unsafe { OwnedFd::from_raw_fd(view as RawFd) };
    // SAFETY: mount_attr is plain integers, for which zero is a valid value.
    let mut attr: libc::mount_attr = unsafe { std::mem::zeroed() };
    attr.attr_set = libc::MOUNT_ATTR_RDONLY;
    // SAFETY: mount_setattr(2) with a descriptor, an empty C string and the attr above.
    let done = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            view.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &raw mut attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(done).context("cannot make bento's view read-only")?;
    Ok(view)
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

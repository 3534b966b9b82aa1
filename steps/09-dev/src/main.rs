//! # Step 09 — dev: a /dev of its own, rootless
//!
//! Until now the container had no `/dev` at all (or the image's empty directory): `cmd
//! 2>/dev/null` failed, or wrote a regular file called `null` into the image, and `cmd &`
//! failed because a shell gives a background job `/dev/null` as its input. Every runtime
//! sets up `/dev`. A user namespace may not create device nodes, so this step does what
//! rootless runc and youki do: a tmpfs on `/dev`, the host's `null`, `zero`, `full`,
//! `random`, `urandom` and `tty` bind-mounted into it, the usual symlinks, a devpts of the
//! container's own on `/dev/pts`, and a tmpfs on `/dev/shm`. Nothing else of the host's
//! `/dev` is there.
//!
//! Run it: `just step 9 ls -l /dev`, or `just step 9 sh -c 'sleep 1 & wait; echo done'`.

use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::libc;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use nix::sys::utsname::uname;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, chdir, execvp, fork, getgid, getuid, pivot_root, sethostname};
use plumbing::Hint;

// ioctl(2) requests of netdevice(7), as nix functions (unsafe: the kernel trusts the struct).
nix::ioctl_read_bad!(get_interface_flags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(set_interface_flags, libc::SIOCSIFFLAGS, libc::ifreq);

fn main() {
    // Prints any error as one line plus a hint, and exits with the container's status.
    plumbing::run(container)
}

/// The container, one lesson per line, in the order the kernel needs them.
fn container() -> Result<i32> {
    let command = plumbing::command()?;
    let rootfs = plumbing::rootfs(&command)?;
    // The overlay's writable layer: a directory of this run on the host, which the parent
    // removes when the container is gone.
    let scratch = plumbing::Scratch::create(env!("CARGO_PKG_NAME"), &["upper", "work", "root"])?;
    let host = procinfo::before_isolation()?;

    enter_user_namespace()?;
    isolate_hostname("my-container")?;
    enter_network_namespace()?;
    bring_up_loopback()?;
    match fork_pid_1()? {
        ForkResult::Parent { child } => {
            let status = wait_for_container(child)?;
            // Every write of the container is in the upper layer: show it. Dropping the
            // scratch directory then deletes it, so the next run starts from the rootfs.
            scratch.print_changes(&rootfs);
            Ok(status)
        }
        ForkResult::Child => {
            die_with_parent()?;
            isolate_mounts()?;
            let root = mount_overlay(&rootfs, &scratch)?;
            // Before pivot_into: it explains why.
            mount_proc(&root.join("proc"))?;
            mount_dev(&root)?;
            mount_devpts(&root)?;
            pivot_into(&root)?;
            host.after_isolation()?;
            Err(exec_command(&command))
        }
    }
}

/// A /dev of our own. Programs expect /dev/null and a few more, but mknod(2) is refused in a
/// user namespace: a device node made there could open hardware the user may not touch. So,
/// as rootless runc and youki do: a fresh tmpfs on /dev, an empty file for each device, and
/// the host's device bind-mounted onto it (mount(2), MS_BIND). A bind mount grants nothing
/// new: it shows a node the user could already open. It must happen before pivot_root,
/// while the host's /dev is still there to bind from.
fn mount_dev(root: &Path) -> Result<()> {
    let dev = root.join("dev");
    // An image whose /dev is a symlink would have us mount wherever it points: refuse.
    match fs::symlink_metadata(&dev) {
        Ok(meta) if !meta.is_dir() => anyhow::bail!("the image's /dev is not a directory"),
        Ok(_) => {}
        // No /dev in the image: the mount point goes to this run's upper layer.
        Err(_) => fs::create_dir(&dev).context("cannot create /dev in the container")?,
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        flags,
        Some("mode=755,size=64k"),
    )
    .context("cannot mount a tmpfs on /dev")?;
    // The six that runc and youki give every container: the rest of the host's /dev (disks,
    // /dev/mem, /dev/kmsg) is not there at all.
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let (host, inside) = (Path::new("/dev").join(name), dev.join(name));
        fs::File::create_new(&inside).with_context(|| format!("cannot create /dev/{name}"))?;
        mount(
            Some(&host),
            &inside,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("cannot bind-mount the host's /dev/{name}"))
        .hint("`just doctor` checks that the host has these devices")?;
    }
    // The usual symlinks (symlink(7)): the process's own descriptors, and the pty multiplexer
    // of the container's devpts (mount_devpts).
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .with_context(|| format!("cannot create /dev/{link}"))?;
    }
    Ok(())
}

/// Pseudoterminals and shared memory of our own. mount(2) a new devpts instance on /dev/pts
/// (devpts.rst: "newinstance"): its ptys are numbered from 0 and invisible to the host's.
/// `ptmxmode=0666` lets anyone open its pts/ptmx; no `gid=5`, a group our user namespace does
/// not map. /dev/shm is a tmpfs for POSIX shared memory (shm_overview(7)).
fn mount_devpts(root: &Path) -> Result<()> {
    let (pts, shm) = (root.join("dev/pts"), root.join("dev/shm"));
    fs::create_dir(&pts).context("cannot create /dev/pts")?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .context("cannot mount a devpts on /dev/pts")
    .hint("the kernel needs devpts with multiple instances (Linux 4.7+): run `just doctor`")?;
    fs::create_dir(&shm).context("cannot create /dev/shm")?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=64m"),
    )
    .context("cannot mount a tmpfs on /dev/shm")?;
    Ok(())
}

/// A network stack of our own. unshare(2) CLONE_NEWNET: own interfaces, routes and ports
/// (network_namespaces(7)). A new one has a single interface, the loopback `lo`, and it is
/// down: nothing, not even 127.0.0.1, works yet.
fn enter_network_namespace() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET) failed")?;
    Ok(())
}

/// Brings `lo` up. `ip link set lo up` speaks netlink (rtnetlink(7)), which means building
/// binary messages by hand; the older ioctl(2) interface of netdevice(7) needs two calls on
/// any socket: read the interface flags (SIOCGIFFLAGS), set IFF_UP (SIOCSIFFLAGS).
fn bring_up_loopback() -> Result<()> {
    let socket = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("cannot open a socket")?;
    // SAFETY: ifreq is plain old data, for which all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: the socket is open and `request` is a valid ifreq naming an interface; the
    // kernel fills in (and then reads) the flags member of its union, a c_short.
    unsafe {
        get_interface_flags(socket.as_raw_fd(), &mut request)
            .context("ioctl(SIOCGIFFLAGS) on lo failed")?;
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        set_interface_flags(socket.as_raw_fd(), &request)
            .context("ioctl(SIOCSIFFLAGS) on lo failed")?;
    }
    Ok(())
}

/// A copy-on-write root, like real images. mount(2) an overlay filesystem (the kernel's
/// overlayfs.rst): reads come from the rootfs ("lowerdir"), every write goes to "upperdir",
/// a directory of this run, through "workdir". The rootfs itself is never written to, like
/// an image. Rootless overlays need Linux 5.11+ and "userxattr" (whiteouts and opaque
/// directories are then marked with user.* attributes). Returns the merged root.
fn mount_overlay(rootfs: &Path, scratch: &plumbing::Scratch) -> Result<PathBuf> {
    let (upper, root) = (scratch.join("upper"), scratch.join("root"));
    let layers = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        rootfs.display(),
        upper.display(),
        scratch.join("work").display()
    );
    mount(
        Some("overlay"),
        &root,
        Some("overlay"),
        MsFlags::empty(),
        Some(layers.as_str()),
    )
    .context("cannot mount the overlay")
    .with_hint(|| {
        if upper.starts_with(rootfs) {
            // The kernel refuses an upper layer inside the lower one (BENTO_ROOTFS=/).
            return format!(
                "the writable layer ({}) would be inside the rootfs: point BENTO_ROOTFS at \
                 a root filesystem, not at `/`",
                upper.display()
            );
        }
        let kernel = uname().map(|u| u.release().to_string_lossy().into_owned());
        format!(
            "rootless overlayfs needs Linux 5.11 or later (this is {}), and a rootfs \
             path without ',' or ':'",
            kernel.unwrap_or_default()
        )
    })?;
    Ok(root)
}

/// The rootfs becomes the root *mount*, and the host's tree is gone. chroot only changed
/// where "/" points for us: the host's root stayed mounted in our namespace, and root can
/// climb back to it (chroot(2), NOTES; try `just breakout 5`). pivot_root(2) instead swaps
/// the root mount: from inside the rootfs, pivot_root(".", ".") makes it the root mount and
/// stacks the old root on top of it, at "/". That is also why /proc must be mounted first:
/// once the old root is gone, no full procfs is visible, and the kernel refuses a new one
/// inside a user namespace.
fn pivot_into(root: &Path) -> Result<()> {
    chdir(root).context("cannot enter the root filesystem")?;
    pivot_root(".", ".")
        .context("pivot_root failed")
        .hint("the new root must be a mount point other than `/`: is BENTO_ROOTFS `/`?")?;
    // umount2(2) MNT_DETACH: detach the old root, the host's whole tree, from our
    // namespace. Nothing in here can reach it any more, not even with "..".
    umount2(".", MntFlags::MNT_DETACH).context("cannot detach the old root")?;
    chdir("/").context("chdir(\"/\") failed")?;
    Ok(())
}

/// A /proc that shows only the container. mount(2) a fresh procfs on `target`: a procfs
/// shows the PID namespace of the process that mounts it (proc(5)). Inside a user namespace
/// the kernel allows it only to a process in a PID namespace that the user namespace owns:
/// us, PID 1. Nothing in /proc needs setuid, device files or exec, so those are off.
fn mount_proc(target: &Path) -> Result<()> {
    mount(
        Some("proc"),
        target,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .context("cannot mount proc on the rootfs's /proc")
    .hint("the rootfs needs an empty /proc directory (`just rootfs` makes one)")?;
    Ok(())
}

/// A mount table of our own. unshare(2) CLONE_NEWNS gives us a private copy of the mount
/// table (mount_namespaces(7)): what we mount from now on, the host does not see.
fn isolate_mounts() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS) failed")?;
    // On systemd hosts `/` is a *shared* mount: a copied mount stays in a peer group with
    // the host's. Rootless, the user namespace already turns our copies into slaves, but as
    // real root our mounts would propagate back to the host (and pivot_root(2) refuses a
    // shared parent). Make every mount private, recursively, before mounting anything
    // (mount(2), MS_PRIVATE).
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("cannot make / private (mount MS_REC|MS_PRIVATE)")?;
    Ok(())
}

/// Forks PID 1 of a new PID namespace. unshare(2) CLONE_NEWPID does not move *us*: a pid
/// never changes. The next child we fork is PID 1 of the new namespace (pid_namespaces(7)).
/// Both copies return from here: the parent with the child's pid, the child with `Child`.
fn fork_pid_1() -> Result<ForkResult> {
    unshare(CloneFlags::CLONE_NEWPID).context("unshare(CLONE_NEWPID) failed")?;
    // From here on the parent passes signals on to the container (wait_for_container):
    // catch them now, so that none is lost, or kills us, while we fork.
    plumbing::catch_signals()?;
    // fork(2) copies this process; both copies continue from here.
    // SAFETY: this program is single-threaded, so the child may go on running Rust code
    // (after fork in a multithreaded program, only async-signal-safe calls are allowed).
    unsafe { fork() }.context("fork failed")
}

/// The parent stays on the host, in charge of the container: signals sent to it are passed
/// on to PID 1, which ignores any it has no handler for. waitpid(2) sleeps until the child
/// ends; its status becomes ours (128+N if it was killed by signal N).
fn wait_for_container(child: Pid) -> Result<i32> {
    plumbing::forward_signals(child);
    let status = waitpid(child, None).context("waitpid failed")?;
    Ok(plumbing::exit_code(status))
}

/// prctl(2) PR_SET_PDEATHSIG: if the parent dies, even of SIGKILL, the kernel kills us, and
/// with PID 1 every other process in its namespace. No container outlives its step.
fn die_with_parent() -> Result<()> {
    set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG) failed")?;
    Ok(())
}

/// Root inside, ourselves outside. unshare(2) CLONE_NEWUSER: any user may create a user
/// namespace. Inside it we hold every capability, but only over the namespaces that it owns
/// (user_namespaces(7)): so it comes first, and every namespace after it is ours to make.
fn enter_user_namespace() -> Result<()> {
    // The maps below speak in host ids: remember ours before we leave.
    let uid_map = format!("0 {} 1", getuid());
    let gid_map = format!("0 {} 1", getgid());
    unshare(CloneFlags::CLONE_NEWUSER)
        .context("unshare(CLONE_NEWUSER) failed")
        .with_hint(plumbing::user_namespace_hint)?;
    // Map uid 0 inside to our own uid outside, 1 id long. Unprivileged, we may map only our
    // own id, and must write the map ourselves before any exec (user_namespaces(7)).
    fs::write("/proc/self/uid_map", uid_map).context("cannot write /proc/self/uid_map")?;
    // gid_map is refused until setgroups(2) is disabled here: otherwise we could drop a
    // supplementary group that the host uses to *deny* us access (user_namespaces(7)).
    fs::write("/proc/self/setgroups", "deny").context("cannot write /proc/self/setgroups")?;
    fs::write("/proc/self/gid_map", gid_map).context("cannot write /proc/self/gid_map")?;
    Ok(())
}

/// A hostname of our own. unshare(2) CLONE_NEWUTS gives this process a new UTS namespace
/// (uts_namespaces(7)). Creating it needs CAP_SYS_ADMIN in the user namespace that will own
/// it: ours, where we have it.
fn isolate_hostname(name: &str) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWUTS).context("unshare(CLONE_NEWUTS) failed")?;
    // sethostname(2) changes the name in our UTS namespace only; the host keeps its own.
    sethostname(name).context("sethostname failed")?;
    Ok(())
}

/// The command takes over this process: execvp(3) finds it on PATH and calls execve(2),
/// which replaces our program but keeps our pid, namespaces and root. It returns only on
/// failure, with the error to report (127 when there is no such command, 126 when it
/// cannot be executed, as shells do).
fn exec_command(command: &[CString]) -> anyhow::Error {
    let Err(errno) = execvp(&command[0], command);
    plumbing::exec_error(&command[0], errno)
}

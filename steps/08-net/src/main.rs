//! # Step 08 — net: a network namespace with only loopback
//!
//! Until now the container shared the host's network: every interface, every port. A
//! network namespace gives it a stack of its own, holding only `lo`, and `lo` starts down.
//! This step brings it up, so 127.0.0.1 works inside while the host's interfaces are
//! invisible. Reaching the outside rootlessly needs a user-space network (slirp4netns,
//! pasta): see the README for why the step stops here.
//!
//! Run it: `just step 8 ip addr`.

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
            pivot_into(&root)?;
            host.after_isolation()?;
            Err(exec_command(&command))
        }
    }
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

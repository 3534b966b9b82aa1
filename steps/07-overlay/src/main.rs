//! # Step 07 — overlay: a copy-on-write root, like real images
//!
//! Until now the container wrote straight into `rootfs/`: `touch /tmp/x` inside left a file
//! on the host. Container images are read-only layers; runtimes stack a writable layer on
//! top with overlayfs. This step mounts an overlay with the rootfs as its read-only lower
//! layer and a fresh directory of this run as its upper layer, pivots into it, and when the
//! container exits shows what landed in the upper layer, then deletes it.
//!
//! Run it: `just step 7 sh -c 'echo hi > /tmp/hello; rm /etc/group'`.

use std::fs;

use anyhow::{Context, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::sys::utsname::uname;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, chdir, execvp, fork, getgid, getuid, pivot_root, sethostname};
use plumbing::Hint;

fn main() {
    // Prints any error as one line plus a hint, and exits with the container's status.
    plumbing::run(container)
}

fn container() -> Result<i32> {
    let command = plumbing::command()?;
    let rootfs = plumbing::rootfs(&command)?;
    // The overlay's writable layer lives on the host, in a directory of this run that the
    // parent removes when the container is gone (see === OVERLAY ===).
    let scratch = plumbing::Scratch::create("07-overlay", &["upper", "work", "root"])?;
    let host = procinfo::before_isolation()?;

    // === USER NAMESPACE ===
    // The maps below speak in host ids: remember ours before we leave.
    let uid_map = format!("0 {} 1", getuid());
    let gid_map = format!("0 {} 1", getgid());
    // unshare(2) CLONE_NEWUSER: any user may create a user namespace. Inside it we hold all
    // capabilities, but only over namespaces that it owns (user_namespaces(7)).
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

    // === UTS NAMESPACE ===
    // unshare(2) CLONE_NEWUTS: our own hostname (uts_namespaces(7)). It needs CAP_SYS_ADMIN
    // in the user namespace that will own it: ours, where we have it.
    unshare(CloneFlags::CLONE_NEWUTS).context("unshare(CLONE_NEWUTS) failed")?;
    // sethostname(2) changes the name in our UTS namespace only; the host keeps its own.
    sethostname("my-container").context("sethostname failed")?;

    // === PID NAMESPACE ===
    // unshare(2) CLONE_NEWPID does not move *us*: a pid never changes. The next child we
    // fork is PID 1 of the new namespace (pid_namespaces(7)).
    unshare(CloneFlags::CLONE_NEWPID).context("unshare(CLONE_NEWPID) failed")?;
    // From here on the parent passes signals on to the container (see below): catch them
    // now, so that none is lost, or kills us, while we fork.
    plumbing::catch_signals()?;
    // fork(2) copies this process; both copies continue from here.
    // SAFETY: this program is single-threaded, so the child may go on running Rust code
    // (after fork in a multithreaded program, only async-signal-safe calls are allowed).
    match unsafe { fork() }.context("fork failed")? {
        ForkResult::Parent { child } => {
            // The parent stays on the host, in charge of the container: signals sent to it
            // are passed on to PID 1, which ignores any it has no handler for.
            plumbing::forward_signals(child);
            // waitpid(2): sleep until the child ends, then report its status as our own.
            let status = waitpid(child, None).context("waitpid failed")?;
            // Every write of the container is in the upper layer: show it. Dropping the
            // scratch directory then deletes it, so the next run starts from the rootfs.
            scratch.print_changes(&rootfs);
            Ok(plumbing::exit_code(status))
        }
        ForkResult::Child => {
            // prctl(2) PR_SET_PDEATHSIG: if the parent dies, even of SIGKILL, the kernel
            // kills us, and with PID 1 every other process in its namespace.
            set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG) failed")?;

            // === MOUNT NAMESPACE ===
            // unshare(2) CLONE_NEWNS: a private copy of the mount table (mount_namespaces(7)).
            unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS) failed")?;
            // On systemd hosts `/` is a *shared* mount: a copied mount stays in a peer group
            // with the host's, and our mounts would propagate back to it. Make every mount
            // private, recursively, before mounting anything (mount(2), MS_PRIVATE).
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .context("cannot make / private (mount MS_REC|MS_PRIVATE)")?;

            // === OVERLAY ===
            // mount(2) an overlay filesystem (the kernel's overlayfs.rst): reads come from
            // the rootfs ("lowerdir"), every write goes to "upperdir", a directory of this
            // run, through "workdir". The rootfs itself is never written to, like an image.
            // Rootless overlays need Linux 5.11+ and "userxattr" (whiteouts and opaque
            // directories are then marked with user.* attributes).
            let root = scratch.join("root");
            let layers = format!(
                "lowerdir={},upperdir={},workdir={},userxattr",
                rootfs.display(),
                scratch.join("upper").display(),
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
                let kernel = uname().map(|u| u.release().to_string_lossy().into_owned());
                format!(
                    "rootless overlayfs needs Linux 5.11 or later (this is {}), and a rootfs \
                     path without ',' or ':'",
                    kernel.unwrap_or_default()
                )
            })?;

            // === PROC FILESYSTEM ===
            // mount(2) a fresh procfs, now on the rootfs's proc directory. A procfs shows the
            // PID namespace of the process that mounts it (proc(5)), so this one lists only
            // the container. Inside a user namespace the kernel allows it only to a process
            // in a PID namespace that the user namespace owns (us, PID 1), and only while a
            // full procfs is still visible: so before the host's root (and its /proc) is gone.
            mount(
                Some("proc"),
                &root.join("proc"),
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
            .context("cannot mount proc on the rootfs's /proc")
            .hint("the rootfs needs an empty /proc directory (`just rootfs` makes one)")?;

            // === PIVOT ROOT ===
            // chroot only changed where "/" points for us: the host's root is still mounted
            // in our namespace, and root can climb back to it (chroot(2), NOTES; try
            // `just breakout 5`). pivot_root(2) instead swaps the root *mount*: from inside
            // the rootfs, pivot_root(".", ".") makes it the root mount and stacks the old
            // root on top of it, at "/".
            chdir(&root).context("cannot enter the root filesystem")?;
            pivot_root(".", ".").context("pivot_root failed")?;
            // umount2(2) MNT_DETACH: detach the old root, the host's whole tree, from our
            // namespace. Nothing in here can reach it any more, not even with "..".
            umount2(".", MntFlags::MNT_DETACH).context("cannot detach the old root")?;
            chdir("/").context("chdir(\"/\") failed")?;

            host.after_isolation()?;
            // execvp(3): find the command on PATH and replace this process with it
            // (execve(2)); it keeps our pid, namespaces and root. Returns only on failure.
            let Err(errno) = execvp(&command[0], &command);
            Err(plumbing::exec_error(&command[0], errno))
        }
    }
}

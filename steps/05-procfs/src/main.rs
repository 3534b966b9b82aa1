//! # Step 05 — procfs: a /proc that shows only the container
//!
//! After step 04, `ps` inside the container sees nothing: the busybox root filesystem has
//! an empty `/proc`. This step mounts a fresh procfs there, and because a procfs shows the
//! PID namespace of whoever mounts it, `ps` now lists PID 1 and itself: every line of the
//! container checklist is ticked.
//!
//! Run it: `just step 5 ps`, or `just step 5` for a shell in the container.

use std::fs;

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, chdir, chroot, execvp, fork, getgid, getuid, sethostname};
use plumbing::Hint;

fn main() {
    // Prints any error as one line plus a hint, and exits with the container's status.
    plumbing::run(container)
}

fn container() -> Result<i32> {
    let command = plumbing::command()?;
    let rootfs = plumbing::rootfs(&command)?;
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
            // Bind-mount the rootfs onto itself (MS_BIND): it becomes a mount point of our
            // own, and whatever we mount under it lives and dies with this namespace.
            mount(
                Some(&rootfs),
                &rootfs,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .context("cannot bind-mount the root filesystem")?;
            // chroot(2): from now on, "/" means the rootfs for us and for the command.
            chroot(&rootfs).context("chroot failed")?;
            // chroot does not move the working directory, which would stay outside the new
            // root: go to the new "/" (chdir(2)).
            chdir("/").context("chdir(\"/\") failed")?;

            // === PROC FILESYSTEM ===
            // mount(2) a fresh procfs on /proc. A procfs shows the PID namespace of the
            // process that mounts it (proc(5)), so this one lists only the container. Inside
            // a user namespace the kernel allows it only to a process in a PID namespace
            // that the user namespace owns: us, PID 1. Nothing in /proc needs setuid,
            // device files or exec, so those are off.
            mount(
                Some("proc"),
                "/proc",
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
            .context("cannot mount proc on /proc")
            .hint("the rootfs needs an empty /proc directory (`just rootfs` makes one)")?;

            host.after_isolation()?;
            // execvp(3): find the command on PATH and replace this process with it
            // (execve(2)); it keeps our pid, namespaces and root. Returns only on failure.
            let Err(errno) = execvp(&command[0], &command);
            Err(plumbing::exec_error(&command[0], errno))
        }
    }
}

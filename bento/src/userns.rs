//! Step 02, userns: root inside, ourselves outside.

use std::fs;
use std::process::Command;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, getgid, getuid};
use plumbing::Hint;

use crate::message::{self, Message};
use crate::spec::IdMap;

/// unshare(2) CLONE_NEWUSER: any user may create a user namespace. Inside it we hold every
/// capability, but only over the namespaces that it owns (user_namespaces(7)): so it comes
/// first, and every namespace after it is ours to make.
///
/// The supervisor calls this, then forks PID 1: both stay in this user namespace, and
/// `bento exec` joins it first (setns(2) needs its capabilities for the others).
///
/// `uid_mappings` and `gid_mappings` come from config.json; bento's own containers ask for
/// one line, `0 <our uid> 1`, which we may write ourselves. More than our own id needs
/// CAP_SETUID (CAP_SETGID) in the *parent* namespace, which a process that has just left it
/// no longer has: so a helper that stayed outside writes them (as runc does), as root
/// directly, rootless through newuidmap(1)/newgidmap(1), the setuid helpers that check
/// /etc/subuid and /etc/subgid (as rootless podman does).
pub fn enter_user_namespace(uid_mappings: &[IdMap], gid_mappings: &[IdMap]) -> Result<()> {
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    if only_ours(uid_mappings, uid) && only_ours(gid_mappings, gid) {
        return map_ourselves(uid, gid);
    }
    map_from_outside(uid_mappings, gid_mappings)
}

/// No map, or the single line mapping our own id: what we may write from inside.
fn only_ours(maps: &[IdMap], own: u32) -> bool {
    match maps {
        [] => true,
        [one] => one.host == own && one.size == 1,
        _ => false,
    }
}

/// Step 02's way: unshare, then write our own one-line maps.
fn map_ourselves(uid: u32, gid: u32) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWUSER)
        .context("unshare(CLONE_NEWUSER) failed")
        .with_hint(plumbing::user_namespace_hint)?;
    // Map uid 0 inside to our own uid outside, 1 id long. Unprivileged, we may map only our
    // own id, and must write the map ourselves before any exec (user_namespaces(7)).
    fs::write("/proc/self/uid_map", format!("0 {uid} 1\n"))
        .context("cannot write /proc/self/uid_map")?;
    // gid_map is refused until setgroups(2) is disabled here: otherwise we could drop a
    // supplementary group that the host uses to *deny* us access (user_namespaces(7)).
    fs::write("/proc/self/setgroups", "deny").context("cannot write /proc/self/setgroups")?;
    fs::write("/proc/self/gid_map", format!("0 {gid} 1\n"))
        .context("cannot write /proc/self/gid_map")?;
    Ok(())
}

/// Several ranges: a forked helper stays in our user namespace and waits; we unshare and
/// tell it (a message on a pipe); it writes our maps from outside and tells us it has.
fn map_from_outside(uid_mappings: &[IdMap], gid_mappings: &[IdMap]) -> Result<()> {
    let (wait_here, tell_helper) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    let (wait_there, tell_us) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    let us = Pid::this();
    // SAFETY: bento is single-threaded, so the child may go on running Rust code.
    let helper = match unsafe { fork() }.context("fork failed")? {
        ForkResult::Child => {
            drop((tell_helper, wait_there));
            let written = match message::receive(&wait_here) {
                Some(Message::Ready) => write_maps_of(us, uid_mappings, gid_mappings),
                _ => Err(anyhow::anyhow!("the supervisor did not unshare")),
            };
            let code = match written {
                Ok(()) => message::send(&tell_us, Message::Ready).map_or(1, |()| 0),
                Err(error) => crate::errors::report(&error),
            };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => child,
    };
    drop((wait_here, tell_us));
    let unshared = unshare(CloneFlags::CLONE_NEWUSER)
        .context("unshare(CLONE_NEWUSER) failed")
        .with_hint(plumbing::user_namespace_hint);
    if unshared.is_ok() {
        let _ = message::send(&tell_helper, Message::Ready);
    }
    drop(tell_helper);
    let mapped = message::receive(&wait_there) == Some(Message::Ready);
    let _ = waitpid(helper, None);
    unshared?;
    anyhow::ensure!(
        mapped,
        "the container's uid and gid maps could not be written (see above)"
    );
    Ok(())
}

/// PID 1, in its new user namespace: becomes its root. Our ids outside may have no name
/// inside (root's 0 is not in `0 100000 65536`), and what we create must have an owner
/// there (mkdir(2) refuses an unmapped one: EOVERFLOW). The supervisor keeps its own ids:
/// it still writes the container's state on the host.
pub fn become_root_inside() -> Result<()> {
    let root = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
    nix::unistd::setresgid(root.1, root.1, root.1).context("cannot become group 0 inside")?;
    nix::unistd::setresuid(root.0, root.0, root.0).context("cannot become uid 0 inside")?;
    Ok(())
}

/// In the helper, outside: `pid`'s maps. As root, straight into /proc/PID/uid_map (root
/// may map any ids); rootless, through newuidmap/newgidmap, which map what /etc/subuid and
/// /etc/subgid grant us and refuse the rest.
fn write_maps_of(pid: Pid, uid_mappings: &[IdMap], gid_mappings: &[IdMap]) -> Result<()> {
    let lines = |maps: &[IdMap]| -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container, m.host, m.size))
            .collect()
    };
    if nix::unistd::geteuid().is_root() {
        let proc = format!("/proc/{pid}");
        fs::write(format!("{proc}/uid_map"), lines(uid_mappings))
            .context("cannot write the container's uid_map")?;
        fs::write(format!("{proc}/gid_map"), lines(gid_mappings))
            .context("cannot write the container's gid_map")?;
        return Ok(());
    }
    for (helper, maps) in [("newuidmap", uid_mappings), ("newgidmap", gid_mappings)] {
        let mut args = vec![pid.to_string()];
        for m in maps {
            args.extend([
                m.container.to_string(),
                m.host.to_string(),
                m.size.to_string(),
            ]);
        }
        let output = Command::new(helper)
            .args(&args)
            .output()
            .with_context(|| format!("config.json maps several ids, and {helper} is not here"))
            .hint("install uidmap (newuidmap, newgidmap) and give your user ranges in /etc/subuid and /etc/subgid, or map a single id")?;
        if !output.status.success() {
            return Err(plumbing::hinted(
                format!(
                    "{helper} refused the maps config.json asks for: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
                "ask only for ranges /etc/subuid and /etc/subgid give your user (`grep $USER /etc/subuid`)",
            ));
        }
    }
    Ok(())
}

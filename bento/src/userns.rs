//! Step 02, userns: root inside, ourselves outside.

use std::fs;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{getgid, getuid};
use plumbing::Hint;

/// unshare(2) CLONE_NEWUSER: any user may create a user namespace. Inside it we hold every
/// capability, but only over the namespaces that it owns (user_namespaces(7)): so it comes
/// first, and every namespace after it is ours to make.
///
/// The supervisor calls this, then forks PID 1: both stay in this user namespace, and
/// `bento exec` joins it first (setns(2) needs its capabilities for the others).
pub fn enter_user_namespace() -> Result<()> {
    // The maps below speak in host ids: remember ours before we leave.
    let uid_map = format!("0 {} 1", getuid());
    let gid_map = format!("0 {} 1", getgid());
    unshare(CloneFlags::CLONE_NEWUSER)
        .context("unshare(CLONE_NEWUSER) failed")
        .with_hint(plumbing::user_namespace_hint)?;
    // Map uid 0 inside to our own uid outside, 1 id long. Unprivileged, we may map only our
    // own id, and must write the map ourselves before any exec (user_namespaces(7)).
    // Real runtimes map 65536 ids with newuidmap(1) and /etc/subuid, so that images whose
    // files belong to other users keep them; we keep the single mapping of step 02.
    fs::write("/proc/self/uid_map", uid_map).context("cannot write /proc/self/uid_map")?;
    // gid_map is refused until setgroups(2) is disabled here: otherwise we could drop a
    // supplementary group that the host uses to *deny* us access (user_namespaces(7)).
    fs::write("/proc/self/setgroups", "deny").context("cannot write /proc/self/setgroups")?;
    fs::write("/proc/self/gid_map", gid_map).context("cannot write /proc/self/gid_map")?;
    Ok(())
}

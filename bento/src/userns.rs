//! Step 02, userns: root inside, ourselves outside.

use std::fs;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{getgid, getuid};
use plumbing::Hint;

use crate::spec::IdMap;

/// unshare(2) CLONE_NEWUSER: any user may create a user namespace. Inside it we hold every
/// capability, but only over the namespaces that it owns (user_namespaces(7)): so it comes
/// first, and every namespace after it is ours to make.
///
/// The supervisor calls this, then forks PID 1: both stay in this user namespace, and
/// `bento exec` joins it first (setns(2) needs its capabilities for the others).
///
/// `uid_mappings` and `gid_mappings` come from config.json; bento's own containers ask for
/// one line, `0 <our uid> 1`. More than that needs CAP_SETUID in the parent namespace,
/// which a process that has just left it no longer has: real runtimes write the maps of
/// their child from outside (runc), or through newuidmap(1) (rootless podman).
pub fn enter_user_namespace(uid_mappings: &[IdMap], gid_mappings: &[IdMap]) -> Result<()> {
    // The maps speak in host ids: without any, ours, remembered before we leave.
    let map = |maps: &[IdMap], own: u32| -> String {
        match maps.is_empty() {
            true => format!("0 {own} 1\n"),
            false => maps
                .iter()
                .map(|m| format!("{} {} {}\n", m.container, m.host, m.size))
                .collect(),
        }
    };
    let uid_map = map(uid_mappings, getuid().as_raw());
    let gid_map = map(gid_mappings, getgid().as_raw());
    unshare(CloneFlags::CLONE_NEWUSER)
        .context("unshare(CLONE_NEWUSER) failed")
        .with_hint(plumbing::user_namespace_hint)?;
    // Map uid 0 inside to our own uid outside, 1 id long. Unprivileged, we may map only our
    // own id, and must write the map ourselves before any exec (user_namespaces(7)).
    // Real runtimes map 65536 ids with newuidmap(1) and /etc/subuid, so that images whose
    // files belong to other users keep them; we keep the single mapping of step 02.
    fs::write("/proc/self/uid_map", uid_map)
        .context("cannot write /proc/self/uid_map")
        .hint("bento maps a single id (`0 <your uid> 1`): config.json asks for more")?;
    // gid_map is refused until setgroups(2) is disabled here: otherwise we could drop a
    // supplementary group that the host uses to *deny* us access (user_namespaces(7)).
    fs::write("/proc/self/setgroups", "deny").context("cannot write /proc/self/setgroups")?;
    fs::write("/proc/self/gid_map", gid_map).context("cannot write /proc/self/gid_map")?;
    Ok(())
}

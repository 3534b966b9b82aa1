//! `bento exec`'s lesson: joining a running container's namespaces with setns(2).
//!
//! Every namespace of a process is a file in /proc/PID/ns/ (namespaces(7)); opening one
//! and passing the descriptor to setns(2) moves the caller into it. The order matters:
//! the user namespace first, because joining the others needs capabilities in the user
//! namespace that owns them, which we only have once inside it (setns(2) grants the full
//! set there). A PID namespace is entered only by children (like unshare(CLONE_NEWPID)),
//! so the caller forks afterwards; joining the mount namespace moves our root and working
//! directory to the container's root (setns(2), CLONE_NEWNS).

use std::fs::File;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, setns};

use crate::process::Process;

/// The namespaces `exec` joins, in order, as named in /proc/PID/ns/.
const JOINED: [(&str, CloneFlags); 6] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Moves this process into the namespaces of `init` (the container's PID 1). All are
/// opened before any is joined: once in the mount namespace, the host's /proc is gone.
pub fn join_namespaces(init: &Process) -> Result<()> {
    let files: Vec<(File, CloneFlags)> = JOINED
        .iter()
        .map(|(name, flag)| {
            let path = format!("/proc/{}/ns/{name}", init.pid);
            File::open(&path)
                .with_context(|| format!("cannot open {path}"))
                .map(|file| (file, *flag))
        })
        .collect::<Result<_>>()?;
    // Opened, then checked: if PID 1 is still the same process now, the files we hold are
    // its namespaces, not those of a process that got its pid after it died.
    anyhow::ensure!(init.is_alive(), "the container stopped");
    for (file, flag) in files {
        setns(&file, flag).with_context(|| format!("setns({flag:?}) failed"))?;
    }
    Ok(())
}

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
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, setns};

use crate::process::Process;

/// The namespaces `exec` joins, in order, as named in /proc/PID/ns/.
const JOINED: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Moves this process into the namespaces of `init` (the container's PID 1). All are
/// opened before any is joined: once in the mount namespace, the host's /proc is gone.
/// A namespace we are in already is skipped: the container shares it with the host (no
/// user namespace for podman as root), and setns(2) refuses to "re-enter" our own user
/// namespace (EINVAL).
pub fn join_namespaces(init: &Process) -> Result<()> {
    let mut files: Vec<(File, CloneFlags)> = Vec::new();
    for (name, flag) in JOINED {
        let path = format!("/proc/{}/ns/{name}", init.pid);
        let theirs = std::fs::metadata(&path).with_context(|| format!("cannot read {path}"))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}")).ok();
        if ours.is_some_and(|ours| ours.ino() == theirs.ino() && ours.dev() == theirs.dev()) {
            continue;
        }
        files.push((
            File::open(&path).with_context(|| format!("cannot open {path}"))?,
            flag,
        ));
    }
    // Opened, then checked: if PID 1 is still the same process now, the files we hold are
    // its namespaces, not those of a process that got its pid after it died.
    anyhow::ensure!(init.is_alive(), "the container stopped");
    for (file, flag) in files {
        setns(&file, flag).with_context(|| format!("setns({flag:?}) failed"))?;
    }
    Ok(())
}

/// Joins the namespace at `path` (config.json's `linux.namespaces[].path`, such as the
/// network namespace podman made and gave an interface): setns(2), checked to be of the
/// kind asked for. `not_ours`: refused if it is the namespace we are in (the host's, when
/// the container's sysctls are to be written in it), told by the very file it joins
/// (fstat(2): the same device and inode), so that no rename in between can swap it.
pub fn join_path(path: &Path, kind: &str, not_ours: bool) -> Result<()> {
    let flag = JOINED
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|(_, flag)| *flag)
        .with_context(|| format!("bento cannot join a {kind} namespace"))?;
    let file = File::open(path)
        .with_context(|| format!("cannot open the {kind} namespace {}", path.display()))?;
    if not_ours {
        use std::os::unix::fs::MetadataExt;
        let joined = file.metadata()?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{kind}"))?;
        if (joined.dev(), joined.ino()) == (ours.dev(), ours.ino()) {
            return Err(plumbing::hinted(
                format!(
                    "the {kind} namespace {} is the host's, and linux.sysctl writes in it",
                    path.display()
                ),
                "a container may set only the sysctls of its own namespaces",
            ));
        }
    }
    setns(&file, flag).with_context(|| {
        format!(
            "cannot join the {kind} namespace {} (setns)",
            path.display()
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_namespace_is_refused_when_sysctls_go_there() {
        // The check is on the opened file: refused before any setns(2).
        let error = join_path(Path::new("/proc/self/ns/uts"), "uts", true).unwrap_err();
        assert!(format!("{error:#}").contains("is the host's"), "{error:#}");
        let error = join_path(Path::new("/proc/thread-self/ns/ipc"), "ipc", true).unwrap_err();
        assert!(format!("{error:#}").contains("is the host's"), "{error:#}");
    }
}

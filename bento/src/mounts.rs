//! Steps 04 and 06, mounts and pivot_root: a mount table of our own, and a root that is
//! no longer the host's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{chdir, pivot_root};
use plumbing::Hint;

use crate::spec::Spec;

/// Which mount table the container gets (config.json's `linux.namespaces`).
pub enum MountNamespace {
    /// A new one (`{"type": "mount"}`): every container of bento's own, and of podman's.
    New,
    /// One to join (`{"type": "mount", "path": …}`): another container's, with its root
    /// and its mounts, as they are.
    Joined(PathBuf),
    /// None listed: the runtime's own; the container gets only its root (chroot(2)).
    Shared,
}

/// The container's mount namespace, checked: a joined or shared one cannot take
/// config.json's mounts (in a shared one they would be the host's).
pub fn mount_namespace(spec: &Spec) -> Result<MountNamespace> {
    let namespace = match spec.namespaces.iter().find(|ns| ns.kind == "mnt") {
        Some(ns) => match &ns.path {
            Some(path) => MountNamespace::Joined(path.clone()),
            None => return Ok(MountNamespace::New),
        },
        None => MountNamespace::Shared,
    };
    let asks_for_mounts = !spec.mounts.is_empty()
        || !spec.masked_paths.is_empty()
        || !spec.readonly_paths.is_empty()
        || !spec.devices.is_empty()
        || spec.readonly_root;
    if asks_for_mounts {
        return Err(plumbing::hinted(
            "config.json asks for mounts (mounts, maskedPaths, readonlyPaths, devices or a              read-only root), and no mount namespace of the container's own to make them in",
            "add {\"type\": \"mount\"} to linux.namespaces, or leave the mounts out",
        ));
    }
    Ok(namespace)
}

/// Without a mount namespace of its own: chroot(2) into the root filesystem, and chdir(2)
/// into it, so that `..` starts from the new root (step 04's lesson, which is escapable:
/// a container that shares the runtime's mount table is not isolated from it).
pub fn chroot_into(root: &Path) -> Result<()> {
    chdir(root).context("cannot enter the root filesystem")?;
    nix::unistd::chroot(".").context("chroot failed")?;
    chdir("/").context("chdir(\"/\") failed")?;
    Ok(())
}

/// unshare(2) CLONE_NEWNS gives us a private copy of the mount table (mount_namespaces(7)):
/// what we mount from now on, the host does not see. Every mount of a container lives in
/// its namespace, so when its last process is gone the kernel unmounts them all: `bento rm`
/// never has a mount to undo.
pub fn isolate_mounts() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS) failed")?;
    // On systemd hosts `/` is a *shared* mount, and as real root our mounts would
    // propagate back to the host (and pivot_root(2) refuses a shared parent). Make every
    // mount private, recursively, before mounting anything (mount(2), MS_PRIVATE).
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

/// The container's root becomes the root *mount*, and the host's tree is gone.
/// pivot_root(2) from inside it, pivot_root(".", "."), makes it the root mount and stacks
/// the old root on top; umount2(2) MNT_DETACH then detaches the old root, the host's whole
/// tree: nothing in here can reach it any more, not even with ".." (step 06's breakout).
pub fn pivot_into(root: &Path) -> Result<()> {
    chdir(root).context("cannot enter the root filesystem")?;
    pivot_root(".", ".")
        .context("pivot_root failed")
        .hint("the new root must be a mount point other than `/`")?;
    umount2(".", MntFlags::MNT_DETACH).context("cannot detach the old root")?;
    chdir("/").context("chdir(\"/\") failed")?;
    Ok(())
}

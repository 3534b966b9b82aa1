//! Step 05, procfs: a /proc that shows only the container.

use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use plumbing::Hint;

/// mount(2) a fresh procfs on `target`: a procfs shows the PID namespace of the process
/// that mounts it (proc(5)). Inside a user namespace the kernel allows it only to a process
/// in a PID namespace that the user namespace owns: PID 1. It must happen before the old
/// root is detached (the kernel refuses a new procfs when no full one is visible). Nothing
/// in /proc needs setuid, device files or exec, so those are off.
pub fn mount_proc(target: &Path) -> Result<()> {
    mount(
        Some("proc"),
        target,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .context("cannot mount proc on the container's /proc")
    .hint("the image needs a /proc directory (bento's pulls make one)")?;
    Ok(())
}

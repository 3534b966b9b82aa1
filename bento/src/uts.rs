//! Step 01 (made to work by step 02), uts: a hostname of our own.

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::sethostname;

/// unshare(2) CLONE_NEWUTS gives this process a new UTS namespace (uts_namespaces(7)).
/// Creating it needs CAP_SYS_ADMIN in the user namespace that will own it: ours, where we
/// have it. sethostname(2) then changes the name in our UTS namespace only (an empty
/// name, when config.json gives none, leaves the host's name there).
pub fn isolate_hostname(name: &str) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWUTS).context("unshare(CLONE_NEWUTS) failed")?;
    if !name.is_empty() {
        sethostname(name).context("sethostname failed")?;
    }
    Ok(())
}

/// No step teaches this one, because nothing in busybox shows it: unshare(2) CLONE_NEWIPC
/// gives the container its own System V IPC objects and POSIX message queues
/// (ipc_namespaces(7)), as every runtime does, so that it cannot attach to the host's
/// shared memory segments.
pub fn isolate_ipc() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWIPC).context("unshare(CLONE_NEWIPC) failed")?;
    Ok(())
}

//! Where bento keeps things, and how it creates its directories safely.
//!
//! One rule, whatever the environment says, because engines call the same runtime with
//! different ones (podman's conmon calls `create` with HOME=/root, podman itself `start` and
//! `delete` with no HOME at all) and `sudo bento` and `sudo -i bento` must see the same
//! containers. As runc does (`/run/runc` as root, `$XDG_RUNTIME_DIR/runc` rootless):
//!
//! - **as root**: containers in `/run/bento/containers`, images in `/var/lib/bento/images`;
//! - **rootless**: containers in `$XDG_RUNTIME_DIR/bento/containers` (the user's own tmpfs,
//!   emptied at logout and reboot, like the containers' processes; without one, a user with
//!   no login session, under the data directory), images in `$XDG_DATA_HOME/bento/images`
//!   (default `~/.local/share/bento/images`), with the blob cache next to them.
//!
//! A container directory holds its state, lock, log and writable layer. `BENTO_HOME=DIR`
//! moves all of it under DIR (the tests give each run its own), and an engine's `--root DIR`
//! the containers (main.rs).
//!
//! Real runtimes keep the writable layers on disk (podman: `containers/storage`) and only
//! runtime state in `/run`; podman's `--transient-store` is what bento does.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plumbing::Hint;

/// Root's containers, where runc keeps its (/run/runc).
pub const ROOT_CONTAINERS: &str = "/run/bento/containers";

/// bento's directories for this user.
#[derive(Debug, Clone)]
pub struct Home {
    /// Images: `index.json`, one directory per image, and the blob cache.
    pub images: PathBuf,
    /// One directory per container.
    pub containers: PathBuf,
}

fn var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

impl Home {
    /// The directories from the environment (nothing is created yet).
    pub fn from_env() -> Result<Home> {
        if let Some(home) = var("BENTO_HOME") {
            return Ok(Home {
                images: home.join("images"),
                containers: home.join("containers"),
            });
        }
        if nix::unistd::geteuid().is_root() {
            // Where runc and podman keep theirs, whatever HOME and XDG_* say.
            return Ok(Home {
                images: PathBuf::from("/var/lib/bento/images"),
                containers: PathBuf::from(ROOT_CONTAINERS),
            });
        }
        let data = match var("XDG_DATA_HOME") {
            Some(dir) => dir.join("bento"),
            None => var("HOME")
                .context("neither BENTO_HOME, XDG_DATA_HOME nor HOME is set")
                .hint("set BENTO_HOME to a directory of yours")?
                .join(".local/share/bento"),
        };
        let containers = match var("XDG_RUNTIME_DIR") {
            Some(dir) => dir.join("bento/containers"),
            None => data.join("containers"),
        };
        Ok(Home {
            images: data.join("images"),
            containers,
        })
    }
}

/// Creates `dir` and its missing parents, mode 0700, and checks that it is a directory of
/// ours that nobody else may write to (not a symlink someone planted, not someone else's
/// directory): the GUIDE's "never write where another user owns the directory".
pub fn private_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))
                .hint("set BENTO_HOME to a writable directory of yours")?;
        }
        Err(error) => return Err(error).with_context(|| format!("cannot use {}", dir.display())),
    }
    check_private(dir)
}

/// Checks that `dir` is a directory of ours that nobody else may write to. Everything bento
/// believes (a pid to signal, a cgroup to remove) comes from such a directory: in one that
/// another user could write, they could name root's processes and directories.
pub fn check_private(dir: &Path) -> Result<()> {
    let meta =
        fs::symlink_metadata(dir).with_context(|| format!("cannot use {}", dir.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(anyhow::anyhow!(
            "{} is not a private directory of uid {me} (a symlink, someone else's, or writable by others)",
            dir.display()
        ))
        .hint("remove it, or set BENTO_HOME to a directory of yours");
    }
    Ok(())
}

//! Building a root filesystem atomically.
//!
//! Everything is written into a hidden sibling of the target (`.rootfs.partial-PID`) and
//! swapped into place in one `renameat2(RENAME_EXCHANGE)` only when it is complete. A
//! failure, a bad digest or Ctrl-C leaves the previous rootfs as it was, and the partial
//! directory is removed (or, after a SIGKILL, by the next run).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
use plumbing::{Hint, remove_tree};

/// Set by SIGINT/SIGTERM/SIGHUP once [`catch_interrupts`] has run.
static INTERRUPTED: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// From now on, the first Ctrl-C (or SIGTERM/SIGHUP) makes [`check_interrupted`] fail, so
/// the work stops at the next check and the partial directory is cleaned up; a second one
/// terminates at once (the next run then removes the debris).
pub fn catch_interrupts() -> Result<()> {
    let flag = INTERRUPTED.get_or_init(Default::default);
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(flag))
            .context("cannot install a signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(flag))
            .context("cannot install a signal handler")?;
    }
    Ok(())
}

/// Fails once an interrupt has been received.
pub fn check_interrupted() -> Result<()> {
    match INTERRUPTED.get() {
        Some(flag) if flag.load(Ordering::SeqCst) => bail!("interrupted"),
        _ => Ok(()),
    }
}

/// A root filesystem being built next to its final place.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    target: PathBuf,
}

impl Staging {
    /// Checks that `target` may be (re)placed, removes debris of earlier interrupted runs and
    /// creates the empty staging directory.
    ///
    /// `target` may be missing, an empty directory, or a directory that looks like a root
    /// filesystem (it has `bin` and `etc`); anything else is refused unless `force`.
    pub fn begin(target: &Path, force: bool) -> Result<Staging> {
        let name = target
            .file_name()
            .filter(|name| *name != "." && *name != "..")
            .with_context(|| format!("{} is not a usable target directory", target.display()))
            .hint("name a new directory, e.g. `rootfs`")?;
        let parent = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match fs::symlink_metadata(target) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot inspect {}", target.display()));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(anyhow::anyhow!(
                    "{} exists and is not a directory",
                    target.display()
                ))
                .hint("remove it, or choose another target");
            }
            Ok(_) if force || is_empty_dir(target)? || looks_like_rootfs(target) => {}
            Ok(_) => {
                return Err(anyhow::anyhow!(
                    "{} exists and does not look like a root filesystem (no bin/ and etc/)",
                    target.display()
                ))
                .hint("refusing to replace it: pass --force if you really mean to");
            }
        }
        fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        // What runs killed with SIGKILL left: `.NAME.partial-PID` of dead PIDs.
        plumbing::remove_leftovers(&parent, &format!(".{}.partial-", name.to_string_lossy()));

        let mut partial = OsString::from(".");
        partial.push(name);
        partial.push(format!(".partial-{}", std::process::id()));
        let dir = parent.join(partial);
        if dir.exists() {
            remove_tree(&dir)?;
        }
        fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot set permissions on {}", dir.display()))?;
        Ok(Staging {
            dir,
            target: target.to_path_buf(),
        })
    }

    /// Where to build the root filesystem.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Puts the finished root filesystem in place of the target, atomically, and removes
    /// what was there before.
    pub fn commit(self) -> Result<()> {
        check_interrupted()?;
        if fs::symlink_metadata(&self.target).is_ok() {
            // renameat2(2) RENAME_EXCHANGE swaps both names in one step: at every moment
            // the target is either the complete old tree or the complete new one.
            renameat2(
                AT_FDCWD,
                &self.dir,
                AT_FDCWD,
                &self.target,
                RenameFlags::RENAME_EXCHANGE,
            )
            .with_context(|| format!("cannot replace {}", self.target.display()))?;
            // self.dir now holds the old tree; dropping self removes it.
        } else {
            fs::rename(&self.dir, &self.target)
                .with_context(|| format!("cannot create {}", self.target.display()))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if fs::symlink_metadata(&self.dir).is_ok() {
            let _ = remove_tree(&self.dir);
        }
    }
}

fn is_empty_dir(path: &Path) -> Result<bool> {
    Ok(fs::read_dir(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .next()
        .is_none())
}

/// Does `path` look like a root filesystem (has `bin` and `etc`, as directories or links)?
pub fn looks_like_rootfs(path: &Path) -> bool {
    ["bin", "etc"]
        .iter()
        .all(|entry| fs::symlink_metadata(path.join(entry)).is_ok())
}

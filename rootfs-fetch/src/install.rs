//! Building a root filesystem atomically.
//!
//! Everything is written into a hidden sibling of the target (`.rootfs.partial-PID-XXXXXX`,
//! made by `mkdtemp(3)`: an unpredictable name, mode 0700 so that no other user can enter
//! it while it is being built, as Docker and podman do) and swapped into place in one
//! `renameat2(RENAME_EXCHANGE)` only when it is complete, when it becomes 0755. A failure,
//! a bad digest or Ctrl-C leaves the previous rootfs as it was, and the partial directory is
//! removed (or, after a SIGKILL, by the next run), beneath directory descriptors.
//!
//! What rootfs-fetch builds carries a mark at its top, [`MARK`] (the source and the image's
//! digest), and only a marked or empty directory is ever replaced without `--force`: a
//! directory with `bin/` and `etc/` may just as well be `/usr/local`. A rootfs built before
//! the mark existed needs `--force` once (the error says so): guessing from a tree's shape
//! is exactly what could delete someone's `/usr/local`.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::interrupt::check_interrupted;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags, open, openat, renameat2};
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat};
use plumbing::{Hint, names_at, remove_at};

use plumbing::files::dir_flags;

/// The file at the top of every root filesystem rootfs-fetch builds.
pub const MARK: &str = ".bento-rootfs";

/// A root filesystem being built next to its final place.
#[derive(Debug)]
pub struct Staging {
    /// The directory holding the target and the staging directory.
    parent: OwnedFd,
    /// The staging directory: its name in `parent`, its path, and itself.
    name: OsString,
    dir: PathBuf,
    root: OwnedFd,
    target: PathBuf,
    target_name: OsString,
}

impl Staging {
    /// Checks that `target` may be (re)placed, removes debris of earlier interrupted runs and
    /// creates the empty, private staging directory.
    ///
    /// `target` may be missing, an empty directory, or a root filesystem that rootfs-fetch
    /// made (it has the [`MARK`]); anything else is refused unless `force`.
    pub fn begin(target: &Path, force: bool) -> Result<Staging> {
        let target_name = target
            .file_name()
            .filter(|name| *name != "." && *name != "..")
            .with_context(|| format!("{} is not a usable target directory", target.display()))
            .hint("name a new directory, e.g. `rootfs`")?
            .to_os_string();
        let parent_path = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent_path)
            .with_context(|| format!("cannot create {}", parent_path.display()))?;
        let parent = open(&parent_path, dir_flags(), Mode::empty())
            .with_context(|| format!("cannot open {}", parent_path.display()))?;
        check_replaceable(&parent, &target_name, target, force)?;
        // What runs killed with SIGKILL left: `.NAME.partial-PID-*` of dead PIDs, ours.
        let mut prefix = OsString::from(".");
        prefix.push(&target_name);
        prefix.push(".partial-");
        plumbing::remove_leftovers(&parent_path, &prefix.to_string_lossy());

        prefix.push(format!("{}-XXXXXX", std::process::id()));
        // mkdtemp(3): created 0700 under a name no one could have prepared.
        let dir = nix::unistd::mkdtemp(&parent_path.join(&prefix))
            .with_context(|| format!("cannot create a directory in {}", parent_path.display()))?;
        let name = dir.file_name().unwrap_or_default().to_os_string();
        let root = openat(&parent, name.as_os_str(), dir_flags(), Mode::empty())
            .with_context(|| format!("cannot open {}", dir.display()))?;
        Ok(Staging {
            parent,
            name,
            dir,
            root,
            target: target.to_path_buf(),
            target_name,
        })
    }

    /// Where to build the root filesystem.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Marks the finished root filesystem as ours (`source` says what it was made from),
    /// opens it to other users, and puts it in place of the target, atomically; what was
    /// there before is removed.
    pub fn commit(self, source: &str) -> Result<()> {
        check_interrupted()?;
        // An image may hold a file of that name: ours replaces it.
        remove_at(self.root.as_fd(), OsStr::new(MARK))
            .with_context(|| format!("cannot write /{MARK}"))?;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
        let mark = openat(
            &self.root,
            MARK,
            flags | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .with_context(|| format!("cannot write /{MARK}"))?;
        File::from(mark)
            .write_all(format!("Made by rootfs-fetch from {source}\n").as_bytes())
            .with_context(|| format!("cannot write /{MARK}"))?;
        // Complete: now others may enter it (the steps run as the user who asked for it).
        fchmod(&self.root, Mode::from_bits_truncate(0o755))
            .with_context(|| format!("cannot set the mode of {}", self.dir.display()))?;
        let (from, to) = (self.name.as_os_str(), self.target_name.as_os_str());
        if fstatat(&self.parent, to, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok() {
            // renameat2(2) RENAME_EXCHANGE swaps both names in one step: at every moment
            // the target is either the complete old tree or the complete new one.
            renameat2(
                &self.parent,
                from,
                &self.parent,
                to,
                RenameFlags::RENAME_EXCHANGE,
            )
            .with_context(|| format!("cannot replace {}", self.target.display()))?;
            // self.name now holds the old tree; dropping self removes it.
        } else {
            renameat2(
                &self.parent,
                from,
                &self.parent,
                to,
                RenameFlags::RENAME_NOREPLACE,
            )
            .with_context(|| format!("cannot create {}", self.target.display()))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = remove_at(self.parent.as_fd(), &self.name);
    }
}

/// Fails unless `name` in `parent` is missing, an empty directory, or marked as ours.
fn check_replaceable(parent: &OwnedFd, name: &OsStr, target: &Path, force: bool) -> Result<()> {
    let stat = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => return Ok(()),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot inspect {}", target.display()));
        }
        Ok(stat) => stat,
    };
    if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFDIR {
        return Err(anyhow::anyhow!(
            "{} exists and is not a directory",
            target.display()
        ))
        .hint("remove it, or choose another target");
    }
    if force {
        return Ok(());
    }
    let dir = openat(parent, name, dir_flags(), Mode::empty())
        .with_context(|| format!("cannot open {}", target.display()))?;
    let names =
        names_at(dir.as_fd()).with_context(|| format!("cannot read {}", target.display()))?;
    let marked = fstatat(&dir, MARK, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|stat| {
        SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG
    });
    if names.is_empty() || marked {
        return Ok(());
    }
    Err(anyhow::anyhow!(
        "{} exists and was not made by rootfs-fetch (it has no {MARK}): refusing to replace it",
        target.display()
    ))
    .hint("pass --force to replace it anyway (a rootfs made before rootfs-fetch marked its trees needs --force once)")
}

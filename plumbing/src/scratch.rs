//! A scratch directory on the host for one run of a step (step 07 keeps its overlay's
//! writable layer there), what the container changed in it, and removing trees safely.
//!
//! The rules, because a step may run as root and another local user may be watching:
//! - the directory is private: `mkdtemp(3)` gives it an unpredictable name and mode 0700,
//!   so no one else can pre-create it, enter it or swap anything inside it;
//! - removal never follows a symlink: it works beneath directory descriptors
//!   (`openat(O_NOFOLLOW)`, `unlinkat(2)`), never by a path string from `/`;
//! - only the process that created it removes it (a child after fork does not), and
//!   leftovers of killed runs are removed only when we own them and their process is gone.

use std::ffi::{CString, OsStr, OsString};
use std::fmt::Write;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Pid, UnlinkatFlags, geteuid, unlinkat};

use crate::Hint;
use crate::files::dir_flags;

/// `$TMPDIR/bento-NAME-PID-XXXXXX`, removed with everything in it when the process that
/// created it drops it.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    /// The directory itself, and the one holding it: removal goes through these.
    fd: OwnedFd,
    base: OwnedFd,
    name: OsString,
    /// After fork(2) both processes hold this value; only the creator cleans up.
    creator: u32,
}

impl Scratch {
    /// Creates the directory with the given empty subdirectories (mode 0700), after removing
    /// what earlier runs of the same step left behind if they were killed with SIGKILL.
    pub fn create(name: &str, subdirs: &[&str]) -> Result<Scratch> {
        let base_path = std::env::temp_dir();
        let prefix = format!("bento-{name}-");
        remove_leftovers(&base_path, &prefix);
        let creator = std::process::id();
        // mkdtemp(3): a fresh name no one could have guessed, created 0700 (or failing).
        let template = base_path.join(format!("{prefix}{creator}-XXXXXX"));
        let dir = nix::unistd::mkdtemp(&template)
            .with_context(|| {
                format!(
                    "cannot create a scratch directory in {}",
                    base_path.display()
                )
            })
            .hint("set TMPDIR to a directory you can write to")?;
        let name = dir.file_name().unwrap_or_default().to_os_string();
        let base = open(&base_path, dir_flags(), Mode::empty())
            .with_context(|| format!("cannot open {}", base_path.display()))?;
        let fd = openat(&base, name.as_os_str(), dir_flags(), Mode::empty())
            .with_context(|| format!("cannot open {}", dir.display()))?;
        let scratch = Scratch {
            dir,
            fd,
            base,
            name,
            creator,
        };
        for sub in subdirs {
            mkdirat(&scratch.fd, *sub, Mode::from_bits_truncate(0o700))
                .with_context(|| format!("cannot create {}", scratch.join(sub).display()))?;
        }
        Ok(scratch)
    }

    /// A path inside the scratch directory.
    pub fn join(&self, path: &str) -> PathBuf {
        self.dir.join(path)
    }

    /// Prints what an overlay's upper layer (`self/upper`) holds compared with `lower`: new
    /// files (+), changed ones (~), deletions (-, whiteouts) and replaced directories (*).
    /// Prints nothing when the container only read.
    pub fn print_changes(&self, lower: &Path) {
        let mut lines = Vec::new();
        changes(&self.join("upper"), lower, Path::new("/"), &mut lines);
        if lines.is_empty() {
            return;
        }
        let mut out =
            String::from("[The container's changes: all in the upper layer, now deleted]\n");
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
        eprint!("{out}");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // The scratch directory belongs to the process that made it: a child after fork
        // must not delete the layers its parent is still using.
        if std::process::id() != self.creator {
            return;
        }
        if remove_contents(self.fd.as_fd()).is_ok() {
            let _ = unlinkat(&self.base, self.name.as_os_str(), UnlinkatFlags::RemoveDir);
        }
    }
}

/// Lists the changes under `upper`, in name order.
fn changes(upper: &Path, lower: &Path, inside: &Path, lines: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(upper) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name();
        let (Ok(meta), path) = (entry.metadata(), inside.join(&name)) else {
            continue;
        };
        let below = lower.join(&name);
        let shown = path.display();
        let file_type = meta.file_type();
        if file_type.is_char_device() && meta.rdev() == 0 {
            lines.push(format!("- {shown}  (deleted: a whiteout hides it)"));
        } else if file_type.is_dir() {
            if is_opaque(&entry.path()) {
                lines.push(format!(
                    "* {shown}/  (replaced: an opaque directory hides the old one)"
                ));
            } else if below.symlink_metadata().is_err() {
                lines.push(format!("+ {shown}/"));
            }
            changes(&entry.path(), &below, &path, lines);
        } else if below.symlink_metadata().is_ok() {
            lines.push(format!("~ {shown}  (changed: copied up, then written)"));
        } else {
            lines.push(format!("+ {shown}"));
        }
    }
}

/// Does this upper directory carry overlayfs's opaque mark (`user.overlay.opaque`, since
/// rootless overlays use the `userxattr` option)?
fn is_opaque(dir: &Path) -> bool {
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut value = [0u8; 1];
    // SAFETY: both strings are NUL-terminated and the buffer is valid for its length.
    let length = unsafe {
        nix::libc::lgetxattr(
            path.as_ptr(),
            c"user.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    length == 1 && value[0] == b'y'
}

/// Removes the `PREFIX<pid>` and `PREFIX<pid>-*` directories of `base` that runs killed
/// with SIGKILL could not clean up: only those we own, and only when that pid is gone.
pub fn remove_leftovers(base: &Path, prefix: &str) {
    let Ok(base) = open(base, dir_flags(), Mode::empty()) else {
        return;
    };
    let Ok(names) = names_at(base.as_fd()) else {
        return;
    };
    for name in names {
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // EPERM means the process exists but belongs to someone else: it is alive.
        if nix::sys::signal::kill(Pid::from_raw(pid), None) != Err(Errno::ESRCH) {
            continue;
        }
        // The ownership check is on the opened descriptor, not on the name.
        let Ok(dir) = open_for_removal(base.as_fd(), &name) else {
            continue;
        };
        if fstat(&dir).is_ok_and(|stat| stat.st_uid == geteuid().as_raw())
            && remove_contents(dir.as_fd()).is_ok()
        {
            let _ = unlinkat(&base, name.as_os_str(), UnlinkatFlags::RemoveDir);
        }
    }
}

/// `rm -rf PATH`, without following any symlink inside, also through directories without
/// write or search permission (an overlay's work directory has mode 000; some images ship
/// read-only directories). PATH's parent is where the caller chose to work.
pub fn remove_tree(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("cannot remove {}: not a name", path.display()))?;
    let parent = open(parent, dir_flags(), Mode::empty())
        .with_context(|| format!("cannot remove {}", path.display()))?;
    remove_at(parent.as_fd(), name).with_context(|| format!("cannot remove {}", path.display()))
}

/// Removes the entry `name` of the directory `parent` (a file, a symlink itself, or a
/// whole directory), resolving everything beneath descriptors: nothing is followed, so a
/// symlink planted anywhere inside is removed, never what it points to.
pub fn remove_at(parent: BorrowedFd, name: &OsStr) -> io::Result<()> {
    let stat = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => return Ok(()),
        stat => stat?,
    };
    if !is_dir(&stat) {
        return Ok(unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)?);
    }
    let dir = open_for_removal(parent, name)?;
    remove_contents(dir.as_fd())?;
    Ok(unlinkat(parent, name, UnlinkatFlags::RemoveDir)?)
}

/// Empties the directory `dir` (opened by [`open_for_removal`]).
fn remove_contents(dir: BorrowedFd) -> io::Result<()> {
    // Removing entries needs write and search permission on their directory.
    let stat = fstat(dir)?;
    if stat.st_mode & 0o700 != 0o700 {
        let _ = fchmod(dir, Mode::from_bits_truncate(stat.st_mode | 0o700));
    }
    for name in names_at(dir)? {
        remove_at(dir, &name)?;
    }
    Ok(())
}

/// Opens the directory `name` of `parent` for listing, never through a symlink. A directory
/// we own without read permission is first given it, through an `O_PATH` descriptor of that
/// very directory (`/proc/self/fd/N` names exactly the inode it holds).
fn open_for_removal(parent: BorrowedFd, name: &OsStr) -> io::Result<OwnedFd> {
    match openat(parent, name, dir_flags(), Mode::empty()) {
        Err(Errno::EACCES) => {}
        opened => return Ok(opened?),
    }
    let path_only = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let handle = openat(parent, name, path_only, Mode::empty())?;
    let stat = fstat(&handle)?;
    if stat.st_uid != geteuid().as_raw() {
        return Err(Errno::EACCES.into());
    }
    let magic = format!("/proc/self/fd/{}", handle.as_raw_fd());
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        magic.as_str(),
        Mode::from_bits_truncate(stat.st_mode | 0o700),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )?;
    Ok(openat(&handle, ".", dir_flags(), Mode::empty())?)
}

/// The names in a directory, without `.` and `..`.
pub fn names_at(dir: BorrowedFd) -> io::Result<Vec<OsString>> {
    let mut listing = nix::dir::Dir::from_fd(dir.try_clone_to_owned()?)?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(&name).to_os_string());
        }
    }
    Ok(names)
}

fn is_dir(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn removal_never_follows_a_symlink_inside() {
        let work = std::env::temp_dir().join(format!("plumbing-remove-{}", std::process::id()));
        let outside = work.join("outside");
        let tree = work.join("tree");
        fs::create_dir_all(outside.join("sub")).unwrap();
        fs::write(outside.join("sub/file"), "kept").unwrap();
        fs::set_permissions(outside.join("sub"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::create_dir_all(tree.join("a/locked")).unwrap();
        symlink(&outside, tree.join("a/link")).unwrap();
        fs::set_permissions(tree.join("a/locked"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(tree.join("a"), fs::Permissions::from_mode(0o500)).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert_eq!(
            fs::read_to_string(outside.join("sub/file")).unwrap(),
            "kept"
        );
        let mode = fs::metadata(outside.join("sub"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o555, "not made writable through the link");
        fs::set_permissions(outside.join("sub"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::remove_dir_all(&work).unwrap();
    }
}

//! A scratch directory on the host for one run of a step (step 07 keeps its overlay's
//! writable layer there), and what the container changed in it.

use std::ffi::CString;
use std::fmt::Write;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// `$TMPDIR/bento-NAME-PID`, removed with everything in it when dropped by the process
/// that created it.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    /// The process that created it. After fork(2) the child holds a copy of this value too,
    /// and the child of a step must never remove the parent's layers: it may fail and
    /// return while the parent still needs them, and it sees them through its own mounts.
    owner: u32,
}

impl Scratch {
    /// Creates the directory with the given empty subdirectories (mode 0700), after removing
    /// what earlier runs of the same step left behind if they were killed with SIGKILL.
    pub fn create(name: &str, subdirs: &[&str]) -> Result<Scratch> {
        let base = std::env::temp_dir();
        let prefix = format!("bento-{name}-");
        remove_leftovers(&base, &prefix);
        let dir = base.join(format!("{prefix}{}", std::process::id()));
        if dir.exists() {
            remove_tree(&dir)?;
        }
        for sub in std::iter::once("").chain(subdirs.iter().copied()) {
            let path = dir.join(sub);
            fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700))?;
        }
        Ok(Scratch {
            dir,
            owner: std::process::id(),
        })
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
        if std::process::id() != self.owner {
            return;
        }
        let _ = remove_tree(&self.dir);
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

/// Removes the `PREFIX<pid>` entries of `base` whose process is gone: what runs killed with
/// SIGKILL could not clean up.
pub fn remove_leftovers(base: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix))
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
            let _ = remove_tree(&entry.path());
        }
    }
}

/// `rm -rf`, also through directories without write or search permission (an overlay's
/// work directory has mode 000; some images ship read-only directories).
pub fn remove_tree(path: &Path) -> Result<()> {
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    make_writable(path);
    fs::remove_dir_all(path).with_context(|| format!("cannot remove {}", path.display()))
}

fn make_writable(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let mode = meta.permissions().mode() | 0o700;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                make_writable(&entry.path());
            }
        }
    }
}

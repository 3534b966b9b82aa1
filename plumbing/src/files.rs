//! Writing a file that others may read at any moment, or that another user may try to
//! redirect: whole or not at all, and never through a symlink.
//!
//! The rule (GUIDE, "Safety rules"): a new file gets an unpredictable name in the same
//! directory, created with `O_CREAT|O_EXCL|O_NOFOLLOW` (so nothing planted there is
//! followed or reused), is written, and is then renamed over the real name with
//! renameat(2): a reader sees the old contents or the new, and a symlink planted at the
//! real name is replaced, never written through. Both happen beneath a descriptor of the
//! directory, so the directory cannot be swapped in between either.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::{OFlag, open, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

/// A directory, read-only, never through a symlink in the last component.
pub fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The directory that holds `path` (opened: its own path may hold symlinks, such as
/// `/var/run -> /run`), and the file's name in it.
pub fn open_parent(path: &Path) -> Result<(OwnedFd, OsString)> {
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let dir = open(
        parent,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("cannot open the directory {}", parent.display()))?;
    Ok((dir, name.to_os_string()))
}

/// Writes `bytes` to `path` whole, with `mode` (see the module's rule).
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let (dir, name) = open_parent(path)?;
    write_atomically_at(dir.as_fd(), &name, bytes, mode)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// [`write_atomically`] of `name` in the directory `dir`.
pub fn write_atomically_at(dir: BorrowedFd, name: &OsStr, bytes: &[u8], mode: u32) -> Result<()> {
    let mut partial = OsString::from(".");
    partial.push(name);
    partial.push(format!(".{}", random_suffix()?));
    let file = openat(
        dir,
        partial.as_os_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )
    .context("cannot create a new file (O_EXCL|O_NOFOLLOW)")?;
    let written = std::fs::File::from(file)
        .write_all(bytes)
        .context("cannot write")
        .and_then(|()| {
            renameat(dir, partial.as_os_str(), dir, name).context("cannot rename it into place")
        });
    if written.is_err() {
        let _ = unlinkat(dir, partial.as_os_str(), UnlinkatFlags::NoRemoveDir);
    }
    written
}

/// Twelve hex digits from getrandom(2): a name nobody can guess and plant beforehand.
fn random_suffix() -> Result<String> {
    let mut bytes = [0u8; 6];
    // SAFETY: getrandom(2) writes at most `len` bytes into the buffer we own.
    let got = unsafe { nix::libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    anyhow::ensure!(
        got == bytes.len() as isize,
        "getrandom failed: {}",
        std::io::Error::last_os_error()
    );
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let dir = std::env::temp_dir().join(format!("plumbing-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("pid")).unwrap();
        write_atomically(&dir.join("pid"), b"42", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(dir.join("pid")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert_eq!(std::fs::read_to_string(dir.join("pid")).unwrap(), "42");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no partial file left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

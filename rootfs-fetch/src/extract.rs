//! Applying an image's layers to a directory, safely.
//!
//! A layer is a tar archive (plain, gzip or zstd) of what changed: new and changed files,
//! and *whiteouts* for what was deleted (`.wh.NAME` removes NAME; `.wh..wh..opq` empties
//! its directory of everything the lower layers put there). Layers are applied in order.
//!
//! An image is untrusted input, and a tar archive can name any path. Nothing here may
//! write outside the root: paths with `..` or a leading `/` are refused, and so is writing
//! *through* a symlink that leads out of the root (`evil -> /etc`, then `evil/passwd`):
//! every parent directory is looked at with `lstat`, and a symlink met on the way is
//! followed only if it is relative and stays inside (an absolute target is outside: on
//! the host, that is where it points). A layer's own symlinks are created as they are:
//! they only matter inside the container.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, fchown, lchown, symlink};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use nix::sys::stat::Mode;
use oci_spec::image::Digest;
use plumbing::{Hint, remove_tree};
use tar::EntryType;

use crate::blob::{Hashing, drain};
use crate::install::check_interrupted;

/// Symlinks followed while resolving one path before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Applies layers to a root directory.
pub struct Extractor {
    root: PathBuf,
    /// Root keeps the owners and setuid bits of the image; anyone else owns every file.
    privileged: bool,
    /// Directories' final modes and times, set once all layers are in: a read-only
    /// directory must stay writable while later entries and layers fill it.
    directories: BTreeMap<PathBuf, (u32, Option<u64>)>,
    /// What the current layer created, which its own opaque markers must keep.
    created: HashSet<PathBuf>,
    skipped_devices: Vec<PathBuf>,
    chown_failed: bool,
}

/// What could not be reproduced, for the notes printed at the end.
#[derive(Debug, Default)]
pub struct Summary {
    pub skipped_devices: Vec<PathBuf>,
    pub chown_failed: bool,
}

impl Extractor {
    pub fn new(root: &Path) -> Extractor {
        Extractor {
            root: root.to_path_buf(),
            privileged: nix::unistd::geteuid().is_root(),
            directories: BTreeMap::new(),
            created: HashSet::new(),
            skipped_devices: Vec::new(),
            chown_failed: false,
        }
    }

    /// Applies one layer and returns the digest of its uncompressed tar (its "diff ID",
    /// which the image's config lists).
    pub fn apply(&mut self, layer: impl Read) -> Result<Digest> {
        self.created.clear();
        let mut hashing = Hashing::new(decompress(layer)?);
        let mut archive = tar::Archive::new(hashing.by_ref());
        for entry in archive
            .entries()
            .context("corrupt layer: not a tar archive")?
        {
            check_interrupted()?;
            // The tar crate's message may quote raw header bytes: keep to words.
            let mut entry = entry.map_err(|_| {
                anyhow::anyhow!("corrupt layer: a damaged or truncated tar archive")
            })?;
            let path = entry
                .path()
                .context("corrupt layer: an entry without a valid path")?
                .into_owned();
            self.entry(&mut entry, &path)
                .with_context(|| path.display().to_string())?;
        }
        // The end-of-archive blocks belong to the diff ID too.
        drain(&mut hashing).context("corrupt layer")?;
        Ok(hashing.digest())
    }

    /// Sets the directories' modes and times, creates the mount points a container needs,
    /// and says what could not be reproduced.
    pub fn finish(self) -> Result<Summary> {
        // Deepest first, so that a parent is made read-only after its children are done.
        for (relative, (mode, mtime)) in self.directories.iter().rev() {
            let path = self.root.join(relative);
            // O_NOFOLLOW: if a later layer put a symlink there, leave whatever it points to.
            let Ok(dir) = OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_DIRECTORY)
                .open(&path)
            else {
                continue;
            };
            dir.set_permissions(fs::Permissions::from_mode(self.mode(*mode)))
                .with_context(|| format!("cannot set the mode of {}", path.display()))?;
            if let Some(mtime) = mtime {
                let _ = dir.set_modified(time(*mtime));
            }
        }
        // A runtime creates these mount points when the image has none (Docker's busybox
        // image has no /proc, and step 05 mounts proc there): so do we, empty.
        for (dir, mode) in [
            ("proc", 0o555),
            ("sys", 0o555),
            ("dev", 0o755),
            ("tmp", 0o1777),
        ] {
            let path = self.root.join(dir);
            if fs::symlink_metadata(&path).is_err() {
                fs::create_dir(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .with_context(|| format!("cannot set the mode of {}", path.display()))?;
            }
        }
        Ok(Summary {
            skipped_devices: self.skipped_devices,
            chown_failed: self.chown_failed,
        })
    }

    fn entry(&mut self, entry: &mut tar::Entry<impl Read>, path: &Path) -> Result<()> {
        let components = components(path)?;
        // The root itself (`./`): it is the staging directory, already there.
        let Some((name, parents)) = components.split_last() else {
            return Ok(());
        };
        if let Some(hidden) = name.to_str().and_then(|name| name.strip_prefix(".wh.")) {
            return self.whiteout(parents, hidden);
        }
        let relative = self
            .resolve_dir(parents, true)?
            .unwrap_or_default()
            .join(name);
        self.created.insert(relative.clone());
        let path = self.root.join(&relative);
        let header = entry.header();
        let (mode, mtime) = (header.mode()?, header.mtime()?);
        let owner = (header.uid()?, header.gid()?);
        match header.entry_type() {
            EntryType::Directory => {
                match fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => {}
                    _ => {
                        self.clear(&path)?;
                        fs::create_dir(&path)
                            .with_context(|| format!("cannot create {}", path.display()))?;
                    }
                }
                if self.privileged {
                    let _ = self.chown(&path, owner);
                }
                self.directories.insert(relative, (mode, Some(mtime)));
            }
            EntryType::Regular | EntryType::Continuous => {
                self.clear(&path)?;
                // create_new: O_CREAT|O_EXCL never follows a symlink.
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                io::copy(entry, &mut file).context("corrupt layer: a truncated file")?;
                if self.privileged {
                    // Before chmod: chown(2) clears the setuid and setgid bits.
                    self.chown_failed |=
                        fchown(&file, Some(owner.0 as u32), Some(owner.1 as u32)).is_err();
                }
                file.set_permissions(fs::Permissions::from_mode(self.mode(mode)))?;
                let _ = file.set_modified(time(mtime));
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .context("corrupt layer: a symlink without a target")?;
                self.clear(&path)?;
                symlink(&target, &path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                if self.privileged {
                    let _ = self.chown(&path, owner);
                }
            }
            EntryType::Link => {
                let target = entry
                    .link_name()?
                    .context("corrupt layer: a hard link without a target")?;
                let target = self.resolve_link_target(&target)?;
                self.clear(&path)?;
                fs::hard_link(&target, &path)
                    .with_context(|| format!("cannot link {}", path.display()))?;
            }
            EntryType::Fifo => {
                self.clear(&path)?;
                nix::unistd::mkfifo(&path, Mode::from_bits_truncate(self.mode(mode)))
                    .with_context(|| format!("cannot create {}", path.display()))?;
                if self.privileged {
                    let _ = self.chown(&path, owner);
                }
            }
            // Creating device nodes needs privilege, and a root filesystem from the
            // internet has no business holding them: the container gets its own /dev.
            EntryType::Char | EntryType::Block => self.skipped_devices.push(relative),
            // Global headers, volume labels…: nothing to put on disk.
            _ => {}
        }
        Ok(())
    }

    /// `.wh.NAME` deletes NAME from the lower layers; `.wh..wh..opq` deletes everything
    /// the lower layers put in its directory.
    fn whiteout(&mut self, parents: &[OsString], hidden: &str) -> Result<()> {
        let Some(dir) = self.resolve_dir(parents, false)? else {
            return Ok(()); // nothing there to delete
        };
        if hidden == ".wh..opq" {
            let Ok(children) = fs::read_dir(self.root.join(&dir)) else {
                return Ok(());
            };
            for child in children {
                let relative = dir.join(child?.file_name());
                if !self.created.iter().any(|made| made.starts_with(&relative)) {
                    self.clear(&self.root.join(relative))?;
                }
            }
            return Ok(());
        }
        if hidden.starts_with(".wh.") {
            return Ok(()); // other aufs bookkeeping (.wh..wh.plnk…): not part of the tree
        }
        if matches!(hidden, "" | "." | "..") {
            return hostile(format!("a whiteout of {hidden:?}"));
        }
        let relative = dir.join(hidden);
        if !self.created.contains(&relative) {
            self.clear(&self.root.join(relative))?;
        }
        Ok(())
    }

    /// Finds the real directory that `parents` names inside the root, following the
    /// relative symlinks that stay inside and refusing the others, and creating what is
    /// missing when `create`. Returns its path relative to the root, or None if it does
    /// not exist and `create` is false.
    fn resolve_dir(&mut self, parents: &[OsString], create: bool) -> Result<Option<PathBuf>> {
        let mut resolved = PathBuf::new();
        let mut pending: VecDeque<OsString> = parents.iter().cloned().collect();
        let mut links = 0;
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                // Only a symlink's target brings `..` here.
                if !resolved.pop() {
                    return hostile("a symlink on the path climbs out of the root filesystem");
                }
                continue;
            }
            let next = resolved.join(&name);
            let path = self.root.join(&next);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        bail!("{}: too many levels of symbolic links", next.display());
                    }
                    let target = fs::read_link(&path)?;
                    if target.has_root() {
                        return hostile(format!(
                            "{} is a symlink to {}, outside the root filesystem: refusing to write through it",
                            next.display(),
                            target.display()
                        ));
                    }
                    let mut expanded: VecDeque<OsString> = target
                        .components()
                        .filter(|part| *part != Component::CurDir)
                        .map(|part| part.as_os_str().to_os_string())
                        .collect();
                    expanded.extend(pending);
                    pending = expanded;
                    continue;
                }
                Ok(_) => bail!("corrupt layer: {} is not a directory", next.display()),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    fs::create_dir(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    self.directories.insert(next.clone(), (0o755, None));
                }
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("cannot inspect {}", path.display()));
                }
            }
            resolved = next;
        }
        Ok(Some(resolved))
    }

    /// The file a hard link entry links to: an earlier entry, inside the root.
    fn resolve_link_target(&mut self, target: &Path) -> Result<PathBuf> {
        let components = components(target).context("hard link target")?;
        let Some((name, parents)) = components.split_last() else {
            return hostile("a hard link to the root directory");
        };
        self.resolve_dir(parents, false)?
            .map(|dir| self.root.join(dir).join(name))
            .filter(|path| fs::symlink_metadata(path).is_ok_and(|meta| !meta.is_dir()))
            .with_context(|| {
                format!(
                    "corrupt layer: a hard link to {}, which is not an earlier file of the image",
                    target.display()
                )
            })
    }

    /// Removes whatever is at `path` (a file, a symlink itself, or a whole directory).
    fn clear(&self, path: &Path) -> Result<()> {
        match fs::symlink_metadata(path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error).with_context(|| format!("cannot inspect {}", path.display())),
            Ok(meta) if meta.is_dir() => remove_tree(path),
            Ok(_) => {
                fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))
            }
        }
    }

    fn chown(&mut self, path: &Path, (uid, gid): (u64, u64)) -> io::Result<()> {
        let result = lchown(path, Some(uid as u32), Some(gid as u32));
        self.chown_failed |= result.is_err();
        result
    }

    /// The permission bits to give: the image's, without setuid/setgid for a user who
    /// could not have made such files themselves.
    fn mode(&self, mode: u32) -> u32 {
        if self.privileged {
            mode & 0o7777
        } else {
            mode & 0o1777
        }
    }
}

/// The components of an entry's path, refusing those that would leave the root.
fn components(path: &Path) -> Result<Vec<OsString>> {
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => names.push(name.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                return hostile("a path with `..` would write outside the root filesystem");
            }
            Component::RootDir | Component::Prefix(_) => {
                return hostile("an absolute path would write outside the root filesystem");
            }
        }
    }
    Ok(names)
}

/// The error for an archive that tries to reach outside the root.
fn hostile<T>(what: impl std::fmt::Display) -> Result<T> {
    Err(anyhow::anyhow!("refused: {what}")).hint(
        "the image is corrupt or hostile: nothing was written outside the target, which was left as it was",
    )
}

/// Recognises the layer's compression by its first bytes, whatever the media type says.
pub fn decompress<'a>(layer: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut layer = BufReader::new(layer);
    let magic = layer.fill_buf().context("cannot read the layer")?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(layer))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            ruzstd::decoding::StreamingDecoder::new(layer)
                .map_err(|error| anyhow::anyhow!("corrupt zstd layer: {error}"))?,
        )
    } else if magic.starts_with(b"BZh") || magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        bail!("unsupported layer compression (bzip2 or xz): only gzip and zstd are");
    } else {
        Box::new(layer)
    })
}

fn time(mtime: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(mtime)
}

/// For messages: a path as the container sees it.
pub fn in_container(path: &Path) -> String {
    Path::new("/").join(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn paths_that_leave_the_root_are_refused() {
        assert_eq!(
            components(Path::new("./bin/./sh")).unwrap(),
            [OsStr::new("bin"), OsStr::new("sh")]
        );
        let error = components(Path::new("bin/../../etc")).unwrap_err();
        assert!(format!("{error:#}").contains("`..`"));
        let error = components(Path::new("/etc/passwd")).unwrap_err();
        assert!(format!("{error:#}").contains("absolute path"));
    }
}

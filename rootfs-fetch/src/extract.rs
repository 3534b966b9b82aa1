//! Applying an image's layers to a directory, safely.
//!
//! A layer is a tar archive (plain, gzip or zstd) of what changed: new and changed files,
//! and *whiteouts* for what was deleted (`.wh.NAME` removes NAME; `.wh..wh..opq` empties
//! its directory of everything the lower layers put there). Layers are applied in order.
//!
//! An image is untrusted input, and a tar archive can name any path. The rules:
//! - Names with `..` or a leading `/` are refused.
//! - Every path is resolved *beneath the root's directory descriptor*, never as a path
//!   string from `/`: `openat2(2)` with `RESOLVE_IN_ROOT` treats the root filesystem as `/`
//!   while resolving, so the image's own symlinks work as they will in the container
//!   (`var/run -> /run` means the rootfs's `/run`, as Docker and umoci do it) and neither a
//!   symlink nor `..` can lead out. Then only `*at` calls relative to that descriptor
//!   (`mkdirat`, `openat(O_EXCL|O_NOFOLLOW)`, `fchownat`, `linkat`, `unlinkat`…) touch it.
//! - Directories' final modes and times are applied at the end to the *inodes* that were
//!   created, found by a walk that never follows a symlink: a directory replaced since by
//!   a symlink is not there to be found, and what the symlink points to is left alone.
//! - The tree is private until complete (the staging directory is 0700, see `install`).
//! - Setuid and setgid bits are dropped unless asked for (`--keep-setuid`, as root).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, open, openat, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, futimens, mkdirat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat, linkat, mkfifoat, symlinkat};
use oci_spec::image::Digest;
use plumbing::{Hint, names_at, remove_at};
use tar::EntryType;

use crate::blob::{Hashing, drain};
use crate::interrupt::check_interrupted;
use plumbing::files::dir_flags;

/// What the caller may choose about an extraction.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keep setuid/setgid bits (root only): the workshop never needs them, and a root
    /// filesystem pulled as root would otherwise hand root to every local user.
    pub keep_setuid: bool,
    /// The most bytes of file contents one layer may expand to: a few MB of gzip can
    /// expand to terabytes (a "decompression bomb").
    pub max_layer_size: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            keep_setuid: false,
            max_layer_size: DEFAULT_MAX_LAYER_SIZE,
        }
    }
}

/// Generous: the largest layers of common images are a few GB.
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 16 << 30;

/// An inode: its device and number.
type Inode = (u64, u64);

/// Applies layers to a root directory.
pub struct Extractor {
    /// The root filesystem: everything is resolved beneath this descriptor.
    root: OwnedFd,
    /// Root keeps the owners of the image; anyone else owns every file.
    privileged: bool,
    options: Options,
    /// Directories' final modes and times, by inode, set once all layers are in: a
    /// read-only directory must stay writable while later entries and layers fill it.
    directories: HashMap<Inode, (u32, Option<u64>)>,
    /// What the current layer created (its directory and name), which its own whiteouts
    /// must keep…
    created: HashSet<(Inode, OsString)>,
    /// …and the directories it wrote beneath, which its opaque markers must keep too.
    touched: HashSet<Inode>,
    /// Bytes of file contents written by the current layer.
    expanded: u64,
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
    /// Opens the (empty, private) directory `root` to apply layers to.
    pub fn new(root: &Path, options: Options) -> Result<Extractor> {
        let root = open(root, dir_flags(), Mode::empty())
            .with_context(|| format!("cannot open {}", root.display()))?;
        Ok(Extractor {
            root,
            privileged: nix::unistd::geteuid().is_root(),
            options,
            directories: HashMap::new(),
            created: HashSet::new(),
            touched: HashSet::new(),
            expanded: 0,
            skipped_devices: Vec::new(),
            chown_failed: false,
        })
    }

    /// Applies one layer and returns the digest of its uncompressed tar (its "diff ID",
    /// which the image's config lists).
    pub fn apply(&mut self, layer: impl Read) -> Result<Digest> {
        self.created.clear();
        self.touched.clear();
        self.expanded = 0;
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
        // A runtime creates these mount points when the image has none (Docker's busybox
        // image has no /proc, and step 05 mounts proc there): so do we, empty.
        for (dir, mode) in [
            ("proc", 0o555),
            ("sys", 0o555),
            ("dev", 0o755),
            ("tmp", 0o1777),
        ] {
            if fstatat(&self.root, dir, AtFlags::AT_SYMLINK_NOFOLLOW) == Err(Errno::ENOENT) {
                let made = mkdirat(&self.root, dir, Mode::from_bits_truncate(0o700))
                    .and_then(|()| openat(&self.root, dir, dir_flags(), Mode::empty()))
                    .and_then(|made| fchmod(&made, Mode::from_bits_truncate(mode)));
                made.with_context(|| format!("cannot create /{dir}"))?;
            }
        }
        // Children first, so that a parent is made read-only after its children are done.
        self.set_directories(self.root.as_fd(), Path::new(""))?;
        Ok(Summary {
            skipped_devices: self.skipped_devices,
            chown_failed: self.chown_failed,
        })
    }

    /// Walks `dir` without following symlinks, giving every directory the image made its
    /// mode and time (after its children's).
    fn set_directories(&self, dir: BorrowedFd, path: &Path) -> Result<()> {
        for name in names_at(dir).with_context(|| format!("cannot read /{}", path.display()))? {
            check_interrupted()?;
            let Ok(stat) = fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            if !is(&stat, SFlag::S_IFDIR) {
                continue;
            }
            let inside = path.join(&name);
            let child = openat(dir, name.as_os_str(), dir_flags(), Mode::empty())
                .with_context(|| format!("cannot open /{}", inside.display()))?;
            self.set_directories(child.as_fd(), &inside)?;
            if let Some((mode, mtime)) = self.directories.get(&inode(&stat)) {
                fchmod(&child, Mode::from_bits_truncate(self.mode(*mode)))
                    .with_context(|| format!("cannot set the mode of /{}", inside.display()))?;
                if let Some(mtime) = mtime {
                    let _ = futimens(&child, &TimeSpec::UTIME_OMIT, &seconds(*mtime));
                }
            }
        }
        Ok(())
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
        let Some(parent) = self.resolve_dir(parents, true)? else {
            return Ok(()); // resolve_dir creates what is missing
        };
        let parent_inode = inode(&fstat(&parent)?);
        self.created.insert((parent_inode, name.clone()));
        let name = name.as_os_str();
        let header = entry.header();
        let (mode, mtime) = (header.mode()?, header.mtime()?);
        let owner = (header.uid()?, header.gid()?);
        match header.entry_type() {
            EntryType::Directory => {
                let existing = fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW);
                if !existing.is_ok_and(|stat| is(&stat, SFlag::S_IFDIR)) {
                    self.clear(&parent, name)?;
                    // 0700 while it is filled; its own mode comes at the end.
                    mkdirat(&parent, name, Mode::from_bits_truncate(0o700))
                        .context("cannot create the directory")?;
                }
                let dir = openat(&parent, name, path_flags(), Mode::empty())?;
                if self.privileged {
                    self.chown(fchownat(
                        &dir,
                        "",
                        uid(owner),
                        gid(owner),
                        AtFlags::AT_EMPTY_PATH,
                    ));
                }
                let made = inode(&fstat(&dir)?);
                self.directories.insert(made, (mode, Some(mtime)));
                self.touched.insert(made);
            }
            EntryType::Regular | EntryType::Continuous => {
                self.clear(&parent, name)?;
                // O_CREAT|O_EXCL|O_NOFOLLOW: a new file, never anything a name points to.
                let flags = OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let file = openat(&parent, name, flags, Mode::from_bits_truncate(0o600))
                    .context("cannot create the file")?;
                let mut file = File::from(file);
                self.copy(entry, &mut file)?;
                if self.privileged {
                    // Before chmod: chown(2) clears the setuid and setgid bits.
                    self.chown(nix::unistd::fchown(&file, uid(owner), gid(owner)));
                }
                fchmod(&file, Mode::from_bits_truncate(self.mode(mode)))?;
                let _ = futimens(&file, &TimeSpec::UTIME_OMIT, &seconds(mtime));
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .context("corrupt layer: a symlink without a target")?;
                self.clear(&parent, name)?;
                // Created as it is: it is resolved inside the root, by us and the container.
                symlinkat(target.as_ref(), &parent, name).context("cannot create the symlink")?;
                if self.privileged {
                    let flags = AtFlags::AT_SYMLINK_NOFOLLOW;
                    self.chown(fchownat(&parent, name, uid(owner), gid(owner), flags));
                }
            }
            EntryType::Link => {
                let target = entry
                    .link_name()?
                    .context("corrupt layer: a hard link without a target")?;
                let (dir, target_name) = self.resolve_link_target(&target)?;
                if inode(&fstat(&dir)?) == parent_inode && target_name == name {
                    return Ok(()); // a link to itself: it already is
                }
                self.clear(&parent, name)?;
                // linkat(2) without AT_SYMLINK_FOLLOW links a symlink itself.
                linkat(
                    &dir,
                    target_name.as_os_str(),
                    &parent,
                    name,
                    AtFlags::empty(),
                )
                .context("cannot create the hard link")?;
            }
            EntryType::Fifo => {
                self.clear(&parent, name)?;
                mkfifoat(&parent, name, Mode::from_bits_truncate(0o600))
                    .context("cannot create the FIFO")?;
                // mkfifo(3) applies the umask: set the image's mode on the FIFO itself
                // (O_NONBLOCK: opening a FIFO for reading does not wait for a writer).
                let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW;
                let fifo = openat(&parent, name, flags | OFlag::O_CLOEXEC, Mode::empty())?;
                if self.privileged {
                    self.chown(nix::unistd::fchown(&fifo, uid(owner), gid(owner)));
                }
                fchmod(&fifo, Mode::from_bits_truncate(self.mode(mode)))?;
            }
            // Creating device nodes needs privilege, and a root filesystem from the
            // internet has no business holding them: the container gets its own /dev.
            EntryType::Char | EntryType::Block => self.skipped_devices.push(path.to_path_buf()),
            // Global headers, volume labels…: nothing to put on disk.
            _ => {}
        }
        Ok(())
    }

    /// Copies a file's contents, counting them against the layer's limit, and stopping
    /// at Ctrl-C even in the middle of a huge file.
    fn copy(&mut self, from: &mut impl Read, to: &mut File) -> Result<()> {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            check_interrupted()?;
            let n = from
                .read(&mut buffer)
                .map_err(|_| anyhow::anyhow!("corrupt layer: a truncated file"))?;
            if n == 0 {
                return Ok(());
            }
            self.expanded += n as u64;
            if self.expanded > self.options.max_layer_size {
                return Err(TooLarge(self.options.max_layer_size).into());
            }
            // Kept as an io::Error: a full disk is recognised by it (see `disk_full`).
            to.write_all(&buffer[..n])?;
        }
    }

    /// `.wh.NAME` deletes NAME from the lower layers; `.wh..wh..opq` deletes everything
    /// the lower layers put in its directory.
    fn whiteout(&mut self, parents: &[OsString], hidden: &str) -> Result<()> {
        let Some(dir) = self.resolve_dir(parents, false)? else {
            return Ok(()); // nothing there to delete
        };
        let dir_inode = inode(&fstat(&dir)?);
        if hidden == ".wh..opq" {
            let Ok(listing) = openat(&dir, ".", dir_flags(), Mode::empty()) else {
                return Ok(());
            };
            // One look-up per child in the sets of what this layer made: linear.
            for child in names_at(listing.as_fd())? {
                check_interrupted()?;
                if self.created.contains(&(dir_inode, child.clone())) {
                    continue;
                }
                let stat = fstatat(&listing, child.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW);
                if stat.is_ok_and(|stat| self.touched.contains(&inode(&stat))) {
                    continue;
                }
                self.clear(&dir, &child)?;
            }
            return Ok(());
        }
        if hidden.starts_with(".wh.") {
            return Ok(()); // other aufs bookkeeping (.wh..wh.plnk…): not part of the tree
        }
        if matches!(hidden, "" | "." | "..") {
            return hostile(format!("a whiteout of {hidden:?}"));
        }
        if !self.created.contains(&(dir_inode, OsString::from(hidden))) {
            self.clear(&dir, OsStr::new(hidden))?;
        }
        Ok(())
    }

    /// Opens the directory that `parents` names inside the root, creating what is missing
    /// when `create`. Symlinks on the way are followed *inside the root* (`RESOLVE_IN_ROOT`:
    /// an absolute one, or `..`, starts again from the root, never from the host's `/`).
    /// Returns None if it does not exist and `create` is false.
    fn resolve_dir(&mut self, parents: &[OsString], create: bool) -> Result<Option<OwnedFd>> {
        let mut dir = openat(&self.root, ".", path_flags(), Mode::empty())?;
        let mut prefix = PathBuf::new();
        self.touched.insert(inode(&fstat(&dir)?));
        for name in parents {
            prefix.push(name);
            let how = OpenHow::new()
                .flags(path_flags() - OFlag::O_NOFOLLOW)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            dir = match openat2(&self.root, &prefix, how) {
                Ok(next) => next,
                Err(Errno::ENOENT) if !create => return Ok(None),
                Err(Errno::ENOENT) => {
                    match mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(0o700)) {
                        Ok(()) => {}
                        Err(Errno::EEXIST) => bail!(
                            "corrupt layer: {} is a symlink to a directory the image does not have",
                            prefix.display()
                        ),
                        Err(error) => {
                            return Err(error)
                                .with_context(|| format!("cannot create {}", prefix.display()));
                        }
                    }
                    let made = openat(&dir, name.as_os_str(), path_flags(), Mode::empty())?;
                    self.directories
                        .insert(inode(&fstat(&made)?), (0o755, None));
                    made
                }
                Err(Errno::ENOTDIR) => {
                    bail!("corrupt layer: {} is not a directory", prefix.display())
                }
                Err(Errno::ELOOP) => {
                    bail!("{}: too many levels of symbolic links", prefix.display())
                }
                Err(Errno::ENOSYS) => {
                    return Err(anyhow::anyhow!("this kernel has no openat2(2)"))
                        .hint("rootfs-fetch needs Linux 5.6 or later to extract images safely");
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot open {}", prefix.display()));
                }
            };
            self.touched.insert(inode(&fstat(&dir)?));
        }
        Ok(Some(dir))
    }

    /// The file a hard link entry links to: an earlier entry, inside the root. Returns its
    /// directory and name.
    fn resolve_link_target(&mut self, target: &Path) -> Result<(OwnedFd, OsString)> {
        let components = components(target).context("hard link target")?;
        let Some((name, parents)) = components.split_last() else {
            return hostile("a hard link to the root directory");
        };
        let not_a_file = || {
            format!(
                "corrupt layer: a hard link to {}, which is not an earlier file of the image",
                target.display()
            )
        };
        let dir = self.resolve_dir(parents, false)?.with_context(not_a_file)?;
        match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) if !is(&stat, SFlag::S_IFDIR) => Ok((dir, name.clone())),
            _ => bail!(not_a_file()),
        }
    }

    /// Removes whatever is at `name` in `dir` (a file, a symlink itself, or a whole
    /// directory), following nothing.
    fn clear(&self, dir: &OwnedFd, name: &OsStr) -> Result<()> {
        remove_at(dir.as_fd(), name)
            .with_context(|| format!("cannot remove {}", Path::new(name).display()))
    }

    fn chown(&mut self, result: nix::Result<()>) {
        self.chown_failed |= result.is_err();
    }

    /// The permission bits to give: the image's, without setuid/setgid unless root asked
    /// to keep them (a user could not have made such files anyway).
    fn mode(&self, mode: u32) -> u32 {
        if self.privileged && self.options.keep_setuid {
            mode & 0o7777
        } else {
            mode & 0o1777
        }
    }
}

/// A layer that expands to more than the limit.
#[derive(Debug)]
pub struct TooLarge(pub u64);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "refused: the layer expands to more than {} (a decompression bomb?)",
            human_size(self.0)
        )
    }
}

impl std::error::Error for TooLarge {}

/// Did this error come from a full disk (or quota)?
pub fn disk_full(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let errno = cause
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
            .map(Errno::from_raw)
            .or_else(|| cause.downcast_ref::<Errno>().copied());
        matches!(errno, Some(Errno::ENOSPC | Errno::EDQUOT))
    })
}

/// `1.5 GB`, `300 MB`, `12 kB`, `7 bytes`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{:.0} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.0} MB", bytes as f64 / 1e6),
        _ => format!("{:.1} GB", bytes as f64 / 1e9),
    }
}

/// A directory as a place to resolve beneath (`O_PATH`: no permission needed to hold it).
fn path_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn inode(stat: &FileStat) -> Inode {
    (stat.st_dev, stat.st_ino)
}

fn is(stat: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == kind
}

fn uid((uid, _): (u64, u64)) -> Option<Uid> {
    Some(Uid::from_raw(uid as u32))
}

fn gid((_, gid): (u64, u64)) -> Option<Gid> {
    Some(Gid::from_raw(gid as u32))
}

fn seconds(mtime: u64) -> TimeSpec {
    TimeSpec::new(mtime.min(i64::MAX as u64) as i64, 0)
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

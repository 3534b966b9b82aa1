//! The blob cache: `$XDG_CACHE_HOME/bento/` (default `~/.cache/bento/`).
//!
//! Blobs are stored under their digest (`blobs/sha256/HEX`), so a second pull of the same
//! image downloads nothing and works offline. A blob is hashed when written and again when
//! read: a cache is a file tree anyone with the same uid can edit. Which manifest a tag
//! named at the last pull is remembered in `refs/REGISTRY/REPOSITORY/TAG`, so that a tag
//! can still be used when the registry cannot be reached. Downloads in progress live in
//! a private `partial-PID-XXXXXX/` and are renamed into place only when complete and verified.
//!
//! The cache must belong to the user running rootfs-fetch: root (with `sudo -E`, whose
//! HOME is still the user's) never writes into another user's cache; files are created
//! with `O_EXCL|O_NOFOLLOW` and renamed beneath directory descriptors. Without a usable
//! cache, a pull goes through a private temporary one, removed at the end.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::fcntl::{OFlag, open, openat, renameat};
use nix::sys::stat::{Mode, fstat, mkdirat};
use nix::unistd::geteuid;
use oci_spec::image::Digest;
use plumbing::{Hint, remove_at, remove_tree};

use crate::blob::{self, Blob, Hashing};
use crate::interrupt::check_interrupted;
use crate::reference::Reference;
use plumbing::files::dir_flags;

/// The cache directory.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    /// `dir` itself and `dir/blobs/sha256`, opened once and checked to be ours.
    top: OwnedFd,
    blobs: OwnedFd,
    /// This run's unfinished files (`partial-PID-XXXXXX/`, private), removed when it ends.
    partial: PathBuf,
    partial_fd: OwnedFd,
    /// A cache made for this run only (there was no usable one), removed when it ends.
    temporary: Option<PathBuf>,
}

impl Cache {
    /// Opens (creates) the user's cache, and removes downloads that dead runs left
    /// half-done. The cache is an optimisation: without a usable one (no HOME, not
    /// writable, or another user's), pull through a private temporary one, and say so.
    pub fn open() -> Result<Cache> {
        match user_cache().and_then(|dir| Cache::at(&dir)) {
            Ok(cache) => Ok(cache),
            Err(error) => {
                eprintln!("rootfs-fetch: note: not caching ({error:#}): pulling without a cache");
                Cache::temporary()
            }
        }
    }

    /// A private cache in `$TMPDIR` for this run only.
    fn temporary() -> Result<Cache> {
        plumbing::remove_leftovers(&std::env::temp_dir(), "bento-cache-");
        let template =
            std::env::temp_dir().join(format!("bento-cache-{}-XXXXXX", std::process::id()));
        let dir = nix::unistd::mkdtemp(&template)
            .with_context(|| {
                format!(
                    "cannot create a temporary cache in {}",
                    std::env::temp_dir().display()
                )
            })
            .hint("set XDG_CACHE_HOME (or TMPDIR) to a directory you can write to")?;
        match Cache::at(&dir) {
            Ok(mut cache) => {
                cache.temporary = Some(dir);
                Ok(cache)
            }
            Err(error) => {
                let _ = remove_tree(&dir);
                Err(error)
            }
        }
    }

    /// Opens (creates) the cache in `dir` (bento keeps it under `$BENTO_HOME`).
    pub fn at(dir: &Path) -> Result<Cache> {
        // Never write where another user owns the directory: with `sudo -E`, HOME is still
        // the user's, and root would create files the user can redirect with symlinks.
        // So the nearest existing ancestor must be ours before anything is created…
        let mut existing = dir;
        while let Err(error) = fs::metadata(existing) {
            existing = existing
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .ok_or(error)?;
        }
        // (A sticky directory such as /tmp will do too: no one else can touch what we make
        // in it, and what we make is checked below.)
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let ancestor = open(existing, flags, Mode::empty())?;
        if fstat(&ancestor)?.st_mode & 0o1000 == 0 {
            owned_by_us(&ancestor, existing)?;
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // …and so must every directory of the cache, checked on the opened descriptors
        // (O_NOFOLLOW below the top: nothing in it may be a symlink).
        let top = open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("cannot open {}", dir.display()))?;
        owned_by_us(&top, dir)?;
        let blobs = subdir(&subdir(&top, dir, "blobs")?, dir, "sha256")?;
        // Downloads that runs killed with SIGKILL left half-done.
        plumbing::remove_leftovers(dir, "partial-");
        let partial =
            nix::unistd::mkdtemp(&dir.join(format!("partial-{}-XXXXXX", std::process::id())))
                .with_context(|| format!("cannot write in {}", dir.display()))?;
        let name = partial.file_name().unwrap_or_default().to_os_string();
        let partial_fd = openat(&top, name.as_os_str(), dir_flags(), Mode::empty())
            .with_context(|| format!("cannot open {}", partial.display()))?;
        Ok(Cache {
            dir: dir.to_path_buf(),
            top,
            blobs,
            partial,
            partial_fd,
            temporary: None,
        })
    }

    fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        Ok(self
            .dir
            .join("blobs/sha256")
            .join(blob::sha256_hex(digest)?))
    }

    /// The cached blob `digest`, if it is there and intact (a damaged one is removed).
    pub fn get(&self, digest: &Digest) -> Result<Option<Blob>> {
        let path = self.blob_path(digest)?;
        let Ok(found) = Blob::file(&path) else {
            return Ok(None);
        };
        match found.verify(digest, None) {
            Ok(()) => Ok(Some(found)),
            Err(error) if check_interrupted().is_err() => Err(error),
            Err(_) => {
                let _ = remove_at(self.blobs.as_fd(), blob::sha256_hex(digest)?.as_ref());
                Ok(None)
            }
        }
    }

    /// Stores the blob `digest` read from `reader`, which must hold exactly `size` bytes
    /// (when known) hashing to `digest`; `progress` is told of every chunk. Nothing is
    /// left behind if it does not, or on Ctrl-C.
    pub fn put(
        &self,
        digest: &Digest,
        size: Option<u64>,
        reader: impl Read,
        mut progress: impl FnMut(u64),
    ) -> Result<Blob> {
        let hex = blob::sha256_hex(digest)?;
        let partial = self.partial_file(hex)?;
        // One byte more than announced shows a blob that is too long (saturating: a
        // descriptor may claim 2^64-1 bytes).
        let limit = size.map_or(u64::MAX, |size| size.saturating_add(1));
        let mut hashing = Hashing::new(reader.take(limit));
        let mut buffer = vec![0; 64 * 1024];
        let mut file = &partial.file;
        loop {
            check_interrupted()?;
            let n = hashing.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            file.write_all(&buffer[..n])
                .with_context(|| format!("cannot write {}", self.partial.join(hex).display()))?;
            progress(n as u64);
        }
        if let Some(size) = size
            && hashing.count() != size
        {
            return Err(anyhow::anyhow!(
                "{digest}: size mismatch: expected {size} bytes, received {}{}",
                hashing.count().min(size),
                if hashing.count() > size {
                    " and more"
                } else {
                    ""
                }
            ))
            .hint("the registry sent something else than the image describes: try again later");
        }
        blob::check(digest, &hashing.digest())?;
        partial.persist(&self.blobs, &self.blob_path(digest)?)?;
        Blob::file(&self.blob_path(digest)?)
    }

    /// Stores a blob already in memory (a manifest).
    pub fn put_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<Blob> {
        self.put(digest, Some(bytes.len() as u64), bytes, |_| {})
    }

    fn ref_path(&self, reference: &Reference, tag: &str) -> PathBuf {
        // Registry, repository and tag were validated when parsed: no `..`, no `/` in tags.
        self.dir
            .join("refs")
            .join(&reference.registry)
            .join(&reference.repository)
            .join(tag)
    }

    /// The manifest digest `reference`'s tag had when it was last pulled.
    pub fn tagged(&self, reference: &Reference) -> Option<Digest> {
        let tag = reference.tag.as_deref()?;
        fs::read_to_string(self.ref_path(reference, tag))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Remembers that `reference`'s tag now names the manifest `digest`.
    pub fn tag(&self, reference: &Reference, digest: &Digest) -> Result<()> {
        let Some(tag) = reference.tag.as_deref() else {
            return Ok(());
        };
        let path = self.ref_path(reference, tag);
        // The directories below refs/, one at a time beneath the cache's descriptor.
        let relative = path.strip_prefix(&self.dir).unwrap_or(&path);
        let mut dir = openat(&self.top, ".", dir_flags(), Mode::empty())?;
        if let Some(parents) = relative.parent() {
            for name in parents.iter() {
                dir = subdir(&dir, &self.dir, &name.to_string_lossy())?;
            }
        }
        let partial = self.partial_file("tag")?;
        (&partial.file)
            .write_all(format!("{digest}\n").as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        partial.persist(&dir, &path)
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        match &self.temporary {
            Some(dir) => {
                let _ = remove_tree(dir);
            }
            None => {
                let _ = remove_at(
                    self.top.as_fd(),
                    self.partial.file_name().unwrap_or_default(),
                );
            }
        }
    }
}

/// The user's cache directory: `$XDG_CACHE_HOME/bento`, or `~/.cache/bento`.
fn user_cache() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| Path::new(&home).join(".cache"))
            .context("neither XDG_CACHE_HOME nor HOME is set")?,
    };
    Ok(base.join("bento"))
}

/// Fails unless the directory `fd` (at `path`) belongs to the user running us.
fn owned_by_us(fd: &OwnedFd, path: &Path) -> Result<()> {
    let owner = fstat(fd)?.st_uid;
    if owner != geteuid().as_raw() {
        bail!("{} belongs to another user (uid {owner})", path.display());
    }
    Ok(())
}

/// The directory `name` in `dir` (created if missing), never through a symlink, and ours.
fn subdir(dir: &OwnedFd, cache: &Path, name: &str) -> Result<OwnedFd> {
    let _ = mkdirat(dir, name, Mode::from_bits_truncate(0o755));
    let sub = openat(dir, name, dir_flags(), Mode::empty())
        .with_context(|| format!("cannot open {name} in the cache {}", cache.display()))?;
    owned_by_us(&sub, &cache.join(name))?;
    Ok(sub)
}

/// A file being written in `partial-PID-XXXXXX/`, renamed into place when complete and
/// removed otherwise, so that readers never see half a blob.
struct Partial {
    dir: OwnedFd,
    name: OsString,
    file: File,
}

impl Cache {
    /// Starts writing a new file `name` in this run's private directory (O_EXCL|O_NOFOLLOW:
    /// a new file, never one a planted name points to).
    fn partial_file(&self, name: &str) -> Result<Partial> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
        let dir = self.partial_fd.try_clone()?;
        let _ = remove_at(dir.as_fd(), name.as_ref());
        let file = openat(
            &dir,
            name,
            flags | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .with_context(|| format!("cannot create {}", self.partial.join(name).display()))?;
        Ok(Partial {
            dir,
            name: name.into(),
            file: File::from(file),
        })
    }
}

impl Partial {
    /// Renames the file into `dir` as the last component of `destination` (renameat(2)
    /// replaces a planted symlink itself, never what it points to).
    fn persist(self, dir: &OwnedFd, destination: &Path) -> Result<()> {
        let name = destination.file_name().unwrap_or_default();
        renameat(&self.dir, self.name.as_os_str(), dir, name)
            .with_context(|| format!("cannot write {}", destination.display()))
        // Dropping self now finds nothing left to remove.
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = remove_at(self.dir.as_fd(), &self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::digest_of;

    fn cache_in(dir: &Path) -> Cache {
        Cache::at(&dir.join("bento")).unwrap()
    }

    #[test]
    fn blobs_are_verified_on_the_way_in_and_out() {
        let dir = std::env::temp_dir().join(format!("cache-test-{}", std::process::id()));
        let cache = cache_in(&dir);
        let digest = digest_of(b"layer");
        assert!(cache.get(&digest).unwrap().is_none());
        assert!(cache.put_bytes(&digest, b"LAYER").is_err(), "wrong bytes");
        assert!(cache.put(&digest, Some(4), &b"layer"[..], |_| {}).is_err());
        let leftovers = fs::read_dir(dir.join("bento/blobs/sha256"))
            .unwrap()
            .count()
            + fs::read_dir(&cache.partial).unwrap().count();
        assert_eq!(leftovers, 0, "nothing kept of failed downloads");

        let blob = cache.put_bytes(&digest, b"layer").unwrap();
        assert_eq!(blob.read().unwrap(), b"layer");
        assert!(cache.get(&digest).unwrap().is_some());
        fs::write(&blob.path, b"LAYER").unwrap();
        assert!(cache.get(&digest).unwrap().is_none(), "damaged: dropped");
        assert!(!blob.path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tags_remember_their_manifest() {
        let dir = std::env::temp_dir().join(format!("cache-tags-{}", std::process::id()));
        let cache = cache_in(&dir);
        let reference: Reference = "127.0.0.1:5000/busybox:1".parse().unwrap();
        assert_eq!(cache.tagged(&reference), None);
        cache.tag(&reference, &digest_of(b"manifest")).unwrap();
        assert_eq!(cache.tagged(&reference), Some(digest_of(b"manifest")));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_symlink_is_replaced_never_followed_and_sizes_do_not_overflow() {
        let dir = std::env::temp_dir().join(format!("cache-planted-{}", std::process::id()));
        let cache = cache_in(&dir);
        let victim = dir.join("victim");
        fs::write(&victim, "precious").unwrap();
        let digest = digest_of(b"manifest");
        let planted = cache.blob_path(&digest).unwrap();
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let blob = cache.put_bytes(&digest, b"manifest").unwrap();
        assert_eq!(blob.read().unwrap(), b"manifest");
        assert!(!fs::symlink_metadata(&planted).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        // A descriptor may claim 2^64-1 bytes: a size mismatch, not an overflow.
        let error = cache
            .put(&digest_of(b"x"), Some(u64::MAX), &b"x"[..], |_| {})
            .unwrap_err();
        assert!(format!("{error:#}").contains("size mismatch"), "{error:#}");
        drop(cache);
        fs::remove_dir_all(&dir).unwrap();
    }
}

//! The blob cache: `$XDG_CACHE_HOME/bento/` (default `~/.cache/bento/`).
//!
//! Blobs are stored under their digest (`blobs/sha256/HEX`), so a second pull of the same
//! image downloads nothing and works offline. A blob is hashed when written and again when
//! read: a cache is a file tree anyone with the same uid can edit. Which manifest a tag
//! named at the last pull is remembered in `refs/REGISTRY/REPOSITORY/TAG`, so that a tag
//! can still be used when the registry cannot be reached. Downloads in progress live in
//! `partial-PID/` and are renamed into place only when complete and verified.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_spec::image::Digest;
use plumbing::Hint;

use crate::blob::{self, Blob, Hashing};
use crate::install::check_interrupted;
use crate::reference::Reference;

/// The cache directory.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    /// This run's unfinished files (`partial-PID/`), removed when the run ends.
    partial: PathBuf,
}

impl Cache {
    /// Opens (creates) the cache, and removes downloads that dead runs left half-done.
    pub fn open() -> Result<Cache> {
        let base = match std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| Path::new(&home).join(".cache"))
                .context("neither XDG_CACHE_HOME nor HOME is set: there is no cache directory")
                .hint("set XDG_CACHE_HOME to a writable directory")?,
        };
        Cache::at(&base.join("bento"))
    }

    /// Opens (creates) the cache in `dir` (bento keeps it under `$BENTO_HOME`).
    pub fn at(dir: &Path) -> Result<Cache> {
        // Downloads that runs killed with SIGKILL left half-done.
        plumbing::remove_leftovers(dir, "partial-");
        let cache = Cache {
            dir: dir.to_path_buf(),
            partial: dir.join(format!("partial-{}", std::process::id())),
        };
        for path in [cache.dir.join("blobs/sha256"), cache.partial.clone()] {
            fs::create_dir_all(&path)
                .with_context(|| format!("cannot create the cache {}", path.display()))
                .hint("set XDG_CACHE_HOME to a writable directory")?;
        }
        Ok(cache)
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
                let _ = fs::remove_file(&path);
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
        let path = self.blob_path(digest)?;
        let partial = self.partial_file(&path)?;
        let limit = size.map_or(u64::MAX, |size| size + 1);
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
                .with_context(|| format!("cannot write {}", partial.path.display()))?;
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
        partial.persist(&path)?;
        Blob::file(&path)
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
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let partial = self.partial_file(&path)?;
        (&partial.file)
            .write_all(format!("{digest}\n").as_bytes())
            .with_context(|| format!("cannot write {}", partial.path.display()))?;
        partial.persist(&path)
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.partial);
    }
}

/// A file being written in `partial-PID/`, renamed into place when complete and removed
/// otherwise, so that readers never see half a blob.
struct Partial {
    path: PathBuf,
    file: File,
}

impl Cache {
    /// Starts writing what will become `destination`.
    fn partial_file(&self, destination: &Path) -> Result<Partial> {
        let path = self
            .partial
            .join(destination.file_name().unwrap_or_default());
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Partial { path, file })
    }
}

impl Partial {
    fn persist(self, destination: &Path) -> Result<()> {
        fs::rename(&self.path, destination)
            .with_context(|| format!("cannot write {}", destination.display()))
        // Dropping self now finds nothing left to remove.
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
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
}

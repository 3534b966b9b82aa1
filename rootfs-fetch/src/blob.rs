//! Blobs: the bytes of an image (manifests, configs, layers), each named by the sha256 of
//! its content. An image is untrusted input, so a blob is only used after its bytes have
//! been hashed and found equal to the digest that names it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::image::{Digest, DigestAlgorithm};
use plumbing::Hint;
use sha2::{Digest as _, Sha256};

use crate::interrupt::check_interrupted;

/// The largest manifest, index or config we read into memory: real ones are a few KiB.
pub const MAX_JSON: u64 = 4 << 20;

/// Said under every digest mismatch.
const TAMPERED_HINT: &str = "the image is corrupt or was tampered with: nothing was installed; \
     pull it again, and if it persists, do not use this image";

/// The bytes of a blob on disk: a whole file (the cache, an OCI layout) or a range of one
/// (a member of a tar archive, read in place).
#[derive(Debug, Clone)]
pub struct Blob {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

impl Blob {
    /// The whole file at `path`.
    pub fn file(path: &Path) -> Result<Blob> {
        let len = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        Ok(Blob {
            path: path.to_path_buf(),
            offset: 0,
            len,
        })
    }

    /// Reads the blob.
    pub fn open(&self) -> Result<impl Read + use<>> {
        let mut file = File::open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.offset))
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        Ok(file.take(self.len))
    }

    /// Reads a small blob (JSON) whole.
    pub fn read(&self) -> Result<Vec<u8>> {
        if self.len > MAX_JSON {
            bail!("{} is {} bytes: too large", self.path.display(), self.len);
        }
        let mut bytes = Vec::new();
        self.open()?
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        Ok(bytes)
    }

    /// Hashes the blob and fails unless it is exactly `digest` (and `size` bytes, if known).
    pub fn verify(&self, digest: &Digest, size: Option<u64>) -> Result<()> {
        if let Some(size) = size
            && size != self.len
        {
            return Err(anyhow::anyhow!(
                "{digest}: size mismatch: expected {size} bytes, found {}",
                self.len
            ))
            .hint(TAMPERED_HINT);
        }
        let mut hashing = Hashing::new(self.open()?);
        drain(&mut hashing).with_context(|| format!("cannot read {}", self.path.display()))?;
        check(digest, &hashing.digest())
    }
}

/// A reader that hashes what passes through it.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest of everything read so far.
    pub fn digest(&self) -> Digest {
        digest_of_hasher(self.hasher.clone())
    }

    /// How many bytes were read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Reads `reader` to its end, stopping early on Ctrl-C.
pub fn drain(reader: &mut impl Read) -> Result<()> {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        check_interrupted()?;
        if reader.read(&mut buffer)? == 0 {
            return Ok(());
        }
    }
}

/// The sha256 digest of `bytes`.
pub fn digest_of(bytes: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    digest_of_hasher(hasher)
}

fn digest_of_hasher(hasher: Sha256) -> Digest {
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    sha256(&hex).unwrap_or_else(|_| unreachable!("64 lowercase hex digits are a sha256 digest"))
}

/// `sha256:HEX` as a digest, HEX being 64 lowercase hex digits.
pub fn sha256(hex: &str) -> Result<Digest> {
    format!("sha256:{hex}")
        .parse()
        .with_context(|| format!("{hex:?} is not a sha256 digest"))
}

/// The hex part of a sha256 digest, the only algorithm used for images in practice.
pub fn sha256_hex(digest: &Digest) -> Result<&str> {
    match digest.algorithm() {
        DigestAlgorithm::Sha256 => Ok(digest.digest()),
        other => bail!("{digest}: unsupported digest algorithm {other} (only sha256 is)"),
    }
}

/// A digest short enough for a message: `sha256:` and 12 hex digits, as Docker shows them.
pub fn short(digest: &Digest) -> String {
    let hex = digest.digest();
    format!("{}:{}", digest.algorithm(), &hex[..hex.len().min(12)])
}

/// Fails with a clear message unless `actual` is `expected`.
pub fn check(expected: &Digest, actual: &Digest) -> Result<()> {
    if expected == actual {
        return Ok(());
    }
    Err(anyhow::anyhow!(
        "{expected}: digest mismatch: the content hashes to {actual}"
    ))
    .hint(TAMPERED_HINT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_of_the_bytes() {
        assert_eq!(
            digest_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut hashing = Hashing::new(&b"hello"[..]);
        drain(&mut hashing).unwrap();
        assert_eq!(hashing.digest(), digest_of(b"hello"));
        assert_eq!(hashing.count(), 5);
    }

    #[test]
    fn a_mismatch_names_both_digests() {
        let error = check(&digest_of(b"a"), &digest_of(b"b")).unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("digest mismatch"), "{text}");
        assert!(text.contains(&digest_of(b"b").to_string()), "{text}");
    }

    #[test]
    fn ranges_of_files_are_verified() {
        let dir = std::env::temp_dir().join(format!("blob-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("archive");
        std::fs::write(&path, b"headerPAYLOADtrailer").unwrap();
        let blob = Blob {
            path: path.clone(),
            offset: 6,
            len: 7,
        };
        assert_eq!(blob.read().unwrap(), b"PAYLOAD");
        blob.verify(&digest_of(b"PAYLOAD"), Some(7)).unwrap();
        assert!(blob.verify(&digest_of(b"payload"), None).is_err());
        assert!(blob.verify(&digest_of(b"PAYLOAD"), Some(8)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

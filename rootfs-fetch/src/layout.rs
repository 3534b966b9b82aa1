//! Images on disk: an OCI image layout (`oci:DIR[:TAG]`), the same in a tar file
//! (`oci-archive:FILE`), and what `docker save` and `podman save` write
//! (`docker-archive:FILE`).
//!
//! An OCI layout is `index.json` (the tags) plus `blobs/sha256/HEX`. A docker-save tarball
//! has `manifest.json`, listing each image's config and layer files; Docker 25 and later
//! write it as an OCI layout with a `manifest.json` added. Archives are read in place:
//! one pass notes where each member's bytes are, nothing is unpacked.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageIndex};
use plumbing::Hint;
use serde::Deserialize;

use crate::blob::{self, Blob, Hashing};
use crate::image::{self, Image, Layer, Store};
use crate::interrupt::check_interrupted;
use crate::platform::Platform;

/// The annotation that gives an OCI layout's image its tag.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The files of a layout or an archive, by their path inside it.
pub enum Files {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        /// Member name → (offset of its bytes in the file, size).
        members: HashMap<String, (u64, u64)>,
    },
}

impl Files {
    /// An OCI layout directory.
    pub fn dir(path: &Path) -> Result<Files> {
        if !path.is_dir() {
            return Err(anyhow::anyhow!("{} is not a directory", path.display()))
                .hint("oci:PATH names an OCI image layout directory (index.json, blobs/); for a tar file use oci-archive:PATH");
        }
        Ok(Files::Dir(path.to_path_buf()))
    }

    /// A tar archive, indexed in one pass.
    pub fn tar(path: &Path) -> Result<Files> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut magic = [0; 2];
        let _ = file.read_at(&mut magic, 0);
        if magic == [0x1f, 0x8b] {
            return Err(anyhow::anyhow!(
                "{} is compressed with gzip",
                path.display()
            ))
            .hint(format!("uncompress it first: gunzip -k {}", path.display()));
        }
        let mut archive = tar::Archive::new(BufReader::new(file));
        let mut members = HashMap::new();
        let entries = archive.entries().context("not a tar archive")?;
        for entry in entries {
            check_interrupted()?;
            // The tar crate's message may quote the raw header bytes: say it in words instead.
            let entry = entry
                .map_err(|_| {
                    anyhow::anyhow!(
                        "corrupt tarball {}: not a valid tar archive",
                        path.display()
                    )
                })
                .hint("the archive is damaged or truncated: save or download it again")?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .with_context(|| format!("corrupt tarball {}", path.display()))?;
            if let Some(name) = normalise(&name) {
                members.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
        if members.is_empty() {
            return Err(anyhow::anyhow!(
                "corrupt tarball {}: no files in it",
                path.display()
            ))
            .hint("the archive is damaged or not an image: save or download it again");
        }
        Ok(Files::Tar {
            path: path.to_path_buf(),
            members,
        })
    }

    /// The file `name` (e.g. `blobs/sha256/HEX`), if there is one.
    fn get(&self, name: &str) -> Result<Option<Blob>> {
        // Names come from the image itself: `../` must not reach outside a layout.
        let Some(name) = normalise(Path::new(name)) else {
            bail!("corrupt image: it names the file {name:?}");
        };
        match self {
            Files::Dir(dir) => {
                let path = dir.join(name);
                if path.is_file() {
                    Blob::file(&path).map(Some)
                } else {
                    Ok(None)
                }
            }
            Files::Tar { path, members } => Ok(members.get(&name).map(|&(offset, len)| Blob {
                path: path.clone(),
                offset,
                len,
            })),
        }
    }

    /// The file `name`, which must be there.
    fn require(&self, name: &str) -> Result<Blob> {
        self.get(name)?.with_context(|| {
            let place = match self {
                Files::Dir(dir) => dir,
                Files::Tar { path, .. } => path,
            };
            format!("{} has no {name}", place.display())
        })
    }
}

/// `./a/b` → `a/b`; None for paths that leave the archive or name nothing.
fn normalise(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The blobs of an OCI layout are verified against their descriptors when read.
impl Store for Files {
    fn manifest(&mut self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        self.blob(descriptor)?.read()
    }

    fn blob(&mut self, descriptor: &Descriptor) -> Result<Blob> {
        let digest = descriptor.digest();
        let found = self.require(&format!("blobs/sha256/{}", blob::sha256_hex(digest)?))?;
        found.verify(digest, Some(descriptor.size()))?;
        Ok(found)
    }
}

/// The image tagged `tag` in an OCI layout (the only one when no tag is given).
pub fn oci(files: &mut Files, tag: Option<&str>, platform: &Platform, name: &str) -> Result<Image> {
    // index.json is where trust starts: it is the layout's list of what it holds.
    let index = files
        .require("index.json")
        .with_context(|| format!("{name} is not an OCI image layout"))?;
    let index = ImageIndex::from_reader(&index.read()?[..]).context("corrupt index.json")?;
    let tag_of = |entry: &Descriptor| {
        entry
            .annotations()
            .as_ref()
            .and_then(|annotations| annotations.get(REF_NAME).cloned())
    };
    let entries = index.manifests();
    let chosen = match (tag, entries.as_slice()) {
        (None, [only]) => only,
        (Some(tag), _) => entries
            .iter()
            .find(|entry| {
                tag_of(entry).is_some_and(|name| name == tag || name.ends_with(&format!(":{tag}")))
            })
            .with_context(|| format!("{name}: no image tagged {tag:?} in the layout"))
            .with_hint(|| tags_hint(entries.iter().filter_map(tag_of)))?,
        (None, _) => {
            return Err(anyhow::anyhow!(
                "{name} holds {} images: say which",
                entries.len()
            ))
            .with_hint(|| tags_hint(entries.iter().filter_map(tag_of)));
        }
    };
    let chosen = chosen.clone();
    let top = files.manifest(&chosen)?;
    image::resolve(
        files,
        top,
        Some(chosen.media_type().as_ref()),
        platform,
        name,
    )
}

fn tags_hint(tags: impl Iterator<Item = String>) -> String {
    let tags: Vec<String> = tags.collect();
    if tags.is_empty() {
        "its images have no tags (no org.opencontainers.image.ref.name annotation)".into()
    } else {
        format!("name one as oci:PATH:TAG; its tags: {}", tags.join(", "))
    }
}

/// One image in a docker-save `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The image in a `docker save` / `podman save` tarball.
pub fn docker_archive(files: &mut Files, platform: &Platform, name: &str) -> Result<Image> {
    let Some(manifest) = files.get("manifest.json")? else {
        if files.get("index.json")?.is_some() {
            return oci(files, None, platform, name);
        }
        return Err(anyhow::anyhow!("{name} has no manifest.json"))
            .hint("this is not a `docker save` archive; for an OCI archive use oci-archive:PATH");
    };
    let saved: Vec<SavedImage> =
        serde_json::from_slice(&manifest.read()?).context("corrupt manifest.json")?;
    let image = match saved.as_slice() {
        [one] => one,
        [] => bail!("{name}: its manifest.json lists no image"),
        many => {
            let names: Vec<String> = many
                .iter()
                .flat_map(|image| image.repo_tags.clone().unwrap_or_default())
                .collect();
            return Err(anyhow::anyhow!(
                "{name} holds {} images ({}): rootfs-fetch takes one",
                many.len(),
                names.join(", ")
            ))
            .hint("save just one: docker save IMAGE -o FILE");
        }
    };

    // The config is named after its digest (`HEX.json`, or `blobs/sha256/HEX` since
    // Docker 25), and lists the digest of every uncompressed layer.
    let config = files.require(&image.config)?;
    let digest = digest_in_name(&image.config).with_context(|| {
        format!(
            "{name}: the config {:?} is not named by its digest",
            image.config
        )
    })?;
    config.verify(&digest, None).context("the image config")?;
    let config =
        ImageConfiguration::from_reader(&config.read()?[..]).context("corrupt image config")?;
    let diff_ids = image::diff_ids(&config)?;
    if diff_ids.len() != image.layers.len() {
        bail!(
            "corrupt image: manifest.json lists {} layers but the config {}",
            image.layers.len(),
            diff_ids.len()
        );
    }
    let layers = image
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(path, diff_id)| {
            let blob = files.require(path)?;
            match digest_in_name(path) {
                Some(digest) => blob.verify(&digest, None)?,
                // The old format names layers by an ID that is no digest: verify the
                // uncompressed tar against the config's diff ID before using it.
                None => {
                    let mut hashing = Hashing::new(crate::extract::decompress(blob.open()?)?);
                    blob::drain(&mut hashing).context(path.clone())?;
                    blob::check(&diff_id, &hashing.digest()).context(path.clone())?;
                }
            }
            Ok(Layer {
                blob,
                name: path.clone(),
                diff_id: Some(diff_id),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Image { config, layers })
}

/// The digest in `blobs/sha256/HEX` or `HEX.json`, if the name is one of those.
fn digest_in_name(name: &str) -> Option<Digest> {
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".json"))?;
    blob::sha256(hex).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_inside_an_archive_are_normalised() {
        assert_eq!(
            normalise(Path::new("./blobs/sha256/ab")).as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(normalise(Path::new("../etc/passwd")), None);
        assert_eq!(normalise(Path::new("/etc/passwd")), None);
        assert_eq!(normalise(Path::new(".")), None);
    }

    #[test]
    fn configs_and_layers_are_named_by_digest() {
        let hex = "a".repeat(64);
        assert!(digest_in_name(&format!("blobs/sha256/{hex}")).is_some());
        assert!(digest_in_name(&format!("{hex}.json")).is_some());
        assert!(digest_in_name("abc/layer.tar").is_none());
        assert!(digest_in_name("manifest.json").is_none());
    }
}

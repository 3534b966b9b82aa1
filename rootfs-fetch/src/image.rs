//! From a manifest to a root filesystem, the same way for a registry and an OCI layout.
//!
//! An OCI image is a tree of blobs named by digest: an optional *index* (one manifest per
//! platform) → a *manifest* → a *config* (which lists the digest of every uncompressed
//! layer, the "diff IDs") and the *layers*. Knowing the top's digest is enough to verify
//! everything below it.

use std::path::Path;

use anyhow::{Context, Result, bail};
use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest};
use plumbing::Hint;

use crate::blob::{self, Blob};
use crate::extract::{Extractor, Options, Summary, TooLarge, disk_full, human_size};
use crate::platform::Platform;

/// Where a manifest's blobs come from: a registry (through the cache) or a layout.
pub trait Store {
    /// The manifest or index `descriptor` names, verified.
    fn manifest(&mut self, descriptor: &Descriptor) -> Result<Vec<u8>>;
    /// The blob `descriptor` names, on disk and verified.
    fn blob(&mut self, descriptor: &Descriptor) -> Result<Blob>;
}

/// An image ready to apply: every blob is on disk and verified.
pub struct Image {
    pub config: ImageConfiguration,
    pub layers: Vec<Layer>,
}

/// One layer: its verified blob, and the digest its uncompressed tar must have.
pub struct Layer {
    pub blob: Blob,
    pub name: String,
    pub diff_id: Option<Digest>,
}

impl Image {
    /// The platform the image was built for.
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.config.os().to_string(),
            architecture: self.config.architecture().to_string(),
            variant: self.config.variant().clone(),
        }
    }

    /// Applies the layers in order to the empty directory `root`, checking each diff ID.
    pub fn apply(&self, root: &Path, options: &Options) -> Result<Summary> {
        let mut extractor = Extractor::new(root, options.clone())?;
        let total = self.layers.len();
        for (number, layer) in self.layers.iter().enumerate() {
            let label = format!("layer {}/{total} ({})", number + 1, layer.name);
            let diff_id = match extractor.apply(layer.blob.open()?) {
                Ok(diff_id) => diff_id,
                Err(error) if disk_full(&error) => return self.disk_full(root),
                Err(error) if error.is::<TooLarge>() => {
                    return Err(error).context(label).hint(
                        "if the image really is that big, raise the limit: --max-layer-size SIZE (or BENTO_MAX_LAYER_SIZE)",
                    );
                }
                Err(error) => return Err(error).context(label),
            };
            if let Some(expected) = &layer.diff_id {
                blob::check(expected, &diff_id).context(label)?;
            }
        }
        match extractor.finish() {
            Err(error) if disk_full(&error) => self.disk_full(root),
            finished => finished,
        }
    }

    /// The error for a full disk: not a corrupt layer. Says where, and how much is needed.
    fn disk_full<T>(&self, root: &Path) -> Result<T> {
        let place = root
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let compressed: u64 = self.layers.iter().map(|layer| layer.blob.len).sum();
        Err(anyhow::anyhow!(
            "the disk is full: no space left on the filesystem of {} (the image's layers are {} compressed, and need more once unpacked)",
            place.display(),
            human_size(compressed)
        ))
        .hint("free some space there, or build the root filesystem on another disk: rootfs-fetch SOURCE /path/on/another/disk/rootfs")
    }
}

/// The diff IDs listed in an image's config, one per layer.
pub fn diff_ids(config: &ImageConfiguration) -> Result<Vec<Digest>> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|id| {
            id.parse()
                .with_context(|| format!("corrupt config: diff ID {id:?}"))
        })
        .collect()
}

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The manifest types a registry may answer with, for the `Accept` header.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, PartialEq)]
enum Kind {
    Index,
    Manifest,
}

/// Is `bytes` an index or a manifest? Its own `mediaType` says, else the one it was served
/// or described with, else its shape.
fn kind(bytes: &[u8], media_type: Option<&str>) -> Result<Kind> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).context("corrupt manifest: not JSON")?;
    if value["schemaVersion"] == 1 {
        return Err(anyhow::anyhow!(
            "the manifest is in Docker's old schema 1, which is not supported"
        ))
        .hint("push the image again with a current Docker, podman or skopeo");
    }
    let declared = [value["mediaType"].as_str(), media_type];
    for media_type in declared.into_iter().flatten() {
        match media_type {
            OCI_INDEX | DOCKER_LIST => return Ok(Kind::Index),
            OCI_MANIFEST | DOCKER_MANIFEST => return Ok(Kind::Manifest),
            _ => {}
        }
    }
    if value.get("manifests").is_some() {
        Ok(Kind::Index)
    } else if value.get("layers").is_some() {
        Ok(Kind::Manifest)
    } else {
        bail!(
            "not an image manifest (media type {})",
            media_type.unwrap_or("unknown")
        )
    }
}

/// Resolves `top` (a manifest or index, already verified) for `platform`: picks the
/// platform's manifest, then gets the config and the layers from `store`. `name` is the
/// source, for messages.
pub fn resolve(
    store: &mut impl Store,
    top: Vec<u8>,
    media_type: Option<&str>,
    platform: &Platform,
    name: &str,
) -> Result<Image> {
    let manifest = match kind(&top, media_type)? {
        Kind::Manifest => top,
        Kind::Index => {
            let index = ImageIndex::from_reader(&top[..]).context("corrupt image index")?;
            let chosen = choose(&index, platform, name)?;
            let manifest = store.manifest(chosen)?;
            if kind(&manifest, Some(chosen.media_type().as_ref()))? != Kind::Manifest {
                bail!("{name}: nested image indexes are not supported");
            }
            manifest
        }
    };
    let manifest = ImageManifest::from_reader(&manifest[..]).context("corrupt manifest")?;
    let config = store.blob(manifest.config()).context("the image config")?;
    let config =
        ImageConfiguration::from_reader(&config.read()?[..]).context("corrupt image config")?;
    let diff_ids = diff_ids(&config)?;
    if diff_ids.len() != manifest.layers().len() {
        bail!(
            "corrupt image: the manifest has {} layers but the config lists {}",
            manifest.layers().len(),
            diff_ids.len()
        );
    }
    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(descriptor, diff_id)| {
            Ok(Layer {
                blob: store.blob(descriptor)?,
                name: blob::short(descriptor.digest()),
                diff_id: Some(diff_id),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Image { config, layers })
}

/// The index entry for `platform`, or an error listing the platforms there are.
fn choose<'a>(index: &'a ImageIndex, platform: &Platform, name: &str) -> Result<&'a Descriptor> {
    let images: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|entry| {
            matches!(
                entry.media_type().as_ref(),
                OCI_MANIFEST | DOCKER_MANIFEST | OCI_INDEX | DOCKER_LIST
            )
        })
        .collect();
    if let [only] = images[..]
        && only.platform().is_none()
    {
        return Ok(only);
    }
    let matching = images.iter().find(|entry| {
        entry.platform().as_ref().is_some_and(|theirs| {
            platform.matches(
                &theirs.os().to_string(),
                &theirs.architecture().to_string(),
                theirs.variant().as_deref(),
            )
        })
    });
    if let Some(found) = matching {
        return Ok(found);
    }
    // Build attestations are listed as platform unknown/unknown: not images to run.
    let available: Vec<String> = images
        .iter()
        .filter_map(|entry| entry.platform().as_ref())
        .map(|p| {
            let mut text = format!("{}/{}", p.os(), p.architecture());
            if let Some(variant) = p.variant() {
                text = format!("{text}/{variant}");
            }
            text
        })
        .filter(|text| !text.starts_with("unknown/"))
        .collect();
    let example = available
        .first()
        .cloned()
        .unwrap_or_else(|| "linux/amd64".into());
    Err(anyhow::anyhow!(
        "{name}: no image for {platform}; available: {}",
        if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        }
    ))
    .hint(format!(
        "this image is not built for this machine; to get another platform's files anyway: --platform {example}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_and_indexes_are_told_apart() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert_eq!(kind(index, None).unwrap(), Kind::Index);
        let bare = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(kind(bare, None).unwrap(), Kind::Index);
        assert_eq!(kind(bare, Some(DOCKER_MANIFEST)).unwrap(), Kind::Manifest);
        let manifest = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(kind(manifest, Some("text/plain")).unwrap(), Kind::Manifest);
        let old = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        assert!(format!("{:#}", kind(old, None).unwrap_err()).contains("schema 1"));
        assert!(kind(b"<html>", None).is_err());
    }

    fn index(platforms: &[&str]) -> ImageIndex {
        let manifests: Vec<String> = platforms
            .iter()
            .enumerate()
            .map(|(n, platform)| {
                let parts: Vec<&str> = platform.split('/').collect();
                let variant = parts
                    .get(2)
                    .map(|v| format!(r#","variant":"{v}""#))
                    .unwrap_or_default();
                format!(
                    r#"{{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"sha256:{n:064}","platform":{{"os":"{}","architecture":"{}"{variant}}}}}"#,
                    parts[0], parts[1]
                )
            })
            .collect();
        let json = format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            manifests.join(",")
        );
        ImageIndex::from_reader(json.as_bytes()).unwrap()
    }

    #[test]
    fn the_platform_picks_the_manifest() {
        let index = index(&["linux/amd64", "linux/arm64/v8", "unknown/unknown"]);
        let arm64 = choose(&index, &"linux/arm64".parse().unwrap(), "x").unwrap();
        assert_eq!(arm64.digest().digest(), format!("{:064}", 1));
        let error = choose(&index, &"linux/riscv64".parse().unwrap(), "docker://x").unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "docker://x: no image for linux/riscv64; available: linux/amd64, linux/arm64/v8"
        );
    }
}

//! Images: pulled with rootfs-fetch (the library behind `just rootfs`), applied once into
//! a root filesystem per image, and named in an index.
//!
//! ```text
//! images/
//!   index.json      name -> image id, replaced atomically
//!   lock            held while pulling (one pull at a time writes the store)
//!   cache/          rootfs-fetch's blob cache: a second pull downloads nothing
//!   ID/rootfs/      the image's files: every container's read-only lower layer
//!   ID/config.json  its default command, environment and working directory
//! ```
//!
//! An image's id is the digest of its layers' digests and of its command, environment
//! and working directory: the same image pulled under two names is stored once. An image directory is never changed after it
//! is renamed into place, because running containers have it mounted as their lower layer.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use rootfs_fetch::cache::Cache;
use rootfs_fetch::image::Image;
use rootfs_fetch::layout::{self, Files};
use rootfs_fetch::platform::Platform;
use rootfs_fetch::registry::{Registry, Unreachable};
use rootfs_fetch::source::Source;
use serde::{Deserialize, Serialize};

use crate::errors::Refusal;
use crate::home::private_dir;
use crate::time::now;
use plumbing::files::write_atomically;

/// What a bare name means: Docker Hub's image of that name (`busybox` =
/// `docker://busybox:latest`).
const SHORT_NAME_PREFIX: &str = "docker://";

/// The image store.
#[derive(Debug, Clone)]
pub struct Images {
    dir: PathBuf,
}

/// An image in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    /// What it was made from, when not from its name (the offline busybox fallback).
    pub made_from: String,
    pub pulled: String,
}

/// What an image says to run, from its OCI config (image-spec's config.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
}

/// An image ready to run.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub name: String,
    pub id: String,
    pub rootfs: PathBuf,
    pub config: Config,
}

type Index = BTreeMap<String, Entry>;

/// The source an image name means. Anything rootfs-fetch takes (`docker://…`,
/// `docker-archive:…`, `oci:…`, `oci-archive:…`, `busybox:` or `busybox:/path`), or a
/// short name: `busybox`, `alpine:3.20`, `ghcr.io/o/i:tag` mean `docker://` + the name.
pub fn source(name: &str) -> Result<Source> {
    let transport = ["docker://", "docker-archive:", "oci:", "oci-archive:"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || name == "busybox:"
        || name.starts_with("busybox:/");
    let text = if transport {
        name.to_string()
    } else {
        format!("{SHORT_NAME_PREFIX}{name}")
    };
    text.parse::<Source>().map_err(|error| {
        Refusal::UnknownImage.error(
            format!("{name:?} is not an image name: {error}"),
            "name an image like `busybox`, `docker://busybox:latest`, `oci:DIR:TAG` or `docker-archive:FILE`",
        )
    })
}

/// How an image is shown in tables: Docker Hub's official images by their short name
/// (`busybox:latest`), anything else as it is.
pub fn shown(key: &str) -> &str {
    key.strip_prefix("docker://registry-1.docker.io/library/")
        .unwrap_or(key)
}

impl Images {
    pub fn at(dir: &Path) -> Images {
        Images {
            dir: dir.to_path_buf(),
        }
    }

    fn index(&self) -> Index {
        fs::read(self.dir.join("index.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Every image, by name.
    pub fn list(&self) -> Vec<(String, Entry)> {
        self.index().into_iter().collect()
    }

    /// The image `name` if it is in the store (no network).
    pub fn get(&self, name: &str) -> Result<Option<Pulled>> {
        let key = source(name)?.to_string();
        let Some(entry) = self.index().remove(&key) else {
            return Ok(None);
        };
        let dir = self.dir.join(&entry.id);
        let config = fs::read(dir.join("config.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let (Some(config), true) = (config, dir.join("rootfs").is_dir()) else {
            return Ok(None);
        };
        Ok(Some(Pulled {
            name: key,
            id: entry.id,
            rootfs: dir.join("rootfs"),
            config,
        }))
    }

    /// The image `name`, pulled first if it is not in the store.
    pub fn get_or_pull(&self, name: &str) -> Result<Pulled> {
        match self.get(name)? {
            Some(pulled) => Ok(pulled),
            None => self.pull(name),
        }
    }

    /// Pulls `name` (again), stores it and names it. The short name `busybox` falls back
    /// to the host's static busybox when the registry cannot be reached, as `just rootfs`
    /// does.
    pub fn pull(&self, name: &str) -> Result<Pulled> {
        let source = source(name)?;
        let key = source.to_string();
        private_dir(&self.dir)?;
        let lock = File::create(self.dir.join("lock")).context("cannot open the image lock")?;
        let _lock = Flock::lock(lock, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .context("cannot lock the image store")?;
        plumbing::remove_leftovers(&self.dir, ".partial-");
        let partial = self.dir.join(format!(".partial-{}", std::process::id()));
        if partial.exists() {
            plumbing::remove_tree(&partial)?;
        }
        fs::create_dir(&partial).context("cannot create the image's directory")?;
        let pulled = self.fetch(&source, &key, &partial);
        let (id, made_from) = match pulled {
            Ok(done) => done,
            Err(error) => {
                let _ = plumbing::remove_tree(&partial);
                return Err(error);
            }
        };
        let dir = self.dir.join(&id);
        if dir.exists() {
            // The same image is already stored (under another name, or pulled before):
            // keep that copy, which containers may have mounted.
            plumbing::remove_tree(&partial)?;
        } else {
            fs::rename(&partial, &dir).context("cannot store the image")?;
        }
        let mut index = self.index();
        index.insert(
            key.clone(),
            Entry {
                id,
                made_from,
                pulled: now(),
            },
        );
        let json = serde_json::to_vec_pretty(&index).context("cannot encode the index")?;
        write_atomically(&self.dir.join("index.json"), &json, 0o600)?;
        self.get(&key)?
            .context("the image vanished right after it was stored")
    }

    /// Fills `dir` with `rootfs/` (made here, empty) and `config.json` from `source`; returns the image id
    /// and what it was made from.
    fn fetch(&self, source: &Source, key: &str, dir: &Path) -> Result<(String, String)> {
        let root = dir.join("rootfs");
        fs::create_dir(&root).context("cannot create the image's rootfs")?;
        let platform = Platform::host();
        let image = match source {
            Source::Busybox(path) => return busybox(path.as_deref(), dir),
            Source::Docker(reference) => {
                eprintln!("bento: pulling {key}");
                let cache = Cache::at(&self.dir.join("cache"))?;
                let pulled =
                    Registry::new(reference, false, key, cache).and_then(|mut registry| {
                        let (top, media_type) = registry.top()?;
                        rootfs_fetch::image::resolve(
                            &mut registry,
                            top,
                            media_type.as_deref(),
                            &platform,
                            key,
                        )
                    });
                match pulled {
                    Err(error) if error.downcast_ref::<Unreachable>().is_some() => {
                        if key == "docker://registry-1.docker.io/library/busybox:latest" {
                            eprintln!("bento: {error:#}: using the host's static busybox instead");
                            return busybox(None, dir);
                        }
                        return Err(Refusal::Unreachable.error(
                            format!("cannot pull {key}: {error:#}"),
                            "check the network and the registry's name; offline, images already pulled still run, and `busybox:` uses the host's busybox",
                        ));
                    }
                    other => other.map_err(|error| unknown(key, error))?,
                }
            }
            Source::DockerArchive(path) => Files::tar(path)
                .and_then(|mut files| layout::docker_archive(&mut files, &platform, key))
                .map_err(|error| unknown(key, error))?,
            Source::Oci { path, tag } => Files::dir(path)
                .and_then(|mut files| layout::oci(&mut files, tag.as_deref(), &platform, key))
                .map_err(|error| unknown(key, error))?,
            Source::OciArchive(path) => Files::tar(path)
                .and_then(|mut files| layout::oci(&mut files, None, &platform, key))
                .map_err(|error| unknown(key, error))?,
        };
        let id = image_id(&image)?;
        // rootfs-fetch's defaults: no setuid/setgid bits, and a generous limit on what one
        // layer may expand to.
        let options = rootfs_fetch::extract::Options::default();
        image
            .apply(&root, &options)
            .with_context(|| key.to_string())?;
        write_config(dir, &config_of(&image))?;
        Ok((id, key.to_string()))
    }
}

/// An image that cannot be pulled: not there, not an image, corrupt…
fn unknown(key: &str, error: anyhow::Error) -> anyhow::Error {
    let error = error.context(format!("cannot pull {key}"));
    Refusal::UnknownImage.wrap(plumbing::add_hint(
        error,
        "check the image's name and that it exists; `bento images` lists the images pulled already",
    ))
}

/// The digest of the layers' diff ids, one per line, and of what bento keeps of the
/// config: the same files and the same command, the same id. (The layers alone were not
/// enough: an image pulled first set the command of any other made of the same layers.)
fn image_id(image: &Image) -> Result<String> {
    let mut ids: Vec<String> = rootfs_fetch::image::diff_ids(&image.config)?
        .iter()
        .map(ToString::to_string)
        .collect();
    ids.push(serde_json::to_string(&config_of(image)).context("cannot encode the image config")?);
    let digest = rootfs_fetch::blob::digest_of(ids.join("\n").as_bytes());
    Ok(rootfs_fetch::blob::sha256_hex(&digest)?.to_string())
}

/// The image config's command, environment and working directory.
fn config_of(image: &Image) -> Config {
    let Some(config) = image.config.config() else {
        return Config::default();
    };
    Config {
        entrypoint: config.entrypoint().clone().unwrap_or_default(),
        cmd: config.cmd().clone().unwrap_or_default(),
        env: config.env().clone().unwrap_or_default(),
        working_dir: config.working_dir().clone().unwrap_or_default(),
    }
}

fn write_config(dir: &Path, config: &Config) -> Result<()> {
    let json = serde_json::to_vec_pretty(config).context("cannot encode the image config")?;
    fs::write(dir.join("config.json"), json).context("cannot write the image config")
}

/// An image made from the host's static busybox: its id is the digest of the binary.
fn busybox(path: Option<&Path>, dir: &Path) -> Result<(String, String)> {
    let binary = rootfs_fetch::busybox::locate(path).map_err(|e| Refusal::UnknownImage.wrap(e))?;
    let bytes = fs::read(&binary).with_context(|| format!("cannot read {}", binary.display()))?;
    let digest = rootfs_fetch::blob::digest_of(&bytes);
    let id = format!("busybox-{}", rootfs_fetch::blob::sha256_hex(&digest)?);
    rootfs_fetch::busybox::build(&binary, &dir.join("rootfs"))?;
    let config = Config {
        cmd: vec!["sh".into()],
        ..Config::default()
    };
    write_config(dir, &config)?;
    Ok((id, format!("busybox:{}", binary.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_mean_docker_hub() {
        assert_eq!(
            source("busybox").unwrap().to_string(),
            "docker://registry-1.docker.io/library/busybox:latest"
        );
        assert_eq!(
            source("busybox:1.36").unwrap().to_string(),
            "docker://registry-1.docker.io/library/busybox:1.36"
        );
        assert_eq!(source("busybox:").unwrap().to_string(), "busybox:");
        assert_eq!(
            source("oci:/tmp/l:v1").unwrap().to_string(),
            "oci:/tmp/l:v1"
        );
        assert!(source("Not An Image").is_err());
        assert_eq!(
            shown("docker://registry-1.docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(shown("oci:/tmp/l:v1"), "oci:/tmp/l:v1");
    }
}

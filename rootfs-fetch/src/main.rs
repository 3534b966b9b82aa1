//! `rootfs-fetch [SOURCE] [TARGET]`: build a root filesystem for the Bento workshop.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use plumbing::{Hint, parse_size};
use rootfs_fetch::busybox;
use rootfs_fetch::cache::Cache;
use rootfs_fetch::extract::{DEFAULT_MAX_LAYER_SIZE, Options, Summary, in_container};
use rootfs_fetch::image::{self, Image};
use rootfs_fetch::install::Staging;
use rootfs_fetch::interrupt::catch_interrupts;
use rootfs_fetch::layout::{self, Files};
use rootfs_fetch::platform::Platform;
use rootfs_fetch::registry::{Registry, Unreachable};
use rootfs_fetch::source::Source;

/// The image used when no source is given (unless `BENTO_DEFAULT_IMAGE` names another).
const DEFAULT_IMAGE: &str = "docker://busybox:latest";

const OFFLINE_HINT: &str = "offline? `rootfs-fetch busybox:` (or `just rootfs busybox:`) builds one from the host's static busybox";

/// Build a root filesystem for the workshop's steps 04 and later.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Where the root filesystem comes from: docker://[REGISTRY/]NAME[:TAG|@sha256:DIGEST]
    /// (a registry; Docker Hub by default), docker-archive:PATH (`docker save`),
    /// oci:PATH[:TAG] (an OCI layout), oci-archive:PATH, or busybox:[PATH] (the host's
    /// static busybox). Default: docker://busybox:latest (or $BENTO_DEFAULT_IMAGE), and
    /// the host's static busybox when the registry cannot be reached
    source: Option<Source>,
    /// The directory to create or replace
    #[arg(default_value = "rootfs")]
    target: PathBuf,
    /// Replace TARGET even when rootfs-fetch did not make it (it has no .bento-rootfs mark)
    #[arg(long)]
    force: bool,
    /// As root, keep the image's setuid and setgid bits (dropped by default: the steps never
    /// need them, and they would let any local user run those programs as their owner)
    #[arg(long)]
    keep_setuid: bool,
    /// Refuse a layer whose files expand to more than SIZE (e.g. 500M, 20G; default 16G, or
    /// $BENTO_MAX_LAYER_SIZE): a guard against decompression bombs
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_layer_size: Option<u64>,
    /// Which platform's image to take from a multi-platform image (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<Platform>,
    /// Allow plain HTTP to a registry that is not on this machine (loopback always may)
    #[arg(long)]
    insecure: bool,
}

fn main() {
    plumbing::run(fetch)
}

fn fetch() -> Result<i32> {
    let cli = Cli::parse();
    catch_interrupts()?;
    let staging = Staging::begin(&cli.target, cli.force)?;
    let built = match &cli.source {
        Some(source) => build(source, &cli, staging.path()),
        None => build_default(&cli, staging.path()),
    };
    let used = match built {
        Err(error) if error.downcast_ref::<Unreachable>().is_some() => {
            return Err(error).hint(OFFLINE_HINT);
        }
        built => built?,
    };
    staging.commit(&used)?;
    eprintln!(
        "rootfs-fetch: {} is ready, made from {used}",
        cli.target.display()
    );
    Ok(0)
}

/// The default source, falling back to the host's busybox when the registry cannot be
/// reached: `just rootfs` must work on a laptop without internet.
fn build_default(cli: &Cli, root: &Path) -> Result<String> {
    let default = std::env::var("BENTO_DEFAULT_IMAGE")
        .ok()
        .filter(|image| !image.is_empty())
        .unwrap_or_else(|| DEFAULT_IMAGE.into());
    let source: Source = default
        .parse()
        .map_err(anyhow::Error::msg)
        .context("BENTO_DEFAULT_IMAGE")?;
    match build(&source, cli, root) {
        Err(error) if error.downcast_ref::<Unreachable>().is_some() => {
            eprintln!("rootfs-fetch: {error:#}: using the host's static busybox instead");
            build(&Source::Busybox(None), cli, root)
        }
        built => built,
    }
}

/// Fills the empty directory `root` from `source`, and says what it was made from.
fn build(source: &Source, cli: &Cli, root: &Path) -> Result<String> {
    let name = source.to_string();
    let platform = cli.platform.clone().unwrap_or_else(Platform::host);
    let mut registry: Registry;
    let image = match source {
        Source::Busybox(path) => {
            let binary = busybox::locate(path.as_deref())?;
            busybox::build(&binary, root)?;
            return Ok(format!("the host's static busybox ({})", binary.display()));
        }
        Source::Docker(reference) => {
            eprintln!("rootfs-fetch: pulling {name} for {platform}");
            // Kept until the layers are applied: a temporary cache goes with it.
            registry = Registry::new(reference, cli.insecure, &name, Cache::open()?)?;
            let (top, media_type) = registry.top()?;
            image::resolve(&mut registry, top, media_type.as_deref(), &platform, &name)?
        }
        Source::DockerArchive(path) => {
            layout::docker_archive(&mut Files::tar(path)?, &platform, &name)?
        }
        Source::Oci { path, tag } => {
            layout::oci(&mut Files::dir(path)?, tag.as_deref(), &platform, &name)?
        }
        Source::OciArchive(path) => layout::oci(&mut Files::tar(path)?, None, &platform, &name)?,
    };
    let summary = image
        .apply(root, &options(cli)?)
        .with_context(|| name.clone())?;
    print_notes(&image, &summary, root);
    Ok(format!("{name} ({})", image.platform()))
}

/// Says what is different from the image, and what will not work.
fn print_notes(image: &Image, summary: &Summary, root: &Path) {
    if let [first, rest @ ..] = summary.skipped_devices.as_slice() {
        let more = if rest.is_empty() {
            String::new()
        } else {
            format!(" and {} more", rest.len())
        };
        eprintln!(
            "rootfs-fetch: note: skipped device nodes ({}{more}): the container does not need the image's, and only root could create them",
            in_container(first)
        );
    }
    if summary.chown_failed {
        eprintln!("rootfs-fetch: note: some files could not be given the image's owners");
    }
    let (host, theirs) = (Platform::host(), image.platform());
    if !host.matches(&theirs.os, &theirs.architecture, theirs.variant.as_deref()) {
        eprintln!(
            "rootfs-fetch: note: the image is for {theirs}: its programs will not run on this {host} machine"
        );
    }
    if std::fs::symlink_metadata(root.join("bin/sh")).is_err() {
        eprintln!(
            "rootfs-fetch: note: the image has no /bin/sh, which the steps run when given no command"
        );
    }
}

/// The extraction options from the command line and the environment.
fn options(cli: &Cli) -> Result<Options> {
    let max_layer_size = match (cli.max_layer_size, std::env::var("BENTO_MAX_LAYER_SIZE")) {
        (Some(size), _) => size,
        (None, Ok(size)) if !size.is_empty() => parse_size(&size)
            .map_err(anyhow::Error::msg)
            .context("BENTO_MAX_LAYER_SIZE")?,
        _ => DEFAULT_MAX_LAYER_SIZE,
    };
    Ok(Options {
        keep_setuid: cli.keep_setuid,
        max_layer_size,
    })
}

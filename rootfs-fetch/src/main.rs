//! `rootfs-fetch [SOURCE] [TARGET]`: build a root filesystem for the Bento workshop.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use rootfs_fetch::busybox;
use rootfs_fetch::extract::{Summary, in_container};
use rootfs_fetch::image::Image;
use rootfs_fetch::install::{Staging, catch_interrupts};
use rootfs_fetch::layout::{self, Files};
use rootfs_fetch::platform::Platform;
use rootfs_fetch::source::Source;

/// Build a root filesystem for the workshop's steps 04 and later.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Where the root filesystem comes from: docker-archive:PATH (`docker save`),
    /// oci:PATH[:TAG] (an OCI layout), oci-archive:PATH, or busybox:[PATH] (the host's
    /// static busybox)
    #[arg(default_value = "busybox:")]
    source: Source,
    /// The directory to create or replace
    #[arg(default_value = "rootfs")]
    target: PathBuf,
    /// Replace TARGET even when it does not look like a root filesystem
    #[arg(long)]
    force: bool,
    /// Which platform's image to take from a multi-platform image (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<Platform>,
}

fn main() {
    procinfo::run(fetch)
}

fn fetch() -> Result<i32> {
    let cli = Cli::parse();
    catch_interrupts()?;
    let staging = Staging::begin(&cli.target, cli.force)?;
    let used = build(&cli.source, &cli, staging.path())?;
    staging.commit()?;
    eprintln!(
        "rootfs-fetch: {} is ready, made from {used}",
        cli.target.display()
    );
    Ok(0)
}

/// Fills the empty directory `root` from `source`, and says what it was made from.
fn build(source: &Source, cli: &Cli, root: &Path) -> Result<String> {
    let name = source.to_string();
    let platform = cli.platform.clone().unwrap_or_else(Platform::host);
    let image = match source {
        Source::Busybox(path) => {
            let binary = busybox::locate(path.as_deref())?;
            busybox::build(&binary, root)?;
            return Ok(format!("the host's static busybox ({})", binary.display()));
        }
        Source::DockerArchive(path) => {
            layout::docker_archive(&mut Files::tar(path)?, &platform, &name)?
        }
        Source::Oci { path, tag } => {
            layout::oci(&mut Files::dir(path)?, tag.as_deref(), &platform, &name)?
        }
        Source::OciArchive(path) => layout::oci(&mut Files::tar(path)?, None, &platform, &name)?,
    };
    let summary = image.apply(root).with_context(|| name.clone())?;
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

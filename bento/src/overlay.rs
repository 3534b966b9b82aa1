//! Step 07, overlay: the image read-only below, the container's own layer above.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use nix::sys::utsname::uname;
use plumbing::Hint;

/// The directories of a container's overlay, all in its state directory.
#[derive(Debug, Clone)]
pub struct Layers {
    /// The image's root filesystem: read, never written.
    pub lower: PathBuf,
    /// This container's writes (its "container layer").
    pub upper: PathBuf,
    /// overlayfs's scratch space, on the same filesystem as `upper`.
    pub work: PathBuf,
    /// Where the merged tree is mounted: the container's root.
    pub root: PathBuf,
}

/// mount(2) an overlay filesystem (the kernel's overlayfs.rst): reads come from the image
/// ("lowerdir"), every write goes to "upperdir", a directory of this container, through
/// "workdir". Two containers of one image each have their own upper layer, so neither sees
/// the other's writes, and the image never changes. Rootless overlays need Linux 5.11+ and
/// "userxattr" (whiteouts and opaque directories are then marked with user.* attributes).
///
/// Real runtimes stack one lower directory per image layer, so that images sharing a base
/// share its files on disk; bento applies all layers into one directory per image.
pub fn mount_overlay(layers: &Layers) -> Result<&Path> {
    let options = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        layers.lower.display(),
        layers.upper.display(),
        layers.work.display()
    );
    mount(
        Some("overlay"),
        &layers.root,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .context("cannot mount the overlay")
    .with_hint(|| {
        let kernel = uname().map(|u| u.release().to_string_lossy().into_owned());
        format!(
            "rootless overlayfs needs Linux 5.11 or later (this is {}), paths without ',' or \
             ':', and a BENTO_HOME on a filesystem with user xattrs (tmpfs: Linux 6.6+)",
            kernel.unwrap_or_default()
        )
    })?;
    Ok(&layers.root)
}

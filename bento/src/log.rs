//! A detached container's log: what its command writes to stdout and stderr, kept in the
//! container's directory for `bento logs`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result};

use crate::state::Container;

/// The log's file in the container's directory.
pub const FILE: &str = "log";

/// Creates the container's log (never through a symlink), for its supervisor's stdout.
pub fn create(container: &Container) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(container.file(FILE))
        .context("cannot create the log")
}

//! `bento cp SRC DEST`: copy files and directories between the host and a container.

use std::ffi::OsString;

use anyhow::Result;

use crate::home::Home;

/// Copy files and directories between the host and a container (created, running or
/// stopped): `bento cp ./site web:/www`, `bento cp web:/etc/hosts .`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to copy: a host path, or NAME:PATH in a container (`DIR/.`: its contents)
    pub source: OsString,
    /// Where to: an existing directory (SRC goes in it), a file to replace, or a new name
    pub destination: OsString,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        crate::copy::copy(home, &self.source, &self.destination)?;
        Ok(0)
    }
}

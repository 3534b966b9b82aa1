//! `rootfs-fetch [SOURCE] [TARGET]`: build a root filesystem for the Bento workshop.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use rootfs_fetch::busybox;
use rootfs_fetch::install::{Staging, catch_interrupts};
use rootfs_fetch::source::Source;

/// Build a root filesystem for the workshop's steps 04 and later.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Where the root filesystem comes from: busybox:[PATH] (the host's static busybox)
    #[arg(default_value = "busybox:")]
    source: Source,
    /// The directory to create or replace
    #[arg(default_value = "rootfs")]
    target: PathBuf,
    /// Replace TARGET even when it does not look like a root filesystem
    #[arg(long)]
    force: bool,
}

fn main() {
    procinfo::run(fetch)
}

fn fetch() -> Result<i32> {
    let cli = Cli::parse();
    catch_interrupts()?;
    let staging = Staging::begin(&cli.target, cli.force)?;
    let used = match &cli.source {
        Source::Busybox(path) => {
            let binary = busybox::locate(path.as_deref())?;
            busybox::build(&binary, staging.path())?;
            format!("the host's static busybox ({})", binary.display())
        }
    };
    staging.commit()?;
    eprintln!(
        "rootfs-fetch: {} is ready, made from {used}",
        cli.target.display()
    );
    Ok(0)
}

//! `bento`: the command line. Each command is a file in `cmd/`.

use std::path::PathBuf;

use anyhow::Result;
use bento::cmd;
use bento::home::Home;
use clap::Parser;

/// A rootless container runtime built from the Bento workshop's lessons
#[derive(Debug, Parser)]
#[command(name = "bento", version, about)]
struct Cli {
    /// Where containers' state lives (OCI runtimes' `--root`; default: see bento/README.md)
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Also write errors to this file (what engines read when a runtime fails)
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// `text` or `json` (one {"level","msg","time"} object per line, as runc writes)
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Accepted for engines' sake: bento manages its cgroups through the filesystem
    #[arg(long = "systemd-cgroup", global = true, hide = true)]
    systemd_cgroup: bool,
    /// Accepted for engines' sake
    #[arg(long, global = true, hide = true)]
    debug: bool,
    /// Accepted for engines' sake (bento finds out itself)
    #[arg(long, global = true, hide = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() {
    plumbing::run(bento)
}

fn bento() -> Result<i32> {
    let cli = Cli::parse();
    // Before bento opens anything (its --log): caller.rs.
    bento::caller::check_passed_descriptors(cli.command.passed_descriptors())?;
    if let Some(path) = &cli.log {
        bento::errors::log_errors_to(path, cli.log_format == "json");
    }
    let outcome = command(cli);
    if let Err(error) = &outcome {
        bento::errors::log_error(error);
    }
    outcome
}

fn command(cli: Cli) -> Result<i32> {
    let home = match cli.root {
        // An engine names the state directory (and may give us no HOME at all).
        Some(root) => Home {
            images: Home::from_env()
                .map(|home| home.images)
                .unwrap_or_else(|_| root.join("images")),
            containers: root,
        },
        None => Home::from_env()?,
    };
    cli.command.run(&home)
}

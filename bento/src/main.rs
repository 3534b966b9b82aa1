//! `bento`: the command line. Each command is a file in `cmd/`.

use anyhow::Result;
use bento::cmd;
use bento::home::Home;
use clap::{Parser, Subcommand};

/// A rootless container runtime built from the Bento workshop's lessons
#[derive(Debug, Parser)]
#[command(name = "bento", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Create(cmd::create::Args),
    Start(cmd::start::Args),
    Exec(cmd::exec::Args),
    Status(cmd::status::Args),
    Stop(cmd::stop::Args),
    Kill(cmd::kill::Args),
    Run(cmd::run::Args),
    Logs(cmd::logs::Args),
    Rm(cmd::rm::Args),
    Pull(cmd::pull::Args),
    Images(cmd::images::Args),
}

fn main() {
    plumbing::run(bento)
}

fn bento() -> Result<i32> {
    let cli = Cli::parse();
    let home = Home::from_env()?;
    match cli.command {
        Command::Create(args) => args.run(&home),
        Command::Start(args) => args.run(&home),
        Command::Exec(args) => args.run(&home),
        Command::Status(args) => args.run(&home),
        Command::Stop(args) => args.run(&home),
        Command::Kill(args) => args.run(&home),
        Command::Run(args) => args.run(&home),
        Command::Logs(args) => args.run(&home),
        Command::Rm(args) => args.run(&home),
        Command::Pull(args) => args.run(&home),
        Command::Images(args) => args.run(&home),
    }
}

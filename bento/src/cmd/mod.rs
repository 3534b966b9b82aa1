//! The command line: one file per command, each its arguments (clap) and one call to what
//! does the work (mostly [`crate::lifecycle`]). No command calls another.

pub mod cp;
pub mod create;
pub mod delete;
pub mod exec;
pub mod features;
pub mod images;
pub mod kill;
pub mod logs;
pub mod pause;
pub mod ps;
pub mod pull;
pub mod resume;
pub mod rm;
pub mod run;
pub mod start;
pub mod state;
pub mod status;
pub mod stop;
pub mod update;

use anyhow::Result;

use crate::home::Home;

/// bento's commands: the talk's (create, start, exec, status, stop, kill), a runtime's
/// conveniences (run, logs, rm, pull, images), and the OCI runtime command line that
/// engines call (state, delete, features, ps, pause, resume, update; create, start, exec
/// and kill take its flags too).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Create(create::Args),
    Start(start::Args),
    Exec(exec::Args),
    Status(status::Args),
    Stop(stop::Args),
    Kill(kill::Args),
    Run(run::Args),
    Logs(logs::Args),
    Cp(cp::Args),
    Rm(rm::Args),
    Pull(pull::Args),
    Images(images::Args),
    State(state::Args),
    Delete(delete::Args),
    Features(features::Args),
    Ps(ps::Args),
    Pause(pause::Args),
    Resume(resume::Args),
    Update(update::Args),
}

impl Command {
    /// `--preserve-fds N`: how many descriptors past 2 the engine passes on.
    pub fn passed_descriptors(&self) -> u32 {
        match self {
            Command::Create(args) => args.preserve_fds,
            Command::Exec(args) => args.preserve_fds,
            Command::Run(args) => args.preserve_fds,
            _ => 0,
        }
    }

    /// Runs the command; its exit status.
    pub fn run(self, home: &Home) -> Result<i32> {
        match self {
            Command::Create(args) => args.run(home),
            Command::Start(args) => args.run(home),
            Command::Exec(args) => args.run(home),
            Command::Status(args) => args.run(home),
            Command::Stop(args) => args.run(home),
            Command::Kill(args) => args.run(home),
            Command::Run(args) => args.run(home),
            Command::Logs(args) => args.run(home),
            Command::Cp(args) => args.run(home),
            Command::Rm(args) => args.run(home),
            Command::Pull(args) => args.run(home),
            Command::Images(args) => args.run(home),
            Command::State(args) => args.run(home),
            Command::Delete(args) => args.run(home),
            Command::Features(args) => args.run(),
            Command::Ps(args) => args.run(home),
            Command::Pause(args) => args.run(home),
            Command::Resume(args) => args.run(home),
            Command::Update(args) => args.run(home),
        }
    }
}

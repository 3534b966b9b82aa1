//! `bento exec [-t] NAME COMMAND...`: run one more command in a running container.
//!
//! Also the OCI runtime's `exec --process FILE --pid-file FILE --detach
//! [--console-socket SOCK] ID`, as podman's conmon calls it: the process is described by
//! a process.json (config.json's `process`, whole), and with `--detach` bento returns as
//! soon as it runs; it is then the engine's to wait for (conmon is a subreaper).

use std::path::PathBuf;

use anyhow::Result;

use crate::home::Home;
use crate::lifecycle::{self, ExecOptions, Process};

/// Run a command inside a running container, in its namespaces, root, working directory
/// and environment; exit with its status
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Give the command a terminal (needs one on stdin)
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Set an environment variable (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The working directory (default: the container's)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// The process to run, as JSON (an OCI `process`: args, env, cwd, user, capabilities…)
    #[arg(short = 'p', long, value_name = "FILE", conflicts_with_all = ["env", "workdir"])]
    pub process: Option<PathBuf>,
    /// Write the process's pid here
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Return as soon as the process runs, without waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Send the terminal's master to this unix socket (process.terminal)
    #[arg(long = "console-socket", value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Pass descriptors 3 to 3+N-1 on to the process (every other one past 2 is closed)
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container's name
    pub name: String,
    /// The command and its arguments
    #[arg(
        required_unless_present = "process",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

impl Args {
    pub fn run(self, home: &Home) -> Result<i32> {
        let process = match self.process {
            Some(path) => Process::Oci(path),
            None => Process::Command {
                args: self.command,
                env: self.env,
                workdir: self.workdir,
                tty: self.tty,
            },
        };
        let options = ExecOptions {
            pid_file: self.pid_file,
            detach: self.detach,
            console_socket: self.console_socket,
            preserve_fds: self.preserve_fds,
        };
        lifecycle::exec(home, &self.name, process, options)
    }
}

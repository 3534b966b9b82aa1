//! `bento exec [-t] NAME COMMAND...`: run one more command in a running container.
//!
//! Also the OCI runtime's `exec --process FILE --pid-file FILE --detach
//! [--console-socket SOCK] ID`, as podman's conmon calls it: the process is described by
//! a process.json (config.json's `process`, whole), and with `--detach` bento returns as
//! soon as it runs; it is then the engine's to wait for (conmon is a subreaper).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, chdir, fork};

use super::check_terminal;
use crate::container::find_program;
use crate::errors::Refusal;
use crate::home::Home;
use crate::join::join_namespaces;
use crate::spec::{Spec, set_env};
use crate::state::{Container, Status};
use crate::terminal::{self, Channel, Console};

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
        if self.console_socket.is_none() {
            check_terminal(self.tty)?;
        }
        let container = Container::open(home, &self.name)?;
        let mut state = container.state()?;
        state.refresh();
        let init = match (state.status, state.init) {
            (Status::Running, Some(init)) => init,
            (status, _) => {
                return Err(Refusal::NotRunning.error(
                    format!("container {:?} is {status}, not running", self.name),
                    format!("`bento start {}` starts a created container; a stopped one cannot run anything", self.name),
                ));
            }
        };
        let mut spec: Spec = serde_json::from_slice(
            &std::fs::read(container.file("spec.json")).context("cannot read the spec")?,
        )
        .context("corrupt spec.json")?;
        if let Some(path) = &self.process {
            let process: oci_spec::runtime::Process = serde_json::from_slice(
                &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            )
            .with_context(|| format!("{} is not an OCI process", path.display()))?;
            spec.set_process(&process);
        } else {
            spec.args = self.command;
            for pair in &self.env {
                set_env(&mut spec.env, pair);
            }
            if let Some(dir) = self.workdir {
                spec.cwd = dir;
            }
            spec.terminal = self.tty;
            if self.tty {
                set_env(&mut spec.env, "TERM=xterm");
            }
        }
        // Opened now: once in the container's mount namespace, the host's paths are gone.
        let mut pid_file = match &self.pid_file {
            Some(path) => Some(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => None,
        };
        // Opened now, before the namespaces: as root (v1) its files belong to the real root.
        let cgroup = match state.cgroups.as_slice() {
            [] => None,
            dirs => Some(crate::cgroups::Cgroup::open(dirs)?),
        };
        // `-t`: the command sends its terminal's master end to us or to the engine
        // (terminal.rs); connected before we join the container's mount namespace.
        let console = match spec.terminal {
            true => Some(Channel::new(self.console_socket.as_deref())?),
            false => None,
        };
        join_namespaces(&init)?;
        // `-t`: the command sends its terminal's master end over this pair (terminal.rs).
        plumbing::catch_signals()?;
        // SAFETY: bento is single-threaded, so the child may go on running Rust code.
        match unsafe { fork() }.context("fork failed")? {
            ForkResult::Child => {
                // Now inside the container's PID namespace, with its root.
                let console = console.map(Channel::in_child);
                let error = run_inside(&spec, cgroup.as_ref(), console.as_ref());
                std::process::exit(plumbing::report(&error));
            }
            ForkResult::Parent { child } => {
                if let Some(file) = &mut pid_file {
                    file.write_all(child.as_raw().to_string().as_bytes())
                        .context("cannot write the pid file")?;
                }
                if self.detach {
                    return Ok(0);
                }
                plumbing::forward_signals(child);
                let relayed = match console.and_then(Channel::in_parent) {
                    Some(ours) => terminal::relay_terminal(&ours),
                    None => Ok(()),
                };
                let status = waitpid(child, None).context("waitpid failed")?;
                relayed?;
                Ok(plumbing::exit_code(status))
            }
        }
    }
}

/// The forked child, inside: joins the cgroup, finds the command, goes to the working
/// directory, and execs.
fn run_inside(
    spec: &Spec,
    cgroup: Option<&crate::cgroups::Cgroup>,
    console: Option<&Console>,
) -> anyhow::Error {
    let prepared = (|| -> Result<std::ffi::CString> {
        if let Some(cgroup) = cgroup {
            cgroup.join()?;
        }
        let program = find_program(spec)?;
        chdir(spec.cwd.as_str())
            .with_context(|| format!("cannot enter the working directory {}", spec.cwd))?;
        if let Some(console) = console {
            terminal::attach_to_terminal(console)?;
        }
        crate::privileges::apply(spec)?;
        Ok(program)
    })();
    match prepared {
        Ok(program) => crate::container::exec_command(&program, spec),
        Err(error) => error,
    }
}

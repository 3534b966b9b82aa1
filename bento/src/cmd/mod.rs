//! The commands, one file each: its arguments (clap) and what it does. What several share
//! (the container options, making a detached container) is here.

pub mod create;
pub mod delete;
pub mod exec;
pub mod features;
pub mod images;
pub mod kill;
pub mod logs;
pub mod pull;
pub mod rm;
pub mod run;
pub mod start;
pub mod state;
pub mod status;
pub mod stop;

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, setsid};
use serde_json::json;

use crate::errors::Refusal;
use crate::gate;
use crate::home::Home;
use crate::image::{Images, Pulled};
use crate::spec::{IMAGE, IMAGE_ID, OVERLAY_LOWER, Spec, default_env, set_env};
use crate::state::{Container, OCI_VERSION, State, Status, now};
use crate::supervisor::{self, Mode};

/// How a container is made: the options `create` and `run` share.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// Set an environment variable (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The working directory inside the container (default: the image's, or /)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// The container's hostname (default: its name)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Give the command a terminal (needs one on stdin)
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Memory limit, e.g. 64m, 1g (cgroups)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
    /// Most processes the container may have at once (cgroups)
    #[arg(long = "pids-limit", value_name = "N")]
    pub pids_limit: Option<u64>,
}

/// `64m` → 67108864: a number with an optional k, m or g (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    let lower = lower.trim_end_matches('b');
    let (digits, unit) = match lower.char_indices().last() {
        Some((at, 'k')) => (&lower[..at], 1 << 10),
        Some((at, 'm')) => (&lower[..at], 1 << 20),
        Some((at, 'g')) => (&lower[..at], 1 << 30),
        _ => (lower, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a size: write e.g. 64m, 512k or 1g"))
}

/// Refuses `-t` when stdin is not a terminal: there would be nothing to relay.
pub fn check_terminal(tty: bool) -> Result<()> {
    if tty && !nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        return Err(Refusal::NoTerminal.error(
            "-t needs a terminal on stdin, and this one is not",
            "run it from a terminal, or leave out -t (and pipe input with -i-less redirection)",
        ));
    }
    Ok(())
}

/// The container's `config.json` for `image` and the command line: the image's defaults,
/// then ours, written as an engine would write it, so that bento's own containers and an
/// engine's take the same path from here on ([`Spec::from_config`]). The container's
/// directory is its bundle; the root is an overlay of the image (see spec.rs's annotations).
pub fn build_config(
    name: &str,
    image: &Pulled,
    command: &[String],
    options: &Options,
) -> Result<serde_json::Value> {
    let hostname = options.hostname.clone().unwrap_or_else(|| name.to_string());
    crate::state::check_hostname(&hostname)?;
    let mut env = default_env(&hostname, options.tty);
    for pair in image.config.env.iter().chain(&options.env) {
        if !pair.contains('=') {
            return Err(anyhow::anyhow!("{pair:?} is not KEY=VALUE"))
                .context("bad environment variable");
        }
        set_env(&mut env, pair);
    }
    let mut args = image.config.entrypoint.clone();
    match command.is_empty() {
        true => args.extend(image.config.cmd.iter().cloned()),
        false => args.extend(command.iter().cloned()),
    }
    if args.is_empty() {
        args = vec!["/bin/sh".into()];
    }
    let cwd = options
        .workdir
        .clone()
        .or_else(|| Some(image.config.working_dir.clone()).filter(|dir| !dir.is_empty()))
        .unwrap_or_else(|| "/".into());
    let mut resources = serde_json::Map::new();
    if let Some(limit) = options.memory {
        resources.insert("memory".into(), json!({ "limit": limit }));
    }
    if let Some(limit) = options.pids_limit {
        resources.insert("pids".into(), json!({ "limit": limit }));
    }
    let map = |id: u32| json!([{ "containerID": 0, "hostID": id, "size": 1 }]);
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    // Steps 01-09 in config.json's words: the namespaces (user first, one id mapped), the
    // hostname, /proc, a /dev of its own with devpts and shm. No capabilities listed:
    // the command keeps all of them, inside its user namespace.
    Ok(json!({
        "ociVersion": OCI_VERSION,
        "root": { "path": "root", "readonly": false },
        "hostname": hostname,
        "process": {
            "terminal": options.tty,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": env,
            "cwd": cwd,
        },
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
        ],
        "linux": {
            "namespaces": [
                { "type": "user" }, { "type": "uts" }, { "type": "ipc" },
                { "type": "network" }, { "type": "pid" }, { "type": "mount" },
            ],
            "uidMappings": map(uid),
            "gidMappings": map(gid),
            "resources": resources,
        },
        "annotations": {
            IMAGE: image.name,
            IMAGE_ID: image.id,
            OVERLAY_LOWER: image.rootfs,
        },
    }))
}

/// The container spec for `image` and the command line, through its config.json (kept in
/// the container's directory, `bundle`, for the curious).
pub fn build_spec(
    name: &str,
    image: &Pulled,
    command: &[String],
    options: &Options,
    bundle: &Path,
) -> Result<(Vec<u8>, Spec)> {
    let config = build_config(name, image, command, options)?;
    let parsed: oci_spec::runtime::Spec =
        serde_json::from_value(config.clone()).context("bento wrote a bad config.json")?;
    let spec = Spec::from_oci(&parsed, bundle)?;
    let text = serde_json::to_vec_pretty(&config).context("cannot encode config.json")?;
    Ok((text, spec))
}

/// The first record of a container: created, no process yet.
pub fn new_state(container: &Container, spec: &Spec, auto_remove: bool) -> State {
    State {
        oci_version: OCI_VERSION.into(),
        id: container.name.clone(),
        status: Status::Created,
        pid: 0,
        bundle: container.dir.clone(),
        image: spec.image.clone(),
        command: spec.args.clone(),
        created: now(),
        started: None,
        finished: None,
        exit_code: None,
        oom_killed: false,
        note: None,
        init: None,
        supervisor: None,
        boot_id: crate::process::boot_id(),
        cgroups: Vec::new(),
        auto_remove,
    }
}

/// What became of a creation.
pub enum Created {
    /// The container exists, PID 1 waits at the gate.
    Ready(Container),
    /// It could not be made; the reason was printed, and this is the status to exit with.
    Failed(i32),
}

/// `bento create`, also the first half of `run -d`: pulls the image if needed, makes the
/// container's directory, and forks its supervisor, which makes PID 1 and reports back.
pub fn create_detached(
    home: &Home,
    name: &str,
    image: &str,
    command: &[String],
    options: &Options,
    auto_remove: bool,
) -> Result<Created> {
    crate::state::check_name(name)?;
    let image = Images::at(&home.images).get_or_pull(image)?;
    let (config, spec) = build_spec(name, &image, command, options, &home.containers.join(name))?;
    let (container, lock) = Container::create(home, name, |_| {
        serde_json::to_vec_pretty(&spec).context("cannot encode the spec")
    })?;
    let made = (|| -> Result<(File, File, File)> {
        crate::state::write_atomically(&container.file("config.json"), &config)?;
        gate::make(&container.file("exec.fifo"))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(container.file("log"))
            .context("cannot create the log")?;
        let (reader, writer) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
        Ok((log, File::from(reader), File::from(writer)))
    })();
    let (log, mut reader, writer) = match made {
        Ok(made) => made,
        Err(error) => {
            let _ = container.remove();
            return Err(error);
        }
    };
    let state = new_state(&container, &spec, auto_remove);
    // SAFETY: bento is single-threaded, so the child may go on running Rust code.
    match unsafe { fork() }.context("fork failed")? {
        ForkResult::Child => {
            drop(reader);
            let code = match become_supervisor(&container, lock, &spec, state, log, writer) {
                Ok(code) => code,
                Err(error) => plumbing::report(&error),
            };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            drop(writer);
            let mut byte = [0u8; 1];
            if matches!(reader.read(&mut byte), Ok(1)) {
                return Ok(Created::Ready(container));
            }
            // The supervisor or PID 1 failed (and said why): take its status, clean up.
            let code = waitpid(child, None).map(plumbing::exit_code).unwrap_or(125);
            let _ = container.remove();
            drop(lock);
            Ok(Created::Failed(code))
        }
    }
}

/// In the forked child: a session of its own (no terminal to hang up on it), stdin from
/// /dev/null, stdout to the log (stderr follows once the container exists).
fn become_supervisor(
    container: &Container,
    lock: crate::state::Lock,
    spec: &Spec,
    state: State,
    log: File,
    client: File,
) -> Result<i32> {
    setsid().context("setsid failed")?;
    let null = File::open("/dev/null").context("cannot open /dev/null")?;
    nix::unistd::dup2_stdin(&null).context("cannot redirect stdin")?;
    nix::unistd::dup2_stdout(&log).context("cannot redirect stdout")?;
    supervisor::supervise(container, lock, spec, state, Mode::Detached { client })
}

/// Prints the outcome of a command that takes a container and prints its name.
pub fn done(name: &str) -> Result<i32> {
    println!("{name}");
    Ok(0)
}

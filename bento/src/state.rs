//! A container's state on disk: one directory per container, and the record in it.
//!
//! ```text
//! containers/NAME/
//!   lock          flock(2)ed by every command that changes the container
//!   spec.json     what to run: image, command, environment… (see spec.rs)
//!   state.json    what happened: status, pids, times, exit status (OCI fields + ours)
//!   exec.fifo     the create/start gate, while the container is created but not started
//!   log           a detached container's stdout and stderr
//!   slirp4netns.log  what slirp4netns said (--network slirp)
//!   upper/ work/  the overlay's writable layer and its work directory
//!   root/         where the overlay is mounted (inside the container's mount namespace)
//! ```
//!
//! Three rules keep many `bento` commands at once from corrupting anything:
//! - a container appears whole: it is built under a hidden name and renamed into place
//!   with renameat2(2) RENAME_NOREPLACE, which also makes names unique;
//! - every change holds the container's lock, and is written to a new file renamed over
//!   the old one (rename(2) is atomic: readers see the old record or the new, never half);
//! - the state is never believed blindly: a "running" container whose PID 1 is gone (or
//!   whose pid now belongs to another process) is shown as stopped ([`State::refresh`]).

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{AT_FDCWD, Flock, FlockArg, RenameFlags, renameat2};
use serde::{Deserialize, Serialize};

use crate::errors::Refusal;
use crate::home::{Home, check_private, private_dir};
use crate::overlay::Layers;
use crate::process::{Process, boot_id};
use crate::spec::Spec;
use crate::time::now;
use plumbing::files::write_atomically;

/// The longest container name.
pub const MAX_NAME: usize = 64;

/// The OCI runtime spec version whose state fields we write.
pub const OCI_VERSION: &str = "1.0.2";

/// Checks a container name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most [`MAX_NAME`] long. It
/// becomes a directory name and a hostname, so no `/`, no `..`, nothing a shell mangles.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = name.len() <= MAX_NAME
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if valid {
        return Ok(());
    }
    Err(Refusal::InvalidName.error(
        format!("{name:?} is not a valid container name"),
        format!(
            "use letters, digits, '_', '.' and '-', starting with a letter or digit, at most {MAX_NAME} characters"
        ),
    ))
}

/// Checks a hostname (`--hostname`): letters, digits, '-' and '.', at most 64 characters
/// (sethostname(2)'s HOST_NAME_MAX).
pub fn check_hostname(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
    if valid {
        return Ok(());
    }
    Err(Refusal::InvalidName.error(
        format!("{name:?} is not a valid hostname"),
        "use letters, digits, '-' and '.', at most 64 characters",
    ))
}

/// A new random container id: 12 hex digits, like Docker's short ids.
pub fn random_id() -> Result<String> {
    let mut bytes = [0u8; 6];
    std::io::Read::read_exact(
        &mut File::open("/dev/urandom").context("cannot open /dev/urandom")?,
        &mut bytes,
    )
    .context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What a command needs of a container before it acts ([`Container::require`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `start`: created, not started yet.
    Created,
    /// `exec`: its command runs.
    Running,
    /// `stop`, `kill`, `ps`: PID 1 exists, created, running or paused.
    Alive,
    /// `resume`: paused.
    Paused,
    /// `rm` without `-f`: nothing runs any more.
    Stopped,
}

/// The lifecycle of the OCI runtime spec (runtime.md, "State"), with runc's "paused".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// PID 1 exists, ready, and waits for `bento start`.
    Created,
    /// The command runs.
    Running,
    /// Its processes are frozen (`bento pause`: the cgroup freezer), until `resume`.
    Paused,
    /// The command has exited (or was killed, or its supervisor was).
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The record in `state.json`. The first five fields are the OCI runtime state
/// (`runc state` prints the same), the others are bento's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    /// PID 1's pid on the host (0 once stopped, as OCI says).
    pub pid: i32,
    /// The container's directory (an OCI bundle holds config.json; ours holds spec.json).
    pub bundle: PathBuf,
    pub image: String,
    pub command: Vec<String>,
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// The shell-style exit status: the code, or 128+N after signal N.
    pub exit_code: Option<i32>,
    /// The container was killed by the kernel for exceeding its memory limit.
    #[serde(default)]
    pub oom_killed: bool,
    /// Why the exit status is unknown, or anything else worth saying.
    pub note: Option<String>,
    /// Who PID 1 is, exactly (pid + start time), and the supervisor.
    pub init: Option<Process>,
    pub supervisor: Option<Process>,
    /// The boot these processes belong to.
    pub boot_id: String,
    /// The container's cgroups (`--memory`, `--pids-limit`), removed when it stops.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// Remove the container when it stops (`run --rm`).
    #[serde(default)]
    pub auto_remove: bool,
    /// Its network, published ports and their helpers (bento's own containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::Record>,
}

impl State {
    /// The first record of a container: created, no process yet.
    pub fn new(container: &Container, spec: &Spec, auto_remove: bool) -> State {
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
            boot_id: boot_id(),
            cgroups: Vec::new(),
            auto_remove,
            network: crate::network::Record::of(spec),
        }
    }

    /// Corrects what the record claims with what the kernel says: a created or running
    /// container whose PID 1 is gone (killed, reboot) is stopped. Nothing is written.
    pub fn refresh(&mut self) {
        if self.status == Status::Stopped {
            return;
        }
        let same_boot = self.boot_id == boot_id();
        let init_alive = same_boot && self.init.is_some_and(|p| p.is_alive());
        if init_alive {
            return;
        }
        let supervisor_alive = same_boot && self.supervisor.is_some_and(|p| p.is_alive());
        self.status = Status::Stopped;
        self.pid = 0;
        if self.note.is_none() {
            self.note = Some(
                if !same_boot {
                    "exit status unknown: the machine was restarted"
                } else if supervisor_alive {
                    "exited; its supervisor is recording the exit status"
                } else {
                    "exit status unknown: its supervisor was killed, and the container with it"
                }
                .into(),
            );
        }
    }
}

/// A container's directory.
#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub dir: PathBuf,
}

/// The container's lock, held until dropped: flock(2) LOCK_EX on `lock`. flock locks
/// belong to the open file, so a forked supervisor shares its creator's lock until one of
/// them drops it.
pub struct Lock(#[allow(dead_code)] Flock<File>);

impl Container {
    /// The container `name`, which must exist (and be complete).
    pub fn open(home: &Home, name: &str) -> Result<Container> {
        check_name(name)?;
        let container = Container {
            name: name.to_string(),
            dir: home.containers.join(name),
        };
        // Trust nothing from a directory another user could have written: not the
        // containers' directory, not the container's (home.rs).
        for dir in [&home.containers, &container.dir] {
            if fs::symlink_metadata(dir).is_ok()
                && let Err(why) = check_private(dir)
            {
                return Err(Refusal::UnknownContainer.error(
                    format!("no container named {name:?} that can be trusted: {why}"),
                    "its state could have been written by another user: bento ignores it",
                ));
            }
        }
        if fs::symlink_metadata(container.file("state.json")).is_err() {
            return Err(Refusal::UnknownContainer.error(
                format!("no container named {name:?}"),
                "`bento status --all` lists the containers",
            ));
        }
        Ok(container)
    }

    /// Every complete container, by name.
    pub fn all(home: &Home) -> Result<Vec<Container>> {
        if fs::symlink_metadata(&home.containers).is_ok() {
            check_private(&home.containers)?;
        }
        let mut names: Vec<String> = match fs::read_dir(&home.containers) {
            Ok(entries) => entries
                .flatten()
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| check_name(name).is_ok())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        Ok(names
            .into_iter()
            .filter_map(|name| Container::open(home, &name).ok())
            .collect())
    }

    /// Makes a new container directory named `name`, with its layers, locked, and writes
    /// its `spec.json`. Fails if the name is taken. Nothing is left behind on failure.
    pub fn create(home: &Home, name: &str, spec: &Spec) -> Result<(Container, Lock)> {
        check_name(name)?;
        private_dir(&home.containers)?;
        // Debris of creations killed with SIGKILL.
        plumbing::remove_leftovers(&home.containers, ".creating-");
        let hidden = home
            .containers
            .join(format!(".creating-{}", std::process::id()));
        if fs::symlink_metadata(&hidden).is_ok() {
            plumbing::remove_tree(&hidden)?;
        }
        let builder = {
            let mut builder = fs::DirBuilder::new();
            builder.mode(0o700);
            builder
        };
        builder
            .create(&hidden)
            .with_context(|| format!("cannot create {}", hidden.display()))?;
        let container = Container {
            name: name.to_string(),
            dir: home.containers.join(name),
        };
        let built = (|| -> Result<Lock> {
            for sub in ["upper", "work", "root"] {
                builder
                    .create(hidden.join(sub))
                    .with_context(|| format!("cannot create the container's {sub}"))?;
            }
            let lock = lock_file(&hidden.join("lock"))?;
            let spec = serde_json::to_vec_pretty(spec).context("cannot encode the spec")?;
            write_atomically(&hidden.join("spec.json"), &spec, 0o600)?;
            // The name becomes visible only now, whole and locked. RENAME_NOREPLACE makes
            // the name unique: of two creations of one name, exactly one succeeds.
            match renameat2(
                AT_FDCWD,
                &hidden,
                AT_FDCWD,
                &container.dir,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => Ok(lock),
                Err(nix::errno::Errno::EEXIST) => Err(Refusal::NameInUse.error(
                    format!("the name {name:?} is already in use by a container"),
                    format!("choose another name, or remove it first: `bento rm -f {name}`"),
                )),
                Err(errno) => Err(errno).context("cannot create the container's directory"),
            }
        })();
        match built {
            Ok(lock) => Ok((container, lock)),
            Err(error) => {
                let _ = plumbing::remove_tree(&hidden);
                Err(error)
            }
        }
    }

    /// Was it made by an engine from a bundle (`create --bundle`)? Then commands print
    /// what the OCI runtime command line prints: nothing. Bento's own containers keep
    /// their config.json in their directory.
    pub fn is_engines(&self) -> bool {
        !self.file("config.json").exists()
    }

    /// A file in the container's directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The overlay's directories, over the image at `lower`, mounted on `root`.
    pub fn layers(&self, lower: &Path, root: &Path) -> Layers {
        Layers {
            lower: lower.to_path_buf(),
            upper: self.file("upper"),
            work: self.file("work"),
            root: root.to_path_buf(),
        }
    }

    /// Takes the container's lock, waiting for whoever holds it. Fails if the container
    /// was removed meanwhile.
    pub fn lock(&self) -> Result<Lock> {
        let lock = lock_file(&self.file("lock")).map_err(|_| self.gone())?;
        if fs::symlink_metadata(self.file("state.json")).is_err() {
            return Err(self.gone());
        }
        Ok(lock)
    }

    fn gone(&self) -> anyhow::Error {
        Refusal::UnknownContainer.error(
            format!("no container named {:?} (it was just removed)", self.name),
            "`bento status --all` lists the containers",
        )
    }

    /// The container's state: the record, corrected with what the kernel says (a PID 1
    /// that is gone means stopped, see [`State::refresh`]).
    pub fn state(&self) -> Result<State> {
        let mut state = self.record()?;
        state.refresh();
        Ok(state)
    }

    /// The record as written, for whoever writes it next (with the lock held).
    pub fn record(&self) -> Result<State> {
        let path = self.file("state.json");
        let bytes = fs::read(&path).map_err(|_| self.gone())?;
        serde_json::from_slice(&bytes).with_context(|| format!("corrupt {}", path.display()))
    }

    /// What the container runs: its `spec.json`.
    pub fn spec(&self) -> Result<Spec> {
        let path = self.file("spec.json");
        let bytes = fs::read(&path).map_err(|_| self.gone())?;
        serde_json::from_slice(&bytes).with_context(|| format!("corrupt {}", path.display()))
    }

    /// The state, if it is what `need` says; otherwise the refusal, worded once for every
    /// command.
    pub fn require(&self, need: Need) -> Result<State> {
        let state = self.state()?;
        let name = &self.name;
        let status = state.status;
        let refusal = match (need, status) {
            (Need::Created, Status::Created)
            | (Need::Running, Status::Running)
            | (Need::Alive, Status::Created | Status::Running | Status::Paused)
            | (Need::Paused, Status::Paused)
            | (Need::Stopped, Status::Stopped) => return Ok(state),
            (Need::Created, Status::Running) => Refusal::NotCreated.error(
                format!("container {name:?} is running: only a created container can be started"),
                "it runs already: `bento exec` runs more commands in it",
            ),
            (Need::Created, _) => Refusal::NotCreated.error(
                format!("container {name:?} is {status}: only a created container can be started"),
                format!("make a new one: `bento rm {name}`, then `bento create` or `bento run`"),
            ),
            (Need::Running, _) => Refusal::NotRunning.error(
                format!("container {name:?} is {status}, not running"),
                format!(
                    "`bento start {name}` starts a created container; a stopped one cannot run anything"
                ),
            ),
            (Need::Paused, _) => Refusal::NotRunning.error(
                format!("container {name:?} is {status}, not paused"),
                format!("only a paused container can be resumed: `bento pause {name}` pauses it"),
            ),
            (Need::Alive, _) => Refusal::NotRunning.error(
                format!("container {name:?} is not running"),
                "`bento status --all` shows what runs; `bento start NAME` starts a created one",
            ),
            (Need::Stopped, _) => Refusal::StillRunning.error(
                format!("container {name:?} is {status}"),
                format!(
                    "stop it first (`bento stop {name}`), or remove it anyway: `bento rm -f {name}`"
                ),
            ),
        };
        Err(refusal)
    }

    /// Writes the state: call with the lock held.
    pub fn save(&self, state: &State) -> Result<()> {
        let json = serde_json::to_vec_pretty(state).context("cannot encode the state")?;
        write_atomically(&self.file("state.json"), &json, 0o600)
    }

    /// Writes what the container runs (`update` changes its limits): call with the lock held.
    pub fn save_spec(&self, spec: &Spec) -> Result<()> {
        let json = serde_json::to_vec_pretty(spec).context("cannot encode the spec")?;
        write_atomically(&self.file("spec.json"), &json, 0o600)
    }

    /// Writes the container's `config.json` (bento's own containers keep theirs).
    pub fn save_config(&self, config: &[u8]) -> Result<()> {
        write_atomically(&self.file("config.json"), config, 0o600)
    }

    /// Writes the container's /etc/resolv.conf, bound over the image's (network.rs).
    pub fn save_resolv_conf(&self) -> Result<()> {
        let file = self.file(crate::network::RESOLV_CONF_FILE);
        write_atomically(&file, crate::network::RESOLV_CONF.as_bytes(), 0o644)
    }

    /// What a command that changed the container prints: its name, for bento's own
    /// containers; nothing for an engine's (the OCI command line prints nothing).
    pub fn print_name(&self) {
        if !self.is_engines() {
            println!("{}", self.name);
        }
    }

    /// Removes the directory with everything in it: call with the lock held, once no
    /// process of the container is left. `state.json` goes first, so that from then on
    /// the container no longer exists for other commands.
    pub fn remove(&self) -> Result<()> {
        let _ = fs::remove_file(self.file("state.json"));
        plumbing::remove_tree(&self.dir)
    }
}

/// Opens (creating) a lock file without following a symlink, and locks it.
fn lock_file(path: &Path) -> Result<Lock> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(Lock(lock))
}

/// A lock is an open file: it can be handed to a forked child's fd table like any other.
impl AsFd for Lock {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

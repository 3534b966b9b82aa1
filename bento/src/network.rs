//! Step 12, network: a way out of the container, and (with [`crate::ports`]) a way in,
//! without root.
//!
//! Step 08's network namespace holds only `lo`. Joining it to the host the way root does
//! it (a veth pair, a bridge) needs CAP_NET_ADMIN in the *host's* network namespace, which
//! a rootless user does not have. A tap device in the container's own namespace needs it
//! only there, where we have it: slirp4netns creates one (open(2) of /dev/net/tun, ioctl
//! TUNSETIFF: the kernel's tuntap.rst) and turns the packets the container sends through
//! it into ordinary socket calls of an unprivileged process on the host: a user-mode
//! TCP/IP stack, as podman's rootless containers have it.
//!
//! slirp4netns must run in the host's user and network namespaces, which the supervisor
//! leaves for good when it makes the container's. So the supervisor forks it *first*, as
//! a helper process waiting on a pipe ([`prepare`]); once the namespaces exist, the helper
//! execs slirp4netns for the supervisor's pid ([`Prepared::start`]), which configures
//! `tap0` (10.0.2.100/24, the default route via 10.0.2.2) and says "1" when done. The
//! helpers die with the supervisor (PR_SET_PDEATHSIG), and the supervisor stops them by
//! pid when the container ends ([`Running::stop`]); their pids are in the state, for
//! `bento rm` to stop any a killed supervisor left ([`tear_down`]).
//!
//! Names: slirp4netns answers DNS at 10.0.2.3, forwarding to the host's resolver. A
//! container's /etc/resolv.conf says so: a file of the container's own directory, bound
//! over the image's (as podman does), so the image is never written ([`dns_mount`]).
//!
//! Where bento simplifies: IPv4 only, and pasta (the passt package) is not offered.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, fork, getpid, getppid};
use serde::{Deserialize, Serialize};

use crate::errors::Refusal;
use crate::message::{self, Message};
use crate::ports::{self, Port};
use crate::process::Process;
use crate::spec::Spec;
use crate::state::Container;

/// config.json's annotations through which bento's front end asks for a network.
pub const NETWORK: &str = "org.bento.network";
pub const PORTS: &str = "org.bento.ports";

/// How long slirp4netns may take to set up the tap device.
const READY_TIMEOUT_MS: u16 = 10_000;

/// A container's network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Only `lo` (step 08).
    #[default]
    None,
    /// slirp4netns: `tap0`, a way out, and published ports.
    Slirp,
    /// The same, and 10.0.2.2 reaches the host's own 127.0.0.1 (podman's
    /// `allow_host_loopback=true`: off by default, for a container then reaches every
    /// service the host keeps to itself on its loopback).
    SlirpHostLoopback,
}

impl Mode {
    fn parse(text: &str) -> Result<Mode> {
        match text {
            "none" => Ok(Mode::None),
            "slirp" | "slirp4netns" => Ok(Mode::Slirp),
            "slirp:host-loopback" | "slirp4netns:allow_host_loopback=true" => {
                Ok(Mode::SlirpHostLoopback)
            }
            _ => Err(plumbing::with_status(
                2,
                plumbing::hinted(
                    format!("--network {text}: not a network bento knows"),
                    "use none (only lo), slirp, or slirp:host-loopback (also reach the host's \
                     127.0.0.1 at 10.0.2.2)",
                ),
            )),
        }
    }
}

/// The container's /etc/resolv.conf with slirp4netns: its DNS forwarder.
pub const RESOLV_CONF: &str = "nameserver 10.0.2.3\n";
/// Its name in the container's directory.
pub const RESOLV_CONF_FILE: &str = "resolv.conf";

/// The mount that puts [`RESOLV_CONF`] on /etc/resolv.conf, for a container with a way out
/// whose directory is `bundle` (the file is written there at create). None without one,
/// and where the image's /etc/resolv.conf is a symlink: it may lead nowhere inside the
/// image, and what it leads to is the image's business.
pub fn dns_mount(mode: Mode, image_root: &Path, bundle: &Path) -> Option<serde_json::Value> {
    let image_file = image_root.join("etc/resolv.conf");
    if mode == Mode::None || image_file.is_symlink() {
        return None;
    }
    Some(serde_json::json!({
        "destination": "/etc/resolv.conf",
        "type": "bind",
        "source": bundle.join(RESOLV_CONF_FILE),
        "options": ["bind", "nosuid", "nodev", "noexec"],
    }))
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::None => "none",
            Mode::Slirp => "slirp",
            Mode::SlirpHostLoopback => "slirp:host-loopback",
        })
    }
}

/// `--network` and `-p`, as `create` and `run` take them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetworkOptions {
    /// none (only lo), slirp (slirp4netns: a way out, and -p), or slirp:host-loopback
    /// (also the host's 127.0.0.1 at 10.0.2.2); default: slirp where it works, else none
    #[arg(long, value_name = "MODE")]
    pub network: Option<String>,
    /// Publish a port: the host's IP:HOST (127.0.0.1 unless given) reaches port CTR in
    /// the container (repeatable)
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:CTR")]
    pub publish: Vec<String>,
}

/// The network the options ask for, and the ports to publish; without `--network`, what
/// works on this machine: slirp where slirp4netns is installed and /dev/net/tun usable,
/// otherwise only `lo`, said in one line.
pub fn choose(options: &NetworkOptions) -> Result<(Mode, Vec<Port>)> {
    let ports = ports::parse(&options.publish)?;
    let asked = options.network.as_deref().map(Mode::parse).transpose()?;
    match asked {
        Some(Mode::None) if !ports.is_empty() => Err(plumbing::with_status(
            2,
            plumbing::hinted(
                "-p needs a network, and --network none gives the container only lo",
                "leave --network out, or use --network slirp",
            ),
        )),
        Some(mode @ (Mode::Slirp | Mode::SlirpHostLoopback)) => {
            slirp4netns()?;
            Ok((mode, ports))
        }
        Some(Mode::None) => Ok((Mode::None, ports)),
        None => match usable() {
            Ok(_) => Ok((Mode::Slirp, ports)),
            Err(unusable) if !ports.is_empty() => Err(unusable.refusal()),
            Err(Unusable { why, fix }) => {
                eprintln!(
                    "bento: only lo for this container: {why} ({fix} gives it a network; \
                     --network none says so)"
                );
                Ok((Mode::None, ports))
            }
        },
    }
}

/// Why slirp4netns cannot work here, and what would make it work.
struct Unusable {
    why: String,
    fix: &'static str,
}

impl Unusable {
    fn refusal(self) -> anyhow::Error {
        Refusal::NoNetwork.error(self.why, format!("{}, or use --network none", self.fix))
    }
}

/// slirp4netns's path, once it is known to be able to work here: installed, and
/// /dev/net/tun open to us. Otherwise a refusal that says what to install or change.
fn slirp4netns() -> Result<PathBuf> {
    usable().map_err(Unusable::refusal)
}

/// [`slirp4netns`], or why not.
fn usable() -> Result<PathBuf, Unusable> {
    let program = plumbing::host::find_program("slirp4netns").ok_or_else(|| Unusable {
        why: "slirp4netns is not installed".into(),
        fix: "`sudo apt install slirp4netns`",
    })?;
    if let Err(error) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/net/tun")
    {
        return Err(Unusable {
            why: format!("/dev/net/tun is not usable: {error}"),
            fix: match error.kind() {
                std::io::ErrorKind::NotFound => "loading the tun module (`sudo modprobe tun`)",
                _ => "`sudo chmod 0666 /dev/net/tun` (its stock mode on Debian and Ubuntu)",
            },
        });
    }
    Ok(program)
}

/// The annotations that carry the choice into config.json.
pub fn annotations(mode: Mode, ports: &[Port]) -> [(&'static str, String); 2] {
    let ports: Vec<String> = ports.iter().map(Port::option).collect();
    [(NETWORK, mode.to_string()), (PORTS, ports.join(","))]
}

/// The network and ports config.json's annotations ask for: `None` when they say
/// nothing (an engine's container: the engine makes its network).
pub fn from_annotations(
    annotations: &BTreeMap<String, String>,
) -> Result<(Option<Mode>, Vec<Port>)> {
    let Some(mode) = annotations.get(NETWORK) else {
        return Ok((None, Vec::new()));
    };
    let values: Vec<String> = annotations
        .get(PORTS)
        .into_iter()
        .flat_map(|ports| ports.split(','))
        .filter(|port| !port.is_empty())
        .map(String::from)
        .collect();
    Ok((Some(Mode::parse(mode)?), ports::parse(&values)?))
}

/// What the state says of a container's network: for `bento status`, and the helpers'
/// pids for `bento rm`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub mode: Mode,
    #[serde(default)]
    pub ports: Vec<Port>,
    /// slirp4netns and the port relay, while the container runs.
    #[serde(default)]
    pub helpers: Vec<Process>,
}

impl Record {
    /// The record of a new container (`None`: the engine's business).
    pub fn of(spec: &Spec) -> Option<Record> {
        spec.network.map(|mode| Record {
            mode,
            ports: spec.ports.clone(),
            helpers: Vec::new(),
        })
    }
}

/// `bento rm`: stops, by pid, any helper that outlived its supervisor (a supervisor
/// killed with SIGKILL cannot stop them; PR_SET_PDEATHSIG does, a moment later).
pub fn tear_down(record: Option<&Record>) {
    for helper in record.iter().flat_map(|record| &record.helpers) {
        if helper.signal(Signal::SIGKILL).is_ok() {
            helper.wait_gone(std::time::Duration::from_secs(5));
        }
    }
}

/// The helpers, forked on the host before the supervisor leaves its namespaces, each
/// waiting for [`Prepared::start`].
pub struct Prepared {
    slirp: Helper,
    relay: Option<Helper>,
    log: PathBuf,
}

/// The supervisor's first step for a container with a network: binds the published ports
/// on the host (a port in use fails here, before anything is made), then forks slirp4netns
/// and the port relay, waiting. `None` without a network, or for an engine's container
/// (the engine makes its network, and no supervisor of ours stays to tear one down).
pub fn prepare(container: &Container, spec: &Spec, engine: bool) -> Result<Option<Prepared>> {
    let mode = spec.network.unwrap_or_default();
    if engine || mode == Mode::None {
        return Ok(None);
    }
    anyhow::ensure!(
        spec.new_namespace("net"),
        "--network {mode} needs a network namespace of the container's own"
    );
    let listeners = ports::listen(&spec.ports)?;
    let program = slirp4netns()?;
    let log = container.file("slirp4netns.log");
    let output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&log)
        .with_context(|| format!("cannot create {}", log.display()))?;
    let slirp = Helper::fork(&[output.as_raw_fd()], |report| {
        become_slirp4netns(&program, mode, report, &output)
    })?;
    let relay = match listeners.is_empty() {
        true => None,
        false => {
            let fds: Vec<RawFd> = listeners.iter().map(|(l, _)| l.as_raw_fd()).collect();
            Some(Helper::fork(&fds, |report| {
                ports::relay(listeners, report)
            })?)
        }
    };
    Ok(Some(Prepared { slirp, relay, log }))
}

impl Prepared {
    /// Once the supervisor is in the container's namespaces: slirp4netns starts for them,
    /// and the relay joins them. Returns when the tap device is up and the relay is in.
    pub fn start(self) -> Result<Running> {
        let Prepared {
            mut slirp,
            relay,
            log,
        } = self;
        let mut running = Running {
            helpers: Vec::new(),
        };
        let ready = slirp.start();
        running.helpers.push(slirp);
        if !ready {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(plumbing::hinted(
                format!(
                    "slirp4netns did not set up the network: {}",
                    said.lines().last().unwrap_or("it said nothing")
                ),
                "that was its last message; `man slirp4netns` says more",
            ));
        }
        if let Some(mut relay) = relay {
            let joined = relay.start();
            running.helpers.push(relay);
            if !joined {
                return Err(plumbing::hinted(
                    "the port relay could not join the container's network namespace",
                    "bento's helper for -p needs setns(2) into the container's user and \
                     network namespaces: is a security module refusing it?",
                ));
            }
        }
        Ok(running)
    }
}

/// slirp4netns and the port relay at work: stopped (SIGKILL) and reaped when the
/// container ends, or when this is dropped.
pub struct Running {
    helpers: Vec<Helper>,
}

impl Running {
    /// The helpers, for the state.
    pub fn processes(&self) -> Vec<Process> {
        self.helpers
            .iter()
            .filter_map(|helper| Process::of(helper.pid.as_raw()).ok())
            .collect()
    }

    /// Stops them: the published ports are free once this returns.
    pub fn stop(self) {
        drop(self);
    }
}

/// A process forked on the host for the container's network, waiting on a pipe for its
/// start, and reporting on another. Dropping it kills (SIGKILL) and reaps it: it is our
/// child, so until we reap it its pid cannot name another process. Only in the process
/// that forked it (PID 1 is forked later, with a copy of this).
struct Helper {
    pid: Pid,
    owner: Pid,
    start: Option<OwnedFd>,
    report: OwnedFd,
}

impl Helper {
    /// Forks a helper that keeps only `keep` of our descriptors (not the container's
    /// lock, not the log), dies with us, and is in a process group of its own (keys typed
    /// at the terminal are for the container). It waits for [`Helper::start`], then runs
    /// `body` with the pipe it reports on.
    fn fork(keep: &[RawFd], body: impl FnOnce(OwnedFd) -> Result<()>) -> Result<Helper> {
        let (wait, start) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("cannot make a pipe")?;
        let (reports, report) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).context("cannot make a pipe")?;
        let parent = getpid();
        // SAFETY: bento is single-threaded, so the child may go on running Rust code.
        match unsafe { fork() }.context("fork failed")? {
            ForkResult::Parent { child } => Ok(Helper {
                pid: child,
                owner: parent,
                start: Some(start),
                report: reports,
            }),
            ForkResult::Child => {
                drop((start, reports));
                let mut kept = keep.to_vec();
                kept.extend([wait.as_raw_fd(), report.as_raw_fd()]);
                let prepared = set_up_helper(parent, &kept)
                    .and_then(|()| match message::receive(&wait) {
                        Some(Message::Ready) => Ok(()),
                        _ => anyhow::bail!("the supervisor is gone"),
                    })
                    .and_then(|()| body(report));
                // SAFETY: _exit(2) ends the helper at once, without running the
                // supervisor's destructors (its copy of the helpers would kill them).
                unsafe { libc::_exit(i32::from(prepared.is_err())) }
            }
        }
    }

    /// Tells the helper to go, and waits (at most 10 s) for its report: true if it said
    /// it is ready.
    fn start(&mut self) -> bool {
        let Some(start) = self.start.take() else {
            return false;
        };
        if message::send(&start, Message::Ready).is_err() {
            return false;
        }
        let mut fds = [PollFd::new(self.report.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(READY_TIMEOUT_MS)) {
            Ok(n) if n > 0 => message::receive(&self.report) == Some(Message::Ready),
            _ => false,
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if getpid() == self.owner {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// In a new helper: dies with its parent, a process group of its own, never dumpable
/// (it will see into the container), stdin, stdout and stderr /dev/null, and only `keep` of the
/// descriptors past 2.
fn set_up_helper(parent: Pid, keep: &[RawFd]) -> Result<()> {
    set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG) failed")?;
    anyhow::ensure!(getppid() == parent, "the supervisor is gone");
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE) failed")?;
    // Not bento create's stdout and stderr: whoever reads them would wait for the
    // helpers' end (slirp4netns's go to its log).
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("cannot open /dev/null")?;
    dup2_stdin(&null)
        .and_then(|()| dup2_stdout(&null))
        .and_then(|()| dup2_stderr(&null))
        .context("cannot redirect the helper's stdin, stdout and stderr")?;
    drop(null);
    close_all_but(keep)
}

/// close_range(2) every descriptor from 3 on but `keep`.
fn close_all_but(keep: &[RawFd]) -> Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for fd in keep.into_iter().chain([u32::MAX]) {
        if fd > first {
            // SAFETY: close_range(2) with two numbers and no flags.
            let done = unsafe { libc::close_range(first, fd - 1, 0) };
            Errno::result(done).context("close_range failed")?;
        }
        first = first.max(fd.saturating_add(1));
    }
    Ok(())
}

/// In the slirp4netns helper, once the supervisor is in the container's namespaces:
/// becomes slirp4netns for it (execve(2)). `--configure` gives tap0 its address, route
/// and DNS server; `--ready-fd` is where it says "1" once done; `--disable-host-loopback`
/// unless asked; `--enable-sandbox` and `--enable-seccomp` shut slirp4netns itself in (it
/// parses whatever the container sends). Returns only on failure.
fn become_slirp4netns(program: &Path, mode: Mode, report: OwnedFd, output: &File) -> Result<()> {
    let parent = getppid();
    // Never configure a tap device in the host's own network: the supervisor must be in
    // a namespace of its own by now.
    let ns = |pid: &str| std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino());
    anyhow::ensure!(
        ns(&parent.to_string()).context("no supervisor")? != ns("self")?,
        "the supervisor is not in a network namespace of its own"
    );
    // The report pipe becomes slirp4netns's ready fd: inherited through the exec.
    fcntl(&report, FcntlArg::F_SETFD(FdFlag::empty())).context("fcntl failed")?;
    dup2_stdout(output).context("cannot redirect stdout")?;
    dup2_stderr(output).context("cannot redirect stderr")?;
    let mut args = vec![
        program.as_os_str().as_encoded_bytes().to_vec(),
        b"--configure".to_vec(),
        b"--mtu=65520".to_vec(),
        b"--enable-sandbox".to_vec(),
        b"--enable-seccomp".to_vec(),
        format!("--ready-fd={}", report.as_raw_fd()).into_bytes(),
    ];
    if mode != Mode::SlirpHostLoopback {
        args.push(b"--disable-host-loopback".to_vec());
    }
    args.extend([parent.to_string().into_bytes(), b"tap0".to_vec()]);
    let args = args
        .into_iter()
        .map(CString::new)
        .collect::<Result<Vec<_>, _>>()
        .context("a NUL byte in slirp4netns's path")?;
    let Err(errno) = nix::unistd::execv(&args[0], &args);
    Err(errno).context("cannot run slirp4netns")
}

//! Resource limits (the talk's "cgroups"): config.json's `linux.cgroupsPath` and
//! `linux.resources`, and bento's own `--memory SIZE` and `--pids-limit N`, which become
//! the same two fields.
//!
//! Namespaces limit what a container *sees*; control groups limit what it *uses*
//! (cgroups(7)). A cgroup is a directory in the cgroup filesystem: make one, write limits
//! into its files, write a pid into its `cgroup.procs`, and that process and every child
//! it forks are counted and held to the limits. An engine names the directory
//! (`cgroupsPath`: containerd's `/NAMESPACE/ID`, absolute, from the hierarchy's root; a
//! relative one is placed next to bento's own cgroup) and the limits; Kubernetes sets both
//! for every container (its requests and limits), and resizes them in place (`update`).
//!
//! Two versions exist, and a runtime meets both:
//! - **cgroup v2** (one tree, every controller; what systemd machines use): an
//!   unprivileged user may only write to a subtree *delegated* to them (systemd does it
//!   for `user@UID.service`). A cgroup may use only the controllers its parent enabled
//!   (`cgroup.subtree_control`), and v2 forbids processes in a cgroup whose controllers are
//!   enabled for children: so a relative cgroup goes next to bento's own, not under it.
//!   Files: `memory.max`, `memory.low`, `memory.swap.max`, `cpu.weight`, `cpu.max`,
//!   `cpuset.cpus`, `pids.max`, `io.weight`, `hugetlb.SIZE.max`, `cgroup.freeze`.
//! - **cgroup v1** (one tree per controller; older and hybrid machines, this workshop's
//!   CI among them): only root may make cgroups. The container gets a directory in every
//!   hierarchy (memory, cpu, cpuset, pids, blkio, devices, freezer…), so that it is counted
//!   in each. Files: `memory.limit_in_bytes`, `memory.soft_limit_in_bytes`,
//!   `memory.memsw.limit_in_bytes`, `cpu.shares`, `cpu.cfs_quota_us`, `cpuset.cpus`,
//!   `pids.max`, `blkio.weight`, `hugetlb.SIZE.limit_in_bytes`, `devices.allow`/`deny`,
//!   `freezer.state`.
//!
//! Device rules need an eBPF program on v2 (runc loads one); bento does not, and says so,
//! as it says of anything a host cannot enforce: once on stderr and in `bento features`.
//!
//! The supervisor makes the cgroup before the user namespace (as root, v1 files belong to
//! the real root) and opens each `cgroup.procs`; PID 1 writes `0` ("myself") into them
//! before anything else, so every process of the container is counted from the start.
//! Real runtimes can also ask systemd over D-Bus for a scope (`--systemd-cgroup`); bento
//! works through the filesystem only (runc's "cgroupfs" driver).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::errors::Refusal;

/// What to say when no cgroup can be made here.
pub const FIX: &str = "cgroup v2: run bento in a delegated cgroup (systemd: `systemd-run --user \
     --scope -p Delegate=yes bento …`); cgroup v1: run bento as root";

/// The v1 hierarchies a container joins, when the host has them.
const V1_CONTROLLERS: [&str; 9] = [
    "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer", "hugetlb",
];

/// The v2 controllers bento enables for a container, when its parent offers them.
const V2_CONTROLLERS: [&str; 6] = ["memory", "cpu", "cpuset", "pids", "io", "hugetlb"];

/// `linux.resources`, as bento applies them (0 and -1 mean "no limit", as in runc).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// Memory plus swap, as OCI and v1 count it.
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub pids: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// Page size (`2MB`) and limit in bytes.
    #[serde(default)]
    pub hugetlb: Vec<(String, u64)>,
    #[serde(default)]
    pub devices: Vec<DeviceRule>,
}

/// One of `linux.resources.devices`: allow or deny access to some device numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    /// `a` (all), `c`, `b`.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// `r`, `w`, `m` (mknod), in any combination.
    pub access: String,
}

impl DeviceRule {
    /// The rule as the v1 devices controller reads it: `c 1:3 rwm`, `a *:* rwm`.
    fn line(&self) -> String {
        let number = |n: Option<i64>| n.filter(|n| *n >= 0).map_or("*".into(), |n| n.to_string());
        let access = if self.access.is_empty() {
            "rwm"
        } else {
            &self.access
        };
        format!(
            "{} {}:{} {access}",
            self.kind,
            number(self.major),
            number(self.minor)
        )
    }
}

/// A limit that says something: not absent, not 0, not -1.
fn set(value: Option<i64>) -> Option<i64> {
    value.filter(|v| *v > 0)
}

impl Resources {
    /// config.json's `linux.resources`.
    pub fn from_oci(resources: &oci_spec::runtime::LinuxResources) -> Resources {
        let memory = resources.memory().as_ref();
        let cpu = resources.cpu().as_ref();
        Resources {
            memory: set(memory.and_then(|m| m.limit())),
            memory_reservation: set(memory.and_then(|m| m.reservation())),
            memory_swap: memory.and_then(|m| m.swap()).filter(|s| *s != 0),
            cpu_shares: cpu.and_then(|c| c.shares()).filter(|s| *s > 0),
            cpu_quota: cpu.and_then(|c| c.quota()).filter(|q| *q != 0),
            cpu_period: cpu.and_then(|c| c.period()).filter(|p| *p > 0),
            cpus: cpu.and_then(|c| c.cpus().clone()).filter(|s| !s.is_empty()),
            mems: cpu.and_then(|c| c.mems().clone()).filter(|s| !s.is_empty()),
            pids: set(resources.pids().as_ref().map(|p| p.limit())),
            blkio_weight: resources
                .block_io()
                .as_ref()
                .and_then(|b| b.weight())
                .filter(|w| *w > 0),
            hugetlb: resources
                .hugepage_limits()
                .iter()
                .flatten()
                .filter_map(|h| Some((h.page_size().clone(), u64::try_from(h.limit()).ok()?)))
                .collect(),
            devices: resources
                .devices()
                .iter()
                .flatten()
                .map(|d| DeviceRule {
                    allow: d.allow(),
                    kind: match d.typ() {
                        Some(oci_spec::runtime::LinuxDeviceType::C) => 'c',
                        Some(oci_spec::runtime::LinuxDeviceType::B) => 'b',
                        _ => 'a',
                    },
                    major: d.major(),
                    minor: d.minor(),
                    access: d.access().clone().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// The parts of `linux.resources` bento does not apply, by name: said, not dropped.
    pub fn not_applied(resources: &oci_spec::runtime::LinuxResources) -> Vec<String> {
        let mut names = Vec::new();
        let mut note = |given: bool, name: &str| {
            if given {
                names.push(format!("linux.resources.{name} is not applied by bento"));
            }
        };
        if let Some(m) = resources.memory() {
            note(m.kernel().is_some(), "memory.kernel");
            note(m.kernel_tcp().is_some(), "memory.kernelTCP");
            note(m.swappiness().is_some(), "memory.swappiness");
            note(
                m.disable_oom_killer() == Some(true),
                "memory.disableOOMKiller",
            );
        }
        if let Some(c) = resources.cpu() {
            note(
                c.realtime_runtime().is_some() || c.realtime_period().is_some(),
                "cpu.realtime*",
            );
            note(c.idle().is_some(), "cpu.idle");
            note(c.burst().is_some(), "cpu.burst");
        }
        if let Some(b) = resources.block_io() {
            note(
                b.weight_device().as_ref().is_some_and(|d| !d.is_empty()),
                "blockIO.weightDevice",
            );
            let throttled = [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ];
            note(
                throttled
                    .iter()
                    .any(|t| t.as_ref().is_some_and(|d| !d.is_empty())),
                "blockIO.throttle*",
            );
        }
        note(resources.network().is_some(), "network");
        note(
            resources.rdma().as_ref().is_some_and(|r| !r.is_empty()),
            "rdma",
        );
        note(
            resources.unified().as_ref().is_some_and(|u| !u.is_empty()),
            "unified",
        );
        names
    }

    /// Nothing to limit.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// The controllers these limits need (v2 names; v1 names the same but io is blkio).
    fn needs(&self) -> Vec<&'static str> {
        let mut needs = Vec::new();
        if self.memory.is_some() || self.memory_reservation.is_some() || self.memory_swap.is_some()
        {
            needs.push("memory");
        }
        if self.cpu_shares.is_some() || self.cpu_quota.is_some() || self.cpu_period.is_some() {
            needs.push("cpu");
        }
        if self.cpus.is_some() || self.mems.is_some() {
            needs.push("cpuset");
        }
        if self.pids.is_some() {
            needs.push("pids");
        }
        needs
    }

    /// These limits over `older`: what is given here replaces what was (`update`).
    pub fn over(self, older: &Resources) -> Resources {
        Resources {
            memory: self.memory.or(older.memory),
            memory_reservation: self.memory_reservation.or(older.memory_reservation),
            memory_swap: self.memory_swap.or(older.memory_swap),
            cpu_shares: self.cpu_shares.or(older.cpu_shares),
            cpu_quota: self.cpu_quota.or(older.cpu_quota),
            cpu_period: self.cpu_period.or(older.cpu_period),
            cpus: self.cpus.or(older.cpus.clone()),
            mems: self.mems.or(older.mems.clone()),
            pids: self.pids.or(older.pids),
            blkio_weight: self.blkio_weight.or(older.blkio_weight),
            hugetlb: match self.hugetlb.is_empty() {
                true => older.hugetlb.clone(),
                false => self.hugetlb,
            },
            devices: match self.devices.is_empty() {
                true => older.devices.clone(),
                false => self.devices,
            },
        }
    }
}

/// Where the cgroup filesystem is, and where this process is in it.
#[derive(Debug, Clone)]
pub struct Host {
    /// The cgroup filesystem's mount point (`/sys/fs/cgroup`).
    pub root: PathBuf,
    /// `/proc/self/cgroup`: one `ID:CONTROLLERS:PATH` line per hierarchy.
    pub self_cgroup: String,
    /// Are we root (v1 needs it)?
    pub root_user: bool,
}

impl Host {
    /// This machine.
    pub fn this() -> Host {
        Host {
            root: PathBuf::from("/sys/fs/cgroup"),
            self_cgroup: fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            root_user: nix::unistd::geteuid().is_root(),
        }
    }

    /// Our path in the hierarchy whose controller list contains `controller` (v1), or
    /// in the unified one (`0::PATH`) for `""`.
    fn path(&self, controller: &str) -> Option<&str> {
        self.self_cgroup.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let matches = if controller.is_empty() {
                controllers.is_empty()
            } else {
                controllers.split(',').any(|c| c == controller)
            };
            matches.then_some(path)
        })
    }

    /// The v2 mount: `/sys/fs/cgroup` on unified machines, `/sys/fs/cgroup/unified` on
    /// hybrid ones.
    fn unified(&self) -> Option<PathBuf> {
        [self.root.clone(), self.root.join("unified")]
            .into_iter()
            .find(|dir| dir.join("cgroup.controllers").is_file())
    }

    /// The v2 cgroup under which bento makes containers' cgroups: our own cgroup's parent
    /// (v2 forbids processes in a cgroup whose controllers are enabled for children, so
    /// the container's cgroup cannot go under ours), or the root if we are at the root.
    fn v2_parent(&self) -> Option<PathBuf> {
        let mount = self.unified()?;
        let ours = self.path("")?.trim_start_matches('/');
        let parent = Path::new(ours).parent().unwrap_or(Path::new(""));
        Some(mount.join(parent))
    }

    /// Which version bento would use for these controllers here, or why none.
    pub fn which(&self, wanted: &[&str]) -> Result<Version, String> {
        if let Some(parent) = self.v2_parent() {
            let available =
                fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|c| !available.split_whitespace().any(|a| a == *c))
                .collect();
            let writable = nix::unistd::access(&parent, nix::unistd::AccessFlags::W_OK).is_ok();
            let pure_v2 = self.root.join("cgroup.controllers").is_file();
            if missing.is_empty() && writable && (pure_v2 || !wanted.is_empty()) {
                return Ok(Version::V2(parent));
            }
            if missing.is_empty() && !self.root_user {
                return Err(format!(
                    "cgroup v2 at {} is not delegated to this user",
                    parent.display()
                ));
            }
        }
        let hierarchy = |c: &str| -> Option<(String, PathBuf)> {
            let dir = self.root.join(c);
            let path = self.path(c)?.trim_start_matches('/');
            dir.is_dir().then(|| (c.to_string(), dir.join(path)))
        };
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| hierarchy(c).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "no cgroup hierarchy here has the {} controller(s)",
                missing.join(" and ")
            ));
        }
        if !self.root_user {
            return Err("cgroup v1 is here, and only root may make v1 cgroups".into());
        }
        // Every hierarchy the host has, so that the container is counted in each.
        Ok(Version::V1(
            V1_CONTROLLERS.iter().filter_map(|c| hierarchy(c)).collect(),
        ))
    }
}

/// The cgroup version bento uses, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// cgroup v2: where a relative cgroup goes (the delegated parent of ours).
    V2(PathBuf),
    /// cgroup v1: for each controller, where a relative cgroup goes (our own cgroup).
    V1(Vec<(String, PathBuf)>),
}

/// A container's cgroup: one directory (v2) or one per hierarchy (v1), with an open
/// `cgroup.procs` in each.
#[derive(Debug)]
pub struct Cgroup {
    pub dirs: Vec<PathBuf>,
    procs: Vec<File>,
    /// A process left on the host to remove the directories ([`Cgroup::remover_on_the_host`]).
    remover: Option<(std::os::fd::OwnedFd, nix::unistd::Pid)>,
}

/// Where a container's cgroup goes, and what to limit.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `linux.cgroupsPath`: absolute (from the hierarchy's root) or relative (next to
    /// bento's own cgroup); none: `bento-NAME`, relative (config.rs names bento's own
    /// containers' cgroups).
    pub path: Option<&'a str>,
    pub name: &'a str,
    pub resources: &'a Resources,
    /// Make one even without limits (bento's own containers as root, so that `pause`
    /// works; every engine's container names its path).
    pub always: bool,
}

impl Cgroup {
    /// Makes the container's cgroup with its limits, if it asks for one; says on stderr
    /// what this host cannot enforce.
    pub fn create(request: &Request) -> Result<Option<Cgroup>> {
        let (cgroup, unenforced) = Cgroup::create_on(&Host::this(), request)?;
        for what in unenforced {
            eprintln!("bento: warning: {what}");
        }
        Ok(cgroup)
    }

    /// [`Cgroup::create`] on any host, a real or a fake cgroup tree; also what it could
    /// not enforce there.
    pub fn create_on(host: &Host, request: &Request) -> Result<(Option<Cgroup>, Vec<String>)> {
        let limits_beyond_devices = !Resources {
            devices: Vec::new(),
            ..request.resources.clone()
        }
        .is_empty();
        let devices_only = !limits_beyond_devices && !request.resources.devices.is_empty();
        if request.path.is_none() && !request.always && !limits_beyond_devices {
            // Rootless, device rules alone are no reason to need a cgroup (runc skips them
            // too): a user namespace cannot make device nodes, and /dev holds only the ones
            // config.json lists.
            if devices_only && host.root_user {
                // As root they are enforced, below.
            } else {
                let unenforced = match devices_only {
                    true => vec!["device rules are not enforced rootless: /dev holds only the devices config.json lists".to_string()],
                    false => Vec::new(),
                };
                return Ok((None, unenforced));
            }
        }
        let version = host.which(&request.resources.needs()).map_err(|why| {
            Refusal::NoCgroups.error(
                format!("cannot limit the container's resources: {why}"),
                FIX,
            )
        })?;
        let leaf = format!("bento-{}", request.name);
        let place = |mount: &Path, relative_to: &Path| -> PathBuf {
            match request.path {
                Some(path) if path.starts_with('/') => mount.join(path.trim_start_matches('/')),
                Some(path) => relative_to.join(path),
                None => relative_to.join(&leaf),
            }
        };
        let dirs: Vec<(String, PathBuf)> = match &version {
            Version::V2(parent) => {
                let mount = host.unified().unwrap_or_else(|| host.root.clone());
                vec![(String::new(), place(&mount, parent))]
            }
            Version::V1(hierarchies) => hierarchies
                .iter()
                .map(|(controller, ours)| {
                    (controller.clone(), place(&host.root.join(controller), ours))
                })
                .collect(),
        };
        let made = (|| -> Result<(Cgroup, Vec<String>)> {
            for (controller, dir) in &dirs {
                match controller.is_empty() {
                    true => make_v2(host, dir)?,
                    false => make_v1(controller, dir)?,
                }
            }
            let unenforced = apply(&dirs, request.resources)?;
            let paths: Vec<PathBuf> = dirs.iter().map(|(_, dir)| dir.clone()).collect();
            Ok((Cgroup::open(&paths)?, unenforced))
        })();
        match made {
            Ok((cgroup, unenforced)) => Ok((Some(cgroup), unenforced)),
            Err(error) => {
                remove(&dirs.into_iter().map(|(_, dir)| dir).collect::<Vec<_>>());
                Err(error)
            }
        }
    }

    /// The cgroup in `dirs`, opened to move processes in (`bento exec`).
    pub fn open(dirs: &[PathBuf]) -> Result<Cgroup> {
        let procs = dirs
            .iter()
            .map(|dir| {
                let path = dir.join("cgroup.procs");
                OpenOptions::new()
                    .write(true)
                    .create(!path.exists())
                    .open(&path)
                    .with_context(|| format!("cannot open {}", path.display()))
            })
            .collect::<Result<_>>()?;
        Ok(Cgroup {
            dirs: dirs.to_vec(),
            procs,
            remover: None,
        })
    }

    /// Before the supervisor enters a new user namespace: a process of ours stays on the
    /// host to remove the cgroup when told. In the user namespace our uid 0 is not the
    /// host's, and may not rmdir(2) in the host's hierarchy (EACCES): every container with
    /// a user namespace, as root, left its cgroup behind. The helper waits on a pipe: a
    /// byte, and it removes the directories; the pipe closed without one (the container
    /// handed to an engine, whose `delete` removes it), and it only ends.
    pub fn remover_on_the_host(&mut self) -> Result<()> {
        let (wait, tell) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
        // SAFETY: bento is single-threaded, so the child may go on running Rust code.
        match unsafe { nix::unistd::fork() }.context("fork failed")? {
            nix::unistd::ForkResult::Parent { child } => {
                drop(wait);
                self.remover = Some((tell, child));
                Ok(())
            }
            nix::unistd::ForkResult::Child => {
                // Nothing of the container's (its lock, the caller's terminal) stays open
                // here: only the pipe, and /dev/null as stdin, stdout and stderr.
                if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
                    let _ = nix::unistd::dup2_stdin(&null);
                    let _ = nix::unistd::dup2_stdout(&null);
                    let _ = nix::unistd::dup2_stderr(&null);
                }
                let _ = crate::caller::close_callers_descriptors(
                    0,
                    Some(std::os::fd::AsFd::as_fd(&wait)),
                );
                let mut byte = [0u8; 1];
                if matches!(nix::unistd::read(&wait, &mut byte), Ok(1)) {
                    remove(&self.dirs);
                }
                std::process::exit(0)
            }
        }
    }

    /// Moves the calling process in: `0` means "the writer" (cgroups(7)).
    pub fn join(&self) -> Result<()> {
        for mut file in &self.procs {
            file.write_all(b"0")
                .context("cannot move the process into its cgroup")?;
        }
        Ok(())
    }

    /// Did the kernel's OOM killer kill a process of this cgroup?
    pub fn oom_killed(&self) -> bool {
        oom_killed(&self.dirs)
    }

    /// Removes the cgroup (it must be empty: the container is gone), through the helper on
    /// the host if there is one.
    pub fn remove(&self) {
        match &self.remover {
            Some((tell, helper)) => {
                if nix::unistd::write(tell, &[1]).is_ok() {
                    let _ = nix::sys::wait::waitpid(*helper, None);
                }
            }
            None => remove(&self.dirs),
        }
    }
}

/// Did the kernel's OOM killer kill a process in these cgroups? (`oom_kill` in v2's
/// memory.events, v1's memory.oom_control.)
pub fn oom_killed(dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|dir| {
        ["memory.events", "memory.oom_control"].iter().any(|file| {
            fs::read_to_string(dir.join(file)).is_ok_and(|text| {
                text.lines().any(|line| {
                    line.strip_prefix("oom_kill ")
                        .is_some_and(|n| n.trim().parse::<u64>().unwrap_or(0) > 0)
                })
            })
        })
    })
}

/// A v2 cgroup at `dir`, with each level above it (up to the mount) enabling the
/// controllers its parent offers: a cgroup may only use what its parent enabled.
fn make_v2(host: &Host, dir: &Path) -> Result<()> {
    let mount = host.unified().unwrap_or_else(|| host.root.clone());
    let relative = dir.strip_prefix(&mount).unwrap_or(dir);
    let mut at = mount.clone();
    for part in relative.components() {
        enable_v2_controllers(&at);
        at = at.join(part);
        match fs::create_dir(&at) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot create the cgroup {}", at.display()));
            }
        }
    }
    Ok(())
}

/// Enables, for the children of `dir`, the controllers it offers that bento uses.
fn enable_v2_controllers(dir: &Path) {
    let offered = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let enable: Vec<String> = V2_CONTROLLERS
        .iter()
        .filter(|c| offered.split_whitespace().any(|o| o == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if !enable.is_empty() {
        // Best effort: a level we may not write (above a delegated subtree) has them on.
        let _ = write(&dir.join("cgroup.subtree_control"), &enable.join(" "));
    }
}

/// A v1 cgroup at `dir` (and the levels above it). A new cpuset cgroup has no cpus and no
/// memory nodes, and refuses processes until it has: each level gets its parent's.
fn make_v1(controller: &str, dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = dir.to_path_buf();
    while !at.exists() {
        missing.push(at.clone());
        match at.parent() {
            Some(parent) => at = parent.to_path_buf(),
            None => break,
        }
    }
    for level in missing.iter().rev() {
        match fs::create_dir(level) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot create the cgroup {}", level.display()));
            }
        }
        if controller == "cpuset"
            && let Some(parent) = level.parent()
        {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = fs::read_to_string(parent.join(file)).unwrap_or_default();
                write(&level.join(file), value.trim())?;
            }
        }
    }
    Ok(())
}

/// Writes `resources` into the cgroup's files; returns what this host cannot enforce.
fn apply(dirs: &[(String, PathBuf)], resources: &Resources) -> Result<Vec<String>> {
    let mut unenforced = Vec::new();
    for (controller, dir) in dirs {
        match controller.as_str() {
            "" => apply_v2(dir, resources, &mut unenforced)?,
            "memory" => {
                if let Some(limit) = resources.memory {
                    write(&dir.join("memory.limit_in_bytes"), &limit.to_string())?;
                }
                if let Some(low) = resources.memory_reservation {
                    write(&dir.join("memory.soft_limit_in_bytes"), &low.to_string())?;
                }
                if let Some(swap) = resources.memory_swap {
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    match memsw.exists() {
                        true => write(&memsw, &swap.to_string())?,
                        false => unenforced.push(
                            "memory.swap is not enforced: this kernel keeps no swap accounting"
                                .to_string(),
                        ),
                    }
                }
            }
            "cpu" => {
                if let Some(shares) = resources.cpu_shares {
                    write(&dir.join("cpu.shares"), &shares.to_string())?;
                }
                // The period first: the quota is checked against it.
                if let Some(period) = resources.cpu_period {
                    write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                }
                if let Some(quota) = resources.cpu_quota {
                    write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
            }
            "cpuset" => {
                if let Some(cpus) = &resources.cpus {
                    write(&dir.join("cpuset.cpus"), cpus)?;
                }
                if let Some(mems) = &resources.mems {
                    write(&dir.join("cpuset.mems"), mems)?;
                }
            }
            "pids" => {
                if let Some(pids) = resources.pids {
                    write(&dir.join("pids.max"), &pids.to_string())?;
                }
            }
            "blkio" => {
                if let Some(weight) = resources.blkio_weight {
                    let file = ["blkio.weight", "blkio.bfq.weight"]
                        .iter()
                        .map(|name| dir.join(name))
                        .find(|file| file.exists());
                    match file {
                        Some(file) => write(&file, &weight.to_string())?,
                        None => unenforced.push(
                            "blockIO.weight is not enforced: the I/O scheduler here has no weights"
                                .to_string(),
                        ),
                    }
                }
            }
            "hugetlb" => {
                for (size, limit) in &resources.hugetlb {
                    write(
                        &dir.join(format!("hugetlb.{size}.limit_in_bytes")),
                        &limit.to_string(),
                    )?;
                }
            }
            "devices" => {
                for rule in &resources.devices {
                    let file = if rule.allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    write(&dir.join(file), &rule.line())?;
                }
            }
            _ => {}
        }
    }
    let v1: Vec<&str> = dirs.iter().map(|(c, _)| c.as_str()).collect();
    if !v1.contains(&"") {
        if !resources.hugetlb.is_empty() && !v1.contains(&"hugetlb") {
            unenforced.push("hugepageLimits are not enforced: no v1 hugetlb hierarchy here".into());
        }
        if !resources.devices.is_empty() && !v1.contains(&"devices") {
            unenforced.push("devices rules are not enforced: no v1 devices hierarchy here".into());
        }
    }
    Ok(unenforced)
}

/// [`apply`] on cgroup v2's files.
fn apply_v2(dir: &Path, resources: &Resources, unenforced: &mut Vec<String>) -> Result<()> {
    if let Some(limit) = resources.memory {
        write(&dir.join("memory.max"), &limit.to_string())?;
    }
    if let Some(low) = resources.memory_reservation {
        write(&dir.join("memory.low"), &low.to_string())?;
    }
    // v2 counts swap apart from memory: memory+swap minus memory. With no limit at all,
    // none: over the limit means the OOM killer, as on v1 without swap.
    let swap = match (resources.memory_swap, resources.memory) {
        (Some(-1), _) => Some("max".to_string()),
        (Some(total), Some(limit)) => Some((total - limit).max(0).to_string()),
        (None, Some(_)) => Some("0".to_string()),
        _ => None,
    };
    if let Some(swap) = swap
        && dir.join("memory.swap.max").exists()
    {
        write(&dir.join("memory.swap.max"), &swap)?;
    }
    if let Some(shares) = resources.cpu_shares {
        // cgroup v1's shares (2-262144) on v2's weight (1-10000), as runc converts them.
        let weight = 1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
        write(&dir.join("cpu.weight"), &weight.to_string())?;
    }
    if resources.cpu_quota.is_some() || resources.cpu_period.is_some() {
        let quota = match resources.cpu_quota {
            Some(quota) if quota > 0 => quota.to_string(),
            _ => "max".into(),
        };
        let period = resources.cpu_period.unwrap_or(100_000);
        write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
    }
    if let Some(cpus) = &resources.cpus {
        write(&dir.join("cpuset.cpus"), cpus)?;
    }
    if let Some(mems) = &resources.mems {
        write(&dir.join("cpuset.mems"), mems)?;
    }
    if let Some(pids) = resources.pids {
        write(&dir.join("pids.max"), &pids.to_string())?;
    }
    if let Some(weight) = resources.blkio_weight {
        // blkio's weight (10-1000) on io's (1-10000).
        let weight = 1 + (u64::from(weight).clamp(10, 1000) - 10) * 9999 / 990;
        match dir.join("io.weight").exists() {
            true => write(&dir.join("io.weight"), &format!("default {weight}"))?,
            false => unenforced.push("blockIO.weight is not enforced: no io.weight here".into()),
        }
    }
    for (size, limit) in &resources.hugetlb {
        let file = dir.join(format!("hugetlb.{size}.max"));
        match file.exists() {
            true => write(&file, &limit.to_string())?,
            false => unenforced.push(format!(
                "hugepageLimits {size} not enforced: no {}",
                file.display()
            )),
        }
    }
    if !resources.devices.is_empty() {
        unenforced.push(
            "linux.resources.devices is not enforced: cgroup v2 needs an eBPF program for device \
             rules, which bento does not load (its /dev holds only the devices config.json lists)"
                .into(),
        );
    }
    Ok(())
}

/// `update`: new limits on a running container's cgroup; what this host cannot enforce.
pub fn update(dirs: &[PathBuf], resources: &Resources) -> Result<Vec<String>> {
    let dirs: Vec<(String, PathBuf)> = dirs
        .iter()
        .map(|dir| (controller_of(dir), dir.clone()))
        .collect();
    apply(&dirs, resources)
}

/// The v1 controller whose hierarchy holds `dir` (`/sys/fs/cgroup/memory/…` → memory),
/// or "" for v2.
fn controller_of(dir: &Path) -> String {
    if dir.join("cgroup.controllers").exists() {
        return String::new();
    }
    dir.strip_prefix("/sys/fs/cgroup")
        .ok()
        .and_then(|rest| rest.components().next())
        .and_then(|first| first.as_os_str().to_str())
        .filter(|first| V1_CONTROLLERS.contains(first))
        .unwrap_or_default()
        .to_string()
}

/// Freezes (`pause`) or thaws (`resume`) every process of the cgroup, and waits until the
/// kernel says it is done: v1's freezer.state FROZEN/THAWED, v2's cgroup.freeze with
/// cgroup.events' `frozen` line.
pub fn freeze(dirs: &[PathBuf], frozen: bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    for dir in dirs {
        let v1 = dir.join("freezer.state");
        let v2 = dir.join("cgroup.freeze");
        let done: Box<dyn Fn() -> bool> = if v1.exists() {
            write(&v1, if frozen { "FROZEN" } else { "THAWED" })?;
            let want = if frozen { "FROZEN" } else { "THAWED" };
            Box::new(move || fs::read_to_string(&v1).is_ok_and(|s| s.trim() == want))
        } else if v2.exists() {
            write(&v2, if frozen { "1" } else { "0" })?;
            let events = dir.join("cgroup.events");
            let want = format!("frozen {}", u8::from(frozen));
            Box::new(move || {
                fs::read_to_string(&events).is_ok_and(|s| s.lines().any(|l| l == want))
            })
        } else {
            continue;
        };
        while !done() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the cgroup {} did not freeze",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        return Ok(());
    }
    Err(plumbing::hinted(
        "the container has no freezer cgroup",
        "pause and resume need a cgroup: as root every container has one; rootless, a delegated cgroup v2",
    ))
}

/// Is the cgroup frozen?
pub fn frozen(dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|dir| {
        fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            || fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    })
}

/// rmdir(2) of each cgroup: how a cgroup is removed (its files are not real files).
pub fn remove(dirs: &[PathBuf]) {
    for dir in dirs {
        let _ = fs::remove_dir(dir);
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).with_context(|| format!("cannot write {value:?} to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(memory: Option<i64>, pids: Option<i64>) -> Resources {
        Resources {
            memory,
            pids,
            ..Resources::default()
        }
    }

    fn request<'a>(resources: &'a Resources, path: Option<&'a str>) -> Request<'a> {
        Request {
            path,
            name: "box",
            resources,
            always: false,
        }
    }

    /// A fake cgroup v2 tree: this process in `/user.slice/u.service/app.scope`, whose
    /// parent offers `controllers`.
    fn fake_v2(controllers: &str) -> (PathBuf, Host) {
        let root = std::env::temp_dir().join(format!(
            "bento-cgroup-test-{}-{}",
            std::process::id(),
            controllers.len()
        ));
        let _ = fs::remove_dir_all(&root);
        let parent = root.join("user.slice/u.service");
        fs::create_dir_all(parent.join("app.scope")).unwrap();
        fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(parent.join("cgroup.controllers"), controllers).unwrap();
        fs::write(parent.join("cgroup.subtree_control"), "").unwrap();
        let host = Host {
            root: root.clone(),
            self_cgroup: "0::/user.slice/u.service/app.scope\n".into(),
            root_user: false,
        };
        (root, host)
    }

    #[test]
    fn v2_makes_a_sibling_cgroup_with_the_limits() {
        let (root, host) = fake_v2("memory pids cpu\n");
        let parent = root.join("user.slice/u.service");
        assert_eq!(host.which(&["memory"]), Ok(Version::V2(parent.clone())));
        let mut resources = limits(Some(64 << 20), Some(10));
        resources.cpu_shares = Some(1024);
        resources.cpu_quota = Some(50_000);
        resources.memory_reservation = Some(32 << 20);
        let (cgroup, unenforced) = Cgroup::create_on(&host, &request(&resources, None)).unwrap();
        let cgroup = cgroup.unwrap();
        assert!(unenforced.is_empty(), "{unenforced:?}");
        let dir = parent.join("bento-box");
        assert_eq!(cgroup.dirs, vec![dir.clone()]);
        let read = |path: &Path| fs::read_to_string(path).unwrap();
        assert_eq!(
            read(&parent.join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        assert_eq!(read(&dir.join("memory.max")), "67108864");
        assert_eq!(read(&dir.join("memory.low")), "33554432");
        assert_eq!(read(&dir.join("pids.max")), "10");
        assert_eq!(read(&dir.join("cpu.weight")), "39");
        assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
        assert!(
            !dir.join("memory.swap.max").exists(),
            "only written where it exists"
        );
        cgroup.join().unwrap();
        assert_eq!(read(&dir.join("cgroup.procs")), "0");
        assert!(!cgroup.oom_killed());
        fs::write(dir.join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert!(cgroup.oom_killed());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn v2_places_an_absolute_cgroups_path_from_the_root_and_says_what_it_cannot_enforce() {
        let (root, mut host) = fake_v2("memory pids\n");
        host.root_user = true;
        let mut resources = limits(Some(1 << 20), None);
        resources.devices = vec![DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        }];
        let (cgroup, unenforced) =
            Cgroup::create_on(&host, &request(&resources, Some("/default/web"))).unwrap();
        assert_eq!(cgroup.unwrap().dirs, vec![root.join("default/web")]);
        assert!(
            unenforced.iter().any(|u| u.contains("devices")),
            "{unenforced:?}"
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn no_limits_no_path_no_cgroup() {
        let (root, host) = fake_v2("");
        let none = Resources::default();
        assert!(
            Cgroup::create_on(&host, &request(&none, None))
                .unwrap()
                .0
                .is_none()
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn missing_controllers_are_a_clear_error() {
        let (root, host) = fake_v2("cpu\n");
        let resources = limits(None, Some(5));
        let error = Cgroup::create_on(&host, &request(&resources, None)).unwrap_err();
        assert_eq!(plumbing::report(&error), Refusal::NoCgroups as i32);
        assert!(format!("{error:#}").contains("pids"), "{error:#}");
        assert!(!root.join("user.slice/u.service/bento-box").exists());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn v1_needs_root_and_joins_every_hierarchy() {
        let root = std::env::temp_dir().join(format!("bento-cgroup-v1-{}", std::process::id()));
        fs::create_dir_all(root.join("pids/job")).unwrap();
        fs::create_dir_all(root.join("freezer/job")).unwrap();
        let mut host = Host {
            root: root.clone(),
            self_cgroup: "8:pids:/job\n3:freezer:/job\n0::/\n".into(),
            root_user: false,
        };
        assert!(host.which(&["pids"]).unwrap_err().contains("only root"));
        host.root_user = true;
        assert_eq!(
            host.which(&["pids"]),
            Ok(Version::V1(vec![
                ("pids".into(), root.join("pids/job")),
                ("freezer".into(), root.join("freezer/job")),
            ]))
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn device_rules_read_as_the_v1_controller_wants_them() {
        let all = DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: Some(-1),
            access: String::new(),
        };
        assert_eq!(all.line(), "a *:* rwm");
        let null = DeviceRule {
            allow: true,
            kind: 'c',
            major: Some(1),
            minor: Some(3),
            access: "rw".into(),
        };
        assert_eq!(null.line(), "c 1:3 rw");
    }
}

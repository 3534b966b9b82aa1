//! What to run, and how: everything PID 1 and its supervisor need, decided before any
//! namespace exists and written to the container's `spec.json`.
//!
//! Both front ends come through here. An engine (podman) hands bento an OCI *bundle*: a
//! directory with a `config.json` (the OCI runtime spec's config.md) and the root
//! filesystem it names. `bento create NAME IMAGE` writes a `config.json` of its own, from
//! the image and the command line ([`crate::config::build_config`]), into the container's
//! directory. Either way [`Spec::from_config`] reads it with the `oci-spec` crate and turns
//! it into this smaller spec, which is all the rest of bento looks at: the two front ends
//! cannot drift apart.
//!
//! What bento takes from config.json, and what it leaves out, is listed in
//! [`Spec::from_config`] (and `bento features`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_spec::runtime::{LinuxDeviceType, Spec as Config};
use plumbing::Hint;

use crate::cgroups::Resources;
use serde::{Deserialize, Serialize};

/// What bento's own annotations start with: taken from its own front end, never from a
/// bundle ([`Spec::from_config`]).
pub const OWN_ANNOTATIONS: &str = "org.bento.";

/// Annotations through which bento's own front end tells the runtime about its image.
/// (Annotations are the runtime spec's place for what the spec itself does not say.)
pub const IMAGE: &str = "org.bento.image";
pub const IMAGE_ID: &str = "org.bento.image.id";
/// The image's root filesystem: `root.path` gets an overlay with this below, the
/// container's own layer above (podman mounts that overlay itself, before calling us).
pub const OVERLAY_LOWER: &str = "org.bento.overlay.lower";
/// A detached container's log rotates at this many bytes (`--log-size-max`; log.rs).
pub const LOG_SIZE_MAX: &str = "org.bento.log-size-max";

/// A container, ready to be made.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Spec {
    /// The image as the user named it, and its id (bento's front end only).
    pub image: String,
    pub image_id: String,
    /// The root filesystem (OCI `root.path`, made absolute).
    pub rootfs: PathBuf,
    /// The image below an overlay mounted on `rootfs` (bento's front end), or none.
    #[serde(default)]
    pub overlay_lower: Option<PathBuf>,
    /// `root.readonly`.
    #[serde(default)]
    pub readonly_root: bool,
    /// The command and its arguments (OCI `process.args`).
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs (OCI `process.env`).
    pub env: Vec<String>,
    /// The working directory inside the container (OCI `process.cwd`).
    pub cwd: String,
    /// `hostname`: set in the container's UTS namespace (empty: left as it is).
    pub hostname: String,
    /// Give the command a terminal of its own (OCI `process.terminal`).
    pub terminal: bool,
    /// Who the command runs as, and with which privileges (`process.user`, …).
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// `linux.cgroupsPath`: where the container's cgroup goes (cgroups.rs).
    #[serde(default)]
    pub cgroups_path: Option<String>,
    /// `linux.resources`: memory, cpu, pids, blockIO weight, hugepages, devices.
    #[serde(default)]
    pub resources: Resources,
    /// What config.json asks for that bento does not do, said at create (never dropped
    /// silently).
    #[serde(default)]
    pub not_applied: Vec<String>,
    /// `linux.namespaces`, in config.json's order: new ones, or one to join.
    pub namespaces: Vec<Namespace>,
    /// `linux.uidMappings` / `gidMappings`, for a new user namespace.
    #[serde(default)]
    pub uid_mappings: Vec<IdMap>,
    #[serde(default)]
    pub gid_mappings: Vec<IdMap>,
    /// `mounts`, in order.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// `linux.devices`, beyond the six every container gets (dev.rs).
    #[serde(default)]
    pub devices: Vec<Device>,
    /// `linux.maskedPaths`, `linux.readonlyPaths`, `linux.sysctl`.
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    #[serde(default)]
    pub sysctl: BTreeMap<String, String>,
    /// `linux.seccomp`, compiled at create (seccomp.rs): loaded last by PID 1 and by
    /// every `bento exec`.
    #[serde(default)]
    pub syscall_filter: Option<crate::seccomp::Filter>,
    /// A detached container's log rotates at this size (log.rs).
    #[serde(default)]
    pub log_size_max: Option<u64>,
    /// Descriptors 3 to 3 + N-1 an engine passes on to the command (`--preserve-fds N`):
    /// every other descriptor past 2 is closed at the exec.
    #[serde(default)]
    pub preserve_fds: u32,
    /// `annotations`, for `bento state`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Bento's own containers: the network and published ports (network.rs, ports.rs).
    #[serde(default)]
    pub network: Option<crate::network::Mode>,
    #[serde(default)]
    pub ports: Vec<crate::ports::Port>,
}

/// `process.user`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// `process.capabilities`: names such as `CAP_CHOWN`, per set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub inheritable: Vec<String>,
    pub ambient: Vec<String>,
}

/// One of `process.rlimits`: `RLIMIT_NOFILE`, soft, hard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rlimit {
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// One of `linux.namespaces`: its name as /proc/PID/ns/ has it (`mnt`, `net`, `pid`,
/// `ipc`, `uts`, `user`, `cgroup`), and the path of one to join (setns(2)), if any.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Namespace {
    pub kind: String,
    pub path: Option<PathBuf>,
}

/// One line of a uid_map or gid_map: `container host size`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// One of `mounts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mount {
    pub destination: String,
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// One of `linux.devices`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    pub path: String,
    /// `c` (character), `b` (block) or `p` (a FIFO).
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Spec {
    /// Does the container get a new namespace of this kind (not one joined by path)?
    pub fn new_namespace(&self, kind: &str) -> bool {
        self.namespaces
            .iter()
            .any(|ns| ns.kind == kind && ns.path.is_none())
    }

    /// Reads the bundle's `config.json` and turns it into a spec. Taken: `root`,
    /// `mounts`, `hostname`, `process` (args, env, cwd, terminal, user, capabilities,
    /// rlimits, noNewPrivileges, oomScoreAdj), `linux` (namespaces, uid/gid mappings,
    /// devices, maskedPaths, readonlyPaths, sysctl, resources, seccomp) and
    /// `annotations`. Left out, as `bento features` says: hooks, apparmor and SELinux
    /// labels, a seccomp agent, `linux.rootfsPropagation`, intelRdt, personality.
    pub fn from_config(bundle: &Path) -> Result<Spec> {
        let path = bundle.join("config.json");
        let text = std::fs::read(&path)
            .with_context(|| format!("cannot read {}", path.display()))
            .hint("a bundle is a directory with a config.json (`runc spec` makes one)")?;
        let json: serde_json::Value = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        check_capabilities(&json)?;
        crate::seccomp::check(&json["linux"]["seccomp"])?;
        let mut config: Config = serde_json::from_value(json)
            .with_context(|| format!("{} is not an OCI config", path.display()))?;
        // bento's own annotations are its front end's words to itself. In a bundle they
        // come from whoever wrote config.json, and podman copies an image's annotations
        // there: `org.bento.overlay.lower: /` made the host's / the container's root.
        let (ours, theirs): (Vec<_>, Vec<_>) = config
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .partition(|(key, _)| key.starts_with(OWN_ANNOTATIONS));
        config.set_annotations(Some(theirs.into_iter().collect()));
        let mut spec = Spec::from_oci(&config, bundle)?;
        for (key, _) in ours {
            spec.not_applied.push(format!(
                "the annotation {key} is left out: a bundle may not use bento's own"
            ));
        }
        Ok(spec)
    }

    /// [`Spec::from_config`], from a parsed config.
    pub fn from_oci(config: &Config, bundle: &Path) -> Result<Spec> {
        let root = config.root().as_ref().context("config.json has no root")?;
        let process = config
            .process()
            .as_ref()
            .context("config.json has no process")?;
        let linux = config.linux().clone().unwrap_or_default();
        let annotations: BTreeMap<String, String> = config
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let maps = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMap> {
            maps.iter()
                .flatten()
                .map(|m| IdMap {
                    container: m.container_id(),
                    host: m.host_id(),
                    size: m.size(),
                })
                .collect()
        };
        let resources = linux.resources().clone().unwrap_or_default();
        let devices = linux
            .devices()
            .iter()
            .flatten()
            .map(|d| {
                let kind = match d.typ() {
                    LinuxDeviceType::B => 'b',
                    LinuxDeviceType::P => 'p',
                    _ => 'c',
                };
                Device {
                    path: d.path().to_string_lossy().into_owned(),
                    kind,
                    major: d.major() as u64,
                    minor: d.minor() as u64,
                    mode: d.file_mode().unwrap_or(0o666),
                    uid: d.uid().unwrap_or(0),
                    gid: d.gid().unwrap_or(0),
                }
            })
            .collect();
        let (network, ports) = crate::network::from_annotations(&annotations)?;
        let mut spec = Spec {
            network,
            ports,
            image: annotations.get(IMAGE).cloned().unwrap_or_default(),
            image_id: annotations.get(IMAGE_ID).cloned().unwrap_or_default(),
            // root.path is relative to the bundle, or absolute (config.md, "Root").
            rootfs: bundle.join(root.path()),
            overlay_lower: annotations.get(OVERLAY_LOWER).map(PathBuf::from),
            log_size_max: annotations
                .get(LOG_SIZE_MAX)
                .and_then(|size| size.parse().ok()),
            readonly_root: root.readonly().unwrap_or(false),
            hostname: config.hostname().clone().unwrap_or_default(),
            // 0 and -1 mean "no limit" (runc reads them so), not "no memory at all".
            resources: Resources::from_oci(&resources),
            not_applied: Resources::not_applied(&resources),
            cgroups_path: linux
                .cgroups_path()
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            namespaces: linux
                .namespaces()
                .iter()
                .flatten()
                .map(|ns| Namespace {
                    kind: ns.typ().to_string(),
                    path: ns.path().clone(),
                })
                .collect(),
            uid_mappings: maps(linux.uid_mappings()),
            gid_mappings: maps(linux.gid_mappings()),
            mounts: config
                .mounts()
                .iter()
                .flatten()
                .map(|m| Mount {
                    destination: m.destination().to_string_lossy().into_owned(),
                    kind: m.typ().clone().unwrap_or_default(),
                    source: m
                        .source()
                        .as_ref()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    options: m.options().clone().unwrap_or_default(),
                })
                .collect(),
            devices,
            masked_paths: linux.masked_paths().clone().unwrap_or_default(),
            readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
            sysctl: linux
                .sysctl()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            syscall_filter: linux
                .seccomp()
                .as_ref()
                .map(crate::seccomp::compile)
                .transpose()
                .context("cannot compile config.json's linux.seccomp")?,
            annotations,
            ..Spec::default()
        };
        if !spec.resources.devices.is_empty() {
            let allowed = crate::dev::cgroup_rules(&spec.devices);
            spec.resources.devices.extend(allowed);
        }
        check_process(process)?;
        check_sysctl(&spec)?;
        spec.set_process(process);
        Ok(spec)
    }

    /// Takes config.json's `process` (or `exec --process`'s process.json, which replaces
    /// the container's): args, env, cwd, terminal, user, capabilities, rlimits,
    /// noNewPrivileges, oomScoreAdj.
    pub fn set_process(&mut self, process: &oci_spec::runtime::Process) {
        let names = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
            let mut names: Vec<String> = set
                .iter()
                .flatten()
                .map(|cap| cap_name(&cap.to_string()))
                .collect();
            names.sort();
            names
        };
        self.args = process.args().clone().unwrap_or_default();
        self.env = process.env().clone().unwrap_or_default();
        self.cwd = process.cwd().to_string_lossy().into_owned();
        self.terminal = process.terminal().unwrap_or(false);
        self.user = User {
            uid: process.user().uid(),
            gid: process.user().gid(),
            additional_gids: process.user().additional_gids().clone().unwrap_or_default(),
        };
        self.capabilities = process.capabilities().as_ref().map(|caps| Capabilities {
            bounding: names(caps.bounding()),
            effective: names(caps.effective()),
            permitted: names(caps.permitted()),
            inheritable: names(caps.inheritable()),
            ambient: names(caps.ambient()),
        });
        self.rlimits = process
            .rlimits()
            .iter()
            .flatten()
            .map(|r| Rlimit {
                kind: r.typ().to_string(),
                soft: r.soft(),
                hard: r.hard(),
            })
            .collect();
        self.no_new_privileges = process.no_new_privileges().unwrap_or(false);
        self.oom_score_adj = process.oom_score_adj();
    }
}

/// Names every capability in `process.capabilities` one by one, so that an unknown one is
/// one line naming its field and value (oci-spec's own message names neither).
fn check_capabilities(config: &serde_json::Value) -> Result<()> {
    let Some(sets) = config["process"]["capabilities"].as_object() else {
        return Ok(());
    };
    for (set, names) in sets {
        for name in names.as_array().into_iter().flatten() {
            let known = name
                .as_str()
                .is_some_and(|name| crate::privileges::CAPABILITIES.contains(&name));
            if !known {
                return Err(plumbing::hinted(
                    format!(
                        "config.json's process.capabilities.{set} names an unknown capability: {name}"
                    ),
                    "capabilities are named as in capabilities(7): CAP_CHOWN, CAP_NET_BIND_SERVICE, …",
                ));
            }
        }
    }
    Ok(())
}

/// `linux.sysctl` may only set what the container's own namespaces isolate, as runc
/// allows: the IPC settings with an IPC namespace, `net.*` with a network namespace, the
/// host and domain names with a UTS namespace; one joined by path must not be the host's. Every other key is
/// the whole machine's (`kernel.core_pattern` names the program the host's kernel runs, as
/// root, when a process crashes), and PID 1 writes them as the runtime's root, before
/// anything is dropped.
fn check_sysctl(spec: &Spec) -> Result<()> {
    let has = |kind: &str| spec.namespaces.iter().any(|ns| ns.kind == kind);
    for key in spec.sysctl.keys() {
        let refuse = |why: &str| {
            plumbing::hinted(
                format!("linux.sysctl {key:?} is refused: {why}"),
                "a container may set only the sysctls of its own namespaces (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)",
            )
        };
        if key
            .split('.')
            .any(|part| part.is_empty() || part.contains('/'))
        {
            return Err(refuse(
                "a key is names joined by dots, with no / and no empty name",
            ));
        }
        let Some(namespace) = sysctl_namespace(key) else {
            return Err(refuse("it is the whole machine's setting, in no namespace"));
        };
        if !has(namespace) {
            return Err(refuse(&format!(
                "the container shares the host's {namespace} namespace"
            )));
        }
        // Joined by path: it must not be ours (the host's, when an engine runs us). Said
        // here, at create; join.rs checks again the very file it joins.
        let joined = spec
            .namespaces
            .iter()
            .find(|ns| ns.kind == namespace)
            .and_then(|ns| ns.path.as_ref());
        if let Some(path) = joined
            && same_file(path, &Path::new("/proc/self/ns").join(namespace))
        {
            return Err(refuse(&format!(
                "the {namespace} namespace it joins is the host's"
            )));
        }
    }
    Ok(())
}

/// The namespace that holds the sysctl `key`, if any: `ipc`, `net` or `uts`.
pub fn sysctl_namespace(key: &str) -> Option<&'static str> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some("ipc")
    } else if key.starts_with("net.") {
        Some("net")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some("uts")
    } else {
        None
    }
}

/// Are these two paths the same file (the same namespace, for /proc/PID/ns/*)?
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// What runc refuses in a `process` before anything runs, refused here too: at `create`,
/// not after `start` has returned 0 (and a uid of 4294967295, -1, is not root).
pub fn check_process(process: &oci_spec::runtime::Process) -> Result<()> {
    let user = process.user();
    let ids = [("uid", user.uid()), ("gid", user.gid())]
        .into_iter()
        .chain(
            user.additional_gids()
                .iter()
                .flatten()
                .map(|gid| ("additionalGids", *gid)),
        );
    for (field, id) in ids {
        anyhow::ensure!(
            id <= i32::MAX as u32,
            "process.user.{field} {id} is out of range: uids and gids must be in range 0-2147483647"
        );
    }
    for (field, list) in [("args", process.args()), ("env", process.env())] {
        if let Some(bad) = list.iter().flatten().find(|item| item.contains('\0')) {
            anyhow::bail!("process.{field} holds a NUL byte (in {bad:?})");
        }
    }
    for limit in process.rlimits().iter().flatten() {
        anyhow::ensure!(
            limit.soft() <= limit.hard(),
            "process.rlimits: {}'s soft limit {} is above its hard limit {}",
            limit.typ(),
            limit.soft(),
            limit.hard()
        );
    }
    anyhow::ensure!(
        process.cwd().is_absolute(),
        "process.cwd {:?} is relative: it must be an absolute path",
        process.cwd()
    );
    Ok(())
}

/// `CAP_CHOWN` for oci-spec's `CHOWN` or `CAP_CHOWN`.
fn cap_name(name: &str) -> String {
    match name.starts_with("CAP_") {
        true => name.to_string(),
        false => format!("CAP_{name}"),
    }
}

/// The environment every container of bento's own starts with, before the image's and
/// the user's.
pub fn default_env(hostname: &str, terminal: bool) -> Vec<String> {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("HOSTNAME={hostname}"),
        "HOME=/root".to_string(),
    ];
    if terminal {
        env.push("TERM=xterm".into());
    }
    env
}

/// `env` with `KEY=VALUE` set, replacing an earlier value of KEY.
pub fn set_env(env: &mut Vec<String>, pair: &str) {
    let key = pair.split('=').next().unwrap_or_default();
    env.retain(|existing| existing.split('=').next() != Some(key));
    env.push(pair.to_string());
}

/// The value of `key` in `env`.
pub fn get_env<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_replace_earlier_ones() {
        let mut env = default_env("box", false);
        set_env(&mut env, "PATH=/bin");
        set_env(&mut env, "A=1=2");
        assert_eq!(get_env(&env, "PATH"), Some("/bin"));
        assert_eq!(get_env(&env, "A"), Some("1=2"));
        assert_eq!(get_env(&env, "HOSTNAME"), Some("box"));
        assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
    }
}

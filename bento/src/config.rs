//! A container of bento's own, described the way an engine would describe it: the
//! options of `bento create` and `bento run`, and the image's defaults, written out as an
//! OCI `config.json`. From there on, bento's containers and an engine's take one path
//! ([`Spec::from_oci`]): the two front ends cannot drift apart.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::image::Pulled;
use crate::spec::{IMAGE, IMAGE_ID, LOG_SIZE_MAX, OVERLAY_LOWER, Spec, default_env, set_env};
use crate::state::OCI_VERSION;

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
    #[arg(long, value_name = "SIZE", value_parser = plumbing::parse_size)]
    pub memory: Option<u64>,
    /// Most processes the container may have at once (cgroups)
    #[arg(long = "pids-limit", value_name = "N")]
    pub pids_limit: Option<u64>,
    /// Detached: rotate the log at this size, keeping one older file (default 8m)
    #[arg(long = "log-size-max", value_name = "SIZE", value_parser = plumbing::parse_size)]
    pub log_size_max: Option<u64>,
    #[command(flatten)]
    pub network: crate::network::NetworkOptions,
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
    bundle: &Path,
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
    let (network, ports) = crate::network::choose(&options.network)?;
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
    // Steps 01-09 in config.json's words: the namespaces, the hostname, /proc, a /dev of
    // its own with devpts and shm; and what runc and podman give every container, so that
    // root inside keeps only what it needs (step 11): a short list of capabilities,
    // no_new_privs, step 11's seccomp filter, and the parts of /proc and /sys that speak
    // for the whole machine hidden or read-only.
    let mut namespaces = vec![
        json!({ "type": "uts" }),
        json!({ "type": "ipc" }),
        json!({ "type": "network" }),
        json!({ "type": "pid" }),
        json!({ "type": "mount" }),
        // Its cgroup is `/` inside, and the host's cgroup paths out of sight, as podman
        // gives on cgroup v2.
        json!({ "type": "cgroup" }),
    ];
    let mut linux = json!({
        "resources": resources,
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
        "seccomp": serde_json::from_str::<serde_json::Value>(crate::seccomp::DEFAULT_PROFILE)
            .context("bento's default seccomp profile is not JSON")?,
    });
    if nix::unistd::geteuid().is_root() {
        // A cgroup of its own, next to bento's, even without limits: `pause`, `ps` and
        // `update` work on every container (rootless, only with limits: a cgroup needs a
        // delegated subtree, which not every machine gives).
        linux["cgroupsPath"] = json!(cgroup_name(name, bundle));
    } else {
        // Rootless: a user namespace first (step 02), uid 0 inside mapped to us outside.
        // As root, there is none, as with runc and podman as root: root inside is the
        // host's root, held back by the capabilities and paths above (a user namespace
        // whose root is not the host's would need the image's files owned by other ids).
        let map = |id: u32| json!([{ "containerID": 0, "hostID": id, "size": 1 }]);
        namespaces.insert(0, json!({ "type": "user" }));
        linux["uidMappings"] = map(nix::unistd::getuid().as_raw());
        linux["gidMappings"] = map(nix::unistd::getgid().as_raw());
    }
    linux["namespaces"] = json!(namespaces);
    let capabilities = json!({
        "bounding": DEFAULT_CAPABILITIES,
        "effective": DEFAULT_CAPABILITIES,
        "permitted": DEFAULT_CAPABILITIES,
    });
    let mut config = json!({
        "ociVersion": OCI_VERSION,
        "root": { "path": "root", "readonly": false },
        "hostname": hostname,
        "process": {
            "terminal": options.tty,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": capabilities,
            "noNewPrivileges": true,
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
        "linux": linux,
        "annotations": {
            IMAGE: image.name,
            IMAGE_ID: image.id,
            OVERLAY_LOWER: image.rootfs,
            LOG_SIZE_MAX: options.log_size_max.unwrap_or(crate::log::DEFAULT_SIZE_MAX).to_string(),
        },
    });
    // Step 12: the network (slirp4netns) and the published ports, for the supervisor.
    for (key, value) in crate::network::annotations(network, &ports) {
        config["annotations"][key] = json!(value);
    }
    if let Some(mount) = crate::network::dns_mount(network, &image.rootfs, bundle)
        && let Some(mounts) = config["mounts"].as_array_mut()
    {
        mounts.push(mount);
    }
    Ok(config)
}

/// The cgroup of a container of bento's own, as root: `bento-NAME`, next to bento's. A
/// second home (`BENTO_HOME`: a test, a second user of sudo) may have a container of the same
/// name at the same time: outside the default home, the name also carries a short hash of
/// the container's directory (`bento-NAME-1a2b3c4d`), or the two would share one cgroup and
/// the first removed would take it from the other.
fn cgroup_name(name: &str, bundle: &Path) -> String {
    if bundle.starts_with(crate::home::ROOT_CONTAINERS) {
        return format!("bento-{name}");
    }
    // FNV-1a: short, stable from one bento to the next (std's hasher is neither promised).
    let hash = bundle
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0x811c_9dc5u32, |hash, byte| {
            (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
        });
    format!("bento-{name}-{hash:08x}")
}

/// The capabilities a container's root keeps (capabilities(7)): podman's default list.
/// Enough to own files, change users, bind low ports and send signals; not
/// CAP_SYS_ADMIN (mount, and most of the kernel), CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_NET_ADMIN…
pub const DEFAULT_CAPABILITIES: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Covered (a file by /dev/null, a directory by an empty read-only tmpfs): the kernel's
/// memory, its keys, timers and firmware, which a container has no business reading.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
];

/// Read-only: the whole machine's settings. /proc/sys holds the kernel's (sysctl), among
/// them kernel.core_pattern, the program the kernel runs, as root, when a process crashes.
pub const READONLY_PATHS: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The container spec for `image` and the command line, through its config.json (kept in
/// the container's directory, `bundle`, for the curious).
pub fn build_spec(
    name: &str,
    image: &Pulled,
    command: &[String],
    options: &Options,
    bundle: &Path,
) -> Result<(Vec<u8>, Spec)> {
    let config = build_config(name, image, command, options, bundle)?;
    let parsed: oci_spec::runtime::Spec =
        serde_json::from_value(config.clone()).context("bento wrote a bad config.json")?;
    let spec = Spec::from_oci(&parsed, bundle)?;
    let text = serde_json::to_vec_pretty(&config).context("cannot encode config.json")?;
    Ok((text, spec))
}

//! `bento features`: what bento's OCI runtime side does, as JSON (the runtime spec's
//! features.md, which `runc features` prints too), with what it leaves out said plainly.

use anyhow::{Context, Result};
use serde_json::json;

/// The architectures a profile may name (libseccomp's names).
const ARCHITECTURES: [&str; 6] = [
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_RISCV64",
];

/// Print what bento supports of the OCI runtime spec, as JSON
#[derive(Debug, clap::Args)]
pub struct Args {}

impl Args {
    pub fn run(self) -> Result<i32> {
        let features = json!({
            "ociVersionMin": "1.0.0",
            "ociVersionMax": crate::state::OCI_VERSION,
            "hooks": [],
            "mountOptions": [
                "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "bind", "rbind",
                "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
                "runbindable", "sync", "dirsync", "noatime", "nodiratime", "relatime",
                "strictatime"
            ],
            "linux": {
                "namespaces": ["user", "uts", "ipc", "network", "cgroup", "pid", "mount"],
                "capabilities": ["CAP_CHOWN", "...", "CAP_CHECKPOINT_RESTORE"],
                "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
                "seccomp": {
                    "enabled": true,
                    "actions": crate::seccomp::ACTIONS,
                    "operators": crate::seccomp::OPERATORS,
                    "supportedFlags": crate::seccomp::FLAGS,
                    "archs": ARCHITECTURES,
                    "knownFlags": crate::seccomp::FLAGS
                },
                "apparmor": { "enabled": false },
                "selinux": { "enabled": false }
            },
            "annotations": {
                "org.bento.seccomp": "compiled with libseccomp at create, loaded last by PID 1 and by every exec; bento's own containers get step 11's profile; not supported: SCMP_ACT_NOTIFY and listenerPath (a seccomp agent), refused at create",
                "org.bento.resources": "memory (limit, reservation, swap), cpu (shares, quota, period, cpus, mems), pids, blockIO.weight, hugepageLimits, devices (v1; on v2 they need an eBPF program bento does not load, and a warning says so), applied at create and by update; not: kernel memory, swappiness, rt cpu, blkio throttling, rdma, unified",
                "org.bento.commands": "create, start, state, kill, delete, exec, ps, pause, resume, update, features, run",
                "org.bento.hooks": "not run",
                "org.bento.cgroup-mount": "cgroup2 on v2 hosts; an empty read-only tmpfs on v1 and hybrid hosts"
            }
        });
        let json = serde_json::to_string_pretty(&features).context("cannot encode")? + "\n";
        // Not println!: a closed pipe (`| head`) is an error to report, not a panic.
        std::io::Write::write_all(&mut std::io::stdout(), json.as_bytes())
            .context("cannot write to stdout")?;
        Ok(0)
    }
}

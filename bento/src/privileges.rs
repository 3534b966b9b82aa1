//! Who the command runs as, and with what: config.json's `process.rlimits`,
//! `oomScoreAdj`, `noNewPrivileges`, `capabilities` and `user`, applied last, just
//! before the exec (everything before needed root's capabilities).
//!
//! Root in a container is root on the host, unless something takes its power away: a
//! user namespace (bento's own containers), or, for podman as root, a short list of
//! capabilities (capabilities(7)): `CAP_CHOWN`, `CAP_KILL`… but no `CAP_SYS_ADMIN`, so no
//! mount, no module loading, no reboot.
//!
//! Then the seccomp filter (seccomp.rs), the very last thing, as in step 11. Without
//! no_new_privs the kernel takes a filter only from a process holding CAP_SYS_ADMIN: the
//! filter is loaded before the capabilities are dropped then, as runc does (and must allow
//! the few calls that follow: setgroups, setresuid, capset, prctl).

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::libc;
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use plumbing::Hint;

use crate::spec::{Capabilities, Spec};

/// The capabilities by number (linux/capability.h): CAP_CHOWN is 0.
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The resource limits by name (getrlimit(2)). (Their type differs between C libraries.)
#[allow(clippy::unnecessary_cast)]
const RLIMITS: [(&str, u32); 16] = [
    ("RLIMIT_CPU", libc::RLIMIT_CPU as u32),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE as u32),
    ("RLIMIT_DATA", libc::RLIMIT_DATA as u32),
    ("RLIMIT_STACK", libc::RLIMIT_STACK as u32),
    ("RLIMIT_CORE", libc::RLIMIT_CORE as u32),
    ("RLIMIT_RSS", libc::RLIMIT_RSS as u32),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC as u32),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE as u32),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK as u32),
    ("RLIMIT_AS", libc::RLIMIT_AS as u32),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS as u32),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING as u32),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE as u32),
    ("RLIMIT_NICE", libc::RLIMIT_NICE as u32),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO as u32),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME as u32),
];

/// Applies the process's limits, user, capabilities and seccomp filter, in the order the
/// kernel needs.
pub fn apply(spec: &Spec) -> Result<()> {
    for limit in &spec.rlimits {
        set_rlimit(&limit.kind, limit.soft, limit.hard)?;
    }
    if let Some(score) = spec.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .context("cannot set oomScoreAdj")?;
    }
    if spec.no_new_privileges {
        // prctl(2) PR_SET_NO_NEW_PRIVS: no exec from now on may gain privileges (setuid
        // binaries, file capabilities). It is what lets an unprivileged process load seccomp.
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1).context("prctl(PR_SET_NO_NEW_PRIVS) failed")?;
    }
    let filter = spec.syscall_filter.as_ref();
    if let Some(filter) = filter.filter(|_| !spec.no_new_privileges) {
        crate::seccomp::load(filter)?;
    }
    if let Some(caps) = &spec.capabilities {
        // The bounding set limits what any later exec can gain: drop what is not listed,
        // while we still hold CAP_SETPCAP. PR_SET_KEEPCAPS keeps the permitted set across
        // the change of uid below, which would otherwise clear it (capabilities(7)).
        for (number, name) in CAPABILITIES.iter().enumerate() {
            if !caps.bounding.iter().any(|cap| cap == name) {
                match prctl(libc::PR_CAPBSET_DROP, number as libc::c_ulong) {
                    Ok(()) | Err(Errno::EINVAL) => {} // a capability this kernel lacks
                    Err(errno) => return Err(errno).context(format!("cannot drop {name}")),
                }
            }
        }
        prctl(libc::PR_SET_KEEPCAPS, 1).context("prctl(PR_SET_KEEPCAPS) failed")?;
    }
    set_user(spec)?;
    if let Some(caps) = &spec.capabilities {
        set_capabilities(caps)?;
    }
    if let Some(filter) = filter.filter(|_| spec.no_new_privileges) {
        crate::seccomp::load(filter)?;
    }
    Ok(())
}

/// `process.user`: supplementary groups, then the gid, then the uid (after setuid(2) we
/// could no longer change the others).
fn set_user(spec: &Spec) -> Result<()> {
    let groups: Vec<Gid> = spec
        .user
        .additional_gids
        .iter()
        .map(|gid| Gid::from_raw(*gid))
        .collect();
    match setgroups(&groups) {
        Ok(()) => {}
        // In a user namespace with setgroups "deny" (step 02), there are none to drop. Not
        // otherwise: a seccomp profile that refuses setgroups would leave the caller's.
        Err(Errno::EPERM) if groups.is_empty() && setgroups_denied() => {}
        Err(errno) => return Err(errno).context("cannot set the additional groups"),
    }
    let (uid, gid) = (Uid::from_raw(spec.user.uid), Gid::from_raw(spec.user.gid));
    setresgid(gid, gid, gid).with_context(|| format!("cannot become group {gid}"))?;
    setresuid(uid, uid, uid).with_context(|| format!("cannot become user {uid}"))?;
    Ok(())
}

/// Does this user namespace forbid setgroups(2) (user_namespaces(7), /proc/PID/setgroups)?
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|text| text.trim() == "deny")
}

/// capset(2): the effective, permitted and inheritable sets, as 64-bit masks in two
/// 32-bit halves (version 3 of the interface); then each ambient capability, which
/// survives an exec by a non-root user (PR_CAP_AMBIENT_RAISE).
fn set_capabilities(caps: &Capabilities) -> Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mask =
        |names: &[String]| -> Result<u64> {
            names.iter().try_fold(0u64, |mask, name| {
                Ok(mask
                    | 1u64 << number(name).with_context(|| format!("unknown capability {name}"))?)
            })
        };
    let (effective, permitted, inheritable) = (
        mask(&caps.effective)?,
        mask(&caps.permitted)?,
        mask(&caps.inheritable)?,
    );
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data: [Data; 2] = [0, 32].map(|shift| Data {
        effective: (effective >> shift) as u32,
        permitted: (permitted >> shift) as u32,
        inheritable: (inheritable >> shift) as u32,
    });
    // SAFETY: capset(2) reads one header and two data structs, laid out as the kernel's.
    let done = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if done != 0 {
        return Err(std::io::Error::last_os_error()).context("capset failed");
    }
    for name in &caps.ambient {
        let cap = number(name).with_context(|| format!("unknown capability {name}"))?;
        // The kernel raises an ambient capability only if it is both permitted and
        // inheritable (capabilities(7)); `runc spec` lists ambient ones that are not, and
        // runc skips them too.
        if (permitted & inheritable) & (1 << cap) == 0 {
            continue;
        }
        // SAFETY: prctl(2) with integer arguments only.
        let raised = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if raised != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot raise the ambient {name}"));
        }
    }
    Ok(())
}

/// CAP_CHOWN → 0.
fn number(name: &str) -> Option<u64> {
    CAPABILITIES
        .iter()
        .position(|cap| *cap == name)
        .map(|n| n as u64)
}

/// setrlimit(2) of the limit named `kind` (`RLIMIT_NOFILE`).
fn set_rlimit(kind: &str, soft: u64, hard: u64) -> Result<()> {
    let resource = RLIMITS
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|(_, resource)| *resource)
        .with_context(|| format!("unknown rlimit {kind}"))?;
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit(2) reads one rlimit struct.
    if unsafe { libc::setrlimit(resource as _, &limit) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot set {kind} to {soft}:{hard}"))
            .hint("a hard limit cannot be raised above the caller's (`ulimit -H -a`)");
    }
    Ok(())
}

/// prctl(2) with one integer argument.
fn prctl(option: libc::c_int, arg: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: prctl(2) with integer arguments only.
    let done = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(done).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_numbered_as_the_kernel_does() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }
}

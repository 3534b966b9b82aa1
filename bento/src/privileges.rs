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
//! filter then comes after the bounding set and the user, before the last capset(2), whose
//! result is read back with capget(2): a profile that answers capset with a pretended
//! success (SCMP_ACT_ERRNO, errnoRet 0) would otherwise leave every capability.

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
    // Without no_new_privs, the kernel takes a filter only from a process holding
    // CAP_SYS_ADMIN: it comes before the last capabilities go. A profile may then answer
    // the calls that follow with a success that does nothing (SCMP_ACT_ERRNO, errnoRet 0),
    // so the bounding set and the user are set before it, and what follows it is read back.
    let filter_first = spec
        .syscall_filter
        .as_ref()
        .filter(|_| !spec.no_new_privileges);
    if let Some(caps) = &spec.capabilities {
        drop_bounding_set(caps)?;
    }
    if spec.capabilities.is_some() || filter_first.is_some() {
        // PR_SET_KEEPCAPS keeps the permitted set across the change of uid below, which
        // would otherwise clear it (capabilities(7)).
        prctl(libc::PR_SET_KEEPCAPS, 1).context("prctl(PR_SET_KEEPCAPS) failed")?;
    }
    set_user(spec)?;
    if let Some(filter) = filter_first {
        // The change of uid emptied the effective set: CAP_SYS_ADMIN back, for seccomp(2).
        let (permitted, inheritable) = {
            let sets = capabilities()?;
            (sets.permitted, sets.inheritable)
        };
        set_sets(Sets {
            effective: permitted,
            permitted,
            inheritable,
        })?;
        crate::seccomp::load(filter)?;
    }
    // A spec without capabilities, for another user than root, gets none: what the change
    // of uid gives without PR_SET_KEEPCAPS.
    let none = Capabilities::default();
    let caps = match &spec.capabilities {
        Some(caps) => Some(caps),
        None if filter_first.is_some() && spec.user.uid != 0 => Some(&none),
        None => None,
    };
    if let Some(caps) = caps {
        set_capabilities(caps)?;
        if filter_first.is_some() {
            check_capabilities(caps)?;
        }
    }
    if let Some(filter) = spec
        .syscall_filter
        .as_ref()
        .filter(|_| spec.no_new_privileges)
    {
        crate::seccomp::load(filter)?;
    }
    Ok(())
}

/// The bounding set limits what any later exec can gain: drop what is not listed, while
/// we still hold CAP_SETPCAP. EINVAL: past the last capability this kernel has.
fn drop_bounding_set(caps: &Capabilities) -> Result<()> {
    for (number, name) in CAPABILITIES.iter().enumerate() {
        if !caps.bounding.iter().any(|cap| cap == name) {
            match prctl(libc::PR_CAPBSET_DROP, number as libc::c_ulong) {
                Ok(()) | Err(Errno::EINVAL) => {}
                Err(errno) => return Err(errno).context(format!("cannot drop {name}")),
            }
        }
    }
    Ok(())
}

/// After a filter that came first: capget(2) says the sets hold no capability the spec
/// did not list. Its answer is written by the kernel into our memory, which no filter can
/// do: a call it pretended to make leaves what we put there, every capability.
fn check_capabilities(caps: &Capabilities) -> Result<()> {
    let sets = capabilities()?;
    for (name, have, want) in [
        ("effective", sets.effective, &caps.effective),
        ("permitted", sets.permitted, &caps.permitted),
        ("inheritable", sets.inheritable, &caps.inheritable),
    ] {
        if have & !mask(want)? != 0 {
            return Err(plumbing::hinted(
                format!("the {name} capabilities are {have:#x}, more than the spec lists"),
                "linux.seccomp must let capset and prctl do their work (without noNewPrivileges, the filter comes before them)",
            ));
        }
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

/// The three capability sets, as 64-bit masks (bit 0: CAP_CHOWN).
#[derive(Debug, Clone, Copy)]
struct Sets {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

/// capget(2) and capset(2) speak version 3: a header, then two halves of each set.
#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// capget(2): this process's sets. The buffer starts full (every capability): a call a
/// filter only pretended to make leaves it so.
fn capabilities() -> Result<Sets> {
    let mut header = Header {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data {
        effective: u32::MAX,
        permitted: u32::MAX,
        inheritable: u32::MAX,
    }; 2];
    // SAFETY: capget(2) reads the header and writes two data structs, laid out as the
    // kernel's.
    let done = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    if done != 0 {
        return Err(std::io::Error::last_os_error()).context("capget failed");
    }
    let join = |half: fn(&Data) -> u32| u64::from(half(&data[0])) | u64::from(half(&data[1])) << 32;
    Ok(Sets {
        effective: join(|d| d.effective),
        permitted: join(|d| d.permitted),
        inheritable: join(|d| d.inheritable),
    })
}

/// capset(2) of the three sets.
fn set_sets(sets: Sets) -> Result<()> {
    let header = Header {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data: [Data; 2] = [0, 32].map(|shift| Data {
        effective: (sets.effective >> shift) as u32,
        permitted: (sets.permitted >> shift) as u32,
        inheritable: (sets.inheritable >> shift) as u32,
    });
    // SAFETY: capset(2) reads one header and two data structs, laid out as the kernel's.
    let done = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if done != 0 {
        return Err(std::io::Error::last_os_error()).context("capset failed");
    }
    Ok(())
}

/// The mask of capabilities named.
fn mask(names: &[String]) -> Result<u64> {
    names.iter().try_fold(0u64, |mask, name| {
        Ok(mask | 1u64 << number(name).with_context(|| format!("unknown capability {name}"))?)
    })
}

/// capset(2): the effective, permitted and inheritable sets; then each ambient capability,
/// which survives an exec by a non-root user (PR_CAP_AMBIENT_RAISE).
fn set_capabilities(caps: &Capabilities) -> Result<()> {
    let (effective, permitted, inheritable) = (
        mask(&caps.effective)?,
        mask(&caps.permitted)?,
        mask(&caps.inheritable)?,
    );
    set_sets(Sets {
        effective,
        permitted,
        inheritable,
    })?;
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

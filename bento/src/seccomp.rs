//! Step 11's seccomp filter, from a profile: config.json's `linux.seccomp` (podman's
//! default profile, or any engine's), or for bento's own containers the default profile,
//! which is step 11's filter in the OCI form (`default-seccomp.json`, shown in step 11's
//! README).
//!
//! Step 11 writes its filter by hand, instruction by instruction. A profile names calls,
//! architectures and comparisons instead, and a library turns it into the same kind of
//! program: libseccomp (seccomp_rule_add(3)), as runc, crun and youki do. Bento compiles
//! the profile at `create`, where a bad one is an error on the caller's terminal, and keeps
//! the program's instructions in the container's spec; PID 1 and every `bento exec` load
//! them with seccomp(2), as step 11 does, last before the exec.
//!
//! As runc does: a call this machine does not know by name is skipped (profiles list
//! calls of every architecture and kernel); several comparisons of one argument make one
//! rule each (either matches), otherwise one rule holds them all (all must match); a rule
//! whose action is the default action is left out. Not done: `SCMP_ACT_NOTIFY` and
//! `listenerPath` (a seccomp agent), refused at create.

use std::io::{Read, Seek};
use std::os::fd::AsFd;

use anyhow::{Context, Result, bail};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::errno::Errno;
use nix::libc;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};
use plumbing::Hint;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bento's own containers' profile: step 11's filter (tests/docs.rs checks that step 11's
/// README shows this very profile).
pub const DEFAULT_PROFILE: &str = include_str!("default-seccomp.json");

/// The actions and comparisons bento applies, by their names in a profile (`bento features`).
pub const ACTIONS: [&str; 8] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_ALLOW",
];
pub const OPERATORS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
pub const FLAGS: [&str; 2] = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"];

/// A compiled filter: classic BPF instructions (struct sock_filter, 8 bytes each, kept
/// as one number each), and the flags for seccomp(2).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Filter {
    pub instructions: Vec<u64>,
    pub flags: u32,
}

/// Names each action, operator, architecture and flag of config.json's profile, so that
/// one bento does not know is one line naming it (oci-spec's own message names a list of
/// variants, not the field).
pub fn check(profile: &Value) -> Result<()> {
    if profile.is_null() {
        return Ok(());
    }
    let refuse = |field: &str, value: &Value, known: &[&str]| -> Result<()> {
        if value.as_str().is_some_and(|name| known.contains(&name)) {
            return Ok(());
        }
        Err(plumbing::hinted(
            format!("config.json's linux.seccomp.{field} is not one bento applies: {value}"),
            format!("bento applies {}", known.join(", ")),
        ))
    };
    let unsupported = |field: &str, what: &str| {
        plumbing::hinted(
            format!(
                "config.json's linux.seccomp.{field} asks for {what}, which bento does not support"
            ),
            "runc and crun support a seccomp agent (SCMP_ACT_NOTIFY); bento refuses the profile rather than run the container without it",
        )
    };
    if profile["defaultAction"] == "SCMP_ACT_NOTIFY" {
        return Err(unsupported(
            "defaultAction",
            "a seccomp agent (SCMP_ACT_NOTIFY)",
        ));
    }
    refuse("defaultAction", &profile["defaultAction"], &ACTIONS)?;
    if !profile["listenerPath"].is_null() {
        return Err(unsupported("listenerPath", "a seccomp agent"));
    }
    for flag in profile["flags"].as_array().into_iter().flatten() {
        refuse("flags", flag, &FLAGS)?;
    }
    for arch in profile["architectures"].as_array().into_iter().flatten() {
        let known = arch
            .as_str()
            .is_some_and(|name| name.parse::<ScmpArch>().is_ok());
        if !known {
            return Err(plumbing::hinted(
                format!(
                    "config.json's linux.seccomp.architectures names an unknown architecture: {arch}"
                ),
                "architectures are named as libseccomp names them: SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, …",
            ));
        }
    }
    for (n, rule) in profile["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if rule["action"] == "SCMP_ACT_NOTIFY" {
            return Err(unsupported(
                &format!("syscalls[{n}].action"),
                "a seccomp agent (SCMP_ACT_NOTIFY)",
            ));
        }
        refuse(&format!("syscalls[{n}].action"), &rule["action"], &ACTIONS)?;
        for (i, arg) in rule["args"].as_array().into_iter().flatten().enumerate() {
            refuse(
                &format!("syscalls[{n}].args[{i}].op"),
                &arg["op"],
                &OPERATORS,
            )?;
            if arg["index"].as_u64().is_none_or(|index| index > 5) {
                return Err(plumbing::hinted(
                    format!(
                        "config.json's linux.seccomp.syscalls[{n}].args[{i}].index is not an argument's: {}",
                        arg["index"]
                    ),
                    "a system call has six arguments, 0 to 5",
                ));
            }
        }
    }
    Ok(())
}

/// The most instructions the kernel takes in one filter (BPF_MAXINSNS, linux/bpf_common.h).
const MAX_INSTRUCTIONS: usize = 4096;

/// The most argument comparisons bento compiles (each a call a rule names, times its
/// `args`). libseccomp's time grows with their cube: 250 take 35 ms, 1,000 five seconds,
/// 4,000 six minutes of CPU at `create`. Podman's default profile makes 10.
const MAX_COMPARISONS: usize = 256;

/// Compiles a profile (checked by [`check`]) into a filter, with libseccomp. A profile too
/// big for the kernel, or too slow to compile, is refused here, before libseccomp sees it
/// (libseccomp 2.5 crashes past 65535 instructions): every call a rule names costs at least
/// one instruction, and one per comparison; comparisons are few ([`MAX_COMPARISONS`]).
pub fn compile(profile: &LinuxSeccomp) -> Result<Filter> {
    let known = |rule: &LinuxSyscall| {
        let names = rule.names().iter();
        names
            .filter(|name| ScmpSyscall::from_name(name).is_ok())
            .count()
    };
    let comparisons: usize = profile
        .syscalls()
        .iter()
        .flatten()
        .map(|rule| known(rule) * rule.args().as_ref().map_or(0, Vec::len))
        .sum();
    if comparisons > MAX_COMPARISONS {
        return Err(plumbing::hinted(
            format!(
                "the seccomp profile compares arguments {comparisons} times, and bento takes {MAX_COMPARISONS}"
            ),
            "podman's default profile compares 10 times; compare fewer values, or fewer calls",
        ));
    }
    let least: usize = profile
        .syscalls()
        .iter()
        .flatten()
        .map(|rule| known(rule) * rule.args().as_ref().map_or(0, Vec::len).max(1))
        .sum();
    if least > MAX_INSTRUCTIONS {
        return Err(too_big(least, "at least "));
    }
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut filter = ScmpFilterContext::new(default).context("libseccomp cannot make a filter")?;
    for arch in profile.architectures().iter().flatten() {
        // "SCMP_ARCH_X86_64", as serde writes oci-spec's name for it.
        let name = serde_json::to_value(arch)?;
        let arch: ScmpArch = name
            .as_str()
            .unwrap_or_default()
            .parse()
            .with_context(|| format!("unknown architecture {name}"))?;
        if !filter.is_arch_present(arch)? {
            filter
                .add_arch(arch)
                .with_context(|| format!("libseccomp cannot add the architecture {name}"))?;
        }
    }
    for rule in profile.syscalls().iter().flatten() {
        add_rule(&mut filter, rule, default)?;
    }
    let mut flags = 0;
    for flag in profile.flags().iter().flatten() {
        flags |= match serde_json::to_value(flag)?.as_str() {
            Some("SECCOMP_FILTER_FLAG_LOG") => libc::SECCOMP_FILTER_FLAG_LOG,
            Some("SECCOMP_FILTER_FLAG_SPEC_ALLOW") => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            _ => bail!("the seccomp flag {flag:?} is not one bento applies"),
        } as u32;
    }
    let instructions = export(&filter)?;
    if instructions.len() > MAX_INSTRUCTIONS {
        return Err(too_big(instructions.len(), ""));
    }
    Ok(Filter {
        instructions,
        flags,
    })
}

/// A profile the kernel would refuse at the exec (EINVAL), refused at create instead.
fn too_big(instructions: usize, bound: &str) -> anyhow::Error {
    plumbing::hinted(
        format!(
            "the seccomp profile makes {bound}{instructions} instructions, and the kernel takes {MAX_INSTRUCTIONS}"
        ),
        "name many calls in one rule, and leave out the calls the default action covers",
    )
}

/// One of the profile's rules: for each call it names that this machine knows, with its
/// comparisons.
fn add_rule(
    filter: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    default: ScmpAction,
) -> Result<()> {
    let action = action(rule.action(), rule.errno_ret())?;
    if action == default {
        return Ok(());
    }
    let compares: Vec<ScmpArgCompare> = rule
        .args()
        .iter()
        .flatten()
        .map(|arg| {
            let op = match arg.op() {
                LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                // args[index] & value == valueTwo
                LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(arg.value()),
            };
            let datum = match arg.op() {
                LinuxSeccompOperator::ScmpCmpMaskedEq => arg.value_two().unwrap_or(0),
                _ => arg.value(),
            };
            ScmpArgCompare::new(arg.index() as u32, op, datum)
        })
        .collect();
    let mut per_argument = [0; 6];
    for arg in rule.args().iter().flatten() {
        per_argument[arg.index().min(5)] += 1;
    }
    for name in rule.names() {
        let Ok(call) = ScmpSyscall::from_name(name) else {
            continue; // not a call of this machine's architecture or libseccomp's table
        };
        let added = if compares.is_empty() {
            filter.add_rule(action, call)
        } else if per_argument.iter().any(|&n| n > 1) {
            // Two comparisons of one argument could never both hold: either may match.
            compares
                .iter()
                .try_for_each(|compare| {
                    filter
                        .add_rule_conditional(action, call, &[*compare])
                        .map(drop)
                })
                .map(|()| &mut *filter)
        } else {
            filter.add_rule_conditional(action, call, &compares)
        };
        added.with_context(|| format!("libseccomp cannot add the rule for {name}"))?;
    }
    Ok(())
}

/// A profile's action in libseccomp's terms; ERRNO returns `errnoRet`, EPERM by default.
fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => bail!("SCMP_ACT_NOTIFY is not supported"),
    })
}

/// The program libseccomp made, through a memfd (seccomp_export_bpf(3) writes to a
/// descriptor), as 8-byte instructions.
fn export(filter: &ScmpFilterContext) -> Result<Vec<u64>> {
    let memfd =
        nix::sys::memfd::memfd_create(c"bento-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .context("memfd_create failed")?;
    filter
        .export_bpf(memfd.as_fd())
        .context("libseccomp cannot export the filter")?;
    let mut file = std::fs::File::from(memfd);
    file.rewind()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|chunk| u64::from_ne_bytes(chunk.try_into().unwrap_or_default()))
        .collect())
}

/// seccomp(2) SECCOMP_SET_MODE_FILTER, as step 11's `refuse_syscalls()`: from now on, the
/// kernel runs the program before each call this process, and all it starts, makes.
/// Without no_new_privs, the kernel requires CAP_SYS_ADMIN for it (privileges.rs loads
/// the filter before the capabilities are dropped, then).
pub fn load(filter: &Filter) -> Result<()> {
    let mut program: Vec<libc::sock_filter> = filter
        .instructions
        .iter()
        .map(|instruction| {
            let b = instruction.to_ne_bytes();
            libc::sock_filter {
                code: u16::from_ne_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            }
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: libc::c_ushort::try_from(program.len())
            .context("the seccomp filter is too long for the kernel")?,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: the kernel copies `len` instructions from `filter`, which `program` holds.
    let loaded = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            filter.flags as libc::c_ulong,
            &raw const fprog,
        )
    };
    Errno::result(loaded)
        .context("seccomp(SECCOMP_SET_MODE_FILTER) failed")
        .hint("the kernel must support seccomp filters (CONFIG_SECCOMP_FILTER); without noNewPrivileges, the process must hold CAP_SYS_ADMIN")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: Value) -> Result<Filter> {
        check(&json)?;
        compile(&serde_json::from_value(json)?)
    }

    #[test]
    fn the_default_profile_compiles() {
        let filter = profile(serde_json::from_str(DEFAULT_PROFILE).unwrap()).unwrap();
        assert!(
            filter.instructions.len() > 30,
            "{}",
            filter.instructions.len()
        );
    }

    #[test]
    fn unknown_names_are_skipped_and_unknown_actions_refused() {
        let rule = |action: &str| {
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["no_such_call", "uname"], "action": action }] })
        };
        assert!(profile(rule("SCMP_ACT_ERRNO")).is_ok());
        let error = format!("{:#}", profile(rule("SCMP_ACT_SOMETIMES")).unwrap_err());
        assert!(error.contains("syscalls[0].action"), "{error}");
        let error = format!("{:#}", profile(rule("SCMP_ACT_NOTIFY")).unwrap_err());
        assert!(error.contains("does not support"), "{error}");
    }
}

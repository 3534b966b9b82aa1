//! `deny RULE COMMAND...`: runs COMMAND where the kernel refuses one thing, the way a host
//! that cannot run rootless containers does. A test helper: it installs a seccomp filter
//! (seccomp(2)) that answers EPERM, then execs the command, which inherits the filter.
//!
//! Rules:
//! - `userns`: `unshare` with CLONE_NEWUSER, as Docker's default seccomp profile refuses it;
//! - `overlay`: `mount` with no flags at all, which among the steps' mounts is only step
//!   07's overlay, as a kernel older than 5.11 refuses a rootless overlay.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

const LOAD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
// Offsets in struct seccomp_data: nr at 0, arch at 4, args[n] (low half) at 16 + 8n.
const NR: u32 = 0;
const ARCH: u32 = 4;
const fn arg(n: u32) -> u32 {
    16 + 8 * n
}

fn statement(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter: allow everything but the one refusal of `rule`.
fn program(rule: &str) -> Option<Vec<libc::sock_filter>> {
    let allow = statement(RET, libc::SECCOMP_RET_ALLOW, 0, 0);
    let refuse = statement(RET, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32, 0, 0);
    let mut program = vec![
        statement(LOAD, ARCH, 0, 0),
        statement(JEQ, AUDIT_ARCH, 1, 0),
        allow,
        statement(LOAD, NR, 0, 0),
    ];
    match rule {
        "userns" => program.extend([
            statement(JEQ, libc::SYS_unshare as u32, 0, 3),
            statement(LOAD, arg(0), 0, 0),
            statement(JSET, libc::CLONE_NEWUSER as u32, 0, 1),
            refuse,
            allow,
        ]),
        "overlay" => program.extend([
            statement(JEQ, libc::SYS_mount as u32, 0, 3),
            statement(LOAD, arg(3), 0, 0),
            statement(JEQ, 0, 0, 1),
            refuse,
            allow,
        ]),
        _ => return None,
    }
    Some(program)
}

fn main() {
    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .map(|arg| CString::new(arg.as_bytes()).expect("no NUL in arguments"))
        .collect();
    let Some((program, command)) = args
        .split_first()
        .and_then(|(rule, command)| Some((program(rule.to_str().ok()?)?, command)))
        .filter(|(_, command)| !command.is_empty())
    else {
        eprintln!("usage: deny userns|overlay COMMAND [ARGS...]");
        std::process::exit(2);
    };
    let filter = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: plain prctl calls with a valid, live filter program.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &filter as *const libc::sock_fprog,
            ) != 0
        {
            eprintln!("deny: cannot install the seccomp filter");
            std::process::exit(2);
        }
    }
    let mut argv: Vec<*const libc::c_char> = command.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: argv is a NULL-terminated array of valid C strings.
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    eprintln!("deny: cannot run {:?}", command[0]);
    std::process::exit(127);
}

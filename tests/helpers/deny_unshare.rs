//! `deny-unshare COMMAND...`: runs COMMAND where `unshare(CLONE_NEWUSER)` fails with EPERM,
//! the way Docker's default seccomp profile refuses it. A test helper: it lets the tests
//! watch the steps and the doctor meet a host that forbids user namespaces.
//!
//! It installs a seccomp filter (seccomp(2)) that answers EPERM to `unshare` calls whose
//! flags include CLONE_NEWUSER, then execs the command, which inherits the filter.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

fn statement(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn main() {
    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .map(|arg| CString::new(arg.as_bytes()).expect("no NUL in arguments"))
        .collect();
    if args.is_empty() {
        eprintln!("usage: deny-unshare COMMAND [ARGS...]");
        std::process::exit(2);
    }
    const LOAD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    // Offsets in struct seccomp_data: nr at 0, arch at 4, args[0] (low half) at 16.
    let program = [
        statement(LOAD, 4, 0, 0),
        statement(JEQ, AUDIT_ARCH, 1, 0),
        statement(RET, libc::SECCOMP_RET_ALLOW, 0, 0),
        statement(LOAD, 0, 0, 0),
        statement(JEQ, libc::SYS_unshare as u32, 0, 3),
        statement(LOAD, 16, 0, 0),
        statement(JSET, libc::CLONE_NEWUSER as u32, 0, 1),
        statement(RET, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32, 0, 0),
        statement(RET, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
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
            eprintln!("deny-unshare: cannot install the seccomp filter");
            std::process::exit(2);
        }
    }
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: argv is a NULL-terminated array of valid C strings.
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    eprintln!("deny-unshare: cannot run {:?}", args[0]);
    std::process::exit(127);
}

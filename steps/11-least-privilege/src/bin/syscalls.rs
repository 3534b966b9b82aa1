//! # syscalls: which system calls does the kernel still take from inside a container?
//!
//! Run as root inside a container, this program makes each call that step 11's filter
//! refuses, with arguments that cannot do anything (a null pointer, a bad descriptor, a
//! path that does not exist, a size of 0), and prints the kernel's answer: `EPERM` when the
//! container's lessons refuse the call, and otherwise what the kernel says to such
//! arguments (`EFAULT`, `ENOENT`, `EINVAL`…), or `ok`. In step 10 most calls get that far;
//! in step 11 the filter answers first. The calls that would make something (a user
//! namespace, a child process) run in a child process that exits at once.
//!
//! Two calls come from a table of numbers the filter was not written for: the x32 ABI's
//! (x86_64 only, bit 30 set in the number) and i386's `int 0x80`. The filter kills the
//! caller: the probe makes them in a child and reports how the child ended.
//!
//! It must be a *static* binary: inside the container there is no C library to load.
//! `just syscalls N` builds it so and runs it in step N.

use std::ptr::null;

use nix::errno::Errno;
use nix::libc::{self, c_long};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

/// A path that exists nowhere.
const NOWHERE: &[u8] = b"/nonexistent-syscalls-probe\0";

fn main() {
    let nowhere = NOWHERE.as_ptr();
    let none = null::<u8>();
    // (what is shown, the call's number, its arguments)
    let calls: [(&str, c_long, [usize; 5]); 24] = [
        ("keyctl", libc::SYS_keyctl, [0, -1i64 as usize, 0, 0, 0]),
        ("add_key", libc::SYS_add_key, [0; 5]),
        ("request_key", libc::SYS_request_key, [0; 5]),
        ("mount", libc::SYS_mount, [0, nowhere as usize, 0, 0, 0]),
        ("umount2", libc::SYS_umount2, [nowhere as usize, 0, 0, 0, 0]),
        (
            "pivot_root",
            libc::SYS_pivot_root,
            [none as usize, 0, 0, 0, 0],
        ),
        ("fsopen", libc::SYS_fsopen, [0; 5]),
        ("fsmount", libc::SYS_fsmount, [usize::MAX, 0, 0, 0, 0]),
        ("fspick", libc::SYS_fspick, [usize::MAX, 0, 0, 0, 0]),
        ("open_tree", libc::SYS_open_tree, [usize::MAX, 0, 0, 0, 0]),
        (
            "move_mount",
            libc::SYS_move_mount,
            [usize::MAX, 0, usize::MAX, 0, 0],
        ),
        (
            "mount_setattr",
            libc::SYS_mount_setattr,
            [usize::MAX, 0, 0, 0, 0],
        ),
        ("kexec_load", libc::SYS_kexec_load, [0; 5]),
        ("init_module", libc::SYS_init_module, [0; 5]),
        (
            "finit_module",
            libc::SYS_finit_module,
            [usize::MAX, 0, 0, 0, 0],
        ),
        ("delete_module", libc::SYS_delete_module, [0; 5]),
        ("bpf", libc::SYS_bpf, [usize::MAX, 0, 0, 0, 0]),
        ("perf_event_open", libc::SYS_perf_event_open, [0; 5]),
        (
            "userfaultfd",
            libc::SYS_userfaultfd,
            [usize::MAX, 0, 0, 0, 0],
        ),
        (
            "ptrace",
            libc::SYS_ptrace,
            [libc::PTRACE_ATTACH as usize, -1i64 as usize, 0, 0, 0],
        ),
        ("reboot", libc::SYS_reboot, [0; 5]),
        ("swapon", libc::SYS_swapon, [0; 5]),
        ("swapoff", libc::SYS_swapoff, [0; 5]),
        (
            "open_by_handle_at",
            libc::SYS_open_by_handle_at,
            [usize::MAX, 0, 0, 0, 0],
        ),
    ];
    for (name, number, args) in calls {
        show(name, in_child(|| call(number, args)));
    }
    let newuser = libc::CLONE_NEWUSER as usize;
    let sigchld = libc::SIGCHLD as usize;
    show(
        "unshare(CLONE_NEWUSER)",
        in_child(|| call(libc::SYS_unshare, [newuser, 0, 0, 0, 0])),
    );
    show("unshare(0)", in_child(|| call(libc::SYS_unshare, [0; 5])));
    // clone(2) with no stack of its own works like fork(2): the child goes on here.
    show(
        "clone(CLONE_NEWUSER)",
        in_child(|| call(libc::SYS_clone, [newuser | sigchld, 0, 0, 0, 0])),
    );
    show(
        "clone()",
        in_child(|| call(libc::SYS_clone, [sigchld, 0, 0, 0, 0])),
    );
    // A size of 0 is refused (EINVAL) by a kernel that reads the struct at all.
    show("clone3", in_child(|| call(libc::SYS_clone3, [0; 5])));
    show("getpid", in_child(|| call(libc::SYS_getpid, [0; 5])));
    #[cfg(target_arch = "x86_64")]
    {
        show(
            "x32 getpid",
            in_child(|| call(0x4000_0000 | libc::SYS_getpid, [0; 5])),
        );
        show("i386 getpid (int 0x80)", in_child(i386_getpid));
    }
}

/// Prints one answer, aligned.
fn show(name: &str, answer: String) {
    println!("{name:<24}{answer}");
}

/// syscall(2) with five arguments: `ok`, or the errno's name.
fn call(number: c_long, args: [usize; 5]) -> Result<(), Errno> {
    let [a, b, c, d, e] = args;
    // SAFETY: every call gets arguments it rejects or that point at valid memory; those
    // that create a process or a namespace run in a child that exits right after.
    let result = unsafe { libc::syscall(number, a, b, c, d, e) };
    Errno::result(result).map(drop)
}

/// i386's getpid (20) through `int 0x80`: the 32-bit entry into the kernel, whose calls the
/// kernel shows to seccomp with AUDIT_ARCH_I386 and i386's numbers.
#[cfg(target_arch = "x86_64")]
fn i386_getpid() -> Result<(), Errno> {
    let result: i64;
    // SAFETY: int 0x80 with eax = 20 is getpid; it reads no memory, and the kernel may
    // clobber r8 to r11.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("rax") 20i64 => result,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack),
        );
    }
    Errno::result(result as i32).map(drop)
}

/// Runs `probe` in a child process, which exits right after (a clone or unshare that worked
/// must not go on in the parent's shoes). Returns what the child reported, or how it died.
fn in_child(probe: impl FnOnce() -> Result<(), Errno>) -> String {
    // SAFETY: this program is single-threaded.
    match unsafe { fork() } {
        Err(errno) => format!("cannot fork: {errno}"),
        Ok(ForkResult::Child) => {
            let code = match probe() {
                Ok(()) => 0,
                Err(errno) => errno as i32,
            };
            // SAFETY: _exit(2) ends the process at once; a child of a clone that worked
            // lands here too and ends the same way.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => "ok".into(),
            Ok(WaitStatus::Exited(_, errno)) => format!("{:?}", Errno::from_raw(errno)),
            Ok(WaitStatus::Signaled(_, Signal::SIGSYS, _)) => "killed by SIGSYS".into(),
            Ok(WaitStatus::Signaled(_, signal, _)) => format!("killed by {signal}"),
            other => format!("{other:?}"),
        },
    }
}

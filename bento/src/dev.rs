//! Step 09, dev: a /dev of the container's own, with only the devices programs expect.
//!
//! The image's /dev is an empty directory, and a program that writes to `/dev/null` or
//! reads `/dev/urandom` fails without them. Rootless, we may not mknod(2) device files
//! (only the init user namespace can), so, like rootless podman, we bind-mount the host's
//! harmless ones onto empty files in a fresh tmpfs: a bind mount of a device is the same
//! device.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};

/// The host devices a container gets: the ones every image assumes (runc's default list,
/// minus /dev/console, which belongs to a terminal).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The links a Linux /dev has: to the process's own descriptors (through /proc), and to
/// the pseudoterminal multiplexer of our devpts.
const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Mounts the container's /dev under `root`, before pivot_root (the host's devices are
/// bound from their host paths). `_terminal`: the devpts is mounted in every case, since a
/// shell's job control and `script` want one too.
pub fn mount_dev(root: &Path, _terminal: bool) -> Result<()> {
    let dev = root.join("dev");
    // An image whose /dev is a symlink would have us mount wherever it points: refuse.
    match fs::symlink_metadata(&dev) {
        Ok(meta) if !meta.is_dir() => anyhow::bail!("the image's /dev is not a directory"),
        Ok(_) => {}
        // No /dev in the image: the mount point goes to the container's upper layer.
        Err(_) => fs::create_dir(&dev).context("cannot create the container's /dev")?,
    }
    // tmpfs(5), nosuid: a /dev that is ours, in memory, gone with the container.
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .context("cannot mount a tmpfs on the container's /dev")?;
    for name in DEVICES {
        let target = dev.join(name);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&target)
            .with_context(|| format!("cannot create /dev/{name}"))?;
        // mount(2) MS_BIND: the host's device node appears at the target.
        mount(
            Some(&Path::new("/dev").join(name)),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("cannot bind the host's /dev/{name}"))?;
    }
    for (name, target) in LINKS {
        symlink(target, dev.join(name)).with_context(|| format!("cannot create /dev/{name}"))?;
    }
    // devpts(5) with newinstance: the container's own pseudoterminals, numbered from 0,
    // invisible to the host's /dev/pts. ptmxmode=0666 lets anyone in it open pts/ptmx.
    let pts = dev.join("pts");
    fs::create_dir(&pts).context("cannot create /dev/pts")?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .context("cannot mount devpts on /dev/pts")?;
    // POSIX shared memory (shm_open(3)) lives in /dev/shm: a tmpfs of its own.
    let shm = dev.join("shm");
    fs::create_dir(&shm).context("cannot create /dev/shm")?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .context("cannot mount a tmpfs on /dev/shm")?;
    Ok(())
}

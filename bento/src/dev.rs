//! Step 09, dev: a /dev of the container's own, with only the devices programs expect.
//!
//! config.json's `mounts` put a tmpfs on /dev, a devpts on /dev/pts and /dev/shm (bento's
//! own config.json lists the same as step 09; rootfs.rs mounts them). What goes *into*
//! /dev is the runtime's job, and happens here: the six devices every image assumes,
//! config.json's `linux.devices`, and the usual links.
//!
//! Rootless, we may not mknod(2) device files (only the initial user namespace can), so,
//! like rootless podman, we bind-mount the host's device onto an empty file: a bind mount
//! of a device is the same device, and grants nothing the user could not already open.
//! As root, `linux.devices` are made with mknod(2), as runc does.

use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, makedev, mknodat};
use nix::unistd::{Gid, Uid, fchownat, symlinkat};

use crate::rootfs::{beneath, fd_path, mount_point, open_dir};
use crate::spec::Spec;

/// The host devices a container gets: runc's default list, minus /dev/console, which
/// belongs to a terminal.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The devices cgroup rules that let the container use its /dev, appended to an engine's
/// rules (which usually start by denying everything, as podman's do): the six devices every
/// container gets, its terminals (/dev/ptmx, devpts's 136:*) and each of `linux.devices`.
/// runc adds the same, so that what config.json puts in /dev can be opened.
pub fn cgroup_rules(devices: &[crate::spec::Device]) -> Vec<crate::cgroups::DeviceRule> {
    let rule = |kind: char, major: i64, minor: Option<i64>| crate::cgroups::DeviceRule {
        allow: true,
        kind,
        major: Some(major),
        minor,
        access: "rwm".into(),
    };
    // null, zero, full, random, urandom, tty; ptmx; the ptys of every devpts.
    let mut rules: Vec<_> = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)]
        .into_iter()
        .map(|(major, minor)| rule('c', major, Some(minor)))
        .collect();
    rules.push(rule('c', 136, None));
    rules.extend(
        devices
            .iter()
            .filter(|d| d.kind != 'p')
            .map(|d| rule(d.kind, d.major as i64, Some(d.minor as i64))),
    );
    rules
}

/// The links a Linux /dev has: to the process's own descriptors (through /proc), and to
/// the pseudoterminal multiplexer of our devpts.
const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Fills the container's /dev under `root`, before pivot_root (the host's devices are
/// bound from their host paths). Only when config.json mounts a /dev of the container's
/// own: otherwise /dev is the image's, and left alone.
pub fn create_devices(root: &Path, spec: &Spec) -> Result<()> {
    if !spec
        .mounts
        .iter()
        .any(|m| m.destination.trim_end_matches('/') == "/dev")
    {
        return Ok(());
    }
    let root = open_dir(root)?;
    for name in DEVICES {
        bind_device(&root, &format!("/dev/{name}"))?;
    }
    let as_root = in_initial_user_namespace();
    for device in &spec.devices {
        // Rootless, we may not mknod(2) a device: bind the host's. A FIFO anyone may make.
        if !as_root && device.kind != 'p' {
            bind_device(&root, &device.path)?;
            continue;
        }
        make_node(&root, device).with_context(|| format!("cannot make {}", device.path))?;
    }
    let dev = beneath(&root, "/dev").context("cannot open the container's /dev")?;
    for (name, target) in LINKS {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => {
                return Err(errno).with_context(|| format!("cannot create /dev/{name}"));
            }
        }
    }
    Ok(())
}

/// mknod(2) of one of `linux.devices` beneath the root: its type (character, block or
/// FIFO), numbers, owner, and exactly its fileMode (mknod's mode passes through our umask:
/// fchmodat(2) sets it whole).
fn make_node(root: &std::os::fd::OwnedFd, device: &crate::spec::Device) -> Result<()> {
    let path = Path::new(&device.path);
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => (parent, name),
        _ => anyhow::bail!("{} is not a device path", device.path),
    };
    let parent = mount_point(root, &parent.to_string_lossy(), true)?;
    let kind = match device.kind {
        'b' => SFlag::S_IFBLK,
        'p' => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let mode = Mode::from_bits_truncate(device.mode);
    match mknodat(
        &parent,
        name,
        kind,
        mode,
        makedev(device.major, device.minor),
    ) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => return Err(errno.into()),
    }
    fchownat(
        &parent,
        name,
        Some(Uid::from_raw(device.uid)),
        Some(Gid::from_raw(device.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context("cannot chown it")?;
    nix::sys::stat::fchmodat(
        &parent,
        name,
        mode,
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .context("cannot set its mode")?;
    Ok(())
}

/// mount(2) MS_BIND: the host's device node at `path` appears at the same path inside.
fn bind_device(root: &std::os::fd::OwnedFd, path: &str) -> Result<()> {
    let target = mount_point(root, path, false)?;
    mount(
        Some(path),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("cannot bind the host's {path}"))?;
    Ok(())
}

/// Are we in the initial user namespace (real root may mknod), not in one of our own?
/// Its uid_map maps every id to itself (user_namespaces(7)).
fn in_initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

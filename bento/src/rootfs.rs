//! The container's file system as config.json describes it: the root, then `mounts` in
//! order, then (after pivot_root) `linux.sysctl`, `maskedPaths`, `readonlyPaths` and
//! `root.readonly`. Steps 04-09 taught each kind of mount by hand; an engine lists them.
//!
//! Every mount point is found *beneath* the root (openat2(2) RESOLVE_IN_ROOT: `..` and
//! symlinks stay inside it, as if the root were `/`), created if missing, and mounted on
//! through its descriptor (`/proc/self/fd/N`). A hostile image whose `/etc/hosts` is a
//! symlink to `/etc/shadow` gets its own file covered, never the host's: runc does the
//! same with its securejoin.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat};

use crate::spec::{Mount, Spec};

/// pivot_root(2) needs the new root to be a mount point: an engine's root filesystem is
/// a plain directory, so bind it onto itself (mount(2) MS_BIND|MS_REC). Bento's own
/// containers get an overlay there instead (overlay.rs).
pub fn bind_root(rootfs: &Path) -> Result<PathBuf> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("cannot bind the root filesystem {}", rootfs.display()))?;
    Ok(rootfs.to_path_buf())
}

/// Mounts config.json's `mounts` under `root`, in order (a mount may sit on an earlier
/// one: /dev/pts on /dev). Before pivot_root: bind mounts come from host paths, and a new
/// /proc must be mounted while a full one is still visible (step 05).
pub fn mount_all(root: &Path, mounts: &[Mount]) -> Result<()> {
    let root = open_dir(root)?;
    for entry in mounts {
        mount_one(&root, entry).with_context(|| {
            format!(
                "cannot mount {} on {} in the container",
                if entry.source.is_empty() {
                    &entry.kind
                } else {
                    &entry.source
                },
                entry.destination
            )
        })?;
    }
    Ok(())
}

/// A mount's options, sorted out: mount(2) flags, propagation, and the rest (`mode=755`),
/// which goes to the file system as its data.
#[derive(Debug)]
struct Options {
    flags: MsFlags,
    propagation: MsFlags,
    bind: bool,
    recursive: bool,
    data: Vec<String>,
}

fn parse_options(options: &[String]) -> Options {
    let mut parsed = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        bind: false,
        recursive: false,
        data: Vec::new(),
    };
    for option in options {
        let flag = match option.as_str() {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "sync" => MsFlags::MS_SYNCHRONOUS,
            "dirsync" => MsFlags::MS_DIRSYNC,
            "remount" => MsFlags::MS_REMOUNT,
            "mand" => MsFlags::MS_MANDLOCK,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            "bind" => {
                parsed.bind = true;
                MsFlags::empty()
            }
            "rbind" => {
                (parsed.bind, parsed.recursive) = (true, true);
                MsFlags::empty()
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                parsed.propagation = match option.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                if option.starts_with('r') {
                    parsed.propagation |= MsFlags::MS_REC;
                }
                MsFlags::empty()
            }
            // The defaults, and what only matters to other runtimes: SELinux relabelling
            // (z, Z), podman's tmpfs copy-up, id-mapped mounts.
            "rw" | "suid" | "dev" | "exec" | "async" | "atime" | "diratime" | "norelatime"
            | "z" | "Z" | "tmpcopyup" | "notmpcopyup" | "copy-symlink" | "U" | "idmap" => {
                MsFlags::empty()
            }
            data => {
                parsed.data.push(data.to_string());
                MsFlags::empty()
            }
        };
        parsed.flags |= flag;
    }
    parsed
}

fn mount_one(root: &OwnedFd, entry: &Mount) -> Result<()> {
    let options = parse_options(&entry.options);
    let bind = options.bind || entry.kind == "bind";
    let is_dir = !bind || Path::new(&entry.source).is_dir();
    let target = mount_point(root, &entry.destination, is_dir)?;
    let at = fd_path(&target);
    let data = options.data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    if bind {
        // A bind mount made read-only (or nosuid…) in two steps, mount then remount by
        // path, can be raced: a rename between the two leaves it writable. So the copy of
        // the source tree is made detached (open_tree(2)), given its flags while no one
        // can reach it (mount_setattr(2)), and only then attached (move_mount(2)) on the
        // mount point we hold: no path is resolved twice.
        let tree = clone_tree(&entry.source, options.recursive)?;
        set_attributes(&tree, options.flags, MsFlags::empty(), options.recursive)?;
        attach(&tree, &target)?;
        if !options.propagation.is_empty() {
            set_attributes(
                &tree,
                MsFlags::empty(),
                options.propagation,
                options.recursive,
            )?;
        }
        return Ok(());
    } else if entry.kind == "proc" {
        // Step 05's lesson, as it is (always nosuid, nodev, noexec).
        crate::proc::mount_proc(Path::new(&at))?;
    } else if entry.kind == "cgroup" {
        mount_cgroup(&at, options.flags)?;
    } else {
        let source = match entry.source.is_empty() {
            true => entry.kind.as_str(),
            false => entry.source.as_str(),
        };
        mount(
            Some(source),
            at.as_str(),
            Some(entry.kind.as_str()),
            options.flags,
            data,
        )?;
    }
    if !options.propagation.is_empty() {
        // The new mount sits on top of the mount point we hold: reach it beneath the root
        // (its propagation is all that changes; its flags were set as it was made).
        let mounted = beneath(root, &entry.destination)?;
        set_attributes(&mounted, MsFlags::empty(), options.propagation, false)?;
    }
    Ok(())
}

/// open_tree(2) OPEN_TREE_CLONE: a copy of the mount tree at `source` (with its submounts
/// when `recursive`), attached nowhere, held by the descriptor returned.
fn clone_tree(source: &str, recursive: bool) -> Result<OwnedFd> {
    let source = std::ffi::CString::new(source).context("a mount source holds a NUL byte")?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree(2) reads one C string and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, source.as_ptr(), flags) };
    owned(fd).with_context(|| format!("cannot copy the mount at {source:?} (open_tree)"))
}

/// mount_setattr(2): sets `flags` (as mount_attr's MOUNT_ATTR_* bits) and `propagation` on
/// the mount a descriptor holds (a detached copy, or a path beneath the mount's root), and
/// only those: what the kernel locked stays as it was, and nothing is resolved again.
fn set_attributes(
    tree: &OwnedFd,
    flags: MsFlags,
    propagation: MsFlags,
    recursive: bool,
) -> Result<()> {
    // SAFETY: mount_attr is plain integers, for which zero is a valid value.
    let mut attr: libc::mount_attr = unsafe { std::mem::zeroed() };
    for (ms, mount_attr) in [
        (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
    ] {
        if flags.contains(ms) {
            attr.attr_set |= mount_attr;
        }
    }
    // The access-time mode is one field: set it whole, or leave it.
    for (ms, mode) in [
        (MsFlags::MS_NOATIME, libc::MOUNT_ATTR_NOATIME),
        (MsFlags::MS_STRICTATIME, libc::MOUNT_ATTR_STRICTATIME),
        (MsFlags::MS_RELATIME, libc::MOUNT_ATTR_RELATIME),
    ] {
        if flags.contains(ms) {
            attr.attr_clr |= libc::MOUNT_ATTR__ATIME;
            attr.attr_set |= mode;
        }
    }
    attr.propagation = (propagation - MsFlags::MS_REC).bits();
    if attr.attr_set == 0 && attr.attr_clr == 0 && attr.propagation == 0 {
        return Ok(());
    }
    let mut at = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive || propagation.contains(MsFlags::MS_REC) {
        at |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: mount_setattr(2) reads one mount_attr of the size we pass.
    let done = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            at,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    owned_result(done).context("cannot set the mount's flags (mount_setattr)")
}

/// move_mount(2): attaches the mount `tree` holds on the mount point `target` holds.
fn attach(tree: &OwnedFd, target: &OwnedFd) -> Result<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: move_mount(2) with two descriptors and empty C strings.
    let done = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    owned_result(done).context("cannot attach the mount (move_mount)")
}

/// A descriptor a system call returned, or its error.
fn owned(fd: libc::c_long) -> Result<OwnedFd> {
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

/// 0, or the system call's error.
fn owned_result(done: libc::c_long) -> Result<()> {
    match done {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error().into()),
    }
}

/// `/sys/fs/cgroup`. On a cgroup v2 machine, a cgroup2 file system (read-only, as the
/// engine asks). On v1 and hybrid machines, runc mounts a tmpfs there and binds each
/// hierarchy's container cgroup into it; bento mounts only the empty read-only tmpfs:
/// binding the host's whole tree would hand the container the host's cgroups.
fn mount_cgroup(at: &str, flags: MsFlags) -> Result<()> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        mount(Some("cgroup"), at, Some("cgroup2"), flags, None::<&str>)?;
    } else {
        mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            flags | MsFlags::MS_RDONLY,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

/// The directory `path`, as an O_PATH descriptor to resolve beneath.
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("cannot open {}", path.display()))
}

/// `path` inside `root`, resolved as if `root` were `/` (openat2(2) RESOLVE_IN_ROOT).
pub fn beneath(root: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    openat2(
        root.as_fd(),
        relative,
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    )
}

/// The mount point `destination` beneath `root`, made if missing (directories, and an
/// empty file as the last component when a file is mounted there). An existing last
/// component that is a symlink is refused for a directory mount: step 09's "the image's
/// /dev is not a directory".
pub fn mount_point(root: &OwnedFd, destination: &str, is_dir: bool) -> Result<OwnedFd> {
    let parts: Vec<&str> = destination
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    anyhow::ensure!(
        !parts.contains(&".."),
        "{destination}: a mount destination may not contain `..`"
    );
    let mut dir = beneath(root, "/")?;
    for (at, part) in parts.iter().enumerate() {
        let last = at + 1 == parts.len();
        let path = parts[..=at].join("/");
        if last
            && is_dir
            && let Ok(stat) = fstatat(&dir, *part, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            && SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
        {
            anyhow::bail!("the image's {destination} is not a directory");
        }
        match beneath(root, &path) {
            Ok(fd) => dir = fd,
            Err(Errno::ENOENT) => {
                if last && !is_dir {
                    openat(
                        &dir,
                        *part,
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o644),
                    )
                    .with_context(|| format!("cannot create {destination}"))?;
                } else {
                    mkdirat(&dir, *part, Mode::from_bits_truncate(0o755))
                        .with_context(|| format!("cannot create /{path}"))?;
                }
                dir = beneath(root, &path).with_context(|| format!("cannot open /{path}"))?;
            }
            Err(errno) => return Err(errno).with_context(|| format!("cannot open /{path}")),
        }
    }
    Ok(dir)
}

/// The path through which a descriptor can be mounted on (proc(5): /proc/self/fd/N).
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The host's /dev/null, as a detached copy of its mount (open_tree(2)), taken before
/// pivot_root: masks are copies of it. After pivot_root, /dev/null is whatever the image
/// put there when config.json mounts no /dev of its own, a symlink to
/// /proc/sys/kernel/core_pattern, say, which each mask would then make writable. Checked
/// to be the null device (character device 1:3, devices(7)).
pub fn host_dev_null() -> Result<OwnedFd> {
    let null = clone_tree("/dev/null", false)?;
    let stat = nix::sys::stat::fstat(&null).context("cannot stat the host's /dev/null")?;
    let is_char = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || stat.st_rdev != nix::sys::stat::makedev(1, 3) {
        anyhow::bail!("the host's /dev/null is not the null device (1:3)");
    }
    Ok(null)
}

/// After pivot_root: the kernel settings, and the paths the engine hides or freezes (a
/// file under a copy of `null`, [`host_dev_null`]). sysctl first: `/proc/sys` itself is
/// usually among the read-only paths.
pub fn finish(spec: &Spec, null: &OwnedFd) -> Result<()> {
    for (key, value) in &spec.sysctl {
        // sysctl(8): `net.ipv4.ping_group_range` is /proc/sys/net/ipv4/ping_group_range.
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        fs::write(&path, value).with_context(|| format!("cannot set the sysctl {key}"))?;
    }
    let mut null_attached = false;
    for path in &spec.masked_paths {
        mask(path, null, &mut null_attached).with_context(|| format!("cannot mask {path}"))?;
    }
    for path in &spec.readonly_paths {
        if let Ok(at) = open_path(path) {
            // A read-only copy of the mount tree at `path`, attached over it: the same
            // three steps as a read-only bind (mount_one), on the one descriptor we hold.
            let tree = clone_tree_at(&at)?;
            set_attributes(&tree, MsFlags::MS_RDONLY, MsFlags::empty(), true)
                .with_context(|| format!("cannot make {path} read-only"))?;
            attach(&tree, &at).with_context(|| format!("cannot make {path} read-only"))?;
        }
    }
    if spec.readonly_root {
        let root = open_path("/")?;
        set_attributes(&root, MsFlags::MS_RDONLY, MsFlags::empty(), false)
            .context("cannot make the root read-only")?;
    }
    Ok(())
}

/// An O_PATH descriptor of `path` in the container (after pivot_root: its own paths).
fn open_path(path: &str) -> Result<OwnedFd> {
    nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("cannot open {path}"))
}

/// [`clone_tree`] of the mount tree a descriptor holds, with its submounts.
fn clone_tree_at(at: &OwnedFd) -> Result<OwnedFd> {
    let flags = libc::OPEN_TREE_CLONE
        | libc::OPEN_TREE_CLOEXEC
        | libc::AT_RECURSIVE as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint;
    // SAFETY: open_tree(2) with a descriptor and an empty C string.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, at.as_raw_fd(), c"".as_ptr(), flags) };
    owned(fd).context("cannot copy the mount (open_tree)")
}

/// `linux.maskedPaths`: a file disappears under /dev/null, a directory under an empty
/// read-only tmpfs (what `/proc/kcore` and `/sys/firmware` become in a container). Each
/// path is opened once, and covered through that descriptor. The first file gets `null`
/// itself; the next ones a copy of it, once it is attached (Linux copies a detached mount
/// only since 6.15).
fn mask(path: &str, null: &OwnedFd, null_attached: &mut bool) -> Result<()> {
    let Ok(at) = open_path(path) else {
        return Ok(()); // nothing there to hide
    };
    let is_dir = nix::sys::stat::fstat(&at).is_ok_and(|stat| {
        SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
    });
    match is_dir {
        true => mount(
            Some("tmpfs"),
            fd_path(&at).as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )?,
        false => match std::mem::replace(null_attached, true) {
            false => attach(null, &at)?,
            true => attach(&clone_tree_at(null)?, &at)?,
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_flags_propagation_and_data() {
        let options: Vec<String> = ["rbind", "ro", "nosuid", "rprivate", "mode=755", "Z"]
            .iter()
            .map(ToString::to_string)
            .collect();
        let parsed = parse_options(&options);
        assert!(parsed.bind && parsed.recursive);
        assert_eq!(parsed.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(parsed.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(parsed.data, ["mode=755"]);
    }
}

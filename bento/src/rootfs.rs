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
use nix::sys::statvfs::{FsFlags, statvfs};

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
        let mut flags = MsFlags::MS_BIND;
        if options.recursive {
            flags |= MsFlags::MS_REC;
        }
        mount(
            Some(entry.source.as_str()),
            at.as_str(),
            None::<&str>,
            flags,
            None::<&str>,
        )?;
        // A bind mount takes none of the other flags: a remount applies them (mount(2),
        // MS_REMOUNT|MS_BIND), to the new mount, which is what the path now reaches.
        let flags = options.flags - MsFlags::MS_REMOUNT;
        if !flags.is_empty() {
            let mounted = beneath(root, &entry.destination)?;
            remount(&fd_path(&mounted), flags)?;
        }
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
        let mounted = beneath(root, &entry.destination)?;
        mount(
            None::<&str>,
            fd_path(&mounted).as_str(),
            None::<&str>,
            options.propagation,
            None::<&str>,
        )?;
    }
    Ok(())
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

/// Remounts the mount at `at` with `flags`, keeping the ones the kernel locked (in a user
/// namespace, a bind of a nosuid/nodev/noexec mount must stay so: mount(2) EPERM).
fn remount(at: &str, flags: MsFlags) -> Result<()> {
    let mut keep = MsFlags::empty();
    if let Ok(stat) = statvfs(at) {
        for (fs, ms) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        ] {
            if stat.flags().contains(fs) {
                keep |= ms;
            }
        }
    }
    mount(
        None::<&str>,
        at,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags | keep,
        None::<&str>,
    )?;
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

/// After pivot_root: the kernel settings, and the paths the engine hides or freezes.
/// sysctl first: `/proc/sys` itself is usually among the read-only paths.
pub fn finish(spec: &Spec) -> Result<()> {
    for (key, value) in &spec.sysctl {
        // sysctl(8): `net.ipv4.ping_group_range` is /proc/sys/net/ipv4/ping_group_range.
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        fs::write(&path, value).with_context(|| format!("cannot set the sysctl {key}"))?;
    }
    for path in &spec.masked_paths {
        mask(path).with_context(|| format!("cannot mask {path}"))?;
    }
    for path in &spec.readonly_paths {
        if fs::symlink_metadata(path).is_ok() {
            mount(
                Some(path.as_str()),
                path.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_context(|| format!("cannot bind {path}"))?;
            remount(path, MsFlags::MS_RDONLY)
                .with_context(|| format!("cannot make {path} read-only"))?;
        }
    }
    if spec.readonly_root {
        remount("/", MsFlags::MS_RDONLY).context("cannot make the root read-only")?;
    }
    Ok(())
}

/// `linux.maskedPaths`: a file disappears under /dev/null, a directory under an empty
/// read-only tmpfs (what `/proc/kcore` and `/sys/firmware` become in a container).
fn mask(path: &str) -> Result<()> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(()); // nothing there to hide
    };
    match meta.is_dir() {
        true => mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )?,
        false => mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?,
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

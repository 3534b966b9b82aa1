//! What a process can see of the system, captured before isolation and again just before
//! the container's command runs.

use std::ffi::OsString;
use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{OFlag, readlinkat};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, getcwd, gethostname, getpid, getuid};

use crate::checklist::{self, Facts};

/// The process's view of the system at one moment.
struct Snapshot {
    uid: u32,
    hostname: OsString,
    pid: i32,
    cwd: Result<PathBuf, nix::Error>,
    /// The `user`, `uts`, `pid` and `net` links of `/proc/self/ns`, e.g. `uts:[4026531838]`:
    /// two processes are in the same namespace exactly when these links are equal
    /// (namespaces(7)).
    user_ns: OsString,
    uts_ns: OsString,
    pid_ns: OsString,
    net_ns: OsString,
    /// `stat("/")`: device and inode of the root directory this process sees.
    root: (u64, u64),
}

impl Snapshot {
    fn capture(host_proc: &OwnedFd) -> Result<Self> {
        let ns = |name: &str| {
            readlinkat(host_proc.as_fd(), format!("self/ns/{name}").as_str())
                .with_context(|| format!("cannot read /proc/self/ns/{name}"))
        };
        let root = std::fs::metadata("/").context("cannot stat /")?;
        Ok(Snapshot {
            uid: getuid().as_raw(),
            hostname: gethostname().context("gethostname failed")?,
            pid: getpid().as_raw(),
            cwd: getcwd(),
            user_ns: ns("user")?,
            uts_ns: ns("uts")?,
            pid_ns: ns("pid")?,
            net_ns: ns("net")?,
            root: (root.dev(), root.ino()),
        })
    }

    /// The talk's format: `uid [0]` then the rest indented.
    fn render(&self, label: &str) -> String {
        let cwd = match &self.cwd {
            Ok(cwd) => format!("{cwd:?}"),
            Err(errno) => format!("unreachable: {errno}"),
        };
        format!(
            "[{label}]\nuid [{}]\n    hostname [{:?}]\n    pid [{}]\n    cwd [{cwd}]\n",
            self.uid, self.hostname, self.pid
        )
    }
}

/// The host as the step found it, before any isolation.
pub struct Host {
    /// The host's `/proc`, opened before isolation and kept (close-on-exec, so the container's
    /// command never inherits it). Through it we can still read our namespace links and
    /// uid_map after `chroot` has hidden the host's `/proc` from us.
    proc: OwnedFd,
    before: Snapshot,
    /// The host's root mount, as mountinfo names it: which filesystem, and which directory
    /// of it, is mounted at `/` (`None` if mountinfo could not be read).
    root_mount: Option<MountSource>,
}

/// Captures the state of this process before any isolation and prints it as
/// `[Before Isolation]`.
pub fn before_isolation() -> Result<Host> {
    let proc = File::open("/proc")
        .context("cannot open /proc: the steps read /proc/self to show their state")?;
    let proc = OwnedFd::from(proc);
    let before = Snapshot::capture(&proc)?;
    let mut host = Host {
        proc,
        before,
        root_mount: None,
    };
    host.root_mount = host
        .read("self/mountinfo")
        .ok()
        .and_then(|mountinfo| source_at(&mountinfo, "/"));
    // One write(2) for the whole block: stderr is unbuffered.
    eprint!("{}", host.before.render("Before Isolation"));
    Ok(host)
}

impl Host {
    /// Prints the state just before the container's command runs, as `[After Isolation]`,
    /// followed by the container checklist comparing it with the host.
    pub fn after_isolation(&self) -> Result<()> {
        let now = Snapshot::capture(&self.proc)?;
        let new_root = now.root != self.before.root;
        let mountinfo = self.read("self/mountinfo")?;
        let (bounding_set, no_new_privs, seccomp_filter) = privileges(&self.read("self/status")?);
        let facts = Facts {
            uid: now.uid,
            uid_map: self.read("self/uid_map")?,
            new_user_ns: now.user_ns != self.before.user_ns,
            new_uts_ns: now.uts_ns != self.before.uts_ns,
            hostname: now.hostname.to_string_lossy().into_owned(),
            pid: now.pid,
            new_pid_ns: now.pid_ns != self.before.pid_ns,
            new_root,
            // What `/proc/self` means *inside* our current root: the procfs a program like
            // `ps` would read.
            proc_self: std::fs::read_link("/proc/self")
                .ok()
                .and_then(|target| target.to_str()?.parse().ok()),
            host_root_reachable: if new_root {
                climbs_to(self.before.root)?
            } else {
                Some(true)
            },
            host_root_mounted: self
                .root_mount
                .as_ref()
                .and_then(|root| mounted_at(&mountinfo, root)),
            root_fs: mount_at(&mountinfo, "/"),
            dev_fs: mount_at(&mountinfo, "/dev").map(|(fstype, _)| fstype),
            devpts_fs: mount_at(&mountinfo, "/dev/pts").map(|(fstype, _)| fstype),
            dev_null: std::fs::metadata("/dev/null")
                .is_ok_and(|null| null.file_type().is_char_device() && null.rdev() == NULL_DEVICE),
            terminal: own_terminal(),
            new_net_ns: now.net_ns != self.before.net_ns,
            interfaces: interfaces(&self.read("self/net/dev")?),
            addresses: addresses(),
            default_route: default_route(&self.read("self/net/route")?),
            bounding_set,
            no_new_privs,
            seccomp_filter,
        };
        let checks = checklist::render(checklist::visible(&checklist::evaluate(&facts)));
        eprint!("{}{checks}", now.render("After Isolation"));
        Ok(())
    }

    /// Reads a file of the host's `/proc` (relative to it).
    fn read(&self, path: &str) -> Result<String> {
        let fd = nix::fcntl::openat(
            self.proc.as_fd(),
            Path::new(path),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("cannot open /proc/{path}"))?;
        std::io::read_to_string(File::from(fd)).with_context(|| format!("cannot read /proc/{path}"))
    }
}

/// Can `..` climb from our root back to the host's root directory `host_root` (device,
/// inode)? The classic chroot escape, tried and undone: chroot(2) into a subdirectory,
/// which leaves the working directory outside the new root, where `..` is not stopped;
/// walk up, stat(2) where we are, then go back to our own root and working directory.
/// `None` when it cannot be tried (no subdirectory, or no CAP_SYS_CHROOT).
fn climbs_to(host_root: (u64, u64)) -> Result<Option<bool>> {
    let open = |path: &str| {
        nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()
    };
    let (Some(root), Some(cwd)) = (open("/"), open(".")) else {
        return Ok(None);
    };
    let subdir = std::fs::read_dir("/").ok().and_then(|entries| {
        let mut entries = entries.flatten();
        entries.find(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
    });
    let Some(subdir) = subdir else {
        return Ok(None);
    };
    if chdir("/").and_then(|()| chroot(&subdir.path())).is_err() {
        return Ok(None);
    }
    // Up until `..` leads nowhere new: the top of whatever tree we can reach.
    let at = || std::fs::metadata(".").map(|here| (here.dev(), here.ino()));
    let mut here = at();
    for _ in 0..4096 {
        let _ = chdir("..");
        let up = at();
        if up.as_ref().ok() == here.as_ref().ok() {
            break;
        }
        here = up;
    }
    // Back to where we were: our root, then our working directory.
    fchdir(root.as_fd())
        .and_then(|()| chroot("."))
        .and_then(|()| fchdir(cwd.as_fd()))
        .context("cannot return to the container's root after trying the chroot escape")?;
    Ok(here.ok().map(|here| here == host_root))
}

/// `/dev/null` is the character device 1:3 (makedev(3) of major 1, minor 3).
const NULL_DEVICE: u64 = (1 << 8) | 3;

/// The filesystem type and options of the mount at `point`, from mountinfo (proc(5)): the
/// last line with that mount point is the one on top. `None` when `point` is not a mount
/// point of our view (`/` after a chroot into a plain directory).
fn mount_at(mountinfo: &str, point: &str) -> Option<(String, String)> {
    mountinfo.lines().rev().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        (mount.split(' ').nth(4)? == point).then_some(())?;
        let mut fs = fs.split(' ');
        let fstype = fs.next()?.to_string();
        let options = fs.nth(1).unwrap_or_default().to_string();
        Some((fstype, options))
    })
}

/// What a mount shows: the filesystem (`major:minor`) and the directory of it that is
/// mounted (mountinfo's 3rd and 4th fields, proc(5)). A bind mount of a subdirectory shows
/// the same filesystem with another directory.
#[derive(Debug, PartialEq, Eq)]
struct MountSource {
    device: String,
    root: String,
}

/// The source of the mount on top at `point`.
fn source_at(mountinfo: &str, point: &str) -> Option<MountSource> {
    mountinfo.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').take(5).collect();
        let [_, _, device, root, at] = fields[..] else {
            return None;
        };
        (at == point).then(|| MountSource {
            device: device.to_string(),
            root: root.to_string(),
        })
    })
}

/// Where `source` is mounted in `mountinfo`, if anywhere (the first place listed). The kernel
/// lists only the mounts below our root (proc(5)): after a chroot the host's root is not
/// listed even though `..` reaches it, which is why the checklist asks both.
fn mounted_at(mountinfo: &str, source: &MountSource) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').take(5).collect();
        let [_, _, device, root, at] = fields[..] else {
            return None;
        };
        (device == source.device && root == source.root).then(|| at.to_string())
    })
}

/// Is standard input a terminal, and whose? `Some(true)` when it is a pty of the devpts
/// mounted at `/dev/pts` in our own view (same device as that directory: stat(2) `st_dev`),
/// `Some(false)` for another terminal (the host's), `None` when it is no terminal at all.
fn own_terminal() -> Option<bool> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let stdin = nix::sys::stat::fstat(std::io::stdin().as_fd()).ok()?;
    let pts = std::fs::metadata("/dev/pts").ok();
    Some(pts.is_some_and(|pts| pts.dev() == stdin.st_dev as u64))
}

/// The interface names of `/proc/self/net/dev` (proc(5)): after two header lines, one
/// `NAME: counters...` line each.
fn interfaces(net_dev: &str) -> Vec<String> {
    net_dev
        .lines()
        .skip(2)
        .filter_map(|line| Some(line.split_once(':')?.0.trim().to_string()))
        .collect()
}

/// What `/proc/self/status` says about our privileges (proc(5)): how many capabilities the
/// bounding set holds (`CapBnd`, a hexadecimal mask), `NoNewPrivs`, and `Seccomp` (0 none,
/// 1 strict, 2 a filter). A field that is missing counts as the least safe value.
fn privileges(status: &str) -> (u32, bool, bool) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    (
        field("CapBnd")
            .and_then(|mask| u64::from_str_radix(mask, 16).ok())
            .map_or(64, u64::count_ones),
        field("NoNewPrivs") == Some("1"),
        field("Seccomp") == Some("2"),
    )
}

/// The IPv4 addresses of our network namespace's interfaces, with their prefix length:
/// getifaddrs(3). Empty if they cannot be read.
fn addresses() -> Vec<(String, String)> {
    let Ok(found) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    found
        .filter_map(|entry| {
            let address = entry.address?.as_sockaddr_in()?.ip();
            let mask = entry.netmask?.as_sockaddr_in()?.ip();
            let prefix = u32::from(mask).count_ones();
            Some((entry.interface_name, format!("{address}/{prefix}")))
        })
        .collect()
}

/// The interface of the IPv4 default route, from `/proc/self/net/route` (proc(5)): after a
/// header line, `Iface Destination Gateway ...`, in hexadecimal; the default route's
/// destination is 00000000.
fn default_route(route: &str) -> Option<String> {
    route.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let (name, destination) = (fields.next()?, fields.next()?);
        (destination == "00000000").then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_on_top_of_root_is_found() {
        let mountinfo = "\
            22 1 252:0 / / rw,relatime - ext4 /dev/vda rw\n\
            40 22 0:21 / /proc rw - proc proc rw\n\
            41 22 0:45 / / rw - overlay overlay rw,lowerdir=/r,upperdir=/u,workdir=/w\n";
        assert_eq!(
            mount_at(mountinfo, "/"),
            Some((
                "overlay".into(),
                "rw,lowerdir=/r,upperdir=/u,workdir=/w".into()
            ))
        );
        assert_eq!(
            mount_at(mountinfo, "/proc"),
            Some(("proc".into(), "rw".into()))
        );
        assert_eq!(
            mount_at("40 22 0:21 / /proc rw - proc proc rw\n", "/"),
            None
        );
    }

    #[test]
    fn the_hosts_root_is_found_wherever_it_is_still_mounted() {
        let host = "\
            22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
            40 22 0:21 / /proc rw - proc proc rw\n";
        let root = source_at(host, "/").unwrap();
        assert_eq!(root.device, "252:0");
        // After pivot_root(root, root/.oldroot) without the umount: the rootfs (a bind
        // mount of a directory of the same disk) is /, the host's root is at /.oldroot.
        let kept = "\
            60 59 252:0 /tmp/rootfs / rw - ext4 /dev/vda rw\n\
            61 60 252:0 / /.oldroot rw - ext4 /dev/vda rw\n\
            62 61 0:21 / /.oldroot/proc rw - proc proc rw\n";
        assert_eq!(mounted_at(kept, &root), Some("/.oldroot".into()));
        // Detached: only the rootfs, a directory of the same disk, is left.
        let detached = "60 59 252:0 /tmp/rootfs / rw - ext4 /dev/vda rw\n";
        assert_eq!(mounted_at(detached, &root), None);
    }

    #[test]
    fn interfaces_are_read_from_net_dev() {
        let net_dev = "\
Inter-|   Receive                            |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets
    lo:       0       0    0    0    0     0          0         0        0       0
  eth0: 1234 5 0 0 0 0 0 0 99 1
";
        assert_eq!(interfaces(net_dev), ["lo", "eth0"]);
    }

    #[test]
    fn the_default_route_is_read_from_net_route() {
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                     tap0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                     tap0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\n";
        assert_eq!(default_route(route), Some("tap0".into()));
        assert_eq!(default_route("Iface\tDestination\n"), None);
    }

    #[test]
    fn privileges_are_read_from_status() {
        let status = "Name:\tsh\nCapBnd:\t00000000800405fb\nNoNewPrivs:\t1\nSeccomp:\t2\n\
                      Seccomp_filters:\t1\n";
        assert_eq!(privileges(status), (11, true, true));
        let host = "CapBnd:\t000001ffffffffff\nNoNewPrivs:\t0\nSeccomp:\t0\n";
        assert_eq!(privileges(host), (41, false, false));
        assert_eq!(privileges(""), (64, false, false));
    }
}

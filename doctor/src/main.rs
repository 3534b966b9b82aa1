//! `just doctor`: can this machine run the Bento workshop? One line per check, with the fix
//! for each problem; exits non-zero when a step cannot work.

mod place;
mod probe;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use clap::Parser;
use plumbing::host::{Sysctls, UsernsBlock};

use place::Place;
use probe::{Probe, Stage};

/// Check that this machine can run the workshop's rootless containers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Read the host's files (proc/sys, proc/self/mountinfo, .dockerenv…) below this
    /// directory instead of / (for tests)
    #[arg(long, hide = true, default_value = "/")]
    host_root: PathBuf,
    /// Do not try a container; assume this outcome: ok, or STAGE:ERRNO such as
    /// userns:EPERM (for tests)
    #[arg(long, hide = true)]
    assume_probe: Option<String>,
    /// Assume this uid instead of ours (for tests)
    #[arg(long, hide = true)]
    assume_uid: Option<u32>,
}

/// Everything the diagnosis is based on.
#[derive(Debug, Clone)]
struct Observations {
    osrelease: Option<String>,
    sysctls: Sysctls,
    uid: u32,
    probe: Probe,
    /// Lima, a dev container, WSL, another container, or bare Linux.
    place: Place,
    root_propagation: Option<&'static str>,
    rootfs: Rootfs,
    busybox: Option<PathBuf>,
    presenterm: Option<String>,
    /// The host devices that step 09 bind-mounts into the container and are missing here.
    missing_devices: Vec<&'static str>,
    /// Which cgroup version `bento --memory/--pids-limit` would use here, or why none.
    cgroups: Result<bento::cgroups::Version, String>,
    /// /dev/net/tun, if there is one: (is a character device, mode, owner).
    tun: Option<(bool, u32, u32)>,
}

/// The host's devices that step 09 binds into the container's /dev.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

#[derive(Debug, Clone)]
enum Rootfs {
    Ready(PathBuf),
    Missing(PathBuf),
    Unusable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the report, with what to do about it.
#[derive(Debug, Clone)]
struct Check {
    status: Status,
    name: &'static str,
    detail: String,
    fixes: Vec<String>,
}

fn check(status: Status, name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        status,
        name,
        detail: detail.into(),
        fixes: Vec::new(),
    }
}

impl Check {
    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fixes.push(fix.into());
        self
    }
}

fn main() {
    plumbing::run(doctor)
}

fn doctor() -> Result<i32> {
    let cli = Cli::parse();
    let uid = cli
        .assume_uid
        .unwrap_or_else(|| nix::unistd::getuid().as_raw());
    let probe = match &cli.assume_probe {
        Some(text) => Probe::parse(text, uid).map_err(anyhow::Error::msg)?,
        None => Probe::run(),
    };
    let observations = observe(&cli.host_root, uid, probe);
    let checks = diagnose(&observations);
    print!("{}", render(&checks));
    Ok(if checks.iter().any(|c| c.status == Status::Fail) {
        1
    } else {
        0
    })
}

fn observe(root: &Path, uid: u32, probe: Probe) -> Observations {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).ok();
    let sysctls = Sysctls::at(root.join("proc/sys"));
    let osrelease = sysctls.get("kernel/osrelease");
    let place = Place::detect(root, osrelease.as_deref().unwrap_or_default(), |name| {
        std::env::var(name).ok()
    });
    Observations {
        osrelease,
        sysctls,
        uid,
        probe,
        place,
        root_propagation: read("proc/self/mountinfo").and_then(|m| propagation_of_root(&m)),
        rootfs: rootfs(),
        busybox: rootfs_fetch::busybox::locate(None).ok(),
        presenterm: Command::new("presenterm")
            .arg("--version")
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string()),
        cgroups: bento::cgroups::Host {
            root: root.join("sys/fs/cgroup"),
            self_cgroup: read("proc/self/cgroup").unwrap_or_default(),
            root_user: uid == 0,
        }
        .which(&["memory", "pids"]),
        missing_devices: DEVICES
            .into_iter()
            .filter(|name| {
                let device = std::fs::metadata(root.join("dev").join(name));
                !device.is_ok_and(|device| device.file_type().is_char_device())
            })
            .collect(),
        tun: std::fs::metadata(root.join("dev/net/tun"))
            .ok()
            .map(|tun| (tun.file_type().is_char_device(), tun.mode(), tun.uid())),
    }
}

/// The propagation of the mount at `/`, from a mountinfo (proc(5)): the optional fields
/// between the mount options and the `-` say `shared:N` or `master:N`, or nothing.
fn propagation_of_root(mountinfo: &str) -> Option<&'static str> {
    let line = mountinfo
        .lines()
        .rfind(|line| line.split_whitespace().nth(4) == Some("/"))?;
    let optional: Vec<&str> = line
        .split_whitespace()
        .skip(6)
        .take_while(|field| *field != "-")
        .collect();
    Some(if optional.iter().any(|f| f.starts_with("shared:")) {
        "shared"
    } else if optional.iter().any(|f| f.starts_with("master:")) {
        "slave"
    } else {
        "private"
    })
}

fn rootfs() -> Rootfs {
    let (path, _) = match plumbing::rootfs_location() {
        Ok(location) => location,
        Err(error) => return Rootfs::Unusable(format!("{error:#}")),
    };
    if std::fs::symlink_metadata(&path).is_err() {
        return Rootfs::Missing(path);
    }
    match plumbing::rootfs(&[c"/bin/sh".into()]) {
        Ok(path) => Rootfs::Ready(path),
        Err(error) => Rootfs::Unusable(format!("{error:#}")),
    }
}

/// `(major, minor)` of a kernel release such as `6.8.0-45-generic`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn diagnose(o: &Observations) -> Vec<Check> {
    let release = o.osrelease.clone().unwrap_or_default();
    let mut checks = Vec::new();

    checks.push(match kernel_version(&release) {
        None => check(
            Status::Fail,
            "Linux kernel",
            "cannot read the kernel version",
        )
        .fix("the workshop needs Linux: on macOS or Windows, use a Linux VM or WSL2"),
        Some(version) if version < (3, 8) => check(
            Status::Fail,
            "Linux kernel",
            format!("{release}: too old for unprivileged user namespaces (3.8+)"),
        )
        .fix("use a current distribution"),
        Some(version) if version < (5, 11) => check(
            Status::Warn,
            "Linux kernel",
            format!("{release}: steps 00-05 work; rootless overlayfs needs 5.11+"),
        ),
        Some(_) => check(Status::Ok, "Linux kernel", release.clone()),
    });

    checks.push(runs_in(o));

    checks.push(if o.uid == 0 {
        check(
            Status::Warn,
            "Running as",
            "root: the steps are meant to run as an ordinary user (rootless)",
        )
        .fix("run `just step N` without sudo; `just test` drops to uid 65534 by itself")
    } else {
        check(
            Status::Ok,
            "Running as",
            format!("uid {}, an ordinary user", o.uid),
        )
    });

    checks.push(user_namespaces(o));

    checks.push(match o.probe.outcome {
        Ok(()) => check(
            Status::Ok,
            "Mounting /proc",
            "mounted a fresh procfs as PID 1 of a new PID namespace (tried)",
        ),
        Err((Stage::ProcMount, errno)) => check(
            Status::Fail,
            "Mounting /proc",
            format!("refused ({errno}): step 05 cannot work"),
        )
        .fix(if o.place.is_container() {
            "the kernel refuses a new procfs where /proc is partly hidden, as this container's \
             masked paths do: the Runs in line says how to start it"
        } else {
            "the kernel refuses a new procfs where /proc is partly hidden, as in Docker: \
             run on the host, or in a container started with --privileged"
        }),
        Err(_) => check(
            Status::Warn,
            "Mounting /proc",
            "not tried: it needs a user namespace first",
        ),
    });

    checks.push(match o.root_propagation {
        Some("shared") => check(
            Status::Ok,
            "/ propagation",
            "shared (the systemd default): fine, step 04 makes its mounts private first",
        ),
        Some(kind) => check(Status::Ok, "/ propagation", kind),
        None => check(
            Status::Warn,
            "/ propagation",
            "unknown: cannot read /proc/self/mountinfo",
        ),
    });

    checks.push(match &o.rootfs {
        Rootfs::Ready(path) => check(
            Status::Ok,
            "Root filesystem",
            format!("{} (has /bin/sh)", path.display()),
        ),
        Rootfs::Missing(path) => check(
            Status::Warn,
            "Root filesystem",
            format!("{} is not built yet (steps 04-12 need it)", path.display()),
        )
        .fix("just rootfs (or just step 4, which builds it the first time)"),
        Rootfs::Unusable(why) => check(Status::Fail, "Root filesystem", why.clone())
            .fix("just rootfs --force rebuilds it"),
    });

    checks.push(match o.missing_devices.as_slice() {
        [] => check(
            Status::Ok,
            "Host devices",
            "null, zero, full, random, urandom, tty: step 09 binds them into /dev",
        ),
        missing => check(
            Status::Warn,
            "Host devices",
            format!(
                "no /dev/{}: steps 09-10 bind the host's devices into the container",
                missing.join(", /dev/")
            ),
        )
        .fix("a normal Linux host has them: inside a container, start it with the host's /dev"),
    });

    checks.push(tun(o.tun, o.probe.uid, o.place.is_container()));

    checks.push(match kernel_version(&release) {
        Some(version) if version >= (4, 7) => check(
            Status::Ok,
            "devpts",
            "every devpts mount is a new instance (4.7+): steps 09-10 get their own ptys",
        ),
        _ => check(
            Status::Warn,
            "devpts",
            "Linux before 4.7 shares one devpts: steps 09-10 need `newinstance` support",
        )
        .fix("use a current distribution"),
    });

    checks.push(match &o.cgroups {
        Ok(bento::cgroups::Version::V2(parent)) => check(
            Status::Ok,
            "cgroups",
            format!(
                "v2, delegated ({}): bento's --memory and --pids-limit work",
                parent.display()
            ),
        ),
        Ok(bento::cgroups::Version::V1(_)) => check(
            Status::Ok,
            "cgroups",
            "v1, as root: bento's --memory and --pids-limit work",
        ),
        Err(why) => check(
            Status::Warn,
            "cgroups",
            format!("{why}: bento cannot limit memory or processes"),
        )
        .fix(bento::cgroups::FIX),
    });

    checks.push(match &o.busybox {
        Some(path) => check(Status::Ok, "Static busybox", path.display().to_string()),
        None => check(
            Status::Warn,
            "Static busybox",
            "none: the offline rootfs is made from one",
        )
        .fix("sudo apt install busybox-static (Debian, Ubuntu)"),
    });

    checks.push(match &o.presenterm {
        Some(version) => check(Status::Ok, "presenterm", version.clone()),
        None => check(
            Status::Warn,
            "presenterm",
            "not installed: only `just slides` needs it",
        )
        .fix("cargo install --locked presenterm"),
    });
    checks
}

/// Where the doctor runs and, in a container that refuses what the steps need, the one line
/// that starts it right.
fn runs_in(o: &Observations) -> Check {
    let name = "Runs in";
    let place = o.place;
    match place.container_fix() {
        _ if place == Place::Wsl1 => check(
            Status::Fail,
            name,
            "WSL1, which translates system calls and has no namespaces",
        )
        .fix("convert the distribution to WSL2, in PowerShell: wsl --set-version <distro> 2"),
        _ if place == Place::Wsl2 => check(
            Status::Ok,
            name,
            "WSL2: a real Linux kernel, everything works",
        ),
        Some(fix) if o.probe.outcome.is_err() => check(
            Status::Warn,
            name,
            format!(
                "{}, whose options keep its processes from creating namespaces or mounting /proc",
                place.name()
            ),
        )
        .fix(fix),
        Some(_) => check(
            Status::Ok,
            name,
            format!("{}, whose options allow what the steps need", place.name()),
        ),
        None if place == Place::Lima => check(
            Status::Ok,
            name,
            "a Lima VM: a Linux kernel of its own, everything works",
        ),
        None => check(Status::Ok, name, place.name()),
    }
}

/// /dev/net/tun, which rootless networking (slirp4netns, pasta) opens as the user to give a
/// container a network. Stock Debian and Ubuntu make it 0666; some VMs leave it 0600 root.
/// `device` is what is at /dev/net/tun (is a character device, mode, owner), `uid` the user
/// who must open it.
fn tun(device: Option<(bool, u32, u32)>, uid: u32, in_container: bool) -> Check {
    let name = "/dev/net/tun";
    match device {
        Some((true, mode, owner)) => {
            let usable = if uid == owner {
                mode & 0o600 == 0o600
            } else {
                mode & 0o006 == 0o006
            };
            let mode = mode & 0o7777;
            if usable {
                check(
                    Status::Ok,
                    name,
                    format!("mode {mode:04o}: uid {uid} can open it, for rootless networking"),
                )
            } else {
                check(
                    Status::Warn,
                    name,
                    format!(
                        "mode {mode:04o}, owner uid {owner}: uid {uid} cannot open it, \
                         and rootless networking (slirp4netns, pasta) must"
                    ),
                )
                .fix("scripts/setup --tun makes it 0666 until reboot, as stock Debian and Ubuntu have it")
            }
        }
        _ => check(
            Status::Warn,
            name,
            "missing: rootless networking (slirp4netns, pasta) needs it",
        )
        .fix(if in_container {
            "start the container with --device /dev/net/tun"
        } else {
            "sudo modprobe tun"
        }),
    }
}

fn user_namespaces(o: &Observations) -> Check {
    let name = "User namespaces";
    let (stage, errno) = match o.probe.outcome {
        Ok(()) => {
            return check(
                Status::Ok,
                name,
                format!(
                    "created one and mapped uid 0 to uid {} (tried in a child process)",
                    o.probe.uid
                ),
            );
        }
        Err((Stage::ProcMount, _)) => {
            return check(
                Status::Ok,
                name,
                format!("created one as uid {} (tried)", o.probe.uid),
            );
        }
        Err(failure) => failure,
    };
    let failed = check(
        Status::Fail,
        name,
        format!(
            "{} failed: {errno} (tried as uid {})",
            stage.call(),
            o.probe.uid
        ),
    );
    match o.sysctls.userns_block() {
        Some(block) => failed
            .fix(format!("cause: {}", block.why()))
            .fix(format!("fix until reboot: {}", block.fix()))
            .fix(format!("fix for good: {}", block.fix_for_good()))
            .fix(if block == UsernsBlock::AppArmor {
                "(Ubuntu 23.10+ restricts them on purpose; see the README's troubleshooting)"
            } else {
                "(this lets every user create user namespaces: that is what rootless needs)"
            }),
        None if o.place == Place::Wsl1 => failed.fix("cause: WSL1 (see the Runs in line)"),
        None if o.place.is_container() => failed.fix(
            "cause: the container's seccomp profile refuses it: \
             the Runs in line says how to start it",
        ),
        None => failed.fix(format!(
            "cause unknown: no sysctl forbids it; search for \"{errno}\" in unshare(2) and user_namespaces(7)"
        )),
    }
}

fn render(checks: &[Check]) -> String {
    let mut out = String::from("just doctor: can this machine run the Bento workshop?\n");
    for check in checks {
        let mark = match check.status {
            Status::Ok => "✅",
            Status::Warn => "⚠️",
            Status::Fail => "❌",
        };
        out.push_str(&format!("  {mark} {:<17}{}\n", check.name, check.detail));
        for fix in &check.fixes {
            out.push_str(&format!("       {fix}\n"));
        }
    }
    let failures = checks.iter().filter(|c| c.status == Status::Fail).count();
    out.push_str(&match failures {
        0 => "All set: the steps can run here. Start with `just step 0`.\n".to_string(),
        1 => "1 problem: the steps cannot run until it is fixed.\n".to_string(),
        n => format!("{n} problems: the steps cannot run until they are fixed.\n"),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_propagation_is_read_from_mountinfo() {
        let shared = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n";
        assert_eq!(propagation_of_root(shared), Some("shared"));
        let private = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";
        assert_eq!(propagation_of_root(private), Some("private"));
        let slave = "22 1 8:1 / / rw master:3 - ext4 /dev/sda1 rw\n";
        assert_eq!(propagation_of_root(slave), Some("slave"));
        assert_eq!(propagation_of_root(""), None);
    }

    #[test]
    fn tun_is_usable_when_its_mode_lets_the_user_open_it() {
        let ok = |device, uid| tun(Some(device), uid, false).status == Status::Ok;
        // Stock Debian and Ubuntu: 0666.
        assert!(ok((true, 0o20666, 0), 1000));
        // This VM's: 0600 root; fine for its owner only.
        assert!(!ok((true, 0o20600, 0), 1000));
        assert!(ok((true, 0o20600, 1000), 1000));
        // Read without write is not enough: the stack writes packets to it.
        assert!(!ok((true, 0o20644, 0), 1000));
        // A regular file is no tun device.
        assert!(!ok((false, 0o100666, 0), 1000));
        let closed = tun(Some((true, 0o20600, 0)), 65534, false);
        assert_eq!(
            closed.detail,
            "mode 0600, owner uid 0: uid 65534 cannot open it, \
             and rootless networking (slirp4netns, pasta) must"
        );
        assert_eq!(
            closed.fixes,
            ["scripts/setup --tun makes it 0666 until reboot, as stock Debian and Ubuntu have it"]
        );
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.8.0-45-generic"), Some((6, 8)));
        assert_eq!(kernel_version("4.4.0-19041-Microsoft"), Some((4, 4)));
        assert_eq!(kernel_version(""), None);
    }
}

//! `just doctor` diagnoses each host problem correctly: fed a stand-in for the host's files
//! (a directory with proc/sys/…) and an assumed outcome of its container try.

mod common;

use std::path::Path;
use std::process::Command;

use common::built;

/// A fake host: `files` are written below a temporary root.
fn host(files: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    root
}

/// A current Ubuntu-like host where everything is fine.
const UBUNTU: (&str, &str) = ("proc/sys/kernel/osrelease", "6.8.0-45-generic\n");
const SHARED_ROOT: (&str, &str) = (
    "proc/self/mountinfo",
    "29 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n",
);

struct Report {
    code: Option<i32>,
    text: String,
}

impl Report {
    fn has(&self, line: &str) -> &Self {
        assert!(
            self.text.lines().any(|l| l == line),
            "missing line {line:?} in:\n{}",
            self.text
        );
        self
    }
}

/// Runs the doctor on a fake host as uid 1000 (unless `uid` says otherwise).
fn doctor(root: &Path, probe: &str, uid: u32, rootfs: &Path) -> Report {
    let output = Command::new(built("bento-doctor"))
        .arg("--host-root")
        .arg(root)
        .args(["--assume-probe", probe, "--assume-uid", &uid.to_string()])
        .env("BENTO_ROOTFS", rootfs)
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    Report {
        code: output.status.code(),
        text: String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    }
}

fn good_rootfs() -> &'static Path {
    &common::fixture().rootfs
}

#[test]
fn a_healthy_laptop_is_all_green_but_for_missing_tools() {
    let root = host(&[UBUNTU, SHARED_ROOT]);
    let report = doctor(root.path(), "ok", 1000, good_rootfs());
    assert_eq!(report.code, Some(0), "{}", report.text);
    report
        .has("  ✅ Linux kernel     6.8.0-45-generic")
        .has("  ✅ WSL              not WSL")
        .has("  ✅ Container        not inside a container")
        .has("  ✅ Running as       uid 1000, an ordinary user")
        .has("  ✅ User namespaces  created one and mapped uid 0 to uid 1000 (tried in a child process)")
        .has("  ✅ Mounting /proc   mounted a fresh procfs as PID 1 of a new PID namespace (tried)")
        .has("  ✅ / propagation    shared (the systemd default): fine, step 04 makes its mounts private first")
        .has("  ⚠️ presenterm       not installed: only `just slides` needs it")
        .has("       cargo install --locked presenterm")
        .has("  ⚠️ Host devices     no /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty: steps 09-10 bind the host's devices into the container")
        .has("  ✅ devpts           every devpts mount is a new instance (4.7+): steps 09-10 get their own ptys")
        .has("All set: the steps can run here. Start with `just step 0`.");
}

#[test]
fn ubuntu_apparmor_restriction_is_named_with_its_sysctl() {
    let root = host(&[
        UBUNTU,
        (
            "proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "1\n",
        ),
    ]);
    let report = doctor(root.path(), "userns:EPERM", 1000, good_rootfs());
    assert_eq!(report.code, Some(1));
    report
        .has("  ❌ User namespaces  unshare(CLONE_NEWUSER) failed: EPERM: Operation not permitted (tried as uid 1000)")
        .has("       cause: AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)")
        .has("       fix until reboot: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
        .has("       fix for good: echo 'kernel.apparmor_restrict_unprivileged_userns = 0' | sudo tee /etc/sysctl.d/60-bento-userns.conf")
        .has("  ⚠️ Mounting /proc   not tried: it needs a user namespace first")
        .has("1 problem: the steps cannot run until it is fixed.");
}

#[test]
fn the_host_devices_that_step_09_binds_are_checked() {
    // The real /dev has them all; a /dev with a regular file called null has none.
    let real = host(&[UBUNTU, SHARED_ROOT]);
    std::os::unix::fs::symlink("/dev", real.path().join("dev")).unwrap();
    doctor(real.path(), "ok", 1000, good_rootfs()).has(
        "  ✅ Host devices     null, zero, full, random, urandom, tty: step 09 binds them into /dev",
    );
    let fake = host(&[UBUNTU, SHARED_ROOT, ("dev/null", "")]);
    let report = doctor(fake.path(), "ok", 1000, good_rootfs());
    assert_eq!(report.code, Some(0), "a warning: steps 00-08 still work");
    report.has(
        "       a normal Linux host has them: inside a container, start it with the host's /dev",
    );
    let old = host(&[
        ("proc/sys/kernel/osrelease", "4.4.0-210-generic\n"),
        SHARED_ROOT,
    ]);
    doctor(old.path(), "ok", 1000, good_rootfs()).has(
        "  ⚠️ devpts           Linux before 4.7 shares one devpts: steps 09-10 need `newinstance` support",
    );
}

#[test]
fn the_cgroup_version_bento_would_use_is_reported() {
    // A systemd laptop: cgroup v2 with the controllers, our session's parent delegated.
    let v2 = host(&[
        UBUNTU,
        SHARED_ROOT,
        (
            "proc/self/cgroup",
            "0::/user.slice/user-1000.slice/session-2.scope\n",
        ),
        ("sys/fs/cgroup/cgroup.controllers", "cpu io memory pids\n"),
        (
            "sys/fs/cgroup/user.slice/user-1000.slice/cgroup.controllers",
            "cpu memory pids\n",
        ),
    ]);
    doctor(v2.path(), "ok", 1000, good_rootfs()).has(&format!(
        "  ✅ cgroups          v2, delegated ({}/sys/fs/cgroup/user.slice/user-1000.slice): \
         bento's --memory and --pids-limit work",
        v2.path().display()
    ));
    // A hybrid machine like CI's: v1 memory and pids, which only root may use.
    let v1 = host(&[
        UBUNTU,
        SHARED_ROOT,
        ("proc/self/cgroup", "7:pids:/\n4:memory:/\n0::/\n"),
        ("sys/fs/cgroup/memory/tasks", ""),
        ("sys/fs/cgroup/pids/tasks", ""),
    ]);
    doctor(v1.path(), "ok", 1000, good_rootfs())
        .has("  ⚠️ cgroups          cgroup v1 is here, and only root may make v1 cgroups: bento cannot limit memory or processes")
        .has("       cgroup v2: run bento in a delegated cgroup (systemd: `systemd-run --user --scope -p Delegate=yes bento …`); cgroup v1: run bento as root");
    doctor(v1.path(), "ok", 0, good_rootfs())
        .has("  ✅ cgroups          v1, as root: bento's --memory and --pids-limit work");
}

#[test]
fn debian_sysctl_and_max_user_namespaces_are_recognised() {
    let root = host(&[UBUNTU, ("proc/sys/kernel/unprivileged_userns_clone", "0\n")]);
    doctor(root.path(), "userns:EPERM", 1000, good_rootfs())
        .has("       fix until reboot: sudo sysctl -w kernel.unprivileged_userns_clone=1");

    let root = host(&[UBUNTU, ("proc/sys/user/max_user_namespaces", "0\n")]);
    let report = doctor(root.path(), "userns:ENOSPC", 1000, good_rootfs());
    assert_eq!(report.code, Some(1));
    report
        .has("  ❌ User namespaces  unshare(CLONE_NEWUSER) failed: ENOSPC: No space left on device (tried as uid 1000)")
        .has("       fix until reboot: sudo sysctl -w user.max_user_namespaces=15000");
}

#[test]
fn wsl1_fails_and_wsl2_is_fine() {
    let root = host(&[("proc/sys/kernel/osrelease", "4.4.0-19041-Microsoft\n")]);
    let report = doctor(root.path(), "userns:EINVAL", 1000, good_rootfs());
    assert_eq!(report.code, Some(1));
    report
        .has("  ❌ WSL              WSL1 translates system calls and has no namespaces")
        .has("       convert the distribution to WSL2, in PowerShell: wsl --set-version <distro> 2")
        .has("       cause: WSL1 (see the WSL line)");

    let root = host(&[(
        "proc/sys/kernel/osrelease",
        "5.15.153.1-microsoft-standard-WSL2\n",
    )]);
    let report = doctor(root.path(), "ok", 1000, good_rootfs());
    assert_eq!(report.code, Some(0), "{}", report.text);
    report.has("  ✅ WSL              WSL2: a real Linux kernel, everything works");
}

#[test]
fn inside_docker_the_seccomp_profile_is_blamed() {
    let root = host(&[UBUNTU, (".dockerenv", "")]);
    let report = doctor(root.path(), "userns:EPERM", 0, good_rootfs());
    assert_eq!(report.code, Some(1));
    report
        .has("  ⚠️ Container        inside Docker, which keeps its processes from creating namespaces")
        .has("       cause: the container's seccomp profile blocks unshare: run on the host, or start the container with --privileged");

    let root = host(&[UBUNTU, ("run/.containerenv", "")]);
    let report = doctor(root.path(), "proc:EPERM", 1000, good_rootfs());
    assert_eq!(report.code, Some(1));
    report
        .has("  ✅ User namespaces  created one as uid 1000 (tried)")
        .has("  ❌ Mounting /proc   refused (EPERM: Operation not permitted): step 05 cannot work");
}

#[test]
fn old_kernels_and_root_are_flagged() {
    let root = host(&[("proc/sys/kernel/osrelease", "5.4.0-150-generic\n")]);
    let report = doctor(root.path(), "ok", 0, good_rootfs());
    assert_eq!(report.code, Some(0), "warnings only: {}", report.text);
    report
        .has("  ⚠️ Linux kernel     5.4.0-150-generic: steps 00-05 work; rootless overlayfs needs 5.11+")
        .has("  ⚠️ Running as       root: the steps are meant to run as an ordinary user (rootless)");

    let root = host(&[("proc/sys/kernel/osrelease", "3.2.0-4-amd64\n")]);
    let report = doctor(root.path(), "userns:EINVAL", 1000, good_rootfs());
    assert_eq!(report.code, Some(1));
    report.has(
        "  ❌ Linux kernel     3.2.0-4-amd64: too old for unprivileged user namespaces (3.8+)",
    );
}

#[test]
fn a_missing_or_broken_rootfs_is_reported() {
    let root = host(&[UBUNTU]);
    let report = doctor(root.path(), "ok", 1000, Path::new("/nonexistent/rootfs"));
    assert_eq!(
        report.code,
        Some(0),
        "just step 4 builds it: {}",
        report.text
    );
    report
        .has("  ⚠️ Root filesystem  /nonexistent/rootfs is not built yet (steps 04-05 need it)")
        .has("       just rootfs (or just step 4, which builds it the first time)");

    let empty = tempfile::tempdir().unwrap();
    let report = doctor(root.path(), "ok", 1000, empty.path());
    assert_eq!(report.code, Some(1));
    assert!(
        report
            .text
            .contains("  ❌ Root filesystem  the root filesystem ")
            && report.text.contains(" has no /bin/sh"),
        "{}",
        report.text
    );
}

#[test]
fn on_this_machine_the_doctor_is_green() {
    // The real thing: real /proc, a real try of a user namespace and a procfs mount.
    let output = Command::new(built("bento-doctor"))
        .env("BENTO_ROOTFS", good_rootfs())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("  ✅ User namespaces  created one and mapped uid 0"),
        "{text}"
    );
    assert!(
        text.contains("  ✅ Mounting /proc   mounted a fresh procfs"),
        "{text}"
    );
}

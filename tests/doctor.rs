//! `just doctor` diagnoses each host problem correctly: fed a stand-in for the host's files
//! (a directory with proc/sys/…) and an assumed outcome of its container try.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{built, can_run_as_real_root};

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
    doctor_with(root, probe, uid, rootfs, &[])
}

/// The same, with environment variables (Codespaces and VS Code say where we are with them).
fn doctor_with(root: &Path, probe: &str, uid: u32, rootfs: &Path, env: &[(&str, &str)]) -> Report {
    let output = Command::new(built("bento-doctor"))
        .arg("--host-root")
        .arg(root)
        .args(["--assume-probe", probe, "--assume-uid", &uid.to_string()])
        .env("BENTO_ROOTFS", rootfs)
        .env("PATH", "/nonexistent")
        // The test's own place must not leak into the fake host's.
        .env_remove("CODESPACES")
        .env_remove("REMOTE_CONTAINERS")
        .envs(env.iter().copied())
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
        .has("  ✅ Runs in          bare Linux (no Lima, WSL or container found)")
        .has("  ✅ Running as       uid 1000, an ordinary user")
        .has("  ✅ User namespaces  created one and mapped uid 0 to uid 1000 (tried in a child process)")
        .has("  ✅ Mounting /proc   mounted a fresh procfs as PID 1 of a new PID namespace (tried)")
        .has("  ✅ / propagation    shared (the systemd default): fine, step 04 makes its mounts private first")
        .has("  ⚠️ presenterm       not installed: only `just slides` needs it")
        .has("       cargo install --locked presenterm")
        .has("  ⚠️ Host devices     no /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty: steps 09-10 bind the host's devices into the container")
        .has("  ✅ devpts           every devpts mount is a new instance (4.7+): steps 09-10 get their own ptys")
        .has("  ⚠️ /dev/net/tun     missing: rootless networking (slirp4netns, pasta) needs it")
        .has("       sudo modprobe tun")
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
        .has("  ❌ Runs in          WSL1, which translates system calls and has no namespaces")
        .has("       convert the distribution to WSL2, in PowerShell: wsl --set-version <distro> 2")
        .has("       cause: WSL1 (see the Runs in line)");

    let root = host(&[(
        "proc/sys/kernel/osrelease",
        "5.15.153.1-microsoft-standard-WSL2\n",
    )]);
    let report = doctor(root.path(), "ok", 1000, good_rootfs());
    assert_eq!(report.code, Some(0), "{}", report.text);
    report.has("  ✅ Runs in          WSL2: a real Linux kernel, everything works");
}

#[test]
fn inside_docker_the_seccomp_profile_is_blamed_and_the_fix_is_one_line() {
    let root = host(&[UBUNTU, (".dockerenv", "")]);
    let report = doctor(root.path(), "userns:EPERM", 0, good_rootfs());
    assert_eq!(report.code, Some(1));
    report
        .has("  ⚠️ Runs in          a Docker container, whose options keep its processes from creating namespaces or mounting /proc")
        .has("       fix: docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined …")
        .has("       cause: the container's seccomp profile refuses it: the Runs in line says how to start it");

    let root = host(&[UBUNTU, ("run/.containerenv", "")]);
    let report = doctor(root.path(), "proc:EPERM", 1000, good_rootfs());
    assert_eq!(report.code, Some(1));
    report
        .has("  ⚠️ Runs in          a podman container, whose options keep its processes from creating namespaces or mounting /proc")
        .has("       fix: podman run --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined …")
        .has("  ✅ User namespaces  created one as uid 1000 (tried)")
        .has("  ❌ Mounting /proc   refused (EPERM: Operation not permitted): step 05 cannot work")
        .has("       the kernel refuses a new procfs where /proc is partly hidden, as this container's masked paths do: the Runs in line says how to start it");

    // A container that allows it all is only named.
    let root = host(&[UBUNTU, (".dockerenv", "")]);
    doctor(root.path(), "ok", 1000, good_rootfs())
        .has("  ✅ Runs in          a Docker container, whose options allow what the steps need");
}

#[test]
fn lima_and_dev_containers_are_recognised() {
    // Lima's guest keeps its cidata disk mounted, and its guest agent installed.
    for marker in ["mnt/lima-cidata/lima.env", "usr/local/bin/lima-guestagent"] {
        let lima = host(&[UBUNTU, SHARED_ROOT, (marker, "")]);
        doctor(lima.path(), "ok", 501, good_rootfs())
            .has("  ✅ Runs in          a Lima VM: a Linux kernel of its own, everything works");
    }

    // The dev containers CLI (VS Code's, Codespaces') leaves its markers in /var/devcontainer.
    let files = [
        UBUNTU,
        (".dockerenv", ""),
        ("var/devcontainer/.patchEtcProfileMarker", ""),
    ];
    let dev = host(&files);
    doctor(dev.path(), "ok", 1000, good_rootfs())
        .has("  ✅ Runs in          a dev container, whose options allow what the steps need");
    // One started without this repository's devcontainer.json: rebuild it with it.
    let report = doctor(dev.path(), "userns:EPERM", 1000, good_rootfs());
    assert_eq!(report.code, Some(1));
    report
        .has("  ⚠️ Runs in          a dev container, whose options keep its processes from creating namespaces or mounting /proc")
        .has("       fix: rebuild the container from this repository's .devcontainer/devcontainer.json (its securityOpt allows namespaces and a fresh /proc)");

    // Codespaces says so in CODESPACES=true; VS Code's terminals in REMOTE_CONTAINERS=true.
    let docker = host(&[UBUNTU, (".dockerenv", "")]);
    doctor_with(docker.path(), "ok", 1000, good_rootfs(), &[("CODESPACES", "true")]).has(
        "  ✅ Runs in          a GitHub Codespace (a dev container), whose options allow what the steps need",
    );
    doctor_with(
        docker.path(),
        "ok",
        1000,
        good_rootfs(),
        &[("REMOTE_CONTAINERS", "true")],
    )
    .has("  ✅ Runs in          a dev container, whose options allow what the steps need");
}

#[test]
fn dev_net_tun_is_checked_for_rootless_networking() {
    // /dev/null stands in for a tun device opened to everyone (0666, as on stock Debian).
    let open = host(&[UBUNTU]);
    std::fs::create_dir_all(open.path().join("dev/net")).unwrap();
    std::os::unix::fs::symlink("/dev/null", open.path().join("dev/net/tun")).unwrap();
    doctor(open.path(), "ok", 1000, good_rootfs())
        .has("  ✅ /dev/net/tun     mode 0666: uid 1000 can open it, for rootless networking");
    // In a container without the device: the one option that passes it in.
    let container = host(&[UBUNTU, ("run/.containerenv", "")]);
    let report = doctor(container.path(), "ok", 1000, good_rootfs());
    assert_eq!(report.code, Some(0), "a warning: {}", report.text);
    report
        .has("  ⚠️ /dev/net/tun     missing: rootless networking (slirp4netns, pasta) needs it")
        .has("       start the container with --device /dev/net/tun");
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
        .has("  ⚠️ Root filesystem  /nonexistent/rootfs is not built yet (steps 04-12 need it)")
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

/// A private podman (its own storage under a temporary directory, vfs, cgroupfs as this
/// machine has no systemd), removed with whatever it left when the test ends.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    /// Podman as root, or None (skipped loudly; CI has both: `scripts/setup --extras`).
    fn new() -> Option<Podman> {
        if !can_run_as_real_root() {
            return None;
        }
        if Command::new("podman").arg("--version").output().is_err() {
            common::skipped("podman is not installed (scripts/setup --extras)");
            return None;
        }
        Some(Podman {
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        common::podman_in(self.dir.path())
            .args(args)
            .output()
            .expect("run podman")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af", "-t", "0"]);
        common::unmount_below(self.dir.path());
        let _ = plumbing::remove_tree(self.dir.path());
    }
}

/// The doctor in a real container: started as podman starts one by default, it names the
/// container and prints the one line that fixes it; started with that line's options, it
/// is green. (The image is empty: the host's /usr, read-only, holds the debug doctor's
/// libraries.)
#[test]
fn in_a_real_container_the_fix_line_fixes_it() {
    let Some(podman) = Podman::new() else { return };
    let image = podman.path("image");
    for dir in ["usr", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(image.join(dir)).unwrap();
    }
    let mut volumes = vec!["/usr:/usr:ro".to_string()];
    for dir in ["bin", "lib", "lib64"] {
        let host = Path::new("/").join(dir);
        match std::fs::read_link(&host) {
            // Merged /usr (Debian 12, Ubuntu 22.04+): the same link in the image.
            Ok(target) => std::os::unix::fs::symlink(target, image.join(dir)).unwrap(),
            Err(_) if host.is_dir() => volumes.push(format!("/{dir}:/{dir}:ro")),
            Err(_) => {}
        }
    }
    let tarball = podman.path("image.tar");
    let packed = Command::new("tar")
        .arg("-C")
        .arg(&image)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(packed.success());
    let imported = podman.run(&["import", "--quiet", tarball.to_str().unwrap(), "empty"]);
    assert!(imported.status.success(), "{imported:?}");

    let doctor_volume = format!("{}:/doctor:ro", built("bento-doctor").display());
    let doctor_in = |options: &[&str]| -> Report {
        let mut args = vec!["run", "--rm", "--network", "none"];
        // This VM's hard limit on open files is below podman's default.
        args.extend([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ]);
        for volume in &volumes {
            args.extend(["-v", volume.as_str()]);
        }
        args.extend(["-v", doctor_volume.as_str()]);
        args.extend(["-e", "BENTO_ROOTFS=/nonexistent"]);
        args.extend(options);
        args.extend(["empty", "/doctor"]);
        let output = podman.run(&args);
        Report {
            code: output.status.code(),
            text: String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        }
    };

    let refused = doctor_in(&[]);
    assert_eq!(refused.code, Some(1), "{}", refused.text);
    refused.has(
        "  ⚠️ Runs in          a podman container, whose options keep its processes from creating namespaces or mounting /proc",
    );
    let fix = refused
        .text
        .lines()
        .find_map(|line| line.strip_prefix("       fix: podman run "))
        .and_then(|fix| fix.strip_suffix(" …"))
        .unwrap_or_else(|| panic!("no fix line:\n{}", refused.text));

    let fixed = doctor_in(&fix.split_whitespace().collect::<Vec<_>>());
    assert_eq!(fixed.code, Some(0), "{}", fixed.text);
    fixed
        .has("  ✅ Runs in          a podman container, whose options allow what the steps need")
        .has(
            "  ✅ Mounting /proc   mounted a fresh procfs as PID 1 of a new PID namespace (tried)",
        );
    assert!(
        fixed
            .text
            .contains("  ✅ User namespaces  created one and mapped uid 0"),
        "{}",
        fixed.text
    );
}

//! Bento as an OCI runtime: Debian's podman (with conmon) drives it with `--runtime`, and
//! `runc spec` bundles run with `bento run --bundle`. As root (what the issue asks; podman
//! rootless needs /etc/subuid), with `--cgroup-manager cgroupfs` (no systemd here) and
//! ulimits under this machine's hard limit.
//!
//! podman runs as the README says: `podman --runtime PATH-TO-BENTO`, no wrapper and no
//! flags for bento, which keeps its state where it always does as root (`/run/bento`,
//! whatever HOME podman and conmon pass: they pass different ones). Every test has its own
//! podman storage (podman's `--root`, `--runroot`, vfs: podman's own flags) and a busybox
//! image imported from a rootfs the test builds. Bento's state of this test's containers
//! is told from others' by their bundles, which podman keeps in the test's storage. The
//! guard removes every container, kills what is left of ours (conmon, PID 1s), unmounts
//! what podman mounted under the test's directory, and removes it, even when the test fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::terminal::shows_on_a_terminal;
use common::{build_rootfs, built, can_run_as_real_root, skipped, static_binary};

/// What podman needs here: cgroupfs (no systemd), and limits under the hard nofile of 20000.
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// A private podman with bento as its runtime, and a busybox image named `bbx`.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let podman = Podman { dir };
        let rootfs = podman.path("rootfs");
        build_rootfs(&rootfs);
        // Step 11's probe of the calls its filter refuses, where this machine links it.
        if let Some(syscalls) = static_binary("syscalls") {
            std::fs::copy(syscalls, rootfs.join("bin/syscalls")).unwrap();
        }
        let tarball = podman.path("rootfs.tar");
        let packed = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .status()
            .expect("run tar");
        assert!(packed.success());
        podman.ok(&["import", "--quiet", tarball.to_str().unwrap(), "bbx"]);
        podman
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `podman GLOBAL… ARGS`, with bento as the runtime.
    fn command(&self, args: &[&str]) -> Command {
        self.command_with(&built("bento"), args)
    }

    /// `podman GLOBAL… ARGS`, with `runtime` (bento, or runc to compare).
    fn command_with(&self, runtime: &Path, args: &[&str]) -> Command {
        let mut command = common::podman_in(self.dir.path());
        command
            .arg("--runtime")
            .arg(runtime)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run podman")
    }

    /// Runs, asserts the exit status, returns stdout.
    fn code(&self, expected: i32, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(expected),
            "podman {}\n--- stdout ---\n{}--- stderr ---\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.code(0, args)
    }

    /// `podman run --rm [--network none] ULIMITS OPTIONS bbx COMMAND`.
    fn run_args<'a>(options: &[&'a str], command: &[&'a str], network: bool) -> Vec<&'a str> {
        let mut args = vec!["run", "--rm"];
        if !network {
            args.extend(["--network", "none"]);
        }
        args.extend(ULIMITS);
        args.extend(options);
        args.push("bbx");
        args.extend(command);
        args
    }

    /// Processes whose command line names this test's directory: conmon, bento, PID 1s
    /// still blocked in `bento create`.
    fn our_processes(&self) -> Vec<i32> {
        let needle = self.dir.path().to_string_lossy().into_owned();
        let me = std::process::id() as i32;
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != me)
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
            })
            .collect()
    }

    /// The containers of this test that bento still has state for: in bento's state
    /// directory as root, those whose bundle is in this test's podman storage.
    fn bento_containers(&self) -> Vec<String> {
        let ours = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_dir("/run/bento/containers")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                std::fs::read(entry.path().join("state.json")).is_ok_and(|state| {
                    serde_json::from_slice::<serde_json::Value>(&state).is_ok_and(|state| {
                        state["bundle"]
                            .as_str()
                            .is_some_and(|b| b.starts_with(&ours))
                    })
                })
            })
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Waits (at most 10 s) until none of our processes is left, or says which are.
    fn assert_nothing_left(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.our_processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(self.our_processes(), Vec::<i32>::new(), "processes left");
        assert_eq!(self.bento_containers(), Vec::<String>::new(), "state left");
        assert_eq!(self.ok(&["ps", "-aq"]), "", "containers left");
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af", "-t", "0"]);
        for pid in self.our_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // podman mounts each container's /dev/shm under its storage: unmount what is left.
        common::unmount_below(self.dir.path());
        std::thread::sleep(Duration::from_millis(50));
        let _ = plumbing::remove_tree(self.dir.path());
    }
}

/// Podman is there (`.ci/run` installs it), and we are root; otherwise skipped, loudly.
fn podman() -> Option<Podman> {
    if !can_run_as_real_root() {
        return None;
    }
    let found = Command::new("podman").arg("--version").output();
    assert!(
        found.is_ok() || std::env::var_os("CI").is_none(),
        "CI must have podman (.ci/run installs it)"
    );
    found.ok().map(|_| Podman::new())
}

#[test]
fn podman_runs_a_command_and_returns_its_status() {
    let Some(podman) = podman() else { return };
    assert_eq!(
        podman.ok(&Podman::run_args(&[], &["echo", "hi"], false)),
        "hi\n"
    );
    podman.code(3, &Podman::run_args(&[], &["sh", "-c", "exit 3"], false));
    podman.code(127, &Podman::run_args(&[], &["no-such-command"], false));
    let out = podman.ok(&Podman::run_args(
        &[
            "--hostname",
            "box",
            "-e",
            "GREETING=hello",
            "-w",
            "/etc",
            "--user",
            "1000:1000",
        ],
        &[
            "sh",
            "-c",
            "hostname; echo $GREETING; pwd; id -u; id -g; grep CapEff /proc/self/status; ulimit -n",
        ],
        false,
    ));
    assert_eq!(
        out,
        "box\nhello\n/etc\n1000\n1000\nCapEff:\t0000000000000000\n1024\n"
    );
    // As root: podman's short list of capabilities, not the host's root's.
    let caps = podman.ok(&Podman::run_args(
        &[],
        &["grep", "CapBnd", "/proc/self/status"],
        false,
    ));
    assert_eq!(caps, "CapBnd:\t00000000800405fb\n", "podman's default set");
    // Masked and read-only paths, as podman asks.
    let out = podman.ok(&Podman::run_args(
        &[],
        &[
            "sh",
            "-c",
            "wc -c < /proc/timer_list; touch /proc/acpi/x || echo masked; echo x > /proc/sys/kernel/domainname || echo read-only",
        ],
        false,
    ));
    assert_eq!(out, "0\nmasked\nread-only\n");
    podman.assert_nothing_left();
}

#[test]
fn podman_execs_into_stops_and_removes_a_detached_container() {
    let Some(podman) = podman() else { return };
    let mut args = vec!["run", "-d", "--name", "box", "--network", "none"];
    args.extend(ULIMITS);
    args.extend(["bbx", "sleep", "1000"]);
    podman.ok(&args);
    let ps = podman.ok(&["exec", "box", "ps", "-o", "pid,args"]);
    assert!(
        ps.lines().any(|line| line.trim() == "1 sleep 1000"),
        "PID 1 is the command:\n{ps}"
    );
    podman.code(5, &["exec", "box", "sh", "-c", "exit 5"]);
    assert_eq!(
        podman.ok(&[
            "exec",
            "-w",
            "/bin",
            "-e",
            "K=v",
            "box",
            "sh",
            "-c",
            "pwd; echo $K"
        ]),
        "/bin\nv\n"
    );
    // sleep ignores SIGTERM as PID 1: podman sends `kill ID 15`, then `kill ID 9`.
    podman.ok(&["stop", "-t", "1", "box"]);
    podman.ok(&["rm", "box"]);
    podman.assert_nothing_left();
}

#[test]
fn podman_run_t_and_exec_t_get_the_containers_own_terminal() {
    let Some(podman) = podman() else { return };
    let run = podman.command(&Podman::run_args(&["-t"], &["tty"], false));
    assert_eq!(shows_on_a_terminal(run, "/dev/pts/0"), Some(0));

    let mut args = vec!["run", "-d", "--name", "box", "--network", "none"];
    args.extend(ULIMITS);
    args.extend(["bbx", "sleep", "1000"]);
    podman.ok(&args);
    let exec = podman.command(&["exec", "-t", "box", "tty"]);
    assert_eq!(shows_on_a_terminal(exec, "/dev/pts/0"), Some(0));
    podman.ok(&["rm", "-f", "-t", "0", "box"]);
    podman.assert_nothing_left();
}

#[test]
fn podman_gives_its_network_namespace_and_bento_joins_it() {
    let Some(podman) = podman() else { return };
    // Only look: eth0 is there with an address (no traffic is sent to it).
    let out = podman.ok(&Podman::run_args(
        &[],
        &["ip", "-o", "-4", "addr", "show", "eth0"],
        true,
    ));
    assert!(out.contains("eth0") && out.contains("inet "), "{out}");
    podman.assert_nothing_left();
}

#[test]
fn a_runc_spec_bundle_runs_as_with_runc_run() {
    if !can_run_as_real_root() || Command::new("runc").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI must have runc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    build_rootfs(&bundle.join("rootfs"));
    let spec = Command::new("runc")
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .expect("runc spec");
    assert!(spec.success());
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] =
        serde_json::json!(["sh", "-c", "hostname; id -u; ls /dev/pts; exit 4"]);
    std::fs::write(&path, config.to_string()).unwrap();
    let state = dir.path().join("state");
    let bento = |args: &[&str]| {
        Command::new(built("bento"))
            .arg("--root")
            .arg(&state)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run bento")
    };
    let output = bento(&["run", "--bundle", bundle.to_str().unwrap(), "spec-test"]);
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "runc\n0\nptmx\n",
        "runc spec's hostname, root, a devpts of its own"
    );
    // Like `runc run`, it removes the container when it ends.
    assert!(
        std::fs::read_dir(&state).map_or(true, |mut entries| entries.next().is_none()),
        "nothing left"
    );
    // Its default terminal: true without a terminal is refused, as runc refuses it.
    config["process"]["terminal"] = true.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let output = bento(&["run", "--bundle", bundle.to_str().unwrap(), "spec-tty"]);
    assert_eq!(output.status.code(), Some(11));
}

/// One state directory as root, whatever the environment: conmon calls `create` with
/// HOME=/root, podman calls `start` and `delete` with no HOME, and `sudo bento` and `sudo -i
/// bento` differ in HOME and XDG_RUNTIME_DIR; all must find the same container.
#[test]
fn as_root_every_environment_finds_the_same_containers() {
    if !can_run_as_real_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    build_rootfs(&bundle.join("rootfs"));
    assert!(
        Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .expect("runc spec (CI installs runc)")
            .success()
    );
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let id = format!("env-test-{}", std::process::id());
    // PID 1 keeps what `create` was given: no pipe to wait on, then.
    let bento = |env: &[(&str, &str)], args: &[&str]| {
        let out = dir.path().join("out");
        let mut command = Command::new(built("bento"));
        command
            .env_clear()
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null());
        let status = command.status().expect("run bento");
        (status, std::fs::read_to_string(&out).unwrap_or_default())
    };
    // Even when an assertion fails: no container left in root's state directory.
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = Command::new(built("bento"))
                .args(["delete", "--force", &self.0])
                .output();
        }
    }
    let _remove = Remove(id.clone());
    let create = bento(
        &[
            ("HOME", "/root"),
            ("XDG_RUNTIME_DIR", dir.path().to_str().unwrap()),
        ],
        &["create", "--bundle", bundle.to_str().unwrap(), &id],
    );
    let started = bento(&[], &["start", &id]);
    let listed = bento(&[("HOME", "/nonexistent")], &["status", "--all"]);
    let deleted = bento(&[("XDG_DATA_HOME", "/tmp")], &["delete", "--force", &id]);
    assert!(create.0.success(), "create");
    assert!(
        started.0.success(),
        "start with no HOME found the container"
    );
    assert!(listed.1.contains(&id), "status --all: {}", listed.1);
    assert!(deleted.0.success(), "delete found it");
    assert!(!Path::new("/run/bento/containers").join(&id).exists());
}

/// The caller's descriptors do not reach a podman container either (CVE-2024-21626's
/// class): podman and conmon pass theirs on to the runtime, and bento closes every one past
/// 2 before the exec, in PID 1 and in `exec`.
#[test]
fn through_podman_no_descriptor_of_the_caller_reaches_the_container() {
    let Some(podman) = podman() else { return };
    let secrets = podman.path("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("shadow"), "root:secret\n").unwrap();
    let with_fd_7 = |command: &mut Command| {
        let dir = std::ffi::CString::new(secrets.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: only async-signal-safe calls (open, dup2, close) between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(command, move || {
                let fd = libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                if fd < 0 || libc::dup2(fd, 7) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
    };
    // What PID 1 has open besides 0-2 (ls's own directory is 3), and the secret.
    let look = [
        "sh",
        "-c",
        "ls /proc/self/fd; cat /proc/self/fd/7/shadow 2>&1",
    ];
    let mut run = podman.command(&Podman::run_args(&[], &look, false));
    with_fd_7(&mut run);
    let out = String::from_utf8_lossy(&run.output().unwrap().stdout).into_owned();
    assert!(!out.contains("secret"), "run: {out}");
    assert!(only_the_standard_ones(&out), "run: {out}");

    let mut args = vec!["run", "-d", "--name", "box", "--network", "none"];
    args.extend(ULIMITS);
    args.extend(["bbx", "sleep", "1000"]);
    podman.ok(&args);
    let mut exec = podman.command(&[&["exec", "box"][..], &look].concat());
    with_fd_7(&mut exec);
    let out = String::from_utf8_lossy(&exec.output().unwrap().stdout).into_owned();
    assert!(!out.contains("secret"), "exec: {out}");
    assert!(only_the_standard_ones(&out), "exec: {out}");
    podman.ok(&["rm", "-f", "-t", "0", "box"]);
    podman.assert_nothing_left();
}

/// `ls /proc/self/fd` listed 0, 1, 2 and ls's own directory (3), nothing else.
fn only_the_standard_ones(listing: &str) -> bool {
    listing
        .lines()
        .take_while(|line| line.trim().parse::<u32>().is_ok())
        .all(|fd| ["0", "1", "2", "3"].contains(&fd.trim()))
}

/// Podman writes its default seccomp profile into every config.json: with bento as with
/// runc, it is in force (a runtime that dropped it would run the container with no filter,
/// and podman's user would never know). Step 11's probe makes each call step 11 refuses:
/// both runtimes get the very same answers from the kernel.
#[test]
fn podmans_seccomp_profile_is_in_force_as_with_runc() {
    let Some(podman) = podman() else { return };
    if static_binary("syscalls").is_none() {
        skipped("step 11's probe must be static, and this machine cannot link it");
        return;
    }
    let args = Podman::run_args(
        &[],
        &["sh", "-c", "grep Seccomp: /proc/self/status; /bin/syscalls"],
        false,
    );
    let with_bento = podman.ok(&args);
    let runc = podman
        .command_with(Path::new("runc"), &args)
        .output()
        .expect("run podman with runc");
    assert!(runc.status.success(), "{runc:?}");
    assert_eq!(with_bento, String::from_utf8_lossy(&runc.stdout));
    assert!(with_bento.starts_with("Seccomp:\t2\n"), "{with_bento}");
    // Calls podman's profile does not list get its default answer, ENOSYS: only a filter
    // says that (without one, the kernel looks at the arguments: EFAULT, EINVAL).
    for call in ["add_key", "request_key"] {
        assert!(
            with_bento
                .lines()
                .any(|line| line.starts_with(call) && line.ends_with("ENOSYS")),
            "{call}: {with_bento}"
        );
    }
    podman.assert_nothing_left();
}

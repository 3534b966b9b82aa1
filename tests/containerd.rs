//! Bento under containerd, the way Kubernetes drives a runtime: containerd's
//! containerd-shim-runc-v2 calls bento exactly as it calls runc (`ctr run --runc-binary`,
//! what a RuntimeClass's `BinaryName` does). As root, with Debian's containerd.
//!
//! The test starts a containerd of its own (a private config: its own root, state and
//! socket, the CRI plugin off), imports a busybox image it builds, and checks the calls a
//! kubelet's containers make: run and the exit status, `run -d`, `task exec`, `task ps`,
//! pause and resume, kill, `--memory-limit` enforced and visible in `task metrics`, and no
//! cgroup left after `task rm`. The guard stops containerd and its shims by pid and
//! unmounts what they mounted under the test's directory, even when the test fails.

mod common;
mod fixtures;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{SYSTEM_PATH, built, can_run_as_real_root, eventually, skipped};

/// A containerd of the test's own.
struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Containerd {
    fn start() -> Option<Containerd> {
        if !can_run_as_real_root() {
            return None;
        }
        if Command::new("containerd")
            .arg("--version")
            .output()
            .is_err()
        {
            skipped("containerd is not installed (scripts/setup --extras installs it)");
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = |name: &str| dir.path().join(name);
        let config = format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}\"\n[debug]\n  address = \"\"\n\
             [metrics]\n  address = \"\"\n",
            path("root").display(),
            path("state").display(),
            path("sock").display(),
            path("sock.ttrpc").display(),
        );
        std::fs::write(path("config.toml"), config).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(path("config.toml"))
            .env("PATH", SYSTEM_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path("containerd.log")).unwrap())
            .spawn()
            .expect("start containerd");
        let log = path("containerd.log");
        let containerd = Containerd { dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(20);
        while containerd.ctr(&["version"]).status.code() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // A busybox image with what the checks use.
        let applets = ["sh", "sleep", "tail", "cat", "grep", "echo", "true"];
        let layer = fixtures::busybox_layer_with(&applets, &[]);
        let archive = containerd.path("busybox.tar");
        fixtures::docker_archive(&archive, &[layer], true);
        containerd.ok(&["image", "import", archive.to_str().unwrap()]);
        Some(containerd)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `ctr -a SOCK ARGS`.
    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("-a")
            .arg(self.path("sock"))
            .args(args)
            .env("PATH", SYSTEM_PATH)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    fn code(&self, expected: i32, args: &[&str]) -> String {
        let output = self.ctr(args);
        assert_eq!(
            output.status.code(),
            Some(expected),
            "ctr {}\n--- stdout ---\n{}--- stderr ---\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.code(0, args)
    }

    /// `ctr run --runc-binary BENTO [OPTIONS] IMAGE ID COMMAND…`: the shim calls bento.
    fn run(&self, options: &[&str], id: &str, command: &[&str]) -> Vec<String> {
        let bento = built("bento").to_string_lossy().into_owned();
        let mut args: Vec<String> = vec!["run".into(), "--runc-binary".into(), bento];
        args.extend(options.iter().map(|s| s.to_string()));
        args.push("docker.io/library/busybox:latest".into());
        args.push(id.into());
        args.extend(command.iter().map(|s| s.to_string()));
        args
    }

    /// The pid of task `id` (`ctr task ls`).
    fn task_pid(&self, id: &str) -> i32 {
        let listed = self.ok(&["task", "ls"]);
        listed
            .lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next() == Some(id)).then(|| fields.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no task {id}:\n{listed}"))
    }

    /// Every process whose command line names this test's directory (the shims).
    fn shims(&self) -> Vec<i32> {
        let needle = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
            })
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in ["exits", "box", "oom"] {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
            let _ = self.ctr(&["task", "rm", "-f", id]);
            let _ = self.ctr(&["container", "rm", id]);
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        for pid in self.shims() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        common::unmount_below(self.dir.path());
        let _ = plumbing::remove_tree(self.dir.path());
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

/// The cgroup directories named after `id` (containerd's cgroupsPath is /NAMESPACE/ID).
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|hierarchy| hierarchy.path().join("default").join(id))
        .filter(|dir| dir.is_dir())
        .collect()
}

#[test]
fn containerds_shim_drives_bento_as_kubernetes_would() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let code = |options: &[&str], id: &str, command: &[&str]| {
        let args = containerd.run(options, id, command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        containerd.ctr(&args).status.code()
    };
    // The command's exit status comes back through the shim.
    assert_eq!(code(&["--rm"], "exits", &["sh", "-c", "exit 3"]), Some(3));

    // Detached, with its output in a file: exec, ps, pause and resume, metrics, kill.
    let log = containerd.path("box.log");
    let uri = format!("file://{}", log.display());
    let options = ["-d", "--log-uri", &uri, "--memory-limit", "33554432"];
    let ticking = ["sh", "-c", "while true; do echo tick; sleep 0.05; done"];
    assert_eq!(code(&options, "box", &ticking), Some(0));
    eventually("the first ticks", || lines(&log) >= 2);
    let pid = containerd.task_pid("box");
    // exec joins the container: its cgroup is containerd's cgroupsPath, /NAMESPACE/ID.
    let cgroup = containerd.ok(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "box",
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(
        cgroup
            .lines()
            .any(|line| line.contains(":memory:") && line.ends_with(":/default/box")),
        "{cgroup}"
    );
    let ps = containerd.ok(&["task", "ps", "box"]);
    assert!(ps.contains(&pid.to_string()), "task ps: {ps}");
    containerd.ok(&["task", "pause", "box"]);
    assert!(containerd.ok(&["task", "ls"]).contains("PAUSED"));
    let paused_at = lines(&log);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&log), paused_at, "the container ticked while paused");
    containerd.ok(&["task", "resume", "box"]);
    eventually("ticks again after resume", || lines(&log) > paused_at);
    let metrics = containerd.ok(&["task", "metrics", "box"]);
    assert!(
        metrics.contains("memory.limit_in_bytes") && metrics.contains("33554432"),
        "task metrics: {metrics}"
    );
    assert!(!cgroups_of("box").is_empty(), "box has no cgroup");
    containerd.ok(&["task", "kill", "-s", "SIGKILL", "box"]);
    eventually("box to stop", || {
        !containerd.ok(&["task", "ls"]).contains("RUNNING")
    });
    containerd.ok(&["task", "rm", "box"]);
    containerd.ok(&["container", "rm", "box"]);
    assert_eq!(
        cgroups_of("box"),
        Vec::<PathBuf>::new(),
        "cgroup left after task rm"
    );

    // Past its memory limit, the kernel's OOM killer ends PID 1: 137.
    let oom = ["tail", "-c", "100000000", "/dev/zero"];
    assert_eq!(
        code(&["--rm", "--memory-limit", "33554432"], "oom", &oom),
        Some(137)
    );
    assert_eq!(cgroups_of("oom"), Vec::<PathBuf>::new(), "cgroup left");
}

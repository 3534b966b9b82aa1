//! Bento, the capstone runtime: every command's lifecycle, isolation, the supervisor,
//! concurrency and every refusal, run rootless (as uid 65534 when the suite runs as root)
//! on images the tests build: a docker-archive, an OCI layout, and a registry played by
//! the test server.
//!
//! Each test has its own `BENTO_HOME` in a temporary directory, and a guard that, even
//! when the test fails, kills the processes its containers' state names and removes the
//! directory.

mod common;
mod fixtures;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::terminal::{Terminal, finish, on_terminal, shows_on_a_terminal};
use common::{NOBODY, SYSTEM_PATH, built, eventually, running_as_root, step_uid, walk};
use fixtures::{Entry, Layer, docker_archive, oci_layout, serve_layout};
use serde_json::Value;

/// Exit statuses of bento's refusals (bento/src/errors.rs).
const UNKNOWN_CONTAINER: i32 = 3;
const NAME_IN_USE: i32 = 4;
const INVALID_NAME: i32 = 5;
const UNKNOWN_IMAGE: i32 = 6;
const UNREACHABLE: i32 = 7;
const NOT_RUNNING: i32 = 8;
const NOT_CREATED: i32 = 9;
const STILL_RUNNING: i32 = 10;
const NO_TERMINAL: i32 = 11;

/// A busybox layer with the applets the tests use, shaped like Docker's busybox image
/// (hard links, no /proc, no /dev).
fn layer() -> Vec<u8> {
    static LAYER: OnceLock<Vec<u8>> = OnceLock::new();
    LAYER
        .get_or_init(|| {
            let applets = [
                "sh", "ls", "ps", "cat", "echo", "id", "hostname", "true", "false", "sleep",
                "kill", "touch", "head", "dd", "ip", "readlink", "env", "pwd", "test", "tty",
                "stty",
            ];
            let extra = [Entry::File("etc/image-file", b"from the image\n", 0o644)];
            fixtures::busybox_layer_with(&applets, &extra)
        })
        .clone()
}

/// Image sources built once per test binary, in a directory every uid can read.
struct Images {
    _dir: tempfile::TempDir,
    archive: String,
    layout: String,
    bin: PathBuf,
}

fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = fixtures::world_readable_tempdir();
        common::remove_at_exit(dir.path());
        let archive = dir.path().join("busybox.tar");
        docker_archive(&archive, &[layer()], true);
        oci_layout(&dir.path().join("layout"), &[Layer::gzip(layer())]);
        for entry in walk(dir.path()) {
            let mode = if entry.is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        // The binary, where nobody can reach it (the checkout may be in a 0700 home).
        let bin = dir.path().join("bento");
        std::fs::copy(built("bento"), &bin).expect("copy bento (cargo build -p bento first)");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        Images {
            archive: format!("docker-archive:{}", archive.display()),
            layout: format!("oci:{}:latest", dir.path().join("layout").display()),
            bin,
            _dir: dir,
        }
    })
}

/// A private BENTO_HOME; dropping it kills what its containers' states name, and removes it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = fixtures::world_readable_tempdir();
        if running_as_root() {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        }
        Home { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn containers(&self) -> PathBuf {
        self.path().join("containers")
    }

    /// `bento ARGS`, as the unprivileged user, with this home.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&images().bin);
        command
            .args(args)
            .env_clear()
            .env("BENTO_HOME", self.path())
            .env("PATH", SYSTEM_PATH)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if running_as_root() {
            command.uid(NOBODY).gid(NOBODY);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Out {
        let output = self.command(args).output().expect("run bento");
        Out {
            shown: format!("bento {}", args.join(" ")),
            output,
        }
    }

    /// Runs and asserts success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.run(args).code(0).stdout()
    }

    /// The container names that have a directory (complete or not).
    fn entries(&self) -> Vec<String> {
        match std::fs::read_dir(self.containers()) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn state(&self, name: &str) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json", name])).unwrap()
    }

    /// Pulls the test image under the name `img` uses.
    fn with_image(self) -> Home {
        self.ok(&["pull", &images().archive]);
        self
    }

    /// Every pid the recorded states name (PID 1s and supervisors).
    fn recorded_pids(&self) -> Vec<(i32, u64)> {
        let mut pids = Vec::new();
        for name in self.entries() {
            let path = self.containers().join(name).join("state.json");
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            let Ok(state) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            for key in ["init", "supervisor"] {
                if let (Some(pid), Some(start)) =
                    (state[key]["pid"].as_i64(), state[key]["start"].as_u64())
                {
                    pids.push((pid as i32, start));
                }
            }
        }
        pids
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        for (pid, start) in self.recorded_pids() {
            if start_time(pid) == Some(start) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        let _ = plumbing::remove_tree(self.dir.path());
    }
}

/// The start time of `pid` (proc(5) field 22), if it runs.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    if fields[0] == "Z" {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn alive(pid: i32) -> bool {
    start_time(pid).is_some()
}

/// What a bento run printed, and how it ended.
struct Out {
    shown: String,
    output: Output,
}

impl Out {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn code(&self, expected: i32) -> &Out {
        assert_eq!(
            self.output.status.code(),
            Some(expected),
            "{} exited with {:?}, expected {expected}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.shown,
            self.output.status,
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// A refusal: one `bento: error:` line containing `text`, an indented hint, no panic.
    fn refused(&self, code: i32, text: &str) -> &Out {
        self.code(code);
        let stderr = self.stderr();
        // Progress lines ("bento: pulling ...") may come first.
        let lines: Vec<&str> = stderr
            .lines()
            .skip_while(|l| !l.starts_with("bento: error: "))
            .collect();
        assert!(
            lines.len() == 2 && lines[1].starts_with("  hint: ") && !stderr.contains("panicked"),
            "{}: expected one error line and a hint:\n{stderr}",
            self.shown
        );
        assert!(lines[0].contains(text), "expected {text:?} in {stderr}");
        self
    }
}

/// The image name tests use (pulled by `with_image`).
fn img() -> &'static str {
    &images().archive
}

/// Two images of the same layers, with commands of their own: each runs its own. (The
/// store named an image by its layers alone: the one pulled first set the other's
/// command, environment and working directory.)
#[test]
fn images_of_the_same_layers_keep_their_own_commands() {
    let home = Home::new();
    let dir = fixtures::world_readable_tempdir();
    let arch = fixtures::host_and_other_arch().0;
    for who in ["A", "B"] {
        let path = dir.path().join(who);
        let layout = fixtures::Layout::new(&path);
        let image = layout.image_with_cmd(arch, &[Layer::gzip(layer())], &["echo", who]);
        layout.tag(&[("latest", &image)]);
        let name = format!("oci:{}:latest", path.display());
        assert_eq!(home.ok(&["run", "--rm", &name]), format!("{who}\n"));
    }
}

#[test]
fn images_come_from_an_archive_a_layout_and_a_registry() {
    let home = Home::new();
    let layout_dir = fixtures::world_readable_tempdir();
    let layout = oci_layout(layout_dir.path(), &[Layer::gzip(layer())]);
    let registry = serve_layout(&layout, &layout.tagged(), None);
    let remote = format!("docker://127.0.0.1:{}/busybox:latest", registry.port);
    let a = home.ok(&["pull", &images().archive]);
    let b = home.ok(&["pull", &images().layout]);
    let c = home.ok(&["pull", &remote]);
    let id = |line: &str| line.split_whitespace().nth(1).unwrap().to_string();
    // One image (the same layers and config), stored once, whatever it was pulled from.
    assert_eq!(id(&a), id(&b));
    assert_eq!(id(&a), id(&c));
    let listed = home.ok(&["images"]);
    for name in [&images().archive, &images().layout, &remote] {
        assert!(listed.contains(name.as_str()), "{name} not in:\n{listed}");
    }
    let stored: Vec<_> = std::fs::read_dir(home.path().join("images"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir() && e.file_name() != "cache")
        .collect();
    assert_eq!(stored.len(), 1, "the same image is stored once");
    for image in [&images().archive, &images().layout, &remote] {
        let out = home.ok(&["run", "--rm", image, "cat", "/etc/image-file"]);
        assert_eq!(out, "from the image\n");
    }
    // A run pulls what is missing itself.
    let fresh = Home::new();
    assert_eq!(
        fresh.ok(&["run", "--rm", &images().layout, "echo", "pulled"]),
        "pulled\n"
    );
}

#[test]
fn run_is_attached_and_exits_with_the_commands_status() {
    let home = Home::new().with_image();
    let out = home.ok(&[
        "run",
        "--rm",
        img(),
        "sh",
        "-c",
        "id -u; hostname; echo $$; cat /proc/self/uid_map",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "root inside");
    assert_eq!(lines[2], "1", "the command is PID 1");
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["0", &step_uid().to_string(), "1"],
        "mapped to the unprivileged user outside"
    );
    assert_eq!(lines[1].len(), 12, "the hostname is the random id");
    home.run(&["run", "--rm", img(), "sh", "-c", "exit 7"])
        .code(7);
    // Killed from outside (PID 1 cannot be killed from inside): 128 + SIGKILL.
    let attached = home
        .command(&["run", "--rm", "--name", "victim", img(), "sleep", "1000"])
        .spawn()
        .unwrap();
    eventually("victim runs", || {
        home.run(&["status", "victim"]).stdout().contains("running")
    });
    home.ok(&["kill", "victim"]);
    assert_eq!(
        attached.wait_with_output().unwrap().status.code(),
        Some(137)
    );
    let out = home.run(&["run", "--rm", img(), "no-such-command"]);
    out.refused(127, "no-such-command: command not found");
    home.run(&["run", "--rm", img(), "/etc/passwd"]).code(126);
    // Named, kept after it stops, with its hostname and network.
    let out = home.ok(&[
        "run",
        "--name",
        "kept",
        "--hostname",
        "box",
        "-e",
        "GREETING=hi",
        "-w",
        "/etc",
        img(),
        "sh",
        "-c",
        "hostname; echo $GREETING; pwd; ip -o link | cut -d: -f2",
    ]);
    assert!(out.starts_with("box\nhi\n/etc\n"), "{out}");
    assert!(out.contains("lo") && !out.contains("eth"), "only lo: {out}");
    assert_eq!(home.state("kept")["status"], "stopped");
    assert_eq!(home.state("kept")["exitCode"], 0);
    home.ok(&["rm", "kept"]);
    assert_eq!(
        home.entries(),
        Vec::<String>::new(),
        "--rm and rm leave nothing"
    );
}

#[test]
fn run_and_exec_get_a_terminal_of_their_own_and_leave_the_users_as_it_was() {
    let home = Home::new().with_image();
    // Runs `bento ARGS` on a fresh terminal of `rows` x `cols`; returns it, and the child.
    let on_a_terminal = |args: &[&str]| {
        let terminal = Terminal::open(30, 100);
        let mut command = home.command(args);
        on_terminal(&mut command, &terminal.pts);
        let before = terminal.settings();
        (terminal, before, command.spawn().expect("start bento"))
    };
    let run = home.command(&["run", "--rm", "-t", img(), "tty"]);
    assert_eq!(shows_on_a_terminal(run, "/dev/pts/0"), Some(0));

    let (terminal, before, mut child) = on_a_terminal(&["run", "--rm", "-t", img(), "sh"]);
    let mut at = terminal.wait_for("# ", 0);
    assert!(terminal.raw(), "raw mode while the container runs");
    at = terminal.follows_a_resize(at);
    terminal.type_in("exit 4\r");
    assert_eq!(
        finish(&mut child, &terminal),
        Some(4),
        "{}",
        terminal.screen()
    );
    assert_eq!(terminal.settings(), before, "restored after {at} bytes");

    home.ok(&["run", "-d", "--name", "box", img(), "sleep", "1000"]);
    let exec = home.command(&["exec", "-t", "box", "tty"]);
    assert_eq!(shows_on_a_terminal(exec, "/dev/pts/0"), Some(0));
    let exec = home.command(&["exec", "-t", "box", "sh", "-c", "stty size; exit 3"]);
    assert_eq!(shows_on_a_terminal(exec, "30 100"), Some(3));

    // Detached: the supervisor holds the master, and the output goes to the log.
    let (terminal, _, mut child) = on_a_terminal(&[
        "run",
        "-d",
        "-t",
        "--name",
        "logged",
        img(),
        "sh",
        "-c",
        "tty; stty size",
    ]);
    assert_eq!(
        finish(&mut child, &terminal),
        Some(0),
        "{}",
        terminal.screen()
    );
    eventually("the detached terminal's output is logged", || {
        home.state("logged")["status"] == "stopped"
    });
    assert_eq!(home.ok(&["logs", "logged"]), "/dev/pts/0\r\n24 80\r\n");
    home.ok(&["rm", "-f", "box", "logged"]);
    assert_eq!(home.entries(), Vec::<String>::new());
}

#[test]
fn the_whole_lifecycle() {
    let home = Home::new().with_image();
    home.ok(&[
        "create",
        "life",
        img(),
        "sh",
        "-c",
        "echo out; echo err >&2; exec sleep 1000",
    ]);
    let created = home.state("life");
    assert_eq!(created["status"], "created");
    assert_eq!(created["ociVersion"], "1.0.2");
    assert_eq!(created["id"], "life");
    let pid = created["pid"].as_i64().unwrap() as i32;
    assert!(alive(pid), "PID 1 exists before start");
    assert!(
        created["bundle"]
            .as_str()
            .unwrap()
            .ends_with("containers/life")
    );
    home.run(&["exec", "life", "true"])
        .refused(NOT_RUNNING, "is created, not running");
    home.ok(&["start", "life"]);
    assert_eq!(home.state("life")["status"], "running");
    home.run(&["start", "life"])
        .refused(NOT_CREATED, "is running");
    // exec: the container's processes, files, hostname, environment.
    let ps = home.ok(&["exec", "life", "ps", "-o", "pid,args"]);
    assert!(
        ps.lines().any(|l| l.trim() == "1 sleep 1000"),
        "PID 1 is the command:\n{ps}"
    );
    home.ok(&["exec", "life", "sh", "-c", "echo written > /root/note"]);
    assert_eq!(home.ok(&["exec", "life", "cat", "/root/note"]), "written\n");
    assert_eq!(home.ok(&["exec", "life", "hostname"]), "life\n");
    assert_eq!(home.ok(&["exec", "-w", "/etc", "life", "pwd"]), "/etc\n");
    home.run(&["exec", "life", "sh", "-c", "exit 9"]).code(9);
    home.run(&["exec", "life", "missing"]).code(127);
    let all = home.ok(&["status", "--all"]);
    assert!(
        all.lines().nth(1).unwrap().starts_with("life  running"),
        "{all}"
    );
    let details = home.ok(&["status", "life"]);
    assert!(
        details.contains("status    running") && details.contains("sleep 1000"),
        "{details}"
    );
    // sleep ignores SIGTERM as PID 1: stop waits the grace period, then kills.
    let started = Instant::now();
    let stop = home.run(&["stop", "-t", "1", "life"]);
    stop.code(0);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        stop.stderr(),
        "bento: life did not stop within 1 s of SIGTERM: it was sent SIGKILL\n",
        "stop says why it killed"
    );
    let stopped = home.state("life");
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["exitCode"], 137);
    assert!(!alive(pid));
    assert_eq!(home.ok(&["logs", "life"]), "out\nerr\n");
    home.run(&["exec", "life", "true"])
        .refused(NOT_RUNNING, "is stopped");
    home.ok(&["rm", "life"]);
    home.run(&["status", "life"])
        .refused(UNKNOWN_CONTAINER, "no container named \"life\"");
    assert_eq!(home.entries(), Vec::<String>::new());
}

#[test]
fn stop_is_graceful_and_kill_is_not() {
    let home = Home::new().with_image();
    let trap = "trap 'echo bye; exit 3' TERM; echo ready; while true; do sleep 0.05; done";
    home.ok(&["run", "-d", "--name", "polite", img(), "sh", "-c", trap]);
    eventually("the trap is set", || {
        home.ok(&["logs", "polite"]) == "ready\n"
    });
    let stop = home.run(&["stop", "polite"]);
    stop.code(0);
    assert_eq!(stop.stderr(), "", "it heeded SIGTERM: nothing to say");
    assert_eq!(home.state("polite")["exitCode"], 3);
    assert_eq!(home.ok(&["logs", "polite"]), "ready\nbye\n");
    home.ok(&["run", "-d", "--name", "rude", img(), "sh", "-c", trap]);
    home.ok(&["kill", "rude"]);
    assert_eq!(home.state("rude")["exitCode"], 137);
    home.ok(&[
        "run",
        "-d",
        "--name",
        "hup",
        img(),
        "sh",
        "-c",
        "trap 'exit 5' HUP; echo ready; while true; do sleep 0.05; done",
    ]);
    // Its HUP only once the trap is set (before, the shell would die of it).
    eventually("hup's trap is set", || {
        home.ok(&["logs", "hup"]) == "ready\n"
    });
    // Stopped, and its exit status recorded: between the two, the state says its
    // supervisor is recording it.
    eventually("hup runs its trap", || {
        home.run(&["kill", "hup", "HUP"]);
        let state = home.state("hup");
        state["status"] == "stopped" && !state["exitCode"].is_null()
    });
    assert_eq!(home.state("hup")["exitCode"], 5);
    let follow = home.ok(&["logs", "-f", "polite"]);
    assert_eq!(
        follow, "ready\nbye\n",
        "-f ends when the container has stopped"
    );
    home.ok(&["rm", "polite", "rude", "hup"]);
    assert_eq!(home.entries(), Vec::<String>::new());
}

#[test]
fn two_containers_of_one_image_never_see_each_others_writes() {
    let home = Home::new().with_image();
    for name in ["one", "two"] {
        home.ok(&["run", "-d", "--name", name, img(), "sleep", "1000"]);
    }
    home.ok(&[
        "exec",
        "one",
        "sh",
        "-c",
        "echo mine > /etc/image-file; touch /new",
    ]);
    assert_eq!(
        home.ok(&["exec", "one", "cat", "/etc/image-file"]),
        "mine\n"
    );
    assert_eq!(
        home.ok(&["exec", "two", "cat", "/etc/image-file"]),
        "from the image\n"
    );
    home.run(&["exec", "two", "test", "-e", "/new"]).code(1);
    let ps = home.ok(&["exec", "two", "ps", "-o", "pid,args"]);
    assert_eq!(ps.lines().count(), 3, "only two's PID 1 and ps:\n{ps}");
    // The image itself never changed.
    let images = home.path().join("images");
    let rootfs = std::fs::read_dir(&images)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("rootfs"))
        .find(|p| p.is_dir())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/image-file")).unwrap(),
        "from the image\n"
    );
    assert!(!rootfs.join("new").exists());
    home.ok(&["rm", "-f", "one", "two"]);
    assert_eq!(home.entries(), Vec::<String>::new());
}

#[test]
fn a_killed_supervisor_takes_its_container_along_and_status_says_so() {
    let home = Home::new().with_image();
    home.ok(&["run", "-d", "--name", "orphan", img(), "sleep", "1000"]);
    let state = home.state("orphan");
    let init = state["init"]["pid"].as_i64().unwrap() as i32;
    let supervisor = state["supervisor"]["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("PID 1 dies with its supervisor", || !alive(init));
    let state = home.state("orphan");
    assert_eq!(state["status"], "stopped");
    assert!(
        state["note"]
            .as_str()
            .unwrap()
            .contains("supervisor was killed"),
        "{state}"
    );
    let details = home.ok(&["status", "orphan"]);
    assert!(details.contains("supervisor was killed"), "{details}");
    home.run(&["exec", "orphan", "true"]).code(NOT_RUNNING);
    home.ok(&["rm", "orphan"]);
    assert_eq!(home.entries(), Vec::<String>::new());
}

#[test]
fn a_recycled_pid_is_never_taken_for_the_container() {
    let home = Home::new().with_image();
    home.ok(&["run", "--name", "old", img(), "true"]);
    // Pretend the record is from before: "running", with PID 1's pid now taken by another
    // process (this test) that started at another time.
    let path = home.containers().join("old/state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let me = std::process::id() as i64;
    state["status"] = "running".into();
    state["pid"] = me.into();
    state["init"] = serde_json::json!({"pid": me, "start": 1});
    state["supervisor"] = serde_json::json!({"pid": me, "start": 1});
    std::fs::write(&path, state.to_string()).unwrap();
    assert_eq!(home.state("old")["status"], "stopped");
    home.run(&["kill", "old"])
        .refused(NOT_RUNNING, "is not running");
    home.run(&["exec", "old", "true"]).code(NOT_RUNNING);
    home.ok(&["rm", "old"]);
    assert_eq!(home.entries(), Vec::<String>::new());
}

#[test]
fn twenty_runs_at_once() {
    let home = Home::new().with_image();
    let children: Vec<_> = (0..20)
        .map(|n| {
            let mut command =
                home.command(&["run", "--rm", img(), "sh", "-c", &format!("echo {n}")]);
            (n, command.spawn().unwrap())
        })
        .collect();
    for (n, child) in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "run {n}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{n}\n"));
    }
    assert_eq!(
        home.entries(),
        Vec::<String>::new(),
        "every --rm container is gone"
    );
    // Detached ones with names, all at once, then all removed at once.
    let names: Vec<String> = (0..10).map(|n| format!("c{n}")).collect();
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            home.command(&["run", "-d", "--name", name, img(), "sleep", "1000"])
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        assert!(child.wait_with_output().unwrap().status.success());
    }
    let all = home.ok(&["status", "--all"]);
    assert_eq!(
        all.lines().filter(|l| l.contains(" running ")).count(),
        10,
        "{all}"
    );
    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    home.ok(&rm);
    assert_eq!(home.entries(), Vec::<String>::new());
}

#[test]
fn every_bad_input_is_one_line_a_hint_a_status_and_leaves_nothing() {
    let home = Home::new().with_image();
    home.run(&["start", "ghost"])
        .refused(UNKNOWN_CONTAINER, "no container named \"ghost\"");
    home.run(&["rm", "ghost"])
        .refused(UNKNOWN_CONTAINER, "no container named");
    home.ok(&["create", "taken", img(), "sleep", "1000"]);
    home.run(&["create", "taken", img()])
        .refused(NAME_IN_USE, "already in use");
    home.run(&["run", "--name", "taken", img(), "true"])
        .refused(NAME_IN_USE, "already in use");
    for bad in ["a/b", "..", ".hidden", "-x", &"n".repeat(65), "sp ace"] {
        home.run(&["create", "--", bad, img()])
            .refused(INVALID_NAME, "not a valid container name");
    }
    home.run(&["run", "--rm", "oci:/no/such/layout", "true"])
        .refused(UNKNOWN_IMAGE, "cannot pull");
    home.run(&["pull", "docker-archive:/no/such.tar"])
        .refused(UNKNOWN_IMAGE, "cannot pull");
    home.run(&["run", "--rm", "docker://127.0.0.1:1/busybox:latest", "true"])
        .refused(UNREACHABLE, "cannot pull");
    home.run(&["exec", "taken", "true"])
        .refused(NOT_RUNNING, "not running");
    home.ok(&["start", "taken"]);
    home.run(&["start", "taken"])
        .refused(NOT_CREATED, "only a created container");
    home.run(&["rm", "taken"])
        .refused(STILL_RUNNING, "is running");
    home.run(&["run", "-t", img(), "true"])
        .refused(NO_TERMINAL, "needs a terminal");
    home.run(&["exec", "-t", "taken", "true"])
        .refused(NO_TERMINAL, "needs a terminal");
    home.run(&["create", "missing", img(), "no-such-command"])
        .refused(127, "command not found");
    home.run(&["run", "-d", "--name", "missing", img(), "no-such-command"])
        .refused(127, "command not found");
    home.run(&["kill", "taken", "NOPE"]).code(2);
    assert_eq!(
        home.entries(),
        vec!["taken".to_string()],
        "nothing but the one container"
    );
    home.ok(&["rm", "-f", "taken"]);
    assert_eq!(home.entries(), Vec::<String>::new());
}

#[test]
fn the_host_is_unchanged_afterwards() {
    let mounts = || {
        let mut lines: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    let (hostname, before) = (common::hostname(), mounts());
    let home = Home::new().with_image();
    home.ok(&["run", "-d", "--name", "visitor", img(), "sleep", "1000"]);
    home.ok(&[
        "exec",
        "visitor",
        "sh",
        "-c",
        "hostname other 2>/dev/null; true",
    ]);
    let pids = home.recorded_pids();
    assert_eq!(pids.len(), 2);
    home.ok(&["rm", "-f", "visitor"]);
    for (pid, start) in pids {
        assert_ne!(start_time(pid), Some(start), "process {pid} outlived rm -f");
    }
    assert_eq!(common::hostname(), hostname);
    assert_eq!(mounts(), before, "no mount appeared on the host");
    assert_eq!(home.entries(), Vec::<String>::new());
}

/// cgroup v1 limits, for real: only root may make v1 cgroups, so bento runs as root here
/// (the v2 code is tested against a fake cgroup tree, in bento's unit tests).
#[test]
fn limits_with_cgroup_v1_as_root() {
    if !common::can_run_as_real_root() {
        return;
    }
    let v1 = |controller: &str| {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("tasks")
            .exists()
    };
    if !v1("memory") || !v1("pids") {
        common::skipped(
            "no cgroup v1 memory and pids hierarchies here (v2 is tested on a fake tree)",
        );
        return;
    }
    let home = Home::new();
    std::os::unix::fs::chown(home.dir.path(), Some(0), Some(0)).unwrap();
    let as_root = |args: &[&str]| {
        let mut command = Command::new(&images().bin);
        command
            .args(args)
            .env_clear()
            .env("BENTO_HOME", home.path())
            .env("PATH", SYSTEM_PATH)
            .stdin(Stdio::null());
        let output = command.output().unwrap();
        Out {
            shown: format!("bento {}", args.join(" ")),
            output,
        }
    };
    as_root(&["pull", img()]).code(0);
    let forks = "n=0; while [ $n -lt 30 ]; do sleep 5 & n=$((n+1)); done; echo survived";
    let out = as_root(&["run", "--rm", "--pids-limit", "8", img(), "sh", "-c", forks]);
    assert!(
        out.stderr().contains("can't fork"),
        "the fork loop hits the limit: {}",
        out.stderr()
    );
    let out = as_root(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "32m",
        img(),
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    out.code(137);
    let state: Value =
        serde_json::from_str(&as_root(&["status", "--json", "hog"]).code(0).stdout()).unwrap();
    assert_eq!(state["oomKilled"], true, "{state}");
    let cgroups: Vec<PathBuf> = serde_json::from_value(state["cgroups"].clone()).unwrap();
    assert!(!cgroups.is_empty());
    assert!(as_root(&["status", "hog"]).stdout().contains("OOM-killed"));
    as_root(&["rm", "hog"]).code(0);
    for dir in cgroups {
        assert!(!dir.exists(), "{} removed", dir.display());
    }
    // The same limits rootless, on this v1 machine: refused, with the fix.
    let rootless = Home::new().with_image();
    rootless
        .run(&["run", "--rm", "--memory", "32m", img(), "true"])
        .refused(12, "cannot limit");
    assert_eq!(rootless.entries(), Vec::<String>::new());
}

//! Shared by the test files: a fixture every uid can reach, and running the workshop's
//! binaries the way a learner does, as an unprivileged user.
//!
//! CI runs as root, and a rootless claim tested as root proves nothing: whenever the suite
//! runs as root, the steps run as uid/gid 65534 (`nobody`). That uid must be able to reach
//! the binaries and the rootfs even when the checkout sits in a 0700 home directory, so
//! both are copied into a world-readable temporary directory first.

#![allow(dead_code)] // each test file uses a different part of this module

pub mod terminal;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use coach::sandbox::Sandbox;
/// The unprivileged uid the steps run as when the tests run as root, a PATH every user can
/// search, and the uid the steps run as.
pub use coach::sandbox::{NOBODY, SYSTEM_PATH, step_uid};

/// The workshop's step binaries, by number.
pub const STEPS: [&str; 13] = [
    "step-00-baseline",
    "step-01-uts",
    "step-02-userns",
    "step-03-pid",
    "step-04-mount",
    "step-05-procfs",
    "step-06-pivot-root",
    "step-07-overlay",
    "step-08-net",
    "step-09-dev",
    "step-10-pty",
    "step-11-least-privilege",
    "step-12-network",
];

/// A file on the host, outside the rootfs, that the breakout probe tries to read.
pub const HOST_SECRET: &str = "host-secret.txt";

/// A world-readable directory holding the binaries, a busybox rootfs that belongs to the
/// user the steps run as (as a learner's own `rootfs/` does), and a TMPDIR for them: a
/// [`coach::sandbox::Sandbox`], the same as `just check` traces steps in.
pub struct Fixture {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub bin: PathBuf,
    pub tmp: PathBuf,
    /// Whether the static breakout probe could be built and put in the rootfs's /bin.
    pub has_breakout: bool,
    /// The directory lives as long as this (the whole test binary: a static is never
    /// dropped; the next run removes it, as any leftover of a dead process).
    _sandbox: Sandbox,
    /// Whether step 11's static system-call probe is in the rootfs's /bin, as `syscalls`.
    pub has_syscalls: bool,
}

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// A binary of the workspace, as built by `cargo build --workspace` (target/debug/NAME),
/// which `just test` runs before the tests.
pub fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/PROFILE/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run the tests with `just test` (it builds the workspace first)",
        path.display()
    );
    path
}

/// Names in a directory, sorted, including hidden ones.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Are the tests running as root (as in CI)?
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For the tests of the "sudo" case: true when they can run (as root); otherwise says loudly
/// that they are skipped. CI runs as root, so CI never skips them.
pub fn can_run_as_real_root() -> bool {
    if std::env::var_os("BENTO_CHECK_BIN").is_some() {
        // `just check` on a learner's copy: unfinished code never runs as real root (a
        // sethostname before the unshare would rename the host).
        eprintln!("SKIPPED: a learner's copy never runs as real root");
        return false;
    }
    if running_as_root() {
        return true;
    }
    skipped("this test needs root (CI runs as root); `sudo just test` includes it");
    false
}

/// Polls `ready` every 10 ms for up to `bound`; whether it held in time.
pub fn wait_until(bound: std::time::Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while !ready() {
        if start.elapsed() > bound {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// Waits until `condition` holds, at most 10 s, or fails the test naming `what`.
pub fn eventually(what: &str, condition: impl FnMut() -> bool) {
    assert!(
        wait_until(std::time::Duration::from_secs(10), condition),
        "timed out waiting for: {what}"
    );
}

/// Every path below `dir`, sorted, without following symlinks (`dir` itself not included).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&path));
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Says loudly that a test is skipped, and why; in CI (`CI` set) a skip is a failure: CI
/// must prove everything.
pub fn skipped(why: &str) {
    eprintln!("SKIPPED: {why}");
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run every test, but: {why}"
    );
}

/// The directories [`remove_at_exit`] was given.
static AT_EXIT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

extern "C" fn remove_all_at_exit() {
    if let Ok(dirs) = AT_EXIT.lock() {
        for dir in dirs.iter() {
            let _ = plumbing::remove_tree(dir);
        }
    }
}

/// Removes `dir` when the test binary exits (atexit(3)). A static is never dropped, and
/// the fixtures held in statics (a root filesystem, images, copies of bento) would stay in
/// /tmp after every run: some 280 MB each.
pub fn remove_at_exit(dir: &Path) {
    let mut dirs = AT_EXIT.lock().unwrap();
    if dirs.is_empty() {
        // SAFETY: atexit(3) with a function that takes and returns nothing.
        unsafe { libc::atexit(remove_all_at_exit) };
    }
    dirs.push(dir.to_path_buf());
}

/// The fixture, created once per test binary.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let sandbox = Sandbox::create("tests", &built("rootfs-fetch")).expect("create the fixture");
        for name in STEPS
            .iter()
            .chain(&["rootfs-fetch", "bento-doctor", "deny"])
        {
            sandbox
                .place(&checked_or_built(name), &format!("bin/{name}"))
                .expect("put a binary in the fixture");
        }
        let rootfs = sandbox.rootfs.clone();
        let probe = |name: &str| match static_binary(name) {
            Some(probe) => {
                std::fs::copy(probe, rootfs.join("bin").join(name)).expect("copy the probe");
                true
            }
            None => false,
        };
        let (has_breakout, has_syscalls) = (probe("breakout"), probe("syscalls"));
        std::fs::write(sandbox.dir.join(HOST_SECRET), "the host's secret\n").unwrap();
        remove_at_exit(&sandbox.dir);
        Fixture {
            dir: sandbox.dir.clone(),
            bin: sandbox.dir.join("bin"),
            tmp: sandbox.tmp.clone(),
            rootfs,
            has_breakout,
            has_syscalls,
            _sandbox: sandbox,
        }
    })
}

/// The binary to test as `name`: a learner's copy of the step when `just check` runs these
/// tests on it (`BENTO_CHECK_STEP=N` and `BENTO_CHECK_BIN=PATH`, set by bento-coach),
/// otherwise the workspace's own build.
fn checked_or_built(name: &str) -> PathBuf {
    let checked = std::env::var("BENTO_CHECK_STEP")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| STEPS.get(n));
    match std::env::var_os("BENTO_CHECK_BIN") {
        Some(path) if checked == Some(&name) => PathBuf::from(path),
        _ => built(name),
    }
}

/// Under `just check`, every run goes to the log that bento-coach explains failures from.
fn log_for_check(run: &Run) {
    use std::io::Write;
    let Some(log) = std::env::var_os("BENTO_CHECK_LOG") else {
        return;
    };
    // libtest names each test's thread after the test.
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let entry = format!(
        "{}test: {test}\n{}{}",
        coach::check::LOG_SEPARATOR,
        if run.wrapped { "wrapped\n" } else { "" },
        run.report()
    );
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open BENTO_CHECK_LOG");
    // One write per run: the tests run in parallel, and O_APPEND keeps each entry whole.
    file.write_all(entry.as_bytes())
        .expect("write BENTO_CHECK_LOG");
}

/// Builds a busybox rootfs at `path` with rootfs-fetch, from the host's static busybox.
pub fn build_rootfs(path: &Path) {
    let output = Command::new(built("rootfs-fetch"))
        .arg("busybox:")
        .arg(path)
        .output()
        .expect("run rootfs-fetch");
    assert!(
        output.status.success(),
        "rootfs-fetch could not build a test rootfs (is busybox-static installed?):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A static binary that `just test` built (`just _build`: step 06's `breakout`, step 11's
/// `syscalls`, the tests' `probe`), to run inside a busybox root filesystem; `None` if this machine cannot link
/// static binaries.
pub fn static_binary(name: &str) -> Option<PathBuf> {
    let target = workspace().join("target");
    let cache = std::fs::read_to_string(target.join(".bento-build-target")).ok()?;
    let (triple, static_ok) = cache.trim().split_once(' ')?;
    let binary = target.join(triple).join("release").join(name);
    (static_ok == "yes" && binary.is_file()).then_some(binary)
}

/// The host's hostname.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .expect("gethostname")
        .to_string_lossy()
        .into_owned()
}

/// How long one run of a step may take before it is killed and its test fails: every step
/// run in the tests takes well under a second, but a wrong step may hang.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A run of a step binary, to be configured and then [`StepCommand::run`].
pub struct StepCommand {
    name: &'static str,
    command: Command,
    as_root: bool,
    /// The command starts as root and drops to nobody itself (see [`step_with_tun`]).
    drops_privileges: bool,
    shown: Vec<String>,
    /// Run through another program ([`StepCommand::wrapped_in`]): its output may not be the
    /// step's usual one.
    wrapped: bool,
}

/// Prepares step `n` with the given command line. Step 12 gets a usable /dev/net/tun of its
/// own when the tests run as root (see [`step_with_tun`]).
pub fn step(n: usize, args: &[&str]) -> StepCommand {
    step_with_tun(n, args, (n == 12).then_some("666"))
}

/// Step 12's slirp4netns opens /dev/net/tun as the user the step runs as. On some machines
/// (this one among them) it is mode 0600, root's only; Debian and Ubuntu ship it 0666. When
/// the tests run as root, the step runs in a mount namespace of its own, where a tmpfs on
/// /dev/net holds a fresh tun node (10:200) of mode `tun`, and drops to nobody there: the
/// host's own /dev/net/tun stays as it is. Otherwise the host's is used. (bento's network
/// tests run bento this way too: tests/boxes.)
pub const OWN_TUN: &str = r#"set -e
step_path=$PATH
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
setpriv=$(command -v setpriv)
mount -t tmpfs -o mode=755 tun /dev/net
mknod -m "$1" /dev/net/tun c 10 200
shift
PATH=$step_path exec "$setpriv" --reuid=65534 --regid=65534 --clear-groups "$@"
"#;

/// [`step`], with a /dev/net/tun of mode `tun` when the tests run as root.
pub fn step_with_tun(n: usize, args: &[&str], tun: Option<&str>) -> StepCommand {
    let name = STEPS[n];
    let fixture = fixture();
    let binary = fixture.bin.join(name);
    let drops_privileges = running_as_root() && tun.is_some();
    let mut command = match tun {
        Some(mode) if drops_privileges => {
            // By their paths: a test may give the step a PATH without them.
            let program = |name| plumbing::host::find_program(name).unwrap_or(name.into());
            let mut command = Command::new(program("unshare"));
            command
                .args(["--mount", "--propagation", "private"])
                .arg(program("sh"))
                .args(["-c", OWN_TUN, "sh", mode])
                .arg(binary);
            command
        }
        _ => Command::new(binary),
    };
    command
        .args(args)
        .current_dir(&fixture.dir)
        .env("BENTO_ROOTFS", &fixture.rootfs)
        // The test runner's PATH may hold directories that nobody (65534) cannot search,
        // such as /root/.cargo/bin, which turns "not found" into "permission denied".
        .env("PATH", SYSTEM_PATH)
        .env("TMPDIR", &fixture.tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut shown = vec![name.to_string()];
    shown.extend(args.iter().map(|arg| shell_quote(arg)));
    StepCommand {
        name,
        command,
        as_root: false,
        wrapped: false,
        drops_privileges,
        shown,
    }
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.=".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// What a step run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub name: &'static str,
    pub shown: String,
    /// Run through another program (see [`StepCommand::wrapped_in`]).
    pub wrapped: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub pid: u32,
    pub uid: u32,
    pub cwd: PathBuf,
}

impl StepCommand {
    /// Sets an environment variable for the step.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.command.env(key, value.into());
        self
    }

    /// Runs as real root (only possible when the tests run as root): the "sudo" case.
    pub fn run_as_real_root(mut self) -> Self {
        assert!(running_as_root(), "only root can run a step as root");
        assert!(
            !self.drops_privileges,
            "{} drops to nobody itself",
            self.name
        );
        self.as_root = true;
        self
    }

    /// Runs the command through another program first, e.g. `deny userns`.
    pub fn wrapped_in(mut self, wrapper: &Path, wrapper_args: &[&str]) -> Self {
        let mut command = Command::new(wrapper);
        command.args(wrapper_args);
        command.arg(self.command.get_program());
        command.args(self.command.get_args());
        for (key, value) in self.command.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
            .current_dir(&fixture().dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.command = command;
        self.wrapped = true;
        self
    }

    /// Runs the step on a terminal: `pts` becomes its stdin, stdout, stderr and controlling
    /// terminal, in a session of its own, as a shell would start it.
    pub fn on_terminal(mut self, pts: &std::os::fd::OwnedFd) -> Self {
        terminal::on_terminal(&mut self.command, pts);
        self
    }

    /// Starts the step, as an unprivileged user unless [`Self::run_as_real_root`].
    pub fn spawn(&mut self) -> std::process::Child {
        if !self.as_root && !self.drops_privileges && running_as_root() {
            self.command.uid(NOBODY).gid(NOBODY);
        }
        self.command.spawn().expect("start the step")
    }

    /// Runs the step, as an unprivileged user unless [`Self::run_as_real_root`], and checks the
    /// host's hostname is unchanged afterwards.
    pub fn run(mut self) -> Run {
        use std::sync::atomic::{AtomicBool, Ordering};
        let uid = if self.as_root { 0 } else { step_uid() };
        let before = hostname();
        // A group of its own: if the step hangs, the watchdog ends it with all it started.
        self.command.process_group(0);
        let child = self.spawn();
        let pid = child.id();
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let watchdog = {
            let done = done.clone();
            std::thread::spawn(move || {
                let deadline = std::time::Instant::now() + RUN_LIMIT;
                while !done.load(Ordering::SeqCst) {
                    if std::time::Instant::now() > deadline {
                        let group = nix::unistd::Pid::from_raw(-(pid as i32));
                        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                        return true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                false
            })
        };
        let output = child.wait_with_output().expect("wait for the step");
        done.store(true, Ordering::SeqCst);
        let killed = watchdog.join().unwrap_or(false);
        assert!(
            !killed,
            "{} {} did not end within {} s: it was killed\n{}{}",
            self.name,
            self.shown.join(" "),
            RUN_LIMIT.as_secs(),
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        assert_eq!(
            hostname(),
            before,
            "{} changed the host's hostname",
            self.name
        );
        let run = Run {
            name: self.name,
            shown: self.shown.join(" "),
            wrapped: self.wrapped,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            pid,
            uid,
            cwd: fixture().dir.clone(),
        };
        log_for_check(&run);
        run
    }
}

impl Run {
    /// The text of its snapshot: the command line, the exit status, stderr, stdout.
    pub fn report(&self) -> String {
        let status = match self.code {
            Some(code) => code.to_string(),
            None => "killed by a signal".into(),
        };
        format!(
            "$ {}\nexit status: {status}\n--- stderr ---\n{}--- stdout ---\n{}",
            self.shown, self.stderr, self.stdout
        )
    }

    /// insta settings that replace the values which differ from machine to machine (the
    /// host's uid, hostname, pids and directories) with `<host-uid>`-style names, and only
    /// those: `uid [0]`, `pid [1]` and `my-container` stay visible.
    pub fn settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(self.shown.clone());
        let escape = |text: &str| regex::escape(text);
        if self.uid != 0 {
            settings.add_filter(&format!(r"\buid (\[)?{}\b", self.uid), "uid $1<host-uid>");
        }
        settings.add_filter(&format!(r"\[{}\]", self.pid), "[<host-pid>]");
        settings.add_filter(&format!(r"\bpid {}\b", self.pid), "pid <host-pid>");
        settings.add_filter(
            &format!(r#""{}""#, escape(&self.cwd.to_string_lossy())),
            "\"<cwd>\"",
        );
        settings.add_filter(&escape(&self.cwd.to_string_lossy()), "<cwd>");
        let host = hostname();
        settings.add_filter(&format!(r#""{}""#, escape(&host)), "\"<host-hostname>\"");
        settings.add_filter(&format!(r"(?m)^{}$", escape(&host)), "<host-hostname>");
        settings
    }

    /// The error the step printed: its `NAME: error:` line and the indented hint below.
    pub fn error(&self) -> String {
        let start = format!("{}: error: ", self.name);
        let Some(at) = self.stderr.find(&start) else {
            panic!("{} printed no error:\n{}", self.name, self.report())
        };
        let mut lines = self.stderr[at..].lines();
        let mut error = format!("{}\n", lines.next().unwrap_or_default());
        for line in lines.take_while(|line| line.starts_with(' ')) {
            error.push_str(line);
            error.push('\n');
        }
        error
    }

    /// Asserts the exit status.
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "{} exited with {:?}, expected {expected}\n{}",
            self.name,
            self.code,
            self.report()
        );
        self
    }
}

/// One test per step for a check that every step must pass: `per_step!(check: step_03 = 3,
/// step_04 = 4)` makes the tests `check::step_03` and `check::step_04`, each calling
/// `check(n)`. `just check N` runs the tests whose names contain `step_NN`: so it runs this
/// check on the learner's step N too, and `cargo test -- step_04` runs every check of step 04.
#[macro_export]
macro_rules! per_step {
    ($check:ident: $($step:ident = $n:literal),+ $(,)?) => {
        mod $check {
            $(
                #[test]
                fn $step() {
                    super::$check($n)
                }
            )+
        }
    };
}

/// Snapshots a [`Run`] with its machine-specific values redacted.
#[macro_export]
macro_rules! assert_run_snapshot {
    ($name:expr, $run:expr) => {{
        let run = &$run;
        run.settings()
            .bind(|| insta::assert_snapshot!($name, run.report()));
    }};
}

/// Is `tool` installed? If not, says so loudly; in CI, that is a failure.
pub fn have(tool: &str, install: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        skipped(&format!("{tool} is not installed ({install})"));
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have {tool}: {install}"
        );
    }
    found
}

/// Unmounts whatever is mounted below `dir` (what podman left under a test's storage, such
/// as a container's /dev/shm), deepest first, without following anything.
pub fn unmount_below(dir: &Path) {
    let root = dir.to_string_lossy().into_owned();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with(&root))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in points {
        let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// `podman` with a private storage under `dir` (`--root`, `--runroot`, `--tmpdir`, vfs) and
/// cgroupfs (this machine has no systemd), the system PATH and no standard input.
pub fn podman_in(dir: &Path) -> Command {
    let mut command = Command::new("podman");
    command
        .arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .arg("--tmpdir")
        .arg(dir.join("tmp"))
        .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
        .env("PATH", SYSTEM_PATH)
        .stdin(Stdio::null());
    command
}

/// A one-page HTTP server on the host's 127.0.0.1 (and nowhere else), for a container to
/// reach through its user-mode network stack (slirp4netns answers for the host's loopback
/// at 10.0.2.2): it answers every request with `body`, until [`LoopbackServer::stop`], and
/// for 20 s at most.
pub struct LoopbackServer {
    pub port: u16,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    serving: std::thread::JoinHandle<usize>,
}

impl LoopbackServer {
    pub fn start(body: &'static str) -> LoopbackServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        server.set_nonblocking(true).unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let serving = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let mut answered = 0;
            while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                let Ok((mut client, _)) = server.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let mut request = [0u8; 1024];
                let _ = client.read(&mut request);
                let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = client.write_all((head + body).as_bytes());
                answered += 1;
            }
            answered
        });
        LoopbackServer {
            port,
            done,
            serving,
        }
    }

    /// Stops it; how many requests it answered.
    pub fn stop(self) -> usize {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.serving.join().unwrap()
    }
}

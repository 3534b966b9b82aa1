//! What bento defends against, one test per attack: the runc CVE classes, played against
//! bento as root (what engines run it as) and, where they apply, rootless.
//!
//! The attacker is a hostile process *inside* a container (the static `probe`, or busybox's
//! shell), or another local user (uid 1000) planting files where root writes. Each test
//! failed on bento before the defence it checks (the commit that added both says what it
//! printed). Every test has its own directory, state and image; its guard kills what the
//! states name and removes the directory, even when the test fails.

mod common;
mod fixtures;

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::terminal::{Terminal, finish};
use common::{
    NOBODY, SYSTEM_PATH, build_rootfs, built, can_run_as_real_root, eventually, skipped,
    static_binary,
};
use fixtures::{Entry, docker_archive};
use serde_json::{Value, json};

/// The other local user.
const OTHER: u32 = 1000;

/// The default capabilities of bento's own containers (podman's list): their bounding
/// set, as /proc/PID/status prints it.
const DEFAULT_CAPS: &str = "00000000800405fb";

/// Every capability (capabilities(7)), by number, for a privileged container.
const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Every capability this process holds (a machine's root may lack some: this one has no
/// CAP_SYS_RESOURCE), by name.
fn every_capability_we_have() -> Vec<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let permitted = status
        .lines()
        .find_map(|line| line.strip_prefix("CapPrm:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .unwrap();
    (0..ALL_CAPS.len())
        .filter(|bit| permitted & (1 << bit) != 0)
        .map(|bit| ALL_CAPS[bit])
        .collect()
}

/// The probe, or `None` (loudly; never in CI) where static binaries cannot be linked.
fn probe() -> Option<PathBuf> {
    let probe = static_binary("probe");
    if probe.is_none() {
        skipped("the probe must be static, and this machine cannot link it (libc6-dev's libc.a)");
    }
    probe
}

/// Step 11's `syscalls` probe: each call step 11's filter refuses, and what the kernel
/// answered (built static with the probe).
fn syscalls() -> Option<PathBuf> {
    static_binary("syscalls")
}

/// A busybox image with the probes.
fn image() -> &'static str {
    static IMAGE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    &IMAGE
        .get_or_init(|| {
            let dir = fixtures::world_readable_tempdir();
            common::remove_at_exit(dir.path());
            let probe = std::fs::read(probe().expect("checked by Lab::new")).unwrap();
            let syscalls = std::fs::read(syscalls().expect("checked by Lab::new")).unwrap();
            let applets = [
                "sh", "cat", "echo", "grep", "wc", "umount", "ls", "sleep", "touch", "id", "true",
                "ln",
            ];
            let extra = [
                Entry::File("bin/probe", &probe, 0o755),
                Entry::File("bin/syscalls", &syscalls, 0o755),
            ];
            let layer = fixtures::busybox_layer_with(&applets, &extra);
            let archive = dir.path().join("image.tar");
            docker_archive(&archive, &[layer], true);
            std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o644)).unwrap();
            let name = format!("docker-archive:{}", archive.display());
            (dir, name)
        })
        .1
}

/// One attack's world: a copy of bento (the binary an attacker would like to replace),
/// bento's home, and room for bundles.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    /// As root (else skipped loudly: CI is root), with the probe.
    fn new() -> Option<Lab> {
        if !can_run_as_real_root() {
            return None;
        }
        probe()?;
        syscalls().expect("built with the probe");
        let dir = fixtures::world_readable_tempdir();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::copy(built("bento"), dir.path().join("bin/bento")).unwrap();
        let lab = Lab { dir };
        // Another test's fork may still hold the copy open for writing until it execs:
        // running it then fails with ETXTBSY, for a moment.
        eventually("the copy of bento to be runnable", || {
            lab.command(&["--version"])
                .output()
                .is_ok_and(|out| out.status.success())
        });
        lab.ok(&["pull", image()]);
        Some(lab)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn bento(&self) -> PathBuf {
        self.path("bin/bento")
    }

    /// `bento ARGS` as root, with this lab's home.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.bento());
        command
            .args(args)
            .env_clear()
            .env("BENTO_HOME", self.path("home"))
            .env("PATH", SYSTEM_PATH)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// As uid/gid 65534, rootless.
    fn rootless(&self, args: &[&str]) -> Command {
        self.rootless_with(&self.bento(), args)
    }

    /// As uid/gid 65534, rootless, with this copy of bento.
    fn rootless_with(&self, bento: &Path, args: &[&str]) -> Command {
        let home = self.path("nobody");
        if !home.exists() {
            std::fs::create_dir(&home).unwrap();
            std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let mut command = Command::new(bento);
        command
            .args(args)
            .env_clear()
            .env("BENTO_HOME", home)
            .env("PATH", SYSTEM_PATH)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .uid(NOBODY)
            .gid(NOBODY);
        command
    }

    /// `bento ARGS` as an engine runs it: PID 1 keeps the descriptors `create` was given, so
    /// its output goes to a file (`NAME.out`) rather than to a pipe a test would wait on.
    /// The exit status and stderr.
    fn engine(&self, args: &[&str], name: &str) -> (Option<i32>, String) {
        let out = std::fs::File::create(self.path(&format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(self.path(&format!("{name}.err"))).unwrap();
        let mut command = self.command(args);
        command.stdout(out).stderr(err);
        let status = command.status().unwrap();
        let stderr = std::fs::read_to_string(self.path(&format!("{name}.err"))).unwrap();
        (status.code(), stderr)
    }

    fn ok(&self, args: &[&str]) -> String {
        stdout(&check(self.command(args).output().unwrap(), 0, args))
    }

    /// `runc spec`'s bundle, with busybox, the probe, and `args` as its process.
    fn bundle(&self, name: &str, args: &[&str]) -> (PathBuf, Value) {
        let bundle = self.path(name);
        build_rootfs(&bundle.join("rootfs"));
        std::fs::copy(probe().unwrap(), bundle.join("rootfs/bin/probe")).unwrap();
        std::fs::copy(syscalls().unwrap(), bundle.join("rootfs/bin/syscalls")).unwrap();
        let made = Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .expect("runc spec (CI installs runc)");
        assert!(made.success());
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = json!(args);
        self.save(&bundle, &config);
        (bundle, config)
    }

    fn save(&self, bundle: &Path, config: &Value) {
        std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    }

    /// The pids our containers' states name (PID 1s, supervisors).
    fn recorded(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for states in [
            self.path("home/containers"),
            self.path("nobody/containers"),
            self.path("state"),
        ] {
            for entry in std::fs::read_dir(states).into_iter().flatten().flatten() {
                let Ok(bytes) = std::fs::read(entry.path().join("state.json")) else {
                    continue;
                };
                let state: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                for key in ["init", "supervisor"] {
                    if let Some(pid) = state[key]["pid"].as_i64() {
                        pids.push(pid as i32);
                    }
                }
            }
        }
        pids
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for pid in self.recorded() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(50));
        let _ = plumbing::remove_tree(self.dir.path());
    }
}

/// The arguments of `bento --root state VERB --bundle BUNDLE NAME`: an engine's call.
fn engine_args<'a>(verb: &'a str, bundle: &'a Path, name: &'a str) -> [&'a str; 6] {
    let bundle = bundle.to_str().unwrap();
    ["--root", "state", verb, "--bundle", bundle, name]
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn check(output: Output, code: i32, what: &[&str]) -> Output {
    assert_eq!(
        output.status.code(),
        Some(code),
        "bento {}\n--- stdout ---\n{}--- stderr ---\n{}",
        what.join(" "),
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Attack 1: Root in a root-run container was the host's root: it wrote host sysctls (826 of
/// them, kernel.core_pattern among them: a crash then runs the container's script as host
/// root), and with CAP_SYS_ADMIN it could unmount whatever hid /proc/sys.
#[test]
fn a_root_run_container_cannot_write_the_hosts_sysctls() {
    let Some(lab) = Lab::new() else { return };
    let script = "cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern && echo WROTE; \
                  umount /proc/sys && echo UNMOUNTED; \
                  grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status; \
                  wc -c < /proc/timer_list; wc -c < /proc/keys";
    let out = lab.ok(&["run", "--rm", image(), "sh", "-c", script]);
    assert!(!out.contains("WROTE"), "a host sysctl was written:\n{out}");
    assert!(
        !out.contains("UNMOUNTED"),
        "/proc/sys was unmounted:\n{out}"
    );
    assert!(
        out.contains(&format!("CapBnd:\t{DEFAULT_CAPS}"))
            && out.contains(&format!("CapEff:\t{DEFAULT_CAPS}"))
            && out.contains("NoNewPrivs:\t1"),
        "not the default capabilities and no_new_privs:\n{out}"
    );
    assert!(
        out.ends_with("0\n0\n"),
        "/proc/timer_list and /proc/keys not masked:\n{out}"
    );
}

/// Attack 2: CVE-2019-5736: the process `bento exec` forks joins the container before its
/// execve, and is visible there meanwhile: dumpable, its /proc/PID/exe the host's bento. The
/// container stopped it, took hold of that file, and once bento had exited wrote over it:
/// root's next bento ran the attacker's code.
#[test]
fn exec_cannot_be_made_to_overwrite_the_runtime_binary() {
    let Some(lab) = Lab::new() else { return };
    let before = std::fs::read(lab.bento()).unwrap();
    let attack = ["probe", "overwrite-exe", "exec"];
    lab.ok(&[&["run", "-d", "--name", "box", image()][..], &attack].concat());
    let log = lab.path("home/containers/box/log");
    let said = catch(&lab, &log, &["exec", "box", "true"]);
    // Not even readable: the process is not dumpable, and the container's root may not
    // ptrace it (no CAP_SYS_PTRACE among the default capabilities).
    assert!(said.contains("cannot open /proc/"), "{said}");
    assert!(
        std::fs::read(lab.bento()).unwrap() == before,
        "bento was replaced: {said}"
    );
    lab.ok(&["rm", "-f", "box"]);

    // The engines' path: create --bundle, start, exec --process; a privileged container
    // (every capability, CAP_SYS_PTRACE too), which may read the process: what it finds is
    // a read-only view of bento's file, which it cannot open for writing.
    let (bundle, mut config) = lab.bundle("bundle", &attack);
    let all = every_capability_we_have();
    config["process"]["capabilities"] = json!({
        "bounding": all, "effective": all, "permitted": all, "inheritable": all,
    });
    lab.save(&bundle, &config);
    let state = lab.path("state");
    let root = ["--root", state.to_str().unwrap()];
    let create = [
        &root[..],
        &["create", "--bundle", bundle.to_str().unwrap(), "engine"],
    ]
    .concat();
    let (code, stderr) = lab.engine(&create, "engine");
    assert_eq!(code, Some(0), "{stderr}");
    lab.ok(&[&root[..], &["start", "engine"]].concat());
    let process = lab.path("process.json");
    std::fs::write(
        &process,
        json!({ "args": ["true"], "cwd": "/", "user": { "uid": 0, "gid": 0 } }).to_string(),
    )
    .unwrap();
    let exec = [
        &root[..],
        &["exec", "--process", process.to_str().unwrap(), "engine"],
    ]
    .concat();
    let said = catch(&lab, &lab.path("engine.out"), &exec);
    assert!(!said.contains("wrote over"), "{said}");
    assert!(
        said.contains("Read-only file system"),
        "not bento's read-only view: {said}"
    );
    assert!(
        std::fs::read(lab.bento()).unwrap() == before,
        "bento was replaced: {said}"
    );
    lab.ok(&[&root[..], &["delete", "--force", "engine"]].concat());
}

/// Runs `bento ARGS` until the probe (whose output goes to `log`) has caught one of its
/// processes, then waits for what the probe made of it.
fn catch(lab: &Lab, log: &Path, args: &[&str]) -> String {
    let said = || std::fs::read_to_string(log).unwrap_or_default();
    for _ in 0..200 {
        if said().contains("caught") || said().contains("overwrite: ") {
            break;
        }
        let _ = lab.engine(args, "attempt");
    }
    assert!(
        said().contains("caught") || said().contains("overwrite: "),
        "the probe never saw bento's process: {}",
        said()
    );
    eventually("the probe to finish", || said().contains("overwrite: "));
    said()
}

/// Opens the test's secret directory as descriptor 7 in the child, as `7</dir` would.
fn with_fd_7(command: &mut Command, dir: &Path) {
    let dir = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: only async-signal-safe calls (open, dup2, close) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            if fd < 0 || libc::dup2(fd, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
}

/// Attack 3: The caller's descriptors reached the container (the CVE-2024-21626 class): with
/// `7</`, the container read the host's files through /proc/self/fd/7.
#[test]
fn the_callers_descriptors_never_reach_the_container() {
    let Some(lab) = Lab::new() else { return };
    let secrets = lab.path("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("shadow"), "root:secret\n").unwrap();
    let script = "probe fds; cat /proc/self/fd/7/shadow";
    // run
    let args = ["run", "--rm", image(), "sh", "-c", script];
    let mut run = lab.command(&args);
    with_fd_7(&mut run, &secrets);
    let out = stdout(&run.output().unwrap());
    assert!(
        out.starts_with("fds: []\n") && !out.contains("secret"),
        "run: {out}"
    );
    // create + start: PID 1 is a child of bento create's supervisor.
    let mut create = lab.command(&["create", "later", image(), "sh", "-c", script]);
    with_fd_7(&mut create, &secrets);
    check(create.output().unwrap(), 0, &["create"]);
    lab.ok(&["start", "later"]);
    eventually("the container to stop", || {
        lab.ok(&["status", "--json", "later"])
            .contains("\"stopped\"")
    });
    let log = lab.ok(&["logs", "later"]);
    assert!(
        log.starts_with("fds: []\n") && !log.contains("secret"),
        "create: {log}"
    );
    // exec
    lab.ok(&["run", "-d", "--name", "box", image(), "sleep", "1000"]);
    let mut exec = lab.command(&["exec", "box", "sh", "-c", script]);
    with_fd_7(&mut exec, &secrets);
    let out = stdout(&exec.output().unwrap());
    assert!(
        out.starts_with("fds: []\n") && !out.contains("secret"),
        "exec: {out}"
    );
    lab.ok(&["rm", "-f", "box"]);
}

/// Attack 4: TIOCSTI: without `-t`, the container shared the caller's terminal *as its
/// controlling terminal*, and pushed a command into the caller's shell.
#[test]
fn a_container_cannot_type_into_the_callers_terminal() {
    let Some(lab) = Lab::new() else { return };
    lab.ok(&["run", "-d", "--name", "box", image(), "sleep", "1000"]);
    for (who, args) in [
        (
            "root, run",
            vec!["run", "--rm", image(), "probe", "tiocsti", "x"],
        ),
        ("root, exec", vec!["exec", "box", "probe", "tiocsti", "x"]),
    ] {
        let terminal = Terminal::open(30, 100);
        let mut command = lab.command(&args);
        common::terminal::on_terminal(&mut command, &terminal.pts);
        let mut child = command.spawn().unwrap();
        assert_eq!(finish(&mut child, &terminal), Some(0), "{who}");
        let screen = answer(&terminal);
        assert!(screen.contains("tiocsti: refused"), "{who}: {screen}");
    }
    // Rootless, the container's root is the user: the terminal is theirs.
    let terminal = Terminal::open(30, 100);
    let mut command = lab.rootless(&["run", "--rm", image(), "probe", "tiocsti", "x"]);
    common::terminal::on_terminal(&mut command, &terminal.pts);
    let mut child = command.spawn().unwrap();
    assert_eq!(finish(&mut child, &terminal), Some(0), "rootless");
    let screen = answer(&terminal);
    assert!(screen.contains("tiocsti: refused"), "rootless: {screen}");
    lab.ok(&["rm", "-f", "box"]);
}

/// The screen once the probe has said whether its push went through.
fn answer(terminal: &Terminal) -> String {
    eventually("the probe's answer", || {
        let screen = terminal.screen();
        screen.contains("tiocsti: refused") || screen.contains("tiocsti: pushed")
    });
    terminal.screen()
}

/// Gives the child a session keyring of its own holding a key only it has, as a user
/// logged in with secrets in their keyring would.
fn with_a_secret_key(command: &mut Command) {
    // SAFETY: keyctl(2) and add_key(2) are plain system calls with C strings.
    unsafe {
        command.pre_exec(|| {
            let name = c"bento-test-session";
            if libc::syscall(
                libc::SYS_keyctl,
                1, /* JOIN_SESSION_KEYRING */
                name.as_ptr(),
            ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            let (kind, description, secret) = (c"user", c"bento-test-secret", b"s3cret");
            let added = libc::syscall(
                libc::SYS_add_key,
                kind.as_ptr(),
                description.as_ptr(),
                secret.as_ptr(),
                secret.len(),
                -3, /* KEY_SPEC_SESSION_KEYRING */
            );
            if added < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Attack 5: The caller's session keyring was the container's: it read a key the caller added.
#[test]
fn a_container_gets_a_session_keyring_of_its_own() {
    let Some(lab) = Lab::new() else { return };
    let search = ["probe", "keyring", "bento-test-secret"];
    let mut run = lab.command(&[&["run", "--rm", image()][..], &search].concat());
    with_a_secret_key(&mut run);
    let out = stdout(&run.output().unwrap());
    assert!(out.contains("keyring: not found"), "root, run: {out}");

    let mut rootless = lab.rootless(&[&["run", "--rm", image()][..], &search].concat());
    with_a_secret_key(&mut rootless);
    let out = stdout(&rootless.output().unwrap());
    assert!(out.contains("keyring: not found"), "rootless, run: {out}");

    lab.ok(&["run", "-d", "--name", "box", image(), "sleep", "1000"]);
    let mut exec = lab.command(&[&["exec", "box"][..], &search].concat());
    with_a_secret_key(&mut exec);
    let out = stdout(&exec.output().unwrap());
    assert!(out.contains("keyring: not found"), "root, exec: {out}");
    lab.ok(&["rm", "-f", "box"]);

    // An engine's bundle that asks for no seccomp filter: only the keyring stands between.
    let (bundle, _) = lab.bundle("bundle", &search);
    let args = engine_args("run", &bundle, "keys");
    let mut run = lab.command(&args);
    with_a_secret_key(&mut run);
    let out = stdout(&run.output().unwrap());
    // ENOKEY: the search was made, in a keyring of its own (bento's own containers refuse
    // keyctl(2) altogether, with step 11's filter: EPERM).
    assert!(
        out.contains("keyring: not found: Required key not available"),
        "run --bundle: {out}"
    );
}

/// A directory owned by the other user, who plants what they like in it.
fn others_directory(lab: &Lab, name: &str) -> PathBuf {
    let dir = lab.path(name);
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(OTHER), Some(OTHER)).unwrap();
    dir
}

/// A root-only file that must survive.
fn victim(lab: &Lab) -> PathBuf {
    let victim = lab.path("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    victim
}

/// Plants a symlink as the other user.
fn plant(link: &Path, target: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
    std::os::unix::fs::lchown(link, Some(OTHER), Some(OTHER)).unwrap();
}

/// Attack 6: `--pid-file` followed symlinks another user planted: root truncated a root-only file
/// to a pid (exec wrote through the path itself, create through `PATH.bento-PID`).
#[test]
fn pid_files_never_follow_what_another_user_planted() {
    let Some(lab) = Lab::new() else { return };
    let victim = victim(&lab);
    let dir = others_directory(&lab, "planted");
    let pid_file = dir.join("pid");
    plant(&pid_file, &victim);
    // create writes through a temporary name next to the pid file: plant the next ones.
    let next: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for pid in next..next + 300 {
        plant(&dir.join(format!("pid.bento-{pid}")), &victim);
    }
    let (bundle, _) = lab.bundle("bundle", &["sleep", "1000"]);
    let state = lab.path("state");
    let root = ["--root", state.to_str().unwrap()];
    let create = [
        &root[..],
        &[
            "create",
            "--bundle",
            bundle.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "box",
        ],
    ]
    .concat();
    let _ = lab.engine(&create, "create");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "create wrote through a planted link"
    );
    assert!(
        !std::fs::symlink_metadata(&pid_file)
            .unwrap()
            .file_type()
            .is_symlink(),
        "create left the planted link as the pid file"
    );
    lab.ok(&[&root[..], &["start", "box"]].concat());
    let exec_pid = dir.join("exec-pid");
    plant(&exec_pid, &victim);
    let process = lab.path("process.json");
    std::fs::write(
        &process,
        json!({ "args": ["true"], "cwd": "/", "user": { "uid": 0, "gid": 0 } }).to_string(),
    )
    .unwrap();
    let exec = [
        &root[..],
        &[
            "exec",
            "--process",
            process.to_str().unwrap(),
            "--pid-file",
            exec_pid.to_str().unwrap(),
            "--detach",
            "box",
        ],
    ]
    .concat();
    let _ = lab.engine(&exec, "exec");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "exec wrote through a planted link"
    );
    lab.ok(&[&root[..], &["delete", "--force", "box"]].concat());
}

/// Attack 7: A read-only bind mount was made, then made read-only by its path, resolved again: a
/// concurrent rename(2) RENAME_EXCHANGE of the destination with a symlink left the bind
/// writable. Now the mount is made read-only before it is attached, through descriptors.
#[test]
fn a_read_only_bind_stays_read_only_while_its_destination_is_swapped() {
    let Some(lab) = Lab::new() else { return };
    let host = lab.path("host-data");
    std::fs::create_dir(&host).unwrap();
    let (bundle, mut config) = lab.bundle(
        "bundle",
        &[
            "sh",
            "-c",
            "touch /data/breach /swap/breach 2>/dev/null; true",
        ],
    );
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "destination": "/data", "type": "bind", "source": host, "options": ["bind", "ro"] }));
    lab.save(&bundle, &config);
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir(rootfs.join("data")).unwrap();
    // A symlink to a mount point: the second resolution of the old code then made that
    // mount read-only, and left the bind on /data writable.
    std::os::unix::fs::symlink("/dev/shm", rootfs.join("swap")).unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let racer = {
        let (stop, rootfs) = (stop.clone(), rootfs.clone());
        std::thread::spawn(move || {
            let (a, b) = (
                CString::new(rootfs.join("data").into_os_string().into_encoded_bytes()).unwrap(),
                CString::new(rootfs.join("swap").into_os_string().into_encoded_bytes()).unwrap(),
            );
            while !stop.load(Ordering::SeqCst) {
                // SAFETY: renameat2(2) with two C strings.
                unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    );
                }
            }
        })
    };
    let state = lab.path("state");
    let mut breached = None;
    for attempt in 0..150 {
        let args = [
            "--root",
            state.to_str().unwrap(),
            "run",
            "--bundle",
            bundle.to_str().unwrap(),
            &format!("race{attempt}"),
        ];
        let _ = lab.command(&args).output().unwrap();
        if host.join("breach").exists() {
            breached = Some(attempt);
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    racer.join().unwrap();
    assert_eq!(
        breached, None,
        "the read-only bind was writable on that attempt"
    );
}

/// Forged state: a BENTO_HOME another user owns held a state.json naming a root process
/// and a root directory as its "cgroup"; root's `bento rm -f` killed the one and removed
/// the other. State is trusted only from a directory that is ours.
#[test]
fn root_trusts_no_state_another_user_could_have_written() {
    let Some(lab) = Lab::new() else { return };
    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = sleeper.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let precious = lab.path("precious-dir");
    std::fs::create_dir(&precious).unwrap();
    let home = others_directory(&lab, "forged");
    let web = home.join("containers/web");
    std::fs::create_dir_all(&web).unwrap();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let state = json!({
        "ociVersion": "1.0.2", "id": "web", "status": "running", "pid": pid, "bundle": web,
        "image": "x", "command": ["x"], "created": "2026-01-01T00:00:00Z", "started": null,
        "finished": null, "exitCode": null, "note": null,
        "init": { "pid": pid, "start": start }, "supervisor": null,
        "bootId": boot_id.trim(), "cgroups": [precious], "autoRemove": false,
    });
    std::fs::write(web.join("state.json"), state.to_string()).unwrap();
    std::fs::write(web.join("spec.json"), "{}").unwrap();
    for path in [
        home.join("containers"),
        web.clone(),
        web.join("state.json"),
        web.join("spec.json"),
    ] {
        std::os::unix::fs::lchown(&path, Some(OTHER), Some(OTHER)).unwrap();
    }
    let mut rm = lab.command(&["rm", "-f", "web"]);
    rm.env("BENTO_HOME", &home);
    let output = rm.output().unwrap();
    let alive = sleeper.try_wait().unwrap().is_none();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(alive, "root's bento killed a process a forged state named");
    assert!(
        precious.exists(),
        "root's bento removed a directory a forged state named"
    );
    assert_ne!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a private directory"), "{stderr}");
}

/// A `create --bundle` that fails after its PID 1 exists (here: a pid file that cannot be
/// written) left PID 1 blocked at the gate, with its namespaces, forever.
#[test]
fn a_failed_create_leaves_no_process_behind() {
    let Some(lab) = Lab::new() else { return };
    let (bundle, _) = lab.bundle("unwritable-pid-file", &["true"]);
    let args = [
        "--root",
        "state",
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "--pid-file",
        "/nonexistent/dir/pid",
        "box",
    ];
    let (code, stderr) = lab.engine(&args, "create");
    assert_eq!(code, Some(125), "{stderr}");
    let needle = bundle.to_string_lossy().into_owned();
    eventually("no process of the bundle left", || {
        std::fs::read_dir("/proc").unwrap().flatten().all(|entry| {
            std::fs::read(entry.path().join("cmdline")).map_or(true, |cmdline| {
                !String::from_utf8_lossy(&cmdline).contains(&needle)
            })
        })
    });
}

/// A change to a config.json.
type Edit = fn(&mut Value);

/// Values runc refuses at create, and bento accepted (some only to fail after `start`
/// had returned 0, one to run the command as root).
#[test]
fn configs_runc_refuses_are_refused_at_create() {
    let Some(lab) = Lab::new() else { return };
    let (bundle, config) = lab.bundle("bundle", &["id", "-u"]);
    let cases: [(&str, Edit); 14] = [
        ("uid", |c| {
            c["process"]["user"]["uid"] = json!(4294967295u32)
        }),
        ("gid", |c| {
            c["process"]["user"]["gid"] = json!(4294967295u32)
        }),
        ("NUL", |c| c["process"]["env"] = json!(["A=1\u{0}2"])),
        (
            "soft",
            |c| {
                c["process"]["rlimits"] =
                    json!([{ "type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024 }])
            },
        ),
        ("relative", |c| c["process"]["cwd"] = json!("tmp")),
        // An action bento cannot apply: refused, not dropped (podman would never know).
        ("SCMP_ACT_SOMETIMES", |c| {
            c["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_SOMETIMES" })
        }),
        // A profile too big for the kernel (4096 instructions): bento accepted it, and PID 1
        // failed after `start` had returned 0 (EINVAL); past 65535, libseccomp crashed.
        ("instructions", |c| {
            c["linux"]["seccomp"] = every_call_everywhere()
        }),
        // Argument comparisons cost libseccomp the cube of their number: 4,000 took six
        // minutes of CPU at create; past 65535 instructions, it crashed.
        ("compares arguments", |c| {
            c["linux"]["seccomp"] = kill_rules(40000, "SCMP_CMP_EQ")
        }),
        ("compares arguments", |c| {
            c["linux"]["seccomp"] = kill_rules(300, "SCMP_CMP_MASKED_EQ")
        }),
        // Sysctls of the whole machine, written by PID 1 as the host's root (attack 15).
        ("kernel.core_pattern", |c| {
            c["linux"]["sysctl"] = json!({ "kernel.core_pattern": "|/tmp/pwn" })
        }),
        ("net.ipv4/../../kernel/core_pattern", |c| {
            c["linux"]["sysctl"] = json!({ "net.ipv4/../../kernel/core_pattern": "|/tmp/pwn" })
        }),
        // The host's namespaces, joined by path (the values are the host's own: were the
        // write to happen, nothing would change).
        ("the uts namespace it joins is the host's", |c| {
            join_the_hosts(c, "uts");
            let name = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
            c["linux"]["sysctl"] = json!({ "kernel.domainname": name.trim_end() })
        }),
        ("the ipc namespace it joins is the host's", |c| {
            join_the_hosts(c, "ipc");
            let value = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
            c["linux"]["sysctl"] = json!({ "kernel.shmmni": value.trim_end() })
        }),
        // The IPC settings of the host's IPC namespace: no namespace of the container's own.
        ("kernel.shmmax", |c| {
            let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
            namespaces.retain(|ns| ns["type"] != "ipc");
            c["linux"]["sysctl"] = json!({ "kernel.shmmax": "1" })
        }),
    ];
    for (what, edit) in cases {
        let mut broken = config.clone();
        edit(&mut broken);
        lab.save(&bundle, &broken);
        let args = engine_args("create", &bundle, "bad");
        let (code, stderr) = lab.engine(&args, &what.replace('/', "_"));
        if code == Some(0) {
            lab.engine(&["--root", "state", "delete", "--force", "bad"], "cleanup");
        }
        assert_ne!(code, Some(0), "{what}: accepted");
        assert!(
            stderr.contains(what) || stderr.contains("range"),
            "{what}: {stderr}"
        );
        assert_eq!(
            stderr
                .lines()
                .filter(|l| l.starts_with("bento: error"))
                .count(),
            1,
            "{stderr}"
        );
        assert!(!lab.path("state/bad").exists(), "{what}: state left");
    }
    // memory.limit 0 means "no limit", as in runc: the command runs.
    let mut zero = config.clone();
    zero["linux"]["resources"] = json!({ "memory": { "limit": 0 } });
    lab.save(&bundle, &zero);
    let args = engine_args("run", &bundle, "zero");
    let out = check(lab.command(&args).output().unwrap(), 0, &args);
    assert_eq!(stdout(&out), "0\n");
}

/// config.json joins the host's namespace of this kind (bento's own: the test is the host's).
fn join_the_hosts(config: &mut Value, kind: &str) {
    let path = format!("/proc/{}/ns/{kind}", std::process::id());
    for ns in config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == kind {
            ns["path"] = json!(path);
        }
    }
}

/// A profile that refuses every call of x86_64's table (<asm/unistd_64.h>) on ten
/// little-endian architectures, and mmap(2) for twenty sets of arguments: 4576
/// instructions, past the kernel's 4096.
fn every_call_everywhere() -> Value {
    let header = std::fs::read_dir("/usr/include")
        .unwrap()
        .flatten()
        .map(|dir| dir.path().join("asm/unistd_64.h"))
        .find(|path| path.is_file())
        .expect("<asm/unistd_64.h> (linux-libc-dev, which build-essential installs)");
    let names: Vec<String> = std::fs::read_to_string(header)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("#define __NR_"))
        .filter_map(|rest| rest.split_whitespace().next().map(str::to_string))
        .collect();
    let architectures = [
        "X86_64",
        "X86",
        "X32",
        "AARCH64",
        "ARM",
        "RISCV64",
        "PPC64LE",
        "MIPSEL64N32",
        "MIPSEL64",
        "MIPSEL",
    ]
    .map(|arch| format!("SCMP_ARCH_{arch}"));
    let others: Vec<&String> = names.iter().filter(|name| *name != "mmap").collect();
    // And 20 rules for mmap(2), on all six arguments (120 comparisons, within bento's 256).
    let mmap = |n: u64| {
        let args: Vec<Value> = (0..6)
            .map(|i| json!({ "index": i, "value": (1u64 << 40) + n * 8 + i, "valueTwo": 3 + n, "op": "SCMP_CMP_MASKED_EQ" }))
            .collect();
        json!({ "names": ["mmap"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 + n, "args": args })
    };
    let mut rules: Vec<Value> = (0..20).map(mmap).collect();
    rules.push(json!({ "names": others, "action": "SCMP_ACT_ERRNO" }));
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": architectures, "syscalls": rules })
}

/// A profile of `rules` rules, each refusing kill(2) for one value of its second argument
/// (compared with `op`, on all 64 bits).
fn kill_rules(rules: u64, op: &'static str) -> Value {
    let rule = |n: u64| json!({ "names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{ "index": 1, "value": n + (1 << 40), "valueTwo": 3, "op": op }] });
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": (0..rules).map(rule).collect::<Vec<_>>() })
}

/// A detached container's log grew without bound (280 MiB/s with `yes`): it is rotated at
/// a size, as conmon's --log-size-max does.
#[test]
fn a_chatty_containers_log_stays_bounded() {
    let Some(lab) = Lab::new() else { return };
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-size-max",
        "1m",
        image(),
        "sh",
        "-c",
        "while true; do echo 0123456789abcdef; done",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let dir = lab.path("home/containers/chatty");
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    let total = size("log") + size("log.1");
    lab.ok(&["rm", "-f", "chatty"]);
    assert!(total > 0 && total <= 2 << 20, "the log holds {total} bytes");
}

/// Attack 12: the kernel itself. Root in a container could make every call a host's root
/// can, among them those no namespace isolates and most kernel exploits of recent years
/// went through: a nested user namespace (`unshare -U`, where every capability comes
/// back), the keyrings, eBPF, userfaultfd, mounts; and the calls of another architecture's
/// table. Bento's own containers get step 11's filter, as root and rootless, in PID 1 and
/// in every exec: step 11's probe gets what it gets in step 11.
#[test]
fn bentos_own_containers_refuse_the_calls_step_11_refuses() {
    let Some(lab) = Lab::new() else { return };
    let expected =
        std::fs::read_to_string(common::workspace().join("tests/snapshots/step_11_syscalls.snap"))
            .unwrap();
    let expected = expected.split("--- stdout ---\n").nth(1).unwrap();
    let as_root = lab.ok(&["run", "--rm", image(), "/bin/syscalls"]);
    assert_eq!(as_root, expected, "as root");
    let out = lab.rootless(&["pull", image()]).output().unwrap();
    check(out, 0, &["pull (rootless)"]);
    let args = ["run", "--rm", "--network", "none", image(), "/bin/syscalls"];
    let rootless = check(lab.rootless(&args).output().unwrap(), 0, &args);
    assert_eq!(stdout(&rootless), expected, "rootless");
    // exec: the container's filter, not the caller's lack of one.
    lab.ok(&["run", "-d", "--name", "box", image(), "sleep", "1000"]);
    assert_eq!(lab.ok(&["exec", "box", "/bin/syscalls"]), expected, "exec");
    lab.ok(&["rm", "-f", "box"]);
}

/// Attack 13: a silent downgrade. An engine's config.json carries its seccomp profile;
/// a runtime that drops it runs the container with no filter, and the engine's user never
/// knows. Bento applies each action and comparison of the profile, in PID 1 and in exec.
#[test]
fn an_engines_seccomp_profile_is_applied_to_pid_1_and_exec() {
    let Some(lab) = Lab::new() else { return };
    let script = "kill -0 $$; echo signal-0 $?; kill -USR1 $$ 2>/dev/null; echo SIGUSR1 $?; \
                  mkdir /tmp/plain && echo plain made; \
                  mv /tmp/plain /tmp/moved 2>&1 | grep -o 'Permission denied'; \
                  chmod 755 /tmp/plain && echo chmod 755; \
                  chmod 1777 /tmp/plain 2>&1 | grep -o 'No space left on device'; \
                  sh -c 'hostname x'; echo hostname $?; \
                  grep Seccomp: /proc/self/status";
    let (bundle, mut config) = lab.bundle("bundle", &["sh", "-c", script]);
    config["root"]["readonly"] = json!(false);
    let errno = |names: &[&str], errno: u32, args: Value| json!({ "names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno, "args": args });
    config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            // A name this machine does not know is skipped, not an error (as runc).
            errno(&["rename", "renameat", "renameat2", "no_such_call"], 13, json!([])),
            // kill(pid, sig): only signal 10, SIGUSR1.
            errno(&["kill"], 1, json!([{ "index": 1, "value": 10, "op": "SCMP_CMP_EQ" }])),
            // chmod(path, mode) with the sticky bit: mode & 0o1000 == 0o1000.
            errno(&["chmod"], 28, json!([{ "index": 1, "value": 0o1000, "valueTwo": 0o1000, "op": "SCMP_CMP_MASKED_EQ" }])),
            errno(&["fchmodat"], 28, json!([{ "index": 2, "value": 0o1000, "valueTwo": 0o1000, "op": "SCMP_CMP_MASKED_EQ" }])),
            { "names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS" },
        ]
    });
    lab.save(&bundle, &config);
    let expected = "signal-0 0\nSIGUSR1 1\nplain made\nPermission denied\nchmod 755\nNo space left on device\n\
                    hostname 159\nSeccomp:\t2\n";
    let args = engine_args("run", &bundle, "pid1");
    let out = check(lab.command(&args).output().unwrap(), 0, &args);
    assert_eq!(stdout(&out), expected, "PID 1");
    // exec into the same container: the same filter.
    config["process"]["args"] = json!(["sleep", "1000"]);
    lab.save(&bundle, &config);
    let create = engine_args("create", &bundle, "box");
    let (code, stderr) = lab.engine(&create, "box");
    assert_eq!(code, Some(0), "{stderr}");
    lab.ok(&["--root", "state", "start", "box"]);
    let exec = [
        "--root",
        "state",
        "exec",
        "box",
        "sh",
        "-c",
        &script
            .replace("/tmp/plain", "/tmp/plain2")
            .replace("/tmp/sticky", "/tmp/sticky2"),
    ];
    assert_eq!(lab.ok(&exec), expected, "exec");
    lab.ok(&["--root", "state", "delete", "--force", "box"]);
}

/// Attack 14: the working directory (CVE-2024-21626, runc's "leaky vessels"). PID 1 and
/// exec's process entered it while they still held descriptors of the host: the caller's
/// (`7</secrets`), the pid file's directory, the gate's. A working directory of
/// /proc/self/fd/N, given with `-w`, in process.cwd, or through a symlink in the container,
/// started the command in the host's tree, whose `..` climbs to the host's /.
#[test]
fn the_working_directory_never_leads_to_the_hosts_files() {
    let Some(lab) = Lab::new() else { return };
    let secrets = lab.path("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("shadow"), "root:secret\n").unwrap();
    let refused = |output: Output, who: &str| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stdout(&output).contains("secret") && output.status.code() != Some(0),
            "{who}: the command ran in the host's directory: {}{stderr}",
            stdout(&output)
        );
        assert!(
            stderr.contains("cannot enter the working directory"),
            "{who}: {stderr}"
        );
    };
    // run, in the caller's descriptor 7.
    let mut run = lab.command(&[
        "run",
        "--rm",
        "-w",
        "/proc/self/fd/7",
        image(),
        "cat",
        "shadow",
    ]);
    with_fd_7(&mut run, &secrets);
    refused(run.output().unwrap(), "run -w /proc/self/fd/7");
    // exec, in the caller's descriptor, in bento's own (the pid file's directory), and
    // through a symlink the container planted.
    lab.ok(&["run", "-d", "--name", "box", image(), "sleep", "1000"]);
    lab.ok(&["exec", "box", "ln", "-s", "/proc/self/fd/7", "/tmp/door"]);
    let pid_file = secrets.join("pid");
    for cwd in (3..=12)
        .map(|n| format!("/proc/self/fd/{n}"))
        .chain(["/tmp/door".into()])
    {
        let args = [
            "exec",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "-w",
            &cwd,
            "box",
            "cat",
            "shadow",
        ];
        let mut exec = lab.command(&args);
        with_fd_7(&mut exec, &secrets);
        refused(exec.output().unwrap(), &format!("exec -w {cwd}"));
    }
    lab.ok(&["rm", "-f", "box"]);
    // An engine's config.json, PID 1 at the gate: every descriptor it holds.
    let (bundle, mut config) = lab.bundle("bundle", &["cat", "shadow"]);
    for n in 3..=24 {
        config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        lab.save(&bundle, &config);
        let args = engine_args("create", &bundle, "cwd");
        let mut create = lab.command(&args);
        with_fd_7(&mut create, &secrets);
        let output = create.output().unwrap();
        if output.status.success() {
            lab.engine(&["--root", "state", "delete", "--force", "cwd"], "cleanup");
        }
        refused(output, &format!("create, process.cwd /proc/self/fd/{n}"));
    }
}

/// Attack 16: PID 1 ran from bento's binary on the host until its exec, in a PID namespace
/// of its own (where nobody else could see it). The exec itself led back: a command that is
/// a script starting with `#!/proc/self/exe` made the kernel run bento's binary as the
/// container's process, the image's ld.so ran with it, and wrote over bento through
/// /proc/self/exe. PID 1 runs from a binary no container can change, as exec's process does:
/// as root a read-only view of bento's file; rootless root's own file as it is, or a sealed
/// copy of the user's. Seen here at the gate,
/// before its exec, for bento's own containers (as root and rootless) and for an engine's.
#[test]
fn pid_1_runs_from_a_binary_nobody_can_change() {
    use nix::sys::statvfs::{FsFlags, fstatvfs};
    let Some(lab) = Lab::new() else { return };
    // What /proc/PID/exe of the container's PID 1 leads to.
    let exe = |state: &Path, name: &str| {
        let state: Value =
            serde_json::from_slice(&std::fs::read(state.join(name).join("state.json")).unwrap())
                .unwrap();
        let pid = state["init"]["pid"].as_i64().unwrap();
        let exe = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
        let sealed = nix::fcntl::fcntl(&exe, nix::fcntl::FcntlArg::F_GET_SEALS)
            .is_ok_and(|seals| seals & libc::F_SEAL_WRITE != 0);
        let read_only = fstatvfs(&exe).unwrap().flags().contains(FsFlags::ST_RDONLY);
        let stat = nix::sys::stat::fstat(&exe).unwrap();
        let roots = stat.st_uid == 0 && stat.st_mode & 0o022 == 0;
        match (sealed, read_only, roots) {
            (true, _, _) => "a sealed memfd",
            (_, true, _) => "a read-only mount",
            (_, _, true) => "root's file, that only root may write",
            _ => "bento's file, writable by its owner",
        }
    };
    lab.ok(&["create", "own", image(), "true"]);
    let own = exe(&lab.path("home/containers"), "own");
    lab.ok(&["rm", "-f", "own"]);
    assert_eq!(own, "a read-only mount", "bento's own, as root");
    let (bundle, _) = lab.bundle("bundle", &["true"]);
    let create = engine_args("create", &bundle, "engine");
    let (code, stderr) = lab.engine(&create, "engine");
    assert_eq!(code, Some(0), "{stderr}");
    let engine = exe(&lab.path("state"), "engine");
    lab.ok(&["--root", "state", "delete", "--force", "engine"]);
    assert_eq!(engine, "a read-only mount", "an engine's");
    // Rootless, an installed bento (root's, the lab's copy): the container can do no more
    // than its user, who may not write it. A bento of the user's own: the sealed copy.
    check(
        lab.rootless(&["pull", image()]).output().unwrap(),
        0,
        &["pull"],
    );
    let args = ["create", "--network", "none", "mine", image(), "true"];
    check(lab.rootless(&args).output().unwrap(), 0, &args);
    let mine = exe(&lab.path("nobody/containers"), "mine");
    check(
        lab.rootless(&["rm", "-f", "mine"]).output().unwrap(),
        0,
        &["rm"],
    );
    assert_eq!(mine, "root's file, that only root may write", "rootless");
    // Copied as root into a directory of root's (not into nobody's, where a planted
    // symlink would take root's write), then given to nobody.
    std::fs::create_dir(lab.path("nobodys-bin")).unwrap();
    let own = lab.path("nobodys-bin/bento");
    std::fs::copy(lab.bento(), &own).unwrap();
    std::os::unix::fs::chown(&own, Some(NOBODY), Some(NOBODY)).unwrap();
    eventually("nobody's copy of bento to be runnable", || {
        lab.rootless_with(&own, &["--version"])
            .output()
            .is_ok_and(|out| out.status.success())
    });
    check(lab.rootless_with(&own, &args).output().unwrap(), 0, &args);
    let mine = exe(&lab.path("nobody/containers"), "mine");
    check(
        lab.rootless(&["rm", "-f", "mine"]).output().unwrap(),
        0,
        &["rm"],
    );
    assert_eq!(mine, "a sealed memfd", "rootless, the user's own bento");
}

/// Attack 17: masks made of the image's /dev/null. Masks are copies of /dev/null, taken
/// after pivot_root: with no /dev of its own in config.json, that was the image's, a symlink
/// to /proc/sys/kernel/core_pattern, and /proc/keys (/proc/kcore, …) became a writable copy
/// of the host's core_pattern. Masks are copies of the host's /dev/null now, checked to be 1:3.
#[test]
fn masks_are_the_hosts_dev_null_whatever_the_image_holds() {
    let Some(lab) = Lab::new() else { return };
    let script = "wc -c < /proc/keys; ls -l /proc/keys";
    let (bundle, mut config) = lab.bundle("bundle", &["sh", "-c", script]);
    let mounts = config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    lab.save(&bundle, &config);
    let null = bundle.join("rootfs/dev/null");
    let _ = std::fs::remove_file(&null);
    std::fs::create_dir_all(null.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", &null).unwrap();
    let args = engine_args("run", &bundle, "null");
    let out = stdout(&check(lab.command(&args).output().unwrap(), 0, &args));
    assert!(
        out.starts_with("0\nc"),
        "/proc/keys is not the null device: {out}"
    );
}

/// Attack 18: bento's own annotations in an engine's bundle. bento's front end tells the
/// runtime where the image's files are with `org.bento.overlay.lower`; a bundle carrying
/// it got that directory of the host as the container's root. Podman copies an image's
/// annotations into config.json: under podman, an image could read the host's whole /.
#[test]
fn a_bundle_cannot_use_bentos_own_annotations() {
    let Some(lab) = Lab::new() else { return };
    let host = lab.path("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("host-secret"), "root:secret\n").unwrap();
    let (bundle, mut config) = lab.bundle("bundle", &["ls", "/"]);
    config["annotations"] = json!({
        "org.bento.overlay.lower": host.to_str().unwrap(),
        "org.opencontainers.image.title": "kept",
    });
    lab.save(&bundle, &config);
    let args = engine_args("run", &bundle, "annotated");
    let out = check(lab.command(&args).output().unwrap(), 0, &args);
    assert!(
        !stdout(&out).contains("host-secret") && stdout(&out).contains("bin"),
        "the container's root: {}",
        stdout(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the annotation org.bento.overlay.lower is left out"),
        "{stderr}"
    );
}

/// Runs the child with `file` open as descriptor 3 (`Some`), or with descriptor 3 closed.
fn with_fd_3(command: &mut Command, file: Option<&Path>) {
    let file = file.map(|file| CString::new(file.as_os_str().as_encoded_bytes()).unwrap());
    // SAFETY: only async-signal-safe calls (open, dup2, close) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            match &file {
                Some(file) => {
                    let fd = libc::open(file.as_ptr(), libc::O_RDONLY);
                    if fd < 0 || libc::dup2(fd, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if fd != 3 {
                        libc::close(fd);
                    }
                }
                None => {
                    libc::close(3);
                }
            }
            Ok(())
        });
    }
}

/// Attack 19: a hole in `--preserve-fds`. An engine says "pass 3 to 3 + N - 1" and leaves
/// one of them closed: the next descriptor bento opened itself (exec's pid file's
/// directory, on the host) took its number and was passed into the container, where a
/// `#!` interpreter path through /proc/self/fd/3 reached the host's files and overwrote a
/// binary there. Passed descriptors must be open; and an open one arrives.
#[test]
fn preserve_fds_passes_the_engines_descriptors_and_nothing_else() {
    let Some(lab) = Lab::new() else { return };
    let passed = lab.path("passed.txt");
    std::fs::write(&passed, "from the engine\n").unwrap();
    std::fs::set_permissions(&passed, std::fs::Permissions::from_mode(0o644)).unwrap();
    lab.ok(&["run", "-d", "--name", "box", image(), "sleep", "1000"]);
    let pid_file = lab.path("pid");
    let args = [
        "exec",
        "--preserve-fds",
        "1",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "box",
        "cat",
        "/proc/self/fd/3",
    ];
    let mut exec = lab.command(&args);
    with_fd_3(&mut exec, Some(&passed));
    let out = check(exec.output().unwrap(), 0, &args);
    assert_eq!(stdout(&out), "from the engine\n");
    // Descriptor 3 closed: refused, in one line, before bento opens anything.
    let mut exec = lab.command(&args);
    with_fd_3(&mut exec, None);
    let out = exec.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}{}", stdout(&out));
    assert!(
        stderr.starts_with("bento: error: --preserve-fds 1: descriptor 3 is not open\n"),
        "{stderr}"
    );
    lab.ok(&["rm", "-f", "box"]);
    // The same at create, and before bento opens its --log (which took number 3).
    let (bundle, _) = lab.bundle("bundle", &["true"]);
    let log = lab.path("bento.log");
    let args = [
        "--root",
        "state",
        "--log",
        log.to_str().unwrap(),
        "create",
        "--preserve-fds",
        "1",
        "--bundle",
        bundle.to_str().unwrap(),
        "holes",
    ];
    // To files: a PID 1 that got made would keep a pipe open, and the test wait on it.
    let mut create = lab.command(&args);
    with_fd_3(&mut create, None);
    let err = lab.path("holes.err");
    create.stdout(Stdio::null());
    create.stderr(std::fs::File::create(&err).unwrap());
    let status = create.status().unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    if status.success() {
        lab.engine(
            &["--root", "state", "delete", "--force", "holes"],
            "cleanup",
        );
    }
    assert!(
        stderr.starts_with("bento: error: --preserve-fds 1: descriptor 3 is not open\n"),
        "{stderr}"
    );
    assert!(!lab.path("state/holes").exists());
}

/// Attack 20: the cgroup namespace was made before PID 1 was in its cgroup, so its root was
/// the caller's cgroup: inside, /proc/self/cgroup named the container's cgroup below it,
/// and a cgroup2 mount showed the cgroups beside it (other containers'). PID 1 makes it
/// once it is in its own cgroup, which is then `/` inside.
#[test]
fn the_cgroup_namespace_is_rooted_at_the_containers_cgroup() {
    let Some(lab) = Lab::new() else { return };
    let (bundle, mut config) = lab.bundle("bundle", &["cat", "/proc/self/cgroup"]);
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "cgroup" }));
    config["linux"]["resources"] = json!({ "pids": { "limit": 100 } });
    lab.save(&bundle, &config);
    let args = engine_args("run", &bundle, "cgns");
    let out = stdout(&check(lab.command(&args).output().unwrap(), 0, &args));
    let pids = out
        .lines()
        .find(|line| line.contains(":pids:") || line.starts_with("0::"));
    assert!(
        pids.is_some_and(|line| line.ends_with(":/")),
        "the container's own cgroup is not its root:\n{out}"
    );
    // Bento's own containers get a cgroup namespace too, as root and rootless: no host
    // cgroup path inside.
    let own = lab.ok(&["run", "--rm", image(), "cat", "/proc/self/cgroup"]);
    assert!(
        own.lines().all(|line| line.ends_with(":/")),
        "as root:\n{own}"
    );
    check(
        lab.rootless(&["pull", image()]).output().unwrap(),
        0,
        &["pull"],
    );
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        image(),
        "cat",
        "/proc/self/cgroup",
    ];
    let own = stdout(&check(lab.rootless(&args).output().unwrap(), 0, &args));
    assert!(
        own.lines().all(|line| line.ends_with(":/")),
        "rootless:\n{own}"
    );
}

/// Attack 21: a profile that cancels the drop. Without no_new_privs the filter is loaded
/// before the user and capabilities are set; a profile answering setresuid, setresgid,
/// setgroups, capset and prctl(PR_CAPBSET_DROP) with a success that does nothing
/// (SCMP_ACT_ERRNO, errnoRet 0) left the container root with every capability
/// (open_by_handle_at then read the host's files). Podman takes a profile from an image's
/// label with --seccomp-policy=image. Bento now sets the bounding set and the user before
/// the filter, and reads the capabilities back after it (capget), and refuses.
#[test]
fn a_seccomp_profile_cannot_cancel_the_drop_of_privileges() {
    let Some(lab) = Lab::new() else { return };
    let (bundle, mut config) = lab.bundle("bundle", &["id", "-u"]);
    let pretend = |names: &[&str], args: Value| json!({ "names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 0, "args": args });
    config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            pretend(&["capset", "setresuid", "setresgid", "setgroups"], json!([])),
            // PR_CAPBSET_DROP is 24.
            pretend(&["prctl"], json!([{ "index": 0, "value": 24, "op": "SCMP_CMP_EQ" }])),
        ]
    });
    config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    config["process"]["noNewPrivileges"] = json!(false);
    lab.save(&bundle, &config);
    let args = engine_args("run", &bundle, "pretend");
    let out = lab.command(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(0) && !stdout(&out).contains('0'),
        "ran as uid {}{stderr}",
        stdout(&out)
    );
    assert!(
        stderr.contains("capabilities are") && stderr.contains("more than the spec lists"),
        "{stderr}"
    );
}

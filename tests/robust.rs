//! The steps on a hostile or careless host: user namespaces forbidden, signals, killed
//! steps, orphans, and proof that nothing leaks onto the host (hostname, mounts, processes,
//! files), rootless and as real root.
//!
//! These tests watch the whole machine's process list, so they run one at a time.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{STEPS, fixture, running_as_root, step};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Pids of the processes running `sleep MARKER` (not the step whose arguments say so).
fn processes_with(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if cmdline == format!("sleep\0{marker}\0").as_bytes() {
                found.push(pid);
            }
        }
    }
    found
}

/// Polls `ready` every 10 ms for up to 10 s (a safety net, not a speed requirement).
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` to exit (for up to 10 s, then kills it and fails).
fn wait_exit(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the step did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads the child's stdout until a line equal to `line` arrives.
fn wait_for_line(child: &mut Child, line: &str) {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut got = String::new();
    loop {
        got.clear();
        assert!(
            reader.read_line(&mut got).unwrap() > 0,
            "the container ended before printing {line:?}"
        );
        if got.trim_end() == line {
            return;
        }
    }
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
}

/// A number that marks this test's processes (`sleep 1000NNN`).
fn marker(n: usize, salt: u32) -> String {
    format!("{}", 1_000_000 + salt * 10 + n as u32)
}

// ---- hosts that forbid user namespaces ----------------------------------------------------

#[test]
fn a_refused_user_namespace_says_why_and_points_to_doctor() {
    let _serial = serial();
    if plumbing::host::Sysctls::host().userns_block().is_some() {
        eprintln!("SKIPPED: this host itself blocks user namespaces; `just doctor` says why");
        assert!(std::env::var_os("CI").is_none(), "CI hosts must allow them");
        return;
    }
    let deny = fixture().bin.join("deny");
    for n in 2..STEPS.len() {
        let run = step(n, &["true"]).wrapped_in(&deny, &["userns"]).run();
        run.assert_code(125);
        let error = run
            .stderr
            .split_once("error: ")
            .map(|(_, error)| error)
            .unwrap_or_default();
        assert_eq!(
            error,
            "unshare(CLONE_NEWUSER) failed: EPERM: Operation not permitted\n  \
             hint: this host does not allow unprivileged user namespaces \
             (inside Docker or WSL1?): run `just doctor`\n"
        );
    }
}

#[test]
fn with_the_apparmor_restriction_set_the_step_names_the_sysctl() {
    let _serial = serial();
    if !common::can_run_as_real_root() {
        return;
    }
    // A private mount namespace where /proc/sys/kernel says what Ubuntu 24.04 says, and a
    // seccomp filter refusing the user namespace the way AppArmor does.
    let script = r#"
        mount -t tmpfs tmpfs /proc/sys/kernel &&
        echo 1 > /proc/sys/kernel/apparmor_restrict_unprivileged_userns &&
        exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
    "#;
    let output = Command::new("unshare")
        .args(["--mount", "sh", "-c", script, "sh"])
        .arg(fixture().bin.join("deny"))
        .arg("userns")
        .arg(fixture().bin.join(STEPS[2]))
        .arg("true")
        .current_dir(&fixture().dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.ends_with(
            "step-02-userns: error: unshare(CLONE_NEWUSER) failed: EPERM: Operation not permitted\n  \
             hint: AppArmor restricts unprivileged user namespaces \
             (kernel.apparmor_restrict_unprivileged_userns = 1).\n        \
             Fix: `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` \
             (`just doctor` shows how to make it permanent)\n"
        ),
        "{stderr}"
    );
}

#[test]
fn the_doctor_meets_a_real_refusal() {
    let _serial = serial();
    let deny = fixture().bin.join("deny");
    let mut command = Command::new(&deny);
    command
        .arg("userns")
        .arg(fixture().bin.join("bento-doctor"))
        .env("BENTO_ROOTFS", &fixture().rootfs);
    if running_as_root() {
        use std::os::unix::process::CommandExt;
        command.uid(common::NOBODY).gid(common::NOBODY);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "  ❌ User namespaces  unshare(CLONE_NEWUSER) failed: EPERM: Operation not permitted"
        ),
        "{stdout}"
    );
}

// ---- signals and exit status ----------------------------------------------------------------

/// Steps 03+ stand between the caller and PID 1.
const SUPERVISED: [usize; 6] = [3, 4, 5, 6, 7, 8];

#[test]
fn signals_sent_to_the_step_reach_the_container() {
    let _serial = serial();
    let cases = [
        (Signal::SIGTERM, "TERM", 42),
        (Signal::SIGINT, "INT", 43),
        (Signal::SIGHUP, "HUP", 44),
        (Signal::SIGQUIT, "QUIT", 45),
    ];
    for n in SUPERVISED {
        for (sig, name, code) in cases {
            // PID 1 with a handler: it gets the forwarded signal and exits its own way.
            let script =
                format!("trap 'exit {code}' {name}; echo ready; while :; do sleep 0.05; done");
            let mut child = step(n, &["sh", "-c", &script]).spawn();
            wait_for_line(&mut child, "ready");
            signal(&child, sig);
            let status = wait_exit(&mut child);
            assert_eq!(status.code(), Some(code), "step {n}, SIG{name}");
        }
    }
}

#[test]
fn kill_never_leaves_a_process_behind() {
    let _serial = serial();
    for n in SUPERVISED {
        // `sleep` as PID 1 has no handler: it ignores the forwarded SIGTERM (the PID 1 trap),
        // and the parent sends SIGKILL after its grace period.
        let mark = marker(n, 1);
        let mut child = step(n, &["sleep", &mark]).spawn();
        wait_until("the container's sleep", || {
            !processes_with(&mark).is_empty()
        });
        signal(&child, Signal::SIGTERM);
        let status = wait_exit(&mut child);
        assert_eq!(status.code(), Some(128 + 9), "step {n}: PID 1 was killed");
        assert_eq!(processes_with(&mark), Vec::<i32>::new(), "step {n}");

        // kill -9 of the step itself: the kernel kills PID 1 (PR_SET_PDEATHSIG).
        let mark = marker(n, 2);
        let mut child = step(n, &["sleep", &mark]).spawn();
        wait_until("the container's sleep", || {
            !processes_with(&mark).is_empty()
        });
        signal(&child, Signal::SIGKILL);
        wait_exit(&mut child);
        wait_until("PID 1 to die with its parent", || {
            processes_with(&mark).is_empty()
        });
    }
    for n in [0, 2] {
        // Without a supervisor the step *is* the command: the signal ends it directly.
        let mark = marker(n, 3);
        let mut child = step(n, &["sleep", &mark]).spawn();
        wait_until("the sleep", || !processes_with(&mark).is_empty());
        signal(&child, Signal::SIGTERM);
        let status = wait_exit(&mut child);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(15), "step {n}");
    }
}

#[test]
fn when_pid_1_exits_its_orphans_die_too() {
    let _serial = serial();
    for n in SUPERVISED {
        let mark = marker(n, 4);
        let script = format!("sleep {mark} & echo started");
        let run = step(n, &["sh", "-c", &script]).run();
        run.assert_code(0);
        assert_eq!(run.stdout, "started\n");
        wait_until("the orphaned sleep to be killed", || {
            processes_with(&mark).is_empty()
        });
    }
}

// ---- nothing leaks ------------------------------------------------------------------------------

/// What a step could leave behind on the host, as seen from this test process.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    hostname: String,
    mounts: String,
    children: Vec<i32>,
    files: Vec<PathBuf>,
}

/// The processes whose parent is this test process. With PR_SET_CHILD_SUBREAPER set, every
/// orphan of a step lands here instead of with init, so no leftover can slip away unseen;
/// zombies (already dead) are reaped first.
fn our_children() -> Vec<i32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
    let me = std::process::id().to_string();
    let mut children: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (ppid == me).then_some(pid)
        })
        .collect();
    children.sort();
    children
}

fn host_state() -> HostState {
    let mut files: Vec<PathBuf> = walk(&fixture().dir);
    files.sort();
    HostState {
        hostname: common::hostname(),
        mounts: std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        children: our_children(),
        files,
    }
}

/// Every path below `dir`, including the rootfs: a step must not write anywhere.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
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
    out
}

#[test]
fn no_step_leaks_anything_onto_the_host() {
    let _serial = serial();
    nix::sys::prctl::set_child_subreaper(true).expect("become a subreaper");
    let before = host_state();
    for n in 0..STEPS.len() {
        // Success, failure, and killed.
        let _ = step(n, &["sh", "-c", "hostname"]).run();
        let _ = step(n, &["no-such-command"]).run();
        let mark = marker(n, 5);
        let mut child = step(n, &["sleep", &mark]).spawn();
        if n != 1 {
            wait_until("the sleep", || !processes_with(&mark).is_empty());
        }
        signal(&child, Signal::SIGTERM);
        wait_exit(&mut child);
        wait_until("every process of the step to end", || {
            our_children().is_empty()
        });
        let after = host_state();
        assert_eq!(after.hostname, before.hostname, "step {n}: hostname");
        assert!(
            after.mounts == before.mounts,
            "step {n} changed the mount table:\n{}",
            after.mounts
        );
        assert_eq!(after.children, before.children, "step {n} left processes");
        let new: Vec<_> = after
            .files
            .iter()
            .filter(|f| !before.files.contains(f))
            .collect();
        // Leftovers of steps killed with SIGKILL by earlier tests may go: the next run of
        // their step removes them. Anything else must stay.
        let gone: Vec<_> = before
            .files
            .iter()
            .filter(|f| !after.files.contains(f) && !f.starts_with(&fixture().tmp))
            .collect();
        assert!(
            new.is_empty() && gone.is_empty(),
            "step {n}: files {new:?} appeared, {gone:?} vanished"
        );
    }
}

#[test]
fn with_a_shared_root_mounts_stay_in_the_container() {
    let _serial = serial();
    if !common::can_run_as_real_root() {
        return;
    }
    // Reproduce a systemd host: in a mount namespace of our own, make / shared, then run
    // every step that mounts (04-08), rootless and as real root, and compare the mount
    // table. (The user namespace alone already turns the container's copies of shared
    // mounts into non-shared ones, so this catches leaks of any kind, not a missing
    // MS_PRIVATE in particular: step 04's README has an exercise for that.)
    let script = r#"
        mount --make-rshared / &&
        grep -q ' / / .* shared:' /proc/self/mountinfo || { echo "/ is not shared"; exit 90; }
        # Step 12's slirp4netns opens /dev/net/tun as nobody: a usable one, this namespace's.
        mount -t tmpfs -o mode=755 tun /dev/net && mknod -m 666 /dev/net/tun c 10 200 || exit 94
        before=$(cat /proc/self/mountinfo)
        for step in "$@"; do
            "$step" true 2>/dev/null || exit 91
            setpriv --reuid=65534 --regid=65534 --clear-groups "$step" true 2>/dev/null || exit 92
            [ "$(cat /proc/self/mountinfo)" = "$before" ] || { echo "leak from $step"; exit 93; }
        done
        echo clean
    "#;
    let output = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "unchanged",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .args(STEPS[4..].iter().map(|name| fixture().bin.join(name)))
        .env("BENTO_ROOTFS", &fixture().rootfs)
        .env("TMPDIR", &fixture().tmp)
        .current_dir(&fixture().dir)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "clean\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success());
}

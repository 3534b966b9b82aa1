//! The steps on a hostile or careless host: user namespaces forbidden, signals, killed
//! steps, orphans, and proof that nothing leaks onto the host (hostname, mounts, processes,
//! files), rootless and as real root.
//!
//! One test per step (see `per_step!`), so that `just check N` runs them on a learner's step
//! too: each marks its processes with a number of its own (`sleep 1000SNN.PID`), and the tests
//! run in parallel. When a step misbehaves, the message says what it did and which part of
//! the lesson that points to: these are the learner's hints.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use common::{STEPS, fixture, running_as_root, step, wait_until, walk};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Pids of the processes whose command line is `ARGS...` exactly, e.g. `sleep MARKER`.
fn processes_running(args: &[&str]) -> Vec<i32> {
    processes_where(|cmdline| cmdline == args)
}

/// Pids of the processes running `sleep MARKER` (not the step whose arguments say so).
fn processes_with(marker: &str) -> Vec<i32> {
    processes_running(&["sleep", marker])
}

/// Pids of the processes with `marker` among their arguments: the step itself, PID 1 before
/// its exec (a fork of the step), and the command.
fn processes_mentioning(marker: &str) -> Vec<i32> {
    processes_where(|cmdline| cmdline.contains(&marker))
}

fn processes_where(wanted: impl Fn(&[&str]) -> bool) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline);
            let args: Vec<&str> = cmdline.trim_end_matches('\0').split('\0').collect();
            if wanted(&args) {
                found.push(pid);
            }
        }
    }
    found
}

/// How long a step may take to do what it must after a signal: the 2 s grace before
/// SIGKILL, and a margin for a busy machine. A wrong step fails after this, not later.
const BOUND: Duration = Duration::from_secs(5);

/// How long the kernel may take for what it does at once (kill PID 1 when its parent dies,
/// or the rest of a PID namespace when PID 1 does): a margin for a busy machine.
const AT_ONCE: Duration = Duration::from_secs(2);

/// Waits for `child` to exit, for up to [`BOUND`]; `None` if it did not (it is then
/// killed, with its container: PR_SET_PDEATHSIG, or the marker's processes by the caller).
fn wait_exit(child: &mut Child) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the container runs `sleep MARKER`; `Err` if it never did, also as soon as the
/// step has ended (a wrong step fails at once, not after [`BOUND`]).
fn sleep_started(child: &mut Child, marker: &str) -> Result<(), ()> {
    let mut ended = false;
    if !wait_until(BOUND, || {
        ended = ended || child.try_wait().is_ok_and(|status| status.is_some());
        ended || !processes_with(marker).is_empty()
    }) {
        return Err(());
    }
    match ended && processes_with(marker).is_empty() {
        true => Err(()),
        false => Ok(()),
    }
}

/// Kills what is left of a failed test's container, so that nothing outlives the test.
fn kill_all(marker: &str) {
    for pid in processes_mentioning(marker) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Reads the child's stdout until a line equal to `line` arrives (for up to [`BOUND`]);
/// `Err` with what it printed if the line never came.
fn wait_for_line(child: &mut Child, line: &str) -> Result<(), String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for got in BufReader::new(stdout).lines() {
            let Ok(got) = got else { break };
            if send.send(got).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut printed = String::new();
    while let Some(left) = BOUND.checked_sub(start.elapsed()) {
        match receive.recv_timeout(left) {
            Ok(got) if got == line => return Ok(()),
            Ok(got) => printed.push_str(&format!("{got}\n")),
            Err(_) => break,
        }
    }
    Err(printed)
}

/// Sends `signal` to the step, unless it has ended already (and its pid may be another's).
fn signal(child: &mut Child, signal: Signal) {
    if let Ok(None) = child.try_wait() {
        let _ = kill(Pid::from_raw(child.id() as i32), signal);
    }
}

/// A number that marks one test's processes (`sleep 1000SNN.PID`): step `n`, test `salt`,
/// and this test binary (`just check` runs several at once, on the same step).
fn marker(n: usize, salt: u32) -> String {
    format!(
        "{}.{}",
        1_000_000 + salt * 100 + n as u32,
        std::process::id()
    )
}

// ---- hosts that forbid user namespaces ----------------------------------------------------

per_step!(a_refused_user_namespace_says_why_and_points_to_doctor: step_02 = 2, step_03 = 3,
    step_04 = 4, step_05 = 5, step_06 = 6, step_07 = 7, step_08 = 8, step_09 = 9, step_10 = 10, step_11 = 11, step_12 = 12);
fn a_refused_user_namespace_says_why_and_points_to_doctor(n: usize) {
    if plumbing::host::Sysctls::host().userns_block().is_some() {
        common::skipped("this host itself blocks user namespaces; `just doctor` says why");
        return;
    }
    let deny = fixture().bin.join("deny");
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

#[test]
fn with_the_apparmor_restriction_set_the_step_names_the_sysctl() {
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

/// Steps 03+ stand between the caller and PID 1: one test of each kind per step.
macro_rules! supervised {
    ($check:ident) => {
        per_step!($check: step_03 = 3, step_04 = 4, step_05 = 5, step_06 = 6, step_07 = 7,
            step_08 = 8, step_09 = 9, step_10 = 10, step_11 = 11, step_12 = 12);
    };
}

/// What went wrong when the step did not end as `expected` after `sent`, in the lesson's
/// words: the parent catches the signal (plumbing::catch_signals, before the fork), passes it
/// on to PID 1 (plumbing::forward_signals), and PID 1 dies with its parent (PR_SET_PDEATHSIG).
fn after_signal(n: usize, sent: Signal, status: Option<ExitStatus>, expected: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    let what = match status {
        None => format!(
            "step {n:02} was still running {} s after {sent}: the parent caught it and PID 1 \
             never got it. The parent must pass caught signals on to PID 1 (call \
             plumbing::forward_signals(child) before waitpid); that also arms the SIGKILL for \
             a PID 1 that ignores them",
            BOUND.as_secs()
        ),
        Some(status) if status.signal() == Some(sent as i32) => format!(
            "step {n:02} itself died of {sent}: nothing caught it, so PID 1 never got it. Catch \
             the signals before the fork (plumbing::catch_signals()), so that the parent \
             survives them and passes them on"
        ),
        Some(status) => format!("step {n:02} ended with {status} after {sent}"),
    };
    format!("{what} (expected: {expected})")
}

supervised!(signals_sent_to_the_step_reach_the_container);
fn signals_sent_to_the_step_reach_the_container(n: usize) {
    let cases = [
        (Signal::SIGTERM, "TERM", 42),
        (Signal::SIGINT, "INT", 43),
        (Signal::SIGHUP, "HUP", 44),
        (Signal::SIGQUIT, "QUIT", 45),
    ];
    for (sig, name, code) in cases {
        // PID 1 with a handler: it gets the forwarded signal and exits its own way.
        let mark = marker(n, 1);
        let script = format!("trap 'exit {code}' {name}; echo ready; while :; do sleep 0.05; done");
        let mut child = step(n, &["sh", "-c", &script, &mark]).spawn();
        if let Err(printed) = wait_for_line(&mut child, "ready") {
            let _ = child.kill();
            kill_all(&mark);
            panic!("step {n:02}: the container never started its command; it printed:\n{printed}");
        }
        signal(&mut child, sig);
        let status = wait_exit(&mut child);
        kill_all(&mark);
        assert_eq!(
            status.and_then(|status| status.code()),
            Some(code),
            "{}",
            after_signal(n, sig, status, &format!("PID 1's trap exits {code}"))
        );
    }
}

supervised!(kill_never_leaves_a_process_behind);
fn kill_never_leaves_a_process_behind(n: usize) {
    // `sleep` as PID 1 has no handler: it ignores the forwarded SIGTERM (the PID 1 trap),
    // and the parent sends SIGKILL after its grace period.
    let mark = marker(n, 2);
    let mut child = step(n, &["sleep", &mark]).spawn();
    let started = sleep_started(&mut child, &mark);
    if started.is_err() {
        let _ = child.kill();
        kill_all(&mark);
        panic!("step {n:02}: the container's `sleep {mark}` never started");
    }
    signal(&mut child, Signal::SIGTERM);
    let status = wait_exit(&mut child);
    let left = processes_with(&mark);
    kill_all(&mark);
    assert_eq!(
        status.and_then(|status| status.code()),
        Some(128 + 9),
        "{}",
        after_signal(
            n,
            Signal::SIGTERM,
            status,
            "PID 1 ignores it, and is killed 2 s later: 137"
        )
    );
    assert_eq!(
        left,
        Vec::<i32>::new(),
        "step {n:02}: PID 1 outlived its step"
    );

    // kill -9 of the step itself: the kernel kills PID 1 (PR_SET_PDEATHSIG).
    let mark = marker(n, 3);
    let mut child = step(n, &["sleep", &mark]).spawn();
    let started = sleep_started(&mut child, &mark);
    signal(&mut child, Signal::SIGKILL);
    let _ = child.wait();
    let died = wait_until(AT_ONCE, || processes_with(&mark).is_empty());
    kill_all(&mark);
    assert!(
        started.is_ok(),
        "step {n:02}: the container's `sleep {mark}` never started"
    );
    assert!(
        died,
        "step {n:02} was killed with SIGKILL, and its PID 1 lived on: the child must ask the \
         kernel to kill it when its parent dies, first thing after the fork \
         (prctl(PR_SET_PDEATHSIG, SIGKILL): die_with_parent)"
    );
}

per_step!(without_a_supervisor_a_signal_ends_the_command: step_00 = 0, step_02 = 2);
fn without_a_supervisor_a_signal_ends_the_command(n: usize) {
    use std::os::unix::process::ExitStatusExt;
    // Without a supervisor the step *is* the command: the signal ends it directly.
    let mark = marker(n, 4);
    let mut child = step(n, &["sleep", &mark]).spawn();
    let started = sleep_started(&mut child, &mark);
    signal(&mut child, Signal::SIGTERM);
    let status = wait_exit(&mut child);
    kill_all(&mark);
    assert!(started.is_ok(), "step {n:02}: `sleep {mark}` never started");
    assert_eq!(status.and_then(|s| s.signal()), Some(15), "step {n:02}");
}

supervised!(when_pid_1_exits_its_orphans_die_too);
fn when_pid_1_exits_its_orphans_die_too(n: usize) {
    let mark = marker(n, 5);
    // The background sleep's stdout closed: the run ends when PID 1 does.
    let script = format!("sleep {mark} >&- 2>&- & echo started");
    let run = step(n, &["sh", "-c", &script]).run();
    let gone = wait_until(AT_ONCE, || processes_with(&mark).is_empty());
    kill_all(&mark);
    run.assert_code(0);
    assert_eq!(run.stdout, "started\n");
    assert!(
        gone,
        "step {n:02}: PID 1 exited, and the `sleep` it left running in the background lived \
         on: when PID 1 of a PID namespace dies, the kernel kills the rest of it, so the \
         command must run as PID 1 of a namespace of its own (unshare(CLONE_NEWPID), fork)"
    );
}

// ---- nothing leaks ------------------------------------------------------------------------------

per_step!(no_step_leaks_anything_onto_the_host: step_00 = 0, step_01 = 1, step_02 = 2,
    step_03 = 3, step_04 = 4, step_05 = 5, step_06 = 6, step_07 = 7, step_08 = 8, step_09 = 9,
    step_10 = 10, step_11 = 11, step_12 = 12);
fn no_step_leaks_anything_onto_the_host(n: usize) {
    use std::os::unix::fs::PermissionsExt;
    // A TMPDIR of its own (the overlay's layers of steps 07+ go there), to see what a run
    // leaves in it, and the rootfs, which no step may change.
    let tmp = fixture().dir.join(format!("tmp-leaks-{n}"));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let files = || [walk(&tmp), walk(&fixture().rootfs)].concat();
    // The mounts at the paths a step mounts on, its rootfs and scratch directories: other
    // tests may mount elsewhere meanwhile (`just test` runs the test files at once).
    let mounts = || -> Vec<String> {
        let ours = [&fixture().dir, &fixture().rootfs].map(|path| path.to_string_lossy());
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|line| {
                let at = line.split(' ').nth(4).unwrap_or_default();
                ours.iter().any(|path| at.starts_with(path.as_ref()))
            })
            .map(str::to_string)
            .collect()
    };
    let (hostname, mounts_before, files_before) = (common::hostname(), mounts(), files());
    // Success, failure, and killed: each run marked, to find what it leaves running.
    let mark = marker(n, 6);
    let _ = step(n, &["sh", "-c", "hostname", &mark])
        .env("TMPDIR", &tmp)
        .run();
    let _ = step(n, &["no-such-command", &mark])
        .env("TMPDIR", &tmp)
        .run();
    let mut child = step(n, &["sleep", &mark]).env("TMPDIR", &tmp).spawn();
    let started = n == 1 || sleep_started(&mut child, &mark).is_ok();
    signal(&mut child, Signal::SIGTERM);
    let status = wait_exit(&mut child);
    let gone = wait_until(BOUND, || processes_mentioning(&mark).is_empty());
    kill_all(&mark);
    assert!(started, "step {n:02}: `sleep {mark}` never started");
    assert!(
        status.is_some(),
        "{}",
        after_signal(n, Signal::SIGTERM, status, "it ends")
    );
    assert!(gone, "step {n:02} left processes running");
    assert_eq!(common::hostname(), hostname, "step {n:02}: hostname");
    let after = mounts();
    assert!(
        after == mounts_before,
        "step {n:02} left mounts on the host:\n{}",
        after.join("\n")
    );
    let files_after = files();
    let new: Vec<_> = files_after
        .iter()
        .filter(|file| !files_before.contains(file))
        .collect();
    let gone: Vec<_> = files_before
        .iter()
        .filter(|file| !files_after.contains(file))
        .collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "step {n:02} changed files: {new:?} appeared, {gone:?} vanished"
    );
}

#[test]
fn with_a_shared_root_mounts_stay_in_the_container() {
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
    // --propagation private first: cut from the host's peer groups, so that what other
    // tests mount on the host meanwhile (containerd makes the host's / shared) does not
    // show up here; then / is made shared again, among this namespace's mounts only.
    let output = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
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

//! What every step does, proven by running the real binaries as an unprivileged user.
//!
//! The snapshots in `tests/snapshots/` are the expected output a learner should see; the
//! step READMEs quote them (and `readmes_quote_the_snapshots` keeps them honest).

mod common;

use std::path::{Path, PathBuf};

use common::{NOBODY, STEPS, fixture, running_as_root, step, step_uid};
use predicates::prelude::*;

// ---- step 00: baseline -------------------------------------------------------------------

#[test]
fn step_00_runs_the_command_on_the_host() {
    let run = step(0, &["hostname"]).run();
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), common::hostname());
    assert_run_snapshot!("step_00_hostname", run);
}

// ---- step 01: UTS, the deliberate failure -----------------------------------------------

#[test]
fn step_01_fails_with_eperm_and_explains_why() {
    let run = step(1, &["hostname"]).run();
    run.assert_code(125);
    assert!(
        predicate::str::contains("EPERM").eval(&run.stderr)
            && predicate::str::contains("CAP_SYS_ADMIN").eval(&run.stderr)
            && predicate::str::contains("just step 2").eval(&run.stderr),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "the command must not run");
    assert_run_snapshot!("step_01_hostname", run);
}

#[test]
fn step_01_works_under_real_root_but_is_not_rootless() {
    if !common::can_run_as_real_root() {
        return;
    }
    let run = step(1, &["hostname"]).run_as_real_root().run();
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), "my-container");
    assert!(
        predicate::str::contains("❌ Rootless").eval(&run.stderr),
        "{}",
        run.stderr
    );
}

// ---- step 02: user namespace ------------------------------------------------------------

#[test]
fn step_02_is_root_inside_and_names_its_host() {
    let run = step(2, &["sh", "-c", "id -u; hostname"]).run();
    run.assert_code(0);
    assert_eq!(run.stdout, "0\nmy-container\n");
    assert_run_snapshot!("step_02_id_hostname", run);
}

#[test]
fn step_02_under_real_root_is_not_rootless() {
    if !common::can_run_as_real_root() {
        return;
    }
    let run = step(2, &["true"]).run_as_real_root().run();
    run.assert_code(0);
    assert!(
        predicate::str::contains("❌ Rootless                  uid 0 inside is uid 0 outside")
            .eval(&run.stderr),
        "{}",
        run.stderr
    );
}

// ---- step 03: PID namespace -------------------------------------------------------------

#[test]
fn step_03_runs_the_command_as_pid_1() {
    let run = step(3, &["sh", "-c", "echo $$"]).run();
    run.assert_code(0);
    assert_eq!(run.stdout, "1\n");
    assert_run_snapshot!("step_03_echo_pid", run);
}

#[test]
fn step_03_still_sees_the_hosts_processes() {
    // No new /proc yet: the host's /proc lists the host's processes, the test among them.
    let me = std::process::id().to_string();
    let run = step(3, &["ls", "/proc"]).run();
    run.assert_code(0);
    assert!(run.stdout.lines().any(|line| line == me), "{}", run.stdout);
}

// ---- step 04: mount namespace + chroot --------------------------------------------------

#[test]
fn step_04_shows_the_busybox_root() {
    let run = step(4, &["ls", "/"]).run();
    run.assert_code(0);
    assert_run_snapshot!("step_04_ls", run);
}

#[test]
fn step_04_ps_sees_no_processes_without_proc() {
    let run = step(4, &["ps"]).run();
    run.assert_code(0);
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "only the header: {}",
        run.stdout
    );
}

// ---- step 05: procfs ----------------------------------------------------------------------

#[test]
fn step_05_ps_shows_only_pid_1() {
    let run = step(5, &["ps"]).run();
    run.assert_code(0);
    assert_run_snapshot!("step_05_ps", run);
}

#[test]
fn step_05_default_command_is_a_shell_in_the_container() {
    // No command: /bin/sh of the rootfs, reading its commands from stdin.
    let mut command = std::process::Command::new(fixture().bin.join(STEPS[5]));
    command
        .env("BENTO_ROOTFS", &fixture().rootfs)
        .env("PATH", common::SYSTEM_PATH)
        .current_dir(&fixture().dir);
    if running_as_root() {
        use std::os::unix::process::CommandExt;
        command.uid(NOBODY).gid(NOBODY);
    }
    let assert = assert_cmd::Command::from_std(command)
        .write_stdin("echo pid=$$ uid=$(id -u) host=$(hostname);\n")
        .assert();
    assert
        .success()
        .stdout(predicate::str::contains("pid=1 uid=0 host=my-container"));
}

// ---- step 06: pivot_root, and the chroot escape it closes -------------------------------

/// Runs the breakout probe in step `n`, aiming at a file of the host outside the rootfs.
fn breakout(n: usize) -> Option<common::Run> {
    if !fixture().has_breakout {
        eprintln!("SKIPPED: the breakout probe must be static, and this machine cannot link it");
        assert!(std::env::var_os("CI").is_none(), "CI must run the breakout");
        return None;
    }
    let secret = fixture().dir.join(common::HOST_SECRET);
    Some(step(n, &["/bin/breakout", &secret.to_string_lossy()]).run())
}

#[test]
fn step_05_chroot_lets_root_escape() {
    let Some(run) = breakout(5) else { return };
    run.assert_code(0);
    assert!(run.stdout.starts_with("ESCAPED"), "{}", run.stdout);
    assert_run_snapshot!("step_05_breakout", run);
}

#[test]
fn step_06_pivot_root_keeps_root_inside() {
    let Some(run) = breakout(6) else { return };
    run.assert_code(0);
    assert!(run.stdout.starts_with("contained"), "{}", run.stdout);
    assert_run_snapshot!("step_06_breakout", run);
}

#[test]
fn step_06_is_still_a_complete_container() {
    let run = step(6, &["ps"]).run();
    run.assert_code(0);
    assert!(run.stderr.contains("  ✅ Own /proc"), "{}", run.stderr);
    assert_eq!(run.stdout, "PID   USER     COMMAND\n    1 root     ps\n");
}

// ---- step 07: overlay ---------------------------------------------------------------------

/// Every file of the rootfs with its contents (None for directories and links).
fn rootfs_contents() -> Vec<(PathBuf, Option<Vec<u8>>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Option<Vec<u8>>)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            out.push((
                path.clone(),
                kind.is_file().then(|| std::fs::read(&path).unwrap()),
            ));
            if kind.is_dir() {
                walk(&path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&fixture().rootfs, &mut out);
    out.sort();
    out
}

/// The scratch directory a run of step 07 left in the steps' TMPDIR
/// (`bento-07-overlay-PID-XXXXXX`), or a path that does not exist.
fn scratch_of(run: &common::Run) -> PathBuf {
    let prefix = format!("bento-07-overlay-{}-", run.pid);
    let left = common::names(&fixture().tmp)
        .into_iter()
        .find(|name| name.starts_with(&prefix));
    fixture().tmp.join(left.unwrap_or(prefix))
}

#[test]
fn step_07_writes_land_in_the_upper_layer_never_in_the_rootfs() {
    let before = rootfs_contents();
    let script = "echo hi > /tmp/hello; echo more >> /etc/passwd; rm /etc/group; \
                  rm -rf /home; mkdir /home; cat /tmp/hello; tail -n 1 /etc/passwd; ls /etc";
    let run = step(7, &["sh", "-c", script]).run();
    run.assert_code(0);
    assert_eq!(
        run.stdout, "hi\nmore\npasswd\n",
        "inside, the changes are real"
    );
    assert_eq!(rootfs_contents(), before, "the rootfs is untouched");
    assert_run_snapshot!("step_07_changes", run);
}

#[test]
fn step_07_removes_its_layers_however_the_container_ends() {
    for args in [
        &["true"][..],
        &["sh", "-c", "touch /tmp/x; exit 3"],
        &["no-such-command"],
        &["sh", "-c", "kill -9 $$"],
    ] {
        let run = step(7, args).run();
        assert!(!scratch_of(&run).exists(), "left behind after {args:?}");
    }
}

#[test]
fn step_07_on_a_kernel_that_refuses_the_overlay_says_which_it_needs() {
    let deny = fixture().bin.join("deny");
    let run = step(7, &["true"]).wrapped_in(&deny, &["overlay"]).run();
    run.assert_code(125);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(
        run.error(),
        format!(
            "step-07-overlay: error: cannot mount the overlay: EPERM: Operation not permitted\n  \
             hint: rootless overlayfs needs Linux 5.11 or later (this is {}), and a rootfs \
             path without ',' or ':'\n",
            kernel.trim()
        )
    );
    assert!(!scratch_of(&run).exists(), "the layers are removed");
}

// ---- step 08: network namespace ------------------------------------------------------------

#[test]
fn step_08_has_only_loopback_and_it_is_up() {
    let run = step(8, &["ip", "-o", "link"]).run();
    run.assert_code(0);
    let links: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(links.len(), 1, "{}", run.stdout);
    assert!(
        links[0].starts_with("1: lo: <LOOPBACK,UP,LOWER_UP>"),
        "{}",
        run.stdout
    );
    // The host's own interfaces are not there.
    for host_link in std::fs::read_dir("/sys/class/net").unwrap().flatten() {
        let name = host_link.file_name().to_string_lossy().into_owned();
        if name != "lo" {
            assert!(!run.stdout.contains(&name), "{name} is visible inside");
        }
    }
    // The snapshot keeps what does not depend on the kernel version.
    let run = step(8, &["sh", "-c", "ip -o link | cut -d ' ' -f 1-3"]).run();
    run.assert_code(0);
    assert_run_snapshot!("step_08_ip_link", run);
}

#[test]
fn step_08_tcp_over_loopback_works_inside() {
    // A listener and a client, both in the container (no `&`: there is no /dev/null).
    let script = "(sleep 0.3; echo hello over 127.0.0.1 | nc 127.0.0.1 7777) | nc -l -p 7777";
    let run = step(8, &["sh", "-c", script]).run();
    run.assert_code(0);
    assert_eq!(run.stdout, "hello over 127.0.0.1\n");
    let run = step(8, &["sh", "-c", "cat /proc/net/dev | grep -c :"]).run();
    assert_eq!(run.stdout, "1\n", "only lo in /proc/net/dev");
}

// ---- every step: exit status and bad input --------------------------------------------------

/// The steps that can run a command as an unprivileged user (step 01 cannot).
const RUNNABLE: [usize; 8] = [0, 2, 3, 4, 5, 6, 7, 8];

#[test]
fn every_step_exits_with_the_commands_status() {
    for n in RUNNABLE {
        step(n, &["sh", "-c", "exit 7"]).run().assert_code(7);
    }
}

#[test]
fn a_command_killed_by_a_signal_exits_128_plus_n() {
    // PID 1 cannot be killed by itself (pid_namespaces(7)), so kill a child shell there.
    for n in RUNNABLE {
        let run = step(n, &["sh", "-c", "sh -c 'kill -9 $$'; exit $?"]).run();
        run.assert_code(137);
    }
    // Steps 00-02 exec the command directly: the step process itself dies of the signal.
    for n in [0, 2] {
        let run = step(n, &["sh", "-c", "kill -TERM $$"]).run();
        assert_eq!(run.code, None, "{}", run.report());
    }
}

#[test]
fn a_missing_command_exits_127_with_a_clear_message() {
    for n in RUNNABLE {
        let run = step(n, &["no-such-command-here"]).run();
        run.assert_code(127);
        assert_eq!(
            run.error(),
            format!(
                "{}: error: no-such-command-here: command not found\n  \
                 hint: check the name; from step 04 on, the command must exist inside the root \
                 filesystem (try `ls /bin`)\n",
                STEPS[n]
            )
        );
    }
}

#[test]
fn a_command_that_is_not_executable_exits_126() {
    for n in RUNNABLE {
        let run = step(n, &["/etc/passwd"]).run();
        run.assert_code(126);
        assert_eq!(
            run.error(),
            format!(
                "{}: error: /etc/passwd: cannot execute: Permission denied\n  \
                 hint: the file is not executable (or a directory on its path is not searchable)\n",
                STEPS[n]
            )
        );
    }
}

#[test]
fn an_empty_command_is_refused_before_anything_happens() {
    for (n, name) in STEPS.iter().enumerate() {
        let run = step(n, &[""]).run();
        run.assert_code(125);
        assert_eq!(
            run.stderr,
            format!(
                "{name}: error: the command is empty\n  \
                 hint: give a program to run, e.g. `just step 2 hostname`, or nothing for a shell\n"
            )
        );
    }
}

#[test]
fn a_missing_rootfs_names_just_rootfs() {
    for (n, name) in STEPS.iter().enumerate().skip(4) {
        let run = step(n, &["ls"])
            .env("BENTO_ROOTFS", "/nonexistent/rootfs")
            .run();
        run.assert_code(125);
        assert_eq!(
            run.stderr,
            format!(
                "{name}: error: no root filesystem at /nonexistent/rootfs (BENTO_ROOTFS): \
                 No such file or directory (os error 2)\n  \
                 hint: run `just rootfs` to build one, or point BENTO_ROOTFS at one\n"
            )
        );
        let run = step(n, &["ls"]).env("BENTO_ROOTFS", "").run();
        run.assert_code(125);
        assert_eq!(
            run.stderr,
            format!(
                "{name}: error: BENTO_ROOTFS is set but empty\n  \
                 hint: run `just rootfs` to build one, or point BENTO_ROOTFS at one\n"
            )
        );
    }
}

#[test]
fn a_rootfs_that_is_a_file_is_refused() {
    let file = fixture().dir.join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let run = step(5, &["ls"]).env("BENTO_ROOTFS", &file).run();
    run.assert_code(125);
    assert_eq!(
        run.stderr,
        "step-05-procfs: error: not-a-directory (BENTO_ROOTFS) is not a directory, so it cannot be \
         a root filesystem\n  \
         hint: run `just rootfs` to build one, or point BENTO_ROOTFS at one\n"
    );
}

#[test]
fn a_rootfs_without_the_command_is_refused() {
    let empty = fixture().dir.join("empty-rootfs");
    std::fs::create_dir_all(&empty).unwrap();
    // The default command, /bin/sh.
    let run = step(4, &[]).env("BENTO_ROOTFS", &empty).run();
    run.assert_code(125);
    assert_eq!(
        run.stderr,
        "step-04-mount: error: the root filesystem empty-rootfs has no /bin/sh\n  \
         hint: empty-rootfs does not look like a root filesystem: run `just rootfs` to build \
         one, or point BENTO_ROOTFS at one\n"
    );
    // Another command given by its path.
    let run = step(5, &["/bin/nope"]).run();
    run.assert_code(125);
    assert_eq!(
        run.stderr,
        "step-05-procfs: error: the root filesystem rootfs has no /bin/nope\n  \
         hint: the command must exist inside the container: try `ls rootfs`\n"
    );
    // A command looked up on PATH, inside the container.
    let run = step(5, &["nope"]).run();
    run.assert_code(127);
    assert!(
        run.error()
            .starts_with("step-05-procfs: error: nope: command not found\n")
    );
}

#[test]
fn steps_run_as_the_unprivileged_user() {
    // The proof that the suite tests rootless behaviour: the host uid the steps report.
    let run = step(0, &["true"]).run();
    assert!(
        run.stderr
            .starts_with(&format!("[Before Isolation]\nuid [{}]\n", step_uid())),
        "{}",
        run.stderr
    );
    if running_as_root() {
        assert_eq!(step_uid(), NOBODY);
    }
}

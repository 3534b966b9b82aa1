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
fn step_02_maps_our_group_too() {
    let run = step(2, &["sh", "-c", "id -g; cat /proc/self/gid_map"]).run();
    run.assert_code(0);
    let gid = run.stdout.lines().next().unwrap_or_default();
    assert_eq!(
        gid,
        "0",
        "the group inside is {gid}, not 0: the overflow gid 65534 means that gid_map was \
         never written (`0 <our gid> 1`, after `deny` in /proc/self/setgroups)\n{}",
        run.report()
    );
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

/// On a systemd host `/` is a shared mount. Here, in a mount namespace of the test's own
/// (inside a user namespace, so that it works as any user), `/` is made shared first; then
/// step 04 runs, and once it is inside, the "host" mounts a tmpfs in the rootfs's /tmp. A
/// container whose mounts are private never sees it; one whose mounts are still shared (or
/// slaves of the host's), or that shares the host's mount table, does.
#[test]
fn step_04_keeps_the_hosts_later_mounts_out_on_a_shared_root() {
    let mark = format!("shared-root-{}", std::process::id());
    let ready = format!("/tmp/{mark}-ready");
    let go = format!("/tmp/{mark}-go");
    let mnt = format!("/tmp/{mark}-mnt");
    let inside = format!(
        "touch {ready}; i=0; while [ ! -e {go} ] && [ $i -lt 1000 ]; do sleep 0.01; \
         i=$((i+1)); done; ls {mnt}"
    );
    let script = r#"
        mount --make-rshared / || exit 90
        rootfs=$1 ready=$1$2 go=$1$3 mnt=$1$4; shift 4
        mkdir "$mnt" || exit 91
        "$@" &
        step=$!
        i=0
        running() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status"; }
        while [ ! -e "$ready" ] && running $step && [ $i -lt 1000 ]; do
            sleep 0.01; i=$((i+1))
        done
        pid1=$(cat /proc/$step/task/$step/children 2>/dev/null | cut -d' ' -f1)
        if [ -n "$pid1" ] && [ "$(readlink /proc/$pid1/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ]; then
            echo "same mount namespace"
        fi
        mount -t tmpfs tmpfs "$mnt" && touch "$mnt/mounted-by-the-host"
        touch "$go"
        wait $step
        echo "step exited $?"
        umount "$mnt"; rmdir "$mnt"; rm -f "$ready" "$go"
    "#;
    // A rootfs of its own: the other tests check that nothing writes into theirs.
    let rootfs = fixture().dir.join("shared-root");
    if !rootfs.exists() {
        common::build_rootfs(&rootfs);
    }
    let rootfs = rootfs.to_string_lossy().into_owned();
    let run = step(4, &["sh", "-c", &inside])
        .env("BENTO_ROOTFS", &rootfs)
        .wrapped_in(
            Path::new("unshare"),
            &[
                "--user",
                "--map-root-user",
                "--mount",
                "--propagation",
                "unchanged",
                "sh",
                "-c",
                script,
                "sh",
                &rootfs,
                &ready,
                &go,
                &mnt,
            ],
        )
        .run();
    assert!(
        run.stdout.ends_with("step exited 0\n"),
        "with / shared (as on systemd hosts), `sh -c ...` in step 04 did not succeed\n{}",
        run.report()
    );
    assert!(
        !run.stdout.contains("same mount namespace"),
        "PID 1 shares the mount table of the host: unshare(CLONE_NEWNS) never happened\n{}",
        run.report()
    );
    assert!(
        !run.stdout.contains("mounted-by-the-host"),
        "with / shared (as on systemd hosts), a mount the host made after the container \
         started appeared inside it: the container's mounts still receive the host's. Make \
         them private, recursively (mount MS_REC|MS_PRIVATE on /), right after \
         unshare(CLONE_NEWNS)\n{}",
        run.report()
    );
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
        common::skipped("the breakout probe must be static, and this machine cannot link it");
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
    // Computed from the container's mountinfo too: no mount of the host's root is left.
    assert!(
        run.stderr.contains("  ✅ Host's / out of reach"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "PID   USER     COMMAND\n    1 root     ps\n");
}

// ---- step 07: overlay ---------------------------------------------------------------------

/// Every file of the rootfs with its contents (None for directories and links).
fn rootfs_contents() -> Vec<(PathBuf, Option<Vec<u8>>)> {
    common::walk(&fixture().rootfs)
        .into_iter()
        .map(|path| {
            let is_file = path.symlink_metadata().is_ok_and(|m| m.is_file());
            let contents = is_file.then(|| std::fs::read(&path).unwrap());
            (path, contents)
        })
        .collect()
}

/// A TMPDIR of one test's own, so that tests running at once do not see each other's
/// scratch directories.
fn own_tmp(test: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let tmp = fixture().dir.join(format!("tmp-{test}"));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    tmp
}

/// What runs of step 07 left in `tmp`: their scratch directories are named after the step.
fn scratch_left(tmp: &Path) -> Vec<String> {
    common::names(tmp)
        .into_iter()
        .filter(|name| name.starts_with("bento-") && name.contains("07-overlay"))
        .collect()
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
    let tmp = own_tmp("removes-its-layers");
    for args in [
        &["true"][..],
        &["sh", "-c", "touch /tmp/x; exit 3"],
        &["no-such-command"],
        &["sh", "-c", "kill -9 $$"],
    ] {
        let run = step(7, args).env("TMPDIR", &tmp).run();
        assert_eq!(
            scratch_left(&tmp),
            [""; 0],
            "left behind after {args:?}: {}",
            run.report()
        );
    }
}

#[test]
fn step_07_on_a_kernel_that_refuses_the_overlay_says_which_it_needs() {
    let deny = fixture().bin.join("deny");
    let tmp = own_tmp("refused-overlay");
    let run = step(7, &["true"])
        .env("TMPDIR", &tmp)
        .wrapped_in(&deny, &["overlay"])
        .run();
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
    assert_eq!(scratch_left(&tmp), [""; 0], "the layers are removed");
}

#[test]
fn step_07_a_child_that_fails_after_the_overlay_leaves_cleanup_to_the_parent() {
    // A rootfs whose /proc is a file: the overlay mounts, then the child cannot mount proc.
    let rootfs = fixture().dir.join("proc-is-a-file");
    if !rootfs.exists() {
        common::build_rootfs(&rootfs);
        std::fs::remove_dir(rootfs.join("proc")).unwrap();
        std::fs::write(rootfs.join("proc"), "not a directory\n").unwrap();
    }
    let before = common::names(&rootfs.join("bin"));
    let tmp = own_tmp("child-fails");
    let run = step(7, &["true"])
        .env("BENTO_ROOTFS", &rootfs)
        .env("TMPDIR", &tmp)
        .run();
    run.assert_code(125);
    // Only the child's error: the parent found an empty upper layer (nothing changed), and
    // no second cleanup ran inside the container's view of the layers.
    assert_eq!(
        run.error(),
        "step-07-overlay: error: cannot mount proc on the rootfs's /proc: ENOTDIR: Not a \
         directory\n  hint: the rootfs needs an empty /proc directory (`just rootfs` makes one)\n"
    );
    assert_eq!(scratch_left(&tmp), [""; 0], "the parent removed the layers");
    assert_eq!(
        common::names(&rootfs.join("bin")),
        before,
        "the rootfs is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("proc")).unwrap(),
        "not a directory\n"
    );
}

#[test]
fn a_scratch_directory_is_removed_only_by_the_process_that_made_it() {
    let tmp = own_tmp("scratch-fork");
    let output = std::process::Command::new(common::built("scratch_fork"))
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("kept "),
        "the forked child removed it: {stdout}"
    );
    assert_eq!(
        common::names(&tmp),
        [""; 0],
        "the parent removed it when it was done"
    );
}

// ---- the checklist grows with the steps ----------------------------------------------------

/// The checklist lines a run of step `n` printed: `(ticked, name)`.
fn checklist(n: usize) -> Vec<(bool, String)> {
    let run = step(n, &["true"]).run();
    run.assert_code(0);
    let (_, checks) = run.stderr.split_once("Container checklist\n").unwrap();
    checks
        .lines()
        .take_while(|line| line.starts_with("  "))
        .map(|line| {
            let line = line.trim_start();
            let ticked = line.starts_with('✅');
            let name = line.chars().skip(2).collect::<String>();
            (ticked, name.split("  ").next().unwrap().trim().to_string())
        })
        .collect()
}

#[test]
fn steps_06_to_08_tick_lines_that_step_05_cannot() {
    let ticked = |n| -> Vec<String> {
        checklist(n)
            .into_iter()
            .filter(|(ok, _)| *ok)
            .map(|(_, name)| name)
            .collect()
    };
    let talk = [
        "Rootless",
        "Isolated hostname",
        "Believes it is PID 1",
        "Isolated root filesystem",
        "Own /proc",
    ];
    assert_eq!(ticked(5), talk);
    // Step 05 shows the next line unticked: the chroot can be escaped.
    assert_eq!(
        checklist(5).last().unwrap(),
        &(false, "Host's / out of reach".to_string())
    );
    assert_eq!(ticked(6)[5..], ["Host's / out of reach"]);
    assert_eq!(ticked(7)[5..], ["Host's / out of reach", "Image untouched"]);
    assert_eq!(
        ticked(8)[5..],
        ["Host's / out of reach", "Image untouched", "Own network"]
    );
    // Before step 05, the talk's five lines only.
    for n in [0, 2, 3, 4] {
        assert_eq!(checklist(n).len(), 5, "step {n}");
    }
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
    // A listener and a client, both in the container (no `&`: there is no /dev/null). The
    // client tries until the listener is there, for up to 2.5 s; the listener gives up
    // after 5 s: with `lo` down nothing connects, and the test must fail, not hang.
    let script = "(i=0; until echo hello over 127.0.0.1 | nc 127.0.0.1 7777; do \
                  i=$((i+1)); [ $i -ge 50 ] && break; sleep 0.05; done) \
                  | timeout 5 nc -l -p 7777";
    let run = step(8, &["sh", "-c", script]).run();
    assert_eq!(
        run.stdout,
        "hello over 127.0.0.1\n",
        "nothing arrived over 127.0.0.1 inside the container: is `lo` up?\n{}",
        run.report()
    );
    run.assert_code(0);
    let run = step(8, &["sh", "-c", "cat /proc/net/dev | grep -c :"]).run();
    assert_eq!(run.stdout, "1\n", "only lo in /proc/net/dev");
}

// ---- step 09: /dev ---------------------------------------------------------------------------

#[test]
fn step_09_has_a_dev_of_its_own_and_nothing_else_of_the_hosts() {
    let run = step(9, &["ls", "-A", "/dev", "/dev/pts"]).run();
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "/dev:\nfd\nfull\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n\n\
         /dev/pts:\nptmx\n"
    );
    assert_run_snapshot!("step_09_ls_dev", run);
}

#[test]
fn step_09_ordinary_shell_works() {
    let before = rootfs_contents();
    let script = "echo x > /dev/null && head -c 8 /dev/urandom | wc -c && sleep 0.1 & wait; \
                  ls /nonexistent 2>/dev/null || echo quiet; cat /dev/zero | head -c 3 | wc -c; \
                  echo full > /dev/full || echo refused";
    let run = step(9, &["sh", "-c", script]).run();
    run.assert_code(0);
    assert_eq!(run.stdout, "8\nquiet\n3\nrefused\n", "{}", run.report());
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert_eq!(
        rootfs_contents(),
        before,
        "the rootfs is untouched, /dev/null included"
    );
}

#[test]
fn step_09_mounts_no_device_of_the_host_but_the_six() {
    let run = step(9, &["cat", "/proc/self/mountinfo"]).run();
    run.assert_code(0);
    // mountinfo (proc(5)): the mount point is the 5th field, the type follows " - ".
    let dev: Vec<String> = run
        .stdout
        .lines()
        .filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let point = mount.split(' ').nth(4)?;
            let fstype = fs.split(' ').next()?;
            point
                .starts_with("/dev")
                .then(|| format!("{point} {fstype}"))
        })
        .collect();
    assert_eq!(
        dev,
        [
            "/dev tmpfs",
            "/dev/null devtmpfs",
            "/dev/zero devtmpfs",
            "/dev/full devtmpfs",
            "/dev/random devtmpfs",
            "/dev/urandom devtmpfs",
            "/dev/tty devtmpfs",
            "/dev/pts devpts",
            "/dev/shm tmpfs",
        ]
    );
}

#[test]
fn step_09_refuses_an_image_whose_dev_is_a_symlink() {
    let rootfs = fixture().dir.join("dev-is-a-symlink");
    if !rootfs.exists() {
        common::build_rootfs(&rootfs);
        std::fs::remove_dir_all(rootfs.join("dev")).unwrap();
        std::os::unix::fs::symlink("/etc", rootfs.join("dev")).unwrap();
    }
    let run = step(9, &["true"]).env("BENTO_ROOTFS", &rootfs).run();
    run.assert_code(125);
    assert_eq!(
        run.error(),
        "step-09-dev: error: the image's /dev is not a directory\n"
    );
}

// ---- step 10: a terminal (see tests/terminal.rs for runs on a real one) ------------------------

#[test]
fn step_10_without_a_terminal_shows_the_full_checklist() {
    let run = step(10, &["true"]).run();
    run.assert_code(0);
    assert_run_snapshot!("step_10_no_terminal", run);
}

// ---- step 11: least privilege -----------------------------------------------------------------

#[test]
fn step_11_without_a_terminal_ticks_least_privilege() {
    let run = step(11, &["true"]).run();
    run.assert_code(0);
    assert!(
        run.stderr.contains(
            "  ✅ Least privilege           11 capabilities, no_new_privs, a seccomp filter\n"
        ),
        "{}",
        run.stderr
    );
    assert_run_snapshot!("step_11_no_terminal", run);
}

/// A nested user namespace, the hostname and a mount: what step 11 refuses.
const REFUSED: &str = "unshare -U true; echo unshare $?; hostname x; echo hostname $?; \
                       mkdir -p /mnt; mount -t tmpfs x /mnt; echo mount $?";

#[test]
fn step_11_refuses_a_nested_user_namespace_the_hostname_and_mounts() {
    let run = step(11, &["sh", "-c", REFUSED]).run();
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "unshare 1\nhostname 1\nmount 1\n",
        "{}",
        run.report()
    );
    for refused in [
        "unshare: unshare(0x10000000): Operation not permitted\n",
        "hostname: sethostname: Operation not permitted\n",
        // busybox's words for EPERM from mount(2)
        "mount: permission denied (are you root?)\n",
    ] {
        assert!(run.stderr.contains(refused), "{}", run.report());
    }
    assert_run_snapshot!("step_11_refused", run);
}

#[test]
fn step_11_ordinary_work_still_works() {
    let script = "touch /tmp/file && chown root:root /tmp/file && chmod 600 /tmp/file && \
                  stat -c '%a %u %g' /tmp/file; ps -o pid,comm | grep -c ' ps$'; \
                  sleep 0.1 & wait; echo background $?; ls /nope 2>/dev/null || echo quiet; \
                  echo hi | cat > /dev/null && echo pipes; id -u";
    let run = step(11, &["sh", "-c", script]).run();
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "600 0 0\n1\nbackground 0\nquiet\npipes\n0\n",
        "{}",
        run.report()
    );
}

#[test]
fn step_11_a_shell_on_a_terminal_still_edits_files_with_vi() {
    use common::terminal::{Terminal, finish};
    let terminal = Terminal::open(30, 100);
    // Killed if the test fails halfway: a shell on a terminal would wait for keys forever.
    let mut step_11 = Background(step(11, &[]).on_terminal(&terminal.pts).spawn());
    let child = &mut step_11.0;
    // The shell's prompt, unless the step ends first (as an unfinished copy does).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !terminal.screen().contains("/ # ") {
        if let Some(status) = child.try_wait().expect("wait for the step") {
            panic!(
                "the step ended ({status}) before its shell started:\n{}",
                terminal.screen()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no shell prompt:\n{}",
            terminal.screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut at = terminal.wait_for("/ # ", 0);
    assert!(
        terminal.screen().contains("✅ Least privilege"),
        "{}",
        terminal.screen()
    );
    // One step at a time, each once vi shows it is ready for it (its status line: `-` in
    // command mode, `I` in insert mode): keys typed before vi has the terminal are echoed
    // by the shell's line discipline, and vi reads an Escape followed at once by more bytes
    // as one escape sequence (an arrow key's).
    terminal.type_in("vi /tmp/note\r");
    at = terminal.wait_for("- /tmp/note", at);
    terminal.type_in("i");
    at = terminal.wait_for("I /tmp/note", at);
    terminal.type_in("hello from vi");
    at = terminal.wait_for("hello from vi", at);
    terminal.type_in("\x1b");
    at = terminal.wait_for("- /tmp/note", at);
    terminal.type_in(":wq\r");
    at = terminal.wait_for("/ # ", at);
    terminal.type_in("cat /tmp/note; tty\r");
    at = terminal.wait_for("hello from vi\r\n/dev/pts/0\r\n", at);
    terminal.type_in("exit\r");
    assert_eq!(
        finish(child, &terminal),
        Some(0),
        "{}",
        &terminal.screen()[at..]
    );
}

/// What step 11's system-call probe printed in step `n`: `(call, answer)` lines.
fn syscall_answers(n: usize) -> Option<Vec<(String, String)>> {
    if !fixture().has_syscalls {
        common::skipped("the system-call probe must be static, and this machine cannot link it");
        return None;
    }
    let run = step(n, &["/bin/syscalls"]).run();
    run.assert_code(0);
    // The README shows it; the i386 and x32 lines exist only on x86_64.
    #[cfg(target_arch = "x86_64")]
    if n == 11 {
        assert_run_snapshot!("step_11_syscalls", run);
    }
    let answers: Vec<(String, String)> = run
        .stdout
        .lines()
        .map(|line| {
            let (call, answer) = line.split_at(24.min(line.len()));
            (call.trim().to_string(), answer.to_string())
        })
        .collect();
    assert!(answers.len() >= 30, "{}", run.report());
    Some(answers)
}

/// The answer to `call` among the probe's.
fn answer(answers: &[(String, String)], call: &str) -> String {
    answers
        .iter()
        .find(|(name, _)| name == call)
        .map(|(_, answer)| answer.clone())
        .unwrap_or_else(|| panic!("the probe did not try {call}: {answers:?}"))
}

/// The calls the probe makes from another architecture's table (x86_64 only).
const FOREIGN: [&str; 2] = ["x32 getpid", "i386 getpid (int 0x80)"];

#[test]
fn step_11_the_filter_refuses_each_call_it_lists() {
    let Some(answers) = syscall_answers(11) else {
        return;
    };
    for (call, got) in &answers {
        let expected = match call.as_str() {
            "clone3" => "ENOSYS",
            "unshare(0)" | "clone()" | "getpid" => "ok",
            call if FOREIGN.contains(&call) => "killed by SIGSYS",
            _ => "EPERM",
        };
        assert_eq!(got, expected, "{call}: {answers:?}");
    }
}

/// Step 10, the same container without step 11's lessons, is what makes the step 11 tests
/// mean something: there, the kernel takes every call step 11 refuses, or gets as far as
/// the arguments. (Not named `step_11_`: `just check 11` runs ours, never a learner's.)
#[test]
fn without_step_11s_lessons_the_kernel_takes_those_calls() {
    let run = step(10, &["sh", "-c", REFUSED]).run();
    assert_eq!(
        run.stdout,
        "unshare 0\nhostname 0\nmount 0\n",
        "{}",
        run.report()
    );
    let Some(answers) = syscall_answers(10) else {
        return;
    };
    for call in ["unshare(CLONE_NEWUSER)", "clone(CLONE_NEWUSER)"] {
        assert_eq!(answer(&answers, call), "ok", "{call}");
    }
    for call in [
        "keyctl",
        "add_key",
        "mount",
        "umount2",
        "bpf",
        "ptrace",
        "userfaultfd",
    ] {
        assert_ne!(answer(&answers, call), "EPERM", "{call}");
    }
    assert_ne!(answer(&answers, "clone3"), "ENOSYS");
    for call in FOREIGN
        .iter()
        .filter(|call| answers.iter().any(|(name, _)| name == *call))
    {
        assert_ne!(answer(&answers, call), "killed by SIGSYS", "{call}");
    }
}

// ---- step 12: a network of its own, and published ports ---------------------------------------
//
// Traffic goes only to the host's loopback and to the container's own addresses, and every
// process a test starts is stopped by its pid, also when the test fails.

/// A port that was free a moment ago on the host's 127.0.0.1.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The pids of the processes whose command line contains `text`.
fn processes_mentioning(text: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(text))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A step started in the background: killed (SIGKILL, by pid) if the test ends early.
/// (Its helpers and PID 1 die with it: PR_SET_PDEATHSIG.)
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The body of an HTTP GET of / on the host's 127.0.0.1:`port`, if it answers within 2 s.
fn host_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = std::time::Duration::from_secs(2);
    let mut connection = std::net::TcpStream::connect_timeout(&address, timeout).ok()?;
    connection.set_read_timeout(Some(timeout)).ok()?;
    connection.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    connection.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?;
    (status == "200").then(|| body.to_string())
}

#[test]
fn step_12_has_lo_and_a_tap_device_with_an_address_and_the_default_route() {
    let script = "ip -o -4 addr | cut -d ' ' -f 2,7; ip route";
    let run = step(12, &["sh", "-c", script]).run();
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "lo 127.0.0.1/8\ntap0 10.0.2.100/24\ndefault via 10.0.2.2 dev tap0 \n\
         10.0.2.0/24 dev tap0 scope link  src 10.0.2.100 \n",
        "{}",
        run.report()
    );
    assert_run_snapshot!("step_12_network", run);
}

#[test]
fn step_12_reaches_a_server_on_the_hosts_loopback() {
    let server = common::LoopbackServer::start("hello from the host's loopback\n");
    // 10.0.2.2 is where slirp4netns answers for the host's 127.0.0.1.
    let url = format!("http://10.0.2.2:{}/", server.port);
    // (busybox 1.35's `wget -T` crashes: `timeout` bounds it instead.)
    let run = step(12, &["timeout", "5", "wget", "-q", "-O", "-", &url]).run();
    assert_eq!(
        server.stop(),
        1,
        "the server saw no request:\n{}",
        run.report()
    );
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "hello from the host's loopback\n",
        "{}",
        run.report()
    );
}

#[test]
fn step_12_publishes_a_port_on_the_hosts_loopback_until_it_ends() {
    use nix::sys::signal::{Signal, kill};
    let port = free_port();
    let publish = format!("{port}:80");
    // httpd in the background; the shell, PID 1, ends on SIGTERM (a trap), within 0.1 s.
    let script = "trap 'exit 0' TERM; echo hello from the container > /tmp/index.html; \
                  httpd -p 80 -h /tmp; while :; do sleep 0.1; done";
    let mut step = step(12, &["-p", &publish, "sh", "-c", script]);
    let container = Background(step.spawn());
    let pid = container.0.id();
    // Until httpd answers through the published port: at most 10 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut container = container;
    let mut answer = host_get(port);
    while answer.is_none() && std::time::Instant::now() < deadline {
        if let Some(status) = container.0.try_wait().unwrap() {
            panic!("the step ended ({status}) before it served the port");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        answer = host_get(port);
    }
    if answer.is_none() {
        // Which half of the relay is missing: its socket on the host, or its way in.
        let listens = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        panic!(
            "{}",
            match listens {
                false => format!(
                    "nothing listens on the host's 127.0.0.1:{port}: the published port's socket \
                     is bound on the host, before the step leaves the host's namespaces"
                ),
                true => format!(
                    "the host's 127.0.0.1:{port} accepts, but no answer came from httpd in the \
                     container: the relay joins the container's user and network namespaces \
                     (user first) before it connects to 127.0.0.1:80"
                ),
            }
        );
    }
    assert_eq!(answer.as_deref(), Some("hello from the container\n"));
    // Twenty at once, each through its own relayed connection.
    let answers: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || host_get(port)))
        .collect();
    for answer in answers {
        assert_eq!(
            answer.join().unwrap().as_deref(),
            Some("hello from the container\n")
        );
    }
    let step_pid = nix::unistd::Pid::from_raw(pid as i32);
    kill(step_pid, Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = container.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the step did not end");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    // Nothing is left: the port is free, slirp4netns (whose arguments name the step's pid)
    // and the relay (a fork of the step, with its arguments) are gone.
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    assert_eq!(processes_mentioning(&publish), [""; 0], "the relay is left");
    let slirp = processes_mentioning("slirp4netns");
    let left: Vec<_> = slirp
        .iter()
        .filter(|slirp| {
            std::fs::read(format!("/proc/{slirp}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split(|&byte| byte == 0)
                    .any(|arg| arg == pid.to_string().as_bytes())
            })
        })
        .collect();
    assert_eq!(left, [&""; 0], "slirp4netns is left");
}

#[test]
fn step_12_a_port_in_use_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let run = step(12, &["-p", &format!("{port}:80"), "true"]).run();
    run.assert_code(125);
    assert_eq!(
        run.error(),
        format!(
            "step-12-network: error: cannot publish 127.0.0.1:{port}: Address already in use \
             (os error 98)\n  hint: another program listens there: choose another host port\n"
        )
    );
    assert!(run.stdout.is_empty(), "the command must not run");
    assert_eq!(
        run.stderr,
        run.error(),
        "the refusal is all it says (nothing was isolated)"
    );
    // The host is as it was: the port is still the other program's.
    assert_eq!(taken.local_addr().unwrap().port(), port);
    let run = step(12, &["-p", "80", "true"]).run();
    run.assert_code(125);
    assert!(
        run.error()
            .starts_with("step-12-network: error: -p 80: not [IP:]HOST_PORT:CONTAINER_PORT\n"),
        "{}",
        run.report()
    );
}

#[test]
fn step_12_without_slirp4netns_says_what_to_install() {
    // A PATH with nothing on it: the command is named by its path inside the container.
    let empty = own_tmp("no-slirp4netns");
    let run = step(12, &["/bin/true"]).env("PATH", &empty).run();
    run.assert_code(125);
    assert_eq!(
        run.error(),
        "step-12-network: error: slirp4netns is not installed: the container would have no \
         network\n  hint: install it: `sudo apt install slirp4netns` (or dnf, pacman, zypper \
         install)\n"
    );
}

#[test]
fn step_12_when_slirp4netns_fails_shows_its_last_message() {
    use std::os::unix::fs::PermissionsExt;
    // A stand-in that fails the way slirp4netns does when it cannot do its job.
    let bin = own_tmp("failing-slirp4netns");
    let fake = bin.join("slirp4netns");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'starting'\necho 'no tap for you' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), common::SYSTEM_PATH);
    let run = step(12, &["true"]).env("PATH", path).run();
    run.assert_code(125);
    assert_eq!(
        run.error(),
        "step-12-network: error: slirp4netns did not set up the network: no tap for you\n  \
         hint: that was its last message; `man slirp4netns` says more\n"
    );
}

#[test]
fn step_12_with_dev_net_tun_not_usable_says_what_to_change() {
    if !running_as_root() {
        common::skipped("only root can give the step a /dev/net/tun of mode 0600 of its own");
        return;
    }
    let run = common::step_with_tun(12, &["true"], Some("600")).run();
    run.assert_code(125);
    assert_eq!(
        run.error(),
        "step-12-network: error: /dev/net/tun is not usable, and slirp4netns needs it for the tap \
         device: Permission denied (os error 13)\n  hint: slirp4netns opens it as you: `sudo \
         chmod 0666 /dev/net/tun`, its stock mode on Debian and Ubuntu\n"
    );
}

// ---- every step: exit status and bad input, one test per step --------------------------------

/// A check of every step that can run a command as an unprivileged user (step 01 cannot),
/// one test each (see [`per_step`]).
macro_rules! runnable {
    ($check:ident) => {
        per_step!($check: step_00 = 0, step_02 = 2, step_03 = 3, step_04 = 4, step_05 = 5,
            step_06 = 6, step_07 = 7, step_08 = 8, step_09 = 9, step_10 = 10, step_11 = 11, step_12 = 12);
    };
}

runnable!(exits_with_the_commands_status);
fn exits_with_the_commands_status(n: usize) {
    let run = step(n, &["sh", "-c", "exit 7"]).run();
    assert_eq!(
        run.code,
        Some(7),
        "the command exited with 7, and the step must exit with the same status (from step 03 \
         on: waitpid's status, through plumbing::exit_code)\n{}",
        run.report()
    );
    let run = step(n, &["false"]).run();
    assert_eq!(
        run.code,
        Some(1),
        "`false` failed, so the step must fail too\n{}",
        run.report()
    );
}

runnable!(a_command_killed_by_a_signal_exits_128_plus_n);
fn a_command_killed_by_a_signal_exits_128_plus_n(n: usize) {
    // PID 1 cannot be killed by itself (pid_namespaces(7)), so kill a child shell there.
    let run = step(n, &["sh", "-c", "sh -c 'kill -9 $$'; exit $?"]).run();
    run.assert_code(137);
    // Steps 00-02 exec the command directly: the step process itself dies of the signal.
    if n <= 2 {
        let run = step(n, &["sh", "-c", "kill -TERM $$"]).run();
        assert_eq!(run.code, None, "{}", run.report());
    }
}

runnable!(a_missing_command_exits_127_with_a_clear_message);
fn a_missing_command_exits_127_with_a_clear_message(n: usize) {
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

runnable!(a_command_that_is_not_executable_exits_126);
fn a_command_that_is_not_executable_exits_126(n: usize) {
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

per_step!(an_empty_command_is_refused_before_anything_happens: step_00 = 0, step_01 = 1,
    step_02 = 2, step_03 = 3, step_04 = 4, step_05 = 5, step_06 = 6, step_07 = 7, step_08 = 8,
    step_09 = 9, step_10 = 10, step_11 = 11, step_12 = 12);
fn an_empty_command_is_refused_before_anything_happens(n: usize) {
    let run = step(n, &[""]).run();
    run.assert_code(125);
    assert_eq!(
        run.stderr,
        format!(
            "{}: error: the command is empty\n  \
             hint: give a program to run, e.g. `just step 2 hostname`, or nothing for a shell\n",
            STEPS[n]
        )
    );
}

per_step!(a_missing_rootfs_names_just_rootfs: step_04 = 4, step_05 = 5, step_06 = 6,
    step_07 = 7, step_08 = 8, step_09 = 9, step_10 = 10, step_11 = 11, step_12 = 12);
fn a_missing_rootfs_names_just_rootfs(n: usize) {
    let name = STEPS[n];
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

#[test]
fn step_05_refuses_a_rootfs_that_is_a_file() {
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
    // The default command, /bin/sh: no command was named, so the rootfs is what is wrong.
    let run = step(4, &[]).env("BENTO_ROOTFS", &empty).run();
    run.assert_code(125);
    assert_eq!(
        run.stderr,
        "step-04-mount: error: the root filesystem empty-rootfs has no /bin/sh\n  \
         hint: empty-rootfs does not look like a root filesystem: run `just rootfs` to build \
         one, or point BENTO_ROOTFS at one\n"
    );
    // Another command given by its path: not found, 127, as a shell says.
    let run = step(5, &["/bin/nope"]).run();
    run.assert_code(127);
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

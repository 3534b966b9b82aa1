//! Step 10 on a real terminal. A pseudoterminal that the test opens itself plays the user's
//! terminal: the step runs on it as a shell would start it (its own session, the pts as its
//! controlling terminal), and the test types into the master end and reads the screen.

mod common;

use std::time::{Duration, Instant};

use common::terminal::{Terminal, finish};
use common::{running_as_root, step, step_uid};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[test]
fn a_shell_on_its_own_terminal_has_job_control_and_follows_resizes() {
    let terminal = Terminal::open(30, 100);
    let before = terminal.settings();
    let mut child = step(10, &[]).on_terminal(&terminal.pts).spawn();

    let mut at = terminal.wait_for("/ # ", 0);
    assert!(
        terminal.screen().contains("✅ Own terminal"),
        "{}",
        terminal.screen()
    );
    assert!(
        terminal.raw(),
        "the user's terminal is in raw mode while the step runs"
    );
    terminal.type_in("tty\r");
    at = terminal.wait_for("/dev/pts/0", at);
    at = terminal.follows_a_resize(at);
    // Job control: a background job, then brought to the foreground and stopped with Ctrl-Z.
    terminal.type_in("sleep 100 &\r");
    at = terminal.wait_for("/ # ", at);
    terminal.type_in("jobs\r");
    at = terminal.wait_for("Running", at);
    terminal.type_in("fg\r");
    at = terminal.wait_for("sleep 100", at);
    std::thread::sleep(Duration::from_millis(300));
    terminal.type_in("\x1a");
    at = terminal.wait_for("Stopped", at);
    // Ctrl-C reaches the foreground job, not the shell.
    terminal.type_in("kill -9 %1; sleep 50\r");
    std::thread::sleep(Duration::from_millis(300));
    terminal.type_in("\x03");
    at = terminal.wait_for("/ # ", at);
    terminal.type_in("echo still-here\r");
    terminal.wait_for("still-here\r\n", at);
    terminal.type_in("exit\r");

    assert_eq!(
        finish(&mut child, &terminal),
        Some(0),
        "{}",
        terminal.screen()
    );
    assert!(
        !terminal.screen().contains("job control turned off"),
        "{}",
        terminal.screen()
    );
    assert_eq!(
        terminal.settings(),
        before,
        "the user's terminal is restored"
    );
}

#[test]
fn the_users_terminal_is_restored_when_the_step_is_terminated() {
    for signal in [Signal::SIGTERM, Signal::SIGHUP] {
        let terminal = Terminal::open(24, 80);
        let before = terminal.settings();
        let mut child = step(10, &["sleep", "100"])
            .on_terminal(&terminal.pts)
            .spawn();
        terminal.wait_for("Own terminal", 0);
        std::thread::sleep(Duration::from_millis(200));
        assert!(terminal.raw(), "raw mode while the container runs");
        kill(Pid::from_raw(child.id() as i32), signal).expect("signal the step");
        // sleep, as PID 1, ignores the forwarded signal: SIGKILL follows after the grace.
        assert_eq!(finish(&mut child, &terminal), Some(137), "{signal}");
        assert_eq!(terminal.settings(), before, "restored after {signal}");
    }
}

#[test]
fn without_a_terminal_step_10_is_step_09() {
    let run = step(10, &["sh", "-c", "tty; echo x > /dev/null && echo ok"]).run();
    run.assert_code(0);
    assert_eq!(run.stdout, "not a tty\nok\n");
    assert!(
        run.stderr
            .contains("❌ Own terminal              stdin is not a terminal (a pipe or a file)"),
        "{}",
        run.stderr
    );
}

/// tmux on a private socket, killed when dropped.
struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let output = std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.0)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.run(&["capture-pane", "-p"]);
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

#[test]
fn in_tmux_the_container_has_its_own_terminal_and_follows_a_resize() {
    let found = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok();
    if !found {
        eprintln!("SKIPPED: tmux is not installed (sudo apt install tmux)");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the tmux test"
        );
        return;
    }
    let fixture = common::fixture();
    let step = fixture.bin.join(common::STEPS[10]);
    let as_user = if running_as_root() {
        format!(
            "setpriv --reuid={0} --regid={0} --clear-groups ",
            step_uid()
        )
    } else {
        String::new()
    };
    // The same environment as the other step tests: their rootfs and TMPDIR.
    let command = format!(
        "cd {dir} && {as_user}env BENTO_ROOTFS={rootfs} TMPDIR={tmp} PATH={path} {step}; \
         echo step-exited-$?; sleep 30",
        dir = fixture.dir.display(),
        rootfs = fixture.rootfs.display(),
        tmp = fixture.tmp.display(),
        path = common::SYSTEM_PATH,
        step = step.display(),
    );
    let tmux = Tmux(format!("bento-terminal-{}", std::process::id()));
    tmux.run(&["new-session", "-d", "-x", "100", "-y", "30", &command]);
    tmux.wait_for("/ #");
    tmux.run(&["send-keys", "tty; stty size", "Enter"]);
    tmux.wait_for("/dev/pts/0");
    tmux.wait_for("30 100");
    tmux.run(&["resize-window", "-x", "90", "-y", "25"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.run(&["send-keys", "clear; stty size", "Enter"]);
    tmux.wait_for("25 90");
    tmux.run(&["send-keys", "exit", "Enter"]);
    tmux.wait_for("step-exited-0");
}

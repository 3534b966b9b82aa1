//! Step 10 on a real terminal. A pseudoterminal that the test opens itself plays the user's
//! terminal: the step runs on it as a shell would start it (its own session, the pts as its
//! controlling terminal), and the test types into the master end and reads the screen.

mod common;

use std::time::Duration;

use common::step;
use common::terminal::{Terminal, finish};
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
    terminal.type_in("stty size\r");
    at = terminal.wait_for("30 100", at);
    terminal.resize(40, 120);
    terminal.type_in("stty size\r");
    at = terminal.wait_for("40 120", at);
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

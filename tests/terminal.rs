//! Step 10 on a real terminal. A pseudoterminal that the test opens itself plays the user's
//! terminal: the step runs on it as a shell would start it (its own session, the pts as its
//! controlling terminal), and the test types into the master end and reads the screen.

mod common;

use std::time::{Duration, Instant};

use common::terminal::{Started, Terminal, finish};
use common::{running_as_root, step, step_uid};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The checklist's "Own terminal" line on the screen.
fn own_terminal_line(screen: &str) -> &str {
    screen
        .lines()
        .find(|line| line.contains("Own terminal"))
        .map_or("(none)", str::trim)
}

/// Waits until a process runs `args` exactly and is in the foreground of its terminal
/// (proc(5): /proc/PID/stat's pgrp, field 5, is the terminal's foreground group, tpgid,
/// field 8). Only then does a key typed at the terminal reach it.
fn in_the_foreground(args: &str, terminal: &Terminal) {
    let wanted = args.replace(' ', "\0") + "\0";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
            // After the ')': state, ppid, pgrp, session, tty_nr, tpgid.
            cmdline == wanted.as_bytes() && fields.len() > 5 && fields[2] == fields[5]
        });
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{args}` never ran in the foreground; the terminal shows:\n{}",
            terminal.screen()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn step_10_a_shell_on_its_own_terminal_has_job_control_and_follows_resizes() {
    let terminal = Terminal::open(30, 100);
    let before = terminal.settings();
    let mut child = Started(step(10, &[]).on_terminal(&terminal.pts).spawn());
    terminal.watch(&child);

    let mut at = terminal.wait_for("/ # ", 0);
    assert!(
        terminal.screen().contains("✅ Own terminal"),
        "on a terminal, the container must get a terminal of its own (\"✅ Own terminal\"); \
         the checklist says: {}",
        own_terminal_line(&terminal.screen())
    );
    assert!(
        terminal.raw(),
        "the user's terminal must be in raw mode while the container runs: the host relays \
         every key to the container's terminal (relay_terminal)"
    );
    terminal.type_in("tty\r");
    at = terminal.wait_for("/dev/pts/0", at);
    at = terminal.follows_a_resize(at);
    // Job control: a background job (a duration no other process uses, to find it), then
    // brought to the foreground and stopped with Ctrl-Z.
    let (long, short) = (
        format!("sleep 100.{}", std::process::id()),
        format!("sleep 50.{}", std::process::id()),
    );
    terminal.type_in(&format!("{long} &\r"));
    at = terminal.wait_for("/ # ", at);
    terminal.type_in("jobs\r");
    at = terminal.wait_for("Running", at);
    terminal.type_in("fg\r");
    // What fg prints, after the echo of what was typed: the job's command.
    at = terminal.wait_for("fg\r\n", at);
    at = terminal.wait_for(&format!("{long}\r\n"), at);
    in_the_foreground(&long, &terminal);
    terminal.type_in("\x1a");
    at = terminal.wait_for("Stopped", at);
    // Ctrl-C reaches the foreground job, not the shell: the shell lives on to print the
    // prompt after it, and runs the next command.
    terminal.type_in(&format!("kill -9 %1; {short}\r"));
    at = terminal.wait_for(&format!("{short}\r\n"), at);
    in_the_foreground(&short, &terminal);
    terminal.type_in("\x03");
    at = terminal.wait_for("/ # ", at);
    terminal.type_in("echo still-$((40 + 2))\r");
    terminal.wait_for("still-42\r\n", at);
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

/// The step on a terminal, sent `signal`: the user's terminal is restored.
fn restores_the_terminal_after(signal: Signal) {
    let terminal = Terminal::open(24, 80);
    let before = terminal.settings();
    let mut child = Started(
        step(10, &["sleep", "100"])
            .on_terminal(&terminal.pts)
            .spawn(),
    );
    terminal.watch(&child);
    // The container prints its checklist once the host has put the terminal in raw mode.
    terminal.wait_for("Own terminal", 0);
    assert!(
        terminal.raw(),
        "the user's terminal must be in raw mode while the container runs: the host relays \
         every key to the container's terminal (relay_terminal); the checklist says: {}",
        own_terminal_line(&terminal.screen())
    );
    kill(Pid::from_raw(child.id() as i32), signal).expect("signal the step");
    // sleep, as PID 1, ignores the forwarded signal: SIGKILL follows after the grace.
    assert_eq!(finish(&mut child, &terminal), Some(137), "{signal}");
    assert_eq!(terminal.settings(), before, "restored after {signal}");
}

#[test]
fn step_10_restores_the_users_terminal_after_sigterm() {
    restores_the_terminal_after(Signal::SIGTERM);
}

#[test]
fn step_10_restores_the_users_terminal_after_sighup() {
    restores_the_terminal_after(Signal::SIGHUP);
}

#[test]
fn step_10_without_a_terminal_is_step_09() {
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
        match self.shows(text, Duration::from_secs(15)) {
            Ok(screen) => screen,
            Err(screen) => panic!("{text:?} never appeared:\n{screen}"),
        }
    }

    /// The screen once it shows `text`, or `Err` with the screen after `within`.
    fn shows(&self, text: &str, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.run(&["capture-pane", "-p"]);
            if screen.contains(text) {
                return Ok(screen);
            }
            // The command ends with `echo step-exited-$?`: nothing more will come.
            if screen.contains("step-exited-") {
                return Err(screen);
            }
            if Instant::now() > deadline {
                return Err(screen);
            }
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
fn step_10_in_tmux_has_its_own_terminal_and_follows_a_resize() {
    let found = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok();
    if !found {
        common::skipped("tmux is not installed (sudo apt install tmux)");
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
    // What `tty` says, after a mark that the typed command does not show ("tty2").
    tmux.run(&["send-keys", "echo tty$((1 + 1)) $(tty); stty size", "Enter"]);
    let screen = tmux.wait_for("tty2 ");
    assert!(
        screen.contains("tty2 /dev/pts/0"),
        "the container's shell must run on a terminal of the container's own (its pts 0):\n\
         {screen}"
    );
    tmux.wait_for("30 100");
    tmux.run(&["resize-window", "-x", "90", "-y", "25"]);
    // The new size reaches the container a moment later (SIGWINCH, then the relay): ask
    // again until it shows, for up to 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tmux.run(&["send-keys", "clear; stty size", "Enter"]);
        match tmux.shows("25 90", Duration::from_millis(300)) {
            Ok(_) => break,
            Err(screen) => assert!(Instant::now() < deadline, "never resized:\n{screen}"),
        }
    }
    tmux.run(&["send-keys", "exit", "Enter"]);
    tmux.wait_for("step-exited-0");
}

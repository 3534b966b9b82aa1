//! The user's terminal, played by a pseudoterminal the test opens itself: the program under
//! test runs on it as a shell would start it (its own session, the pts as its controlling
//! terminal), and the test types into the master end and reads the screen. Used by the
//! step 10 tests and by bento's `-t` tests.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};
use nix::sys::termios::tcgetattr;

use super::{running_as_root, step_uid};

/// The user's terminal: a pty of the test's own, and everything the step wrote to it.
pub struct Terminal {
    pub master: OwnedFd,
    pub pts: OwnedFd,
    screen: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    /// The program on the terminal, once [`Terminal::watch`] names it: waiting for text it
    /// will never print stops as soon as it has ended.
    watched: AtomicU32,
}

nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, libc::winsize);

impl Terminal {
    pub fn open(rows: u16, cols: u16) -> Terminal {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None).expect("openpty");
        if running_as_root() {
            // The step runs as nobody: the terminal must be theirs, as a login makes it.
            let uid = Some(nix::unistd::Uid::from_raw(step_uid()));
            nix::unistd::fchown(&pty.slave, uid, None).expect("chown the pts");
        }
        let (screen, stop) = (
            Arc::new(Mutex::new(String::new())),
            Arc::new(AtomicBool::new(false)),
        );
        let reader = pty.master.try_clone().expect("dup the master");
        let (into, stopped) = (screen.clone(), stop.clone());
        nix::fcntl::fcntl(
            &reader,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .expect("make the master non-blocking");
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while !stopped.load(Ordering::SeqCst) {
                match nix::unistd::read(&reader, &mut buffer) {
                    Ok(n) if n > 0 => into
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..n])),
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Terminal {
            master: pty.master,
            pts: pty.slave,
            screen,
            stop,
            watched: AtomicU32::new(0),
        }
    }

    /// From now on, [`Terminal::wait_for`] gives up as soon as `child` has ended.
    pub fn watch(&self, child: &std::process::Child) {
        self.watched.store(child.id(), Ordering::SeqCst);
    }

    /// Has the watched program ended (a zombie, or gone)?
    fn ended(&self) -> bool {
        match self.watched.load(Ordering::SeqCst) {
            0 => false,
            pid => std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            }),
        }
    }

    pub fn type_in(&self, keys: &str) {
        nix::unistd::write(&self.master, keys.as_bytes()).expect("type into the terminal");
    }

    /// Waits until `text` appears on the screen after position `from`; returns where it ends.
    pub fn wait_for(&self, text: &str, from: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen.lock().unwrap().clone();
            if let Some(at) = screen.get(from..).and_then(|rest| rest.find(text)) {
                return from + at + text.len();
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared on the terminal; it shows:\n{screen}"
            );
            if self.ended() {
                // What it wrote last may still be on its way: one more look.
                std::thread::sleep(Duration::from_millis(50));
                let screen = self.screen.lock().unwrap().clone();
                assert!(
                    screen.get(from..).is_some_and(|rest| rest.contains(text)),
                    "the program ended before {text:?} appeared on the terminal; it shows:\n{screen}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn screen(&self) -> String {
        self.screen.lock().unwrap().clone()
    }

    /// The terminal's settings, as `stty -g` would print them (termios(3)).
    pub fn settings(&self) -> String {
        let termios: libc::termios = tcgetattr(self.pts.as_fd()).expect("tcgetattr").into();
        format!(
            "{:x}:{:x}:{:x}:{:x}:{:?}",
            termios.c_iflag, termios.c_oflag, termios.c_cflag, termios.c_lflag, termios.c_cc
        )
    }

    pub fn raw(&self) -> bool {
        let termios: libc::termios = tcgetattr(self.pts.as_fd()).expect("tcgetattr").into();
        termios.c_lflag & libc::ICANON == 0
    }

    /// Types `stty size` on a 30x100 terminal, resizes it to 40x120 and types it again,
    /// waiting for each answer after position `from`; returns where the screen ends.
    pub fn follows_a_resize(&self, from: usize) -> usize {
        self.type_in("stty size\r");
        let at = self.wait_for("30 100", from);
        self.resize(40, 120);
        self.type_in("stty size\r");
        self.wait_for("40 120", at)
    }

    pub fn resize(&self, rows: u16, cols: u16) {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        unsafe { set_window_size(self.master.as_raw_fd(), &size) }.expect("TIOCSWINSZ");
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A program started on a terminal, killed if it is still running when dropped: a test that
/// fails half-way leaves nothing behind (its container goes with it: PR_SET_PDEATHSIG).
pub struct Started(pub std::process::Child);

impl std::ops::Deref for Started {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Started {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for the step to end (killing it after 20 s) and returns its exit status.
pub fn finish(child: &mut std::process::Child, terminal: &Terminal) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait for the step") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the step did not end; the terminal shows:\n{}",
                terminal.screen()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` on a terminal: `pts` becomes its stdin, stdout, stderr and controlling
/// terminal, in a session of its own, as a shell would start it.
pub fn on_terminal(command: &mut Command, pts: &OwnedFd) {
    let clone = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pts"));
    command
        .stdin(clone(pts))
        .stdout(clone(pts))
        .stderr(clone(pts));
    // SAFETY: only async-signal-safe calls between fork and exec: setsid(2), ioctl(2).
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `command` on a fresh 30x100 terminal until it ends, after `text` showed on it, and
/// checks that the user's terminal is left as it was. Returns the exit status.
#[allow(dead_code)] // not every test binary that includes `common` uses it
pub fn shows_on_a_terminal(mut command: Command, text: &str) -> Option<i32> {
    let terminal = Terminal::open(30, 100);
    on_terminal(&mut command, &terminal.pts);
    let before = terminal.settings();
    let mut child = command.spawn().expect("start the program");
    terminal.wait_for(text, 0);
    let status = finish(&mut child, &terminal);
    assert_eq!(
        terminal.settings(),
        before,
        "the user's terminal is restored"
    );
    status
}

//! Step 10, pty: a terminal of the container's own.
//!
//! `bento run -t` and `bento exec -t` give the command a pseudoterminal from the
//! container's own devpts, as step 10 does: the process in the container opens it
//! (`/dev/ptmx` inside), becomes the leader of a new session with the pts as its
//! controlling terminal on fds 0, 1 and 2, and sends the master end out over a unix socket
//! with SCM_RIGHTS. Bento, on the host side, receives the master, puts the user's terminal
//! in raw mode, relays bytes both ways, follows window size changes, and restores the
//! user's terminal on every way out.
//!
//! The socket is one of two kinds ([`Console`]): a socketpair(2) made by bento before the
//! fork (step 10's way: the container waits until the host is ready), or the path of an
//! engine's listening socket, `--console-socket` of the OCI runtime command line: podman's
//! conmon receives the master there and does the relaying itself.

use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, read, setsid, write};
use plumbing::Hint;

use crate::message::{self, Message};

// ioctl(2) requests of tty_ioctl(4): the controlling terminal, and the window size.
nix::ioctl_write_int_bad!(set_controlling_terminal, libc::TIOCSCTTY);
nix::ioctl_read_bad!(get_window_size, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, libc::winsize);

/// Refuses `-t` when stdin is not a terminal: there would be nothing to relay.
pub fn require_terminal_on_stdin(tty: bool) -> Result<()> {
    if tty && !nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        return Err(crate::errors::Refusal::NoTerminal.error(
            "-t needs a terminal on stdin, and this one is not",
            "run it from a terminal, or leave out -t (and pipe input with -i-less redirection)",
        ));
    }
    Ok(())
}

/// Where the container sends its terminal's master end.
#[derive(Debug)]
pub enum Console {
    /// Bento's own: the container's end of a socketpair; bento answers once it is ready.
    Pair(OwnedFd),
    /// An engine's (OCI `--console-socket`), connected before the container's root
    /// hid the host's paths.
    Socket(OwnedFd),
}

/// Where a terminal will go, decided before the fork: bento's own socketpair (both ends,
/// until the fork splits them), or an engine's console socket.
#[derive(Debug)]
pub enum Channel {
    Pair((OwnedFd, OwnedFd)),
    Engine(OwnedFd),
}

impl Channel {
    /// The engine's `socket` (connected now, while its path is reachable), or else a new
    /// pair.
    pub fn new(socket: Option<&Path>) -> Result<Channel> {
        match socket {
            Some(path) => {
                let socket = UnixStream::connect(path)
                    .with_context(|| {
                        format!("cannot connect to the console socket {}", path.display())
                    })
                    .hint("--console-socket names a listening unix socket")?;
                Ok(Channel::Engine(OwnedFd::from(socket)))
            }
            None => Ok(Channel::Pair(console_pair()?)),
        }
    }

    /// In the child: where to send the terminal (our copy of bento's end is closed).
    pub fn in_child(self) -> Console {
        match self {
            Channel::Engine(socket) => Console::Socket(socket),
            Channel::Pair((_, its)) => Console::Pair(its),
        }
    }

    /// In the parent: bento's end, to receive the terminal on (the child's copy closed,
    /// so that its death reads as end of file); none when the engine receives it.
    pub fn in_parent(self) -> Option<OwnedFd> {
        match self {
            Channel::Engine(_) => None,
            Channel::Pair((ours, _)) => Some(ours),
        }
    }
}

/// A connected pair of unix sockets (socketpair(2)): (bento's end, the container's end).
pub fn console_pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("cannot create the console socket (socketpair)")
}

/// In the container, after pivot_root: a pty from the container's devpts, sent out over
/// `console`, and made our controlling terminal and fds 0, 1 and 2. setsid(2) starts a
/// session with no terminal; ioctl(2) TIOCSCTTY makes the pts its controlling terminal, so
/// that the kernel sends Ctrl-C, Ctrl-Z and window changes to the foreground job.
pub fn attach_to_terminal(console: &Console) -> Result<()> {
    let (master, pts, name) = open_own_terminal()?;
    match console {
        Console::Pair(socket) => {
            send_master(socket, &master, &name)?;
            // Wait until the host side has put the user's terminal in raw mode and set
            // our window size: nothing should run on a terminal of size 0x0.
            if message::receive(socket) != Some(Message::TerminalReady) {
                anyhow::bail!("bento did not take the terminal");
            }
        }
        Console::Socket(socket) => send_master(socket, &master, &name)?,
    }
    drop(master);
    setsid().context("setsid failed")?;
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal it from another session).
    unsafe { set_controlling_terminal(pts.as_raw_fd(), 0) }.context("ioctl(TIOCSCTTY) failed")?;
    dup2_stdin(&pts).context("dup2 to stdin failed")?;
    dup2_stdout(&pts).context("dup2 to stdout failed")?;
    dup2_stderr(&pts).context("dup2 to stderr failed")?;
    Ok(())
}

/// A pseudoterminal (pty(7)) from the container's devpts: posix_openpt(3) opens /dev/ptmx,
/// our link to pts/ptmx; grantpt(3) and unlockpt(3) make the matching pts usable. Returns
/// the master, the pts, and the pts's name.
fn open_own_terminal() -> Result<(OwnedFd, OwnedFd, String)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("cannot open /dev/ptmx")
        .hint("the container needs a devpts on /dev/pts and /dev/ptmx -> pts/ptmx")?;
    grantpt(&master).context("grantpt failed")?;
    unlockpt(&master).context("unlockpt failed")?;
    let name = ptsname_r(&master).context("ptsname failed")?;
    let pts = fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("cannot open {name}"))?;
    // SAFETY: posix_openpt returned an owned descriptor; we take it over.
    let master = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
    Ok((master, pts, name))
}

/// sendmsg(2) with SCM_RIGHTS (unix(7)): passes a file descriptor, not bytes. The bytes
/// are the pts's name, as runc sends them.
fn send_master(socket: &OwnedFd, master: &OwnedFd, name: &str) -> Result<()> {
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("cannot send the terminal out of the container (sendmsg)")?;
    Ok(())
}

/// On the host: the master end, from recvmsg(2); `None` when the container ended before it
/// had a terminal (its error, and waitpid, say why).
fn receive_master(console: &OwnedFd) -> Result<Option<OwnedFd>> {
    let mut name = [0u8; 128];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut name)];
    let message = loop {
        match recvmsg::<()>(
            console.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other.context("cannot receive the container's terminal")?,
        }
    };
    let Some(ControlMessageOwned::ScmRights(fds)) = message.cmsgs()?.next() else {
        return Ok(None);
    };
    // SAFETY: SCM_RIGHTS just gave us this new descriptor; nothing else owns it.
    Ok(fds.first().map(|fd| unsafe { OwnedFd::from_raw_fd(*fd) }))
}

/// `bento run -t`, `bento exec -t`: the container's terminal, shown in the user's. Our
/// terminal goes to raw mode (termios(3), cfmakeraw): every key, Ctrl-C included, goes to
/// the container's pts, whose line discipline does the rest. The guard restores it on every
/// way out: the command ends, it is killed, bento is sent SIGTERM (forwarded: the container
/// ends, the relay sees EIO), or an error.
pub fn relay_terminal(console: &OwnedFd) -> Result<()> {
    let Some(master) = receive_master(console)? else {
        return Ok(());
    };
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let _restore = RestoreTerminal(saved.clone());
    let mut raw = saved;
    cfmakeraw(&mut raw);
    tcsetattr(&stdin, SetArg::TCSANOW, &raw).context("cannot put the terminal in raw mode")?;
    follow_window_size(&master)?;
    message::send(console, Message::TerminalReady)
        .context("cannot tell the container its terminal is ready")?;
    relay(&master, true, &mut std::io::stdout())
}

/// `bento run -d -t`: the supervisor holds the master, with no user's terminal to show it
/// in: it copies the container's output to the log (its stdout), at 24x80. Real runtimes
/// keep the master for later: conmon serves it on an attach socket, so that `podman
/// attach` can type into it; bento's detached terminal only writes.
pub fn receive_for_log(console: &OwnedFd) -> Result<Option<OwnedFd>> {
    let Some(master) = receive_master(console)? else {
        return Ok(None);
    };
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    let _ = unsafe { set_window_size(master.as_raw_fd(), &size) };
    message::send(console, Message::TerminalReady)
        .context("cannot tell the container its terminal is ready")?;
    Ok(Some(master))
}

/// Copies the container's terminal output to the log until no process holds its pts.
pub fn log_terminal(master: &OwnedFd, log: &mut impl Write) -> Result<()> {
    relay(master, false, log)
}

/// Puts the user's terminal back as it was, when dropped (tcsetattr(3)).
struct RestoreTerminal(Termios);

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.0);
    }
}

/// Set by the SIGWINCH handler: the user's terminal changed size.
static RESIZED: AtomicBool = AtomicBool::new(false);

/// The container's terminal gets our size now, and again each time ours changes: the
/// kernel sends SIGWINCH (signal(7)) to the foreground process of a resized terminal. The
/// handler only sets a flag; `relay` copies the size: ioctl(2) TIOCGWINSZ on ours,
/// TIOCSWINSZ on the container's (tty_ioctl(4)), which sends SIGWINCH on to its shell.
fn follow_window_size(master: &OwnedFd) -> Result<()> {
    extern "C" fn resized(_: libc::c_int) {
        RESIZED.store(true, Ordering::SeqCst);
    }
    let handler = SigAction::new(
        SigHandler::Handler(resized),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGWINCH, &handler) }.context("cannot handle SIGWINCH")?;
    copy_window_size(master);
    Ok(())
}

/// Copies our terminal's size to the container's (nothing happens if either is no tty).
fn copy_window_size(master: &OwnedFd) {
    // SAFETY: winsize is plain old data; the ioctls read and write exactly one winsize.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if get_window_size(libc::STDIN_FILENO, &mut size).is_ok() {
            let _ = set_window_size(master.as_raw_fd(), &size);
        }
    }
}

/// Copies bytes until the container's side is gone: poll(2) sleeps until our stdin (when
/// `with_input`) or the master has something to read. A read of the master fails with EIO
/// once no process in the container holds the pts any more (pty(7)).
fn relay(master: &OwnedFd, with_input: bool, out: &mut impl Write) -> Result<()> {
    let stdin = std::io::stdin();
    let mut input_open = with_input;
    let mut buffer = [0u8; 4096];
    loop {
        if RESIZED.swap(false, Ordering::SeqCst) {
            copy_window_size(master);
        }
        let events = match input_open {
            true => PollFlags::POLLIN,
            false => PollFlags::empty(),
        };
        let mut fds = [
            PollFd::new(stdin.as_fd(), events),
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue, // SIGWINCH, or a signal forwarded to PID 1
            other => other.context("poll failed")?,
        };
        if input_open && fds[0].any() == Some(true) {
            match read(&stdin, &mut buffer) {
                Ok(0) | Err(_) => input_open = false, // the user's terminal hung up
                Ok(n) => write_all(master, &buffer[..n])?,
            }
        }
        if fds[1].any() == Some(true) {
            match read(master, &mut buffer) {
                Ok(0) | Err(Errno::EIO) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(error) => return Err(error).context("cannot read the container's terminal"),
                Ok(n) => out
                    .write_all(&buffer[..n])
                    .and_then(|()| out.flush())
                    .context("cannot write the container's output")?,
            }
        }
    }
}

/// write(2) until every byte is written.
fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<()> {
    while !bytes.is_empty() {
        match write(fd, bytes) {
            Err(Errno::EINTR) => continue,
            other => bytes = &bytes[other.context("cannot write to the container's terminal")?..],
        }
    }
    Ok(())
}

//! A parent that stands in for its container: signals sent to the step reach PID 1.
//!
//! From step 03 on, the command runs as PID 1 of a new PID namespace, and the step process
//! waits outside. Two kernel rules make that tricky (pid_namespaces(7)):
//!
//! - `kill <step pid>` signals the *parent*, not the container; so the parent catches
//!   SIGTERM, SIGHUP, SIGQUIT and SIGINT from just before the fork ([`catch_signals`]) and
//!   forwards them to the child ([`forward_signals`]);
//! - PID 1 only receives the signals it has installed a handler for: a plain `sleep` as
//!   PID 1 ignores SIGTERM. So after forwarding a termination request the parent waits
//!   `GRACE_SECONDS` and then sends SIGKILL, which PID 1 cannot ignore; when PID 1
//!   dies, the kernel kills everything else in its namespace.
//!
//! Ctrl-C typed at the terminal already reaches the container directly (it is in the
//! terminal's foreground process group), so that SIGINT is not forwarded again and not
//! escalated: an interactive shell in the container keeps running, as it should.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use anyhow::{Context, Result};
use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::{Pid, alarm, getpid};

/// How long PID 1 gets to exit after a forwarded signal before it is killed.
const GRACE_SECONDS: u32 = 2;

/// The signals a parent forwards to its container.
const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The process that called [`catch_signals`]: the parent, once it has forked.
static SUPERVISOR: AtomicI32 = AtomicI32::new(0);
/// The container's PID 1, once [`forward_signals`] knows it (0 until then).
static CHILD: AtomicI32 = AtomicI32::new(0);
/// A signal that arrived between `catch_signals` and `forward_signals`.
static PENDING: AtomicI32 = AtomicI32::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);

/// Sends `signal` to PID 1 and arms the SIGKILL fallback. Async-signal-safe: kill(2),
/// alarm(2) and atomics only.
fn pass_on(child: i32, signal: libc::c_int) {
    if let Ok(signal) = Signal::try_from(signal) {
        let _ = kill(Pid::from_raw(child), signal);
    }
    if !ARMED.swap(true, Ordering::SeqCst) {
        alarm::set(GRACE_SECONDS);
    }
}

/// Signal handler of the supervisor.
extern "C" fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let from_terminal = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    if signal == libc::SIGINT && from_terminal {
        return;
    }
    // In the child, between fork and exec, the handler is inherited: exec resets it, and
    // the parent takes care of the container, so the child lets the signal go.
    if getpid().as_raw() != SUPERVISOR.load(Ordering::SeqCst) {
        return;
    }
    match CHILD.load(Ordering::SeqCst) {
        0 => PENDING.store(signal, Ordering::SeqCst),
        child => pass_on(child, signal),
    }
}

/// SIGALRM handler: the grace period is over.
extern "C" fn kill_child(_: libc::c_int) {
    let _ = kill(Pid::from_raw(CHILD.load(Ordering::SeqCst)), Signal::SIGKILL);
}

/// Catches SIGINT, SIGTERM, SIGHUP and SIGQUIT from now on, so that none of them is lost or
/// kills the step while it forks: call it just before `fork`. Until [`forward_signals`] names
/// the child, a signal is kept for it.
pub fn catch_signals() -> Result<()> {
    SUPERVISOR.store(getpid().as_raw(), Ordering::SeqCst);
    let flags = SaFlags::SA_RESTART | SaFlags::SA_SIGINFO;
    let forwarder = SigAction::new(SigHandler::SigAction(forward), flags, SigSet::empty());
    let killer = SigAction::new(
        SigHandler::Handler(kill_child),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in FORWARDED {
        // SAFETY: the handler only makes async-signal-safe calls (getpid, kill, alarm) and
        // touches atomics.
        unsafe { sigaction(signal, &forwarder) }
            .with_context(|| format!("cannot install a handler for {signal}"))?;
    }
    // SAFETY: as above.
    unsafe { sigaction(Signal::SIGALRM, &killer) }
        .context("cannot install a handler for SIGALRM")?;
    Ok(())
}

/// In the parent, right after `fork`: from now on, caught signals go to `child`, PID 1 of
/// the container, followed by SIGKILL after `GRACE_SECONDS` if it is still there.
/// `waitpid` then returns the child's status as usual (the handlers use SA_RESTART).
pub fn forward_signals(child: Pid) {
    CHILD.store(child.as_raw(), Ordering::SeqCst);
    match PENDING.swap(0, Ordering::SeqCst) {
        0 => {}
        signal => pass_on(child.as_raw(), signal),
    }
}

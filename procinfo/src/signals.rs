//! A parent that stands in for its container: signals sent to the step reach PID 1.
//!
//! From step 03 on, the command runs as PID 1 of a new PID namespace, and the step process
//! waits outside. Two kernel rules make that tricky (pid_namespaces(7)):
//!
//! - `kill <step pid>` signals the *parent*, not the container; so the parent forwards
//!   SIGTERM, SIGHUP, SIGQUIT and SIGINT to the child;
//! - PID 1 only receives the signals it has installed a handler for: a plain `sleep` as
//!   PID 1 ignores SIGTERM. So after forwarding a termination request the parent waits
//!   [`GRACE_SECONDS`] and then sends SIGKILL, which PID 1 cannot ignore; when PID 1
//!   dies, the kernel kills everything else in its namespace.
//!
//! Ctrl-C typed at the terminal already reaches the container directly (it is in the
//! terminal's foreground process group), so that SIGINT is not forwarded again and not
//! escalated: an interactive shell in the container keeps running, as it should.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use anyhow::{Context, Result};
use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::{Pid, alarm};

/// How long PID 1 gets to exit after a forwarded signal before it is killed.
pub const GRACE_SECONDS: u32 = 2;

/// The signals a parent forwards to its container.
const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

static CHILD: AtomicI32 = AtomicI32::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);

/// Signal handler: forward to the child, then arm the SIGKILL fallback.
/// Only async-signal-safe calls here: kill(2) and alarm(2).
extern "C" fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let Ok(signal) = Signal::try_from(signal) else {
        return;
    };
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let from_terminal = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    if signal == Signal::SIGINT && from_terminal {
        return;
    }
    let child = Pid::from_raw(CHILD.load(Ordering::SeqCst));
    let _ = kill(child, signal);
    if !ARMED.swap(true, Ordering::SeqCst) {
        alarm::set(GRACE_SECONDS);
    }
}

/// SIGALRM handler: the grace period is over.
extern "C" fn kill_child(_: libc::c_int) {
    let _ = kill(Pid::from_raw(CHILD.load(Ordering::SeqCst)), Signal::SIGKILL);
}

/// Makes this process forward SIGINT, SIGTERM, SIGHUP and SIGQUIT to `child`, with a
/// SIGKILL after [`GRACE_SECONDS`] if the child is still there. Call it in the parent right
/// after `fork`; `waitpid` then returns the child's status as usual (SA_RESTART).
///
/// A signal that arrives in the microseconds between `fork` and this call still kills the
/// step the default way; the child's PR_SET_PDEATHSIG then takes the container with it.
pub fn forward_signals(child: Pid) -> Result<()> {
    CHILD.store(child.as_raw(), Ordering::SeqCst);
    let flags = SaFlags::SA_RESTART | SaFlags::SA_SIGINFO;
    let forwarder = SigAction::new(SigHandler::SigAction(forward), flags, SigSet::empty());
    let killer = SigAction::new(
        SigHandler::Handler(kill_child),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in FORWARDED {
        // SAFETY: the handler only makes async-signal-safe calls (kill, alarm) and touches
        // atomics.
        unsafe { sigaction(signal, &forwarder) }
            .with_context(|| format!("cannot install a handler for {signal}"))?;
    }
    // SAFETY: as above.
    unsafe { sigaction(Signal::SIGALRM, &killer) }
        .context("cannot install a handler for SIGALRM")?;
    Ok(())
}

//! Ctrl-C while building a root filesystem: the work stops at the next check, and what
//! was half built is removed (install.rs), instead of the process dying mid-write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};

/// Set by SIGINT/SIGTERM/SIGHUP once [`catch_interrupts`] has run.
static INTERRUPTED: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// From now on, the first Ctrl-C (or SIGTERM/SIGHUP) makes [`check_interrupted`] fail, so
/// the work stops at the next check and the partial directory is cleaned up; a second one
/// terminates at once (the next run then removes the debris).
pub fn catch_interrupts() -> Result<()> {
    let flag = INTERRUPTED.get_or_init(Default::default);
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(flag))
            .context("cannot install a signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(flag))
            .context("cannot install a signal handler")?;
    }
    Ok(())
}

/// Fails once an interrupt has been received.
pub fn check_interrupted() -> Result<()> {
    match INTERRUPTED.get() {
        Some(flag) if flag.load(Ordering::SeqCst) => bail!("interrupted"),
        _ => Ok(()),
    }
}

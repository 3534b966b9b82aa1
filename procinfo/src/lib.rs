//! # procinfo: everything in the Bento workshop that is *not* the lesson
//!
//! Each `steps/NN-*/src/main.rs` is about one kernel feature. What every step needs in the
//! same way lives here, so the step files stay about namespaces:
//!
//! - [`before_isolation`] and [`Host::after_isolation`] print the process's view of the
//!   system (uid, hostname, pid, cwd) to **stderr**, in the talk's format, and the
//!   [container checklist](checklist), computed from the real state;
//! - [`command`] and [`rootfs`] turn the command line and `$BENTO_ROOTFS` into checked values;
//! - [`run`], [`Hint`] and [`exec_error`] turn failures into one clear line plus a hint and
//!   a shell-style exit status;
//! - [`user_namespace_hint`] says why a host refuses user namespaces;
//! - [`catch_signals`], [`forward_signals`] and [`exit_code`] let a parent process stand in
//!   for its container;
//! - [`Scratch`] is a per-run directory on the host (step 07's overlay layers).
//!
//! Everything printed goes to stderr, so the command's own stdout stays clean.

mod args;
pub mod checklist;
mod errors;
pub mod host;
mod scratch;
mod signals;
mod state;

pub use args::{command, rootfs, rootfs_location};
pub use errors::{EXIT_SETUP_FAILED, Hint, exec_error, exit_code, run};
pub use host::user_namespace_hint;
pub use scratch::{Scratch, remove_leftovers, remove_tree};
pub use signals::{GRACE_SECONDS, catch_signals, forward_signals};
pub use state::{Host, before_isolation};

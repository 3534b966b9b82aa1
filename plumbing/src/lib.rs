//! # plumbing: what every step of the Bento workshop needs, and is not the lesson
//!
//! Each `steps/NN-*/src/main.rs` is about one kernel feature. The pipes every step needs in
//! the same way live here, so that the step files stay about namespaces (and `procinfo`
//! stays about printing what a process sees):
//!
//! - [`command`], [`rootfs`] and [`parse_size`] turn the command line and `$BENTO_ROOTFS`
//!   into checked values ([`ports_and_command`]: step 12's `-p` options first);
//! - [`run`], [`Hint`] and [`exec_error`] turn failures into one clear line plus a hint and
//!   a shell-style exit status ([`report`] prints one, [`with_status`] gives it its own);
//! - [`user_namespace_hint`] says why a host refuses user namespaces ([`host`] reads the
//!   settings, for the hint and for `just doctor`);
//! - [`catch_signals`], [`forward_signals`] and [`exit_code`] let a parent process stand in
//!   for its container;
//! - [`files`] writes a file whole, never through a symlink (state, pid files);
//! - [`Scratch`] is a per-run directory on the host (the overlay's layers), and
//!   [`remove_tree`] / [`remove_at`] / [`remove_leftovers`] remove what we made, beneath
//!   directory descriptors and without following symlinks.

mod args;
mod errors;
pub mod files;
pub mod host;
mod scratch;
mod signals;

pub use args::{
    Publish, command, parse_publish, parse_size, ports_and_command, rootfs, rootfs_location,
};
pub use errors::{
    EXIT_SETUP_FAILED, Hint, add_hint, exec_error, exit_code, hinted, report, run, with_status,
};
pub use host::user_namespace_hint;
pub use scratch::{Scratch, names_at, remove_at, remove_leftovers, remove_tree};
pub use signals::{catch_signals, forward_signals};

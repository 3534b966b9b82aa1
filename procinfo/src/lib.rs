//! # procinfo: what a process sees, printed
//!
//! The steps of the Bento workshop show, before and after isolation, what the process sees
//! of the system (uid, hostname, pid, cwd) in the talk's format, followed by the container
//! checklist: each line computed from the real kernel state (namespaces, root, `/proc`,
//! mounts, network), never claimed.
//!
//! - [`before_isolation`] captures and prints `[Before Isolation]`, and returns the [`Host`];
//! - [`Host::after_isolation`] prints `[After Isolation]` and the checklist (`checklist.rs`).
//!
//! Everything printed goes to stderr, so the command's own stdout stays clean. That is all
//! this crate does: the rest of what every step needs is in `plumbing`.

mod checklist;
mod state;

pub use state::{Host, before_isolation};

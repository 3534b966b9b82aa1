//! # coach: the learner track of the Bento workshop
//!
//! A self-paced learner writes each lesson themselves, and the same tests that prove our
//! steps tell them whether theirs works:
//!
//! - [`lessons`] is the one parser of step files (the tests hold the steps to it too);
//! - [`exercise`] turns a step into the learner's copy, new lessons left to write;
//! - [`workbench`] finds steps and keeps the learner's copies under `workbench/`;
//! - [`hints`] reads a step's `HINTS.md`: progressive hints, and the typical wrong answers;
//! - [`check`] builds the learner's copy, runs the step's own tests on it, and says in
//!   plain words what holds and what does not;
//! - [`trace`] reads what a step did (its system calls, from strace) and compares it with
//!   what the solution does;
//! - [`sandbox`] is where steps run when they are checked, by `just check` and by the tests.

pub mod check;
pub mod exercise;
pub mod hints;
pub mod lessons;
pub mod sandbox;
pub mod trace;
pub mod workbench;

//! # Bento: a rootless container runtime, made of the workshop's lessons
//!
//! The steps (`steps/00-baseline` … `steps/12-network`) each run one container for as long as
//! the step runs. Bento puts their lessons together into a runtime whose containers
//! outlive the command that made them: `bento create`, `start`, `exec`, `status`, `stop`,
//! `kill`, plus `run`, `logs`, `rm`, `pull` and `images`; and it speaks the OCI runtime
//! command line, so that podman can use it instead of runc.
//!
//! # Layout
//!
//! **The lessons**, one module per step, each the refactored form of its step's code:
//!
//! - [`uts`]: step 01, a hostname of our own (and an IPC namespace, which no step needs);
//! - [`userns`]: step 02, root inside, ourselves outside;
//! - [`pid`]: step 03, PID 1 of a new PID namespace, which dies with its parent;
//! - [`mounts`]: steps 04 and 06, a private mount table, pivot_root into the new root;
//! - [`proc`]: step 05, a /proc that shows only the container;
//! - [`overlay`]: step 07, the image read-only below, the container's layer above;
//! - [`net`]: step 08, a network namespace with `lo` up;
//! - [`dev`]: step 09, a /dev of the container's own;
//! - [`terminal`]: step 10, a pseudoterminal from the container's devpts, relayed;
//! - [`privileges`] and [`seccomp`]: step 11, least privilege: the user, capabilities,
//!   rlimits and no_new_privs, then a seccomp filter compiled from a profile, last;
//! - [`network`] and [`ports`]: step 12, a way out (slirp4netns, a user-mode network stack
//!   on a tap device) and a way in (`-p`: listening sockets made on the host, relayed by a
//!   helper that joined the container's network namespace).
//!
//! **What a runtime adds:**
//!
//! - [`cmd`]: the command line, one file per command, each a shim: its arguments, then one
//!   call (mostly into [`lifecycle`]). The OCI runtime's commands (`create --bundle`,
//!   `start`, `state`, `kill`, `delete`, `exec --process`, `features`) that podman's conmon
//!   calls are among them;
//! - [`lifecycle`]: a container's life in one place: create (from an image or a bundle;
//!   attached, detached or for an engine), start, exec, stop, kill, remove;
//! - [`config`]: bento's own containers described as an engine would, as a `config.json`;
//! - [`spec`]: what to run: a `config.json` (an engine's, or config.rs's) turned into what
//!   bento needs, decided before anything;
//! - [`supervisor`]: the process that makes the namespaces, is PID 1's parent, and
//!   records how it ended;
//! - [`init`]: the two ways into a container, side by side: PID 1's table of contents (the
//!   lessons, in the kernel's order) and `exec`'s, which share one ending;
//! - [`rootfs`]: config.json's mounts beneath the root, masked and read-only paths, sysctl;
//! - [`gate`]: the create/start split: PID 1 waits on a FIFO until `bento start`;
//! - [`join`]: `exec`'s lesson: entering a running container's namespaces with setns(2);
//! - [`message`]: the one-byte messages bento's processes send each other;
//! - [`cgroups`]: `--memory` and `--pids-limit`, with cgroup v2 or v1;
//! - [`image`]: images pulled with rootfs-fetch, stored once per set of layers, named;
//! - [`copy`]: `bento cp`, files in and out of a container, resolved beneath its root as
//!   image extraction is (a stopped container's layers mounted for the copy alone);
//! - [`state`], [`home`], [`process`], [`log`], [`time`]: where state lives, how it is
//!   written safely, how a pid is told from its successor, a detached container's output,
//!   and the time as OCI prints it;
//! - [`caller`], [`sealed`]: nothing of the caller (terminal, keyring, descriptors) reaches
//!   a container, and bento's own binary is never reachable from inside;
//! - [`errors`]: one line, a hint, and a distinct exit status for each refusal.
//!
//! Bento is single-threaded on purpose: unshare(2) refuses CLONE_NEWUSER to a threaded
//! process, setns(2) refuses to move one into a user namespace, and after fork(2) only
//! a single-threaded program may go on running ordinary code.

pub mod caller;
pub mod cgroups;
pub mod cmd;
pub mod config;
pub mod copy;
pub mod dev;
pub mod errors;
pub mod gate;
pub mod home;
pub mod image;
pub mod init;
pub mod join;
pub mod lifecycle;
pub mod log;
pub mod message;
pub mod mounts;
pub mod net;
pub mod network;
pub mod overlay;
pub mod pid;
pub mod ports;
pub mod privileges;
pub mod proc;
pub mod process;
pub mod rootfs;
pub mod sealed;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod supervisor;
pub mod terminal;
pub mod time;
pub mod userns;
pub mod uts;

//! How bento refuses: one line, a hint, and an exit status of its own for each reason, so
//! that scripts can tell "no such container" from "it is still running".
//!
//! The container's own statuses come first and are the shell's (and the steps'): its exit
//! code, 128+N when it died of signal N, 127 command not found, 126 not executable, and
//! 125 when bento could not set the container up. The refusals below sit under 64, where
//! few programs put their own.

/// Every reason bento refuses, with its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No container has this name.
    UnknownContainer = 3,
    /// Another container already has this name.
    NameInUse = 4,
    /// The name cannot be a container name (a path, a dot, too long…).
    InvalidName = 5,
    /// The image does not exist or cannot be pulled.
    UnknownImage = 6,
    /// The registry cannot be reached.
    Unreachable = 7,
    /// `exec`, `stop`… need a running container.
    NotRunning = 8,
    /// `start` needs a created one.
    NotCreated = 9,
    /// `rm` without `-f` of a container that runs.
    StillRunning = 10,
    /// `-t` without a terminal on stdin.
    NoTerminal = 11,
    /// `--memory` / `--pids-limit` where no cgroup can be made.
    NoCgroups = 12,
    /// `--network slirp` (or `-p`) where slirp4netns cannot work.
    NoNetwork = 13,
    /// `-p` of a host port in use (or below 1024, or of an address not this host's).
    CannotPublish = 14,
}

impl Refusal {
    /// The error to return: `message`, then `hint` on its own line, exiting with our status.
    pub fn error(self, message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
        plumbing::with_status(self as i32, plumbing::hinted(message, hint))
    }

    /// Gives an existing error (a library's, with its own hint) this refusal's status.
    pub fn wrap(self, error: anyhow::Error) -> anyhow::Error {
        plumbing::with_status(self as i32, error)
    }
}

/// Where an engine asked for errors (`--log FILE`, `--log-format json`): it reads the file
/// when a runtime fails, not the runtime's stderr. Opened at once, so that PID 1, past
/// pivot_root, can still write its error there.
static ENGINE_LOG: std::sync::OnceLock<(std::fs::File, bool)> = std::sync::OnceLock::new();

/// From now on, errors also go to `path` (as runc's JSON lines when `json`).
pub fn log_errors_to(path: &std::path::Path, json: bool) {
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(file) = opened {
        let _ = ENGINE_LOG.set((file, json));
    }
}

/// Appends `error` to the engine's log, if it asked for one.
pub fn log_error(error: &anyhow::Error) {
    let Some((file, json)) = ENGINE_LOG.get() else {
        return;
    };
    let message = format!("{error:#}");
    let line = match json {
        true => serde_json::json!({ "level": "error", "msg": message, "time": crate::time::now() })
            .to_string(),
        false => format!("bento: error: {message}"),
    };
    // One write: O_APPEND keeps a line whole even when two processes write.
    let _ = std::io::Write::write_all(&mut &*file, format!("{line}\n").as_bytes());
}

/// Reports `error` (one line and a hint on stderr, and the engine's log); the status to
/// exit with. What every process of bento's that ends on an error calls.
pub fn report(error: &anyhow::Error) -> i32 {
    log_error(error);
    plumbing::report(error)
}

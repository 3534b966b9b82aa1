//! A detached container's log: what its command writes to stdout and stderr, kept in the
//! container's directory for `bento logs`.
//!
//! A command that writes without end (`yes`) must not fill the disk: the supervisor copies
//! the container's output from a pipe into `log`, and once `log` would grow past its limit
//! (`--log-size-max`, 8 MiB unless said), renames it to `log.1` (replacing the one before)
//! and starts a new `log`. At most twice the limit is kept, the newest output always
//! among it: conmon's `--log-size-max` keeps less (it truncates), journald more (by
//! policy). All of it happens beneath the container's directory descriptor.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::{OFlag, open, openat, renameat};
use nix::sys::stat::Mode;

use crate::state::Container;

/// The log's file in the container's directory, and the one before it.
pub const FILE: &str = "log";
pub const OLDER: &str = "log.1";

/// The limit when none is given: 8 MiB per file.
pub const DEFAULT_SIZE_MAX: u64 = 8 << 20;

/// Creates the container's log (never through a symlink), for its supervisor's own
/// messages.
pub fn create(container: &Container) -> Result<File> {
    let dir = open_dir(&container.dir)?;
    open_log(&dir)
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    open(dir, plumbing::files::dir_flags(), Mode::empty())
        .with_context(|| format!("cannot open {}", dir.display()))
}

fn open_log(dir: &OwnedFd) -> Result<File> {
    let fd = openat(
        dir,
        FILE,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .context("cannot create the log")?;
    Ok(File::from(fd))
}

/// The writing end: `log`, rotated to `log.1` at `max` bytes.
pub struct Writer {
    dir: OwnedFd,
    file: File,
    size: u64,
    max: u64,
}

impl Writer {
    pub fn new(container: &Container, max: u64) -> Result<Writer> {
        let dir = open_dir(&container.dir)?;
        let file = open_log(&dir)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Writer {
            dir,
            file,
            size,
            max: max.max(1),
        })
    }

    /// `log` becomes `log.1` (rename(2) replaces the older one), and a new `log` begins.
    fn rotate(&mut self) -> std::io::Result<()> {
        renameat(&self.dir, FILE, &self.dir, OLDER)?;
        self.file = open_log(&self.dir).map_err(std::io::Error::other)?;
        self.size = 0;
        Ok(())
    }

    /// Copies everything from `from` (the container's output pipe) until its end.
    pub fn copy_from(&mut self, mut from: File) -> Result<()> {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(n) => self
                    .write_all(&buffer[..n])
                    .context("cannot write the log")?,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error).context("cannot read the container's output"),
            }
        }
    }
}

impl Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.size > 0 && self.size + bytes.len() as u64 > self.max {
            self.rotate()?;
        }
        let written = self.file.write(bytes)?;
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// `bento logs`: the log so far (`log.1`, then `log`) to `out`; with `follow`, what comes
/// next too, until the container stops (`stopped` says when).
pub fn print(
    container: &Container,
    follow: bool,
    stopped: impl Fn() -> bool,
    out: &mut impl Write,
) -> Result<()> {
    let dir = open_dir(&container.dir)?;
    let open_read = |name: &str| -> Option<File> {
        openat(
            &dir,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .map(File::from)
    };
    if let Some(mut older) = open_read(OLDER) {
        std::io::copy(&mut older, out).context("cannot write")?;
    }
    // An attached container (`bento run` without -d) wrote to its terminal: no log.
    let Some(mut log) = open_read(FILE) else {
        return Ok(());
    };
    loop {
        std::io::copy(&mut log, out).context("cannot write")?;
        out.flush().context("cannot write")?;
        if !follow {
            return Ok(());
        }
        // At the end of this file: the supervisor may have begun a new one.
        let rotated = match (open_read(FILE), log.metadata()) {
            (Some(current), Ok(ours)) => current.metadata().is_ok_and(|m| m.ino() != ours.ino()),
            _ => false,
        };
        if rotated {
            std::io::copy(&mut log, out).context("cannot write")?;
            if let Some(current) = open_read(FILE) {
                log = current;
            }
            continue;
        }
        if stopped() {
            // One last read: what it wrote just before it stopped.
            std::io::copy(&mut log, out).context("cannot write")?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

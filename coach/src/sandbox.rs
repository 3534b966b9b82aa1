//! Where steps run when they are checked: as the tests run them, and as a learner does.
//!
//! A rootless claim tested as root proves nothing, and a learner's unfinished code must never
//! run as root: when we are root, steps run as uid/gid 65534 (`nobody`). That user must reach
//! the binaries and a root filesystem even when the checkout sits in a 0700 home directory,
//! so a sandbox is a directory every user can enter, in `$TMPDIR`, holding the binaries, a
//! busybox rootfs that belongs to the user the steps run as (as a learner's own `rootfs/`
//! does), and a TMPDIR for them. The tests' fixture is one (`tests/common`), and so is the
//! directory where `just check` traces a step against the solution.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use plumbing::Hint;

/// The unprivileged uid and gid the steps run as when we are root.
pub const NOBODY: u32 = 65534;

/// A PATH every user can search (the caller's may hold /root/.cargo/bin, which turns "not
/// found" into "permission denied" for nobody).
pub const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// `$TMPDIR/bento-NAME-PID-XXXXXX`, open to every user, removed when dropped.
pub struct Sandbox {
    /// The directory lives as long as this value (the tests' fixture: as its test binary).
    _scratch: plumbing::Scratch,
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub tmp: PathBuf,
}

/// The uid the steps run as: ours, or nobody when we are root.
pub fn step_uid() -> u32 {
    match nix::unistd::geteuid() {
        uid if uid.is_root() => NOBODY,
        uid => uid.as_raw(),
    }
}

impl Sandbox {
    /// A sandbox with a busybox rootfs, made by `rootfs_fetch` from the host's static
    /// busybox (offline, a fraction of a second), owned by the user the steps run as.
    pub fn create(name: &str, rootfs_fetch: &Path) -> Result<Sandbox> {
        let mut sandbox = Sandbox::empty(name)?;
        let rootfs = sandbox.dir.join("rootfs");
        busybox_rootfs(rootfs_fetch, &rootfs)?;
        sandbox.rootfs = rootfs;
        Ok(sandbox)
    }

    /// The directory, open to every user, and its TMPDIR.
    fn empty(name: &str) -> Result<Sandbox> {
        let scratch = plumbing::Scratch::create(name, &["tmp"])?;
        let dir: PathBuf = scratch.join("").components().collect();
        let open = |path: &Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot open {} to other users", path.display()))
        };
        open(&dir, 0o755)?;
        let tmp = dir.join("tmp");
        open(&tmp, 0o1777)?;
        Ok(Sandbox {
            _scratch: scratch,
            rootfs: dir.join("rootfs"),
            dir,
            tmp,
        })
    }

    /// Puts the binary `from` in the sandbox as `to` (a path relative to it) and returns
    /// where it is.
    pub fn place(&self, from: &Path, to: &str) -> Result<PathBuf> {
        let path = self.dir.join(to);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))?;
        }
        place(from, &path)?;
        Ok(path)
    }

    /// A command that runs `program` in the sandbox as the steps run: as [`step_uid`], from
    /// the sandbox's directory, with its rootfs and TMPDIR and a PATH every user can search.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.dir)
            .env_clear()
            .env("BENTO_ROOTFS", &self.rootfs)
            .env("PATH", SYSTEM_PATH)
            .env("TMPDIR", &self.tmp)
            .env("HOME", &self.tmp);
        if nix::unistd::geteuid().is_root() {
            command.uid(NOBODY).gid(NOBODY);
        }
        command
    }

    /// Runs `binary ARGS` under `strace -f` on a terminal of its own (a pty we open, as a
    /// shell would start it: its own session, the pty as its controlling terminal), for up
    /// to `limit`. Returns strace's output: the calls of [`crate::trace::TRACED`], and the
    /// end of a process its seccomp filter killed (`signal=SIGSYS`: `+++ killed by SIGSYS`).
    pub fn strace(&self, binary: &Path, args: &[&str], limit: Duration) -> Result<String> {
        let out = tempfile_in(&self.tmp, "trace")?;
        let pty = nix::pty::openpty(None, None).context("cannot open a pseudoterminal")?;
        if nix::unistd::geteuid().is_root() {
            let nobody = Some(nix::unistd::Uid::from_raw(NOBODY));
            nix::unistd::fchown(&pty.slave, nobody, None).context("cannot chown the pty")?;
        }
        let mut command = self.command("strace");
        command
            .args(["-f", "-qq", "-y", "-s", "64", "-e", "signal=SIGSYS", "-e"])
            .arg(format!("trace={}", crate::trace::TRACED))
            .arg("-o")
            .arg(&out)
            .arg(binary)
            .args(args);
        on_terminal(&mut command, &pty.slave)?;
        let mut child = command
            .spawn()
            .context("cannot run strace")
            .hint("install strace (sudo apt install strace)")?;
        drop(pty.slave);
        // Whatever the step prints goes to the terminal: read it so that it never blocks.
        nix::fcntl::fcntl(
            &pty.master,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        let start = Instant::now();
        let mut buffer = [0u8; 4096];
        loop {
            while matches!(nix::unistd::read(&pty.master, &mut buffer), Ok(n) if n > 0) {}
            if child.try_wait()?.is_some() {
                break;
            }
            if start.elapsed() > limit {
                // strace leads a session of its own: its group holds the step, and strace
                // kills what it traces when it dies.
                let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        if text.is_empty() {
            bail!("strace recorded nothing (is ptrace allowed here?)");
        }
        Ok(text)
    }
}

/// Makes a busybox rootfs at `dest`, owned by the user the steps run as, as `rootfs-fetch
/// busybox:` makes it, from a copy kept beside `rootfs_fetch` (made by it once).
///
/// Every check and every test binary needs one, and on some filesystems creating its 270
/// symlinks is slow (ext4 looks long for a free inode after many deletions: a second of CPU
/// per rootfs here). So the directories and files are copied, new, and the symlinks are
/// hard links to the kept copy's: no new inode, and a symlink cannot be changed in place,
/// so nothing a step does in its rootfs reaches the kept copy. Where hard links cannot be
/// made (another filesystem), rootfs-fetch makes the rootfs itself.
pub fn busybox_rootfs(rootfs_fetch: &Path, dest: &Path) -> Result<()> {
    let uid = step_uid();
    let made = std::fs::metadata(rootfs_fetch)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |age| age.as_secs());
    let kept = rootfs_fetch.with_file_name(format!(".busybox-rootfs-{uid}-{made}"));
    if !kept.join("bin/busybox").is_file() {
        let building = kept.with_extension(format!("{}.new", std::process::id()));
        fetch_busybox(rootfs_fetch, &building)?;
        // Another process may have made it meanwhile: then keep theirs.
        if std::fs::rename(&building, &kept).is_err() {
            let _ = plumbing::remove_tree(&building);
        }
    }
    if copy_linking_symlinks(&kept, dest).is_err() {
        let _ = plumbing::remove_tree(dest);
        fetch_busybox(rootfs_fetch, dest)?;
    }
    Ok(())
}

/// `rootfs-fetch busybox: DEST`, owned by the user the steps run as.
fn fetch_busybox(rootfs_fetch: &Path, dest: &Path) -> Result<()> {
    let output = Command::new(rootfs_fetch)
        .arg("busybox:")
        .arg(dest)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", rootfs_fetch.display()))?;
    if !output.status.success() {
        return Err(anyhow::anyhow!(
            "cannot build a busybox rootfs: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
        .hint("install busybox-static (sudo apt install busybox-static)");
    }
    if nix::unistd::geteuid().is_root() {
        chown_tree(dest, NOBODY)?;
    }
    Ok(())
}

/// Copies the tree `from` to `to`: directories and files anew (with their modes, owned by
/// the user the steps run as), symlinks as hard links (linkat(2) without following them).
fn copy_linking_symlinks(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let meta = std::fs::symlink_metadata(from)?;
    std::fs::DirBuilder::new()
        .mode(meta.mode() & 0o7777)
        .create(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    let uid = step_uid();
    let own = |path: &Path| -> Result<()> {
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::lchown(path, Some(uid), Some(uid))?;
        }
        Ok(())
    };
    own(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_linking_symlinks(&source, &target)?;
        } else if kind.is_symlink() {
            std::fs::hard_link(&source, &target)
                .with_context(|| format!("cannot link {}", target.display()))?;
        } else {
            std::fs::copy(&source, &target)
                .with_context(|| format!("cannot copy {}", source.display()))?;
            own(&target)?;
        }
    }
    Ok(())
}

/// A fresh file name in `dir` for another user to write (strace as nobody).
fn tempfile_in(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{name}-{}-{}", std::process::id(), nanos()));
    Ok(path)
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |time| time.as_nanos())
}

/// Makes `pts` the command's stdin, stdout, stderr and controlling terminal, in a session of
/// its own.
pub fn on_terminal(command: &mut Command, pts: &OwnedFd) -> Result<()> {
    let clone = |fd: &OwnedFd| -> Result<Stdio> { Ok(Stdio::from(fd.try_clone()?)) };
    command
        .stdin(clone(pts)?)
        .stdout(clone(pts)?)
        .stderr(clone(pts)?);
    // SAFETY: only async-signal-safe calls between fork and exec: setsid(2), ioctl(2).
    unsafe {
        command.pre_exec(|| {
            if nix::libc::setsid() < 0 || nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// Puts the binary `from` at `to`: a hard link when both are on one filesystem (instant,
/// where copying debug builds takes a while), a copy otherwise. Either way `to` can be
/// reached by every user, and later builds do not change it (cargo writes a new file).
pub fn place(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// `chown -R uid:uid`, without following symlinks.
pub fn chown_tree(path: &Path, id: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(id), Some(id))
        .with_context(|| format!("cannot chown {}", path.display()))?;
    if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        for entry in std::fs::read_dir(path)?.flatten() {
            chown_tree(&entry.path(), id)?;
        }
    }
    Ok(())
}

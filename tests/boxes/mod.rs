//! Bento containers for the tests of `--network`, `-p` (network.rs) and `bento cp`
//! (cp.rs): a private BENTO_HOME per test, a busybox image with the applets they need,
//! and a guard that, even when a test fails, kills by pid every process the containers'
//! states name (PID 1, the supervisor, slirp4netns and the port relay), then removes the
//! directory.
//!
//! Rootless claims run bento as nobody (65534) when the suite runs as root, as
//! tests/bento.rs does. slirp4netns opens /dev/net/tun as that user: where the host's is
//! 0600, [`Boxes::with_tun`] gives bento a tun node of its own, in a mount namespace of
//! its own (common's OWN_TUN, as step 12's tests do): the host's device is never changed.

#![allow(dead_code)] // each test file uses a different part of this module

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::{NOBODY, OWN_TUN, SYSTEM_PATH, built, eventually, running_as_root};
use crate::fixtures::{self, Entry};

/// bento's refusals (bento/src/errors.rs) these tests meet.
pub const NO_NETWORK: i32 = 13;
pub const CANNOT_PUBLISH: i32 = 14;
pub const USAGE: i32 = 2;

/// The image (a docker-archive) and a copy of bento that nobody can run, made once.
struct Made {
    _dir: tempfile::TempDir,
    image: String,
    bento: PathBuf,
}

fn made() -> &'static Made {
    static MADE: OnceLock<Made> = OnceLock::new();
    MADE.get_or_init(|| {
        let dir = fixtures::world_readable_tempdir();
        crate::common::remove_at_exit(dir.path());
        let applets = [
            "sh", "cat", "echo", "ls", "mkdir", "rm", "ln", "sleep", "ip", "httpd", "wget",
            "timeout", "stat", "readlink", "test", "chown", "chmod", "touch", "true", "cut",
        ];
        let extra = [
            Entry::File("etc/image-file", b"from the image\n", 0o644),
            Entry::File("etc/other", b"another file of the image\n", 0o644),
            Entry::Dir("tmp/", 0o1777),
        ];
        let archive = dir.path().join("busybox.tar");
        fixtures::docker_archive(
            &archive,
            &[fixtures::busybox_layer_with(&applets, &extra)],
            true,
        );
        std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o644)).unwrap();
        let bento = dir.path().join("bento");
        std::fs::copy(built("bento"), &bento).expect("copy bento");
        std::fs::set_permissions(&bento, std::fs::Permissions::from_mode(0o755)).unwrap();
        Made {
            image: format!("docker-archive:{}", archive.display()),
            bento,
            _dir: dir,
        }
    })
}

/// The test image's name for bento.
pub fn image() -> &'static str {
    &made().image
}

/// A BENTO_HOME, and who runs bento in it.
pub struct Boxes {
    dir: tempfile::TempDir,
    /// Run bento as root (only when the suite does): no user namespace.
    root: bool,
}

impl Boxes {
    /// Rootless: bento as nobody when the suite runs as root, else as ourselves. The
    /// image is pulled.
    pub fn rootless() -> Boxes {
        Boxes::made(false)
    }

    /// bento as root (the caller checks that the suite runs as root).
    pub fn as_root() -> Boxes {
        Boxes::made(true)
    }

    fn made(root: bool) -> Boxes {
        let dir = fixtures::world_readable_tempdir();
        if running_as_root() && !root {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let boxes = Boxes { dir, root };
        boxes.ok(&["pull", image()]);
        boxes
    }

    /// The test's own directory (files to copy go here: its user can read them).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn containers(&self) -> PathBuf {
        self.dir.path().join("home/containers")
    }

    /// `bento ARGS` with this home, the system PATH, no stdin.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&made().bento);
        self.prepare(&mut command, args);
        if running_as_root() && !self.root {
            command.uid(NOBODY).gid(NOBODY);
        }
        command
    }

    /// `bento ARGS` where /dev/net/tun has `mode`: as root, a node of its own in a mount
    /// namespace of its own, where bento runs as nobody; otherwise the host's own.
    pub fn with_tun(&self, mode: &str, args: &[&str]) -> Command {
        if !running_as_root() || self.root {
            return self.command(args);
        }
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "sh", "-c", OWN_TUN])
            .args(["sh", mode])
            .arg(&made().bento);
        self.prepare(&mut command, args);
        command
    }

    fn prepare(&self, command: &mut Command, args: &[&str]) {
        command
            .args(args)
            .env_clear()
            .env("BENTO_HOME", self.dir.path().join("home"))
            .env("PATH", SYSTEM_PATH)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }

    /// Runs `bento ARGS` (a container-making one with a usable tun).
    pub fn run(&self, args: &[&str]) -> Out {
        Out::of(args, self.with_tun("666", args))
    }

    /// Runs and expects success; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args).success()
    }

    /// `bento status --json NAME`.
    pub fn state(&self, name: &str) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json", name])).unwrap()
    }

    /// The containers that have a directory.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.containers())
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Every process the states name, as (pid, start time).
    pub fn named_processes(&self) -> Vec<(i32, u64)> {
        let mut found = Vec::new();
        for name in self.entries() {
            let Ok(text) = std::fs::read(self.containers().join(name).join("state.json")) else {
                continue;
            };
            let state: Value = serde_json::from_slice(&text).unwrap_or_default();
            let helpers = state["network"]["helpers"].as_array().cloned();
            let named = [state["init"].clone(), state["supervisor"].clone()];
            for process in named.into_iter().chain(helpers.into_iter().flatten()) {
                if let (Some(pid), Some(start)) =
                    (process["pid"].as_i64(), process["start"].as_u64())
                {
                    found.push((pid as i32, start));
                }
            }
        }
        found
    }
}

impl Drop for Boxes {
    fn drop(&mut self) {
        for (pid, start) in self.named_processes() {
            if started_at(pid) == Some(start) {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        eventually("the containers' processes are gone", || {
            self.named_processes()
                .iter()
                .all(|&(pid, start)| started_at(pid) != Some(start))
        });
        let _ = plumbing::remove_tree(self.dir.path());
    }
}

/// When `pid` started (proc(5), field 22), while it runs (a zombie has ended).
pub fn started_at(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split(' ').collect();
    (fields.first() != Some(&"Z")).then_some(())?;
    fields.get(19)?.parse().ok()
}

/// What one run of bento printed, and its status.
pub struct Out {
    args: String,
    output: Output,
}

impl Out {
    /// Runs `command` (bento with `args`) to its end.
    pub fn of(args: &[&str], mut command: Command) -> Out {
        let output = command.output().expect("start bento");
        Out {
            args: args.join(" "),
            output,
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The exit status is `code`.
    pub fn status(&self, code: i32) -> &Out {
        let shown = format!(
            "bento {}: status {:?}\n{}{}",
            self.args,
            self.output.status,
            self.stdout(),
            self.stderr()
        );
        assert_eq!(self.output.status.code(), Some(code), "{shown}");
        self
    }

    /// Did it exit with `code`?
    pub fn status_is(&self, code: i32) -> bool {
        self.output.status.code() == Some(code)
    }

    /// Exit status 0; stdout.
    pub fn success(&self) -> String {
        self.status(0).stdout()
    }

    /// Refused with `code`: stderr is exactly an error line holding `text`, then a hint.
    pub fn refused(&self, code: i32, text: &str) -> &Out {
        self.status(code);
        let stderr = self.stderr();
        match stderr.lines().collect::<Vec<_>>()[..] {
            [error, hint]
                if error.starts_with("bento: error: ") && hint.starts_with("  hint: ") =>
            {
                assert!(error.contains(text), "{text:?} not in {error:?}")
            }
            _ => panic!(
                "bento {}: not one error line and a hint:\n{stderr}",
                self.args
            ),
        }
        self
    }
}

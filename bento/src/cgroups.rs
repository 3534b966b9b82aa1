//! Resource limits (the talk's "cgroups"): `--memory SIZE` and `--pids-limit N`.
//!
//! Namespaces limit what a container *sees*; control groups limit what it *uses*
//! (cgroups(7)). A cgroup is a directory in the cgroup filesystem: make one, write limits
//! into its files, write a pid into its `cgroup.procs`, and that process and every child
//! it forks are counted and held to the limits.
//!
//! Two versions exist, and a runtime meets both:
//! - **cgroup v2** (one tree, every controller; what systemd machines use): an
//!   unprivileged user may only write to a subtree *delegated* to them (systemd does it
//!   for `user@UID.service`). Bento makes the container's cgroup next to its own
//!   (`…/bento-NAME`), enables the `memory` and `pids` controllers for the parent
//!   (`cgroup.subtree_control`: v2 only lets a cgroup use the controllers its parent
//!   enabled), and writes `memory.max` and `pids.max`.
//! - **cgroup v1** (one tree per controller; older and hybrid machines): only root may
//!   make cgroups. Bento makes `memory/…/bento-NAME` and `pids/…/bento-NAME` under its own
//!   cgroups and writes `memory.limit_in_bytes` and `pids.max`.
//!
//! The supervisor makes the cgroup before the user namespace (as root, v1 files belong to
//! the real root) and opens each `cgroup.procs`; PID 1 writes `0` ("myself") into them
//! before anything else, so every process of the container is counted from the start.
//! Real runtimes also ask systemd over D-Bus for a scope (`--cgroup-manager systemd`) and
//! set cpu, io and device limits; bento does memory and pids, through the filesystem.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::errors::Refusal;
use crate::spec::Spec;

/// What to say when no cgroup can be made here.
pub const FIX: &str = "cgroup v2: run bento in a delegated cgroup (systemd: `systemd-run --user \
     --scope -p Delegate=yes bento …`); cgroup v1: run bento as root";

/// Where the cgroup filesystem is, and where this process is in it.
#[derive(Debug, Clone)]
pub struct Host {
    /// The cgroup filesystem's mount point (`/sys/fs/cgroup`).
    pub root: PathBuf,
    /// `/proc/self/cgroup`: one `ID:CONTROLLERS:PATH` line per hierarchy.
    pub self_cgroup: String,
    /// Are we root (v1 needs it)?
    pub root_user: bool,
}

impl Host {
    /// This machine.
    pub fn this() -> Host {
        Host {
            root: PathBuf::from("/sys/fs/cgroup"),
            self_cgroup: fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            root_user: nix::unistd::geteuid().is_root(),
        }
    }

    /// Our path in the hierarchy whose controller list contains `controller` (v1), or
    /// in the unified one (`0::PATH`) for `""`.
    fn path(&self, controller: &str) -> Option<&str> {
        self.self_cgroup.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let matches = if controller.is_empty() {
                controllers.is_empty()
            } else {
                controllers.split(',').any(|c| c == controller)
            };
            matches.then_some(path)
        })
    }

    /// The v2 mount: `/sys/fs/cgroup` on unified machines, `/sys/fs/cgroup/unified` on
    /// hybrid ones.
    fn unified(&self) -> Option<PathBuf> {
        [self.root.clone(), self.root.join("unified")]
            .into_iter()
            .find(|dir| dir.join("cgroup.controllers").is_file())
    }

    /// The v2 cgroup under which bento makes containers' cgroups: our own cgroup's parent
    /// (v2 forbids processes in a cgroup whose controllers are enabled for children, so
    /// the container's cgroup cannot go under ours), or the root if we are at the root.
    fn v2_parent(&self) -> Option<PathBuf> {
        let mount = self.unified()?;
        let ours = self.path("")?.trim_start_matches('/');
        let parent = Path::new(ours).parent().unwrap_or(Path::new(""));
        Some(mount.join(parent))
    }

    /// Which version bento would use for these limits here, or why none.
    pub fn which(&self, wanted: &[&str]) -> Result<Version, String> {
        if let Some(parent) = self.v2_parent() {
            let available =
                fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|c| !available.split_whitespace().any(|a| a == *c))
                .collect();
            let writable = nix::unistd::access(&parent, nix::unistd::AccessFlags::W_OK).is_ok();
            if missing.is_empty() && writable {
                return Ok(Version::V2(parent));
            }
            if missing.is_empty() && !self.root_user {
                return Err(format!(
                    "cgroup v2 at {} is not delegated to this user",
                    parent.display()
                ));
            }
        }
        let v1: Option<Vec<(String, PathBuf)>> = wanted
            .iter()
            .map(|c| {
                let dir = self.root.join(c);
                let path = self.path(c)?.trim_start_matches('/');
                dir.is_dir().then(|| (c.to_string(), dir.join(path)))
            })
            .collect();
        match v1 {
            Some(dirs) if self.root_user => Ok(Version::V1(dirs)),
            Some(_) => Err("cgroup v1 is here, and only root may make v1 cgroups".into()),
            None => Err(format!(
                "no cgroup hierarchy here has the {} controller(s)",
                wanted.join(" and ")
            )),
        }
    }
}

/// The cgroup version bento uses, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// cgroup v2: the delegated parent of the container's cgroup.
    V2(PathBuf),
    /// cgroup v1: for each controller, the parent of the container's cgroup.
    V1(Vec<(String, PathBuf)>),
}

/// A container's cgroup: one directory (v2) or one per controller (v1), with an open
/// `cgroup.procs` in each.
#[derive(Debug)]
pub struct Cgroup {
    pub dirs: Vec<PathBuf>,
    procs: Vec<File>,
}

impl Cgroup {
    /// Makes the container's cgroup with `spec`'s limits, if it has any.
    pub fn create(name: &str, spec: &Spec) -> Result<Option<Cgroup>> {
        Cgroup::create_on(&Host::this(), name, spec)
    }

    /// [`Cgroup::create`] on any host, a real or a fake cgroup tree.
    pub fn create_on(host: &Host, name: &str, spec: &Spec) -> Result<Option<Cgroup>> {
        let mut wanted = Vec::new();
        if spec.memory.is_some() {
            wanted.push("memory");
        }
        if spec.pids_limit.is_some() {
            wanted.push("pids");
        }
        if wanted.is_empty() {
            return Ok(None);
        }
        let version = host.which(&wanted).map_err(|why| {
            Refusal::NoCgroups.error(
                format!("cannot limit the container's resources: {why}"),
                FIX,
            )
        })?;
        let leaf = format!("bento-{name}");
        let mut limits: Vec<(PathBuf, String)> = Vec::new();
        let dirs = match &version {
            Version::V2(parent) => {
                // cgroup v2: a child may use only the controllers its parent enables.
                let enable: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
                write(&parent.join("cgroup.subtree_control"), &enable.join(" "))?;
                let dir = parent.join(&leaf);
                if let Some(bytes) = spec.memory {
                    limits.push((dir.join("memory.max"), bytes.to_string()));
                    // No swap either: over the limit means the OOM killer, as with v1 here.
                    limits.push((dir.join("memory.swap.max"), "0".into()));
                }
                if let Some(pids) = spec.pids_limit {
                    limits.push((dir.join("pids.max"), pids.to_string()));
                }
                vec![dir]
            }
            Version::V1(parents) => parents
                .iter()
                .map(|(controller, parent)| {
                    let dir = parent.join(&leaf);
                    match controller.as_str() {
                        "memory" => limits.push((
                            dir.join("memory.limit_in_bytes"),
                            spec.memory.unwrap_or_default().to_string(),
                        )),
                        _ => limits.push((
                            dir.join("pids.max"),
                            spec.pids_limit.unwrap_or_default().to_string(),
                        )),
                    }
                    dir
                })
                .collect(),
        };
        let made = (|| -> Result<Cgroup> {
            for dir in &dirs {
                // A cgroup left by a supervisor that was killed: empty, so removable.
                let _ = fs::remove_dir(dir);
                fs::create_dir(dir)
                    .with_context(|| format!("cannot create the cgroup {}", dir.display()))?;
            }
            for (file, value) in &limits {
                // memory.swap.max is missing without swap accounting: not needed then.
                if file.ends_with("memory.swap.max") && !file.exists() {
                    continue;
                }
                write(file, value)?;
            }
            Cgroup::open(&dirs)
        })();
        if made.is_err() {
            remove(&dirs);
        }
        made.map(Some)
    }

    /// The cgroup in `dirs`, opened to move processes in (`bento exec`).
    pub fn open(dirs: &[PathBuf]) -> Result<Cgroup> {
        let procs = dirs
            .iter()
            .map(|dir| {
                let path = dir.join("cgroup.procs");
                OpenOptions::new()
                    .write(true)
                    .create(!path.exists())
                    .open(&path)
                    .with_context(|| format!("cannot open {}", path.display()))
            })
            .collect::<Result<_>>()?;
        Ok(Cgroup {
            dirs: dirs.to_vec(),
            procs,
        })
    }

    /// Moves the calling process in: `0` means "the writer" (cgroups(7)).
    pub fn join(&self) -> Result<()> {
        for mut file in &self.procs {
            file.write_all(b"0")
                .context("cannot move PID 1 into its cgroup")?;
        }
        Ok(())
    }

    /// Did the kernel's OOM killer kill a process of this cgroup? (`oom_kill` in v2's
    /// memory.events, v1's memory.oom_control.)
    pub fn oom_killed(&self) -> bool {
        self.dirs.iter().any(|dir| {
            ["memory.events", "memory.oom_control"].iter().any(|file| {
                fs::read_to_string(dir.join(file)).is_ok_and(|text| {
                    text.lines().any(|line| {
                        line.strip_prefix("oom_kill ")
                            .is_some_and(|n| n.trim().parse::<u64>().unwrap_or(0) > 0)
                    })
                })
            })
        })
    }

    /// Removes the cgroup (it must be empty: the container is gone).
    pub fn remove(&self) {
        remove(&self.dirs);
    }
}

/// rmdir(2) of each cgroup: how a cgroup is removed (its files are not real files).
pub fn remove(dirs: &[PathBuf]) {
    for dir in dirs {
        let _ = fs::remove_dir(dir);
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).with_context(|| format!("cannot write {value:?} to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(memory: Option<u64>, pids: Option<u64>) -> Spec {
        Spec {
            memory,
            pids_limit: pids,
            ..Spec::default()
        }
    }

    /// A fake cgroup v2 tree: this process in `/user.slice/u.service/app.scope`, whose
    /// parent offers `controllers`.
    fn fake_v2(controllers: &str) -> (PathBuf, Host) {
        let root = std::env::temp_dir().join(format!(
            "bento-cgroup-test-{}-{}",
            std::process::id(),
            controllers.len()
        ));
        let _ = fs::remove_dir_all(&root);
        let parent = root.join("user.slice/u.service");
        fs::create_dir_all(parent.join("app.scope")).unwrap();
        fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(parent.join("cgroup.controllers"), controllers).unwrap();
        fs::write(parent.join("cgroup.subtree_control"), "").unwrap();
        let host = Host {
            root: root.clone(),
            self_cgroup: "0::/user.slice/u.service/app.scope\n".into(),
            root_user: false,
        };
        (root, host)
    }

    #[test]
    fn v2_makes_a_sibling_cgroup_with_the_limits() {
        let (root, host) = fake_v2("memory pids\n");
        let parent = root.join("user.slice/u.service");
        assert_eq!(host.which(&["memory"]), Ok(Version::V2(parent.clone())));
        let cgroup = Cgroup::create_on(&host, "box", &spec(Some(64 << 20), Some(10)))
            .unwrap()
            .unwrap();
        let dir = parent.join("bento-box");
        assert_eq!(cgroup.dirs, vec![dir.clone()]);
        let read = |path: &Path| fs::read_to_string(path).unwrap();
        assert_eq!(
            read(&parent.join("cgroup.subtree_control")),
            "+memory +pids"
        );
        assert_eq!(read(&dir.join("memory.max")), "67108864");
        assert_eq!(read(&dir.join("pids.max")), "10");
        assert!(
            !dir.join("memory.swap.max").exists(),
            "only written where it exists"
        );
        cgroup.join().unwrap();
        assert_eq!(read(&dir.join("cgroup.procs")), "0");
        assert!(!cgroup.oom_killed());
        fs::write(dir.join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert!(cgroup.oom_killed());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn no_limits_no_cgroup() {
        let (root, host) = fake_v2("");
        assert!(
            Cgroup::create_on(&host, "box", &spec(None, None))
                .unwrap()
                .is_none()
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn missing_controllers_are_a_clear_error() {
        let (root, host) = fake_v2("cpu\n");
        let error = Cgroup::create_on(&host, "box", &spec(None, Some(5))).unwrap_err();
        assert_eq!(plumbing::report(&error), Refusal::NoCgroups as i32);
        assert!(format!("{error:#}").contains("pids"), "{error:#}");
        assert!(!root.join("user.slice/u.service/bento-box").exists());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn v1_needs_root() {
        let root = std::env::temp_dir().join(format!("bento-cgroup-v1-{}", std::process::id()));
        fs::create_dir_all(root.join("pids/job")).unwrap();
        let mut host = Host {
            root: root.clone(),
            self_cgroup: "8:pids:/job\n0::/\n".into(),
            root_user: false,
        };
        assert!(host.which(&["pids"]).unwrap_err().contains("only root"));
        host.root_user = true;
        assert_eq!(
            host.which(&["pids"]),
            Ok(Version::V1(vec![("pids".into(), root.join("pids/job"))]))
        );
        fs::remove_dir_all(root).unwrap();
    }
}

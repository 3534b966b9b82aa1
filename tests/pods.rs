//! What a pod's config.json asks of a runtime, and the commands engines call besides
//! create/start/kill/delete: namespaces joined by path (a pod's containers join its pause
//! container's), no mount namespace at all, several uid/gid ranges, device nodes exactly as
//! listed, a clear line for a bad capability name; `ps`, `pause`, `resume` and `update`.
//! As root (what engines run bento as), on `runc spec` bundles the tests edit; rootless
//! where it applies. Each test's guard deletes its containers, even when it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{NOBODY, build_rootfs, built, can_run_as_real_root};
use serde_json::{Value, json};

/// A directory of bundles and bento's state for them.
struct Pod {
    dir: tempfile::TempDir,
    made: std::cell::RefCell<Vec<String>>,
}

impl Pod {
    fn new() -> Option<Pod> {
        if !can_run_as_real_root() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        Some(Pod {
            dir,
            made: Default::default(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `runc spec` bundle `name` running `args`, edited by `edit`.
    fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let bundle = self.path(name);
        build_rootfs(&bundle.join("rootfs"));
        let made = Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .expect("runc spec (CI installs runc)");
        assert!(made.success());
        let path = bundle.join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = json!(args);
        edit(&mut config);
        std::fs::write(&path, config.to_string()).unwrap();
        bundle
    }

    /// `bento --root STATE ARGS`, its output in a file (PID 1 keeps what `create` was
    /// given): the exit status, stdout and stderr.
    fn bento(&self, args: &[&str]) -> (Option<i32>, String, String) {
        if let Some(at) = args.iter().position(|a| *a == "--bundle") {
            self.made.borrow_mut().push(args[at + 2].to_string());
        }
        let (out, err) = (self.path("out"), self.path("err"));
        let status = Command::new(built("bento"))
            .arg("--root")
            .arg(self.path("state"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .expect("run bento");
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        (status.code(), read(&out), read(&err))
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.bento(args);
        assert_eq!(code, Some(0), "bento {}: {err}", args.join(" "));
        out
    }

    /// PID 1's host pid.
    fn pid(&self, id: &str) -> i32 {
        let state: Value = serde_json::from_str(&self.ok(&["state", id])).unwrap();
        state["pid"].as_i64().unwrap() as i32
    }

    /// A created and started container `id` that sleeps.
    fn sleeping(&self, id: &str, edit: impl FnOnce(&mut Value)) -> i32 {
        let bundle = self.bundle(id, &["sleep", "1000"], edit);
        self.ok(&["create", "--bundle", bundle.to_str().unwrap(), id]);
        self.ok(&["start", id]);
        self.pid(id)
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        for id in self.made.borrow().iter() {
            let _ = self.bento(&["delete", "--force", id]);
        }
    }
}

/// A namespace of `kind` joined by path, instead of a new one.
fn join(config: &mut Value, kind: &str, path: String) {
    let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|ns| ns["type"] != kind);
    namespaces.push(json!({ "type": kind, "path": path }));
}

/// No mounts of any kind: what a joined or shared mount namespace cannot take.
fn no_mounts(config: &mut Value) {
    config["mounts"] = json!([]);
    config["linux"]["maskedPaths"] = json!([]);
    config["linux"]["readonlyPaths"] = json!([]);
    config["root"]["readonly"] = false.into();
}

#[test]
fn a_pods_container_joins_the_pause_containers_namespaces_by_path() {
    let Some(pod) = Pod::new() else { return };
    let pause = pod.sleeping("pause", |_| {});
    // A file only the pause container's root has.
    std::fs::write(pod.path("pause/rootfs/marker"), "the pause container's\n").unwrap();
    let ns = |kind: &str| format!("/proc/{pause}/ns/{kind}");
    let bundle = pod.bundle(
        "app",
        &["sh", "-c", "cat /marker; hostname; ps -o pid,args"],
        |c| {
            no_mounts(c);
            for (kind, file) in [
                ("mount", "mnt"),
                ("pid", "pid"),
                ("uts", "uts"),
                ("ipc", "ipc"),
                ("network", "net"),
            ] {
                join(c, kind, ns(file));
            }
        },
    );
    let out = pod.ok(&["run", "--bundle", bundle.to_str().unwrap(), "app"]);
    assert!(out.starts_with("the pause container's\nrunc\n"), "{out}");
    assert!(
        out.lines().any(|line| line.trim() == "1 sleep 1000"),
        "the pause container's PID 1 is in the same PID namespace:\n{out}"
    );
}

#[test]
fn with_no_mount_namespace_a_container_shares_the_runtimes_and_takes_no_mounts() {
    let Some(pod) = Pod::new() else { return };
    let without = |c: &mut Value| {
        no_mounts(c);
        let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "mount");
    };
    let pid = pod.sleeping("shared", without);
    let ours = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(),
        ours
    );
    // Its root is still the bundle's.
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        pod.path("shared/rootfs")
    );
    // Mounts would be the host's: refused, in one line.
    let bundle = pod.bundle("mounts", &["true"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|ns| ns["type"] != "mount");
    });
    let (code, _, err) = pod.bento(&["run", "--bundle", bundle.to_str().unwrap(), "mounts"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(
        err.contains("no mount namespace of the container's own"),
        "{err}"
    );
}

#[test]
fn several_id_ranges_are_mapped_as_root_and_refused_clearly_rootless() {
    let Some(pod) = Pod::new() else { return };
    let ranges = json!([
        { "containerID": 0, "hostID": 200000, "size": 1000 },
        { "containerID": 1000, "hostID": 1000, "size": 1 },
    ]);
    let script = "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/x && echo wrote";
    let bundle = pod.bundle("ranges", &["sh", "-c", script], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "user" }));
        c["root"]["readonly"] = false.into();
        c["linux"]["uidMappings"] = ranges.clone();
        c["linux"]["gidMappings"] = ranges.clone();
    });
    let out = pod.ok(&["run", "--bundle", bundle.to_str().unwrap(), "ranges"]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "200000", "1000"], "{out}");
    assert_eq!(lines[1], ["1000", "1000", "1"], "{out}");
    assert_eq!(lines[2..4], lines[0..2], "gid_map: {out}");
    assert!(out.ends_with("0\nwrote\n"), "{out}");
    // Its cgroup is gone too: the supervisor, in the user namespace, may not rmdir(2) in the
    // host's hierarchy (it left one per controller), a helper on the host does.
    let left: Vec<_> = common::walk(Path::new("/sys/fs/cgroup"))
        .into_iter()
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("bento-ranges"))
        })
        .collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");

    // Rootless, nobody has no ranges in /etc/subuid: one line that says what to do.
    std::fs::set_permissions(
        pod.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let state = pod.path("nobody-state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    let mut command = Command::new(built("bento"));
    std::os::unix::process::CommandExt::uid(&mut command, NOBODY);
    std::os::unix::process::CommandExt::gid(&mut command, NOBODY);
    let output = command
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle", bundle.to_str().unwrap(), "rootless"])
        .env("PATH", common::SYSTEM_PATH)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0));
    assert!(
        err.contains("newuidmap") && err.contains("/etc/subuid"),
        "rootless, several ranges: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// Rootless, with ranges of its own in /etc/subuid and /etc/subgid, nobody gets several
/// ranges through newuidmap/newgidmap, as rootless podman does. The host's /etc is left
/// alone: the test gives nobody its ranges in a mount namespace of its own, with an overlay
/// on /etc there holding the two files, and runs bento as nobody inside it.
#[test]
fn several_id_ranges_rootless_come_from_newuidmap_and_etc_subuid() {
    let Some(pod) = Pod::new() else { return };
    if !common::have("newuidmap", "sudo apt install uidmap") {
        return;
    }
    let ranges = json!([
        { "containerID": 0, "hostID": NOBODY, "size": 1 },
        { "containerID": 1, "hostID": 300000, "size": 1000 },
    ]);
    let script = "cat /proc/self/uid_map /proc/self/gid_map; id -u";
    let bundle = pod.bundle("subids", &["sh", "-c", script], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "user" }));
        c["linux"]["uidMappings"] = ranges.clone();
        c["linux"]["gidMappings"] = ranges.clone();
    });
    std::fs::set_permissions(
        pod.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (upper, work) = (pod.path("etc-upper"), pod.path("etc-work"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    for file in ["subuid", "subgid"] {
        std::fs::write(upper.join(file), "nobody:300000:65536\n").unwrap();
    }
    let state = pod.path("nobody-state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    let inside = format!(
        "mount -t overlay overlay -o lowerdir=/etc,upperdir={},workdir={} /etc && \
         exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups \
         {} --root {} run --bundle {} subids",
        upper.display(),
        work.display(),
        built("bento").display(),
        state.display(),
        bundle.display(),
    );
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &inside])
        .env("PATH", common::SYSTEM_PATH)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{out}{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let nobody = NOBODY.to_string();
    assert_eq!(lines[0], ["0", nobody.as_str(), "1"], "{out}");
    assert_eq!(lines[1], ["1", "300000", "1000"], "{out}");
    assert_eq!(lines[2..4], lines[0..2], "gid_map: {out}");
    assert_eq!(lines[4], ["0"], "root inside: {out}");
    assert!(
        !std::path::Path::new("/etc/subuid").exists()
            || !std::fs::read_to_string("/etc/subuid")
                .unwrap_or_default()
                .contains("300000"),
        "the host's /etc/subuid was left alone"
    );
}

#[test]
fn device_nodes_have_exactly_their_mode_owner_and_type() {
    let Some(pod) = Pod::new() else { return };
    let devices = json!([
        { "path": "/dev/mine", "type": "c", "major": 1, "minor": 3, "fileMode": 0o660, "uid": 5, "gid": 6 },
        { "path": "/dev/pipe", "type": "p", "fileMode": 0o600 },
    ]);
    let script = "stat -c '%n %a %u %g %F' /dev/mine /dev/pipe";
    let bundle = pod.bundle("devices", &["sh", "-c", script], |c| {
        c["linux"]["devices"] = devices.clone();
    });
    let out = pod.ok(&["run", "--bundle", bundle.to_str().unwrap(), "devices"]);
    assert_eq!(
        out,
        "/dev/mine 660 5 6 character special file\n/dev/pipe 600 0 0 fifo\n"
    );
}

#[test]
fn an_unknown_capability_is_one_line_naming_its_field_and_value() {
    let Some(pod) = Pod::new() else { return };
    let bundle = pod.bundle("caps", &["true"], |c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_TEST"));
    });
    let (code, _, err) = pod.bento(&["run", "--bundle", bundle.to_str().unwrap(), "caps"]);
    assert_eq!(code, Some(125));
    assert!(
        err.starts_with(
            "bento: error: config.json's process.capabilities.bounding names an unknown capability: \"CAP_TEST\"\n"
        ),
        "{err}"
    );
}

#[test]
fn ps_pause_resume_and_update_as_runc_has_them() {
    let Some(pod) = Pod::new() else { return };
    let pid = pod.sleeping("box", |c| {
        c["linux"]["cgroupsPath"] = json!(format!("/bento-test-{}", std::process::id()));
        c["linux"]["resources"] =
            json!({ "memory": { "limit": 64 << 20 }, "pids": { "limit": 50 } });
    });
    let ps: Vec<i32> = serde_json::from_str(&pod.ok(&["ps", "--format", "json", "box"])).unwrap();
    assert_eq!(ps, [pid]);
    assert!(pod.ok(&["ps", "box"]).contains("sleep 1000"));

    pod.ok(&["pause", "box"]);
    let status = |pod: &Pod| -> String {
        let state: Value = serde_json::from_str(&pod.ok(&["state", "box"])).unwrap();
        state["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status(&pod), "paused");
    let process_state = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or_default()
            .to_string()
    };
    assert!(process_state().contains("D"), "frozen: {}", process_state());
    let process = pod.path("process.json");
    std::fs::write(
        &process,
        json!({ "args": ["true"], "cwd": "/", "user": { "uid": 0, "gid": 0 } }).to_string(),
    )
    .unwrap();
    let (code, _, err) = pod.bento(&["exec", "--process", process.to_str().unwrap(), "box"]);
    assert_eq!(code, Some(8), "exec into a paused container: {err}");
    pod.ok(&["resume", "box"]);
    assert_eq!(status(&pod), "running");
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_state().contains("D") {
        assert!(
            Instant::now() < deadline,
            "still frozen: {}",
            process_state()
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // update: a file of linux.resources, and a flag; what is not given stays.
    let resources = pod.path("resources.json");
    std::fs::write(
        &resources,
        json!({ "memory": { "limit": 128 << 20 } }).to_string(),
    )
    .unwrap();
    pod.ok(&["update", "--resources", resources.to_str().unwrap(), "box"]);
    pod.ok(&["update", "--pids-limit", "70", "box"]);
    let cgroup = |controller: &str, file: &str| {
        let dir = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(format!("bento-test-{}", std::process::id()));
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(
        cgroup("memory", "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(cgroup("pids", "pids.max"), "70");
    pod.ok(&["delete", "--force", "box"]);
    assert_eq!(
        cgroup("pids", "pids.max"),
        "",
        "the cgroup is removed with the container"
    );
}

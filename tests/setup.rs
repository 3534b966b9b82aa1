//! The ways in: one setup script (scripts/setup) that the README, `just setup`, CI, the Lima
//! template and the dev container all run, so that they cannot drift.
//!
//! What can be checked here is checked: the script's decisions (with stand-ins for apt-get,
//! dpkg-query and sudo: what it would install, as root and through sudo), the Lima template
//! (parsed, with the setup script as its provisioning and the checkout writable), and
//! devcontainer.json (read by the dev containers CLI, as Codespaces reads it). Lima and
//! Codespaces themselves cannot run here: CI runs the script for real (.ci/run).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{NOBODY, built, have, running_as_root, workspace};

fn read(path: &str) -> String {
    let path = workspace().join(path);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

#[test]
fn every_way_in_runs_the_setup_script() {
    // CI: the setup, then the README's test command.
    let ci = read(".ci/run");
    let setup = ci.lines().position(|l| l.starts_with("scripts/setup "));
    let test = ci.lines().position(|l| l == "just test");
    assert!(
        setup.is_some() && setup < test,
        ".ci/run must run scripts/setup, then just test:\n{ci}"
    );
    // `just setup`.
    assert!(
        read("justfile").contains("setup *FLAGS:\n    @scripts/setup \"$@\"\n"),
        "the justfile's setup recipe must run scripts/setup"
    );
    // The README's quick start and its three ways in.
    let readme = read("README.md");
    let quick_start = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README.md has a Quick start section");
    for needle in [
        "scripts/setup",
        "limactl start ./lima/bento.yaml",
        "limactl shell bento just step 4",
        ".devcontainer/devcontainer.json",
    ] {
        assert!(
            quick_start.contains(needle),
            "the README's quick start must show {needle:?}"
        );
    }
    for section in ["### On Linux/WSL2", "### On macOS", "### In Codespaces"] {
        assert!(readme.contains(section), "README.md lacks {section:?}");
    }
    // Lima: its provisioning is lima/setup, the very file scripts/setup.
    let lima_setup = workspace().join("lima/setup").canonicalize().unwrap();
    let setup_script = workspace().join("scripts/setup").canonicalize().unwrap();
    assert_eq!(
        lima_setup, setup_script,
        "lima/setup must lead to scripts/setup"
    );
    // (The dev container's postCreateCommand: devcontainer_json_is_read_as_codespaces_reads_it.)
}

#[test]
fn a_wrong_option_gets_one_line_and_a_hint() {
    let output = Command::new(workspace().join("scripts/setup"))
        .arg("--extra")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "scripts/setup: unknown option '--extra'\n  \
         hint: the options are --extras, --tun, --allow-userns and --dry-run (scripts/setup --help)\n"
    );
    assert!(output.stdout.is_empty());
}

/// A directory of stand-ins, first on PATH: apt-get, apt-cache and sudo write what they were
/// asked to a log (sudo then runs the command, as the user); dpkg-query answers from a list
/// of installed packages; cargo, rustc, just and presenterm are there and say so.
struct Stubs {
    dir: tempfile::TempDir,
}

impl Stubs {
    fn new(installed: &[&str]) -> Stubs {
        let dir = tempfile::tempdir().unwrap();
        let stubs = Stubs { dir };
        let log = stubs.log_path();
        let bin = stubs.path("bin");
        std::fs::create_dir(&bin).unwrap();
        let script = |name: &str, body: &str| {
            let path = bin.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let logs = |name: &str| format!("echo \"{name} $*\" >> {}", log.display());
        script("apt-get", &logs("apt-get"));
        script("apt-cache", &logs("apt-cache"));
        script(
            "sudo",
            &format!(
                "{}\nwhile [ $# -gt 0 ]; do case \"$1\" in -u) shift 2 ;; -H) shift ;; *) break ;; esac; done\nexec \"$@\"",
                logs("sudo")
            ),
        );
        script(
            "dpkg-query",
            &format!(
                "for p in \"$@\"; do case \" {} \" in *\" $p \"*) echo \"$p ii \" ;; esac; done",
                installed.join(" ")
            ),
        );
        // cargo logs what it installs; `cargo fmt --version` and the like just succeed.
        script(
            "cargo",
            &format!("case \"$1\" in install) {} ;; esac", logs("cargo")),
        );
        script("rustup", &logs("rustup"));
        script("rustc", "echo 'rustc 1.95.0 (a stand-in)'");
        script("just", "true");
        script("presenterm", "echo 'presenterm 0.16.1'");
        // The script itself, where any uid can read it (the checkout may be in a 0700 home).
        std::fs::copy(workspace().join("scripts/setup"), stubs.path("setup")).unwrap();
        std::fs::write(&log, "").unwrap();
        for path in [stubs.dir.path().to_path_buf(), log.clone()] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        stubs
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log_path(&self) -> PathBuf {
        self.path("log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap()
    }

    /// Makes the stand-in `name` fail as apt-get does without a network (exit status 100).
    fn failing(self, name: &str) -> Stubs {
        let path = self.path("bin").join(name);
        std::fs::write(
            &path,
            "#!/bin/sh\necho \"E: Could not resolve host\" >&2\nexit 100\n",
        )
        .unwrap();
        self
    }

    /// Runs the setup script with the stand-ins, as `uid` (None: as we are); it must succeed.
    fn setup(&self, args: &[&str], uid: Option<u32>, env: &[(&str, &str)]) -> Output {
        let output = self.run(args, uid, env);
        assert!(
            output.status.success(),
            "scripts/setup {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn run(&self, args: &[&str], uid: Option<u32>, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new("bash");
        command
            .arg(self.path("setup"))
            .args(args)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.path("bin").display()),
            )
            .env("HOME", self.dir.path())
            .env("FAKE_LOG", self.log_path())
            .envs(env.iter().copied())
            .current_dir(self.dir.path());
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        command.output().unwrap()
    }
}

const CORE: &str = "busybox-static tmux build-essential git curl ca-certificates strace \
                    libseccomp-dev slirp4netns";

#[test]
fn setup_installs_only_what_is_missing_as_root_or_through_sudo() {
    let all: Vec<&str> = CORE.split(' ').collect();

    // Everything there: nothing is run, and it says so.
    let stubs = Stubs::new(&all);
    let output = stubs.setup(&[], None, &[]);
    assert_eq!(stubs.log(), "", "nothing to install, nothing run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("setup: Debian packages: all 9 installed\n"),
        "{text}"
    );
    assert!(text.contains("setup: just and presenterm: installed (presenterm 0.16.1)\n"));

    // Two missing, dry run: it says what it would run, and runs nothing.
    let stubs = Stubs::new(&all[2..]);
    let output = stubs.setup(&["--dry-run"], None, &[]);
    assert_eq!(stubs.log(), "", "a dry run runs nothing");
    let text = String::from_utf8_lossy(&output.stdout);
    let sudo = if running_as_root() { "" } else { "sudo " };
    assert!(
        text.contains(&format!(
            "setup: would run: {sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static tmux\n"
        )),
        "{text}"
    );

    // For real, as we are: as root apt-get runs directly; as a user, through sudo.
    let stubs = Stubs::new(&all[2..]);
    stubs.setup(&[], None, &[]);
    let apt = "apt-get update -qq\n\
               apt-cache show busybox-static\n\
               apt-cache show tmux\n\
               apt-get install -y -qq busybox-static tmux\n";
    let through_sudo = "sudo apt-get update -qq\n\
                        apt-get update -qq\n\
                        apt-cache show busybox-static\n\
                        apt-cache show tmux\n\
                        sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static tmux\n\
                        apt-get install -y -qq busybox-static tmux\n";
    assert_eq!(
        stubs.log(),
        if running_as_root() { apt } else { through_sudo }
    );
    if !running_as_root() {
        common::skipped("the root and `sudo scripts/setup` cases need root (CI runs as root)");
        return;
    }

    // As an ordinary user (nobody), from root: through sudo.
    let stubs = Stubs::new(&all[2..]);
    stubs.setup(&[], Some(NOBODY), &[]);
    assert_eq!(stubs.log(), through_sudo);

    // `sudo scripts/setup`: apt-get as root, the Rust tools for the user who ran sudo.
    let stubs = Stubs::new(&all);
    std::fs::remove_file(stubs.path("bin/just")).unwrap();
    std::fs::remove_file(stubs.path("bin/presenterm")).unwrap();
    let output = stubs.setup(&[], None, &[("SUDO_USER", "nobody")]);
    let log = stubs.log();
    for tool in ["just", "presenterm"] {
        assert!(
            log.contains("sudo -u nobody -H env PATH=")
                && log.contains(&format!("cargo install --locked {tool}\n")),
            "{log}"
        );
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains(&format!(
                "setup: running: (as nobody) cargo install --locked {tool}\n"
            )),
            "{text}"
        );
    }
}

#[test]
fn without_cargo_it_installs_rust_with_rustup() {
    if ["/usr/bin/cargo", "/bin/cargo"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        eprintln!("SKIPPED: this machine has a cargo of its own in /usr/bin");
        return;
    }
    let stubs = Stubs::new(&CORE.split(' ').collect::<Vec<_>>());
    std::fs::remove_file(stubs.path("bin/cargo")).unwrap();
    // rustup.rs's installer, as curl would fetch it: a script that says what it was asked.
    std::fs::write(
        stubs.path("bin/curl"),
        format!(
            "#!/bin/sh\necho \"curl $*\" >> {log}\necho 'echo \"rustup-init $*\" >> {log}'\n",
            log = stubs.log_path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        stubs.path("bin/curl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let output = stubs.setup(&[], None, &[]);
    assert_eq!(
        stubs.log(),
        "curl --proto =https --tlsv1.2 -sSf https://sh.rustup.rs\n\
         rustup-init -y --profile minimal --component rustfmt,clippy\n"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("setup: Rust: none, installing it with rustup (from static.rust-lang.org)\n")
    );
}

#[test]
fn a_failed_install_stops_with_one_line_and_a_hint() {
    let stubs = Stubs::new(&[]).failing("apt-get");
    let output = stubs.run(&[], None, &[]);
    assert_eq!(output.status.code(), Some(1));
    let sudo = if running_as_root() { "" } else { "sudo " };
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "E: Could not resolve host\n\
             scripts/setup: this failed (exit status 100): {sudo}apt-get update -qq\n  \
             hint: fix what it says above, then run scripts/setup again: it skips what is done\n"
        )
    );
}

#[test]
fn the_setup_script_can_be_a_lima_provisioning_script() {
    let setup = read("scripts/setup");
    // Lima reads a provisioning script as a Go template before it runs it.
    assert!(
        !setup.contains("{{"),
        "scripts/setup must not contain two opening braces (Lima's Go templates)"
    );
    // Lima passes param.BENTO_SETUP_FLAGS as PARAM_BENTO_SETUP_FLAGS, and refuses a param
    // that no provisioning script names.
    assert!(setup.contains("PARAM_BENTO_SETUP_FLAGS"));
    // The flags really arrive: a dry run with Lima's variable shows the flag at work.
    let stubs = Stubs::new(&CORE.split(' ').collect::<Vec<_>>());
    let output = stubs.setup(&[], None, &[("PARAM_BENTO_SETUP_FLAGS", "--dry-run")]);
    assert!(
        String::from_utf8_lossy(&output.stdout).ends_with("setup: dry run: nothing was changed\n")
    );
}

/// The Lima template's structure, as a JSON schema that check-jsonschema applies to the YAML
/// (it parses YAML): what `limactl start ./lima/bento.yaml` needs from it.
const LIMA_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["minimumLimaVersion", "base", "mounts", "provision", "param"],
  "properties": {
    "base": {"type": "string", "pattern": "^template:(//)?(ubuntu|debian)-"},
    "mounts": {
      "type": "array",
      "contains": {
        "type": "object",
        "required": ["location", "writable"],
        "properties": {"location": {"const": "~"}, "writable": {"const": true}}
      }
    },
    "provision": {
      "type": "array",
      "minItems": 1,
      "maxItems": 1,
      "items": {
        "type": "object",
        "required": ["mode", "file"],
        "properties": {"mode": {"const": "user"}, "file": {"const": "setup"}},
        "additionalProperties": false
      }
    },
    "param": {
      "type": "object",
      "required": ["BENTO_SETUP_FLAGS"],
      "properties": {"BENTO_SETUP_FLAGS": {"type": "string", "pattern": "--allow-userns"}}
    },
    "containerd": {
      "type": "object",
      "properties": {"system": {"const": false}, "user": {"const": false}}
    }
  }
}"#;

#[test]
fn the_lima_template_runs_the_setup_script_and_mounts_the_checkout_writable() {
    if !have("check-jsonschema", "pip install check-jsonschema") {
        return;
    }
    let check = |schema: &str, file: &Path| -> Output {
        let mut child = Command::new("check-jsonschema")
            .args(["--schemafile", "-"])
            .arg(file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(schema.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let template = workspace().join("lima/bento.yaml");
    let output = check(LIMA_SCHEMA, &template);
    assert!(
        output.status.success(),
        "lima/bento.yaml:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The check can fail: a read-only mount is refused.
    let dir = tempfile::tempdir().unwrap();
    let read_only = dir.path().join("bento.yaml");
    std::fs::write(
        &read_only,
        read("lima/bento.yaml").replace("writable: true", "writable: false"),
    )
    .unwrap();
    assert!(!check(LIMA_SCHEMA, &read_only).status.success());
    // The README says plainly that it was not booted here.
    assert!(read("README.md").contains("not booted"));
}

#[test]
fn devcontainer_json_is_read_as_codespaces_reads_it() {
    if !have("devcontainer", "npm install -g @devcontainers/cli") {
        return;
    }
    // read-configuration asks the container engine for a container already made from this
    // folder; `true` stands in for docker (there is none here) and answers "none".
    let output = Command::new("devcontainer")
        .args([
            "read-configuration",
            "--docker-path",
            "true",
            "--workspace-folder",
        ])
        .arg(workspace())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "devcontainer read-configuration failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let config = &read["configuration"];
    assert_eq!(config["postCreateCommand"], "scripts/setup");
    // Debian: the setup script installs with apt-get.
    let image = config["image"].as_str().unwrap_or_default();
    assert!(
        image.starts_with("mcr.microsoft.com/devcontainers/rust:") && image.ends_with("bookworm"),
        "{image}"
    );
    assert_eq!(config["privileged"], serde_json::Value::Null);
    // The checkout is bind-mounted writable.
    let mount = read["workspace"]["workspaceMount"]
        .as_str()
        .unwrap_or_default();
    assert!(
        mount.starts_with("type=bind,") && !mount.contains("readonly"),
        "{mount}"
    );

    // Its security options are the ones the doctor prints for a container that lacks them
    // (and that tests/doctor.rs shows working in podman).
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join(".dockerenv"), "").unwrap();
    let doctor = Command::new(built("bento-doctor"))
        .arg("--host-root")
        .arg(host.path())
        .args(["--assume-probe", "proc:EPERM", "--assume-uid", "1000"])
        .env_remove("CODESPACES")
        .env_remove("REMOTE_CONTAINERS")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&doctor.stdout);
    let fix: Vec<&str> = report
        .lines()
        .find_map(|line| line.strip_prefix("       fix: docker run "))
        .and_then(|fix| fix.strip_suffix(" …"))
        .unwrap_or_else(|| panic!("no fix line:\n{report}"))
        .split_whitespace()
        .filter(|word| *word != "--security-opt")
        .collect();
    assert_eq!(config["securityOpt"], serde_json::json!(fix));
}

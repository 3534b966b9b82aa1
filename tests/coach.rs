//! The learner track works for every step: `just exercise N` makes a copy that compiles,
//! `just check N` fails on it untouched, passes once the step's own lessons are in it, and
//! names the cause of the typical wrong answers (made here by editing the real step's
//! source). A learner's broken copy never breaks the workspace.
//!
//! Every check builds a learner crate into target/workbench (the dependencies once, then
//! one small crate per check), so the scenarios run one at a time.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

use common::{built, workspace};

/// The learner crates of every step share one target directory and their package names:
/// one build at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn coach(workbench: &Path, args: &[&str]) -> Output {
    std::process::Command::new(built("bento-coach"))
        .arg("--workbench")
        .arg(workbench)
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run bento-coach")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// steps/NN-*/ of step `n`.
fn step_dir(n: usize) -> PathBuf {
    let prefix = format!("{n:02}-");
    common::names(&workspace().join("steps"))
        .into_iter()
        .find(|name| name.starts_with(&prefix))
        .map(|name| workspace().join("steps").join(name))
        .expect("the step exists")
}

/// A wrong answer: a text edit of the step's real source, and what `just check` must say.
struct Wrong {
    what: &'static str,
    edit: fn(&str) -> String,
    names: &'static str,
}

/// `source` with `from` replaced by `to` (exactly once: the edit must still apply).
fn replaced(source: &str, from: &str, to: &str) -> String {
    assert_eq!(
        source.matches(from).count(),
        1,
        "the edit no longer applies: {from}"
    );
    source.replacen(from, to, 1)
}

/// `source` with the line `call` moved from where it is to just after the line `after`.
fn moved(source: &str, call: &str, after: &str) -> String {
    let source = replaced(source, call, "");
    replaced(&source, after, &format!("{after}{call}"))
}

/// The learner's path through step `n`, then each wrong answer.
fn learner(n: usize, wrong: &[Wrong]) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let workbench = tempfile::tempdir().unwrap();
    let wb = workbench.path();
    let output = coach(wb, &["exercise", &n.to_string()]);
    assert!(output.status.success(), "{}", text(&output));
    let copies = common::names(wb);
    assert_eq!(copies.len(), 1, "{copies:?}");
    let main_rs = wb.join(&copies[0]).join("src/main.rs");
    let exercise = std::fs::read_to_string(&main_rs).unwrap();
    assert!(exercise.contains("todo!("), "{exercise}");

    // Run again: the learner's work is kept.
    std::fs::write(&main_rs, format!("{exercise}// my work\n")).unwrap();
    let again = coach(wb, &["exercise", &n.to_string()]);
    assert_eq!(again.status.code(), Some(125), "{}", text(&again));
    assert!(text(&again).contains("exists already: your work is kept"));
    assert!(text(&again).contains(&format!("just exercise {n} --reset")));
    assert!(
        std::fs::read_to_string(&main_rs)
            .unwrap()
            .ends_with("// my work\n")
    );

    // Untouched, it compiles and the check fails, naming the lessons to write.
    let untouched = coach(wb, &["check", &n.to_string()]);
    let said = text(&untouched);
    assert_eq!(untouched.status.code(), Some(1), "{said}");
    assert!(!said.contains("does not compile"), "{said}");
    assert!(said.contains("is still a todo!()"), "{said}");
    assert!(said.contains(&format!("just hint {n}")), "{said}");

    // With the step's own lessons, it passes.
    let solution = std::fs::read_to_string(step_dir(n).join("src/main.rs")).unwrap();
    std::fs::write(&main_rs, &solution).unwrap();
    let solved = coach(wb, &["check", &n.to_string()]);
    assert_eq!(solved.status.code(), Some(0), "{}", text(&solved));
    assert!(text(&solved).contains("works like the solution"));

    // The typical wrong answers fail, and the check names their cause.
    for wrong in wrong {
        std::fs::write(&main_rs, (wrong.edit)(&solution)).unwrap();
        let checked = coach(wb, &["check", &n.to_string()]);
        let said = text(&checked);
        assert_eq!(checked.status.code(), Some(1), "{}: {said}", wrong.what);
        assert!(
            said.contains(wrong.names),
            "step {n}, {}: the check must say {:?}:\n{said}",
            wrong.what,
            wrong.names
        );
    }
}

#[test]
fn step_01_sethostname_before_unshare() {
    learner(
        1,
        &[Wrong {
            what: "sethostname before unshare",
            edit: |source| {
                let call = "    sethostname(name).context(\"sethostname failed\")?;\n";
                moved(
                    source,
                    call,
                    "fn isolate_hostname(name: &str) -> Result<()> {\n",
                )
            },
            names: "your step printed `sethostname failed: EPERM`",
        }],
    );
}

#[test]
fn step_02_without_setgroups_and_with_swapped_unshares() {
    learner(
        2,
        &[
            Wrong {
                what: "no setgroups deny",
                edit: |source| {
                    replaced(
                        source,
                        "    fs::write(\"/proc/self/setgroups\", \"deny\")",
                        "    Ok::<(), anyhow::Error>(())",
                    )
                },
                names: "your step printed `cannot write /proc/self/gid_map: Operation not permitted`",
            },
            Wrong {
                what: "UTS namespace before the user namespace",
                edit: |source| {
                    replaced(
                        source,
                        "    enter_user_namespace()?;\n    isolate_hostname(\"my-container\")?;\n",
                        "    isolate_hostname(\"my-container\")?;\n    enter_user_namespace()?;\n",
                    )
                },
                names: "your step printed `unshare(CLONE_NEWUTS) failed: EPERM`",
            },
        ],
    );
}

#[test]
fn step_03_without_the_fork() {
    learner(
        3,
        &[Wrong {
            what: "no fork: the caller goes on as if it were the child",
            edit: |source| {
                replaced(
                    source,
                    "unsafe { fork() }.context(\"fork failed\")",
                    "Ok(ForkResult::Child)",
                )
            },
            names: "your step printed `❌ Believes it is PID 1`",
        }],
    );
}

#[test]
fn step_04_without_chdir() {
    learner(
        4,
        &[Wrong {
            what: "chroot without chdir(\"/\")",
            edit: |source| {
                replaced(
                    source,
                    "    chdir(\"/\").context(\"chdir(\\\"/\\\") failed\")?;\n",
                    "",
                )
            },
            names: "your step printed `cwd [unreachable`",
        }],
    );
}

#[test]
fn step_05_proc_mounted_before_the_fork() {
    learner(
        5,
        &[Wrong {
            what: "mount_proc before fork_pid_1",
            edit: |source| {
                // Before the fork: in the parent, not PID 1.
                moved(
                    source,
                    "            mount_proc(Path::new(\"/proc\"))?;\n",
                    "    isolate_hostname(\"my-container\")?;\n",
                )
            },
            names: "your step printed `cannot mount proc on the rootfs's /proc: EPERM`",
        }],
    );
}

/// Step 06 and later: proc mounted after the old root is gone.
fn proc_after_pivot(source: &str, root: &str, target: &str) -> String {
    let call = format!("            mount_proc(&{root}.join(\"proc\"))?;\n");
    let pivot = format!("            pivot_into(&{root})?;\n");
    let source = replaced(source, &call, "");
    replaced(
        &source,
        &pivot,
        &format!("{pivot}            mount_proc({target})?;\n"),
    )
}

#[test]
fn step_06_old_root_detached_before_proc() {
    learner(
        6,
        &[
            Wrong {
                what: "proc mounted on /proc after pivot_into",
                edit: |source| proc_after_pivot(source, "rootfs", "Path::new(\"/proc\")"),
                names: "your step printed `cannot mount proc on the rootfs's /proc: EPERM`",
            },
            Wrong {
                what: "proc mounted on the host path after pivot_into",
                edit: |source| proc_after_pivot(source, "rootfs", "&rootfs.join(\"proc\")"),
                names: "your step printed `cannot mount proc on the rootfs's /proc: ENOENT`",
            },
        ],
    );
}

#[test]
fn step_07_proc_on_the_rootfs_not_the_overlay() {
    learner(
        7,
        &[Wrong {
            what: "proc mounted on the lower layer",
            edit: |source| {
                replaced(
                    source,
                    "mount_proc(&root.join(\"proc\"))",
                    "mount_proc(&rootfs.join(\"proc\"))",
                )
            },
            names: "your step printed `no procfs at /proc: ps sees no processes at all`",
        }],
    );
}

#[test]
fn step_08_loopback_left_down() {
    learner(
        8,
        &[Wrong {
            what: "lo never brought up",
            edit: |source| replaced(source, "    bring_up_loopback()?;\n", ""),
            names: "your step printed `lo: <LOOPBACK> `",
        }],
    );
}

#[test]
fn a_broken_copy_in_workbench_never_breaks_the_workspace() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // In the checkout's own workbench/, where a learner's copies live (and git ignores).
    let existed = workspace().join("workbench").exists();
    let workbench = workspace().join(format!("workbench/.test-{}", std::process::id()));
    let output = coach(&workbench, &["exercise", "2"]);
    assert!(output.status.success(), "{}", text(&output));
    let copy = workbench.join("02-userns");
    let manifest = std::fs::read_to_string(copy.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("plumbing = { path = \"../../../plumbing\" }"),
        "relative paths inside the checkout: {manifest}"
    );
    std::fs::write(copy.join("src/main.rs"), "fn main() { this is not rust }\n").unwrap();
    let ignored = std::process::Command::new("git")
        .args(["check-ignore", "--quiet"])
        .arg(copy.join("src/main.rs"))
        .current_dir(workspace())
        .status()
        .unwrap();
    let metadata = std::process::Command::new("cargo")
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    let checked = coach(&workbench, &["check", "2"]);
    std::fs::remove_dir_all(&workbench).unwrap();
    if !existed {
        // Leave no workbench/ behind in a checkout that had none (only if still empty).
        let _ = std::fs::remove_dir(workspace().join("workbench"));
    }
    assert!(ignored.success(), "git must ignore workbench/");
    assert!(metadata.status.success(), "{}", text(&metadata));
    let members = String::from_utf8_lossy(&metadata.stdout);
    assert!(
        !members.contains("/workbench/"),
        "a workspace member in workbench/: {members}"
    );
    // The check shows cargo's own error, and says what it means.
    let said = text(&checked);
    assert_eq!(checked.status.code(), Some(1), "{said}");
    assert!(said.contains("error: expected one of"), "{said}");
    assert!(said.contains("Your copy does not compile yet"), "{said}");
}

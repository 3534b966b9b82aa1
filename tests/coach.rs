//! The learner track works for every step: `just exercise N` makes a copy that compiles,
//! `just check N` fails on it untouched, passes once the step's own lessons are in it, and
//! fails on each typical wrong answer with a hint that names the actual mistake.
//!
//! The wrong answers are the step's real source with its new lessons written as a learner
//! might, in their own words: no `.context(...)` or `.hint(...)` of the solution's, so that
//! the checker cannot lean on the solution's messages; then the mistake. The checker must
//! name it from what the step did (its system calls, its behaviour in the tests).
//!
//! Every check builds a learner crate into target/workbench (the dependencies once, then one
//! small crate per check; bento-coach builds the copies of one step one at a time). The
//! checks mostly wait for processes: a few run at once.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Condvar, Mutex};

use coach::lessons;
use common::{built, workspace};

/// How many checks run at once, over all the tests of this file.
const AT_ONCE: usize = 4;

static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// A place among the [`AT_ONCE`] checks that may run: waits for one, and frees it when
/// dropped.
struct Turn;

impl Turn {
    fn take() -> Turn {
        let (count, freed) = &RUNNING;
        let mut running = count
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while *running >= AT_ONCE {
            running = freed
                .wait(running)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *running += 1;
        Turn
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let (count, freed) = &RUNNING;
        *count
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// `bento-coach check N` on a fresh copy of step `n` whose main.rs is `main_rs`.
fn check(n: usize, main_rs: &str) -> Output {
    let workbench = tempfile::tempdir().unwrap();
    let made = coach(workbench.path(), &["exercise", &n.to_string()]);
    assert!(made.status.success(), "{}", text(&made));
    let copy = workbench.path().join(&common::names(workbench.path())[0]);
    std::fs::write(copy.join("src/main.rs"), main_rs).unwrap();
    let _turn = Turn::take();
    coach(workbench.path(), &["check", &n.to_string()])
}

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

fn source(n: usize) -> String {
    std::fs::read_to_string(step_dir(n).join("src/main.rs")).unwrap()
}

/// A wrong answer: an edit of the learner's version of the step, and what `just check` must
/// say about it (every one of `names`).
struct Wrong {
    what: &'static str,
    edit: fn(&str) -> String,
    names: &'static [&'static str],
}

/// `source` with `from` replaced by `to` (exactly once: the edit must still apply).
fn replaced(source: &str, from: &str, to: &str) -> String {
    assert_eq!(
        source.matches(from).count(),
        1,
        "the edit no longer applies: {from}\nin:\n{source}"
    );
    source.replacen(from, to, 1)
}

/// `source` with the line `call` moved from where it is to just after the line `after`.
fn moved(source: &str, call: &str, after: &str) -> String {
    let source = replaced(source, call, "");
    replaced(&source, after, &format!("{after}{call}"))
}

/// The methods that carry the solution's own words.
const WORDING: [&str; 4] = [".context(", ".with_context(", ".hint(", ".with_hint("];

/// `text` without the solution's wording: each `.context(...)`, `.hint(...)` (and their
/// `with_` forms) removed with the line break before it, as a learner who writes plain `?`.
fn in_plain_words(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some((at, method)) = WORDING
        .iter()
        .filter_map(|method| rest.find(method).map(|at| (at, method)))
        .min()
    {
        out.push_str(rest[..at].trim_end());
        // Skip to the parenthesis that closes the call, past strings and closures.
        let call = &rest[at + method.len()..];
        let (mut depth, mut quoted, mut escaped) = (1, false, false);
        let mut end = call.len();
        for (index, c) in call.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = index + 1;
                break;
            }
        }
        rest = &call[end..];
        // A tail expression that was an anyhow::Result through .context(): now it needs
        // converting, as a learner would write it.
        let next = rest.trim_start();
        if !next.starts_with('?') && !WORDING.iter().any(|method| next.starts_with(method)) {
            out.push_str(".map_err(Into::into)");
        }
    }
    out.push_str(rest);
    out
}

/// The step as a learner might write it: the solution, its new lessons in plain words.
fn learners_version(n: usize) -> String {
    let solution = source(n);
    let previous = (n > 0).then(|| source(n - 1));
    let next = lessons::functions(&solution).unwrap();
    let before = lessons::functions(previous.as_deref().unwrap_or("")).unwrap();
    let mut version = solution.clone();
    for lesson in lessons::new_lessons(&before, &next) {
        version = version.replace(&lesson.text, &in_plain_words(&lesson.text));
    }
    for lesson in lessons::new_lessons(&before, &lessons::functions(&version).unwrap()) {
        assert!(
            !WORDING.iter().any(|method| lesson.text.contains(method)),
            "{} still has the solution's words:\n{}",
            lesson.name,
            lesson.text
        );
    }
    version
}

/// The learner's path through step `n`, then each wrong answer.
fn learner(n: usize, wrong: &[Wrong]) {
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

    let plain = learners_version(n);
    std::thread::scope(|scope| {
        // Untouched, it compiles and the check fails, naming the lessons to write.
        scope.spawn(|| {
            let untouched = check(n, &exercise);
            let said = text(&untouched);
            assert_eq!(untouched.status.code(), Some(1), "{said}");
            assert!(!said.contains("does not compile"), "{said}");
            assert!(said.contains("is still a todo!()"), "{said}");
            assert!(said.contains(&format!("just hint {n}")), "{said}");
        });
        // With the step's own lessons, it passes.
        scope.spawn(|| {
            let solved = check(n, &source(n));
            let said = text(&solved);
            assert_eq!(solved.status.code(), Some(0), "{said}");
            assert!(said.contains("works like the solution"), "{said}");
            assert!(
                !said.contains("What your step did that the solution does not"),
                "{said}"
            );
        });
        // The typical wrong answers fail, and the check names their cause.
        for wrong in wrong {
            let plain = &plain;
            scope.spawn(move || {
                let checked = check(n, &(wrong.edit)(plain));
                let said = text(&checked);
                assert_eq!(
                    checked.status.code(),
                    Some(1),
                    "step {n}, {}: the check must fail:\n{said}",
                    wrong.what
                );
                for name in wrong.names {
                    assert!(
                        said.contains(name),
                        "step {n}, {}: the check must say {name:?}:\n{said}",
                        wrong.what
                    );
                }
            });
        }
    });
}

#[test]
fn step_01_sethostname_before_unshare() {
    learner(
        1,
        &[Wrong {
            what: "sethostname before unshare",
            edit: |source| {
                moved(
                    source,
                    "    sethostname(name)?;\n",
                    "fn isolate_hostname(name: &str) -> Result<()> {\n",
                )
            },
            names: &[
                "❌ sethostname before unshare(CLONE_NEWUTS)",
                "💡 A typical wrong answer (`sethostname before unshare(CLONE_NEWUTS)`)",
            ],
        }],
    );
}

#[test]
fn step_02_without_setgroups_or_gid_map_and_with_swapped_unshares() {
    learner(
        2,
        &[
            Wrong {
                what: "no setgroups deny",
                edit: |source| {
                    replaced(
                        source,
                        "    fs::write(\"/proc/self/setgroups\", \"deny\")?;\n",
                        "",
                    )
                },
                names: &[
                    "❌ write /proc/self/gid_map failed: EPERM",
                    "💡 A typical wrong answer (`write /proc/self/gid_map before write /proc/self/setgroups`)",
                ],
            },
            Wrong {
                what: "gid_map never written",
                edit: |source| {
                    replaced(
                        source,
                        "    fs::write(\"/proc/self/gid_map\", gid_map)?;\n",
                        "",
                    )
                },
                names: &[
                    "the group inside is 65534, not 0",
                    "💡 A typical wrong answer (`never write /proc/self/gid_map`)",
                ],
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
                names: &[
                    "❌ unshare(CLONE_NEWUTS) failed: EPERM",
                    "💡 A typical wrong answer (`unshare(CLONE_NEWUTS) before unshare(CLONE_NEWUSER)`)",
                ],
            },
        ],
    );
}

#[test]
fn step_03_status_signals_parent_death_fork_and_pid_namespace() {
    learner(
        3,
        &[
            Wrong {
                what: "container() always returns Ok(0)",
                edit: |source| {
                    replaced(
                        source,
                        "    Ok(plumbing::exit_code(status))\n",
                        "    let _ = status;\n    Ok(0)\n",
                    )
                },
                names: &["the command exited with 7, and the step must exit with the same status"],
            },
            Wrong {
                what: "no signal forwarding",
                edit: |source| replaced(source, "    plumbing::forward_signals(child);\n", ""),
                names: &[
                    "the parent caught it and PID 1 never got it",
                    "plumbing::forward_signals(child)",
                ],
            },
            Wrong {
                what: "no parent-death signal",
                edit: |source| replaced(source, "    set_pdeathsig(Signal::SIGKILL)?;\n", ""),
                names: &[
                    "its PID 1 lived on",
                    "💡 A typical wrong answer (`never prctl(PR_SET_PDEATHSIG)`)",
                ],
            },
            Wrong {
                what: "no catch_signals",
                edit: |source| replaced(source, "    plumbing::catch_signals()?;\n", ""),
                names: &[
                    "step 03 itself died of SIGTERM: nothing caught it",
                    "💡 A typical wrong answer (`never rt_sigaction(SIGINT`)",
                ],
            },
            Wrong {
                what: "no fork: the caller goes on as if it were the child",
                edit: |source| {
                    replaced(
                        source,
                        "unsafe { fork() }.map_err(Into::into)",
                        "Ok(ForkResult::Child)",
                    )
                },
                names: &["❌ never fork", "💡 A typical wrong answer (`never fork`)"],
            },
            Wrong {
                what: "no PID namespace: the fork is there",
                edit: |source| replaced(source, "    unshare(CloneFlags::CLONE_NEWPID)?;\n", ""),
                names: &[
                    "❌ never unshare(CLONE_NEWPID)",
                    "💡 A typical wrong answer (`never unshare(CLONE_NEWPID)`)",
                ],
            },
        ],
    );
}

#[test]
fn step_04_without_chdir_private_mounts_or_a_mount_namespace() {
    /// isolate_mounts() of the learner's version, from its first line to the end of the
    /// MS_PRIVATE mount.
    fn private_mount(source: &str) -> &str {
        let start = source
            .find("    mount(\n        None::<&str>,\n        \"/\",")
            .unwrap();
        let end = start + source[start..].find(")?;\n").unwrap() + ")?;\n".len();
        &source[start..end]
    }
    learner(
        4,
        &[
            Wrong {
                what: "chroot without chdir(\"/\")",
                edit: |source| replaced(source, "    chdir(\"/\")?;\n", ""),
                names: &[
                    "❌ never chdir(/)",
                    "💡 A typical wrong answer (`cwd [unreachable`)",
                ],
            },
            Wrong {
                what: "no MS_REC|MS_PRIVATE",
                edit: |source| replaced(source, private_mount(source), ""),
                names: &[
                    "a mount the host made after the container started appeared inside it",
                    "💡 A typical wrong answer (`never mount(MS_REC|MS_PRIVATE) /`)",
                ],
            },
            Wrong {
                what: "isolate_mounts() a no-op: not even a mount namespace",
                edit: |source| {
                    let source = replaced(source, private_mount(source), "");
                    replaced(&source, "    unshare(CloneFlags::CLONE_NEWNS)?;\n", "")
                },
                names: &[
                    "PID 1 shares the mount table of the host",
                    "💡 A typical wrong answer (`never unshare(CLONE_NEWNS)`)",
                ],
            },
        ],
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
            names: &[
                "❌ mount(proc) failed: EPERM",
                "💡 A typical wrong answer (`mount(proc) before unshare(CLONE_NEWPID)`)",
            ],
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
fn step_06_proc_after_the_pivot_and_an_old_root_left_mounted() {
    learner(
        6,
        &[
            Wrong {
                what: "proc mounted on /proc after pivot_into",
                edit: |source| proc_after_pivot(source, "rootfs", "Path::new(\"/proc\")"),
                names: &[
                    "❌ mount(proc) failed: EPERM",
                    "💡 A typical wrong answer (`umount2(.) before mount(proc)`)",
                ],
            },
            Wrong {
                what: "proc mounted on the host path after pivot_into",
                edit: |source| proc_after_pivot(source, "rootfs", "&rootfs.join(\"proc\")"),
                names: &[
                    "❌ mount(proc) failed: ENOENT",
                    "💡 A typical wrong answer (`mount(proc) failed: ENOENT`)",
                ],
            },
            Wrong {
                what: "the old root kept at /.oldroot: pivot_root(root, root/.oldroot), no umount",
                edit: |source| {
                    let start = source.find("    pivot_root(\".\", \".\")").unwrap();
                    let end = source.find("    chdir(\"/\")?;\n    Ok(())\n}").unwrap();
                    format!(
                        "{}    fs::create_dir_all(\".oldroot\")?;\n    pivot_root(\".\", \".oldroot\")?;\n{}",
                        &source[..start],
                        &source[end..]
                    )
                },
                names: &[
                    "❌ Host's / out of reach     still mounted at /.oldroot: the old root was \
                     not detached (mountinfo)",
                    "💡 A typical wrong answer (`never umount2(.)`)",
                ],
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
            names: &[
                "❌ mount(proc) on rootfs/proc",
                "💡 A typical wrong answer (`no procfs at /proc: ps sees no processes at all`)",
            ],
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
            names: &[
                "nothing arrived over 127.0.0.1 inside the container",
                "💡 A typical wrong answer (`never ioctl(SIOCSIFFLAGS)`)",
            ],
        }],
    );
}

#[test]
fn step_10_lessons_stubbed_or_left_to_write() {
    learner(
        10,
        &[Wrong {
            what: "three lessons stubbed, five todo!() left",
            edit: |_| {
                // The exercise as `just exercise 10` makes it, three lessons stubbed so that
                // it runs: nothing on a terminal works, and without one all is well.
                let mut exercise =
                    coach::exercise::main_rs("10-pty", &source(10), Some(&source(9))).unwrap();
                for (lesson, stub) in [
                    ("console_socket", "Ok(None)"),
                    ("attach_to_terminal", "Ok(())"),
                    ("relay_terminal", "Ok(())"),
                ] {
                    let todo = format!("    todo!(\"10-pty: write {lesson}()");
                    let at = exercise.find(&todo).unwrap();
                    let end = at + exercise[at..].find('\n').unwrap();
                    exercise.replace_range(at..end, &format!("    {stub}"));
                }
                assert_eq!(exercise.matches("    todo!(").count(), 5);
                exercise
            },
            names: &[
                "on a terminal, the container must get a terminal of its own",
                "❌ never socketpair",
                "💡 A typical wrong answer (`never socketpair`)",
                "✏️  relay() is still a todo!()",
            ],
        }],
    );
}

#[test]
fn a_broken_copy_in_workbench_never_breaks_the_workspace() {
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

#[test]
fn plain_words_leave_the_code() {
    let solution = "    unshare(CloneFlags::CLONE_NEWUSER)\n        .context(\"unshare(CLONE_NEWUSER) \
                    failed\")\n        .with_hint(plumbing::user_namespace_hint)?;\n    \
                    chdir(\"/\").context(\"chdir(\\\"/\\\") failed\")?;\n    x.with_context(|| \
                    format!(\"a {}\", b))?;\n    unsafe { fork() }.context(\"fork failed\")\n";
    assert_eq!(
        in_plain_words(solution),
        "    unshare(CloneFlags::CLONE_NEWUSER)?;\n    chdir(\"/\")?;\n    x?;\n    unsafe { fork() \
         }.map_err(Into::into)\n"
    );
}

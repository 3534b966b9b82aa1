//! `just check N`: builds the learner's copy of step N and runs the step's own tests on it,
//! then says in plain words what holds and what does not.
//!
//! There is no second copy of the expected output: the checks are the project's tests,
//! `cargo test -p bento-tests --test steps step_NN_`, with the learner's binary put in the
//! tests' fixture in place of the step's (`BENTO_CHECK_STEP`, `BENTO_CHECK_BIN`, read by
//! `tests/common`). The tests log every run of it (`BENTO_CHECK_LOG`); from that log this
//! module explains a failure: the lessons still left as `todo!()`, the error the step
//! printed, the checklist lines that differ from the snapshot's, and the typical wrong
//! answers that the step's HINTS.md describes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use plumbing::Hint;

use crate::hints::Hints;
use crate::workbench::{Step, Workshop};

/// Where every learner copy is built: one target directory, so that the dependencies are
/// compiled once for all of them.
pub fn target_dir(workshop: &Workshop) -> PathBuf {
    workshop.root.join("target/workbench")
}

/// Builds the copy with cargo, its messages shown as cargo shows them. Returns the binary,
/// or None when it does not compile.
pub fn build(workshop: &Workshop, step: &Step, copy: &Path) -> Result<Option<PathBuf>> {
    let status = Command::new("cargo")
        .args(["build", "--quiet", "--manifest-path"])
        .arg(copy.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir(workshop))
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        return Ok(None);
    }
    Ok(Some(
        target_dir(workshop).join("debug").join(step.package()),
    ))
}

/// How one test of the step went.
#[derive(Debug)]
pub struct Outcome {
    pub test: String,
    pub passed: bool,
    /// What the test said when it failed.
    pub message: String,
}

/// Runs the step's tests on `binary`. Returns the outcomes and the log of the runs.
pub fn run_tests(
    workshop: &Workshop,
    step: &Step,
    binary: &Path,
) -> Result<(Vec<Outcome>, String)> {
    // The tests copy the other steps and tools from the workspace's build.
    let built = Command::new("cargo")
        .args(["build", "--quiet", "--workspace", "--bins"])
        .current_dir(&workshop.root)
        .status()
        .context("cannot run cargo")?;
    if !built.success() {
        anyhow::bail!("the workshop itself does not build (see cargo's messages above)");
    }
    let log = std::env::temp_dir().join(format!("bento-check-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let tests = |extra: &[&str]| {
        let mut command = Command::new("cargo");
        command
            .args(["test", "--package", "bento-tests", "--test", "steps", "--"])
            .arg(format!("step_{:02}_", step.number))
            // A learner's unfinished code never runs as real root (tests/common refuses too).
            .args(["--skip", "real_root"])
            .args(extra)
            .current_dir(&workshop.root)
            .env("BENTO_CHECK_STEP", step.number.to_string())
            .env("BENTO_CHECK_BIN", binary)
            .env("BENTO_CHECK_LOG", &log)
            // The expected output is the checked-in snapshot: never write a new one.
            .env("INSTA_UPDATE", "no")
            .env_remove("INSTA_FORCE_PASS")
            .stdin(Stdio::null());
        command
    };
    let listed = tests(&["--list"])
        .output()
        .context("cannot run cargo test")?;
    let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err(anyhow::anyhow!(
            "the checks did not build:\n{}",
            String::from_utf8_lossy(&listed.stderr)
        ))
        .hint("`cargo test -p bento-tests --test steps` must build: try `just test`");
    }
    let (stdout, finished) = run_with_deadline(tests(&[]), CHECKS_TIME_LIMIT)?;
    let runs = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let mut outcomes = outcomes(&stdout);
    for name in names {
        if !outcomes.iter().any(|o| o.test == name) {
            outcomes.push(Outcome {
                test: name,
                passed: false,
                message: match finished {
                    true => "did not run".into(),
                    false => format!(
                        "did not finish within {} s: your step hangs here (stopped)",
                        CHECKS_TIME_LIMIT.as_secs()
                    ),
                },
            });
        }
    }
    outcomes.sort_by(|a, b| a.test.cmp(&b.test));
    Ok((outcomes, runs))
}

/// How long the checks of one step may take. The solution's take a few seconds; a
/// learner's step can hang (e.g. a listener waiting for a client that cannot connect).
pub const CHECKS_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `command` in a process group of its own, and kills the whole group if it is not
/// done by `limit`. Returns its stdout and whether it finished.
fn run_with_deadline(mut command: Command, limit: std::time::Duration) -> Result<(String, bool)> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = command
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run cargo test")?;
    let mut pipe = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    });
    let start = std::time::Instant::now();
    let finished = loop {
        if child.try_wait()?.is_some() {
            break true;
        }
        if start.elapsed() > limit {
            // The group: cargo, the test binary and the steps it runs (PID 1 of a
            // container dies with its step: PR_SET_PDEATHSIG).
            let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let out = reader.join().unwrap_or_default();
    Ok((String::from_utf8_lossy(&out).into_owned(), finished))
}

/// Reads libtest's output: `test NAME ... ok|FAILED`, then each failure's message.
pub fn outcomes(stdout: &str) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (test, result) = rest.split_once(" ... ")?;
            Some(Outcome {
                test: test.to_string(),
                passed: result != "FAILED",
                message: String::new(),
            })
        })
        .collect();
    for outcome in outcomes.iter_mut().filter(|o| !o.passed) {
        let header = format!("---- {} stdout ----\n", outcome.test);
        if let Some((_, after)) = stdout.split_once(&header) {
            let end = after
                .find("\n---- ")
                .or_else(|| after.find("\nfailures:"))
                .unwrap_or(after.len());
            outcome.message = after[..end].trim().to_string();
        }
    }
    outcomes
}

/// One run of a step, as the tests logged it (`tests/common`, `Run::report`).
#[derive(Debug)]
struct Run<'a> {
    test: &'a str,
    command: &'a str,
    stderr: &'a str,
    stdout: &'a str,
}

/// The runs of the learner's binary in the log, by the tests in `failed`.
fn runs<'a>(log: &'a str, package: &str, failed: &[&str]) -> Vec<Run<'a>> {
    log.split(LOG_SEPARATOR)
        .filter_map(|entry| {
            let (test, report) = entry.strip_prefix("test: ")?.split_once('\n')?;
            let command = report.lines().next()?.strip_prefix("$ ")?;
            let (_, rest) = report.split_once("--- stderr ---\n")?;
            let (stderr, stdout) = rest.split_once("--- stdout ---\n").unwrap_or((rest, ""));
            (command.starts_with(package) && failed.contains(&test)).then_some(Run {
                test,
                command,
                stderr,
                stdout,
            })
        })
        .collect()
}

/// Separates the runs in the log; `tests/common` writes it.
pub const LOG_SEPARATOR: &str = "==== bento-check run ====\n";

/// The checklist lines of a step's output: `(ticked, name, the whole line)`.
fn checklist(stderr: &str) -> Vec<(bool, String, String)> {
    let Some((_, list)) = stderr.split_once("Container checklist\n") else {
        return Vec::new();
    };
    list.lines()
        .take_while(|line| line.starts_with("  "))
        .map(|line| {
            let line = line.trim();
            let name: String = line.chars().skip(2).collect();
            let name = name
                .split("  ")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            (line.starts_with('✅'), name, line.to_string())
        })
        .collect()
}

/// The checklist the solution prints: from the step's checked-in snapshots.
fn expected_checklist(workshop: &Workshop, step: &Step) -> Vec<(bool, String, String)> {
    let prefix = format!("step_{:02}_", step.number);
    let Ok(entries) = std::fs::read_dir(workshop.root.join("tests/snapshots")) else {
        return Vec::new();
    };
    let mut snapshots: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    snapshots.sort();
    snapshots
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| checklist(&text))
        .find(|list| !list.is_empty())
        .unwrap_or_default()
}

/// The report for the learner: what holds, what does not, and why when we can tell.
pub fn report(
    workshop: &Workshop,
    step: &Step,
    outcomes: &[Outcome],
    log: &str,
    hints: &Hints,
    next_hint: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nThe checks of step {:02} on your copy:", step.number);
    for outcome in outcomes {
        let words = outcome
            .test
            .strip_prefix(&format!("step_{:02}_", step.number))
            .unwrap_or(&outcome.test)
            .replace('_', " ");
        let mark = if outcome.passed { '✅' } else { '❌' };
        let _ = writeln!(out, "  {mark} {words}");
        if !outcome.passed {
            for line in explain_failure(&outcome.message).lines() {
                let _ = writeln!(out, "       {line}");
            }
        }
    }
    if outcomes.iter().all(|o| o.passed) {
        return out;
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.test.as_str())
        .collect();
    let runs = runs(log, &step.package(), &failed);
    let _ = writeln!(out);
    // Lessons still to write: their todo!() panicked.
    let mut todo: Vec<&str> = Vec::new();
    for run in &runs {
        if let Some((_, after)) = run.stderr.split_once("not yet implemented: ")
            && let Some(name) = after
                .split("write ")
                .nth(1)
                .and_then(|s| s.split("()").next())
            && !todo.contains(&name)
        {
            todo.push(name);
        }
    }
    for name in &todo {
        let _ = writeln!(
            out,
            "✏️  {name}() is still a todo!(): write it (its TODOs say what)."
        );
    }
    // The first error line the step printed, and its hint.
    let failed = runs.iter().find(|run| run.stderr.contains(": error: "));
    let stopped = failed.is_some();
    if let Some(run) = failed {
        let error: Vec<&str> = run
            .stderr
            .lines()
            .skip_while(|line| !line.contains(": error: "))
            .take_while(|line| line.contains(": error: ") || line.starts_with(' '))
            .collect();
        let _ = writeln!(
            out,
            "Your step stopped with an error (`{}`, in the check \"{}\"):",
            run.command,
            run.test.replace('_', " ")
        );
        for line in error {
            let _ = writeln!(out, "  {line}");
        }
    }
    // The checklist, against the solution's.
    let expected = expected_checklist(workshop, step);
    if todo.is_empty()
        && let Some(run) = runs.iter().find(|run| !checklist(run.stderr).is_empty())
    {
        let yours = checklist(run.stderr);
        for (ticked, name, line) in &expected {
            match yours.iter().find(|(_, n, _)| n == name) {
                Some((mine, _, my_line)) if mine != ticked => {
                    let _ = writeln!(
                        out,
                        "Checklist: yours says \"{my_line}\"\n           the solution's says \"{line}\""
                    );
                }
                None => {
                    let _ = writeln!(out, "Checklist: yours has no line \"{name}\"");
                }
                _ => {}
            }
        }
    } else if todo.is_empty() && !stopped && !expected.is_empty() && !runs.is_empty() {
        let _ = writeln!(out, "Your step never got as far as printing the checklist.");
    }
    // The typical wrong answers that this step's HINTS.md describes.
    let seen: String = runs
        .iter()
        .map(|run| format!("{}\n{}", run.stderr, run.stdout))
        .collect::<Vec<_>>()
        .join("\n")
        + &outcomes
            .iter()
            .map(|o| o.message.as_str())
            .collect::<Vec<_>>()
            .join("\n");
    for (pattern, meaning) in &hints.wrong_answers {
        if seen.contains(pattern.as_str()) {
            let _ = writeln!(
                out,
                "💡 A typical wrong answer (your step printed `{pattern}`):"
            );
            let _ = writeln!(out, "   {meaning}");
        }
    }
    let _ = writeln!(out);
    if next_hint < hints.hints.len() {
        let _ = writeln!(
            out,
            "Next: `just hint {n}` (hint {} of {}), or `just solution {n}` to compare with the step.",
            next_hint + 1,
            hints.hints.len(),
            n = step.number
        );
    } else {
        let _ = writeln!(
            out,
            "Next: `just solution {n}` shows how your copy differs from the step.",
            n = step.number
        );
    }
    out
}

/// A failed test's message, in short: insta's snapshot diffs keep only their changed lines
/// (`-` the expected, `+` yours); any other message its first lines.
fn explain_failure(message: &str) -> String {
    if message.contains("Snapshot Summary") || message.contains("-old snapshot") {
        let mut out = String::from("the output differs from the snapshot (- expected, + yours):\n");
        let changed: Vec<String> = message
            .lines()
            .filter_map(|line| {
                let (_, text) = line.split_once('│')?;
                let text = text.strip_prefix(['-', '+']).map(|_| text)?;
                Some(text.to_string())
            })
            .collect();
        for line in changed.iter().take(16) {
            out.push_str(line);
            out.push('\n');
        }
        if changed.len() > 16 {
            out.push_str("...\n");
        }
        return out;
    }
    // The test's own words, without the run it quotes (what the step printed is explained
    // below the list, from the log).
    message
        .lines()
        .filter(|line| !line.starts_with("note: ") && !line.starts_with("thread '"))
        .take_while(|line| !line.starts_with("$ ") && !line.starts_with("[Before Isolation]"))
        .take(4)
        .map(|line| line.replace("assertion `left == right` failed: ", ""))
        .collect::<Vec<_>>()
        .join("\n")
}

//! `just check N`: builds the learner's copy of step N and runs the step's own tests on it,
//! then says in plain words what holds and what does not.
//!
//! There is no second copy of the expected output: the checks are the project's tests, every
//! test whose name says `step_NN` in the test files that prove steps ([`CHECKS`]: what the
//! step prints, how it behaves on a hostile host, on a terminal), run with the learner's
//! binary in the tests' fixture in place of the step's (`BENTO_CHECK_STEP`,
//! `BENTO_CHECK_BIN`, read by `tests/common`). The tests log every run of it
//! (`BENTO_CHECK_LOG`), and their failure messages say what the step did wrong.
//!
//! Beside them, the learner's step and the solution run under strace ([`crate::trace`]):
//! what the step *did* names the mistake whatever its error messages say, and the typical
//! wrong answers of the step's HINTS.md are matched against that too.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use plumbing::Hint;

use crate::hints::Hints;
use crate::sandbox::Sandbox;
use crate::trace::{self, Comparison};
use crate::workbench::{Step, Workshop};

/// The test files (of the `bento-tests` package) whose `step_NN` tests prove step NN.
pub const CHECKS: [&str; 3] = ["steps", "robust", "terminal"];

/// Where every learner copy is built: one target directory, so that the dependencies are
/// compiled once for all of them.
pub fn target_dir(workshop: &Workshop) -> PathBuf {
    workshop.root.join("target/workbench")
}

/// Has nothing been built here yet? Then cargo shows its progress: the first build takes a
/// while, and a silent terminal for minutes looks like a hang.
fn first_time(marker: &Path) -> bool {
    !marker.exists()
}

/// Runs cargo, quietly unless this is the first time (then with its progress), and leaves
/// `marker` once it has succeeded.
fn cargo(mut command: Command, marker: &Path) -> Result<std::process::Output> {
    if !first_time(marker) {
        command.env("CARGO_TERM_QUIET", "true");
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")
        .hint("install Rust with rustup: https://rustup.rs")?;
    if output.status.success() {
        let _ = std::fs::write(marker, "");
    }
    Ok(output)
}

/// Builds the copy with cargo, its messages shown as cargo shows them, and copies the binary
/// out. Returns it, or None when the copy does not compile.
///
/// Every copy of a step builds to the same path in [`target_dir`]: the build and the copy
/// happen under a lock of that path (flock(2)), so that two checks at once (the tests run
/// several) each check their own binary.
pub fn build(workshop: &Workshop, step: &Step, copy: &Path) -> Result<Option<Built>> {
    let target = target_dir(workshop);
    std::fs::create_dir_all(&target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    let lock = std::fs::File::create(target.join(format!(".{}.lock", step.package())))
        .context("cannot create the build's lock file")?;
    let _locked = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .context("cannot lock the build")?;
    let marker = target.join(".built");
    if first_time(&marker) {
        eprintln!(
            "just check {}: the first build of a copy also builds its dependencies (nix, \
             anyhow, …): a minute or two, once",
            step.number
        );
    }
    // Cargo knows the copies of one step as one package, the same unit: after building one
    // copy, it would take another for built already if its files are older. A mark of the
    // copy's own (its path) in the compiler's arguments, which cargo counts in what it
    // compares, keeps each copy's build its own.
    let mut command = Command::new("cargo");
    command
        .args(["rustc", "--manifest-path"])
        .arg(copy.join("Cargo.toml"))
        .args(["--", "-C"])
        .arg(format!(
            "metadata=copy-{:016x}",
            fnv(copy.as_os_str().as_encoded_bytes())
        ))
        .env("CARGO_TARGET_DIR", &target);
    if !cargo(command, &marker)?.status.success() {
        return Ok(None);
    }
    let built = target.join("debug").join(step.package());
    let dir = tempdir("bento-check-build")?;
    let binary = dir.path.join(step.package());
    std::fs::copy(&built, &binary)
        .with_context(|| format!("cannot copy {} to {}", built.display(), binary.display()))?;
    Ok(Some(Built { _dir: dir, binary }))
}

/// FNV-1a: a short, stable name for a path.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The learner's binary, copied out of the shared target directory.
pub struct Built {
    _dir: TempDir,
    pub binary: PathBuf,
}

/// Builds what the checks need (the workshop's steps and tools, which the tests run beside
/// the learner's, and the test binaries of [`CHECKS`]) and returns the test binaries.
pub fn prepare(workshop: &Workshop) -> Result<Vec<PathBuf>> {
    let marker = workshop.root.join("target/debug/.bento-checks-built");
    if first_time(&marker) {
        eprintln!(
            "just check: building the workshop's steps and their tests (cargo test -p \
             bento-tests), which check your copy: the first time takes a few minutes"
        );
    }
    let mut tools = Command::new("cargo");
    tools.arg("build").current_dir(&workshop.root);
    for package in workshop
        .steps()?
        .iter()
        .map(Step::package)
        .chain(["rootfs-fetch".into(), "bento-doctor".into()])
    {
        tools.args(["--package", &package]);
    }
    if !cargo(tools, &marker)?.status.success() {
        anyhow::bail!("the workshop itself does not build (see cargo's messages above)");
    }
    let mut tests = Command::new("cargo");
    tests
        .args([
            "test",
            "--no-run",
            "--message-format=json",
            "--package",
            "bento-tests",
        ])
        .current_dir(&workshop.root);
    for name in CHECKS {
        tests.args(["--test", name]);
    }
    let output = cargo(tests, &marker)?;
    if !output.status.success() {
        return Err(anyhow::anyhow!(
            "the checks do not build (see cargo's messages above)"
        ))
        .hint("`cargo test -p bento-tests --no-run` must build: try `just test`");
    }
    let executables = executables(&String::from_utf8_lossy(&output.stdout));
    if executables.len() != CHECKS.len() {
        anyhow::bail!(
            "cargo did not name the test binaries of {}",
            CHECKS.join(", ")
        );
    }
    Ok(executables)
}

/// The test binaries in cargo's JSON messages: `"executable":"PATH"` of each test artefact.
fn executables(messages: &str) -> Vec<PathBuf> {
    messages
        .lines()
        .filter(|line| line.contains("\"reason\":\"compiler-artifact\""))
        .filter(|line| line.contains("\"kind\":[\"test\"]"))
        .filter_map(|line| {
            let (_, rest) = line.split_once("\"executable\":\"")?;
            Some(PathBuf::from(rest.split('"').next()?))
        })
        .collect()
}

/// How one test of the step went.
#[derive(Debug)]
pub struct Outcome {
    pub test: String,
    pub passed: bool,
    /// Why it passed without checking anything (`SKIPPED: WHY`: this machine lacks what
    /// it needs).
    pub skipped: Option<String>,
    /// What the test said when it failed.
    pub message: String,
}

/// How long one test binary may take on the learner's step. Every wait in the tests is
/// bounded (the solution's checks take a few seconds); this stops a step that hangs where
/// no test expected it.
pub const CHECKS_TIME_LIMIT: Duration = Duration::from_secs(40);

/// Runs the `step_NN` tests of every test binary on `binary`, at once. Returns the outcomes
/// and the log of the runs of the learner's step.
pub fn run_tests(
    workshop: &Workshop,
    step: &Step,
    binary: &Path,
    executables: &[PathBuf],
) -> Result<(Vec<Outcome>, String)> {
    let logs = tempdir("bento-check-log")?;
    let log = logs.path.join("runs");
    let filter = format!("step_{:02}", step.number);
    let tests = |executable: &Path, extra: &[&str]| {
        let mut command = Command::new(executable);
        command
            .arg(&filter)
            // A learner's unfinished code never runs as real root (tests/common refuses too).
            .args(["--skip", "real_root"])
            .args(extra)
            .current_dir(workshop.root.join("tests"))
            .env("CARGO_MANIFEST_DIR", workshop.root.join("tests"))
            .env("INSTA_WORKSPACE_ROOT", &workshop.root)
            .env("BENTO_CHECK_STEP", step.number.to_string())
            .env("BENTO_CHECK_BIN", binary)
            .env("BENTO_CHECK_LOG", &log)
            .env("RUST_BACKTRACE", "0")
            // The expected output is the checked-in snapshot: never write a new one.
            .env("INSTA_UPDATE", "no")
            .env_remove("INSTA_FORCE_PASS")
            .stdin(Stdio::null());
        command
    };
    let mut names: Vec<String> = Vec::new();
    for executable in executables {
        let listed = tests(executable, &["--list"])
            .output()
            .with_context(|| format!("cannot run {}", executable.display()))?;
        names.extend(
            String::from_utf8_lossy(&listed.stdout)
                .lines()
                .filter_map(|line| line.strip_suffix(": test"))
                .map(str::to_string),
        );
    }
    // The tests mostly wait for processes: run them all at once.
    let threads = names.len().max(1).to_string();
    let runs: Vec<Result<(String, bool)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = executables
            .iter()
            .map(|executable| {
                // --show-output: a passing test's output too, where a skipped one says so.
                let command = tests(executable, &["--test-threads", &threads, "--show-output"]);
                scope.spawn(move || run_with_deadline(command, CHECKS_TIME_LIMIT))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
            })
            .collect()
    });
    let mut outcomes = Vec::new();
    let mut finished = true;
    for run in runs {
        let (stdout, done) = run?;
        finished &= done;
        outcomes.extend(self::outcomes(&stdout));
    }
    let runs = std::fs::read_to_string(&log).unwrap_or_default();
    for name in names {
        if !outcomes.iter().any(|o| o.test == name) {
            outcomes.push(Outcome {
                test: name,
                passed: false,
                skipped: None,
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
    outcomes.sort_by_key(|outcome| words(step, &outcome.test));
    Ok((outcomes, runs))
}

/// A directory of our own in `$TMPDIR`, removed when dropped.
struct TempDir {
    path: PathBuf,
}

fn tempdir(name: &str) -> Result<TempDir> {
    let template = std::env::temp_dir().join(format!("{name}-XXXXXX"));
    let path = nix::unistd::mkdtemp(&template)
        .with_context(|| format!("cannot create a directory in {}", template.display()))
        .hint("set TMPDIR to a directory you can write to")?;
    Ok(TempDir { path })
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = plumbing::remove_tree(&self.path);
    }
}

/// What the learner's step did against the solution, from strace: the comparison, or why
/// there is none.
pub type Calls = std::result::Result<Comparison, String>;

/// The sandbox where the learner's step and the solution are traced.
pub fn sandbox(workshop: &Workshop) -> Result<Sandbox> {
    Sandbox::create("check", &workshop.root.join("target/debug/rootfs-fetch"))
}

/// Runs the learner's step and the solution (`true` as the command, on a terminal of their
/// own) under strace in the sandbox, and compares what they did.
pub fn compare_calls(workshop: &Workshop, step: &Step, binary: &Path, sandbox: &Sandbox) -> Calls {
    if Command::new("strace").arg("-V").output().is_err() {
        return Err(
            "install strace (sudo apt install strace), and `just check` shows what \
                    your step did beside what the solution does"
                .into(),
        );
    }
    let traced = || -> Result<Comparison> {
        let name = step.package();
        let yours = binary;
        let solution = workshop.root.join("target/debug").join(&name);
        let solution = sandbox.place(&solution, &format!("solution/{name}"))?;
        let limit = Duration::from_secs(5);
        let dir = sandbox.dir.to_string_lossy().into_owned();
        let mine = trace::parse(&sandbox.strace(yours, &["true"], limit)?, &dir);
        let theirs = trace::parse(&sandbox.strace(&solution, &["true"], limit)?, &dir);
        Ok(trace::compare(&mine, &theirs))
    };
    traced().map_err(|error| format!("could not trace your step: {error:#}"))
}

/// Runs `command` in a process group of its own, and kills the whole group if it is not
/// done by `limit`. Returns its stdout and whether it finished.
fn run_with_deadline(mut command: Command, limit: Duration) -> Result<(String, bool)> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = command
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run the checks")?;
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
            // The group: the test binary and the steps it runs (PID 1 of a container dies
            // with its step: PR_SET_PDEATHSIG).
            let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap_or_default();
    Ok((String::from_utf8_lossy(&out).into_owned(), finished))
}

/// Reads libtest's output: `test NAME ... ok|FAILED`, then each test's output (with
/// `--show-output`, a passing one's too): a failure's message, a skip's reason
/// (tests/common's `skipped()` prints `SKIPPED: WHY`).
pub fn outcomes(stdout: &str) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (test, result) = rest.split_once(" ... ")?;
            Some(Outcome {
                test: test.to_string(),
                passed: result != "FAILED",
                skipped: None,
                message: String::new(),
            })
        })
        .collect();
    for outcome in outcomes.iter_mut() {
        let header = format!("---- {} stdout ----\n", outcome.test);
        let Some((_, after)) = stdout.split_once(&header) else {
            continue;
        };
        let end = ["\n---- ", "\nsuccesses:", "\nfailures:"]
            .iter()
            .filter_map(|end| after.find(end))
            .min()
            .unwrap_or(after.len());
        let said = after[..end].trim();
        match outcome.passed {
            true => {
                outcome.skipped = said
                    .lines()
                    .find_map(|line| line.strip_prefix("SKIPPED: "))
                    .map(str::to_string);
            }
            false => outcome.message = said.to_string(),
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
    /// Run through another program (a test's own namespace, a seccomp filter): its
    /// checklist is not the step's usual one.
    wrapped: bool,
}

/// The runs of the learner's binary in the log, by the tests in `failed`.
fn runs<'a>(log: &'a str, package: &str, failed: &[&str]) -> Vec<Run<'a>> {
    log.split(LOG_SEPARATOR)
        .filter_map(|entry| {
            let (test, report) = entry.strip_prefix("test: ")?.split_once('\n')?;
            let (wrapped, report) = match report.strip_prefix("wrapped\n") {
                Some(report) => (true, report),
                None => (false, report),
            };
            let command = report.lines().next()?.strip_prefix("$ ")?;
            let (_, rest) = report.split_once("--- stderr ---\n")?;
            let (stderr, stdout) = rest.split_once("--- stdout ---\n").unwrap_or((rest, ""));
            (command.starts_with(package) && failed.contains(&test)).then_some(Run {
                test,
                command,
                stderr,
                stdout,
                wrapped,
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

/// A test's name in words: `step_04_shows_the_busybox_root` is "shows the busybox root",
/// `exits_with_the_commands_status::step_04` is "exits with the commands status".
fn words(step: &Step, test: &str) -> String {
    let number = format!("step_{:02}", step.number);
    let name = test
        .strip_suffix(&format!("::{number}"))
        .or_else(|| test.strip_prefix(&format!("{number}_")))
        .unwrap_or(test);
    name.replace('_', " ")
}

/// The lessons of `source` (the copy's main.rs) still left as `todo!()`.
pub fn todo_lessons(source: &str) -> Vec<String> {
    crate::lessons::functions(source)
        .unwrap_or_default()
        .into_iter()
        .filter(|function| {
            function
                .text
                .lines()
                .any(|line| !line.trim_start().starts_with("//") && line.contains("todo!("))
        })
        .map(|function| function.name)
        .collect()
}

/// What the report is made from.
pub struct Results<'a> {
    pub outcomes: &'a [Outcome],
    /// The tests' log of the runs of the learner's step.
    pub log: &'a str,
    /// What the learner's step did against the solution.
    pub calls: &'a Calls,
    /// The copy's main.rs.
    pub source: &'a str,
}

/// The report for the learner: what holds, what does not, and why when we can tell.
pub fn report(
    workshop: &Workshop,
    step: &Step,
    results: &Results,
    hints: &Hints,
    next_hint: usize,
) -> String {
    let outcomes = results.outcomes;
    let mut out = String::new();
    let _ = writeln!(out, "\nThe checks of step {:02} on your copy:", step.number);
    for outcome in outcomes {
        let mark = match (outcome.passed, &outcome.skipped) {
            (true, None) => "✅",
            (true, Some(_)) => "⏭️ ",
            (false, _) => "❌",
        };
        let _ = writeln!(out, "  {mark} {}", words(step, &outcome.test));
        if let Some(why) = &outcome.skipped {
            let _ = writeln!(out, "       skipped here, so not proven: {why}");
        }
        if !outcome.passed {
            for line in explain_failure(&outcome.message).lines() {
                let _ = writeln!(out, "       {line}");
            }
        }
    }
    let all_passed = outcomes.iter().all(|o| o.passed);
    // What the step did, against the solution: shown whenever it differs.
    let comparison = results.calls.as_ref().ok();
    if let Some(comparison) = comparison.filter(|c| !c.findings.is_empty()) {
        let _ = writeln!(
            out,
            "\nWhat your step did that the solution does not (strace -f, `true` as the \
             command, the calls that matter):"
        );
        for finding in &comparison.findings {
            let _ = writeln!(out, "  ❌ {finding}");
        }
        out.push_str(&comparison.table);
    }
    if all_passed {
        return out;
    }
    if let Err(why) = results.calls {
        let _ = writeln!(out, "\n({why})");
    }
    let todo = todo_lessons(results.source);
    if comparison.is_some_and(|c| c.stopped_in_its_code) && todo.is_empty() {
        let _ = writeln!(
            out,
            "\nYour step stopped in its own code before it ran the command, with no system call \
             failing (a panic? an unwrap()?): what it printed is in the checks above."
        );
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.test.as_str())
        .collect();
    let runs = runs(results.log, &step.package(), &failed);
    let _ = writeln!(out);
    // Lessons still to write.
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
            words(step, run.test)
        );
        for line in error {
            let _ = writeln!(out, "  {line}");
        }
    }
    // The checklist, against the solution's.
    let expected = expected_checklist(workshop, step);
    if todo.is_empty()
        && let Some(run) = runs
            .iter()
            .find(|run| !run.wrapped && !checklist(run.stderr).is_empty())
    {
        // The first line that differs: a step shows the lines up to the next one to tick,
        // so the lines after an unticked one are missing because of it.
        let yours = checklist(run.stderr);
        for (ticked, name, line) in &expected {
            match yours.iter().find(|(_, n, _)| n == name) {
                Some((mine, _, my_line)) if mine != ticked => {
                    let _ = writeln!(
                        out,
                        "Checklist: yours says \"{my_line}\"\n           the solution's says \"{line}\""
                    );
                    break;
                }
                None => {
                    let _ = writeln!(out, "Checklist: yours has no line \"{name}\"");
                    break;
                }
                _ => {}
            }
        }
    } else if todo.is_empty() && !stopped && !expected.is_empty() && !runs.is_empty() {
        let _ = writeln!(out, "Your step never got as far as printing the checklist.");
    }
    // The typical wrong answers that this step's HINTS.md describes: matched against what
    // the step did (the findings), what it printed and what the tests said.
    let seen: String = comparison
        .map(|c| c.keys.join("\n"))
        .into_iter()
        .chain(
            runs.iter()
                .map(|run| format!("{}\n{}", run.stderr, run.stdout)),
        )
        .chain(outcomes.iter().map(|o| o.message.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    for (pattern, meaning) in &hints.wrong_answers {
        if seen.contains(pattern.as_str()) {
            let _ = writeln!(out, "💡 A typical wrong answer (`{pattern}`):");
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

#[cfg(test)]
mod tests {
    use super::*;

    /// libtest's output with --show-output: a success's output, then a failure's.
    const LIBTEST: &str = "
running 3 tests
test step_11_checks_as_root ... ok
test step_11_works ... ok
test step_11_refuses ... FAILED

successes:

---- step_11_checks_as_root stdout ----
SKIPPED: only root can give the step a /dev/net/tun of its own

---- step_11_works stdout ----
a line of its own

successes:
    step_11_checks_as_root
    step_11_works

failures:

---- step_11_refuses stdout ----
the step exited with 1

failures:
    step_11_refuses

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
";

    #[test]
    fn a_skipped_check_is_told_from_a_passed_one() {
        let outcomes = outcomes(LIBTEST);
        let [skipped, works, refuses] = outcomes.as_slice() else {
            panic!("{outcomes:?}");
        };
        assert!(skipped.passed);
        assert_eq!(
            skipped.skipped.as_deref(),
            Some("only root can give the step a /dev/net/tun of its own")
        );
        assert!(works.passed && works.skipped.is_none(), "{works:?}");
        assert!(!refuses.passed);
        assert_eq!(refuses.message, "the step exited with 1");
    }
}

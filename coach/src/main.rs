//! `bento-coach`: the learner track. The justfile's `exercise`, `check`, `hint` and
//! `solution` recipes call it:
//!
//! ```text
//! bento-coach [--workbench DIR] exercise N [--reset]   make workbench/NN-name/
//! bento-coach [--workbench DIR] check N                build it and run step N's checks on it
//! bento-coach [--workbench DIR] hint N                 the next hint
//! bento-coach [--workbench DIR] solution N             your copy against the step
//! ```
//!
//! `--workbench` is for the tests, which keep their copies in a temporary directory.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use coach::workbench::{Step, Workshop, find_root};
use coach::{check, hints};
use plumbing::Hint;

const USAGE: &str = "usage: bento-coach [--workbench DIR] exercise|check|hint|solution N [--reset]";

fn main() {
    plumbing::run(coach)
}

fn coach() -> Result<i32> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let root = find_root(&std::env::current_dir().context("no current directory")?)?;
    let mut workbench = root.join("workbench");
    if args.first().map(String::as_str) == Some("--workbench") {
        let Some(dir) = args.get(1) else {
            return Err(anyhow::anyhow!("--workbench needs a directory")).hint(USAGE);
        };
        workbench = PathBuf::from(dir);
        args.drain(..2);
    }
    let workshop = Workshop::new(root, workbench);
    let (Some(command), Some(number)) = (args.first(), args.get(1)) else {
        return Err(anyhow::anyhow!("which step?")).hint(USAGE);
    };
    let flags = &args[2..];
    let step = workshop.step(number)?;
    match (command.as_str(), flags) {
        ("exercise", []) => exercise(&workshop, &step, false),
        ("exercise", [reset]) if reset == "--reset" => exercise(&workshop, &step, true),
        ("check", []) => check(&workshop, &step),
        ("hint", []) => hint(&workshop, &step),
        ("solution", []) => solution(&workshop, &step),
        _ => Err(anyhow::anyhow!("unknown command: {}", args.join(" "))).hint(USAGE),
    }
}

fn exercise(workshop: &Workshop, step: &Step, reset: bool) -> Result<i32> {
    let main_rs = workshop.create_exercise(step, reset)?;
    let source = std::fs::read_to_string(step.dir.join("src/main.rs"))?;
    let previous = match workshop.previous(step)? {
        Some(previous) => Some(std::fs::read_to_string(previous.dir.join("src/main.rs"))?),
        None => None,
    };
    let lessons = coach::exercise::lessons_to_write(&source, previous.as_deref())?;
    println!("Your exercise: {}", workshop.shown(&main_rs));
    println!(
        "Write {} (each says what to do in its TODOs), following {}/README.md.",
        lessons
            .iter()
            .map(|name| format!("{name}()"))
            .collect::<Vec<_>>()
            .join(", "),
        workshop.shown(&step.dir)
    );
    println!(
        "Then: `just check {n}` says what works; `just hint {n}` gives a hint; `just solution {n}` \
         compares with the step.",
        n = step.number
    );
    Ok(0)
}

fn check(workshop: &Workshop, step: &Step) -> Result<i32> {
    let copy = workshop.existing_copy(step)?;
    eprintln!(
        "just check {}: building {} ...",
        step.number,
        workshop.shown(&copy)
    );
    let Some(built) = check::build(workshop, step, &copy)? else {
        println!(
            "\n❌ Your copy does not compile yet: cargo's messages above say where (the first \
             error is the one to fix)."
        );
        return Ok(1);
    };
    let executables = check::prepare(workshop)?;
    let sandbox = check::sandbox(workshop)?;
    let binary = sandbox.place(&built.binary, &format!("yours/{}", step.package()))?;
    eprintln!(
        "just check {}: running step {:02}'s checks on it (the tests named step_{:02} in tests/{}.rs) \
         and comparing what it does with the solution ...",
        step.number,
        step.number,
        step.number,
        check::CHECKS.join(".rs, tests/")
    );
    // The tests and the trace at once: both mostly wait for processes.
    let (tests, calls) = std::thread::scope(|scope| {
        let tests = scope.spawn(|| check::run_tests(workshop, step, &binary, &executables));
        let calls = check::compare_calls(workshop, step, &binary, &sandbox);
        (tests.join(), calls)
    });
    let (outcomes, log) = tests.map_err(|_| anyhow::anyhow!("the checks panicked"))??;
    let source = std::fs::read_to_string(copy.join("src/main.rs")).unwrap_or_default();
    let hints = hints::read(&step.dir)?;
    let shown = hints_shown(workshop, step);
    let results = check::Results {
        outcomes: &outcomes,
        log: &log,
        calls: &calls,
        source: &source,
    };
    print!("{}", check::report(workshop, step, &results, &hints, shown));
    if outcomes.iter().all(|o| o.passed) {
        println!(
            "\n✅ Step {:02} works like the solution. Try it: `just step {}`; compare: `just \
             solution {}`.",
            step.number, step.number, step.number
        );
        if let Some(next) = workshop.steps()?.iter().find(|s| s.number > step.number) {
            println!(
                "   Next: read {}/README.md, then `just exercise {}`.",
                workshop.shown(&next.dir),
                next.number
            );
        }
        return Ok(0);
    }
    Ok(1)
}

/// How many hints of the step the learner has seen.
fn hints_shown(workshop: &Workshop, step: &Step) -> usize {
    std::fs::read_to_string(workshop.copy_of(step).join(".hints-shown"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

fn hint(workshop: &Workshop, step: &Step) -> Result<i32> {
    let copy = workshop.existing_copy(step)?;
    let hints = hints::read(&step.dir)?;
    let shown = hints_shown(workshop, step);
    let Some(next) = hints.hints.get(shown) else {
        println!(
            "No more hints for step {:02}: you have seen all {}. `just solution {}` shows how \
             your copy differs from the step (to read the hints again: rm {}/.hints-shown).",
            step.number,
            hints.hints.len(),
            step.number,
            workshop.shown(&copy)
        );
        return Ok(0);
    };
    println!(
        "Hint {} of {} for step {:02}:\n",
        shown + 1,
        hints.hints.len(),
        step.number
    );
    println!("{next}");
    if shown + 1 < hints.hints.len() {
        println!("\n(`just hint {}` again for the next one)", step.number);
    }
    std::fs::write(copy.join(".hints-shown"), format!("{}\n", shown + 1))
        .context("cannot remember which hint was shown")?;
    Ok(0)
}

fn solution(workshop: &Workshop, step: &Step) -> Result<i32> {
    let copy = workshop.existing_copy(step)?;
    let status = Command::new("git")
        .args([
            "diff",
            "--no-index",
            "--color=auto",
            "--ignore-space-change",
        ])
        .arg(workshop.shown(&copy.join("src/main.rs")))
        .arg(workshop.shown(&step.dir.join("src/main.rs")))
        .current_dir(&workshop.root)
        .status()
        .context("cannot run git diff")?;
    match status.code() {
        Some(0) => println!("Your copy is the step, to the letter."),
        Some(1) => {}
        _ => bail!("git diff failed"),
    }
    Ok(0)
}

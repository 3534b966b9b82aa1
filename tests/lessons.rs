//! The step files read as a table of contents: `container()` lists the lessons, each lesson
//! is a named function no longer than a screen, the newest lessons come right under the
//! table of contents, and a lesson carried from step N-1 into step N is a byte-identical
//! copy, unless step N says that it changes or replaces it:
//!
//! - `// Changed in this step: WHY` on the line above a carried function's doc comment;
//! - `// Replaces NAME() of step NN: WHY` above the new function that takes NAME's place.
//!
//! Those marks belong to the step that makes the change; the next step carries the function
//! without them. The parser is `coach::lessons`, which `just exercise` uses too.

mod common;

use coach::lessons::{CHANGED, Function, REPLACES, functions};
use common::workspace;

/// The longest a lesson may be: a screen.
const SCREEN: usize = 60;
/// The longest the table of contents may be.
const TABLE_OF_CONTENTS: usize = 40;

/// What is wrong with step `next` as the successor of step `previous`: drifted copies,
/// undeclared removals, stray marks, lessons out of place or too long.
fn problems(previous: &[Function], next: &[Function]) -> Vec<String> {
    let mut problems = Vec::new();
    let find = |list: &[Function], name: &str| list.iter().position(|f| f.name == name);
    let lessons = |list: &[Function]| -> Vec<Function> {
        list.iter().filter(|f| !f.is_frame()).cloned().collect()
    };
    for old in lessons(previous) {
        match find(next, &old.name) {
            Some(at) if next[at].changed_here() => {}
            Some(at) if next[at].carried() != old.carried() => problems.push(format!(
                "{}() differs from the previous step's copy: carry it unchanged, or mark it \
                 with `{CHANGED} why`",
                old.name
            )),
            Some(_) => {}
            None if next
                .iter()
                .any(|f| f.replaces().as_deref() == Some(&old.name)) => {}
            None => problems.push(format!(
                "{}() of the previous step is gone: mark its successor with `{REPLACES}{}() of \
                 step NN: why`",
                old.name, old.name
            )),
        }
    }
    for new in lessons(next) {
        if new.changed_here() && find(previous, &new.name).is_none() {
            problems.push(format!("{}() is new, yet marked as changed", new.name));
        }
        if let Some(name) = new.replaces()
            && (find(previous, &name).is_none() || find(next, &name).is_some())
        {
            problems.push(format!(
                "{}() says it replaces {name}(), which the previous step does not have or this \
                 step still has",
                new.name
            ));
        }
        if new.lines() > SCREEN {
            problems.push(format!(
                "{}() is {} lines long: split it (a lesson fits on a screen, {SCREEN} lines)",
                new.name,
                new.lines()
            ));
        }
    }
    // The new lessons come first, right under the table of contents.
    let after_toc: Vec<&str> = match find(next, "container") {
        Some(at) => next[at + 1..].iter().map(|f| f.name.as_str()).collect(),
        None => {
            problems.push("there is no container() table of contents".into());
            Vec::new()
        }
    };
    let fresh: Vec<String> = lessons(next)
        .into_iter()
        .filter(|f| find(previous, &f.name).is_none())
        .map(|f| f.name)
        .collect();
    if after_toc.get(..fresh.len())
        != Some(&fresh.iter().map(String::as_str).collect::<Vec<_>>()[..])
    {
        problems.push(format!(
            "the new lessons {fresh:?} must come right under container(), before the carried ones"
        ));
    }
    if let Some(at) = find(next, "container")
        && next[at].lines() > TABLE_OF_CONTENTS
    {
        problems.push(format!(
            "container() is {} lines long: it is a table of contents (at most {TABLE_OF_CONTENTS})",
            next[at].lines()
        ));
    }
    problems
}

/// Every step's main.rs, in order.
fn steps() -> Vec<(String, Vec<Function>)> {
    let mut dirs: Vec<_> = std::fs::read_dir(workspace().join("steps"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|dir| {
            let source = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            (name, functions(&source).unwrap())
        })
        .collect()
}

#[test]
fn each_step_carries_the_lessons_of_the_one_before() {
    let steps = steps();
    assert!(steps.len() >= 9, "steps 00-08 at least");
    let mut report = String::new();
    for pair in steps.windows(2) {
        let ((before, previous), (name, next)) = (&pair[0], &pair[1]);
        for problem in problems(previous, next) {
            report.push_str(&format!("steps/{name} (after {before}): {problem}\n"));
        }
    }
    assert!(report.is_empty(), "{report}");
}

#[test]
fn step_00_is_a_table_of_contents_too() {
    let steps = steps();
    let (_, first) = &steps[0];
    assert!(
        problems(&[], first).is_empty(),
        "{:?}",
        problems(&[], first)
    );
}

#[test]
fn an_edited_copy_is_caught() {
    let steps = steps();
    let (previous, next) = (&steps[4].1, &steps[5].1);
    assert!(problems(previous, next).is_empty());
    // One character changed in a carried lesson.
    let mut edited = next.clone();
    let lesson = edited
        .iter_mut()
        .find(|f| f.name == "enter_user_namespace")
        .unwrap();
    lesson.text = lesson.text.replacen("0 {} 1", "0 {} 2", 1);
    let found = problems(previous, &edited);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("enter_user_namespace() differs"),
        "{found:?}"
    );
    // The same edit, declared.
    lesson_mark(&mut edited, "enter_user_namespace", CHANGED);
    assert!(problems(previous, &edited).is_empty());
    // A lesson dropped without a word.
    let dropped: Vec<Function> = next
        .iter()
        .filter(|f| f.name != "die_with_parent")
        .cloned()
        .collect();
    let found = problems(previous, &dropped);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("die_with_parent() of the previous step is gone")),
        "{found:?}"
    );
    // A new lesson hidden among the carried ones.
    let mut hidden = next.clone();
    let newest = hidden.remove(2);
    hidden.push(newest);
    assert!(
        problems(previous, &hidden)
            .iter()
            .any(|p| p.contains("must come right under container()"))
    );
}

fn lesson_mark(list: &mut [Function], name: &str, mark: &str) {
    let lesson = list.iter_mut().find(|f| f.name == name).unwrap();
    lesson.text = format!("{mark} for the test\n{}", lesson.text);
}

#[test]
fn demo_programs_carry_their_steps_lessons_unchanged() {
    let mut demos = 0;
    for dir in std::fs::read_dir(workspace().join("steps"))
        .unwrap()
        .flatten()
    {
        let step =
            functions(&std::fs::read_to_string(dir.path().join("src/main.rs")).unwrap()).unwrap();
        let Ok(bins) = std::fs::read_dir(dir.path().join("src/bin")) else {
            continue;
        };
        for bin in bins.flatten() {
            demos += 1;
            let demo = functions(&std::fs::read_to_string(bin.path()).unwrap()).unwrap();
            for lesson in demo
                .iter()
                .filter(|f| f.name != "main" && f.name != "container")
            {
                if let Some(original) = step.iter().find(|f| f.name == lesson.name) {
                    assert_eq!(
                        lesson.carried(),
                        original.carried(),
                        "{}: {}() differs from the step's own",
                        bin.path().display(),
                        lesson.name
                    );
                }
            }
        }
    }
    assert!(demos >= 2, "breakout and no-fork at least");
}

//! The one parser of step files. A step file reads as a table of contents: `container()`
//! lists the lessons, and each lesson is a top-level function of the same file. A lesson
//! carried from step N-1 into step N is a byte-identical copy, unless step N marks it:
//!
//! - `// Changed in this step: WHY` on the line above a carried function's doc comment;
//! - `// Replaces NAME() of step NN: WHY` above the new function that takes NAME's place.
//!
//! Those marks belong to the step that makes the change; the next step carries the function
//! without them. `tests/lessons.rs` holds the steps to these rules; `bento-coach` uses the
//! same parser to find the lessons a learner writes.

use anyhow::{Result, bail};

/// The mark of a carried lesson that this step changes.
pub const CHANGED: &str = "// Changed in this step:";
/// The mark of a new lesson that takes the place of an old one.
pub const REPLACES: &str = "// Replaces ";

/// A top-level function of a step file: its name and its text, from the comments above it
/// to its closing brace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub text: String,
}

impl Function {
    /// The text without this step's marks (what the next step must carry).
    pub fn carried(&self) -> String {
        self.text
            .lines()
            .filter(|line| !line.starts_with(CHANGED) && !line.starts_with(REPLACES))
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// Is it marked `// Changed in this step:`?
    pub fn changed_here(&self) -> bool {
        self.text.lines().any(|line| line.starts_with(CHANGED))
    }

    /// The function this one replaces, if it says so.
    pub fn replaces(&self) -> Option<String> {
        let line = self.text.lines().find(|line| line.starts_with(REPLACES))?;
        let name = line.strip_prefix(REPLACES)?.split("()").next()?;
        Some(name.to_string())
    }

    /// Its length in lines, from `fn` to the closing brace (comments above not counted).
    pub fn lines(&self) -> usize {
        let body = self.text.find("\nfn ").map_or(0, |start| start + 1);
        self.text[body..].lines().count()
    }

    /// Is it the program's frame rather than a lesson (`main`, and `container`, the table of
    /// contents)?
    pub fn is_frame(&self) -> bool {
        self.name == "main" || self.name == "container"
    }
}

/// The top-level functions of a Rust file, in order. Functions start at column 0 with
/// `fn` and end at the first line that is exactly `}`; the comment lines right above them
/// belong to them.
pub fn functions(source: &str) -> Result<Vec<Function>> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let Some(signature) = lines[index].strip_prefix("fn ") else {
            index += 1;
            continue;
        };
        let name = signature
            .split(['(', '<'])
            .next()
            .unwrap_or_default()
            .to_string();
        let mut start = index;
        while start > 0
            && lines[start - 1].starts_with("//")
            && !lines[start - 1].starts_with("//!")
        {
            start -= 1;
        }
        let Some(end) = (index..lines.len()).find(|&end| lines[end] == "}") else {
            bail!("fn {name} has no closing brace at column 0");
        };
        let text = lines[start..=end]
            .iter()
            .map(|line| format!("{line}\n"))
            .collect();
        out.push(Function { name, text });
        index = end + 1;
    }
    Ok(out)
}

/// The lessons a learner writes in step `next`, which follows `previous`: the functions that
/// `previous` does not have, and those that this step marks as changed or replacing.
pub fn new_lessons<'a>(previous: &[Function], next: &'a [Function]) -> Vec<&'a Function> {
    next.iter()
        .filter(|f| !f.is_frame())
        .filter(|f| {
            !previous.iter().any(|old| old.name == f.name)
                || f.changed_here()
                || f.replaces().is_some()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "//! doc\nuse x;\n\nfn main() {\n    run()\n}\n\n/// A lesson.\n\
                        fn lesson(a: u8) -> u8 {\n    // Twice.\n    a * 2\n}\n";

    #[test]
    fn functions_keep_their_comments() {
        let found = functions(FILE).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].name, "lesson");
        assert!(found[1].text.starts_with("/// A lesson.\nfn lesson"));
        assert_eq!(found[1].lines(), 4);
    }

    #[test]
    fn new_lessons_are_the_unknown_and_the_marked() {
        let old = functions(FILE).unwrap();
        let marked = FILE.replace(
            "/// A lesson.",
            "// Changed in this step: why\n/// A lesson.",
        );
        let next = functions(&marked).unwrap();
        assert!(new_lessons(&old, &old).is_empty());
        assert_eq!(new_lessons(&old, &next)[0].name, "lesson");
        assert_eq!(new_lessons(&[], &old).len(), 1, "main is not a lesson");
    }
}

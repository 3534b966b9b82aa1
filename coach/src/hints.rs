//! A step's `HINTS.md`: progressive hints (`## Hint 1`, `## Hint 2`, ...), and the typical
//! wrong answers that `just check` recognises, one list item each:
//! ``- `what your step did, or printed`: what it means and what to change``. What it did is
//! one of the findings of [`crate::trace`], as `just check` prints them (`never X`,
//! `X failed: EPERM`, `X before Y`): those do not depend on the learner's own messages.
//! Hints live next to the step they are about, so a step added later brings its own.

use std::path::Path;

use anyhow::{Context, Result};
use plumbing::Hint;

/// The hints of one step.
#[derive(Debug, Default)]
pub struct Hints {
    pub hints: Vec<String>,
    /// `(what the step prints, what it means)`
    pub wrong_answers: Vec<(String, String)>,
}

const WRONG: &str = "## Typical wrong answers";

/// Reads `HINTS.md` of the step in `dir`.
pub fn read(dir: &Path) -> Result<Hints> {
    let path = dir.join("HINTS.md");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))
        .hint("every step has a HINTS.md next to its README")?;
    Ok(parse(&text))
}

/// Parses the text of a HINTS.md.
pub fn parse(text: &str) -> Hints {
    let mut hints = Hints::default();
    let mut section = "";
    for line in text.lines() {
        if line.starts_with("## ") {
            section = line;
            if line.starts_with("## Hint ") {
                hints.hints.push(String::new());
            }
            continue;
        }
        if section.starts_with("## Hint ") {
            if let Some(hint) = hints.hints.last_mut() {
                hint.push_str(line);
                hint.push('\n');
            }
        } else if section == WRONG {
            if let Some(item) = line.strip_prefix("- `")
                && let Some((pattern, meaning)) = item.split_once('`')
            {
                let meaning = meaning.trim_start_matches(':').trim();
                hints
                    .wrong_answers
                    .push((pattern.to_string(), meaning.to_string()));
            } else if let Some(more) = line.strip_prefix("  ")
                && let Some((_, meaning)) = hints.wrong_answers.last_mut()
            {
                meaning.push(' ');
                meaning.push_str(more.trim());
            }
        }
    }
    for hint in &mut hints.hints {
        *hint = hint.trim().to_string();
    }
    hints
}

#[cfg(test)]
mod tests {
    #[test]
    fn hints_and_wrong_answers() {
        let hints = super::parse(
            "# Hints\n\nintro\n\n## Hint 1\n\nFirst.\n\n## Hint 2\n\nSecond,\nlonger.\n\n\
             ## Typical wrong answers\n\n- `gid_map: EPERM`: setgroups first,\n  then gid_map.\n",
        );
        assert_eq!(hints.hints, ["First.", "Second,\nlonger."]);
        assert_eq!(
            hints.wrong_answers,
            [(
                "gid_map: EPERM".into(),
                "setgroups first, then gid_map.".into()
            )]
        );
    }
}

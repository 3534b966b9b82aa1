//! `just exercise N`: a learner's copy of step N, with the new lessons left to write.
//!
//! Everything is generated from the step's own files, so an exercise can never drift from
//! its solution: the new lessons keep their doc comments and signatures, and their bodies
//! become numbered TODOs (the comments of the real body, in order), the calls the body
//! makes, the man pages that say how, and a `todo!()`. Everything carried from earlier
//! steps stays written out, and `container()`, the table of contents, too: it says where
//! each lesson runs.

use std::fmt::Write as _;

use anyhow::{Context, Result};

use crate::lessons::{self, Function};

/// The exercise for step `source`, which follows step `previous` (None for step 00).
pub fn main_rs(step: &str, source: &str, previous: Option<&str>) -> Result<String> {
    let next = lessons::functions(source).with_context(|| format!("cannot read {step}"))?;
    let previous = match previous {
        Some(previous) => lessons::functions(previous)?,
        None => Vec::new(),
    };
    let new: Vec<&Function> = lessons::new_lessons(&previous, &next);
    let imports = imported_names(source);
    let mut out = String::new();
    let mut rest = source;
    let mut header_done = false;
    for lesson in &new {
        let Some(at) = rest.find(&lesson.text) else {
            anyhow::bail!("{step}: cannot find {}() again", lesson.name);
        };
        let (before, after) = rest.split_at(at);
        if !header_done {
            out.push_str(&with_allow_unused(before, step));
            header_done = true;
        } else {
            out.push_str(before);
        }
        out.push_str(&to_write(lesson, step, &imports));
        rest = &after[lesson.text.len()..];
    }
    if !header_done {
        out.push_str(&with_allow_unused("", step));
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of the lessons to write in step `source` after `previous`.
pub fn lessons_to_write(source: &str, previous: Option<&str>) -> Result<Vec<String>> {
    let next = lessons::functions(source)?;
    let previous = match previous {
        Some(previous) => lessons::functions(previous)?,
        None => Vec::new(),
    };
    Ok(lessons::new_lessons(&previous, &next)
        .into_iter()
        .map(|f| f.name.clone())
        .collect())
}

/// The file's opening: its `//!` doc, then the allow attribute and why it is there.
fn with_allow_unused(head: &str, step: &str) -> String {
    let doc_end: usize = head
        .lines()
        .take_while(|line| line.starts_with("//!"))
        .map(|line| line.len() + 1)
        .sum();
    let (doc, rest) = head.split_at(doc_end.min(head.len()));
    format!(
        "{doc}\n// Your copy of {step}, made by `just exercise`. Until every todo!() below is \
         written,\n// imports and arguments go unused: this line keeps those warnings from \
         burying\n// the errors that matter. `just check` says when the step works.\n\
         #![allow(unused)]\n{rest}"
    )
}

/// A lesson with its body replaced by what to do.
fn to_write(lesson: &Function, step: &str, imports: &[String]) -> String {
    let lines: Vec<&str> = lesson.text.lines().collect();
    let fn_line = lines
        .iter()
        .position(|line| line.starts_with("fn "))
        .unwrap_or_default();
    let open = (fn_line..lines.len())
        .find(|&i| lines[i].ends_with('{'))
        .unwrap_or(fn_line);
    let head = &lines[..=open];
    let body = &lines[open + 1..lines.len().saturating_sub(1)];
    let mut out: String = head.iter().map(|line| format!("{line}\n")).collect();
    for (number, todo) in todos(body).iter().enumerate() {
        let mut todo_lines = todo.lines();
        let first = todo_lines.next().unwrap_or_default();
        let _ = writeln!(out, "    // TODO {}: {first}", number + 1);
        for line in todo_lines {
            let _ = writeln!(out, "    //         {line}");
        }
    }
    let calls = calls(body, imports);
    if !calls.is_empty() {
        let _ = writeln!(out, "    // Calls it makes: {}.", calls.join(", "));
    }
    let pages = man_pages(&lesson.text);
    if !pages.is_empty() {
        let _ = writeln!(out, "    // How: {}.", pages.join(", "));
    }
    let _ = writeln!(
        out,
        "    todo!(\"{step}: write {}() (its TODOs say what; `just hint` helps)\")",
        lesson.name
    );
    out.push_str("}\n");
    out
}

/// The comments of the real body, each block one TODO; a body without comments gets one
/// TODO that points at the doc comment.
fn todos(body: &[&str]) -> Vec<String> {
    let mut todos: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in body {
        match line.trim_start().strip_prefix("//") {
            Some(comment) => {
                let comment = comment.trim();
                match &mut current {
                    Some(todo) => {
                        todo.push('\n');
                        todo.push_str(comment);
                    }
                    None => current = Some(comment.to_string()),
                }
            }
            None => todos.extend(current.take()),
        }
    }
    todos.extend(current);
    if todos.is_empty() {
        todos.push("do what the comment above the function says.".into());
    }
    todos
}

/// The names brought in by `use` lines (`unshare`, `fs`, `MsFlags`, ...) and the crates the
/// steps call by path.
fn imported_names(source: &str) -> Vec<String> {
    let mut names: Vec<String> = ["plumbing", "procinfo", "fs", "libc"]
        .map(String::from)
        .to_vec();
    for line in source.lines().filter(|line| line.starts_with("use ")) {
        let line = line.trim_end_matches(';');
        let list = match line.split_once('{') {
            Some((_, list)) => list.trim_end_matches('}').to_string(),
            None => line.rsplit("::").next().unwrap_or_default().to_string(),
        };
        names.extend(
            list.split(',')
                .map(|name| {
                    name.trim()
                        .rsplit(' ')
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
                .filter(|name| !name.is_empty()),
        );
    }
    names
}

/// The functions the body calls by an imported name, in order, once each: `unshare`,
/// `fs::write`, `plumbing::catch_signals`. Methods and macros are left to the TODOs.
fn calls(body: &[&str], imports: &[String]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in body
        .iter()
        .filter(|line| !line.trim_start().starts_with("//"))
    {
        let chars: Vec<char> = line.chars().collect();
        for (at, _) in chars.iter().enumerate().filter(|(_, c)| **c == '(') {
            let mut start = at;
            while start > 0
                && (chars[start - 1].is_alphanumeric() || "_:".contains(chars[start - 1]))
            {
                start -= 1;
            }
            if start > 0 && ".!".contains(chars[start - 1]) {
                continue;
            }
            let path: String = chars[start..at].iter().collect();
            let first = path.split("::").next().unwrap_or_default();
            if !path.is_empty()
                && imports.iter().any(|name| name == first)
                && first.chars().next().is_some_and(char::is_lowercase)
                && !found.contains(&path)
            {
                found.push(path);
            }
        }
    }
    found
}

/// The man pages a text cites, `unshare(2)` style, as `man 2 unshare`, once each.
fn man_pages(text: &str) -> Vec<String> {
    let mut pages: Vec<String> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    for at in 0..chars.len().saturating_sub(2) {
        if chars[at] == '(' && chars[at + 1].is_ascii_digit() && chars[at + 2] == ')' {
            let mut start = at;
            while start > 0 && (chars[start - 1].is_ascii_alphanumeric() || chars[start - 1] == '_')
            {
                start -= 1;
            }
            if start < at {
                let name: String = chars[start..at].iter().collect();
                let page = format!("man {} {name}", chars[at + 1]);
                if !pages.contains(&page) {
                    pages.push(page);
                }
            }
        }
    }
    pages
}

/// The learner crate's Cargo.toml: the step's package and dependencies, with what the
/// workspace provides written out, since the crate is deliberately *not* a member of the
/// workspace (a learner's broken code must never break `cargo build --workspace`).
/// `to_workspace` is the path from the crate to the workspace's root.
pub fn cargo_toml(
    step_manifest: &str,
    workspace_manifest: &str,
    to_workspace: &str,
) -> Result<String> {
    let field = |name: &str| {
        step_manifest
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} = ")))
            .map(str::to_string)
    };
    let name = field("name").context("the step's Cargo.toml has no package name")?;
    let provided = section(workspace_manifest, "[workspace.dependencies]");
    let mut dependencies = String::new();
    for line in section(step_manifest, "[dependencies]") {
        let (dependency, spec) = line.split_once(" = ").unwrap_or((line, ""));
        let dependency = dependency.trim_end_matches(".workspace");
        let from_workspace =
            line.contains(".workspace = true") || spec.contains("workspace = true");
        if !from_workspace {
            let _ = writeln!(dependencies, "{line}");
            continue;
        }
        let Some(given) = provided
            .iter()
            .find_map(|line| line.strip_prefix(&format!("{dependency} = ")))
        else {
            anyhow::bail!("the workspace does not provide {dependency}");
        };
        let given = given.replace("path = \"", &format!("path = \"{to_workspace}/"));
        let mut fields: Vec<String> = Vec::new();
        match given.strip_prefix('{') {
            Some(table) => fields.push(table.trim_end_matches('}').trim().to_string()),
            None => fields.push(format!("version = {given}")),
        }
        if let Some(extra) = spec
            .strip_prefix('{')
            .map(|table| table.trim_end_matches('}').trim())
        {
            fields.extend(
                extra
                    .split_once("workspace = true")
                    .map(|(a, b)| format!("{a}{b}"))
                    .map(|rest| rest.trim_matches([',', ' ']).to_string())
                    .filter(|rest| !rest.is_empty()),
            );
        }
        let _ = writeln!(dependencies, "{dependency} = {{ {} }}", fields.join(", "));
    }
    Ok(format!(
        "# Your copy of {name}, made by `just exercise`. Not a member of the workshop's\n\
         # workspace (the empty [workspace] below says so): your work in progress never\n\
         # breaks `cargo build --workspace` or `just test`.\n\
         [package]\nname = {name}\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\n{dependencies}\n[workspace]\n"
    ))
}

/// The lines of a TOML section, up to the next section.
fn section<'a>(manifest: &'a str, header: &str) -> Vec<&'a str> {
    manifest
        .lines()
        .skip_while(|line| line.trim() != header)
        .skip(1)
        .take_while(|line| !line.starts_with('['))
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_and_calls_are_found() {
        assert_eq!(
            man_pages("unshare(2) and user_namespaces(7), again unshare(2)"),
            ["man 2 unshare", "man 7 user_namespaces"]
        );
        let imports = imported_names("use nix::sched::{CloneFlags, unshare};\nuse std::fs;\n");
        assert_eq!(
            calls(
                &[
                    "    unshare(x).context(\"a\")?;",
                    "    fs::write(a, format!(\"b\"))?;"
                ],
                &imports
            ),
            ["unshare", "fs::write"]
        );
    }

    #[test]
    fn the_manifest_spells_out_the_workspace() {
        let workspace = "[workspace.dependencies]\nanyhow = \"1\"\nnix = { version = \"0.31\", \
                         default-features = false }\nplumbing = { path = \"plumbing\" }\n";
        let step = "[package]\nname = \"step-02-userns\"\n\n[dependencies]\nanyhow.workspace = \
                    true\nnix = { workspace = true, features = [\"user\"] }\nplumbing.workspace \
                    = true\n";
        let manifest = cargo_toml(step, workspace, "../..").unwrap();
        assert!(manifest.contains("name = \"step-02-userns\""), "{manifest}");
        assert!(
            manifest.contains("anyhow = { version = \"1\" }"),
            "{manifest}"
        );
        assert!(
            manifest.contains(
                "nix = { version = \"0.31\", default-features = false, features = [\"user\"] }"
            ),
            "{manifest}"
        );
        assert!(manifest.contains("plumbing = { path = \"../../plumbing\" }"));
        assert!(manifest.ends_with("[workspace]\n"));
    }
}

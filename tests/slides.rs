//! The slides cannot lie: every code excerpt is the code it claims to be, every snippet runs
//! (and step 01's fails, as the talk says), and every slide fits 100×30, checked with the
//! real presenterm.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{have, workspace};

fn deck_path() -> PathBuf {
    workspace().join("slides/bento.md")
}

fn deck() -> String {
    std::fs::read_to_string(deck_path()).expect("slides/bento.md")
}

/// A fenced block of the deck: its info string, body, and the line it starts on.
struct Block {
    info: String,
    body: String,
    line: usize,
}

fn blocks(deck: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = deck.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for (_, line) in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        blocks.push(Block {
            info: info.to_string(),
            body,
            line: number + 1,
        });
    }
    blocks
}

/// The value of `key: value` in a file snippet's body.
fn field<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// `# shows: "first" .. "last"`: the text the first and the last line shown contain.
fn shows(body: &str) -> Option<(String, String)> {
    let spec = field(body, "# shows")?;
    let (first, last) = spec.split_once(" .. ")?;
    let unquote = |s: &str| {
        s.trim()
            .strip_prefix('"')?
            .strip_suffix('"')
            .map(|s| s.replace("\\\"", "\""))
    };
    Some((unquote(first)?, unquote(last)?))
}

#[test]
fn file_snippets_show_the_code_they_claim() {
    let deck = deck();
    let mut files = 0;
    for block in blocks(&deck).iter().filter(|b| b.info.starts_with("file")) {
        files += 1;
        let at = format!("slides/bento.md:{}", block.line);
        let path = field(&block.body, "path").unwrap_or_else(|| panic!("{at}: no path"));
        let source = workspace().join("slides").join(path);
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("{at}: cannot read {}: {e}", source.display()));
        let (first, last) = shows(&block.body).unwrap_or_else(|| {
            panic!("{at}: say what the excerpt shows: # shows: \"first line\" .. \"last line\"")
        });
        let lines: Vec<&str> = text.lines().collect();
        let start = lines
            .iter()
            .position(|line| line.contains(&first))
            .unwrap_or_else(|| panic!("{at}: {path} no longer contains {first:?}"))
            + 1;
        let end = lines[start - 1..]
            .iter()
            .position(|line| line.contains(&last))
            .unwrap_or_else(|| panic!("{at}: {path} has no {last:?} after {first:?}"))
            + start;
        let declared = |key| {
            field(&block.body, key)
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("{at}: no {key}"))
        };
        assert_eq!(
            (declared("start_line"), declared("end_line")),
            (start, end),
            "{at}: the code moved; show it with start_line: {start} and end_line: {end}"
        );
    }
    assert!(files >= 6, "every step shows its code");
}

#[test]
fn every_step_has_its_code_and_a_live_run() {
    let deck = deck();
    let blocks = blocks(&deck);
    let steps = std::fs::read_dir(workspace().join("steps"))
        .unwrap()
        .count();
    for n in 0..steps {
        let dir = std::fs::read_dir(workspace().join("steps"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|name| name.starts_with(&format!("{n:02}-")))
            .expect("a step directory");
        assert!(
            blocks.iter().any(|b| b.info.starts_with("file")
                && b.body.contains(&format!("../steps/{dir}/src/main.rs"))),
            "no slide shows the code of step {dir}"
        );
        assert!(
            blocks.iter().any(|b| b.info == "bash +exec"
                && (b.body.starts_with(&format!("just step {n} "))
                    || b.body.starts_with(&format!("just breakout {n}")))),
            "no slide runs step {n}"
        );
    }
}

/// One page of an HTML export: presenterm draws every slide as a grid of text rows.
fn pages(html: &str) -> Vec<Vec<String>> {
    let body = &html[html.find("<body").expect("an HTML export")..];
    body.split("<div class=\"container\">")
        .skip(1)
        .map(|page| {
            page.split("<div class=\"content-line\">")
                .skip(1)
                .map(|row| {
                    let row = row.split("</div>").next().unwrap_or_default();
                    text_of(row).trim_end().to_string()
                })
                .collect()
        })
        .collect()
}

/// The text of an HTML fragment: tags removed, entities decoded.
fn text_of(fragment: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in fragment.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

#[test]
fn the_handout_runs_every_snippet_and_every_slide_fits() {
    if !have("presenterm", "cargo install --locked presenterm") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let html_path = out.path().join("handout.html");
    // A rootfs of our own: `just handout` may run the snippets in a user namespace as uid
    // 1000 (when we are root), and `just breakout` copies its probe into the rootfs.
    let rootfs = out.path().join("rootfs");
    common::build_rootfs(&rootfs);
    // `just handout` builds the steps, then exports with every snippet run for real (as a
    // learner: uid 1000 in a user namespace when we are root).
    let output = Command::new("just")
        .arg("handout")
        .arg(&html_path)
        .current_dir(workspace())
        .env("BENTO_ROOTFS", &rootfs)
        // The deck ends with bento: its images and containers go to a home of the test's own.
        .env("BENTO_HOME", out.path().join("bento"))
        .output()
        .expect("run just handout");
    assert!(
        output.status.success(),
        "just handout failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let html = std::fs::read_to_string(&html_path).expect("just handout wrote the HTML");
    let pages = pages(&html);

    // Every +exec snippet ran, in order; only the ones marked "expected to fail" failed.
    let snippets: Vec<Block> = blocks(&deck())
        .into_iter()
        .filter(|b| b.info.contains("+exec"))
        .collect();
    let mut results = Vec::new();
    for (number, page) in pages.iter().enumerate() {
        for row in page {
            for (marker, failed) in [("[finished with error]", true), ("[finished]", false)] {
                if row.contains(marker) {
                    results.push((number, failed));
                    break;
                }
            }
        }
    }
    assert_eq!(
        results.len(),
        snippets.len(),
        "every snippet must have run and finished"
    );
    for (snippet, (page, failed)) in snippets.iter().zip(&results) {
        let expected_failure = snippet.body.contains("expected to fail");
        assert_eq!(
            *failed,
            expected_failure,
            "slides/bento.md:{}: `{}` {} on slide {}:\n{}",
            snippet.line,
            snippet.body.trim(),
            if *failed { "failed" } else { "succeeded" },
            page + 1,
            pages[*page].join("\n")
        );
    }

    the_pdf_has_every_page_of_the_html(&html_path.with_extension("pdf"), &pages);

    // Every slide fits: the last two rows hold nothing but the footer ("12 / 27").
    for (number, page) in pages.iter().enumerate() {
        assert_eq!(page.len(), 30, "exported at 100x30");
        for row in &page[28..] {
            assert!(
                without_footer(row).trim().is_empty(),
                "slide {} overflows 100x30 (with the snippets' output):\n{}",
                number + 1,
                page.join("\n")
            );
        }
    }
}

/// `just handout` writes a PDF beside the HTML when weasyprint is installed: one page per
/// slide, each with every row of text the HTML page has, snippet output included.
fn the_pdf_has_every_page_of_the_html(pdf: &Path, pages: &[Vec<String>]) {
    if !have("weasyprint", "pip install weasyprint")
        || !have("pdftotext", "sudo apt install poppler-utils")
    {
        return;
    }
    // The PDF is made from the HTML (the snippets ran once): the same words, laid out anew.
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    for (number, page) in pages.iter().enumerate() {
        let page_number = (number + 1).to_string();
        let output = Command::new("pdftotext")
            .args(["-layout", "-f", &page_number, "-l", &page_number])
            .arg(pdf)
            .arg("-")
            .output()
            .expect("run pdftotext");
        assert!(
            output.status.success(),
            "{} has no page {page_number}",
            pdf.display()
        );
        let text = words(&String::from_utf8_lossy(&output.stdout));
        for row in page
            .iter()
            .map(|row| words(row))
            .filter(|row| !row.is_empty())
        {
            assert!(
                text.contains(&row),
                "page {page_number} of the PDF lacks {row:?}; it has:\n{text}"
            );
        }
    }
    let info = Command::new("pdfinfo")
        .arg(pdf)
        .output()
        .expect("run pdfinfo");
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>()
                == ["Pages:", pages.len().to_string().as_str()]),
        "one page per slide ({}):\n{info}",
        pages.len()
    );
}

#[test]
fn presenterm_validates_the_deck_at_100x30() {
    if !have("presenterm", "cargo install --locked presenterm")
        || !have("tmux", "sudo apt install tmux")
    {
        return;
    }
    // --validate-overflows needs a real terminal of the right size: a detached tmux
    // session on a private socket gives presenterm one.
    let socket = format!("bento-slides-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-L")
            .arg(&socket)
            .args(args)
            .output()
            .expect("run tmux")
    };
    let config = workspace().join("slides/config.yaml");
    let command = format!(
        "presenterm --config-file {} --validate-overflows {}; sleep 30",
        shell_path(&config),
        shell_path(&deck_path())
    );
    let started = tmux(&["new-session", "-d", "-x", "100", "-y", "30", &command]);
    assert!(started.status.success(), "tmux: {started:?}");
    let start = Instant::now();
    let screen = loop {
        let screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
        if screen.contains("Error") || screen.contains("one namespace at a time") {
            break screen;
        }
        if start.elapsed() > Duration::from_secs(20) {
            break screen;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    tmux(&["kill-server"]);
    assert!(
        screen.contains("one namespace at a time") && !screen.contains("Error"),
        "presenterm refuses the deck at 100x30:\n{}",
        screen.trim()
    );
}

/// A row without the footer's "12 / 27" at its end.
fn without_footer(row: &str) -> &str {
    let row = row.trim_end();
    let number =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    let mut parts = row.rsplitn(4, ' ');
    let (total, slash, current, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
    if number(total) && slash == Some("/") && number(current) {
        rest.unwrap_or_default()
    } else {
        row
    }
}

fn shell_path(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

//! The documentation cannot drift from the code: every step README quotes the snapshot of
//! what the step really prints.

mod common;

use std::path::Path;

use common::workspace;

/// The body of a snapshot file, without insta's header.
fn snapshot_body(name: &str) -> String {
    let path = workspace().join(format!("tests/snapshots/{name}.snap"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let body = text
        .splitn(3, "---\n")
        .nth(2)
        .unwrap_or_else(|| panic!("{} has no insta header", path.display()));
    body.trim_end().to_string()
}

/// `(snapshot name, quoted block)` for every `<!-- snapshot: NAME -->` in a README.
fn quoted_snapshots(readme: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(readme).unwrap();
    let mut quotes = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("<!-- snapshot: ") {
        rest = &rest[start + "<!-- snapshot: ".len()..];
        let (name, after) = rest.split_once(" -->\n").expect("a closed marker");
        let block = after.strip_prefix("```text\n").unwrap_or_else(|| {
            panic!(
                "{}: a ```text block must follow the marker of {name}",
                readme.display()
            )
        });
        let (quoted, after) = block.split_once("\n```").expect("a closed code block");
        quotes.push((name.to_string(), quoted.to_string()));
        rest = after;
    }
    quotes
}

#[test]
fn readmes_quote_the_snapshots() {
    let mut steps: Vec<_> = std::fs::read_dir(workspace().join("steps"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    steps.sort();
    assert!(steps.len() >= 6, "steps 00-05 at least");
    for step in steps {
        let readme = step.join("README.md");
        let quotes = quoted_snapshots(&readme);
        assert!(
            !quotes.is_empty(),
            "{} must show the expected output, quoting a snapshot",
            readme.display()
        );
        for (name, quoted) in quotes {
            let expected = snapshot_body(&name);
            assert!(
                quoted == expected,
                "{} quotes an outdated {name}; replace its block with:\n```text\n{expected}\n```",
                readme.display()
            );
        }
    }
}

#[test]
fn step_11s_readme_shows_the_same_filter_as_an_oci_profile() {
    let step = workspace().join("steps/11-least-privilege");
    let source = std::fs::read_to_string(step.join("src/main.rs")).unwrap();
    let readme = std::fs::read_to_string(step.join("README.md")).unwrap();
    // The calls refused_syscalls() lists, by their libc names.
    let list = source
        .split("\nfn refused_syscalls()")
        .nth(1)
        .and_then(|rest| rest.split("\n}\n").next())
        .expect("main.rs has refused_syscalls()");
    let refused: Vec<&str> = list
        .split("libc::SYS_")
        .skip(1)
        .filter_map(|after| after.split(',').next())
        .collect();
    assert!(refused.len() >= 20, "{refused:?}");
    let json = readme
        .split("<!-- oci-seccomp -->\n```json\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the README shows the profile after <!-- oci-seccomp -->");
    let profile: serde_json::Value = serde_json::from_str(json).expect("the profile is JSON");
    let rules = profile["syscalls"].as_array().expect("a syscalls list");
    let names = |rule: &serde_json::Value| -> Vec<String> {
        rule["names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| name.as_str().map(String::from))
            .collect()
    };
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ALLOW");
    assert_eq!(
        names(&rules[0]),
        refused,
        "the EPERM list, in the same order"
    );
    assert_eq!(
        (&rules[0]["action"], &rules[0]["errnoRet"]),
        (&"SCMP_ACT_ERRNO".into(), &1.into())
    );
    assert_eq!(names(&rules[1]), ["clone3"]);
    assert_eq!(rules[1]["errnoRet"], 38, "ENOSYS");
    assert_eq!(names(&rules[2]), ["clone", "unshare"]);
    assert_eq!(rules[2]["args"][0]["value"], 0x1000_0000, "CLONE_NEWUSER");
    assert_eq!(rules.len(), 3);
    // Bento's own containers get this very profile.
    let bento =
        std::fs::read_to_string(workspace().join("bento/src/default-seccomp.json")).unwrap();
    let bento: serde_json::Value = serde_json::from_str(&bento).unwrap();
    assert_eq!(
        profile, bento,
        "bento/src/default-seccomp.json is step 11's profile"
    );
}

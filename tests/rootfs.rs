//! rootfs-fetch: builds a working root filesystem, idempotently and atomically.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{built, names};

fn fetch(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut command = Command::new(built("rootfs-fetch"));
    for arg in args {
        command.arg(arg);
    }
    command.output().expect("run rootfs-fetch")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn busybox_source_builds_a_rootfs_and_rebuilding_is_idempotent() {
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("rootfs");
    let output = fetch(&[&"busybox:", &target]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("made from the host's static busybox"));
    assert_eq!(
        names(&target),
        [
            ".bento-rootfs",
            "bin",
            "dev",
            "etc",
            "home",
            "proc",
            "root",
            "sys",
            "tmp",
            "var"
        ]
    );
    let mark = std::fs::read_to_string(target.join(".bento-rootfs")).unwrap();
    assert!(mark.contains("the host's static busybox"), "{mark}");
    let sh = std::fs::read_link(target.join("bin/sh")).unwrap();
    assert_eq!(sh, Path::new("busybox"));
    let first = names(&target.join("bin"));

    // Again, over the existing rootfs: same result, and nothing left beside it.
    std::fs::write(target.join("tmp/leftover"), "from the first run").unwrap();
    let output = fetch(&[&"busybox:", &target]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(names(&target.join("bin")), first);
    assert!(!target.join("tmp/leftover").exists(), "a fresh tree");
    assert_eq!(names(work.path()), ["rootfs"], "no partial directory left");
}

#[test]
fn a_directory_that_is_not_a_rootfs_is_not_replaced_without_force() {
    let work = tempfile::tempdir().unwrap();
    let precious = work.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.txt"), "years of work").unwrap();

    let output = fetch(&[&"busybox:", &precious]);
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains("was not made by rootfs-fetch"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("--force"));
    assert_eq!(names(&precious), ["thesis.txt"]);
    assert_eq!(
        names(work.path()),
        ["precious"],
        "no partial directory left"
    );

    let output = fetch(&[&"busybox:", &precious, &"--force"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(precious.join("bin/busybox").exists());
}

#[test]
fn a_dynamic_busybox_or_a_bad_source_is_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("rootfs");
    // /bin/ls is dynamically linked on every distribution this runs on.
    let output = fetch(&[&"busybox:/bin/ls", &target]);
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains("is dynamically linked"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("busybox-static"));

    let output = fetch(&[&"ftp://example.com/busybox", &target]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unknown transport \"ftp\""),
        "{}",
        stderr(&output)
    );
    assert!(names(work.path()).is_empty(), "nothing written");
}

#[test]
fn stale_partial_directories_of_dead_runs_are_removed() {
    let work = tempfile::tempdir().unwrap();
    // pid 2^22 + 1 is above the kernel's pid_max limit: that run cannot be alive.
    let stale = work.path().join(".rootfs.partial-4194305");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("half-written"), "").unwrap();
    let output = fetch(&[&"busybox:", &work.path().join("rootfs")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(names(work.path()), ["rootfs"]);
}

//! `bento cp`: files and directories between the host and a container, created, running
//! or stopped, by podman cp's rules for the destination; rootless as nobody (when the
//! suite runs as root), and, as root, against a hostile container whose symlinks try to
//! lead the copy to the host's /etc, in both directions.

mod boxes;
mod common;
mod fixtures;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use boxes::{Boxes, USAGE, image};
use common::{NOBODY, can_run_as_real_root, eventually, running_as_root};

/// The test's files on the host: `site/` (index.html 0640, run.sh 4755, sub/deep, and a
/// symlink `link -> /etc/passwd`), and a file `note`; owned by the user bento runs as.
fn host_files(boxes: &Boxes, owner: Option<u32>) -> std::path::PathBuf {
    let dir = boxes.dir();
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("sub")).unwrap();
    std::fs::write(site.join("index.html"), "index\n").unwrap();
    std::fs::set_permissions(site.join("index.html"), PermissionsExt::from_mode(0o640)).unwrap();
    std::fs::write(site.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(site.join("run.sh"), PermissionsExt::from_mode(0o4755)).unwrap();
    std::fs::write(site.join("sub/deep"), "deep\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", site.join("link")).unwrap();
    std::fs::write(dir.join("note"), "a note\n").unwrap();
    let owner = owner.or(running_as_root().then_some(NOBODY));
    if let Some(owner) = owner {
        for path in [
            "site",
            "site/sub",
            "site/index.html",
            "site/run.sh",
            "site/sub/deep",
            "note",
        ] {
            std::os::unix::fs::chown(dir.join(path), Some(owner), Some(owner)).unwrap();
        }
        std::os::unix::fs::lchown(site.join("link"), Some(owner), Some(owner)).unwrap();
    }
    dir
}

/// `sh -c SCRIPT` in the running container `name`: its stdout.
fn inside(boxes: &Boxes, name: &str, script: &str) -> String {
    boxes.ok(&["exec", name, "sh", "-c", script])
}

#[test]
fn cp_copies_into_and_out_of_a_running_container_by_podmans_rules() {
    let boxes = Boxes::rootless();
    let dir = host_files(&boxes, None);
    boxes.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        image(),
        "sleep",
        "1000",
    ]);
    // A new name: the copy of the directory; an existing directory: it goes in under its
    // own name; `DIR/.`: its contents.
    boxes.ok(&["cp", "site", "box:/www"]);
    boxes.ok(&["cp", "site", "box:/www"]);
    boxes.ok(&["cp", "site/.", "box:/etc"]);
    let listing = "cd /www; for f in index.html run.sh sub/deep link site/sub/deep /etc/run.sh; do \
                   echo $f $(stat -c %a $f) $(cat $f 2>/dev/null); done; readlink link";
    assert_eq!(
        inside(&boxes, "box", listing),
        "index.html 640 index\nrun.sh 755 #!/bin/sh\nsub/deep 644 deep\n\
         link 777 root:x:0:0:root:/root:/bin/sh\n\
         site/sub/deep 644 deep\n/etc/run.sh 755 #!/bin/sh\n/etc/passwd\n",
        "modes kept but set-user-ID; the symlink copied as a symlink (to the container's file)"
    );
    // A file: into a directory, to a new name, over a file (and through a relative path).
    boxes.ok(&["cp", "note", "box:/root"]);
    boxes.ok(&["cp", "./note", "box:/root/renamed"]);
    boxes.ok(&["cp", "note", "box:etc/image-file"]);
    assert_eq!(
        inside(
            &boxes,
            "box",
            "cat /root/note /root/renamed /etc/image-file"
        ),
        "a note\n".repeat(3)
    );
    // Out: a directory, and a file; the copies are the user's.
    boxes.ok(&["cp", "box:/www", "out"]);
    boxes.ok(&["cp", "box:/etc/image-file", "out/from-etc"]);
    let out = dir.join("out");
    assert_eq!(
        std::fs::read_to_string(out.join("sub/deep")).unwrap(),
        "deep\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        std::fs::read_to_string(out.join("from-etc")).unwrap(),
        "a note\n"
    );
    let meta = std::fs::metadata(out.join("index.html")).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid()),
        (0o640, common::step_uid())
    );
    // What podman refuses, refused in one line and a hint.
    let refused = |args: &[&str], text| {
        boxes.run(args).refused(125, text);
    };
    refused(
        &["cp", "note", "box:/no/such/dir"],
        "/no/such (in the container): No such file",
    );
    refused(&["cp", "note", "box:/etc/passwd/"], "not a directory");
    refused(
        &["cp", "site", "box:/etc/passwd"],
        "a directory cannot replace a file",
    );
    refused(
        &["cp", "box:/no-such-file", "x"],
        "No such file or directory",
    );
    refused(
        &["cp", "missing", "box:/tmp"],
        "cannot copy missing: No such file",
    );
    boxes
        .run(&["cp", "note", "other"])
        .refused(USAGE, "between the host and a container");
    boxes
        .run(&["cp", "note", "gone:/tmp"])
        .refused(3, "no container named \"gone\"");
    boxes.ok(&["rm", "-f", "box"]);
}

#[test]
fn cp_into_a_created_container_deploys_before_the_command_starts() {
    let boxes = Boxes::rootless();
    boxes.ok(&[
        "create",
        "--network",
        "none",
        "app",
        image(),
        "sh",
        "/run.sh",
    ]);
    std::fs::write(boxes.dir().join("run.sh"), "echo deployed by bento cp\n").unwrap();
    if running_as_root() {
        std::os::unix::fs::chown(boxes.dir().join("run.sh"), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    boxes.ok(&["cp", "run.sh", "app:/"]);
    boxes.ok(&["start", "app"]);
    eventually("the command ends", || {
        boxes.state("app")["status"] == "stopped"
    });
    assert_eq!(boxes.ok(&["logs", "app"]), "deployed by bento cp\n");
    boxes.ok(&["rm", "app"]);
}

#[test]
fn cp_of_a_stopped_container_sees_its_layer_over_the_image_and_writes_its_layer() {
    let boxes = Boxes::rootless();
    let dir = host_files(&boxes, None);
    // It changes a file of the image, deletes another (a whiteout), and replaces /root
    // with a directory of its own (an opaque directory).
    let script = "echo changed > /etc/image-file; rm /etc/other; rm -rf /root; mkdir /root; \
                  echo mine > /root/only";
    boxes.ok(&[
        "run",
        "--name",
        "done",
        "--network",
        "none",
        image(),
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(boxes.state("done")["status"], "stopped");
    boxes.ok(&["cp", "done:/etc", "etc"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("etc/image-file")).unwrap(),
        "changed\n"
    );
    assert!(
        !dir.join("etc/other").exists(),
        "what it deleted stays deleted"
    );
    assert!(
        dir.join("etc/passwd").exists(),
        "the image's other files are there"
    );
    boxes.ok(&["cp", "done:/root/.", "root"]);
    assert_eq!(common::names(&dir.join("root")), ["only"]);
    // In: over the whiteout, and a new directory.
    boxes.ok(&["cp", "note", "done:/etc/other"]);
    boxes.ok(&["cp", "site", "done:/srv"]);
    boxes.ok(&["cp", "done:/etc/other", "other"]);
    boxes.ok(&["cp", "done:/srv/sub/deep", "deep"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("other")).unwrap(),
        "a note\n"
    );
    assert_eq!(std::fs::read_to_string(dir.join("deep")).unwrap(), "deep\n");
    // Into the container's layer, never the image's; and no mount is left on the host.
    let layer = boxes.dir().join("home/containers/done/upper");
    assert_eq!(
        std::fs::read_to_string(layer.join("etc/other")).unwrap(),
        "a note\n"
    );
    let images = boxes.dir().join("home/images");
    let image_dir = std::fs::read_dir(&images)
        .unwrap()
        .flatten()
        .find(|entry| entry.path().join("rootfs").is_dir())
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read_to_string(image_dir.join("rootfs/etc/other")).unwrap(),
        "another file of the image\n"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&*boxes.dir().to_string_lossy()),
        "{mounts}"
    );
    boxes.ok(&["rm", "done"]);
}

/// A file's contents and times, to tell that it was not touched.
fn fingerprint(path: &str) -> (Vec<u8>, i64, i64) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (std::fs::read(path).unwrap(), meta.mtime(), meta.ctime())
}

#[test]
fn a_hostile_containers_symlinks_never_lead_cp_out_of_its_root() {
    if !can_run_as_real_root() {
        return;
    }
    let boxes = Boxes::as_root();
    let dir = boxes.dir();
    let host = ["/etc/passwd", "/etc/shadow"].map(fingerprint);
    // Its /etc is a symlink to its /, a file is a symlink to /etc/shadow, a directory
    // holds a symlink to /etc; and it owns a file as uid 4321.
    let hostile = "rm -rf /etc; ln -s / /etc; echo the container\\'s > /passwd; \
                   ln -s /etc/shadow /tmp/shadow; ln -s /etc/shadow /tmp/shadow2; mkdir /out; \
                   ln -s /etc /out/etc; echo owned > /out/owned; chown 4321:4321 /out/owned; \
                   touch /ready; exec sleep 1000";
    boxes.ok(&[
        "run",
        "-d",
        "--name",
        "evil",
        "--network",
        "none",
        image(),
        "sh",
        "-c",
        hostile,
    ]);
    eventually("the container is ready", || {
        boxes
            .run(&["exec", "evil", "test", "-e", "/ready"])
            .status_is(0)
    });
    std::fs::write(dir.join("payload"), "payload\n").unwrap();
    std::os::unix::fs::chown(dir.join("payload"), Some(1234), Some(1234)).unwrap();
    let rounds = [
        ("running", "/tmp/shadow", "/etc/passwd", "the container's\n"),
        ("stopped", "/tmp/shadow2", "/etc/shadow", "payload\n"),
    ];
    for (status, link, target, passwd) in rounds {
        if status == "stopped" {
            boxes.ok(&["kill", "evil"]);
        }
        assert_eq!(boxes.state("evil")["status"], status);
        let out = dir.join(status);
        std::fs::create_dir(&out).unwrap();
        let to = |name: &str| out.join(name).to_string_lossy().into_owned();
        // Out: its /etc/passwd is its /passwd; its symlinks stay symlinks.
        boxes.ok(&["cp", "evil:/etc/passwd", &to("passwd")]);
        boxes.ok(&["cp", &format!("evil:{link}"), &to("shadow")]);
        boxes.ok(&["cp", "evil:/out", &to("tree")]);
        assert_eq!(std::fs::read_to_string(out.join("passwd")).unwrap(), passwd);
        assert_eq!(
            std::fs::read_link(out.join("shadow")).unwrap(),
            Path::new("/etc/shadow")
        );
        assert_eq!(
            std::fs::read_link(out.join("tree/etc")).unwrap(),
            Path::new("/etc")
        );
        let owned = std::fs::metadata(out.join("tree/owned")).unwrap();
        assert_eq!(
            (owned.uid(), owned.gid()),
            (4321, 4321),
            "as root, owners are kept"
        );
        // In: through its /etc (to its /), over its symlink to /etc/shadow.
        boxes.ok(&["cp", "payload", &format!("evil:{target}")]);
        boxes.ok(&["cp", "payload", &format!("evil:{link}")]);
        boxes.ok(&["cp", "payload", "evil:/out/etc/"]);
        let host_now = ["/etc/passwd", "/etc/shadow"].map(fingerprint);
        assert_eq!(
            host_now, host,
            "the host's /etc/passwd and /etc/shadow are untouched"
        );
        assert!(!Path::new("/etc/payload").exists());
    }
    // Inside, in its layer: the payload, owned as on the host, where its symlinks led.
    let layer = boxes.dir().join("home/containers/evil/upper");
    for path in ["passwd", "shadow", "payload", "tmp/shadow", "tmp/shadow2"] {
        let meta = std::fs::symlink_metadata(layer.join(path)).unwrap();
        assert!(meta.is_file(), "{path}");
        assert_eq!((meta.uid(), meta.gid()), (1234, 1234), "{path}");
        assert_eq!(
            std::fs::read_to_string(layer.join(path)).unwrap(),
            "payload\n"
        );
    }
    boxes.ok(&["rm", "evil"]);
}

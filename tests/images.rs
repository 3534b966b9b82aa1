//! rootfs-fetch on images from files: `docker save` tarballs (both formats), OCI layouts
//! and their tar form, with whiteouts and opaque directories; and hostile or broken
//! archives, which must be refused without writing anything outside the target.

mod common;
mod fixtures;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::names;
use fixtures::{
    Entry, Layer, Layout, assert_error, assert_ok, busybox_layer, docker_archive, fetch,
    oci_layout, rootfs_fetch, stderr, tar, tar_dir, tree,
};

/// A lower layer with files for the next layers to delete.
fn lower_layer() -> Vec<u8> {
    tar(&[
        Entry::File("etc/motd", b"welcome\n", 0o644),
        Entry::Dir("data/", 0o755),
        Entry::File("data/a", b"a", 0o644),
        Entry::Dir("data/sub/", 0o755),
        Entry::File("data/sub/deep", b"deep", 0o644),
        Entry::Dir("old/", 0o755),
        Entry::File("old/x", b"x", 0o644),
        Entry::File("keep", b"kept", 0o644),
    ])
}

/// An upper layer deleting `etc/motd` and `old`, and making `data` opaque: only what this
/// layer puts there (`c`, listed *before* the marker on purpose) survives.
fn whiteout_layer() -> Vec<u8> {
    tar(&[
        Entry::File("etc/.wh.motd", b"", 0o644),
        Entry::File("data/c", b"c", 0o644),
        Entry::File("data/.wh..wh..opq", b"", 0o644),
        Entry::File(".wh.old", b"", 0o644),
    ])
}

/// Asserts the result of busybox + [`lower_layer`] + [`whiteout_layer`].
fn assert_whiteouts_applied(root: &Path) {
    assert!(root.join("bin/busybox").is_file());
    assert!(!root.join("etc/motd").exists(), ".wh.motd deletes it");
    assert!(!root.join("old").exists(), ".wh.old deletes the directory");
    assert_eq!(names(&root.join("data")), ["c"], "data/ is opaque");
    assert_eq!(std::fs::read_to_string(root.join("keep")).unwrap(), "kept");
    assert!(
        !tree(root).iter().any(|path| path.contains(".wh.")),
        "whiteouts are not files"
    );
    // The runtime's mount points are there, even though no layer has them.
    assert!(root.join("proc").is_dir() && root.join("tmp").is_dir());
}

#[test]
fn docker_save_tarballs_with_whiteouts_and_an_opaque_directory() {
    for modern in [false, true] {
        let work = tempfile::tempdir().unwrap();
        let archive = work.path().join("busybox.tar");
        docker_archive(
            &archive,
            &[busybox_layer(), lower_layer(), whiteout_layer()],
            modern,
        );
        let source = format!("docker-archive:{}", archive.display());
        let output = fetch(work.path(), &[&source, &"rootfs"]);
        assert_ok(&output);
        assert!(stderr(&output).contains(&format!("made from {source}")));
        assert_whiteouts_applied(&work.path().join("rootfs"));
    }
}

#[test]
fn oci_layouts_and_archives_with_gzip_zstd_and_plain_layers() {
    let work = tempfile::tempdir().unwrap();
    let layout = oci_layout(
        &work.path().join("layout"),
        &[
            Layer::gzip(busybox_layer()),
            Layer::zstd(lower_layer()),
            Layer::plain(whiteout_layer()),
        ],
    );
    for source in [
        format!("oci:{}", layout.dir.display()),
        format!("oci:{}:latest", layout.dir.display()),
    ] {
        let output = fetch(work.path(), &[&source, &"rootfs"]);
        assert_ok(&output);
        assert_whiteouts_applied(&work.path().join("rootfs"));
    }

    let archive = work.path().join("layout.tar");
    tar_dir(&layout.dir, &archive);
    let source = format!("oci-archive:{}", archive.display());
    let output = fetch(work.path(), &[&source, &"from-archive"]);
    assert_ok(&output);
    assert_whiteouts_applied(&work.path().join("from-archive"));
}

#[test]
fn a_layout_with_several_tags_needs_one() {
    let work = tempfile::tempdir().unwrap();
    let layout = Layout::new(&work.path().join("layout"));
    let arch = fixtures::host_and_other_arch().0;
    let first = layout.image(arch, &[Layer::gzip(busybox_layer())]);
    let second = layout.image(
        arch,
        &[Layer::gzip(tar(&[Entry::File("second", b"2", 0o644)]))],
    );
    layout.tag(&[("1.36", &first), ("edge", &second)]);
    let dir = layout.dir.display();

    let output = fetch(work.path(), &[&format!("oci:{dir}"), &"rootfs"]);
    assert_error(&output, "holds 2 images: say which");
    assert!(stderr(&output).contains("its tags: 1.36, edge"));

    let output = fetch(work.path(), &[&format!("oci:{dir}:nope"), &"rootfs"]);
    assert_error(&output, "no image tagged \"nope\"");

    let output = fetch(work.path(), &[&format!("oci:{dir}:edge"), &"rootfs"]);
    assert_ok(&output);
    assert!(work.path().join("rootfs/second").is_file());
}

#[test]
fn broken_archives_are_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("busybox.tar");
    docker_archive(&archive, &[busybox_layer()], false);
    let bytes = std::fs::read(&archive).unwrap();

    // Cut in the middle of the layer.
    let truncated = work.path().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let output = fetch(
        work.path(),
        &[
            &format!("docker-archive:{}", truncated.display()),
            &"rootfs",
        ],
    );
    assert_error(&output, "corrupt tarball");

    // Not a tar file at all (whose header bytes the tar crate would quote).
    let text = work.path().join("passwd");
    std::fs::write(&text, "root:x:0:0:root:/root:/bin/sh\n".repeat(40)).unwrap();
    let output = fetch(
        work.path(),
        &[&format!("docker-archive:{}", text.display()), &"rootfs"],
    );
    assert_error(&output, "corrupt tarball");

    // `docker save | gzip`.
    let gzipped = work.path().join("busybox.tar.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &bytes).unwrap();
    std::fs::write(&gzipped, encoder.finish().unwrap()).unwrap();
    let output = fetch(
        work.path(),
        &[&format!("docker-archive:{}", gzipped.display()), &"rootfs"],
    );
    assert_error(&output, "is compressed with gzip");
    assert!(stderr(&output).contains("hint: uncompress it first: gunzip"));

    // A layer whose bytes are not those its digest names.
    let layout = oci_layout(&work.path().join("layout"), &[Layer::gzip(busybox_layer())]);
    let (layer, _) = layout.first_layer(&layout.tagged());
    let blob = layout.blob_path(&layer);
    let mut tampered = std::fs::read(&blob).unwrap();
    tampered[100] ^= 1;
    std::fs::write(&blob, tampered).unwrap();
    let output = fetch(
        work.path(),
        &[&format!("oci:{}", layout.dir.display()), &"rootfs"],
    );
    assert_error(&output, &format!("{layer}: digest mismatch"));

    let output = fetch(work.path(), &[&"docker-archive:missing.tar", &"rootfs"]);
    assert_error(&output, "cannot open missing.tar");
    assert!(!work.path().join("rootfs").exists());
}

/// A world the hostile layers try to reach: `outside/` with a canary, a precious file,
/// and an old rootfs at `rootfs`.
struct Victim {
    work: tempfile::TempDir,
    before: Vec<String>,
}

impl Victim {
    fn new() -> Victim {
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir(work.path().join("outside")).unwrap();
        std::fs::write(work.path().join("outside/canary"), "alive").unwrap();
        std::fs::write(work.path().join("precious"), "years of work").unwrap();
        common::build_rootfs(&work.path().join("rootfs"));
        let before = tree(work.path());
        Victim { work, before }
    }

    fn path(&self, name: &str) -> String {
        self.work.path().join(name).display().to_string()
    }

    /// Pulls an image made of `layer` over the old rootfs: it must be refused with
    /// `message`, and nothing anywhere may change.
    fn assert_refused(&self, layer: Vec<u8>, message: &str) {
        let output = self.assert_fails(layer, message);
        assert_error(&output, "refused: ");
        assert!(stderr(&output).contains("nothing was written outside the target"));
    }

    /// Pulls an image made of `layer` over the old rootfs: it must fail with `message`, and
    /// nothing anywhere may change.
    fn assert_fails(&self, layer: Vec<u8>, message: &str) -> std::process::Output {
        let output = self.pull(layer, "rootfs");
        assert_error(&output, message);
        assert_eq!(tree(self.work.path()), self.before, "something changed");
        self.assert_outside_untouched();
        output
    }

    /// Pulls an image made of `layer` into a new `contained/`: it must succeed, and nothing
    /// outside that directory may change. Returns it.
    fn assert_contained(&self, layers: &[Vec<u8>]) -> PathBuf {
        let output = self.pull_layers(layers, "contained");
        assert_ok(&output);
        let root = self.work.path().join("contained");
        let rest: Vec<String> = tree(self.work.path())
            .into_iter()
            .filter(|path| !path.starts_with("contained"))
            .collect();
        assert_eq!(rest, self.before, "something changed outside");
        self.assert_outside_untouched();
        root
    }

    fn pull(&self, layer: Vec<u8>, target: &str) -> std::process::Output {
        self.pull_layers(&[layer], target)
    }

    fn pull_layers(&self, layers: &[Vec<u8>], target: &str) -> std::process::Output {
        let layouts = tempfile::tempdir().unwrap();
        let layers: Vec<Layer> = layers.iter().cloned().map(Layer::plain).collect();
        let layout = oci_layout(layouts.path(), &layers);
        let source = format!("oci:{}", layout.dir.display());
        fetch(self.work.path(), &[&source, &target])
    }

    fn assert_outside_untouched(&self) {
        let canary = std::fs::read_to_string(self.work.path().join("outside/canary")).unwrap();
        assert_eq!(canary, "alive");
        let precious = std::fs::read_to_string(self.work.path().join("precious")).unwrap();
        assert_eq!(precious, "years of work");
    }
}

#[test]
fn paths_that_climb_out_are_refused() {
    let victim = Victim::new();
    victim.assert_refused(
        tar(&[Entry::File("../escaped", b"x", 0o644)]),
        "../escaped: refused: a path with `..`",
    );
    victim.assert_refused(
        tar(&[
            Entry::Dir("bin/", 0o755),
            Entry::File("bin/../../escaped", b"x", 0o644),
        ]),
        "a path with `..`",
    );
}

#[test]
fn absolute_paths_are_refused() {
    let victim = Victim::new();
    let target = victim.path("outside/absolute");
    victim.assert_refused(
        tar(&[Entry::File(&target, b"x", 0o644)]),
        "an absolute path would write outside the root filesystem",
    );
}

/// The image's symlinks are resolved inside the root filesystem, as the container will
/// (and as Docker and umoci do): an absolute target or `..` starts again from the rootfs's
/// own `/`, never the host's.
#[test]
fn symlinks_that_lead_out_are_resolved_inside_the_root() {
    let victim = Victim::new();
    let outside = victim.path("outside");
    // The rootfs has no such directory: an error, and nothing written anywhere.
    victim.assert_fails(
        tar(&[
            Entry::Symlink("evil", &outside),
            Entry::File("evil/pwned", b"x", 0o644),
        ]),
        "evil is a symlink to a directory the image does not have",
    );
    let root = victim.assert_contained(&[tar(&[
        Entry::Symlink("evil", "../../../../../../../../.."),
        Entry::File("evil/tmp/pwned", b"x", 0o644),
    ])]);
    assert_eq!(std::fs::read(root.join("tmp/pwned")).unwrap(), b"x");
    // Through a chain of links, and to delete rather than write.
    let root = victim.assert_contained(&[
        tar(&[
            Entry::Dir("outside/", 0o755),
            Entry::File("outside/canary", b"inside", 0o644),
        ]),
        tar(&[
            Entry::Dir("a/", 0o755),
            Entry::Symlink("a/first", "../second"),
            Entry::Symlink("second", "../outside"),
            Entry::File("a/first/.wh.canary", b"", 0o644),
        ]),
    ]);
    assert!(
        !root.join("outside/canary").exists(),
        "the rootfs's own one"
    );
    // Absolute links inside an image, as Debian's `var/run -> /run`, work in later layers.
    let root = victim.assert_contained(&[
        tar(&[
            Entry::Dir("run/", 0o755),
            Entry::Dir("var/", 0o755),
            Entry::Symlink("var/run", "/run"),
        ]),
        tar(&[Entry::File("var/run/x.pid", b"1", 0o644)]),
    ]);
    assert_eq!(std::fs::read(root.join("run/x.pid")).unwrap(), b"1");
}

#[test]
fn hard_links_to_outside_are_refused() {
    let victim = Victim::new();
    victim.assert_refused(
        tar(&[Entry::HardLink("link", "../precious")]),
        "link: hard link target: refused: a path with `..`",
    );
    let precious = victim.path("precious");
    victim.assert_refused(
        tar(&[Entry::HardLink("link", &precious)]),
        "an absolute path",
    );
    // Resolved inside the root, where the image has no such file.
    let work = victim.work.path().display().to_string();
    victim.assert_fails(
        tar(&[
            Entry::Symlink("evil", &work),
            Entry::HardLink("link", "evil/precious"),
        ]),
        "not an earlier file of the image",
    );

    // A hard link to a symlink links the symlink itself, never what it points to.
    let layouts = tempfile::tempdir().unwrap();
    let layout = oci_layout(
        layouts.path(),
        &[Layer::plain(tar(&[
            Entry::Symlink("evil", &precious),
            Entry::HardLink("link", "evil"),
        ]))],
    );
    let source = format!("oci:{}", layout.dir.display());
    let output = fetch(victim.work.path(), &[&source, &"linked"]);
    assert_ok(&output);
    let link = victim.work.path().join("linked/link");
    assert!(std::fs::symlink_metadata(link).unwrap().is_symlink());
    assert_eq!(std::fs::metadata(&precious).unwrap().nlink(), 1);
}

#[test]
fn a_layer_broken_halfway_leaves_the_old_rootfs_and_no_debris() {
    let victim = Victim::new();
    let layouts = tempfile::tempdir().unwrap();
    // Its digest is right (it is computed over the cut bytes): extraction finds the cut.
    let layer = busybox_layer();
    let cut = layer[..layer.len() / 2].to_vec();
    let layout = oci_layout(
        layouts.path(),
        &[Layer::plain(lower_layer()), Layer::plain(cut)],
    );
    let output = fetch(
        victim.work.path(),
        &[&format!("oci:{}", layout.dir.display()), &"rootfs"],
    );
    assert_error(&output, "layer 2/2");
    assert_error(&output, "corrupt layer");
    assert_eq!(tree(victim.work.path()), victim.before);
}

#[test]
fn ctrl_c_during_extraction_leaves_the_old_rootfs_and_no_debris() {
    let victim = Victim::new();
    let layouts = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..30_000).map(|n| format!("many/{n}")).collect();
    let mut entries = vec![Entry::Dir("many/", 0o755)];
    entries.extend(names.iter().map(|name| Entry::File(name, b"", 0o644)));
    let layout = oci_layout(layouts.path(), &[Layer::gzip(tar(&entries))]);
    let child = rootfs_fetch(
        victim.work.path(),
        &[&format!("oci:{}", layout.dir.display()), &"rootfs"],
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let partial = format!(".rootfs.partial-{}-", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = || {
        common::names(victim.work.path()).iter().any(|name| {
            name.starts_with(&partial) && victim.work.path().join(name).join("many").exists()
        })
    };
    while !started() {
        assert!(Instant::now() < deadline, "extraction never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_error(&output, "interrupted");
    assert_eq!(tree(victim.work.path()), victim.before);
}

/// A layer of the things that need privilege: another owner, setuid, a device node.
fn privileged_layer() -> Vec<u8> {
    tar(&[
        Entry::Owned("setuid", 0o4755, 1234),
        Entry::Dir("dev/", 0o755),
        Entry::CharDevice("dev/null"),
        Entry::Fifo("fifo"),
        Entry::Dir("ro/", 0o555),
        Entry::File("ro/inside", b"x", 0o444),
        Entry::Symlink("link", "setuid"),
    ])
}

/// `rootfs-fetch` run as an unprivileged user (nobody, when the tests run as root),
/// from a copy that user can reach, in a directory it owns.
fn unprivileged_fetch(work: &Path, source: &str) -> (std::process::Output, PathBuf) {
    let uid = common::step_uid();
    let own = work.join("own");
    std::fs::create_dir(&own).unwrap();
    std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o755)).unwrap();
    nix::unistd::chown(&own, Some(uid.into()), Some(uid.into())).unwrap();
    let mut command = Command::new(common::fixture().bin.join("rootfs-fetch"));
    command
        .arg(source)
        .arg("rootfs")
        .current_dir(&own)
        .env("XDG_CACHE_HOME", own.join("cache"));
    if common::running_as_root() {
        command.uid(uid).gid(uid);
    }
    (command.output().unwrap(), own.join("rootfs"))
}

#[test]
fn unprivileged_files_belong_to_the_user_and_devices_are_skipped() {
    let work = fixtures::world_readable_tempdir();
    let layout = oci_layout(
        &work.path().join("layout"),
        &[Layer::plain(privileged_layer())],
    );
    let source = format!("oci:{}", layout.dir.display());
    let (output, root) = unprivileged_fetch(work.path(), &source);
    assert_ok(&output);
    assert!(
        stderr(&output).contains("note: skipped device nodes (/dev/null)"),
        "{}",
        stderr(&output)
    );
    assert!(!root.join("dev/null").exists());
    let setuid = std::fs::metadata(root.join("setuid")).unwrap();
    assert_eq!(setuid.uid(), common::step_uid());
    assert_eq!(setuid.mode() & 0o7777, 0o755, "no setuid bit for a user");
    assert_eq!(setuid.mtime(), 1_700_000_000);
    assert!(
        std::fs::symlink_metadata(root.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(
        std::fs::read_link(root.join("link")).unwrap(),
        Path::new("setuid")
    );
    let ro = std::fs::metadata(root.join("ro")).unwrap();
    assert_eq!(
        ro.mode() & 0o777,
        0o555,
        "modes are set once the tree is complete"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("ro/inside")).unwrap(),
        "x"
    );
}

#[test]
fn root_keeps_the_owners_and_drops_setuid_bits_unless_asked() {
    if !common::can_run_as_real_root() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = oci_layout(
        &work.path().join("layout"),
        &[Layer::plain(privileged_layer())],
    );
    let source = format!("oci:{}", layout.dir.display());
    let output = fetch(work.path(), &[&source, &"rootfs"]);
    assert_ok(&output);
    let setuid = std::fs::metadata(work.path().join("rootfs/setuid")).unwrap();
    assert_eq!((setuid.uid(), setuid.gid()), (1234, 1234));
    assert_eq!(setuid.mode() & 0o7777, 0o755, "setuid dropped by default");
    // Device nodes are skipped as root too: a rootfs needs none of the image's.
    assert!(stderr(&output).contains("note: skipped device nodes"));
    assert!(!work.path().join("rootfs/dev/null").exists());

    let output = fetch(work.path(), &[&source, &"kept", &"--keep-setuid"]);
    assert_ok(&output);
    let setuid = std::fs::metadata(work.path().join("kept/setuid")).unwrap();
    assert_eq!(setuid.mode() & 0o7777, 0o4755, "--keep-setuid keeps it");
}

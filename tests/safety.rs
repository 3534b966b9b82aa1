//! Nothing an image or another local user does reaches outside the root filesystem: the
//! hostile inputs of issue #17 (and #10), each built here, as root and as nobody where
//! both apply, with uid 1000 playing the other local user.

mod common;
mod fixtures;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{names, running_as_root};
use fixtures::{
    Entry, Layer, assert_error, assert_ok, busybox_layer, fetch, oci_layout, rootfs_fetch, stderr,
    tar, tree,
};

/// The second local account.
const OTHER_USER: u32 = 1000;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

/// An OCI layout of `layers` (plain tars) in `dir`, as a source.
fn source(dir: &Path, layers: Vec<Vec<u8>>) -> String {
    let layers: Vec<Layer> = layers.into_iter().map(Layer::plain).collect();
    format!("oci:{}", oci_layout(dir, &layers).dir.display())
}

/// rootfs-fetch SOURCE TARGET as `uid` (from `work`, which that user owns).
fn fetch_as(uid: u32, work: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(common::fixture().bin.join("rootfs-fetch"));
    command
        .args(args)
        .current_dir(work)
        .env("XDG_CACHE_HOME", work.join("cache"));
    if uid != nix::unistd::geteuid().as_raw() {
        command.uid(uid).gid(uid);
    }
    command.output().unwrap()
}

/// A world-traversable work directory owned by `uid`.
fn work_of(uid: u32) -> tempfile::TempDir {
    let work = fixtures::world_readable_tempdir();
    chown(work.path(), uid);
    work
}

/// The users to test as: root and nobody when we are root, else ourselves.
fn users() -> Vec<u32> {
    if running_as_root() {
        vec![0, common::NOBODY]
    } else {
        vec![nix::unistd::geteuid().as_raw()]
    }
}

// ---- #17.1: directory modes never land through a later symlink ---------------------------

#[test]
fn directory_modes_never_land_on_what_a_later_symlink_points_to() {
    for uid in users() {
        let work = work_of(uid);
        let outside = work.path().join("outside");
        std::fs::create_dir_all(outside.join("secret")).unwrap();
        std::fs::set_permissions(outside.join("secret"), PermissionsExt::from_mode(0o700)).unwrap();
        chown(&outside, uid);
        chown(&outside.join("secret"), uid);
        let target = outside.display().to_string();
        let lower = tar(&[Entry::Dir("x/", 0o755), Entry::Dir("x/secret/", 0o777)]);
        // In a later layer, and later in the same layer.
        let layers = [
            vec![lower.clone(), tar(&[Entry::Symlink("x", &target)])],
            vec![tar(&[
                Entry::Dir("x/", 0o755),
                Entry::Dir("x/secret/", 0o777),
                Entry::Symlink("x", &target),
            ])],
        ];
        for (n, layers) in layers.into_iter().enumerate() {
            let layouts = tempfile::tempdir().unwrap();
            let source = source(layouts.path(), layers);
            std::fs::set_permissions(layouts.path(), PermissionsExt::from_mode(0o755)).unwrap();
            let output = fetch_as(uid, work.path(), &[&source, &format!("rootfs{n}")]);
            assert_ok(&output);
            assert_eq!(
                mode(&outside.join("secret")),
                0o700,
                "as uid {uid}, case {n}"
            );
            let mtime = std::fs::metadata(outside.join("secret")).unwrap().mtime();
            assert_ne!(
                mtime, 1_700_000_000,
                "as uid {uid}: the image's time landed"
            );
        }
    }
}

// ---- #17.2: the half-built tree is private ------------------------------------------------

#[test]
fn the_tree_is_built_where_no_other_user_can_enter() {
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let names_: Vec<String> = (0..20_000).map(|n| format!("home/u/{n}")).collect();
    let mut entries = vec![Entry::Dir("home/", 0o755), Entry::Dir("home/u/", 0o755)];
    entries.extend(names_.iter().map(|name| Entry::File(name, b"", 0o644)));
    let source = source(layouts.path(), vec![tar(&entries)]);
    let mut child = rootfs_fetch(work.path(), &[&source, &"rootfs"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let prefix = format!(".rootfs.partial-{}", child.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    let staging = loop {
        assert!(Instant::now() < deadline, "extraction never started");
        let found = names(work.path())
            .into_iter()
            .find(|name| name.starts_with(&prefix));
        if let Some(name) = found
            && work.path().join(&name).join("home").exists()
        {
            break work.path().join(name);
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let meta = std::fs::symlink_metadata(&staging).unwrap();
    let euid = nix::unistd::geteuid().as_raw();
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o700, euid));
    assert!(child.wait().unwrap().success());
    assert_eq!(
        mode(&work.path().join("rootfs")),
        0o755,
        "open once complete"
    );
}

// ---- #17.3, #17.7: scratch directories and leftovers ---------------------------------------

#[test]
fn leftovers_are_removed_only_when_ours_and_dead() {
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), PermissionsExt::from_mode(0o1777)).unwrap();
    // pid 2^22 + 1 is above the kernel's pid_max: that run is dead.
    let ours = base.path().join("bento-x-4194305-AbCdEf");
    std::fs::create_dir_all(ours.join("sub")).unwrap();
    std::fs::set_permissions(ours.join("sub"), PermissionsExt::from_mode(0o000)).unwrap();
    let alive = base.path().join(format!("bento-x-{}", std::process::id()));
    std::fs::create_dir(&alive).unwrap();
    let theirs = base.path().join("bento-x-4194306");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("file"), "theirs").unwrap();
    if running_as_root() {
        chown(&theirs, OTHER_USER);
    }
    plumbing::remove_leftovers(base.path(), "bento-x-");
    if running_as_root() {
        assert!(
            theirs.join("file").exists(),
            "another user's: never removed"
        );
    }
    assert!(alive.exists(), "a live run: kept");
    assert!(!ours.exists(), "a dead run of ours: removed");
}

/// Removing a tree while another process swaps a directory in it with a symlink to
/// elsewhere (renameat2 RENAME_EXCHANGE, as the attack did): what the symlink points to
/// is never changed. Bounded; the outcome must be the same on every iteration.
#[test]
fn removing_a_tree_never_follows_a_symlink_swapped_in() {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "root's").unwrap();
    std::fs::set_permissions(outside.join("secret"), PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&outside, PermissionsExt::from_mode(0o500)).unwrap();
    for _ in 0..200 {
        let tree = work.path().join("tree");
        let a = tree.join("a");
        std::fs::create_dir_all(a.join("sub/deeper")).unwrap();
        std::fs::write(a.join("sub/deeper/file"), "x").unwrap();
        symlink(&outside, a.join("link")).unwrap();
        std::fs::set_permissions(a.join("sub/deeper"), PermissionsExt::from_mode(0o500)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, a) = (Arc::clone(&stop), a.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let exchange = RenameFlags::RENAME_EXCHANGE;
                    if renameat2(
                        AT_FDCWD,
                        &a.join("sub"),
                        AT_FDCWD,
                        &a.join("link"),
                        exchange,
                    )
                    .is_err()
                    {
                        break;
                    }
                }
            })
        };
        let _ = plumbing::remove_tree(&tree);
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert_eq!(mode(&outside), 0o500, "the outside directory was changed");
        assert_eq!(mode(&outside.join("secret")), 0o600);
        let _ = plumbing::remove_tree(&tree);
    }
    std::fs::set_permissions(&outside, PermissionsExt::from_mode(0o700)).unwrap();
}

#[test]
fn another_user_cannot_stop_step_07() {
    if !common::can_run_as_real_root() {
        return;
    }
    let tmp = &common::fixture().tmp;
    // Directories for the next pids, made by the other user, and one of a live process
    // that the step (nobody) may not signal: kill() says EPERM, which means alive.
    let next = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .map_or(0, |pid| pid.trim().parse::<u32>().unwrap_or(0));
    let planted: Vec<PathBuf> = (next + 1..next + 40)
        .map(|pid| tmp.join(format!("bento-step-07-overlay-{pid}")))
        .collect();
    for dir in &planted {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("keep"), "").unwrap();
        chown(dir, OTHER_USER);
    }
    let live = tmp.join("bento-step-07-overlay-1-Ab3dE9");
    std::fs::create_dir(&live).unwrap();
    chown(&live, common::NOBODY);
    let run = common::step(7, &["true"]).run();
    let left = live.exists();
    for dir in planted.iter().chain([&live]) {
        let _ = plumbing::remove_tree(dir);
    }
    run.assert_code(0);
    assert!(left, "pid 1 is alive: its directory is not a leftover");
}

// ---- #17.4, #17.8: the cache ---------------------------------------------------------------

/// A registry on loopback serving a busybox image, and its source name.
fn registry(dir: &Path) -> (fixtures::Server, String) {
    let layout = oci_layout(dir, &[Layer::gzip(busybox_layer())]);
    let manifest = layout.tagged();
    let server = fixtures::serve_layout(&layout, &manifest, None);
    let source = format!("docker://127.0.0.1:{}/busybox:latest", server.port);
    (server, source)
}

#[test]
fn root_never_writes_into_another_users_cache() {
    if !common::can_run_as_real_root() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (_server, source) = registry(&work.path().join("layout"));
    // The other user's HOME, as `sudo -E` keeps it, with a cache holding planted symlinks
    // to a file of root's.
    let home = work.path().join("home");
    let blobs = home.join(".cache/bento/blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let secret = work.path().join("secret");
    std::fs::write(&secret, "root's").unwrap();
    std::fs::set_permissions(&secret, PermissionsExt::from_mode(0o600)).unwrap();
    for n in 0..100 {
        symlink(&secret, home.join(format!(".cache/bento/partial-{n}"))).unwrap();
    }
    let mut dir = blobs.clone();
    while dir != work.path() {
        chown(&dir, OTHER_USER);
        dir.pop();
    }
    let before = tree(&home);
    let output = rootfs_fetch(work.path(), &[&source, &"rootfs"])
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_ok(&output);
    assert!(
        stderr(&output).contains("belongs to another user"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        tree(&home),
        before,
        "nothing written in the other user's HOME"
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root's");
    assert_eq!(mode(&secret), 0o600);
}

#[test]
fn without_a_usable_home_the_offline_fallback_still_works() {
    let work = tempfile::tempdir().unwrap();
    let output = rootfs_fetch(work.path(), &[])
        .env_remove("XDG_CACHE_HOME")
        .env_remove("HOME")
        // Port 1 on loopback: nothing listens, the registry cannot be reached.
        .env("BENTO_DEFAULT_IMAGE", "docker://127.0.0.1:1/busybox:latest")
        .output()
        .unwrap();
    assert_ok(&output);
    let stderr = stderr(&output);
    assert!(stderr.contains("not caching"), "{stderr}");
    assert!(
        stderr.contains("using the host's static busybox"),
        "{stderr}"
    );
    assert!(work.path().join("rootfs/bin/busybox").exists());
}

// ---- #17.5: never replace what we did not make --------------------------------------------

#[test]
fn a_directory_rootfs_fetch_did_not_make_is_never_replaced() {
    let work = tempfile::tempdir().unwrap();
    // Looks like a root filesystem (bin/ and etc/), as /usr/local or a conda environment.
    let local = work.path().join("local");
    for dir in ["bin", "etc", "share"] {
        std::fs::create_dir_all(local.join(dir)).unwrap();
    }
    std::fs::write(local.join("bin/tool"), "mine").unwrap();
    let before = tree(&local);
    let output = fetch(work.path(), &[&"busybox:", &"local"]);
    assert_error(&output, "local exists and was not made by rootfs-fetch");
    assert!(stderr(&output).contains("--force"));
    assert_eq!(tree(&local), before);
    assert_eq!(names(work.path()), ["local"], "nothing left beside it");

    let output = fetch(work.path(), &[&"busybox:", &"local", &"--force"]);
    assert_ok(&output);
    // Made by rootfs-fetch: replaced without --force from now on.
    let output = fetch(work.path(), &[&"busybox:", &"local"]);
    assert_ok(&output);
}

// ---- #17.6: an opaque whiteout is linear ---------------------------------------------------

/// The layer that makes a directory opaque also fills it with many files: each child of
/// the directory is checked against what this layer made, once.
#[test]
fn an_opaque_directory_over_many_files_is_fast() {
    let work = tempfile::tempdir().unwrap();
    let lower = tar(&[
        Entry::Dir("many/", 0o755),
        Entry::File("many/old", b"old", 0o644),
    ]);
    let names_: Vec<String> = (0..40_000).map(|n| format!("many/{n}")).collect();
    let mut entries = vec![Entry::Dir("many/", 0o755)];
    entries.extend(names_.iter().map(|name| Entry::File(name, b"", 0o644)));
    let without_marker = tar(&entries);
    entries.push(Entry::File("many/.wh..wh..opq", b"", 0o644));
    let upper = tar(&entries);
    let layout = oci_layout(
        &work.path().join("layout"),
        &[Layer::gzip(lower.clone()), Layer::gzip(upper)],
    );
    let source = format!("oci:{}", layout.dir.display());
    let started = Instant::now();
    let output = fetch(work.path(), &[&source, &"rootfs"]);
    let opaque = started.elapsed();
    assert_ok(&output);
    let left = names(&work.path().join("rootfs/many"));
    assert_eq!(left.len(), 40_000);
    assert!(
        !left.contains(&"old".to_string()),
        "the lower layer's file is hidden"
    );
    // Against writing the same files without the marker: a few times at most, not minutes.
    let layout = oci_layout(
        &work.path().join("unmarked"),
        &[Layer::gzip(lower), Layer::gzip(without_marker)],
    );
    let started = Instant::now();
    let source = format!("oci:{}", layout.dir.display());
    assert_ok(&fetch(work.path(), &[&source, &"rootfs2"]));
    let plain = started.elapsed();
    assert!(
        opaque < plain * 4 + Duration::from_secs(5),
        "{opaque:?} with the opaque marker, {plain:?} without"
    );
}

// ---- #10.1: no setuid-root binaries for every local user -----------------------------------

#[test]
fn a_pull_as_root_leaves_no_setuid_or_setgid_bits() {
    if !common::can_run_as_real_root() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let source = source(
        layouts.path(),
        vec![tar(&[
            Entry::Dir("bin/", 0o755),
            Entry::Owned("bin/su", 0o4755, 0),
            Entry::Owned("bin/wall", 0o2755, 0),
        ])],
    );
    assert_ok(&fetch(work.path(), &[&source, &"rootfs"]));
    for binary in ["bin/su", "bin/wall"] {
        let path = work.path().join("rootfs").join(binary);
        assert_eq!(mode(&path), 0o755, "{binary}");
        // nobody can reach and run it, without any of root's privileges.
        let reachable = Command::new("test")
            .arg("-x")
            .arg(&path)
            .uid(common::NOBODY)
            .gid(common::NOBODY)
            .status()
            .unwrap();
        assert!(reachable.success(), "the tree stays usable by users");
    }
}

// ---- #10.3: a full disk, and decompression bombs -------------------------------------------

#[test]
fn a_full_disk_is_said_plainly_and_nothing_is_left() {
    if !common::can_run_as_real_root() {
        return;
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        common::skipped("needs unshare(1) (util-linux)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let big = vec![7u8; 3 << 20];
    let source = source(
        layouts.path(),
        vec![tar(&[Entry::File("big", &big, 0o644)])],
    );
    let disk = work.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    // A 2 MB tmpfs in a private mount namespace: gone when the shell ends.
    let script = r#"mount -t tmpfs -o size=2m tmpfs "$1" || exit 99
        "$2" "$3" "$1/rootfs"; echo "status=$?"; echo "left=$(ls -A "$1")""#;
    let output = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&disk)
        .arg(common::fixture().bin.join("rootfs-fetch"))
        .arg(&source)
        .env("XDG_CACHE_HOME", work.path().join("cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = stderr(&output);
    if output.status.code() == Some(99) {
        common::skipped(&format!("cannot mount a tmpfs here: {stderr}"));
        return;
    }
    assert!(stdout.contains("status=125"), "{stdout}{stderr}");
    assert!(stderr.contains("the disk is full"), "{stderr}");
    assert!(stderr.contains(&disk.display().to_string()), "{stderr}");
    assert!(!stderr.contains("corrupt"), "{stderr}");
    assert!(stdout.contains("left=\n"), "nothing left behind: {stdout}");
}

#[test]
fn a_layer_that_expands_past_the_limit_is_refused() {
    let work = tempfile::tempdir().unwrap();
    // 4 MB of zeros: a few kB of gzip.
    let bomb = vec![0u8; 4 << 20];
    let layout = oci_layout(
        &work.path().join("layout"),
        &[Layer::gzip(tar(&[Entry::File("bomb", &bomb, 0o644)]))],
    );
    let source = format!("oci:{}", layout.dir.display());
    let output = rootfs_fetch(work.path(), &[&source, &"rootfs"])
        .env("BENTO_MAX_LAYER_SIZE", "1M")
        .output()
        .unwrap();
    assert_error(&output, "the layer expands to more than 1 MB");
    assert!(stderr(&output).contains("--max-layer-size"));
    assert_eq!(names(work.path()), ["layout"], "nothing left behind");
    let output = fetch(
        work.path(),
        &[&source, &"rootfs", &"--max-layer-size", &"8M"],
    );
    assert_ok(&output);
}

// ---- #17.10: small ones --------------------------------------------------------------------

#[test]
fn a_hard_link_to_itself_and_fifo_modes() {
    let work = tempfile::tempdir().unwrap();
    let layouts = tempfile::tempdir().unwrap();
    let source = source(
        layouts.path(),
        vec![tar(&[
            Entry::File("a", b"a", 0o644),
            Entry::HardLink("a", "a"),
            Entry::FifoMode("fifo", 0o666),
        ])],
    );
    let output = fetch(work.path(), &[&source, &"rootfs"]);
    assert_ok(&output);
    assert_eq!(std::fs::read(work.path().join("rootfs/a")).unwrap(), b"a");
    assert_eq!(mode(&work.path().join("rootfs/fifo")), 0o666, "no umask");
}

//! rootfs-fetch against registries: a real one (Debian's `docker-registry`, the CNCF
//! distribution registry, on a free loopback port, filled with `skopeo`), and a tiny
//! in-test server for what a real registry will not do on demand: ask for a token,
//! redirect, serve a tampered blob, stall or trickle in the middle of a download.

mod common;
mod fixtures;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fixtures::{
    Entry, Layer, Layout, Response, Server, assert_error, assert_ok, busybox_layer, fetch,
    host_and_other_arch, oci_layout, rootfs_fetch, serve_layout, stderr, tree,
    world_readable_tempdir,
};

/// Are `docker-registry` and `skopeo` installed? If not, the test is skipped with the
/// reason, except in CI (`CI` set), which must run it.
fn registry_tools_available() -> bool {
    let missing: Vec<&str> = ["docker-registry", "skopeo"]
        .into_iter()
        .filter(|tool| {
            !Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    common::skipped(&format!(
        "needs {} (sudo apt install docker-registry skopeo)",
        missing.join(" and ")
    ));
    false
}

/// A port that nothing listens on (it was free a moment ago).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A real registry on 127.0.0.1, storing into a temporary directory, stopped when
/// dropped (and killed by the kernel if the test process dies first).
struct LocalRegistry {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl LocalRegistry {
    /// None (after saying why) when the tools are missing.
    fn start() -> Option<LocalRegistry> {
        if !registry_tools_available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {address}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let mut command = Command::new("docker-registry");
        command
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork and exec.
        // The registry must not outlive a test process that is killed.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let child = command.spawn().expect("start docker-registry");
        let registry = LocalRegistry {
            child,
            address,
            dir,
        };
        registry.wait_until_ready();
        Some(registry)
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if http_status(&self.address, "/v2/") == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not answer on {}:\n{log}", self.address);
    }

    /// `skopeo copy oci:LAYOUT:TAG docker://ADDRESS/DESTINATION` (plus `extra` options).
    fn push(&self, layout: &Path, tag: &str, destination: &str, extra: &[&str]) {
        let output = self
            .skopeo()
            .arg("copy")
            .arg("--quiet")
            .arg("--dest-tls-verify=false")
            .args(extra)
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{destination}", self.address))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "skopeo copy failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The digest of the manifest `reference` (e.g. `busybox:latest`) names.
    fn digest(&self, reference: &str) -> String {
        let output = self
            .skopeo()
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/{reference}", self.address))
            .output()
            .unwrap();
        assert!(output.status.success(), "skopeo inspect failed");
        fixtures::digest(&output.stdout)
    }

    fn skopeo(&self) -> Command {
        let mut command = Command::new("skopeo");
        command
            .arg("--policy")
            .arg(self.dir.path().join("policy.json"))
            .env("TMPDIR", self.dir.path());
        command
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of `GET path` on `address`, or None if nothing answers.
fn http_status(address: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// A registry holding the busybox image as `busybox:TAG` (pushed with `extra` skopeo
/// options), and a work directory every user can enter; None when skipped.
fn registry_with_busybox(tag: &str, extra: &[&str]) -> Option<(LocalRegistry, tempfile::TempDir)> {
    let registry = LocalRegistry::start()?;
    let work = world_readable_tempdir();
    let layout = busybox_layout(work.path());
    registry.push(&layout.dir, "latest", &format!("busybox:{tag}"), extra);
    Some((registry, work))
}

/// An OCI layout holding the busybox image, tagged `latest`.
fn busybox_layout(work: &Path) -> Layout {
    oci_layout(&work.join("layout"), &[Layer::gzip(busybox_layer())])
}

/// A rootfs made from the host's busybox at `work/rootfs`, as a learner's previous one.
fn old_rootfs(work: &Path) -> (PathBuf, Vec<String>) {
    let target = work.join("rootfs");
    common::build_rootfs(&target);
    std::fs::write(target.join("etc/marker"), "the old rootfs").unwrap();
    let before = tree(&target);
    (target, before)
}

/// Asserts that the old rootfs is as it was and that nothing was left beside it.
fn assert_untouched(work: &Path, target: &Path, before: &[String]) {
    assert_eq!(tree(target), before, "the old rootfs changed");
    let mut siblings: Vec<String> = std::fs::read_dir(work)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".rootfs"))
        .collect();
    siblings.sort();
    assert_eq!(siblings, Vec::<String>::new(), "debris next to the target");
}

/// Asserts that the cache holds no blob `digest` and no half-written download.
fn assert_not_cached(work: &Path, digest: &str) {
    let cached = tree(&work.join("cache/bento"));
    let hex = digest.trim_start_matches("sha256:");
    assert!(
        cached
            .iter()
            .all(|name| !name.contains(hex) && !name.contains("partial-")),
        "{cached:?}"
    );
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

#[test]
fn pulls_a_tag_from_a_real_registry_and_the_steps_run_in_it() {
    let Some((registry, work)) = registry_with_busybox("latest", &[]) else {
        return;
    };
    let source = format!("docker://{}/busybox:latest", registry.address);
    let target = work.path().join("rootfs");

    let output = fetch(work.path(), &[&source, &target]);
    assert_ok(&output);
    let host = host_and_other_arch().0;
    assert!(
        stderr(&output).contains(&format!("is ready, made from {source} (linux/{host})")),
        "{}",
        stderr(&output)
    );
    // Docker's busybox image has no /proc: created, empty, like the other mount points.
    for dir in ["proc", "sys", "dev", "tmp"] {
        assert!(is_empty_dir(&target.join(dir)), "/{dir} is missing");
    }
    // The applets are hard links to one busybox, as in the image.
    let inode = |name: &str| std::fs::metadata(target.join(name)).unwrap().ino();
    assert_eq!(inode("bin/sh"), inode("bin/busybox"));

    // Steps 04 and 05 run in it.
    let run = common::step(4, &["cat", "/etc/passwd"])
        .env("BENTO_ROOTFS", &target)
        .run();
    run.assert_code(0);
    assert_eq!(run.stdout, "root:x:0:0:root:/root:/bin/sh\n");
    let run = common::step(5, &["ps", "-o", "pid,comm"])
        .env("BENTO_ROOTFS", &target)
        .run();
    run.assert_code(0);
    assert_eq!(run.stdout, "PID   COMMAND\n    1 ps\n", "{}", run.report());

    // Again with the registry gone: the tag's manifest and the blobs are in the cache.
    drop(registry);
    let output = fetch(work.path(), &[&source, &target]);
    assert_ok(&output);
    assert!(
        stderr(&output).contains("using cached manifest"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_digest_pull_works_offline_once_cached() {
    let Some((registry, work)) = registry_with_busybox("latest", &[]) else {
        return;
    };
    let digest = registry.digest("busybox:latest");
    let source = format!("docker://{}/busybox@{digest}", registry.address);

    let output = fetch(work.path(), &[&source, &"first"]);
    assert_ok(&output);
    assert!(work.path().join("first/bin/busybox").is_file());

    drop(registry);
    let output = fetch(work.path(), &[&source, &"second"]);
    assert_ok(&output);
    assert!(
        !stderr(&output).contains("cannot reach"),
        "a pinned digest needs no registry: {}",
        stderr(&output)
    );
    assert!(work.path().join("second/bin/busybox").is_file());

    // A tag that was never pulled cannot come from the cache.
    let address = source.split('/').nth(2).unwrap();
    let output = fetch(
        work.path(),
        &[&format!("docker://{address}/busybox:other"), &"third"],
    );
    assert_error(&output, &format!("cannot reach {address}"));
    assert!(stderr(&output).contains("hint: offline?"));
}

#[test]
fn a_multi_platform_index_gives_this_machines_image_or_the_one_asked_for() {
    let Some(registry) = LocalRegistry::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (host, other) = host_and_other_arch();
    let layout = Layout::new(&work.path().join("layout"));
    let native = layout.image(host, &[Layer::gzip(busybox_layer())]);
    // The foreign image is never run: a marker file is enough.
    let foreign = layout.image(
        other,
        &[Layer::gzip(fixtures::tar(&[Entry::File(
            "arch",
            other.as_bytes(),
            0o644,
        )]))],
    );
    let index = layout.index(&[native, foreign]);
    layout.tag(&[("latest", &index)]);
    registry.push(&layout.dir, "latest", "busybox:multi", &["--all"]);
    let source = format!("docker://{}/busybox:multi", registry.address);

    let output = fetch(work.path(), &[&source, &"native"]);
    assert_ok(&output);
    assert!(work.path().join("native/bin/busybox").is_file());
    assert!(!work.path().join("native/arch").exists());

    let platform = format!("linux/{other}");
    let output = fetch(
        work.path(),
        &[&source, &"foreign", &"--platform", &platform],
    );
    assert_ok(&output);
    assert_eq!(
        std::fs::read_to_string(work.path().join("foreign/arch")).unwrap(),
        other
    );
    assert!(
        stderr(&output).contains(&format!(
            "note: the image is for linux/{other}: its programs will not run"
        )),
        "{}",
        stderr(&output)
    );

    let output = fetch(
        work.path(),
        &[&source, &"none", &"--platform", &"linux/riscv64"],
    );
    let mut available = [format!("linux/{host}"), platform];
    available.sort();
    assert_error(
        &output,
        &format!(
            "{source}: no image for linux/riscv64; available: {}",
            available.join(", ")
        ),
    );
    assert!(stderr(&output).contains("hint: "));
    assert!(!work.path().join("none").exists());
}

#[test]
fn docker_media_types_are_understood() {
    let Some((registry, work)) = registry_with_busybox("v2s2", &["--format", "v2s2"]) else {
        return;
    };
    let source = format!("docker://{}/busybox:v2s2", registry.address);
    let output = fetch(work.path(), &[&source, &"rootfs"]);
    assert_ok(&output);
    assert!(work.path().join("rootfs/bin/sh").is_file());
}

#[test]
fn a_missing_tag_or_image_is_a_clear_error_and_changes_nothing() {
    let Some((registry, work)) = registry_with_busybox("latest", &[]) else {
        return;
    };
    let (target, before) = old_rootfs(work.path());

    let missing_tag = format!("docker://{}/busybox:nope", registry.address);
    let output = fetch(work.path(), &[&missing_tag, &target]);
    assert_error(&output, &format!("{missing_tag}: manifest unknown (404)"));
    assert!(stderr(&output).contains("hint: check the image name and the tag"));

    let missing_image = format!("docker://{}/nothing/here:latest", registry.address);
    let output = fetch(work.path(), &[&missing_image, &target]);
    assert_error(&output, &format!("{missing_image}: "));
    assert!(stderr(&output).contains("(404)"), "{}", stderr(&output));
    assert!(stderr(&output).contains("hint: check the image name"));
    assert_untouched(work.path(), &target, &before);
}

#[test]
fn the_token_challenge_is_answered() {
    let work = tempfile::tempdir().unwrap();
    let (layout, manifest, _, _) = busybox_image(work.path());
    let tokens = Server::start(|request| {
        if request.path.starts_with("/token?") {
            Response::new(200, r#"{"token":"t0ken"}"#)
        } else {
            Response::new(404, "")
        }
    });
    let realm = format!("http://127.0.0.1:{}/token", tokens.port);
    let serve = fixtures::registry_handler(&layout, &manifest, None);
    let registry = Server::start(move |request| {
        if request.headers.get("authorization").map(String::as_str) == Some("Bearer t0ken") {
            return serve(request);
        }
        Response::new(
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
        .header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="{realm}",service="test",scope="repository:busybox:pull""#),
        )
    });
    let source = format!("docker://127.0.0.1:{}/busybox:latest", registry.port);
    let output = fetch(work.path(), &[&source, &"rootfs"]);
    assert_ok(&output);
    assert!(work.path().join("rootfs/bin/busybox").is_file());
    let asked = tokens.paths().join("\n").replace("%3A", ":");
    assert!(asked.contains("scope=repository:busybox:pull"), "{asked}");
    assert!(asked.contains("service=test"), "{asked}");
}

#[test]
fn a_registry_that_refuses_the_token_is_reported_as_unauthorized() {
    let work = tempfile::tempdir().unwrap();
    let tokens = Server::start(|_| Response::new(200, r#"{"token":"useless"}"#));
    let realm = format!("http://127.0.0.1:{}/token", tokens.port);
    let registry = Server::start(move |_| {
        Response::new(
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
        .header("WWW-Authenticate", &format!(r#"Bearer realm="{realm}""#))
    });
    let source = format!("docker://127.0.0.1:{}/private:latest", registry.port);
    let output = fetch(work.path(), &[&source, &"rootfs"]);
    assert_error(&output, &format!("{source}: authentication required (401)"));
    assert!(
        stderr(&output).contains("anonymously"),
        "{}",
        stderr(&output)
    );
    assert!(!work.path().join("rootfs").exists());
}

/// The busybox image in a layout (served by the test server), its manifest's descriptor,
/// and the digest and size of its layer.
fn busybox_image(work: &Path) -> (Layout, serde_json::Value, String, u64) {
    let layout = busybox_layout(work);
    let manifest = layout.tagged();
    let (layer, size) = layout.first_layer(&manifest);
    (layout, manifest, layer, size)
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_changes() {
    let work = tempfile::tempdir().unwrap();
    let (layout, manifest, layer, size) = busybox_image(work.path());
    // Same size, other bytes: only the digest can tell.
    let server = fixtures::serve_layout(
        &layout,
        &manifest,
        Some((layer.clone(), vec![0; size as usize])),
    );
    let (target, before) = old_rootfs(work.path());

    let source = format!("docker://127.0.0.1:{}/busybox:latest", server.port);
    let output = fetch(work.path(), &[&source, &target]);
    assert_error(
        &output,
        &format!("{layer}: digest mismatch: the content hashes to sha256:"),
    );
    assert!(
        stderr(&output).contains("tampered with"),
        "{}",
        stderr(&output)
    );
    assert_untouched(work.path(), &target, &before);
    assert_not_cached(work.path(), &layer);
}

#[test]
fn an_interrupted_download_leaves_the_old_rootfs_and_no_debris() {
    let work = tempfile::tempdir().unwrap();
    let (layout, manifest, layer, _) = busybox_image(work.path());
    let serve = fixtures::registry_handler(&layout, &manifest, None);
    let slow_layer = format!("/v2/busybox/blobs/{layer}");
    let server = Server::start(move |request| {
        let mut response = serve(request);
        if request.path == slow_layer {
            response.trickle = Some(Duration::from_millis(5));
        }
        response
    });
    let (target, before) = old_rootfs(work.path());

    let source = format!("docker://127.0.0.1:{}/busybox:latest", server.port);
    let child = rootfs_fetch(work.path(), &[&source, &target])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.paths().iter().any(|path| path.contains(&layer)) {
        assert!(Instant::now() < deadline, "the layer was never asked for");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "Ctrl-C must stop the download promptly"
    );
    assert_error(&output, "interrupted");
    assert_untouched(work.path(), &target, &before);
    assert_not_cached(work.path(), &layer);
}

#[test]
fn without_a_source_an_unreachable_registry_means_the_host_busybox() {
    let work = tempfile::tempdir().unwrap();
    let nobody_listens = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let output = rootfs_fetch(work.path(), &[])
        .env(
            "BENTO_DEFAULT_IMAGE",
            format!("docker://{nobody_listens}/busybox:latest"),
        )
        .output()
        .unwrap();
    assert_ok(&output);
    assert!(started.elapsed() < Duration::from_secs(5), "no long wait");
    let printed = stderr(&output);
    assert!(
        printed.contains(&format!(
            "cannot reach {nobody_listens}: Connection refused"
        )),
        "{printed}"
    );
    assert!(printed.contains("using the host's static busybox instead"));
    assert!(printed.contains("rootfs is ready, made from the host's static busybox"));
    assert!(work.path().join("rootfs/bin/busybox").is_file());

    // Named explicitly, an unreachable registry is an error, with the offline way out.
    let source = format!("docker://{nobody_listens}/busybox:latest");
    let output = fetch(work.path(), &[&source, &"other"]);
    assert_error(&output, &format!("cannot reach {nobody_listens}"));
    assert!(stderr(&output).contains("hint: offline? `rootfs-fetch busybox:`"));
}

/// A plain-HTTP URL on another machine (TEST-NET-1, RFC 5737: reserved for examples, no
/// server has it). It is only ever handed to rootfs-fetch to be refused: nothing may
/// connect to it.
const ELSEWHERE: &str = "http://192.0.2.1";

/// How long rootfs-fetch may take to refuse a URL: well under its 5 s connect timeout, so
/// that a refusal cannot be mistaken for a failed connection.
const REFUSED_AT_ONCE: Duration = Duration::from_secs(3);

/// Runs `rootfs-fetch ARGS` with the limits of its downloads shortened (in seconds:
/// `read`, without a byte; `total`, for one answer), and how long it took. Fails (and
/// kills it) if it is still running after 20 s, as it would without the limits.
fn fetch_with_limits(
    work: &Path,
    args: &[&dyn AsRef<std::ffi::OsStr>],
    read: u64,
    total: u64,
) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = rootfs_fetch(work, args)
        .env("BENTO_FETCH_READ_TIMEOUT", read.to_string())
        .env("BENTO_FETCH_TIMEOUT", total.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "rootfs-fetch was not cut off after 20 s:\n{}",
                stderr(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

/// A digest as rootfs-fetch shows it: `sha256:` and 12 hex digits.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

/// The test server playing the busybox registry, with `change` deciding the answer to
/// the requests it returns Some for.
fn registry_but(
    layout: &Layout,
    manifest: &serde_json::Value,
    change: impl Fn(&fixtures::Request) -> Option<Response> + Send + Sync + 'static,
) -> Server {
    let serve = fixtures::registry_handler(layout, manifest, None);
    Server::start(move |request| change(request).unwrap_or_else(|| serve(request)))
}

#[test]
fn a_redirect_to_plain_http_on_another_machine_is_refused_without_connecting() {
    let work = tempfile::tempdir().unwrap();
    let (layout, manifest, layer, _) = busybox_image(work.path());
    let (target, before) = old_rootfs(work.path());
    let blob = format!("/v2/busybox/blobs/{layer}");
    for (redirected, location, absolute) in [
        (
            "/v2/busybox/manifests/latest".to_string(),
            format!("{ELSEWHERE}/v2/busybox/manifests/latest"),
            format!("{ELSEWHERE}/v2/busybox/manifests/latest"),
        ),
        (
            blob.clone(),
            format!("{ELSEWHERE}/blobs/{layer}?signed=1"),
            format!("{ELSEWHERE}/blobs/{layer}?signed=1"),
        ),
        // Without a scheme, the location keeps the request's: http.
        (
            blob.clone(),
            format!("//192.0.2.1/blobs/{layer}"),
            format!("{ELSEWHERE}/blobs/{layer}"),
        ),
    ] {
        let path = redirected.clone();
        let server = registry_but(&layout, &manifest, move |request| {
            (request.path == path).then(|| Response::new(307, "").header("Location", &location))
        });
        let source = format!("docker://127.0.0.1:{}/busybox:latest", server.port);
        let error = format!(
            "registry 127.0.0.1:{} redirects to {absolute}: refused, plain HTTP goes only to this machine",
            server.port
        );
        refused_at_once(work.path(), &[&source, &target], &error);
        assert!(server.paths().contains(&redirected), "{:?}", server.paths());
        assert_untouched(work.path(), &target, &before);
        assert_not_cached(work.path(), &layer);
    }
}

/// Runs rootfs-fetch and checks that it refused plain HTTP to another machine with `error`
/// and the hint, at once: before any connection, not after one failed.
fn refused_at_once(work: &Path, args: &[&dyn AsRef<std::ffi::OsStr>], error: &str) {
    let started = Instant::now();
    let output = fetch(work, args);
    let took = started.elapsed();
    assert_error(&output, error);
    assert!(
        stderr(&output).contains("hint: plain HTTP can be read and changed on the way"),
        "{}",
        stderr(&output)
    );
    assert!(took < REFUSED_AT_ONCE, "took {took:?}");
}

#[test]
fn a_token_realm_over_plain_http_on_another_machine_is_refused_without_connecting() {
    let work = tempfile::tempdir().unwrap();
    let (target, before) = old_rootfs(work.path());
    let registry = Server::start(|_| {
        Response::new(
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
        .header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="{ELSEWHERE}/token",service="test""#),
        )
    });
    let source = format!("docker://127.0.0.1:{}/busybox:latest", registry.port);
    let error = format!(
        "registry 127.0.0.1:{} asks for a token at {ELSEWHERE}/token: refused, plain HTTP goes only to this machine",
        registry.port
    );
    refused_at_once(work.path(), &[&source, &target], &error);
    assert_eq!(registry.paths(), ["/v2/busybox/manifests/latest"]);
    assert_untouched(work.path(), &target, &before);
}

#[test]
fn redirects_on_this_machine_are_followed_and_the_token_stays_with_the_registry() {
    let work = tempfile::tempdir().unwrap();
    let (layout, manifest, layer, _) = busybox_image(work.path());
    let tokens = Server::start(|_| Response::new(200, r#"{"token":"t0ken"}"#));
    let realm = format!("http://127.0.0.1:{}/token", tokens.port);
    // Another server on this machine (another port: another origin) holds the layer, as a
    // CDN would, without asking for a token.
    let storage = serve_layout(&layout, &manifest, None);
    let layer_path = format!("/v2/busybox/blobs/{layer}");
    let stored_at = format!("http://127.0.0.1:{}{layer_path}", storage.port);
    let digest = manifest["digest"].as_str().unwrap().to_string();
    let serve = fixtures::registry_handler(&layout, &manifest, None);
    let redirected = layer_path.clone();
    let registry = Server::start(move |request| {
        if request.headers.get("authorization").map(String::as_str) != Some("Bearer t0ken") {
            return Response::new(401, "").header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="test""#),
            );
        }
        match request.path.as_str() {
            // A redirect to a path stays on the registry: the token goes with it.
            "/v2/busybox/manifests/latest" => Response::new(307, "")
                .header("Location", &format!("/v2/busybox/manifests/{digest}")),
            path if path == redirected => Response::new(307, "").header("Location", &stored_at),
            _ => serve(request),
        }
    });
    let source = format!("docker://127.0.0.1:{}/busybox:latest", registry.port);

    let output = fetch(work.path(), &[&source, &"rootfs"]);
    assert_ok(&output);
    assert!(work.path().join("rootfs/bin/busybox").is_file());
    let sent = storage.requests.lock().unwrap().clone();
    assert_eq!(
        sent.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        [layer_path.as_str()]
    );
    assert_eq!(
        sent[0].headers.get("authorization"),
        None,
        "the registry's token was sent to another server"
    );
}

#[test]
fn a_download_that_stalls_is_cut_off_with_a_clear_message() {
    let work = tempfile::tempdir().unwrap();
    let (layout, manifest, layer, _) = busybox_image(work.path());
    let (target, before) = old_rootfs(work.path());
    for (stalled, sent, what) in [
        // Headers, then silence.
        (
            "/v2/busybox/manifests/latest".to_string(),
            0,
            "the manifest".to_string(),
        ),
        // Part of the layer, then silence.
        (
            format!("/v2/busybox/blobs/{layer}"),
            1000,
            format!("blob {}", short(&layer)),
        ),
    ] {
        let serve = fixtures::registry_handler(&layout, &manifest, None);
        let server = Server::start(move |request| {
            let mut response = serve(request);
            if request.path == stalled {
                response.stall_after = Some(sent);
            }
            response
        });
        let source = format!("docker://127.0.0.1:{}/busybox:latest", server.port);

        let (output, took) = fetch_with_limits(work.path(), &[&source, &target], 1, 60);
        assert_error(
            &output,
            &format!(
                "registry 127.0.0.1:{} stopped sending (no data for 1 s) while downloading {what}",
                server.port
            ),
        );
        assert!(
            stderr(&output).contains("try again later (BENTO_FETCH_READ_TIMEOUT=SECONDS "),
            "{}",
            stderr(&output)
        );
        assert!(took < Duration::from_secs(10), "cut off after {took:?}");
        assert_untouched(work.path(), &target, &before);
        assert_not_cached(work.path(), &layer);
    }
}

#[test]
fn a_download_that_trickles_forever_is_cut_off_by_the_deadline() {
    let work = tempfile::tempdir().unwrap();
    let (layout, manifest, layer, size) = busybox_image(work.path());
    // At 1 KiB per 200 ms the layer would take minutes, and no read waits a second.
    assert!(
        size > 100 * 1024,
        "the layer is too small to trickle for long"
    );
    let slow = format!("/v2/busybox/blobs/{layer}");
    let serve = fixtures::registry_handler(&layout, &manifest, None);
    let server = Server::start(move |request| {
        let mut response = serve(request);
        if request.path == slow {
            response.trickle = Some(Duration::from_millis(200));
        }
        response
    });
    let (target, before) = old_rootfs(work.path());
    let source = format!("docker://127.0.0.1:{}/busybox:latest", server.port);

    let (output, took) = fetch_with_limits(work.path(), &[&source, &target], 1, 2);
    assert_error(
        &output,
        &format!(
            "registry 127.0.0.1:{} is too slow: blob {} took more than 2 s",
            server.port,
            short(&layer)
        ),
    );
    assert!(
        stderr(&output).contains("try again later (BENTO_FETCH_TIMEOUT=SECONDS "),
        "{}",
        stderr(&output)
    );
    assert!(took < Duration::from_secs(10), "cut off after {took:?}");
    assert_untouched(work.path(), &target, &before);
    assert_not_cached(work.path(), &layer);
}

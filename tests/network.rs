//! bento's network: `--network none|slirp|slirp:host-loopback` and `-p [IP:]HOST:CTR`,
//! rootless (as nobody when the suite runs as root).
//!
//! Traffic goes only to the host's loopback and to addresses inside the namespaces the
//! tests make: from the host to 127.0.0.1:PORT published by the container's busybox
//! httpd, and from the container to a server of the test's on the host's 127.0.0.1,
//! reached at 10.0.2.2 (slirp4netns's mapping of the host's loopback). Loops are bounded,
//! and every process the containers' states name is killed by pid, even when a test fails
//! (tests/boxes).

mod boxes;
mod common;
mod fixtures;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use boxes::{Boxes, CANNOT_PUBLISH, NO_NETWORK, USAGE, image, started_at};
use common::{eventually, running_as_root};

/// A port of the host's 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `GET /` on the host's 127.0.0.1:`port`: the body of a `200` answer within 2 s.
fn get(port: u16) -> Option<String> {
    get_within(port, Duration::from_secs(2))
}

/// [`get`], waiting up to `wait` to connect and to read (fifty at once through slirp4netns
/// on a loaded machine take longer than one).
fn get_within(port: u16, wait: Duration) -> Option<String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, wait).ok()?;
    stream.set_read_timeout(Some(wait)).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let first = head.lines().next()?;
    first.contains(" 200 ").then(|| body.to_string())
}

/// The helpers (slirp4netns, the port relay) the state of `name` names.
fn helpers(boxes: &Boxes, name: &str) -> Vec<(i32, u64)> {
    let state = boxes.state(name);
    let helpers = state["network"]["helpers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    helpers
        .iter()
        .map(|helper| {
            let pid = helper["pid"].as_i64().unwrap() as i32;
            (pid, helper["start"].as_u64().unwrap())
        })
        .collect()
}

/// Asserts that the port is free again and that no helper is left.
fn nothing_left(port: u16, helpers: &[(i32, u64)]) {
    for &(pid, start) in helpers {
        assert_ne!(
            started_at(pid),
            Some(start),
            "helper {pid} is still running"
        );
    }
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "127.0.0.1:{port} is still held"
    );
}

/// The script of a container that serves `body` with busybox httpd on its port 80.
fn serving(body: &str) -> String {
    format!("mkdir /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www")
}

#[test]
fn a_published_port_reaches_the_containers_httpd_until_the_container_is_removed() {
    let boxes = Boxes::rootless();
    let port = free_port();
    let publish = format!("{port}:80");
    let script = serving("hello from the container");
    let args = [
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        image(),
        "sh",
        "-c",
        &script,
    ];
    boxes.ok(&args);
    eventually("httpd answers on the published port", || {
        get(port).is_some()
    });
    // Fifty at once, each relayed on a connection of its own.
    let answers: Vec<_> = (0..50)
        .map(|_| std::thread::spawn(move || get_within(port, Duration::from_secs(15))))
        .collect();
    for answer in answers {
        let answer = answer.join().unwrap();
        assert_eq!(answer.as_deref(), Some("hello from the container\n"));
    }
    let status = boxes.ok(&["status", "web"]);
    assert!(
        status.contains("network   slirp\n")
            && status.contains(&format!("ports     127.0.0.1:{port}->80/tcp\n")),
        "{status}"
    );
    let state = boxes.state("web");
    assert_eq!(
        state["network"]["ports"][0]["host"],
        format!("127.0.0.1:{port}")
    );
    assert_eq!(state["network"]["ports"][0]["container"], 80);
    let helpers = helpers(&boxes, "web");
    assert_eq!(helpers.len(), 2, "slirp4netns and the relay: {state}");
    // A second container asking for the port: one line, and nothing made.
    let again = [
        "run",
        "-d",
        "--name",
        "web2",
        "-p",
        &publish,
        image(),
        "true",
    ];
    let in_use = format!("cannot publish 127.0.0.1:{port}: Address already in use");
    boxes.run(&again).refused(CANNOT_PUBLISH, &in_use);
    assert_eq!(boxes.entries(), ["web"]);
    assert_eq!(get(port).as_deref(), Some("hello from the container\n"));
    boxes.ok(&["rm", "-f", "web"]);
    nothing_left(port, &helpers);
    assert_eq!(boxes.entries(), [""; 0]);
}

#[test]
fn an_attached_run_publishes_its_port_until_it_ends() {
    use nix::sys::signal::{Signal, kill};
    let boxes = Boxes::rootless();
    let port = free_port();
    let publish = format!("{port}:80");
    // httpd in the background; the shell, PID 1, ends on SIGTERM (a trap), within 0.1 s.
    let script = "trap 'exit 0' TERM; mkdir /www; echo attached > /www/index.html; \
                  httpd -p 80 -h /www; while :; do sleep 0.1; done";
    let args = [
        "run",
        "--rm",
        "--name",
        "fg",
        "-p",
        &publish,
        image(),
        "sh",
        "-c",
        script,
    ];
    let bento = boxes.with_tun("666", &args).spawn().unwrap();
    let started = Instant::now();
    let mut answer = None;
    while answer.is_none() && started.elapsed() < Duration::from_secs(10) {
        answer = get(port);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(answer.as_deref(), Some("attached\n"));
    let helpers = helpers(&boxes, "fg");
    // bento run passes SIGTERM on to PID 1, and stops the network once it has ended.
    kill(
        nix::unistd::Pid::from_raw(bento.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    let output = bento.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    nothing_left(port, &helpers);
    assert_eq!(boxes.entries(), [""; 0]);
}

#[test]
fn a_container_reaches_a_server_on_the_hosts_loopback_at_10_0_2_2_when_asked() {
    let boxes = Boxes::rootless();
    let server = common::LoopbackServer::start("hello from the host's loopback\n");
    let url = format!("http://10.0.2.2:{}/", server.port);
    // (busybox's `wget -T` crashes in 1.35: `timeout` bounds it instead.)
    let wget = ["timeout", "5", "wget", "-q", "-O", "-", &url];
    let asked = [
        &["run", "--rm", "--network", "slirp:host-loopback", image()][..],
        &wget,
    ]
    .concat();
    let out = boxes.run(&asked);
    // By default, as with podman, the host's loopback is out of the container's reach.
    let default = boxes.run(&[&["run", "--rm", image()][..], &wget].concat());
    assert_eq!(server.stop(), 1, "the server saw one request");
    assert_eq!(out.success(), "hello from the host's loopback\n");
    default.status(1);
    // The default network: lo, and tap0 with slirp4netns's address and the default route;
    // names through slirp4netns's DNS forwarder.
    let script = "ip -o -4 addr | cut -d ' ' -f 2,7; ip route; cat /etc/resolv.conf";
    assert_eq!(
        boxes.ok(&["run", "--rm", image(), "sh", "-c", script]),
        "lo 127.0.0.1/8\ntap0 10.0.2.100/24\ndefault via 10.0.2.2 dev tap0 \n\
         10.0.2.0/24 dev tap0 scope link  src 10.0.2.100 \nnameserver 10.0.2.3\n"
    );
    // Without a way out, no DNS server: the image's /etc (here without a resolv.conf).
    let none = ["run", "--rm", "--network", "none", image(), "ls", "/etc"];
    assert!(!boxes.ok(&none).contains("resolv.conf"));
    let only_lo = boxes.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        image(),
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(only_lo.lines().count(), 1, "{only_lo}");
    assert!(only_lo.contains(": lo: "), "{only_lo}");
    assert_eq!(boxes.entries(), [""; 0]);
}

#[test]
fn where_slirp4netns_cannot_work_the_default_is_lo_alone_said_in_one_line() {
    let boxes = Boxes::rootless();
    // No slirp4netns on the PATH.
    let mut command = boxes.command(&["run", "--rm", image(), "ip", "-o", "link"]);
    let output = command.env("PATH", "/nonexistent").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        1,
        "only lo"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "bento: only lo for this container: slirp4netns is not installed (`sudo apt install \
         slirp4netns` gives it a network; --network none says so)\n"
    );
    if !running_as_root() {
        common::skipped("only root can give bento a /dev/net/tun of mode 0600 of its own");
        return;
    }
    // A /dev/net/tun of mode 0600, root's (bento runs as nobody).
    let run = |args: &[&str]| boxes::Out::of(args, boxes.with_tun("600", args));
    let out = run(&["run", "--rm", image(), "ip", "-o", "link"]);
    assert_eq!(out.success().lines().count(), 1, "only lo");
    assert_eq!(
        out.stderr(),
        "bento: only lo for this container: /dev/net/tun is not usable: Permission denied (os \
         error 13) (`sudo chmod 0666 /dev/net/tun` (its stock mode on Debian and Ubuntu) gives \
         it a network; --network none says so)\n"
    );
    // Asked for, a network that cannot work is refused, before anything is made.
    run(&["run", "--rm", "--network", "slirp", image(), "true"])
        .refused(NO_NETWORK, "/dev/net/tun is not usable");
    run(&["run", "-d", "--name", "p", "-p", "8080:80", image(), "true"])
        .refused(NO_NETWORK, "/dev/net/tun is not usable");
    let quiet = run(&["run", "--rm", "--network", "none", image(), "true"]);
    assert_eq!(quiet.success(), "");
    assert_eq!(quiet.stderr(), "");
    assert_eq!(boxes.entries(), [""; 0]);
}

#[test]
fn a_bad_network_or_port_is_one_line_and_a_hint() {
    let boxes = Boxes::rootless();
    let refused = |args: &[&str], code, text| {
        let args = [
            &["run", "-d", "--name", "bad"][..],
            args,
            &[image(), "true"],
        ]
        .concat();
        boxes.run(&args).refused(code, text);
    };
    refused(
        &["-p", "80"],
        USAGE,
        "-p 80: not [IP:]HOST_PORT:CONTAINER_PORT",
    );
    refused(&["-p", "0:80"], USAGE, "-p 0:80: not");
    refused(
        &["-p", "localhost:8080:80"],
        USAGE,
        "-p localhost:8080:80: not",
    );
    refused(
        &["-p", "8080:80", "-p", "8080:81"],
        USAGE,
        "host port 8080 is published twice",
    );
    refused(
        &["--network", "bridge"],
        USAGE,
        "--network bridge: not a network bento knows",
    );
    refused(
        &["--network", "none", "-p", "8080:80"],
        USAGE,
        "-p needs a network",
    );
    // TEST-NET-2 (RFC 5737): an address of no host here; bind(2) refuses it, nothing is sent.
    let elsewhere = format!("198.51.100.7:{}:80", free_port());
    refused(
        &["-p", &elsewhere],
        CANNOT_PUBLISH,
        "Cannot assign requested address",
    );
    let unprivileged = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .is_ok_and(|start| start.trim() == "1024");
    if unprivileged {
        refused(&["-p", "80:80"], CANNOT_PUBLISH, "Permission denied");
    }
    assert_eq!(boxes.entries(), [""; 0], "nothing is left");
}

//! Step 12, `-p`: ports the host can reach.
//!
//! `-p 8080:80` makes the host's 127.0.0.1:8080 reach port 80 in the container. The
//! lesson: a socket belongs to the network namespace it was created in
//! (network_namespaces(7)), whoever holds it later. So the supervisor binds the listening
//! sockets on the host, before it leaves the host's namespaces ([`listen`]: a port in use
//! fails there, before anything is made), and fork(2) leaves them with a helper, the
//! relay, which then joins the container's user and network namespaces ([`relay`]):
//! every socket it makes from then on is made inside. For each connection it accepts on
//! the host, it connects to 127.0.0.1:CTR on the container's own `lo`, and copies bytes
//! both ways. podman's rootless port forwarder (rootlessport) works the same way.
//!
//! Where bento simplifies: TCP only, IPv4 only, and the container sees every connection
//! come from 127.0.0.1 (rootlessport too; slirp4netns's own forwarding keeps the client's
//! address, at the cost of going through the user-mode stack).

use std::fs::File;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, setns};
use serde::{Deserialize, Serialize};

use crate::errors::Refusal;
use crate::message::{self, Message};

/// One `-p`: connections to `host` reach `container` inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub host: SocketAddr,
    pub container: u16,
}

impl Port {
    /// As `-p` takes it: `IP:HOST:CTR`.
    pub fn option(&self) -> String {
        format!("{}:{}", self.host, self.container)
    }
}

impl std::fmt::Display for Port {
    /// As podman shows it: `127.0.0.1:8080->80/tcp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}->{}/tcp", self.host, self.container)
    }
}

const PUBLISH_HINT: &str = "-p takes [IP:]HOST_PORT:CONTAINER_PORT, ports from 1 to 65535, \
                            e.g. `bento run -p 8080:80 busybox httpd -f -p 80`";

/// The `-p` values, checked: one line and a hint for a bad one (status 2, bad usage).
pub fn parse(values: &[String]) -> Result<Vec<Port>> {
    let mut ports: Vec<Port> = Vec::new();
    for value in values {
        let publish = plumbing::parse_publish(value).map_err(|error| {
            plumbing::with_status(2, plumbing::hinted(format!("{error:#}"), PUBLISH_HINT))
        })?;
        if ports
            .iter()
            .any(|port| port.host.port() == publish.host.port())
        {
            return Err(plumbing::with_status(
                2,
                plumbing::hinted(
                    format!("host port {} is published twice", publish.host.port()),
                    "each -p needs a host port of its own",
                ),
            ));
        }
        ports.push(Port {
            host: publish.host,
            container: publish.container,
        });
    }
    Ok(ports)
}

/// socket(2), bind(2), listen(2) on each host address, in the host's network namespace,
/// with each one's container port.
pub fn listen(ports: &[Port]) -> Result<Vec<(TcpListener, u16)>> {
    let mut listeners = Vec::new();
    for port in ports {
        let listener = TcpListener::bind(port.host).map_err(|error| {
            let hint = match error.kind() {
                ErrorKind::AddrInUse => {
                    "another program listens there (`bento status --all` shows the containers' \
                     ports): choose another host port"
                }
                ErrorKind::PermissionDenied => "ports below 1024 are root's: use 1024 or above",
                ErrorKind::AddrNotAvailable => "that address is not one of this host's",
                _ => PUBLISH_HINT,
            };
            Refusal::CannotPublish.error(format!("cannot publish {}: {error}", port.host), hint)
        })?;
        listeners.push((listener, port.container));
    }
    Ok(listeners)
}

/// The relay, in its helper (network.rs), once the supervisor is in the container's
/// namespaces: joins them, says so on `report`, then serves every listener, each from a
/// thread of its own, until it is killed. Returns only on failure.
pub fn relay(listeners: Vec<(TcpListener, u16)>, report: OwnedFd) -> Result<()> {
    join_network_of(nix::unistd::getppid())?;
    message::send(&report, Message::Ready)?;
    for (listener, port) in listeners {
        std::thread::Builder::new()
            .spawn(move || {
                for client in listener.incoming().flatten() {
                    let _ = std::thread::Builder::new()
                        .stack_size(64 * 1024)
                        .spawn(move || relay_connection(client, port));
                }
            })
            .context("cannot start the relay's thread")?;
    }
    loop {
        std::thread::park();
    }
}

/// setns(2) into the user namespace of `pid` (we own it: joining gives us its
/// capabilities, which joining its network namespace needs), then its network
/// namespace. One we are in already is skipped (as root there is no user namespace, and
/// setns(2) refuses to re-enter our own).
fn join_network_of(pid: nix::unistd::Pid) -> Result<()> {
    for (name, flag) in [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("net", CloneFlags::CLONE_NEWNET),
    ] {
        let path = format!("/proc/{pid}/ns/{name}");
        let theirs = File::open(&path).with_context(|| format!("cannot open {path}"))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))?;
        let meta = theirs.metadata()?;
        if (meta.dev(), meta.ino()) == (ours.dev(), ours.ino()) {
            continue;
        }
        setns(&theirs, flag).with_context(|| format!("cannot join {path}"))?;
    }
    Ok(())
}

/// One connection: connect to `port` on the container's `lo`, and copy each way in a
/// thread of its own (read(2), write(2)); when a side has sent all it will, shutdown(2)
/// passes that on. TCP_NODELAY: the relay adds no delay of its own to small writes.
fn relay_connection(client: TcpStream, port: u16) {
    let Ok(inside) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return; // nothing listens inside (yet): the client sees its connection closed
    };
    let _ = client.set_nodelay(true);
    let _ = inside.set_nodelay(true);
    let (Ok(mut from_client), Ok(mut to_client)) = (client.try_clone(), client.try_clone()) else {
        return;
    };
    let (Ok(mut to_inside), Ok(mut from_inside)) = (inside.try_clone(), inside.try_clone()) else {
        return;
    };
    let back = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = std::io::copy(&mut from_inside, &mut to_client);
            let _ = to_client.shutdown(Shutdown::Write);
        });
    let _ = std::io::copy(&mut from_client, &mut to_inside);
    let _ = to_inside.shutdown(Shutdown::Write);
    if let Ok(back) = back {
        let _ = back.join();
    }
}

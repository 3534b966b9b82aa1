//! The command line and the root filesystem, checked before any isolation starts.

use std::ffi::{CStr, CString, OsString};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::errors::{Hint, missing_command};

/// The command a step runs when none is given.
const DEFAULT_COMMAND: &CStr = c"/bin/sh";

/// Where steps 04+ look for a root filesystem when `$BENTO_ROOTFS` is not set: `rootfs/`
/// at the top of the workshop repository (what `just rootfs` builds).
const DEFAULT_ROOTFS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rootfs");

const ROOTFS_HINT: &str = "run `just rootfs` to build one, or point BENTO_ROOTFS at one";

/// The command to run in the container, as `execvp(3)` wants it: the step's arguments,
/// or `/bin/sh` when there are none.
pub fn command() -> Result<Vec<CString>> {
    command_from(std::env::args_os().skip(1).collect())
}

/// A port published with `-p [IP:]HOST_PORT:CONTAINER_PORT`: connections to `host` (on
/// 127.0.0.1 unless an address is given) reach `container` inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    pub host: SocketAddr,
    pub container: u16,
}

const PUBLISH_HINT: &str = "-p takes [IP:]HOST_PORT:CONTAINER_PORT, ports from 1 to 65535, \
                            e.g. `just step 12 -p 8080:80 httpd -f -p 80`";

/// Step 12's command line: `-p [IP:]HOST_PORT:CONTAINER_PORT` options first (any number,
/// `--` ends them), then the command, as [`command`] takes it.
pub fn ports_and_command() -> Result<(Vec<Publish>, Vec<CString>)> {
    let (ports, rest) = split_ports(std::env::args_os().skip(1).collect())?;
    Ok((ports, command_from(rest)?))
}

/// The leading `-p VALUE` (or `-pVALUE`) options, and the arguments after them.
fn split_ports(args: Vec<OsString>) -> Result<(Vec<Publish>, Vec<OsString>)> {
    let mut ports: Vec<Publish> = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.peek().and_then(|arg| arg.to_str()) {
        let value = match arg {
            "--" => {
                args.next();
                break;
            }
            "-p" => {
                args.next();
                let value = args.next().context("-p needs a value").hint(PUBLISH_HINT)?;
                value.to_string_lossy().into_owned()
            }
            _ if arg.starts_with("-p") => {
                let value = arg["-p".len()..].to_string();
                args.next();
                value
            }
            _ => break,
        };
        let port = parse_publish(&value)?;
        if ports
            .iter()
            .any(|other| other.host.port() == port.host.port())
        {
            return Err(anyhow::anyhow!(
                "host port {} is published twice",
                port.host.port()
            ))
            .hint("each -p needs a host port of its own");
        }
        ports.push(port);
    }
    Ok((ports, args.collect()))
}

/// `[IP:]HOST_PORT:CONTAINER_PORT` (step 12's `-p`, and bento's).
pub fn parse_publish(value: &str) -> Result<Publish> {
    let bad = || anyhow::anyhow!("-p {value}: not [IP:]HOST_PORT:CONTAINER_PORT");
    let port = |text: &str| text.parse::<u16>().ok().filter(|&port| port != 0);
    let fields: Vec<&str> = value.split(':').collect();
    let (ip, host, container) = match fields[..] {
        [host, container] => (Ipv4Addr::LOCALHOST, host, container),
        [ip, host, container] => match ip.parse() {
            Ok(ip) => (ip, host, container),
            Err(_) => return Err(bad()).hint(PUBLISH_HINT),
        },
        _ => return Err(bad()).hint(PUBLISH_HINT),
    };
    match (port(host), port(container)) {
        (Some(host), Some(container)) => Ok(Publish {
            host: SocketAddr::from((ip, host)),
            container,
        }),
        _ => Err(bad()).hint(PUBLISH_HINT),
    }
}

/// [`command`], from the arguments given.
fn command_from(args: Vec<OsString>) -> Result<Vec<CString>> {
    let args: Vec<CString> = args
        .into_iter()
        .map(|arg| CString::new(arg.into_vec()))
        .collect::<Result<_, _>>()
        .context("an argument contains a NUL byte")?;
    match args.first() {
        None => Ok(vec![CString::from(DEFAULT_COMMAND)]),
        Some(program) if program.is_empty() => Err(anyhow::anyhow!("the command is empty"))
            .hint("give a program to run, e.g. `just step 2 hostname`, or nothing for a shell"),
        Some(_) => Ok(args),
    }
}

/// The root filesystem for steps 04+: `$BENTO_ROOTFS`, or `rootfs/` at the top of the
/// repository. Checked up front so that a missing rootfs is a clear error rather than a
/// failed mount halfway through isolation: it must be a directory, and when the command
/// is a path (like the default `/bin/sh`) that path must exist inside it.
pub fn rootfs(command: &[CString]) -> Result<PathBuf> {
    let (path, origin) = rootfs_location()?;
    let shown = display(&path);
    let metadata = std::fs::metadata(&path)
        .with_context(|| format!("no root filesystem at {shown} ({origin})"))
        .hint(ROOTFS_HINT)?;
    if !metadata.is_dir() {
        return Err(anyhow::anyhow!(
            "{shown} ({origin}) is not a directory, so it cannot be a root filesystem"
        ))
        .hint(ROOTFS_HINT);
    }
    let path = path
        .canonicalize()
        .with_context(|| format!("cannot resolve {shown}"))?;

    if let Some(program) = command.first() {
        let is_default = program.as_c_str() == DEFAULT_COMMAND;
        let program = program.to_string_lossy();
        if program.contains('/') {
            let inside = path.join(program.trim_start_matches('/'));
            // symlink_metadata: busybox's applets are symlinks, and an absolute symlink
            // means a path inside the container, not on the host.
            if inside.symlink_metadata().is_err() {
                let message = format!("the root filesystem {shown} has no {program}");
                if is_default {
                    // No command was named: what is wrong is the rootfs, a setup failure.
                    return Err(anyhow::anyhow!(message)).hint(format!(
                        "{shown} does not look like a root filesystem: {ROOTFS_HINT}"
                    ));
                }
                // A command that does not exist exits 127, however it is named.
                return Err(missing_command(
                    message,
                    format!("the command must exist inside the container: try `ls {shown}`"),
                ));
            }
        }
    }
    Ok(path)
}

/// Where the root filesystem should be, and what says so: `$BENTO_ROOTFS`, or `rootfs/` at
/// the top of the repository.
pub fn rootfs_location() -> Result<(PathBuf, &'static str)> {
    match std::env::var_os("BENTO_ROOTFS") {
        Some(path) if path.is_empty() => {
            Err(anyhow::anyhow!("BENTO_ROOTFS is set but empty")).hint(ROOTFS_HINT)
        }
        Some(path) => Ok((PathBuf::from(path), "BENTO_ROOTFS")),
        None => Ok((clean(Path::new(DEFAULT_ROOTFS)), "the default rootfs")),
    }
}

/// A path as people would type it: relative to the current directory when it is inside it.
fn display(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let normal: PathBuf = absolute.components().collect();
    let normal = clean(&normal);
    std::env::current_dir()
        .ok()
        .and_then(|cwd| normal.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|relative| !relative.as_os_str().is_empty())
        .unwrap_or(normal)
        .display()
        .to_string()
}

/// Removes `..` components lexically (`/repo/procinfo/../rootfs` → `/repo/rootfs`).
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A size as people write it: a number of bytes, or with k, m, g or t (powers of 1024, in
/// either case, optionally followed by `b`): `64m`, `512K`, `20GB`. Zero is not a size.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim().to_ascii_lowercase();
    let number = trimmed.strip_suffix('b').unwrap_or(&trimmed);
    let (digits, shift) = match number.char_indices().last() {
        Some((at, 'k')) => (&number[..at], 10),
        Some((at, 'm')) => (&number[..at], 20),
        Some((at, 'g')) => (&number[..at], 30),
        Some((at, 't')) => (&number[..at], 40),
        _ => (number, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a size: write e.g. 64m, 512k, 1g or 20G"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("64MB"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("20G"), Ok(20 << 30));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("100b"), Ok(100));
        for bad in ["", "0", "0m", "m", "-1", "1.5g", "12x", "99999999999t"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    fn split(args: &[&str]) -> Result<(Vec<Publish>, Vec<OsString>)> {
        split_ports(args.iter().map(OsString::from).collect())
    }

    fn publish(ip: [u8; 4], host: u16, container: u16) -> Publish {
        Publish {
            host: SocketAddr::from((ip, host)),
            container,
        }
    }

    #[test]
    fn ports_come_first_then_the_command() {
        let (ports, rest) =
            split(&["-p", "8080:80", "-p0.0.0.0:9000:90", "httpd", "-p", "80"]).unwrap();
        assert_eq!(
            ports,
            [
                publish([127, 0, 0, 1], 8080, 80),
                publish([0, 0, 0, 0], 9000, 90)
            ]
        );
        assert_eq!(rest, ["httpd", "-p", "80"]);
        let (ports, rest) = split(&["--", "-p", "1:2"]).unwrap();
        assert!(ports.is_empty());
        assert_eq!(rest, ["-p", "1:2"]);
        assert_eq!(split(&[]).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn a_bad_port_is_one_line_with_a_hint() {
        for (args, error) in [
            (&["-p"][..], "-p needs a value"),
            (&["-p", "80"], "-p 80: not [IP:]HOST_PORT:CONTAINER_PORT"),
            (
                &["-p", "0:80"],
                "-p 0:80: not [IP:]HOST_PORT:CONTAINER_PORT",
            ),
            (
                &["-p", "8080:70000"],
                "-p 8080:70000: not [IP:]HOST_PORT:CONTAINER_PORT",
            ),
            (
                &["-p", "localhost:1:2"],
                "-p localhost:1:2: not [IP:]HOST_PORT:CONTAINER_PORT",
            ),
            (
                &["-p", "1:2", "-p", "1:3"],
                "host port 1 is published twice",
            ),
        ] {
            let found = split(args).unwrap_err();
            assert_eq!(format!("{found:#}"), error, "{args:?}");
        }
    }
}

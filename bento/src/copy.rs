//! `bento cp`: files and directories between the host and a container, by podman cp's
//! rules, and by the same rule as image extraction (rootfs-fetch's extract.rs): inside a
//! container, every path is resolved *beneath its root's descriptor* (openat2(2)
//! RESOLVE_IN_ROOT), so that its symlinks (`/etc -> /`, a file replaced by a symlink to
//! `/etc/shadow`) and `..` lead to its own files, never to the host's; and below that,
//! every entry is opened relative to its directory's descriptor without following a
//! symlink, on both sides.
//!
//! Which root: a created or running container's is PID 1's own (`/proc/PID/root`, proc(5)):
//! the overlay as the container sees it, the kernel doing the copy-up and the whiteouts.
//! A stopped container's layers are mounted again for the copy, in a mount namespace of
//! our own (and a user namespace, rootless) that dies with `bento cp`: reads see its layer
//! over the image, writes go to its layer, and what it deleted stays deleted (overlayfs's
//! whiteouts and opaque directories, the kernel's overlayfs.rst).
//!
//! The destination, as podman cp has it: an existing directory receives SRC under its
//! own name (`SRC/.`: its contents); an existing file is replaced; a new name becomes a
//! copy of SRC, in a directory that must exist. Files are written under a new name and
//! renamed into place (never written through what was there: a symlink, a FIFO, a device).
//! Symlinks are copied as symlinks, never followed. As root the copies keep their owners;
//! rootless they are the user's. Set-user-ID and set-group-ID bits are dropped, as image
//! extraction drops them: a copy out of a container never makes a setuid program on the host.
//!
//! Where bento simplifies: no `-` (a tar stream on stdin or stdout), no `--archive=false`,
//! hard links become separate files, and devices, FIFOs and sockets are skipped (said on
//! stderr).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{
    AtFlags, OFlag, OpenHow, ResolveFlag, open, openat, openat2, readlinkat, renameat,
};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, futimens, mkdirat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, symlinkat, unlinkat};
use plumbing::files::dir_flags;

use crate::home::Home;
use crate::process::Process;
use crate::state::{Container, Lock, Status, check_name};

/// One side of `bento cp`.
enum Place {
    Host(PathBuf),
    Container { name: String, path: PathBuf },
}

/// `NAME:PATH` names a path in a container; anything else (and anything starting with `/`
/// or `.`) is a host path, as docker and podman read them.
fn place(arg: &OsStr) -> Place {
    let bytes = arg.as_bytes();
    if let Some(colon) = bytes.iter().position(|&b| b == b':')
        && !bytes.starts_with(b"/")
        && !bytes.starts_with(b".")
        && let Ok(name) = std::str::from_utf8(&bytes[..colon])
        && check_name(name).is_ok()
    {
        let path = OsStr::from_bytes(&bytes[colon + 1..]);
        let path = if path.is_empty() {
            OsStr::new("/")
        } else {
            path
        };
        return Place::Container {
            name: name.to_string(),
            path: Path::new("/").join(path),
        };
    }
    Place::Host(PathBuf::from(arg))
}

/// `bento cp SRC DEST`: one of them `NAME:PATH`, the other a host path.
pub fn copy(home: &Home, source: &OsStr, destination: &OsStr) -> Result<()> {
    // Decided now: rootless, a stopped container's copy runs as root of a user namespace.
    let owners = nix::unistd::geteuid().is_root();
    match (place(source), place(destination)) {
        (Place::Host(from), Place::Container { name, path }) => {
            let root = open_root(home, &name)?;
            let source = Source::resolve(&Base::Host, &from)?;
            let target = Target::resolve(&Base::Root(&root.fd), &path, &source)?;
            Copier { owners }.copy(source, target)
        }
        (Place::Container { name, path }, Place::Host(to)) => {
            let root = open_root(home, &name)?;
            let source = Source::resolve(&Base::Root(&root.fd), &path)?;
            let target = Target::resolve(&Base::Host, &to, &source)?;
            Copier { owners }.copy(source, target)
        }
        _ => Err(plumbing::with_status(
            2,
            plumbing::hinted(
                "bento cp copies between the host and a container",
                "one of SRC and DEST is NAME:PATH, the other a path on the host: `bento cp \
                 ./site web:/www`, `bento cp web:/etc/hosts .`",
            ),
        )),
    }
}

/// The container's root filesystem, to resolve beneath; a stopped container's lock is
/// held meanwhile, so that it is not removed under the copy.
struct Root {
    fd: OwnedFd,
    _lock: Option<Lock>,
}

/// PID 1's root while it lives (created or running); otherwise the container's layers,
/// mounted for us alone.
fn open_root(home: &Home, name: &str) -> Result<Root> {
    let container = Container::open(home, name)?;
    let state = container.state()?;
    if state.status != Status::Stopped
        && let Some(init) = state.init
    {
        if let Some(fd) = root_of(&init) {
            return Ok(Root { fd, _lock: None });
        }
        if init.is_alive() {
            return Err(plumbing::hinted(
                format!(
                    "cannot reach the root of {name}'s PID 1 (/proc/{}/root)",
                    init.pid
                ),
                "bento cp opens it as you: the container's PID 1 must be yours (or run as root)",
            ));
        }
    }
    // Stopped (or it just stopped): its state cannot change any more, but it could be
    // removed: hold its lock.
    let lock = container.lock()?;
    let spec = container.spec()?;
    let fd = match &spec.overlay_lower {
        Some(lower) => {
            if spec.new_namespace("user") {
                crate::userns::enter_user_namespace(&spec.uid_mappings, &spec.gid_mappings)?;
            }
            crate::mounts::isolate_mounts()?;
            let layers = container.layers(lower, &container.file("root"));
            let root = crate::overlay::mount_overlay(&layers)?;
            open_dir(root)?
        }
        // An engine's container: its root filesystem is a directory of the engine's.
        None => open_dir(&spec.rootfs)?,
    };
    Ok(Root {
        fd,
        _lock: Some(lock),
    })
}

/// `/proc/PID/root` of `init`, if it is still that process (opened first, checked second:
/// the descriptor then names its root, not that of a process that got its pid since).
fn root_of(init: &Process) -> Option<OwnedFd> {
    let path = format!("/proc/{}/root", init.pid);
    let fd = open(path.as_str(), path_flags(), Mode::empty()).ok()?;
    init.is_alive().then_some(fd)
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    open(path, path_flags(), Mode::empty())
        .with_context(|| format!("cannot open {}", path.display()))
}

/// A directory to resolve paths from, not to read.
fn path_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// Where a path given on the command line is looked up.
enum Base<'a> {
    /// On the host, as the kernel resolves it for the user (their own path, their own
    /// symlinks).
    Host,
    /// Inside a container: beneath its root, symlinks and `..` kept inside
    /// (RESOLVE_IN_ROOT), no magic links of /proc, and no other mount (RESOLVE_NO_XDEV:
    /// the copy reaches the container's own files, not its /proc or /dev).
    Root(&'a OwnedFd),
}

impl Base<'_> {
    /// Opens `path`, following symlinks (within the root, for a container).
    fn open(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        match self {
            Base::Host => open(path, flags | OFlag::O_CLOEXEC, Mode::empty()),
            Base::Root(root) => {
                let relative = path.strip_prefix("/").unwrap_or(path);
                let relative = match relative.as_os_str().is_empty() {
                    true => Path::new("."),
                    false => relative,
                };
                let resolve = ResolveFlag::RESOLVE_IN_ROOT
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV;
                let how = OpenHow::new()
                    .flags(flags | OFlag::O_CLOEXEC)
                    .resolve(resolve);
                openat2(root.as_fd(), relative, how)
            }
        }
    }

    /// How a path is shown in messages.
    fn show(&self, path: &Path) -> String {
        match self {
            Base::Host => path.display().to_string(),
            Base::Root(_) => format!("{} (in the container)", path.display()),
        }
    }
}

/// A path cut into what to resolve and what to copy.
struct Split {
    /// The directory that holds the last component.
    parent: PathBuf,
    /// The last component; `None` for `/`, `.`, `..` or `DIR/.`: the directory itself.
    name: Option<OsString>,
    /// Ends with `/`: it must be a directory.
    dir_only: bool,
}

fn split(path: &Path) -> Split {
    let bytes = path.as_os_str().as_bytes();
    let dir_only = bytes.ends_with(b"/");
    let itself = bytes.ends_with(b"/.") || bytes == b"." || bytes.ends_with(b"..");
    let name = match (itself, path.file_name()) {
        (false, Some(name)) => Some(name.to_os_string()),
        _ => None,
    };
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        Some(_) => PathBuf::from("."),
        None => path.to_path_buf(),
    };
    Split {
        parent,
        name,
        dir_only,
    }
}

/// What is copied.
struct Source {
    node: Node,
    /// Its name, for a copy into an existing directory; `None`: copy its contents.
    name: Option<OsString>,
    shown: String,
}

impl Source {
    fn resolve(base: &Base, path: &Path) -> Result<Source> {
        let shown = base.show(path);
        let split = split(path);
        let missing = |errno: Errno| {
            plumbing::hinted(
                format!("cannot copy {shown}: {}", errno.desc()),
                "SRC is a path on the host, or NAME:PATH in the container (`bento exec NAME ls \
                 -la DIR` lists a running container's files)",
            )
        };
        let (node, name) = match &split.name {
            Some(name) if !split.dir_only => {
                let parent = base.open(&split.parent, path_flags()).map_err(missing)?;
                (
                    Node::open(parent.as_fd(), name).map_err(missing)?,
                    Some(name.clone()),
                )
            }
            // `DIR/`, `DIR/.`: the directory it names, symlinks followed.
            name => {
                let dir = base
                    .open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                    .map_err(missing)?;
                (Node::dir(dir).map_err(missing)?, name.clone())
            }
        };
        Ok(Source { node, name, shown })
    }

    fn is_dir(&self) -> bool {
        matches!(self.node.kind, Kind::Dir(_))
    }
}

/// Where the copy goes.
enum Target {
    /// An existing directory: the source goes in under its own name (or its contents).
    Into(OwnedFd),
    /// A name in a directory: the source becomes it (replacing a file or symlink there).
    At(OwnedFd, OsString),
}

impl Target {
    fn resolve(base: &Base, path: &Path, source: &Source) -> Result<Target> {
        let shown = base.show(path);
        let split = split(path);
        let fail = |what: &str| {
            plumbing::hinted(
                format!("cannot copy {} to {shown}: {what}", source.shown),
                "DEST is an existing directory (SRC goes in it), a file to replace, or a new \
                 name in an existing directory",
            )
        };
        let Some(name) = split.name else {
            let dir = base
                .open(path, path_flags())
                .map_err(|errno| fail(&format!("not an existing directory ({})", errno.desc())))?;
            return Ok(Target::Into(dir));
        };
        let parent = base
            .open(&split.parent, path_flags())
            .map_err(|errno| fail(&format!("{}: {}", base.show(&split.parent), errno.desc())))?;
        let stat = fstatat(&parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW);
        match stat.map(|stat| kind_of(&stat)) {
            Err(Errno::ENOENT) if split.dir_only => Err(fail("no such directory")),
            Err(Errno::ENOENT) => Ok(Target::At(parent, name)),
            Err(errno) => Err(fail(errno.desc())),
            Ok(SFlag::S_IFDIR) => {
                let dir = openat(
                    &parent,
                    name.as_os_str(),
                    path_flags() | OFlag::O_NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(|errno| fail(errno.desc()))?;
                Ok(Target::Into(dir))
            }
            // A symlink to a directory leads into it (inside the root, for a container);
            // any other symlink is replaced, never written through.
            Ok(SFlag::S_IFLNK) => match base.open(path, path_flags()) {
                Ok(dir) => Ok(Target::Into(dir)),
                Err(_) if split.dir_only => Err(fail("not a directory")),
                Err(_) => Ok(Target::At(parent, name)),
            },
            Ok(_) if split.dir_only => Err(fail("not a directory")),
            Ok(_) if source.is_dir() => Err(fail("a directory cannot replace a file")),
            Ok(_) => Ok(Target::At(parent, name)),
        }
    }
}

/// An entry of the source, opened (never through a symlink), and its stat.
struct Node {
    kind: Kind,
    stat: FileStat,
}

enum Kind {
    Dir(OwnedFd),
    File(File),
    Link(OsString),
    /// A device, FIFO or socket: skipped.
    Other,
}

impl Node {
    /// `name` in `dir`, as it is: a symlink is read, not followed. A file is opened with
    /// O_NONBLOCK (a FIFO swapped in meanwhile does not hang us) and checked again.
    fn open(dir: BorrowedFd, name: &OsStr) -> nix::Result<Node> {
        let stat = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let kind = match kind_of(&stat) {
            SFlag::S_IFDIR => return Node::dir(openat(dir, name, dir_flags(), Mode::empty())?),
            SFlag::S_IFLNK => Kind::Link(readlinkat(dir, name)?),
            SFlag::S_IFREG => {
                let flags =
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
                let file = openat(dir, name, flags, Mode::empty())?;
                let stat = fstat(&file)?;
                if kind_of(&stat) != SFlag::S_IFREG {
                    return Err(Errno::EAGAIN); // replaced while we looked
                }
                return Ok(Node {
                    kind: Kind::File(File::from(file)),
                    stat,
                });
            }
            _ => Kind::Other,
        };
        Ok(Node { kind, stat })
    }

    fn dir(fd: OwnedFd) -> nix::Result<Node> {
        let stat = fstat(&fd)?;
        Ok(Node {
            kind: Kind::Dir(fd),
            stat,
        })
    }
}

fn kind_of(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

/// Copies entries, beneath directory descriptors on both sides.
struct Copier {
    /// Give copies their source's owner (root only).
    owners: bool,
}

impl Copier {
    fn copy(&self, source: Source, target: Target) -> Result<()> {
        let shown = source.shown.clone();
        match (target, source.name) {
            (Target::Into(dir), Some(name)) => self.node(source.node, dir.as_fd(), &name, &shown),
            (Target::Into(dir), None) => match source.node.kind {
                Kind::Dir(from) => self.children(from.as_fd(), dir.as_fd(), &shown),
                _ => Err(anyhow::anyhow!("{shown} is not a directory")),
            },
            (Target::At(parent, name), _) => self.node(source.node, parent.as_fd(), &name, &shown),
        }
    }

    /// Copies `node` to `name` in `to`.
    fn node(&self, node: Node, to: BorrowedFd, name: &OsStr, shown: &str) -> Result<()> {
        match node.kind {
            Kind::Dir(from) => {
                let (dir, made) = self
                    .make_dir(to, name)
                    .with_context(|| format!("cannot create {shown}"))?;
                self.children(from.as_fd(), dir.as_fd(), shown)?;
                if made {
                    self.finish(&dir, &node.stat)
                        .with_context(|| format!("cannot finish {shown}"))?;
                }
                Ok(())
            }
            Kind::File(mut from) => self
                .replace(to, name, |dir, partial| {
                    let flags = OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC;
                    let mut file = File::from(openat(
                        dir,
                        partial,
                        flags,
                        Mode::from_bits_truncate(0o600),
                    )?);
                    std::io::copy(&mut from, &mut file)?;
                    self.finish(&file, &node.stat)
                })
                .with_context(|| format!("cannot copy {shown}")),
            Kind::Link(target) => self
                .replace(to, name, |dir, partial| {
                    symlinkat(target.as_os_str(), dir, partial)?;
                    if self.owners {
                        let (uid, gid) = owner(&node.stat);
                        fchownat(
                            dir,
                            partial,
                            Some(uid),
                            Some(gid),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )?;
                    }
                    Ok(())
                })
                .with_context(|| format!("cannot copy the symlink {shown}")),
            Kind::Other => {
                eprintln!(
                    "bento: cp: skipped {shown}: a device, FIFO or socket (bento copies files, directories and symlinks)"
                );
                Ok(())
            }
        }
    }

    /// Copies every entry of `from` into `to`.
    fn children(&self, from: BorrowedFd, to: BorrowedFd, shown: &str) -> Result<()> {
        let names = plumbing::names_at(from).with_context(|| format!("cannot read {shown}"))?;
        for name in names {
            let inside = format!(
                "{}/{}",
                shown.trim_end_matches('/'),
                Path::new(&name).display()
            );
            let node = Node::open(from, &name).with_context(|| format!("cannot copy {inside}"))?;
            self.node(node, to, &name, &inside)?;
        }
        Ok(())
    }

    /// The directory `name` in `to`: the one there, or a new one (0700 while it is filled,
    /// in place of a file or symlink that was there). True if it is new.
    fn make_dir(&self, to: BorrowedFd, name: &OsStr) -> Result<(OwnedFd, bool)> {
        let made = match fstatat(to, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) if kind_of(&stat) == SFlag::S_IFDIR => false,
            Ok(_) => {
                unlinkat(to, name, UnlinkatFlags::NoRemoveDir)?;
                mkdirat(to, name, Mode::from_bits_truncate(0o700))?;
                true
            }
            Err(Errno::ENOENT) => {
                mkdirat(to, name, Mode::from_bits_truncate(0o700))?;
                true
            }
            Err(errno) => return Err(errno.into()),
        };
        Ok((openat(to, name, dir_flags(), Mode::empty())?, made))
    }

    /// Makes the new entry under a name nobody can guess (`write`), then renames it over
    /// `name`: whatever was there is replaced, never written through. A directory there
    /// is not replaced (rename(2) refuses: EISDIR).
    fn replace(
        &self,
        dir: BorrowedFd,
        name: &OsStr,
        write: impl FnOnce(BorrowedFd, &OsStr) -> Result<()>,
    ) -> Result<()> {
        let partial = OsString::from(format!(".bento-cp.{}", crate::state::random_id()?));
        let written = write(dir, &partial).and_then(|()| {
            renameat(dir, partial.as_os_str(), dir, name).map_err(|errno| match errno {
                Errno::EISDIR => anyhow::anyhow!("a directory is in the way"),
                errno => anyhow::Error::new(errno),
            })
        });
        if written.is_err() {
            let _ = unlinkat(dir, partial.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
        written
    }

    /// The source's owner (as root), mode (without set-user-ID and set-group-ID) and
    /// times, on a new file or directory: the owner first, since chown(2) clears those bits.
    fn finish(&self, fd: impl AsFd, stat: &FileStat) -> Result<()> {
        if self.owners {
            let (uid, gid) = owner(stat);
            fchown(&fd, Some(uid), Some(gid))?;
        }
        fchmod(&fd, Mode::from_bits_truncate(stat.st_mode & 0o1777))?;
        let time = |seconds: i64, nanos: i64| TimeSpec::new(seconds, nanos);
        futimens(
            &fd,
            &time(stat.st_atime, stat.st_atime_nsec),
            &time(stat.st_mtime, stat.st_mtime_nsec),
        )?;
        Ok(())
    }
}

fn owner(stat: &FileStat) -> (Uid, Gid) {
    (Uid::from_raw(stat.st_uid), Gid::from_raw(stat.st_gid))
}

//! The offline source: a root filesystem made from the host's static busybox.
//!
//! busybox is one binary that behaves as `sh`, `ls`, `ps`… depending on the name it is
//! started as. A root filesystem needs little more than that binary plus one symlink per
//! applet, which is what the official busybox image holds. It must be *statically* linked:
//! inside the container there is no libc for a dynamic one to load.

use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::symlinkat;
use object::elf;
use object::read::elf::{ElfFile64, ProgramHeader};
use plumbing::Hint;

use crate::interrupt::check_interrupted;
use plumbing::files::dir_flags;

const INSTALL_HINT: &str = "install a static busybox (Debian/Ubuntu: `sudo apt install busybox-static`), or give its path: `busybox:/path/to/busybox`";

/// Finds the busybox to use: `path` if given; otherwise `busybox` on PATH, then
/// `/bin/busybox` and `/usr/bin/busybox`, the first that is statically linked.
pub fn locate(path: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = path {
        let path = path.to_path_buf();
        if !is_static(&path).with_context(|| format!("cannot use {}", path.display()))? {
            return Err(anyhow::anyhow!(
                "{} is dynamically linked: it would not run inside the container",
                path.display()
            ))
            .hint(INSTALL_HINT);
        }
        return Ok(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("busybox"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let candidates = on_path
        .into_iter()
        .chain(["/bin/busybox".into(), "/usr/bin/busybox".into()]);
    let mut dynamic = None;
    for candidate in candidates {
        match is_static(&candidate) {
            Ok(true) => return Ok(candidate),
            Ok(false) => dynamic = dynamic.or(Some(candidate)),
            Err(_) => {}
        }
    }
    match dynamic {
        Some(found) => Err(anyhow::anyhow!(
            "the only busybox found, {}, is dynamically linked",
            found.display()
        ))
        .hint(INSTALL_HINT),
        None => Err(anyhow::anyhow!("no busybox found on this machine")).hint(INSTALL_HINT),
    }
}

/// Is the ELF file at `path` statically linked, i.e. has no program interpreter
/// (`PT_INTERP`, the dynamic loader)?
pub fn is_static(path: &Path) -> Result<bool> {
    let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = ElfFile64::<object::Endianness>::parse(&*data)
        .with_context(|| format!("{} is not a 64-bit ELF program", path.display()))?;
    let endian = file.endian();
    let has_interpreter = file
        .elf_program_headers()
        .iter()
        .any(|header| header.p_type(endian) == elf::PT_INTERP);
    Ok(!has_interpreter)
}

/// Fills the empty directory `root` with a busybox root filesystem: `bin/busybox`, a
/// symlink in `bin/` for every applet, and the directories and files a shell expects.
pub fn build(busybox: &Path, root: &Path) -> Result<()> {
    let output = Command::new(busybox)
        .arg("--list")
        .output()
        .with_context(|| format!("cannot run {}", busybox.display()))?;
    if !output.status.success() {
        bail!("`{} --list` failed: {}", busybox.display(), output.status);
    }
    let applets = String::from_utf8_lossy(&output.stdout);

    // Written beneath the root's descriptor, like an image (see `extract`): only new
    // names, created with O_EXCL, never through a symlink.
    let root = open(root, dir_flags(), Mode::empty())
        .with_context(|| format!("cannot open {}", root.display()))?;
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("var", 0o755),
    ] {
        mkdirat(&root, dir, Mode::from_bits_truncate(0o700))
            .and_then(|()| openat(&root, dir, dir_flags(), Mode::empty()))
            .and_then(|made| fchmod(&made, Mode::from_bits_truncate(mode)))
            .with_context(|| format!("cannot create /{dir}"))?;
    }
    let bin = openat(&root, "bin", dir_flags(), Mode::empty()).context("cannot open /bin")?;
    let mut source =
        fs::File::open(busybox).with_context(|| format!("cannot read {}", busybox.display()))?;
    let mut copy = new_file(&bin, "busybox", 0o755)?;
    std::io::copy(&mut source, &mut copy).context("cannot write /bin/busybox")?;
    for applet in applets.lines().map(str::trim) {
        check_interrupted()?;
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlinkat("busybox", &bin, applet)
            .with_context(|| format!("cannot create /bin/{applet}"))?;
    }

    let etc = openat(&root, "etc", dir_flags(), Mode::empty()).context("cannot open /etc")?;
    for (file, contents) in [
        (
            "passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        ("group", "root:x:0:\nnobody:x:65534:\n"),
    ] {
        new_file(&etc, file, 0o644)?
            .write_all(contents.as_bytes())
            .with_context(|| format!("cannot write /etc/{file}"))?;
    }
    Ok(())
}

/// A new file `name` in `dir` with `mode` (O_EXCL|O_NOFOLLOW: never an existing one).
fn new_file(dir: &OwnedFd, name: &str, mode: u32) -> Result<fs::File> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
    let file = openat(
        dir,
        name,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .with_context(|| format!("cannot create {name}"))?;
    fchmod(&file, Mode::from_bits_truncate(mode))
        .with_context(|| format!("cannot create {name}"))?;
    Ok(fs::File::from(file))
}

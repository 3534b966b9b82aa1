//! The offline source: a root filesystem made from the host's static busybox.
//!
//! busybox is one binary that behaves as `sh`, `ls`, `ps`… depending on the name it is
//! started as. A root filesystem needs little more than that binary plus one symlink per
//! applet, which is what the official busybox image holds. It must be *statically* linked:
//! inside the container there is no libc for a dynamic one to load.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use object::elf;
use object::read::elf::{ElfFile64, ProgramHeader};
use plumbing::Hint;

use crate::install::check_interrupted;

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
        let path = root.join(dir);
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set permissions on {}", path.display()))?;
    }

    let binary = root.join("bin/busybox");
    fs::copy(busybox, &binary)
        .with_context(|| format!("cannot copy {} to {}", busybox.display(), binary.display()))?;
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755))?;
    for applet in applets.lines().map(str::trim) {
        check_interrupted()?;
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = root.join("bin").join(applet);
        symlink("busybox", &link).with_context(|| format!("cannot create {}", link.display()))?;
    }

    for (file, contents) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnobody:x:65534:\n"),
    ] {
        let path = root.join(file);
        fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

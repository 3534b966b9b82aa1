//! What the host allows: the kernel settings that decide whether a rootless container can
//! work here. Used by the steps' hints and by `just doctor`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The first executable file called `name` in a directory of `$PATH`, as a shell finds it
/// (step 12 looks for slirp4netns this way before it forks it).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// The kernel settings under a `/proc/sys` directory (a real one, or a stand-in for tests).
#[derive(Debug, Clone)]
pub struct Sysctls {
    root: PathBuf,
}

/// Why this host refuses unprivileged user namespaces, if a setting says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernsBlock {
    /// Ubuntu 23.10+: AppArmor restricts unprivileged user namespaces.
    AppArmor,
    /// Debian's older `kernel.unprivileged_userns_clone = 0`.
    DebianSysctl,
    /// `user.max_user_namespaces = 0`.
    MaxZero,
}

impl UsernsBlock {
    /// What the setting does, in words.
    pub fn why(&self) -> &'static str {
        match self {
            UsernsBlock::AppArmor => {
                "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)"
            }
            UsernsBlock::DebianSysctl => {
                "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"
            }
            UsernsBlock::MaxZero => {
                "no user namespaces may be created (user.max_user_namespaces = 0)"
            }
        }
    }

    /// The sysctl setting and the value that allows rootless containers.
    fn allowing_setting(&self) -> (&'static str, &'static str) {
        match self {
            UsernsBlock::AppArmor => ("kernel.apparmor_restrict_unprivileged_userns", "0"),
            UsernsBlock::DebianSysctl => ("kernel.unprivileged_userns_clone", "1"),
            UsernsBlock::MaxZero => ("user.max_user_namespaces", "15000"),
        }
    }

    /// The command that lifts the block until the next reboot.
    pub fn fix(&self) -> String {
        let (name, value) = self.allowing_setting();
        format!("sudo sysctl -w {name}={value}")
    }

    /// The command that lifts it for good.
    pub fn fix_for_good(&self) -> String {
        let (name, value) = self.allowing_setting();
        format!("echo '{name} = {value}' | sudo tee /etc/sysctl.d/60-bento-userns.conf")
    }
}

impl Sysctls {
    /// The running kernel's settings.
    pub fn host() -> Self {
        Self::at("/proc/sys")
    }

    /// Settings read from `root` instead of `/proc/sys`.
    pub fn at(root: impl AsRef<Path>) -> Self {
        Sysctls {
            root: root.as_ref().to_path_buf(),
        }
    }

    /// The value of a setting (`kernel/osrelease`), trimmed; `None` if it does not exist.
    pub fn get(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(name))
            .ok()
            .map(|value| value.trim().to_string())
    }

    /// The first setting that forbids unprivileged user namespaces, if any.
    pub fn userns_block(&self) -> Option<UsernsBlock> {
        if self
            .get("kernel/apparmor_restrict_unprivileged_userns")
            .as_deref()
            == Some("1")
        {
            Some(UsernsBlock::AppArmor)
        } else if self.get("kernel/unprivileged_userns_clone").as_deref() == Some("0") {
            Some(UsernsBlock::DebianSysctl)
        } else if self.get("user/max_user_namespaces").as_deref() == Some("0") {
            Some(UsernsBlock::MaxZero)
        } else {
            None
        }
    }
}

/// The hint for a failed `unshare(CLONE_NEWUSER)`: the setting that blocks it, if one does.
pub fn user_namespace_hint() -> String {
    match Sysctls::host().userns_block() {
        Some(block) => format!(
            "{}.\nFix: `{}` (`just doctor` shows how to make it permanent)",
            block.why(),
            block.fix()
        ),
        None => "this host does not allow unprivileged user namespaces (inside Docker or WSL1?): run `just doctor`".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(values: &[(&str, &str)]) -> (std::path::PathBuf, Sysctls) {
        let dir = std::env::temp_dir().join(format!(
            "procinfo-sysctl-{}-{}",
            std::process::id(),
            values.len()
        ));
        for (name, value) in values {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, format!("{value}\n")).unwrap();
        }
        let sysctls = Sysctls::at(&dir);
        (dir, sysctls)
    }

    #[test]
    fn each_block_is_recognised() {
        let (dir, s) = fake(&[
            ("kernel/apparmor_restrict_unprivileged_userns", "1"),
            ("user/max_user_namespaces", "0"),
        ]);
        assert_eq!(s.userns_block(), Some(UsernsBlock::AppArmor));
        std::fs::remove_dir_all(dir).unwrap();

        let (dir, s) = fake(&[("kernel/unprivileged_userns_clone", "0")]);
        assert_eq!(s.userns_block(), Some(UsernsBlock::DebianSysctl));
        std::fs::remove_dir_all(dir).unwrap();

        let (dir, s) = fake(&[
            ("kernel/apparmor_restrict_unprivileged_userns", "0"),
            ("kernel/unprivileged_userns_clone", "1"),
            ("user/max_user_namespaces", "0"),
        ]);
        assert_eq!(s.userns_block(), Some(UsernsBlock::MaxZero));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn nothing_set_means_no_block() {
        assert_eq!(Sysctls::at("/nonexistent").userns_block(), None);
    }
}

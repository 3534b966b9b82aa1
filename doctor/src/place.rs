//! Where the doctor runs: a Lima VM, a dev container (Codespaces), WSL, another container, or
//! bare Linux. Each is recognised by files it leaves (read below the host root, so tests can
//! fake them) and, for Codespaces and VS Code, by the variables they set.

use std::path::Path;

/// The kinds of place the workshop is run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// WSL1: system calls translated by Windows, no namespaces at all.
    Wsl1,
    /// WSL2: a real Linux kernel in a VM.
    Wsl2,
    /// A Lima VM (lima/bento.yaml on macOS).
    Lima,
    /// A GitHub Codespace: a dev container on a VM of GitHub's.
    Codespaces,
    /// A dev container (VS Code's Dev Containers, the devcontainer CLI).
    DevContainer,
    /// Docker, podman, or another container runtime.
    Container(Runtime),
    /// None of the above: Linux on a machine or a VM we cannot tell apart.
    BareLinux,
}

/// The container runtimes whose options we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Docker,
    Podman,
    Other,
}

/// The options a container needs for the steps, as `--security-opt` values, in Docker's
/// names (podman 4.3 takes the same; measured: tests/doctor.rs). Docker's seccomp profile
/// refuses unshare(2) with namespace flags, its AppArmor profile refuses mount(2), and its
/// masked /proc paths make the kernel refuse a new procfs. .devcontainer/devcontainer.json
/// sets the same three.
pub const OPTIONS: &str = "--security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined";

impl Place {
    /// Recognises the place from the files below `root` and the variables `env` gives.
    pub fn detect(root: &Path, osrelease: &str, env: impl Fn(&str) -> Option<String>) -> Place {
        let exists = |path: &str| root.join(path).exists();
        let set = |name: &str| env(name).is_some_and(|value| value == "true");
        if osrelease.contains("Microsoft") {
            return Place::Wsl1;
        }
        if osrelease.to_lowercase().contains("microsoft") {
            return Place::Wsl2;
        }
        // Lima mounts its cidata disk on /mnt/lima-cidata (mode 0700: a user sees only the
        // directory) and installs its guest agent; both stay after boot.
        if exists("mnt/lima-cidata") || exists("usr/local/bin/lima-guestagent") {
            return Place::Lima;
        }
        // GitHub documents CODESPACES=true; /workspaces/.codespaces holds its shared files.
        if set("CODESPACES") || exists("workspaces/.codespaces") {
            return Place::Codespaces;
        }
        // The dev containers CLI (which Codespaces and VS Code build on) keeps its markers in
        // /var/devcontainer; VS Code sets REMOTE_CONTAINERS=true in its terminals.
        if set("REMOTE_CONTAINERS") || exists("var/devcontainer") {
            return Place::DevContainer;
        }
        if exists(".dockerenv") {
            return Place::Container(Runtime::Docker);
        }
        if exists("run/.containerenv") {
            return Place::Container(Runtime::Podman);
        }
        let cgroup = std::fs::read_to_string(root.join("proc/1/cgroup")).unwrap_or_default();
        if ["docker", "kubepods", "containerd", "lxc"]
            .iter()
            .any(|word| cgroup.contains(word))
        {
            return Place::Container(Runtime::Other);
        }
        Place::BareLinux
    }

    /// What the place is called in the report.
    pub fn name(&self) -> &'static str {
        match self {
            Place::Wsl1 => "WSL1",
            Place::Wsl2 => "WSL2",
            Place::Lima => "a Lima VM",
            Place::Codespaces => "a GitHub Codespace (a dev container)",
            Place::DevContainer => "a dev container",
            Place::Container(Runtime::Docker) => "a Docker container",
            Place::Container(Runtime::Podman) => "a podman container",
            Place::Container(Runtime::Other) => "a container",
            Place::BareLinux => "bare Linux (no Lima, WSL or container found)",
        }
    }

    /// Is this a container, whose options decide what its processes may do?
    pub fn is_container(&self) -> bool {
        matches!(
            self,
            Place::Codespaces | Place::DevContainer | Place::Container(_)
        )
    }

    /// The one line that gives a container what the steps need.
    pub fn container_fix(&self) -> Option<String> {
        Some(match self {
            Place::Codespaces | Place::DevContainer => {
                "fix: rebuild the container from this repository's .devcontainer/devcontainer.json \
                 (its securityOpt allows namespaces and a fresh /proc)"
                    .to_string()
            }
            Place::Container(Runtime::Docker) => format!("fix: docker run {OPTIONS} …"),
            Place::Container(Runtime::Podman) => format!("fix: podman run {OPTIONS} …"),
            Place::Container(Runtime::Other) => {
                format!("fix: start the container with {OPTIONS}, or --privileged")
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsl_is_told_by_the_kernel_release() {
        let nothing = |_: &str| None;
        let root = Path::new("/nonexistent");
        assert_eq!(
            Place::detect(root, "4.4.0-19041-Microsoft", nothing),
            Place::Wsl1
        );
        assert_eq!(
            Place::detect(root, "5.15.153.1-microsoft-standard-WSL2", nothing),
            Place::Wsl2
        );
        assert_eq!(
            Place::detect(root, "6.8.0-45-generic", nothing),
            Place::BareLinux
        );
    }

    #[test]
    fn codespaces_and_vs_code_are_told_by_their_variables() {
        let root = Path::new("/nonexistent");
        let codespaces = |name: &str| (name == "CODESPACES").then(|| "true".to_string());
        assert_eq!(Place::detect(root, "6.8.0", codespaces), Place::Codespaces);
        let vs_code = |name: &str| (name == "REMOTE_CONTAINERS").then(|| "true".to_string());
        assert_eq!(Place::detect(root, "6.8.0", vs_code), Place::DevContainer);
        let not_true = |_: &str| Some("false".to_string());
        assert_eq!(Place::detect(root, "6.8.0", not_true), Place::BareLinux);
    }

    #[test]
    fn only_containers_get_a_container_fix() {
        assert!(Place::BareLinux.container_fix().is_none());
        assert!(Place::Lima.container_fix().is_none());
        let docker = Place::Container(Runtime::Docker).container_fix();
        assert!(docker.is_some_and(|fix| fix.contains("systempaths=unconfined")));
        let podman = Place::Container(Runtime::Podman).container_fix();
        assert!(podman.is_some_and(|fix| fix.starts_with("fix: podman run --security-opt")));
    }
}

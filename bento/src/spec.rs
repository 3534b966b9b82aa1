//! What to run, and how: everything PID 1 and its supervisor need, decided before any
//! namespace exists and written to the container's `spec.json`.
//!
//! It is a small cousin of the OCI runtime spec's `config.json` (runtime-spec's config.md):
//! `process.args`, `process.env`, `process.cwd`, `process.terminal`, `hostname`,
//! `root.path`, `linux.namespaces` and `linux.resources`. `bento create NAME IMAGE` builds
//! one from an image and the command line; an OCI runtime front-end (`create --bundle`)
//! would build the same from a bundle's config.json and take the same path from there.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The namespaces every bento container gets, in the order they are made.
pub const NAMESPACES: [&str; 6] = ["user", "uts", "network", "ipc", "pid", "mount"];

/// A container, ready to be made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// The image as the user named it, and its id.
    pub image: String,
    pub image_id: String,
    /// The image's root filesystem: the overlay's read-only lower layer (OCI `root.path`).
    pub rootfs: PathBuf,
    /// The command and its arguments (OCI `process.args`).
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs (OCI `process.env`).
    pub env: Vec<String>,
    /// The working directory inside the container (OCI `process.cwd`).
    pub cwd: String,
    pub hostname: String,
    /// Give the command a terminal of its own (OCI `process.terminal`).
    pub terminal: bool,
    /// Resource limits (OCI `linux.resources.memory.limit` and `.pids.limit`).
    pub memory: Option<u64>,
    pub pids_limit: Option<u64>,
    /// The namespaces, as OCI names them (informative: bento always makes these).
    pub namespaces: Vec<String>,
}

/// The environment every container starts with, before the image's and the user's.
pub fn default_env(hostname: &str, terminal: bool) -> Vec<String> {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("HOSTNAME={hostname}"),
        "HOME=/root".to_string(),
    ];
    if terminal {
        env.push("TERM=xterm".into());
    }
    env
}

/// `env` with `KEY=VALUE` set, replacing an earlier value of KEY.
pub fn set_env(env: &mut Vec<String>, pair: &str) {
    let key = pair.split('=').next().unwrap_or_default();
    env.retain(|existing| existing.split('=').next() != Some(key));
    env.push(pair.to_string());
}

/// The value of `key` in `env`.
pub fn get_env<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_replace_earlier_ones() {
        let mut env = default_env("box", false);
        set_env(&mut env, "PATH=/bin");
        set_env(&mut env, "A=1=2");
        assert_eq!(get_env(&env, "PATH"), Some("/bin"));
        assert_eq!(get_env(&env, "A"), Some("1=2"));
        assert_eq!(get_env(&env, "HOSTNAME"), Some("box"));
        assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
    }
}

//! Image references as Docker and skopeo write them: `busybox`, `ghcr.io/x/y:1`,
//! `localhost:5000/x`, `127.0.0.1:5000/busybox@sha256:…`.
//!
//! The rules are those of the distribution project's `reference` package: the first
//! component is a registry only if it looks like a host (has a `.` or a `:`, or is
//! `localhost`); otherwise the image is on Docker Hub, whose official images live under
//! `library/`. Without a tag or a digest, the tag is `latest`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use oci_spec::image::Digest;

/// The registry that Docker Hub's API is served from (`docker.io` is only a name).
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` of the registry.
    pub registry: String,
    /// The repository path, e.g. `library/busybox`.
    pub repository: String,
    /// The tag, if any (`latest` when neither a tag nor a digest was given).
    pub tag: Option<String>,
    /// The manifest digest, if pinned: it wins over the tag.
    pub digest: Option<Digest>,
}

impl Reference {
    /// What to ask the registry's manifest endpoint for: the digest if pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// The registry's host name, without the port.
    pub fn host(&self) -> &str {
        let registry = self.registry.as_str();
        if let Some(bracketed) = registry.strip_prefix('[') {
            return bracketed.split(']').next().unwrap_or(bracketed);
        }
        registry.split(':').next().unwrap_or(registry)
    }

    /// Is the registry on this machine? Only then is plain HTTP used without `--insecure`:
    /// nobody can read or change traffic that never leaves the loopback interface.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(self.host())
    }
}

/// Is `host` (a name, or an IP address, IPv6 with or without brackets) this machine?
/// `localhost` and the loopback addresses, 127.0.0.0/8 and ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl FromStr for Reference {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let digest = Digest::from_str(digest)
                    .ok()
                    .filter(|d| d.algorithm().as_ref() == "sha256")
                    .ok_or_else(|| format!("{digest:?} is not a sha256:<64 hex digits> digest"))?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        let (registry, remainder) = match name.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (first.to_string(), rest),
            _ => ("docker.io".to_string(), name),
        };
        let (path, tag) = match remainder.rsplit_once(':') {
            Some((path, tag)) => (path, Some(tag.to_string())),
            None => (remainder, None),
        };
        if path.is_empty() || !path.split('/').all(is_path_component) {
            return Err(format!(
                "{text:?} is not an image name (lowercase letters, digits, and . _ - / between them)"
            ));
        }
        if let Some(tag) = &tag
            && !is_tag(tag)
        {
            return Err(format!("{tag:?} is not a valid tag"));
        }
        let (registry, repository) = match registry.as_str() {
            "docker.io" | "index.docker.io" | DOCKER_HUB if !path.contains('/') => {
                (DOCKER_HUB.to_string(), format!("library/{path}"))
            }
            "docker.io" | "index.docker.io" => (DOCKER_HUB.to_string(), path.to_string()),
            _ => (registry, path.to_string()),
        };
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Docker's rule: a first component is a registry if it has a `.` or a `:` (a domain or a
/// port) or is `localhost`.
fn looks_like_host(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn is_path_component(component: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let starts_and_ends = component.starts_with(alphanumeric) && component.ends_with(alphanumeric);
    let allowed = component
        .chars()
        .all(|c| alphanumeric(c) || matches!(c, '.' | '_' | '-'));
    starts_and_ends && allowed && !component.contains("..") && !component.contains("___")
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    tag.len() <= 128
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || matches!(c, '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Reference {
        text.parse().unwrap()
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn official_images_are_on_docker_hub_under_library() {
        let reference = parse("busybox");
        assert_eq!(reference.registry, DOCKER_HUB);
        assert_eq!(reference.repository, "library/busybox");
        assert_eq!(reference.tag.as_deref(), Some("latest"));
        assert_eq!(reference.digest, None);
        assert_eq!(
            reference.to_string(),
            "registry-1.docker.io/library/busybox:latest"
        );
        assert_eq!(
            parse("docker.io/busybox:1.36"),
            parse("library/busybox:1.36")
        );
        assert_eq!(parse("someone/tool").repository, "someone/tool");
    }

    #[test]
    fn other_registries_are_recognised_by_a_dot_a_port_or_localhost() {
        let ghcr = parse("ghcr.io/x/y:1");
        assert_eq!(
            (ghcr.registry.as_str(), ghcr.repository.as_str()),
            ("ghcr.io", "x/y")
        );
        assert_eq!(ghcr.tag.as_deref(), Some("1"));
        assert!(!ghcr.is_loopback());

        let local = parse("localhost:5000/x");
        assert_eq!(local.registry, "localhost:5000");
        assert_eq!(local.host(), "localhost");
        assert_eq!(local.tag.as_deref(), Some("latest"));
        assert!(local.is_loopback());

        assert_eq!(parse("localhost/x").registry, "localhost");
        assert!(parse("[::1]:5000/x").is_loopback());
        assert!(parse("127.0.0.2:80/x").is_loopback());
    }

    #[test]
    fn a_digest_pins_the_manifest() {
        let pinned = parse(&format!("127.0.0.1:5000/busybox@{DIGEST}"));
        assert_eq!(pinned.registry, "127.0.0.1:5000");
        assert_eq!(pinned.tag, None);
        assert_eq!(pinned.manifest_reference(), DIGEST);
        assert!(pinned.is_loopback());
        let both = parse(&format!("busybox:1.36@{DIGEST}"));
        assert_eq!(both.tag.as_deref(), Some("1.36"));
        assert_eq!(both.manifest_reference(), DIGEST);
        assert_eq!(parse("busybox:1.36").manifest_reference(), "1.36");
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in [
            "",
            "BusyBox",
            "busybox:",
            "busybox:-x",
            "/busybox",
            "a//b",
            "busybox@sha256:1234",
            "busybox@md5:0123456789abcdef0123456789abcdef",
            "x/../y",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} was accepted");
        }
    }
}

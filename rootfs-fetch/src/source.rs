//! Where a root filesystem comes from, named like skopeo's transports
//! (`docker://busybox`, `oci:layout:tag`…), which container users already know.

use std::path::PathBuf;
use std::str::FromStr;

use crate::reference::Reference;

/// A source of a root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `docker://[REGISTRY/]NAME[:TAG|@DIGEST]`: pulled from a registry.
    Docker(Reference),
    /// `docker-archive:PATH`: a `docker save` / `podman save` tarball.
    DockerArchive(PathBuf),
    /// `oci:PATH[:TAG]`: an OCI image layout directory.
    Oci { path: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH`: an OCI image layout in a tar file.
    OciArchive(PathBuf),
    /// `busybox:[PATH]`: the host's static busybox (found automatically without a path).
    Busybox(Option<PathBuf>),
}

/// The forms a source can take, for error messages and `--help`.
pub const FORMS: &str = "docker://[REGISTRY/]NAME[:TAG|@sha256:DIGEST], docker-archive:PATH, \
     oci:PATH[:TAG], oci-archive:PATH, busybox:[PATH]";

impl FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((transport, rest)) = text.split_once(':') else {
            return Err(format!(
                "{text:?} names no transport: expected one of {FORMS}"
            ));
        };
        let path = |rest: &str| {
            if rest.is_empty() {
                Err(format!("{text:?} names no file: expected {transport}:PATH"))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        match transport {
            "docker" => match rest.strip_prefix("//") {
                Some(name) => Ok(Source::Docker(
                    name.parse().map_err(|error| format!("{text:?}: {error}"))?,
                )),
                None => Err(format!(
                    "{text:?}: registry images are written docker://NAME, e.g. docker://busybox:latest"
                )),
            },
            "docker-archive" => Ok(Source::DockerArchive(path(rest)?)),
            "oci-archive" => Ok(Source::OciArchive(path(rest)?)),
            // skopeo's rule: `oci:PATH:TAG` when what follows the last `:` is not a path.
            "oci" => match rest.rsplit_once(':') {
                Some((dir, tag)) if !tag.contains('/') => Ok(Source::Oci {
                    path: path(dir)?,
                    tag: Some(tag.to_string()).filter(|tag| !tag.is_empty()),
                }),
                _ => Ok(Source::Oci {
                    path: path(rest)?,
                    tag: None,
                }),
            },
            "busybox" if rest.is_empty() => Ok(Source::Busybox(None)),
            "busybox" => Ok(Source::Busybox(Some(PathBuf::from(rest)))),
            other => Err(format!(
                "unknown transport {other:?}: expected one of {FORMS}"
            )),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Docker(reference) => write!(f, "docker://{reference}"),
            Source::DockerArchive(path) => write!(f, "docker-archive:{}", path.display()),
            Source::Oci { path, tag: None } => write!(f, "oci:{}", path.display()),
            Source::Oci {
                path,
                tag: Some(tag),
            } => write!(f, "oci:{}:{tag}", path.display()),
            Source::OciArchive(path) => write!(f, "oci-archive:{}", path.display()),
            Source::Busybox(None) => write!(f, "busybox:"),
            Source::Busybox(Some(path)) => write!(f, "busybox:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_busybox_sources() {
        assert_eq!("busybox:".parse(), Ok(Source::Busybox(None)));
        assert_eq!(
            "busybox:/bin/busybox".parse(),
            Ok(Source::Busybox(Some("/bin/busybox".into())))
        );
    }

    #[test]
    fn parses_registry_sources() {
        let Ok(Source::Docker(reference)) = "docker://busybox".parse() else {
            panic!("docker://busybox is a registry source");
        };
        assert_eq!(
            reference.to_string(),
            "registry-1.docker.io/library/busybox:latest"
        );
        let source: Source = "docker://127.0.0.1:5000/busybox:1".parse().unwrap();
        assert_eq!(source.to_string(), "docker://127.0.0.1:5000/busybox:1");
        let error = "docker:busybox".parse::<Source>().unwrap_err();
        assert!(error.contains("docker://NAME"), "{error}");
        let error = "docker://Busy".parse::<Source>().unwrap_err();
        assert!(error.contains("not an image name"), "{error}");
    }

    #[test]
    fn parses_archive_and_layout_sources() {
        assert_eq!(
            "docker-archive:busybox.tar".parse(),
            Ok(Source::DockerArchive("busybox.tar".into()))
        );
        assert_eq!(
            "oci-archive:/tmp/b.tar".parse(),
            Ok(Source::OciArchive("/tmp/b.tar".into()))
        );
        assert_eq!(
            "oci:layout".parse(),
            Ok(Source::Oci {
                path: "layout".into(),
                tag: None
            })
        );
        assert_eq!(
            "oci:/tmp/layout:1.36".parse(),
            Ok(Source::Oci {
                path: "/tmp/layout".into(),
                tag: Some("1.36".into())
            })
        );
        assert_eq!(
            "oci:./a:b/layout".parse(),
            Ok(Source::Oci {
                path: "./a:b/layout".into(),
                tag: None
            })
        );
        assert!("docker-archive:".parse::<Source>().is_err());
        assert!("oci::latest".parse::<Source>().is_err());
    }

    #[test]
    fn rejects_unknown_transports() {
        let error = "ftp://example.com/x".parse::<Source>().unwrap_err();
        assert!(error.contains("unknown transport \"ftp\""), "{error}");
        assert!("busybox".parse::<Source>().is_err());
    }
}

//! Where a root filesystem comes from, named like skopeo's transports
//! (`busybox:/bin/busybox`), so that more sources can be added without changing the CLI.

use std::path::PathBuf;
use std::str::FromStr;

/// A source of a root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `busybox:[PATH]`: the host's static busybox (found automatically without a path).
    Busybox(Option<PathBuf>),
}

/// The forms a source can take, for error messages and `--help`.
pub const FORMS: &str = "busybox:[PATH]";

impl FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((transport, rest)) = text.split_once(':') else {
            return Err(format!(
                "{text:?} names no transport: expected one of {FORMS}"
            ));
        };
        match transport {
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
    fn rejects_unknown_transports() {
        let error = "ftp://example.com/x".parse::<Source>().unwrap_err();
        assert!(error.contains("unknown transport \"ftp\""), "{error}");
        assert!("busybox".parse::<Source>().is_err());
    }
}

//! Which of an image's builds to use: `linux/amd64`, `linux/arm64/v8`…
//!
//! A multi-architecture image is an *index* listing one manifest per platform, named with
//! Go's GOOS/GOARCH words (which is why x86-64 is `amd64`). We pick the one this machine
//! can run, unless `--platform` says otherwise.

use std::fmt;
use std::str::FromStr;

/// An OCI platform: operating system, architecture and optional CPU variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this machine, in Go's words.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        }
    }

    /// Does an image built for `os`/`architecture`/`variant` fit this platform? Without a
    /// variant of our own, any variant fits; `arm64` images say `v8` or nothing.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let variant_fits = match (self.variant.as_deref(), variant) {
            (None, _) => true,
            (Some(ours), Some(theirs)) => ours == theirs,
            (Some(ours), None) => architecture == "arm64" && ours == "v8",
        };
        self.os == os && self.architecture == architecture && variant_fits
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &&str| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        match parts.as_slice() {
            [os, architecture, rest @ ..] if rest.len() <= 1 && parts.iter().all(valid) => {
                Ok(Platform {
                    os: os.to_string(),
                    architecture: architecture.to_string(),
                    variant: rest.first().map(|v| v.to_string()),
                })
            }
            _ => Err(format!(
                "{text:?} is not a platform: expected OS/ARCH[/VARIANT], e.g. linux/arm64"
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_platforms() {
        let arm: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(arm.variant.as_deref(), Some("v8"));
        assert_eq!(arm.to_string(), "linux/arm64/v8");
        assert_eq!(
            "linux/amd64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        for bad in ["linux", "linux/", "linux/arm64/v8/x", "linux/../x"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn matching_ignores_a_variant_nobody_asked_for() {
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        assert!(arm64.matches("linux", "arm64", None));
        assert!(!arm64.matches("linux", "amd64", None));
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(v8.matches("linux", "arm64", None));
        let v6: Platform = "linux/arm/v6".parse().unwrap();
        assert!(!v6.matches("linux", "arm", Some("v7")));
        assert!(Platform::host().matches(
            "linux",
            &Platform::host().architecture,
            Platform::host().variant.as_deref()
        ));
    }
}

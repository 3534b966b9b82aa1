//! Pulling from a registry with the OCI distribution API: `GET /v2/NAME/manifests/REF`
//! and `GET /v2/NAME/blobs/DIGEST`, over HTTPS (plain HTTP only on this machine, or with
//! `--insecure`).
//!
//! Registries such as Docker Hub answer an anonymous request with `401` and a
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge: the client asks the
//! realm for a token for that scope, and repeats the request with it. Every blob goes
//! through the cache, where it is verified against its digest.

use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use oci_spec::image::{Descriptor, Digest};
use plumbing::Hint;
use ureq::http::{Response, StatusCode};
use ureq::{Body, Proxy};

use crate::blob::{self, Blob};
use crate::cache::Cache;
use crate::image::{ACCEPT, Store};
use crate::reference::Reference;

/// How long to wait for a registry to accept a connection: short, so that an offline
/// machine falls back to the host's busybox without making the learner wait.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a registry may stay silent in the middle of an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The registry could not be reached at all (no network, no such host, refused, timed
/// out): the one failure after which the cache or the offline source may stand in.
#[derive(Debug)]
pub struct Unreachable {
    pub host: String,
    pub cause: String,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot reach {}: {}", self.host, self.cause)
    }
}

impl std::error::Error for Unreachable {}

/// A repository on a registry, and the token to read it.
pub struct Registry {
    agent: ureq::Agent,
    reference: Reference,
    /// `http(s)://REGISTRY/v2/REPOSITORY`.
    base: String,
    /// The source as the user wrote it, for messages.
    name: String,
    token: Option<String>,
    cache: Cache,
}

impl Registry {
    pub fn new(reference: &Reference, insecure: bool, name: &str, cache: Cache) -> Registry {
        let loopback = reference.is_loopback();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(READ_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            // A proxy from the environment is for the internet, never for this machine.
            .proxy(if loopback {
                None
            } else {
                Proxy::try_from_env()
            })
            .user_agent(concat!("bento-rootfs-fetch/", env!("CARGO_PKG_VERSION")))
            .build();
        Registry {
            agent: config.into(),
            base: format!(
                "{}://{}/v2/{}",
                scheme(reference, insecure),
                reference.registry,
                reference.repository
            ),
            reference: reference.clone(),
            name: name.to_string(),
            token: None,
            cache,
        }
    }

    /// The manifest or index the reference names, with its media type. A digest
    /// reference is served from the cache when it is there; a tag is asked for, and taken
    /// from the cache only when the registry cannot be reached.
    pub fn top(&mut self) -> Result<(Vec<u8>, Option<String>)> {
        if let Some(digest) = self.reference.digest.clone()
            && let Some(cached) = self.cache.get(&digest)?
        {
            return Ok((cached.read()?, None));
        }
        match self.fetch_manifest(&self.reference.manifest_reference()) {
            Ok((bytes, media_type, digest)) => {
                self.cache.put_bytes(&digest, &bytes)?;
                self.cache.tag(&self.reference, &digest)?;
                Ok((bytes, media_type))
            }
            Err(error) if error.downcast_ref::<Unreachable>().is_some() => {
                let cached = match self.cache.tagged(&self.reference) {
                    Some(digest) => self.cache.get(&digest)?,
                    None => None,
                };
                let Some(cached) = cached else {
                    return Err(error);
                };
                eprintln!("rootfs-fetch: {error:#}: using cached manifest");
                Ok((cached.read()?, None))
            }
            Err(error) => Err(error),
        }
    }

    /// `GET manifests/REFERENCE`: the bytes (verified when REFERENCE is a digest), the
    /// media type and the digest.
    fn fetch_manifest(&mut self, reference: &str) -> Result<(Vec<u8>, Option<String>, Digest)> {
        let url = format!("{}/manifests/{reference}", self.base);
        let response = self.get(&url, ACCEPT)?;
        let response = self.expect_ok(response, "manifest")?;
        let media_type = header(&response, "content-type").map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        });
        let served = header(&response, "docker-content-digest");
        let bytes = response
            .into_body()
            .with_config()
            .limit(blob::MAX_JSON)
            .read_to_vec()
            .map_err(|error| self.failed(error))
            .context("cannot read the manifest")?;
        let digest = blob::digest_of(&bytes);
        // A manifest asked for by digest must be exactly that; one asked for by tag is
        // what the registry says it is.
        let expected = match reference.parse::<Digest>() {
            Ok(pinned) => Some(pinned),
            Err(_) => served
                .and_then(|served| served.parse().ok())
                .filter(|served| blob::sha256_hex(served).is_ok()),
        };
        if let Some(expected) = expected {
            blob::check(&expected, &digest).context("the manifest")?;
        }
        Ok((bytes, media_type, digest))
    }

    /// A GET that answers the registry's token challenge if there is one.
    fn get(&mut self, url: &str, accept: &str) -> Result<Response<Body>> {
        let response = self.send(url, accept)?;
        if response.status() != StatusCode::UNAUTHORIZED || self.token.is_some() {
            return Ok(response);
        }
        let challenge = header(&response, "www-authenticate").unwrap_or_default();
        match parse_challenge(&challenge) {
            Some((scheme, params)) if scheme.eq_ignore_ascii_case("bearer") => {
                drop(response); // done with its connection
                self.token = Some(self.fetch_token(&params)?);
                self.send(url, accept)
            }
            _ => Ok(response), // reported as unauthorized by the caller
        }
    }

    fn send(&self, url: &str, accept: &str) -> Result<Response<Body>> {
        let mut request = self.agent.get(url).header("Accept", accept);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        request.call().map_err(|error| self.failed(error))
    }

    /// Asks the challenge's realm for an anonymous token.
    fn fetch_token(&self, params: &HashMap<String, String>) -> Result<String> {
        let realm = params
            .get("realm")
            .context("the registry's token challenge names no realm")?;
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
        let mut request = self.agent.get(realm).query("scope", &scope);
        if let Some(service) = params.get("service") {
            request = request.query("service", service);
        }
        let response = request.call().map_err(|error| self.failed(error))?;
        let response = self
            .expect_ok(response, "token")
            .with_context(|| format!("cannot get a token from {realm}"))?;
        let body = response
            .into_body()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .map_err(|error| self.failed(error))?;
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        answer["token"]
            .as_str()
            .or(answer["access_token"].as_str())
            .map(str::to_string)
            .with_context(|| format!("{realm} answered no token"))
    }

    /// Turns an answer that is not `200 OK` into a clear error.
    fn expect_ok(&self, response: Response<Body>, what: &str) -> Result<Response<Body>> {
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(response);
        }
        let (code, message) = registry_error(response);
        let message =
            message.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase());
        let error = anyhow::anyhow!("{}: {message} ({})", self.name, status.as_u16());
        let hint = match (status.as_u16(), code.as_deref(), what) {
            (404, Some("NAME_UNKNOWN"), _) => format!(
                "check the image name: the registry {} has no {}",
                self.reference.registry, self.reference.repository
            ),
            (404, _, "manifest") => format!(
                "check the image name and the tag: `skopeo list-tags docker://{}/{}` lists the tags",
                self.reference.registry, self.reference.repository
            ),
            (401 | 403, _, _) => "rootfs-fetch pulls public images anonymously; check the name \
                 (registries say \"unauthorized\" for images that do not exist, too)"
                .into(),
            (429, _, _) => {
                "the registry limits anonymous pulls: wait a while, or use another source \
                 (busybox: builds one offline)"
                    .into()
            }
            _ => "the registry refused: try again later, or use another source".into(),
        };
        Err(error).hint(hint)
    }

    /// A transport error: unreachable registries are told apart for the fallback.
    fn failed(&self, error: ureq::Error) -> anyhow::Error {
        let cause = match &error {
            ureq::Error::HostNotFound => Some("host not found".to_string()),
            ureq::Error::ConnectionFailed => Some("connection failed".into()),
            ureq::Error::Timeout(_) => Some(error.to_string()),
            // Before an answer: DNS failures, refused or reset connections, no route…
            ureq::Error::Io(io) => Some(io.to_string()),
            _ => None,
        };
        match cause {
            Some(cause) => anyhow::Error::new(Unreachable {
                host: self.reference.registry.clone(),
                cause,
            }),
            None => anyhow::Error::new(error).context(self.name.clone()),
        }
    }

    fn download(&mut self, descriptor: &Descriptor) -> Result<Blob> {
        let digest = descriptor.digest();
        let url = format!("{}/blobs/{digest}", self.base);
        let response = self.get(&url, "*/*")?;
        let response = self.expect_ok(response, "blob")?;
        let bar = progress_bar(descriptor.size(), &blob::short(digest));
        let reader = response.into_body().into_reader();
        let stored = self
            .cache
            .put(digest, Some(descriptor.size()), reader, |n| bar.inc(n));
        bar.finish_and_clear();
        stored.with_context(|| format!("downloading {}", blob::short(digest)))
    }
}

impl Store for Registry {
    fn manifest(&mut self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let digest = descriptor.digest();
        if let Some(cached) = self.cache.get(digest)? {
            return cached.read();
        }
        let (bytes, _, _) = self.fetch_manifest(digest.as_ref())?;
        self.cache.put_bytes(digest, &bytes)?;
        Ok(bytes)
    }

    fn blob(&mut self, descriptor: &Descriptor) -> Result<Blob> {
        match self.cache.get(descriptor.digest())? {
            Some(cached) => Ok(cached),
            None => self.download(descriptor),
        }
    }
}

/// Plain HTTP only where nobody can listen in or tamper (this machine), or when asked to.
fn scheme(reference: &Reference, insecure: bool) -> &'static str {
    if reference.is_loopback() || insecure {
        "http"
    } else {
        "https"
    }
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// The code and message of a registry's `{"errors":[{"code":…,"message":…}]}` answer.
fn registry_error(response: Response<Body>) -> (Option<String>, Option<String>) {
    let body = response
        .into_body()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let first = &value["errors"][0];
    let text = |field: &str| first[field].as_str().map(str::to_string);
    (text("code"), text("message"))
}

/// A progress bar with bytes and rate, only when someone watches stderr.
fn progress_bar(size: u64, label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size).with_message(label.to_string());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Parses `Bearer realm="…",service="…",scope="…"` into the scheme and its parameters.
fn parse_challenge(header: &str) -> Option<(String, HashMap<String, String>)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        params.insert(key.trim().to_lowercase(), value.trim().to_string());
    }
    Some((scheme.to_string(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_this_machine_or_when_asked() {
        let scheme_of = |name: &str, insecure| scheme(&name.parse().unwrap(), insecure);
        assert_eq!(scheme_of("127.0.0.1:5000/busybox", false), "http");
        assert_eq!(scheme_of("localhost:5000/busybox", false), "http");
        assert_eq!(scheme_of("busybox", false), "https");
        assert_eq!(scheme_of("ghcr.io/x/y", false), "https");
        assert_eq!(scheme_of("10.0.0.1:5000/busybox", false), "https");
        assert_eq!(scheme_of("10.0.0.1:5000/busybox", true), "http");
    }

    #[test]
    fn parses_token_challenges() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(scheme, "Bearer");
        assert_eq!(params["realm"], "https://auth.docker.io/token");
        assert_eq!(params["service"], "registry.docker.io");
        assert_eq!(params["scope"], "repository:library/busybox:pull");

        let (_, params) =
            parse_challenge(r#"Bearer realm="http://x/t", scope="a:b:pull,push",error=x"#).unwrap();
        assert_eq!(params["scope"], "a:b:pull,push");
        assert_eq!(params["error"], "x");
        assert_eq!(parse_challenge("Basic").map(|(s, _)| s), None);
        let (scheme, _) = parse_challenge(r#"Basic realm="Registry""#).unwrap();
        assert_eq!(scheme, "Basic");
    }
}

//! Pulling from a registry with the OCI distribution API: `GET /v2/NAME/manifests/REF`
//! and `GET /v2/NAME/blobs/DIGEST`, over HTTPS (plain HTTP only on this machine, or with
//! `--insecure`).
//!
//! Registries such as Docker Hub answer an anonymous request with `401` and a
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge: the client asks the
//! realm for a token for that scope, and repeats the request with it. Every blob goes
//! through the cache, where it is verified against its digest.
//!
//! A registry may send the client elsewhere: blobs are often redirected to a storage
//! server, and the token realm can be any URL. Those URLs are checked before anything
//! connects to them, with the rule the registry's own URL follows, and every answer has
//! limits in time, so that a server that stalls or trickles cannot hold a pull forever.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, IsTerminal};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use oci_spec::image::{Descriptor, Digest};
use plumbing::Hint;
use ureq::http::{Response, StatusCode, Uri};
use ureq::{Body, Proxy, ResponseExt, Timeout};

use crate::blob::{self, Blob};
use crate::cache::Cache;
use crate::image::{ACCEPT, Store};
use crate::reference::{Reference, is_loopback_host};

/// How long to wait for a registry to accept a connection: short, so that an offline
/// machine falls back to the host's busybox without making the learner wait.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a registry may stay silent in the middle of an answer
/// (`BENTO_FETCH_READ_TIMEOUT`, in seconds, overrides it).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one answer (a manifest, a blob, a token) may take in all
/// (`BENTO_FETCH_TIMEOUT` overrides it): a server sending a byte every few seconds never
/// stays silent for [`READ_TIMEOUT`], and must be cut off too.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(600);
/// How many redirects in a row are followed: registries redirect a blob once, to where
/// it is stored.
const MAX_REDIRECTS: usize = 5;

/// Said when a registry sends the client to a URL that makes no sense, or in circles.
const MISCONFIGURED_HINT: &str =
    "the registry is misconfigured: try again later, or use another source";
/// Said when a registry sends the client to a plain-HTTP URL on another machine.
const PLAIN_HTTP_HINT: &str = "plain HTTP can be read and changed on the way: rootfs-fetch \
     follows https:// URLs, and http:// ones only on this machine (--insecure allows them \
     anywhere, for a registry on a network you trust)";

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
    /// Plain HTTP to other machines was allowed with `--insecure`.
    insecure: bool,
    /// The longest silence, and the longest time, that one answer may take.
    read_timeout: Duration,
    total_timeout: Duration,
}

impl Registry {
    pub fn new(
        reference: &Reference,
        insecure: bool,
        name: &str,
        cache: Cache,
    ) -> Result<Registry> {
        let loopback = reference.is_loopback();
        let read_timeout = seconds_from_env("BENTO_FETCH_READ_TIMEOUT", READ_TIMEOUT)?;
        let total_timeout = seconds_from_env("BENTO_FETCH_TIMEOUT", TOTAL_TIMEOUT)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // `send` follows redirects itself, after checking where they lead.
            .max_redirects(0)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(read_timeout))
            .timeout_per_read(Some(read_timeout))
            // Headers and body: without it, a trickle would never end.
            .timeout_per_call(Some(total_timeout))
            // A proxy from the environment is for the internet, never for this machine.
            .proxy(if loopback {
                None
            } else {
                Proxy::try_from_env()
            })
            .user_agent(concat!("bento-rootfs-fetch/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Registry {
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
            insecure,
            read_timeout,
            total_timeout,
        })
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
        let uri = response.get_uri().clone();
        let media_type = header(&response, "content-type").map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        });
        let served = header(&response, "docker-content-digest");
        let bytes = match response
            .into_body()
            .with_config()
            .limit(blob::MAX_JSON)
            .read_to_vec()
        {
            Ok(bytes) => bytes,
            Err(ureq::Error::Timeout(timeout)) => {
                return self.cut_off(timeout, &uri, "the manifest");
            }
            Err(error) => {
                return Err(self.failed(error, &uri)).context("cannot read the manifest");
            }
        };
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
        let uri: Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        let response = self.send(uri.clone(), accept, &[])?;
        if response.status() != StatusCode::UNAUTHORIZED || self.token.is_some() {
            return Ok(response);
        }
        let challenge = header(&response, "www-authenticate").unwrap_or_default();
        match parse_challenge(&challenge) {
            Some((scheme, params)) if scheme.eq_ignore_ascii_case("bearer") => {
                let challenger = response.get_uri().clone();
                drop(response); // done with its connection
                self.token = Some(self.fetch_token(&params, &challenger)?);
                self.send(uri, accept, &[])
            }
            _ => Ok(response), // reported as unauthorized by the caller
        }
    }

    /// GET `uri` (plus `query`). Redirects are followed here, not by ureq, so that each
    /// target is checked before anything connects to it; and the token goes only to the
    /// registry, never to the server it redirects a blob to.
    fn send(&self, mut uri: Uri, accept: &str, query: &[(&str, &str)]) -> Result<Response<Body>> {
        let mut query = query;
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.agent.get(uri.clone()).header("Accept", accept);
            if let Some(token) = &self.token
                && self.is_registry(&uri)
            {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            for (key, value) in query {
                request = request.query(key, value);
            }
            let response = request.call().map_err(|error| self.failed(error, &uri))?;
            let location = header(&response, "location").filter(|location| !location.is_empty());
            let Some(location) = location.filter(|_| is_redirect(response.status())) else {
                return Ok(response); // a redirect to nowhere is reported by the caller
            };
            let Some(target) = resolve(&uri, &location) else {
                let who = self.who(&uri);
                return Err(anyhow::anyhow!(
                    "{who} redirects to {location:?}: not a URL"
                ))
                .hint(MISCONFIGURED_HINT);
            };
            self.check_target(&uri, "redirects to", &target)?;
            uri = target;
            query = &[]; // the location has its own
        }
        Err(anyhow::anyhow!(
            "{} redirects more than {MAX_REDIRECTS} times in a row",
            self.who(&uri)
        ))
        .hint(MISCONFIGURED_HINT)
    }

    /// Is `uri` on the registry itself (same scheme, host and port)? Only there does the
    /// registry's token go.
    fn is_registry(&self, uri: &Uri) -> bool {
        uri.scheme_str() == Some(scheme(&self.reference, self.insecure))
            && uri.authority().map(|authority| authority.as_str())
                == Some(self.reference.registry.as_str())
    }

    /// The server `uri` is on, for messages: `registry HOST:PORT` for the registry.
    fn who(&self, uri: &Uri) -> String {
        let server = server(uri);
        if server == self.reference.registry {
            format!("registry {server}")
        } else {
            server
        }
    }

    /// Refuses, before anything connects to it, a URL that the server at `from` sends
    /// the client to (`how`: a redirect, a token realm), unless it is one the registry's
    /// own URL could be: HTTPS, or plain HTTP on this machine (or with `--insecure`).
    fn check_target(&self, from: &Uri, how: &str, target: &Uri) -> Result<()> {
        let host = target.host().unwrap_or_default();
        let refused = match target.scheme_str() {
            Some("https") => return Ok(()),
            Some("http") if plain_http_allowed(host, self.insecure) => return Ok(()),
            Some("http") => "plain HTTP goes only to this machine",
            _ => "only https:// and http:// URLs are followed",
        };
        Err(anyhow::anyhow!(
            "{} {how} {target}: refused, {refused}",
            self.who(from)
        ))
        .hint(PLAIN_HTTP_HINT)
    }

    /// Asks the challenge's realm for an anonymous token (`challenger` asked for one).
    fn fetch_token(&self, params: &HashMap<String, String>, challenger: &Uri) -> Result<String> {
        let realm = params
            .get("realm")
            .context("the registry's token challenge names no realm")?;
        let Some(realm_uri) = resolve(challenger, realm) else {
            let who = self.who(challenger);
            return Err(anyhow::anyhow!(
                "{who} asks for a token at {realm:?}: not a URL"
            ))
            .hint(MISCONFIGURED_HINT);
        };
        self.check_target(challenger, "asks for a token at", &realm_uri)?;
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
        let mut query = vec![("scope", scope.as_str())];
        if let Some(service) = params.get("service") {
            query.push(("service", service));
        }
        let response = self.send(realm_uri, "*/*", &query)?;
        let response = self
            .expect_ok(response, "token")
            .with_context(|| format!("cannot get a token from {realm}"))?;
        let uri = response.get_uri().clone();
        let body = match response
            .into_body()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
        {
            Ok(body) => body,
            Err(ureq::Error::Timeout(timeout)) => return self.cut_off(timeout, &uri, "a token"),
            Err(error) => return Err(self.failed(error, &uri)),
        };
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

    /// A transport error on the way to `uri`: unreachable servers are told apart for the
    /// fallback.
    fn failed(&self, error: ureq::Error, uri: &Uri) -> anyhow::Error {
        let cause = match &error {
            ureq::Error::HostNotFound => Some("host not found".to_string()),
            ureq::Error::ConnectionFailed => Some("connection failed".into()),
            ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect) => Some(format!(
                "no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            )),
            ureq::Error::Timeout(Timeout::PerCall | Timeout::Global) => Some(format!(
                "no complete answer within {} s",
                self.total_timeout.as_secs()
            )),
            ureq::Error::Timeout(_) => {
                Some(format!("no answer for {} s", self.read_timeout.as_secs()))
            }
            // Before an answer: DNS failures, refused or reset connections, no route…
            ureq::Error::Io(io) => Some(io.to_string()),
            _ => None,
        };
        match cause {
            Some(cause) => anyhow::Error::new(Unreachable {
                host: server(uri),
                cause,
            }),
            None => anyhow::Error::new(error).context(self.name.clone()),
        }
    }

    /// The clear error for an answer cut off by one of the limits, while `what` was read
    /// from `uri`.
    fn cut_off<T>(&self, timeout: Timeout, uri: &Uri, what: &str) -> Result<T> {
        let who = self.who(uri);
        if let Timeout::PerCall | Timeout::Global | Timeout::RecvBody = timeout {
            let limit = self.total_timeout.as_secs();
            return Err(anyhow::anyhow!(
                "{who} is too slow: {what} took more than {limit} s"
            ))
            .hint(format!(
                "the registry or the network is too slow: try again later \
                 (BENTO_FETCH_TIMEOUT=SECONDS allows more than {limit} s per download)"
            ));
        }
        let limit = self.read_timeout.as_secs();
        Err(anyhow::anyhow!(
            "{who} stopped sending (no data for {limit} s) while downloading {what}"
        ))
        .hint(format!(
            "the registry or the network stalled: try again later \
             (BENTO_FETCH_READ_TIMEOUT=SECONDS waits longer than {limit} s)"
        ))
    }

    fn download(&mut self, descriptor: &Descriptor) -> Result<Blob> {
        let digest = descriptor.digest();
        let url = format!("{}/blobs/{digest}", self.base);
        let response = self.get(&url, "*/*")?;
        let response = self.expect_ok(response, "blob")?;
        let uri = response.get_uri().clone();
        let bar = progress_bar(descriptor.size(), &blob::short(digest));
        let reader = response.into_body().into_reader();
        // Never more than the descriptor's size: the cache stops reading there.
        let stored = self
            .cache
            .put(digest, Some(descriptor.size()), reader, |n| bar.inc(n));
        bar.finish_and_clear();
        match stored {
            Err(error) => match timeout_of(&error) {
                Some(timeout) => {
                    self.cut_off(timeout, &uri, &format!("blob {}", blob::short(digest)))
                }
                None => Err(error.context(format!("downloading {}", blob::short(digest)))),
            },
            stored => stored,
        }
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
    if plain_http_allowed(reference.host(), insecure) {
        "http"
    } else {
        "https"
    }
}

/// May plain HTTP go to `host`? The one rule for the registry and for wherever it sends
/// the client (redirects, token realms): only to this machine, unless `--insecure`.
///
/// With `--insecure`, the registry's own answers travel in clear, so anyone on the way
/// can already change its redirects and realms: refusing a plain-HTTP one would protect
/// nothing, and would break registries whose storage is on another plain-HTTP server.
/// (Blobs are still checked against their digests.)
fn plain_http_allowed(host: &str, insecure: bool) -> bool {
    insecure || is_loopback_host(host)
}

/// `HOST[:PORT]` of `uri` (without any user name or password in it).
fn server(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("?");
    match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The statuses that send the client to the `Location` header (300 and 304 do not).
fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The absolute URL that `location` (a redirect's `Location`, a token realm) names,
/// seen from `base`: `scheme://…` as it is, `//host/path` with base's scheme, `/path`
/// on base's server, `path` beside base's path.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let has_scheme = location.split_once(':').is_some_and(|(name, _)| {
        name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let absolute = if has_scheme {
        location.to_string()
    } else if location.starts_with("//") {
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{scheme}://{authority}{dir}/{location}")
    };
    let uri: Uri = absolute.parse().ok()?;
    (uri.scheme().is_some() && uri.host().is_some_and(|host| !host.is_empty())).then_some(uri)
}

/// The limit that cut off a download, when that is what `error` is (an I/O error from
/// the body's reader, which wraps ureq's).
fn timeout_of(error: &anyhow::Error) -> Option<Timeout> {
    let io = error.downcast_ref::<io::Error>()?;
    match io.get_ref()?.downcast_ref::<ureq::Error>()? {
        ureq::Error::Timeout(timeout) => Some(*timeout),
        _ => None,
    }
}

/// A limit in whole seconds from the environment variable `name`, or `default`.
fn seconds_from_env(name: &str, default: Duration) -> Result<Duration> {
    let Some(value) = std::env::var_os(name).filter(|value| !value.is_empty()) else {
        return Ok(default);
    };
    match value
        .to_str()
        .and_then(|text| text.trim().parse::<u64>().ok())
    {
        Some(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
        _ => Err(anyhow::anyhow!(
            "{name}={}: not a number of seconds",
            value.to_string_lossy()
        ))
        .hint(format!(
            "set {name} to a whole number of seconds (at least 1), or unset it for {} s",
            default.as_secs()
        )),
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
    fn plain_http_goes_to_this_machine_only_unless_insecure() {
        for host in ["127.0.0.1", "127.0.0.2", "[::1]", "localhost", "LocalHost"] {
            assert!(plain_http_allowed(host, false), "{host}");
        }
        for host in [
            "192.0.2.1",
            "[2001:db8::1]",
            "cdn.example",
            "localhost.example",
        ] {
            assert!(!plain_http_allowed(host, false), "{host}");
            assert!(plain_http_allowed(host, true), "{host} with --insecure");
        }
    }

    #[test]
    fn locations_are_resolved_against_the_request() {
        let base: Uri = "http://127.0.0.1:5000/v2/x/blobs/sha256:ab?n=1"
            .parse()
            .unwrap();
        let at = |location| resolve(&base, location).map(|uri| uri.to_string());
        let cdn = "https://cdn.example/blobs/ab?signature=1";
        assert_eq!(at(cdn).as_deref(), Some(cdn));
        assert_eq!(at("//192.0.2.1/ab").as_deref(), Some("http://192.0.2.1/ab"));
        assert_eq!(
            at("/v2/y/blobs/cd").as_deref(),
            Some("http://127.0.0.1:5000/v2/y/blobs/cd")
        );
        assert_eq!(
            at("cd?n=2").as_deref(),
            Some("http://127.0.0.1:5000/v2/x/blobs/cd?n=2")
        );
        // Another scheme is resolved, and then refused by `check_target`.
        assert_eq!(at("ftp://host/ab").as_deref(), Some("ftp://host/ab"));
        for bad in ["http://", "http:///path", "https://host name/", "//"] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_real_redirects_are_followed() {
        for code in [301, 302, 303, 307, 308] {
            assert!(is_redirect(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [200, 300, 304, 305, 401] {
            assert!(!is_redirect(StatusCode::from_u16(code).unwrap()), "{code}");
        }
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

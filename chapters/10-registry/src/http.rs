// Your copy of solutions/10-registry/src/http.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! HTTP as a registry needs it: GETs over HTTPS (plain HTTP only where the user said
//! so), redirects followed by hand, retries, a stall limit, and every request narrated
//! under `--trace`. Book: section 10.2.
//!
//! The client is `ureq`, small and blocking: a runtime forks, and a process that forks
//! should not hold the threads of an async runtime. The kit follows redirects itself
//! rather than let the client do it, because that is where credentials leak: a registry
//! often sends a blob request on to a storage host, and the `Authorization` meant for the
//! registry must not go with it.

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ureq::http::{HeaderMap, Response};
use ureq::tls::{RootCerts, TlsConfig};
use ureq::{Agent, Body};

use crate::errors::{self, ERROR_BODY_LIMIT};
use crate::trace;

/// How many redirects one request may take: registries use one, to their storage.
const REDIRECTS: usize = 5;
/// How many times a request the server failed (5xx, 429, a reset) is tried again.
const RETRIES: u32 = 3;
/// The first wait before trying again; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The client, shared by all of a pull's requests (and its threads).
pub struct Http {
    agent: Agent,
    stall: Duration,
    /// Hosts that may be spoken to in plain HTTP (`--insecure-registry`).
    plain_hosts: Vec<String>,
}

/// A credential, sent only to the host it is for.
#[derive(Clone)]
pub struct Authorization {
    /// `Basic …` or `Bearer …`.
    pub value: String,
    /// `HOST[:PORT]`.
    pub host: String,
}

/// An answer: its status, headers and body, and the URL that gave it (after redirects).
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Body,
    pub url: String,
}

impl Http {
    /// A client that gives up on a connection that sends nothing for `stall`.
    pub fn new(plain_hosts: &[String], stall: Duration) -> Http {
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::PlatformVerifier)
            .build();
        let config = Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(stall))
            .user_agent(concat!("byoc/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build();
        Http {
            agent: config.into(),
            stall,
            plain_hosts: plain_hosts.to_vec(),
        }
    }

    /// How long a download may go without a byte.
    pub fn stall(&self) -> Duration {
        self.stall
    }

    // ANCHOR: scheme
    /// The scheme to speak to `host` with: `https`, except for this machine and the
    /// hosts named with `--insecure-registry`.
    pub fn scheme(&self, host: &str) -> &'static str {
        let name = host_name(host);
        let local = matches!(name, "localhost" | "127.0.0.1" | "[::1]");
        match local || self.plain_hosts.iter().any(|plain| plain == host) {
            true => "http",
            false => "https",
        }
    }
    // ANCHOR_END: scheme

    // ANCHOR: get
    /// GETs `url` with `headers`, and `authorization` if the request is to its host.
    /// Follows redirects (dropping the credential when one leaves its host), and tries
    /// again, a few times with a growing wait, when the server fails or the connection
    /// breaks before an answer.
    pub fn get(
        &self,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&Authorization>,
    ) -> Result<Reply> {
        let mut url = url.to_string();
        for _ in 0..=REDIRECTS {
            let credential = credential_for(&url, authorization);
            let reply = self.get_with_retries(&url, headers, credential)?;
            if !matches!(reply.status, 301 | 302 | 303 | 307 | 308) {
                return Ok(reply);
            }
            url = self.follow(&url, &reply)?;
        }
        bail!("{url}: more than {REDIRECTS} redirects (a redirect loop?): gave up")
    }
    // ANCHOR_END: get

    // ANCHOR: follow
    /// Where a redirect sends the request: an absolute URL, or a path on the same host;
    /// never from HTTPS down to plain HTTP.
    fn follow(&self, from: &str, reply: &Reply) -> Result<String> {
        let location = reply
            .header("location")
            .ok_or_else(|| anyhow!("{from}: a redirect ({}) to nowhere", reply.status))?;
        let scheme = from.split("://").next().unwrap_or("https");
        let next = if let Some(elsewhere) = location.strip_prefix("//") {
            format!("{scheme}://{elsewhere}") // another host, the same scheme
        } else if location.starts_with('/') {
            let origin = from.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            format!("{origin}{location}")
        } else if location.starts_with("https://") || location.starts_with("http://") {
            location.to_string()
        } else {
            bail!(
                "{from}: a redirect to {location:?}, which is not a URL the kit follows"
            );
        };
        let downgrade = from.starts_with("https://") && next.starts_with("http://");
        if downgrade && self.scheme(host_of(&next).unwrap_or_default()) == "https" {
            bail!("{from}: a redirect from HTTPS to plain HTTP ({next}): refused");
        }
        Ok(next)
    }
    // ANCHOR_END: follow

    // ANCHOR: retries
    fn get_with_retries(
        &self,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&Authorization>,
    ) -> Result<Reply> {
        let mut wait = FIRST_BACKOFF;
        for attempt in 0..=RETRIES {
            let last = attempt == RETRIES;
            let mut asked = None;
            match self.get_once(url, headers, authorization) {
                Ok(reply) if last || !worth_retrying(&reply) => return Ok(reply),
                Ok(reply) => asked = retry_after(&reply).map(Duration::from_secs),
                Err(error) if last || !is_transient(&error) => {
                    return Err(error).with_context(|| format!("GET {url}"))
                }
                Err(_) => {}
            }
            // The server's own wait, when it says one (short: see `worth_retrying`).
            let this_time = asked.map_or(wait, |asked| asked.max(wait));
            trace::say(format_args!("HTTP again in {} ms", this_time.as_millis()));
            std::thread::sleep(this_time);
            wait *= 2;
        }
        unreachable!("the last attempt returns")
    }
    // ANCHOR_END: retries

    /// One request, narrated.
    fn get_once(
        &self,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&Authorization>,
    ) -> Result<Reply, ureq::Error> {
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(auth) = authorization {
            request = request.header("Authorization", &auth.value);
        }
        let said = Said(headers, authorization);
        let response = request.call().inspect_err(|error| {
            trace::say(format_args!("HTTP GET {url}{said} = {error}"));
        })?;
        let reply = Reply::from(response, url);
        trace::say(format_args!("HTTP GET {url}{said} = {reply}"));
        Ok(reply)
    }
}

// ANCHOR: credential_for
/// The credential to send with a request to `url`: `authorization` when `url` is on
/// the host it is for; nothing anywhere else.
fn credential_for<'a>(
    url: &str,
    authorization: Option<&'a Authorization>,
) -> Option<&'a Authorization> {
    // TODO: EXERCISE 10.4 (book 10.2): a credential goes only to its own host
    // HINT: a registry often redirects a blob request to a storage host (S3, a CDN).
    // HINT: the token or password meant for the registry must not go there with it.
    todo!("exercise 10.4: a credential goes only to its own host (book section 10.2)")
}
// ANCHOR_END: credential_for

// ANCHOR: worth_retrying
/// The longest `Retry-After` worth waiting for here: a registry that asks for more
/// (Docker Hub's rate limit asks for hours) is told to the user at once.
const LONGEST_WAIT: u64 = 10;

/// Answers that say "not now" rather than "no": a server's failure, or too many
/// requests with a short wait (or none said).
fn worth_retrying(reply: &Reply) -> bool {
    let wait = retry_after(reply);
    match reply.status {
        429 => wait.is_none_or(|seconds| seconds <= LONGEST_WAIT),
        status => (500..600).contains(&status),
    }
}

/// The seconds a `Retry-After` asks for, when it says seconds (it may say a date).
fn retry_after(reply: &Reply) -> Option<u64> {
    reply.header("retry-after")?.trim().parse().ok()
}

/// Failures of the connection rather than of the request: tried again.
fn is_transient(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_)
    )
}
// ANCHOR_END: worth_retrying

/// `HOST[:PORT]` of an `http(s)://` URL.
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?']).next().unwrap_or(rest))
}

/// The host without its port.
fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

impl Reply {
    fn from(response: Response<Body>, url: &str) -> Reply {
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        Reply {
            status,
            headers: parts.headers,
            body,
            url: url.to_string(),
        }
    }

    /// A header's value, if it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body, refused if it is more than `limit` bytes.
    pub fn read_capped(mut self, limit: u64) -> Result<Vec<u8>> {
        let url = self.url.clone();
        self.body
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|error| match error {
                ureq::Error::BodyExceedsLimit(_) => {
                    anyhow!("{url}: the answer is more than {limit} bytes: refused")
                }
                other => anyhow!(other).context(format!("cannot read {url}")),
            })
    }

    /// The refusal this answer is, in one line, for the image `what`.
    pub fn refusal(self, what: &str) -> anyhow::Error {
        let status = self.status;
        let retry_after = self.header("retry-after").map(str::to_string);
        let body = self.read_capped(ERROR_BODY_LIMIT).unwrap_or_default();
        anyhow!(errors::explain(status, &body, what, retry_after.as_deref()))
    }
}

/// The headers a trace line shows of an answer.
const SHOWN: [&str; 6] = [
    "content-type",
    "content-length",
    "docker-content-digest",
    "location",
    "www-authenticate",
    "content-range",
];

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        for name in SHOWN {
            if let Some(value) = self.header(name) {
                write!(f, " {name}: {value}")?;
            }
        }
        Ok(())
    }
}

/// A request's headers as a trace line shows them: credentials redacted.
struct Said<'a>(&'a [(&'a str, String)], Option<&'a Authorization>);

impl fmt::Display for Said<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.0 {
            if !name.eq_ignore_ascii_case("accept") {
                write!(f, " {name}: {value}")?;
            }
        }
        if let Some(auth) = self.1 {
            let scheme = auth.value.split(' ').next().unwrap_or_default();
            write!(f, " authorization: {scheme} [redacted]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_from_urls_with_and_without_ports() {
        assert_eq!(host_of("https://a.io/v2/x"), Some("a.io"));
        assert_eq!(host_of("http://127.0.0.1:5000/v2/"), Some("127.0.0.1:5000"));
        assert_eq!(host_of("https://s3.io?sig=1"), Some("s3.io"));
        assert_eq!(host_of("no-scheme"), None);
    }

    #[test]
    fn plain_http_only_for_this_machine_and_named_hosts() {
        let http = Http::new(&["reg.lan:5000".to_string()], Duration::from_secs(1));
        assert_eq!(http.scheme("localhost:5000"), "http");
        assert_eq!(http.scheme("127.0.0.1:41000"), "http");
        assert_eq!(http.scheme("reg.lan:5000"), "http");
        assert_eq!(http.scheme("reg.lan"), "https");
        assert_eq!(http.scheme("docker.io"), "https");
    }
}

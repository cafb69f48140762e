//! Speaking to one repository of one registry, with the credential it asks for.
//! Book: section 10.3.
//!
//! The kit does not guess how a registry wants to be spoken to: it asks anonymously,
//! and a registry that wants more answers 401 with a challenge. `Basic`: send the user
//! and password with every request. `Bearer`: get a token from the realm the challenge
//! names, for its service and for the scope `repository:NAME:pull` (with the user and
//! password, if there are any, as Basic auth to the realm), then send the token. The
//! token is kept for the rest of the pull and its threads; a 401 with a token that
//! worked before gets one new token, not a loop.

use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::challenge::{self, Challenge};
use crate::credentials::Credentials;
use crate::http::{Authorization, Http, Reply};
use crate::oci::DOCUMENT_LIMIT;
use crate::reference::Reference;

/// A repository on a registry, and how to prove who is asking.
pub struct Session<'a> {
    pub http: &'a Http,
    /// `https://HOST` (or `http://` where plain HTTP is allowed).
    base: String,
    host: String,
    repository: String,
    credentials: Option<Credentials>,
    /// What is sent now: nothing until the registry asks.
    authorization: Mutex<Option<Authorization>>,
}

/// A token server's answer (docker's spec says `token`; OAuth2 says `access_token`).
#[derive(Deserialize)]
struct TokenReply {
    token: Option<String>,
    access_token: Option<String>,
}

impl<'a> Session<'a> {
    /// A session for pulling `reference`.
    pub fn new(
        http: &'a Http,
        reference: &Reference,
        credentials: Option<Credentials>,
    ) -> Session<'a> {
        let mut session = Session::for_registry(http, reference.api_host(), credentials);
        session.repository = reference.repository.clone();
        session
    }

    /// A session with the registry at `host` itself, for no repository (`login`).
    pub fn for_registry(
        http: &'a Http,
        host: &str,
        credentials: Option<Credentials>,
    ) -> Session<'a> {
        Session {
            base: format!("{}://{host}", http.scheme(host)),
            http,
            host: host.to_string(),
            repository: String::new(),
            credentials,
            authorization: Mutex::new(None),
        }
    }

    /// The URL of `kind` (`manifests` or `blobs`) `name` in the repository.
    pub fn url(&self, kind: &str, name: &str) -> String {
        format!("{}/v2/{}/{kind}/{name}", self.base, self.repository)
    }

    /// What a manifest request is for, in an error: `REPOSITORY:TAG` or
    /// `REPOSITORY@DIGEST`.
    pub fn name_of(&self, wanted: &str) -> String {
        match wanted.starts_with("sha256:") {
            true => format!("{}@{wanted}", self.repository),
            false => format!("{}:{wanted}", self.repository),
        }
    }

    /// The URL of the API's root, which answers 200 to whom may speak to it.
    pub fn root_url(&self) -> String {
        format!("{}/v2/", self.base)
    }

    // ANCHOR: get
    /// GETs `url`, with the credential the registry asked for. A 401 is answered once:
    /// with what its challenge asks for; a second 401 is the registry's answer.
    pub fn get(&self, url: &str, headers: &[(&str, String)]) -> Result<Reply> {
        let sent = self.current();
        let reply = self.http.get(url, headers, sent.as_ref())?;
        // EXERCISE 10.3 (book 10.3): answer a registry that says 401
        // HINT: a 401 comes with a `WWW-Authenticate` header: what the registry wants.
        // HINT: read it, get the credential it asks for, keep it, and ask again, once.
        // HINT 2: `reply.header("www-authenticate")`, `challenge::parse`, and
        // HINT 2: `self.answer(&challenge)` give the credential; keep it in
        // HINT 2: `self.authorization` so the next requests (other threads too) send it.
        // HINT 3: a 401 with no header is an error that says so (`anyhow!`).
        // TRIVIAL: Ok(reply)
        if reply.status != 401 {
            return Ok(reply);
        }
        let challenge = reply
            .header("www-authenticate")
            .ok_or_else(|| {
                anyhow!(
                    "{url}: the registry answered 401 and no WWW-Authenticate to say \
                     what it wants"
                )
            })
            .and_then(challenge::parse)?;
        let answer = self.answer(&challenge)?;
        *self
            .authorization
            .lock()
            .expect("no thread panics holding it") = Some(answer);
        self.http.get(url, headers, self.current().as_ref())
        // END EXERCISE 10.3
    }
    // ANCHOR_END: get

    fn current(&self) -> Option<Authorization> {
        self.authorization
            .lock()
            .expect("no thread panics holding it")
            .clone()
    }

    /// The credential a challenge asks for.
    fn answer(&self, challenge: &Challenge) -> Result<Authorization> {
        let value = match challenge {
            Challenge::Basic => match &self.credentials {
                Some(credentials) => credentials.basic(),
                None => bail!(
                    "{} wants a user and password (Basic auth): `login {}` first, or \
                     give --creds USER:PASSWORD",
                    self.host,
                    self.host
                ),
            },
            Challenge::Bearer { realm, service, .. } => {
                format!("Bearer {}", self.token(realm, service.as_deref())?)
            }
        };
        Ok(Authorization {
            value,
            host: self.host.clone(),
        })
    }

    // ANCHOR: token
    /// A token from `realm` for pulling this repository (for no repository: a token
    /// that proves who the user is, as `login` asks): anonymous, or for the user and
    /// password there are (sent to the realm only, as Basic auth).
    fn token(&self, realm: &str, service: Option<&str>) -> Result<String> {
        let mut query = Vec::new();
        if let Some(service) = service {
            query.push(format!("service={}", query_value(service)));
        }
        if !self.repository.is_empty() {
            let scope = format!("repository:{}:pull", self.repository);
            query.push(format!("scope={}", query_value(&scope)));
        }
        if let Some(credentials) = &self.credentials {
            query.push(format!("account={}", query_value(&credentials.user)));
        }
        let separator = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{separator}{}", query.join("&"));
        let realm_host = crate::http::host_of(realm).unwrap_or_default().to_string();
        let plain =
            realm.starts_with("http://") && self.http.scheme(&realm_host) == "https";
        if plain && self.credentials.is_some() {
            bail!(
                "the registry sends the password to a token server over plain HTTP \
                 ({realm}), where anyone on the way could read it: refused"
            );
        }
        let basic = self.credentials.as_ref().map(|credentials| Authorization {
            value: credentials.basic(),
            host: realm_host,
        });
        let reply = self.http.get(&url, &[], basic.as_ref())?;
        if reply.status != 200 {
            let who = match &self.credentials {
                Some(credentials) => format!("as {}", credentials.user),
                None => "anonymously".to_string(),
            };
            let why = reply.refusal(&format!("a token for {} {who}", self.repository));
            bail!("the token server at {realm} refused: {why}");
        }
        let body = reply.read_capped(DOCUMENT_LIMIT)?;
        let answer: TokenReply = serde_json::from_slice(&body)
            .with_context(|| format!("the token server at {realm} answered no JSON"))?;
        answer
            .token
            .or(answer.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| anyhow!("the token server at {realm} answered no token"))
    }
    // ANCHOR_END: token
}

/// `text` as a query value: everything but the unreserved characters percent-encoded.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_sent_encoded() {
        assert_eq!(
            query_value("repository:library/alpine:pull"),
            "repository%3Alibrary%2Falpine%3Apull"
        );
    }
}

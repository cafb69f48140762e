// Your copy of solutions/10-registry/src/challenge.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! What a registry says when it wants credentials: `WWW-Authenticate`. Book: section
//! 10.3.
//!
//! A registry answers a request it will not serve anonymously with 401 and a challenge:
//! `Basic realm="Registry"` (send a user and password with every request), or
//! `Bearer realm="https://auth.example/token",service="registry.example",scope="…"` (get
//! a token from the realm first, for that service and scope, and send the token). The
//! header is somebody else's text: it is read by a small parser that knows exactly the
//! grammar, and anything else is refused by name.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// A challenge, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send `Authorization: Basic base64(user:password)`.
    Basic,
    /// Get a token at `realm`, for `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

// ANCHOR: parse
/// Reads a `WWW-Authenticate` header: a scheme, then `name="value"` pairs split by
/// commas (values may hold commas, and `\"` inside quotes).
pub fn parse(header: &str) -> Result<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Ok(Challenge::Basic),
        "bearer" => {
            let params = params(rest).map_err(|why| {
                anyhow::anyhow!("the registry's WWW-Authenticate {header:?} is not one: {why}")
            })?;
            let Some(realm) = params.get("realm").cloned() else {
                bail!("the registry's Bearer challenge {header:?} names no realm to get a token from");
            };
            if !(realm.starts_with("https://") || realm.starts_with("http://")) {
                bail!("the registry's token realm {realm:?} is not an http(s) URL");
            }
            Ok(Challenge::Bearer {
                realm,
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            })
        }
        _ => bail!(
            "the registry asks for {scheme:?} authentication, and the kit speaks Basic and \
             Bearer"
        ),
    }
}
// ANCHOR_END: parse

/// `name="value", name=value, ...`, as RFC 7235 writes parameters.
fn params(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut params = BTreeMap::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(params);
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if chars.next() != Some('=') || name.trim().is_empty() {
            return Err(format!("{name:?} has no value"));
        }
        let value = match chars.peek() {
            Some('"') => {
                chars.next();
                quoted(&mut chars)?
            }
            _ => std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect(),
        };
        params.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
}

/// The rest of a quoted string, after its opening quote.
fn quoted(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<String, String> {
    let mut value = String::new();
    loop {
        match chars.next() {
            Some('"') => return Ok(value),
            Some('\\') => value.extend(chars.next()),
            Some(c) => value.push(c),
            None => return Err("a quote is never closed".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_challenges_are_read() {
        let docker_hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            parse(docker_hub).unwrap(),
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            }
        );
        let two_scopes =
            r#"Bearer realm="http://127.0.0.1:5001/t", scope="repository:a:pull,push""#;
        let Challenge::Bearer { scope, .. } = parse(two_scopes).unwrap() else {
            panic!("not bearer")
        };
        assert_eq!(scope.as_deref(), Some("repository:a:pull,push"));
        assert_eq!(
            parse(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
    }

    #[test]
    fn what_is_not_a_challenge_is_refused_by_name() {
        for (bad, says) in [
            ("Bearer service=\"x\"", "no realm"),
            ("Bearer realm=\"file:///etc/passwd\"", "not an http(s) URL"),
            ("Bearer realm=\"https://x", "never closed"),
            ("Negotiate abc", "Basic and Bearer"),
            ("Bearer realm", "has no value"),
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }
}

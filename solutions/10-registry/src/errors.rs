//! What a registry says when it refuses: the distribution spec's JSON errors,
//! `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"…","detail":…}]}`, told in one line
//! that teaches. Book: section 10.5.

use serde::Deserialize;

/// The most of an error body the kit reads: a registry's error is a few hundred bytes,
/// and a hostile one could send gigabytes.
pub const ERROR_BODY_LIMIT: u64 = 64 * 1024;

#[derive(Debug, Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<RegistryError>,
}

#[derive(Debug, Deserialize)]
struct RegistryError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

// ANCHOR: explain
/// One line for a refusal with HTTP status `status`, from the registry's error body (at
/// most [`ERROR_BODY_LIMIT`] bytes of it), for the image `what`.
pub fn explain(
    status: u16,
    body: &[u8],
    what: &str,
    retry_after: Option<&str>,
) -> String {
    let errors = serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors)
        .unwrap_or_default();
    let first = errors.first();
    let code = first.map_or("", |e| e.code.as_str());
    let message = first.map_or("", |e| e.message.as_str());
    let why = match (status, code) {
        (_, "MANIFEST_UNKNOWN") => format!("the registry has no {what} (MANIFEST_UNKNOWN)"),
        (_, "NAME_UNKNOWN") => format!("the registry has no repository for {what} (NAME_UNKNOWN)"),
        (_, "BLOB_UNKNOWN") => format!("the registry lost a blob of {what} (BLOB_UNKNOWN)"),
        (_, "DENIED") => format!("the registry denies access to {what} (DENIED): log in with an account that may pull it"),
        (401, _) | (_, "UNAUTHORIZED") => {
            format!("the registry wants credentials for {what} (UNAUTHORIZED): `login` first, or give --creds")
        }
        (429, _) | (_, "TOOMANYREQUESTS") => {
            let wait = match retry_after.map(str::trim) {
                Some(after) if after.parse::<u64>().is_ok() => format!(", again after {after} s"),
                Some(after) => format!(", again at {}", one_line(after)),
                None => String::new(),
            };
            format!("the registry refuses more pulls for now (TOOMANYREQUESTS{wait}): registries limit how often one may pull (Docker Hub most of all for anonymous pulls), and logging in raises the limit")
        }
        (404, _) => format!("the registry has no {what} (404)"),
        (status, "") => format!("the registry answered {status} for {what}"),
        (status, code) => format!("the registry answered {status} for {what} ({code})"),
    };
    match message.is_empty() {
        true => why,
        false => format!("{why}; it says: {}", one_line(message)),
    }
}
// ANCHOR_END: explain

/// A message from the registry on one line, and not too long to read.
fn one_line(message: &str) -> String {
    let flat: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_become_one_line_that_says_what_to_do() {
        let unknown = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"9"}}]}"#;
        let line = explain(404, unknown, "alpine:9", None);
        assert!(
            line.contains("has no alpine:9 (MANIFEST_UNKNOWN)"),
            "{line}"
        );
        let limited = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached\nyour pull rate limit"}]}"#;
        let line = explain(429, limited, "alpine", Some("21600"));
        assert!(
            line.contains("again after 21600 s") && !line.contains('\n'),
            "{line}"
        );
        assert!(explain(401, b"not json", "x", None).contains("UNAUTHORIZED"));
        assert!(explain(503, b"", "x", None).contains("answered 503"));
    }
}

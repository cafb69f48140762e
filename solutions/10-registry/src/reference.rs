//! Image references, as docker reads them: `alpine`, `alpine:3.20`,
//! `ghcr.io/org/app@sha256:…`, `localhost:5000/app:1`. Book: section 10.1.
//!
//! A reference names a registry, a repository in it, and a tag or a digest. Most of it
//! may be left out, and docker fills it in: no registry is Docker Hub (`docker.io`, whose
//! API answers at `registry-1.docker.io`), a one-part name on Docker Hub is an official
//! image under `library/`, and no tag is `latest`. Every part is checked before anything
//! is sent anywhere, with the rule it breaks.

use std::fmt;

use anyhow::{bail, Result};

use crate::digest::Digest;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A reference, every part filled in and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry as the reference names it: `docker.io`, `localhost:5000`.
    pub registry: String,
    /// The repository in it: `library/alpine`.
    pub repository: String,
    /// The tag, `latest` if none was given and no digest either.
    pub tag: Option<String>,
    /// The manifest's digest, when the reference pins one.
    pub digest: Option<Digest>,
}

// ANCHOR: parse
impl Reference {
    /// Reads a reference as docker does. The first part is a registry only if it looks
    /// like a host: it has a `.` or a `:`, or it is `localhost`.
    pub fn parse(text: &str) -> Result<Reference> {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(text, digest)?)),
            None => (text, None),
        };
        let (name, tag) = split_tag(rest);
        let (registry, repository) = split_registry(name);
        let repository = match (registry.as_str(), repository.contains('/')) {
            (DOCKER_HUB, false) => format!("library/{repository}"),
            _ => repository.to_string(),
        };
        check_registry(text, &registry)?;
        check_repository(text, &repository)?;
        if let Some(tag) = tag {
            check_tag(text, tag)?;
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (tag, _) => tag.map(str::to_string),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
    // ANCHOR_END: parse

    /// The host the API is asked at: Docker Hub's API host for `docker.io`.
    pub fn api_host(&self) -> &str {
        match self.registry.as_str() {
            DOCKER_HUB => DOCKER_HUB_API,
            other => other,
        }
    }

    /// What the registry is asked for: the digest when there is one, else the tag.
    pub fn wanted(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The name the image gets in the store: `REGISTRY/REPOSITORY:TAG`, or
    /// `REGISTRY/REPOSITORY@DIGEST` when only a digest was given (docker's short form for
    /// Docker Hub's official images is kept full here, so one name is one image).
    pub fn store_name(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => format!("{}/{}:{tag}", self.registry, self.repository),
            (None, Some(digest)) => {
                format!("{}/{}@{digest}", self.registry, self.repository)
            }
            (None, None) => format!("{}/{}:latest", self.registry, self.repository),
        }
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

/// `NAME:TAG` or `NAME`: a `:` after the last `/` starts the tag (one before it is a
/// registry's port).
fn split_tag(text: &str) -> (&str, Option<&str>) {
    let last_part = text.rfind('/').map_or(0, |slash| slash + 1);
    match text[last_part..].rfind(':') {
        Some(colon) => (
            &text[..last_part + colon],
            Some(&text[last_part + colon + 1..]),
        ),
        None => (text, None),
    }
}

// ANCHOR: split_registry
/// The registry and the repository: the first part is a registry only if it looks like
/// a host.
fn split_registry(name: &str) -> (String, &str) {
    // EXERCISE 10.1 (book 10.1): tell a registry's host from a repository's first part
    // HINT: `alpine`, `library/alpine` and `bitnami/redis` are on Docker Hub;
    // HINT: `ghcr.io/org/app`, `localhost/app` and `127.0.0.1:5000/app` are not.
    // HINT 2: only the part before the first '/' can be a host. It is one when it has a
    // HINT 2: '.' or a ':' (a port), or is `localhost`: docker's own rule.
    // HINT 3: `name.split_once('/')`, then a match with a guard.
    // TRIVIAL: (DOCKER_HUB.to_string(), name)
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest)
        }
        _ => (DOCKER_HUB.to_string(), name),
    }
    // END EXERCISE 10.1
}
// ANCHOR_END: split_registry

fn parse_digest(text: &str, digest: &str) -> Result<Digest> {
    digest
        .parse()
        .map_err(|why| anyhow::anyhow!("{text:?}: the digest after @ is not one: {why}"))
}

/// A host, with a port if any: letters, digits, `.` and `-`, then digits.
fn check_registry(text: &str, registry: &str) -> Result<()> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok_and(|port| port > 0));
    if !host_ok || !port_ok {
        bail!(
            "{text:?}: {registry:?} is not a registry host (a name, and a port if any)"
        );
    }
    Ok(())
}

/// Lowercase letters and digits, with single `.`, `_`, `__` or runs of `-` between
/// them, in parts split by `/`: the distribution spec's rule.
fn check_repository(text: &str, repository: &str) -> Result<()> {
    let part_ok = |part: &str| {
        let chars: Vec<char> = part.chars().collect();
        let alnum = |c: &char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let (Some(first), Some(last)) = (chars.first(), chars.last()) else {
            return false;
        };
        alnum(first)
            && alnum(last)
            && chars.iter().all(|c| alnum(c) || "._-".contains(*c))
            && !part.contains("..")
            && !part.contains("___")
            && !part.contains("._")
            && !part.contains("_.")
    };
    if repository.len() > 255 || !repository.split('/').all(part_ok) {
        bail!(
            "{text:?}: {repository:?} is not a repository name: lowercase letters and \
             digits, with '.', '_' or '-' between them, in parts split by '/'"
        );
    }
    Ok(())
}

/// Letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, at most 128.
fn check_tag(text: &str, tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        bail!(
            "{text:?}: the tag {tag:?} is not one: letters, digits, '_', '.' and '-', not \
             starting with '.' or '-', at most 128"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> String {
        Reference::parse(text).unwrap().to_string()
    }

    #[test]
    fn short_names_are_filled_in_as_docker_does() {
        assert_eq!(parsed("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(parsed("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(parsed("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(parsed("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(parsed("localhost/app"), "localhost/app:latest");
        assert_eq!(
            parsed("ghcr.io/org/team/app:v1.2"),
            "ghcr.io/org/team/app:v1.2"
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parsed(&format!("alpine@{digest}")),
            format!("docker.io/library/alpine@{digest}")
        );
        assert_eq!(
            parsed(&format!("alpine:3.20@{digest}")),
            format!("docker.io/library/alpine:3.20@{digest}")
        );
        assert_eq!(
            Reference::parse("alpine").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn bad_names_tags_and_digests_are_refused_with_their_rule() {
        for (bad, says) in [
            ("Alpine", "not a repository name"),
            ("alpine:", "not one"),
            ("alpine:-x", "not one"),
            ("alpine@sha256:abc", "digest after @"),
            ("alpine@md5:abc", "digest after @"),
            ("exa mple.com/app", "not a registry host"),
            ("localhost:99999/app", "not a registry host"),
            ("a//b", "not a repository name"),
            ("app..name", "not a repository name"),
            ("", "not a repository name"),
        ] {
            let error = Reference::parse(bad).unwrap_err().to_string();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }
}

// solutions/10-registry/src/manifests.rs without its exercise markers, made by `cargo xtask gen` for the book's folded answers.
//! Asking a registry for an image's manifest: `GET /v2/NAME/manifests/REF`. Book:
//! section 10.2.
//!
//! The answer may be an image manifest, or an index (docker: a manifest list) of
//! manifests for several platforms, in OCI's media types or Docker's. Nothing in it is
//! taken on trust: it is at most 4 MiB, its digest is computed from its bytes and must
//! be the one the reference pins (and the one the registry says, when it says one), and
//! it must be what it says it is. From a manifest on, every digest was checked by the
//! one before it: that chain, anchored in a digest the user trusts or a tag the registry
//! answered for, is what makes a pull safe.

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;

use crate::digest::{Digest, Expected};
use crate::oci::{DOCKER_LIST, DOCKER_MANIFEST, DOCUMENT_LIMIT, INDEX, MANIFEST};
use crate::platform::{self, Platform};
use crate::reference::Reference;
use crate::session::Session;

/// What the kit asks for: every manifest and index type it reads.
const ACCEPT: [&str; 4] = [INDEX, MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Docker's first manifest format, signed JSON with no content addresses for layers.
const SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
];

/// A manifest or index as it came: its bytes, what it is, and its digest.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// What a reference resolved to: the image manifest for the platform, and the digest
/// the reference stands for (the index's, for a multi-platform image), as docker
/// prints it.
pub struct Resolved {
    pub manifest: Fetched,
    pub digest: Digest,
    /// Whether the manifest was chosen from an index (so for its platform).
    pub from_index: bool,
}

/// The fields every manifest and index has, read to tell them apart.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    schema_version: u32,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

/// An index's entries: a descriptor, and the platform it is for.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoteIndex {
    manifests: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    media_type: String,
    #[serde(with = "crate::oci::as_string")]
    digest: Digest,
    size: u64,
    platform: Option<Platform>,
}

// ANCHOR: resolve
/// The image manifest `reference` names for `wanted`: fetched, checked, and chosen from
/// an index when the reference names one.
pub fn resolve(
    session: &Session,
    reference: &Reference,
    wanted: &Platform,
) -> Result<Resolved> {
    let top = fetch(
        session,
        &reference.wanted(),
        reference.digest.as_ref(),
        None,
    )?;
    if !is_index(&top.media_type) {
        return Ok(Resolved {
            digest: top.digest.clone(),
            manifest: top,
            from_index: false,
        });
    }
    let index: RemoteIndex = serde_json::from_slice(&top.bytes)
        .map_err(|error| anyhow!("the index of {reference} is not one: {error}"))?;
    let offered: Vec<Option<Platform>> =
        index.manifests.iter().map(|m| m.platform.clone()).collect();
    let chosen = &index.manifests[platform::choose(&offered, wanted)?];
    if is_index(&chosen.media_type) {
        bail!(
            "the index of {reference} names another index ({}) for {wanted}: the kit \
             follows one level of index, and refuses a second",
            chosen.digest
        );
    }
    let expected = Expected {
        digest: chosen.digest.clone(),
        size: chosen.size,
    };
    let manifest = fetch(session, &chosen.digest.to_string(), None, Some(&expected))?;
    if is_index(&manifest.media_type) {
        bail!(
            "the manifest {} of {reference} is an index: refused",
            manifest.digest
        );
    }
    Ok(Resolved {
        manifest,
        digest: top.digest,
        from_index: true,
    })
}
// ANCHOR_END: resolve

/// Whether a media type is an index's.
fn is_index(media_type: &str) -> bool {
    media_type == INDEX || media_type == DOCKER_LIST
}

// ANCHOR: fetch
/// GETs the manifest `wanted` (a tag or a digest), checked: its size, its digest
/// (against the reference's, the parent index's descriptor and the registry's own
/// `Docker-Content-Digest`), and its media type against its content.
fn fetch(
    session: &Session,
    wanted: &str,
    pinned: Option<&Digest>,
    described: Option<&Expected>,
) -> Result<Fetched> {
    let url = session.url("manifests", wanted);
    let reply = session.get(&url, &[("Accept", ACCEPT.join(", "))])?;
    if reply.status != 200 {
        return Err(reply.refusal(&session.name_of(wanted)));
    }
    let said_digest = reply.header("docker-content-digest").map(str::to_string);
    let content_type = reply.header("content-type").unwrap_or_default().to_string();
    let bytes = reply.read_capped(DOCUMENT_LIMIT)?;
    let digest = Digest::of(&bytes);
    let pinned = pinned.or(described.map(|expected| &expected.digest));
    check_digest(&url, &digest, pinned, said_digest.as_deref())?;
    if let Some(size) = described.map(|expected| expected.size) {
        if size != bytes.len() as u64 {
            bail!(
                "{url}: the manifest is {} bytes, not {size}: refused",
                bytes.len()
            );
        }
    }
    let media_type = media_type_of(&url, &bytes, &content_type)?;
    Ok(Fetched {
        bytes,
        media_type,
        digest,
    })
}
// ANCHOR_END: fetch

// ANCHOR: check_digest
/// Refuses a manifest whose bytes hash to `digest` unless that is the digest it was
/// asked by (`pinned`: the reference's, or the index's descriptor's), and the one the
/// registry says it sent (`said`, its `Docker-Content-Digest`, when it is a sha256).
fn check_digest(
    url: &str,
    digest: &Digest,
    pinned: Option<&Digest>,
    said: Option<&str>,
) -> Result<()> {
    if let Some(pinned) = pinned.filter(|pinned| *pinned != digest) {
        bail!("{url}: the manifest hashes to {digest}, not {pinned}: refused");
    }
    if let Some(said) = said.filter(|said| said.starts_with("sha256:")) {
        if said != digest.to_string() {
            bail!(
                "{url}: the registry says the manifest is {said}, but its bytes hash \
                 to {digest}: refused"
            );
        }
    }
    Ok(())
}
// ANCHOR_END: check_digest

// ANCHOR: media_type_of
/// What a manifest is: the type it says in its own `mediaType` (the one its digest
/// covers), which the registry's `Content-Type` must not contradict. Schema 1 refused.
fn media_type_of(url: &str, bytes: &[u8], content_type: &str) -> Result<String> {
    let served = content_type.split(';').next().unwrap_or_default().trim();
    if SCHEMA1.contains(&served) {
        bail!(
            "{url}: a Docker schema 1 manifest, a retired format (no config, no \
             diff_ids, and a signature inside that its digest leaves out): the kit does \
             not pull it; push the image again with a newer tool"
        );
    }
    let header: Header = serde_json::from_slice(bytes).map_err(|error| {
        anyhow!("{url}: the manifest is not JSON the kit reads: {error}")
    })?;
    if header.schema_version != 2 {
        bail!(
            "{url}: schemaVersion {}: the kit reads schema 2 (schema 1 is retired)",
            header.schema_version
        );
    }
    let own = match header.media_type {
        Some(own) => own,
        // An OCI document may leave its type out; its fields then say what it is.
        None if header.manifests.is_some() => INDEX.to_string(),
        None => MANIFEST.to_string(),
    };
    if !ACCEPT.contains(&own.as_str()) {
        bail!("{url}: a {own:?}, which is no manifest or index the kit reads");
    }
    let generic = ["", "application/json", "application/octet-stream"];
    if !generic.contains(&served) && served != own {
        bail!(
            "{url}: served as {served:?}, but the document says it is {own:?}: refused"
        );
    }
    if is_index(&own) != header.manifests.is_some() {
        bail!("{url}: says it is {own:?}, but its fields are another kind's: refused");
    }
    Ok(own)
}
// ANCHOR_END: media_type_of

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_must_be_what_it_says_and_what_it_is_served_as() {
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
        assert_eq!(media_type_of("u", manifest, MANIFEST).unwrap(), MANIFEST);
        assert!(media_type_of("u", manifest, INDEX).is_err());
        let posing = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]}"#;
        assert!(media_type_of("u", posing, MANIFEST).is_err());
        let unnamed_index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(media_type_of("u", unnamed_index, "").unwrap(), INDEX);
        let old = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        let error = media_type_of("u", old, SCHEMA1[0]).unwrap_err().to_string();
        assert!(error.contains("schema 1"), "{error}");
        assert!(media_type_of("u", old, "application/json").is_err());
    }
}

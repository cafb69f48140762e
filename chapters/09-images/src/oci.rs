// Your copy of solutions/09-images/src/oci.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The documents of an OCI image, as the image spec defines them: a descriptor names a
//! blob (media type, digest, size), an index lists manifests, a manifest names a config
//! and layers. Only the fields the kit reads; unknown ones are ignored, as the spec asks.
//! Book: section 9.1.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Expected};

pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The layer media types the kit unpacks: a tar, compressed or not.
pub const LAYERS: [&str; 3] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
];

/// Docker's image manifest (v2 schema 2), its list of manifests, its config and its
/// layer: the types the OCI ones grew from. Registries serve both, so the store keeps
/// both, as they came (a manifest's digest is its bytes).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The annotation that names an image in an index: `NAME:TAG` as the kit writes it.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The most a JSON document (index, manifest, config) may be: real ones are a few KiB.
pub const DOCUMENT_LIMIT: u64 = 4 * 1024 * 1024;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    #[serde(with = "as_string")]
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor of the blob `expected` names, of `media_type`.
    pub fn of(media_type: &str, expected: Expected) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: expected.digest,
            size: expected.size,
            annotations: BTreeMap::new(),
        }
    }

    /// What the blob it names must be.
    pub fn expected(&self) -> Expected {
        Expected {
            digest: self.digest.clone(),
            size: self.size,
        }
    }
}

/// An image index (a layout's `index.json` is one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// An image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl Index {
    /// An empty index, as a new layout starts with.
    pub fn empty() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(INDEX.to_string()),
            manifests: Vec::new(),
        }
    }

    /// Reads a layout's `index.json`, checked: schema 2, and an index if it says what
    /// it is.
    pub fn read(path: &Path) -> Result<Index> {
        let index: Index = read_json(path)?;
        check_schema(
            path,
            index.schema_version,
            index.media_type.as_deref(),
            &[INDEX],
        )?;
        Ok(index)
    }
}

impl Manifest {
    /// Reads a manifest blob (already checked against its descriptor), checked: schema
    /// 2, a manifest if it says what it is (a document must not pose as another), a
    /// config of the config's type, and layers of the types the kit unpacks. Docker's
    /// schema 2 manifests are read too: they have the same fields.
    pub fn read(path: &Path) -> Result<Manifest> {
        let manifest: Manifest = read_json(path)?;
        let said = manifest.media_type.as_deref();
        check_schema(
            path,
            manifest.schema_version,
            said,
            &[MANIFEST, DOCKER_MANIFEST],
        )?;
        if ![CONFIG, DOCKER_CONFIG].contains(&manifest.config.media_type.as_str()) {
            bail!(
                "{path:?}: the config is {:?}, not an OCI image config",
                manifest.config.media_type
            );
        }
        if let Some(layer) = manifest.layers.iter().find(|l| {
            !LAYERS.contains(&l.media_type.as_str()) && l.media_type != DOCKER_LAYER
        }) {
            bail!(
                "{path:?}: layer {} is {:?}, which the kit cannot unpack (a tar, \
                 uncompressed, gzip or zstd)",
                layer.digest,
                layer.media_type
            );
        }
        Ok(manifest)
    }
}

fn check_schema(
    path: &Path,
    version: u32,
    said: Option<&str>,
    wanted: &[&str],
) -> Result<()> {
    if version != 2 {
        bail!("{path:?}: schemaVersion {version}, where the OCI spec has only 2");
    }
    if let Some(said) = said.filter(|said| !wanted.contains(said)) {
        bail!(
            "{path:?} says it is {said:?}, where {:?} belongs",
            wanted[0]
        );
    }
    Ok(())
}

/// Reads a JSON document of at most [`DOCUMENT_LIMIT`] bytes.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let size = fs::metadata(path)
        .with_context(|| format!("cannot read {path:?}"))?
        .len();
    if size > DOCUMENT_LIMIT {
        bail!("{path:?} is {size} bytes: no image document is that big, refused");
    }
    let text = fs::read(path).with_context(|| format!("cannot read {path:?}"))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{path:?} is not what it should be"))
}

/// A digest in JSON: its string form, checked as it is read.
pub mod as_string {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use crate::digest::Digest;

    pub fn serialize<S: Serializer>(digest: &Digest, to: S) -> Result<S::Ok, S::Error> {
        to.serialize_str(&digest.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(from)?;
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_manifest_that_poses_as_an_index_or_names_a_bad_digest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "a".repeat(64);
        let config =
            format!(r#"{{"mediaType":"{CONFIG}","digest":"sha256:{hex}","size":2}}"#);
        let good = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{config},"layers":[]}}"#
        );
        assert!(Manifest::read(&write(dir.path(), "good", &good)).is_ok());
        let posing = good.replace(MANIFEST, INDEX);
        let error = Manifest::read(&write(dir.path(), "posing", &posing)).unwrap_err();
        assert!(error.to_string().contains("where"), "{error}");
        let escaping = good.replace(&format!("sha256:{hex}"), "sha256:../../etc/passwd");
        let error =
            Manifest::read(&write(dir.path(), "escaping", &escaping)).unwrap_err();
        assert!(
            format!("{error:#}").contains("not a sha256 digest"),
            "{error:#}"
        );
    }
}

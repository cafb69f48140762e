// Your copy of solutions/09-images/src/image.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The images in the store, by name or by id: `image ls`, `inspect`, `rm`, and what `run
//! IMAGE` looks up. Book: sections 9.2 and 9.5.
//!
//! An image is named three ways, which users mix up: a *tag* (`app:1`, a name the
//! store's index gives it, which can move to another image), its *manifest digest* (the
//! hash of the manifest, what a registry serves it by), and its *image id* (the hash of
//! its config, what docker shows in `docker images`: two images with the same config and
//! layers have the same id wherever they were built).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::ImageConfig;
use crate::container;
use crate::digest::{Digest, Expected};
use crate::layers;
use crate::oci::{Descriptor, Manifest, DOCUMENT_LIMIT, REF_NAME};
use crate::store::Store;

/// An image of the store, its documents read and checked.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's descriptor in the store's index, with the name.
    pub descriptor: Descriptor,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

impl Image {
    /// The name it has in the store, `NAME:TAG`.
    pub fn name(&self) -> Option<&str> {
        self.descriptor
            .annotations
            .get(REF_NAME)
            .map(String::as_str)
    }

    /// Its image id: the digest of its config.
    pub fn id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    /// Its layers' directories, lowest first (there or not).
    pub fn layer_dirs(&self, data_root: &Path) -> Vec<PathBuf> {
        layers::chain_ids(&self.config.rootfs.diff_ids)
            .iter()
            .map(|chain| layers::dir(data_root, chain))
            .collect()
    }
}

// ANCHOR: reference
/// A name as users write it, `NAME[:TAG]` (`latest` if no tag) or `NAME@sha256:HEX`,
/// checked: lowercase letters, digits and `._-` in `/`-separated parts, as docker
/// allows (the first part may be a registry's `HOST:PORT`); a tag of letters, digits and
/// `._-`, at most 128.
pub fn full_name(given: &str) -> Result<String> {
    if let Some((name, digest)) = given.split_once('@') {
        check_name(given, name)?;
        let digest: Digest = digest.parse().map_err(|why| {
            anyhow::anyhow!("{given:?}: after '@' comes a digest: {why}")
        })?;
        return Ok(format!("{name}@{digest}"));
    }
    let (name, tag) = match given.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (given, "latest"),
    };
    check_name(given, name)?;
    let tag_ok = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if tag.is_empty()
        || tag.len() > 128
        || !tag.chars().all(tag_ok)
        || tag.starts_with(['.', '-'])
    {
        bail!(
            "{given:?}: the tag {tag:?} is not one: letters, digits, '.', '_' and '-', \
             at most 128"
        );
    }
    Ok(format!("{name}:{tag}"))
}

/// The name part of a reference: `/`-separated parts of lowercase letters, digits and
/// `._-`; the first may end in a registry's `:PORT`.
fn check_name(given: &str, name: &str) -> Result<()> {
    let part_ok = |part: &str| {
        !part.is_empty()
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)
            })
    };
    let (first, rest) = name.split_once('/').unwrap_or((name, ""));
    let first_ok = match first.split_once(':') {
        Some((host, port)) if !rest.is_empty() => {
            part_ok(host) && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
        }
        _ => part_ok(first),
    };
    if name.len() > 255 || !first_ok || !(rest.is_empty() || rest.split('/').all(part_ok))
    {
        bail!(
            "{given:?} is not an image name: lowercase letters, digits, '.', '_' and '-', \
             in parts split by '/'"
        );
    }
    Ok(())
}
// ANCHOR_END: reference

impl Store {
    /// Every image in the store, read and checked.
    pub fn images(&self) -> Result<Vec<Image>> {
        self.index()?
            .manifests
            .into_iter()
            .map(|descriptor| self.load(descriptor))
            .collect()
    }

    /// The image `reference` names: `NAME[:TAG]`, an image id (`sha256:` and 64 hex
    /// digits), or the first 12 or more hex digits of one.
    pub fn image(&self, reference: &str) -> Result<Image> {
        let images = self.images()?;
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        let is_id = hex.len() >= 12 && hex.chars().all(|c| c.is_ascii_hexdigit());
        let found: Vec<&Image> = match is_id {
            true => images
                .iter()
                .filter(|i| i.id().hex().starts_with(hex))
                .collect(),
            false => {
                let name = full_name(reference)?;
                images
                    .iter()
                    .filter(|i| i.name() == Some(name.as_str()))
                    .collect()
            }
        };
        let ids: BTreeSet<&Digest> = found.iter().map(|image| image.id()).collect();
        match (found.first(), ids.len()) {
            (None, _) => bail!(
                "no image {reference:?} in the store: see `image ls`, or take one in with \
                 `image import`"
            ),
            (Some(image), 1) => Ok((*image).clone()),
            (Some(_), n) => bail!(
                "{reference:?} begins the ids of {n} images: give more of its digits"
            ),
        }
    }

    /// Reads the image `descriptor` names: its manifest and config, each checked against
    /// its digest before it is parsed.
    pub fn load(&self, descriptor: Descriptor) -> Result<Image> {
        let manifest_path = self.checked_blob(&descriptor.expected())?;
        let manifest = Manifest::read(&manifest_path)?;
        let config_path = self.checked_blob(&manifest.config.expected())?;
        let config = ImageConfig::read(&config_path, manifest.layers.len())?;
        Ok(Image {
            descriptor,
            manifest,
            config,
        })
    }

    /// A small blob's path, once its bytes are checked to be the ones its digest names:
    /// a file in the data root is read back as hostile as any other.
    fn checked_blob(&self, expected: &Expected) -> Result<PathBuf> {
        let path = self.blob_path(&expected.digest);
        if expected.size > DOCUMENT_LIMIT {
            bail!(
                "{}: {} bytes is no image document",
                expected.digest,
                expected.size
            );
        }
        let bytes = fs::read(&path)
            .with_context(|| format!("the store has no blob {}", expected.digest))?;
        if Digest::of(&bytes) != expected.digest || bytes.len() as u64 != expected.size {
            bail!(
                "the store's blob {} is not what its name says: the store was changed \
                 behind the runtime's back",
                expected.digest
            );
        }
        Ok(path)
    }

    // ANCHOR: remove
    /// Removes the name `reference` (or every name of the image, given by id), then
    /// what no image refers to any more: blobs, and layer directories. Refused while a
    /// container (running or ended and kept) stands on a layer that would go.
    pub fn remove(&self, reference: &str, data_root: &Path) -> Result<Vec<String>> {
        let image = self.image(reference)?;
        let by_id = image
            .name()
            .is_none_or(|name| !name_matches(reference, name));
        let mut index = self.index()?;
        index.manifests.retain(|kept| match by_id {
            true => kept.digest != image.descriptor.digest,
            false => {
                kept.annotations.get(REF_NAME)
                    != image.descriptor.annotations.get(REF_NAME)
            }
        });
        let kept = self.images_of(&index.manifests)?;
        let kept_layers: BTreeSet<PathBuf> =
            kept.iter().flat_map(|i| i.layer_dirs(data_root)).collect();
        let going: Vec<PathBuf> = image
            .layer_dirs(data_root)
            .into_iter()
            .filter(|dir| !kept_layers.contains(dir))
            .collect();
        refuse_if_used(data_root, &going, reference)?;
        crate::store::write_index(self.root(), &index)?;
        for dir in going.iter().filter(|dir| dir.exists()) {
            container::remove_tree(dir)?;
        }
        let removed = self.collect_blobs(&kept)?;
        Ok(removed)
    }
    // ANCHOR_END: remove

    fn images_of(&self, descriptors: &[Descriptor]) -> Result<Vec<Image>> {
        descriptors.iter().map(|d| self.load(d.clone())).collect()
    }

    /// Removes every blob that no image of the index names (what an import that failed
    /// brought in, or one killed before it named its image). Only with the store's lock.
    pub fn collect_garbage(&self) -> Result<()> {
        let kept = self.images()?;
        self.collect_blobs(&kept).map(drop)
    }

    /// Removes every blob no kept image names; returns their digests.
    fn collect_blobs(&self, kept: &[Image]) -> Result<Vec<String>> {
        let mut wanted = BTreeSet::new();
        for image in kept {
            wanted.insert(image.descriptor.digest.hex().to_string());
            wanted.insert(image.manifest.config.digest.hex().to_string());
            wanted.extend(
                image
                    .manifest
                    .layers
                    .iter()
                    .map(|l| l.digest.hex().to_string()),
            );
        }
        let blobs = self.root().join("blobs/sha256");
        let mut removed = Vec::new();
        for entry in
            fs::read_dir(&blobs).with_context(|| format!("cannot read {blobs:?}"))?
        {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || wanted.contains(&name) {
                continue; // being written by an import, or wanted
            }
            fs::remove_file(blobs.join(&name))
                .with_context(|| format!("cannot remove blob {name}"))?;
            removed.push(format!("sha256:{name}"));
        }
        Ok(removed)
    }
}

/// Whether `reference` is the name `name` (with `:latest` added if it has no tag).
fn name_matches(reference: &str, name: &str) -> bool {
    full_name(reference).is_ok_and(|full| full == name)
}

/// Refuses if a container of the data root stands on one of `going`.
fn refuse_if_used(data_root: &Path, going: &[PathBuf], reference: &str) -> Result<()> {
    for state in container::all(data_root) {
        if state.layers.iter().any(|layer| going.contains(layer)) {
            let name = state.name.as_deref().unwrap_or(&state.id);
            bail!(
                "image {reference:?} is used by container {name}: remove the container \
                 first (`rm {name}`)"
            );
        }
    }
    Ok(())
}

// Your copy of solutions/09-images/src/store.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The image store: `images/` under the data root is itself an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/...`), so other tools read it as it is.
//! Images come in from another layout, each blob checked against the descriptor that
//! names it, and get a name in the store's `index.json`. Book: section 9.2.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::digest::{copy_verified, Digest};
use crate::oci::{Descriptor, Index, Manifest, MANIFEST, REF_NAME};
use crate::records;

/// What `oci-layout` holds: the version of the layout.
const LAYOUT_VERSION: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// The store: an OCI layout at `root`.
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store at `root` (`images/` under the data root), made if new.
    pub fn open(root: &Path) -> Result<Store> {
        records::make_dir(&root.join("blobs/sha256"))?;
        let marker = root.join("oci-layout");
        if !marker.exists() {
            records::write(&marker, LAYOUT_VERSION)?;
        }
        if !root.join("index.json").exists() {
            write_index(root, &Index::empty())?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// Where the blob `digest` is kept (there or not).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        digest.path_in(&self.root)
    }

    /// The layout's own directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes the blobs a runtime killed half way through a copy left under their
    /// temporary names. Only with the store's lock: then no copy is under way.
    pub fn remove_half_written_blobs(&self) {
        let blobs = self.root.join("blobs/sha256");
        for entry in std::fs::read_dir(&blobs).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".new") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The store's index: every image in it, with its name.
    pub fn index(&self) -> Result<Index> {
        Index::read(&self.root.join("index.json"))
    }

    // ANCHOR: import_layout
    /// Takes in the documents of the image `name` names in the layout at `from` (its only
    /// image, when `name` is `None`): its manifest and config, each checked as it is
    /// copied. The layers' blobs come in as they are unpacked, in the same pass
    /// ([`crate::layers::ensure_unpacked`]). Returns its descriptor, with `as_name` as its
    /// name: the caller names it in the index once its layers are in too.
    pub fn import_layout(
        &self,
        from: &Path,
        name: Option<&str>,
        as_name: &str,
    ) -> Result<Descriptor> {
        let theirs = Index::read(&from.join("index.json"))?;
        let chosen = choose(&theirs, name, from)?;
        let manifest_path =
            copy_verified(open_blob(from, chosen)?, &chosen.expected(), &self.root)?;
        let manifest = Manifest::read(&manifest_path)?;
        let config = &manifest.config;
        copy_verified(open_blob(from, config)?, &config.expected(), &self.root)?;
        let mut named = chosen.clone();
        named.annotations.clear();
        named
            .annotations
            .insert(REF_NAME.to_string(), as_name.to_string());
        Ok(named)
    }
    // ANCHOR_END: import_layout

    /// Adds `image` to the index, taking its name from any image that had it.
    pub fn name(&self, image: Descriptor) -> Result<()> {
        let mut index = self.index()?;
        let new_name = image.annotations.get(REF_NAME);
        index
            .manifests
            .retain(|old| old.annotations.get(REF_NAME) != new_name);
        index.manifests.push(image);
        write_index(&self.root, &index)
    }
}

/// The manifest `name` names in `index`, or its only one.
pub fn choose<'a>(
    index: &'a Index,
    name: Option<&str>,
    from: &Path,
) -> Result<&'a Descriptor> {
    let manifests: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            name.is_none_or(|name| {
                d.annotations.get(REF_NAME).map(String::as_str) == Some(name)
            })
        })
        .collect();
    let [only] = manifests.as_slice() else {
        match (name, manifests.len()) {
            (Some(name), 0) => bail!("{from:?} has no image named {name:?}"),
            (None, 0) => bail!("{from:?} has no image in its index.json"),
            _ => bail!(
                "{from:?} has {} images: name the one to take in",
                manifests.len()
            ),
        }
    };
    if only.media_type != MANIFEST {
        bail!(
            "{from:?}: the image is {:?}; the kit takes in a single OCI image manifest",
            only.media_type
        );
    }
    Ok(only)
}

/// Copies into the store each layer blob of `manifest` that it lacks, from the layout at
/// `from`, checked (the layers an unpack brought in are there already).
pub fn copy_missing_layers(
    store: &Store,
    manifest: &Manifest,
    from: &Path,
) -> Result<()> {
    for blob in &manifest.layers {
        copy_verified(open_blob(from, blob)?, &blob.expected(), &store.root)?;
    }
    Ok(())
}

/// A blob of the layout at `from`, opened for reading: its path rebuilt from the
/// checked digest, never read from anywhere.
fn open_blob(from: &Path, blob: &Descriptor) -> Result<File> {
    let path = blob.digest.path_in(from);
    File::open(&path).with_context(|| format!("{from:?} has no blob {}", blob.digest))
}

/// Writes the index whole: under a temporary name first, then renamed over the old one.
pub fn write_index(root: &Path, index: &Index) -> Result<()> {
    let text = serde_json::to_string(index)?;
    records::write(&root.join("index.json"), &text)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::digest::Digest;
    use crate::oci::{CONFIG, LAYERS};

    /// A layout with one image: a config and one layer of made-up bytes.
    fn layout(dir: &Path, tamper: bool) {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        let blob = |bytes: &[u8]| {
            let digest = Digest::of(bytes);
            fs::write(digest.path_in(dir), bytes).unwrap();
            (digest, bytes.len())
        };
        let (config, config_size) = blob(br#"{"architecture":"amd64","os":"linux"}"#);
        let (layer, layer_size) = blob(b"not really a tar");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"{CONFIG}","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"{}","digest":"{layer}","size":{layer_size}}}]}}"#,
            LAYERS[0]
        );
        let (manifest, manifest_size) = blob(manifest.as_bytes());
        if tamper {
            fs::write(
                config.path_in(dir),
                br#"{"architecture":"amd64","os":"linux"} "#,
            )
            .unwrap();
            fs::write(layer.path_in(dir), b"not really a tar!").unwrap();
        }
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{MANIFEST}","digest":"{manifest}","size":{manifest_size},"annotations":{{"{REF_NAME}":"latest"}}}}]}}"#
        );
        fs::write(dir.join("index.json"), index).unwrap();
    }

    #[test]
    fn an_image_comes_in_blob_by_blob_and_gets_its_name() {
        let (source, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        layout(source.path(), false);
        let store = Store::open(&data.path().join("images")).unwrap();
        let image = store
            .import_layout(source.path(), Some("latest"), "app:1")
            .unwrap();
        store.name(image.clone()).unwrap();
        let index = store.index().unwrap();
        assert_eq!(index.manifests, std::slice::from_ref(&image));
        assert_eq!(image.annotations[REF_NAME], "app:1");
        let blobs = fs::read_dir(data.path().join("images/blobs/sha256")).unwrap();
        assert_eq!(
            blobs.count(),
            2,
            "the manifest and the config, not yet the layer"
        );
    }

    #[test]
    fn a_tampered_config_is_refused_and_the_index_names_nothing() {
        let (source, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        layout(source.path(), true);
        let store = Store::open(&data.path().join("images")).unwrap();
        let error = store
            .import_layout(source.path(), None, "app:1")
            .unwrap_err();
        assert!(error.to_string().contains("more bytes"), "{error:#}");
        assert!(store.index().unwrap().manifests.is_empty());
        let layer =
            copy_missing_layers(&store, &manifest_of(source.path()), source.path());
        let error = layer.unwrap_err();
        assert!(error.to_string().contains("more bytes"), "{error:#}");
    }

    /// The manifest of the only image of the layout at `dir`.
    fn manifest_of(dir: &Path) -> Manifest {
        let index = Index::read(&dir.join("index.json")).unwrap();
        Manifest::read(&index.manifests[0].digest.path_in(dir)).unwrap()
    }
}

// Your copy of solutions/09-images/src/archive.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Images in and out of the store: `image import` takes an OCI image layout, an OCI
//! archive (a tar of a layout) or a `docker save` archive; `image save` writes an OCI
//! archive. Book: section 9.6.
//!
//! `save`/`load` carry an image, its layers and config, from store to store. Docker's
//! `export`/`import` are another thing: a container's file system flattened into one
//! tar, no layers, no config. This chapter does the first.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::digest::{copy_verified, Digest, Expected};
use crate::image::{full_name, Image};
use crate::layers::TmpDirs;
use crate::oci::{self, Descriptor, Index, Manifest, CONFIG, LAYERS, MANIFEST, REF_NAME};
use crate::store::{self, Store};
use crate::unpack::Hashing;

/// What an archive of the kit's own may hold: the names of a layout, or of docker's
/// format, at most this deep.
const ARCHIVE_DEPTH: usize = 4;

// ANCHOR: import
/// An image on its way in: its descriptor, with its name, and the layout whose blobs the
/// store does not have yet, kept until the import is done.
pub struct Incoming {
    pub descriptor: Descriptor,
    source: Option<PathBuf>,
    _work: Option<TmpDirs>,
}

impl Incoming {
    /// The layout the layers' blobs come from, when they are not in the store yet.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }
}

/// Takes in the image at `given` (a layout directory or an archive; `PATH:REF` picks
/// one image of several), named `name` or as the source names it: its documents, and
/// from a `docker save` archive its layers. The caller unpacks the layers and names it.
pub fn import(
    store: &Store,
    data_root: &Path,
    given: &str,
    name: Option<&str>,
) -> Result<Incoming> {
    let (path, reference) = split_reference(given)?;
    let base = base_name(&path);
    if path.is_dir() {
        let descriptor = import_layout(store, &path, reference, name, &base)?;
        return Ok(Incoming {
            descriptor,
            source: Some(path),
            _work: None,
        });
    }
    let mut work = TmpDirs::new(data_root)?;
    let unpacked = work.make()?;
    let aliases = extract(&path, &unpacked)
        .with_context(|| format!("{path:?} is not an image archive the kit reads"))?;
    let as_layout = || import_layout(store, &unpacked, reference, name, &base);
    let as_docker = || import_docker(store, &unpacked, &aliases, reference, name);
    let is_layout = unpacked.join("oci-layout").is_file();
    let is_docker = unpacked.join("manifest.json").is_file();
    let (descriptor, from_layout) = match (is_layout, is_docker) {
        // Docker 25 and later write both: the index may name Docker's own media types,
        // which its manifest.json describes in the older way.
        (true, true) => match as_layout() {
            Ok(descriptor) => (descriptor, true),
            Err(_) => (as_docker()?, false),
        },
        (true, false) => (as_layout()?, true),
        (false, true) => (as_docker()?, false),
        (false, false) => {
            bail!(
                "{path:?} has neither oci-layout nor manifest.json: not an image archive"
            )
        }
    };
    let source = from_layout.then(|| unpacked.clone());
    Ok(Incoming {
        descriptor,
        source,
        _work: Some(work),
    })
}
// ANCHOR_END: import

/// What names an image whose source gives only a tag: the directory's or the archive's
/// name, without its extension, in lowercase.
fn base_name(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let stem = name.split('.').next().unwrap_or_default();
    stem.to_lowercase()
}

/// `PATH` as it is, or `PATH:REF` when `PATH` alone names something and the whole does
/// not.
fn split_reference(given: &str) -> Result<(PathBuf, Option<&str>)> {
    let whole = PathBuf::from(given);
    if whole.exists() {
        return Ok((whole, None));
    }
    match given.rsplit_once(':') {
        Some((path, reference)) if Path::new(path).exists() => {
            Ok((PathBuf::from(path), Some(reference)))
        }
        _ => bail!("{given:?} does not exist"),
    }
}

/// A layout: its image is copied in blob by blob; its name is the one given, or the
/// layout's `ref.name` (a tag alone takes the directory's name: `alpine/` + `3.20`).
fn import_layout(
    store: &Store,
    dir: &Path,
    reference: Option<&str>,
    name: Option<&str>,
    base: &str,
) -> Result<Descriptor> {
    let theirs = Index::read(&dir.join("index.json"))?;
    let chosen = store::choose(&theirs, reference, dir)?;
    let as_name = match name {
        Some(name) => full_name(name)?,
        None => name_from(chosen, base)?,
    };
    store.import_layout(dir, reference, &as_name)
}

fn name_from(chosen: &Descriptor, base: &str) -> Result<String> {
    let annotation = chosen.annotations.get(REF_NAME).map(String::as_str);
    match annotation {
        Some(full) if full.contains(':') => full_name(full),
        tag => full_name(&format!("{base}:{}", tag.unwrap_or("latest")))
            .context("give the image a name: `image import PATH NAME:TAG`"),
    }
}

/// One image of `docker save`'s `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

// ANCHOR: import_docker
/// A `docker save` archive: a config and uncompressed layer tars named in
/// `manifest.json`. Each becomes a blob of the store under the digest of its bytes, and
/// the kit writes the OCI manifest that names them.
fn import_docker(
    store: &Store,
    dir: &Path,
    aliases: &HashMap<PathBuf, PathBuf>,
    reference: Option<&str>,
    name: Option<&str>,
) -> Result<Descriptor> {
    let images: Vec<DockerImage> = oci::read_json(&dir.join("manifest.json"))?;
    let image = match (images.as_slice(), reference) {
        ([only], None) => only,
        (_, Some(wanted)) => images
            .iter()
            .find(|i| i.repo_tags.iter().flatten().any(|tag| tag == wanted))
            .ok_or_else(|| anyhow!("the archive has no image tagged {wanted:?}"))?,
        (_, None) => bail!(
            "the archive has {} images: name one, PATH:NAME:TAG",
            images.len()
        ),
    };
    let as_name = match (
        name,
        image.repo_tags.iter().flatten().next().map(String::as_str),
    ) {
        (Some(name), _) | (None, Some(name)) => full_name(name)?,
        (None, None) => {
            bail!("the image has no tag: give it a name, `image import PATH NAME:TAG`")
        }
    };
    let config = store_file(store, &resolve(dir, aliases, &image.config)?, CONFIG)?;
    let layers = image
        .layers
        .iter()
        .map(|layer| {
            let path = resolve(dir, aliases, layer)?;
            let media_type = LAYERS[if is_gzip(&path)? { 1 } else { 0 }];
            store_file(store, &path, media_type)
        })
        .collect::<Result<Vec<_>>>()?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST.to_string()),
        config,
        layers,
    };
    let bytes = serde_json::to_vec(&manifest)?;
    let mut descriptor = store_bytes(store, &bytes, MANIFEST)?;
    descriptor.annotations.insert(REF_NAME.to_string(), as_name);
    Ok(descriptor)
}
// ANCHOR_END: import_docker

/// Stores a file of the archive as a blob, under the digest of its bytes.
fn store_file(store: &Store, path: &Path, media_type: &str) -> Result<Descriptor> {
    let mut hashing = Hashing::new(File::open(path)?);
    io::copy(&mut hashing, &mut io::sink())?;
    let (_, digest, size) = hashing.finish();
    let expected = Expected { digest, size };
    copy_verified(File::open(path)?, &expected, store.root())?;
    Ok(Descriptor::of(media_type, expected))
}

/// Stores `bytes` as a blob, under their digest.
pub fn store_bytes(store: &Store, bytes: &[u8], media_type: &str) -> Result<Descriptor> {
    let expected = Expected {
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
    };
    copy_verified(bytes, &expected, store.root())?;
    Ok(Descriptor::of(media_type, expected))
}

fn is_gzip(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 2];
    let read = File::open(path)?.read(&mut magic)?;
    Ok(read == 2 && magic == [0x1f, 0x8b])
}

/// A name `manifest.json` gives, as a file the extraction made: checked as every
/// archive name is, and followed through the archive's own symlinks.
fn resolve(
    dir: &Path,
    aliases: &HashMap<PathBuf, PathBuf>,
    name: &str,
) -> Result<PathBuf> {
    let mut inner = archive_path(Path::new(name))?;
    for _ in 0..8 {
        match aliases.get(&inner) {
            Some(target) => inner = target.clone(),
            None => return Ok(dir.join(inner)),
        }
    }
    bail!("{name:?}: too many symlinks in a row")
}

// ANCHOR: extract
/// Takes the files of an image archive out into the empty directory `into`: regular
/// files and directories only, under plain names of at most four parts; a symlink
/// becomes an alias, looked up by [`resolve`], never a file. No other name is made, so
/// nothing in the archive can reach outside `into`.
fn extract(archive: &Path, into: &Path) -> Result<HashMap<PathBuf, PathBuf>> {
    let file = File::open(archive).with_context(|| format!("cannot read {archive:?}"))?;
    let mut aliases = HashMap::new();
    let mut tar = tar::Archive::new(io::BufReader::new(file));
    for entry in tar.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let inner = archive_path(&raw)?;
        if inner.as_os_str().is_empty() {
            continue;
        }
        match entry.header().entry_type() {
            tar::EntryType::Directory => fs::create_dir_all(into.join(&inner))?,
            tar::EntryType::Regular => {
                if let Some(parent) = inner.parent() {
                    fs::create_dir_all(into.join(parent))?;
                }
                let mut file = File::options()
                    .write(true)
                    .create_new(true)
                    .open(into.join(&inner))
                    .with_context(|| format!("{raw:?} twice, or over a directory"))?;
                io::copy(&mut entry, &mut file)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| anyhow!("{raw:?}: no target"))?;
                let parent = inner.parent().unwrap_or(Path::new(""));
                aliases.insert(inner.clone(), archive_path(&parent.join(target))?);
            }
            other => bail!("{raw:?} is a {other:?}, which no image archive holds"),
        }
    }
    Ok(aliases)
}
// ANCHOR_END: extract

/// A name in an image archive, as a plain relative path: parts of letters, digits and
/// `._-`, at most [`ARCHIVE_DEPTH`] of them, `..` folded in but never above the top.
fn archive_path(raw: &Path) -> Result<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for part in raw.components() {
        match part {
            Component::Normal(name) => {
                let plain = name.to_str().is_some_and(|n| {
                    n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                });
                if !plain {
                    bail!("{raw:?} is no name an image archive has");
                }
                parts.push(name);
            }
            Component::ParentDir if parts.pop().is_some() => {}
            Component::CurDir => {}
            _ => bail!("{raw:?} leads out of the archive: refused"),
        }
    }
    if parts.len() > ARCHIVE_DEPTH {
        bail!("{raw:?} is deeper than any name an image archive has");
    }
    Ok(parts.iter().collect())
}

// ANCHOR: save
/// Writes `image` as an OCI archive at `to`: `oci-layout`, an `index.json` naming it,
/// and its blobs, in a fixed order with fixed times, so the same image makes the same
/// bytes. Written beside `to` and renamed when whole.
pub fn save(store: &Store, image: &Image, to: &Path) -> Result<()> {
    let temporary = to.with_extension(format!("{}.new", std::process::id()));
    let written = write_archive(store, image, &temporary);
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(error.context(format!("cannot write {to:?}")));
    }
    fs::rename(&temporary, to).with_context(|| format!("cannot write {to:?}"))
}

fn write_archive(store: &Store, image: &Image, path: &Path) -> Result<()> {
    let mut builder = tar::Builder::new(io::BufWriter::new(File::create(path)?));
    let index = Index {
        manifests: vec![image.descriptor.clone()],
        ..Index::empty()
    };
    add_bytes(
        &mut builder,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    add_bytes(&mut builder, "index.json", &serde_json::to_vec(&index)?)?;
    add_dir(&mut builder, "blobs/")?;
    add_dir(&mut builder, "blobs/sha256/")?;
    let mut blobs = vec![&image.descriptor, &image.manifest.config];
    blobs.extend(&image.manifest.layers);
    for blob in blobs {
        let name = format!("blobs/sha256/{}", blob.digest.hex());
        let mut file = File::open(store.blob_path(&blob.digest))?;
        let mut header = fixed_header(tar::EntryType::Regular, blob.size, 0o644);
        builder.append_data(&mut header, &name, &mut file)?;
    }
    builder.into_inner()?.flush()?;
    Ok(())
}
// ANCHOR_END: save

fn add_bytes<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> Result<()> {
    let mut header = fixed_header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
    builder.append_data(&mut header, name, bytes)?;
    Ok(())
}

fn add_dir<W: Write>(builder: &mut tar::Builder<W>, name: &str) -> Result<()> {
    let mut header = fixed_header(tar::EntryType::Directory, 0, 0o755);
    builder.append_data(&mut header, name, io::empty())?;
    Ok(())
}

/// A tar header with nothing of this machine in it: owner 0, time 0.
pub fn fixed_header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_stay_inside_and_plain() {
        assert_eq!(
            archive_path(Path::new("./blobs/sha256/ab")).unwrap(),
            Path::new("blobs/sha256/ab")
        );
        assert_eq!(
            archive_path(Path::new("a/../b/layer.tar")).unwrap(),
            Path::new("b/layer.tar")
        );
        assert!(archive_path(Path::new("../x")).is_err());
        assert!(archive_path(Path::new("/etc/passwd")).is_err());
        assert!(archive_path(Path::new("a b")).is_err());
    }
}

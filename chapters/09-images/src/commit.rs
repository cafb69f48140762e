// Your copy of solutions/09-images/src/commit.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! `commit`: a container's own layer, its overlay upper directory, becomes a new image
//! layer on top of its image. Book: section 9.5.
//!
//! This is the seeds' "version control for containers": a commit records what changed,
//! and the image's history says how it was made. The upper directory is in overlay's
//! form (a whiteout is a character device 0, 0; an opaque directory has an attribute);
//! an image layer is in OCI's (`.wh.NAME`, `.wh..wh..opq`). The tar is written in a fixed
//! order, and with `--reproducible` with fixed times, so the same changes make the same
//! layer and the same image digest.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::archive::{fixed_header, store_bytes};
use crate::container;
use crate::dataroot;
use crate::digest::{copy_verified, Digest, Expected};
use crate::idmap::IdMap;
use crate::image::{full_name, Image};
use crate::layers::TmpDirs;
use crate::oci::{Descriptor, Manifest, CONFIG, LAYERS, MANIFEST, REF_NAME};
use crate::state::{State, Status};
use crate::store::Store;
use crate::userns::{self, Ids};

/// The record, in a container's own directory, of the image it runs: its manifest's
/// digest.
pub const IMAGE_RECORD: &str = "image";

/// The time a `--reproducible` commit gives every file and its history entry.
const EPOCH: &str = "1970-01-01T00:00:00Z";

// ANCHOR: commit
/// Commits container `name_or_id` as image `as_name`: its upper directory as a gzip
/// layer, a config with that layer's diff_id and a history entry added, and a manifest
/// naming both, each stored under its digest; then the name.
pub fn commit(
    data_root: &Path,
    store: &Store,
    name_or_id: &str,
    as_name: &str,
    reproducible: bool,
) -> Result<String> {
    let as_name = full_name(as_name)?;
    let id = container::find(data_root, name_or_id)?;
    let dir = dataroot::container(data_root, &id);
    refuse_if_running(&dir, name_or_id)?;
    let base = image_of(store, &dir, name_or_id)?;
    let mut work = TmpDirs::new(data_root)?;
    let layer_path = work.make()?.join("layer.tar.gz");
    let (layer, diff_id) = write_layer(&dir.join("upper"), &layer_path, reproducible)?;
    copy_verified(File::open(&layer_path)?, &layer, store.root())?;
    let config = new_config(store, &base, &diff_id, name_or_id, reproducible)?;
    let mut layers = base.manifest.layers.clone();
    layers.push(Descriptor::of(LAYERS[1], layer));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST.to_string()),
        config: store_json(store, CONFIG, &config)?,
        layers,
    };
    let mut image = store_json(store, MANIFEST, &serde_json::to_value(&manifest)?)?;
    image
        .annotations
        .insert(REF_NAME.to_string(), as_name.clone());
    store.name(image)?;
    Ok(as_name)
}
// ANCHOR_END: commit

/// A running container can change its upper directory while it is read, and swap a
/// file for a symlink to anything on the host between a look and a read: only a
/// container that has ended is committed. (Docker pauses one with the freezer cgroup.)
fn refuse_if_running(dir: &Path, name_or_id: &str) -> Result<()> {
    let state = State::read(dir)?;
    if let Status::Running(_) = state.status_now() {
        bail!(
            "container {name_or_id} is still running: a commit reads what it wrote, so it \
             must have ended first"
        );
    }
    Ok(())
}

/// The image a container runs, from the record its `run` left.
fn image_of(store: &Store, dir: &Path, name_or_id: &str) -> Result<Image> {
    let record = fs::read_to_string(dir.join(IMAGE_RECORD)).map_err(|_| {
        anyhow::anyhow!(
            "container {name_or_id} was not started from an image (--rootfs or --layer): \
             there is nothing to add its layer to"
        )
    })?;
    let digest: Digest = record
        .trim()
        .parse()
        .map_err(|why| anyhow::anyhow!("{:?}: {why}", dir.join(IMAGE_RECORD)))?;
    let descriptor = store
        .index()?
        .manifests
        .into_iter()
        .find(|d| d.digest == digest)
        .with_context(|| {
            format!("the image container {name_or_id} ran, {digest}, is gone")
        })?;
    store.image(
        &descriptor
            .annotations
            .get(REF_NAME)
            .cloned()
            .unwrap_or_default(),
    )
}

/// The base image's config, as JSON so that what the kit does not read is kept, with
/// the new layer's diff_id and a history entry.
fn new_config(
    store: &Store,
    base: &Image,
    diff_id: &Digest,
    container: &str,
    reproducible: bool,
) -> Result<Value> {
    let bytes = fs::read(store.blob_path(base.id()))?;
    let mut config: Value = serde_json::from_slice(&bytes)?;
    let created = match reproducible {
        true => EPOCH.to_string(),
        false => now_rfc3339(),
    };
    config["created"] = json!(created);
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .context("the base image's config has no rootfs.diff_ids")?
        .push(json!(diff_id.to_string()));
    let entry =
        json!({"created": created, "created_by": format!("byoc commit {container}")});
    match config["history"].as_array_mut() {
        Some(history) => history.push(entry),
        None => config["history"] = json!([entry]),
    }
    Ok(config)
}

fn store_json(store: &Store, media_type: &str, value: &Value) -> Result<Descriptor> {
    store_bytes(store, &serde_json::to_vec(value)?, media_type)
}

// ANCHOR: write_layer
/// Writes `upper` as a gzip tar at `path`; returns the blob's digest and size, and the
/// tar's digest (the diff_id), both hashed as the bytes are written.
fn write_layer(
    upper: &Path,
    path: &Path,
    reproducible: bool,
) -> Result<(Expected, Digest)> {
    let file = HashingWriter::new(File::create(path)?);
    let gzip = flate2::GzBuilder::new().write(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(HashingWriter::new(gzip));
    let mut writer = LayerWriter {
        upper,
        tar: &mut tar,
        reproducible,
        owners: Owners::of_this_user()?,
        linked: HashMap::new(),
    };
    writer.directory(Path::new(""))?;
    let tar_bytes = tar.into_inner()?;
    let (gzip, diff_id, _) = tar_bytes.finish();
    let (mut file, digest, size) = gzip.finish()?.finish();
    file.flush()?;
    Ok((Expected { digest, size }, diff_id))
}
// ANCHOR_END: write_layer

/// Who owns a file, inside the container: the machine's root sees the ids as they are;
/// an ordinary user's container had them mapped (chapter 5), so they are mapped back.
struct Owners {
    uids: Vec<IdMap>,
    gids: Vec<IdMap>,
}

impl Owners {
    fn of_this_user() -> Result<Owners> {
        if userns::is_host_root() {
            return Ok(Owners {
                uids: Vec::new(),
                gids: Vec::new(),
            });
        }
        Ok(Owners {
            uids: userns::maps_for(Ids::User, &[])?,
            gids: userns::maps_for(Ids::Group, &[])?,
        })
    }

    fn inside(maps: &[IdMap], host: u32) -> u32 {
        if maps.is_empty() {
            return host;
        }
        maps.iter()
            .find(|m| host >= m.host && host - m.host < m.size)
            .map_or(65534, |m| m.container + (host - m.host)) // unmapped: nobody
    }
}

/// The upper directory, entry by entry, into the tar.
struct LayerWriter<'a, W: Write> {
    upper: &'a Path,
    tar: &'a mut tar::Builder<W>,
    reproducible: bool,
    owners: Owners,
    /// Files with more than one name, by inode: the first name, for the next to link to.
    linked: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> LayerWriter<'_, W> {
    // ANCHOR: directory
    /// A directory's entries in name order (so the same tree makes the same tar): a
    /// whiteout becomes `.wh.NAME`, an opaque directory gets `.wh..wh..opq` first in
    /// it, everything else goes as it is.
    fn directory(&mut self, inner: &Path) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(self.upper.join(inner))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let path = inner.join(&name);
            let meta = fs::symlink_metadata(self.upper.join(&path))?;
            let kind = meta.file_type();
            if kind.is_char_device() && meta.rdev() == 0 {
                let marker = inner.join(format!(".wh.{}", name.to_string_lossy()));
                self.append(&marker, &meta, tar::EntryType::Regular, 0)?;
            } else if kind.is_dir() {
                self.append(&path, &meta, tar::EntryType::Directory, 0)?;
                if crate::diff::is_opaque(&self.upper.join(&path)) {
                    self.append(
                        &path.join(".wh..wh..opq"),
                        &meta,
                        tar::EntryType::Regular,
                        0,
                    )?;
                }
                self.directory(&path)?;
            } else {
                self.other(&path, &meta)?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: directory

    fn other(&mut self, path: &Path, meta: &fs::Metadata) -> Result<()> {
        let kind = meta.file_type();
        if kind.is_file() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.linked.get(&key).cloned() {
                let mut header = self.header(meta, tar::EntryType::Link, 0);
                self.tar.append_link(&mut header, path, &first)?;
                return Ok(());
            }
            self.linked.insert(key, path.to_path_buf());
        }
        if kind.is_file() {
            let mut header = self.header(meta, tar::EntryType::Regular, meta.len());
            let file = File::open(self.upper.join(path))?;
            self.tar.append_data(&mut header, path, file)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(self.upper.join(path))?;
            let mut header = self.header(meta, tar::EntryType::Symlink, 0);
            self.tar.append_link(&mut header, path, &target)?;
        } else if kind.is_fifo() {
            self.append(path, meta, tar::EntryType::Fifo, 0)?;
        } else if kind.is_char_device() || kind.is_block_device() {
            let entry = match kind.is_char_device() {
                true => tar::EntryType::Char,
                false => tar::EntryType::Block,
            };
            let mut header = self.header(meta, entry, 0);
            header.set_device_major(libc::major(meta.rdev()))?;
            header.set_device_minor(libc::minor(meta.rdev()))?;
            self.tar.append_data(&mut header, path, io::empty())?;
        } else {
            bail!("{path:?} in the container's layer is a socket, which no layer holds");
        }
        Ok(())
    }

    fn append(
        &mut self,
        path: &Path,
        meta: &fs::Metadata,
        kind: tar::EntryType,
        size: u64,
    ) -> Result<()> {
        let mut header = self.header(meta, kind, size);
        if kind == tar::EntryType::Regular {
            header.set_mode(0o600); // a marker: its mode means nothing
        }
        self.tar.append_data(&mut header, path, io::empty())?;
        Ok(())
    }

    fn header(
        &self,
        meta: &fs::Metadata,
        kind: tar::EntryType,
        size: u64,
    ) -> tar::Header {
        let mut header = fixed_header(kind, size, meta.mode() & 0o7777);
        header.set_uid(Owners::inside(&self.owners.uids, meta.uid()).into());
        header.set_gid(Owners::inside(&self.owners.gids, meta.gid()).into());
        if !self.reproducible {
            header.set_mtime(meta.mtime().max(0) as u64);
        }
        header
    }
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> HashingWriter<W> {
        use sha2::Digest as _;
        HashingWriter {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> (W, Digest, u64) {
        use sha2::Digest as _;
        (
            self.inner,
            Digest::from_sha256(&self.hasher.finalize()),
            self.count,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        use sha2::Digest as _;
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Now, as the image spec writes times (RFC 3339, UTC).
pub fn now_rfc3339() -> String {
    let seconds = crate::state::now() as i64;
    let days = seconds.div_euclid(86_400);
    let (hour, minute, second) = (
        seconds.rem_euclid(86_400) / 3600,
        seconds.rem_euclid(3600) / 60,
        seconds.rem_euclid(60),
    );
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// The calendar date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_793), (2026, 12, 6));
    }
}

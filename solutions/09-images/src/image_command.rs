//! The `image` subcommands and `commit`, as a user types them. Book: sections 9.2, 9.5
//! and 9.6.
//!
//! Whatever changes the store (an import, a removal, a commit, a layer unpacked for a
//! run) holds its lock, `images.lock` under the data root, so two at once never see
//! each other's half: two imports of one image end with one copy of each blob and
//! layer, and a removal never collects a blob an import has just brought in.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use nix::fcntl::{Flock, FlockArg};
use serde_json::json;

use crate::archive;
use crate::blobs::LocalBlobs;
use crate::commit;
use crate::dataroot::{self, DataRootArgs};
use crate::image::Image;
use crate::layers;
use crate::records;
use crate::store::{self, Store};
use crate::userns;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Take in an image: an OCI layout directory, an OCI archive, or a `docker save`
    /// archive (PATH:REF picks one of several).
    Import(ImportArgs),
    /// List the images.
    Ls(DataRootArgs),
    /// Show an image's config and layers, as JSON.
    Inspect(OneImage),
    /// Remove images, and the blobs and layers nothing else uses.
    Rm(RmImages),
    /// Write an image as an OCI archive, for skopeo, podman or docker to load.
    Save(SaveArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The layout directory or archive.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// The name to give it (default: the name the source gives it).
    #[arg(value_name = "NAME:TAG")]
    pub name: Option<String>,
    #[command(flatten)]
    pub data_root: DataRootArgs,
}

#[derive(Debug, Args)]
pub struct OneImage {
    /// NAME[:TAG], or an image id.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    #[command(flatten)]
    pub data_root: DataRootArgs,
}

#[derive(Debug, Args)]
pub struct RmImages {
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    #[command(flatten)]
    pub data_root: DataRootArgs,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The archive to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub data_root: DataRootArgs,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Fixed times in the layer and the config: the same changes make the same image.
    #[arg(long)]
    pub reproducible: bool,
    /// The container, by name or id.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NAME:TAG")]
    pub name: String,
    #[command(flatten)]
    pub data_root: DataRootArgs,
}

/// The store of a data root, and its lock held while the value lives.
pub struct LockedStore {
    pub store: Store,
    pub data_root: PathBuf,
    _lock: Flock<File>,
}

impl LockedStore {
    /// Opens the store under `data_root` (made if new) and waits for its lock.
    pub fn open(data_root: &Path) -> Result<LockedStore> {
        records::make_dir(data_root)?;
        let path = dataroot::images_lock(data_root);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {path:?}"))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, error)| error)
            .with_context(|| format!("cannot lock {path:?}"))?;
        let store = Store::open(&dataroot::images(data_root))?;
        store.remove_half_written_blobs();
        Ok(LockedStore {
            store,
            data_root: data_root.to_path_buf(),
            _lock: lock,
        })
    }

    /// The image `reference` names, its layers unpacked: lowest first.
    pub fn unpacked(&self, reference: &str) -> Result<(Image, Vec<PathBuf>)> {
        let image = self.store.image(reference)?;
        let dirs = self.unpack(&image)?;
        Ok((image, dirs))
    }

    /// Unpacks the layers of `image` not unpacked yet; its layer directories.
    pub fn unpack(&self, image: &Image) -> Result<Vec<PathBuf>> {
        self.unpack_from(image, None)
    }

    /// The same, reading the layers the store lacks from the layout at `source`, and
    /// copying them into the store as they are unpacked.
    fn unpack_from(&self, image: &Image, source: Option<&Path>) -> Result<Vec<PathBuf>> {
        let documents = (&image.manifest, &image.config);
        let as_root = userns::is_host_root();
        let source = LocalBlobs {
            store: &self.store,
            layout: source,
        };
        layers::ensure_unpacked(&self.data_root, documents, &source, as_root)
    }
}

pub fn image(command: &ImageCommand) -> Result<u8> {
    match command {
        ImageCommand::Import(args) => import(args),
        ImageCommand::Ls(data_root) => list(&data_root.data_root()?),
        ImageCommand::Inspect(args) => inspect(args),
        ImageCommand::Rm(args) => remove(args),
        ImageCommand::Save(args) => save(args),
    }
}

// ANCHOR: import
/// Takes the image's blobs in, unpacks its layers, and only then names it: an image
/// in the index is whole. When anything fails, the blobs it brought in go.
fn import(args: &ImportArgs) -> Result<u8> {
    let locked = LockedStore::open(&args.data_root.data_root()?)?;
    let taken_in = archive::import(
        &locked.store,
        &locked.data_root,
        &args.path,
        args.name.as_deref(),
    )
    .and_then(|incoming| {
        let image = locked.store.load(incoming.descriptor.clone())?;
        locked.unpack_from(&image, incoming.source())?;
        if let Some(source) = incoming.source() {
            store::copy_missing_layers(&locked.store, &image.manifest, source)?;
        }
        locked.store.name(image.descriptor.clone())?;
        Ok(image)
    });
    let image = taken_in.inspect_err(|_| {
        if let Err(error) = locked.store.collect_garbage() {
            eprintln!("warning: {error:#}");
        }
    })?;
    let name = image.name().unwrap_or_default();
    println!("imported {name}, image id {}", short_id(&image));
    Ok(0)
}
// ANCHOR_END: import

fn short_id(image: &Image) -> &str {
    &image.id().hex()[..12]
}

// ANCHOR: list
/// `REPOSITORY  TAG  IMAGE ID  CREATED  SIZE`, as docker prints them; the size is that of
/// the layers as stored (compressed).
fn list(data_root: &Path) -> Result<u8> {
    let store = Store::open(&dataroot::images(data_root))?;
    let mut rows =
        vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(String::from)];
    for image in store.images()? {
        let name = image.name().unwrap_or("<none>:<none>");
        // `NAME@DIGEST` (pulled by digest alone) has no tag, as docker shows it.
        let (repository, tag) = match name.split_once('@') {
            Some((repository, _)) => (repository, "<none>"),
            None => name.rsplit_once(':').unwrap_or((name, "<none>")),
        };
        let created = image.config.created.as_deref().unwrap_or("-");
        let size: u64 = image.manifest.layers.iter().map(|layer| layer.size).sum();
        rows.push([
            repository.to_string(),
            tag.to_string(),
            short_id(&image).to_string(),
            created.get(..10).unwrap_or(created).to_string(),
            human_size(size),
        ]);
    }
    print_table(&rows);
    Ok(0)
}
// ANCHOR_END: list

fn print_table(rows: &[[String; 5]]) {
    let widths: Vec<usize> = (0..5)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("   ").trim_end());
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.1} GB", bytes as f64 / 1e9),
    }
}

/// The image's ids, config and layers (each with the directory it is unpacked in).
fn inspect(args: &OneImage) -> Result<u8> {
    let data_root = args.data_root.data_root()?;
    let store = Store::open(&dataroot::images(&data_root))?;
    let image = store.image(&args.image)?;
    let layers: Vec<_> = image
        .manifest
        .layers
        .iter()
        .zip(image.layer_dirs(&data_root))
        .zip(&image.config.rootfs.diff_ids)
        .map(|((layer, dir), diff_id)| {
            json!({
                "digest": layer.digest.to_string(),
                "mediaType": layer.media_type,
                "size": layer.size,
                "diffId": diff_id.to_string(),
                "directory": dir,
            })
        })
        .collect();
    let shown = json!({
        "id": image.id().to_string(),
        "name": image.name(),
        "manifest": image.descriptor.digest.to_string(),
        "created": image.config.created,
        "architecture": image.config.architecture,
        "os": image.config.os,
        "config": image.config.config,
        "layers": layers,
    });
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(0)
}

fn remove(args: &RmImages) -> Result<u8> {
    let locked = LockedStore::open(&args.data_root.data_root()?)?;
    for reference in &args.images {
        locked.store.remove(reference, &locked.data_root)?;
        println!("removed {reference}");
    }
    Ok(0)
}

fn save(args: &SaveArgs) -> Result<u8> {
    let data_root = args.data_root.data_root()?;
    let store = Store::open(&dataroot::images(&data_root))?;
    let image = store.image(&args.image)?;
    archive::save(&store, &image, &args.output)?;
    println!(
        "saved {} to {}",
        image.name().unwrap_or("the image"),
        args.output.display()
    );
    Ok(0)
}

// ANCHOR: commit
pub fn commit(args: &CommitArgs) -> Result<u8> {
    let locked = LockedStore::open(&args.data_root.data_root()?)?;
    let name = commit::commit(
        &locked.data_root,
        &locked.store,
        &args.container,
        &args.name,
        args.reproducible,
    )?;
    let image = locked.store.image(&name)?;
    println!("{}", image.descriptor.digest);
    Ok(0)
}
// ANCHOR_END: commit

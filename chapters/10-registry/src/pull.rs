// Your copy of solutions/10-registry/src/pull.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! `pull REF`, and `run REF` pulling what is missing: a manifest, a config and layers
//! from a registry, into chapter 9's store. Book: sections 10.2 to 10.4.
//!
//! The order is the one that keeps the store whole: the manifest is chosen and checked
//! before anything is written; then, with the store's lock, the manifest and config are
//! stored, the layers stream in and are unpacked, and only then does the image get its
//! name. A pull that fails takes away what it brought, except a download cut off half
//! way, kept in `ingest/` for the next pull to finish.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use crate::archive;
use crate::credentials::{self, Credentials};
use crate::dataroot::{self, DataRootArgs};
use crate::digest::Digest;
use crate::download::RegistryBlobs;
use crate::http::Http;
use crate::image::Image;
use crate::image_command::LockedStore;
use crate::layers;
use crate::manifests::{self, Resolved};
use crate::oci::{Descriptor, Manifest, DOCUMENT_LIMIT, REF_NAME};
use crate::platform::{self, Platform};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::session::Session;
use crate::userns;

/// How a pull speaks to the registry: every command that pulls flattens these.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// The platform to take from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,

    /// The user and password for the registry (default: what `login` stored).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,

    /// The credentials file to read (and, for `login`, to write) instead of podman's
    /// and docker's.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<std::path::PathBuf>,

    /// A registry that may be spoken to in plain HTTP, not HTTPS (localhost always
    /// may). Its traffic can be read and changed by anyone on the way.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,

    /// How many layers download at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub max_concurrent_downloads: u8,

    /// Seconds a download may go without a byte before it is given up.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub stall_timeout: u64,
}

/// `pull`'s options.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: `[REGISTRY/]NAME[:TAG][@DIGEST]`, as docker reads it.
    pub reference: String,

    /// Print the image's digest alone.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,

    #[command(flatten)]
    pub data_root: DataRootArgs,
}

/// When `run` pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// When the store has no image of that name.
    Missing,
    /// Every time: the tag may name a newer image now.
    Always,
    /// Never: the image must be in the store.
    Never,
}

/// `pull`.
pub fn pull_command(args: &PullArgs) -> Result<u8> {
    let data_root = args.data_root.data_root()?;
    let progress = Progress::choose(args.quiet, false);
    let pulled = pull(&args.reference, &args.registry, &data_root, &progress)?;
    if args.quiet {
        println!("{}", pulled.digest);
    }
    Ok(0)
}

/// What a pull did.
pub struct Pulled {
    /// The name the image has in the store.
    pub name: String,
    /// The digest the reference resolved to (an index's, for a multi-platform image).
    pub digest: Digest,
    pub image: Image,
}

// ANCHOR: pull
/// Pulls `given` into the store under `data_root`, saying what it does on `progress`.
pub fn pull(
    given: &str,
    args: &RegistryArgs,
    data_root: &Path,
    progress: &Progress,
) -> Result<Pulled> {
    let reference = Reference::parse(given)?;
    let http = Http::new(&args.insecure, Duration::from_secs(args.stall_timeout));
    let session = Session::new(&http, &reference, credentials_for(args, &reference)?);
    let wanted = args
        .platform
        .clone()
        .unwrap_or_else(Platform::of_this_machine);
    progress.say(&format!(
        "{}: Pulling from {}",
        reference.wanted(),
        reference.repository
    ));
    let resolved = manifests::resolve(&session, &reference, &wanted)?;
    let locked = LockedStore::open(data_root)?;
    let name = reference.store_name();
    let before = locked.store.image(&name).ok().map(|i| i.descriptor.digest);
    let blobs = RegistryBlobs {
        session: &session,
        store: &locked.store,
        ingest: dataroot::ingest(data_root),
        progress,
        at_once: args.max_concurrent_downloads.into(),
    };
    let platform = Asked {
        wanted: &wanted,
        explicitly: args.platform.is_some(),
    };
    let image =
        take_in(&locked, &blobs, &resolved, &name, platform).inspect_err(|_| {
            if let Err(error) = locked.store.collect_garbage() {
                eprintln!("warning: {error:#}");
            }
        })?;
    progress.say(&format!("Digest: {}", resolved.digest));
    let status = match before == Some(image.descriptor.digest.clone()) {
        true => "Image is up to date for",
        false => "Downloaded newer image for",
    };
    progress.say(&format!("Status: {status} {name}"));
    Ok(Pulled {
        name,
        digest: resolved.digest,
        image,
    })
}
// ANCHOR_END: pull

// ANCHOR: take_in
/// Stores the manifest and config, brings in and unpacks the layers the store lacks,
/// and names the image: in that order, so an image with a name is whole.
fn take_in(
    locked: &LockedStore,
    blobs: &RegistryBlobs,
    resolved: &Resolved,
    name: &str,
    platform: Asked,
) -> Result<Image> {
    let store = &locked.store;
    let manifest = &resolved.manifest;
    let mut descriptor =
        archive::store_bytes(store, &manifest.bytes, &manifest.media_type)?;
    let parsed = Manifest::read(&store.blob_path(&descriptor.digest))?;
    fetch_config(blobs, &parsed.config)?;
    if !resolved.from_index {
        check_platform(&store.blob_path(&parsed.config.digest), platform)?;
    }
    descriptor
        .annotations
        .insert(REF_NAME.to_string(), name.to_string());
    let image = store.load(descriptor)?;
    let documents = (&image.manifest, &image.config);
    let as_root = userns::is_host_root();
    layers::ensure_unpacked(&locked.data_root, documents, blobs, as_root)?;
    for layer in &image.manifest.layers {
        if !store.blob_path(&layer.digest).is_file() {
            blobs.fetch_only(layer)?;
        }
    }
    store.name(image.descriptor.clone())?;
    Ok(image)
}
// ANCHOR_END: take_in

/// The image's config, into the store if it is not there: small, so read whole (at most
/// 4 MiB) and checked before it is written.
fn fetch_config(blobs: &RegistryBlobs, config: &Descriptor) -> Result<()> {
    if blobs.store.blob_path(&config.digest).is_file() {
        return Ok(());
    }
    if config.size > DOCUMENT_LIMIT {
        bail!(
            "the config {} is {} bytes: no config is that big, refused",
            config.digest,
            config.size
        );
    }
    let url = blobs.session.url("blobs", &config.digest.to_string());
    let reply = blobs.session.get(&url, &[])?;
    if reply.status != 200 {
        return Err(reply.refusal(&format!("config {}", config.digest)));
    }
    let bytes = reply.read_capped(DOCUMENT_LIMIT)?;
    if Digest::of(&bytes) != config.digest || bytes.len() as u64 != config.size {
        bail!(
            "{url}: the config's bytes hash to {} ({} bytes), not {}: refused",
            Digest::of(&bytes),
            bytes.len(),
            config.digest
        );
    }
    archive::store_bytes(blobs.store, &bytes, &config.media_type)?;
    Ok(())
}

/// The platform a pull is for, and whether the user named it (`--platform`) or it is
/// this machine's.
#[derive(Clone, Copy)]
struct Asked<'a> {
    wanted: &'a Platform,
    explicitly: bool,
}

/// An image with no index is for the platform its config names: refused when that is
/// not the one `--platform` asked for; a warning when it is not this machine's (it may
/// still run, under an emulator).
fn check_platform(config: &Path, asked: Asked) -> Result<()> {
    let config: serde_json::Value = crate::oci::read_json(config)?;
    let field = |name: &str| {
        config
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let (Some(os), Some(architecture)) = (field("os"), field("architecture")) else {
        return Ok(()); // a config that says nothing cannot disagree
    };
    let wanted = asked.wanted;
    let is = Platform {
        os,
        architecture,
        variant: field("variant"),
    };
    // The same platform: the same OS and architecture, and the same variant when both
    // name one, as `platform::choose` decides for an index.
    if platform::choose(&[Some(is.clone())], wanted).is_ok() {
        return Ok(());
    }
    match asked.explicitly {
        true => {
            bail!("the image is for {is}, not {wanted}, and it has no index of others")
        }
        false => {
            eprintln!("warning: the image is for {is}, and this machine is {wanted}");
            Ok(())
        }
    }
}

/// The credentials to offer `reference`'s registry: `--creds`, or what `login` stored.
fn credentials_for(
    args: &RegistryArgs,
    reference: &Reference,
) -> Result<Option<Credentials>> {
    if let Some(given) = &args.creds {
        return Credentials::parse(given).map(Some);
    }
    let files = match &args.authfile {
        Some(file) => vec![file.clone()],
        None => credentials::files(),
    };
    credentials::find(&files, &reference.registry)
}

// ANCHOR: ensure_image
/// The name `given` has in the store, pulling it first as `policy` says: the name as
/// chapter 9 reads it (an image imported as `busybox`), else the full name a pull gives
/// it (`docker.io/library/busybox:latest`).
pub fn ensure_image(
    given: &str,
    policy: PullPolicy,
    args: &RegistryArgs,
    data_root: &Path,
) -> Result<String> {
    if policy != PullPolicy::Always {
        if let Some(found) = find_locally(given, data_root) {
            return Ok(found);
        }
        if policy == PullPolicy::Never {
            bail!("no image {given:?} in the store, and --pull never: pull it first");
        }
        eprintln!("Unable to find image '{given}' locally");
    }
    let progress = Progress::choose(false, true);
    Ok(pull(given, args, data_root, &progress)?.name)
}
// ANCHOR_END: ensure_image

/// The name `given` has in the store, as given or in full; `None` if neither is there.
fn find_locally(given: &str, data_root: &Path) -> Option<String> {
    let locked = LockedStore::open(data_root).ok()?;
    let full = Reference::parse(given).ok().map(|r| r.store_name());
    [Some(given.to_string()), full]
        .into_iter()
        .flatten()
        .find(|name| locked.store.image(name).is_ok())
}

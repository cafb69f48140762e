// Your copy of solutions/09-images/src/images.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! `run IMAGE`: the image found in the store, its layers unpacked, and the process built
//! from its config. Book: section 9.4.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;

use crate::commit::IMAGE_RECORD;
use crate::config::{self, Overrides};
use crate::container::ContainerArgs;
use crate::dataroot;
use crate::image::Image;
use crate::image_command::LockedStore;
use crate::layers;
use crate::overlay::Layers;
use crate::records;
use crate::spec::Process;

/// `run`'s options for a container of an image, as docker has them.
#[derive(Debug, Clone, Args)]
pub struct ImageRunArgs {
    /// Set an environment variable in the container: NAME=VALUE, or NAME to pass this
    /// shell's value (over the image's).
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,

    /// Run this program in place of the image's entrypoint (and drop its Cmd).
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,
}

impl ImageRunArgs {
    /// The process of a run on `--rootfs` or `--layer`: chapter 8's, with `-e`.
    pub fn process(
        &self,
        command: Vec<OsString>,
        container: &ContainerArgs,
        terminal: bool,
    ) -> Result<Process> {
        if self.entrypoint.is_some() {
            bail!(
                "--entrypoint replaces an image's entrypoint: it needs an image, not \
                 --rootfs or --layer"
            );
        }
        if command.is_empty() {
            Process::new(Vec::new(), terminal)?; // says where the command goes
        }
        let image = config::ProcessConfig::default();
        config::process(&image, self.overrides(command, container, terminal), |_| {
            bail!("a user name needs an image")
        })
    }

    fn overrides(
        &self,
        command: Vec<OsString>,
        container: &ContainerArgs,
        terminal: bool,
    ) -> Overrides {
        Overrides {
            command,
            entrypoint: self.entrypoint.clone(),
            env: self.env.clone(),
            workdir: container.workdir.clone(),
            user: container.user.clone(),
            terminal,
        }
    }
}

/// The image a run uses, with the store's lock: held until the container's state
/// names the image's layers, so no `image rm` can take them away before.
pub struct Chosen {
    pub image: Image,
    _lock: LockedStore,
}

// ANCHOR: prepare_run
/// The image the first word names, its layers (unpacked now if they were not), and the
/// process its config and the rest of the command line make.
pub fn prepare_run(
    data_root: &Path,
    args: &ImageRunArgs,
    mut words: Vec<OsString>,
    container: &ContainerArgs,
    terminal: bool,
) -> Result<(Chosen, Layers, Process)> {
    if words.is_empty() {
        bail!(
            "no image to run: give one (`run IMAGE [CMD...]`), or --rootfs DIR or \
             --layer DIR"
        );
    }
    let reference = words.remove(0).to_string_lossy().into_owned();
    let lock = LockedStore::open(data_root)?;
    let (image, dirs) = lock.unpacked(&reference)?;
    if dirs.is_empty() {
        bail!("image {reference:?} has no layers: there is nothing to make a root of");
    }
    let layers = Layers::check(&dirs)?;
    layers.check_mount_points(&["dev", "tmp", "proc"])?;
    let find_user =
        |user: &str| config::parse_user(user, |file| read_from_layers(&dirs, file));
    let overrides = args.overrides(words, container, terminal);
    let process = config::process(&image.config.config, overrides, find_user)?;
    Ok((Chosen { image, _lock: lock }, layers, process))
}
// ANCHOR_END: prepare_run

/// Records in the container's directory which image it runs, for `commit`.
pub fn record_image(data_root: &Path, id: &str, image: &Image) -> Result<()> {
    let path = dataroot::container(data_root, id).join(IMAGE_RECORD);
    records::write(&path, &format!("{}\n", image.descriptor.digest))
}

/// The text of the file `path` of the merged layers (`etc/passwd`), as the container
/// will see it (whiteouts and opaque directories too); at most 1 MiB.
fn read_from_layers(dirs: &[PathBuf], path: &str) -> Option<String> {
    let file = layers::merged_file(dirs, Path::new(path)).ok()??;
    let mut text = String::new();
    file.take(1 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

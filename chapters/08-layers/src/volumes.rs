// Your copy of solutions/08-layers/src/volumes.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Volumes: data that outlives the container, kept out of its layer. `-v HOST:DIR`
//! bind-mounts a directory of the host; `-v NAME:DIR` a named volume, a directory the
//! runtime keeps under the data root (`volumes/NAME/`), made on first use; `:ro` makes
//! either read-only. Book: section 8.5.
//!
//! The container's `DIR` is looked up inside its root, as every mount point is (book
//! 2.5): a symlink in a layer at `DIR` cannot aim the mount at the host.

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use crate::container;
use crate::dataroot::{self, DataRootArgs};
use crate::inroot::RootDir;
use crate::records;
use crate::state;

// ANCHOR: options
/// `run`'s volumes.
#[derive(Debug, Clone, clap::Args)]
pub struct VolumeArgs {
    /// Mount a host directory (HOST_DIR:DIR) or a named volume (NAME:DIR) on DIR in the
    /// container; `:ro` after it makes it read-only (repeatable).
    #[arg(short = 'v', long = "volume", value_name = "SOURCE:DIR[:ro]")]
    pub volumes: Vec<Volume>,
}
// ANCHOR_END: options

/// One `-v SOURCE:DIR[:ro]`, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub source: Source,
    /// Where it goes in the container: an absolute path without `..`.
    pub target: PathBuf,
    pub read_only: bool,
}

/// Where a volume's data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory of the host, by its absolute path.
    Host(PathBuf),
    /// A named volume, `volumes/NAME/` under the data root.
    Named(String),
}

// ANCHOR: parse
impl FromStr for Volume {
    type Err = String;

    /// `/host/dir:/dir`, `name:/dir`, either with `:ro` (or `:rw`) after it.
    fn from_str(text: &str) -> Result<Volume, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [source, target] => (*source, *target, false),
            [source, target, "ro"] => (*source, *target, true),
            [source, target, "rw"] => (*source, *target, false),
            _ => return Err(format!(
                "{text:?} is not a volume: give HOST_DIR:DIR or NAME:DIR, with :ro after it \
                 for a read-only one"
            )),
        };
        let source = match source.starts_with('/') {
            true => Source::Host(PathBuf::from(source)),
            false => Source::Named(check_volume_name(source)?.to_string()),
        };
        Ok(Volume {
            source,
            target: check_target(target)?,
            read_only,
        })
    }
}
// ANCHOR_END: parse

/// A volume's name: as a container's (a letter or digit, then letters, digits, `_`,
/// `.`, `-`). A source that is neither that nor an absolute path is refused, so a
/// relative host path is never taken for a name by accident.
fn check_volume_name(name: &str) -> Result<&str, String> {
    state::check_name(name).map_err(|_| {
        format!(
            "{name:?} is neither an absolute host path nor a volume name (a letter or \
             digit, then letters, digits, '_', '.' or '-')"
        )
    })
}

/// The container's side: absolute, with no `..` and not `/` itself.
fn check_target(target: &str) -> Result<PathBuf, String> {
    let path = Path::new(target);
    if !path.is_absolute() {
        return Err(format!(
            "{target:?} is not an absolute path in the container"
        ));
    }
    if path.components().any(|part| part == Component::ParentDir) {
        return Err(format!(
            "{target:?} has a '..' in it: name the directory itself"
        ));
    }
    if path.components().all(|part| part == Component::RootDir) {
        return Err("a volume cannot go on the container's / itself".to_string());
    }
    Ok(path.to_path_buf())
}

/// A volume ready to mount: the host directory that is its data.
#[derive(Debug, Clone)]
pub struct Bind {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
    /// The named volume's name, for the container's state.
    pub name: Option<String>,
}

/// On the host, before the clone: each host directory checked, each named volume made
/// if it is new.
pub fn prepare(volumes: &[Volume], data_root: &Path) -> Result<Vec<Bind>> {
    volumes
        .iter()
        .map(|volume| {
            let (source, name) = match &volume.source {
                Source::Host(dir) => (check_host_dir(dir)?, None),
                Source::Named(name) => {
                    let dir = dataroot::volume(data_root, name);
                    records::make_dir(&dir)?;
                    (dir, Some(name.clone()))
                }
            };
            Ok(Bind {
                source,
                target: volume.target.clone(),
                read_only: volume.read_only,
                name,
            })
        })
        .collect()
}

fn check_host_dir(dir: &Path) -> Result<PathBuf> {
    let path = dir
        .canonicalize()
        .with_context(|| format!("the volume's host directory {dir:?} cannot be used"))?;
    if !path.is_dir() {
        bail!("the volume's host directory {dir:?} is not a directory");
    }
    Ok(path)
}

// ANCHOR: mount_all
/// In the child, before `pivot_root`: bind-mounts each volume on its directory, found
/// inside the root (and made there first, in the container's own layer, when
/// `may_make` and it is missing), then makes the read-only ones so.
pub fn mount_all(binds: &[Bind], root: &RootDir, may_make: bool) -> Result<()> {
    for bind in binds {
        let name = bind.target.to_string_lossy();
        if root.is_missing(&name) {
            if !may_make {
                bail!(
                    "the root filesystem has no {name} to mount the volume on, and the \
                     kit never writes into a --rootfs: make the directory there, or use \
                     --layer"
                );
            }
            make_dirs(root, &bind.target)?;
        }
        // Held open while it is mounted on: its name is its descriptor's.
        let target = root.find_dir(&name)?;
        let bind_flags = MsFlags::MS_BIND | MsFlags::MS_REC;
        crate::mounts::mount(Some(&bind.source), &target.path(), None, bind_flags, None)?;
        if bind.read_only {
            // The bind mount is a new mount on top of the descriptor's directory: found
            // again, the name leads to it.
            let mounted = root.find_dir(&name)?;
            let read_only = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            let flags = read_only | flags_kept(&mounted.path())?;
            crate::mounts::mount(None, &mounted.path(), None, flags, None)?;
        }
    }
    Ok(())
}
// ANCHOR_END: mount_all

/// The flags a remount must keep: the host's mount may have `nosuid`, `nodev`,
/// `noexec` or an atime setting, and in a user namespace the kernel refuses a remount
/// that would drop one of them (they are locked, so a container cannot loosen them).
pub fn flags_kept(target: &Path) -> Result<MsFlags> {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let now = statvfs(target)
        .with_context(|| format!("statvfs({target:?})"))?
        .flags();
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    Ok(pairs
        .iter()
        .filter(|(held, _)| now.contains(*held))
        .fold(MsFlags::empty(), |kept, (_, flag)| kept | *flag))
}

/// Makes the command's directory (`-w`) when the root lacks it, as docker does: in the
/// container's own layer when `may_make`, refused for a `--rootfs`, never written.
pub fn make_workdir(root: &RootDir, dir: &Path, may_make: bool) -> Result<()> {
    if dir == Path::new("/") || !root.is_missing(&dir.to_string_lossy()) {
        return Ok(());
    }
    if !may_make {
        bail!(
            "the root filesystem has no {} for -w, and the kit never writes into a \
             --rootfs: make the directory there, or use --layer",
            dir.display()
        );
    }
    make_dirs(root, dir)
}

/// Makes each missing directory of `target`, one at a time, each in its parent as found
/// inside the root.
pub fn make_dirs(root: &RootDir, target: &Path) -> Result<()> {
    let mut done = PathBuf::from("/");
    for part in target.components().skip(1) {
        let next = done.join(part);
        if root.is_missing(&next.to_string_lossy()) {
            let parent = root.find_dir(&done.to_string_lossy()).ok();
            let made = match &parent {
                Some(parent) => nix::sys::stat::mkdirat(
                    parent,
                    part.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                ),
                None => nix::sys::stat::mkdirat(
                    root.as_fd(),
                    part.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                ),
            };
            made.with_context(|| {
                format!("cannot make {} in the container", next.display())
            })?;
        }
        done = next;
    }
    Ok(())
}

/// `volume`'s subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum VolumeCommand {
    /// List the named volumes.
    Ls(DataRootArgs),
    /// Remove named volumes that no container uses.
    Rm(VolumeRmArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct VolumeRmArgs {
    /// The volumes, by name.
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,

    #[command(flatten)]
    pub data_root: DataRootArgs,
}

/// `volume ls` and `volume rm`.
pub fn volume(command: &VolumeCommand) -> Result<u8> {
    match command {
        VolumeCommand::Ls(data_root) => {
            let data_root = data_root.data_root()?;
            println!("VOLUME NAME");
            for name in names(&data_root) {
                println!("{name}");
            }
            Ok(0)
        }
        VolumeCommand::Rm(args) => {
            let data_root = args.data_root.data_root()?;
            for name in &args.names {
                remove(&data_root, name)?;
                println!("{name}");
            }
            Ok(0)
        }
    }
}

/// The named volumes, sorted.
fn names(data_root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dataroot::volumes(data_root))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| state::check_name(name).is_ok())
        .collect();
    names.sort();
    names
}

/// Removes named volume `name`, refused while a container, running or not, has it.
fn remove(data_root: &Path, name: &str) -> Result<()> {
    let name = check_volume_name(name).map_err(anyhow::Error::msg)?;
    let dir = dataroot::volume(data_root, name);
    if !dir.is_dir() {
        bail!("no volume is called {name:?} (volume ls lists them)");
    }
    if let Some(user) = container::all(data_root)
        .into_iter()
        .find(|state| state.volumes.iter().any(|volume| volume == name))
    {
        let who = user.name.unwrap_or(user.id);
        bail!("volume {name:?} is in use by container {who}: remove it first (rm {who})");
    }
    container::remove_tree(&dir)
}

// Your copy of solutions/08-layers/src/overlay.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The container's `/` as an overlay: read-only layers below, and a writable layer of
//! the container's own on top. Book: sections 8.1 and 8.2.
//!
//! Overlay joins directories into one view. The lower ones (the layers) are read only;
//! what the container writes goes to the upper one, a file copied up whole the first
//! time it is changed; what it deletes is hidden there by a *whiteout*. So many
//! containers share one set of layers, and none of them can change it. The work
//! directory is the kernel's scratch space for copying up (it must be on the upper's
//! file system). All three are the container's own, under the data root.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use nix::mount::MsFlags;

use crate::mounts;
use crate::spec::{Root, RootSource};

// ANCHOR: root_args
/// Where the container's `/` comes from: one directory, as before, or layers.
#[derive(Debug, Clone, clap::Args)]
pub struct RootArgs {
    /// The directory that becomes the container's `/`.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// A read-only layer of the container's `/` (repeatable, lowest first); the
    /// container writes to a layer of its own on top.
    #[arg(long = "layer", value_name = "DIR")]
    pub layers: Vec<PathBuf>,
}

impl RootArgs {
    /// Whether the command line says what the root is (chapter 9 runs an image if not).
    pub fn is_given(&self) -> bool {
        self.rootfs.is_some() || !self.layers.is_empty()
    }

    /// The root, checked: the directory or the layers exist, and have each of
    /// `mount_points` as a directory.
    pub fn root_source(&self, mount_points: &[&str]) -> Result<RootSource> {
        match (&self.rootfs, self.layers.is_empty()) {
            (Some(rootfs), true) => Ok(RootSource::Dir(Root::new(rootfs, mount_points)?)),
            (None, false) => {
                let layers = Layers::check(&self.layers)?;
                layers.check_mount_points(mount_points)?;
                Ok(RootSource::Layers(layers))
            }
            (Some(_), false) => bail!(
                "--rootfs and --layer both say what the container's / is: give one \
                 directory with --rootfs, or layers with --layer"
            ),
            (None, true) => bail!(
                "no root for the container: give --rootfs DIR, or --layer DIR once for \
                 each layer, lowest first"
            ),
        }
    }
}
// ANCHOR_END: root_args

/// The longest option string `mount(2)` takes: one page, with its closing NUL byte.
const MOUNT_OPTIONS_LIMIT: usize = 4095;

/// The layers of a root, lowest first, each checked: an absolute path to a directory,
/// none twice, none with a character that overlay's option syntax gives a meaning to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    lowest_first: Vec<PathBuf>,
}

/// The container's own directories for its overlay: `upper` takes its writes, `work` is
/// the kernel's, and `merged` is where the view is mounted (then made its `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl OverlayDirs {
    /// The three directories inside `container_dir` (`containers/ID/` under the data
    /// root).
    pub fn inside(container_dir: &Path) -> OverlayDirs {
        OverlayDirs {
            upper: container_dir.join("upper"),
            work: container_dir.join("work"),
            merged: container_dir.join("merged"),
        }
    }
}

impl Layers {
    /// Checks the `--layer` directories, given lowest first.
    pub fn check(given: &[PathBuf]) -> Result<Layers> {
        if given.is_empty() {
            bail!("no layer given: give --layer DIR, once for each layer, lowest first");
        }
        let mut seen = HashSet::new();
        let mut lowest_first = Vec::new();
        for layer in given {
            let path = check_layer(layer)?;
            if !seen.insert(path.clone()) {
                bail!(
                    "layer {layer:?} is given twice: overlay refuses a directory that is \
                     two layers at once"
                );
            }
            lowest_first.push(path);
        }
        Ok(Layers { lowest_first })
    }

    /// The layers, lowest first.
    pub fn lowest_first(&self) -> &[PathBuf] {
        &self.lowest_first
    }

    /// Checks that the union of the layers has each of `mount_points` as a directory:
    /// the highest layer that names it decides, and a whiteout there means it is gone.
    pub fn check_mount_points(&self, mount_points: &[&str]) -> Result<()> {
        for point in mount_points {
            match self.what_the_union_has(Path::new(point)) {
                Some(Kind::Directory) => {}
                Some(Kind::Other) => bail!(
                    "the layers' /{point} is not a directory, and the container needs a \
                     directory there to mount on"
                ),
                None => bail!(
                    "no layer has a directory /{point}, and the container needs one to \
                     mount on (add a layer that has it)"
                ),
            }
        }
        Ok(())
    }

    /// What a reader of the overlay finds at `inner`, looking as overlay does: from the
    /// highest layer down, the first layer that has the name decides. A whiteout (a
    /// character device 0/0) there says it was deleted. (A path through a symlink is not
    /// followed: a mount point must be a plain directory.)
    fn what_the_union_has(&self, inner: &Path) -> Option<Kind> {
        for layer in self.lowest_first.iter().rev() {
            let Ok(found) = fs::symlink_metadata(layer.join(inner)) else {
                continue;
            };
            return match found.file_type() {
                kind if kind.is_char_device() && found.rdev() == 0 => None,
                kind if kind.is_dir() => Some(Kind::Directory),
                _ => Some(Kind::Other),
            };
        }
        None
    }
}

/// What a name in the union is, as far as a mount point cares.
enum Kind {
    Directory,
    Other,
}

/// A layer: it exists, is a directory, and its absolute path has no `:` or `,` (which
/// separate overlay's layers and options) and no `\`.
fn check_layer(layer: &Path) -> Result<PathBuf> {
    let path = match layer.canonicalize() {
        Ok(path) => path,
        Err(error) => bail!("layer {layer:?} cannot be used: {error}"),
    };
    if !path.is_dir() {
        bail!("layer {layer:?} is not a directory");
    }
    let text = path.to_string_lossy();
    if text.contains([':', ',', '\\']) {
        bail!(
            "layer {path:?} has a ':', ',' or '\\' in its path, which overlay's options \
             use to separate layers and options: move or link it elsewhere"
        );
    }
    Ok(path)
}

// ANCHOR: whole_upper
/// The overlay's options, checked: `mount(2)` copies one page of them.
pub fn options(
    layers: &Layers,
    dirs: &OverlayDirs,
    in_user_namespace: bool,
) -> Result<String> {
    let mut text = option_text(layers, dirs, in_user_namespace);
    if !in_user_namespace {
        text = format!("{text},{WHOLE_UPPER}");
    }
    check_length(text, layers.lowest_first.len())
}

/// The upper directory must hold each change whole, as `diff` (and chapter 9's `commit`)
/// read it: no directory that only points at where it was renamed from
/// (`redirect_dir`), no file whose data stays in a lower layer (`metacopy`). Some kernels
/// turn these on by default for root; `userxattr` always turns them off (and refuses
/// `redirect_dir=off` beside it), so they are said for root's mounts only. Then the upper
/// directory is the same on every kernel. (Book 8.2.)
const WHOLE_UPPER: &str = "redirect_dir=off,metacopy=off";
// ANCHOR_END: whole_upper

// ANCHOR: options
/// The overlay's options: the layers highest first, as the kernel reads `lowerdir`, then
/// the container's upper and work directories. In a user namespace, `userxattr` keeps
/// overlay's own notes (opaque directories, for one) in `user.` attributes, the only
/// ones its root may write.
fn option_text(layers: &Layers, dirs: &OverlayDirs, in_user_namespace: bool) -> String {
    // TODO: EXERCISE 8.1 (book 8.2): the overlay's options, highest layer first
    // HINT: overlay reads its lower directories from the top down, the opposite of the
    // HINT: order --layer gives them in; the upper and work directories follow. Read
    // HINT: section 8.2.
    todo!("exercise 8.1: the overlay's options, highest layer first (book section 8.2)")
}
// ANCHOR_END: options

/// Refuses options `mount(2)` would cut: it copies one page of them.
fn check_length(text: String, layer_count: usize) -> Result<String> {
    if text.len() > MOUNT_OPTIONS_LIMIT {
        bail!(
            "the overlay's options for {layer_count} layers are {} bytes, and mount(2) \
             takes at most {MOUNT_OPTIONS_LIMIT}: use fewer layers, or layers with \
             shorter paths",
            text.len()
        );
    }
    Ok(text)
}

// ANCHOR: mount_root
/// In the child: the directory that becomes its `/`. For layers, the overlay mounted on
/// the merged directory, in the child's own mount namespace, made private first so the
/// mount never shows on the host.
pub fn mount_root(
    source: &RootSource,
    dirs: Option<&OverlayDirs>,
    in_user_namespace: bool,
) -> Result<PathBuf> {
    match (source, dirs) {
        (RootSource::Dir(root), _) => Ok(root.path.clone()),
        (RootSource::Layers(layers), Some(dirs)) => {
            mounts::make_private()?;
            mount(layers, dirs, in_user_namespace)?;
            Ok(dirs.merged.clone())
        }
        (RootSource::Layers(_), None) => {
            bail!("layers, but no directory to mount them on")
        }
    }
}
// ANCHOR_END: mount_root

// ANCHOR: mount
/// Mounts the overlay on `dirs.merged`, in the child's mount namespace (made private
/// first, so the mount never shows on the host).
pub fn mount(layers: &Layers, dirs: &OverlayDirs, in_user_namespace: bool) -> Result<()> {
    let options = options(layers, dirs, in_user_namespace)?;
    let overlay = Some(Path::new("overlay"));
    let merged = &dirs.merged;
    mounts::mount(
        overlay,
        merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(&options),
    )
    .map_err(|error| explain_mount_failure(error, dirs, in_user_namespace))
}
// ANCHOR_END: mount

/// Why overlay may refuse, said in one line: an upper directory on a file system that
/// cannot hold one, or a kernel too old to mount overlay in a user namespace.
fn explain_mount_failure(
    error: anyhow::Error,
    dirs: &OverlayDirs,
    in_user_namespace: bool,
) -> anyhow::Error {
    use nix::sys::statfs::{statfs, NFS_SUPER_MAGIC, OVERLAYFS_SUPER_MAGIC, TMPFS_MAGIC};
    let kind = statfs(&dirs.upper).map(|found| found.filesystem_type());
    let unfit = match kind {
        Ok(kind) if kind == OVERLAYFS_SUPER_MAGIC => Some("an overlay itself"),
        Ok(kind) if kind == NFS_SUPER_MAGIC => Some("NFS"),
        Ok(kind) if kind == TMPFS_MAGIC && in_user_namespace => {
            Some("a tmpfs, which takes user xattrs only from Linux 6.6")
        }
        _ => None,
    };
    if let Some(unfit) = unfit {
        return error.context(format!(
            "the data root is on {unfit}, where overlay cannot keep a container's own \
             layer: give --root a directory on ext4, xfs or btrfs (book 8.7)"
        ));
    }
    let release = nix::sys::utsname::uname()
        .map(|name| name.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    if in_user_namespace && kernel_older_than(&release, (5, 11)) {
        return error.context(format!(
            "overlay in a user namespace needs Linux 5.11 or newer, and this is \
             {release}: run as root, or on a newer kernel (book 8.7)"
        ));
    }
    error
}

/// Whether a kernel release such as `5.10.0-28-amd64` is older than `(major, minor)`.
fn kernel_older_than(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse::<u32>().ok());
    match (numbers.next(), numbers.next()) {
        (Some(have_major), Some(have_minor)) => (have_major, have_minor) < (major, minor),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(count: usize) -> (tempfile::TempDir, Layers) {
        let dir = tempfile::tempdir().unwrap();
        let given: Vec<PathBuf> = (0..count)
            .map(|n| {
                let layer = dir.path().join(format!("layer{n}"));
                fs::create_dir(&layer).unwrap();
                layer
            })
            .collect();
        let checked = Layers::check(&given).unwrap();
        (dir, checked)
    }

    #[test]
    fn the_options_list_the_highest_layer_first() {
        let (dir, layers) = layers(3);
        let dirs = OverlayDirs::inside(Path::new("/data/containers/0123456789ab"));
        let text = options(&layers, &dirs, false).unwrap();
        let root = dir.path().canonicalize().unwrap().display().to_string();
        assert_eq!(
            text,
            format!(
                "lowerdir={root}/layer2:{root}/layer1:{root}/layer0,\
                 upperdir=/data/containers/0123456789ab/upper,\
                 workdir=/data/containers/0123456789ab/work,\
                 redirect_dir=off,metacopy=off"
            )
        );
        let rootless = options(&layers, &dirs, true).unwrap();
        assert!(rootless.ends_with(",userxattr"), "{rootless}");
    }

    #[test]
    fn options_past_a_page_are_refused() {
        let (_dir, layers) = layers(2);
        let long = PathBuf::from(format!("/{}", "d".repeat(4000)));
        let dirs = OverlayDirs::inside(&long);
        let error = options(&layers, &dirs, false).unwrap_err().to_string();
        assert!(error.contains("mount(2) takes at most 4095"), "{error}");
    }

    #[test]
    fn a_layer_given_twice_or_missing_is_refused() {
        let (dir, _) = layers(1);
        let layer = dir.path().join("layer0");
        let twice = Layers::check(&[layer.clone(), layer])
            .unwrap_err()
            .to_string();
        assert!(twice.contains("given twice"), "{twice}");
        let missing = Layers::check(&[dir.path().join("nosuch")]).unwrap_err();
        assert!(missing.to_string().contains("cannot be used"), "{missing}");
    }

    #[test]
    fn kernel_releases_compare_by_major_then_minor() {
        assert!(kernel_older_than("5.10.0-28-amd64", (5, 11)));
        assert!(!kernel_older_than("5.11.0", (5, 11)));
        assert!(!kernel_older_than("6.1.0-57-amd64", (5, 11)));
        assert!(kernel_older_than("4.19.0", (5, 11)));
    }

    #[test]
    fn a_whiteout_in_a_higher_layer_hides_a_mount_point() {
        let (dir, layers) = layers(2);
        fs::create_dir(dir.path().join("layer0/proc")).unwrap();
        assert!(layers.check_mount_points(&["proc"]).is_ok());
        // Any user may make a whiteout since Linux 5.8.
        nix::sys::stat::mknod(
            &dir.path().join("layer1/proc"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .expect("mknod of a 0/0 character device");
        let error = layers
            .check_mount_points(&["proc"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("no layer has a directory /proc"), "{error}");
    }
}

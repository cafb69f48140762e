// solutions/08-layers/src/diff.rs without its exercise markers, made by `cargo xtask gen` for the book's folded answers.
//! `diff`: what a container changed, read from its own layer, the overlay's upper
//! directory, as `docker diff` reads it: `A` added, `C` changed, `D` deleted. Book:
//! section 8.3.
//!
//! The upper directory holds only what the container wrote: every file it made or
//! changed (copied up whole), every directory on the way to one, a whiteout for each
//! name it deleted, and an opaque mark on each directory it made again after deleting
//! it. Whether a name in it was added or changed is a question for the layers below: was
//! it there before? The walk never follows a symlink: the container made them.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::container;
use crate::dataroot::{self, DataRootArgs};
use crate::state::State;

/// `diff`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// The container, by name or id.
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    #[command(flatten)]
    pub data_root: DataRootArgs,
}

/// One change: `A /new`, `C /etc`, `D /gone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: char,
    pub path: String,
}

/// `diff CONTAINER`.
pub fn diff(args: &DiffArgs) -> Result<u8> {
    let data_root = args.data_root.data_root()?;
    let id = container::find(&data_root, &args.container)?;
    let dir = dataroot::container(&data_root, &id);
    let state = State::read(&dir)?;
    if state.layers.is_empty() {
        bail!(
            "container {} has no layer of its own: its root is the directory {} \
             (--rootfs), written in place",
            args.container,
            state.root
        );
    }
    let layers = Lowers::checked(&state.layers)?;
    for change in changes(&dir.join("upper"), &layers)? {
        println!("{} {}", change.kind, change.path);
    }
    Ok(0)
}

/// The layers below the upper directory, highest first.
pub struct Lowers {
    highest_first: Vec<PathBuf>,
}

impl Lowers {
    /// The layers a state names, lowest first, each checked: read back from the data
    /// root, they are absolute paths to directories before anything looks in them.
    pub fn checked(lowest_first: &[PathBuf]) -> Result<Lowers> {
        for layer in lowest_first {
            if !layer.is_absolute() || !layer.is_dir() {
                bail!("layer {layer:?} of the container's state is not a directory");
            }
        }
        let highest_first = lowest_first.iter().rev().cloned().collect();
        Ok(Lowers { highest_first })
    }

    /// What the layers show at `inner` (relative), as overlay would without the upper:
    /// the highest layer that has the name decides; a whiteout there means nothing.
    fn find(&self, inner: &Path) -> Option<(PathBuf, fs::Metadata)> {
        for layer in &self.highest_first {
            let path = layer.join(inner);
            if let Ok(found) = fs::symlink_metadata(&path) {
                return (!is_whiteout(&found)).then_some((path, found));
            }
            if hides_below(layer, inner) {
                return None;
            }
        }
        None
    }

    /// The names the layers show in directory `inner`.
    fn names_in(&self, inner: &Path) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        for layer in &self.highest_first {
            if let Ok(entries) = fs::read_dir(layer.join(inner)) {
                for entry in entries.flatten() {
                    names.insert(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        names
            .into_iter()
            .filter(|name| self.find(&inner.join(name)).is_some())
            .collect()
    }
}

/// Whether `layer`, which does not have `inner` itself, hides it in the layers below: a
/// directory on the way that is opaque, or a whiteout or a file where a directory on
/// the way would be.
fn hides_below(layer: &Path, inner: &Path) -> bool {
    let mut on_the_way = layer.to_path_buf();
    let parents: Vec<_> = inner.components().collect();
    for part in &parents[..parents.len().saturating_sub(1)] {
        on_the_way.push(part);
        match fs::symlink_metadata(&on_the_way) {
            Err(_) => return false,
            Ok(found) if !found.is_dir() => return true,
            Ok(_) if is_opaque(&on_the_way) => return true,
            Ok(_) => {}
        }
    }
    false
}

fn is_whiteout(found: &fs::Metadata) -> bool {
    found.file_type().is_char_device() && found.rdev() == 0
}

// ANCHOR: changes
/// The changes recorded in `upper`, in the order of a walk sorted by name, a directory
/// before what is in it.
pub fn changes(upper: &Path, lowers: &Lowers) -> Result<Vec<Change>> {
    let mut found = Vec::new();
    walk(upper, Path::new(""), lowers, &mut found)?;
    Ok(found)
}

fn walk(
    upper: &Path,
    inner: &Path,
    lowers: &Lowers,
    found: &mut Vec<Change>,
) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(upper.join(inner))
        .with_context(|| format!("cannot read {:?}", upper.join(inner)))?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let path = inner.join(&name);
        let here = fs::symlink_metadata(upper.join(&path))?;
        let kind = change_kind(&here, lowers.find(&path).is_some());
        found.push(Change {
            kind,
            path: format!("/{}", path.display()),
        });
        if kind != 'D' && here.is_dir() {
            opaque_deletions(&upper.join(&path), &path, lowers, found);
            walk(upper, &path, lowers, found)?;
        }
    }
    Ok(())
}
// ANCHOR_END: changes

// ANCHOR: change_kind
/// What a name in the upper layer says: `D`eleted for a whiteout, `C`hanged if the
/// layers below had the name, `A`dded if they did not.
fn change_kind(here: &fs::Metadata, was_there: bool) -> char {
    if is_whiteout(here) {
        'D'
    } else if was_there {
        'C'
    } else {
        'A'
    }
}
// ANCHOR_END: change_kind

/// A directory made again after it was deleted is opaque: what the layers below had in
/// it is gone, though no whiteout names it. Each of those names is a deletion (those the
/// container made again are in the upper, and changes of their own).
fn opaque_deletions(dir: &Path, inner: &Path, lowers: &Lowers, found: &mut Vec<Change>) {
    if !is_opaque(dir) {
        return;
    }
    for name in lowers.names_in(inner) {
        if fs::symlink_metadata(dir.join(&name)).is_err() {
            let shown = format!("/{}", inner.join(&name).display());
            found.push(Change {
                kind: 'D',
                path: shown,
            });
        }
    }
}

/// Whether overlay marked `dir` opaque: `trusted.overlay.opaque` as the machine's root
/// mounts it, `user.overlay.opaque` in a user namespace.
pub fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| xattr(dir, name).as_deref() == Some(b"y".as_slice()))
}

/// The value of extended attribute `name` of `path` itself (not of a symlink's target).
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path_c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let name_c = std::ffi::CString::new(name).ok()?;
    let mut value = [0u8; 8];
    // SAFETY: both strings are NUL-terminated and outlive the call; the buffer's pointer
    // and length describe one array.
    let size = unsafe {
        libc::lgetxattr(
            path_c.as_ptr(),
            name_c.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    let size = usize::try_from(size).ok()?;
    Some(value[..size].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_opaque(dir: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: the strings are NUL-terminated and the value is one byte.
        let set = unsafe {
            libc::lsetxattr(
                path.as_ptr(),
                c"user.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
    }

    #[test]
    fn a_name_an_opaque_directory_above_hides_is_added_not_changed() {
        let dir = tempfile::tempdir().unwrap();
        let [low, middle, upper] = ["low", "middle", "upper"].map(|n| dir.path().join(n));
        fs::create_dir_all(low.join("d")).unwrap();
        fs::write(low.join("d/x"), "low").unwrap();
        fs::create_dir_all(middle.join("d")).unwrap();
        set_opaque(&middle.join("d"));
        fs::create_dir_all(upper.join("d")).unwrap();
        fs::write(upper.join("d/x"), "new").unwrap();
        let lowers = Lowers::checked(&[low, middle]).unwrap();
        let found = changes(&upper, &lowers).unwrap();
        let shown: Vec<String> = found
            .iter()
            .map(|c| format!("{} {}", c.kind, c.path))
            .collect();
        assert_eq!(shown, ["C /d", "A /d/x"]);
    }
}

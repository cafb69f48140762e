//! A container's own directory under the data root, `containers/ID/`, with its overlay's
//! upper, work and merged directories, removed with all it holds when the container is
//! done. Book: section 8.2.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::unistd::Uid;

use crate::dataroot;
use crate::overlay::OverlayDirs;
use crate::records;

/// `containers/ID/` and the overlay's directories in it. Dropping it removes the whole
/// directory: what the container wrote goes with it.
#[derive(Debug)]
pub struct ContainerDir {
    path: PathBuf,
    pub overlay: OverlayDirs,
}

impl ContainerDir {
    /// Makes container `id`'s directory and the empty upper, work and merged ones in it.
    pub fn make(data_root: &Path, id: &str) -> Result<ContainerDir> {
        records::check_id(id).map_err(anyhow::Error::msg)?;
        let path = dataroot::container(data_root, id);
        records::make_dir(&path)?;
        let made = ContainerDir {
            overlay: OverlayDirs::inside(&path),
            path,
        };
        for dir in [
            &made.overlay.upper,
            &made.overlay.work,
            &made.overlay.merged,
        ] {
            fs::create_dir(dir).with_context(|| format!("cannot make {dir:?}"))?;
        }
        Ok(made)
    }
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        if let Err(error) = remove_tree(&self.path) {
            eprintln!("byoc: cannot remove {:?}: {error:#}", self.path);
        }
    }
}

// ANCHOR: remove_tree
/// Removes `dir` and all it holds, never following a symlink out of it (the container
/// made them: a link to the host's `/` in the upper is only a link). A directory the
/// container closed to everyone (`chmod 000`), and the kernel's own `work/work`, which
/// it makes with mode 0, are opened again first when they are ours, as an ordinary
/// user may not otherwise look inside them.
pub fn remove_tree(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            open_closed_directories(dir)?;
            fs::remove_dir_all(dir).with_context(|| format!("cannot remove {dir:?}"))
        }
    }
}
// ANCHOR_END: remove_tree

/// Gives the owner back read, write and search on every directory under `dir` that
/// this process owns, looking at each entry without following symlinks.
fn open_closed_directories(dir: &Path) -> Result<()> {
    let found = fs::symlink_metadata(dir)?;
    if !found.is_dir() {
        return Ok(());
    }
    if found.uid() == Uid::effective().as_raw() && found.mode() & 0o700 != 0o700 {
        let mode = (found.mode() & 0o7777) | 0o700;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    for entry in fs::read_dir(dir)? {
        open_closed_directories(&entry?.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_directory_and_a_symlink_out_are_removed_and_the_target_stays() {
        let host = tempfile::tempdir().unwrap();
        let outside = host.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), "the host's").unwrap();
        let dir = host.path().join("container");
        fs::create_dir_all(dir.join("upper/closed/inner")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("upper/link")).unwrap();
        let closed = dir.join("upper/closed");
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
        assert_eq!(
            fs::read_to_string(outside.join("keep")).unwrap(),
            "the host's"
        );
    }
}

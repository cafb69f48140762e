// Your copy of solutions/01-chroot/src/rootfs.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The root filesystem: a directory tree that becomes the container's `/`. Book: section
//! 1.3.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::unistd;

use crate::inroot::RootDir;
use crate::trace;

/// Checks that the root filesystem exists and is not the host's own `/`, before anything
/// is started, and returns its absolute path (later chapters mount it, and mounts want
/// absolute paths).
pub fn check(rootfs: &Path) -> Result<PathBuf> {
    let absolute = rootfs.canonicalize().map_err(|error| match error.kind() {
        std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "root filesystem {rootfs:?} cannot be reached: a directory on its path is \
             closed to you ({error})"
        ),
        _ => anyhow::anyhow!(
            "root filesystem {rootfs:?} not found (build one with `cargo xtask rootfs`): {error}"
        ),
    })?;
    if !absolute.is_dir() {
        bail!("root filesystem {rootfs:?} is not a directory");
    }
    if is_host_root(&absolute)? {
        // Every step after this one writes into the root filesystem (a mount point for
        // the old root, a /dev, a /tmp): on the host's own `/` that would change the
        // host.
        bail!(
            "root filesystem {rootfs:?} is the host's own \"/\": a container needs a \
             tree of its own (build one with `cargo xtask rootfs`)"
        );
    }
    Ok(absolute)
}

/// Is `dir` the host's `/`, by another name? Two paths are the same directory when their
/// device and inode numbers are the same, whatever links or bind mounts lead there.
fn is_host_root(dir: &Path) -> Result<bool> {
    let this = dir
        .metadata()
        .with_context(|| format!("cannot stat {dir:?}"))?;
    let root = Path::new("/").metadata().context("cannot stat \"/\"")?;
    Ok((this.dev(), this.ino()) == (root.dev(), root.ino()))
}

/// Checks that `rootfs` has the directory `name` for a later step to mount on, looked up
/// inside the root as the set-up will look it up (book 2.5): a missing one, or a symlink
/// that leads nowhere inside the root, would only show up in the middle of the set-up.
pub fn check_mount_point(rootfs: &Path, name: &str) -> Result<()> {
    let root = RootDir::open_for_checks(rootfs)?;
    if root.is_missing(name) {
        bail!(
            "your root filesystem {rootfs:?} has no /{name} to mount the container's \
             /{name} on (build one with `cargo xtask rootfs`)"
        );
    }
    root.find_dir(name)?;
    Ok(())
}

// ANCHOR: enter
/// Makes `rootfs` this process's `/`, and moves into it.
pub fn enter(rootfs: &Path) -> Result<()> {
    // TODO: EXERCISE 1.2 (book 1.3): make `rootfs` this process's "/" and stand inside it
    // HINT: changing what "/" means does not move the process: its current directory is
    // HINT: still outside the new root. Narrate each call with trace::syscall: the tests
    // HINT: read the trace. Read section 1.3.
    todo!(
        "exercise 1.2: make `rootfs` this process's \"/\" and stand inside it (book \
         section 1.3)"
    )
}
// ANCHOR_END: enter

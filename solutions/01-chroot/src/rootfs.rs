//! The root filesystem: a directory tree that becomes the container's `/`. Book: section 1.3.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::unistd;

use crate::trace;

/// Checks that the root filesystem exists before anything is started, and returns its
/// absolute path (later chapters mount it, and mounts want absolute paths).
pub fn check(rootfs: &Path) -> Result<PathBuf> {
    let absolute = rootfs.canonicalize().with_context(|| {
        format!("root filesystem {rootfs:?} not found (build one with `cargo xtask rootfs`)")
    })?;
    if !absolute.is_dir() {
        bail!("root filesystem {rootfs:?} is not a directory");
    }
    Ok(absolute)
}

// ANCHOR: enter
/// Makes `rootfs` this process's `/`, and moves into it.
pub fn enter(rootfs: &Path) -> Result<()> {
    // EXERCISE 1.2 (book 1.3): make `rootfs` this process's "/" and stand inside it
    // HINT: nix::unistd::chroot changes what "/" means but does not move the process:
    // HINT: its current directory is still outside. Follow it with chdir("/").
    // HINT: wrap each call in trace::syscall so --trace shows it.
    // TRIVIAL: Ok(())
    trace::syscall(format_args!("chroot({rootfs:?})"), unistd::chroot(rootfs))?;
    trace::syscall(format_args!("chdir(\"/\")"), unistd::chdir("/"))?;
    Ok(())
    // END EXERCISE 1.2
}
// ANCHOR_END: enter

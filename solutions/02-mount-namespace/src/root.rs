//! The container's root, in order: every step of chapter 2 in one place, so later chapters
//! call `root::setup` and add their own steps after it. Book: section 2.4.

use std::path::Path;

use anyhow::Result;
use nix::mount::MsFlags;

use crate::{devices, mounts};

// ANCHOR: setup
/// Gives this process (already in a new mount namespace) `rootfs` as its `/`.
pub fn setup(rootfs: &Path) -> Result<()> {
    mounts::make_private()?;
    mounts::bind_onto_itself(rootfs)?;
    devices::populate(&rootfs.join("dev"))?;
    let no_devices_no_setuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mounts::mount_tmpfs(&rootfs.join("tmp"), no_devices_no_setuid, "mode=1777")?;
    mounts::pivot_root(rootfs)
}
// ANCHOR_END: setup

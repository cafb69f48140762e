//! The container's root, in order: every step of chapter 2 in one place, driven by a
//! plan, so a later chapter changes a step by changing the plan, not by copying the
//! steps. Book: section 2.4.

use std::path::PathBuf;

use anyhow::Result;
use nix::mount::MsFlags;

use crate::devices::{self, MakeDevice};
use crate::inroot::RootDir;
use crate::mounts;

/// How the container's `/` is made: which directory becomes it, and how its `/dev` is
/// filled.
pub struct RootPlan {
    /// The root filesystem, an absolute path on the host.
    pub rootfs: PathBuf,
    /// `devices::mknod_device` here; chapter 5 bind-mounts the host's devices instead.
    pub make_device: MakeDevice,
}

// ANCHOR: setup
/// Gives this process (already in a new mount namespace) the plan's root as its `/`.
pub fn setup(plan: &RootPlan) -> Result<()> {
    prepare(plan)?;
    mounts::pivot_root(&plan.rootfs)
}

/// Every step but the last: the root is ready, and the host's tree still in reach. A
/// later chapter that must mount something before `pivot_root` calls this, then
/// `pivot_root`, and finds its mount points with the root it returns: inside the root,
/// never by joining strings (book 2.5).
pub fn prepare(plan: &RootPlan) -> Result<RootDir> {
    mounts::make_private()?;
    mounts::bind_onto_itself(&plan.rootfs)?;
    let root = RootDir::open(&plan.rootfs)?;
    devices::populate(&root, plan.make_device)?;
    let tmp = root.find_dir("tmp")?;
    let no_devices_no_setuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mounts::mount_tmpfs(&tmp.path(), no_devices_no_setuid, "mode=1777")?;
    Ok(root)
}
// ANCHOR_END: setup

// solutions/03-pid-namespace/src/procfs.rs without its exercise markers, made by `cargo xtask gen` for the book's folded answers.
//! A fresh `/proc`. A procfs shows the processes of the PID namespace that mounted it, so
//! the container needs its own: the host's would show every process on the machine. Book:
//! 3.2.

use std::path::Path;

use anyhow::Result;
use nix::mount::MsFlags;

use crate::mounts;

// ANCHOR: mount_proc
/// Mounts a procfs for this PID namespace on `target`: `/proc`, once the root is the
/// container's.
pub fn mount_proc(target: &Path) -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mounts::mount(Some(Path::new("proc")), target, Some("proc"), flags, None)
}
// ANCHOR_END: mount_proc

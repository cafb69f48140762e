// Your copy of solutions/03-pid-namespace/src/procfs.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
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
    // TODO: EXERCISE 3.2 (book 3.2): mount a new procfs on target
    // HINT: a procfs shows the processes of the PID namespace of whoever mounts it.
    // HINT: Nothing in it needs set-user-ID bits, device files or programs. Read section
    // HINT: 3.2.
    todo!("exercise 3.2: mount a new procfs on target (book section 3.2)")
}
// ANCHOR_END: mount_proc

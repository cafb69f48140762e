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
    // EXERCISE 3.2 (book 3.2): mount a new procfs on target
    // HINT: a procfs shows the processes of the PID namespace of whoever mounts it.
    // HINT: Nothing in it needs set-user-ID bits, device files or programs. Read section
    // HINT: 3.2.
    // HINT 2: mounts::mount, with source "proc" and file system type "proc", no data, and
    // HINT 2: the flags MS_NOSUID, MS_NODEV and MS_NOEXEC.
    // HINT 3: let flags = <the three MsFlags joined with |>;
    // HINT 3: mounts::mount(Some(Path::new("proc")), target, Some("proc"), flags, None)
    // TRIVIAL: Ok(())
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mounts::mount(Some(Path::new("proc")), target, Some("proc"), flags, None)
    // END EXERCISE 3.2
}
// ANCHOR_END: mount_proc

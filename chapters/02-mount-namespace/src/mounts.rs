// Your copy of solutions/02-mount-namespace/src/mounts.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Mounts: making the mount table private, bind mounts, tmpfs, and `pivot_root`.
//! Book: sections 2.1 and 2.2.

use std::path::Path;

use anyhow::Result;
use nix::errno::Errno;
use nix::mount::{self, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd;

use crate::trace;

/// `mount(2)`, narrated. `None` is C's `NULL`.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    let or_null = |text: Option<String>| text.unwrap_or_else(|| "NULL".to_string());
    let call = format!(
        "mount({}, {target:?}, {}, {}, {})",
        or_null(source.map(|s| format!("{s:?}"))),
        or_null(fstype.map(|s| format!("{s:?}"))),
        trace::flags(flags),
        or_null(data.map(|s| format!("{s:?}"))),
    );
    let result = mount::mount(source, target, fstype, flags, data);
    trace::syscall(format_args!("{call}"), result)?;
    Ok(())
}

// ANCHOR: make_private
/// Stops mount events from flowing between this mount namespace and the host's.
pub fn make_private() -> Result<()> {
    // TODO: EXERCISE 2.1 (book 2.1): make every mount in this namespace private,
    //       recursively
    // HINT: a new mount namespace starts as a copy, and copies of "shared" mounts still
    // HINT: pass mount events to the host. Change the propagation of every mount, from
    // HINT: "/" down. Section 2.1 explains propagation.
    todo!(
        "exercise 2.1: make every mount in this namespace private, recursively (book \
         section 2.1)"
    )
}
// ANCHOR_END: make_private

/// Mounts a directory on itself. `pivot_root` needs the new root to be a mount point,
/// and a plain directory in the host's tree is not one.
pub fn bind_onto_itself(dir: &Path) -> Result<()> {
    mount(
        Some(dir),
        dir,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
}

/// A fresh, empty, memory-backed filesystem at `target`.
pub fn mount_tmpfs(target: &Path, flags: MsFlags, options: &str) -> Result<()> {
    mount(
        Some(Path::new("tmpfs")),
        target,
        Some("tmpfs"),
        flags,
        Some(options),
    )
}

// ANCHOR: pivot
/// Makes `new_root` the root of this mount namespace and detaches the old one, so no
/// path, not even `..` from `/`, leads back to the host's files. Nothing is written in
/// the new root: the old one is stacked on top of it, not parked in a directory of it.
pub fn pivot_root(new_root: &Path) -> Result<()> {
    trace::syscall(format_args!("chdir({new_root:?})"), unistd::chdir(new_root))?;
    // TODO: EXERCISE 2.2 (book 2.2): swap the roots, then detach the old one
    // HINT: we stand in new_root. One call makes it "/" and stacks the old root on top of
    // HINT: it, right where we stand; a second takes the old root away. Narrate each with
    // HINT: trace::syscall. Section 2.2 shows both.
    todo!("exercise 2.2: swap the roots, then detach the old one (book section 2.2)")
}
// ANCHOR_END: pivot

/// Creates a directory, and is content if it is already there.
pub fn make_dir_if_missing(dir: &Path) -> Result<()> {
    match unistd::mkdir(dir, Mode::from_bits_truncate(0o700)) {
        Err(Errno::EEXIST) => Ok(()),
        result => Ok(trace::syscall(
            format_args!("mkdir({dir:?}, 0700)"),
            result,
        )?),
    }
}

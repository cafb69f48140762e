// Your copy of solutions/02-mount-namespace/src/devices.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! A minimal `/dev`: a fresh tmpfs with the six device files programs expect, made with
//! `mknod(2)`. The host's `/dev`, with its disks, is not there. Book: section 2.3.

use std::path::Path;

use anyhow::Result;
use nix::fcntl::AT_FDCWD;
use nix::mount::MsFlags;
use nix::sys::stat::{self, FchmodatFlags, Mode, SFlag};

use crate::inroot::RootDir;
use crate::mounts;
use crate::trace;

/// A character device: a name and the kernel's (major, minor) numbers for it.
pub struct Device {
    pub name: &'static str,
    pub major: u64,
    pub minor: u64,
}

// ANCHOR: devices
/// The devices every container gets, with the numbers the kernel gave them
/// (see the kernel's Documentation/admin-guide/devices.txt).
pub const DEVICES: [Device; 6] = [
    Device {
        name: "null",
        major: 1,
        minor: 3,
    },
    Device {
        name: "zero",
        major: 1,
        minor: 5,
    },
    Device {
        name: "full",
        major: 1,
        minor: 7,
    },
    Device {
        name: "random",
        major: 1,
        minor: 8,
    },
    Device {
        name: "urandom",
        major: 1,
        minor: 9,
    },
    Device {
        name: "tty",
        major: 5,
        minor: 0,
    },
];
// ANCHOR_END: devices

/// How one device file gets into the container's `/dev`. Chapter 2 makes it with `mknod`;
/// inside a user namespace, where `mknod` is not allowed, chapter 5 bind-mounts the
/// host's.
pub type MakeDevice = fn(&Path, &Device) -> Result<()>;

// ANCHOR: populate
/// Mounts a tmpfs on the root's `/dev` and puts each device file in it with
/// `make_device`.
pub fn populate(root: &RootDir, make_device: MakeDevice) -> Result<()> {
    // Not MS_NODEV, which is what /tmp gets: device files on a nodev mount cannot be
    // opened.
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    mounts::mount_tmpfs(&root.find_dir("dev")?.path(), flags, "mode=755")?;
    // Looked up again: the descriptor found before the mount is the directory under the
    // tmpfs. This one is the tmpfs, new and empty, so the names made in it are ours.
    let dev = root.find_dir("dev")?;
    for device in &DEVICES {
        make_device(&dev.path().join(device.name), device)?;
    }
    mount_devpts(&dev.path())
}

/// Creates one character device file, readable and writable by everyone.
pub fn mknod_device(path: &Path, device: &Device) -> Result<()> {
    // TODO: EXERCISE 2.3 (book 2.3): create the character device file `path` for `device`
    // HINT: a device file is made, not copied: it holds only a type (character), a major
    // HINT: and a minor number, and a mode. The umask takes bits off that mode, so set it
    // HINT: again. Narrate each call with trace::syscall. Read section 2.3.
    todo!(
        "exercise 2.3: create the character device file `path` for `device` (book \
         section 2.3)"
    )
}
// ANCHOR_END: populate

// ANCHOR: devpts
/// Mounts a devpts of the container's own on `dev/pts`, and points `dev/ptmx` at its
/// `ptmx`. `newinstance` makes it a new set of pseudo-terminals, not the host's: a
/// terminal the container opens is numbered from 0, and the host's are not in it.
pub fn mount_devpts(dev: &Path) -> Result<()> {
    let pts = dev.join("pts");
    mounts::make_dir_if_missing(&pts)?;
    mounts::mount(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    let ptmx = dev.join("ptmx");
    let linked = nix::unistd::symlinkat("pts/ptmx", AT_FDCWD, &ptmx);
    trace::syscall(format_args!("symlink(\"pts/ptmx\", {ptmx:?})"), linked)?;
    Ok(())
}
// ANCHOR_END: devpts

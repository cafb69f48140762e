//! The config's mounts, in order, inside the root; then the container's `/dev`; and,
//! once the root is `/`, the paths hidden or made read-only. Book: section 11.4.
//!
//! Chapters 2 to 8 decided the container's mounts themselves: a `/dev`, a `/proc`, a
//! `/tmp`. An OCI config lists them: podman's has ten, from `/proc` to binds of files it
//! wrote for the container (`/etc/hosts`, `/etc/hostname`). Each mount point is found
//! inside the root (book 2.5), and made there when missing, so a symlink in an image
//! cannot aim a mount at the host.

use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::fcntl::{self, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{self, Mode, SFlag};
use nix::unistd::{self, Gid, Uid};

use crate::devices::{MakeDevice, DEVICES};
use crate::hierarchy::Hierarchy;
use crate::inroot::RootDir;
use crate::plan::{DeviceNode, MountKind, Plan, SpecMount};
use crate::volumes::{flags_kept, make_dirs};
use crate::{inside, mounts, trace};

/// The flags a bind mount takes in a second call: `mount(2)` ignores `ro`, `nosuid`
/// and the rest on the call that makes the bind.
const REMOUNT_FLAGS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOATIME)
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// The links every container's `/dev` has, as runc and crun make them.
const DEV_LINKS: [(&str, &str); 6] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
];

// ANCHOR: mount_all
/// Before `pivot_root`: each of the config's mounts, in order; then, when the config
/// gave the container a `/dev` of its own, the devices in it.
pub fn mount_all(
    plan: &Plan,
    root: &RootDir,
    hierarchy: Option<&Hierarchy>,
    make_device: MakeDevice,
) -> Result<()> {
    for mount in &plan.mounts {
        mount_one(mount, root, hierarchy)
            .with_context(|| format!("cannot mount on {}", mount.destination))?;
    }
    if plan.mounts.iter().any(|mount| mount.destination == "/dev") {
        populate_dev(root, &plan.devices, make_device)?;
    }
    Ok(())
}
// ANCHOR_END: mount_all

fn mount_one(
    mount: &SpecMount,
    root: &RootDir,
    hierarchy: Option<&Hierarchy>,
) -> Result<()> {
    let flags = mount.options.flags;
    let destination = mount.destination.as_str();
    match &mount.kind {
        MountKind::Bind { source } => {
            make_mount_point(root, destination, !source.is_dir())?;
            let target = root.find(destination)?;
            let bind = MsFlags::MS_BIND | (flags & MsFlags::MS_REC);
            mounts::mount(Some(source), &target.path(), None, bind, None)?;
            let asked = flags & REMOUNT_FLAGS;
            if !asked.is_empty() {
                // Found again: the name now leads to the new mount.
                let mounted = root.find(destination)?;
                let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | asked;
                let kept = flags_kept(&mounted.path())?;
                mounts::mount(None, &mounted.path(), None, remount | kept, None)?;
            }
        }
        MountKind::Cgroup => match hierarchy {
            Some(hierarchy) => {
                make_mount_point(root, destination, false)?;
                inside::mount_cgroup_fs(root, hierarchy)?;
            }
            None => {
                // An ordinary user's container without a cgroup of its own (rootless
                // podman on v1): there is nothing of its own to show.
                trace::say(format_args!("no cgroup of its own: no cgroup view inside"));
                return Ok(());
            }
        },
        MountKind::Fresh { fstype, source } => {
            make_mount_point(root, destination, false)?;
            let target = root.find_dir(destination)?;
            let data = Some(mount.options.data.as_str()).filter(|data| !data.is_empty());
            let source = Path::new(source);
            mounts::mount(Some(source), &target.path(), Some(fstype), flags, data)?;
        }
    }
    if let Some(propagation) = mount.options.propagation {
        let mounted = root.find(destination)?;
        mounts::mount(None, &mounted.path(), None, propagation, None)?;
    }
    Ok(())
}

/// Makes a missing mount point inside the root: its directories, and for a file that is
/// bound, an empty file (a file can only be mounted on a file).
fn make_mount_point(root: &RootDir, destination: &str, is_file: bool) -> Result<()> {
    if destination == "/" {
        bail!("a mount on / itself: the root is the config's root.path");
    }
    if !root.is_missing(destination) {
        return Ok(());
    }
    let path = Path::new(destination);
    if !is_file {
        return make_dirs(root, path);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    make_dirs(root, parent)?;
    let name = path.file_name().context("a mount point has no name")?;
    let parent_dir = match parent == Path::new("/") {
        true => None,
        false => Some(root.find_dir(&parent.to_string_lossy())?),
    };
    let flags = OFlag::O_CREAT
        | OFlag::O_EXCL
        | OFlag::O_WRONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o644);
    let made = match &parent_dir {
        Some(dir) => fcntl::openat(dir, name, flags, mode),
        None => fcntl::openat(root.as_fd(), name, flags, mode),
    };
    trace::syscall(
        format_args!("openat({destination:?}, O_CREAT|O_EXCL)"),
        made,
    )?;
    Ok(())
}

// ANCHOR: populate_dev
/// The config's `/dev` is an empty tmpfs: the six devices every container gets
/// (chapter 2's), the config's own, and the links programs expect (`/dev/fd`,
/// `/dev/stdin`, `/dev/ptmx` to the container's own `devpts`).
fn populate_dev(
    root: &RootDir,
    extra: &[DeviceNode],
    make_device: MakeDevice,
) -> Result<()> {
    let dev = root.find_dir("dev")?;
    for device in &DEVICES {
        if root.is_missing(&format!("dev/{}", device.name)) {
            make_device(&dev.path().join(device.name), device)?;
        }
    }
    for node in extra {
        make_node(root, node)?;
    }
    for (name, target) in DEV_LINKS {
        if root.is_missing(&format!("dev/{name}")) {
            let made = unistd::symlinkat(target, fcntl::AT_FDCWD, &dev.path().join(name));
            trace::syscall(format_args!("symlink({target:?}, /dev/{name})"), made)?;
        }
    }
    Ok(())
}
// ANCHOR_END: populate_dev

/// One of `linux.devices`, with its mode and owner.
fn make_node(root: &RootDir, node: &DeviceNode) -> Result<()> {
    let name = format!("/dev/{}", node.name);
    let path = Path::new(&name);
    make_dirs(root, path.parent().unwrap_or(Path::new("/dev")))?;
    let parent =
        root.find_dir(&path.parent().unwrap_or(Path::new("/dev")).to_string_lossy())?;
    let file_name = path.file_name().context("a device has no name")?;
    let at = parent.path().join(file_name);
    let kind = match node.kind {
        'b' => SFlag::S_IFBLK,
        'p' => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let device = stat::makedev(node.major, node.minor);
    let mode = Mode::from_bits_truncate(node.mode);
    let made = stat::mknod(&at, kind, mode, device);
    trace::syscall(
        format_args!("mknod({name:?}, {:?}, {}:{})", kind, node.major, node.minor),
        made,
    )?;
    let owner = unistd::fchownat(
        fcntl::AT_FDCWD,
        &at,
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    trace::syscall(
        format_args!("chown({name:?}, {}, {})", node.uid, node.gid),
        owner,
    )?;
    Ok(())
}

// ANCHOR: finish_inside
/// After `pivot_root`, inside: the sysctls, then the paths to hide and to make
/// read-only (under `/proc` and `/sys`, which the config's mounts have just made), then
/// the root itself read-only if asked. Paths that do not exist are passed over, as the
/// spec says.
pub fn finish_inside(plan: &Plan) -> Result<()> {
    for (name, value) in &plan.sysctl {
        let file = format!("/proc/sys/{}", name.replace('.', "/"));
        std::fs::write(&file, value)
            .with_context(|| format!("cannot set the sysctl {name} to {value:?}"))?;
    }
    for path in &plan.masked_paths {
        mask(Path::new(path))?;
    }
    for path in &plan.readonly_paths {
        make_read_only(Path::new(path), MsFlags::MS_REC)?;
    }
    if plan.readonly_root {
        make_read_only(Path::new("/"), MsFlags::empty())?;
    }
    if let Some(propagation) = plan.rootfs_propagation {
        mounts::mount(None, Path::new("/"), None, propagation, None)?;
    }
    Ok(())
}
// ANCHOR_END: finish_inside

/// Hides a path: an empty read-only tmpfs on a directory, `/dev/null` on a file.
fn mask(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        let flags = MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        mounts::mount(
            Some(Path::new("tmpfs")),
            path,
            Some("tmpfs"),
            flags,
            Some("size=0"),
        )
    } else {
        mounts::mount(
            Some(Path::new("/dev/null")),
            path,
            None,
            MsFlags::MS_BIND,
            None,
        )
    }
}

/// Binds a path on itself, then makes that mount read-only (keeping the flags it had).
fn make_read_only(path: &Path, recursive: MsFlags) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    if path != Path::new("/") {
        mounts::mount(Some(path), path, None, MsFlags::MS_BIND | recursive, None)?;
    }
    let read_only =
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | recursive;
    mounts::mount(None, path, None, read_only | flags_kept(path)?, None)
}

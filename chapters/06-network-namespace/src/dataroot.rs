// Your copy of solutions/06-network-namespace/src/dataroot.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The data root: where the runtime keeps what outlives one system call - leases, each
//! container's own files, and from chapter 8 on, layers and images. Book: section 6.3.
//!
//! This module owns the layout; no other code joins names under the data root itself:
//!
//! ```text
//! DATA_ROOT/
//!   networks/BRIDGE.leases  the addresses a bridge has given, and to whom (chapter 6)
//!   cgroups/ID              which runtime made container ID's cgroup, under which
//!                           parent (7)
//!   containers/ID/          container ID's own files: hosts, hostname, resolv.conf (6);
//!                           from chapter 8 its state, and its overlay's upper and work
//!   names/NAME              the id of the container named NAME (8)
//!   volumes/NAME/           named volumes (8)
//!   images/                 an OCI image layout: blobs/sha256/..., index.json (9)
//!   images.lock             held by whatever changes the images or layers (9)
//!   layers/CHAIN_ID/        each image layer, unpacked once (9)
//!   ingest/                 downloads in progress (10)
//!   tmp/                    what is being made, renamed into place when whole (9-10)
//! ```
//!
//! The runtime acts on what it reads back from there (it removes directories, kills the
//! processes of cgroups), so the data root is checked before anything is written: a
//! directory of its own, on a real file system, the caller's, writable by no one else.

use std::env;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::statfs::{self, FsType};

use crate::records;
use crate::userns::is_host_root;

/// File systems the kernel makes up: a write there changes the kernel, not a disk.
/// (devtmpfs says it is a tmpfs: it is known by where it is, `/dev`.)
const PSEUDO_FILE_SYSTEMS: [(FsType, &str); 13] = [
    (statfs::PROC_SUPER_MAGIC, "proc"),
    (statfs::SYSFS_MAGIC, "sysfs"),
    (statfs::CGROUP_SUPER_MAGIC, "cgroup"),
    (statfs::CGROUP2_SUPER_MAGIC, "cgroup2"),
    (statfs::DEVPTS_SUPER_MAGIC, "devpts"),
    (statfs::DEBUGFS_MAGIC, "debugfs"),
    (statfs::SECURITYFS_MAGIC, "securityfs"),
    (statfs::TRACEFS_MAGIC, "tracefs"),
    (statfs::BPF_FS_MAGIC, "bpf"),
    (statfs::NSFS_MAGIC, "nsfs"),
    (statfs::SELINUX_MAGIC, "selinuxfs"),
    (FsType(0x6165_676c), "pstore"),
    (FsType(0x6265_6570), "configfs"),
];

/// Where the bridges' lease files are.
pub fn networks(data_root: &Path) -> PathBuf {
    data_root.join("networks")
}

/// Where the records of containers' cgroups are, one file per container id.
pub fn cgroup_records(data_root: &Path) -> PathBuf {
    data_root.join("cgroups")
}

/// Container `id`'s own directory. `id` must be a container id (12 hex digits,
/// [`records::check_id`]): it names a directory the runtime may remove.
pub fn container(data_root: &Path, id: &str) -> PathBuf {
    containers(data_root).join(id)
}

/// Where every container's own directory is.
pub fn containers(data_root: &Path) -> PathBuf {
    data_root.join("containers")
}

/// Where containers' names are: `names/NAME` holds the id of the container that has it.
pub fn names(data_root: &Path) -> PathBuf {
    data_root.join("names")
}

/// Where the named volumes are, a directory each.
pub fn volumes(data_root: &Path) -> PathBuf {
    data_root.join("volumes")
}

/// Named volume `name`'s directory. `name` must be a checked name (it names a directory
/// the runtime may remove).
pub fn volume(data_root: &Path, name: &str) -> PathBuf {
    volumes(data_root).join(name)
}

/// The image store, itself an OCI image layout (chapter 9).
pub fn images(data_root: &Path) -> PathBuf {
    data_root.join("images")
}

/// The lock of the image store and the layers (chapter 9).
pub fn images_lock(data_root: &Path) -> PathBuf {
    data_root.join("images.lock")
}

/// Where each layer is unpacked once, a directory per chain id (chapter 9).
pub fn layers(data_root: &Path) -> PathBuf {
    data_root.join("layers")
}

/// What is being made, renamed into place when whole (chapters 9 and 10).
pub fn tmp(data_root: &Path) -> PathBuf {
    data_root.join("tmp")
}

/// Blobs being downloaded, named by their digest, kept when a download is cut off so
/// the next pull goes on from where it stopped (chapter 10).
pub fn ingest(data_root: &Path) -> PathBuf {
    data_root.join("ingest")
}

// ANCHOR: options
/// The option every subcommand that keeps data flattens: where the data root is.
#[derive(Debug, Clone, clap::Args)]
pub struct DataRootArgs {
    /// Where the runtime keeps its data (default: /var/lib/byoc as root,
    /// ~/.local/share/byoc for an ordinary user).
    #[arg(long, value_name = "DIR", env = "BYOC_ROOT")]
    pub root: Option<PathBuf>,
}

impl DataRootArgs {
    /// The data root asked for, or the default, checked.
    pub fn data_root(&self) -> Result<PathBuf> {
        choose(self.root.as_deref())
    }
}
// ANCHOR_END: options

/// The data root: `given` (`--root`, `BYOC_ROOT`) or the default, checked.
pub fn choose(given: Option<&Path>) -> Result<PathBuf> {
    let data_root = match given {
        Some(dir) => dir.to_path_buf(),
        None => default()?,
    };
    check(&data_root)?;
    Ok(data_root)
}

// ANCHOR: check
/// Refuses a data root at `/` or on a pseudo file system, and one that is there already
/// but is not the caller's own ([`records::check_owned`]). One not there yet is made
/// later.
pub fn check(data_root: &Path) -> Result<()> {
    let (existing, rest) = nearest_existing(data_root)?;
    if rest.as_os_str().is_empty() && existing == Path::new("/") {
        bail!(
            "data root {data_root:?} is the top of the file system, where the runtime \
             would write its networks/, cgroups/ and containers/: give it a directory of \
             its own with --root (such as /var/lib/byoc; book 6.3)"
        );
    }
    if let Some(place) = on_pseudo_file_system(&existing)? {
        bail!(
            "data root {data_root:?} is {place}, where the kernel makes up the files (a \
             write there changes the kernel, not a disk): give a directory on a real \
             disk with --root (such as /var/lib/byoc; book 6.3)"
        );
    }
    if rest.as_os_str().is_empty() {
        // The directory itself, whichever way the path leads there.
        records::check_owned(&existing)
            .map_err(|error| anyhow!("data root {error:#}"))?;
    }
    Ok(())
}
// ANCHOR_END: check

/// The deepest directory of `path` that exists, resolved (symbolic links, `..`), and what
/// is left of `path` below it.
fn nearest_existing(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let absolute = env::current_dir()
        .context("cannot read the current directory")?
        .join(path);
    let mut rest = PathBuf::new();
    let mut existing = absolute.as_path();
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            return Ok((resolved, rest));
        }
        let name = existing.file_name().unwrap_or_default();
        rest = Path::new(name).join(&rest);
        existing = existing
            .parent()
            .with_context(|| format!("no part of {path:?} exists"))?;
    }
}

/// Where `dir` is, if it is on a pseudo file system: `under /sys` (the kernel's trees are
/// mounted under `/proc`, `/sys` and `/dev`, some on a tmpfs such as `/sys/fs/cgroup` on
/// v1), or `on debugfs` by `statfs`'s type, wherever it is mounted.
fn on_pseudo_file_system(dir: &Path) -> Result<Option<String>> {
    let kernels = ["/proc", "/sys", "/dev"];
    if let Some(top) = kernels.into_iter().find(|top| dir.starts_with(top)) {
        return Ok(Some(format!("under {top}")));
    }
    let kind = statfs::statfs(dir)
        .with_context(|| format!("statfs({dir:?}) failed"))?
        .filesystem_type();
    let pseudo = PSEUDO_FILE_SYSTEMS.iter().find(|(magic, _)| *magic == kind);
    Ok(pseudo.map(|(_, name)| format!("on {name}")))
}

/// `/var/lib/byoc` for the machine's root; for anyone else (root of a user namespace
/// included: `/var/lib` is not its own) `$XDG_DATA_HOME/byoc`, or `~/.local/share/byoc`
/// (where podman keeps its own, as `containers/`).
pub fn default() -> Result<PathBuf> {
    if is_host_root() {
        return Ok(PathBuf::from("/var/lib/byoc"));
    }
    if let Some(data_home) = env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(data_home).join("byoc"));
    }
    let home = env::var_os("HOME")
        .context("neither XDG_DATA_HOME nor HOME is set: give --root")?;
    Ok(PathBuf::from(home).join(".local/share/byoc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_of_the_file_system_and_pseudo_file_systems_are_refused() {
        let top = check(Path::new("/")).unwrap_err().to_string();
        assert!(top.contains("is the top of the file system"), "{top}");
        let climbed = check(Path::new("/tmp/..")).unwrap_err().to_string();
        assert!(
            climbed.contains("is the top of the file system"),
            "{climbed}"
        );
        let proc = check(Path::new("/proc/byoc")).unwrap_err().to_string();
        assert!(proc.contains("is under /proc"), "{proc}");
        let sysfs = check(Path::new("/sys/kernel/byoc/data"))
            .unwrap_err()
            .to_string();
        assert!(sysfs.contains("is under /sys"), "{sysfs}");
        let cgroup = check(Path::new("/sys/fs/cgroup")).unwrap_err().to_string();
        assert!(cgroup.contains("is under /sys"), "{cgroup}");
    }

    #[test]
    fn a_data_root_not_made_yet_under_a_real_directory_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        check(&dir.path().join("not/yet")).unwrap();
        check(dir.path()).unwrap();
    }
}

// Your copy of solutions/07-cgroups/src/inside.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The container's own view of its cgroup. Book: section 7.7.
//!
//! A cgroup namespace makes the cgroup a process is in when it makes the namespace look
//! like the root: `/proc/self/cgroup` says `0::/`, not `0::/byoc/3f2a9c01d4e7`, so the
//! container learns nothing of the host's tree. The child makes it once the parent has
//! put it in its cgroup, as runc does (made any earlier, its root would be the runtime's
//! cgroup).
//!
//! Then the cgroup filesystem is mounted read-only at `/sys/fs/cgroup`, as docker does,
//! so the container can read its own limits. Mounted inside the namespace, the tree
//! starts at the container's cgroup. The root filesystem is never written, so this
//! happens only where it has the directory `sys/fs/cgroup` (`cargo xtask rootfs` makes
//! it).

use std::path::{Path, PathBuf};

use anyhow::Result;
use nix::mount::MsFlags;
use nix::sched::{unshare, CloneFlags};

use crate::hierarchy::Hierarchy;
use crate::inroot::RootDir;
use crate::{mounts, trace};

/// The cgroup namespace: from now on, this process's cgroup is `/` to it and its
/// children.
pub fn enter_cgroup_namespace() -> Result<()> {
    let flags = CloneFlags::CLONE_NEWCGROUP;
    trace::syscall(format_args!("unshare(CLONE_NEWCGROUP)"), unshare(flags))?;
    Ok(())
}

// ANCHOR: mount_cgroup_fs
/// Mounts the container's part of the cgroup tree, read-only, at `/sys/fs/cgroup` in the
/// root: one `cgroup2` on v2; on v1 a small tmpfs with each controller's tree in it. The
/// mount point is found inside the root (book 2.5), so a symlink there cannot aim it at
/// the host's tree.
pub fn mount_cgroup_fs(root: &RootDir, hierarchy: &Hierarchy) -> Result<()> {
    let Some(target) = root.find_dir_if_present("sys/fs/cgroup")? else {
        trace::say(format_args!(
            "no /sys/fs/cgroup in the root filesystem: no cgroup view inside"
        ));
        return Ok(());
    };
    let read_only = MsFlags::MS_RDONLY | safe_flags();
    match hierarchy {
        Hierarchy::V2 { .. } => {
            let source = Path::new("cgroup2");
            mounts::mount(
                Some(source),
                &target.path(),
                Some("cgroup2"),
                read_only,
                None,
            )
        }
        Hierarchy::V1 { controllers } => {
            let tmpfs = Path::new("tmpfs");
            let flags = safe_flags();
            mounts::mount(
                Some(tmpfs),
                &target.path(),
                Some("tmpfs"),
                flags,
                Some("mode=755"),
            )?;
            // Looked up again: the new tmpfs, empty, where the names made are ours.
            let view = root.find_dir("sys/fs/cgroup")?;
            for (dir, options) in v1_trees(controllers) {
                let point = view.path().join(&dir);
                std::fs::create_dir(&point)?;
                let source = Path::new("cgroup");
                mounts::mount(
                    Some(source),
                    &point,
                    Some("cgroup"),
                    read_only,
                    Some(&options),
                )?;
            }
            let remount = MsFlags::MS_REMOUNT | read_only;
            mounts::mount(None, &view.path(), None, remount, Some("mode=755"))
        }
    }
}
// ANCHOR_END: mount_cgroup_fs

/// A container has no business running programs or devices from here.
fn safe_flags() -> MsFlags {
    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
}

/// Each v1 tree once, named as on the host (`memory`, `cpu,cpuacct`), with the
/// controllers to mount it by (`memory`, `cpu,cpuacct`).
fn v1_trees(controllers: &[crate::hierarchy::V1Controller]) -> Vec<(PathBuf, String)> {
    let mut trees: Vec<(PathBuf, PathBuf, Vec<&str>)> = Vec::new();
    for controller in controllers {
        match trees
            .iter_mut()
            .find(|(mount, _, _)| *mount == controller.mount)
        {
            Some((_, _, names)) => names.push(&controller.name),
            None => {
                let dir = PathBuf::from(controller.mount.file_name().unwrap_or_default());
                trees.push((controller.mount.clone(), dir, vec![&controller.name]));
            }
        }
    }
    trees
        .into_iter()
        .map(|(_, dir, names)| (dir, names.join(",")))
        .collect()
}

//! The spec: everything about one container, worked out from the command line and checked
//! whole before any process is started. Book: section 1.5.
//!
//! The names follow the OCI runtime specification (`process.args`, `process.env`,
//! `process.terminal`, `root.path`), the format that runc, crun and youki read. A later
//! chapter builds the same spec from an image's configuration instead of from the command
//! line, and the run does not need to know which.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::command;
use crate::rootfs;

// ANCHOR: spec
/// What this chapter's container is: a process and a root filesystem.
#[derive(Debug, Clone)]
pub struct Spec {
    pub process: Process,
    pub root: Root,
}

/// The program the container runs: OCI's `process`.
#[derive(Debug, Clone)]
pub struct Process {
    /// The command and its arguments; `args[0]` is looked up on the container's `PATH`.
    pub args: Vec<OsString>,
    /// `NAME=value` strings: the whole environment, nothing from the host.
    pub env: Vec<String>,
    /// Give the container a new terminal of its own (`-t`).
    pub terminal: bool,
    /// The directory it starts in, inside the container: `/` unless told (docker's `-w`).
    pub cwd: PathBuf,
    /// Who it runs as, inside the container: root unless told (docker's `-u`).
    pub user: User,
}

/// The ids a process runs as: OCI's `process.user`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, besides `gid`.
    pub additional_gids: Vec<u32>,
}

/// Where the container's `/` comes from: OCI's `root`.
#[derive(Debug, Clone)]
pub struct Root {
    /// The root filesystem, as an absolute path on the host.
    pub path: PathBuf,
}
// ANCHOR_END: spec

impl Process {
    /// The command, with the kit's clean environment.
    pub fn new(args: Vec<OsString>, terminal: bool) -> Result<Process> {
        if args.is_empty() {
            bail!("no command to run: put it after `--`, for example `-- sh`");
        }
        if let Some(bad) = args.iter().find(|arg| arg.as_bytes().contains(&0)) {
            bail!("argument {bad:?} contains a NUL byte, which no program can receive");
        }
        Ok(Process {
            args,
            env: command::environment(),
            terminal,
            cwd: PathBuf::from("/"),
            user: User::default(),
        })
    }
}

impl Root {
    /// A root filesystem that exists, is a directory, is not the host's own `/`, and has
    /// each of `mount_points` (the directories this chapter mounts something on).
    pub fn new(path: &Path, mount_points: &[&str]) -> Result<Root> {
        let path = rootfs::check(path)?;
        for point in mount_points {
            rootfs::check_mount_point(&path, point)?;
        }
        Ok(Root { path })
    }
}

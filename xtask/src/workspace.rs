//! Where things are, and how to run a program and fail clearly when it fails.
//!
//! Most commands work in the real workspace. The course invariant works in a scratch copy
//! of it, so it can rewrite the learner crates without touching the learner's own.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace root: the parent of this crate's directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Where cargo puts the debug binaries.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// `cargo`, as the one that runs this xtask, in the real workspace.
pub fn cargo() -> Command {
    Workspace::real().cargo()
}

/// A tree to build and test in: its root and the target directory its builds go to.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
}

impl Workspace {
    /// The learner's workspace, as `cargo` would build it.
    pub fn real() -> Workspace {
        Workspace {
            root: root(),
            target_dir: target_dir(),
        }
    }

    /// `cargo`, as the one that runs this xtask, building in this tree.
    pub fn cargo(&self) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.target_dir);
        command
    }

    /// Where the debug binaries of this tree are.
    pub fn bin_dir(&self) -> PathBuf {
        self.target_dir.join("debug")
    }
}

/// Runs a command to its end; an error names the command when it fails.
pub fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// Is this process root? Chapters 1 to 4 need root: chroot, mounts and namespaces.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The mount table of this process, to compare before and after a run.
pub fn mount_table() -> Result<String> {
    std::fs::read_to_string("/proc/self/mountinfo").context("cannot read /proc/self/mountinfo")
}

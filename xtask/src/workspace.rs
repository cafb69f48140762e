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
    /// Run cargo, and so the tests, in a mount namespace of their own (see
    /// [`own_mount_namespace`]).
    pub own_mount_namespace: bool,
    /// The tests' temporary directory (`TMPDIR`), when not the machine's own.
    pub temp_dir: Option<PathBuf>,
}

impl Workspace {
    /// The learner's workspace, as `cargo` would build it.
    pub fn real() -> Workspace {
        Workspace {
            root: root(),
            target_dir: target_dir(),
            own_mount_namespace: false,
            temp_dir: None,
        }
    }

    /// `cargo`, as the one that runs this xtask, building in this tree.
    pub fn cargo(&self) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.target_dir);
        if self.own_mount_namespace {
            own_mount_namespace(&mut command);
        }
        if let Some(dir) = &self.temp_dir {
            command.env("TMPDIR", dir);
        }
        command
    }

    /// Where the debug binaries of this tree are.
    pub fn bin_dir(&self) -> PathBuf {
        self.target_dir.join("debug")
    }
}

/// Starts `command` in a new mount namespace whose mounts are shared among themselves but
/// not with the host's. The invariant runs half-done runtimes (one that skips making its
/// mounts private leaks them): a leak then lands here, where the tests still see it, and
/// goes away with the namespace instead of staying on the host.
fn own_mount_namespace(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only makes system calls,
    // which is safe in a child of a multi-threaded process.
    unsafe {
        command.pre_exec(|| {
            let root = c"/".as_ptr();
            let none = std::ptr::null();
            succeeded(libc::unshare(libc::CLONE_NEWNS))?;
            // Cut every tie with the host's mounts, then share among this namespace's
            // own.
            let private = libc::MS_REC | libc::MS_PRIVATE;
            succeeded(libc::mount(none, root, none, private, std::ptr::null()))?;
            let shared = libc::MS_REC | libc::MS_SHARED;
            succeeded(libc::mount(none, root, none, shared, std::ptr::null()))
        });
    }
}

/// A C call's result: 0 is success, anything else leaves the reason in errno.
fn succeeded(result: libc::c_int) -> std::io::Result<()> {
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
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
    std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read /proc/self/mountinfo")
}

/// `v1` or `v2`, and why: the cgroup hierarchy the kit uses here, decided as the kit
/// decides it (any of memory, cpu, pids mounted as v1 makes it v1).
pub fn cgroup_version() -> Result<&'static str> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read /proc/self/mountinfo")?;
    let v1 = byoc_facts::leaks::cgroup_mounts(&mountinfo)
        .iter()
        .any(|(_, options)| {
            options
                .split(',')
                .any(|option| ["memory", "cpu", "pids"].contains(&option))
        });
    Ok(if v1 { "v1" } else { "v2" })
}

//! Staging for the rootless test user: a copy of a runtime and the root filesystem that
//! an ordinary user can reach, and starting a command as that user with a login's groups.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{rootfs_dir, test_user, Invocation, Runtime, TestUser};

/// A runtime and the root filesystem copied where an unprivileged user can reach them. A
/// clone of the kit often sits where only root may enter (under `/root`, say), and a test
/// that runs the runtime as another user must not fail for that reason before it gets to
/// what it means to check.
#[derive(Debug)]
pub struct Staged {
    _dir: tempfile::TempDir,
    pub binary: PathBuf,
    pub rootfs: PathBuf,
    /// The data root of its runs (chapter 6 on), inside the staged directory.
    pub data_root: PathBuf,
}

/// Copies `runtime`'s binary and the root filesystem into a fresh directory under the
/// system's temp dir that every user may enter and read. Removed when dropped.
pub fn stage_for_unprivileged(runtime: &Runtime) -> Staged {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("byoc-staged-")
        .tempdir()
        .expect("a temp dir for the staged copy");
    let open_to_all = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(dir.path(), open_to_all)
        .expect("the staged dir is chmod-able");
    let binary = dir.path().join(&runtime.name);
    std::fs::copy(&runtime.path, &binary).expect("the runtime is copied");
    let rootfs = dir.path().join("rootfs");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(rootfs_dir())
        .arg(&rootfs)
        .status()
        .expect("cp runs");
    assert!(copied.success(), "cannot copy the root filesystem");
    // The test user's data root (chapter 6 on), theirs as ~/.local/share/byoc would be:
    // from chapter 7 a rootless runtime with a cgroup records it there.
    let data_root = dir.path().join("data");
    std::fs::create_dir(&data_root).expect("the staged data root is made");
    if let Some(user) = test_user() {
        std::os::unix::fs::chown(&data_root, Some(user.uid), Some(user.gid))
            .expect("the staged data root is given to the test user");
    }
    Staged {
        _dir: dir,
        binary,
        rootfs,
        data_root,
    }
}

impl Staged {
    /// The command line for the staged runtime, run as `user`, from `/`, with a clean
    /// environment, in a process group of its own.
    pub fn command_as(
        &self,
        user: &TestUser,
        options: &[&str],
        command: &[&str],
    ) -> Command {
        self.build_as(Some(user), false, options, command)
    }

    /// The staged runtime run by this process's own user (root, in CI): for a container
    /// whose root is a host user that must reach the staged root filesystem (`--userns`).
    pub fn command(&self, options: &[&str], command: &[&str]) -> Command {
        self.build_as(None, false, options, command)
    }

    /// The same, with `--trace`.
    pub fn trace_command_as(
        &self,
        user: &TestUser,
        options: &[&str],
        command: &[&str],
    ) -> Command {
        self.build_as(Some(user), true, options, command)
    }

    fn build_as(
        &self,
        user: Option<&TestUser>,
        trace: bool,
        options: &[&str],
        command: &[&str],
    ) -> Command {
        let container = self.invocation(user).trace(trace);
        container
            .container(&self.rootfs, options, command)
            .command()
    }

    /// The staged runtime, started by `user` (or this process's own user) from `/`, with
    /// the staged data root, for any subcommand.
    pub fn invocation(&self, user: Option<&TestUser>) -> Invocation {
        let name = self
            .binary
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        Invocation::new(&name, &self.binary, &self.data_root)
            .by(user)
            .from_dir(Path::new("/"))
    }
}

/// Starts `command` as `user` with the groups a login gives it (`initgroups`): its own
/// group and every group that lists it in `/etc/group`. A learner's shell has them, so
/// the tests must too: what a container shows of groups depends on them (book 5.4).
pub fn become_as_at_login(command: &mut Command, user: &TestUser) {
    let groups = login_groups(user);
    let (uid, gid) = (user.uid, user.gid);
    // SAFETY: the closure runs in the forked child before exec and makes only system calls
    // (geteuid, setgroups, setgid, setuid) on memory it owns; it allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            // Not root: this process is that user already, with its login's groups, and
            // may not change them.
            if libc::geteuid() != 0 {
                return Ok(());
            }
            let results = [
                libc::setgroups(groups.len(), groups.as_ptr()),
                libc::setgid(gid),
                libc::setuid(uid),
            ];
            match results.iter().any(|result| *result != 0) {
                true => Err(std::io::Error::last_os_error()),
                false => Ok(()),
            }
        })
    };
}

/// The groups `initgroups` gives `user`: its own, and those that name it in `/etc/group`.
fn login_groups(user: &TestUser) -> Vec<libc::gid_t> {
    let table = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let mut groups = vec![user.gid];
    for line in table.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let member = fields
            .get(3)
            .is_some_and(|members| members.split(',').any(|name| name == user.name));
        let gid = fields.get(2).and_then(|gid| gid.parse().ok());
        if let (true, Some(gid)) = (member, gid) {
            if !groups.contains(&gid) {
                groups.push(gid);
            }
        }
    }
    groups
}

//! cgroups for the tests: which version this machine runs, a cgroup parent of its own for
//! every runtime a test starts, and the check that nothing was left under it.
//!
//! From chapter 7 the runtime makes a cgroup for each container under a parent
//! (`--cgroup-parent`, default `byoc`). The harness gives every run its own parent,
//! `byoc-test-PID-N`, through `BYOC_CGROUP_PARENT`: tests run in parallel, and a check
//! "nothing is left" must only look at what this run made. After the run, the parent must
//! have no cgroup left in it, in any tree; then the harness removes the parent itself
//! (the runtime leaves a parent in place, as docker leaves `docker`).

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::TestUser;

/// The variable through which the harness gives each run its cgroup parent.
pub const PARENT_VARIABLE: &str = "BYOC_CGROUP_PARENT";

/// The prefix of every cgroup parent the tests use.
pub const TEST_PARENT_PREFIX: &str = "byoc-test-";

/// `v1` or `v2`: the hierarchy the kit uses on this machine, decided as the kit decides
/// it (any of the kit's controllers mounted as v1 makes it v1).
pub fn version() -> &'static str {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1 = mountinfo.lines().any(|line| {
        let Some((_, after)) = line.split_once(" - ") else {
            return false;
        };
        let fields: Vec<&str> = after.split(' ').collect();
        fields.first() == Some(&"cgroup")
            && fields.get(2).is_some_and(|options| {
                options
                    .split(',')
                    .any(|option| ["memory", "cpu", "pids"].contains(&option))
            })
    });
    if v1 {
        "v1"
    } else {
        "v2"
    }
}

/// Every cgroup tree mounted on this machine: each v1 controller's and the cgroup2 one.
pub fn mounts() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fstype = after.split(' ').next()?;
            let point = before.split(' ').nth(4)?;
            ["cgroup", "cgroup2"]
                .contains(&fstype)
                .then(|| PathBuf::from(point))
        })
        .collect()
}

/// A new parent name for one run.
pub fn fresh_parent() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{TEST_PARENT_PREFIX}{}-{n}", std::process::id())
}

/// Gives a runtime command a cgroup parent of its own, unless it has one.
pub fn give_own_parent(command: &mut Command) {
    if parent_of(command).is_none() {
        command.env(PARENT_VARIABLE, fresh_parent());
    }
}

/// The cgroup parent a command was given.
pub fn parent_of(command: &Command) -> Option<String> {
    let (_, value) = command
        .get_envs()
        .find(|(name, _)| *name == PARENT_VARIABLE)?;
    Some(value?.to_string_lossy().into_owned())
}

/// The cgroups left under `parent`, in every tree (and under the extra `tops`, for a
/// subtree delegated to a test user).
pub fn left_under(parent: &str, tops: &[PathBuf]) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for top in mounts().iter().chain(tops) {
        let Ok(entries) = std::fs::read_dir(top.join(parent)) else {
            continue;
        };
        left.extend(
            entries
                .flatten()
                .filter(|entry| entry.path().is_dir())
                .map(|entry| entry.path()),
        );
    }
    left
}

/// Fails if the run left a cgroup under its parent. Whatever it left is removed first,
/// with the parent, in every tree: a failing test must not leave the machine untidy.
pub fn assert_none_left(parent: &str, tops: &[PathBuf], runtime: &str, report: &str) {
    let Removed { left, stuck } = remove_all_under(parent, tops);
    assert!(
        left.is_empty(),
        "{runtime}: the container's cgroup was left behind: {left:?}\n{report}"
    );
    assert!(
        stuck.is_empty(),
        "cannot remove the test's cgroups: {stuck:?}"
    );
}

/// What [`remove_all_under`] found under a parent, and what it could not remove.
pub struct Removed {
    pub left: Vec<PathBuf>,
    pub stuck: Vec<PathBuf>,
}

/// Removes the parent and every cgroup under it, in every tree (killing what runs there).
/// It never panics: a test that is failing already calls it while it unwinds.
pub fn remove_all_under(parent: &str, tops: &[PathBuf]) -> Removed {
    let left = left_under(parent, tops);
    let mut stuck = Vec::new();
    for cgroup in &left {
        kill_everything_in(cgroup);
    }
    let parents = mounts()
        .iter()
        .chain(tops)
        .map(|top| top.join(parent))
        .collect::<Vec<_>>();
    for dir in left.iter().chain(&parents) {
        if !removed_when_empty(dir) {
            stuck.push(dir.clone());
        }
    }
    Removed { left, stuck }
}

/// SIGKILL to every process listed in a cgroup.
fn kill_everything_in(cgroup: &Path) {
    let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
    for pid in procs
        .lines()
        .filter_map(|line| line.trim().parse::<i32>().ok())
    {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// `rmdir`, retried for 5 s while the cgroup's last processes finish dying; one that was
/// never made is no error. False if it is still there.
fn removed_when_empty(dir: &Path) -> bool {
    for _ in 0..250 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return true,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    false
}

/// The cgroup2 tree's mount point.
fn v2_mount() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let point = before.split(' ').nth(4)?;
            (after.split(' ').next()? == "cgroup2").then(|| PathBuf::from(point))
        })
        .expect("a cgroup2 mount")
}

/// Whether this process, run by an ordinary user, is in a cgroup delegated to that user
/// (on a systemd desktop, a terminal's cgroup under `user@UID.service` is): the runtime
/// then keeps limits for them, as `cgroup::locate` decides.
pub fn running_in_own_delegated_cgroup() -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if me == 0 || version() != "v2" {
        return false;
    }
    let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(own) = membership
        .lines()
        .find_map(|line| line.strip_prefix("0::/"))
    else {
        return false;
    };
    std::fs::metadata(v2_mount().join(own)).is_ok_and(|meta| meta.uid() == me)
}

/// A subtree of the v2 tree handed to an ordinary user, as systemd hands
/// `user@UID.service` to each user (`Delegate=yes`): the directory and the files that let
/// its owner make cgroups under it, move processes between them and hand controllers down
/// belong to the user. The runtime runs in `session` under it, as a login's processes run
/// in a cgroup under their user's.
pub struct Delegated {
    pub top: PathBuf,
    session: PathBuf,
}

/// The files systemd gives a user along with a delegated directory.
const DELEGATED_FILES: [&str; 3] =
    ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"];

impl Delegated {
    /// Makes `byoc-test-PID-N-delegated` and its `session`, and hands them to `user`.
    pub fn to(user: &TestUser) -> Delegated {
        let mount = v2_mount();
        // The root hands the controllers down to its children, as systemd sets it up.
        std::fs::write(mount.join("cgroup.subtree_control"), "+memory +cpu +pids")
            .expect("the root cgroup hands controllers down");
        let top = mount.join(format!("{}-delegated", fresh_parent()));
        let session = top.join("session");
        for dir in [&top, &session] {
            std::fs::create_dir(dir)
                .unwrap_or_else(|error| panic!("mkdir {dir:?}: {error}"));
            let give = |path: &Path| {
                chown(path, Some(user.uid), Some(user.gid))
                    .unwrap_or_else(|error| panic!("chown {path:?}: {error}"))
            };
            give(dir);
            for file in DELEGATED_FILES {
                if dir.join(file).exists() {
                    give(&dir.join(file));
                }
            }
        }
        Delegated { top, session }
    }

    /// `command` (a runtime command root would run) run instead as `user`, from inside
    /// the delegated subtree: a shell puts itself in `session`, then becomes the user.
    pub fn run_inside_as(&self, user: &TestUser, command: Command) -> Command {
        let script = r#"cgroup=$1 uid=$2 gid=$3; shift 3
echo $$ > "$cgroup" && exec setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@""#;
        let mut wrapped = Command::new("/bin/sh");
        wrapped
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(self.session.join("cgroup.procs"))
            .arg(user.uid.to_string())
            .arg(user.gid.to_string())
            .arg(command.get_program())
            .args(command.get_args())
            .env_clear()
            .current_dir("/");
        for (name, value) in command.get_envs() {
            if let Some(value) = value {
                wrapped.env(name, value);
            }
        }
        crate::in_own_group_with_umask(&mut wrapped);
        wrapped
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for dir in [&self.session, &self.top] {
            // The last process may take a moment to leave `session`.
            for _ in 0..100 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

// Your copy of solutions/07-cgroups/src/hierarchy.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Which cgroup hierarchy this machine has: v2 (one tree for every controller) or v1 (a
//! tree per controller). Book: section 7.2.
//!
//! The answer is in two files. `/proc/self/mountinfo` says what is mounted where:
//! `cgroup2` for the v2 tree, `cgroup` with a controller's name in its options for each
//! v1 tree. `/proc/self/cgroup` says where in each tree this process is. A machine can
//! have both (systemd's "hybrid" mode mounts an empty cgroup2 beside the v1 controllers),
//! so the rule is: the controllers the kit uses decide. If any of them is mounted as v1,
//! v1 it is; else a cgroup2 mount that offers controllers means v2.
//!
//! [`Hierarchy::detect`] takes the root of the filesystem as a parameter, so that it can
//! be tested on files recorded on v1, v2 and hybrid machines.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The v1 controllers the kit uses: the three it limits, `cpuacct` to count CPU time
/// where it is mounted apart from `cpu`, and `freezer` to stop every process before
/// killing them.
pub const V1_CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "freezer"];

/// The v2 controllers the kit turns on for its cgroups.
pub const V2_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// The cgroup filesystems of this machine, as far as the kit needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// One tree: where it is mounted, and this process's cgroup in it
    /// (`/user.slice/...`).
    V2 { mount: PathBuf, own: PathBuf },
    /// A tree per controller.
    V1 { controllers: Vec<V1Controller> },
}

/// One v1 controller: where its tree is mounted, and this process's cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Controller {
    pub name: String,
    pub mount: PathBuf,
    pub own: PathBuf,
}

/// One line of `/proc/self/mountinfo`, the fields the kit reads.
struct Mount {
    point: PathBuf,
    fstype: String,
    super_options: Vec<String>,
}

impl Hierarchy {
    /// This machine's hierarchy, as this process sees it.
    pub fn of_this_machine() -> Result<Hierarchy> {
        Hierarchy::detect(Path::new("/"))
    }

    // ANCHOR: detect
    /// Reads `root/proc/self/mountinfo` and `root/proc/self/cgroup` (and, for a cgroup2
    /// mount, its `cgroup.controllers`) and says which hierarchy the kit should use.
    pub fn detect(root: &Path) -> Result<Hierarchy> {
        let mountinfo = read(&root.join("proc/self/mountinfo"))?;
        let membership = read(&root.join("proc/self/cgroup"))?;
        let mounts: Vec<Mount> = mountinfo.lines().filter_map(parse_mount).collect();
        let v1: Vec<V1Controller> = V1_CONTROLLERS
            .iter()
            .filter_map(|name| v1_controller(&mounts, &membership, name))
            .collect();
        if v1.iter().any(|controller| controller.name != "freezer") {
            return Ok(Hierarchy::V1 { controllers: v1 });
        }
        let Some(v2) = mounts.iter().find(|mount| mount.fstype == "cgroup2") else {
            bail!(
                "no cgroup filesystem is mounted (neither cgroup2 nor the v1 controllers \
                 in /proc/self/mountinfo): mount one at /sys/fs/cgroup (see book 7.2)"
            );
        };
        let controllers = read(&inside(root, &v2.point).join("cgroup.controllers"))?;
        if controllers.split_whitespace().next().is_none() {
            bail!(
                "the cgroup2 tree at {:?} has no controllers and no v1 controller is \
                 mounted: this kernel cannot limit memory, CPU or processes (see book \
                 7.2)",
                v2.point
            );
        }
        let own = own_cgroup(&membership, |controllers| controllers.is_empty())
            .context("/proc/self/cgroup has no line for cgroup2 (`0::/...`)")?;
        Ok(Hierarchy::V2 {
            mount: v2.point.clone(),
            own,
        })
    }
    // ANCHOR_END: detect

    /// `v2` or `v1`, as the book and the tests say it.
    pub fn version(&self) -> &'static str {
        match self {
            Hierarchy::V2 { .. } => "v2",
            Hierarchy::V1 { .. } => "v1",
        }
    }
}

/// A v1 controller the kit does not use for its own limits (the bonus chapter's
/// `devices`), if this machine mounts it.
pub fn v1_controller_named(name: &str) -> Option<V1Controller> {
    let mountinfo = read(Path::new("/proc/self/mountinfo")).ok()?;
    let membership = read(Path::new("/proc/self/cgroup")).ok()?;
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(parse_mount).collect();
    v1_controller(&mounts, &membership, name)
}

/// A v1 controller, if it is mounted: its mount and this process's cgroup in it.
fn v1_controller(mounts: &[Mount], membership: &str, name: &str) -> Option<V1Controller> {
    let mount = mounts.iter().find(|mount| {
        mount.fstype == "cgroup"
            && mount.super_options.iter().any(|option| option == name)
    })?;
    let own = own_cgroup(membership, |controllers| {
        controllers.split(',').any(|controller| controller == name)
    })?;
    Some(V1Controller {
        name: name.to_string(),
        mount: mount.point.clone(),
        own,
    })
}

/// This process's cgroup from `/proc/self/cgroup`, whose lines are
/// `ID:CONTROLLERS:PATH`: `4:memory:/user.slice` on v1, `0::/user.slice/...` on v2.
fn own_cgroup(membership: &str, wanted: impl Fn(&str) -> bool) -> Option<PathBuf> {
    membership.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        wanted(controllers).then(|| PathBuf::from(path))
    })
}

/// A mountinfo line: `36 25 0:31 / /sys/fs/cgroup/memory rw,... - cgroup cgroup
/// rw,memory`. The fields after ` - ` are the filesystem type, the source and the super
/// options.
fn parse_mount(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let point = before.split(' ').nth(4)?;
    let mut after = after.split(' ');
    let fstype = after.next()?.to_string();
    let super_options = after.nth(1).unwrap_or_default();
    Some(Mount {
        point: PathBuf::from(unescape(point)),
        fstype,
        super_options: super_options.split(',').map(str::to_string).collect(),
    })
}

/// mountinfo writes a space in a path as `\040`.
fn unescape(path: &str) -> String {
    path.replace("\\040", " ")
}

/// `path`, a path of the machine, under the root being read.
fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {path:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine's files, recorded: mountinfo and /proc/self/cgroup, and the cgroup2
    /// mount's controllers.
    fn machine(mountinfo: &str, cgroup: &str, v2_controllers: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("proc/self")).unwrap();
        fs::write(root.path().join("proc/self/mountinfo"), mountinfo).unwrap();
        fs::write(root.path().join("proc/self/cgroup"), cgroup).unwrap();
        for point in ["sys/fs/cgroup", "sys/fs/cgroup/unified"] {
            fs::create_dir_all(root.path().join(point)).unwrap();
            fs::write(
                root.path().join(point).join("cgroup.controllers"),
                v2_controllers,
            )
            .unwrap();
        }
        root
    }

    // Pure v2, as Debian 12 with systemd mounts it (and the kit's test VM, without
    // systemd).
    const V2_MOUNTINFO: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
25 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V2_CGROUP: &str =
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-u5.scope\n";

    // Recorded on this kit's CI machines (hybrid: v1 controllers, an empty cgroup2), cut
    // to the controllers the kit reads.
    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/9ef1
2:cpuacct:/
1:cpu:/
0::/
";

    // Pure v1 with cpu and cpuacct mounted together, as Ubuntu 18.04 and CentOS 7 mount
    // it.
    const V1_MOUNTINFO: &str = "\
25 24 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid shared:12 - cgroup cgroup rw,pids
32 25 0:29 / /sys/fs/cgroup/freezer rw,nosuid shared:13 - cgroup cgroup rw,freezer
";
    const V1_CGROUP: &str = "\
12:pids:/user.slice/user-1000.slice
7:freezer:/
4:cpu,cpuacct:/user.slice
3:memory:/user.slice
";

    #[test]
    fn pure_v2_is_one_tree() {
        let root = machine(V2_MOUNTINFO, V2_CGROUP, "cpuset cpu io memory pids\n");
        assert_eq!(
            Hierarchy::detect(root.path()).unwrap(),
            Hierarchy::V2 {
                mount: "/sys/fs/cgroup".into(),
                own:
                    "/user.slice/user-1000.slice/user@1000.service/app.slice/run-u5.scope"
                        .into(),
            }
        );
    }

    #[test]
    fn hybrid_with_an_empty_cgroup2_uses_the_v1_controllers() {
        let root = machine(HYBRID_MOUNTINFO, HYBRID_CGROUP, "");
        let Hierarchy::V1 { controllers } = Hierarchy::detect(root.path()).unwrap()
        else {
            panic!("hybrid must be v1");
        };
        let names: Vec<&str> = controllers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, V1_CONTROLLERS);
        let memory = &controllers[0];
        assert_eq!(memory.mount, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(memory.own, Path::new("/process_api/9ef1"));
    }

    #[test]
    fn v1_with_cpu_and_cpuacct_together_shares_their_mount() {
        let root = machine(V1_MOUNTINFO, V1_CGROUP, "");
        let Hierarchy::V1 { controllers } = Hierarchy::detect(root.path()).unwrap()
        else {
            panic!("pure v1 must be v1");
        };
        let cpu = controllers.iter().find(|c| c.name == "cpu").unwrap();
        let cpuacct = controllers.iter().find(|c| c.name == "cpuacct").unwrap();
        assert_eq!(cpu.mount, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.mount, cpuacct.mount);
        assert_eq!(cpu.own, Path::new("/user.slice"));
        let pids = controllers.iter().find(|c| c.name == "pids").unwrap();
        assert_eq!(pids.own, Path::new("/user.slice/user-1000.slice"));
    }

    #[test]
    fn a_cgroup2_without_controllers_and_no_v1_says_so() {
        let mountinfo = HYBRID_MOUNTINFO
            .lines()
            .filter(|line| !line.contains(" - cgroup cgroup "))
            .collect::<Vec<_>>()
            .join("\n");
        let root = machine(&mountinfo, "0::/\n", "");
        let error = Hierarchy::detect(root.path()).unwrap_err().to_string();
        assert!(error.contains("has no controllers"), "{error}");
    }

    #[test]
    fn no_cgroup_filesystem_says_so() {
        let root = machine("22 1 254:1 / / rw - ext4 /dev/vda1 rw\n", "", "");
        let error = Hierarchy::detect(root.path()).unwrap_err().to_string();
        assert!(error.contains("no cgroup filesystem is mounted"), "{error}");
    }
}

//! The leak checks: the one table of what a test run could leave behind on the machine
//! (mounts, links, routes, nftables rules, the kit's cgroups, the default data root). The
//! tests take each run's picture with the checks marked [`Scope::EachRun`]; `cargo xtask
//! test` takes the whole run's with all of them. A chapter that can leave something new
//! behind (overlay mounts, images, a registry's files) adds its check here, and both use
//! it.

use std::process::{Command, Stdio};

/// When a check can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Before and after each run, while other tests run beside it: it looks at nothing
    /// that another test may change in the meantime.
    EachRun,
    /// Before and after the whole test run only. (Each run's own cgroups are checked by
    /// the tests under the cgroup parent that run was given.)
    WholeRun,
}

/// One leak check: what it looks at, when, and how to take its picture of the machine.
#[derive(Debug, Clone, Copy)]
pub struct LeakCheck {
    pub name: &'static str,
    pub scope: Scope,
    pub look: fn() -> String,
}

/// Every leak check, in the order they are reported.
pub const LEAK_CHECKS: &[LeakCheck] = &[
    LeakCheck {
        name: "mount table",
        scope: Scope::EachRun,
        look: mount_table,
    },
    LeakCheck {
        name: "own network (links, routes, nftables rules)",
        scope: Scope::EachRun,
        look: machine_network,
    },
    LeakCheck {
        name: "cgroups of the kit (byoc, byoc-test-...)",
        scope: Scope::WholeRun,
        look: kit_cgroups,
    },
    LeakCheck {
        name: "default data root (/var/lib/byoc)",
        scope: Scope::WholeRun,
        look: default_data_root,
    },
];

/// The machine as the checks in `scope` see it (all of them for [`Scope::WholeRun`]).
pub fn picture(scope: Scope) -> Vec<(&'static str, String)> {
    LEAK_CHECKS
        .iter()
        .filter(|check| scope == Scope::WholeRun || check.scope == scope)
        .map(|check| (check.name, (check.look)()))
        .collect()
}

/// The mount table, as this process sees it.
pub fn mount_table() -> String {
    read("/proc/self/mountinfo")
}

/// The machine's own network as a container could change it: its interfaces (names, as
/// the counters move), its IPv4 routes, and its nftables rules where `nft` can list them
/// (root). `/proc/self/net` is the process's, not the thread's: its namespace is the main
/// thread's. nft lists the namespace of the thread that runs it.
pub fn machine_network() -> String {
    let devices = read("/proc/self/net/dev");
    let mut names: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next().map(str::trim))
        .collect();
    names.sort_unstable();
    let routes = read("/proc/self/net/route");
    let rules = Command::new("nft")
        .args(["list", "ruleset"])
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map_or("(nft not run)".to_string(), |output| {
            String::from_utf8_lossy(&output.stdout).into_owned()
        });
    format!("links: {}\nroutes:\n{routes}nft:\n{rules}", names.join(" "))
}

/// The kit's cgroups at the top of each of the machine's cgroup trees (`byoc`, and the
/// tests' `byoc-test-...`).
pub fn kit_cgroups() -> String {
    let mut found = Vec::new();
    for (point, _) in cgroup_mounts(&mount_table()) {
        let Ok(entries) = std::fs::read_dir(&point) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("byoc") && entry.path().is_dir() {
                found.push(format!("{point}/{name}"));
            }
        }
    }
    found.sort();
    found.join("\n")
}

/// What is in root's default data root, `/var/lib/byoc`, by name: the tests give every
/// run a data root of its own, so nothing may appear there.
pub fn default_data_root() -> String {
    let Ok(entries) = std::fs::read_dir("/var/lib/byoc") else {
        return "(no /var/lib/byoc)".to_string();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.join("\n")
}

/// Each cgroup mount (v1 or v2) in `mountinfo`: its mount point and its super options.
pub fn cgroup_mounts(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mut after = after.split(' ');
            let fstype = after.next()?;
            let options = after.nth(1).unwrap_or_default();
            let point = before.split(' ').nth(4)?;
            let is_cgroup = fstype == "cgroup" || fstype == "cgroup2";
            is_cgroup.then(|| (point.to_string(), options.to_string()))
        })
        .collect()
}

/// A file's text, or a line saying why it could not be read (which a later read that
/// works then differs from).
fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| format!("(cannot read {path}: {error})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_takes_only_its_own_checks_and_the_whole_run_takes_all() {
        let each_run = picture(Scope::EachRun);
        assert_eq!(each_run.len(), 2);
        assert_eq!(picture(Scope::WholeRun).len(), LEAK_CHECKS.len());
    }

    #[test]
    fn cgroup_mounts_are_found_in_a_mount_table() {
        let mountinfo =
            "35 24 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n\
                         36 24 0:31 / /proc rw - proc proc rw";
        assert_eq!(
            cgroup_mounts(mountinfo),
            [("/sys/fs/cgroup/memory".to_string(), "rw,memory".to_string())]
        );
    }
}

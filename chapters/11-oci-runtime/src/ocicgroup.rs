// Your copy of solutions/11-oci-runtime/src/ocicgroup.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The container's cgroup, where the config says (`linux.cgroupsPath`), with chapter 7's
//! limits and, on v1, the device rules. It outlives `create`: `delete` removes it,
//! rebuilt from the record's path. Book: section 11.3.
//!
//! The device rules say which device files the container may open or make: podman's
//! first rule denies every device, and the runtime allows back the six it makes. A
//! container with a device file of the host's disk in its image could otherwise read the
//! disk. On v1 the rules are lines in `devices.deny` and `devices.allow`; on v2 they
//! must be an eBPF program, which the kit does not load, so there it refuses them.

use std::path::Path;

use anyhow::{bail, Result};

use crate::cgroup::{self, Cgroup};
use crate::cgroupfs;
use crate::hierarchy::{self, Hierarchy};
use crate::plan::{DeviceRule, Plan};
use crate::v1::V1;
use crate::v2::V2;

/// The devices the runtime makes in every container's `/dev`, and the terminals of its
/// `devpts` (major 136), which it must be allowed to use whatever the config's rules.
const ALWAYS_ALLOWED: [&str; 9] = [
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// The cgroup at `path` (below the top of each hierarchy), not made yet: on v1 one
/// directory per controller, the devices controller's too.
pub fn at(hierarchy: &Hierarchy, path: &Path) -> Box<dyn Cgroup> {
    let parent = path.parent().unwrap_or(Path::new(""));
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    match hierarchy {
        Hierarchy::V2 { mount, .. } => Box::new(V2::new(mount, parent, name)),
        Hierarchy::V1 { controllers } => {
            let mut all = controllers.clone();
            all.extend(hierarchy::v1_controller_named("devices"));
            Box::new(V1::new(&all, parent, name))
        }
    }
}

// ANCHOR: make
/// Makes the container's cgroup with its limits and device rules. A failure part way
/// removes what was made.
pub fn make(plan: &Plan, hierarchy: &Hierarchy) -> Result<Box<dyn Cgroup>> {
    if matches!(hierarchy, Hierarchy::V2 { .. })
        && plan.device_rules.iter().any(|rule| !rule.allow)
    {
        bail!(
            "config.json asks for linux.resources.devices rules, and on cgroup v2 those \
             need an eBPF program, which the kit does not load: it would start the \
             container with every device allowed (book 11.3)"
        );
    }
    let cgroup = at(hierarchy, &plan.cgroups_path);
    let mut made = Vec::new();
    let result = cgroup
        .make(&mut made)
        .and_then(|()| cgroup.apply(&plan.limits))
        .and_then(|()| apply_device_rules(cgroup.as_ref(), &plan.device_rules));
    if let Err(error) = result {
        let _ = cgroup::remove(cgroup.as_ref());
        return Err(error);
    }
    Ok(cgroup)
}
// ANCHOR_END: make

/// On v1: the config's rules in order, then the devices the runtime itself makes.
fn apply_device_rules(cgroup: &dyn Cgroup, rules: &[DeviceRule]) -> Result<()> {
    let Some((_, dir)) = cgroup
        .dirs()
        .into_iter()
        .find(|(name, _)| name == "devices")
    else {
        return Ok(()); // v2, with no rule that denies (checked in make)
    };
    for rule in rules {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        cgroupfs::write(&dir, file, &rule_line(rule))?;
    }
    for line in ALWAYS_ALLOWED {
        cgroupfs::write(&dir, "devices.allow", line)?;
    }
    Ok(())
}

/// A rule as the v1 files take it: `c 1:3 rwm`, `a *:* rwm`.
pub fn rule_line(rule: &DeviceRule) -> String {
    let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
    format!(
        "{} {}:{} {}",
        rule.kind,
        number(rule.major),
        number(rule.minor),
        rule.access
    )
}

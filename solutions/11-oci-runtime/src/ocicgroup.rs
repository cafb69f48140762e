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

use crate::cgroup::{self, Cgroup, Placement};
use crate::cgroupfs;
use crate::hierarchy::{self, Hierarchy};
use crate::plan::{DeviceRule, Plan};
use crate::v1::V1;
use crate::v2::V2;
use crate::{trace, userns};

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

/// Where the container's cgroup can go, as chapter 7 decides it: at the top of the tree
/// for the machine's root, in a delegated subtree on v2 for anyone else, and nowhere for
/// an ordinary user on v1 (rootless podman, which then asks for no limits).
pub fn placement(
    hierarchy: &Hierarchy,
    plan_limits: &crate::limits::Limits,
) -> Result<Option<Placement>> {
    cgroup::locate(hierarchy, plan_limits, userns::is_host_root())
}

/// The cgroup at `path` below the placement's top, not made yet: on v1 one directory per
/// controller, the devices controller's too.
pub fn at(placement: &Placement, path: &Path) -> Box<dyn Cgroup> {
    let parent = path.parent().unwrap_or(Path::new(""));
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    match placement {
        Placement::V2 { top } => Box::new(V2::new(top, parent, name)),
        Placement::V1 { controllers } => {
            let mut all = controllers.clone();
            all.extend(hierarchy::v1_controller_named("devices"));
            Box::new(V1::new(&all, parent, name))
        }
    }
}

/// The cgroup a record names, rebuilt from this machine's hierarchy and the record's
/// checked path; `None` when the container was made without one.
pub fn of_record(had_cgroup: bool, path: &Path) -> Result<Option<Box<dyn Cgroup>>> {
    if !had_cgroup {
        return Ok(None);
    }
    let hierarchy = Hierarchy::of_this_machine()?;
    let none = crate::limits::Limits::default();
    Ok(placement(&hierarchy, &none)?.map(|placement| at(&placement, path)))
}

// ANCHOR: make
/// Makes the container's cgroup with its limits and device rules, where there is a
/// place for one. Without one, device rules are refused: nothing would enforce them.
/// A failure part way removes what was made.
pub fn make(plan: &Plan, hierarchy: &Hierarchy) -> Result<Option<Box<dyn Cgroup>>> {
    let denies = plan.device_rules.iter().any(|rule| !rule.allow);
    if matches!(hierarchy, Hierarchy::V2 { .. }) && denies {
        bail!(
            "config.json asks for linux.resources.devices rules, and on cgroup v2 those \
             need an eBPF program, which the kit does not load: it would start the \
             container with every device allowed (book 11.3)"
        );
    }
    let Some(placement) = placement(hierarchy, &plan.limits)? else {
        if denies {
            bail!("config.json asks for linux.resources.devices rules, and this user has no cgroup to write them in (book 7.6)");
        }
        trace::say(format_args!(
            "no cgroup of its own: no limit asked for, none to divide"
        ));
        return Ok(None);
    };
    let cgroup = at(&placement, &plan.cgroups_path);
    let mut made = Vec::new();
    let result = cgroup
        .make(&mut made)
        .and_then(|()| cgroup.apply(&plan.limits))
        .and_then(|()| apply_device_rules(cgroup.as_ref(), &plan.device_rules));
    if let Err(error) = result {
        let _ = cgroup::remove(cgroup.as_ref());
        return Err(error);
    }
    Ok(Some(cgroup))
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

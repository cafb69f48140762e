//! The leak checks after each run: the table in `byoc_facts::leaks` (which `cargo xtask
//! test` also uses for the whole run), looked at before and after each run.

use crate::{netns, Run};

pub use byoc_facts::leaks::{mount_table, LeakCheck, Scope, LEAK_CHECKS};

/// The host as the leak checks see it: each check's name and picture.
pub type HostState = Vec<(&'static str, String)>;

/// Takes the picture of the host that each run is checked against: the checks of
/// [`LEAK_CHECKS`] that can be made while other tests run ([`Scope::EachRun`]), in the
/// machine's own network namespace. (The run's own cgroups are checked under its cgroup
/// parent, see [`crate::cgroups`]; what it leaves in a network namespace a test made for
/// it, and under its data root, is checked by that test, see [`netns`].)
pub fn host_state() -> HostState {
    netns::in_machine_namespace(|| byoc_facts::leaks::picture(Scope::EachRun))
}

/// Fails the test, naming what changed, if the host is not as it was before the run.
pub(crate) fn assert_nothing_left(before: &HostState, run: &Run) {
    let after = host_state();
    for ((name, was), (_, is)) in before.iter().zip(&after) {
        assert!(
            was == is,
            "{}: the host's {name} changed: the container left something behind\n{}",
            run.runtime,
            run.report()
        );
    }
}

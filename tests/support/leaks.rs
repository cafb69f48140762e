//! The leak checks: what a run could leave behind on the host, looked at before and after
//! each run.

use crate::{netns, Run};

/// The host's mount table, as this test process sees it.
pub fn mount_table() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").expect("/proc/self/mountinfo is readable")
}

/// What a container could leave behind on the host, one check each. Later chapters add
/// theirs (cgroups) to this list. (What a container leaves in the network namespace a test
/// made for it, and under its data root, is checked by that test: see [`netns`].)
pub const LEAK_CHECKS: &[LeakCheck] = &[
    ("mount table", mount_table),
    (
        "own network (links, routes, nftables rules)",
        netns::machine_network,
    ),
];

/// A leak check: what it looks at, and how to take its picture of the host.
pub type LeakCheck = (&'static str, fn() -> String);

/// The host as the leak checks see it.
pub type HostState = Vec<(&'static str, String)>;

/// Takes every leak check's picture of the host.
pub fn host_state() -> HostState {
    LEAK_CHECKS
        .iter()
        .map(|(name, look)| (*name, look()))
        .collect()
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

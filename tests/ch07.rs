//! Chapter 7: cgroups. A container cannot take more than its share: memory, CPU time and
//! processes are limited by its cgroup, an OOM kill is reported, and no cgroup is left.
//!
//! These tests run on whichever hierarchy the machine has: v1 on hybrid machines such as
//! this kit's CI machines, v2 on most laptops and in the VM that `cargo xtask test
//! --cgroup-vm` boots. Each run gets a cgroup parent of its own (see `cgroups.rs`), and
//! the harness fails the test if anything is left under it.

use byoc_tests::cgroups::{self, Delegated};
use byoc_tests::*;

/// Chapter 7's tests want a network they do not need to look at: `--net none` keeps them
/// about cgroups (and works for root and for an ordinary user alike).
const NO_NETWORK: [&str; 2] = ["--net", "none"];

/// Options: no network, then `extra`.
fn options<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    NO_NETWORK
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

/// `--memory 64m`, and on a machine with swap `--memory-swap 64m` too: else the kernel
/// would swap the hog out rather than kill it (this kit's CI machines have no swap).
fn memory_limit() -> Vec<&'static str> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let swap = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("SwapTotal:"))
        .is_some_and(|size| size.split_whitespace().next() != Some("0"));
    match swap {
        true => vec!["--memory", "64m", "--memory-swap", "64m"],
        false => vec!["--memory", "64m"],
    }
}

/// The runtimes run by root: making cgroups and setting limits needs it (the reason
/// recorded names the cgroup version, not chapter 1's chroot).
fn root_runtimes() -> Vec<Runtime> {
    runtimes_needing(7..=newest_chapter(), &[Need::RootForCgroups])
}

#[test]
fn a_memory_hog_is_killed_at_the_limit_and_reported_as_out_of_memory() {
    for runtime in root_runtimes() {
        let killed = runtime.run(&options(&memory_limit()), &["probe", "hog", "256"]);
        killed.expect_code(137);
        let lines: Vec<&str> = killed.stderr.lines().collect();
        assert_eq!(
            lines,
            ["byoc: killed: out of memory (limit 64 MiB)"],
            "{}: one line saying why, on cgroup {}\n{}",
            runtime.name,
            cgroups::version(),
            killed.report()
        );
        let under = runtime.run(&options(&["--memory", "64m"]), &["probe", "hog", "16"]);
        under.expect_success();
        assert_eq!(under.value("hog"), "holding 16 MiB", "{}", under.report());
        assert!(under.stderr.is_empty(), "{}", under.report());
    }
}

#[test]
fn a_process_killed_inside_is_not_reported_as_the_container_killed() {
    for runtime in root_runtimes() {
        // The hog is the shell's child: it is killed, and the shell, which lives on,
        // exits with the hog's 137 as its own code. The container was not killed.
        let script = "probe hog 256; exit $?";
        let run = runtime.run(&options(&memory_limit()), &["sh", "-c", script]);
        run.expect_code(137);
        // The shell says "Killed" of its child; the runtime's own lines are the point.
        let lines: Vec<&str> = run
            .stderr
            .lines()
            .filter(|line| line.starts_with("byoc:"))
            .collect();
        assert_eq!(
            lines,
            ["byoc: a process was killed: out of memory (limit 64 MiB)"],
            "{}: on cgroup {}\n{}",
            runtime.name,
            cgroups::version(),
            run.report()
        );
    }
}

#[test]
fn a_fork_loop_stops_at_the_process_limit_and_the_container_goes_on() {
    for runtime in root_runtimes() {
        let run =
            runtime.run(&options(&["--pids-limit", "10"]), &["probe", "forks", "50"]);
        run.expect_success();
        // The probe itself is one of the ten.
        assert_eq!(run.value("forks"), "9 of 50", "{}", run.report());
        assert!(
            run.value("fork failed")
                .starts_with("Resource temporarily unavailable"),
            "{}",
            run.report()
        );
    }
}

#[test]
fn a_busy_loop_under_half_a_cpu_gets_about_half_of_one() {
    for runtime in root_runtimes() {
        let run = runtime.run(&options(&["--cpus", "0.5"]), &["probe", "spin", "1"]);
        run.expect_success();
        let share: f64 = run.value("cpu share").parse().expect("a number");
        // The cgroup's own CPU time over a second of wall-clock time: the figure is
        // shown, and only a share far from one half fails (a loaded machine gives less).
        report_figure(&format!(
            "{}: --cpus 0.5 gave {share:.2} of a CPU, by the cgroup's own counter, on cgroup {}",
            runtime.name,
            cgroups::version()
        ));
        assert!(
            (0.2..=0.65).contains(&share),
            "{}: a share of {share} under --cpus 0.5\n{}",
            runtime.name,
            run.report()
        );
    }
}

#[test]
fn the_container_sees_its_own_cgroup_as_the_root_and_its_own_limits() {
    for runtime in root_runtimes() {
        let limits = ["--memory", "64m", "--cpus", "0.5", "--pids-limit", "20"];
        let run = runtime.run(&options(&limits), &["probe", "cgroup"]);
        run.expect_success();
        assert_eq!(run.value("cgroup"), "/", "{}", run.report());
        assert_eq!(
            run.value("cgroup fs"),
            cgroups::version(),
            "{}",
            run.report()
        );
        assert_eq!(run.value("memory limit"), "67108864", "{}", run.report());
        assert_eq!(run.value("cpu limit"), "50000/100000", "{}", run.report());
        assert_eq!(run.value("pids limit"), "20", "{}", run.report());
        let unlimited = runtime.run(&options(&[]), &["probe", "cgroup"]);
        unlimited.expect_success();
        assert_eq!(unlimited.value("cgroup"), "/", "{}", unlimited.report());
        for limit in ["memory limit", "cpu limit", "pids limit"] {
            let value = unlimited.value(limit);
            assert!(
                value.starts_with("max"),
                "{}: {limit} {value}",
                runtime.name
            );
        }
    }
}

#[test]
fn memory_and_swap_together_are_limited_where_the_kernel_counts_swap() {
    for runtime in root_runtimes() {
        let limits = ["--memory", "64m", "--memory-swap", "128m"];
        let run = runtime.run(&options(&limits), &["probe", "cgroup"]);
        if run.code == 125 {
            // A kernel that does not count swap: the limit is refused, never dropped.
            assert_one_line_error(&runtime, &run, "this kernel does not count swap");
            report_figure(&format!(
                "{}: this kernel does not count swap",
                runtime.name
            ));
            continue;
        }
        run.expect_success();
        assert_eq!(run.value("memory limit"), "67108864", "{}", run.report());
        assert_eq!(
            run.value("memory+swap limit"),
            "134217728",
            "{}",
            run.report()
        );
    }
}

#[test]
fn bad_limits_are_refused_in_one_line_and_nothing_is_made() {
    let more_cpus_than_here = (cpus_of_this_machine() + 1).to_string();
    let too_deep = vec!["level"; 17].join("/");
    let too_long = "n".repeat(65);
    let cases: [(&[&str], &str); 15] = [
        (&["--memory", "0"], "too little memory"),
        (
            &["--memory", "10"],
            "10 bytes (a number without a unit is bytes)",
        ),
        (&["--memory", "3x"], "is not a size"),
        (&["--cpus", "-1"], "must be more than 0"),
        (&["--cpus", "0.001"], "is less than 0.01"),
        (&["--cpus", &more_cpus_than_here], "the range is 0.01 to"),
        (&["--cpus", "1e15"], "the range is 0.01 to"),
        (&["--pids-limit", "0"], "give 1 or more"),
        (&["--pids-limit", "2147483648"], "the most is 4194304"),
        (&["--memory-swap", "1g"], "it needs --memory as well"),
        (
            &["--memory", "1g", "--memory-swap", "512m"],
            "must be at least as large",
        ),
        (&["--cgroup-parent", "../escape"], "is not a cgroup parent"),
        (&["--cgroup-parent", &too_deep], "17 levels, more than 16"),
        (
            &["--cgroup-parent", &too_long],
            "65 bytes is longer than 64",
        ),
        (&["--cgroup-parent", "a\nb"], "control character"),
    ];
    for runtime in root_runtimes() {
        for (limit, expected) in cases {
            // A parent of the test's own, to see that not even it was made.
            let parent = cgroups::fresh_parent();
            let mut extra = limit.to_vec();
            if !limit.contains(&"--cgroup-parent") {
                extra.extend(["--cgroup-parent", &parent]);
            }
            let run = runtime.run(&options(&extra), &["true"]);
            assert_one_line_error(&runtime, &run, expected);
            assert_parent_never_made(&parent, &runtime.name, &run.report());
        }
        let records = runtime.data_root.path().join("cgroups");
        let left: Vec<_> = std::fs::read_dir(&records)
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{}: records left: {left:?}", runtime.name);
    }
}

#[test]
fn a_cgroup_parent_that_fails_part_way_leaves_none_of_its_levels() {
    for runtime in root_runtimes() {
        let parent = cgroups::fresh_parent();
        // `cgroup.procs` is a file in every cgroup: the level below it cannot be made.
        let failing = format!("{parent}/made/cgroup.procs/never");
        let run = runtime.run(&options(&["--cgroup-parent", &failing]), &["true"]);
        assert_one_line_error(&runtime, &run, "Not a directory");
        assert_parent_never_made(&parent, &runtime.name, &run.report());
    }
}

#[test]
fn sizes_with_a_fraction_are_taken_as_docker_takes_them() {
    for runtime in root_runtimes() {
        let run = runtime.run(&options(&["--memory", "0.5g"]), &["probe", "cgroup"]);
        run.expect_success();
        assert_eq!(run.value("memory limit"), "536870912", "{}", run.report());
    }
}

/// The CPUs this process may run on, as the runtime and docker count them.
fn cpus_of_this_machine() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, and the kernel fills it in.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a cpu_set_t of `size` bytes that lives across the call.
    let result = unsafe { libc::sched_getaffinity(0, size, &mut set) };
    assert_eq!(result, 0, "sched_getaffinity failed");
    // SAFETY: CPU_COUNT only reads the set.
    unsafe { libc::CPU_COUNT(&set) as usize }
}

/// Fails if `parent` exists in any cgroup tree: a refused run must make nothing, and a
/// run that failed part way must remove every level it made. Removes it first, if it is
/// there.
fn assert_parent_never_made(parent: &str, runtime: &str, report: &str) {
    let made: Vec<_> = cgroups::mounts()
        .into_iter()
        .map(|top| top.join(parent))
        .filter(|dir| dir.exists())
        .collect();
    let _ = cgroups::remove_all_under(parent, &[]);
    assert!(
        made.is_empty(),
        "{runtime}: the cgroup parent was made: {made:?}\n{report}"
    );
}

#[test]
fn an_ordinary_user_without_a_delegated_cgroup_is_told_why_a_limit_cannot_be_kept() {
    if cgroups::running_in_own_delegated_cgroup() {
        not_run(
            "your own cgroup is delegated to you (systemd's user@UID.service does that for a \
             desktop session), so the runtime keeps limits for you and the refusal cannot be \
             seen here",
        );
        return;
    }
    for runtime in rootless_from_chapter(7) {
        let user = test_user().expect("checked by rootless_from_chapter");
        let refused = runtime.run_as(&user, &options(&["--memory", "64m"]), &["true"]);
        assert_one_line_error(
            &runtime,
            &refused,
            "a limit needs a cgroup of the container's own",
        );
        assert!(refused.stderr.contains("book 7.6"), "{}", refused.report());
        // Without a limit asked, it runs, in no cgroup of its own.
        let run = runtime.run_as(&user, &options(&[]), &["probe", "cgroup"]);
        run.expect_success();
        assert_eq!(run.value("cgroup fs"), "not mounted", "{}", run.report());
    }
}

#[test]
fn an_ordinary_user_with_a_delegated_subtree_gets_limits() {
    if !meets(&[Need::CgroupV2, Need::UnprivilegedUser, Need::UserNamespaces]) {
        return;
    }
    if Need::Root.unmet().is_some() {
        not_run(
            "needs root to hand a subtree of the cgroup tree to the test user, as systemd \
             does (as yourself, try `systemd-run --user --scope -p Delegate=yes` by hand: \
             book 7.6)",
        );
        return;
    }
    for runtime in rootless_from_chapter(7) {
        let user = test_user().expect("checked by the needs");
        let staged = stage_for_unprivileged(&runtime);
        let delegated = Delegated::to(&user);
        let command = |extra: &[&str], command: &[&str]| {
            let inner = staged.command(&options(extra), command);
            delegated.run_inside_as(&user, inner)
        };
        let parent = cgroups::fresh_parent();
        let mut hog = command(&["--memory", "64m"], &["probe", "hog", "256"]);
        hog.env(cgroups::PARENT_VARIABLE, &parent);
        let killed = run_command(&runtime.name, hog);
        killed.expect_code(137);
        assert!(
            killed
                .stderr
                .contains("byoc: killed: out of memory (limit 64 MiB)"),
            "{}",
            killed.report()
        );
        let mut look = command(
            &["--memory", "64m", "--pids-limit", "20"],
            &["probe", "cgroup"],
        );
        look.env(cgroups::PARENT_VARIABLE, &parent);
        let seen = run_command(&runtime.name, look);
        seen.expect_success();
        assert_eq!(seen.value("cgroup"), "/", "{}", seen.report());
        assert_eq!(seen.value("memory limit"), "67108864", "{}", seen.report());
        assert_eq!(seen.value("pids limit"), "20", "{}", seen.report());
        let top = [delegated.top.clone()];
        cgroups::assert_none_left(&parent, &top, &runtime.name, &seen.report());
    }
}

#[test]
fn a_cgroup_left_by_a_runtime_killed_with_sigkill_is_removed_by_the_next_start() {
    for runtime in root_runtimes() {
        let waiting_then_reading = ["sh", "-c", "echo ready; read line"];
        let mut killed =
            runtime.start_waiting(&options(&["--memory", "64m"]), &waiting_then_reading);
        let parent = killed.cgroup_parent().expect("a cgroup parent").to_string();
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(killed.runtime_pid(), libc::SIGKILL) };
        let _ = killed.child.wait();
        let left = cgroups::left_under(&parent, &[]);
        assert!(
            !left.is_empty(),
            "{}: the killed runtime left no cgroup to find",
            runtime.name
        );
        // A runtime reclaims the cgroups under its own parent: the next starts under the
        // same.
        let mut next = runtime.command(&options(&[]), &["true"]);
        next.env(cgroups::PARENT_VARIABLE, &parent);
        let next = run_command(&runtime.name, next);
        next.expect_success();
        cgroups::assert_none_left(&parent, &[], &runtime.name, &next.report());
        drop(killed);
    }
}

#[test]
fn a_forged_cgroup_record_is_ignored_and_the_cgroup_it_names_lives_on() {
    for runtime in root_runtimes() {
        let mut victim = Victim::new();
        let data_root = tempfile::tempdir().expect("a temp dir");
        let records = data_root.path().join("cgroups");
        std::fs::create_dir(&records).expect("the records' dir is made");
        let mode = |mode| std::os::unix::fs::PermissionsExt::from_mode(mode);
        std::fs::set_permissions(&records, mode(0o755)).unwrap();
        // As an older kit wrote them: the directories named in the record itself.
        let forged = format!(
            "runtime 2147483647 0\ndir {} {}\n",
            victim.controller,
            victim.dir.display()
        );
        std::fs::write(records.join("0123456789ab"), &forged)
            .expect("the record is written");
        std::fs::set_permissions(records.join("0123456789ab"), mode(0o644)).unwrap();
        let mut command = runtime.command(&options(&[]), &["true"]);
        command.env("BYOC_ROOT", data_root.path());
        let run = run_command(&runtime.name, command);
        run.expect_success();
        assert!(
            victim.dir.is_dir() && victim.is_alive(),
            "{}: the cgroup a forged record named was removed, its process killed\n{}",
            runtime.name,
            run.report()
        );
        let said: Vec<&str> = run
            .stderr
            .lines()
            .filter(|line| line.contains("0123456789ab"))
            .collect();
        assert!(
            said.len() == 1 && said[0].starts_with("byoc: ignoring"),
            "{}: one line should say the record is ignored\n{}",
            runtime.name,
            run.report()
        );
        let kept = std::fs::read_to_string(records.join("0123456789ab")).unwrap();
        assert_eq!(
            kept, forged,
            "{}: the record is left as it was",
            runtime.name
        );
    }
}

/// A cgroup the test makes outside any parent the runtime uses, with a sleeping process
/// in it: what a forged record names. Removed, with its process, when dropped.
struct Victim {
    controller: &'static str,
    dir: std::path::PathBuf,
    sleeper: std::process::Child,
}

impl Victim {
    fn new() -> Victim {
        let (controller, tree) = match cgroups::version() {
            "v1" => ("pids", std::path::PathBuf::from("/sys/fs/cgroup/pids")),
            _ => ("v2", cgroups::mounts().remove(0)),
        };
        let dir = tree.join(format!("byoc-test-victim-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("the victim cgroup is made");
        let sleeper = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep starts");
        std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string())
            .expect("the sleeper goes into the victim cgroup");
        Victim {
            controller,
            dir,
            sleeper,
        }
    }

    fn is_alive(&mut self) -> bool {
        self.sleeper.try_wait().is_ok_and(|status| status.is_none())
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.sleeper.kill();
        let _ = self.sleeper.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn the_trace_shows_the_cgroup_made_filled_and_removed() {
    for runtime in root_runtimes() {
        let limits = ["--memory", "64m", "--cpus", "0.5", "--pids-limit", "20"];
        let run = runtime.trace(&options(&limits), &["true"]);
        run.expect_success();
        let cgroup_lines: String = run
            .stderr
            .lines()
            .filter(|line| line.contains("cgroup") || line.contains("CLONE_NEWCGROUP"))
            .map(|line| format!("{line}\n"))
            .collect();
        let version = cgroups::version();
        let made_at = match version {
            "v2" => "memory.max",
            _ => "memory.limit_in_bytes",
        };
        assert!(
            cgroup_lines.contains(made_at),
            "{}: {}",
            runtime.name,
            run.report()
        );
        assert!(
            cgroup_lines.contains("rmdir"),
            "{}: {}",
            runtime.name,
            run.report()
        );
        if testing_solutions() && runtime.chapter == 7 {
            let mut settings = trace_filters();
            settings.add_filter(r"byoc-test-\d+-\d+", "[PARENT]");
            settings.add_filter(r"echo \d+ > (\S*/cgroup\.procs)", "echo [PID] > $1");
            let name = format!("ch07_trace_{version}");
            settings
                .bind(|| insta::assert_snapshot!(name, trace_by_actor(&cgroup_lines)));
        }
    }
}

#[test]
fn a_symlink_at_sys_fs_cgroup_never_leads_the_cgroup_view_out_of_the_root_filesystem() {
    for runtime in root_runtimes() {
        let root = hostile::HostileRoot::new();
        root.symlink("sys/fs/cgroup", &root.victim);
        let run = root.run(&runtime, &options(&["--pids-limit", "100"]), &["true"]);
        root.assert_victim_unchanged(&runtime, &run);
        run.expect_success();

        // Aimed at `/`: a stand-in for the host's, which must gain nothing and stay
        // writable.
        let root = hostile::HostileRoot::new();
        root.symlink("sys/fs/cgroup", std::path::Path::new("/"));
        let limit = options(&["--pids-limit", "100"]);
        let (run, seen) = root.run_with_a_stand_in_host_root(&runtime, &limit, &["true"]);
        assert_eq!(seen.after, seen.before, "{}", run.report());
        assert_eq!(seen.options_after, seen.options_before, "{}", run.report());
    }
}

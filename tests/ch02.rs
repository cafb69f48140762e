//! Chapter 2: a mount namespace, pivot_root and a minimal /dev. Book: chapter 2.
//! Runs against chapter 2's binary and every later one, unless a test says otherwise.

use std::collections::BTreeSet;
use std::path::Path;

use byoc_tests::hostile::HostileRoot;
use byoc_tests::{assert_one_line_error, Runtime};

use byoc_tests::mount_table;
use byoc_tests::{
    assert_calls_in_order, assert_escape, from_chapter, from_chapter_as_root,
};
use byoc_tests::{
    host_temp_dir, run_command, shell_on_a_terminal, transcript, transcript_settings,
};
use byoc_tests::{runtimes, testing_solutions, trace_by_actor, trace_filters};

const WAIT_FOR_A_LINE: [&str; 3] = ["sh", "-c", "echo ready; read line"];

#[test]
fn the_host_mount_table_is_unchanged_while_a_container_runs() {
    for runtime in from_chapter(2) {
        let before = mount_table();
        let container = runtime.start_waiting(&[], &WAIT_FOR_A_LINE);
        let during = mount_table();
        container.release().expect_success();
        assert!(
            before == during,
            "{}: the container's mounts showed up on the host",
            runtime.name
        );
    }
}

#[test]
fn the_container_sees_only_its_own_mounts() {
    for runtime in from_chapter(2) {
        let container = runtime.start_waiting(&[], &WAIT_FOR_A_LINE);
        // Read from the host: chapter 2's container has no /proc of its own to ask.
        let pid = container.container_pid();
        let table = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        container.release().expect_success();
        let points: BTreeSet<&str> =
            table.lines().filter_map(|l| l.split(' ').nth(4)).collect();
        let required = BTreeSet::from(["/", "/dev", "/dev/pts", "/tmp"]);
        let mut allowed = BTreeSet::from(["/", "/dev", "/dev/pts", "/tmp", "/proc"]);
        if runtime.rootless.is_some() {
            // In a user namespace each device file is the host's, bind-mounted (chapter
            // 5).
            let devices = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random"];
            allowed.extend(devices.into_iter().chain(["/dev/urandom", "/dev/tty"]));
        } else if runtime.chapter >= byoc_tests::FIRST_NETWORK_CHAPTER {
            // On the bridge (root's default from chapter 6), the container's own files.
            allowed.extend(["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]);
        }
        if runtime.chapter >= byoc_tests::FIRST_CGROUP_CHAPTER {
            // Its part of the cgroup tree (chapter 7): one cgroup2 mount, or on v1 a
            // tmpfs with a mount for each controller's tree.
            allowed.insert("/sys/fs/cgroup");
            allowed.extend(points.iter().filter(|point| {
                point
                    .strip_prefix("/sys/fs/cgroup/")
                    .is_some_and(|tree| !tree.contains('/'))
            }));
        }
        assert!(
            points.is_superset(&required) && points.is_subset(&allowed),
            "{}: the container's mount points should be / /dev /dev/pts /tmp (and /proc from chapter 3, \
             /etc/hosts, /etc/hostname and /etc/resolv.conf from chapter 6, /sys/fs/cgroup from chapter 7), \
             not {points:?}",
            runtime.name
        );
    }
}

#[test]
fn the_containers_mounts_are_private_even_when_the_hosts_are_shared() {
    for runtime in from_chapter_as_root(2) {
        // Many hosts (every one with systemd) make "/" shared, so that a new mount
        // namespace still passes mount events to the host. Make that so for this run,
        // whatever this host does: start the runtime in a mount namespace of its own
        // where "/" is shared.
        let mut command = runtime.command(&[], &WAIT_FOR_A_LINE);
        // SAFETY: the closure runs in the forked child before exec and only makes two
        // system calls, which is safe in a child of a multi-threaded process.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                let shared = libc::MS_REC | libc::MS_SHARED;
                let root = c"/".as_ptr();
                if libc::unshare(libc::CLONE_NEWNS) != 0
                    || libc::mount(
                        std::ptr::null(),
                        root,
                        std::ptr::null(),
                        shared,
                        std::ptr::null(),
                    ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let container = runtime.start_waiting_command(command);
        let pid = container.container_pid();
        let table = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        container.release().expect_success();
        // Optional fields (between the mount options and " - ") name a mount's peer
        // group: "shared:N" sends events, "master:N" receives them. A private mount has
        // neither.
        let propagating: Vec<&str> = table
            .lines()
            .filter(|line| line.contains(" shared:") || line.contains(" master:"))
            .collect();
        assert!(
            propagating.is_empty(),
            "{}: these mounts still propagate to or from the host:\n{}",
            runtime.name,
            propagating.join("\n")
        );
    }
}

#[test]
fn dev_has_the_six_minimal_devices_a_devpts_and_nothing_else() {
    // Mode 0666: everyone may read and write them. The runtime runs with umask 022 here,
    // which takes the write bits for others off what mknod makes, unless it sets them
    // again.
    let expected = [
        "full char 1:7 0666",
        "null char 1:3 0666",
        "ptmx symlink",
        "pts dir",
        "random char 1:8 0666",
        "tty char 5:0 0666",
        "urandom char 1:9 0666",
        "zero char 1:5 0666",
    ];
    for runtime in from_chapter(2) {
        let run = runtime.run(&[], &["probe", "dev"]);
        run.expect_success();
        assert_eq!(
            run.values("dev"),
            expected,
            "{}: /dev\n{}",
            runtime.name,
            run.report()
        );
    }
}

#[test]
fn the_devices_work() {
    for runtime in from_chapter(2) {
        let zeros = "echo discarded > /dev/null && head -c 4 /dev/zero | od -An -tx1";
        let run = runtime.run(&[], &["sh", "-c", zeros]);
        run.expect_success();
        assert_eq!(run.stdout.trim(), "00 00 00 00", "{}", run.report());
        let full = runtime.run(&[], &["sh", "-c", "echo x > /dev/full"]);
        assert_ne!(
            full.code, 0,
            "{}: writing to /dev/full must fail",
            runtime.name
        );
        assert!(full.stderr.contains("No space left"), "{}", full.report());
    }
}

#[test]
fn tmp_is_a_fresh_tmpfs_that_does_not_reach_the_root_filesystem() {
    for runtime in from_chapter(2) {
        let name = format!("note-from-{}", runtime.name);
        let script = format!("echo kept > /tmp/{name} && cat /tmp/{name}");
        let run = runtime.run(&[], &["sh", "-c", &script]);
        run.expect_success();
        assert_eq!(run.stdout.trim(), "kept");
        assert!(
            !runtime.rootfs().join("tmp").join(&name).exists(),
            "{}: /tmp inside the container must be a tmpfs, not the root filesystem's /tmp",
            runtime.name
        );
    }
}

#[test]
fn the_root_filesystem_is_not_written() {
    for runtime in from_chapter_as_root(2) {
        let root = HostileRoot::new();
        let before = root.top_names();
        let run = root.run(&runtime, no_network(&runtime), &["true"]);
        run.expect_success();
        assert_eq!(
            root.top_names(),
            before,
            "{}: the runtime made something in the root filesystem (an old root's mount point?)",
            runtime.name
        );
    }
}

/// `--net none` where the runtime has networks (chapter 6 on): these tests are about the
/// root.
fn no_network(runtime: &Runtime) -> &'static [&'static str] {
    match runtime.chapter >= byoc_tests::FIRST_NETWORK_CHAPTER {
        true => &["--net", "none"],
        false => &[],
    }
}

/// The ways a runtime sets up `/dev`: with `mknod`, and from chapter 5 in a user
/// namespace, by bind-mounting the host's devices.
fn dev_variants(runtime: &Runtime) -> Vec<Vec<&'static str>> {
    let plain = no_network(runtime).to_vec();
    let mut variants = vec![plain.clone()];
    if runtime.chapter >= byoc_tests::FIRST_ROOTLESS_CHAPTER {
        variants.push([plain, vec!["--userns"]].concat());
    }
    variants
}

#[test]
fn a_symlink_at_a_mount_point_never_leads_out_of_the_root_filesystem() {
    for runtime in from_chapter_as_root(2) {
        for options in dev_variants(&runtime) {
            for point in ["dev", "tmp"] {
                let root = HostileRoot::new();
                // Absolute, and relative with more `..` than the root has above it.
                let climbing = Path::new("../../../../../../..")
                    .join(root.victim.strip_prefix("/").expect("an absolute victim"));
                for target in [root.victim.clone(), climbing] {
                    root.symlink(point, &target);
                    let run = root.run(&runtime, &options, &["true"]);
                    root.assert_victim_unchanged(&runtime, &run);
                    let named = format!("/{point} in the root filesystem");
                    assert_one_line_error(&runtime, &run, &named);
                    assert!(run.stderr.contains("is a symlink to"), "{}", run.report());
                }
            }
        }
    }
}

#[test]
fn a_symlink_to_slash_at_dev_makes_nothing_in_the_hosts_root() {
    for runtime in from_chapter_as_root(2) {
        for options in dev_variants(&runtime) {
            let root = HostileRoot::new();
            root.symlink("dev", Path::new("/"));
            let (run, seen) =
                root.run_with_a_stand_in_host_root(&runtime, &options, &["true"]);
            assert_eq!(
                seen.after,
                seen.before,
                "{}: the runtime made files in the host's /\n{}",
                runtime.name,
                run.report()
            );
            assert_eq!(seen.options_after, seen.options_before, "{}", run.report());
            assert_one_line_error(&runtime, &run, "leads back to the root itself");
        }
    }
}

#[test]
fn the_chroot_escape_no_longer_works() {
    for runtime in from_chapter(2) {
        assert_escape(&runtime, "host file not visible", "ch02_escape");
    }
}

#[test]
fn the_trace_tells_the_story_of_a_run() {
    for runtime in runtimes(2..=2) {
        let run = runtime.trace(&[], &["true"]);
        run.expect_success();
        let story = [
            "socketpair",
            "fork",
            "write",
            "read",
            "unshare",
            "mount",
            "mount",
            "mount",
            "mknod",
            "pivot_root",
            "umount2",
            "close_range",
            "execve",
        ];
        assert_calls_in_order(&run, &story);
        if testing_solutions() {
            trace_filters().bind(|| {
                insta::assert_snapshot!("ch02_trace", trace_by_actor(&run.stderr))
            });
        }
    }
}

#[test]
fn what_the_container_sees() {
    for runtime in runtimes(2..=2) {
        let devices = runtime.run(&[], &["probe", "dev"]);
        let tmp = runtime.run(&[], &["sh", "-c", "echo note > /tmp/note; ls /tmp"]);
        let text = transcript(&[
            ("--rootfs rootfs/busybox -- probe dev", &devices),
            (
                "--rootfs rootfs/busybox -- sh -c 'echo note > /tmp/note; ls /tmp'",
                &tmp,
            ),
        ]);
        transcript_settings()
            .bind(|| insta::assert_snapshot!("ch02_container_view", text));
    }
}

#[test]
fn a_root_filesystem_without_dev_is_refused_before_anything_starts() {
    let empty = host_temp_dir();
    for runtime in from_chapter(2) {
        let mut command = std::process::Command::new(&runtime.path);
        command
            .arg("run")
            .arg("--rootfs")
            .arg(empty.path())
            .args(["--", "true"]);
        let run = run_command(&runtime.name, command);
        run.expect_code(125);
        assert!(
            run.stderr.contains("has no /dev")
                && run.stderr.contains("cargo xtask rootfs"),
            "{}",
            run.report()
        );
        assert_eq!(
            std::fs::read_dir(empty.path()).unwrap().count(),
            0,
            "{}: the runtime wrote into a root filesystem it refused",
            runtime.name
        );
    }
}

#[test]
fn under_dash_t_the_container_has_a_terminal_of_its_own() {
    for runtime in from_chapter(2) {
        // Its own devpts: the first pseudo-terminal in it is number 0, whatever the host
        // has.
        let (mut pty, mut shell) = shell_on_a_terminal(&runtime);
        pty.type_text("tty; ls /dev/pts\r");
        let shown = pty.read_until("ptmx");
        pty.type_text("exit\r");
        assert!(shell.wait().success());
        assert!(shown.contains("/dev/pts/0"), "{}: {shown}", runtime.name);
    }
}

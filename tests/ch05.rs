//! Chapter 5: the user namespace, and containers for ordinary users. Book: chapter 5.
//! The rootless tests run as an ordinary user the harness picks (see `test_user`), on a
//! staged copy of the runtime and the root filesystem that user can reach.

use byoc_tests::test_user;
use byoc_tests::{
    from_chapter_as_root, meets, rootless_from_chapter, stage_for_unprivileged,
};
use byoc_tests::{testing_solutions, trace_by_actor, trace_filters, transcript};
use byoc_tests::{transcript_settings, Need, Run, TestUser};

/// The rootless test user; the tests that call this have already checked it exists.
fn user() -> TestUser {
    test_user().expect("a test user, checked by the runtimes' needs")
}

/// Every capability this kernel has, as `/proc/PID/status` shows a full set.
fn full_capabilities() -> String {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .expect("cap_last_cap is readable")
        .trim()
        .parse()
        .expect("cap_last_cap is a number");
    format!("{:016x}", (1u64 << (last + 1)) - 1)
}

fn own_maps(user: &TestUser) -> [String; 4] {
    [
        "--uid-map".into(),
        format!("0:{}:1", user.uid),
        "--gid-map".into(),
        format!("0:{}:1", user.gid),
    ]
}

fn strs(options: &[String]) -> Vec<&str> {
    options.iter().map(String::as_str).collect()
}

#[test]
fn an_ordinary_user_is_root_inside_with_every_capability_there() {
    for runtime in rootless_from_chapter(5) {
        let user = user();
        let run = runtime.run_as(&user, &[], &["probe", "user"]);
        run.expect_success();
        assert_eq!(run.value("uid"), "0", "{}", run.report());
        assert_eq!(run.value("gid"), "0", "{}", run.report());
        assert_eq!(run.value("capeff"), full_capabilities(), "{}", run.report());
        let first_line = format!("0 {} 1", user.uid);
        assert_eq!(
            run.values("uid_map").first(),
            Some(&first_line),
            "{}",
            run.report()
        );
    }
}

#[test]
fn with_only_its_own_id_the_maps_are_one_line_and_setgroups_is_denied() {
    for runtime in rootless_from_chapter(5) {
        let user = user();
        let options = own_maps(&user);
        let script = "probe user; echo setgroups: $(cat /proc/self/setgroups)";
        let run = runtime.run_as(&user, &strs(&options), &["sh", "-c", script]);
        run.expect_success();
        assert_eq!(
            run.values("uid_map"),
            [format!("0 {} 1", user.uid)],
            "{}",
            run.report()
        );
        assert_eq!(
            run.values("gid_map"),
            [format!("0 {} 1", user.gid)],
            "{}",
            run.report()
        );
        assert_eq!(run.value("setgroups"), "deny", "{}", run.report());
    }
}

#[test]
fn with_a_subordinate_range_chown_works_inside() {
    if !meets(&[Need::SubordinateIds]) {
        return;
    }
    for runtime in rootless_from_chapter(5) {
        let user = user();
        let script =
            "probe user; touch /tmp/f && chown 1:2 /tmp/f && echo owner: $(stat -c %u:%g /tmp/f)";
        let run = runtime.run_as(&user, &[], &["sh", "-c", script]);
        run.expect_success();
        let uid_map = run.values("uid_map");
        assert_eq!(uid_map.len(), 2, "{}", run.report());
        assert!(
            uid_map[1].starts_with("1 ") && uid_map[1].ends_with(" 65536"),
            "{}",
            run.report()
        );
        assert_eq!(run.value("owner"), "1:2", "{}", run.report());
    }
}

#[test]
fn the_host_sees_the_containers_processes_as_the_caller() {
    for runtime in rootless_from_chapter(5) {
        let user = user();
        let staged = stage_for_unprivileged(&runtime);
        let command =
            staged.command_as(&user, &[], &["sh", "-c", "echo ready; read line"]);
        let container = runtime.start_waiting_command(command);
        let status = std::fs::read_to_string(format!(
            "/proc/{}/status",
            container.container_pid()
        ))
        .expect("the container's status is readable from the host");
        container.release().expect_success();
        let uids = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .expect("a Uid line");
        let expected = format!("{0}\t{0}\t{0}\t{0}", user.uid);
        assert_eq!(
            uids.trim(),
            expected,
            "{}: the host's view of uid 0 inside",
            runtime.name
        );
    }
}

#[test]
fn a_host_file_owned_by_root_is_nobodys_inside_and_cannot_be_written() {
    for runtime in rootless_from_chapter(5) {
        // A kernel setting: a file of the host's root whoever staged the root filesystem
        // (a learner's own copy of it is theirs, and so root's inside).
        let file = "/proc/sys/vm/drop_caches";
        let script = format!("echo owner: $(stat -c %u:%g {file}); echo 1 > {file}");
        let run = runtime.run_as(&user(), &[], &["sh", "-c", &script]);
        assert_eq!(run.value("owner"), "65534:65534", "{}", run.report());
        assert_ne!(
            run.code, 0,
            "{}: root inside wrote a root-owned host file",
            runtime.name
        );
        assert!(run.stderr.contains("Permission denied"), "{}", run.report());
    }
}

#[test]
fn a_file_made_inside_belongs_to_the_caller_on_the_host() {
    for runtime in rootless_from_chapter(5) {
        let user = user();
        let staged = stage_for_unprivileged(&runtime);
        let scratch = staged.rootfs.join("scratch");
        std::fs::create_dir(&scratch).expect("a scratch dir in the staged rootfs");
        std::os::unix::fs::chown(&scratch, Some(user.uid), Some(user.gid))
            .expect("chown");
        let command = staged.command_as(&user, &[], &["touch", "/scratch/made-inside"]);
        byoc_tests::run_command(&runtime.name, command).expect_success();
        let made =
            std::fs::metadata(scratch.join("made-inside")).expect("the file is there");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (made.uid(), made.gid()),
            (user.uid, user.gid),
            "{}",
            runtime.name
        );
    }
}

/// The probe's `privileged` line for one attempt.
fn attempt(run: &Run, name: &str) -> String {
    run.values("privileged")
        .into_iter()
        .find(|line| line.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no attempt {name}\n{}", run.report()))
}

#[test]
fn the_containers_root_cannot_do_what_only_the_hosts_root_may() {
    for runtime in rootless_from_chapter(5) {
        let run = runtime.run_as(&user(), &[], &["probe", "privileged"]);
        run.expect_success();
        assert_eq!(
            attempt(&run, "clock"),
            "clock refused (EPERM)",
            "{}",
            run.report()
        );
        assert_eq!(
            attempt(&run, "mount-block-fs"),
            "mount-block-fs refused (EPERM)",
            "{}",
            run.report()
        );
        assert_eq!(
            attempt(&run, "write-host-file"),
            "write-host-file refused (EACCES)",
            "{}",
            run.report()
        );
    }
}

#[test]
fn the_containers_root_cannot_load_a_module() {
    if !meets(&[Need::LoadableModules]) {
        return;
    }
    for runtime in rootless_from_chapter(5) {
        let run = runtime.run_as(&user(), &[], &["probe", "privileged"]);
        assert_eq!(
            attempt(&run, "module"),
            "module refused (EPERM)",
            "{}",
            run.report()
        );
    }
}

#[test]
fn what_chapters_1_to_4_taught_works_rootless() {
    for runtime in rootless_from_chapter(5) {
        let script =
            "hostname; echo pid $$; probe dev; probe ipc; echo zero: $(head -c 2 /dev/zero | od -An -tx1)";
        let run = runtime.run_as(&user(), &["--hostname", "box"], &["sh", "-c", script]);
        run.expect_success();
        assert!(run.stdout.starts_with("box\npid 1\n"), "{}", run.report());
        assert_eq!(run.value("zero"), "00 00", "{}", run.report());
        assert_eq!(run.value("msqids"), "none", "{}", run.report());
        let alone = runtime.run_as(&user(), &[], &["probe", "ps"]);
        assert_eq!(alone.value("pids"), "1", "{}", alone.report());
        let devices = run.values("dev");
        assert!(
            devices.contains(&"null char 1:3 0666".to_string()),
            "{}",
            run.report()
        );
    }
}

#[test]
fn a_map_the_caller_may_not_use_is_refused_before_anything_starts() {
    for runtime in rootless_from_chapter(5) {
        let run = runtime.run_as(&user(), &["--uid-map", "0:0:1"], &["true"]);
        run.expect_code(125);
        assert!(
            run.stderr.contains("you may map only your own id"),
            "{}",
            run.report()
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.report());
    }
}

#[test]
fn overlapping_maps_are_refused_before_anything_starts() {
    for runtime in from_chapter_as_root(5) {
        let options = ["--uid-map", "0:100000:10", "--uid-map", "5:200000:10"];
        let run = runtime.run(&options, &["true"]);
        run.expect_code(125);
        assert!(
            run.stderr.contains("overlap inside the container"),
            "{}",
            run.report()
        );
    }
}

#[test]
fn root_gets_a_user_namespace_only_when_it_asks() {
    for runtime in from_chapter_as_root(5) {
        let plain = runtime.run(&[], &["probe", "user"]);
        assert_eq!(
            plain.values("uid_map"),
            ["0 0 4294967295"],
            "{}",
            plain.report()
        );
        // The container's root is then host uid 100000, which must reach the root
        // filesystem: a staged copy, as the kit itself may sit where only root may enter.
        let staged = stage_for_unprivileged(&runtime);
        let mut command = staged.command(&["--userns"], &["probe", "user"]);
        // Root's own data root (chapter 6 on): the staged one is the test user's, and a
        // runtime refuses a data root that is not its caller's.
        command.env("BYOC_ROOT", runtime.data_root.path());
        let asked = byoc_tests::run_command(&runtime.name, command);
        asked.expect_success();
        assert_eq!(
            asked.values("uid_map"),
            ["0 100000 65536"],
            "{}",
            asked.report()
        );
        assert_eq!(asked.value("uid"), "0", "{}", asked.report());
    }
}

/// Settings that show the test user's ids and the staged paths the same on every machine.
fn rootless_filters(user: &TestUser, rootfs: &std::path::Path) -> insta::Settings {
    let mut settings = trace_filters();
    settings.add_filter(&regex::escape(&rootfs.display().to_string()), "[ROOTFS]");
    settings.add_filter(&format!(r"\b{}\b", user.uid), "[UID]");
    settings.add_filter(&format!(r"\b{}\b", user.gid), "[GID]");
    settings
}

#[test]
fn the_trace_tells_the_story_of_a_rootless_run() {
    for runtime in rootless_from_chapter(5)
        .into_iter()
        .filter(|r| r.chapter == 5)
    {
        let user = user();
        let staged = stage_for_unprivileged(&runtime);
        let options = own_maps(&user);
        let traced = staged.trace_command_as(&user, &strs(&options), &["true"]);
        let run = byoc_tests::run_command(&runtime.name, traced);
        run.expect_success();
        byoc_tests::assert_calls_in_order(
            &run,
            &[
                "clone",
                "write",
                "write",
                "write",
                "write",
                "read",
                "setresgid",
                "setresuid",
            ],
        );
        if testing_solutions() {
            rootless_filters(&user, &staged.rootfs).bind(|| {
                insta::assert_snapshot!("ch05_trace", trace_by_actor(&run.stderr))
            });
        }
    }
}

#[test]
fn what_an_ordinary_user_sees() {
    for runtime in rootless_from_chapter(5) {
        let user = user();
        let options = own_maps(&user);
        let script = "id; probe user";
        let run = runtime.run_as(&user, &strs(&options), &["sh", "-c", script]);
        let text = transcript(&[(
            "--rootfs rootfs/busybox --uid-map 0:[UID]:1 --gid-map 0:[GID]:1 -- sh -c 'id; probe user'",
            &run,
        )]);
        let mut settings = transcript_settings();
        settings.add_filter(&format!(r"\b{}\b", user.uid), "[UID]");
        settings.add_filter(&format!(r"\b{}\b", user.gid), "[GID]");
        settings.add_filter(&full_capabilities(), "[ALL CAPABILITIES]");
        // The supplementary groups are the learner's own, whatever they are: a test of
        // their own checks them, so this one holds with or without them.
        settings.add_filter(r" groups=[^\n]*", "");
        settings.bind(|| insta::assert_snapshot!("ch05_rootless_view", text));
    }
}

#[test]
fn an_ordinary_users_own_group_shows_as_root_and_the_others_as_the_overflow_id() {
    for runtime in rootless_from_chapter(5) {
        let user = user();
        let options = own_maps(&user);
        // Started as a login starts a shell: the user's own group is among its groups.
        let show = ["sh", "-c", "grep '^Groups:' /proc/self/status"];
        let run = runtime.run_as(&user, &strs(&options), &show);
        run.expect_success();
        let line = run.stdout.trim().trim_start_matches("Groups:");
        let groups: Vec<&str> = line.split_whitespace().collect();
        assert!(
            groups.iter().all(|group| ["0", "65534"].contains(group)),
            "{}: a group the map does not hold must show as 65534\n{}",
            runtime.name,
            run.report()
        );
        assert!(
            groups.contains(&"0"),
            "{}: the login's own group is among its groups, and shows as root\n{}",
            runtime.name,
            run.report()
        );
    }
}

#[test]
fn a_kernel_setting_that_refuses_user_namespaces_is_named_in_the_error() {
    for runtime in from_chapter_as_root(5) {
        // The runtime is started in a user namespace of the test's own, in which the
        // limit of user namespaces is 0 (the limit is kept per user namespace): the
        // kernel itself then refuses the runtime's CLONE_NEWUSER, and the host's setting
        // is not touched.
        let mut command = runtime.command(&["--userns"], &["true"]);
        // SAFETY: the closure runs in the forked child before exec and makes only system
        // calls (unshare, open, write, close) with static, NUL-terminated strings.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                let write = |path: &std::ffi::CStr, text: &[u8]| {
                    let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
                    let written =
                        fd >= 0 && libc::write(fd, text.as_ptr().cast(), text.len()) > 0;
                    libc::close(fd);
                    written
                };
                if libc::unshare(libc::CLONE_NEWUSER) != 0
                    || !write(c"/proc/self/uid_map", b"0 0 1")
                    || !write(c"/proc/self/setgroups", b"deny")
                    || !write(c"/proc/self/gid_map", b"0 0 1")
                    || !write(c"/proc/sys/user/max_user_namespaces", b"0")
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let run = byoc_tests::run_command(&runtime.name, command);
        run.expect_code(125);
        assert!(
            run.stderr.contains("user.max_user_namespaces = 0")
                && run.stderr.contains("book 5.4"),
            "{}",
            run.report()
        );
    }
}

#[test]
fn a_root_filesystem_the_containers_root_cannot_reach_is_explained() {
    for runtime in from_chapter_as_root(5) {
        // A temp dir only root may enter (mode 0700), with a root filesystem inside:
        // under --userns the container's root is host uid 100000, which may not enter it.
        let private = byoc_tests::host_temp_dir();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700))
            .expect("the temp dir is chmod-able");
        let rootfs = private.path().join("rootfs");
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(byoc_tests::rootfs())
            .arg(&rootfs)
            .status()
            .expect("cp runs");
        assert!(copied.success());
        let mut command = std::process::Command::new(&runtime.path);
        command
            .args(["run", "--userns", "--rootfs"])
            .arg(&rootfs)
            .args(["--", "true"]);
        let run = byoc_tests::run_command(&runtime.name, command);
        run.expect_code(125);
        assert!(
            run.stderr
                .contains("the container's root is host uid 100000")
                && run.stderr.contains("see book 5, \"New options\""),
            "{}",
            run.report()
        );
    }
}

#[test]
fn maps_that_leave_the_containers_root_unmapped_are_refused_in_one_line() {
    for runtime in from_chapter_as_root(5) {
        let network: &[&str] = if runtime.chapter >= byoc_tests::FIRST_NETWORK_CHAPTER {
            &["--net", "none"]
        } else {
            &[]
        };
        for map in ["--uid-map", "--gid-map"] {
            let options = [network, &[map, "1:100000:65536"]].concat();
            let run = runtime.run(&options, &["true"]);
            byoc_tests::assert_one_line_error(
                &runtime,
                &run,
                "leaves the container's root",
            );
            assert!(run.stderr.contains(map), "{}", run.report());
        }
    }
}

#[test]
fn a_map_given_alone_and_refused_for_the_other_kind_says_it_stood_for_both() {
    for runtime in rootless_from_chapter(5) {
        let user = user();
        if user.uid == user.gid {
            // The same number: the reused map is the right one for both, and nothing
            // fails.
            byoc_tests::not_run("the test user's uid and gid are the same number");
            return;
        }
        let uid_map = format!("0:{}:1", user.uid);
        let run = runtime.run_as(&user, &["--uid-map", &uid_map], &["true"]);
        let fix = format!("(give --gid-map 0:{}:1)", user.gid);
        byoc_tests::assert_one_line_error(&runtime, &run, &fix);
        assert!(
            run.stderr.contains("no --gid-map was given"),
            "{}",
            run.report()
        );
    }
}

#[test]
fn root_of_a_user_namespace_gets_a_user_namespace_as_an_ordinary_user_does() {
    if !meets(&[Need::UserNamespaces]) {
        return;
    }
    for runtime in byoc_tests::from_chapter(5) {
        // Root there, but not the machine's root: it may not make device nodes, and may
        // map only its own id 0, so the container gets a user namespace of its own.
        let own = byoc_tests::netns::OwnNetwork::for_runtime(&runtime);
        let options: &[&str] = match runtime.chapter {
            chapter if chapter >= byoc_tests::FIRST_NETWORK_CHAPTER => &["--net", "none"],
            _ => &[],
        };
        let mut command = runtime.command(options, &["probe", "user"]);
        own.enter(&mut command);
        let run = byoc_tests::run_command(&runtime.name, command);
        run.expect_success();
        assert_eq!(run.values("uid_map"), ["0 0 1"], "{}", run.report());
        assert_eq!(run.value("uid"), "0", "{}", run.report());
    }
}

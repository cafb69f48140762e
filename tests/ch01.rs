//! Chapter 1: a container is a process in a chroot. Book: chapter 1.
//! Runs against chapter 1's binary and every later one, unless a test says otherwise.

use byoc_tests::{
    assert_calls_in_order, assert_escape, from_chapter, host_temp_dir, run_command,
};
use byoc_tests::{host_only_file, open_pty, shell_on_a_terminal, stage_for_unprivileged};
use byoc_tests::{runtimes, testing_solutions, trace_by_actor, trace_filters};
use byoc_tests::{transcript, transcript_settings};

#[test]
fn the_command_runs_in_the_root_filesystem() {
    for runtime in from_chapter(1) {
        let run = runtime.run(&[], &["cat", "/etc/os-release"]);
        run.expect_success();
        assert!(
            run.stdout.contains("ID=byoc"),
            "{}: the container should see the busybox root filesystem's /etc\n{}",
            runtime.name,
            run.report()
        );
    }
}

#[test]
fn the_exit_code_is_passed_through() {
    for runtime in from_chapter(1) {
        runtime.run(&[], &["sh", "-c", "exit 3"]).expect_code(3);
        runtime.run(&[], &["true"]).expect_code(0);
    }
}

#[test]
fn help_run_shows_the_usage_of_run() {
    // The harness starts any subcommand the same way it starts `run`, as root and as the
    // rootless user, with the same leak checks: `help` (clap's own) is the one that every
    // chapter has. Chapters 8 to 10 add `ps`, `diff`, `image import` and `pull`.
    for runtime in from_chapter(1) {
        let run = runtime.subcommand(&["help", "run"]);
        run.expect_success();
        let usage = run
            .stdout
            .lines()
            .find(|line| line.starts_with("Usage: "))
            .unwrap_or_default();
        // From chapter 8 `--rootfs` is one of two ways to give the root, so it is among
        // the options, no longer in the usage line itself.
        assert!(
            usage.contains(" run ") && run.stdout.contains("--rootfs <DIR>"),
            "{}: `help run` should show the usage line of `run`\n{}",
            runtime.name,
            run.report()
        );
    }
}

#[test]
fn death_by_signal_gives_128_plus_the_signal() {
    for runtime in from_chapter(1) {
        // SIGSEGV is 11. A fault, unlike `kill`, also ends a PID 1 (chapter 3 on).
        runtime
            .run(&[], &["probe", "segfault"])
            .expect_code(128 + 11);
    }
}

#[test]
fn the_runtime_outlives_a_ctrl_c_meant_for_the_command() {
    for runtime in from_chapter(1) {
        // Ctrl-C reaches the runtime (the container leads a session of its own), and the
        // command decides what it means. This command ignores it; the runtime must not
        // die of it either, but pass it on and still report. Had it died, its exit code
        // would be 130: the signal is pending from the moment kill returns.
        let ignores_sigint = "trap '' INT; echo ready; read line";
        let container = runtime.start_waiting(&[], &["sh", "-c", ignores_sigint]);
        // SAFETY: kill has no memory-safety preconditions.
        assert_eq!(
            unsafe { libc::kill(container.runtime_pid(), libc::SIGINT) },
            0
        );
        container.release().expect_success();
    }
}

#[test]
fn the_runtime_passes_sigterm_on_to_the_command() {
    // The command says it got the signal, and ends with a code of its own: a runtime that
    // died of the signal instead would end with 143, and the command would say nothing.
    let says_so = "trap 'echo got SIGTERM; exit 3' TERM; echo ready; read line";
    for runtime in from_chapter(1) {
        let container = runtime.start_waiting(&[], &["sh", "-c", says_so]);
        // SAFETY: kill has no memory-safety preconditions.
        assert_eq!(
            unsafe { libc::kill(container.runtime_pid(), libc::SIGTERM) },
            0
        );
        let run = container.finish();
        run.expect_code(3);
        assert_eq!(run.stdout.trim(), "got SIGTERM", "{}", run.report());
    }
}

#[test]
fn the_environment_is_clean() {
    for runtime in from_chapter(1) {
        let mut command = runtime.command(&[], &["probe", "env"]);
        command.env("HOST_SECRET", "must-not-leak");
        let run = run_command(&runtime.name, command);
        run.expect_success();
        assert_eq!(
            run.values("env"),
            [
                "HOME=/root",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "{}: the container should get only PATH, HOME and TERM",
            runtime.name
        );
    }
}

#[test]
fn a_command_is_found_by_name_or_by_path() {
    for runtime in from_chapter(1) {
        runtime.run(&[], &["probe", "pid"]).expect_success();
        runtime.run(&[], &["/bin/probe", "pid"]).expect_success();
    }
}

/// One line on stderr, naming what went wrong: no backtrace, no wall of text.
fn assert_one_error_line(run: &byoc_tests::Run, mentions: &str) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{}: expected one error line\n{}",
        run.runtime,
        run.report()
    );
    assert!(
        lines[0].starts_with("byoc: ") && lines[0].contains(mentions),
        "{}: the error should mention {mentions:?}\n{}",
        run.runtime,
        run.report()
    );
}

#[test]
fn a_missing_command_gives_127_and_one_clear_line() {
    for runtime in from_chapter(1) {
        let run = runtime.run(&[], &["no-such-command"]);
        run.expect_code(127);
        assert_one_error_line(&run, "\"no-such-command\" not found");
    }
}

#[test]
fn a_missing_path_gives_127_and_says_the_file_is_missing_not_its_interpreter() {
    for runtime in from_chapter(1) {
        let run = runtime.run(&[], &["/bin/nosuch"]);
        run.expect_code(127);
        assert_one_error_line(&run, "\"/bin/nosuch\": ENOENT: there is no such file");
        assert!(!run.stderr.contains("interpreter"), "{}", run.report());
    }
}

#[test]
fn a_command_that_is_not_executable_gives_126_and_one_clear_line() {
    for runtime in from_chapter(1) {
        let run = runtime.run(&[], &["/etc/passwd"]);
        run.expect_code(126);
        assert_one_error_line(&run, "cannot run \"/etc/passwd\": EACCES");
    }
}

#[test]
fn a_missing_root_filesystem_gives_125_and_one_clear_line() {
    let missing = host_temp_dir().path().join("no-such-rootfs");
    for runtime in from_chapter(1) {
        let mut command = std::process::Command::new(&runtime.path);
        command
            .arg("run")
            .arg("--rootfs")
            .arg(&missing)
            .args(["--", "true"]);
        let run = run_command(&runtime.name, command);
        run.expect_code(125);
        assert_one_error_line(&run, "root filesystem");
    }
}

#[test]
fn without_root_the_error_says_so() {
    // Chapters 1 to 4 need root; chapter 5 adds containers for ordinary users. The
    // runtime and the root filesystem are staged where the unprivileged user can reach
    // them, so the run gets as far as the call that needs root, wherever the kit itself
    // is.
    for runtime in runtimes(1..=4) {
        let staged = stage_for_unprivileged(&runtime);
        let mut command = std::process::Command::new(&staged.binary);
        command
            .arg("run")
            .arg("--rootfs")
            .arg(&staged.rootfs)
            .args(["--", "true"]);
        std::os::unix::process::CommandExt::uid(&mut command, 65534);
        std::os::unix::process::CommandExt::gid(&mut command, 65534);
        let run = run_command(&runtime.name, command);
        run.expect_code(125);
        assert_one_error_line(&run, "EPERM: Operation not permitted (you are not root");
    }
}

#[test]
fn the_hosts_own_root_is_refused_and_left_untouched() {
    let old_root = std::path::Path::new("/.oldroot");
    let was_there = old_root.exists();
    for runtime in from_chapter(1) {
        let mut command = std::process::Command::new(&runtime.path);
        command.args(["run", "--rootfs", "/", "--", "true"]);
        let run = run_command(&runtime.name, command);
        run.expect_code(125);
        assert_one_error_line(&run, "is the host's own \"/\"");
        assert_eq!(
            old_root.exists(),
            was_there,
            "{}: the runtime created /.oldroot on the host",
            runtime.name
        );
    }
}

#[test]
fn no_descriptor_of_the_runtime_reaches_the_container() {
    for runtime in from_chapter(1) {
        // A descriptor the runtime inherits and does not know of: an open directory of
        // the host, at number 7, not close-on-exec. Through it, a container could reach
        // the host's files (runc's CVE-2024-21626).
        let host_dir = host_temp_dir();
        let dir = std::fs::File::open(host_dir.path()).expect("the temp dir opens");
        let raw = std::os::fd::AsRawFd::as_raw_fd(&dir);
        let mut command = runtime.command(&[], &["probe", "fds"]);
        // SAFETY: dup2 is safe to call in the forked child before exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                if libc::dup2(raw, 7) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let run = run_command(&runtime.name, command);
        run.expect_success();
        assert_eq!(run.value("fds"), "0 1 2", "{}", run.report());
    }
}

#[test]
fn the_working_directory_does_not_lead_out_of_the_root() {
    for runtime in from_chapter(1) {
        // No privilege needed: only `cd ..` from where the command starts. After chroot
        // without chdir("/"), that is outside the new root (book 1.3).
        let (_dir, marker, _) = host_only_file();
        let run = runtime.run(&[], &["probe", "walk-up", &marker]);
        run.expect_success();
        assert_eq!(
            run.value("walk-up"),
            "host file not visible",
            "{}: the command started outside its root\n{}",
            runtime.name,
            run.report()
        );
    }
}

#[test]
fn chroot_is_no_jail_a_root_process_walks_out() {
    for runtime in runtimes(1..=1) {
        assert_escape(&runtime, "host file visible", "ch01_escape");
    }
}

#[test]
fn the_trace_tells_the_story_of_a_run() {
    for runtime in runtimes(1..=1) {
        let run = runtime.trace(&[], &["true"]);
        run.expect_success();
        assert_calls_in_order(&run, &["socketpair", "fork", "write", "read", "wait4"]);
        assert_calls_in_order(
            &run,
            &["read", "chroot", "chdir", "close_range", "execve"],
        );
        if testing_solutions() {
            trace_filters().bind(|| {
                insta::assert_snapshot!("ch01_trace", trace_by_actor(&run.stderr))
            });
        }
    }
}

#[test]
fn what_each_failure_looks_like() {
    for runtime in from_chapter(1) {
        let mut missing_rootfs = std::process::Command::new(&runtime.path);
        missing_rootfs.args(["run", "--rootfs", "/nonexistent/rootfs", "--", "true"]);
        let missing_rootfs = run_command(&runtime.name, missing_rootfs);
        let missing_command = runtime.run(&[], &["no-such-command"]);
        let not_executable = runtime.run(&[], &["/etc/passwd"]);
        let text = transcript(&[
            ("--rootfs /nonexistent/rootfs -- true", &missing_rootfs),
            (
                "--rootfs rootfs/busybox -- no-such-command",
                &missing_command,
            ),
            ("--rootfs rootfs/busybox -- /etc/passwd", &not_executable),
        ]);
        transcript_settings().bind(|| insta::assert_snapshot!("ch01_failures", text));
    }
}

#[test]
fn the_container_cannot_type_into_the_runtimes_terminal() {
    for runtime in from_chapter(1) {
        for options in [&[][..], &["-t"][..]] {
            // The runtime's stdout and stderr are a terminal, as when a person runs it.
            // Whatever the container pushes into a terminal's input (TIOCSTI) must not
            // reach that one: it would be run by the host's shell after the container
            // ends.
            let mut pty = open_pty().raw();
            let mut command = runtime.command(options, &["probe", "tiocsti"]);
            command
                .stdout(pty.terminal_stdio())
                .stderr(pty.terminal_stdio());
            let mut started = byoc_tests::start(command);
            let shown = pty.read_until("tiocsti: devtty");
            let status = started.wait();
            assert!(status.success(), "{}: {shown}", runtime.name);
            assert_eq!(
                pty.pending_input(),
                0,
                "{} {options:?}: the container pushed input into the runtime's terminal:\n{shown}",
                runtime.name
            );
        }
    }
}

#[test]
fn an_interactive_shell_works_under_dash_t() {
    for runtime in from_chapter(1) {
        let (mut pty, mut shell) = shell_on_a_terminal(&runtime);
        pty.type_text("echo answer-$((6*7))\r");
        let shown = pty.read_until("answer-42");
        pty.type_text("exit 7\r");
        let status = shell.wait();
        assert_eq!(status.code(), Some(7), "{}: {shown}", runtime.name);
    }
}

#[test]
fn the_command_starts_with_no_signal_ignored() {
    for runtime in from_chapter(1) {
        // The Rust runtime ignores SIGPIPE; the command must not inherit that.
        let run = runtime.run(&[], &["probe", "ignored"]);
        run.expect_success();
        assert_eq!(run.value("ignored"), "none", "{}", run.report());
    }
}

#[test]
fn under_dash_t_a_resized_terminal_is_resized_inside() {
    for runtime in from_chapter(1) {
        let (mut pty, mut shell) = shell_on_a_terminal(&runtime);
        pty.resize(33, 77);
        // SAFETY: kill has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(shell.id() as i32, libc::SIGWINCH) }, 0);
        // The size reaches the container when the runtime has handled the signal; a
        // command typed after the kill may be read before that, so ask until it shows.
        let mut shown = String::new();
        for _ in 0..50 {
            pty.type_text("stty size\r");
            shown = pty.read_until("\n/ # ");
            if shown.contains("33 77") {
                break;
            }
        }
        pty.type_text("exit\r");
        shell.wait();
        assert!(shown.contains("33 77"), "{}: {shown}", runtime.name);
    }
}

#[test]
fn a_root_filesystem_behind_a_closed_directory_says_so() {
    if !byoc_tests::meets(&[byoc_tests::Need::Root, byoc_tests::Need::UnprivilegedUser]) {
        return;
    }
    for runtime in from_chapter(1)
        .into_iter()
        .filter(|runtime| runtime.rootless.is_none())
    {
        let user = byoc_tests::test_user().expect("a test user");
        let closed = byoc_tests::host_temp_dir();
        let only_root = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        std::fs::set_permissions(closed.path(), only_root).expect("close the directory");
        let rootfs = closed.path().join("rootfs");
        std::fs::create_dir(&rootfs).expect("make a root filesystem directory");
        // The binary is staged where the user can reach it, wherever the kit itself is.
        let staged = stage_for_unprivileged(&runtime);
        let mut command = std::process::Command::new(&staged.binary);
        command
            .args(["run", "--rootfs"])
            .arg(&rootfs)
            .args(["--", "true"]);
        std::os::unix::process::CommandExt::uid(&mut command, user.uid);
        std::os::unix::process::CommandExt::gid(&mut command, user.gid);
        let run = run_command(&runtime.name, command);
        run.expect_code(125);
        assert_one_error_line(
            &run,
            "cannot be reached: a directory on its path is closed to you",
        );
    }
}

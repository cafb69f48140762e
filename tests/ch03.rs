//! Chapter 3: a PID namespace, a fresh /proc and a tiny init. Book: chapter 3.
//! Runs against chapter 3's binary and every later one, unless a test says otherwise.

use byoc_tests::{assert_calls_in_order, from_chapter, runtimes, testing_solutions};
use byoc_tests::{trace_by_actor, trace_filters, transcript, transcript_settings};

const READY_THEN_SLEEP: [&str; 3] = ["sh", "-c", "echo ready; exec sleep 30"];

#[test]
fn the_command_is_pid_1() {
    for runtime in from_chapter(3) {
        let run = runtime.run(&[], &["probe", "pid"]);
        run.expect_success();
        assert_eq!(run.value("pid"), "1", "{}", run.report());
        assert_eq!(
            run.value("ppid"),
            "0",
            "{}: PID 1's parent is outside",
            runtime.name
        );
    }
}

#[test]
fn proc_shows_only_the_containers_processes() {
    for runtime in from_chapter(3) {
        let run = runtime.run(&[], &["probe", "ps"]);
        run.expect_success();
        assert_eq!(run.value("pids"), "1", "{}", run.report());
        let mounts = runtime.run(&[], &["probe", "mounts"]);
        assert!(
            mounts.values("mount").contains(&"/proc proc".to_string()),
            "{}",
            mounts.report()
        );
    }
}

#[test]
fn without_an_init_an_orphan_stays_a_zombie() {
    for runtime in from_chapter(3) {
        let run = runtime.run(&[], &["probe", "orphans"]);
        run.expect_success();
        assert_eq!(
            run.value("zombies"),
            "1",
            "{}: the probe is PID 1 and never waits",
            run.report()
        );
    }
}

#[test]
fn the_init_reaps_orphans() {
    for runtime in from_chapter(3) {
        let run = runtime.run(&["--init"], &["probe", "orphans"]);
        run.expect_success();
        assert_eq!(run.value("zombies"), "0", "{}", run.report());
    }
}

#[test]
fn with_an_init_the_command_is_pid_2() {
    for runtime in from_chapter(3) {
        let run = runtime.run(&["--init"], &["probe", "pid"]);
        run.expect_success();
        assert_eq!(
            (run.value("pid"), run.value("ppid")),
            ("2".into(), "1".into()),
            "{}",
            run.report()
        );
    }
}

#[test]
fn the_init_passes_the_exit_code_through() {
    for runtime in from_chapter(3) {
        runtime
            .run(&["--init"], &["sh", "-c", "exit 7"])
            .expect_code(7);
        runtime
            .run(&["--init"], &["probe", "segfault"])
            .expect_code(128 + 11);
    }
}

#[test]
fn sigint_and_sigterm_reach_the_command_through_the_init() {
    for runtime in from_chapter(3) {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            let container = runtime.start_waiting(&["--init"], &READY_THEN_SLEEP);
            send(container.runtime_pid(), signal);
            // The runtime forwards it to the init, the init to the command. sleep has no
            // handler and is not PID 1, so it dies of the signal: 128 + its number.
            container.finish().expect_code(128 + signal);
        }
    }
}

#[test]
fn without_an_init_pid_1_ignores_sigterm() {
    for runtime in from_chapter(3) {
        let mut container =
            runtime.start_waiting_command(runtime.trace_command(&[], &READY_THEN_SLEEP));
        send(container.runtime_pid(), libc::SIGTERM);
        // The kernel drops the signal inside kill() itself: once the runtime's trace says
        // kill returned, PID 1 must be alive, with no SIGTERM waiting to be delivered.
        container.wait_for_stderr_line("SIGTERM) = 0");
        let status = std::fs::read_to_string(format!(
            "/proc/{}/status",
            container.container_pid()
        ))
        .expect("PID 1 is still there");
        let pending = |field: &str| {
            let mask = status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .map(str::trim)
                .unwrap_or("0");
            u64::from_str_radix(mask, 16).unwrap_or(0) & (1 << (libc::SIGTERM - 1)) != 0
        };
        assert!(
            !status.contains("State:\tZ") && !pending("SigPnd:") && !pending("ShdPnd:"),
            "{}: PID 1 has no SIGTERM handler, so the kernel should drop the signal:\n{status}",
            runtime.name
        );
        // SIGKILL from outside the namespace is the one signal PID 1 cannot ignore.
        send(container.container_pid(), libc::SIGKILL);
        container.finish().expect_code(128 + 9);
    }
}

fn send(pid: i32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(result, 0, "kill({pid}, {signal}) failed");
}

#[test]
fn without_an_ipc_namespace_the_hosts_message_queues_show() {
    // Chapter 3 only: chapter 4 gives the container an IPC namespace, and the queue
    // vanishes.
    let queue = HostQueue::create();
    for runtime in runtimes(3..=3) {
        let run = runtime.run(&[], &["probe", "ipc"]);
        run.expect_success();
        let visible: Vec<String> =
            run.value("msqids").split(' ').map(str::to_string).collect();
        assert!(visible.contains(&queue.id.to_string()), "{}", run.report());
    }
}

/// A System V message queue made on the host for a test, removed when the test ends.
struct HostQueue {
    id: i32,
}

impl HostQueue {
    pub fn create() -> HostQueue {
        // SAFETY: msgget has no memory-safety preconditions.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
        assert!(id >= 0, "msgget failed on the host");
        HostQueue { id }
    }
}

impl Drop for HostQueue {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no buffer; the pointer may be null.
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

#[test]
fn the_trace_tells_the_story_of_a_run() {
    for runtime in runtimes(3..=3) {
        let run = runtime.trace(&["--init"], &["true"]);
        run.expect_success();
        assert_calls_in_order(
            &run,
            &["sigprocmask", "clone", "write", "read", "sigwait", "wait4"],
        );
        assert_calls_in_order(
            &run,
            &["read", "prctl", "recv", "getpid", "pivot_root", "mount"],
        );
        assert_calls_in_order(&run, &["close_range", "fork", "sigprocmask", "execve"]);
        if testing_solutions() {
            trace_filters().bind(|| {
                insta::assert_snapshot!("ch03_trace", trace_by_actor(&run.stderr))
            });
        }
    }
}

#[test]
fn what_pid_1_sees() {
    for runtime in from_chapter(3) {
        let pid = runtime.run(&[], &["probe", "pid"]);
        let ps = runtime.run(&[], &["probe", "ps"]);
        let text = transcript(&[
            ("--rootfs rootfs/busybox -- probe pid", &pid),
            ("--rootfs rootfs/busybox -- probe ps", &ps),
        ]);
        transcript_settings().bind(|| insta::assert_snapshot!("ch03_pid_1", text));
    }
}

#[test]
fn what_pid_1_sees_with_and_without_an_init() {
    for runtime in from_chapter(3) {
        let pid = runtime.run(&[], &["probe", "pid"]);
        let orphans = runtime.run(&[], &["probe", "orphans"]);
        let init_pid = runtime.run(&["--init"], &["probe", "pid"]);
        let init_ps = runtime.run(&["--init"], &["probe", "ps"]);
        let init_orphans = runtime.run(&["--init"], &["probe", "orphans"]);
        let text = transcript(&[
            ("--rootfs rootfs/busybox -- probe pid", &pid),
            ("--rootfs rootfs/busybox -- probe orphans", &orphans),
            ("--rootfs rootfs/busybox --init -- probe pid", &init_pid),
            ("--rootfs rootfs/busybox --init -- probe ps", &init_ps),
            (
                "--rootfs rootfs/busybox --init -- probe orphans",
                &init_orphans,
            ),
        ]);
        transcript_settings().bind(|| insta::assert_snapshot!("ch03_pid_view", text));
    }
}

#[test]
fn a_root_filesystem_without_proc_is_refused_before_anything_starts() {
    let rootfs = byoc_tests::host_temp_dir();
    for dir in ["dev", "tmp"] {
        std::fs::create_dir(rootfs.path().join(dir)).unwrap();
    }
    for runtime in from_chapter(3) {
        let mut command = std::process::Command::new(&runtime.path);
        command
            .arg("run")
            .arg("--rootfs")
            .arg(rootfs.path())
            .args(["--", "true"]);
        let run = byoc_tests::run_command(&runtime.name, command);
        run.expect_code(125);
        assert!(run.stderr.contains("has no /proc"), "{}", run.report());
    }
}

#[test]
fn a_symlink_at_proc_never_leads_the_procfs_out_of_the_root_filesystem() {
    for runtime in byoc_tests::from_chapter_as_root(3) {
        let root = byoc_tests::hostile::HostileRoot::new();
        root.symlink("proc", &root.victim.join("inner"));
        let options: &[&str] = match runtime.chapter {
            chapter if chapter >= byoc_tests::FIRST_NETWORK_CHAPTER => &["--net", "none"],
            _ => &[],
        };
        let run = root.run(&runtime, options, &["true"]);
        root.assert_victim_unchanged(&runtime, &run);
        byoc_tests::assert_one_line_error(&runtime, &run, "/proc in the root filesystem");
    }
}

#[test]
fn the_init_shows_the_container_nothing_of_the_hosts_command_line_or_environment() {
    const SECRET: &str = "MY_SECRET_TOKEN";
    for runtime in from_chapter(3) {
        let network: &[&str] = if runtime.chapter >= byoc_tests::FIRST_NETWORK_CHAPTER {
            &["--net", "none"]
        } else {
            &[]
        };
        let options = [network, &["--init"]].concat();
        let show = "tr '\\0' '\\n' < /proc/1/cmdline; tr '\\0' '\\n' < /proc/1/environ; echo shown";
        let mut command = runtime.command(&options, &["sh", "-c", show]);
        command.env(SECRET, "hunter2");
        let run = byoc_tests::run_command(&runtime.name, command);
        run.expect_success();
        assert!(run.stdout.contains("shown"), "{}", run.report());
        for word in [SECRET, "hunter2", "--init", "--rootfs", "run"] {
            assert!(
                !run.stdout.lines().any(|line| line.contains(word)),
                "{}: the container read {word:?} in PID 1's command line or environment\n{}",
                runtime.name,
                run.report()
            );
        }
    }
}

#[test]
fn the_init_runs_from_a_sealed_copy_of_the_runtime_never_from_the_hosts_binary() {
    const READY_THEN_SHOW_THE_INIT: [&str; 3] =
        ["sh", "-c", "echo ready; read go; readlink /proc/1/exe"];
    for runtime in from_chapter(3) {
        let container = runtime.start_waiting(&["--init"], &READY_THEN_SHOW_THE_INIT);
        let init = format!("/proc/{}/exe", container.container_pid());
        let seals = seals_of(&init);
        let same_bytes = std::fs::read(&init).ok() == std::fs::read(&runtime.path).ok();
        let run = container.release();
        run.expect_success();
        let shown = run.stdout.trim();
        assert!(
            shown.starts_with("/memfd:")
                && !shown.contains(&*runtime.path.to_string_lossy()),
            "{}: the container's /proc/1/exe leads to {shown:?}, not to a memfd\n{}",
            runtime.name,
            run.report()
        );
        assert_eq!(
            seals.as_deref(),
            Ok("WRITE|SHRINK|GROW|SEAL"),
            "{}: the init's binary is not sealed against writing",
            runtime.name
        );
        assert!(
            same_bytes,
            "{}: the init's memfd is not a copy of the runtime",
            runtime.name
        );
        let exe = runtime.run(&["--init"], &["readlink", "/proc/1/exe"]);
        let text = transcript(&[(
            "--rootfs rootfs/busybox --init -- readlink /proc/1/exe",
            &exe,
        )]);
        transcript_settings().bind(|| insta::assert_snapshot!("ch03_init_exe", text));
    }
}

/// The seals on the file `path` leads to, named as `F_SEAL_*` without the prefix, or why
/// they could not be read (a file on a disk has none: `EINVAL`).
fn seals_of(path: &str) -> Result<String, String> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).map_err(|error| format!("{path}: {error}"))?;
    // SAFETY: F_GET_SEALS only reads the flags of a descriptor we hold open.
    let bits = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    if bits < 0 {
        return Err(format!("{path}: {}", std::io::Error::last_os_error()));
    }
    let names = [
        (libc::F_SEAL_WRITE, "WRITE"),
        (libc::F_SEAL_SHRINK, "SHRINK"),
        (libc::F_SEAL_GROW, "GROW"),
        (libc::F_SEAL_SEAL, "SEAL"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    Ok(set.join("|"))
}

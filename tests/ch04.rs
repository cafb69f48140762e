//! Chapter 4: UTS and IPC namespaces. Book: chapter 4.
//! Runs against chapter 4's binary and every later one, unless a test says otherwise.

use byoc_tests::{assert_calls_in_order, from_chapter, runtimes, testing_solutions};
use byoc_tests::{trace_by_actor, trace_filters, transcript, transcript_settings};

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn hostname_sets_the_containers_name_and_not_the_hosts() {
    let before = host_name();
    for runtime in from_chapter(4) {
        let run = runtime.run(&["--hostname", "box"], &["probe", "hostname"]);
        run.expect_success();
        assert_eq!(run.value("hostname"), "box", "{}", run.report());
    }
    assert_eq!(host_name(), before, "the host's own name must not change");
}

#[test]
fn the_default_hostname_is_a_short_container_id() {
    let short_id = regex::Regex::new("^[0-9a-f]{12}$").unwrap();
    for runtime in from_chapter(4) {
        let first = runtime.run(&[], &["probe", "hostname"]);
        let second = runtime.run(&[], &["probe", "hostname"]);
        let (first, second) = (first.value("hostname"), second.value("hostname"));
        assert!(
            short_id.is_match(&first),
            "{}: {first:?} is not 12 hex digits",
            runtime.name
        );
        assert_ne!(
            first, second,
            "{}: each container gets its own id",
            runtime.name
        );
    }
}

#[test]
fn an_invalid_hostname_is_refused_before_anything_starts() {
    for runtime in from_chapter(4) {
        let run = runtime.run(&["--hostname", "not a name"], &["true"]);
        run.expect_code(125);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.report());
        assert!(
            run.stderr.contains("hostname \"not a name\" is not valid"),
            "{}",
            run.report()
        );
    }
}

#[test]
fn the_hosts_message_queues_are_not_visible() {
    // SAFETY: msgget has no memory-safety preconditions.
    let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    assert!(id >= 0, "msgget failed on the host");
    let runs: Vec<_> = from_chapter(4)
        .into_iter()
        .map(|runtime| runtime.run(&[], &["probe", "ipc"]))
        .collect();
    // SAFETY: IPC_RMID takes no buffer; the pointer may be null.
    unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    for run in runs {
        run.expect_success();
        assert_eq!(
            run.value("msqids"),
            "none",
            "{}: a new IPC namespace starts empty",
            run.runtime
        );
    }
}

#[test]
fn the_trace_tells_the_story_of_a_run() {
    for runtime in runtimes(4..=4) {
        let run = runtime.trace(&["--hostname", "box"], &["true"]);
        run.expect_success();
        assert_calls_in_order(
            &run,
            &["sigprocmask", "clone", "write", "read", "sigwait", "wait4"],
        );
        assert_calls_in_order(
            &run,
            &["read", "prctl", "getpid", "sethostname", "pivot_root"],
        );
        assert_calls_in_order(&run, &["mount", "close_range", "sigprocmask", "execve"]);
        if testing_solutions() {
            trace_filters().bind(|| {
                insta::assert_snapshot!("ch04_trace", trace_by_actor(&run.stderr))
            });
        }
    }
}

#[test]
fn what_the_container_sees() {
    for runtime in from_chapter(4) {
        let named =
            runtime.run(&["--hostname", "box"], &["sh", "-c", "hostname; probe ipc"]);
        let refused = runtime.run(&["--hostname", "not a name"], &["true"]);
        let text = transcript(&[
            (
                "--rootfs rootfs/busybox --hostname box -- sh -c 'hostname; probe ipc'",
                &named,
            ),
            (
                "--rootfs rootfs/busybox --hostname 'not a name' -- true",
                &refused,
            ),
        ]);
        transcript_settings()
            .bind(|| insta::assert_snapshot!("ch04_container_view", text));
    }
}

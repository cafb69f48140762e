//! What the book shows of a run: transcripts and `--trace` narrations for snapshots, with
//! the filters that hide what changes from run to run, and the `chroot` escape check.

use std::path::Path;

use crate::{rootfs, Run, Runtime};

/// Keeps the lines of a `--trace` narration in a stable order for a snapshot. The
/// start-up channel orders the set-up, but after `execve` the processes run at the same
/// time and their last lines can interleave differently on each run. So lines are grouped
/// by label (`[parent]`, `[child]`, `[init]`, or any other a later chapter adds), labels
/// in the order they first speak, and keep their order within a label. Every line of the
/// narration is kept: one with no label is a group of its own, at the end.
pub fn trace_by_actor(stderr: &str) -> String {
    let label = |line: &str| -> String {
        match line.split_once("] ") {
            Some((label, _)) if line.starts_with('[') => format!("{label}]"),
            _ => String::new(),
        }
    };
    let mut labels: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let this = label(line);
        if !labels.contains(&this) {
            labels.push(this);
        }
    }
    labels.sort_by_key(|this| this.is_empty()); // unlabelled last; the sort is stable
    let mut grouped = String::new();
    for this in &labels {
        for line in stderr.lines().filter(|line| &label(line) == this) {
            grouped.push_str(line);
            grouped.push('\n');
        }
    }
    grouped
}

/// The names of the calls in a narration, in order, as the parent, child or init made
/// them.
pub fn calls(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|line| line.starts_with('['))
        .filter_map(|line| {
            let (_, call) = line.split_once("] ")?;
            Some(call.split('(').next()?.to_string())
        })
        .collect()
}

/// Asserts that `expected` calls appear in this order (other calls may come between).
pub fn assert_calls_in_order(run: &Run, expected: &[&str]) {
    let made = calls(&run.stderr);
    let mut position = 0;
    for call in expected {
        match made[position..].iter().position(|made| made == call) {
            Some(offset) => position += offset + 1,
            None => panic!(
                "{}: --trace does not show {call}() where it should; expected, in order: \
                 {expected:?}\n{}",
                run.runtime,
                run.report()
            ),
        }
    }
}

/// Insta settings for a trace snapshot: PIDs and paths that change from run to run.
pub fn trace_filters() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    let rootfs = rootfs().display().to_string();
    settings.add_filter(&regex::escape(&rootfs), "[ROOTFS]");
    settings.add_filter(r"= \d+ \(", "= [PID] (");
    settings.add_filter(r"((?:fork|clone)\(.*\)) = [1-9]\d*", "$1 = [PID]");
    settings.add_filter(r"\b(wait4|kill)\(\d+", "$1([PID]");
    settings.add_filter(r"setsid\(\) = \d+", "setsid() = [PID]");
    settings.add_filter(r"/proc/\d+/", "/proc/[PID]/");
    // Descriptors: their numbers depend on what else a process has open, not on the
    // lesson.
    settings.add_filter(r"/proc/self/fd/\d+", "/proc/self/fd/[FD]");
    settings.add_filter(r"(?m)(\bopen(?:at2)?\(.*\)) = \d+$", "$1 = [FD]");
    settings.add_filter(r"[0-9a-f]{12}", "[ID]");
    // The size of the runtime's binary changes with every build.
    settings.add_filter(r"(copy_file_range\(.*\)) = \d+", "$1 = [SIZE]");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}

/// A file that exists only on the host, in a temp dir removed when the test ends, and
/// snapshot settings that show its path as `[HOST]/host-only-file`.
pub fn host_only_file() -> (tempfile::TempDir, String, insta::Settings) {
    let dir = host_temp_dir();
    let marker = dir.path().join("host-only-file");
    std::fs::write(&marker, "on the host").expect("the marker is written");
    let mut settings = transcript_settings();
    settings.add_filter(&regex::escape(&dir.path().display().to_string()), "[HOST]");
    (dir, marker.display().to_string(), settings)
}

/// Runs the classic `chroot` escape (book section 1.4) in a container: checks what the
/// probe saw before and after it, and snapshots the run as `snapshot`.
pub fn assert_escape(runtime: &Runtime, after: &str, snapshot: &str) {
    let (_dir, marker, mut settings) = host_only_file();
    // The snapshot is the chapter's, beside the chapters' others, not this module's.
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
    let run = runtime.run(&[], &["probe", "escape", &marker]);
    run.expect_success();
    assert_eq!(
        run.value("before"),
        "host file not visible",
        "{}",
        run.report()
    );
    assert_eq!(run.value("after"), after, "{}", run.report());
    let command_line = format!("--rootfs rootfs/busybox -- probe escape {marker}");
    let text = transcript(&[(&command_line, &run)]);
    settings.bind(|| insta::assert_snapshot!(snapshot, text));
}

/// A directory on the host, outside every container, removed when the test ends.
pub fn host_temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("byoc-test-")
        .tempdir()
        .expect("a temp dir on the host")
}

/// A run written the way a terminal shows it, for snapshots the book includes:
/// the command, what it printed, and its exit code.
pub fn transcript(runs: &[(&str, &Run)]) -> String {
    let mut text = String::new();
    for (command_line, run) in runs {
        text.push_str(&format!("$ byoc run {command_line}\n"));
        text.push_str(&run.stdout);
        text.push_str(&run.stderr);
        text.push_str(&format!("[exit code {}]\n", run.code));
    }
    text
}

/// Insta settings for a transcript: snapshot names without the module, no expression.
pub fn transcript_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}

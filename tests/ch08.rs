//! Chapter 8: layer storage, an overlay of read-only layers and a layer of the
//! container's own. Book: chapter 8. Runs against chapter 8's binary and every later one,
//! as root and as the rootless test user.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use byoc_tests::hostile::listing;
use byoc_tests::{assert_calls_in_order, assert_one_line_error, from_chapter};
use byoc_tests::{testing_solutions, trace_by_actor, trace_filters, transcript_settings};
use byoc_tests::{Run, Runtime, TestLayers, Waiting};

/// No network (these tests are about the root), and no container kept when it ends.
const QUIET: [&str; 3] = ["--net", "none", "--rm"];

/// No network, and the container kept when it ends, for `ps`, `diff` and `rm`.
fn kept(name: &str) -> [&str; 4] {
    ["--net", "none", "--name", name]
}

/// The layers every test stacks on: the busybox root filesystem, lowest, then `more`.
fn stack<'a>(
    runtime: &Runtime,
    base: &'a mut PathBuf,
    more: &[&'a Path],
) -> Vec<&'a Path> {
    *base = runtime.rootfs();
    let mut layers = vec![base.as_path()];
    layers.extend_from_slice(more);
    layers
}

/// Starts a container on `layers` that runs `script`, then says `ready` and waits.
fn start_on(runtime: &Runtime, layers: &[&Path], script: &str) -> Waiting {
    let script = format!("{script}; echo ready; read go");
    let command = runtime
        .on_layers(layers, &QUIET, &["sh", "-c", &script])
        .command();
    runtime.start_waiting_command(command)
}

/// The one container directory under the data root: the container that is running.
fn only_container(runtime: &Runtime) -> PathBuf {
    let dirs = runtime.container_dirs();
    assert_eq!(dirs.len(), 1, "{}: containers: {dirs:?}", runtime.name);
    dirs[0].clone()
}

/// The layers hold what they held before the test: the same names, modes and bytes.
fn assert_layers_as_they_were(runtime: &Runtime, layers: &TestLayers, before: &str) {
    let now = listing(layers.path());
    assert_eq!(now, before, "{}: a layer changed", runtime.name);
}

fn assert_no_container_left(runtime: &Runtime) {
    let left = runtime.container_dirs();
    assert!(
        left.is_empty(),
        "{}: containers left: {left:?}",
        runtime.name
    );
}

#[test]
fn a_changed_file_is_copied_up_and_the_layer_keeps_its_own() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let top = layers.layer("top", &[("hello", "from the layer\n")]);
        let before = listing(layers.path());
        let inode = top.join("hello").metadata().unwrap().ino();
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&top]);
        let container = start_on(&runtime, &stacked, "echo changed >> /hello");
        let upper = only_container(&runtime).join("upper");
        let copied = std::fs::read_to_string(upper.join("hello"));
        let run = container.release();
        run.expect_success();
        assert_eq!(
            copied.as_deref().ok(),
            Some("from the layer\nchanged\n"),
            "{}: the changed file is not in the container's upper layer\n{}",
            runtime.name,
            run.report()
        );
        assert_layers_as_they_were(&runtime, &layers, &before);
        assert_eq!(top.join("hello").metadata().unwrap().ino(), inode);
        assert_no_container_left(&runtime);
    }
}

#[test]
fn a_deleted_file_is_a_whiteout_and_a_directory_made_again_is_opaque() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let top = layers.layer("top", &[("gone", "x\n"), ("dir/old", "old\n")]);
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&top]);
        let script = "rm /gone && rm -r /dir && mkdir /dir && echo new > /dir/new";
        let container = start_on(&runtime, &stacked, script);
        let upper = only_container(&runtime).join("upper");
        let gone = std::fs::symlink_metadata(upper.join("gone")).ok();
        let opaque = byoc_tests::overlay_opaque(&upper.join("dir"));
        let run = container.release();
        run.expect_success();
        let whiteout = gone
            .as_ref()
            .is_some_and(|m| m.file_type().is_char_device() && m.rdev() == 0);
        assert!(
            whiteout,
            "{}: no whiteout for /gone: {gone:?}",
            runtime.name
        );
        assert!(opaque, "{}: /dir made again is not opaque", runtime.name);
        assert!(top.join("gone").exists() && top.join("dir/old").exists());
        assert_no_container_left(&runtime);
    }
}

#[test]
fn two_containers_on_the_same_layers_see_only_their_own_writes() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let top = layers.layer("top", &[("shared", "as the layer has it\n")]);
        let before = listing(layers.path());
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&top]);
        let write = |who: &str| format!("echo {who} > /shared && echo {who} > /{who}");
        let first = start_on(&runtime, &stacked, &write("first"));
        let second = start_on(&runtime, &stacked, &write("second"));
        let look = "cat /shared; ls /first /second 2>&1";
        let first_sees = runtime
            .on_layers(&stacked, &QUIET, &["sh", "-c", look])
            .run();
        let (first_run, second_run) = (first.release(), second.release());
        first_run.expect_success();
        second_run.expect_success();
        // A third container, started while they ran, saw neither's writes.
        assert!(
            first_sees.stdout.starts_with("as the layer has it\n")
                && first_sees.stdout.contains("/first: No such file")
                && first_sees.stdout.contains("/second: No such file"),
            "{}: a container saw another's writes\n{}",
            runtime.name,
            first_sees.report()
        );
        assert_layers_as_they_were(&runtime, &layers, &before);
        assert_no_container_left(&runtime);
    }
}

#[test]
fn a_higher_layer_hides_a_lower_one_with_files_whiteouts_and_opaque_directories() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let low = layers.layer(
            "low",
            &[
                ("file", "low\n"),
                ("gone", "low\n"),
                ("dir/low-only", "low\n"),
            ],
        );
        let middle = layers.layer("middle", &[("file", "middle\n")]);
        layers.whiteout(&middle, "gone");
        layers.opaque(&middle, "dir");
        layers.write(&middle, "dir/middle-only", "middle\n");
        let top = layers.layer("top", &[("top-only", "top\n")]);
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&low, &middle, &top]);
        let look = "cat /file /top-only; ls /dir; ls /gone 2>&1";
        let run = runtime
            .on_layers(&stacked, &QUIET, &["sh", "-c", look])
            .run();
        assert_eq!(
            run.stdout,
            "middle\ntop\nmiddle-only\nls: /gone: No such file or directory\n",
            "{}: the layers do not stack as overlay stacks them\n{}",
            runtime.name,
            run.report()
        );
        assert_no_container_left(&runtime);
    }
}

#[test]
fn sixty_four_layers_stack_and_options_past_a_page_are_refused_in_one_line() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let many = layers.many(64);
        let mut base = PathBuf::new();
        let more: Vec<&Path> = many.iter().map(PathBuf::as_path).collect();
        let stacked = stack(&runtime, &mut base, &more);
        let look = ["cat", "/layer-0", "/layer-63"];
        let run = runtime.on_layers(&stacked, &QUIET, &look).run();
        assert_eq!(run.stdout, "0\n63\n", "{}", run.report());
        // Long names: 40 layers of 120 bytes each are more than a page of options.
        let long = TestLayers::for_runtime(&runtime);
        let deep: Vec<PathBuf> = (0..40)
            .map(|n| long.layer(&format!("{n:03}-{}", "l".repeat(100)), &[]))
            .collect();
        let more: Vec<&Path> = deep.iter().map(PathBuf::as_path).collect();
        let stacked = stack(&runtime, &mut base, &more);
        let refused = runtime.on_layers(&stacked, &QUIET, &["true"]).run();
        assert_one_line_error(&runtime, &refused, "mount(2) takes at most 4095");
        assert_no_container_left(&runtime);
    }
}

#[test]
fn bad_layers_are_refused_in_one_line_and_nothing_is_left() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let top = layers.layer("top", &[("file", "x\n")]);
        let file = top.join("file");
        let missing = layers.path().join("nosuch");
        let rootfs = runtime.rootfs();
        let cases: [(Vec<&Path>, &str); 4] = [
            (vec![&rootfs, &missing], "cannot be used"),
            (vec![&rootfs, &file], "is not a directory"),
            (vec![&rootfs, &top, &top], "is given twice"),
            (vec![&top], "no layer has a directory /dev"),
        ];
        for (stacked, expected) in cases {
            let run = runtime.on_layers(&stacked, &QUIET, &["true"]).run();
            assert_one_line_error(&runtime, &run, expected);
        }
        let both = runtime
            .invocation()
            .args(["run", "--rootfs"])
            .args([&rootfs])
            .args(["--layer"])
            .args([&top])
            .args(["--", "true"])
            .run();
        assert_one_line_error(&runtime, &both, "--rootfs and --layer both say");
        assert_no_container_left(&runtime);
    }
}

/// `ps -a --format json` of `runtime`'s data root, one object per container.
fn ps_all(runtime: &Runtime) -> Vec<serde_json::Value> {
    let run = runtime.subcommand(&["ps", "-a", "--format", "json"]);
    run.expect_success();
    run.stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("ps prints JSON"))
        .collect()
}

#[test]
fn a_named_container_stays_for_ps_and_diff_until_rm_and_the_layers_stay_as_they_were() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let top = layers.layer(
            "top",
            &[
                ("hello", "x\n"),
                ("gone", "x\n"),
                ("dir/old", "x\n"),
                ("dir/kept", "x\n"),
            ],
        );
        let before = listing(layers.path());
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&top]);
        let script = "echo more >> /hello; rm /gone; mkdir -p /new/deeper; \
                      echo n > /new/deeper/file; rm -r /dir; mkdir /dir; echo k > /dir/kept; \
                      exit 3";
        let run = runtime
            .on_layers(&stacked, &kept("web"), &["sh", "-c", script])
            .run();
        run.expect_code(3);
        let listed = ps_all(&runtime);
        assert_eq!(listed.len(), 1, "{}: ps -a: {listed:?}", runtime.name);
        assert_eq!(listed[0]["Names"], "web");
        assert_eq!(listed[0]["State"], "exited");
        assert_eq!(listed[0]["ExitCode"], 3);
        let running = runtime.subcommand(&["ps", "--format", "json"]);
        assert_eq!(
            running.stdout, "",
            "{}: ps lists an exited container",
            runtime.name
        );
        // What `docker diff` prints for the same changes: a changed directory as C, then
        // what is in it; a deletion as D; the old names of a directory made again as D.
        let diff = runtime.subcommand(&["diff", "web"]);
        assert_eq!(
            diff.stdout,
            "C /dir\nD /dir/old\nC /dir/kept\nD /gone\nC /hello\nA /new\nA /new/deeper\n\
             A /new/deeper/file\n",
            "{}: diff\n{}",
            runtime.name,
            diff.report()
        );
        runtime.subcommand(&["rm", "web"]).expect_success();
        assert!(
            ps_all(&runtime).is_empty(),
            "{}: rm left it in ps",
            runtime.name
        );
        assert_no_container_left(&runtime);
        assert_layers_as_they_were(&runtime, &layers, &before);
    }
}

#[test]
fn of_ten_starts_with_one_name_at_once_exactly_one_gets_it() {
    for runtime in from_chapter(8) {
        let rootfs = runtime.rootfs();
        let runs: Vec<byoc_tests::Run> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..10)
                .map(|_| {
                    let rootfs = &rootfs;
                    let runtime = &runtime;
                    scope.spawn(move || {
                        runtime.on_layers(&[rootfs], &kept("only"), &["true"]).run()
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().unwrap())
                .collect()
        });
        let winners = runs.iter().filter(|run| run.code == 0).count();
        assert_eq!(
            winners, 1,
            "{}: {winners} starts got the name",
            runtime.name
        );
        for run in runs.iter().filter(|run| run.code != 0) {
            assert_one_line_error(&runtime, run, "the name \"only\" is in use");
        }
        assert_eq!(runtime.container_dirs().len(), 1, "{}", runtime.name);
        runtime.subcommand(&["rm", "only"]).expect_success();
        assert_no_container_left(&runtime);
    }
}

#[test]
fn rm_refuses_a_running_container_and_rm_f_ends_it_first() {
    for runtime in from_chapter(8) {
        let rootfs = runtime.rootfs();
        let script = "echo ready; exec sleep 60";
        let command = runtime
            .on_layers(&[&rootfs], &kept("busy"), &["sh", "-c", script])
            .command();
        let container = runtime.start_waiting_command(command);
        let refused = runtime.subcommand(&["rm", "busy"]);
        assert_one_line_error(&runtime, &refused, "container busy is running");
        let listed = ps_all(&runtime);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["State"], "running");
        runtime.subcommand(&["rm", "-f", "busy"]).expect_success();
        let ended = container.finish();
        assert_eq!(ended.code, 137, "{}: {}", runtime.name, ended.report());
        assert_no_container_left(&runtime);
    }
}

#[test]
fn a_container_whose_runtime_was_killed_shows_as_exited_and_its_rm_is_done_by_the_next_start(
) {
    for runtime in from_chapter(8) {
        let rootfs = runtime.rootfs();
        let mut killed = Vec::new();
        for (options, name) in [(kept("killed"), "killed"), (kept("gone"), "gone")] {
            let mut options = options.to_vec();
            if name == "gone" {
                options.push("--rm");
            }
            let command = runtime
                .on_layers(
                    &[&rootfs],
                    &options,
                    &["sh", "-c", "echo ready; exec sleep 60"],
                )
                .command();
            let mut container = runtime.start_waiting_command(command);
            // SAFETY: kill has no memory-safety preconditions.
            let sent = unsafe { libc::kill(container.runtime_pid(), libc::SIGKILL) };
            assert_eq!(sent, 0, "kill the runtime");
            let _ = container.child.wait();
            // Dropped at the end, the harness removes the cgroup the runtime left (chapter
            // 7's own test shows the next start under the same parent doing it).
            killed.push(container);
        }
        let listed = ps_all(&runtime);
        assert_eq!(listed.len(), 2, "{}: {listed:?}", runtime.name);
        for entry in &listed {
            assert_eq!(entry["State"], "exited", "{}: {entry}", runtime.name);
            assert_eq!(entry["Status"], "Exited (unknown)");
        }
        // The next start removes what --rm asked for, and only that.
        runtime
            .on_layers(&[&rootfs], &QUIET, &["true"])
            .run()
            .expect_success();
        let names: Vec<String> = ps_all(&runtime)
            .iter()
            .map(|entry| entry["Names"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(names, ["killed"], "{}", runtime.name);
        runtime.subcommand(&["rm", "killed"]).expect_success();
        assert_no_container_left(&runtime);
        drop(killed);
    }
}

#[test]
fn bad_names_and_a_diff_of_a_plain_root_are_refused_in_one_line() {
    for runtime in from_chapter(8) {
        let rootfs = runtime.rootfs();
        for bad in ["a", "a/b", "../x", "-x"] {
            let run = runtime.on_layers(&[&rootfs], &kept(bad), &["true"]).run();
            assert_one_line_error(&runtime, &run, "is not a container name");
        }
        let plain = runtime.run(&["--net", "none", "--name", "plain"], &["true"]);
        plain.expect_success();
        let diff = runtime.subcommand(&["diff", "plain"]);
        assert_one_line_error(&runtime, &diff, "has no layer of its own");
        let missing = runtime.subcommand(&["rm", "nosuch"]);
        assert_one_line_error(&runtime, &missing, "no container is called \"nosuch\"");
        runtime.subcommand(&["rm", "plain"]).expect_success();
        assert_no_container_left(&runtime);
    }
}

#[test]
fn volumes_keep_their_data_past_rm_and_a_read_only_one_refuses_writes() {
    for runtime in from_chapter(8) {
        let dirs = TestLayers::for_runtime(&runtime);
        let host_dir = dirs.layer("host-dir", &[]);
        let rootfs = runtime.rootfs();
        let host_volume = format!("{}:/host", host_dir.display());
        let read_only = format!("{}:/ro:ro", host_dir.display());
        let options = [
            "--net",
            "none",
            "--name",
            "vol",
            "-v",
            "data:/data",
            "-v",
            &host_volume,
            "-v",
            &read_only,
        ];
        let script = "echo named > /data/f && echo host > /host/g && \
                      if echo x > /ro/h; then echo ro-written; fi";
        let run = runtime
            .on_layers(&[&rootfs], &options, &["sh", "-c", script])
            .run();
        run.expect_success();
        assert!(
            !run.stdout.contains("ro-written"),
            "{}: :ro took a write",
            runtime.name
        );
        assert!(
            run.stderr.contains("Read-only file system"),
            "{}",
            run.report()
        );
        let in_use = runtime.subcommand(&["volume", "rm", "data"]);
        assert_one_line_error(
            &runtime,
            &in_use,
            "volume \"data\" is in use by container vol",
        );
        runtime.subcommand(&["rm", "vol"]).expect_success();
        let named = runtime.data_dir().join("volumes/data/f");
        assert_eq!(
            std::fs::read_to_string(&named).ok().as_deref(),
            Some("named\n")
        );
        let on_host = std::fs::read_to_string(host_dir.join("g"));
        assert_eq!(on_host.ok().as_deref(), Some("host\n"), "{}", runtime.name);
        assert!(!host_dir.join("h").exists());
        let listed = runtime.subcommand(&["volume", "ls"]);
        assert_eq!(listed.stdout, "VOLUME NAME\ndata\n", "{}", listed.report());
        runtime
            .subcommand(&["volume", "rm", "data"])
            .expect_success();
        assert!(!named.exists(), "{}: volume rm left the data", runtime.name);
        assert_no_container_left(&runtime);
    }
}

#[test]
fn a_symlink_in_a_layer_at_a_volumes_path_never_leads_the_mount_out_of_the_root() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let victim = layers.layer("victim", &[("keep", "the host's\n")]);
        let before = listing(&victim);
        let top = layers.layer("top", &[]);
        std::os::unix::fs::symlink(&victim, top.join("data")).expect("the symlink");
        let source = layers.layer("source", &[("planted", "from the volume\n")]);
        let volume = format!("{}:/data", source.display());
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&top]);
        let options = ["--net", "none", "--rm", "-v", &volume];
        let run = runtime
            .on_layers(&stacked, &options, &["ls", "/data"])
            .run();
        assert_eq!(
            listing(&victim),
            before,
            "{}: the victim changed\n{}",
            runtime.name,
            run.report()
        );
        assert!(!victim.join("planted").exists());
        // Looked up inside the root, the symlink leads nowhere there: refused, naming it.
        assert_one_line_error(&runtime, &run, "/data in the root filesystem");
        assert_no_container_left(&runtime);
    }
}

#[test]
fn a_symlink_in_a_layer_on_the_way_to_the_workdir_never_leads_out_of_the_root() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let victim = layers.layer("victim", &[("keep", "the host's\n")]);
        let before = listing(&victim);
        let top = layers.layer("top", &[]);
        std::os::unix::fs::symlink(&victim, top.join("work")).expect("the symlink");
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&top]);
        let options = ["--net", "none", "--rm", "-w", "/work/made"];
        let run = runtime.on_layers(&stacked, &options, &["pwd"]).run();
        assert_eq!(
            listing(&victim),
            before,
            "{}: the victim changed\n{}",
            runtime.name,
            run.report()
        );
        assert!(
            !victim.join("made").exists(),
            "{}: -w made a host directory",
            runtime.name
        );
        assert_no_container_left(&runtime);
    }
}

#[test]
fn bad_volumes_are_refused_in_one_line() {
    for runtime in from_chapter(8) {
        let rootfs = runtime.rootfs();
        for (volume, expected) in [
            (
                "./here:/data",
                "neither an absolute host path nor a volume name",
            ),
            ("/tmp:data", "is not an absolute path in the container"),
            ("/tmp:/a/../etc", "has a '..' in it"),
            ("/tmp:/data:rx", "is not a volume"),
            ("/nosuch-dir-of-the-host:/data", "cannot be used"),
        ] {
            let options = ["--net", "none", "--rm", "-v", volume];
            let run = runtime.on_layers(&[&rootfs], &options, &["true"]).run();
            assert_one_line_error(&runtime, &run, expected);
        }
        assert_no_container_left(&runtime);
    }
}

#[test]
fn workdir_is_made_in_the_containers_layer_and_user_is_taken_on() {
    for runtime in byoc_tests::from_chapter_as_root(8) {
        let rootfs = runtime.rootfs();
        let options = ["--net", "none", "--rm", "-w", "/srv/app", "-u", "1000:1001"];
        let run = runtime
            .on_layers(&[&rootfs], &options, &["sh", "-c", "pwd; id -u; id -g"])
            .run();
        assert_eq!(run.stdout, "/srv/app\n1000\n1001\n", "{}", run.report());
        assert!(
            !rootfs.join("srv/app").exists(),
            "{}: -w wrote into a layer",
            runtime.name
        );
        let plain = runtime.run(&["--net", "none", "-w", "/nosuch"], &["true"]);
        assert_one_line_error(&runtime, &plain, "has no /nosuch for -w");
    }
}

#[test]
fn the_trace_tells_the_story_of_a_run_on_layers() {
    // The trace of the machine's root: chapter 8's own binary, as its book shows it.
    let root_runtimes = byoc_tests::from_chapter_as_root(8).into_iter();
    for runtime in root_runtimes.filter(|runtime| runtime.chapter == 8) {
        let layers = TestLayers::for_runtime(&runtime);
        let app = layers.layer("app", &[("hello", "from the app layer\n")]);
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&app]);
        let run = runtime
            .on_layers(&stacked, &QUIET, &["true"])
            .trace(true)
            .run();
        run.expect_success();
        let canonical = |path: &Path| path.canonicalize().unwrap().display().to_string();
        let lower = format!("lowerdir={}:{},", canonical(&app), canonical(&base));
        assert!(
            run.stderr.contains(&lower),
            "{}: no overlay mount with {lower:?}\n{}",
            runtime.name,
            run.report()
        );
        assert_calls_in_order(&run, &["getpid", "mount", "mount", "mount", "pivot_root"]);
        if testing_solutions() {
            // The lines that make the root: the rest is chapter 7's story, and the
            // cgroup's lines differ between v1 and v2 machines.
            let story: String = run
                .stderr
                .lines()
                .filter(|line| {
                    ["/containers/", "MS_PRIVATE", "pivot_root"]
                        .iter()
                        .any(|part| line.contains(part))
                        && !line.contains("cgroup")
                })
                .map(|line| format!("{line}\n"))
                .collect();
            let mut settings = trace_filters();
            settings.add_filter(&regex::escape(&canonical(&base)), "[ROOTFS]");
            settings.add_filter(&regex::escape(&canonical(layers.path())), "[LAYERS]");
            let data_root = runtime.data_dir().display().to_string();
            settings.add_filter(&regex::escape(&data_root), "[DATA ROOT]");
            settings
                .bind(|| insta::assert_snapshot!("ch08_trace", trace_by_actor(&story)));
        }
    }
}

/// A command line and what it printed, as a terminal shows it, for the book.
fn shown(command_line: &str, run: &Run) -> String {
    format!("$ byoc {command_line}\n{}{}", run.stdout, run.stderr)
}

#[test]
fn diff_shows_what_a_container_added_changed_and_deleted_and_rm_takes_it_away() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let app = layers.layer(
            "app",
            &[
                ("www/index.html", "<p>hello</p>\n"),
                ("cache/a", "a\n"),
                ("cache/b", "b\n"),
                ("etc/app.conf", "debug=no\n"),
            ],
        );
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&app]);
        let script = "echo changed >> /www/index.html && mkdir /www/logs && \
                      echo started > /www/logs/today && rm /etc/app.conf && rm -r /cache && \
                      mkdir /cache && echo scratch > /tmp/scratch";
        let run = runtime
            .on_layers(&stacked, &kept("web"), &["sh", "-c", script])
            .run();
        run.expect_success();
        let diff = runtime.subcommand(&["diff", "web"]);
        let changes: Vec<&str> = diff.stdout.lines().collect();
        for change in [
            "C /www/index.html",
            "D /etc/app.conf",
            "D /cache/a",
            "A /www/logs/today",
        ] {
            assert!(
                changes.contains(&change),
                "{}: diff has no {change:?}\n{}",
                runtime.name,
                diff.report()
            );
        }
        assert!(
            !diff.stdout.contains("/tmp"),
            "{}: /tmp is a tmpfs, not the container's layer\n{}",
            runtime.name,
            diff.report()
        );
        let rm = runtime.subcommand(&["rm", "web"]);
        rm.expect_success();
        assert_no_container_left(&runtime);
        if testing_solutions() && runtime.chapter == 8 {
            let command_line = format!(
                "run --net none --name web --layer rootfs/busybox --layer app -- sh -c '{script}'"
            );
            let text = [
                shown(&command_line, &run),
                shown("diff web", &diff),
                shown("rm web", &rm),
            ]
            .concat();
            transcript_settings().bind(|| insta::assert_snapshot!("ch08_diff", text));
        }
    }
}

#[test]
fn ps_lists_the_running_containers_and_with_a_the_ended_ones_too() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let app = layers.layer("app", &[]);
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&app]);
        let job = runtime.on_layers(&stacked, &kept("job"), &["false"]).run();
        job.expect_code(1);
        // ps lists the newest first, by the second each was made in.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let serve = ["probe", "serve", "8080"];
        let command = runtime.on_layers(&stacked, &kept("web"), &serve).command();
        let web = runtime.start_waiting_command(command);
        let running = runtime.subcommand(&["ps"]);
        let all = runtime.subcommand(&["ps", "-a"]);
        web.release().expect_success();
        runtime.subcommand(&["rm", "job", "web"]).expect_success();
        assert_no_container_left(&runtime);
        let rows: Vec<&str> = running.stdout.lines().skip(1).collect();
        assert!(
            rows.len() == 1 && rows[0].contains("Up ") && rows[0].ends_with(" web"),
            "{}: ps lists more or less than the running web\n{}",
            runtime.name,
            running.report()
        );
        let rows: Vec<&str> = all.stdout.lines().skip(1).collect();
        assert!(
            rows.len() == 2
                && rows[0].ends_with(" web")
                && rows[1].contains("Exited (1)"),
            "{}: ps -a does not list web, then job as exited with 1\n{}",
            runtime.name,
            all.report()
        );
        if testing_solutions() && runtime.chapter == 8 {
            let (running, all) = (&running.stdout, &all.stdout);
            let text = format!(
                "$ byoc ps\n{}$ byoc ps -a\n{}",
                stable_table(running, layers.path()),
                stable_table(all, layers.path())
            );
            transcript_settings().bind(|| insta::assert_snapshot!("ch08_ps", text));
        }
    }
}

/// `ps`'s table with what differs on each run (ids, times, where the layers are) in
/// brackets, and its columns lined up again as `ps` lines them up.
fn stable_table(table: &str, layers: &Path) -> String {
    let layers = layers.canonicalize().unwrap().display().to_string();
    let id = regex::Regex::new(r"^[0-9a-f]{12}$").unwrap();
    let time =
        regex::Regex::new(r"Less than a second|About a minute|\d+ seconds?").unwrap();
    let gap = regex::Regex::new(r" {3,}").unwrap();
    let rows: Vec<Vec<String>> = table
        .lines()
        .map(|row| {
            gap.split(row)
                .map(|cell| {
                    let cell = id.replace(cell, "[ID]").replace(&layers, "[LAYERS]");
                    time.replace_all(&cell, "[N] seconds").into_owned()
                })
                .collect()
        })
        .collect();
    let width = |column: usize| {
        rows.iter()
            .filter_map(|row| row.get(column))
            .map(|cell| cell.chars().count())
            .max()
            .unwrap_or(0)
    };
    let mut shown = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(column, cell)| format!("{cell:<0$}", width(column)))
            .collect();
        shown.push_str(cells.join("   ").trim_end());
        shown.push('\n');
    }
    shown
}

#[test]
fn two_containers_on_the_same_layers_each_diff_their_own_and_rm_leaves_the_layers_whole()
{
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let top = layers.layer("top", &[("shared", "as the layer has it\n")]);
        let before = listing(layers.path());
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&top]);
        let start = |name: &str| {
            let script = format!("echo {name} > /{name}-file; echo ready; read go");
            let options = kept(name);
            let command = runtime
                .on_layers(&stacked, &options, &["sh", "-c", &script])
                .command();
            runtime.start_waiting_command(command)
        };
        let (one, two) = (start("one"), start("two"));
        let running = ps_all(&runtime);
        let diffs = ["one", "two"].map(|name| runtime.subcommand(&["diff", name]).stdout);
        one.release().expect_success();
        two.release().expect_success();
        assert_eq!(running.len(), 2, "{}: ps -a: {running:?}", runtime.name);
        assert_eq!(
            diffs,
            ["A /one-file\n", "A /two-file\n"],
            "{}",
            runtime.name
        );
        assert_eq!(
            ps_all(&runtime).len(),
            2,
            "{}: ps -a after they ended",
            runtime.name
        );
        runtime.subcommand(&["rm", "one", "two"]).expect_success();
        assert_no_container_left(&runtime);
        assert_layers_as_they_were(&runtime, &layers, &before);
    }
}

#[test]
fn renaming_a_directory_of_a_lower_layer_gives_exdev_and_mv_copies_it_instead() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let top = layers.layer("top", &[("old/file", "x\n")]);
        let mut base = PathBuf::new();
        let stacked = stack(&runtime, &mut base, &[&top]);
        let script = "probe rename /old /new; mv /old /moved && cat /moved/file";
        let run = runtime
            .on_layers(&stacked, &QUIET, &["sh", "-c", script])
            .run();
        // Overlay cannot rename a directory of a lower layer without redirect_dir, which
        // userxattr always turns off and the kit turns off for root's mounts too (so the
        // upper directory is the same on every kernel): rename(2) fails with EXDEV, and mv
        // falls back to copying.
        assert_eq!(run.stdout, "rename: EXDEV\nx\n", "{}", run.report());
        assert!(
            top.join("old/file").exists(),
            "{}: the layer lost /old",
            runtime.name
        );
    }
}

#[test]
fn what_a_rootless_container_gave_to_its_other_ids_goes_with_it() {
    use byoc_tests::Need;
    let needs = [
        Need::UnprivilegedUser,
        Need::UserNamespaces,
        Need::SubordinateIds,
    ];
    if !byoc_tests::meets(&needs) {
        return;
    }
    let rootless = from_chapter(8).into_iter().filter(|r| r.rootless.is_some());
    for runtime in rootless {
        let rootfs = runtime.rootfs();
        // Id 1000 inside is one of the user's subordinate ids on the host: not the user's.
        let script = "mkdir /d && touch /d/f && chown -R 1000:1000 /d";
        let run = runtime
            .on_layers(&[&rootfs], &QUIET, &["sh", "-c", script])
            .run();
        run.expect_success();
        assert!(!run.stderr.contains("cannot remove"), "{}", run.report());
        assert_no_container_left(&runtime);
    }
}

#[test]
fn a_forged_name_record_is_refused_and_the_directory_it_aims_at_stays() {
    for runtime in from_chapter(8) {
        let layers = TestLayers::for_runtime(&runtime);
        let victim = layers.layer("victim", &[("keep", "the host's\n")]);
        let before = listing(&victim);
        // A name that leads out of containers/, and one whose id has no directory.
        let names = runtime.data_dir().join("names");
        std::fs::create_dir_all(&names).expect("the names directory");
        let forged = format!("../../../../../../..{}\n", victim.display());
        std::fs::write(names.join("evil"), forged).expect("a forged name");
        layers.own(&names.join("evil"));
        layers.own(&names);
        let run = runtime.subcommand(&["rm", "evil"]);
        assert_one_line_error(&runtime, &run, "is not a container id");
        assert_eq!(
            listing(&victim),
            before,
            "{}: the victim changed",
            runtime.name
        );
        std::fs::remove_dir_all(&names).expect("remove the forged names");
    }
}

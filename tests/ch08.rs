//! Chapter 8: layer storage, an overlay of read-only layers and a layer of the
//! container's own. Book: chapter 8. Runs against chapter 8's binary and every later one,
//! as root and as the rootless test user.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use byoc_tests::hostile::listing;
use byoc_tests::{assert_one_line_error, from_chapter, Runtime, TestLayers, Waiting};

/// No network: these tests are about the root.
const QUIET: [&str; 2] = ["--net", "none"];

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
        assert_eq!(
            listing(layers.path()),
            before,
            "{}: a layer changed",
            runtime.name
        );
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
        let opaque = overlay_opaque(&upper.join("dir"));
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

/// Whether overlay marked `dir` opaque: `trusted.overlay.opaque` as the machine's root
/// mounts it, `user.overlay.opaque` in a user namespace.
fn overlay_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| xattr_get(dir, name).as_deref() == Some(b"y".as_slice()))
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path_c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let name_c = std::ffi::CString::new(name).ok()?;
    let mut value = [0u8; 16];
    // SAFETY: the strings are NUL-terminated; the buffer's pointer and length match.
    let size = unsafe {
        libc::lgetxattr(
            path_c.as_ptr(),
            name_c.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    (size >= 0).then(|| value[..size as usize].to_vec())
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
        assert_eq!(
            listing(layers.path()),
            before,
            "{}: a layer changed",
            runtime.name
        );
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

//! Chapter 9: OCI images, a store of them, hostile layers refused, containers from an
//! image's config, commit and save. Book: chapter 9. Runs against chapter 9's binary and
//! every later one, as root and as the rootless test user; skopeo and umoci, where they
//! are the point, as the peers that read and write the same formats.

use std::path::{Path, PathBuf};
use std::process::Command;

use byoc_tests::hostile::listing;
use byoc_tests::{assert_one_line_error, from_chapter, from_chapter_as_root, not_run};
use byoc_tests::{digest_of, LayerTar, Run, Runtime, Stored, TestImage, TestLayers};
use byoc_tests::{testing_solutions, trace_by_actor, trace_filters};
use serde_json::json;

/// The busybox root filesystem as an image's lowest layer.
fn base_layer() -> Vec<u8> {
    LayerTar::of_dir(&byoc_tests::rootfs()).finish()
}

/// `size` letters that compress poorly.
fn noise(size: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (b'a' + (state % 26) as u8) as char
        })
        .collect()
}

/// A directory for the test's images that the runtime's user can read.
fn image_dir(runtime: &Runtime) -> TestLayers {
    TestLayers::for_runtime(runtime)
}

fn image(runtime: &Runtime, args: &[&str]) -> Run {
    let mut all = vec!["image"];
    all.extend_from_slice(args);
    runtime.subcommand(&all)
}

/// `run --net none --rm OPTIONS IMAGE COMMAND...`.
fn run_image(runtime: &Runtime, options: &[&str], image: &str, command: &[&str]) -> Run {
    runtime
        .invocation()
        .args(["run", "--net", "none", "--rm"])
        .args(options)
        .args([image])
        .args(command)
        .run()
}

/// Imports the layout at `layout` as `name`, which must work.
fn import(runtime: &Runtime, layout: &Path, name: &str) {
    image(runtime, &["import", &layout.display().to_string(), name]).expect_success();
}

/// The names under a directory of the data root (`layers`, `tmp`, ...), sorted.
fn names_in(runtime: &Runtime, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(runtime.data_dir().join(dir))
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn blobs(runtime: &Runtime) -> Vec<String> {
    names_in(runtime, "images/blobs/sha256")
}

/// An image whose process says hello from its config.
fn hello_image() -> TestImage {
    let app = LayerTar::new()
        .dir("app/", 0o755)
        .file(
            "app/hello.sh",
            "echo \"hello from $WHO in $(pwd) as $(id -u):$(id -g)\"\n",
            0o755,
        )
        .file(
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n",
            0o644,
        )
        .finish();
    TestImage::new(
        vec![base_layer(), app],
        json!({
            "Entrypoint": ["/bin/sh"],
            "Cmd": ["/app/hello.sh"],
            "Env": ["WHO=the image", "PATH=/bin:/sbin:/usr/bin"],
            "WorkingDir": "/app",
            "User": "app",
        }),
    )
}

#[test]
fn an_image_runs_the_process_its_config_gives_and_the_command_line_overrides_it() {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let layout = hello_image().write_layout(&dir.path().join("hello"), "1");
        import(&runtime, &layout, "hello:1");
        let inspected = image(&runtime, &["inspect", "hello:1"]);
        inspected.expect_success();
        let shown: serde_json::Value = serde_json::from_str(&inspected.stdout).unwrap();
        assert_eq!(shown["name"], "hello:1", "{}", runtime.name);
        assert_eq!(shown["config"]["User"], "app", "{}", runtime.name);
        let layers = shown["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "{}", runtime.name);
        let top = layers[1]["directory"].as_str().unwrap();
        assert!(
            Path::new(top).join("app/hello.sh").is_file(),
            "{}: {top}",
            runtime.name
        );
        let plain = run_image(&runtime, &[], "hello:1", &[]);
        plain.expect_success();
        assert_eq!(
            plain.stdout, "hello from the image in /app as 1000:1001\n",
            "{}",
            runtime.name
        );
        let changed = run_image(
            &runtime,
            &["-e", "WHO=you", "-w", "/tmp", "-u", "0"],
            "hello:1",
            &["-c", "echo $WHO $(pwd) $(id -u)"],
        );
        changed.expect_success();
        assert_eq!(changed.stdout, "you /tmp 0\n", "{}", runtime.name);
        let entry = run_image(&runtime, &["--entrypoint", "/bin/echo"], "hello:1", &[]);
        entry.expect_success();
        assert_eq!(
            entry.stdout, "\n",
            "{}: --entrypoint keeps the image's Cmd",
            runtime.name
        );
        let echoed = run_image(&runtime, &["--entrypoint", "echo"], "hello:1", &["hi"]);
        assert_eq!(echoed.stdout, "hi\n", "{}", runtime.name);
    }
}

#[test]
fn layer_directories_are_named_by_chain_id_and_a_second_image_shares_them() {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let base = base_layer();
        let top = LayerTar::new().file("top", "top\n", 0o644).finish();
        let other = LayerTar::new().file("other", "other\n", 0o644).finish();
        let first =
            TestImage::new(vec![base.clone(), top.clone()], json!({"Cmd": ["sh"]}));
        let second =
            TestImage::new(vec![base.clone(), other.clone()], json!({"Cmd": ["sh"]}));
        import(
            &runtime,
            &first.write_layout(&dir.path().join("a"), "1"),
            "a:1",
        );
        import(
            &runtime,
            &second.write_layout(&dir.path().join("b"), "1"),
            "b:1",
        );
        let base_id = digest_of(&base);
        let chain = |below: &str, tar: &[u8]| {
            digest_of(format!("{below} {}", digest_of(tar)).as_bytes())
        };
        let mut expected: Vec<String> = [
            base_id.clone(),
            chain(&base_id, &top),
            chain(&base_id, &other),
        ]
        .iter()
        .map(|id| id.trim_start_matches("sha256:").to_string())
        .collect();
        expected.sort();
        assert_eq!(
            names_in(&runtime, "layers"),
            expected,
            "{}: layers/",
            runtime.name
        );
        assert!(
            names_in(&runtime, "tmp").is_empty(),
            "{}: tmp/ kept",
            runtime.name
        );
    }
}

/// The tree under `/t` as a container sees it: each name's kind, mode, owner and size,
/// a regular file's bytes' sum and time, a symlink's target.
const TREE_LISTING: &str = "cd /t && find . | sort | while read -r f; do \
    stat -c '%n %F %a %u %g' \"$f\"; \
    if [ -L \"$f\" ]; then readlink \"$f\"; stat -c %Y \"$f\"; \
    elif [ -f \"$f\" ]; then md5sum < \"$f\"; stat -c %Y \"$f\"; fi; done";

/// The layers of an image with everything a layer may legitimately hold.
fn everything_image() -> TestImage {
    let long_name = format!("t/{}", "long-name-".repeat(15));
    let second = LayerTar::new()
        .dir("t/", 0o755)
        .file("t/keep", "kept\n", 0o644)
        .file("t/gone", "deleted above\n", 0o644)
        .dir("t/dir/", 0o755)
        .file("t/dir/a", "a\n", 0o644)
        .file("t/dir/b", "b\n", 0o644)
        .file("t/swap", "a file first\n", 0o644)
        .dir("t/swap2/", 0o750)
        .file("t/swap2/x", "x\n", 0o644)
        .dir("t/hard/", 0o755)
        .owned(
            tar::EntryType::Regular,
            "t/hard/original",
            b"shared\n",
            0o640,
            (1000, 1000),
        )
        .file(
            "t/\u{d55c}\u{ad6d}\u{c5b4}-\u{fc}n\u{ef}c\u{f8}d\u{e9}",
            "non-ascii\n",
            0o644,
        )
        .fifo("t/fifo")
        .file("t/private", "0600\n", 0o600)
        .file("t/run", "#!/bin/sh\n", 0o755)
        .symlink("t/link", "keep")
        .symlink("t/absolute", "/t/keep")
        .file_with_xattrs("t/xattr", "with an attribute\n", &[("user.test", b"hello")])
        .file_with_xattrs(&long_name, "a long name\n", &[])
        .finish();
    let third = LayerTar::new()
        .dir("t/", 0o755)
        .whiteout("t/", "gone")
        .dir("t/dir/", 0o700)
        .opaque("t/dir/")
        .file("t/dir/c", "c\n", 0o644)
        .whiteout("t/", "swap")
        .dir("t/swap/", 0o755)
        .file("t/swap/inside", "a directory now\n", 0o644)
        .whiteout("t/", "swap2")
        .file("t/swap2", "a file now\n", 0o644)
        .hardlink("t/hard/below", "t/hard/original")
        .file("t/hard/new", "new\n", 0o644)
        .hardlink("t/hard/new-link", "t/hard/new")
        .finish();
    TestImage::new(vec![base_layer(), second, third], json!({"Cmd": ["sh"]}))
}

#[test]
fn the_tree_a_container_sees_is_the_tree_umoci_unpacks_from_the_same_image() {
    if !has("umoci") {
        return not_run("umoci is not installed (apt-get install umoci)");
    }
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let layout = everything_image().write_layout(&dir.path().join("all"), "latest");
        import(&runtime, &layout, "all:1");
        let ours = run_image(&runtime, &[], "all:1", &["sh", "-c", TREE_LISTING]);
        ours.expect_success();
        let bundle = dir.path().join("bundle");
        let mut unpack = Command::new("umoci");
        unpack
            .args(["unpack", "--image"])
            .arg(format!("{}:latest", layout.display()));
        if runtime.rootless.is_some() {
            unpack.arg("--rootless");
        }
        let made = unpack.arg(&bundle).output().expect("start umoci");
        assert!(
            made.status.success(),
            "umoci unpack: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let rootfs = bundle.join("rootfs");
        if let Some(rootless) = &runtime.rootless {
            // What an ordinary user's unpack gives: every file its own.
            let owner = format!("{}:{}", rootless.user.uid, rootless.user.gid);
            let chown = Command::new("chown")
                .args(["-hR", &owner])
                .arg(&bundle)
                .status();
            assert!(chown.unwrap().success());
        }
        let rootfs_text = rootfs.display().to_string();
        let theirs = runtime
            .invocation()
            .args([
                "run",
                "--net",
                "none",
                "--rm",
                "--rootfs",
                &rootfs_text,
                "--",
            ])
            .args(["sh", "-c", TREE_LISTING])
            .run();
        theirs.expect_success();
        assert_eq!(
            ours.stdout, theirs.stdout,
            "{}: the kit's tree (left) and umoci's",
            runtime.name
        );
        for expected in ["./dir/c", "./swap/inside", "./hard/below", "fifo", "./link"] {
            assert!(
                ours.stdout.contains(expected),
                "{}: no {expected}\n{}",
                runtime.name,
                ours.stdout
            );
        }
        for hidden in ["./gone", "./dir/a", "./swap2/x"] {
            assert!(
                !ours.stdout.contains(&format!("{hidden} ")),
                "{}: {hidden} shows",
                runtime.name
            );
        }
        let xattr = layer_file_xattr(&runtime, "t/xattr", "user.test");
        assert_eq!(
            xattr.as_deref(),
            Some(&b"hello"[..]),
            "{}: user.test",
            runtime.name
        );
    }
}

/// The value of attribute `name` of `path` in whichever layer directory has the file.
fn layer_file_xattr(runtime: &Runtime, path: &str, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    for layer in names_in(runtime, "layers") {
        let file = runtime.data_dir().join("layers").join(layer).join(path);
        if !file.exists() {
            continue;
        }
        let path_c = std::ffi::CString::new(file.as_os_str().as_bytes()).unwrap();
        let name_c = std::ffi::CString::new(name).unwrap();
        let mut value = [0u8; 64];
        // SAFETY: both strings are NUL-terminated; the buffer's pointer and length match.
        let size = unsafe {
            libc::lgetxattr(
                path_c.as_ptr(),
                name_c.as_ptr(),
                value.as_mut_ptr().cast(),
                64,
            )
        };
        return (size >= 0).then(|| value[..size as usize].to_vec());
    }
    None
}

fn has(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

// ---------------------------------------------------------------------------------------
// Hostile layers: each refused in one line naming its entry, with a victim beside the
// store unchanged and nothing half made left in the store.

/// A hostile layer, its name for the book's table, and what the error must say.
struct Hostile {
    case: &'static str,
    layer: fn(&Path) -> Vec<u8>,
    says: &'static str,
    /// The bytes as stored: a plain tar, or gzip.
    stored: Stored,
}

/// Every hostile layer the tests build. `victim` is the victim directory's absolute
/// path on the host.
fn hostile_layers() -> Vec<Hostile> {
    let plain = |case, layer, says| Hostile {
        case,
        layer,
        says,
        stored: Stored::Plain,
    };
    vec![
        plain(
            "dot-dot",
            |_| {
                LayerTar::new()
                    .file("../../victim/pwned", "x", 0o644)
                    .finish()
            },
            "'..'",
        ),
        plain(
            "dot-dot-absolute",
            |_| {
                LayerTar::new()
                    .file("/../../victim/pwned", "x", 0o644)
                    .finish()
            },
            "'..'",
        ),
        plain(
            "symlink-out",
            |_| LayerTar::new().symlink("out", "../../../victim").finish(),
            "leads out",
        ),
        plain(
            "through-symlink",
            |victim| {
                let target = victim.display().to_string();
                LayerTar::new()
                    .symlink("out", &target)
                    .file("out/pwned", "x", 0o644)
                    .finish()
            },
            "symlink",
        ),
        plain(
            "hardlink-out",
            |_| {
                LayerTar::new()
                    .hardlink("hard", "../../victim/file")
                    .finish()
            },
            "'..'",
        ),
        plain(
            "hardlink-through-symlink",
            |victim| {
                let target = victim.display().to_string();
                LayerTar::new()
                    .symlink("v", &target)
                    .hardlink("hard", "v/file")
                    .finish()
            },
            "symlink",
        ),
        plain(
            "symlink-then-directory",
            |_| {
                LayerTar::new()
                    .symlink("d", "/tmp")
                    .dir("d/", 0o755)
                    .finish()
            },
            "a second entry",
        ),
        plain(
            "whiteout-through-symlink",
            |victim| {
                let target = victim.display().to_string();
                LayerTar::new()
                    .symlink("v", &target)
                    .whiteout("v/", "file")
                    .finish()
            },
            "symlink",
        ),
        plain(
            "whiteout-of-dot",
            |_| LayerTar::new().file(".wh..", "", 0o644).finish(),
            "whiteout must name",
        ),
        plain(
            "whiteout-of-dot-dot",
            |_| LayerTar::new().file(".wh...", "", 0o644).finish(),
            "whiteout must name",
        ),
        plain(
            "bare-whiteout",
            |_| LayerTar::new().file("etc/.wh.", "", 0o644).finish(),
            "whiteout must name",
        ),
        plain(
            "reserved-whiteout",
            |_| LayerTar::new().file(".wh..wh.plnk", "", 0o644).finish(),
            "reserved",
        ),
        plain(
            "dot-as-symlink",
            |_| LayerTar::new().symlink(".", "/tmp").finish(),
            "must be a directory",
        ),
        plain(
            "root-as-file",
            |_| LayerTar::new().file("/", "x", 0o644).finish(),
            "must be a directory",
        ),
        plain(
            "overlay-whiteout-device",
            |_| LayerTar::new().device("hidden", 0, 0).finish(),
            "overlay's whiteout",
        ),
        plain(
            "overlay-xattr",
            |_| {
                LayerTar::new()
                    .file_with_xattrs("dir", "x", &[("trusted.overlay.opaque", b"y")])
                    .finish()
            },
            "overlay's own attribute",
        ),
        plain(
            "duplicate",
            |_| {
                LayerTar::new()
                    .file("f", "1", 0o644)
                    .file("./f", "2", 0o644)
                    .finish()
            },
            "a second entry",
        ),
        plain(
            "under-a-file",
            |_| {
                LayerTar::new()
                    .file("f", "1", 0o644)
                    .file("f/x", "2", 0o644)
                    .finish()
            },
            "not a directory",
        ),
        plain(
            "truncated-tar",
            |_| {
                let mut tar = LayerTar::new()
                    .file("big", &"x".repeat(4096), 0o644)
                    .unfinished();
                tar.truncate(1024);
                tar
            },
            "ends inside",
        ),
        plain(
            "trailing-garbage",
            |_| {
                let mut tar = LayerTar::new().file("f", "1", 0o644).finish();
                tar.extend_from_slice(b"and then some bytes that are not zeros");
                tar
            },
            "trailing garbage",
        ),
        plain(
            "terabytes",
            |_| LayerTar::new().claiming("huge", 1 << 41, b"x").finish(),
            "no layer is that big",
        ),
        Hostile {
            case: "truncated-gzip",
            layer: |_| {
                LayerTar::new()
                    .file("f", &"x".repeat(100_000), 0o644)
                    .finish()
            },
            says: "refused",
            stored: Stored::Gzip,
        },
    ]
}

/// Writes `hostile` as the only layer of an image (a truncated gzip is cut after it is
/// compressed, and its digests made to fit), imports it, and checks the refusal.
fn import_hostile(
    runtime: &Runtime,
    dir: &Path,
    hostile: &Hostile,
    victim: &Path,
) -> Run {
    let tar = (hostile.layer)(victim);
    let mut one_layer = TestImage::new(vec![tar], json!({"Cmd": ["sh"]}));
    one_layer.stored = hostile.stored;
    let layout = one_layer.write_layout(&dir.join(hostile.case), "latest");
    if hostile.case == "truncated-gzip" {
        cut_the_only_layer_in_half(&layout);
    }
    image(
        runtime,
        &["import", &layout.display().to_string(), "hostile:1"],
    )
}

/// Cuts the layout's layer blob in half and rewrites the manifest and index so the
/// digests still name it: only the unpack can tell.
fn cut_the_only_layer_in_half(layout: &Path) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap())
            .unwrap();
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&manifest_digest)).unwrap()).unwrap();
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bytes = std::fs::read(blob(&layer_digest)).unwrap();
    bytes.truncate(bytes.len() / 2);
    let new_digest = digest_of(&bytes);
    std::fs::write(blob(&new_digest), &bytes).unwrap();
    manifest["layers"][0]["digest"] = json!(new_digest);
    manifest["layers"][0]["size"] = json!(bytes.len());
    let manifest_bytes = manifest.to_string().into_bytes();
    let manifest_digest = digest_of(&manifest_bytes);
    std::fs::write(blob(&manifest_digest), &manifest_bytes).unwrap();
    let mut index = index;
    index["manifests"][0]["digest"] = json!(manifest_digest);
    index["manifests"][0]["size"] = json!(manifest_bytes.len());
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    byoc_tests::open_tree_to_all(layout);
}

/// A victim directory inside the data root, beside the store: where `../../victim`
/// from a layer being unpacked under `tmp/` would land.
fn make_victim(runtime: &Runtime) -> PathBuf {
    let victim = runtime.data_dir().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("file"), "the victim's own\n").unwrap();
    victim
}

/// Imports the hostile layer `case` and checks: refused in one line that says what its
/// case must say, the victim as it was, no layer directory, no name, nothing in `tmp/`.
fn assert_hostile_refused(case: &str) {
    let hostile = hostile_layers()
        .into_iter()
        .find(|h| h.case == case)
        .expect("a case");
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let victim = make_victim(&runtime);
        let before = listing(&victim);
        let run = import_hostile(&runtime, dir.path(), &hostile, &victim);
        assert_one_line_error(&runtime, &run, hostile.says);
        assert_eq!(
            listing(&victim),
            before,
            "{}: {case}: the victim changed",
            runtime.name
        );
        assert!(
            names_in(&runtime, "layers").is_empty(),
            "{}: {case}: a layer left",
            runtime.name
        );
        assert!(
            names_in(&runtime, "tmp").is_empty(),
            "{}: {case}: tmp/ left",
            runtime.name
        );
        let listed = image(&runtime, &["ls"]);
        assert!(
            !listed.stdout.contains("hostile"),
            "{}: {case}: named\n{}",
            runtime.name,
            listed.stdout
        );
    }
}

macro_rules! hostile_tests {
    ($($test:ident: $case:literal,)*) => {
        $(
            #[test]
            fn $test() {
                assert_hostile_refused($case);
            }
        )*
    };
}

hostile_tests! {
    a_name_with_dot_dot_is_refused: "dot-dot",
    an_absolute_name_with_dot_dot_is_refused: "dot-dot-absolute",
    a_symlink_that_climbs_out_is_refused: "symlink-out",
    a_file_through_a_symlink_made_earlier_is_refused: "through-symlink",
    a_hardlink_out_is_refused: "hardlink-out",
    a_hardlink_through_a_symlink_is_refused: "hardlink-through-symlink",
    a_symlink_replaced_by_a_directory_is_refused: "symlink-then-directory",
    a_whiteout_through_a_symlink_is_refused: "whiteout-through-symlink",
    a_whiteout_of_dot_is_refused: "whiteout-of-dot",
    a_whiteout_of_dot_dot_is_refused: "whiteout-of-dot-dot",
    a_bare_whiteout_is_refused: "bare-whiteout",
    a_reserved_whiteout_name_is_refused: "reserved-whiteout",
    dot_as_a_symlink_is_refused: "dot-as-symlink",
    the_root_as_a_file_is_refused: "root-as-file",
    an_overlay_whiteout_device_in_a_layer_is_refused: "overlay-whiteout-device",
    an_overlay_attribute_in_a_layer_is_refused: "overlay-xattr",
    a_second_entry_for_one_path_is_refused: "duplicate",
    an_entry_under_a_file_is_refused: "under-a-file",
    a_truncated_tar_is_refused: "truncated-tar",
    trailing_garbage_after_the_tar_is_refused: "trailing-garbage",
    a_size_of_terabytes_is_refused: "terabytes",
    a_truncated_gzip_is_refused: "truncated-gzip",
}

#[test]
fn each_hostile_layer_gets_its_own_one_line_error_for_the_books_table() {
    // The machine's root's chapter 9, as its book shows it.
    let root_runtimes = from_chapter_as_root(9).into_iter();
    for runtime in root_runtimes.filter(|runtime| runtime.chapter == 9) {
        let dir = image_dir(&runtime);
        let victim = make_victim(&runtime);
        let mut table = String::new();
        for hostile in hostile_layers() {
            let run = import_hostile(&runtime, dir.path(), &hostile, &victim);
            assert_one_line_error(&runtime, &run, hostile.says);
            table.push_str(&format!("{:<26} {}", hostile.case, run.stderr));
        }
        if testing_solutions() {
            let mut settings = insta::Settings::clone_current();
            settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
            settings
                .add_filter(&regex::escape(&victim.display().to_string()), "[VICTIM]");
            settings.set_prepend_module_to_snapshot(false);
            settings.set_omit_expression(true);
            settings.bind(|| insta::assert_snapshot!("ch09_hostile", table));
        }
    }
}

#[test]
fn an_opaque_marker_applies_whatever_its_place_and_zstd_layers_unpack() {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let below = LayerTar::new().file("d/old", "old\n", 0o644).finish();
        let above = LayerTar::new()
            .dir("d/", 0o755)
            .file("d/new", "new\n", 0o644)
            .opaque("d/") // after the directory's own files
            .finish();
        let mut zstd_image = TestImage::new(
            vec![base_layer(), below, above],
            json!({"Cmd": ["ls", "/d"]}),
        );
        zstd_image.stored = Stored::Zstd;
        let layout = zstd_image.write_layout(&dir.path().join("zstd"), "latest");
        import(&runtime, &layout, "zstd:1");
        let run = run_image(&runtime, &[], "zstd:1", &[]);
        run.expect_success();
        assert_eq!(
            run.stdout, "new\n",
            "{}: the layer below shows through",
            runtime.name
        );
    }
}

#[test]
fn what_the_runtime_reads_in_the_layers_honours_whiteouts_and_opaque_directories() {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        // A user defined in a lower /etc/passwd, hidden by an opaque /etc above it.
        let with_app = LayerTar::new()
            .file(
                "etc/passwd",
                "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
                0o644,
            )
            .finish();
        let hidden = LayerTar::new()
            .dir("etc/", 0o755)
            .opaque("etc/")
            .file("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644)
            .finish();
        let users = TestImage::new(
            vec![base_layer(), with_app, hidden],
            json!({"Cmd": ["true"], "User": "app"}),
        );
        import(
            &runtime,
            &users.write_layout(&dir.path().join("users"), "latest"),
            "users:1",
        );
        let run = run_image(&runtime, &[], "users:1", &[]);
        assert_one_line_error(&runtime, &run, "not in its /etc/passwd");
        // A hardlink to a file that an opaque directory between hides.
        let file = LayerTar::new().file("data/file", "below\n", 0o644).finish();
        let emptied = LayerTar::new().dir("data/", 0o755).opaque("data/").finish();
        let link = LayerTar::new().hardlink("other", "data/file").finish();
        let links = TestImage::new(vec![file, emptied, link], json!({"Cmd": ["sh"]}));
        let layout = links.write_layout(&dir.path().join("links"), "latest");
        let refused = image(
            &runtime,
            &["import", &layout.display().to_string(), "links:1"],
        );
        assert_one_line_error(&runtime, &refused, "which no layer below has");
    }
}

/// What an import on a small disk of its own says, and leaves: run in a mount namespace
/// of its own with a tmpfs of 8 MB as the data root, so the machine's mount table (which
/// other tests' leak checks compare) never changes.
const ON_A_SMALL_DISK: &str = r#"mount -t tmpfs -o size=8m byoc-small-disk "$DATA" || exit 99
"$BYOC" image import "$LAYOUT" big:1 --root "$DATA/root"
echo "import exited $?"
echo "layers: $(ls -A "$DATA/root/layers" 2>/dev/null | wc -l)"
echo "tmp: $(ls -A "$DATA/root/tmp" 2>/dev/null | wc -l)"
"#;

#[test]
fn a_full_disk_leaves_no_half_layer() {
    for runtime in from_chapter_as_root(9) {
        let dir = image_dir(&runtime);
        let small = dir.path().join("small-disk");
        std::fs::create_dir(&small).unwrap();
        let big = LayerTar::new()
            .file("big", &"x".repeat(16 << 20), 0o644)
            .finish();
        let layout = TestImage::new(vec![big], json!({"Cmd": ["sh"]}))
            .write_layout(&dir.path().join("big"), "latest");
        let out = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                ON_A_SMALL_DISK,
            ])
            .env("DATA", &small)
            .env("BYOC", &runtime.path)
            .env("LAYOUT", &layout)
            .output()
            .expect("start unshare");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let report = format!("{}:\n{stdout}{stderr}", runtime.name);
        assert!(
            !stdout.contains("import exited 0"),
            "the import worked: {report}"
        );
        assert!(stdout.contains("import exited"), "it did not run: {report}");
        assert!(stderr.contains("No space left"), "{report}");
        assert!(stdout.contains("layers: 0\n"), "a layer was left: {report}");
        assert!(stdout.contains("tmp: 0\n"), "tmp/ was left: {report}");
    }
}

#[test]
fn setuid_bits_and_device_nodes_are_kept_only_when_the_machines_root_unpacks() {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let special = LayerTar::new()
            .dir("s/", 0o755)
            .owned(
                tar::EntryType::Regular,
                "s/setuid",
                b"#!/bin/sh\n",
                0o4755,
                (0, 0),
            )
            .device("s/null", 1, 3)
            .finish();
        let image_of =
            TestImage::new(vec![base_layer(), special], json!({"Cmd": ["sh"]}));
        let layout = image_of.write_layout(&dir.path().join("special"), "latest");
        let imported = image(
            &runtime,
            &["import", &layout.display().to_string(), "special:1"],
        );
        imported.expect_success();
        let run = run_image(
            &runtime,
            &[],
            "special:1",
            &["sh", "-c", "stat -c '%a' /s/setuid; ls /s"],
        );
        run.expect_success();
        match runtime.rootless {
            None => assert_eq!(run.stdout, "4755\nnull\nsetuid\n", "{}", runtime.name),
            Some(_) => {
                assert_eq!(run.stdout, "755\nsetuid\n", "{}", runtime.name);
                assert!(
                    imported.stderr.contains("1 device nodes"),
                    "{}: {}",
                    runtime.name,
                    imported.stderr
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The store, read by the peers; images in and out.

#[test]
fn the_store_is_an_oci_layout_that_skopeo_and_umoci_read_and_save_writes_an_archive_they_read(
) {
    if !has("skopeo") || !has("umoci") {
        return not_run(
            "skopeo or umoci is not installed (apt-get install skopeo umoci)",
        );
    }
    for runtime in from_chapter_as_root(9) {
        let dir = image_dir(&runtime);
        let layout = hello_image().write_layout(&dir.path().join("hello"), "1");
        import(&runtime, &layout, "hello:1");
        let store = runtime.data_dir().join("images");
        let inspect = peer(
            "skopeo",
            &["inspect", &format!("oci:{}:hello:1", store.display())],
        );
        let layers = inspect["Layers"]
            .as_array()
            .expect("skopeo lists the layers");
        assert_eq!(layers.len(), 2, "{}: {inspect}", runtime.name);
        let bundle = dir.path().join("bundle");
        let unpacked = Command::new("umoci")
            .args(["unpack", "--image", &format!("{}:hello:1", store.display())])
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            unpacked.status.success(),
            "{}",
            String::from_utf8_lossy(&unpacked.stderr)
        );
        assert!(bundle.join("rootfs/app/hello.sh").is_file());
        let archive = dir.path().join("hello.tar");
        image(
            &runtime,
            &["save", "hello:1", "-o", &archive.display().to_string()],
        )
        .expect_success();
        let saved = peer(
            "skopeo",
            &["inspect", &format!("oci-archive:{}", archive.display())],
        );
        assert_eq!(saved["Layers"], inspect["Layers"], "{}", runtime.name);
        assert_eq!(saved["Env"], inspect["Env"], "{}", runtime.name);
    }
}

#[test]
fn podman_loads_what_image_save_wrote_as_the_same_image() {
    if !has("podman") {
        return not_run("podman is not installed (apt-get install podman)");
    }
    for runtime in from_chapter_as_root(9) {
        let dir = image_dir(&runtime);
        let layout = hello_image().write_layout(&dir.path().join("hello"), "1");
        import(&runtime, &layout, "hello:1");
        let archive = dir.path().join("hello.tar");
        let saved = image(
            &runtime,
            &["save", "hello:1", "-o", &archive.display().to_string()],
        );
        saved.expect_success();
        // podman refuses a run root of more than 50 characters: one straight under /tmp,
        // whatever TMPDIR says.
        let run_root = tempfile::Builder::new()
            .prefix("byoc-podman-")
            .tempdir_in("/tmp")
            .expect("a run root for podman");
        let podman = |args: &[&str]| {
            let out = Command::new("podman")
                .arg("--root")
                .arg(dir.path().join("podman-storage"))
                .arg("--runroot")
                .arg(run_root.path())
                // Its own state too, not the machine's /run/libpod: nothing of it stays.
                .arg("--tmpdir")
                .arg(dir.path().join("podman-tmp"))
                .args(["--storage-driver", "vfs", "--events-backend", "none"])
                .args(args)
                .output()
                .expect("start podman");
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "podman {args:?}: {stderr}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let loaded = podman(&["load", "-i", &archive.display().to_string()]);
        assert!(
            loaded.contains("hello:1"),
            "{}: podman load said {loaded}",
            runtime.name
        );
        let listed = image(&runtime, &["ls"]);
        let ours = listed
            .stdout
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(2));
        let theirs = podman(&["images", "--format", "{{.ID}}"]);
        assert_eq!(
            ours,
            theirs.lines().next(),
            "{}: the image ids differ",
            runtime.name
        );
    }
}

/// What a peer printed as JSON; it must succeed.
fn peer(program: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(program)
        .args(args)
        .output()
        .expect("start the peer");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn an_image_skopeo_copied_runs_and_a_saved_one_comes_back_in() {
    if !has("skopeo") {
        return not_run("skopeo is not installed (apt-get install skopeo)");
    }
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let three = TestImage::new(
            vec![
                base_layer(),
                LayerTar::new().file("one", "1\n", 0o644).finish(),
                LayerTar::new()
                    .file("two", "2\n", 0o644)
                    .whiteout("", "one")
                    .finish(),
            ],
            json!({"Cmd": ["cat", "/two"]}),
        );
        let source = three.write_layout(&dir.path().join("source"), "latest");
        let copied = dir.path().join("copied");
        let copy = Command::new("skopeo")
            .args(["copy", &format!("oci:{}:latest", source.display())])
            .arg(format!("oci:{}:3.0", copied.display()))
            .output()
            .unwrap();
        assert!(
            copy.status.success(),
            "{}",
            String::from_utf8_lossy(&copy.stderr)
        );
        byoc_tests::open_tree_to_all(dir.path());
        let imported = image(&runtime, &["import", &copied.display().to_string()]);
        imported.expect_success();
        assert!(
            imported.stdout.contains("imported copied:3.0"),
            "{}: {}",
            runtime.name,
            imported.stdout
        );
        let run = run_image(&runtime, &[], "copied:3.0", &[]);
        run.expect_success();
        assert_eq!(run.stdout, "2\n", "{}", runtime.name);
        let gone = run_image(&runtime, &[], "copied:3.0", &["ls", "/one"]);
        assert_ne!(
            gone.code, 0,
            "{}: /one shows through its whiteout",
            runtime.name
        );
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        dir.own(&out); // where the runtime's user may write
        let archive = out.join("saved.tar");
        image(
            &runtime,
            &["save", "copied:3.0", "-o", &archive.display().to_string()],
        )
        .expect_success();
        image(&runtime, &["rm", "copied:3.0"]).expect_success();
        assert!(
            blobs(&runtime).is_empty(),
            "{}: blobs left: {:?}",
            runtime.name,
            blobs(&runtime)
        );
        image(
            &runtime,
            &["import", &archive.display().to_string(), "back:1"],
        )
        .expect_success();
        assert_eq!(
            run_image(&runtime, &[], "back:1", &[]).stdout,
            "2\n",
            "{}",
            runtime.name
        );
    }
}

#[test]
fn docker_save_archives_old_and_new_are_imported_and_run() {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        for (newer, tag) in [(false, "dockerish:old"), (true, "dockerish:25")] {
            let archive = dir.path().join(format!("docker-{newer}.tar"));
            let app = LayerTar::new()
                .file("hello", "from docker's format\n", 0o644)
                .finish();
            TestImage::new(vec![base_layer(), app], json!({"Cmd": ["cat", "/hello"]}))
                .write_docker_archive(&archive, tag, newer);
            let imported = image(&runtime, &["import", &archive.display().to_string()]);
            imported.expect_success();
            assert!(
                imported.stdout.contains(tag),
                "{}: {}",
                runtime.name,
                imported.stdout
            );
            let run = run_image(&runtime, &[], tag, &[]);
            run.expect_success();
            assert_eq!(
                run.stdout, "from docker's format\n",
                "{}: {tag}",
                runtime.name
            );
        }
    }
}

#[test]
fn image_rm_is_refused_while_a_container_uses_it_and_collects_what_nothing_uses() {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let base = base_layer();
        let a = TestImage::new(
            vec![base.clone(), LayerTar::new().file("a", "a", 0o644).finish()],
            json!({"Cmd": ["sh"]}),
        );
        let b = TestImage::new(
            vec![base, LayerTar::new().file("b", "b", 0o644).finish()],
            json!({"Cmd": ["sh"]}),
        );
        import(&runtime, &a.write_layout(&dir.path().join("a"), "1"), "a:1");
        import(&runtime, &b.write_layout(&dir.path().join("b"), "1"), "b:1");
        let kept = runtime
            .invocation()
            .args(["run", "--net", "none", "--name", "uses-a", "a:1", "true"])
            .run();
        kept.expect_success();
        let refused = image(&runtime, &["rm", "a:1"]);
        assert_one_line_error(&runtime, &refused, "used by container uses-a");
        runtime.subcommand(&["rm", "uses-a"]).expect_success();
        image(&runtime, &["rm", "a:1"]).expect_success();
        assert_eq!(
            names_in(&runtime, "layers").len(),
            2,
            "{}: b's layers",
            runtime.name
        );
        let still = run_image(&runtime, &[], "b:1", &["cat", "/b"]);
        assert_eq!(still.stdout, "b", "{}: b lost a shared layer", runtime.name);
        assert_eq!(
            blobs(&runtime).len(),
            4,
            "{}: b's manifest, config, 2 layers",
            runtime.name
        );
        image(&runtime, &["rm", "b:1"]).expect_success();
        assert!(blobs(&runtime).is_empty(), "{}: blobs left", runtime.name);
        assert!(
            names_in(&runtime, "layers").is_empty(),
            "{}: layers left",
            runtime.name
        );
    }
}

// ---------------------------------------------------------------------------------------
// commit

#[test]
fn commit_makes_a_layer_of_a_containers_changes_and_the_same_changes_give_the_same_digest(
) {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let app = LayerTar::new()
            .dir("etc/app/", 0o755)
            .file("etc/app/a", "a\n", 0o644)
            .file("etc/app/old", "old\n", 0o644)
            .finish();
        let layout = TestImage::new(vec![base_layer(), app], json!({"Cmd": ["sh"]}))
            .write_layout(&dir.path().join("app"), "1");
        import(&runtime, &layout, "app:1");
        let script = "echo added > /added && rm /etc/app/old && rm -r /etc/app && \
                      mkdir /etc/app && echo fresh > /etc/app/fresh";
        runtime
            .invocation()
            .args([
                "run", "--net", "none", "--name", "changed", "app:1", "sh", "-c", script,
            ])
            .run()
            .expect_success();
        let first = runtime.subcommand(&["commit", "--reproducible", "changed", "app:2"]);
        first.expect_success();
        let second =
            runtime.subcommand(&["commit", "--reproducible", "changed", "app:3"]);
        assert_eq!(
            first.stdout, second.stdout,
            "{}: the same changes, another digest",
            runtime.name
        );
        runtime.subcommand(&["rm", "changed"]).expect_success();
        let seen = run_image(
            &runtime,
            &[],
            "app:2",
            &["sh", "-c", "cat /added; ls /etc/app"],
        );
        seen.expect_success();
        assert_eq!(seen.stdout, "added\nfresh\n", "{}", runtime.name);
        if has("umoci") {
            let store = runtime.data_dir().join("images");
            let bundle = dir.path().join("committed");
            let mut umoci = Command::new("umoci");
            umoci.arg("unpack");
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                umoci.arg("--rootless"); // the tests run as an ordinary user
            }
            let unpacked = umoci
                .args(["--image", &format!("{}:app:2", store.display())])
                .arg(&bundle)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&unpacked.stderr);
            assert!(
                unpacked.status.success(),
                "{}: umoci: {stderr}",
                runtime.name
            );
            let rootfs = bundle.join("rootfs");
            assert!(
                rootfs.join("added").is_file(),
                "{}: umoci has no /added",
                runtime.name
            );
            assert!(
                !rootfs.join("etc/app/a").exists(),
                "{}: umoci kept /etc/app/a",
                runtime.name
            );
        }
        let not_from_image = runtime
            .invocation()
            .args(["run", "--net", "none", "--name", "dir", "--rootfs"])
            .args([runtime.rootfs()])
            .args(["--", "true"])
            .run();
        not_from_image.expect_success();
        let refused = runtime.subcommand(&["commit", "dir", "x:1"]);
        assert_one_line_error(&runtime, &refused, "not started from an image");
        runtime.subcommand(&["rm", "dir"]).expect_success();
        let script = "echo ready; read go";
        let busy = runtime
            .invocation()
            .args([
                "run", "--net", "none", "--name", "busy", "app:1", "sh", "-c", script,
            ])
            .command();
        let waiting = runtime.start_waiting_command(busy);
        let refused = runtime.subcommand(&["commit", "busy", "x:1"]);
        assert_one_line_error(&runtime, &refused, "still running");
        waiting.release().expect_success();
        runtime.subcommand(&["rm", "busy"]).expect_success();
    }
}

// ---------------------------------------------------------------------------------------
// Imports at once, and imports killed half way

#[test]
fn an_image_that_names_one_layer_twice_is_imported_with_its_blob_kept_once() {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        // Old images converted from Docker's first format repeat an empty layer; this
        // one is large, so the two unpacks of it would overlap if both copied it.
        let repeated = LayerTar::new()
            .file("noise", &noise(4 << 20), 0o644)
            .finish();
        let image = TestImage::new(
            // First, so the two start at once on the first two threads.
            vec![repeated.clone(), repeated, base_layer()],
            json!({"Cmd": ["echo", "twice"]}),
        );
        let layout = image.write_layout(&dir.path().join("twice"), "1");
        import(&runtime, &layout, "twice:1");
        assert_eq!(names_in(&runtime, "layers").len(), 3, "{}", runtime.name);
        assert_eq!(blobs(&runtime).len(), 4, "{}", runtime.name);
        let run = run_image(&runtime, &[], "twice:1", &[]);
        assert_eq!(run.stdout, "twice\n", "{}", runtime.name);
    }
}

#[test]
fn two_imports_of_one_image_at_once_keep_one_copy_of_each_blob_and_layer() {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let layout = everything_image().write_layout(&dir.path().join("all"), "latest");
        let path = layout.display().to_string();
        let mut children: Vec<_> = (0..2)
            .map(|n| {
                runtime
                    .invocation()
                    .args(["image", "import", &path, &format!("all:{n}")])
                    .command()
                    .spawn()
                    .expect("start an import")
            })
            .collect();
        for child in &mut children {
            assert!(
                child.wait().unwrap().success(),
                "{}: an import failed",
                runtime.name
            );
        }
        assert_eq!(
            blobs(&runtime).len(),
            5,
            "{}: {:?}",
            runtime.name,
            blobs(&runtime)
        );
        assert_eq!(names_in(&runtime, "layers").len(), 3, "{}", runtime.name);
        assert!(
            names_in(&runtime, "tmp").is_empty(),
            "{}: tmp/ left",
            runtime.name
        );
    }
}

#[test]
fn an_import_killed_at_any_point_leaves_a_store_the_next_import_completes() {
    for runtime in from_chapter_as_root(9) {
        let dir = image_dir(&runtime);
        let big = LayerTar::new()
            .file("big", &"not very compressible? ".repeat(2_000_000), 0o644)
            .finish();
        let layout = TestImage::new(vec![base_layer(), big], json!({"Cmd": ["sh"]}))
            .write_layout(&dir.path().join("big"), "latest");
        let path = layout.display().to_string();
        for delay_ms in [5, 20, 60, 120, 250] {
            let mut child = runtime
                .invocation()
                .args(["image", "import", &path, "big:1"])
                .command()
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            let _ = child.kill();
            let _ = child.wait();
            for layer in names_in(&runtime, "layers") {
                let whole = runtime.data_dir().join("layers").join(&layer);
                assert!(
                    whole.read_dir().unwrap().next().is_some(),
                    "{}: an empty layer",
                    runtime.name
                );
            }
        }
        image(&runtime, &["import", &path, "big:1"]).expect_success();
        assert!(
            names_in(&runtime, "tmp").is_empty(),
            "{}: tmp/ left: {:?}",
            runtime.name,
            names_in(&runtime, "tmp")
        );
        assert_eq!(names_in(&runtime, "layers").len(), 2, "{}", runtime.name);
        let run = run_image(&runtime, &[], "big:1", &["sh", "-c", "wc -c < /big"]);
        assert_eq!(run.stdout.trim(), "46000000", "{}", runtime.name);
        let stray: Vec<String> = blobs(&runtime)
            .into_iter()
            .filter(|b| b.starts_with('.'))
            .collect();
        assert!(
            stray.is_empty(),
            "{}: half-written blobs {stray:?}",
            runtime.name
        );
    }
}

// ---------------------------------------------------------------------------------------
// What the book shows

#[test]
fn image_ls_lists_each_name_with_its_image_id() {
    let root_runtimes = from_chapter_as_root(9).into_iter();
    for runtime in root_runtimes.filter(|runtime| runtime.chapter == 9) {
        let dir = image_dir(&runtime);
        let app = LayerTar::new().file("app", "app\n", 0o644).finish();
        let layout = TestImage::new(vec![app], json!({"Cmd": ["/app"]}))
            .write_layout(&dir.path().join("app"), "1.0");
        import(&runtime, &layout, "app:1.0");
        import(&runtime, &layout, "registry.example/team/app:latest");
        let listed = image(&runtime, &["ls"]);
        listed.expect_success();
        assert_eq!(listed.stdout.lines().count(), 3, "{}", listed.stdout);
        let ids: Vec<&str> = listed
            .stdout
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().nth(2).unwrap())
            .collect();
        assert_eq!(ids[0], ids[1], "one image, two names: one id");
        if testing_solutions() {
            let shown = format!("$ byoc image ls\n{}", listed.stdout);
            let mut settings = insta::Settings::clone_current();
            settings.set_prepend_module_to_snapshot(false);
            settings.set_omit_expression(true);
            settings.bind(|| insta::assert_snapshot!("ch09_image_ls", shown));
        }
    }
}

#[test]
fn the_trace_tells_the_story_of_a_run_of_an_image() {
    let chain_id = regex::Regex::new(r"[0-9a-f]{64}").unwrap();
    let root_runtimes = from_chapter_as_root(9).into_iter();
    for runtime in root_runtimes.filter(|runtime| runtime.chapter == 9) {
        let dir = image_dir(&runtime);
        let layout = hello_image().write_layout(&dir.path().join("hello"), "1");
        import(&runtime, &layout, "hello:1");
        let run = runtime
            .invocation()
            .trace(true)
            .args(["run", "--net", "none", "--rm", "hello:1"])
            .run();
        run.expect_success();
        let layers = runtime.data_dir().join("layers");
        assert!(
            run.stderr
                .contains(&format!("lowerdir={}", layers.display())),
            "{}",
            run.report()
        );
        if testing_solutions() {
            let story: String = run
                .stderr
                .lines()
                .filter(|line| {
                    ["/containers/", "MS_PRIVATE", "pivot_root", "execve"]
                        .iter()
                        .any(|part| line.contains(part))
                        && !line.contains("cgroup")
                })
                .map(|line| format!("{line}\n"))
                .collect();
            // Before the filters, which take any 12 hex digits for a container id.
            let story = chain_id.replace_all(&story, "[CHAIN ID]");
            let mut settings = trace_filters();
            let data_root = runtime.data_dir().display().to_string();
            settings.add_filter(&regex::escape(&data_root), "[DATA ROOT]");
            settings
                .bind(|| insta::assert_snapshot!("ch09_trace", trace_by_actor(&story)));
        }
    }
}

#[test]
fn a_layout_whose_blob_was_changed_is_refused_and_nothing_is_named() {
    for runtime in from_chapter(9) {
        let dir = image_dir(&runtime);
        let mut tampered = TestImage::new(vec![base_layer()], json!({"Cmd": ["sh"]}));
        tampered.diff_ids = Some(vec![digest_of(b"some other tar")]);
        let layout = tampered.write_layout(&dir.path().join("tampered"), "latest");
        let run = image(
            &runtime,
            &["import", &layout.display().to_string(), "tampered:1"],
        );
        assert_one_line_error(&runtime, &run, "diff_id");
        assert!(names_in(&runtime, "layers").is_empty(), "{}", runtime.name);
    }
}

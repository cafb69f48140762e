//! Chapter 10: pulling images from a registry. Book: chapter 10. Runs against chapter
//! 10's binary, as root and as the rootless test user, against the real Distribution
//! registry (Debian's `docker-registry`) on loopback, images pushed to it with skopeo;
//! and, for the faults a real registry cannot be made to show, against a small fake.
//!
//! The registries listen in a network namespace of the test's own when the tests run as
//! root (a runtime that root starts is kept out of the machine's network anyway), and on
//! the machine's loopback otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use byoc_tests::fake_registry::{blob_path, manifest_path, FakeRegistry, Response};
use byoc_tests::htpasswd::htpasswd_file;
use byoc_tests::netns::NetHost;
use byoc_tests::registry::{Registry, RegistryAuth};
use byoc_tests::token_server::TokenServer;
use byoc_tests::{assert_one_line_error, from_chapter, from_chapter_as_root, not_run};
use byoc_tests::{digest_of, open_tree_to_all, LayerTar, Run, Runtime, TestImage};
use byoc_tests::{testing_solutions, trace_filters, TestLayers};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// Where the registries listen, and the images pushed to them

/// Where a test's registries listen and its runtimes run: a network namespace of the
/// test's own when this process is root, else the machine's loopback.
struct Net {
    host: Option<NetHost>,
}

impl Net {
    fn new() -> Net {
        let root = nix_is_root();
        Net {
            host: root.then(NetHost::new),
        }
    }

    fn within<T: Send>(&self, body: impl FnOnce() -> T + Send) -> T {
        match &self.host {
            Some(host) => host.within(body),
            None => body(),
        }
    }

    /// `BINARY ARGS...` run to its end, here.
    fn run(&self, runtime: &Runtime, args: &[&str]) -> Run {
        let invocation = runtime.invocation().args(args);
        self.within(|| invocation.run())
    }

    /// The same, with `--trace`.
    fn traced(&self, runtime: &Runtime, args: &[&str]) -> Run {
        let invocation = runtime.invocation().trace(true).args(args);
        self.within(|| invocation.run())
    }

    fn registry(&self, auth: RegistryAuth) -> Registry {
        self.within(|| Registry::start(auth))
    }

    fn fake(&self) -> FakeRegistry {
        self.within(FakeRegistry::start)
    }

    fn push(
        &self,
        registry: &Registry,
        layout: &Path,
        tag: &str,
        to: &str,
        creds: Option<&str>,
    ) {
        self.within(|| registry.push(layout, tag, to, creds));
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the registry tests can run here; if not, says why (never counted as passed).
fn registry_missing() -> bool {
    match Registry::unavailable() {
        Some(why) => {
            not_run(&why);
            true
        }
        None => false,
    }
}

fn base_layer() -> Vec<u8> {
    LayerTar::of_dir(&byoc_tests::rootfs()).finish()
}

/// An image whose process says hello, with a second layer on busybox.
fn hello_image(who: &str) -> TestImage {
    let app = LayerTar::new()
        .dir("app/", 0o755)
        .file("app/who", &format!("{who}\n"), 0o644)
        .finish();
    TestImage::new(
        vec![base_layer(), app],
        json!({"Cmd": ["sh", "-c", "echo hello from $(cat /app/who)"]}),
    )
}

/// The digest of the manifest `tag` names in the layout at `layout`.
fn manifest_digest(layout: &Path, tag: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap())
            .unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {layout:?}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A directory for a test's files that the runtime's user can read.
fn test_dir(runtime: &Runtime) -> TestLayers {
    TestLayers::for_runtime(runtime)
}

/// The names under a directory of the runtime's data root, sorted.
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

/// Fails unless the store holds no blob, layer or half-made thing.
fn assert_store_empty(runtime: &Runtime, case: &str) {
    for dir in ["images/blobs/sha256", "layers", "tmp", "ingest"] {
        let left = names_in(runtime, dir);
        assert!(
            left.is_empty(),
            "{}: {case}: {dir} holds {left:?}",
            runtime.name
        );
    }
}

/// The `HTTP GET` lines of a traced run.
fn http_lines(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|line| line.contains("HTTP GET"))
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Against the real registry

#[test]
fn an_image_pushed_to_the_registry_is_pulled_by_tag_and_by_digest_and_runs() {
    if registry_missing() {
        return;
    }
    for runtime in from_chapter(10) {
        let net = Net::new();
        let registry = net.registry(RegistryAuth::Open);
        let dir = test_dir(&runtime);
        let layout =
            hello_image("the registry").write_layout(&dir.path().join("hello"), "1");
        net.push(&registry, &layout, "1", "demo/hello:1", None);
        let digest = manifest_digest(&layout, "1");
        let name = format!("{}/demo/hello:1", registry.address);

        let pulled = net.run(&runtime, &["pull", &name]);
        pulled.expect_success();
        assert!(
            pulled.stdout.contains(&format!("Digest: {digest}"))
                && pulled
                    .stdout
                    .contains(&format!("Status: Downloaded newer image for {name}")),
            "{}: {}",
            runtime.name,
            pulled.report()
        );
        let run = net.run(&runtime, &["run", "--rm", "--net", "none", &name]);
        run.expect_success();
        assert_eq!(run.stdout, "hello from the registry\n", "{}", runtime.name);
        let store = runtime.data_dir().join("images");
        let raw = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{name}", store.display()))
            .output()
            .unwrap();
        assert!(
            raw.status.success(),
            "{}",
            String::from_utf8_lossy(&raw.stderr)
        );
        assert_eq!(
            digest_of(&raw.stdout),
            digest,
            "{}: skopeo reads the pushed manifest in the store",
            runtime.name
        );

        let again = net.traced(&runtime, &["pull", &name]);
        again.expect_success();
        assert!(
            again.stdout.contains("Status: Image is up to date"),
            "{}: {}",
            runtime.name,
            again.report()
        );
        let asked = http_lines(&again);
        assert!(
            !asked.is_empty() && asked.iter().all(|line| !line.contains("/blobs/")),
            "{}: a second pull asks for blobs again: {asked:#?}",
            runtime.name
        );

        let by_digest = format!("{}/demo/hello@{digest}", registry.address);
        let quiet = net.run(&runtime, &["pull", "-q", &by_digest]);
        quiet.expect_success();
        assert_eq!(quiet.stdout, format!("{digest}\n"), "{}", runtime.name);
        let run = net.run(&runtime, &["run", "--rm", "--net", "none", &by_digest]);
        assert_eq!(run.stdout, "hello from the registry\n", "{}", runtime.name);
        let listed = net.run(&runtime, &["image", "ls"]);
        let row = format!("{}/demo/hello", registry.address);
        assert!(
            listed
                .stdout
                .lines()
                .any(|line| line.starts_with(&row) && line.contains("<none>")),
            "{}: pulled by digest alone, the image has no tag: {}",
            runtime.name,
            listed.stdout
        );
        assert!(names_in(&runtime, "ingest").is_empty(), "{}", runtime.name);
    }
}

#[test]
fn run_pulls_a_missing_image_unless_told_never_and_always_pulls_a_moved_tag() {
    if registry_missing() {
        return;
    }
    for runtime in from_chapter(10) {
        let net = Net::new();
        let registry = net.registry(RegistryAuth::Open);
        let dir = test_dir(&runtime);
        let first =
            hello_image("the first push").write_layout(&dir.path().join("a"), "1");
        net.push(&registry, &first, "1", "demo/app:1", None);
        let name = format!("{}/demo/app:1", registry.address);

        let never = net.run(
            &runtime,
            &["run", "--rm", "--net", "none", "--pull", "never", &name],
        );
        assert_one_line_error(&runtime, &never, "--pull never");

        let run = net.run(&runtime, &["run", "--rm", "--net", "none", &name]);
        run.expect_success();
        assert_eq!(
            run.stdout, "hello from the first push\n",
            "{}",
            runtime.name
        );
        assert!(
            run.stderr.contains("Unable to find image") && run.stderr.contains("Status:"),
            "{}: the pull is told on stderr: {}",
            runtime.name,
            run.report()
        );

        let second =
            hello_image("the second push").write_layout(&dir.path().join("b"), "1");
        net.push(&registry, &second, "1", "demo/app:1", None);
        let kept = net.run(&runtime, &["run", "--rm", "--net", "none", &name]);
        assert_eq!(
            kept.stdout, "hello from the first push\n",
            "{}",
            runtime.name
        );
        let always = net.run(
            &runtime,
            &["run", "--rm", "--net", "none", "--pull", "always", &name],
        );
        always.expect_success();
        assert_eq!(
            always.stdout, "hello from the second push\n",
            "{}",
            runtime.name
        );
    }
}

/// The platform of this machine, as registries name it.
fn this_platform() -> (&'static str, Option<&'static str>) {
    let architecture = byoc_tests::machine_architecture();
    match architecture {
        "arm64" => (architecture, Some("v8")),
        "arm" => (architecture, Some("v7")),
        _ => (architecture, None),
    }
}

/// An OCI layout whose tag `tag` names an index of two images: one for this machine
/// (its process says `native`), one for linux/s390x (says `s390x`).
fn two_platform_layout(dir: &Path, tag: &str) -> PathBuf {
    let native = hello_image("native").write_layout(dir, "native");
    let native_manifest = descriptor_of(&native, "native");
    let other = hello_image("s390x").write_layout(dir, "s390x");
    let other_manifest = descriptor_of(&other, "s390x");
    let (architecture, variant) = this_platform();
    let mut native_platform = json!({"os": "linux", "architecture": architecture});
    if let Some(variant) = variant {
        native_platform["variant"] = json!(variant);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            with_platform(native_manifest, native_platform),
            with_platform(other_manifest, json!({"os": "linux", "architecture": "s390x"})),
        ],
    });
    let bytes = index.to_string().into_bytes();
    let digest = digest_of(&bytes);
    std::fs::write(
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
        &bytes,
    )
    .unwrap();
    let top = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), top.to_string()).unwrap();
    open_tree_to_all(dir);
    dir.to_path_buf()
}

fn descriptor_of(layout: &Path, tag: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap())
            .unwrap();
    let mut found = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()
        .clone();
    found.as_object_mut().unwrap().remove("annotations");
    found
}

fn with_platform(mut descriptor: Value, platform: Value) -> Value {
    descriptor["platform"] = platform;
    descriptor
}

#[test]
fn a_multi_platform_image_gives_this_machines_image_and_a_missing_platform_lists_the_rest(
) {
    if registry_missing() {
        return;
    }
    for runtime in from_chapter(10) {
        let net = Net::new();
        let registry = net.registry(RegistryAuth::Open);
        let dir = test_dir(&runtime);
        let layout = two_platform_layout(&dir.path().join("multi"), "1");
        let pushed = net.within(|| {
            Command::new("skopeo")
                .env("REGISTRY_AUTH_FILE", registry.auth_file())
                .args(["copy", "--quiet", "--all", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:1", layout.display()))
                .arg(format!("docker://{}/demo/multi:1", registry.address))
                .output()
                .unwrap()
        });
        assert!(
            pushed.status.success(),
            "{}",
            String::from_utf8_lossy(&pushed.stderr)
        );
        let name = format!("{}/demo/multi:1", registry.address);
        let index_digest = manifest_digest(&layout, "1");

        let pulled = net.run(&runtime, &["pull", &name]);
        pulled.expect_success();
        assert!(
            pulled.stdout.contains(&format!("Digest: {index_digest}")),
            "{}: docker prints the index's digest: {}",
            runtime.name,
            pulled.report()
        );
        let run = net.run(
            &runtime,
            &["run", "--rm", "--net", "none", "--pull", "never", &name],
        );
        assert_eq!(run.stdout, "hello from native\n", "{}", runtime.name);

        let other = net.run(&runtime, &["pull", "--platform", "linux/s390x", &name]);
        other.expect_success();
        let run = net.run(
            &runtime,
            &["run", "--rm", "--net", "none", "--pull", "never", &name],
        );
        assert_eq!(
            run.stdout, "hello from s390x\n",
            "{}: --platform chose the other image",
            runtime.name
        );

        let single = dir.path().join("single");
        let single = hello_image("one platform").write_layout(&single, "1");
        net.push(&registry, &single, "1", "demo/single:1", None);
        let single_name = format!("{}/demo/single:1", registry.address);
        let other = net.run(
            &runtime,
            &["pull", "--platform", "linux/s390x", &single_name],
        );
        let is = format!(
            "the image is for linux/{}, not linux/s390x",
            this_platform().0
        );
        assert_one_line_error(&runtime, &other, &is);

        let missing = net.run(&runtime, &["pull", "--platform", "linux/riscv64", &name]);
        assert_one_line_error(&runtime, &missing, "has no linux/riscv64");
        let (architecture, _) = this_platform();
        assert!(
            missing.stderr.contains(&format!("linux/{architecture}"))
                && missing.stderr.contains("linux/s390x"),
            "{}: the error lists what there is: {}",
            runtime.name,
            missing.stderr
        );
    }
}

#[test]
fn basic_auth_takes_the_right_password_and_refuses_a_wrong_one_in_one_line() {
    if registry_missing() {
        return;
    }
    for runtime in from_chapter(10) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let passwords = htpasswd_file(dir.path(), "alice", "s3cret");
        let registry = net.registry(RegistryAuth::Htpasswd(passwords));
        let layout =
            hello_image("behind a password").write_layout(&dir.path().join("h"), "1");
        net.push(
            &registry,
            &layout,
            "1",
            "private/hello:1",
            Some("alice:s3cret"),
        );
        let name = format!("{}/private/hello:1", registry.address);

        let anonymous = net.run(&runtime, &["pull", &name]);
        assert_one_line_error(&runtime, &anonymous, "wants a user and password");
        let wrong = net.run(&runtime, &["pull", "--creds", "alice:guess", &name]);
        assert_one_line_error(&runtime, &wrong, "UNAUTHORIZED");
        assert_store_empty(&runtime, "refused pulls");

        let right = net.run(&runtime, &["pull", "--creds", "alice:s3cret", &name]);
        right.expect_success();
        let run = net.run(
            &runtime,
            &["run", "--rm", "--net", "none", "--pull", "never", &name],
        );
        assert_eq!(
            run.stdout, "hello from behind a password\n",
            "{}",
            runtime.name
        );

        // Docker's own file, in a home the test makes: `auths`, base64 of USER:PASSWORD.
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        let config =
            json!({"auths": {registry.address.clone(): {"auth": "YWxpY2U6czNjcmV0"}}});
        std::fs::write(home.join(".docker/config.json"), config.to_string()).unwrap();
        open_tree_to_all(&home);
        let always = ["run", "--rm", "--net", "none", "--pull", "always", &name];
        let invocation = runtime.invocation().env("HOME", &home).args(always);
        let from_home = net.within(|| invocation.run());
        from_home.expect_success();
        assert_eq!(
            from_home.stdout, "hello from behind a password\n",
            "{}: the credentials came from ~/.docker/config.json",
            runtime.name
        );
    }
}

/// A file holding `text`, which the runtime's user may read.
fn readable_file(dir: &TestLayers, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    dir.own(&path);
    path
}

#[test]
fn bearer_tokens_come_from_the_token_server_once_per_pull_and_login_keeps_the_password() {
    if registry_missing() {
        return;
    }
    for runtime in from_chapter(10) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let tokens = net.within(|| TokenServer::start("bob", "hunter2"));
        let registry = net.registry(tokens.auth());
        let layout = hello_image("a token").write_layout(&dir.path().join("t"), "1");
        net.push(&registry, &layout, "1", "team/app:1", Some("bob:hunter2"));
        let name = format!("{}/team/app:1", registry.address);

        let anonymous = net.run(&runtime, &["pull", &name]);
        assert_one_line_error(&runtime, &anonymous, "UNAUTHORIZED");

        let authfile = dir.path().join("auth/auth.json");
        let authfile_arg = authfile.display().to_string();
        std::fs::create_dir_all(authfile.parent().unwrap()).unwrap();
        dir.own(authfile.parent().unwrap());
        let wrong = readable_file(&dir, "wrong", "nope\n");
        let refused = net.within(|| {
            runtime
                .invocation()
                .args(["login", "-u", "bob", "--password-stdin"])
                .args(["--authfile", &authfile_arg, &registry.address])
                .input(&wrong)
                .run()
        });
        assert_one_line_error(&runtime, &refused, "refused");
        assert!(
            !authfile.exists(),
            "{}: a refused login wrote credentials",
            runtime.name
        );

        let right = readable_file(&dir, "right", "hunter2\n");
        let login = net.within(|| {
            runtime
                .invocation()
                .args(["login", "-u", "bob", "--password-stdin"])
                .args(["--authfile", &authfile_arg, &registry.address])
                .input(&right)
                .run()
        });
        login.expect_success();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&authfile).unwrap().permissions(),
        );
        assert_eq!(
            mode & 0o777,
            0o600,
            "{}: the credentials file",
            runtime.name
        );

        let before = tokens.requests();
        let pulled = net.run(&runtime, &["pull", "--authfile", &authfile_arg, &name]);
        pulled.expect_success();
        assert_eq!(
            tokens.requests() - before,
            1,
            "{}: one token for the whole pull (manifest, config, two layers)",
            runtime.name
        );
        let run = net.run(
            &runtime,
            &["run", "--rm", "--net", "none", "--pull", "never", &name],
        );
        assert_eq!(run.stdout, "hello from a token\n", "{}", runtime.name);

        let logout = net.run(
            &runtime,
            &["logout", "--authfile", &authfile_arg, &registry.address],
        );
        logout.expect_success();
        let text = std::fs::read_to_string(&authfile).unwrap();
        assert!(
            !text.contains(&registry.address),
            "{}: {text}",
            runtime.name
        );
        let after = net.run(&runtime, &["pull", "--authfile", &authfile_arg, &name]);
        assert_one_line_error(&runtime, &after, "UNAUTHORIZED");
    }
}

#[test]
fn two_pulls_of_one_image_at_once_keep_one_copy_of_each_blob_and_layer() {
    if registry_missing() {
        return;
    }
    for runtime in from_chapter(10) {
        let net = Net::new();
        let registry = net.registry(RegistryAuth::Open);
        let dir = test_dir(&runtime);
        let layout = hello_image("two at once").write_layout(&dir.path().join("h"), "1");
        net.push(&registry, &layout, "1", "demo/twice:1", None);
        let name = format!("{}/demo/twice:1", registry.address);
        let runs: Vec<Run> = std::thread::scope(|scope| {
            let pulls: Vec<_> = (0..2)
                .map(|_| scope.spawn(|| net.run(&runtime, &["pull", &name])))
                .collect();
            pulls.into_iter().map(|pull| pull.join().unwrap()).collect()
        });
        for run in &runs {
            run.expect_success();
        }
        assert_eq!(
            names_in(&runtime, "images/blobs/sha256").len(),
            4,
            "{}: one manifest, one config, two layers",
            runtime.name
        );
        assert_eq!(names_in(&runtime, "layers").len(), 2, "{}", runtime.name);
        assert!(names_in(&runtime, "tmp").is_empty(), "{}", runtime.name);
    }
}

#[test]
fn the_trace_narrates_each_http_request_and_the_token_dance_with_credentials_redacted() {
    if registry_missing() {
        return;
    }
    let digest = regex::Regex::new(r"sha256:[0-9a-f]{64}").unwrap();
    for runtime in from_chapter_as_root(10)
        .into_iter()
        .filter(|r| r.chapter == 10)
    {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let tokens = net.within(|| TokenServer::start("bob", "hunter2"));
        let registry = net.registry(tokens.auth());
        let layout = hello_image("the trace").write_layout(&dir.path().join("h"), "1");
        net.push(
            &registry,
            &layout,
            "1",
            "demo/traced:1",
            Some("bob:hunter2"),
        );
        let name = format!("{}/demo/traced:1", registry.address);
        let pulled = net.traced(&runtime, &["pull", "--creds", "bob:hunter2", &name]);
        pulled.expect_success();
        assert!(
            !pulled.stderr.contains("hunter2")
                && !pulled.stderr.contains("Ym9iOmh1bnRlcjI"),
            "{}: the password shows in the trace: {}",
            runtime.name,
            pulled.stderr
        );
        assert!(
            pulled.stderr.contains("authorization: Bearer [redacted]"),
            "{}: {}",
            runtime.name,
            pulled.stderr
        );
        if testing_solutions() {
            // Layers arrive in parallel: their lines are sorted to make one story.
            let mut lines = http_lines(&pulled);
            let (documents, mut blobs): (Vec<String>, Vec<String>) =
                lines.drain(..).partition(|line| !line.contains("/blobs/"));
            blobs.sort();
            let story: String = documents
                .into_iter()
                .chain(blobs)
                .map(|line| format!("{line}\n"))
                .collect();
            // Before the filters, which take any 12 hex digits for a container id.
            let story = digest.replace_all(&story, "sha256:[DIGEST]");
            let tokens_at = tokens.realm.trim_end_matches("/token").to_string();
            let story = story
                .replace(&registry.address, "[REGISTRY]")
                .replace(&tokens_at, "http://[TOKEN SERVER]");
            let mut settings = trace_filters();
            settings.add_filter(r"content-length: \d+", "content-length: [N]");
            settings.bind(|| insta::assert_snapshot!("ch10_trace", story));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Against a fake, for the faults a real registry cannot be made to show

/// A fake registry serving the hello image as `demo/hello:1`: the fake, and the image's
/// manifest digest and blobs (config, then layers).
fn fake_with_hello(net: &Net, dir: &TestLayers) -> (FakeRegistry, String, Vec<String>) {
    let layout = hello_image("the fake").write_layout(&dir.path().join("fake"), "1");
    let fake = net.fake();
    let served = fake.serve_layout(&layout, "1", "demo/hello");
    (fake, served.manifest, served.blobs)
}

/// A digest no manifest has: a reference that pins it must get no other manifest.
const PINNED: &str =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// One fault: what the fake is made to do, and a part of the one line it must give.
struct Fault {
    name: &'static str,
    make: fn(&FakeRegistry, &[String]),
    options: &'static [&'static str],
    says: &'static str,
}

fn faults() -> Vec<Fault> {
    vec![
        Fault {
            name: "a layer whose bytes are not its digest's",
            make: |fake, blobs| {
                let path = blob_path("demo/hello", &blobs[2]);
                let mut body = fake_body(fake, &path);
                // The gzip header's time: no checksum covers it, so the layer inflates
                // as before, and only the blob's digest can tell.
                body[4] ^= 0xff;
                fake.route("GET", &path, Response::ok(body));
            },
            options: &[],
            says: "not the layer its manifest names",
        },
        Fault {
            name: "a manifest that is not the one the reference pins",
            make: |fake, _| {
                let manifest = fake_body(fake, &manifest_path("demo/hello", "1"));
                fake.route(
                    "GET",
                    &manifest_path("demo/hello", PINNED),
                    Response::ok(manifest).header(
                        "Content-Type",
                        "application/vnd.oci.image.manifest.v1+json",
                    ),
                );
            },
            options: &[],
            says: "not sha256:2222",
        },
        Fault {
            name: "a manifest larger than any manifest",
            make: |fake, _| {
                let huge = format!(
                    "{{\"schemaVersion\":2,\"pad\":\"{}\"}}",
                    "x".repeat(5 << 20)
                );
                fake.route("GET", &manifest_path("demo/hello", "1"), Response::ok(huge));
            },
            options: &[],
            says: "more than 4194304 bytes",
        },
        Fault {
            name: "a Docker-Content-Digest that is not the manifest's",
            make: |fake, _| {
                let path = manifest_path("demo/hello", "1");
                let wrong = format!("sha256:{}", "0".repeat(64));
                let body = fake_body(fake, &path);
                fake.route(
                    "GET",
                    &path,
                    Response::ok(body)
                        .header(
                            "Content-Type",
                            "application/vnd.oci.image.manifest.v1+json",
                        )
                        .header("Docker-Content-Digest", &wrong),
                );
            },
            options: &[],
            says: "the registry says the manifest is sha256:0000",
        },
        Fault {
            name: "a redirect loop",
            make: |fake, blobs| {
                let path = blob_path("demo/hello", &blobs[1]);
                fake.route("GET", &path, Response::redirect(&path));
            },
            options: &[],
            says: "redirects (a redirect loop?)",
        },
        Fault {
            name: "a blob that stalls",
            make: |fake, blobs| {
                let path = blob_path("demo/hello", &blobs[2]);
                let body = fake_body(fake, &path);
                fake.route(
                    "GET",
                    &path,
                    Response::ok(body).stall(Duration::from_secs(8)),
                );
            },
            options: &["--stall-timeout", "1"],
            says: "stalled",
        },
        Fault {
            name: "too many requests, and a long wait: told at once",
            make: |fake, _| {
                let limited = Response::error(429, "TOOMANYREQUESTS", "slow down")
                    .header("Retry-After", "60");
                fake.route("GET", &manifest_path("demo/hello", "1"), limited);
            },
            options: &[],
            says: "TOOMANYREQUESTS, again after 60 s",
        },
        Fault {
            name: "a server error, retried, then told",
            make: |fake, _| {
                fake.route(
                    "GET",
                    &manifest_path("demo/hello", "1"),
                    Response::new(503, "down"),
                );
            },
            options: &[],
            says: "answered 503",
        },
        Fault {
            name: "401 with no challenge",
            make: |fake, _| {
                fake.route(
                    "GET",
                    &manifest_path("demo/hello", "1"),
                    Response::new(401, ""),
                );
            },
            options: &[],
            says: "no WWW-Authenticate",
        },
        Fault {
            name: "401 with a challenge that is not one",
            make: |fake, _| {
                let odd = Response::new(401, "")
                    .header("WWW-Authenticate", "Bearer service=\"x\"");
                fake.route("GET", &manifest_path("demo/hello", "1"), odd);
            },
            options: &[],
            says: "names no realm",
        },
        Fault {
            name: "an index whose manifest is an index",
            make: |fake, _| {
                let (architecture, _) = this_platform();
                let inner = format!("sha256:{}", "1".repeat(64));
                let index = json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [{
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "digest": inner, "size": 100,
                        "platform": {"os": "linux", "architecture": architecture},
                    }],
                });
                fake.route(
                    "GET",
                    &manifest_path("demo/hello", "1"),
                    Response::ok(index.to_string()).header(
                        "Content-Type",
                        "application/vnd.oci.image.index.v1+json",
                    ),
                );
            },
            options: &[],
            says: "names another index",
        },
        Fault {
            name: "a token server over plain HTTP on another host, for a password",
            make: |fake, _| {
                let challenge =
                    "Bearer realm=\"http://tokens.example/token\",service=\"x\"";
                let asks = Response::new(401, "").header("WWW-Authenticate", challenge);
                fake.route("GET", &manifest_path("demo/hello", "1"), asks);
            },
            options: &["--creds", "alice:s3cret"],
            says: "over plain HTTP",
        },
        Fault {
            name: "a schema 1 manifest",
            make: |fake, _| {
                let old =
                    json!({"schemaVersion": 1, "name": "demo/hello", "fsLayers": []});
                fake.route(
                    "GET",
                    &manifest_path("demo/hello", "1"),
                    Response::ok(old.to_string()).header(
                        "Content-Type",
                        "application/vnd.docker.distribution.manifest.v1+prettyjws",
                    ),
                );
            },
            options: &[],
            says: "schema 1",
        },
    ]
}

/// What the fake serves at `path` now (a GET straight to it).
fn fake_body(fake: &FakeRegistry, path: &str) -> Vec<u8> {
    let answer = ureq_get(&format!("{}{path}", fake.url()));
    assert!(!answer.is_empty(), "the fake serves {path}");
    answer
}

/// A GET to the fake, from the test itself, by hand (the fake listens in this thread's
/// network namespace only when the test is root: the caller is inside it).
fn ureq_get(url: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (address, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    answer[split + 4..].to_vec()
}

#[test]
fn each_fault_of_a_registry_gives_one_line_and_leaves_nothing_in_the_store() {
    let digest = regex::Regex::new(r"sha256:[0-9a-f]{64}").unwrap();
    let mut snapshot_taken = None;
    for runtime in from_chapter(10) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        // Each fault and its line, for the book's table.
        let mut table = String::new();
        for fault in faults() {
            let (fake, _, blobs) = fake_with_hello(&net, &dir);
            net.within(|| (fault.make)(&fake, &blobs));
            let name = match fault.says.contains("2222") {
                true => format!("{}/demo/hello@{PINNED}", fake.address()),
                false => format!("{}/demo/hello:1", fake.address()),
            };
            let mut args = vec!["pull"];
            args.extend_from_slice(fault.options);
            args.push(&name);
            let started = Instant::now();
            let pulled = net.run(&runtime, &args);
            assert_one_line_error(&runtime, &pulled, fault.says);
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{}: {}: took {:?}",
                runtime.name,
                fault.name,
                started.elapsed()
            );
            assert_store_empty(&runtime, fault.name);
            let line = pulled.stderr.lines().next().unwrap_or_default();
            let line = line.replace(&fake.address(), "[REGISTRY]");
            table.push_str(&format!("{}\n    {line}\n", fault.name));
        }
        if testing_solutions() && snapshot_taken.is_none() {
            snapshot_taken = Some(runtime.name.clone());
            let table = digest.replace_all(&table, "sha256:[DIGEST]");
            let mut settings = insta::Settings::clone_current();
            settings.set_prepend_module_to_snapshot(false);
            settings.add_filter(r"\d+ bytes", "[N] bytes");
            settings.add_filter(r"after \d+ of", "after [N] of");
            settings.bind(|| insta::assert_snapshot!("ch10_faults", table));
        }
    }
}

#[test]
fn server_errors_and_rate_limits_are_tried_again_a_few_times_then_told() {
    for runtime in from_chapter(10).into_iter().take(1) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let (fake, _, _) = fake_with_hello(&net, &dir);
        let path = manifest_path("demo/hello", "1");
        let body = net.within(|| fake_body(&fake, &path));
        let whole = Response::ok(body.clone())
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json");
        fake.route_in_turn(
            "GET",
            &path,
            vec![
                Response::new(502, "busy"),
                Response::new(503, ""),
                whole.clone(),
            ],
        );
        let name = format!("{}/demo/hello:1", fake.address());
        let before = fake.requests_to(&path).len();
        net.run(&runtime, &["pull", &name]).expect_success();
        assert_eq!(
            fake.requests_to(&path).len() - before,
            3,
            "{}: two failures, then the answer",
            runtime.name
        );
        fake.route("GET", &path, Response::new(500, "broken"));
        let before = fake.requests_to(&path).len();
        let failed = net.run(&runtime, &["pull", &name]);
        assert_one_line_error(&runtime, &failed, "answered 500");
        assert_eq!(
            fake.requests_to(&path).len() - before,
            4,
            "{}: tried four times in all",
            runtime.name
        );
        let soon = Response::error(429, "TOOMANYREQUESTS", "in a second")
            .header("Retry-After", "2");
        fake.route_in_turn("GET", &path, vec![soon, whole]);
        let started = Instant::now();
        net.run(&runtime, &["pull", &name]).expect_success();
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "{}: a short Retry-After is waited for: {:?}",
            runtime.name,
            started.elapsed()
        );
        let limited = Response::error(429, "TOOMANYREQUESTS", "the pull rate limit")
            .header("Retry-After", "3600");
        fake.route("GET", &path, limited);
        let before = fake.requests_to(&path).len();
        let failed = net.run(&runtime, &["pull", &name]);
        assert_one_line_error(&runtime, &failed, "again after 3600 s");
        assert_eq!(
            fake.requests_to(&path).len() - before,
            1,
            "{}: an hour's wait is told at once, not waited for",
            runtime.name
        );
    }
}

#[test]
fn a_credential_never_follows_a_redirect_to_another_host() {
    for runtime in from_chapter(10) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let (fake, _, blobs) = fake_with_hello(&net, &dir);
        let storage = net.fake();
        let layer = blob_path("demo/hello", &blobs[2]);
        let bytes = net.within(|| fake_body(&fake, &layer));
        storage.route("GET", "/storage/layer", Response::ok(bytes));
        fake.route(
            "GET",
            &layer,
            Response::redirect(&format!("{}/storage/layer", storage.url())),
        );
        // The registry wants Basic auth for its manifest: the credential is sent from then on.
        let path = manifest_path("demo/hello", "1");
        let manifest = net.within(|| fake_body(&fake, &path));
        let challenge =
            Response::new(401, "").header("WWW-Authenticate", "Basic realm=\"fake\"");
        let served = Response::ok(manifest)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json");
        fake.route_in_turn("GET", &path, vec![challenge, served]);
        let name = format!("{}/demo/hello:1", fake.address());
        let before = fake.requests_to(&layer).len(); // the test's own GET
        net.run(&runtime, &["pull", "--creds", "alice:s3cret", &name])
            .expect_success();
        let sent_to_registry = fake.requests_to(&layer).split_off(before);
        assert!(
            !sent_to_registry.is_empty()
                && sent_to_registry.iter().all(|r| r.authorization().is_some()),
            "{}: the registry itself gets the credential",
            runtime.name
        );
        let sent_to_storage = storage.requests_to("/storage/layer");
        assert_eq!(sent_to_storage.len(), 1, "{}", runtime.name);
        assert_eq!(
            sent_to_storage[0].authorization(),
            None,
            "{}: the credential followed the redirect to another host",
            runtime.name
        );
    }
}

/// A layer of `size` bytes that gzip cannot make smaller.
fn incompressible_layer(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e3779b97f4a7c15;
    let noise: String = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (b'a' + (state % 26) as u8) as char
        })
        .collect();
    LayerTar::new().file("noise", &noise, 0o644).finish()
}

/// A fake serving an image whose second layer is 2 MiB of noise, as `demo/cut:1`: the
/// fake, the layer's path there, its bytes and its digest's hex.
fn fake_with_a_big_layer(
    net: &Net,
    dir: &TestLayers,
) -> (FakeRegistry, String, Vec<u8>, String) {
    let image = TestImage::new(
        vec![base_layer(), incompressible_layer(2 << 20)],
        json!({"Cmd": ["sh", "-c", "wc -c < /noise"]}),
    );
    let layout = image.write_layout(&dir.path().join("cut"), "1");
    let fake = net.fake();
    let served = fake.serve_layout(&layout, "1", "demo/cut");
    let layer = blob_path("demo/cut", &served.blobs[2]);
    let bytes = net.within(|| fake_body(&fake, &layer));
    let hex = served.blobs[2].trim_start_matches("sha256:").to_string();
    (fake, layer, bytes, hex)
}

#[test]
fn a_download_cut_off_is_taken_up_again_in_the_same_pull_with_a_range() {
    for runtime in from_chapter(10) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let (fake, layer, bytes, _) = fake_with_a_big_layer(&net, &dir);
        let half = bytes.len() / 2;
        let cut = Response::ok(bytes.clone()).cut_after(half);
        fake.route_in_turn(
            "GET",
            &layer,
            vec![cut, Response::ok(bytes.clone()).ranges()],
        );
        let before = (fake.requests_to(&layer).len(), fake.bytes_served(&layer));
        let name = format!("{}/demo/cut:1", fake.address());
        net.run(&runtime, &["pull", &name]).expect_success();
        let asked = fake.requests_to(&layer).split_off(before.0);
        let ranges: Vec<Option<&str>> = asked.iter().map(|r| r.range()).collect();
        let rest = format!("bytes={half}-");
        assert_eq!(
            ranges,
            [None, Some(rest.as_str())],
            "{}: the whole blob, then the rest",
            runtime.name
        );
        assert_eq!(
            fake.bytes_served(&layer) - before.1,
            bytes.len() as u64,
            "{}: no byte of the layer was sent twice",
            runtime.name
        );
        let run = net.run(
            &runtime,
            &["run", "--rm", "--net", "none", "--pull", "never", &name],
        );
        assert_eq!(run.stdout.trim(), (2 << 20).to_string(), "{}", runtime.name);
    }
}

#[test]
fn a_download_cut_off_for_good_is_kept_and_the_next_pull_goes_on_from_there() {
    for runtime in from_chapter(10) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let (fake, layer, bytes, hex) = fake_with_a_big_layer(&net, &dir);
        let half = bytes.len() / 2;
        // Cut off every time, and no range served: this pull cannot finish.
        fake.route("GET", &layer, Response::ok(bytes.clone()).cut_after(half));
        let name = format!("{}/demo/cut:1", fake.address());

        let first = net.run(&runtime, &["pull", &name]);
        assert_one_line_error(&runtime, &first, "cut off");
        assert_eq!(
            names_in(&runtime, "ingest"),
            std::slice::from_ref(&hex),
            "{}",
            runtime.name
        );
        let kept = std::fs::metadata(runtime.data_dir().join("ingest").join(&hex))
            .unwrap()
            .len();
        assert_eq!(kept, half as u64, "{}: what arrived is kept", runtime.name);
        assert!(names_in(&runtime, "layers").is_empty(), "{}", runtime.name);

        fake.route("GET", &layer, Response::ok(bytes.clone()).ranges());
        let before = (fake.requests_to(&layer).len(), fake.bytes_served(&layer));
        let second = net.run(&runtime, &["pull", &name]);
        second.expect_success();
        let asked = fake.requests_to(&layer).split_off(before.0);
        let rest = format!("bytes={half}-");
        assert_eq!(
            asked.iter().map(|r| r.range()).collect::<Vec<_>>(),
            [Some(rest.as_str())],
            "{}: the second pull asks for the rest alone",
            runtime.name
        );
        assert_eq!(
            fake.bytes_served(&layer) - before.1,
            (bytes.len() - half) as u64,
            "{}: the second pull fetched only what the first had not kept",
            runtime.name
        );
        assert!(names_in(&runtime, "ingest").is_empty(), "{}", runtime.name);
        let run = net.run(
            &runtime,
            &["run", "--rm", "--net", "none", "--pull", "never", &name],
        );
        assert_eq!(run.stdout.trim(), (2 << 20).to_string(), "{}", runtime.name);
    }
}

#[test]
fn a_pull_killed_during_a_layer_is_finished_by_the_next_one() {
    for runtime in from_chapter_as_root(10) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let image = TestImage::new(
            vec![base_layer(), incompressible_layer(8 << 20)],
            json!({"Cmd": ["sh", "-c", "wc -c < /noise"]}),
        );
        let layout = image.write_layout(&dir.path().join("killed"), "1");
        let fake = net.fake();
        let served = fake.serve_layout(&layout, "1", "demo/killed");
        let layer = blob_path("demo/killed", &served.blobs[2]);
        let bytes = net.within(|| fake_body(&fake, &layer));
        let sent = 3 << 20;
        let stalled = Response::ok(bytes.clone())
            .cut_after(sent)
            .stall(Duration::from_secs(30));
        fake.route_in_turn(
            "GET",
            &layer,
            vec![stalled, Response::ok(bytes.clone()).ranges()],
        );
        let before = fake.bytes_served(&layer);
        let name = format!("{}/demo/killed:1", fake.address());

        let mut command = runtime.invocation().args(["pull", &name]).command();
        command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = net.within(move || command.spawn().unwrap());
        let hex = served.blobs[2].trim_start_matches("sha256:").to_string();
        let partial = runtime.data_dir().join("ingest").join(&hex);
        let deadline = Instant::now() + Duration::from_secs(15);
        while fake.bytes_served(&layer) - before < sent as u64
            || std::fs::metadata(&partial).map_or(0, |m| m.len()) == 0
        {
            assert!(
                Instant::now() < deadline,
                "{}: the download did not start",
                runtime.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill has no memory-safety preconditions; the runtime leads its group.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
        let kept = std::fs::metadata(&partial).unwrap().len();

        let second = net.run(&runtime, &["pull", &name]);
        second.expect_success();
        assert_eq!(
            fake.requests_to(&layer).last().unwrap().range(),
            Some(format!("bytes={kept}-").as_str()),
            "{}",
            runtime.name
        );
        assert_eq!(
            fake.bytes_served(&layer) - before - sent as u64,
            bytes.len() as u64 - kept,
            "{}: the second pull fetched only what the first had not kept",
            runtime.name
        );
        assert!(names_in(&runtime, "tmp").is_empty(), "{}", runtime.name);
        let run = net.run(
            &runtime,
            &["run", "--rm", "--net", "none", "--pull", "never", &name],
        );
        assert_eq!(run.stdout.trim(), (8 << 20).to_string(), "{}", runtime.name);
    }
}

#[test]
fn bad_references_are_refused_with_their_rule_before_any_request() {
    for runtime in from_chapter(10).into_iter().take(1) {
        let net = Net::new();
        let fake = net.fake();
        let address = fake.address();
        let cases = [
            (format!("{address}/Demo/hello:1"), "lowercase"),
            (format!("{address}/demo/hello:-1"), "tag"),
            (format!("{address}/demo/hello@sha256:abc"), "digest"),
            (format!("{address}/demo//hello"), "repository"),
        ];
        for (reference, says) in &cases {
            let pulled = net.run(&runtime, &["pull", reference]);
            assert_one_line_error(&runtime, &pulled, says);
        }
        let asked: Vec<String> =
            fake.requests().iter().map(|r| r.target.clone()).collect();
        assert!(
            asked.is_empty(),
            "{}: requests were made: {asked:?}",
            runtime.name
        );
    }
}

/// Pulls `$REF` into a data root on a tmpfs of 8 MiB, in a mount namespace of its own
/// (so the machine's mount table never shows it), then counts what is left.
const PULL_ON_A_SMALL_DISK: &str = r#"mount -t tmpfs -o size=8m byoc-small-disk "$DATA" || exit 99
"$BYOC" pull --root "$DATA/root" "$REF"
echo "pull exited $?"
for dir in layers tmp ingest images/blobs/sha256; do
    echo "$dir: $(ls -A "$DATA/root/$dir" 2>/dev/null | wc -l)"
done
"#;

#[test]
fn a_gzip_bomb_is_stopped_by_the_full_disk_and_leaves_nothing() {
    for runtime in from_chapter_as_root(10) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let zeros = LayerTar::new()
            .file("zeros", &"\0".repeat(64 << 20), 0o644)
            .finish();
        let layout = TestImage::new(vec![zeros], json!({"Cmd": ["sh"]}))
            .write_layout(&dir.path().join("bomb"), "1");
        let fake = net.fake();
        let served = fake.serve_layout(&layout, "1", "demo/bomb");
        let blob = layout
            .join("blobs/sha256")
            .join(served.blobs[1].trim_start_matches("sha256:"));
        let size = std::fs::metadata(&blob).unwrap().len();
        assert!(
            size < 1 << 20,
            "a bomb: {size} bytes that inflate to 64 MiB"
        );
        let small = dir.path().join("small-disk");
        std::fs::create_dir(&small).unwrap();
        let reference = format!("{}/demo/bomb:1", fake.address());
        let out = net.within(|| {
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(PULL_ON_A_SMALL_DISK)
                .env("DATA", &small)
                .env("BYOC", &runtime.path)
                .env("REF", &reference)
                .output()
                .expect("start unshare")
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report = format!("{}:\n{stdout}{stderr}", runtime.name);
        assert!(stdout.contains("pull exited 125"), "{report}");
        assert!(stderr.contains("No space left"), "{report}");
        assert_eq!(stderr.lines().count(), 1, "one line: {report}");
        for dir in ["layers", "tmp", "ingest", "images/blobs/sha256"] {
            assert!(
                stdout.contains(&format!("{dir}: 0\n")),
                "{dir} holds something: {report}"
            );
        }
    }
}

#[test]
fn run_checks_its_other_options_before_it_pulls() {
    for runtime in from_chapter(10).into_iter().take(1) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let (fake, _, _) = fake_with_hello(&net, &dir);
        let name = format!("{}/demo/hello:1", fake.address());
        let before = fake.requests().len();
        let run = net.run(&runtime, &["run", "--rm", "--memory-swap", "64m", &name]);
        assert_one_line_error(&runtime, &run, "it needs --memory as well");
        assert_eq!(
            fake.requests().len(),
            before,
            "{}: a typo in the options waited for a pull",
            runtime.name
        );
    }
}

#[test]
fn a_manifest_that_names_one_layer_twice_is_pulled_and_the_blob_kept_once() {
    for runtime in from_chapter(10) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let empty = LayerTar::new().dir("etc/", 0o755).finish();
        let image = TestImage::new(
            // First, so the two start at once on the first two threads.
            vec![empty.clone(), empty, base_layer()],
            json!({"Cmd": ["echo", "twice"]}),
        );
        let layout = image.write_layout(&dir.path().join("twice"), "1");
        let fake = net.fake();
        fake.serve_layout(&layout, "1", "demo/twice");
        let name = format!("{}/demo/twice:1", fake.address());
        net.run(&runtime, &["pull", &name]).expect_success();
        assert_eq!(
            names_in(&runtime, "layers").len(),
            3,
            "{}: a directory per layer (their chain ids differ)",
            runtime.name
        );
        assert_eq!(
            names_in(&runtime, "images/blobs/sha256").len(),
            4,
            "{}: manifest, config, and two distinct layer blobs",
            runtime.name
        );
        let run = net.run(&runtime, &["run", "--rm", "--net", "none", &name]);
        assert_eq!(run.stdout, "twice\n", "{}", runtime.name);
    }
}

#[test]
fn a_symlink_planted_in_ingest_is_never_written_through() {
    for runtime in from_chapter(10) {
        let net = Net::new();
        let dir = test_dir(&runtime);
        let (fake, _, blobs) = fake_with_hello(&net, &dir);
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "the victim's own\n").unwrap();
        dir.own(&victim);
        // A forged record: the layer's ingest file, a symlink to a file outside.
        let ingest = runtime.data_dir().join("ingest");
        std::fs::create_dir_all(&ingest).unwrap();
        dir.own(&runtime.data_dir());
        dir.own(&ingest);
        let planted = ingest.join(blobs[2].trim_start_matches("sha256:"));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        dir.own(&planted);
        let name = format!("{}/demo/hello:1", fake.address());
        net.run(&runtime, &["pull", &name]).expect_success();
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "the victim's own\n",
            "{}: the pull wrote through the symlink",
            runtime.name
        );
        assert!(names_in(&runtime, "ingest").is_empty(), "{}", runtime.name);
        let run = net.run(
            &runtime,
            &["run", "--rm", "--net", "none", "--pull", "never", &name],
        );
        assert_eq!(run.stdout, "hello from the fake\n", "{}", runtime.name);
    }
}

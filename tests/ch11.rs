//! Bonus chapter: the OCI runtime interface. Book: chapter 11. Runs against the bonus
//! chapter's binary, as root: the lifecycle by hand on a bundle the test writes
//! (create, state, start, kill, delete, and each wrong order), the fields the kit
//! refuses, and podman (Debian's, with its storage under a temp dir) running its
//! containers with the kit: `run --rm`, an exit code, `run -d` + `stop` + `rm`, `run
//! -it` on a terminal the test holds, `--memory`, the capabilities it asks for.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use byoc_tests::cgroups::{self, assert_none_left};
use byoc_tests::{
    become_as_at_login, bin_dir, host_state, in_own_group_with_umask, open_pty, rootfs,
    runtimes_needing, test_user, HostState, Need, Runtime, TestUser, BONUS_CHAPTER,
    LAST_CHAPTER,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// The runtime, by hand

/// One test at a time: each checks that the machine's mount table is as it was, and
/// podman mounts a container's `/dev/shm` in the machine's while it runs.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The bonus chapter's runtime, as root (its containers need root here), or none (and
/// the test recorded as not run).
fn oci_runtimes(needs: &[Need]) -> Vec<Runtime> {
    runtimes_needing(BONUS_CHAPTER..=BONUS_CHAPTER, needs)
}

/// A bundle the test writes: `config.json` naming the kit's root filesystem (read-only:
/// every test shares it), and a state directory of the test's own.
struct Bundle {
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Bundle {
    fn new(config: Value) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        let bundle = Bundle {
            dir,
            cgroup_parent: cgroups::fresh_parent(),
        };
        bundle.write(config);
        bundle
    }

    fn write(&self, mut config: Value) {
        if config["linux"]["cgroupsPath"].is_null() {
            config["linux"]["cgroupsPath"] =
                json!(format!("/{}/ctr", self.cgroup_parent));
        }
        let text = serde_json::to_vec_pretty(&config).unwrap();
        std::fs::write(self.dir.path().join("config.json"), text).unwrap();
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// What the container printed: `create`'s stdout and stderr, which it inherits.
    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output")).unwrap_or_default()
    }
}

/// However the test ends, nothing of its containers stays: a test that fails half way
/// (or runs against an unfinished exercise) may leave one waiting on its FIFO for ever.
/// Every process in the test's cgroups is killed and the cgroups removed; the first
/// process of each container recorded is killed too.
impl Drop for Bundle {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(self.state_root())
            .into_iter()
            .flatten()
            .flatten()
        {
            let record =
                std::fs::read(entry.path().join("state.json")).unwrap_or_default();
            let pid = serde_json::from_slice::<Value>(&record)
                .ok()
                .and_then(|record| record["pid"].as_i64())
                .filter(|&pid| pid > 1);
            if let Some(pid) = pid {
                // SAFETY: kill takes two integers and touches no memory.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
        cgroups::remove_all_under(&self.cgroup_parent, &[]);
    }
}

/// A config for `args` as `runc spec` writes one, but for the kit's shared root
/// filesystem: read-only, three capabilities, the usual mounts and namespaces.
fn config_for(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin:/sbin:/usr/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true
        },
        "root": {"path": rootfs(), "readonly": true},
        "hostname": "oci-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}],
            "resources": {"devices": device_rules(), "pids": {"limit": 64}},
            "maskedPaths": ["/proc/keys", "/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
        }
    })
}

/// Deny every device (the runtime allows back those it makes), as podman asks: on v1
/// only, where the kit can enforce it.
fn device_rules() -> Value {
    match cgroups::version() {
        "v1" => json!([{"allow": false, "access": "rwm"}]),
        _ => json!([]),
    }
}

/// `RUNTIME --root STATE VERB ARGS...`, its output collected.
fn verb(runtime: &Runtime, bundle: &Bundle, args: &[&str]) -> Output {
    let mut command = Command::new(&runtime.path);
    command.arg("--root").arg(bundle.state_root()).args(args);
    command.current_dir(bundle.path()).stdin(Stdio::null());
    in_own_group_with_umask(&mut command);
    command.output().expect("the runtime starts")
}

/// `create ID`: its output (and so the container's) goes to a file, not a pipe: the
/// container keeps it open after `create` returns.
fn create(runtime: &Runtime, bundle: &Bundle, id: &str) -> (i32, String) {
    let output = File::create(bundle.path().join("output")).unwrap();
    let mut command = Command::new(&runtime.path);
    command
        .arg("--root")
        .arg(bundle.state_root())
        .args(["create", "--bundle"])
        .arg(bundle.path())
        .arg(id)
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output);
    in_own_group_with_umask(&mut command);
    let status = command.status().expect("the runtime starts");
    (status.code().unwrap_or(-1), bundle.output())
}

fn text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

/// The `status` of `state ID`, and its PID.
fn status_of(runtime: &Runtime, bundle: &Bundle, id: &str) -> (String, i64) {
    let output = verb(runtime, bundle, &["state", id]);
    assert!(output.status.success(), "state: {}", text(&output));
    let state: Value = serde_json::from_slice(&output.stdout).expect("state prints JSON");
    assert_eq!(state["id"], id);
    assert_eq!(state["ociVersion"], "1.0.2");
    (
        state["status"].as_str().unwrap().to_string(),
        state["pid"].as_i64().unwrap(),
    )
}

/// Waits (a few seconds at most) until `state` says `wanted`.
fn wait_for_status(runtime: &Runtime, bundle: &Bundle, id: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(runtime, bundle, id).0 != wanted {
        assert!(Instant::now() < deadline, "{id} never became {wanted}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the container has printed `needle`.
fn wait_for_output(bundle: &Bundle, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bundle.output().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {:?}",
            bundle.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One step of a transcript: the command, its exit code, and its first line.
fn step(transcript: &mut String, command: &str, output: &Output) {
    let said = text(output);
    // For `state`, its status line; for the rest, the first line, if any.
    let shown = said
        .lines()
        .find(|line| line.contains("\"status\""))
        .or_else(|| said.lines().next())
        .unwrap_or("")
        .trim();
    let code = output.status.code().unwrap_or(-1);
    transcript
        .push_str(&format!("$ {command}\nexit {code}  {shown}\n").replace("  \n", "\n"));
}

/// On v1, the container's device cgroup allows the devices the kit makes, and no other.
fn assert_devices_denied(bundle: &Bundle) {
    if cgroups::version() != "v1" {
        return; // no device rules in the config there: see `config_for`
    }
    let list = Path::new("/sys/fs/cgroup/devices")
        .join(&bundle.cgroup_parent)
        .join("ctr/devices.list");
    let list = std::fs::read_to_string(&list).unwrap_or_else(|e| panic!("{list:?}: {e}"));
    assert!(
        !list.contains("a *:* rwm"),
        "every device is allowed:\n{list}"
    );
    assert!(
        list.contains("c 1:3 rwm"),
        "/dev/null is not allowed:\n{list}"
    );
}

/// Cgroup v2 takes device rules as an eBPF program, which the kit does not load: a test
/// that needs them (every podman run asks for them) cannot run there.
fn needs_v1_device_rules() -> bool {
    if cgroups::version() == "v1" {
        return true;
    }
    byoc_tests::not_run(
        "needs cgroup v1: podman always asks for device rules, and on cgroup v2 those \
         need an eBPF program, which the kit does not load (book 11.3)",
    );
    false
}

fn assert_nothing_left(before: &HostState, bundle: &Bundle, runtime: &Runtime) {
    assert_eq!(&host_state(), before, "{}: the host changed", runtime.name);
    let left: Vec<_> = std::fs::read_dir(bundle.state_root()).unwrap().collect();
    assert!(left.is_empty(), "{}: state left: {left:?}", runtime.name);
    assert_none_left(&bundle.cgroup_parent, &[], &runtime.name, "");
}

#[test]
fn the_lifecycle_by_hand_create_state_start_kill_delete_and_each_wrong_order() {
    let _one = one_at_a_time();
    for runtime in oci_runtimes(&[Need::RootRuns]) {
        let before = host_state();
        let command =
            "echo started as $$ on $(hostname); grep -E ' /proc/(sys|keys) ' /proc/self/mounts; \
             grep CapBnd /proc/self/status; sleep 60";
        let bundle = Bundle::new(config_for(&["sh", "-c", command]));
        let mut transcript = String::new();

        let (code, printed) = create(&runtime, &bundle, "demo");
        assert_eq!(code, 0, "{}: create: {printed}", runtime.name);
        transcript.push_str("$ create --bundle BUNDLE demo\nexit 0\n");
        let (status, pid) = status_of(&runtime, &bundle, "demo");
        assert_eq!(status, "created", "{}", runtime.name);
        assert!(pid > 1);
        // Created is not started: the command has not run, the process is the runtime's.
        assert!(
            !bundle.output().contains("started"),
            "{}: ran before start",
            runtime.name
        );
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(
            exe,
            runtime.path.canonicalize().unwrap(),
            "{}",
            runtime.name
        );
        step(
            &mut transcript,
            "state demo",
            &verb(&runtime, &bundle, &["state", "demo"]),
        );
        step(
            &mut transcript,
            "delete demo",
            &verb(&runtime, &bundle, &["delete", "demo"]),
        );
        step(
            &mut transcript,
            "create --bundle BUNDLE demo   (again)",
            &verb(&runtime, &bundle, &["create", "--bundle", ".", "demo"]),
        );

        let started = verb(&runtime, &bundle, &["start", "demo"]);
        assert!(
            started.status.success(),
            "{}: start: {}",
            runtime.name,
            text(&started)
        );
        step(&mut transcript, "start demo", &started);
        wait_for_output(&bundle, "CapBnd");
        step(
            &mut transcript,
            "state demo",
            &verb(&runtime, &bundle, &["state", "demo"]),
        );
        assert!(
            bundle.output().contains("started as 1 on oci-test"),
            "{}",
            bundle.output()
        );
        // The bounding set is the three capabilities asked for, and nothing else.
        assert!(
            bundle.output().contains("CapBnd:\t0000000020000420"),
            "{}",
            bundle.output()
        );
        // /proc/keys hidden under the container's /dev/null, /proc/sys read-only.
        let mounts = bundle.output();
        assert!(mounts.contains("tmpfs /proc/keys"), "{mounts}");
        assert!(mounts.contains("proc /proc/sys proc ro,"), "{mounts}");
        assert_devices_denied(&bundle);
        assert_eq!(status_of(&runtime, &bundle, "demo").0, "running");
        step(
            &mut transcript,
            "start demo   (again)",
            &verb(&runtime, &bundle, &["start", "demo"]),
        );
        step(
            &mut transcript,
            "delete demo   (running)",
            &verb(&runtime, &bundle, &["delete", "demo"]),
        );

        // PID 1 of its namespace ignores a SIGTERM it has no handler for: KILL it.
        step(
            &mut transcript,
            "kill demo KILL",
            &verb(&runtime, &bundle, &["kill", "demo", "KILL"]),
        );
        wait_for_status(&runtime, &bundle, "demo", "stopped");
        step(
            &mut transcript,
            "state demo",
            &verb(&runtime, &bundle, &["state", "demo"]),
        );
        assert_eq!(
            status_of(&runtime, &bundle, "demo").1,
            0,
            "a stopped container has no PID"
        );
        step(
            &mut transcript,
            "kill demo   (stopped)",
            &verb(&runtime, &bundle, &["kill", "demo"]),
        );
        step(
            &mut transcript,
            "delete demo",
            &verb(&runtime, &bundle, &["delete", "demo"]),
        );
        step(
            &mut transcript,
            "state demo   (deleted)",
            &verb(&runtime, &bundle, &["state", "demo"]),
        );
        step(
            &mut transcript,
            "delete --force demo   (deleted)",
            &verb(&runtime, &bundle, &["delete", "--force", "demo"]),
        );
        assert_nothing_left(&before, &bundle, &runtime);

        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.add_filter(
            &regex::escape(&bundle.state_root().display().to_string()),
            "[STATE]",
        );
        settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
        settings.bind(|| insta::assert_snapshot!("ch11_lifecycle", transcript));
    }
}

#[test]
fn delete_force_stops_a_created_container_that_never_ran() {
    let _one = one_at_a_time();
    for runtime in oci_runtimes(&[Need::RootRuns]) {
        let before = host_state();
        let bundle = Bundle::new(config_for(&["sh", "-c", "echo it ran"]));
        let (code, printed) = create(&runtime, &bundle, "never");
        assert_eq!(code, 0, "{printed}");
        let (_, pid) = status_of(&runtime, &bundle, "never");
        let deleted = verb(&runtime, &bundle, &["delete", "--force", "never"]);
        assert!(deleted.status.success(), "{}", text(&deleted));
        assert!(!Path::new(&format!("/proc/{pid}/exe")).exists() || is_zombie(pid));
        assert!(!bundle.output().contains("it ran"), "{}", runtime.name);
        assert_nothing_left(&before, &bundle, &runtime);
    }
}

fn is_zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn run_creates_starts_waits_and_deletes_with_the_commands_exit_code() {
    let _one = one_at_a_time();
    for runtime in oci_runtimes(&[Need::RootRuns]) {
        let before = host_state();
        let bundle = Bundle::new(config_for(&["sh", "-c", "echo ran; exit 7"]));
        let out = File::create(bundle.path().join("output")).unwrap();
        let mut command = Command::new(&runtime.path);
        command
            .arg("--root")
            .arg(bundle.state_root())
            .args(["run", "--bundle"])
            .arg(bundle.path())
            .arg("once");
        command
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null());
        in_own_group_with_umask(&mut command);
        let status = command.status().unwrap();
        assert_eq!(
            status.code(),
            Some(7),
            "{}: {}",
            runtime.name,
            bundle.output()
        );
        assert!(bundle.output().contains("ran"));
        assert_nothing_left(&before, &bundle, &runtime);
    }
}

/// A field the kit refuses, and the change to a good config that asks for it.
struct Refused {
    what: &'static str,
    change: fn(&mut Value),
    expected: &'static str,
}

const REFUSED: [Refused; 9] = [
    Refused {
        what: "a seccomp filter that hands calls to a listener",
        change: |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"})
        },
        expected: "linux.seccomp asks for a listener",
    },
    Refused {
        what: "hooks",
        change: |c| c["hooks"] = json!({"prestart": [{"path": "/bin/true"}]}),
        expected: "hooks",
    },
    Refused {
        what: "a systemd cgroup path",
        change: |c| c["linux"]["cgroupsPath"] = json!("system.slice:byoc:x"),
        expected: "systemd",
    },
    Refused {
        what: "a cgroup path that climbs",
        change: |c| c["linux"]["cgroupsPath"] = json!("/a/../../etc"),
        expected: "plain names",
    },
    Refused {
        what: "a sysctl of the whole machine",
        change: |c| c["linux"]["sysctl"] = json!({"kernel.panic": "1"}),
        expected: "kernel.panic",
    },
    Refused {
        what: "no mount namespace",
        change: |c| c["linux"]["namespaces"] = json!([{"type": "pid"}]),
        expected: "mount namespace",
    },
    Refused {
        what: "a terminal without `--console-socket`",
        change: |c| c["process"]["terminal"] = json!(true),
        expected: "--console-socket",
    },
    Refused {
        what: "a mount of a file system the kit does not make",
        change: |c| c["mounts"][0]["type"] = json!("nfs"),
        expected: "\"nfs\"",
    },
    Refused {
        what: "a device outside /dev",
        change: |c| {
            c["linux"]["devices"] =
                json!([{"path": "/etc/disk", "type": "b", "major": 8, "minor": 0}])
        },
        expected: "not below /dev",
    },
];

#[test]
fn create_refuses_what_it_cannot_honour_in_one_line_and_leaves_nothing() {
    let _one = one_at_a_time();
    for runtime in oci_runtimes(&[Need::RootRuns]) {
        let before = host_state();
        let mut table =
            String::from("| config.json asks for | create says |\n|---|---|\n");
        for refused in &REFUSED {
            let mut config = config_for(&["true"]);
            (refused.change)(&mut config);
            let bundle = Bundle::new(Value::Null);
            bundle.write(config);
            let (code, printed) = create(&runtime, &bundle, "refused");
            assert_ne!(code, 0, "{}: {} was taken", runtime.name, refused.what);
            let lines: Vec<&str> = printed.lines().collect();
            assert_eq!(
                lines.len(),
                1,
                "{}: {}: {printed}",
                runtime.name,
                refused.what
            );
            assert!(
                printed.contains(refused.expected),
                "{}: {printed}",
                refused.what
            );
            assert_nothing_left(&before, &bundle, &runtime);
            table.push_str(&format!("| {} | `{}` |\n", refused.what, lines[0]));
        }
        let bundle = Bundle::new(config_for(&["true"]));
        for id in ["../escape", ".hidden", "a/b"] {
            let (code, printed) = create(&runtime, &bundle, id);
            assert_ne!(code, 0, "{id} was taken");
            assert!(printed.contains("is not a container id"), "{printed}");
        }
        assert_nothing_left(&before, &bundle, &runtime);
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!("ch11_refusals", table));
    }
}

// ---------------------------------------------------------------------------------------
// podman drives the kit

/// podman with its storage, run root and state under temp dirs of the test's own, and the
/// kit as its runtime, with the kit's state in the test's dir too.
struct Podman {
    dir: tempfile::TempDir,
    run_root: tempfile::TempDir,
    runtime: PathBuf,
    cgroup_parent: String,
    /// Rootless podman: the ordinary user it runs as.
    user: Option<TestUser>,
}

/// The options every `podman run` of these tests takes: no network (a namespace of the
/// container's own with loopback only), and limits this machine's hard limits allow.
/// podman's own seccomp profile stays: the kit installs it (book 11.5).
const RUN_OPTIONS: [&str; 6] = [
    "--network",
    "none",
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=1024:1024",
];

/// However the test ends: podman removes what it still has, rootless podman's pause
/// process goes, and whatever is left in the test's cgroups is killed and removed.
impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        self.end_pause_process();
        cgroups::remove_all_under(&self.cgroup_parent, &[]);
    }
}

impl Podman {
    fn new(runtime: &Runtime) -> Podman {
        // podman refuses a run root of more than 50 characters: one straight under /tmp.
        let run_root = tempfile::Builder::new()
            .prefix("byoc-podman-")
            .tempdir_in("/tmp")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let user = runtime
            .rootless
            .as_ref()
            .map(|rootless| rootless.user.clone());
        if let Some(user) = &user {
            let run = dir.path().join("run");
            std::fs::create_dir(&run).unwrap();
            for made in [dir.path(), run.as_path(), run_root.path()] {
                std::os::unix::fs::chown(made, Some(user.uid), Some(user.gid)).unwrap();
            }
            std::fs::set_permissions(
                &run,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .unwrap();
        }
        Podman {
            dir,
            run_root,
            runtime: runtime.path.clone(),
            cgroup_parent: cgroups::fresh_parent(),
            user,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(self.dir.path().join("storage"))
            .arg("--runroot")
            .arg(self.run_root.path())
            .arg("--tmpdir")
            .arg(self.dir.path().join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "none",
                "--cgroup-manager",
                "cgroupfs",
            ])
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args)
            .stdin(Stdio::null());
        in_own_group_with_umask(&mut command);
        if let Some(user) = &self.user {
            // podman as an ordinary user: a home and a runtime dir of the test's, and a
            // working directory it may enter (the kit's may be open to root alone).
            command
                .current_dir(self.dir.path())
                .env("HOME", self.dir.path())
                .env("XDG_RUNTIME_DIR", self.dir.path().join("run"));
            become_as_at_login(&mut command, user);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("podman starts")
    }

    /// `podman run OPTIONS IMAGE COMMAND...`, under the test's cgroup parent.
    fn run_container(&self, options: &[&str], command: &[&str]) -> Output {
        let cid_file = self.next_cid_file();
        let mut args = vec!["run", "--cidfile", cid_file.as_str()];
        let parent = format!("--cgroup-parent=/{}", self.cgroup_parent);
        if self.user.is_none() {
            args.push(parent.as_str()); // an ordinary user's podman makes none on v1
        }
        args.extend(RUN_OPTIONS);
        args.extend(options);
        args.push("localhost/kit-busybox:1");
        args.extend(command);
        self.run(&args)
    }

    /// Where the kit keeps its containers' state when podman calls it: its default,
    /// `/run/byoc` (podman passes `--runtime-flag` to some calls and not to `delete`).
    /// Rootless podman keeps a process of the user's that holds its user namespace for
    /// the next command (`podman pause`, its pid in `pause.pid` under `--tmpdir`); it
    /// outlives every podman command, so the test ends it. Returns whether there was one.
    fn end_pause_process(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(user) = &self.user else { return false };
        let pid_file = self.dir.path().join("tmp/pause.pid");
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            return false;
        };
        let Ok(pid) = text.trim().parse::<i32>() else {
            return false;
        };
        // Only the test user's own process: a stale file must not name another.
        let owner = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid());
        if owner.ok() != Some(user.uid) {
            return false;
        }
        // SAFETY: kill takes no pointers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = std::fs::remove_file(&pid_file);
        true
    }

    /// The live processes of the test user (a zombie is gone but for its parent's wait).
    fn user_processes(&self) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let Some(user) = &self.user else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(path.join("status")) else {
                continue;
            };
            let zombie = status.lines().any(|l| l.starts_with("State:\tZ"));
            if meta.uid() == user.uid && !zombie && status.starts_with("Name:") {
                found.push(status.lines().next().unwrap_or_default().to_string());
            }
        }
        found
    }

    fn kit_state(&self) -> PathBuf {
        match self.user {
            None => PathBuf::from("/run/byoc"),
            Some(_) => self.dir.path().join("run/byoc"),
        }
    }

    /// A new file for `podman run --cidfile`, so the test learns each container's id.
    fn next_cid_file(&self) -> String {
        let cids = self.dir.path().join("cids");
        std::fs::create_dir_all(&cids).unwrap();
        if let Some(user) = &self.user {
            std::os::unix::fs::chown(&cids, Some(user.uid), Some(user.gid)).unwrap();
        }
        let n = std::fs::read_dir(&cids).unwrap().count();
        cids.join(format!("{n}")).display().to_string()
    }

    /// The ids of every container this test ran.
    fn ids(&self) -> Vec<String> {
        let Ok(files) = std::fs::read_dir(self.dir.path().join("cids")) else {
            return Vec::new();
        };
        files
            .flatten()
            .filter_map(|file| std::fs::read_to_string(file.path()).ok())
            .collect()
    }

    /// The image: the kit's root filesystem imported by chapter 10's reference, written
    /// out with `image save`, and loaded into podman's store.
    fn load_image(&self) {
        let kit = bin_dir().join(format!("solution{LAST_CHAPTER:02}"));
        let data_root = self.dir.path().join("kit-data");
        let layout = self.dir.path().join("layout");
        let image = byoc_tests::TestImage::new(
            vec![byoc_tests::LayerTar::of_dir(&rootfs()).finish()],
            json!({"Cmd": ["sh"]}),
        );
        let written = image.write_layout(&layout, "1");
        let archive = self.dir.path().join("kit-busybox.tar");
        for args in [
            vec![
                "image".into(),
                "import".into(),
                written.display().to_string(),
                "kit-busybox:1".into(),
            ],
            vec![
                "image".into(),
                "save".into(),
                "kit-busybox:1".into(),
                "-o".into(),
                archive.display().to_string(),
            ],
        ] {
            let out = Command::new(&kit)
                .env("BYOC_ROOT", &data_root)
                .args(&args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{kit:?} {args:?}: {}", text(&out));
        }
        let loaded = self.run(&["load", "-i", &archive.display().to_string()]);
        assert!(loaded.status.success(), "podman load: {}", text(&loaded));
        let tagged = self.run(&["tag", "kit-busybox:1", "localhost/kit-busybox:1"]);
        assert!(tagged.status.success(), "podman tag: {}", text(&tagged));
    }

    fn assert_nothing_left(&self, before: &HostState) {
        let listed = self.run(&["ps", "-a", "-q"]);
        assert_eq!(
            String::from_utf8_lossy(&listed.stdout).trim(),
            "",
            "podman still lists containers"
        );
        let ids = self.ids();
        assert!(!ids.is_empty(), "no container ran");
        let left: Vec<&String> = ids
            .iter()
            .filter(|id| self.kit_state().join(id.trim()).exists())
            .collect();
        assert!(left.is_empty(), "the kit's state was left: {left:?}");
        // podman puts conmon in PARENT/conmon, and leaves it there (with runc too): that
        // one is podman's. The container's own cgroup must be gone.
        let left = cgroups::left_under(&self.cgroup_parent, &[]);
        let containers: Vec<_> =
            left.iter().filter(|dir| !dir.ends_with("conmon")).collect();
        assert!(
            containers.is_empty(),
            "the container's cgroup was left: {containers:?}"
        );
        cgroups::remove_all_under(&self.cgroup_parent, &[]);
        assert_eq!(&host_state(), before, "the host changed");
    }
}

#[test]
fn podman_runs_its_containers_with_the_kit() {
    let _one = one_at_a_time();
    if !needs_v1_device_rules() {
        return;
    }
    for runtime in oci_runtimes(&[Need::RootRuns, Need::Podman]) {
        let before = host_state();
        let podman = Podman::new(&runtime);
        podman.load_image();
        let mut transcript = String::new();
        let mut record = |command: &str, output: &Output| {
            let code = output.status.code().unwrap_or(-1);
            transcript.push_str(&format!(
                "$ podman {command}\n{}exit {code}\n",
                text(output)
            ));
        };

        let hi = podman.run_container(&["--rm"], &["echo", "hi"]);
        assert_eq!(String::from_utf8_lossy(&hi.stdout), "hi\n", "{}", text(&hi));
        assert!(hi.status.success());
        record("run --rm IMAGE echo hi", &hi);

        let seven = podman.run_container(&["--rm"], &["sh", "-c", "exit 7"]);
        assert_eq!(seven.status.code(), Some(7), "{}", text(&seven));
        record("run --rm IMAGE sh -c 'exit 7'", &seven);

        let inside = podman.run_container(
            &["--rm", "--memory", "64m", "--hostname", "from-podman"],
            &["sh", "-c", "hostname; grep -E '^(CapBnd|Seccomp):' /proc/self/status; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; exit 0"],
        );
        let said = String::from_utf8_lossy(&inside.stdout).into_owned();
        assert!(inside.status.success(), "{}", text(&inside));
        assert!(said.contains("from-podman"), "{said}");
        // podman's eleven capabilities (no CAP_SYS_ADMIN, no CAP_NET_RAW), as it asked.
        assert!(said.contains("CapBnd:\t00000000800405fb"), "{said}");
        // And podman's seccomp profile, installed by the kit.
        assert!(said.contains("Seccomp:\t2"), "{said}");
        assert!(said.lines().any(|line| line == "67108864"), "{said}");

        let started =
            podman.run_container(&["-d", "--name", "kit-sleeper"], &["sleep", "100"]);
        let id = String::from_utf8_lossy(&started.stdout).trim().to_string();
        assert!(
            started.status.success() && id.len() == 64,
            "{}",
            text(&started)
        );
        record("run -d --name kit-sleeper IMAGE sleep 100", &started);
        let state = Command::new(&runtime.path)
            .arg("--root")
            .arg(podman.kit_state())
            .args(["state", &id])
            .output()
            .unwrap();
        let state: Value =
            serde_json::from_slice(&state.stdout).expect("state prints JSON");
        assert_eq!(state["status"], "running");
        let stopped = podman.run(&["stop", "-t", "1", "kit-sleeper"]);
        assert!(stopped.status.success(), "{}", text(&stopped));
        record("stop -t 1 kit-sleeper", &stopped);
        let inspected = podman.run(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "kit-sleeper",
        ]);
        // sleep, PID 1 of its namespace, has no handler for SIGTERM: podman sends SIGKILL.
        assert_eq!(
            String::from_utf8_lossy(&inspected.stdout).trim(),
            "exited 137"
        );
        record(
            "inspect --format '{{.State.Status}} {{.State.ExitCode}}' kit-sleeper",
            &inspected,
        );
        let removed = podman.run(&["rm", "kit-sleeper"]);
        assert!(removed.status.success(), "{}", text(&removed));
        record("rm kit-sleeper", &removed);
        podman.assert_nothing_left(&before);

        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.add_filter(&id, "[ID]");
        settings.add_filter(r"time=\S+", "time=[TIME]");
        settings.bind(|| insta::assert_snapshot!("ch11_podman", transcript));
    }
}

#[test]
fn rootless_podman_runs_its_containers_with_the_kit_too() {
    let _one = one_at_a_time();
    let needs = [
        Need::UnprivilegedUser,
        Need::UserNamespaces,
        Need::SubordinateIds,
        Need::Podman,
    ];
    for runtime in oci_runtimes(&needs) {
        let Some(user) = test_user() else { continue };
        let runtime = runtime.run_by(&user);
        let before = host_state();
        let podman = Podman::new(&runtime);
        podman.load_image();
        let hi = podman.run_container(
            &["--rm"],
            &["sh", "-c", "echo hi; id -u; grep CapBnd /proc/self/status"],
        );
        let said = String::from_utf8_lossy(&hi.stdout).into_owned();
        assert!(hi.status.success(), "{}: {}", runtime.name, text(&hi));
        // Root inside, the test user outside; the capabilities podman asks for.
        assert_eq!(
            said, "hi\n0\nCapBnd:\t00000000800405fb\n",
            "{}",
            runtime.name
        );
        let five = podman.run_container(&["--rm"], &["sh", "-c", "exit 5"]);
        assert_eq!(five.status.code(), Some(5), "{}", text(&five));
        let started =
            podman.run_container(&["-d", "--name", "kit-rootless"], &["sleep", "100"]);
        assert!(started.status.success(), "{}", text(&started));
        let stopped = podman.run(&["stop", "-t", "1", "kit-rootless"]);
        assert!(stopped.status.success(), "{}", text(&stopped));
        let removed = podman.run(&["rm", "kit-rootless"]);
        assert!(removed.status.success(), "{}", text(&removed));
        podman.assert_nothing_left(&before);
        // Rootless podman leaves its pause process by design; the test ends it, and
        // then nothing of the test user's may be left running.
        assert!(podman.end_pause_process(), "no pause process was found");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !podman.user_processes().is_empty() && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let left = podman.user_processes();
        assert!(
            left.is_empty(),
            "the test user's processes left running: {left:?}"
        );
    }
}

#[test]
fn podman_run_it_gives_the_container_a_terminal_through_the_console_socket() {
    let _one = one_at_a_time();
    if !needs_v1_device_rules() {
        return;
    }
    for runtime in oci_runtimes(&[Need::RootRuns, Need::Podman]) {
        let before = host_state();
        let podman = Podman::new(&runtime);
        podman.load_image();
        let mut pty = open_pty();
        let parent = format!("--cgroup-parent=/{}", podman.cgroup_parent);
        let cid_file = podman.next_cid_file();
        let mut args = vec![
            "run",
            "--rm",
            "-it",
            parent.as_str(),
            "--cidfile",
            cid_file.as_str(),
        ];
        args.extend(RUN_OPTIONS);
        args.extend([
            "localhost/kit-busybox:1",
            "sh",
            "-c",
            "tty; ls -l /dev/console; read line; echo got $line; exit 4",
        ]);
        let mut command = podman.command(&args);
        command
            .stdin(pty.terminal_stdio())
            .stdout(pty.terminal_stdio())
            .stderr(pty.terminal_stdio());
        let mut child = command.spawn().unwrap();
        let shown = pty.read_until("/dev/console");
        assert!(shown.contains("/dev/pts/0"), "{shown}");
        pty.type_text("hello\r");
        let shown = pty.read_until("got hello");
        assert!(shown.contains("got hello"), "{shown}");
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(4), "{}", runtime.name);
        drop(pty);
        podman.assert_nothing_left(&before);
    }
}

#[test]
fn a_network_namespace_named_by_path_is_joined_as_podman_hands_one() {
    let _one = one_at_a_time();
    for runtime in oci_runtimes(&[Need::RootRuns, Need::NetworkTools]) {
        let before = host_state();
        // A network namespace held open by a process of the test's, with a link in it
        // that no new namespace would have.
        let mut holder = Command::new("unshare")
            .args([
                "--net",
                "sh",
                "-c",
                "ip link add kit-joined type veth peer name kit-peer && sleep 30",
            ])
            .spawn()
            .expect("unshare starts");
        let path = format!("/proc/{}/ns/net", holder.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !Command::new("nsenter")
            .arg(format!("--net={path}"))
            .args(["ip", "link", "show", "kit-joined"])
            .output()
            .is_ok_and(|out| out.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "the test's namespace never got its link"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut config = config_for(&["sh", "-c", "cat /proc/net/dev"]);
        config["linux"]["namespaces"][1] = json!({"type": "network", "path": path});
        let bundle = Bundle::new(config);
        let (code, printed) = create(&runtime, &bundle, "joined");
        assert_eq!(code, 0, "{}: {printed}", runtime.name);
        let started = verb(&runtime, &bundle, &["start", "joined"]);
        assert!(started.status.success(), "{}", text(&started));
        wait_for_output(&bundle, "kit-joined");
        wait_for_status(&runtime, &bundle, "joined", "stopped");
        let deleted = verb(&runtime, &bundle, &["delete", "joined"]);
        assert!(deleted.status.success(), "{}", text(&deleted));
        let _ = holder.kill();
        let _ = holder.wait();
        assert_nothing_left(&before, &bundle, &runtime);
    }
}

#[test]
fn a_user_namespace_in_the_config_maps_the_containers_root_to_another_host_uid() {
    let _one = one_at_a_time();
    for runtime in oci_runtimes(&[Need::RootRuns]) {
        let before = host_state();
        let mut config = config_for(&[
            "sh",
            "-c",
            "echo uid $(id -u); cat /proc/self/uid_map; sleep 30",
        ]);
        // Root inside is uid 300000 outside: the kit's root filesystem may sit where only
        // root can reach; a copy open to everyone is used instead.
        let staged = byoc_tests::stage_for_unprivileged(&runtime);
        config["root"]["path"] = json!(staged.rootfs);
        config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
        config["linux"]["uidMappings"] = map.clone();
        config["linux"]["gidMappings"] = map;
        let bundle = Bundle::new(config);
        let (code, printed) = create(&runtime, &bundle, "mapped");
        assert_eq!(code, 0, "{}: {printed}", runtime.name);
        let (_, pid) = status_of(&runtime, &bundle, "mapped");
        let started = verb(&runtime, &bundle, &["start", "mapped"]);
        assert!(started.status.success(), "{}", text(&started));
        wait_for_output(&bundle, "65536");
        let inside = bundle.output();
        assert!(inside.contains("uid 0"), "{inside}");
        assert!(inside.contains("300000"), "{inside}");
        // The host sees the container's root as uid 300000, which owns nothing here.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uids = status
            .lines()
            .find(|line| line.starts_with("Uid:"))
            .unwrap();
        assert_eq!(uids.split_whitespace().nth(1), Some("300000"), "{uids}");
        let deleted = verb(&runtime, &bundle, &["delete", "--force", "mapped"]);
        assert!(deleted.status.success(), "{}", text(&deleted));
        assert_nothing_left(&before, &bundle, &runtime);
    }
}

#[test]
fn a_seccomp_profile_is_installed_last_and_its_rules_hold() {
    let _one = one_at_a_time();
    // SAFETY: dlopen reads a NUL-terminated name; the library is only looked for.
    if unsafe { libc::dlopen(c"libseccomp.so.2".as_ptr(), libc::RTLD_NOW) }.is_null() {
        return byoc_tests::not_run("needs libseccomp (apt-get install libseccomp2)");
    }
    for runtime in oci_runtimes(&[Need::RootRuns]) {
        let before = host_state();
        let command = "mkdir /dev/made && echo made || echo refused; grep ^Seccomp: /proc/self/status";
        // Every call allowed but making a directory, which fails with EPERM (1).
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
        let mut outputs = Vec::new();
        for filtered in [false, true] {
            let mut config = config_for(&["sh", "-c", command]);
            if filtered {
                config["linux"]["seccomp"] = profile.clone();
            }
            let bundle = Bundle::new(config);
            let out = File::create(bundle.path().join("output")).unwrap();
            let mut run = Command::new(&runtime.path);
            run.arg("--root")
                .arg(bundle.state_root())
                .args(["run", "--bundle"]);
            run.arg(bundle.path()).arg("filtered").stdin(Stdio::null());
            run.stdout(out.try_clone().unwrap()).stderr(out);
            in_own_group_with_umask(&mut run);
            assert!(run.status().unwrap().success(), "{}", bundle.output());
            outputs.push(bundle.output());
            assert_nothing_left(&before, &bundle, &runtime);
        }
        assert!(
            outputs[0].contains("made") && outputs[0].contains("Seccomp:\t0"),
            "{outputs:?}"
        );
        assert!(
            outputs[1].contains("refused"),
            "{}: the filter let mkdir through: {outputs:?}",
            runtime.name
        );
        assert!(outputs[1].contains("Seccomp:\t2"), "{outputs:?}");
    }
}

#[test]
fn device_rules_on_cgroup_v2_are_refused_not_ignored() {
    let _one = one_at_a_time();
    if cgroups::version() != "v2" {
        return byoc_tests::not_run(
            "needs cgroup v2, where device rules need eBPF: here they are v1's files",
        );
    }
    for runtime in oci_runtimes(&[Need::RootRuns]) {
        let before = host_state();
        let mut config = config_for(&["true"]);
        config["linux"]["resources"]["devices"] =
            json!([{"allow": false, "access": "rwm"}]);
        let bundle = Bundle::new(config);
        let (code, printed) = create(&runtime, &bundle, "devices");
        assert_ne!(code, 0, "{}: device rules were taken", runtime.name);
        assert!(printed.contains("eBPF"), "{printed}");
        assert_nothing_left(&before, &bundle, &runtime);
    }
}

#[test]
fn the_bonus_runtime_says_its_version_and_what_it_supports() {
    let _one = one_at_a_time();
    for runtime in oci_runtimes(&[]) {
        let version = Command::new(&runtime.path)
            .arg("--version")
            .output()
            .unwrap();
        let version = String::from_utf8_lossy(&version.stdout).into_owned();
        assert!(version.contains("spec: 1.0.2"), "{version}");
        let features = Command::new(&runtime.path)
            .arg("features")
            .output()
            .unwrap();
        let features: Value = serde_json::from_slice(&features.stdout).unwrap();
        assert_eq!(features["linux"]["seccomp"]["enabled"], true);
        assert_eq!(features["ociVersionMax"], "1.0.2");
    }
}

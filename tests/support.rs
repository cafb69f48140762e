//! What every black-box test needs: which binaries to run, the root filesystem, running a
//! container and capturing what it printed, and checking that nothing was left behind.
//!
//! Chapter k's tests run against every binary from k to the newest, because every
//! behaviour taught in chapter k must still work in the chapters after it. `cargo xtask
//! test` sets:
//! - `COURSE_IMPL`: `solutions` (default) or `chapters` (the learner's crates)
//! - `COURSE_ONLY`: a chapter number, to run against that chapter's binary alone
//! - `BYOC_ROOTFS`, `BYOC_BIN_DIR`: where the root filesystem and the binaries are

use std::io::{BufRead, BufReader, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub mod cgroups;
pub mod hostile;
pub mod netns;

/// The newest chapter in the kit: the highest number in `solutions/`, the one list of
/// chapters that the kit has.
pub fn newest_chapter() -> u32 {
    let solutions = workspace_root().join("solutions");
    std::fs::read_dir(&solutions)
        .expect("solutions/ is readable")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            name.to_str()?.split('-').next()?.parse().ok()
        })
        .max()
        .expect("solutions/ has at least one chapter")
}

/// One chapter's binary, reference or learner's, and who runs it.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub chapter: u32,
    pub name: String,
    pub path: PathBuf,
    /// `None`: this process runs it (root, for chapters 1 to 4). `Some`: the rootless
    /// test user runs a staged copy of it, with a staged root filesystem (chapter 5 on).
    pub rootless: Option<Rootless>,
    /// The runtime's data root (chapter 6 on: leases, each container's files), made for
    /// this test, so a test never writes under the machine's `/var/lib/byoc`.
    pub data_root: std::sync::Arc<tempfile::TempDir>,
}

/// How a rootless runtime is run: as whom, and from which staged copy.
#[derive(Debug, Clone)]
pub struct Rootless {
    pub user: TestUser,
    pub staged: std::sync::Arc<Staged>,
}

pub use byoc_facts::{
    FIRST_CGROUP_CHAPTER, FIRST_NETWORK_CHAPTER, FIRST_ROOTLESS_CHAPTER,
};

/// Are the tests running the reference solutions (not the learner's copies)?
pub fn testing_solutions() -> bool {
    std::env::var("COURSE_IMPL").map_or(true, |value| value != "chapters")
}

/// The binaries a test of the chapters in `chapters` runs against: for chapter k's tests,
/// `k..=newest`. Chapters 1 to 4 need root: without it, the test is recorded as not run
/// (see [`not_run`]) and gets no binary. Otherwise never empty: a test with nothing to
/// run would pass without testing.
pub fn runtimes(chapters: RangeInclusive<u32>) -> Vec<Runtime> {
    runtimes_needing(chapters, &[Need::Root])
}

/// Chapter k's binary and every later one, for a test that runs them as an ordinary user
/// (from chapter 5): it needs that user and user namespaces, not root.
pub fn rootless_from_chapter(first: u32) -> Vec<Runtime> {
    runtimes_needing(
        first..=newest_chapter(),
        &[Need::UnprivilegedUser, Need::UserNamespaces],
    )
}

/// The binaries for `chapters`, or none (and the test recorded as not run) when the
/// machine does not meet `needs`.
pub fn runtimes_needing(chapters: RangeInclusive<u32>, needs: &[Need]) -> Vec<Runtime> {
    if !meets(needs) {
        return Vec::new();
    }
    let only = std::env::var("COURSE_ONLY")
        .ok()
        .and_then(|n| n.parse::<u32>().ok());
    let prefix = if testing_solutions() {
        "solution"
    } else {
        "chapter"
    };
    let selected: Vec<Runtime> = chapters
        .clone()
        .filter(|chapter| only.is_none_or(|only| only == *chapter))
        .map(|chapter| {
            let name = format!("{prefix}{chapter:02}");
            let path = bin_dir().join(&name);
            assert!(
                path.exists(),
                "{} does not exist: run the tests with `cargo xtask test`, which builds it",
                path.display()
            );
            Runtime {
                chapter,
                name,
                path,
                rootless: None,
                data_root: std::sync::Arc::new(new_data_root()),
            }
        })
        .collect();
    assert!(
        !selected.is_empty(),
        "no binary selected for chapters {chapters:?} (COURSE_ONLY={only:?}): this test cannot run"
    );
    selected
}

/// Chapter k's binary and every later one: as root, where this process is root, and from
/// chapter 5 on also as an ordinary user, where there is one and user namespaces are
/// allowed. Everything chapter k taught must work both ways. Only when neither way can
/// run is the test recorded as not run.
pub fn from_chapter(first: u32) -> Vec<Runtime> {
    let chapters = first..=newest_chapter();
    let rootless_possible = ![Need::UnprivilegedUser, Need::UserNamespaces]
        .iter()
        .any(|need| need.unmet().is_some());
    let as_root_possible = Need::Root.unmet().is_none();
    if !as_root_possible
        && (!rootless_possible || *chapters.end() < FIRST_ROOTLESS_CHAPTER)
    {
        return runtimes(chapters); // records why the test did not run
    }
    let mut all = if as_root_possible {
        runtimes(chapters.clone())
    } else {
        Vec::new()
    };
    let only = std::env::var("COURSE_ONLY")
        .ok()
        .and_then(|n| n.parse::<u32>().ok());
    let first_rootless = first.max(FIRST_ROOTLESS_CHAPTER);
    let rootless_selected = only.is_none_or(|only| only >= first_rootless);
    if rootless_possible && rootless_selected && first_rootless <= *chapters.end() {
        let user = test_user().expect("checked by the needs");
        let rootless_chapters = first_rootless..=*chapters.end();
        all.extend(
            runtimes_needing(rootless_chapters, &[])
                .into_iter()
                .map(|runtime| runtime.run_by(&user)),
        );
    }
    all
}

/// Chapter k's binary and every later one, run by root only: for a test that needs root
/// itself (to make a mount namespace of its own before the runtime starts, say). From
/// chapter 5 on an ordinary user's runs are tested elsewhere, and the reason says so.
pub fn from_chapter_as_root(first: u32) -> Vec<Runtime> {
    let need = match first < FIRST_ROOTLESS_CHAPTER {
        true => Need::Root,
        false => Need::RootRuns,
    };
    runtimes_needing(first..=newest_chapter(), &[need])
}

/// What a test may need from the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Root: chapters 1 to 4 use chroot, mounts and namespaces, which need it.
    Root,
    /// Root, for a test of what the runtime does when root runs it (from chapter 5, where
    /// an ordinary user's runs have tests of their own).
    RootRuns,
    /// Root, to make cgroups under the kit's parent and set their limits.
    RootForCgroups,
    /// An ordinary user to run as: see [`test_user`].
    UnprivilegedUser,
    /// A kernel that lets ordinary users make user namespaces.
    UserNamespaces,
    /// `newuidmap` and `newgidmap`, and a subordinate range for the test user in
    /// `/etc/subuid` and `/etc/subgid`.
    SubordinateIds,
    /// A kernel that can load modules at all (some are built without).
    LoadableModules,
    /// `ip` and `nft`, which network tests use to look at the namespaces they make,
    /// independently of the kit's own code.
    NetworkTools,
    /// Root, to make the network namespaces a network test runs the runtime in (its
    /// rootless runs too).
    NetworkNamespaces,
    /// Pure cgroup v2, the kind most learners' machines have: for what only v2 can do
    /// (hand a subtree to an ordinary user).
    CgroupV2,
}

impl Need {
    /// Why the need is not met here, or `None` when it is.
    pub fn unmet(self) -> Option<String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let setting = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|text| text.trim().to_string())
        };
        match self {
            Need::Root if !root => Some(
                "needs root: chroot, mount and namespaces need privileges an ordinary user \
                 only has inside a user namespace (chapter 5)"
                    .to_string(),
            ),
            Need::RootRuns if !root => Some(
                "needs root: it checks what the runtime does when root runs it (your runs as \
                 an ordinary user are checked by the chapter's other tests)"
                    .to_string(),
            ),
            Need::RootForCgroups if !root => Some(root_for_cgroups()),
            Need::UnprivilegedUser if test_user().is_none() => {
                Some("needs an ordinary user to run as".to_string())
            }
            Need::UserNamespaces
                if setting("/proc/sys/kernel/unprivileged_userns_clone").as_deref()
                    == Some("0")
                    || setting("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") =>
            {
                Some(
                    "needs user namespaces for ordinary users, which this kernel forbids"
                        .to_string(),
                )
            }
            Need::SubordinateIds => {
                let Some(user) = test_user() else {
                    return Some("needs an ordinary user to run as".to_string());
                };
                let helpers = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"];
                if !helpers.iter().all(|helper| Path::new(helper).exists()) {
                    return Some(
                        "needs newuidmap and newgidmap (apt-get install uidmap)".to_string(),
                    );
                }
                let has_range = |table: &str| {
                    std::fs::read_to_string(table).is_ok_and(|text| {
                        text.lines()
                            .any(|line| line.split(':').next() == Some(&user.name))
                    })
                };
                (!has_range("/etc/subuid") || !has_range("/etc/subgid")).then(|| {
                    format!(
                        "needs a range for {} in /etc/subuid and /etc/subgid",
                        user.name
                    )
                })
            }
            Need::NetworkNamespaces if !root => Some(
                "needs root to make the network namespaces the test runs the runtime in \
                 (the test never uses your machine's own network)"
                    .to_string(),
            ),
            Need::NetworkTools => {
                let tools = ["ip", "nft"];
                let on_path = |tool: &str| {
                    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                        .iter()
                        .any(|dir| Path::new(dir).join(tool).exists())
                };
                let missing: Vec<&str> = tools.into_iter().filter(|tool| !on_path(tool)).collect();
                (!missing.is_empty()).then(|| {
                    format!(
                        "needs {} to look at the network (apt-get install iproute2 nftables)",
                        missing.join(", ")
                    )
                })
            }
            Need::CgroupV2 if cgroups::version() != "v2" => Some(format!(
                "needs pure cgroup v2, and this machine's memory, cpu and pids controllers are \
                 v1: `{}` runs it on pure v2, in a VM",
                cgroup_vm_command()
            )),
            Need::LoadableModules if !Path::new("/proc/modules").exists() => {
                Some("needs a kernel that loads modules; this one was built without".to_string())
            }
            _ => None,
        }
    }
}

/// Why a cgroup test needs root here: on v1 nothing can hand controllers to an ordinary
/// user at all, so the way to check one's own code is the v2 VM.
fn root_for_cgroups() -> String {
    match cgroups::version() {
        "v2" => "needs root to make cgroups and set their limits (an ordinary user only gets \
                 limits in a cgroup delegated to it: book 7.6)"
            .to_string(),
        _ => format!(
            "needs root: this machine's memory, cpu and pids controllers are cgroup v1, which \
             cannot be handed to an ordinary user (`{}` runs the tests on v2, in a VM)",
            cgroup_vm_command()
        ),
    }
}

/// The command that runs the cgroup tests on pure v2, for the binaries being tested.
fn cgroup_vm_command() -> &'static str {
    match testing_solutions() {
        true => "cargo xtask test --cgroup-vm",
        false => "cargo xtask test --impl chapters --chapter 7 --cgroup-vm",
    }
}

/// The ordinary user the rootless tests run as.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The user rootless tests run as. As root: `byoc-test` if the machine has it (`.ci/run`
/// makes it, with a subordinate range), else `nobody`. As an ordinary user: yourself.
pub fn test_user() -> Option<TestUser> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let users: Vec<TestUser> = passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(TestUser {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
            })
        })
        .collect();
    // SAFETY: getuid has no preconditions and cannot fail.
    let me = unsafe { libc::getuid() };
    if me != 0 {
        return users.into_iter().find(|user| user.uid == me);
    }
    let by_name = |name: &str| users.iter().find(|user| user.name == name).cloned();
    by_name("byoc-test").or_else(|| by_name("nobody"))
}

/// Does this machine meet every need? If not, the test is recorded as not run, with the
/// reason, and should return at once: it is never counted as passed.
pub fn meets(needs: &[Need]) -> bool {
    match needs.iter().find_map(|need| need.unmet()) {
        None => true,
        Some(reason) => {
            not_run(&reason);
            false
        }
    }
}

/// Records a figure the current test measured (a CPU share, say), which `cargo xtask
/// test` prints after the tests: a figure is shown, and asserted only within a wide band.
pub fn report_figure(text: &str) {
    write_line_for_this_test("BYOC_FIGURES_DIR", "figure", text);
}

/// Records that the current test did not run, and why. `cargo xtask test` sets
/// `BYOC_NOT_RUN_DIR`, reads one line from each file there, and counts those tests as
/// "not run" instead of "passed". Run without it (plain `cargo test`), the reason is
/// printed.
pub fn not_run(reason: &str) {
    write_line_for_this_test("BYOC_NOT_RUN_DIR", "not run", reason);
}

/// Writes `<test binary>::<test name>: <text>` into a file of its own in the directory
/// that `variable` names, or prints it after `label` where there is none (plain `cargo
/// test`).
fn write_line_for_this_test(variable: &str, label: &str, text: &str) {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|path| Some(path.file_stem()?.to_str()?.to_string()))
        .map(|stem| stem.split('-').next().unwrap_or_default().to_string())
        .unwrap_or_else(|| "tests".to_string());
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string();
    let line = format!("{binary}::{test}: {text}");
    match std::env::var_os(variable) {
        Some(dir) => {
            let file =
                PathBuf::from(dir).join(format!("{binary}-{test}").replace("::", "-"));
            std::fs::write(&file, format!("{line}\n")).unwrap_or_else(|error| {
                panic!("cannot record {line:?} in {file:?}: {error}")
            });
        }
        None => eprintln!("{label}: {line}"),
    }
}

fn bin_dir() -> PathBuf {
    match std::env::var_os("BYOC_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target/debug"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .into()
}

/// The busybox root filesystem that `cargo xtask rootfs` builds.
pub fn rootfs() -> PathBuf {
    let path = rootfs_dir();
    assert!(
        path.join("bin/probe").exists(),
        "no root filesystem with the probe at {}: run `cargo xtask rootfs`",
        path.display()
    );
    path
}

fn rootfs_dir() -> PathBuf {
    match std::env::var_os("BYOC_ROOTFS") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("rootfs/busybox"),
    }
}

/// What a finished container run left: its exit code and what it printed.
#[derive(Debug)]
pub struct Run {
    pub runtime: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Fails with everything the run printed, so a learner sees why.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            code,
            "{}: wrong exit code\n{}",
            self.runtime,
            self.report()
        );
        self
    }

    pub fn expect_success(&self) -> &Run {
        self.expect_code(0)
    }

    /// The values of `key: value` lines the probe printed, in order.
    pub fn values(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}: ");
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// The single value of a `key: value` line.
    pub fn value(&self, key: &str) -> String {
        let values = self.values(key);
        assert_eq!(
            values.len(),
            1,
            "{}: expected one {key:?} line\n{}",
            self.runtime,
            self.report()
        );
        values[0].clone()
    }

    pub fn report(&self) -> String {
        format!(
            "--- exit code: {}\n--- stdout:\n{}--- stderr:\n{}---",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Runtime {
    /// `BINARY [--trace] run --rootfs ROOTFS OPTIONS... -- COMMAND...`, not yet started,
    /// with a clean environment so nothing from the test's own environment leaks in.
    fn build(&self, trace: bool, options: &[&str], command: &[&str]) -> Command {
        if let Some(rootless) = &self.rootless {
            let user = &rootless.user;
            return match trace {
                true => rootless.staged.trace_command_as(user, options, command),
                false => rootless.staged.command_as(user, options, command),
            };
        }
        let mut process = Command::new(&self.path);
        if trace {
            process.arg("--trace");
        }
        process
            .arg("run")
            .arg("--rootfs")
            .arg(rootfs())
            .args(options)
            .arg("--")
            .args(command)
            .env_clear()
            .env("TERM", "xterm")
            .env("RUST_BACKTRACE", "0")
            .env("BYOC_ROOT", self.data_root.path())
            .stdin(Stdio::null());
        in_own_group_with_umask(&mut process);
        process
    }

    /// The command line for a container, to adjust before running it with
    /// [`run_command`].
    pub fn command(&self, options: &[&str], command: &[&str]) -> Command {
        self.build(false, options, command)
    }

    /// Runs a container to its end and checks that it left the host's mounts as they
    /// were.
    pub fn run(&self, options: &[&str], command: &[&str]) -> Run {
        run_command(&self.name, self.command(options, command))
    }

    /// The command line for a container with `--trace`.
    pub fn trace_command(&self, options: &[&str], command: &[&str]) -> Command {
        self.build(true, options, command)
    }

    /// The same, with `--trace`: the narration is in the run's stderr.
    pub fn trace(&self, options: &[&str], command: &[&str]) -> Run {
        run_command(&self.name, self.build(true, options, command))
    }

    /// Starts a container whose command prints `ready` once it is set up, and waits for
    /// that line: the container is then running, fully made, and waiting for the test.
    pub fn start_waiting(&self, options: &[&str], command: &[&str]) -> Waiting {
        self.start_waiting_command(self.command(options, command))
    }

    /// The same, for a command line prepared with [`Runtime::command`].
    pub fn start_waiting_command(&self, mut command: Command) -> Waiting {
        let cgroup_parent = cgroups::parent_of(&command);
        let before = host_state();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the runtime starts");
        let stdin = child.stdin.take();
        let stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        let watchdog = end_group_unless_done(child.id() as i32);
        stdout
            .read_line(&mut line)
            .expect("the container's stdout is readable");
        drop(watchdog);
        let waiting = Waiting {
            runtime: self.name.clone(),
            child,
            stdin,
            stdout: Some(stdout),
            stderr: Some(stderr),
            stderr_seen: String::new(),
            before,
            cgroup_parent,
        };
        assert_eq!(
            line.trim(),
            "ready",
            "{}: the container did not start",
            self.name
        );
        waiting
    }
}

/// How long a container run may take before the test gives up on it. A run that hangs
/// (an exercise that never returns, say) must fail the test, not stop the whole suite.
pub const RUN_LIMIT: Duration = Duration::from_secs(20);

/// Puts the runtime in a process group of its own, so that a test can end it and every
/// process it started at once, and gives it the usual umask (022), so that a mode the
/// runtime forgets to set shows up the same way on every machine. A runtime that root
/// starts in the machine's own network namespace is moved to a new, empty one: from
/// chapter 6 on it makes a bridge, links and NAT rules, and those must never touch the
/// machine's network. (A test that means it to share one with others starts it in a
/// [`NetHost`].) From chapter 7 each run also gets a cgroup parent of its own (see
/// [`cgroups`]).
pub fn in_own_group_with_umask(command: &mut Command) {
    cgroups::give_own_parent(command);
    let machine_network = machine_network_namespace();
    // SAFETY: the closure runs in the forked child before exec and makes only system calls
    // that are safe there: setpgid, umask, geteuid, stat and unshare.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            libc::umask(0o022);
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let in_machine_network = network_namespace_of_self() == Some(machine_network);
            if libc::geteuid() == 0
                && in_machine_network
                && libc::unshare(libc::CLONE_NEWNET) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

/// The machine's own network namespace: the one this test process started in.
fn machine_network_namespace() -> u64 {
    static MACHINE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MACHINE.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self/ns/net")
            .expect("/proc/self/ns/net is readable")
            .ino()
    })
}

/// The network namespace of the calling thread, by `stat` alone (safe after `fork`).
fn network_namespace_of_self() -> Option<u64> {
    // SAFETY: stat writes only into the zeroed struct it is given.
    unsafe {
        let mut status: libc::stat = std::mem::zeroed();
        let path = c"/proc/thread-self/ns/net";
        (libc::stat(path.as_ptr(), &mut status) == 0).then_some(status.st_ino)
    }
}

/// A fresh data root for a runtime run by root in a test.
fn new_data_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("byoc-data-")
        .tempdir()
        .expect("a temp dir for the data root")
}

/// The run failed before the container started (125, the runtime's failure; 2 would be a
/// usage error), with one line that says `expected` (clap's "For more information" hint
/// aside).
pub fn assert_one_line_error(runtime: &Runtime, run: &Run, expected: &str) {
    assert!(
        [2, 125].contains(&run.code) && run.stderr.contains(expected),
        "{}: expected an error with {expected:?}: {}",
        runtime.name,
        run.report()
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| {
            !line.trim().is_empty() && !line.starts_with("For more information")
        })
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{}: one line, not:\n{}",
        runtime.name,
        run.stderr
    );
}

/// Runs a prepared container command to its end (for at most [`RUN_LIMIT`]) and checks
/// that it left nothing behind on the host.
pub fn run_command(runtime: &str, mut command: Command) -> Run {
    // A command a test put together itself gets the same guards as the harness's own: a
    // network namespace of its own when root starts it, and a data root of its own.
    in_own_group_with_umask(&mut command);
    let own_data_root = command
        .get_envs()
        .all(|(name, _)| name != "BYOC_ROOT")
        .then(new_data_root);
    if let Some(dir) = &own_data_root {
        command.env("BYOC_ROOT", dir.path());
    }
    let cgroup_parent = cgroups::parent_of(&command);
    let before = host_state();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {runtime}: {error}"));
    let run = finish_within(runtime, child, RUN_LIMIT);
    assert_nothing_left(&before, &run);
    if let Some(parent) = cgroup_parent {
        cgroups::assert_none_left(&parent, &[], runtime, &run.report());
    }
    run
}

/// Waits for a started runtime to end and collects what it printed. Past `limit`, ends
/// its whole process group and fails the test.
fn finish_within(runtime: &str, mut child: Child, limit: Duration) -> Run {
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting works") {
            break status;
        }
        if Instant::now() > deadline {
            kill_group(&mut child);
            let stderr = stderr.recv_timeout(Duration::from_secs(1));
            panic!(
                "{runtime}: the container did not end within {} s\n--- stderr:\n{}",
                limit.as_secs(),
                stderr.unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        runtime: runtime.to_string(),
        code: exit_code(status),
        stdout: rest_of(runtime, stdout),
        stderr: rest_of(runtime, stderr),
    }
}

/// Reads a pipe to its end in a thread of its own; [`rest_of`] collects what it read.
fn read_in_background(
    pipe: Option<impl std::io::Read + Send + 'static>,
) -> std::sync::mpsc::Receiver<String> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut text);
        }
        let _ = send.send(String::from_utf8_lossy(&text).into_owned());
    });
    receive
}

/// What a pipe of the runtime held after the runtime ended. The pipe ends when the last
/// process holding it does; if that takes seconds, a container outlived its runtime.
fn rest_of(runtime: &str, text: std::sync::mpsc::Receiver<String>) -> String {
    text.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| {
            panic!(
                "{runtime}: the runtime has ended, but a process it started still holds its output"
            )
        })
}

/// A read from a running container that never comes must fail the test, not hang it:
/// unless the returned sender is dropped within [`RUN_LIMIT`], the runtime's process
/// group is ended, and the read sees the end of its pipe.
fn end_group_unless_done(group: i32) -> std::sync::mpsc::Sender<()> {
    let (done, waiting) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            waiting.recv_timeout(RUN_LIMIT)
        {
            // SAFETY: kill has no memory-safety preconditions; a negative PID names the group.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    });
    done
}

/// Ends the runtime and every process in its group (its containers too, unless they made
/// a group of their own), then collects it.
fn kill_group(child: &mut Child) {
    // SAFETY: kill has no memory-safety preconditions; a negative PID names the group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
}

/// A container that is running, set up, and waiting for a line on its stdin.
pub struct Waiting {
    pub runtime: String,
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
    stderr: Option<BufReader<ChildStderr>>,
    /// What [`Waiting::wait_for_stderr_line`] has read so far.
    stderr_seen: String,
    before: HostState,
    /// The cgroup parent the run was given, checked when it ends.
    cgroup_parent: Option<String>,
}

impl Waiting {
    /// The host PID of the runtime's own process.
    pub fn runtime_pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The host PID of the container's first process: the runtime's only child.
    pub fn container_pid(&self) -> i32 {
        let pid = self.runtime_pid();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .expect("the runtime's children are listed in /proc");
        let first = children
            .split_whitespace()
            .next()
            .expect("the runtime has a child");
        first.parse().expect("a PID is a number")
    }

    /// The cgroup parent this run was given (chapter 7 on puts its container's cgroup
    /// there).
    pub fn cgroup_parent(&self) -> Option<&str> {
        self.cgroup_parent.as_deref()
    }

    /// Lets the container go on (sends it a line) and waits for the runtime to end.
    pub fn release(mut self) -> Run {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        self.finish()
    }

    /// Waits for the runtime to end, for at most [`RUN_LIMIT`].
    pub fn finish(mut self) -> Run {
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting works") {
                break status;
            }
            if Instant::now() > deadline {
                kill_group(&mut self.child);
                panic!(
                    "{}: the container did not end within {RUN_LIMIT:?}",
                    self.runtime
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(self.stdin.take()); // a command still reading its stdin now gets end of file
        let stdout = read_in_background(self.stdout.take());
        let stderr = read_in_background(self.stderr.take());
        let (stdout, stderr) = (
            rest_of(&self.runtime, stdout),
            std::mem::take(&mut self.stderr_seen) + &rest_of(&self.runtime, stderr),
        );
        let run = Run {
            runtime: self.runtime.clone(),
            code: exit_code(status),
            stdout,
            stderr,
        };
        assert_nothing_left(&self.before, &run);
        if let Some(parent) = &self.cgroup_parent {
            cgroups::assert_none_left(parent, &[], &self.runtime, &run.report());
        }
        run
    }

    /// Reads the runtime's stderr until a line contains `text`: with `--trace`, the line
    /// that says a call has been made. A handshake, where a sleep would only guess.
    /// Returns all of stderr read so far.
    pub fn wait_for_stderr_line(&mut self, text: &str) -> String {
        let _watchdog = end_group_unless_done(self.runtime_pid());
        loop {
            let mut line = String::new();
            let stderr = self
                .stderr
                .as_mut()
                .expect("stderr is read only here until finish");
            let read = stderr.read_line(&mut line).expect("stderr is readable");
            self.stderr_seen.push_str(&line);
            assert!(
                read > 0,
                "{}: stderr ended without a line with {text:?}:\n{}",
                self.runtime,
                self.stderr_seen
            );
            if line.contains(text) {
                return self.stderr_seen.clone();
            }
        }
    }
}

impl Drop for Waiting {
    /// A test that fails half-way must not leave a container running, nor its cgroup.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_group(&mut self.child);
        }
        if let Some(parent) = &self.cgroup_parent {
            cgroups::remove_all_under(parent, &[]);
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The host's mount table, as this test process sees it.
pub fn mount_table() -> String {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("/proc/self/mountinfo is readable")
}

/// What a container could leave behind on the host, one check each. Later chapters add
/// theirs (cgroups) to this list. (What a container leaves in the network namespace a
/// test made for it, and under its data root, is checked by that test: see [`netns`].)
pub const LEAK_CHECKS: &[LeakCheck] = &[
    ("mount table", mount_table),
    (
        "own network (links, routes, nftables rules)",
        netns::machine_network,
    ),
];

/// A leak check: what it looks at, and how to take its picture of the host.
pub type LeakCheck = (&'static str, fn() -> String);

/// The host as the leak checks see it.
pub type HostState = Vec<(&'static str, String)>;

/// Takes every leak check's picture of the host.
pub fn host_state() -> HostState {
    LEAK_CHECKS
        .iter()
        .map(|(name, look)| (*name, look()))
        .collect()
}

/// Fails the test, naming what changed, if the host is not as it was before the run.
fn assert_nothing_left(before: &HostState, run: &Run) {
    let after = host_state();
    for ((name, was), (_, is)) in before.iter().zip(&after) {
        assert!(
            was == is,
            "{}: the host's {name} changed: the container left something behind\n{}",
            run.runtime,
            run.report()
        );
    }
}

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
    let (_dir, marker, settings) = host_only_file();
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

/// A runtime and the root filesystem copied where an unprivileged user can reach them. A
/// clone of the kit often sits where only root may enter (under `/root`, say), and a test
/// that runs the runtime as another user must not fail for that reason before it gets to
/// what it means to check.
#[derive(Debug)]
pub struct Staged {
    _dir: tempfile::TempDir,
    pub binary: PathBuf,
    pub rootfs: PathBuf,
    /// The data root of its runs (chapter 6 on), inside the staged directory.
    pub data_root: PathBuf,
}

/// Copies `runtime`'s binary and the root filesystem into a fresh directory under the
/// system's temp dir that every user may enter and read. Removed when dropped.
pub fn stage_for_unprivileged(runtime: &Runtime) -> Staged {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("byoc-staged-")
        .tempdir()
        .expect("a temp dir for the staged copy");
    let open_to_all = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(dir.path(), open_to_all)
        .expect("the staged dir is chmod-able");
    let binary = dir.path().join(&runtime.name);
    std::fs::copy(&runtime.path, &binary).expect("the runtime is copied");
    let rootfs = dir.path().join("rootfs");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(rootfs_dir())
        .arg(&rootfs)
        .status()
        .expect("cp runs");
    assert!(copied.success(), "cannot copy the root filesystem");
    // The test user's data root (chapter 6 on), theirs as ~/.local/share/byoc would be:
    // from chapter 7 a rootless runtime with a cgroup records it there.
    let data_root = dir.path().join("data");
    std::fs::create_dir(&data_root).expect("the staged data root is made");
    if let Some(user) = test_user() {
        std::os::unix::fs::chown(&data_root, Some(user.uid), Some(user.gid))
            .expect("the staged data root is given to the test user");
    }
    Staged {
        _dir: dir,
        binary,
        rootfs,
        data_root,
    }
}

/// A pseudo-terminal for a test to stand in for a person at a terminal: the runtime gets
/// the `terminal` side as its stdin, stdout and stderr; the test types and reads on the
/// `master` side.
pub struct Pty {
    pub master: std::fs::File,
    pub terminal: std::fs::File,
}

/// Opens a new pseudo-terminal pair on the host.
pub fn open_pty() -> Pty {
    use std::os::fd::FromRawFd;
    let (mut master, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two descriptors through valid pointers; the other arguments
    // may be null.
    let result = unsafe {
        libc::openpty(
            &mut master,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(
        result,
        0,
        "openpty failed: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: openpty has just made both descriptors for us.
    unsafe {
        Pty {
            master: std::fs::File::from_raw_fd(master),
            terminal: std::fs::File::from_raw_fd(terminal),
        }
    }
}

impl Pty {
    /// A copy of the terminal side, for one of a child process's stdin, stdout, stderr.
    pub fn terminal_stdio(&self) -> Stdio {
        Stdio::from(
            self.terminal
                .try_clone()
                .expect("the terminal can be copied"),
        )
    }

    /// Turns off line editing, so that a character pushed into the input counts at once
    /// in [`Pty::pending_input`] (in line mode, only finished lines do).
    pub fn raw(self) -> Pty {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.terminal);
        // SAFETY: tcgetattr and tcsetattr read and write one termios through valid
        // pointers; an all-zero termios is a valid place for tcgetattr to fill in.
        unsafe {
            let mut mode: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(fd, &mut mode), 0, "tcgetattr failed");
            libc::cfmakeraw(&mut mode);
            assert_eq!(
                libc::tcsetattr(fd, libc::TCSANOW, &mode),
                0,
                "tcsetattr failed"
            );
        }
        self
    }

    /// How many bytes wait in the terminal's input, typed (or pushed) but not yet read.
    pub fn pending_input(&self) -> i32 {
        let mut count: libc::c_int = 0;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.terminal);
        // SAFETY: FIONREAD writes one int through a pointer valid for the call.
        let result = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut count) };
        assert_eq!(result, 0, "FIONREAD failed");
        count
    }

    /// Resizes the terminal, as a person resizing the window would (the test then tells
    /// the runtime with SIGWINCH, as the terminal would tell its foreground programs).
    pub fn resize(&self, rows: u16, cols: u16) {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.master);
        // SAFETY: TIOCSWINSZ reads one winsize through a pointer valid for the call.
        let result = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) };
        assert_eq!(result, 0, "TIOCSWINSZ failed");
    }

    /// Types `text` on the terminal, as a person would.
    pub fn type_text(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .expect("typing works");
    }

    /// Reads what the terminal shows until `needle` appears, for at most `RUN_LIMIT`.
    pub fn read_until(&mut self, needle: &str) -> String {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.master);
        let deadline = Instant::now() + RUN_LIMIT;
        let mut seen = String::new();
        while !seen.contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {needle:?}; it showed:\n{seen}"
            );
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll reads and writes one pollfd through a valid pointer.
            if unsafe { libc::poll(&mut poll, 1, 100) } <= 0 {
                continue;
            }
            let mut buffer = [0u8; 4096];
            match std::io::Read::read(&mut self.master, &mut buffer) {
                Ok(count) if count > 0 => {
                    seen.push_str(&String::from_utf8_lossy(&buffer[..count]))
                }
                _ => break, // the other side is closed: nothing more will come
            }
        }
        seen
    }
}

impl Staged {
    /// The command line for the staged runtime, run as `user`, from `/`, with a clean
    /// environment, in a process group of its own.
    pub fn command_as(
        &self,
        user: &TestUser,
        options: &[&str],
        command: &[&str],
    ) -> Command {
        self.build_as(Some(user), false, options, command)
    }

    /// The staged runtime run by this process's own user (root, in CI): for a container
    /// whose root is a host user that must reach the staged root filesystem (`--userns`).
    pub fn command(&self, options: &[&str], command: &[&str]) -> Command {
        self.build_as(None, false, options, command)
    }

    /// The same, with `--trace`.
    pub fn trace_command_as(
        &self,
        user: &TestUser,
        options: &[&str],
        command: &[&str],
    ) -> Command {
        self.build_as(Some(user), true, options, command)
    }

    fn build_as(
        &self,
        user: Option<&TestUser>,
        trace: bool,
        options: &[&str],
        command: &[&str],
    ) -> Command {
        let mut process = Command::new(&self.binary);
        if trace {
            process.arg("--trace");
        }
        process
            .arg("run")
            .arg("--rootfs")
            .arg(&self.rootfs)
            .args(options)
            .arg("--")
            .args(command)
            .env_clear()
            .env("TERM", "xterm")
            .env("RUST_BACKTRACE", "0")
            .env("BYOC_ROOT", &self.data_root)
            .current_dir("/")
            .stdin(Stdio::null());
        if let Some(user) = user {
            become_as_at_login(&mut process, user);
        }
        in_own_group_with_umask(&mut process);
        process
    }
}

/// Starts `command` as `user` with the groups a login gives it (`initgroups`): its own
/// group and every group that lists it in `/etc/group`. A learner's shell has them, so
/// the tests must too: what a container shows of groups depends on them (book 5.4).
pub fn become_as_at_login(command: &mut Command, user: &TestUser) {
    let groups = login_groups(user);
    let (uid, gid) = (user.uid, user.gid);
    // SAFETY: the closure runs in the forked child before exec and makes only system calls
    // (setgroups, setgid, setuid) on memory it owns; it allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            let results = [
                libc::setgroups(groups.len(), groups.as_ptr()),
                libc::setgid(gid),
                libc::setuid(uid),
            ];
            match results.iter().any(|result| *result != 0) {
                true => Err(std::io::Error::last_os_error()),
                false => Ok(()),
            }
        })
    };
}

/// The groups `initgroups` gives `user`: its own, and those that name it in `/etc/group`.
fn login_groups(user: &TestUser) -> Vec<libc::gid_t> {
    let table = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let mut groups = vec![user.gid];
    for line in table.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let member = fields
            .get(3)
            .is_some_and(|members| members.split(',').any(|name| name == user.name));
        let gid = fields.get(2).and_then(|gid| gid.parse().ok());
        if let (true, Some(gid)) = (member, gid) {
            if !groups.contains(&gid) {
                groups.push(gid);
            }
        }
    }
    groups
}

impl Runtime {
    /// The same chapter's runtime, run by `user` from a staged copy.
    pub fn run_by(self, user: &TestUser) -> Runtime {
        let staged = std::sync::Arc::new(stage_for_unprivileged(&self));
        Runtime {
            // A name that stays one word, as tests use it in file names and scripts.
            name: format!("{}-run-by-{}", self.name, user.name),
            path: staged.binary.clone(),
            rootless: Some(Rootless {
                user: user.clone(),
                staged,
            }),
            ..self
        }
    }

    /// The root filesystem this runtime's containers use.
    pub fn rootfs(&self) -> PathBuf {
        match &self.rootless {
            Some(rootless) => rootless.staged.rootfs.clone(),
            None => rootfs(),
        }
    }

    /// Runs a container as the rootless test user, on a staged copy of the runtime and
    /// the root filesystem, to its end.
    pub fn run_as(&self, user: &TestUser, options: &[&str], command: &[&str]) -> Run {
        let staged = stage_for_unprivileged(self);
        run_command(&self.name, staged.command_as(user, options, command))
    }
}

/// Starts `sh` in a container under `-t`, with a new host pseudo-terminal as the
/// runtime's stdin, stdout and stderr, as a person at a terminal would, and waits for its
/// prompt.
pub fn shell_on_a_terminal(runtime: &Runtime) -> (Pty, Started) {
    let mut pty = open_pty();
    let mut command = runtime.command(&["-t"], &["sh"]);
    command
        .stdin(pty.terminal_stdio())
        .stdout(pty.terminal_stdio())
        .stderr(pty.terminal_stdio());
    let shell = start(command);
    pty.read_until("# ");
    (pty, shell)
}

/// A runtime started by a test that talks to it as it runs (through a terminal, say).
/// Dropped while it still runs (a test that fails half-way), it is ended with its process
/// group, so no runtime or container outlives the test.
pub struct Started {
    child: Child,
    cgroup_parent: Option<String>,
}

/// Starts a prepared runtime command; see [`Started`].
pub fn start(mut command: Command) -> Started {
    Started {
        cgroup_parent: cgroups::parent_of(&command),
        child: command.spawn().expect("the runtime starts"),
    }
}

impl Started {
    /// The runtime's PID on the host.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the runtime to end, for at most [`RUN_LIMIT`].
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting works") {
                if let Some(parent) = &self.cgroup_parent {
                    cgroups::assert_none_left(parent, &[], "the runtime", "");
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the runtime did not end within {RUN_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_group(&mut self.child);
        }
        if let Some(parent) = &self.cgroup_parent {
            cgroups::remove_all_under(parent, &[]);
        }
    }
}

//! Which binaries a test runs, and how: the chapters selected for a test, the reference's
//! or the learner's binary, run by root or by the rootless test user from a staged copy,
//! and the root filesystem and data root each run gets.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{
    meets, run_command, stage_for_unprivileged, test_user, Invocation, Need, Run, Staged,
    TestUser, Waiting, FIRST_LAYERS_CHAPTER, FIRST_ROOTLESS_CHAPTER,
};

/// The newest of the ten chapters in the kit: the highest number in `solutions/` up to
/// the last of the ten (the bonus chapter's runtime has another command line, and tests
/// of its own).
pub fn newest_chapter() -> u32 {
    let solutions = workspace_root().join("solutions");
    std::fs::read_dir(&solutions)
        .expect("solutions/ is readable")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            name.to_str()?.split('-').next()?.parse().ok()
        })
        .filter(|&number| number <= byoc_facts::LAST_CHAPTER)
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

/// Where the binaries under test are.
pub fn bin_dir() -> PathBuf {
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

pub(crate) fn rootfs_dir() -> PathBuf {
    match std::env::var_os("BYOC_ROOTFS") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("rootfs/busybox"),
    }
}

impl Runtime {
    /// How this runtime is started, for any subcommand: as root, or as the rootless test
    /// user from its staged copy; with its data root. See [`Invocation`].
    pub fn invocation(&self) -> Invocation {
        match &self.rootless {
            Some(rootless) => rootless.staged.invocation(Some(&rootless.user)),
            None => Invocation::new(&self.name, &self.path, self.data_root.path()),
        }
        .named(&self.name)
    }

    /// Runs `BINARY ARGS...`, any subcommand (`["help", "run"]`, say), to its end, with
    /// the same guards and leak checks as a container run.
    pub fn subcommand(&self, args: &[&str]) -> Run {
        self.invocation().args(args).run()
    }

    /// `BINARY [--trace] run --rootfs ROOTFS OPTIONS... -- COMMAND...`, not yet started,
    /// with a clean environment so nothing from the test's own environment leaks in.
    fn build(&self, trace: bool, options: &[&str], command: &[&str]) -> Command {
        let container = self.invocation().trace(trace);
        let options = self.removed_at_the_end(options);
        container
            .container(&self.rootfs(), &options, command)
            .command()
    }

    /// From chapter 8 a container outlives its run unless `--rm`; the tests of earlier
    /// chapters expect nothing left, so a run with no name gets `--rm`.
    fn removed_at_the_end<'a>(&self, options: &[&'a str]) -> Vec<&'a str> {
        let mut options = options.to_vec();
        let named = options.contains(&"--name");
        if self.chapter >= FIRST_LAYERS_CHAPTER && !named && !options.contains(&"--rm") {
            options.push("--rm");
        }
        options
    }

    /// The command line for a container, to adjust before running it with
    /// [`run_command`].
    pub fn command(&self, options: &[&str], command: &[&str]) -> Command {
        self.build(false, options, command)
    }

    /// Runs a container to its end and checks that it left nothing behind on the host.
    pub fn run(&self, options: &[&str], command: &[&str]) -> Run {
        let container = self.invocation();
        let options = self.removed_at_the_end(options);
        container.container(&self.rootfs(), &options, command).run()
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
    pub fn start_waiting_command(&self, command: Command) -> Waiting {
        Waiting::start(&self.name, command)
    }
}

/// A fresh data root for a runtime run by root in a test.
pub(crate) fn new_data_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("byoc-data-")
        .tempdir()
        .expect("a temp dir for the data root")
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

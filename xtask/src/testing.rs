//! `cargo xtask test`: building what the tests need, running them, and counting what
//! passed, failed, and could not run. `check` and `invariant` run the tests the same way.
//! Book: "Check your work" in each chapter.
//!
//! A test that cannot run on this machine (it needs root, user namespaces, cgroup v2,
//! ...) is never counted as passed. Each black-box run gets an empty directory in
//! `BYOC_NOT_RUN_DIR`; such a test writes one file there holding one line, `<test
//! binary>::<test name>: <reason>`, and returns. Those are counted apart.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use byoc_facts::leaks::{self, Scope};

use crate::exercise_tests::not_run_name;
use crate::gen;
use crate::rootfs;
use crate::vm;
use crate::workspace::{self, Workspace};

/// Which binaries the black-box tests run: the reference or the learner's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Impl {
    Solutions,
    Chapters,
}

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Solutions => "solutions",
            Impl::Chapters => "chapters",
        }
    }

    fn package(self, chapter: u32) -> String {
        match self {
            Impl::Solutions => format!("solution{chapter:02}"),
            Impl::Chapters => format!("chapter{chapter:02}"),
        }
    }
}

/// What a test run printed and counted.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Tests that ran and passed (not those that could not run).
    pub passed: u32,
    pub failed: u32,
    pub failing_tests: Vec<String>,
    /// The names of the tests that ran and passed.
    pub passed_tests: Vec<String>,
    /// `<test binary>::<test name>: <reason>`, for each test that could not run.
    pub not_run: Vec<String>,
    pub output: String,
}

impl Outcome {
    /// libtest counted the tests that could not run as passed: take them back out.
    pub fn add_not_run(&mut self, lines: Vec<String>) {
        let count = u32::try_from(lines.len()).unwrap_or(u32::MAX);
        self.passed = self.passed.saturating_sub(count);
        let names: HashSet<&str> = lines.iter().map(|line| not_run_name(line)).collect();
        self.passed_tests
            .retain(|test| !names.contains(test.as_str()));
        self.not_run.extend(lines);
    }

    /// Adds a run of the same tests on another machine (the VM): a test that could not
    /// run here but passed there has run, and is no longer listed as not run.
    pub fn add_run_elsewhere(&mut self, other: Outcome) {
        let passed_there: HashSet<&str> =
            other.passed_tests.iter().map(String::as_str).collect();
        self.not_run
            .retain(|line| !passed_there.contains(not_run_name(line)));
        self.add(other);
    }

    /// Adds what another run counted to this one.
    pub fn add(&mut self, other: Outcome) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.failing_tests.extend(other.failing_tests);
        self.passed_tests.extend(other.passed_tests);
        self.not_run.extend(other.not_run);
        self.output.push_str(&other.output);
    }

    /// `summary: 12 passed, 1 failed, 2 not run`.
    pub fn summary(&self) -> String {
        self.summary_as("summary")
    }

    /// The same counts after another label: `summary (in a VM): 12 passed, ...`.
    pub fn summary_as(&self, label: &str) -> String {
        format!(
            "{label}: {} passed, {} failed, {} not run",
            self.passed,
            self.failed,
            self.not_run.len()
        )
    }
}

/// `cargo xtask test`; with `cgroup_vm`, the cgroup tests also run in a pure cgroup v2 VM
/// (see [`vm`]), and the last summary line counts both.
pub fn test(chapter: Option<u32>, implementation: Impl, cgroup_vm: bool) -> Result<()> {
    if let Some(number) = chapter {
        gen::chapter(number)?; // a clear error for a chapter that does not exist
    }
    // No root needed here: each test says what it needs, and one this machine or user
    // cannot give is reported as not run (chapters 1 to 4 need root; 5 runs as you).
    rootfs::ensure()?;
    let workspace = Workspace::real();
    // Before the host's tests, so a missing qemu or kernel is said at once, not minutes
    // later.
    let vm = match cgroup_vm {
        true => Some(vm::CgroupVm::prepare(&workspace, chapter, implementation)?),
        false => None,
    };
    build_binaries(&workspace, implementation)?;
    let machine_before = leaks::picture(Scope::WholeRun);
    let mut outcome = run_tests(&workspace, chapter, implementation, true)?;
    let vm_outcome = vm.map(|vm| vm.run()).transpose()?;
    let machine_after = leaks::picture(Scope::WholeRun);
    println!();
    println!(
        "the cgroup tests ran on this machine's cgroup {}{}",
        workspace::cgroup_version()?,
        if vm_outcome.is_some() {
            ", and on pure cgroup v2 in a VM"
        } else {
            ""
        }
    );
    if let Some(vm_outcome) = vm_outcome {
        println!(
            "{}",
            vm_outcome.summary_as("summary (pure cgroup v2, in a VM)")
        );
        outcome.add(vm_outcome);
    }
    // CI reads the last line that starts with `summary:`: it must count everything.
    println!("{}", outcome.summary());
    assert_nothing_left(&machine_before, &machine_after)?;
    if outcome.failed > 0 {
        bail!(
            "{} tests failed: {}",
            outcome.failed,
            outcome.failing_tests.join(", ")
        );
    }
    if outcome.passed == 0 {
        bail!("no test passed, so nothing was checked: see the \"not run\" lines above");
    }
    Ok(())
}

/// Fails, naming what changed, if any leak check sees the machine changed by the tests:
/// the same table the tests check each run with (see `byoc_facts::leaks`).
fn assert_nothing_left(
    before: &[(&'static str, String)],
    after: &[(&'static str, String)],
) -> Result<()> {
    for ((name, was), (_, is)) in before.iter().zip(after) {
        if was != is {
            bail!(
                "the machine's {name} changed during the tests: a test left something \
                 behind\nbefore:\n{was}\nafter:\n{is}"
            );
        }
        println!("the machine's {name}: the same as before the tests");
    }
    Ok(())
}

/// Chapters 1 to 4 need root, and so does checking the course as a whole.
pub fn require_root() -> Result<()> {
    if !workspace::is_root() {
        bail!(
            "chapters 1 to 4 need root: chroot, mounts and most namespaces need \
             privileges that an ordinary user only gets inside a user namespace (chapter \
             5). Run this as root, for example in a virtual machine you own"
        );
    }
    Ok(())
}

fn build_binaries(workspace: &Workspace, implementation: Impl) -> Result<()> {
    let mut build = workspace.cargo();
    build.args(["build", "--quiet"]);
    for chapter in gen::chapters()? {
        build.args(["-p", &implementation.package(chapter.number)]);
    }
    // The bonus chapter's tests make the image podman runs with the last of the ten's
    // reference (`image save`), whichever implementation is under test.
    if gen::chapters()?
        .iter()
        .any(|c| c.number == byoc_facts::BONUS_CHAPTER)
    {
        build.args(["-p", &format!("solution{:02}", byoc_facts::LAST_CHAPTER)]);
    }
    workspace::run(&mut build)
}

/// Runs the unit tests and the black-box tests in `workspace`, streaming their output if
/// `echo`.
pub fn run_tests(
    workspace: &Workspace,
    chapter: Option<u32>,
    implementation: Impl,
    echo: bool,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut unit = workspace.cargo();
    unit.args(["test", "--no-fail-fast"]);
    match (chapter, implementation) {
        (Some(number), _) => {
            unit.args(["-p", &implementation.package(number)]);
        }
        (None, Impl::Solutions) => {
            unit.args(["--workspace", "--exclude", "byoc-tests"]);
            for chapter in gen::chapters()? {
                unit.args(["--exclude", &chapter.learner_name()]);
            }
        }
        (None, Impl::Chapters) => {
            for chapter in gen::chapters()? {
                unit.args(["-p", &chapter.learner_name()]);
            }
        }
    }
    run_counting(&mut unit, &mut outcome, echo)?;

    let mut black_box = workspace.cargo();
    black_box.args(["test", "--no-fail-fast", "-p", "byoc-tests"]);
    if let Some(number) = chapter {
        black_box.args(["--test", &format!("ch{number:02}")]);
        black_box.env("COURSE_ONLY", number.to_string());
    }
    if implementation == Impl::Chapters {
        // A learner's run compares with the reference's snapshots; it never writes new
        // ones.
        black_box.env("INSTA_UPDATE", "no");
    }
    black_box
        .env("COURSE_IMPL", implementation.name())
        .env("BYOC_ROOTFS", rootfs::path())
        .env("BYOC_BIN_DIR", workspace.bin_dir());
    let not_run_dir = tempfile::Builder::new()
        .prefix("byoc-not-run-")
        .tempdir()
        .context("cannot make a temporary directory for BYOC_NOT_RUN_DIR")?;
    black_box.env("BYOC_NOT_RUN_DIR", not_run_dir.path());
    let figures_dir = tempfile::Builder::new()
        .prefix("byoc-figures-")
        .tempdir()
        .context("cannot make a temporary directory for BYOC_FIGURES_DIR")?;
    black_box.env("BYOC_FIGURES_DIR", figures_dir.path());
    run_counting(&mut black_box, &mut outcome, echo)?;
    let not_run = read_not_run(not_run_dir.path())?;
    if echo {
        for line in &not_run {
            println!("not run: {line}");
        }
        print_figures(figures_dir.path(), "figure")?;
    }
    outcome.add_not_run(not_run);
    Ok(outcome)
}

/// Prints what the tests measured: a figure is shown, never compared with a clock (a
/// test's assertion is on a wide band). The tests write one line per file into
/// `BYOC_FIGURES_DIR`, as they write the reasons they did not run.
pub fn print_figures(dir: &Path, label: &str) -> Result<()> {
    for line in read_not_run(dir)? {
        println!("{label}: {line}");
    }
    Ok(())
}

/// The lines the tests that could not run wrote into `dir`, one file each, sorted.
pub fn read_not_run(dir: &Path) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {dir:?}"))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {path:?}"))?;
        let line = text.trim();
        if line.is_empty() {
            lines.push(format!("{}: (a test wrote no reason)", path.display()));
        } else {
            lines.push(line.to_string());
        }
    }
    lines.sort();
    Ok(lines)
}

/// Runs `cargo test`, echoing (or only keeping) its output and adding up its summary
/// lines.
fn run_counting(command: &mut Command, outcome: &mut Outcome, echo: bool) -> Result<()> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("{line}");
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if echo {
            println!("{line}");
        }
        count_line(&line, outcome);
        outcome.output.push_str(&line);
        outcome.output.push('\n');
    }
    let status = child.wait()?;
    outcome
        .output
        .push_str(&stderr_reader.join().unwrap_or_default());
    if !status.success() && outcome.failed == 0 {
        // It did not get as far as running tests: a build error, most likely.
        outcome.failed += 1;
        outcome
            .failing_tests
            .push(format!("{command:?} did not finish"));
    }
    Ok(())
}

/// `test result: ok. 5 passed; 0 failed; ...`, `test some::name ... ok` and `test
/// some::name ... FAILED`.
pub fn count_line(line: &str, outcome: &mut Outcome) {
    if let Some(rest) = line.strip_prefix("test result: ") {
        outcome.passed += number_before(rest, " passed");
        outcome.failed += number_before(rest, " failed");
    } else if let Some(test) = line.strip_prefix("test ") {
        if let Some(name) = test.strip_suffix(" ... FAILED") {
            outcome.failing_tests.push(name.to_string());
        } else if let Some(name) = test.strip_suffix(" ... ok") {
            outcome.passed_tests.push(name.to_string());
        }
    }
}

fn number_before(text: &str, label: &str) -> u32 {
    text.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label.trim_start())
        })
        .and_then(|digits| digits.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(lines: &[&str]) -> Outcome {
        let mut outcome = Outcome::default();
        for line in lines {
            count_line(line, &mut outcome);
        }
        outcome
    }

    #[test]
    fn summary_lines_add_up() {
        let outcome = counted(&[
            "test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out",
            "test ch02::pivot ... FAILED",
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        ]);
        assert_eq!((outcome.passed, outcome.failed), (8, 2));
        assert_eq!(outcome.failing_tests, ["ch02::pivot"]);
    }

    #[test]
    fn tests_that_did_not_run_are_not_counted_as_passed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a"),
            "ch05::rootless: needs an unprivileged user\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b"), "ch07::memory: needs cgroup v2").unwrap();
        let mut outcome = counted(&["test result: ok. 5 passed; 0 failed; 0 ignored"]);
        outcome.add_not_run(read_not_run(dir.path()).unwrap());
        assert_eq!(outcome.passed, 3);
        assert_eq!(
            outcome.not_run,
            [
                "ch05::rootless: needs an unprivileged user",
                "ch07::memory: needs cgroup v2"
            ]
        );
        assert_eq!(outcome.summary(), "summary: 3 passed, 0 failed, 2 not run");
    }

    #[test]
    fn an_empty_not_run_directory_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut outcome = counted(&["test result: ok. 4 passed; 1 failed; 0 ignored"]);
        outcome.add_not_run(read_not_run(dir.path()).unwrap());
        assert_eq!(outcome.summary(), "summary: 4 passed, 1 failed, 0 not run");
    }
}

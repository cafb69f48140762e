//! `cargo xtask test`, `check` and `invariant`: building what the tests need, running them,
//! and telling a learner which exercise to do next. Book: "Check your work" in each chapter.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::exercises::Exercise;
use crate::gen::{self, Chapter};
use crate::rootfs;
use crate::workspace::{self, cargo, NEWEST_CHAPTER};

/// Which binaries the black-box tests run: the reference or the learner's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Impl {
    Solutions,
    Chapters,
}

impl Impl {
    fn name(self) -> &'static str {
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
#[derive(Default)]
struct Outcome {
    passed: u32,
    failed: u32,
    failing_tests: Vec<String>,
    output: String,
}

pub fn test(chapter: Option<u32>, implementation: Impl) -> Result<()> {
    if let Some(number) = chapter {
        gen::chapter(number)?; // a clear error for a chapter that does not exist
    }
    require_root()?;
    rootfs::ensure()?;
    build_binaries(implementation)?;
    let mount_table_before = workspace::mount_table()?;
    let outcome = run_tests(chapter, implementation, true)?;
    let mount_table_after = workspace::mount_table()?;
    println!();
    println!(
        "summary: {} passed, {} failed",
        outcome.passed, outcome.failed
    );
    if mount_table_before != mount_table_after {
        bail!("the host's mount table changed during the tests: a mount leaked");
    }
    println!("the host's mount table is the same as before the tests");
    if outcome.failed > 0 || outcome.passed == 0 {
        bail!(
            "{} tests failed: {}",
            outcome.failed,
            outcome.failing_tests.join(", ")
        );
    }
    Ok(())
}

fn require_root() -> Result<()> {
    if !workspace::is_root() {
        bail!(
            "chapters 1 to 4 need root: chroot, mounts and most namespaces need privileges \
             that an ordinary user only gets inside a user namespace (chapter 5). \
             Run this as root, for example in a virtual machine you own"
        );
    }
    Ok(())
}

fn build_binaries(implementation: Impl) -> Result<()> {
    let mut build = cargo();
    build.args(["build", "--quiet"]);
    for chapter in gen::chapters()? {
        build.args(["-p", &implementation.package(chapter.number)]);
    }
    workspace::run(&mut build)
}

/// Runs the unit tests and the black-box tests, streaming their output.
fn run_tests(chapter: Option<u32>, implementation: Impl, echo: bool) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut unit = cargo();
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

    let mut black_box = cargo();
    black_box.args(["test", "--no-fail-fast", "-p", "byoc-tests"]);
    if let Some(number) = chapter {
        black_box.args(["--test", &format!("ch{number:02}")]);
        black_box.env("COURSE_ONLY", number.to_string());
    }
    if implementation == Impl::Chapters {
        // A learner's run compares with the reference's snapshots; it never writes new ones.
        black_box.env("INSTA_UPDATE", "no");
    }
    black_box
        .env("COURSE_IMPL", implementation.name())
        .env("BYOC_ROOTFS", rootfs::path())
        .env("BYOC_BIN_DIR", workspace::target_dir().join("debug"));
    run_counting(&mut black_box, &mut outcome, echo)?;
    Ok(outcome)
}

/// Runs `cargo test`, echoing (or only keeping) its output and adding up its summary lines.
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

/// `test result: ok. 5 passed; 0 failed; ...` and `test some::name ... FAILED`.
fn count_line(line: &str, outcome: &mut Outcome) {
    if let Some(rest) = line.strip_prefix("test result: ") {
        outcome.passed += number_before(rest, " passed");
        outcome.failed += number_before(rest, " failed");
    } else if let Some(name) = line
        .strip_prefix("test ")
        .and_then(|l| l.strip_suffix(" ... FAILED"))
    {
        outcome.failing_tests.push(name.to_string());
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

/// `cargo xtask check N`: the learner's question, "am I done with chapter N?".
pub fn check(number: u32) -> Result<()> {
    require_root()?;
    let chapter = gen::chapter(number)?;
    rootfs::ensure()?;
    workspace::run(cargo().args(["build", "--quiet", "-p", &chapter.learner_name()]))?;
    let unfinished = unfinished_exercises(&chapter)?;
    println!(
        "checking chapters/{} (your copy) against chapter {number}'s tests...",
        chapter.slug
    );
    let outcome = run_tests(Some(number), Impl::Chapters, false)?;
    println!();
    if outcome.failed == 0 && outcome.passed > 0 && unfinished.is_empty() {
        println!(
            "chapter {number}: all {} tests pass. Well done!",
            outcome.passed
        );
        if number < NEWEST_CHAPTER {
            println!("next: chapter {}", number + 1);
        }
        return Ok(());
    }
    println!(
        "chapter {number}: {} passed, {} failed",
        outcome.passed, outcome.failed
    );
    for (location, exercise) in &unfinished {
        println!(
            "  not done yet: exercise {}: {}\n    in {location}\n    read book section {}",
            exercise.number, exercise.title, exercise.section
        );
    }
    if unfinished.is_empty() {
        println!("  every exercise has code, but these tests fail:");
        for name in &outcome.failing_tests {
            println!("    {name}");
        }
        println!(
            "  see why with: cargo xtask test --impl chapters --chapter {number}\n  \
             (each test prints the container's stdout, stderr and exit code)"
        );
    }
    bail!("chapter {number} is not done yet")
}

/// The exercises whose `todo!()` is still in the learner's copy, with where they are.
fn unfinished_exercises(chapter: &Chapter) -> Result<Vec<(String, Exercise)>> {
    let mut unfinished = Vec::new();
    for (relative, exercise) in gen::exercises_of(chapter)? {
        let path = chapter.learner_dir().join(&relative);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path:?}"))?;
        let needle = format!("todo!(\"exercise {}:", exercise.number);
        if let Some(index) = text.lines().position(|line| line.contains(&needle)) {
            let location = format!(
                "chapters/{}/{}:{}",
                chapter.slug,
                relative.display(),
                index + 1
            );
            unfinished.push((location, exercise));
        }
    }
    Ok(unfinished)
}

/// The course invariant: against its unsolved crate, each chapter's tests fail and name an
/// exercise of that chapter; and with any single exercise left undone, they still fail.
/// A test that passes without the exercise teaches nothing.
pub fn invariant() -> Result<()> {
    require_root()?;
    rootfs::ensure()?;
    let result = check_every_chapter();
    // Put the learner crates back exactly as the generator makes them, whatever happened.
    let restored = gen::run(false);
    result.and(restored)
}

fn check_every_chapter() -> Result<()> {
    let mut problems = Vec::new();
    for chapter in gen::chapters()? {
        let all_unsolved = gen::learner_files(&chapter, &|_| false)?;
        gen::write_crate(&chapter.learner_dir(), &all_unsolved)?;
        let prefix = format!("exercise {}.", chapter.number);
        match fails_naming(&chapter, &prefix)? {
            Ok(()) => println!(
                "chapter {}: unsolved crate fails and names an exercise: ok",
                chapter.number
            ),
            Err(problem) => problems.push(format!(
                "chapter {}, all exercises undone: {problem}",
                chapter.number
            )),
        }
        for (_, exercise) in gen::exercises_of(&chapter)? {
            let number = exercise.number.clone();
            let only_this = gen::learner_files(&chapter, &|other| other.number != number)?;
            gen::write_crate(&chapter.learner_dir(), &only_this)?;
            let named = format!("exercise {number}:");
            match fails_naming(&chapter, &named)? {
                Ok(()) => println!(
                    "chapter {}: exercise {number} alone undone fails its tests: ok",
                    chapter.number
                ),
                Err(problem) => problems.push(format!("exercise {number} alone undone: {problem}")),
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "the course invariant does not hold:\n  {}",
            problems.join("\n  ")
        );
    }
    println!("course invariant holds for every chapter and every exercise");
    Ok(())
}

/// Builds the learner crate as it is now, runs its chapter's tests, and expects a failure
/// whose output names `needle`. The outer error is for things that could not be run at all.
fn fails_naming(chapter: &Chapter, needle: &str) -> Result<Result<(), String>> {
    workspace::run(cargo().args(["build", "--quiet", "-p", &chapter.learner_name()]))?;
    let outcome = run_tests(Some(chapter.number), Impl::Chapters, false)?;
    Ok(if outcome.failed == 0 {
        Err(format!("all {} tests passed", outcome.passed))
    } else if !outcome.output.contains(needle) {
        Err(format!("tests failed but no output names \"{needle}\""))
    } else {
        Ok(())
    })
}

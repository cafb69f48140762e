//! `cargo xtask check N`: the learner's question, "am I done with chapter N?". It runs the
//! chapter's tests against the learner's crate and says which exercise is not done yet,
//! where its `todo!()` is, and which book section to read. Book: "Check your work".

use std::path::Path;

use anyhow::{bail, Result};

use crate::exercises::{Exercise, Number};
use crate::gen::{self, Chapter};
use crate::rootfs;
use crate::testing::{self, Impl, Outcome};
use crate::todos;
use crate::workspace::{self, Workspace};

/// An exercise whose `todo!()` is still in the learner's code, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub number: Number,
    /// `chapters/02-mount-namespace/src/mounts.rs:45`
    pub location: String,
}

/// From this chapter on, the runtime makes a user namespace and runs as an ordinary user.
const FIRST_ROOTLESS_CHAPTER: u32 = 5;

pub fn check(number: u32) -> Result<()> {
    let chapter = gen::chapter(number)?;
    if chapter.number < FIRST_ROOTLESS_CHAPTER {
        testing::require_root()?;
    }
    rootfs::ensure()?;
    let workspace = Workspace::real();
    workspace::run(
        workspace
            .cargo()
            .args(["build", "--quiet", "-p", &chapter.learner_name()]),
    )?;
    let unfinished = unfinished(&chapter, &workspace.root)?;
    println!(
        "checking chapters/{} (your copy) against chapter {number}'s tests...",
        chapter.slug
    );
    let outcome = testing::run_tests(&workspace, Some(number), Impl::Chapters, false)?;
    println!();
    if outcome.failed == 0 && outcome.passed > 0 && unfinished.is_empty() {
        return all_passed(number, &outcome);
    }
    println!(
        "chapter {number}: {} passed, {} failed, {} not run",
        outcome.passed,
        outcome.failed,
        outcome.not_run.len()
    );
    let exercises = gen::exercises_of(&chapter)?;
    for todo in &unfinished {
        print_unfinished(todo, &exercises);
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
    print_not_run(&outcome);
    bail!("chapter {number} is not done yet")
}

/// Every test that ran passed: done, unless some could not run here.
fn all_passed(number: u32, outcome: &Outcome) -> Result<()> {
    if !outcome.not_run.is_empty() {
        println!(
            "chapter {number}: the {} tests that ran pass, but {} could not run on this machine:",
            outcome.passed,
            outcome.not_run.len()
        );
        print_not_run(outcome);
        bail!("chapter {number} is not fully checked: run it where these tests can run");
    }
    println!(
        "chapter {number}: all {} tests pass. Well done!",
        outcome.passed
    );
    let next = gen::chapters()?.into_iter().find(|c| c.number > number);
    if let Some(next) = next {
        println!("next: cargo xtask check {}", next.number);
    }
    Ok(())
}

fn print_unfinished(todo: &Unfinished, exercises: &[(std::path::PathBuf, Exercise)]) {
    let exercise = exercises.iter().find(|(_, e)| e.number == todo.number);
    match exercise {
        Some((_, exercise)) => println!(
            "  not done yet: exercise {}: {}\n    in {}\n    read book section {}",
            exercise.number, exercise.title, todo.location, exercise.section
        ),
        None => println!(
            "  not done yet: exercise {}\n    in {}",
            todo.number, todo.location
        ),
    }
}

fn print_not_run(outcome: &Outcome) {
    for line in &outcome.not_run {
        println!("  not run: {line}");
    }
}

/// The exercises whose `todo!()` is still in chapter's learner crate in the workspace at
/// `root`, sorted by number.
pub fn unfinished(chapter: &Chapter, root: &Path) -> Result<Vec<Unfinished>> {
    let dir = chapter.learner_dir_in(root);
    let mut found = Vec::new();
    for relative in gen::source_files(&dir)? {
        if relative.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        for todo in todos::find_in_file(&dir.join(&relative))? {
            let location = format!(
                "chapters/{}/{}:{}",
                chapter.slug,
                relative.display(),
                todo.line
            );
            found.push(Unfinished {
                number: todo.number,
                location,
            });
        }
    }
    found.sort_by_key(|todo| todo.number);
    Ok(found)
}

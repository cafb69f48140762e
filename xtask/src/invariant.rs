//! `cargo xtask invariant`: the course's promise that every test can fail. Book: "How
//! this kit is built".
//!
//! For each chapter, against its learner crate:
//! - with every exercise undone, the tests fail and name an exercise of the chapter;
//! - with one exercise undone (`todo!()`), they fail and name it, and `check` names it
//!   alone;
//! - with one exercise replaced by its `// TRIVIAL:` body, which compiles and does
//!   nothing,
//!   they still fail. A test that passes when an exercise does nothing checks nothing;
//! - the tests that fail with one exercise undone are those `xtask/exercise-tests.txt`
//!   lists
//!   for it (see [`exercise_tests`]); where not, the file is rewritten and the run fails.
//!
//! All of it happens in a scratch copy of the workspace, removed at the end: the
//! learner's own `chapters/` are never written.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::check;
use crate::exercise_tests::{self, Table};
use crate::exercises::{Exercise, Form, Number, Trivial};
use crate::gen::{self, Chapter};
use crate::rootfs;
use crate::testing::{self, Impl, Outcome};
use crate::workspace::{self, Workspace};

/// What the scratch copy needs to build and test: the workspace manifest and lock file,
/// cargo's config, and every workspace member but `chapters/`, which it generates.
const COPIED: [&str; 8] = [
    "Cargo.toml",
    "Cargo.lock",
    ".cargo",
    "solutions",
    "tests",
    "probe",
    "facts",
    "xtask",
];

/// The invariant for every chapter, or for `only` that one (the table keeps the others'
/// lines).
pub fn invariant(only: Option<u32>) -> Result<()> {
    testing::require_root()?;
    rootfs::ensure()?;
    // Dropping `scratch` removes the copy, whether the checks pass, fail or stop with an
    // error.
    let scratch = tempfile::Builder::new()
        .prefix("byoc-invariant-")
        .tempdir()
        .context("cannot make a scratch directory")?;
    // The tests' temporary directories go here, not straight into /tmp. A half-done
    // runtime may leak a mount onto one (into the tests' own mount namespace), and the
    // test cannot remove it then; once that namespace has gone with the tests, dropping
    // this removes them all. Open to all like /tmp: the rootless tests' user stages
    // copies there.
    let test_temp = tempfile::Builder::new()
        .prefix("byoc-invariant-tmp-")
        .tempdir()
        .context("cannot make a temporary directory for the tests")?;
    fs::set_permissions(test_temp.path(), fs::Permissions::from_mode(0o1777))?;
    let mut workspace = scratch_workspace(scratch.path())?;
    workspace.temp_dir = Some(test_temp.path().to_path_buf());
    println!(
        "working in a scratch copy of the workspace: {}",
        scratch.path().display()
    );
    let problems = check_every_chapter(&workspace, only)?;
    if !problems.is_empty() {
        bail!(
            "the course invariant does not hold:\n  {}",
            problems.join("\n  ")
        );
    }
    match only {
        Some(number) => println!("course invariant holds for chapter {number}"),
        None => println!("course invariant holds for every chapter and every exercise"),
    }
    Ok(())
}

/// Copies the workspace's sources into `dir` and generates its learner crates. Builds go
/// to a fixed folder in the real target directory, so the dependencies compile only once,
/// and the real `target/debug` binaries are never replaced by unsolved ones.
fn scratch_workspace(dir: &Path) -> Result<Workspace> {
    let real = workspace::root();
    for name in COPIED {
        let source = real.join(name);
        if source.exists() {
            copy_tree(&source, &dir.join(name))?;
        }
    }
    let workspace = Workspace {
        root: dir.to_path_buf(),
        target_dir: workspace::target_dir().join("invariant"),
        own_mount_namespace: true,
        temp_dir: None,
    };
    for chapter in gen::chapters()? {
        write_variant(&workspace, &chapter, &|_| Form::Todo)?;
    }
    Ok(workspace)
}

/// Copies a file or a directory tree; build output (`target/`) is left out.
fn copy_tree(source: &Path, destination: &Path) -> Result<()> {
    if !source.is_dir() {
        fs::copy(source, destination)
            .with_context(|| format!("cannot copy {source:?} to {destination:?}"))?;
        return Ok(());
    }
    fs::create_dir_all(destination)
        .with_context(|| format!("cannot create {destination:?}"))?;
    for entry in
        fs::read_dir(source).with_context(|| format!("cannot read {source:?}"))?
    {
        let name = entry?.file_name();
        if name != "target" {
            copy_tree(&source.join(&name), &destination.join(&name))?;
        }
    }
    Ok(())
}

fn write_variant(
    workspace: &Workspace,
    chapter: &Chapter,
    form_of: &dyn Fn(&Exercise) -> Form,
) -> Result<()> {
    let files = gen::learner_files(chapter, form_of)?;
    gen::write_crate(&chapter.learner_dir_in(&workspace.root), &files)
}

/// The problems found, one line each; an error only for what could not be checked at all.
fn check_every_chapter(workspace: &Workspace, only: Option<u32>) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let old_table = exercise_tests::load()?;
    let mut table = old_table.clone();
    for chapter in gen::chapters()? {
        if only.is_some_and(|only| only != chapter.number) {
            continue;
        }
        table.retain(|number, _| number.chapter != chapter.number);
        let exercises = gen::exercises_of(&chapter)?;
        let every_number: Vec<Number> = exercises.iter().map(|(_, e)| e.number).collect();
        write_variant(workspace, &chapter, &|_| Form::Todo)?;
        let prefix = format!("exercise {}.", chapter.number);
        let what = format!("chapter {}, every exercise undone", chapter.number);
        problems.extend(expect_failure(workspace, &chapter, &what, Some(&prefix))?.0);
        problems.extend(expect_named(workspace, &chapter, &what, &every_number)?);
        for (file, exercise) in &exercises {
            let (found, outcome) = check_one_undone(workspace, &chapter, exercise)?;
            problems.extend(found);
            let old = old_table.get(&exercise.number).cloned().unwrap_or_default();
            table.insert(exercise.number, tests_of(&old, &outcome));
            problems.extend(check_trivial(workspace, &chapter, file, exercise)?);
        }
    }
    // A run with problems (a variant that did not build, say) learned nothing to trust.
    match problems.is_empty() {
        true => problems.extend(keep_table_true(&old_table, &table)?),
        false => {
            println!("xtask/exercise-tests.txt is left as it was: the run had problems")
        }
    }
    Ok(problems)
}

/// The tests that exercise an exercise, from the run with it alone undone.
fn tests_of(old: &BTreeSet<String>, outcome: &Outcome) -> BTreeSet<String> {
    // `cargo test ... did not finish` (a run that never got to its tests) names no test.
    let failed = outcome
        .failing_tests
        .iter()
        .filter(|name| !name.contains(' '))
        .cloned()
        .collect();
    let not_run = outcome
        .not_run
        .iter()
        .map(|line| exercise_tests::not_run_name(line).to_string())
        .collect();
    exercise_tests::updated(old, &failed, &not_run)
}

/// Rewrites `xtask/exercise-tests.txt` where this run learned otherwise, and says so: the
/// file is committed, so a stale one fails the invariant until the new one is committed.
fn keep_table_true(old: &Table, new: &Table) -> Result<Vec<String>> {
    if old == new {
        println!("xtask/exercise-tests.txt is up to date: ok");
        return Ok(Vec::new());
    }
    let path = exercise_tests::path();
    fs::write(&path, exercise_tests::format(new))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let problem = "xtask/exercise-tests.txt was out of date: it is rewritten, commit it"
        .to_string();
    println!("{problem}");
    Ok(vec![problem])
}

/// The form of each exercise when only `number` is not done, as `form`.
fn only(number: Number, form: Form) -> impl Fn(&Exercise) -> Form {
    move |exercise| {
        if exercise.number == number {
            form
        } else {
            Form::Solved
        }
    }
}

/// The problems found with `exercise` alone undone, and what its tests did.
fn check_one_undone(
    workspace: &Workspace,
    chapter: &Chapter,
    exercise: &Exercise,
) -> Result<(Vec<String>, Outcome)> {
    let number = exercise.number;
    write_variant(workspace, chapter, &only(number, Form::Todo))?;
    let what = format!("exercise {number} alone undone");
    let needle = crate::exercises::todo_prefix(number);
    let (mut problems, outcome) =
        expect_failure(workspace, chapter, &what, Some(&needle))?;
    problems.extend(expect_named(workspace, chapter, &what, &[number])?);
    Ok((problems, outcome))
}

fn check_trivial(
    workspace: &Workspace,
    chapter: &Chapter,
    file: &Path,
    exercise: &Exercise,
) -> Result<Vec<String>> {
    let number = exercise.number;
    match &exercise.trivial {
        None => Ok(vec![format!(
            "exercise {number} (solutions/{}/{}:{}) has no `// TRIVIAL:` line: add one \
             after its HINT lines, with the smallest body that compiles, or `none (why)`",
            chapter.slug,
            file.display(),
            exercise.line
        )]),
        Some(Trivial::Impossible(why)) => {
            println!("exercise {number} has no trivial body ({why}): nothing to check");
            Ok(Vec::new())
        }
        Some(Trivial::Body(body)) => {
            write_variant(workspace, chapter, &only(number, Form::Trivial))?;
            let what = format!("exercise {number} with its trivial body `{body}`");
            Ok(expect_failure(workspace, chapter, &what, None)?.0)
        }
    }
}

/// Builds the learner crate as it is in `workspace`, runs its chapter's tests, and
/// expects them to fail, with output that names `needle` if one is given. Also gives what
/// the tests did (nothing where the crate does not compile).
fn expect_failure(
    workspace: &Workspace,
    chapter: &Chapter,
    what: &str,
    needle: Option<&str>,
) -> Result<(Vec<String>, Outcome)> {
    let started = std::time::Instant::now();
    let mut build = workspace.cargo();
    build.args(["build", "--quiet", "-p", &chapter.learner_name()]);
    if workspace::run(&mut build).is_err() {
        let problem = format!(
            "{what}: chapter{:02} does not compile (the errors are above)",
            chapter.number
        );
        return Ok((vec![problem], Outcome::default()));
    }
    let outcome =
        testing::run_tests(workspace, Some(chapter.number), Impl::Chapters, false)?;
    let problem = if outcome.failed == 0 {
        Some(format!(
            "{what}: the tests pass ({} passed, {} not run), so they check nothing",
            outcome.passed,
            outcome.not_run.len()
        ))
    } else if needle.is_some_and(|needle| !outcome.output.contains(needle)) {
        Some(format!(
            "{what}: tests failed but no output names \"{}\"",
            needle.unwrap_or_default()
        ))
    } else {
        None
    };
    match &problem {
        None => println!(
            "{what}: the tests fail: ok ({:.0} s)",
            started.elapsed().as_secs_f64()
        ),
        Some(problem) => println!("{problem}"),
    }
    Ok((problem.into_iter().collect(), outcome))
}

/// `cargo xtask check` must name exactly the exercises left undone, and no other.
fn expect_named(
    workspace: &Workspace,
    chapter: &Chapter,
    what: &str,
    expected: &[Number],
) -> Result<Vec<String>> {
    let named: Vec<Number> = check::unfinished(chapter, &workspace.root)?
        .iter()
        .map(|todo| todo.number)
        .collect();
    if named == expected {
        println!("{what}: check names {}: ok", list(&named));
        return Ok(Vec::new());
    }
    let problem = format!(
        "{what}: `cargo xtask check` would name {} instead of {}",
        list(&named),
        list(expected)
    );
    println!("{problem}");
    Ok(vec![problem])
}

fn list(numbers: &[Number]) -> String {
    let names: Vec<String> = numbers.iter().map(Number::to_string).collect();
    if names.is_empty() {
        "no exercise".to_string()
    } else {
        names.join(", ")
    }
}

//! `cargo xtask check N`: the learner's question, "am I done with chapter N?". It runs
//! the chapter's tests against the learner's crate and says which exercise is not done
//! yet, where its `todo!()` is, and which book section to read. Book: "Check your work".

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::exercise_tests::{self, Table};
use crate::exercises::{Exercise, Number};
use crate::gen::{self, Chapter};
use crate::rootfs;
use crate::testing::{self, Impl, Outcome};
use crate::todos;
use crate::vm;
use crate::workspace::{self, Workspace};

/// An exercise whose `todo!()` is still in the learner's code, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub number: Number,
    /// `chapters/02-mount-namespace/src/mounts.rs:45`
    pub location: String,
}

use byoc_facts::FIRST_ROOTLESS_CHAPTER;

/// `cargo xtask check N`, and with `cgroup_vm` chapter N's cgroup tests again in the
/// pure cgroup v2 VM: a test this machine cannot run but the VM passed has run.
pub fn check(number: u32, cgroup_vm: bool, json: bool) -> Result<()> {
    let chapter = gen::chapter(number)?;
    if chapter.number < FIRST_ROOTLESS_CHAPTER {
        testing::require_root()?;
    }
    rootfs::ensure()?;
    let workspace = Workspace::real();
    let vm = match cgroup_vm {
        true => Some(vm::CgroupVm::prepare(
            &workspace,
            Some(number),
            Impl::Chapters,
        )?),
        false => None,
    };
    workspace::run(workspace.cargo().args([
        "build",
        "--quiet",
        "-p",
        &chapter.learner_name(),
    ]))?;
    let unfinished = unfinished(&chapter, &workspace.root)?;
    // With --json, stdout holds the document alone: everything else goes to stderr.
    eprintln!(
        "checking chapters/{} (your copy) against chapter {number}'s tests...",
        chapter.slug
    );
    let mut outcome =
        testing::run_tests(&workspace, Some(number), Impl::Chapters, false)?;
    let mut passed_in_the_vm = None;
    if let Some(vm) = vm {
        let in_the_vm = vm.run()?;
        passed_in_the_vm = Some(in_the_vm.passed);
        outcome.add_run_elsewhere(in_the_vm);
    }
    if !json {
        println!();
    }
    let facts = Facts {
        number,
        next: gen::chapters()?
            .into_iter()
            .map(|c| c.number)
            .find(|&n| n > number),
        outcome: &outcome,
        unfinished: &unfinished,
        exercises: &gen::exercises_of(&chapter)?,
        table: &exercise_tests::load()?,
        cgroup_v1_only: workspace::cgroup_version()? == "v1" && !cgroup_vm,
        passed_in_the_vm,
    };
    let report = report(&facts);
    match json {
        true => println!("{:#}", json_report(&facts, &report)),
        false => println!("{}", report.lines.join("\n")),
    }
    match report.verdict {
        Some(verdict) => bail!("{verdict}"),
        None => Ok(()),
    }
}

/// What `check` knows once the tests have run: all the report is made from.
pub struct Facts<'a> {
    pub number: u32,
    pub next: Option<u32>,
    pub outcome: &'a Outcome,
    pub unfinished: &'a [Unfinished],
    pub exercises: &'a [(PathBuf, Exercise)],
    pub table: &'a Table,
    /// The cgroup tests ran on this machine's cgroup v1, and not in the v2 VM.
    pub cgroup_v1_only: bool,
    /// How many of the passed tests passed in the pure cgroup v2 VM, when it ran.
    pub passed_in_the_vm: Option<u32>,
}

/// The lines to print, and the error to end with (`None`: done, exit 0).
pub struct Report {
    pub lines: Vec<String>,
    pub verdict: Option<String>,
}

/// A test that could not run never counts as passed; but a chapter whose every exercise
/// was exercised by tests that ran and passed is done, and what did not run is only a
/// note.
pub fn report(facts: &Facts) -> Report {
    let outcome = facts.outcome;
    if outcome.failed > 0 || !facts.unfinished.is_empty() {
        return not_done(facts);
    }
    let unexercised = unexercised(facts);
    if unexercised.is_empty() && outcome.passed > 0 {
        return done(facts);
    }
    let number = facts.number;
    if outcome.passed == 0 && outcome.not_run.is_empty() {
        return Report {
            lines: vec![format!(
                "chapter {number}: no test ran, so nothing was checked"
            )],
            verdict: Some(format!("chapter {number} is not checked")),
        };
    }
    unchecked(facts, &unexercised)
}

// ANCHOR: json_report
/// The report as one JSON document, for a course that grades hand-ins:
///
/// - `chapter`, `done` (true when `check` would exit 0), `verdict` (its last line, or
///   null when done);
/// - `summary`: `passed`, `failed`, `not_run`;
/// - `exercises`: for each, `number`, `title`, `section`, `state` (`todo`: its
///   `todo!()` is still there; `failing`: a test that exercises it fails; `unchecked`:
///   no test that exercises it ran here; `passing`), `location` of a `todo`, and
///   `tests`, the tests that exercise it;
/// - `tests`: each `name` with its `result` (`passed`, `failed`, `not run`) and, for a
///   test not run, its `reason`.
pub fn json_report(facts: &Facts, report: &Report) -> serde_json::Value {
    let outcome = facts.outcome;
    let unexercised: Vec<&Exercise> = unexercised(facts);
    let exercises: Vec<serde_json::Value> = facts
        .exercises
        .iter()
        .map(|(_, exercise)| {
            let tests: Vec<&String> = facts
                .table
                .get(&exercise.number)
                .map(|tests| tests.iter().collect())
                .unwrap_or_default();
            let todo = facts
                .unfinished
                .iter()
                .find(|t| t.number == exercise.number);
            let failing = tests.iter().any(|t| outcome.failing_tests.contains(t));
            let state = match (todo, failing) {
                (Some(_), _) => "todo",
                (None, true) => "failing",
                _ if unexercised.iter().any(|e| e.number == exercise.number) => {
                    "unchecked"
                }
                _ => "passing",
            };
            serde_json::json!({
                "number": exercise.number.to_string(),
                "title": exercise.title,
                "section": exercise.section,
                "state": state,
                "location": todo.map(|t| t.location.clone()),
                "tests": tests,
            })
        })
        .collect();
    let mut tests: Vec<serde_json::Value> = Vec::new();
    for name in &outcome.passed_tests {
        tests.push(serde_json::json!({"name": name, "result": "passed"}));
    }
    for name in &outcome.failing_tests {
        tests.push(serde_json::json!({"name": name, "result": "failed"}));
    }
    for line in &outcome.not_run {
        let (name, reason) = line.split_once(": ").unwrap_or((line, "no reason given"));
        let name = exercise_tests::not_run_name(name);
        tests.push(
            serde_json::json!({"name": name, "result": "not run", "reason": reason}),
        );
    }
    serde_json::json!({
        "chapter": facts.number,
        "done": report.verdict.is_none(),
        "verdict": report.verdict,
        "summary": {
            "passed": outcome.passed,
            "failed": outcome.failed,
            "not_run": outcome.not_run.len(),
        },
        "exercises": exercises,
        "tests": tests,
    })
}
// ANCHOR_END: json_report

/// Every test that ran passed, but some exercise was exercised by none of them.
fn unchecked(facts: &Facts, unexercised: &[&Exercise]) -> Report {
    let number = facts.number;
    let mut lines = vec![format!(
        "chapter {number}: the {} tests that ran pass, but no test that ran here exercises:",
        facts.outcome.passed
    )];
    for exercise in unexercised {
        lines.push(format!(
            "  exercise {}: {} (book section {})",
            exercise.number, exercise.title, exercise.section
        ));
    }
    lines.extend(not_run_lines(facts));
    Report {
        lines,
        verdict: Some(format!(
            "chapter {number} is not fully checked: its tests need what this machine lacks"
        )),
    }
}

/// Every test that ran passed and every exercise was exercised by one of them.
fn done(facts: &Facts) -> Report {
    let (number, outcome) = (facts.number, facts.outcome);
    let mut lines = match (outcome.not_run.is_empty(), facts.passed_in_the_vm) {
        (true, None) => vec![format!(
            "chapter {number}: all {} tests pass. Well done!",
            outcome.passed
        )],
        (false, None) => vec![format!(
            "chapter {number}: done! The {} tests that ran pass and exercise every exercise.",
            outcome.passed
        )],
        (_, Some(in_the_vm)) => vec![format!(
            "chapter {number}: done! {} test runs pass, {} here and {in_the_vm} in the VM \
             on pure cgroup v2, and they exercise every exercise.",
            outcome.passed,
            outcome.passed.saturating_sub(in_the_vm)
        )],
    };
    lines.extend(not_run_lines(facts));
    if let Some(next) = facts.next {
        lines.push(format!("next: cargo xtask check {next}"));
    }
    Report {
        lines,
        verdict: None,
    }
}

fn not_done(facts: &Facts) -> Report {
    let (number, outcome) = (facts.number, facts.outcome);
    let mut lines = vec![format!(
        "chapter {number}: {} passed, {} failed, {} not run",
        outcome.passed,
        outcome.failed,
        outcome.not_run.len()
    )];
    for todo in facts.unfinished {
        lines.push(unfinished_line(todo, facts.exercises));
    }
    if facts.unfinished.is_empty() {
        lines.push("  every exercise has code, but these tests fail:".to_string());
        for name in &outcome.failing_tests {
            lines.extend(failing_test_lines(facts, name));
        }
        lines.push(format!(
            "  see all they printed with: cargo xtask test --impl chapters --chapter {number}"
        ));
    }
    lines.extend(not_run_lines(facts));
    Report {
        lines,
        verdict: Some(format!("chapter {number} is not done yet")),
    }
}

/// A failing test, the exercises it exercises, and its own message.
fn failing_test_lines(facts: &Facts, name: &str) -> Vec<String> {
    let mut lines = vec![format!("    {name}")];
    for (number, tests) in facts.table {
        if !tests.contains(name) {
            continue;
        }
        let exercise = facts.exercises.iter().find(|(_, e)| e.number == *number);
        if let Some((_, exercise)) = exercise {
            lines.push(format!(
                "      exercises {}: {} (book section {})",
                exercise.number, exercise.title, exercise.section
            ));
        }
    }
    for line in test_message(&facts.outcome.output, name) {
        lines.push(format!("      | {line}"));
    }
    lines
}

/// The most lines of a test's message `check` shows: the rest is in `cargo xtask test`.
const MESSAGE_LINES: usize = 12;

/// What a failing test printed in libtest's `---- name stdout ----` section, without the
/// backtrace and libtest's notes: the test's own words are what the learner needs.
pub fn test_message(output: &str, name: &str) -> Vec<String> {
    let heading = format!("---- {name} stdout ----");
    let Some((_, after)) = output.split_once(&heading) else {
        return Vec::new();
    };
    let mut message: Vec<String> = after
        .lines()
        .take_while(|line| !line.starts_with("---- ") && *line != "failures:")
        .take_while(|line| !line.starts_with("stack backtrace:"))
        .filter(|line| !line.trim().is_empty() && !line.starts_with("note: "))
        .map(without_thread)
        .collect();
    if message.len() > MESSAGE_LINES {
        message.truncate(MESSAGE_LINES);
        message.push("...".to_string());
    }
    message
}

/// `thread 'name' (123) panicked at tests/ch07.rs:51:9:` says the test's name again: keep
/// where it panicked.
fn without_thread(line: &str) -> String {
    match line.split_once(" panicked at ") {
        Some((_, place)) if line.starts_with("thread '") => {
            format!("panicked at {place}")
        }
        _ => line.to_string(),
    }
}

/// The exercises no test that ran here exercises, by the committed table. One the table
/// does not list counts as unexercised where some test did not run: nothing says
/// otherwise.
fn unexercised<'a>(facts: &Facts<'a>) -> Vec<&'a Exercise> {
    if facts.outcome.not_run.is_empty() {
        return Vec::new();
    }
    let not_run: BTreeSet<&str> = facts
        .outcome
        .not_run
        .iter()
        .map(|line| exercise_tests::not_run_name(line))
        .collect();
    facts
        .exercises
        .iter()
        .map(|(_, exercise)| exercise)
        .filter(|exercise| {
            let tests = facts.table.get(&exercise.number);
            !tests
                .is_some_and(|tests| tests.iter().any(|t| !not_run.contains(t.as_str())))
        })
        .collect()
}

/// What did not run and why, as notes: one per reason, with its tests below it, since
/// many tests share one (every root-only test, as an ordinary user). Then where chapter 7
/// can be checked on cgroup v2.
fn not_run_lines(facts: &Facts) -> Vec<String> {
    let mut by_reason: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in &facts.outcome.not_run {
        let (test, reason) = line.split_once(": ").unwrap_or((line, "no reason given"));
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, tests)) => tests.push(test),
            None => by_reason.push((reason, vec![test])),
        }
    }
    let mut lines = Vec::new();
    for (reason, tests) in &by_reason {
        let count = match tests.len() {
            1 => "1 test".to_string(),
            n => format!("{n} tests"),
        };
        lines.push(format!("  note: {count} not run here: {reason}"));
        lines.extend(tests.iter().map(|test| format!("    {test}")));
    }
    let said = lines.iter().any(|line| line.contains(CGROUP_VM_COMMAND));
    if facts.number == 7 && facts.cgroup_v1_only && !lines.is_empty() && !said {
        lines.push(format!("  {CGROUP_VM_HINT}"));
    }
    lines
}

/// Chapter 7 on a cgroup v1 machine: the learner's own code can still be checked on v2.
pub const CGROUP_VM_HINT: &str =
    "this machine has cgroup v1; check your code on v2 too, in a VM (no root needed), \
     with: cargo xtask check 7 --cgroup-vm";
const CGROUP_VM_COMMAND: &str = "cargo xtask check 7 --cgroup-vm";

fn unfinished_line(todo: &Unfinished, exercises: &[(PathBuf, Exercise)]) -> String {
    let exercise = exercises.iter().find(|(_, e)| e.number == todo.number);
    match exercise {
        Some((_, exercise)) => format!(
            "  not done yet: exercise {}: {}\n    in {}\n    read book section {}",
            exercise.number, exercise.title, todo.location, exercise.section
        ),
        None => format!(
            "  not done yet: exercise {}\n    in {}",
            todo.number, todo.location
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(number: &str, title: &str) -> (PathBuf, Exercise) {
        let exercise = Exercise {
            number: number.parse().unwrap(),
            section: number.to_string(),
            title: title.to_string(),
            line: 1,
            trivial: None,
            hints: Vec::new(),
            body: Vec::new(),
        };
        (PathBuf::from("src/main.rs"), exercise)
    }

    fn table(rows: &[(&str, &[&str])]) -> Table {
        rows.iter()
            .map(|(number, tests)| {
                let tests = tests.iter().map(|t| t.to_string()).collect();
                (number.parse().unwrap(), tests)
            })
            .collect()
    }

    fn outcome(passed: u32, failing: &[&str], not_run: &[&str], output: &str) -> Outcome {
        Outcome {
            passed,
            failed: failing.len() as u32,
            failing_tests: failing.iter().map(|t| t.to_string()).collect(),
            not_run: not_run.iter().map(|t| t.to_string()).collect(),
            passed_tests: Vec::new(),
            output: output.to_string(),
        }
    }

    /// The report for chapter 5 with two exercises, each with its own test.
    fn report_of(outcome: &Outcome, cgroup_v1_only: bool, number: u32) -> Report {
        let exercises = [
            exercise("5.1", "map the ids"),
            exercise("5.2", "load a module"),
        ];
        let table = table(&[("5.1", &["maps"]), ("5.2", &["modules", "both"])]);
        report(&Facts {
            number,
            next: Some(number + 1),
            outcome,
            unfinished: &[],
            exercises: &exercises,
            table: &table,
            cgroup_v1_only,
            passed_in_the_vm: None,
        })
    }

    #[test]
    fn a_test_that_could_not_run_is_a_note_when_every_exercise_was_exercised() {
        let outcome = outcome(
            21,
            &[],
            &["ch05::modules: needs a kernel that loads modules"],
            "",
        );
        let report = report_of(&outcome, false, 5);
        assert_eq!(report.verdict, None);
        assert_eq!(
            report.lines,
            [
                "chapter 5: done! The 21 tests that ran pass and exercise every exercise.",
                "  note: 1 test not run here: needs a kernel that loads modules",
                "    ch05::modules",
                "next: cargo xtask check 6",
            ]
        );
    }

    #[test]
    fn an_exercise_no_test_that_ran_exercises_is_named_and_not_done() {
        let not_run = ["ch05::both: needs root", "ch05::modules: needs root"];
        let report = report_of(&outcome(14, &[], &not_run, ""), false, 5);
        assert!(report.lines[0].contains("no test that ran here exercises"));
        assert_eq!(
            report.lines[1],
            "  exercise 5.2: load a module (book section 5.2)"
        );
        assert!(!report.lines.iter().any(|line| line.contains("5.1")));
        assert!(!report.lines.iter().any(|line| line.starts_with("next:")));
        assert!(report.verdict.unwrap().contains("not fully checked"));
    }

    #[test]
    fn tests_not_run_for_one_reason_share_one_note() {
        let not_run = ["ch05::both: needs root", "ch05::modules: needs root"];
        let report = report_of(&outcome(14, &[], &not_run, ""), false, 5);
        assert_eq!(
            report.lines[2..],
            [
                "  note: 2 tests not run here: needs root",
                "    ch05::both",
                "    ch05::modules"
            ]
        );
    }

    #[test]
    fn chapter_7_on_cgroup_v1_says_how_to_check_on_v2() {
        let report =
            report_of(&outcome(3, &[], &["ch07::maps: needs root"], ""), true, 7);
        assert!(report.lines.contains(&format!("  {CGROUP_VM_HINT}")));
    }

    #[test]
    fn a_failing_test_is_tied_to_its_exercise_and_shows_its_message_alone() {
        let output = "\
failures:

---- modules stdout ----

thread 'modules' (4242) panicked at tests/ch05.rs:10:5:
chapter05: the module was not loaded
stack backtrace:
   0: rust_begin_unwind
   1: core::panicking::panic_fmt
note: Some details are omitted

failures:
    modules
";
        let report = report_of(&outcome(20, &["modules"], &[], output), false, 5);
        assert_eq!(report.verdict.as_deref(), Some("chapter 5 is not done yet"));
        assert_eq!(
            report.lines[1..5],
            [
                "  every exercise has code, but these tests fail:",
                "    modules",
                "      exercises 5.2: load a module (book section 5.2)",
                "      | panicked at tests/ch05.rs:10:5:",
            ]
        );
        assert_eq!(
            report.lines[5],
            "      | chapter05: the module was not loaded"
        );
        assert!(report.lines[6].starts_with("  see all they printed with:"));
    }

    #[test]
    fn every_test_passing_with_none_left_out_is_done() {
        let report = report_of(&outcome(22, &[], &[], ""), false, 5);
        assert_eq!(report.verdict, None);
        assert_eq!(
            report.lines,
            [
                "chapter 5: all 22 tests pass. Well done!",
                "next: cargo xtask check 6"
            ]
        );
    }

    #[test]
    fn a_test_not_run_here_but_passed_in_the_vm_has_run() {
        let mut here = outcome(
            20,
            &[],
            &["ch05::modules: needs the v1 memory controller"],
            "",
        );
        let mut in_the_vm = outcome(0, &[], &[], "");
        testing::count_line("test modules ... ok", &mut in_the_vm);
        testing::count_line("test result: ok. 1 passed; 0 failed", &mut in_the_vm);
        here.add_run_elsewhere(in_the_vm);
        let report = report_of(&here, false, 5);
        assert_eq!(report.verdict, None, "{:?}", report.lines);
        assert_eq!(
            report.lines,
            [
                "chapter 5: all 21 tests pass. Well done!",
                "next: cargo xtask check 6"
            ]
        );
    }

    #[test]
    fn nothing_ran_is_never_done() {
        let report = report_of(&outcome(0, &[], &[], ""), false, 5);
        assert!(report.verdict.is_some());
    }

    #[test]
    fn the_json_report_gives_each_exercises_state_and_each_tests_result() {
        let exercises = [
            exercise("5.1", "map the ids"),
            exercise("5.2", "load a module"),
            exercise("5.3", "drop a capability"),
        ];
        let table = table(&[
            ("5.1", &["maps"]),
            ("5.2", &["modules"]),
            ("5.3", &["caps"]),
        ]);
        let mut outcome =
            outcome(1, &["modules"], &["ch05::caps: needs an ordinary user"], "");
        outcome.passed_tests = vec!["maps".to_string()];
        let unfinished = [Unfinished {
            number: "5.3".parse().unwrap(),
            location: "chapters/05-user-namespace/src/caps.rs:9".to_string(),
        }];
        let facts = Facts {
            number: 5,
            next: Some(6),
            outcome: &outcome,
            unfinished: &unfinished,
            exercises: &exercises,
            table: &table,
            cgroup_v1_only: false,
            passed_in_the_vm: None,
        };
        let json = json_report(&facts, &report(&facts));
        assert_eq!(json["chapter"], 5);
        assert_eq!(json["done"], false);
        assert_eq!(json["verdict"], "chapter 5 is not done yet");
        assert_eq!(json["summary"]["passed"], 1);
        assert_eq!(json["summary"]["failed"], 1);
        assert_eq!(json["summary"]["not_run"], 1);
        let states: Vec<&str> = json["exercises"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["passing", "failing", "todo"]);
        assert_eq!(
            json["exercises"][2]["location"],
            "chapters/05-user-namespace/src/caps.rs:9"
        );
        let results: Vec<(&str, &str)> = json["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap(), t["result"].as_str().unwrap()))
            .collect();
        assert_eq!(
            results,
            [
                ("maps", "passed"),
                ("modules", "failed"),
                ("caps", "not run")
            ]
        );
        assert_eq!(json["tests"][2]["reason"], "needs an ordinary user");
    }

    #[test]
    fn a_done_chapter_is_done_in_json_too() {
        let exercises = [exercise("5.1", "map the ids")];
        let table = table(&[("5.1", &["maps"])]);
        let mut outcome = outcome(1, &[], &[], "");
        outcome.passed_tests = vec!["maps".to_string()];
        let facts = Facts {
            number: 5,
            next: None,
            outcome: &outcome,
            unfinished: &[],
            exercises: &exercises,
            table: &table,
            cgroup_v1_only: false,
            passed_in_the_vm: None,
        };
        let json = json_report(&facts, &report(&facts));
        assert_eq!(json["done"], true);
        assert_eq!(json["verdict"], serde_json::Value::Null);
        assert_eq!(json["exercises"][0]["state"], "passing");
    }
}

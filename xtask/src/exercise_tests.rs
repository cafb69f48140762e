//! Which tests exercise which exercise: `xtask/exercise-tests.txt`, one line per pair,
//! `7.3 test_a` (a line per pair, so a change reads as one line in a diff; an exercise no
//! test exercises is a line with its number alone). `cargo xtask invariant` keeps it
//! true: with one exercise undone, the tests that fail are the ones that exercise it, and
//! it rewrites the file (and fails) when they differ. `check` reads it to tie a failing
//! test to its exercise, and to say whether every exercise was exercised by a test that
//! ran.
//!
//! A test the invariant could not run on its machine (no cgroup v2, say) keeps its line
//! from the last machine that ran it: the table is the union over machines, never what
//! one machine happened to see, so runs on different machines do not undo each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::exercises::Number;
use crate::workspace;

/// Each exercise's tests, by libtest's name for them (`a_memory_hog_is_killed_...`).
pub type Table = BTreeMap<Number, BTreeSet<String>>;

const HEADER: &str = "\
# Which tests fail when one exercise alone is undone: `cargo xtask check` names the exercise
# of a failing test from this. Written by `cargo xtask invariant`; do not edit by hand.
";

pub fn path() -> PathBuf {
    workspace::root().join("xtask/exercise-tests.txt")
}

/// The committed table; empty where there is none yet.
pub fn load() -> Result<Table> {
    let path = path();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            parse(&text).with_context(|| format!("cannot read {}", path.display()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Table::new()),
        Err(error) => {
            Err(error).with_context(|| format!("cannot read {}", path.display()))
        }
    }
}

pub fn parse(text: &str) -> Result<Table> {
    let mut table = Table::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let number: Number = words.next().unwrap_or_default().parse()?;
        table
            .entry(number)
            .or_default()
            .extend(words.map(str::to_string));
    }
    Ok(table)
}

pub fn format(table: &Table) -> String {
    let mut text = HEADER.to_string();
    for (number, tests) in table {
        if tests.is_empty() {
            text.push_str(&format!("{number}\n"));
        }
        for test in tests {
            text.push_str(&format!("{number} {test}\n"));
        }
    }
    text
}

/// An exercise's tests after the invariant's run: those that failed, and those of the
/// last run that could not run here (nothing here says they stopped exercising it).
pub fn updated(
    old: &BTreeSet<String>,
    failed: &BTreeSet<String>,
    not_run: &BTreeSet<String>,
) -> BTreeSet<String> {
    let kept = old.intersection(not_run).cloned();
    failed.iter().cloned().chain(kept).collect()
}

/// libtest's name of a test from a "not run" line, `ch07::some_test: needs root`.
pub fn not_run_name(line: &str) -> &str {
    let qualified = line.split_once(": ").map_or(line, |(name, _)| name);
    qualified
        .split_once("::")
        .map_or(qualified, |(_binary, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn a_table_reads_back_as_written() {
        let mut table = Table::new();
        table.insert("7.3".parse().unwrap(), set(&["hog", "forks"]));
        table.insert("7.10".parse().unwrap(), set(&[]));
        table.insert("7.2".parse().unwrap(), set(&["look"]));
        let text = format(&table);
        assert!(
            text.ends_with("7.2 look\n7.3 forks\n7.3 hog\n7.10\n"),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap(), table);
    }

    #[test]
    fn a_test_that_could_not_run_keeps_its_line_and_one_that_passed_loses_it() {
        let old = set(&["delegated", "hog", "stale"]);
        let new = updated(&old, &set(&["hog", "new"]), &set(&["delegated"]));
        assert_eq!(new, set(&["delegated", "hog", "new"]));
    }

    #[test]
    fn a_not_run_line_gives_the_test_name() {
        assert_eq!(
            not_run_name("ch07::memory_hog: needs root: v1"),
            "memory_hog"
        );
        assert_eq!(not_run_name("odd line"), "odd line");
    }
}

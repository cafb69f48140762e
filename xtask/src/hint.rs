//! `cargo xtask hint N.M`: the next hint of an exercise, one level each time it is run.
//!
//! Level 1 is the `// HINT:` comment above the `todo!()`: the idea and the section to
//! read. The deeper levels, `// HINT 2:` (what to call) and `// HINT 3:` (the shape of
//! the code), stay in `solutions/`, so a learner sees them only when they ask. How far
//! each exercise has got is kept in `target/byoc-hints`, one `N.M LEVEL` a line (git
//! ignores `target/`).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::exercises::{Exercise, Number};
use crate::{gen, workspace};

fn state_file() -> PathBuf {
    workspace::root().join("target").join("byoc-hints")
}

fn read_state() -> BTreeMap<Number, usize> {
    let text = fs::read_to_string(state_file()).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (number, level) = line.split_once(' ')?;
            Some((number.parse().ok()?, level.trim().parse().ok()?))
        })
        .collect()
}

fn write_state(state: &BTreeMap<Number, usize>) -> Result<()> {
    let path = state_file();
    fs::create_dir_all(path.parent().expect("a file has a parent"))?;
    let text: String = state
        .iter()
        .map(|(number, level)| format!("{number} {level}\n"))
        .collect();
    fs::write(&path, text).with_context(|| format!("cannot write {path:?}"))
}

/// The level the next run shows: the learner has read level 1 in the code, so the first
/// run shows level 2; past the last level, the last again.
fn next_level(shown: Option<usize>, levels: usize) -> usize {
    (shown.unwrap_or(1) + 1).min(levels)
}

fn find(number: Number) -> Result<(PathBuf, Exercise)> {
    let chapter = gen::chapter(number.chapter)?;
    gen::exercises_of(&chapter)?
        .into_iter()
        .find(|(_, exercise)| exercise.number == number)
        .map(|(file, exercise)| (PathBuf::from(&chapter.slug).join(file), exercise))
        .with_context(|| format!("chapter {} has no exercise {number}", number.chapter))
}

/// Shows the hints of `number` up to the next level, and remembers it; `reset` starts
/// over.
pub fn hint(number: Number, reset: bool) -> Result<()> {
    let (file, exercise) = find(number)?;
    let mut state = read_state();
    if reset {
        state.remove(&number);
        write_state(&state)?;
        println!("exercise {number}: the next `cargo xtask hint {number}` starts again at hint 1");
        return Ok(());
    }
    let levels = exercise.hints.len();
    if levels == 0 {
        bail!("exercise {number} has no hints");
    }
    let shown = state.get(&number).copied().unwrap_or(1);
    let level = next_level(state.get(&number).copied(), levels);
    println!(
        "exercise {number}: {} (chapters/{}, book section {})",
        exercise.title,
        file.display(),
        exercise.section
    );
    for (index, lines) in exercise.hints.iter().take(level).enumerate() {
        println!("\nhint {} of {levels}:", index + 1);
        for line in lines {
            println!("  {line}");
        }
    }
    println!();
    if shown >= levels {
        println!(
            "That is every hint. The reference answer is folded at the end of the page \
             \"Exercises and checking your work\" of chapter {}.",
            number.chapter
        );
    } else if level < levels {
        println!("Run `cargo xtask hint {number}` again for the next hint.");
    } else {
        println!(
            "That was the last hint. `cargo xtask hint {number} --reset` starts over."
        );
    }
    state.insert(number, level);
    write_state(&state)
}

#[cfg(test)]
mod tests {
    use super::next_level;

    #[test]
    fn each_run_shows_one_level_more_up_to_the_last() {
        assert_eq!(next_level(None, 3), 2);
        assert_eq!(next_level(Some(2), 3), 3);
        assert_eq!(next_level(Some(3), 3), 3);
        assert_eq!(
            next_level(None, 1),
            1,
            "an exercise with one level shows it again"
        );
    }
}

//! `cargo xtask book`: build the book, then check what mdBook does not: that every
//! `{{#include}}` names a file and anchor that exist (so code is included, never pasted),
//! that snapshot includes start after insta's header, and that every internal link and
//! `#heading` it points to exists.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use regex::Regex;

use crate::gen;
use crate::workspace;

pub fn build() -> Result<()> {
    let book = workspace::root().join("book");
    let mut problems = check_sources(&book.join("src"))?;
    problems.extend(check_exercise_sections(&book.join("src/SUMMARY.md"))?);
    let mdbook = Command::new("mdbook").arg("--version").output();
    if mdbook.is_err() {
        bail!("mdbook is not installed: `cargo install --locked mdbook`");
    }
    workspace::run(Command::new("mdbook").arg("build").arg(&book))?;
    problems.extend(check_output(&book.join("build"))?);
    if !problems.is_empty() {
        bail!(
            "the book has {} problems:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    println!(
        "book built in {} with every include and internal link checked",
        book.join("build").display()
    );
    Ok(())
}

fn markdown_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(markdown_files(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "md") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn check_sources(src: &Path) -> Result<Vec<String>> {
    let include = Regex::new(r"\{\{#(?:include|rustdoc_include) ([^}:]+)(?::([^}]*))?\}\}")?;
    let link = Regex::new(r"\]\(([^)\s]+)\)")?;
    let mut problems = Vec::new();
    for page in markdown_files(src)? {
        let text = fs::read_to_string(&page)?;
        let dir = page.parent().expect("a page is in a folder");
        let name = page
            .strip_prefix(src)
            .unwrap_or(&page)
            .display()
            .to_string();
        for capture in include.captures_iter(&text) {
            let target = dir.join(&capture[1]);
            let selector = capture.get(2).map(|m| m.as_str());
            if let Err(problem) = check_include(&target, selector) {
                problems.push(format!(
                    "{name}: {{{{#include {}}}}}: {problem}",
                    &capture[1]
                ));
            }
        }
        for capture in link.captures_iter(&text) {
            let target = &capture[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            if let Err(problem) = check_link(&page, target) {
                problems.push(format!("{name}: link {target}: {problem}"));
            }
        }
    }
    Ok(problems)
}

fn check_include(target: &Path, selector: Option<&str>) -> Result<(), String> {
    let text = fs::read_to_string(target).map_err(|error| format!("cannot read it: {error}"))?;
    let Some(selector) = selector else {
        return Ok(());
    };
    let is_line_range = selector.chars().all(|c| c.is_ascii_digit() || c == ':');
    if !is_line_range {
        let begin = format!("ANCHOR: {selector}");
        let end = format!("ANCHOR_END: {selector}");
        if !text.lines().any(|line| line.trim_end().ends_with(&begin)) || !text.contains(&end) {
            return Err(format!("no anchor named {selector:?}"));
        }
        return Ok(());
    }
    // Snapshot files start with a `---` header; an include must start right after it.
    if target.extension().is_some_and(|ext| ext == "snap") {
        let header_lines = 1
            + text
                .lines()
                .skip(1)
                .position(|line| line == "---")
                .unwrap_or(0)
            + 1;
        let start: usize = selector
            .split(':')
            .next()
            .unwrap_or("")
            .parse()
            .unwrap_or(0);
        if start != header_lines + 1 {
            return Err(format!(
                "the snapshot's text starts at line {}, not {start}",
                header_lines + 1
            ));
        }
    }
    Ok(())
}

fn check_link(page: &Path, target: &str) -> Result<(), String> {
    let (file, fragment) = match target.split_once('#') {
        Some((file, fragment)) => (file, Some(fragment)),
        None => (target, None),
    };
    let linked = if file.is_empty() {
        page.to_path_buf()
    } else {
        page.parent().expect("a page is in a folder").join(file)
    };
    if !linked.exists() {
        return Err("no such file".to_string());
    }
    if let (Some(fragment), Some("md")) = (fragment, linked.extension().and_then(|e| e.to_str())) {
        let text = fs::read_to_string(&linked).map_err(|error| error.to_string())?;
        if !heading_ids(&text).contains(fragment) {
            return Err(format!("no heading with id {fragment:?}"));
        }
    }
    Ok(())
}

/// The ids mdBook gives headings: lower case, spaces to dashes, other punctuation dropped.
fn heading_ids(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| {
            line.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// The section numbers mdBook gives the numbered chapters of SUMMARY.md: "1", "1.1", ...
fn section_numbers(summary: &str) -> BTreeSet<String> {
    let mut counters: Vec<u32> = Vec::new();
    let mut numbers = BTreeSet::new();
    for line in summary.lines() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with("- [") {
            continue;
        }
        let depth = (line.len() - trimmed.len()) / 2;
        counters.truncate(depth + 1);
        while counters.len() <= depth {
            counters.push(0);
        }
        counters[depth] += 1;
        let number: Vec<String> = counters.iter().map(u32::to_string).collect();
        numbers.insert(number.join("."));
    }
    numbers
}

/// Every exercise's `(book N.M)` must name a section that exists, or its hint sends the
/// learner to the wrong page.
fn check_exercise_sections(summary: &Path) -> Result<Vec<String>> {
    let sections = section_numbers(&fs::read_to_string(summary)?);
    let mut problems = Vec::new();
    for chapter in gen::chapters()? {
        for (file, exercise) in gen::exercises_of(&chapter)? {
            if !sections.contains(&exercise.section) {
                problems.push(format!(
                    "exercise {} (solutions/{}/{}) points to book section {}, which does not exist",
                    exercise.number,
                    chapter.slug,
                    file.display(),
                    exercise.section
                ));
            }
        }
    }
    Ok(problems)
}

/// After the build: an include mdBook could not resolve is left in the page as text.
fn check_output(build: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut pending = vec![build.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot read {dir:?}"))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "html") {
                let html = fs::read_to_string(&path)?;
                if html.contains("{{#include") {
                    problems.push(format!("{}: an include was not resolved", path.display()));
                }
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::section_numbers;

    #[test]
    fn sections_are_numbered_as_mdbook_numbers_them() {
        let summary = "[Welcome](README.md)\n# Part\n- [One](a.md)\n  - [One one](b.md)\n  - [One two](c.md)\n- [Two](d.md)\n  - [Two one](e.md)\n";
        let numbers: Vec<String> = section_numbers(summary).into_iter().collect();
        assert_eq!(numbers, ["1", "1.1", "1.2", "2", "2.1"]);
    }
}

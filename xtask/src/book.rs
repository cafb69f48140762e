//! `cargo xtask book`: build the book, then check what mdBook does not: that every
//! `{{#include}}` names a file and anchor that exist (so code is included, never pasted),
//! that an exercise's solution is folded away in `<details>` (so the page that teaches an
//! idea does not give its answer away), that snapshot includes start after insta's
//! header, that headings keep code in backticks, and that every internal link and
//! `#heading` it points to exists. With `--serve`, it then serves the book over HTTP.

use std::collections::BTreeSet;
use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use regex::Regex;

use crate::gen;

mod render;
use crate::workspace;

/// The options of `cargo xtask book`.
#[derive(clap::Args)]
pub struct BookArgs {
    /// After the checks, serve the book over HTTP and rebuild it when a page changes.
    #[arg(long)]
    serve: bool,
    /// After the checks, open every page in headless Chromium, in a light and a dark
    /// theme, and check that it renders with all its pictures.
    #[arg(long)]
    render: bool,
    /// The address to listen on with --serve. The default, 0.0.0.0, listens on every
    /// interface, so a browser on another machine can reach a book built on a VM.
    #[arg(
        long,
        value_name = "ADDRESS",
        default_value = "0.0.0.0",
        requires = "serve"
    )]
    hostname: String,
    /// The port to listen on with --serve.
    #[arg(long, default_value_t = 3000, requires = "serve")]
    port: u16,
}

pub fn run(args: &BookArgs) -> Result<()> {
    let build = build()?;
    if args.render {
        render::check(&build)?;
    }
    if args.serve {
        serve(&build, &args.hostname, args.port)?;
    }
    Ok(())
}

/// Checks the sources, builds the book and checks the result. Returns the build
/// directory.
pub fn build() -> Result<PathBuf> {
    let book = workspace::root().join("book");
    let mut problems = check_sources(&book.join("src"))?;
    problems.extend(check_exercise_sections(&book.join("src/SUMMARY.md"))?);
    problems.extend(check_code_references(
        &workspace::root(),
        &book.join("src"),
    )?);
    let mdbook = Command::new("mdbook").arg("--version").output();
    if mdbook.is_err() {
        bail!("mdbook is not installed: `cargo install --locked mdbook --version 0.5.4`");
    }
    workspace::run(Command::new("mdbook").arg("build").arg(&book))?;
    let build = book.join("build");
    problems.extend(check_output(&build)?);
    if !problems.is_empty() {
        bail!(
            "the book has {} problems:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    println!("book built, with every include, heading and internal link checked:");
    println!("  {}", build.join("index.html").display());
    println!("open that file in a browser, or serve it with `cargo xtask book --serve`");
    Ok(build)
}

/// `mdbook serve`: serves the book and rebuilds it when a page changes, until Ctrl-C.
fn serve(build: &Path, hostname: &str, port: u16) -> Result<()> {
    let book = build.parent().expect("the build is inside book/");
    println!("serving the book until you press Ctrl-C; open one of:");
    for url in urls(hostname, port) {
        println!("  {url}");
    }
    // A page changed while serving is rebuilt by mdBook alone: run `cargo xtask book`
    // again to check it.
    workspace::run(
        Command::new("mdbook")
            .arg("serve")
            .arg(book)
            .args(["--hostname", hostname])
            .args(["--port", &port.to_string()]),
    )
}

/// Where a browser can reach the book. For 0.0.0.0 (every interface): this machine by
/// name, and the address of the interface that leads out, which is the one a browser on
/// another machine can usually reach.
fn urls(hostname: &str, port: u16) -> Vec<String> {
    if hostname != "0.0.0.0" {
        return vec![format!("http://{hostname}:{port}/")];
    }
    let mut urls = vec![format!("http://localhost:{port}/  (on this machine)")];
    // Connecting a UDP socket sends nothing: it only asks the kernel for the route, and
    // so for the local address it would use. 192.0.2.1 is a documentation address (RFC
    // 5737).
    let outward = UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| socket.connect("192.0.2.1:9").map(|()| socket))
        .and_then(|socket| socket.local_addr());
    if let Ok(address) = outward {
        urls.push(format!(
            "http://{}:{port}/  (from another machine)",
            address.ip()
        ));
    }
    urls
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
    let include =
        Regex::new(r"\{\{#(?:include|rustdoc_include) ([^}:]+)(?::([^}]*))?\}\}")?;
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
        let mut in_details = false;
        let mut in_fence = false;
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            let at = format!("{name}:{}", index + 1);
            let trimmed = line.trim();
            if trimmed.starts_with("```") {
                in_fence = !in_fence;
            }
            if trimmed.starts_with("<details") {
                in_details = true;
            }
            if trimmed.starts_with("</details") {
                in_details = false;
            }
            problems.extend(
                check_details_spacing(&lines, index).map(|p| format!("{at}: {p}")),
            );
            if !in_fence && line.starts_with('#') {
                if let Err(problem) = check_heading(line) {
                    problems.push(format!("{at}: {problem}"));
                }
            }
            for capture in include.captures_iter(line) {
                let target = dir.join(&capture[1]);
                let selector = capture.get(2).map(|m| m.as_str());
                let shown = &capture[0];
                if let Err(problem) = check_include(&target, selector) {
                    problems.push(format!("{at}: {shown}: {problem}"));
                } else if !in_details && gives_an_answer_away(&target, selector) {
                    problems.push(format!(
                        "{at}: {shown}: an exercise's solution must be folded away in \
                         <details>, under the learner's copy from chapters/"
                    ));
                }
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

/// mdBook turns `--` into a dash and `"` into curly quotes in headings, as in any text:
/// code in a heading must be in backticks to come out as typed.
fn check_heading(line: &str) -> Result<(), String> {
    let outside_code: String = line.split('`').step_by(2).collect();
    if outside_code.contains("--") || outside_code.contains('"') {
        return Err(format!(
            "heading {line:?}: put code in backticks, or `--` and quotes come out as a \
             dash and curly quotes"
        ));
    }
    Ok(())
}

/// Markdown inside an HTML block such as `<details>` is rendered only after a blank line.
fn check_details_spacing(lines: &[&str], index: usize) -> Option<String> {
    let line = lines[index].trim();
    let blank = |i: usize| lines.get(i).is_none_or(|l| l.trim().is_empty());
    if line.ends_with("</summary>") && !blank(index + 1) {
        return Some(
            "a blank line must follow </summary>, or the code is not rendered".into(),
        );
    }
    if line.starts_with("</details") && (index == 0 || !blank(index - 1)) {
        return Some(
            "a blank line must come before </details>, or the code is not rendered"
                .into(),
        );
    }
    None
}

/// An include of a region of `solutions/` that holds an exercise shows its answer.
fn gives_an_answer_away(target: &Path, selector: Option<&str>) -> bool {
    let Some(anchor) = selector else {
        return false;
    };
    // gen's marker-free copies of the answers, in book/answers: every include is an
    // answer.
    if target
        .components()
        .any(|part| part.as_os_str() == "answers")
    {
        return true;
    }
    let in_solutions = target
        .components()
        .any(|part| part.as_os_str() == "solutions");
    let Ok(text) = fs::read_to_string(target) else {
        return false;
    };
    let begin = format!("ANCHOR: {anchor}");
    let end = format!("ANCHOR_END: {anchor}");
    in_solutions
        && text
            .lines()
            .skip_while(|line| !line.trim_end().ends_with(&begin))
            .take_while(|line| !line.contains(&end))
            .any(|line| line.trim_start().starts_with("// EXERCISE"))
}

fn check_include(target: &Path, selector: Option<&str>) -> Result<(), String> {
    let text =
        fs::read_to_string(target).map_err(|error| format!("cannot read it: {error}"))?;
    let Some(selector) = selector else {
        return Ok(());
    };
    let is_line_range = selector.chars().all(|c| c.is_ascii_digit() || c == ':');
    if !is_line_range {
        let begin = format!("ANCHOR: {selector}");
        let end = format!("ANCHOR_END: {selector}");
        if !text.lines().any(|line| line.trim_end().ends_with(&begin))
            || !text.contains(&end)
        {
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
    if let (Some(fragment), Some("md")) =
        (fragment, linked.extension().and_then(|e| e.to_str()))
    {
        let text = fs::read_to_string(&linked).map_err(|error| error.to_string())?;
        if !heading_ids(&text).contains(fragment) {
            return Err(format!("no heading with id {fragment:?}"));
        }
    }
    Ok(())
}

/// The ids mdBook gives headings: lower case, spaces to dashes, other punctuation
/// dropped.
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

// ANCHOR: code_references
/// Every place the kit's code sends a reader to the book must exist, or an error that
/// teaches sends the learner nowhere: `book 6.3`, `book section 6.3`, `Book: section
/// 6.3` and `Book: chapter 7` name numbered sections; `Book: "Setting up"` and `see
/// \"Not root?\"` name a page or a heading (of the book, or of the README).
fn check_code_references(root: &Path, src: &Path) -> Result<Vec<String>> {
    let sections = section_numbers(&fs::read_to_string(src.join("SUMMARY.md"))?);
    let titles = headings_and_titles(root, src)?;
    let mut problems = Vec::new();
    for file in rust_files(root)? {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let (numbers, names) = references_in(&fs::read_to_string(&file)?);
        for number in numbers.iter().filter(|n| !sections.contains(*n)) {
            problems.push(format!(
                "{shown}: names book section {number}, which does not exist"
            ));
        }
        for name in names.iter().filter(|n| !titles.contains(*n)) {
            problems.push(format!(
                "{shown}: names \"{name}\", which is no page or heading of the book or the README"
            ));
        }
    }
    problems.sort();
    problems.dedup();
    Ok(problems)
}

/// The book sections (`6.3`, `7`) and the pages or headings (`Setting up`) a source
/// file's text sends its reader to.
fn references_in(text: &str) -> (Vec<String>, Vec<String>) {
    let numbered = Regex::new(r"(?i)book:? (?:section |chapter )?(\d+(?:\.\d+)?)\b")
        .expect("a valid pattern");
    let named = Regex::new(r#"(?:Book: "([A-Z][^"]+)"|see \\"([A-Z][^\\]+)\\")"#)
        .expect("a valid pattern");
    // A name may run over two lines of a comment or a string: read it as one line.
    let line_break =
        Regex::new(r#"\s*(?:\\\n|\n)\s*(?://[!/]?\s*)?"#).expect("a valid pattern");
    let text = line_break.replace_all(text, " ");
    let numbers = numbered
        .captures_iter(&text)
        .map(|found| found[1].to_string())
        .collect();
    let names = named
        .captures_iter(&text)
        .filter_map(|found| found.get(1).or(found.get(2)))
        .map(|name| name.as_str().to_string())
        .collect();
    (numbers, names)
}
// ANCHOR_END: code_references

/// The `.rs` files of the kit's own code: solutions/, xtask/, facts/ and the tests'
/// support (the learner's chapters/ are copies).
fn rust_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> =
        ["solutions", "xtask/src", "facts/src", "tests/support"]
            .iter()
            .map(|dir| root.join(dir))
            .collect();
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot read {dir:?}"))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// Every heading of the book's pages and of the README, and every title in SUMMARY.md.
fn headings_and_titles(root: &Path, src: &Path) -> Result<BTreeSet<String>> {
    let title = Regex::new(r"\[([^\]]+)\]\(")?;
    let mut names = BTreeSet::new();
    let summary = fs::read_to_string(src.join("SUMMARY.md"))?;
    names.extend(
        title
            .captures_iter(&summary)
            .map(|found| found[1].to_string()),
    );
    let mut pages = markdown_files(src)?;
    pages.push(root.join("README.md"));
    for page in pages {
        for line in fs::read_to_string(&page)?.lines() {
            if let Some(heading) = line.strip_prefix('#') {
                names.insert(heading.trim_start_matches('#').trim().to_string());
            }
        }
    }
    Ok(names)
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
                    problems
                        .push(format!("{}: an include was not resolved", path.display()));
                }
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::{check_details_spacing, check_heading, references_in, section_numbers};

    #[test]
    fn the_codes_references_to_the_book_are_found_even_across_lines() {
        let text = concat!(
            "//! Book: section 9.3. And see \\\"Not\n",
            "//! root?\\\" (book 6.3)\n",
            "//! Book: \"How this\n",
            "//! kit is built\", Book: chapter 7, (book section {})",
        );
        let (numbers, names) = references_in(text);
        assert_eq!(numbers, ["9.3", "6.3", "7"]);
        assert_eq!(names, ["Not root?", "How this kit is built"]);
    }

    #[test]
    fn code_in_a_heading_must_be_in_backticks() {
        assert!(check_heading("## The kit's choice: --init").is_err());
        assert!(check_heading("## pivot_root(\".\", \".\")").is_err());
        assert!(check_heading("## The kit's choice: `--init`").is_ok());
        assert!(check_heading("## `pivot_root(\".\", \".\")`").is_ok());
    }

    #[test]
    fn code_in_details_needs_blank_lines_around_it() {
        let folded = [
            "<details>",
            "<summary>S</summary>",
            "",
            "```",
            "```",
            "",
            "</details>",
        ];
        assert!((0..folded.len()).all(|i| check_details_spacing(&folded, i).is_none()));
        let tight = [
            "<details>",
            "<summary>S</summary>",
            "```",
            "```",
            "</details>",
        ];
        assert!(check_details_spacing(&tight, 1).is_some());
        assert!(check_details_spacing(&tight, 4).is_some());
    }

    #[test]
    fn sections_are_numbered_as_mdbook_numbers_them() {
        let summary = "[Welcome](README.md)\n# Part\n- [One](a.md)\n  - [One one](b.md)\n  - [One two](c.md)\n- [Two](d.md)\n  - [Two one](e.md)\n";
        let numbers: Vec<String> = section_numbers(summary).into_iter().collect();
        assert_eq!(numbers, ["1", "1.1", "1.2", "2", "2.1"]);
    }
}

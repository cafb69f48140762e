//! `cargo xtask gen`: the learner's `chapters/` are made from the reference `solutions/`, so
//! the reference is the single source of truth. Book: "How this kit is built".
//!
//! For each `solutions/NN-slug`, `chapters/NN-slug` gets the same files with: the package
//! renamed `chapterNN`, each exercise region replaced by a `todo!()` (see `exercises`), and a
//! line at the top of each file saying where it came from. `--check` writes nothing and fails
//! if `chapters/` is not exactly that.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use regex::Regex;

use crate::exercises::{self, Exercise};
use crate::workspace;

/// A reference crate: `solutions/03-pid-namespace` is chapter 3, slug `03-pid-namespace`.
#[derive(Debug, Clone)]
pub struct Chapter {
    pub number: u32,
    pub slug: String,
}

impl Chapter {
    pub fn solution_dir(&self) -> PathBuf {
        workspace::root().join("solutions").join(&self.slug)
    }

    pub fn learner_dir(&self) -> PathBuf {
        workspace::root().join("chapters").join(&self.slug)
    }

    pub fn solution_name(&self) -> String {
        format!("solution{:02}", self.number)
    }

    pub fn learner_name(&self) -> String {
        format!("chapter{:02}", self.number)
    }
}

/// Every chapter in `solutions/`, in order.
pub fn chapters() -> Result<Vec<Chapter>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(workspace::root().join("solutions"))? {
        let slug = entry?.file_name().to_string_lossy().into_owned();
        let number = slug
            .split('-')
            .next()
            .and_then(|digits| digits.parse().ok())
            .with_context(|| format!("solutions/{slug} does not start with a chapter number"))?;
        found.push(Chapter { number, slug });
    }
    found.sort_by_key(|chapter| chapter.number);
    Ok(found)
}

pub fn chapter(number: u32) -> Result<Chapter> {
    chapters()?
        .into_iter()
        .find(|chapter| chapter.number == number)
        .with_context(|| format!("there is no chapter {number} in solutions/"))
}

pub fn run(check: bool) -> Result<()> {
    let mut stale = Vec::new();
    for chapter in chapters()? {
        let files = learner_files(&chapter, &|_| false)?;
        if check {
            stale.extend(differences(&chapter.learner_dir(), &files)?);
        } else {
            write_crate(&chapter.learner_dir(), &files)?;
            println!("generated chapters/{}", chapter.slug);
        }
    }
    if !stale.is_empty() {
        bail!(
            "chapters/ is not what `cargo xtask gen` makes from solutions/:\n  {}\nrun `cargo xtask gen`",
            stale.join("\n  ")
        );
    }
    if check {
        println!("chapters/ is up to date with solutions/");
    }
    Ok(())
}

/// The learner's crate as file contents, by path relative to the crate.
pub fn learner_files(
    chapter: &Chapter,
    keep_solved: &dyn Fn(&Exercise) -> bool,
) -> Result<BTreeMap<PathBuf, String>> {
    let source_dir = chapter.solution_dir();
    let own_name = Regex::new(&format!(r"\b{}\b", chapter.solution_name())).expect("valid regex");
    let mut files = BTreeMap::new();
    for relative in source_files(&source_dir)? {
        let text = fs::read_to_string(source_dir.join(&relative))?;
        let origin = format!("solutions/{}/{}", chapter.slug, relative.display());
        let generated = if relative.extension().is_some_and(|ext| ext == "rs") {
            let (unsolved, _) =
                exercises::rewrite(&text, keep_solved).with_context(|| format!("in {origin}"))?;
            let renamed = own_name.replace_all(&unsolved, chapter.learner_name().as_str());
            rustfmt(&rust_header(&origin, &relative, &renamed))
                .with_context(|| format!("formatting the copy of {origin}"))?
        } else {
            manifest(&origin, &text, chapter)
        };
        files.insert(relative, generated);
    }
    Ok(files)
}

/// `Cargo.toml` and every file under `src/`, relative to the crate.
fn source_files(crate_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![PathBuf::from("Cargo.toml")];
    let mut pending = vec![PathBuf::from("src")];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(crate_dir.join(&dir))? {
            let entry = entry?;
            let relative = dir.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                pending.push(relative);
            } else {
                files.push(relative);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The text as `cargo fmt` would leave it, so formatting the workspace never makes
/// `chapters/` differ from what the generator writes.
fn rustfmt(text: &str) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start rustfmt (rustup component add rustfmt)")?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = text.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output()?;
    writer.join().expect("the writer does not panic")?;
    if !output.status.success() {
        bail!("rustfmt failed");
    }
    Ok(String::from_utf8(output.stdout)?)
}

fn rust_header(origin: &str, relative: &Path, text: &str) -> String {
    let mut out = format!(
        "// Your copy of {origin}, made by `cargo xtask gen`. Do the exercises marked TODO.\n"
    );
    let is_crate_root = relative == Path::new("src/lib.rs") || relative == Path::new("src/main.rs");
    if !is_crate_root {
        out.push_str(text);
        return out;
    }
    // Inner attributes go after the `//!` lines. Until the exercises are done, some names
    // are not used yet, and code after a `todo!()` cannot be reached: do not warn of that.
    let doc_lines = text
        .lines()
        .take_while(|line| line.starts_with("//!"))
        .count();
    for (index, line) in text.lines().enumerate() {
        if index == doc_lines {
            out.push_str("\n#![allow(unused, unreachable_code)]\n");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn manifest(origin: &str, text: &str, chapter: &Chapter) -> String {
    let renamed = text
        .replace(
            &format!("name = \"{}\"", chapter.solution_name()),
            &format!("name = \"{}\"", chapter.learner_name()),
        )
        .replace(", reference:", ", your copy:");
    format!("# Your copy of {origin}, made by `cargo xtask gen`.\n{renamed}")
}

/// The paths under `dir` that differ from `files`, are missing, or should not be there.
fn differences(dir: &Path, files: &BTreeMap<PathBuf, String>) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    for (relative, text) in files {
        let path = dir.join(relative);
        match fs::read_to_string(&path) {
            Ok(existing) if &existing == text => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(_) => stale.push(format!("{} is missing", path.display())),
        }
    }
    if dir.exists() {
        for relative in source_files(dir)? {
            if !files.contains_key(&relative) {
                stale.push(format!(
                    "{} should not be there",
                    dir.join(relative).display()
                ));
            }
        }
    }
    Ok(stale)
}

/// Writes the crate's files and removes any the generator does not make.
pub fn write_crate(dir: &Path, files: &BTreeMap<PathBuf, String>) -> Result<()> {
    if dir.exists() {
        for relative in source_files(dir)? {
            if !files.contains_key(&relative) {
                fs::remove_file(dir.join(relative))?;
            }
        }
    }
    for (relative, text) in files {
        let path = dir.join(relative);
        fs::create_dir_all(path.parent().expect("a file has a parent"))?;
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            fs::write(&path, text).with_context(|| format!("cannot write {path:?}"))?;
        }
    }
    Ok(())
}

/// Every exercise of a chapter, with the file it is in.
pub fn exercises_of(chapter: &Chapter) -> Result<Vec<(PathBuf, Exercise)>> {
    let mut all = Vec::new();
    for relative in source_files(&chapter.solution_dir())? {
        if relative.extension().is_some_and(|ext| ext == "rs") {
            let text = fs::read_to_string(chapter.solution_dir().join(&relative))?;
            for exercise in exercises::find(&text)? {
                all.push((relative.clone(), exercise));
            }
        }
    }
    all.sort_by(|a, b| a.1.number.cmp(&b.1.number));
    Ok(all)
}

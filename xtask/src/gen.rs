//! `cargo xtask gen`: the learner's `chapters/` are made from the reference `solutions/`,
//! so the reference is the single source of truth. Book: "How this kit is built".
//!
//! For each `solutions/NN-slug`, `chapters/NN-slug` gets the same files with: the package
//! renamed `chapterNN`, each exercise region replaced by a `todo!()` (see `exercises`),
//! and a line at the top of each file saying where it came from. `--check` writes nothing
//! and fails if `chapters/` is not exactly that.
//!
//! gen never destroys a learner's work: it replaces only files whose text is what it
//! wrote last time, as `chapters/.generated` records (see `generated`), unless told
//! `--force`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::exercises::{self, Exercise, Form};
use crate::{generated, rename, wiring, workspace};

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
        self.learner_dir_in(&workspace::root())
    }

    /// The learner crate in the workspace at `root`: the real one or a scratch copy.
    pub fn learner_dir_in(&self, root: &Path) -> PathBuf {
        chapters_dir(root).join(&self.slug)
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
            .with_context(|| {
                format!("solutions/{slug} does not start with a chapter number")
            })?;
        found.push(Chapter { number, slug });
    }
    found.sort_by_key(|chapter| chapter.number);
    Ok(found)
}

/// The chapters the course plans (see the book's table of contents): the ten and the
/// bonus; `solutions/` holds the ones written so far.
pub const PLANNED_CHAPTERS: std::ops::RangeInclusive<u32> = 1..=byoc_facts::BONUS_CHAPTER;

/// The newest of the ten chapters written so far: the runtime a person drives, which the
/// demo runs and the bench times (the bonus chapter's is driven by podman).
pub fn newest_of_the_ten() -> Result<Chapter> {
    chapters()?
        .into_iter()
        .rfind(|chapter| chapter.number <= byoc_facts::LAST_CHAPTER)
        .context("there is no chapter in solutions/")
}

/// Chapter `number`, or an error that says whether it is planned and which ones exist.
pub fn chapter(number: u32) -> Result<Chapter> {
    let all = chapters()?;
    if let Some(found) = all.iter().find(|chapter| chapter.number == number) {
        return Ok(found.clone());
    }
    let written: Vec<String> = all.iter().map(|c| c.number.to_string()).collect();
    let written = written.join(", ");
    if PLANNED_CHAPTERS.contains(&number) {
        bail!("chapter {number} is planned but not written yet; the chapters so far are {written}");
    }
    bail!(
        "there is no chapter {number}: the course plans chapters {} to {}, and the ones so far are {written}",
        PLANNED_CHAPTERS.start(),
        PLANNED_CHAPTERS.end()
    )
}

/// The folder of the learner crates in a workspace.
pub fn chapters_dir(root: &Path) -> PathBuf {
    root.join("chapters")
}

/// `cargo xtask gen [--check] [--force]`.
pub fn run(check: bool, force: bool) -> Result<()> {
    let chapters_dir = chapters_dir(&workspace::root());
    let files = all_learner_files()?;
    let answers = answer_files()?;
    if check {
        // A chapter left out of the workspace, the tests, the book or the README fails
        // here.
        wiring::check(&workspace::root(), &chapters()?)?;
        check_answers(&answers)?;
        return check_up_to_date(&chapters_dir, &files);
    }
    let edited = edited_files(&chapters_dir, &files)?;
    if !edited.is_empty() && !force {
        bail!(
            "these files in chapters/ have changes that `cargo xtask gen` did not make:\n  {}\n\
             gen would overwrite or remove them. To keep your work, copy the files \
             somewhere else or commit them first. To replace them anyway: cargo xtask gen --force",
            edited.join("\n  ")
        );
    }
    for chapter in chapters()? {
        write_crate(&chapter.learner_dir(), &files_of(&files, &chapter))?;
        println!("generated chapters/{}", chapter.slug);
    }
    let manifest = chapters_dir.join(generated::FILE_NAME);
    fs::write(&manifest, generated::render(&files))
        .with_context(|| format!("cannot write {manifest:?}"))?;
    write_answers(&answers)?;
    println!("generated {ANSWERS_DIR}");
    Ok(())
}

/// Where gen writes the book's folded answers, from the top of the workspace.
pub const ANSWERS_DIR: &str = "book/answers";

/// The book's folded answers: each file of `solutions/` that holds an exercise, with each
/// region reduced to its reference code. mdBook anchors cannot leave lines out, so the
/// book includes these copies, never the markers and hints of `solutions/`.
fn answer_files() -> Result<BTreeMap<PathBuf, String>> {
    let mut all = BTreeMap::new();
    for chapter in chapters()? {
        let source_dir = chapter.solution_dir();
        for relative in source_files(&source_dir)? {
            if relative.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let text = fs::read_to_string(source_dir.join(&relative))?;
            let origin = format!("solutions/{}/{}", chapter.slug, relative.display());
            let (answer, found) = exercises::rewrite(&text, &|_| Form::Answer)
                .with_context(|| format!("in {origin}"))?;
            if found.is_empty() {
                continue;
            }
            let header = format!(
                "// {origin} without its exercise markers, made by `cargo xtask gen` for \
                 the book's folded answers.\n"
            );
            let formatted = rustfmt(&format!("{header}{answer}"))
                .with_context(|| format!("formatting the answers of {origin}"))?;
            all.insert(Path::new(&chapter.slug).join(relative), formatted);
        }
    }
    Ok(all)
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let Ok(entries) = fs::read_dir(dir.join(&relative)) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn write_answers(answers: &BTreeMap<PathBuf, String>) -> Result<()> {
    let dir = workspace::root().join(ANSWERS_DIR);
    for relative in files_under(&dir)? {
        if !answers.contains_key(&relative) {
            fs::remove_file(dir.join(relative))?;
        }
    }
    for (relative, text) in answers {
        let path = dir.join(relative);
        fs::create_dir_all(path.parent().expect("a file has a parent"))?;
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            fs::write(&path, text).with_context(|| format!("cannot write {path:?}"))?;
        }
    }
    Ok(())
}

fn check_answers(answers: &BTreeMap<PathBuf, String>) -> Result<()> {
    let dir = workspace::root().join(ANSWERS_DIR);
    let mut stale = Vec::new();
    for (relative, text) in answers {
        if fs::read_to_string(dir.join(relative)).ok().as_deref() != Some(text.as_str()) {
            stale.push(format!("{ANSWERS_DIR}/{} differs", relative.display()));
        }
    }
    for relative in files_under(&dir)? {
        if !answers.contains_key(&relative) {
            stale.push(format!(
                "{ANSWERS_DIR}/{} should not be there",
                relative.display()
            ));
        }
    }
    if !stale.is_empty() {
        bail!(
            "{ANSWERS_DIR} is not what `cargo xtask gen` makes from solutions/:\n  {}\nrun `cargo xtask gen`",
            stale.join("\n  ")
        );
    }
    Ok(())
}

/// Every learner file gen makes, by path under `chapters/`.
fn all_learner_files() -> Result<BTreeMap<PathBuf, String>> {
    let mut all = BTreeMap::new();
    for chapter in chapters()? {
        check_numbers(&chapter, &exercises_of(&chapter)?)?;
        for (relative, text) in learner_files(&chapter, &|_| Form::Todo)? {
            all.insert(Path::new(&chapter.slug).join(relative), text);
        }
    }
    Ok(all)
}

/// One chapter's files, by path relative to its crate.
fn files_of(
    all: &BTreeMap<PathBuf, String>,
    chapter: &Chapter,
) -> BTreeMap<PathBuf, String> {
    all.iter()
        .filter_map(|(path, text)| {
            let relative = path.strip_prefix(&chapter.slug).ok()?;
            Some((relative.to_path_buf(), text.clone()))
        })
        .collect()
}

fn check_up_to_date(
    chapters_dir: &Path,
    files: &BTreeMap<PathBuf, String>,
) -> Result<()> {
    let mut stale = Vec::new();
    for chapter in chapters()? {
        stale.extend(differences(
            &chapter.learner_dir(),
            &files_of(files, &chapter),
        )?);
    }
    let manifest = chapters_dir.join(generated::FILE_NAME);
    if fs::read_to_string(&manifest).ok() != Some(generated::render(files)) {
        stale.push(format!("{} differs", manifest.display()));
    }
    if !stale.is_empty() {
        bail!(
            "chapters/ is not what `cargo xtask gen` makes from solutions/:\n  {}\nrun `cargo xtask gen`",
            stale.join("\n  ")
        );
    }
    println!("chapters/ is up to date with solutions/");
    Ok(())
}

/// The learner files that gen would overwrite or remove and that hold text gen did not
/// write: the learner's work.
fn edited_files(
    chapters_dir: &Path,
    files: &BTreeMap<PathBuf, String>,
) -> Result<Vec<String>> {
    let recorded = generated::read(chapters_dir)?;
    let mut edited = Vec::new();
    for chapter in chapters()? {
        let dir = chapter.learner_dir();
        if !dir.exists() {
            continue;
        }
        for relative in source_files(&dir)? {
            let path = Path::new(&chapter.slug).join(&relative);
            let Ok(existing) = fs::read_to_string(dir.join(&relative)) else {
                continue; // not text: gen never wrote it, and write_crate fails clearly
            };
            let new = files.get(&path).map(String::as_str);
            if generated::is_edited(&existing, new, recorded.get(&path).copied()) {
                edited.push(format!("chapters/{}", path.display()));
            }
        }
    }
    Ok(edited)
}

/// The learner's crate as file contents, by path relative to the crate.
pub fn learner_files(
    chapter: &Chapter,
    form_of: &dyn Fn(&Exercise) -> Form,
) -> Result<BTreeMap<PathBuf, String>> {
    let source_dir = chapter.solution_dir();
    let mut files = BTreeMap::new();
    for relative in source_files(&source_dir)? {
        let text = fs::read_to_string(source_dir.join(&relative))?;
        let origin = format!("solutions/{}/{}", chapter.slug, relative.display());
        let generated = if relative.extension().is_some_and(|ext| ext == "rs") {
            let (unsolved, _) = exercises::rewrite(&text, form_of)
                .with_context(|| format!("in {origin}"))?;
            let renamed = rename::rename_identifier(
                &unsolved,
                &chapter.solution_name(),
                &chapter.learner_name(),
            )
            .with_context(|| format!("in {origin}"))?;
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
pub fn source_files(crate_dir: &Path) -> Result<Vec<PathBuf>> {
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

/// The lints the `todo!()` stubs set off, and only those: the whole `unused` group would
/// also hide `unused_must_use`, the warning a learner needs when they forget a `?`. To
/// find them, build the unsolved crates without this line and read the warnings
/// (`dead_code`: chapter 10's stubs leave the helpers their answers call, such as the
/// token request, with no caller yet).
const STUB_LINTS: [&str; 4] = [
    "unused_imports",
    "unused_variables",
    "unused_mut",
    "dead_code",
];

fn rust_header(origin: &str, relative: &Path, text: &str) -> String {
    let mut out = format!(
        "// Your copy of {origin}, made by `cargo xtask gen`. Do the exercises marked TODO.\n"
    );
    let is_crate_root =
        relative == Path::new("src/lib.rs") || relative == Path::new("src/main.rs");
    if !is_crate_root {
        out.push_str(text);
        return out;
    }
    // Inner attributes go after the `//!` lines. Until the exercises are done, the names
    // their code uses are not used yet: do not warn of that, and of nothing else.
    let doc_lines = text
        .lines()
        .take_while(|line| line.starts_with("//!"))
        .count();
    for (index, line) in text.lines().enumerate() {
        if index == doc_lines {
            out.push_str(&format!("\n#![allow({})]\n", STUB_LINTS.join(", ")));
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
    all.sort_by_key(|(_, exercise)| exercise.number);
    Ok(all)
}

/// Each exercise of chapter N is numbered N.M, and no number is used twice: `check` and
/// the book find an exercise by its number.
pub fn check_numbers(chapter: &Chapter, exercises: &[(PathBuf, Exercise)]) -> Result<()> {
    let place = |(file, exercise): &(PathBuf, Exercise)| {
        format!(
            "solutions/{}/{}:{}",
            chapter.slug,
            file.display(),
            exercise.line
        )
    };
    for (index, entry) in exercises.iter().enumerate() {
        let number = entry.1.number;
        if number.chapter != chapter.number {
            bail!(
                "{}: exercise {number} is in chapter {}: number it {}.M",
                place(entry),
                chapter.number,
                chapter.number
            );
        }
        if let Some(twin) = exercises[..index].iter().find(|e| e.1.number == number) {
            bail!(
                "exercise {number} is numbered twice: at {} and at {}; give each its own number",
                place(twin),
                place(entry)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chapter(number: u32) -> Chapter {
        Chapter {
            number,
            slug: format!("{number:02}-test"),
        }
    }

    fn exercise(number: &str, line: usize) -> (PathBuf, Exercise) {
        let exercise = Exercise {
            number: number.parse().unwrap(),
            section: "1.1".into(),
            title: "x".into(),
            line,
            trivial: None,
            hints: Vec::new(),
            body: Vec::new(),
        };
        (PathBuf::from("src/lib.rs"), exercise)
    }

    #[test]
    fn a_crate_root_allows_the_stub_lints_but_not_the_unused_group() {
        let text = rust_header(
            "solutions/x/src/lib.rs",
            Path::new("src/lib.rs"),
            "//! Doc.\nfn f() {}\n",
        );
        let allow = "#![allow(unused_imports, unused_variables, unused_mut, dead_code)]";
        assert!(text.contains(&format!("//! Doc.\n\n{allow}\n")), "{text}");
        // `unused` would take unused_must_use with it: a forgotten `?` must still warn.
        assert!(!text.contains("allow(unused,") && !text.contains("unused_must_use"));
    }

    #[test]
    fn numbers_of_the_chapter_each_used_once_are_fine() {
        let exercises = [exercise("3.1", 1), exercise("3.2", 9), exercise("3.10", 20)];
        check_numbers(&chapter(3), &exercises).unwrap();
    }

    #[test]
    fn a_number_used_twice_is_an_error_naming_both_places() {
        let exercises = [exercise("3.1", 1), exercise("3.1", 9)];
        let error = check_numbers(&chapter(3), &exercises)
            .unwrap_err()
            .to_string();
        assert!(error.contains("numbered twice"), "{error}");
        assert!(
            error.contains("src/lib.rs:1") && error.contains("src/lib.rs:9"),
            "{error}"
        );
    }

    #[test]
    fn an_exercise_of_another_chapter_is_an_error() {
        let error = check_numbers(&chapter(3), &[exercise("2.1", 4)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("exercise 2.1 is in chapter 3"), "{error}");
    }

    /// Item 12 of "What a new learner hit": the hint a learner's copy keeps gives the
    /// idea, never the code. No level-1 hint of any exercise may hold a line of its
    /// answer.
    #[test]
    fn no_hint_in_chapters_holds_a_line_of_its_answer() {
        let mut problems = Vec::new();
        for chapter in chapters().unwrap() {
            for (file, exercise) in exercises_of(&chapter).unwrap() {
                let Some(kept) = exercise.hints.first() else {
                    problems
                        .push(format!("exercise {} has no HINT: line", exercise.number));
                    continue;
                };
                let kept = kept.join(" ");
                for line in &exercise.body {
                    let line = line.trim();
                    // The whole line, and what it binds or returns: `quota_us:
                    // (formula)`.
                    let mut pieces = vec![line];
                    for separator in [": ", " = ", "=> ", "return "] {
                        pieces.extend(line.split_once(separator).map(|(_, rest)| rest));
                    }
                    for code in pieces {
                        let code = code.trim().trim_end_matches([';', '?', ',', '{']);
                        // Short code (`Ok(())`, `})`) says nothing of the answer.
                        if code.len() < 12
                            || line.starts_with("//")
                            || !kept.contains(code)
                        {
                            continue;
                        }
                        problems.push(format!(
                            "exercise {} ({}/{}): its hint holds the code {code:?}",
                            exercise.number,
                            chapter.slug,
                            file.display()
                        ));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

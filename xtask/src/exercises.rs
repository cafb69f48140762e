//! Exercise markers in the reference code, and how an exercise is "unsolved".
//!
//! In `solutions/`, an exercise is a marked region:
//!
//! ```text
//! // EXERCISE 1.2 (book 1.3): make `rootfs` this process's "/"
//! // HINT: the idea, and where to read
//! // HINT 2: what to call
//! // HINT 3: the shape of the code
//! // TRIVIAL: Ok(())
//! ...the reference code...
//! // END EXERCISE 1.2
//! ```
//!
//! In the learner's copy, the code between the hints and the end marker becomes
//! `todo!("exercise 1.2: ... (book section 1.3)")`. A region should end its function, so
//! the `todo!()` is the function's value.
//!
//! Hints are graduated, as rustlings' `hint`. Only the level-1 `// HINT:` lines are
//! copied into `chapters/`: the idea and the section to read, never the code. `// HINT
//! 2:` (what to call) and `// HINT 3:` (the shape of the code) stay in `solutions/`, and
//! `cargo xtask hint N.M` shows them one level at a time, when the learner asks.
//!
//! The `// TRIVIAL:` line names the smallest body that compiles in the region's place
//! (`Ok(())`), or says why there is none (`none (why)`). The course invariant puts that
//! body in and expects the chapter's tests to fail: a test that passes when an exercise
//! does nothing checks nothing. The line is for the kit's authors; learners never see it.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use regex::Regex;

/// An exercise number, "2.3": chapter 2, exercise 3. Compared as numbers, so 3.2 comes
/// before 3.10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Number {
    pub chapter: u32,
    pub index: u32,
}

impl FromStr for Number {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Number> {
        let (chapter, index) = text
            .split_once('.')
            .with_context(|| format!("{text:?} is not an exercise number like 2.1"))?;
        let parse = |part: &str| {
            part.parse::<u32>()
                .with_context(|| format!("{text:?} is not an exercise number like 2.1"))
        };
        Ok(Number {
            chapter: parse(chapter)?,
            index: parse(index)?,
        })
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}.{}", self.chapter, self.index)
    }
}

/// The smallest body that compiles in place of an exercise's code, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trivial {
    /// A Rust expression of the region's type, such as `Ok(())`.
    Body(String),
    /// No body compiles without doing the exercise; the text says why.
    Impossible(String),
}

impl Trivial {
    /// `Ok(())`, or `none (a Result<Infallible> has no Ok value)`.
    fn parse(text: &str) -> Result<Trivial> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("none") {
            let why = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'));
            return match why {
                Some(why) if !why.trim().is_empty() => {
                    Ok(Trivial::Impossible(why.to_string()))
                }
                _ => bail!(
                    "`// TRIVIAL: {text}` must say why in parentheses: `none (why)`"
                ),
            };
        }
        if text.is_empty() {
            bail!("`// TRIVIAL:` needs a Rust expression, or `none (why)`");
        }
        Ok(Trivial::Body(text.to_string()))
    }
}

/// One exercise, as its markers describe it.
#[derive(Debug, Clone)]
pub struct Exercise {
    /// 1.2: chapter 1, exercise 2.
    pub number: Number,
    /// The book section to read, "1.3".
    pub section: String,
    /// What to do, in one line.
    pub title: String,
    /// The 1-based line of the marker in its file.
    pub line: usize,
    /// What the `// TRIVIAL:` line says; `None` when the region has no such line.
    pub trivial: Option<Trivial>,
    /// The hints, by level from 1: `hints[0]` is the text of the `// HINT:` lines, which
    /// the learner's copy keeps; later levels are the `// HINT 2:` lines, then `// HINT
    /// 3:`.
    pub hints: Vec<Vec<String>>,
    /// The reference code between the TRIVIAL line and the end marker.
    pub body: Vec<String>,
}

impl Exercise {
    /// The `todo!()` message; `cargo xtask check` looks for `todo!`s that start with
    /// [`Exercise::todo_prefix`].
    pub fn todo_message(&self) -> String {
        format!(
            "{} {} (book section {})",
            todo_prefix(self.number),
            self.title,
            self.section
        )
    }
}

/// How a `todo!()` message for exercise `number` starts: "exercise 2.1:".
pub fn todo_prefix(number: Number) -> String {
    format!("exercise {number}:")
}

/// What a region becomes in a generated copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The reference code, as it is: a chapter where this exercise is done.
    Solved,
    /// `todo!("exercise N.M: ...")`: the learner's starting point.
    Todo,
    /// The `// TRIVIAL:` body: an exercise that compiles but does nothing.
    Trivial,
    /// The reference code alone, without the markers and hints: the book's folded answer.
    Answer,
}

/// A source file cut into plain lines and exercise regions.
enum Piece<'a> {
    Line(&'a str),
    Region(Box<Region<'a>>),
}

struct Region<'a> {
    exercise: Exercise,
    indent: &'a str,
    begin: &'a str,
    /// The level-1 hint lines, as they are: the ones a learner's copy keeps.
    hints: Vec<&'a str>,
    body: Vec<&'a str>,
    end: &'a str,
}

struct Markers {
    begin: Regex,
    hint: Regex,
    trivial: Regex,
    end: Regex,
}

impl Markers {
    fn new() -> Markers {
        Markers {
            begin: Regex::new(r"^(\s*)// EXERCISE (\d+\.\d+) \(book (\d+\.\d+)\): (.+)$")
                .expect("valid regex"),
            hint: Regex::new(r"^\s*// HINT(?: ([1-9]))?: (.*)$").expect("valid regex"),
            trivial: Regex::new(r"^\s*// TRIVIAL:(.*)$").expect("valid regex"),
            end: Regex::new(r"^\s*// END EXERCISE (\d+\.\d+)$").expect("valid regex"),
        }
    }
}

/// The exercises in one source file, in order.
pub fn find(source: &str) -> Result<Vec<Exercise>> {
    Ok(parse(source)?
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Region(region) => Some(region.exercise),
            Piece::Line(_) => None,
        })
        .collect())
}

/// A generated version of a source file: each exercise in the form `form_of` picks.
/// `// TRIVIAL:` lines are never copied. Returns the new text and the exercises found.
pub fn rewrite(
    source: &str,
    form_of: &dyn Fn(&Exercise) -> Form,
) -> Result<(String, Vec<Exercise>)> {
    let mut output = String::new();
    let mut found = Vec::new();
    for piece in parse(source)? {
        match piece {
            Piece::Line(line) => push_line(&mut output, line),
            Piece::Region(region) => {
                render(&region, form_of(&region.exercise), &mut output)?;
                found.push(region.exercise);
            }
        }
    }
    Ok((output, found))
}

fn parse(source: &str) -> Result<Vec<Piece<'_>>> {
    let markers = Markers::new();
    let mut pieces = Vec::new();
    let mut lines = source.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let Some(begin) = markers.begin.captures(line) else {
            if markers.end.is_match(line) {
                bail!(
                    "line {}: END EXERCISE without a matching EXERCISE",
                    index + 1
                );
            }
            if markers.trivial.is_match(line) {
                bail!("line {}: a TRIVIAL line outside an exercise", index + 1);
            }
            pieces.push(Piece::Line(line));
            continue;
        };
        let exercise = Exercise {
            number: begin[2].parse()?,
            section: begin[3].to_string(),
            title: begin[4].to_string(),
            line: index + 1,
            trivial: None,
            hints: Vec::new(),
            body: Vec::new(),
        };
        let region = Region {
            exercise,
            indent: begin.get(1).map_or("", |m| m.as_str()),
            begin: line,
            hints: Vec::new(),
            body: Vec::new(),
            end: "",
        };
        pieces.push(Piece::Region(Box::new(parse_region(
            region, &mut lines, &markers,
        )?)));
    }
    Ok(pieces)
}

/// Reads a region's hints, its TRIVIAL line, its code and its end marker.
fn parse_region<'a>(
    mut region: Region<'a>,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
    markers: &Markers,
) -> Result<Region<'a>> {
    let number = region.exercise.number;
    for (index, line) in lines {
        if let Some(end) = markers.end.captures(line) {
            if end[1] != number.to_string() {
                bail!("exercise {number} is closed by END EXERCISE {}", &end[1]);
            }
            region.end = line;
            region.exercise.body =
                region.body.iter().map(|line| line.to_string()).collect();
            return Ok(region);
        }
        if let Some(trivial) = markers.trivial.captures(line) {
            if !region.body.is_empty() || region.exercise.trivial.is_some() {
                bail!(
                    "line {}: exercise {number}'s TRIVIAL line must come right after its HINT lines",
                    index + 1
                );
            }
            let parsed = Trivial::parse(&trivial[1])
                .with_context(|| format!("line {}, exercise {number}", index + 1))?;
            region.exercise.trivial = Some(parsed);
        } else if let Some(hint) = markers
            .hint
            .captures(line)
            .filter(|_| region.body.is_empty() && region.exercise.trivial.is_none())
        {
            let level = hint.get(1).map_or(1, |m| m.as_str().parse().unwrap_or(1));
            let hints = &mut region.exercise.hints;
            if level > hints.len() + 1 || level < hints.len() {
                bail!(
                    "line {}: exercise {number}'s HINT {level} comes out of order: \
                     HINT: lines first, then HINT 2:, then HINT 3:",
                    index + 1
                );
            }
            if level > hints.len() {
                hints.push(Vec::new());
            }
            hints[level - 1].push(hint[2].to_string());
            if level == 1 {
                region.hints.push(line);
            }
        } else {
            region.body.push(line);
        }
    }
    bail!(
        "exercise {number} (line {}) has no END EXERCISE",
        region.exercise.line
    )
}

fn render(region: &Region, form: Form, output: &mut String) -> Result<()> {
    let exercise = &region.exercise;
    let indent = region.indent;
    if form == Form::Answer {
        for line in &region.body {
            push_line(output, line);
        }
        return Ok(());
    }
    if form == Form::Solved {
        push_line(output, region.begin);
    } else {
        let marker = format!(
            "EXERCISE {} (book {}): {}",
            exercise.number, exercise.section, exercise.title
        );
        for line in comment_lines(&format!("{indent}// TODO: "), &marker) {
            push_line(output, &line);
        }
    }
    for hint in &region.hints {
        push_line(output, hint);
    }
    match form {
        Form::Solved => {
            for line in &region.body {
                push_line(output, line);
            }
            push_line(output, region.end);
        }
        Form::Answer => unreachable!("an answer is rendered above"),
        Form::Todo => {
            let message = exercise
                .todo_message()
                .replace('{', "{{")
                .replace('}', "}}");
            for line in todo_call(indent, &message) {
                push_line(output, &line);
            }
        }
        Form::Trivial => {
            let Some(Trivial::Body(body)) = &exercise.trivial else {
                bail!("exercise {} has no trivial body", exercise.number);
            };
            push_line(output, &format!("{indent}{body}"));
        }
    }
    Ok(())
}

/// The widest line the kit's code has (`rustfmt.toml`), and so the book's listings.
const MAX_WIDTH: usize = 90;

/// `todo!("message")` at `indent`, on one line if it fits in [`MAX_WIDTH`] columns. If
/// not, as rustfmt lays out a call that does not fit: the string on lines of its own,
/// broken between words with a `\` at the end of each line, which Rust's string syntax
/// drops along with the next line's leading spaces, so the message is unchanged.
fn todo_call(indent: &str, message: &str) -> Vec<String> {
    let quoted = format!("{message:?}");
    let one_line = format!("{indent}todo!({quoted})");
    if one_line.chars().count() <= MAX_WIDTH {
        return vec![one_line];
    }
    let inner = &quoted[1..quoted.len() - 1];
    let mut lines = vec![format!("{indent}todo!(")];
    let first = format!("{indent}    \"");
    let rest = format!("{indent}     ");
    let mut line = first.clone();
    for word in inner.split(' ') {
        let starts = line == first || line == rest;
        // Room for the word, a space, and the line's closing `\` (or `"`).
        if !starts && line.chars().count() + 1 + word.chars().count() + 2 > MAX_WIDTH {
            lines.push(format!("{line} \\"));
            line = rest.clone();
        } else if !starts {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(format!("{line}\""));
    lines.push(format!("{indent})"));
    lines
}

/// `text` as a comment after `first` (`    // TODO: `), broken between words into lines
/// of at most [`MAX_WIDTH`] columns; the lines after the first are lined up under the
/// text.
fn comment_lines(first: &str, text: &str) -> Vec<String> {
    let comment_start = first.find("//").unwrap_or(0);
    let rest = format!(
        "{}//{}",
        &first[..comment_start],
        " ".repeat(first.len() - comment_start - 2)
    );
    let mut lines = Vec::new();
    let mut line = first.to_string();
    for word in text.split(' ') {
        let starts = line == first || line == rest;
        if !starts && line.chars().count() + 1 + word.chars().count() > MAX_WIDTH {
            lines.push(line);
            line = rest.clone();
        } else if !starts {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

fn push_line(output: &mut String, line: &str) {
    output.push_str(line);
    output.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_todo_is_broken_between_words_and_keeps_its_message() {
        let message = "exercise 3.3: the init loop: wait for a signal, reap on SIGCHLD, \
                       forward others (book section 3.3)";
        let lines = todo_call("    ", message);
        assert!(lines.len() > 1, "{lines:?}");
        assert!(
            lines.iter().all(|line| line.chars().count() <= MAX_WIDTH),
            "{lines:?}"
        );
        let source = format!("fn f() {{\n{}\n}}", lines.join("\n"));
        let file = syn::parse_file(&source).expect("the call parses");
        let syn::Item::Fn(function) = &file.items[0] else {
            panic!("a function")
        };
        let syn::Stmt::Expr(syn::Expr::Macro(call), None) = &function.block.stmts[0]
        else {
            panic!("a macro call as the function's value: {source}")
        };
        let literal: syn::LitStr = call.mac.parse_body().expect("one string");
        assert_eq!(literal.value(), message);
    }

    #[test]
    fn a_long_todo_comment_is_broken_and_lined_up_under_its_text() {
        let lines = comment_lines(
            "    // TODO: ",
            "EXERCISE 3.3 (book 3.3): the init loop: wait for a signal, reap on SIGCHLD, \
             forward others",
        );
        assert_eq!(
            lines,
            [
                "    // TODO: EXERCISE 3.3 (book 3.3): the init loop: wait for a signal, reap \
                 on SIGCHLD,",
                "    //       forward others"
            ]
        );
    }

    #[test]
    fn a_short_todo_stays_on_one_line() {
        assert_eq!(
            todo_call("    ", "exercise 1.1: x (book section 1.2)"),
            ["    todo!(\"exercise 1.1: x (book section 1.2)\")"]
        );
    }

    const SOURCE: &str = "fn f() -> u8 {\n    // EXERCISE 1.1 (book 1.2): return {one}\n    // HINT: it is 1\n    1\n    // END EXERCISE 1.1\n}\n";

    fn with_trivial(line: &str) -> String {
        SOURCE.replace("    1\n", &format!("    {line}\n    1\n"))
    }

    fn todo(_: &Exercise) -> Form {
        Form::Todo
    }

    #[test]
    fn an_unsolved_exercise_becomes_todo_with_its_hints() {
        let (text, found) = rewrite(SOURCE, &todo).unwrap();
        assert_eq!(found.len(), 1);
        assert!(text.contains("    // HINT: it is 1\n"));
        assert!(
            text.contains("todo!(\"exercise 1.1: return {{one}} (book section 1.2)\")")
        );
        assert!(
            !text.contains("    1\n"),
            "the solution must not survive:\n{text}"
        );
    }

    #[test]
    fn a_solved_exercise_is_copied_as_it_is() {
        let (text, _) = rewrite(SOURCE, &|_| Form::Solved).unwrap();
        assert_eq!(text, SOURCE);
    }

    #[test]
    fn a_missing_end_marker_is_an_error() {
        let broken = "// EXERCISE 1.1 (book 1.2): x\nlet a = 1;\n";
        assert!(rewrite(broken, &todo).is_err());
    }

    #[test]
    fn a_mismatched_end_marker_is_an_error() {
        let broken = "// EXERCISE 1.1 (book 1.2): x\n// END EXERCISE 1.2\n";
        assert!(rewrite(broken, &todo).is_err());
    }

    #[test]
    fn numbers_sort_as_numbers() {
        let mut numbers: Vec<Number> = ["3.10", "3.2", "10.1", "2.1"]
            .iter()
            .map(|text| text.parse().unwrap())
            .collect();
        numbers.sort();
        let sorted: Vec<String> = numbers.iter().map(Number::to_string).collect();
        assert_eq!(sorted, ["2.1", "3.2", "3.10", "10.1"]);
    }

    #[test]
    fn a_trivial_line_is_read_and_never_copied() {
        let source = with_trivial("// TRIVIAL: 0");
        let (text, found) = rewrite(&source, &|_| Form::Solved).unwrap();
        assert_eq!(found[0].trivial, Some(Trivial::Body("0".into())));
        assert_eq!(text, SOURCE, "a solved copy drops only the TRIVIAL line");
        let (with, _) = rewrite(&source, &todo).unwrap();
        let (without, _) = rewrite(SOURCE, &todo).unwrap();
        assert_eq!(
            with, without,
            "the learner's copy is the same with or without it"
        );
    }

    #[test]
    fn the_trivial_form_puts_the_trivial_body_in() {
        let (text, _) =
            rewrite(&with_trivial("// TRIVIAL: 0"), &|_| Form::Trivial).unwrap();
        assert!(text.contains("    // HINT: it is 1\n    0\n}\n"), "{text}");
        assert!(!text.contains("todo!"), "{text}");
    }

    #[test]
    fn trivial_none_must_say_why() {
        let (_, found) =
            rewrite(&with_trivial("// TRIVIAL: none (it never returns)"), &todo).unwrap();
        let why = Trivial::Impossible("it never returns".into());
        assert_eq!(found[0].trivial, Some(why));
        assert!(rewrite(&with_trivial("// TRIVIAL: none"), &todo).is_err());
        assert!(rewrite(&with_trivial("// TRIVIAL: none ( )"), &todo).is_err());
    }

    #[test]
    fn a_region_without_a_trivial_line_has_none() {
        assert_eq!(find(SOURCE).unwrap()[0].trivial, None);
    }

    #[test]
    fn a_trivial_line_after_the_code_is_an_error() {
        let late = SOURCE.replace("    1\n", "    1\n    // TRIVIAL: 0\n");
        assert!(rewrite(&late, &todo).is_err());
    }

    const GRADUATED: &str = "fn f() -> u8 {\n    // EXERCISE 1.1 (book 1.2): one\n    // HINT: the idea\n    // HINT 2: what to call\n    // HINT 3: the shape\n    // TRIVIAL: 0\n    1\n    // END EXERCISE 1.1\n}\n";

    #[test]
    fn only_the_first_level_of_hints_is_copied() {
        let found = find(GRADUATED).unwrap();
        assert_eq!(found[0].hints.len(), 3);
        assert_eq!(found[0].hints[1], ["what to call"]);
        for form in [Form::Todo, Form::Trivial, Form::Solved] {
            let (text, _) = rewrite(GRADUATED, &|_| form).unwrap();
            assert!(text.contains("// HINT: the idea\n"), "{text}");
            assert!(
                !text.contains("HINT 2") && !text.contains("HINT 3"),
                "{text}"
            );
        }
    }

    #[test]
    fn hint_levels_out_of_order_are_an_error() {
        let skipped = GRADUATED.replace("    // HINT 2: what to call\n", "");
        assert!(find(&skipped).is_err());
        let back = GRADUATED.replace("HINT 3: the shape", "HINT: the shape");
        assert!(find(&back).is_err());
    }

    #[test]
    fn an_answer_is_the_reference_code_without_markers() {
        let (text, _) = rewrite(GRADUATED, &|_| Form::Answer).unwrap();
        assert_eq!(text, "fn f() -> u8 {\n    1\n}\n");
    }
}

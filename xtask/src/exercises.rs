//! Exercise markers in the reference code, and how an exercise is "unsolved".
//!
//! In `solutions/`, an exercise is a marked region:
//!
//! ```text
//! // EXERCISE 1.2 (book 1.3): make `rootfs` this process's "/"
//! // HINT: what to call, and where to read
//! ...the reference code...
//! // END EXERCISE 1.2
//! ```
//!
//! In the learner's copy, the code between the hints and the end marker becomes
//! `todo!("exercise 1.2: ... (book section 1.3)")`. A region should end its function, so
//! the `todo!()` is the function's value.

use anyhow::{bail, Result};
use regex::Regex;

/// One exercise, as its marker names it.
#[derive(Debug, Clone)]
pub struct Exercise {
    /// "1.2": chapter 1, exercise 2.
    pub number: String,
    /// The book section to read, "1.3".
    pub section: String,
    /// What to do, in one line.
    pub title: String,
    /// The 1-based line of the marker in its file.
    pub line: usize,
}

impl Exercise {
    /// The `todo!()` message; `cargo xtask check` looks for it in the test output.
    pub fn todo_message(&self) -> String {
        format!(
            "exercise {}: {} (book section {})",
            self.number, self.title, self.section
        )
    }
}

struct Markers {
    begin: Regex,
    hint: Regex,
    end: Regex,
}

impl Markers {
    fn new() -> Markers {
        Markers {
            begin: Regex::new(r"^(\s*)// EXERCISE (\d+\.\d+) \(book (\d+\.\d+)\): (.+)$")
                .expect("valid regex"),
            hint: Regex::new(r"^\s*// HINT: ").expect("valid regex"),
            end: Regex::new(r"^\s*// END EXERCISE (\d+\.\d+)$").expect("valid regex"),
        }
    }
}

/// The exercises in one source file, in order.
pub fn find(source: &str) -> Result<Vec<Exercise>> {
    Ok(rewrite(source, &|_| false)?.1)
}

/// The learner's version of a source file: every exercise for which `keep_solved` is false
/// becomes a `todo!()`. Returns the new text and the exercises found.
pub fn rewrite(
    source: &str,
    keep_solved: &dyn Fn(&Exercise) -> bool,
) -> Result<(String, Vec<Exercise>)> {
    let markers = Markers::new();
    let mut output = String::new();
    let mut found = Vec::new();
    let mut lines = source.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let Some(begin) = markers.begin.captures(line) else {
            if markers.end.is_match(line) {
                bail!(
                    "line {}: END EXERCISE without a matching EXERCISE",
                    index + 1
                );
            }
            push_line(&mut output, line);
            continue;
        };
        let indent = &begin[1];
        let exercise = Exercise {
            number: begin[2].to_string(),
            section: begin[3].to_string(),
            title: begin[4].to_string(),
            line: index + 1,
        };
        let solved = keep_solved(&exercise);
        if solved {
            push_line(&mut output, line);
        } else {
            push_line(
                &mut output,
                &format!(
                    "{indent}// TODO: EXERCISE {} (book {}): {}",
                    exercise.number, exercise.section, exercise.title
                ),
            );
        }
        let mut in_hints = true;
        let mut closed = false;
        for (_, body_line) in lines.by_ref() {
            if let Some(end) = markers.end.captures(body_line) {
                if end[1] != exercise.number {
                    bail!(
                        "exercise {} is closed by END EXERCISE {}",
                        exercise.number,
                        &end[1]
                    );
                }
                if solved {
                    push_line(&mut output, body_line);
                } else {
                    let message = exercise
                        .todo_message()
                        .replace('{', "{{")
                        .replace('}', "}}");
                    push_line(&mut output, &format!("{indent}todo!({message:?})"));
                }
                closed = true;
                break;
            }
            in_hints = in_hints && markers.hint.is_match(body_line);
            if solved || in_hints {
                push_line(&mut output, body_line);
            }
        }
        if !closed {
            bail!(
                "exercise {} (line {}) has no END EXERCISE",
                exercise.number,
                exercise.line
            );
        }
        found.push(exercise);
    }
    Ok((output, found))
}

fn push_line(output: &mut String, line: &str) {
    output.push_str(line);
    output.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "fn f() -> u8 {\n    // EXERCISE 1.1 (book 1.2): return {one}\n    // HINT: it is 1\n    1\n    // END EXERCISE 1.1\n}\n";

    #[test]
    fn an_unsolved_exercise_becomes_todo_with_its_hints() {
        let (text, found) = rewrite(SOURCE, &|_| false).unwrap();
        assert_eq!(found.len(), 1);
        assert!(text.contains("    // HINT: it is 1\n"));
        assert!(text.contains("todo!(\"exercise 1.1: return {{one}} (book section 1.2)\")"));
        assert!(
            !text.contains("    1\n"),
            "the solution must not survive:\n{text}"
        );
    }

    #[test]
    fn a_solved_exercise_is_copied_as_it_is() {
        let (text, _) = rewrite(SOURCE, &|_| true).unwrap();
        assert_eq!(text, SOURCE);
    }

    #[test]
    fn a_missing_end_marker_is_an_error() {
        let broken = "// EXERCISE 1.1 (book 1.2): x\nlet a = 1;\n";
        assert!(rewrite(broken, &|_| false).is_err());
    }

    #[test]
    fn a_mismatched_end_marker_is_an_error() {
        let broken = "// EXERCISE 1.1 (book 1.2): x\n// END EXERCISE 1.2\n";
        assert!(rewrite(broken, &|_| false).is_err());
    }
}

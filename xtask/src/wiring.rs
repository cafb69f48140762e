//! Every chapter in `solutions/` is wired into the kit: its workspace dependency, its
//! test target, its book chapter and its README row. `cargo xtask gen --check` (and so
//! CI) runs this, so a piece left out fails loudly: a `tests/chNN.rs` without its
//! `[[test]]` entry, for one, is silently never built. Book: "How this kit is built",
//! "Adding a chapter".

use std::fs;
use std::path::Path;

use anyhow::{bail, Result};
use regex::Regex;

use crate::gen::Chapter;

/// Checks every chapter's wiring under the workspace `root`, and names everything
/// missing.
pub fn check(root: &Path, chapters: &[Chapter]) -> Result<()> {
    let missing: Vec<String> = chapters
        .iter()
        .flat_map(|chapter| missing_pieces(root, chapter))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "{} piece(s) of the kit's wiring are missing (see \"Adding a chapter\" in the \
         kit page):\n  {}",
        missing.len(),
        missing.join("\n  ")
    )
}

/// What chapter `chapter` lacks, one line each.
fn missing_pieces(root: &Path, chapter: &Chapter) -> Vec<String> {
    let nn = format!("{:02}", chapter.number);
    let slug = &chapter.slug;
    let read = |name: &str| fs::read_to_string(root.join(name)).unwrap_or_default();
    let checks = [
        (
            has_line(
                &read("Cargo.toml"),
                &format!(r#"^solution{nn}\s*=.*"solutions/{slug}""#),
            ),
            format!("Cargo.toml: [workspace.dependencies] has no solution{nn} = {{ path = \"solutions/{slug}\" }}"),
        ),
        (
            has_test_target(&read("tests/Cargo.toml"), &nn),
            format!("tests/Cargo.toml: no [[test]] with name = \"ch{nn}\" and path = \"ch{nn}.rs\""),
        ),
        (
            root.join(format!("tests/ch{nn}.rs")).is_file(),
            format!("tests/ch{nn}.rs: no such file"),
        ),
        (
            root.join(format!("book/src/ch{nn}/index.md")).is_file(),
            format!("book/src/ch{nn}/index.md: no such file"),
        ),
        (
            read("book/src/SUMMARY.md").contains(&format!("(ch{nn}/index.md)")),
            format!("book/src/SUMMARY.md: no link to ch{nn}/index.md"),
        ),
        (
            has_line(
                &read("README.md"),
                &format!(r"^\|\s*{nn}\s*\|.*`solution{nn}`"),
            ),
            format!("README.md: no row | {nn} | ... `solution{nn}` ... in the chapter table"),
        ),
    ];
    checks
        .into_iter()
        .filter(|(present, _)| !present)
        .map(|(_, what)| what)
        .collect()
}

/// Does some line of `text` match `pattern`?
fn has_line(text: &str, pattern: &str) -> bool {
    let pattern = Regex::new(pattern).expect("the wiring patterns are valid");
    text.lines().any(|line| pattern.is_match(line.trim_start()))
}

/// Is there a `[[test]]` block with `name = "chNN"` and `path = "chNN.rs"`?
fn has_test_target(manifest: &str, nn: &str) -> bool {
    manifest.split("[[test]]").skip(1).any(|block| {
        let block = block.split("\n[").next().unwrap_or_default();
        has_line(block, &format!(r#"^name\s*=\s*"ch{nn}""#))
            && has_line(block, &format!(r#"^path\s*=\s*"ch{nn}\.rs""#))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace with chapter 8 wired in completely.
    fn wired() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(
            "Cargo.toml",
            "[workspace.dependencies]\nsolution08 = { path = \"solutions/08-overlay\" }\n",
        );
        write(
            "tests/Cargo.toml",
            "[[test]]\nname = \"ch07\"\npath = \"ch07.rs\"\n\n[[test]]\nname = \"ch08\"\npath = \"ch08.rs\"\n",
        );
        write("tests/ch08.rs", "");
        write("book/src/ch08/index.md", "# Chapter 8\n");
        write("book/src/SUMMARY.md", "- [Overlay](ch08/index.md)\n");
        write(
            "README.md",
            "| 08 | `chapter08` / `solution08` | overlay | `--layer` |\n",
        );
        dir
    }

    fn chapter_8() -> Vec<Chapter> {
        vec![Chapter {
            number: 8,
            slug: "08-overlay".to_string(),
        }]
    }

    #[test]
    fn a_chapter_wired_in_completely_passes() {
        let dir = wired();
        check(dir.path(), &chapter_8()).unwrap();
    }

    #[test]
    fn a_chapter_without_its_test_target_is_named() {
        let dir = wired();
        let manifest = dir.path().join("tests/Cargo.toml");
        fs::write(&manifest, "[[test]]\nname = \"ch07\"\npath = \"ch07.rs\"\n").unwrap();
        let error = check(dir.path(), &chapter_8()).unwrap_err().to_string();
        assert!(
            error.contains("no [[test]] with name = \"ch08\""),
            "{error}"
        );
        assert!(error.starts_with("1 piece(s)"), "{error}");
    }

    #[test]
    fn every_missing_piece_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = check(dir.path(), &chapter_8()).unwrap_err().to_string();
        for piece in [
            "solution08",
            "[[test]]",
            "tests/ch08.rs",
            "ch08/index.md: no such",
            "SUMMARY.md",
            "README.md",
        ] {
            assert!(error.contains(piece), "{piece}: {error}");
        }
    }
}

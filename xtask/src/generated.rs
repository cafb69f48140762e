//! `chapters/.generated`: what `cargo xtask gen` last wrote, so it never overwrites a
//! learner's work. Book: "How this kit is built".
//!
//! One line per learner file: a hash of the text gen wrote, then the path under
//! `chapters/`. A file whose text still has that hash is gen's own and may be replaced
//! (that is how a change in `solutions/` reaches `chapters/`); any other text is
//! someone's work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The file name, in `chapters/`.
pub const FILE_NAME: &str = ".generated";

const HEADER: &str =
    "# Made by `cargo xtask gen`: the files it wrote and a hash of each one's text.\n\
                      # gen replaces a file only while its text still has that hash.\n";

/// FNV-1a, 64 bits. It finds edits, not attacks, and unlike std's `DefaultHasher` its
/// value never changes between Rust versions: the manifest is committed.
pub fn hash(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The manifest's text for these files (paths under `chapters/`), sorted by path.
pub fn render(files: &BTreeMap<PathBuf, String>) -> String {
    let mut text = HEADER.to_string();
    for (path, content) in files {
        text.push_str(&format!("{:016x}  {}\n", hash(content), path.display()));
    }
    text
}

/// The hashes a manifest records, by path under `chapters/`.
pub fn parse(text: &str) -> Result<BTreeMap<PathBuf, u64>> {
    let mut hashes = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parsed = line
            .split_once("  ")
            .and_then(|(hash, path)| Some((u64::from_str_radix(hash, 16).ok()?, path)));
        let Some((hash, path)) = parsed else {
            bail!("line {} is not `HASH  PATH`: {line:?}", index + 1);
        };
        hashes.insert(PathBuf::from(path), hash);
    }
    Ok(hashes)
}

/// The manifest in `chapters_dir`, or none if gen never wrote one there.
pub fn read(chapters_dir: &Path) -> Result<BTreeMap<PathBuf, u64>> {
    let path = chapters_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).with_context(|| {
            format!("{path:?} is damaged: restore it with `git checkout {FILE_NAME}`")
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(error) => Err(error).with_context(|| format!("cannot read {path:?}")),
    }
}

/// Is `existing` someone's work: text that is neither what gen makes now (`new`) nor what
/// it wrote last time (`recorded`)?
pub fn is_edited(existing: &str, new: Option<&str>, recorded: Option<u64>) -> bool {
    new != Some(existing) && recorded != Some(hash(existing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_and_never_changes() {
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(hash("ab"), hash("ba"));
    }

    #[test]
    fn a_manifest_reads_back_what_it_recorded() {
        let files = BTreeMap::from([
            (PathBuf::from("02-b/src/lib.rs"), "two".to_string()),
            (PathBuf::from("01-a/Cargo.toml"), "one".to_string()),
        ]);
        let text = render(&files);
        assert!(
            text.find("01-a").unwrap() < text.find("02-b").unwrap(),
            "{text}"
        );
        let hashes = parse(&text).unwrap();
        assert_eq!(hashes[Path::new("01-a/Cargo.toml")], hash("one"));
        assert_eq!(hashes[Path::new("02-b/src/lib.rs")], hash("two"));
    }

    #[test]
    fn a_damaged_line_is_an_error() {
        assert!(parse("xyz  01-a/Cargo.toml\n").is_err());
        assert!(parse("0123 no-two-spaces\n").is_err());
    }

    #[test]
    fn only_text_gen_did_not_write_is_edited() {
        let last = Some(hash("old"));
        assert!(
            !is_edited("old", Some("new"), last),
            "last generation: replace it"
        );
        assert!(!is_edited("new", Some("new"), last), "already up to date");
        assert!(is_edited("mine", Some("new"), last), "the learner's work");
        assert!(is_edited("mine", None, last), "gen would remove it");
        assert!(
            is_edited("old", Some("new"), None),
            "never recorded: not gen's"
        );
    }
}

// solutions/11-oci-runtime/src/mount_options.rs without its exercise markers, made by `cargo xtask gen` for the book's folded answers.
//! A mount's `options` in `config.json`: words such as `nosuid`, `ro` and `rbind`, which
//! are flags of `mount(2)`, and words such as `mode=755` and `size=65536k`, which are
//! left for the file system to read. Book: section 11.4.
//!
//! The spec's list of words is fstab's (mount(8)); each one either sets a flag, clears
//! one, or says how mount events flow (propagation, which needs a call of its own).

use anyhow::{bail, Result};
use nix::mount::MsFlags;

/// What one mount's options ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the `mount(2)` call itself.
    pub flags: MsFlags,
    /// Propagation to set once it is mounted (`rprivate`, `rslave`...), if any.
    pub propagation: Option<MsFlags>,
    /// The words the file system reads, joined with commas (`mode=755,size=65536k`).
    pub data: String,
}

impl MountOptions {
    /// No flag, no propagation, no data.
    pub fn none() -> MountOptions {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: None,
            data: String::new(),
        }
    }
}

/// Words that set a flag (`true`) or clear one that an earlier word set (`false`).
const FLAG_WORDS: [(&str, bool, MsFlags); 24] = [
    ("ro", true, MsFlags::MS_RDONLY),
    ("rw", false, MsFlags::MS_RDONLY),
    ("nosuid", true, MsFlags::MS_NOSUID),
    ("suid", false, MsFlags::MS_NOSUID),
    ("nodev", true, MsFlags::MS_NODEV),
    ("dev", false, MsFlags::MS_NODEV),
    ("noexec", true, MsFlags::MS_NOEXEC),
    ("exec", false, MsFlags::MS_NOEXEC),
    ("sync", true, MsFlags::MS_SYNCHRONOUS),
    ("async", false, MsFlags::MS_SYNCHRONOUS),
    ("dirsync", true, MsFlags::MS_DIRSYNC),
    ("remount", true, MsFlags::MS_REMOUNT),
    ("mand", true, MsFlags::MS_MANDLOCK),
    ("nomand", false, MsFlags::MS_MANDLOCK),
    ("noatime", true, MsFlags::MS_NOATIME),
    ("atime", false, MsFlags::MS_NOATIME),
    ("nodiratime", true, MsFlags::MS_NODIRATIME),
    ("diratime", false, MsFlags::MS_NODIRATIME),
    ("relatime", true, MsFlags::MS_RELATIME),
    ("norelatime", false, MsFlags::MS_RELATIME),
    ("strictatime", true, MsFlags::MS_STRICTATIME),
    ("nostrictatime", false, MsFlags::MS_STRICTATIME),
    ("bind", true, MsFlags::MS_BIND),
    ("rbind", true, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
];

/// Words that say how mount events flow between this mount and its peers.
const PROPAGATION_WORDS: [(&str, MsFlags); 8] = [
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// Words the spec defines that the kit does not do: said by name, never ignored.
const REFUSED_WORDS: [&str; 4] = ["idmap", "ridmap", "tmpcopyup", "recursive"];

// ANCHOR: parse
/// Sorts a mount's option words into flags, propagation and data, in order: a later
/// word wins over an earlier one (`ro` then `rw` is `rw`), as mount(8) reads them.
pub fn parse(words: &[String]) -> Result<MountOptions> {
    let mut options = MountOptions::none();
    let mut data: Vec<&str> = Vec::new();
    for word in words {
        if let Some((_, set, bits)) = FLAG_WORDS.iter().find(|(name, _, _)| name == word)
        {
            if *set {
                options.flags.insert(*bits);
            } else {
                options.flags.remove(*bits);
            }
        } else if let Some((_, bits)) =
            PROPAGATION_WORDS.iter().find(|(name, _)| name == word)
        {
            options.propagation = Some(*bits);
        } else if REFUSED_WORDS.contains(&word.as_str()) {
            bail!("the mount option {word:?} is not one the kit does (book 11.4)");
        } else {
            data.push(word);
        }
    }
    options.data = data.join(",");
    Ok(options)
}
// ANCHOR_END: parse

/// The propagation a word names, for `linux.rootfsPropagation`.
pub fn propagation(word: &str) -> Result<MsFlags> {
    PROPAGATION_WORDS
        .iter()
        .find(|(name, _)| *name == word)
        .map(|(_, bits)| *bits)
        .ok_or_else(|| {
            anyhow::anyhow!("linux.rootfsPropagation {word:?} is not a propagation")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(',').map(str::to_string).collect()
    }

    #[test]
    fn flags_propagation_and_data_are_told_apart() {
        let parsed =
            parse(&words("nosuid,noexec,strictatime,mode=755,size=65536k")).unwrap();
        let expected = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_STRICTATIME;
        assert_eq!(parsed.flags, expected);
        assert_eq!(parsed.data, "mode=755,size=65536k");
        assert_eq!(parsed.propagation, None);
        let bind = parse(&words("rbind,rprivate,ro")).unwrap();
        assert_eq!(
            bind.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(
            bind.propagation,
            Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC)
        );
        assert_eq!(bind.data, "");
    }

    #[test]
    fn a_later_word_wins() {
        assert_eq!(parse(&words("ro,rw")).unwrap().flags, MsFlags::empty());
        assert_eq!(parse(&words("rw,ro")).unwrap().flags, MsFlags::MS_RDONLY);
    }

    #[test]
    fn an_option_the_kit_does_not_do_is_named() {
        let error = parse(&words("bind,idmap")).unwrap_err().to_string();
        assert!(error.contains("\"idmap\""), "{error}");
    }
}

// Your copy of solutions/09-images/src/digest.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Content addresses: a blob is named by the hash of its bytes, `sha256:` and 64 hex
//! digits, and every blob the kit takes in is hashed as it is copied and kept only if
//! the hash and the size are the ones that named it. Book: section 9.1.
//!
//! A digest read from an image is hostile until checked: it becomes a file name in the
//! store (`blobs/sha256/HEX`), so anything but 64 lowercase hex digits could name a path
//! elsewhere (`sha256:../../etc`).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use sha2::{Digest as _, Sha256};

/// A checked digest: `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl FromStr for Digest {
    type Err = String;

    // ANCHOR: parse
    /// The only algorithm the kit takes is sha256 (OCI's required one); the hex must be
    /// exactly 64 lowercase digits, as the spec writes it, so one blob has one name.
    fn from_str(text: &str) -> Result<Digest, String> {
        let Some(hex) = text.strip_prefix("sha256:") else {
            return Err(format!(
                "{text:?} is not a sha256 digest (sha256: and 64 hex digits)"
            ));
        };
        let lowercase_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if hex.len() != 64 || !hex.chars().all(lowercase_hex) {
            return Err(format!(
                "{text:?} is not a sha256 digest: it needs 64 lowercase hex digits"
            ));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }
    // ANCHOR_END: parse
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(&Sha256::digest(bytes))
    }

    /// The digest whose hash is `hash`, the 32 bytes of a finished sha256.
    pub fn from_sha256(hash: &[u8]) -> Digest {
        Digest { hex: hex(hash) }
    }

    /// Where the blob lives in an OCI image layout rooted at `layout`.
    pub fn path_in(&self, layout: &Path) -> PathBuf {
        layout.join("blobs/sha256").join(&self.hex)
    }

    /// A name to write the blob under until it is checked, beside where it will live, of
    /// this process: two imports of one image at once each write their own, and the
    /// second rename puts the same bytes under the same name. Starting with a dot, it is
    /// never taken for a blob.
    pub fn temporary_in(&self, layout: &Path) -> Result<PathBuf> {
        let dir = layout.join("blobs/sha256");
        fs::create_dir_all(&dir).with_context(|| format!("cannot make {dir:?}"))?;
        Ok(dir.join(format!(".{}.{}.new", self.hex, std::process::id())))
    }

    /// The hex digits alone, as some names use them (an image id's first 12).
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What names a blob: its digest and its size in bytes (OCI's descriptor, less its
/// media type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub digest: Digest,
    pub size: u64,
}

// ANCHOR: copy_verified
/// Copies the blob `from` reads into the layout at `layout`, hashing and counting as it
/// goes, and keeps it only if it is exactly `expected`: written to a temporary name, and
/// renamed to `blobs/sha256/HEX` when whole and right. A source longer than it says is
/// cut off at one byte past the size, so a blob that claims a small size cannot fill the
/// disk. Returns the stored path.
pub fn copy_verified(
    from: impl Read,
    expected: &Expected,
    layout: &Path,
) -> Result<PathBuf> {
    let final_path = expected.digest.path_in(layout);
    if final_path.is_file() {
        return Ok(final_path); // content-addressed: the same name is the same bytes
    }
    let temporary = expected.digest.temporary_in(layout)?;
    let written = write_hashing(from, &temporary, expected.size);
    let checked = written.and_then(|(digest, size)| check(expected, &digest, size));
    if let Err(error) = checked {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    fs::rename(&temporary, &final_path)
        .with_context(|| format!("cannot rename {temporary:?} to {final_path:?}"))?;
    Ok(final_path)
}
// ANCHOR_END: copy_verified

/// Writes at most `size + 1` bytes of `from` to `path`, and returns their digest and
/// count.
fn write_hashing(from: impl Read, path: &Path, size: u64) -> Result<(Digest, u64)> {
    let mut file =
        File::create(path).with_context(|| format!("cannot write {path:?}"))?;
    let mut limited = from.take(size.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut count = 0u64;
    loop {
        let read = match limited.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error).context("cannot read the blob"),
        };
        hasher.update(&buffer[..read]);
        file.write_all(&buffer[..read])
            .with_context(|| format!("cannot write {path:?}"))?;
        count += read as u64;
    }
    let digest = Digest {
        hex: hex(&hasher.finalize()),
    };
    Ok((digest, count))
}

fn check(expected: &Expected, digest: &Digest, size: u64) -> Result<()> {
    if size != expected.size {
        let what = match size > expected.size {
            true => "more",
            false => "fewer",
        };
        bail!(
            "blob {} has {what} bytes than the {} its descriptor says: refused",
            expected.digest,
            expected.size
        );
    }
    if *digest != expected.digest {
        bail!(
            "blob {} hashes to {digest}: its bytes are not the ones its name promises, \
             refused",
            expected.digest
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(bytes: &[u8]) -> Expected {
        Expected {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn digests_are_sha256_and_64_lowercase_hex_digits_only() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert!(good.parse::<Digest>().is_ok());
        for bad in [
            "sha256:../../etc/passwd".to_string(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha512:{}", "a".repeat(128)),
            format!("sha256:{}/x", "a".repeat(62)),
            "a".repeat(64),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_right_blob_is_stored_under_its_digest() {
        let layout = tempfile::tempdir().unwrap();
        let bytes = b"a layer's bytes";
        let stored = copy_verified(&bytes[..], &expected(bytes), layout.path()).unwrap();
        assert_eq!(fs::read(&stored).unwrap(), bytes);
        assert!(stored.ends_with(Digest::of(bytes).hex()));
    }

    #[test]
    fn a_wrong_short_or_long_blob_is_refused_and_leaves_nothing() {
        let layout = tempfile::tempdir().unwrap();
        let promised = expected(b"the promised bytes");
        for (given, why) in [
            (&b"other bytes, same size"[..18], "hashes to"),
            (&b"the promised"[..], "fewer bytes"),
            (
                &b"the promised bytes, and then a great deal more"[..],
                "more bytes",
            ),
        ] {
            let error = copy_verified(given, &promised, layout.path()).unwrap_err();
            assert!(error.to_string().contains(why), "{error}");
        }
        let blobs = layout.path().join("blobs/sha256");
        assert_eq!(
            fs::read_dir(blobs).unwrap().count(),
            0,
            "something was left"
        );
    }
}

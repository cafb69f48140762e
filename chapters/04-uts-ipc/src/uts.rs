// Your copy of solutions/04-uts-ipc/src/uts.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The UTS namespace: the names `uname(2)` reports, of which a container changes the host
//! name. ("UTS" is the `struct utsname` of UNIX Time-sharing System.) Book: section 4.1.

use std::fs;
use std::os::unix::fs::MetadataExt;

use anyhow::{bail, Context, Result};
use nix::unistd;

use crate::trace;

/// The longest host name Linux takes (`HOST_NAME_MAX`).
pub const MAX_LENGTH: usize = 64;

/// The longest label (the part between dots) that RFC 1123 allows.
pub const MAX_LABEL_LENGTH: usize = 63;

/// A short random id for a container, as `docker ps` shows them: 12 hex digits.
pub fn container_id() -> Result<String> {
    let mut bytes = [0u8; 6];
    // Read exactly six bytes: /dev/urandom never ends.
    let mut file = fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    std::io::Read::read_exact(&mut file, &mut bytes)
        .context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Checks a host name before any process is started, by the rules of RFC 1123: labels of
/// 1 to 63 letters, digits and `-`, joined by `.`, none starting or ending with `-`; and
/// at most 64 bytes in all, which is what Linux takes.
pub fn check_hostname(name: &str) -> Result<()> {
    let valid_label = |label: &str| {
        (1..=MAX_LABEL_LENGTH).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.len() > MAX_LENGTH || !name.split('.').all(valid_label) {
        bail!(
            "hostname {name:?} is not valid: use labels of 1 to {MAX_LABEL_LENGTH} \
             letters, digits and '-', joined by '.', none starting or ending with '-', \
             and at most {MAX_LENGTH} characters in all"
        );
    }
    Ok(())
}

/// Which UTS namespace this process is in. namespaces(7): two processes are in the same
/// namespace when the device and inode numbers of their `/proc/PID/ns/uts` are the same.
pub fn namespace_id() -> Result<(u64, u64)> {
    let link = "/proc/self/ns/uts";
    let meta = fs::metadata(link).with_context(|| format!("cannot stat {link}"))?;
    Ok((meta.dev(), meta.ino()))
}

// ANCHOR: set_hostname
/// Sets the host name, but only in a UTS namespace that is not the host's: a missing
/// `CLONE_NEWUTS` would otherwise rename the host machine.
pub fn set_hostname(name: &str, host_namespace: (u64, u64)) -> Result<()> {
    if namespace_id()? == host_namespace {
        bail!(
            "refusing to set the hostname: this process is still in the host's UTS \
             namespace (is CLONE_NEWUTS among the clone flags? see book section 4.1)"
        );
    }
    // TODO: EXERCISE 4.1 (book 4.1): give the container its own host name
    // HINT: one call sets the host name, and in a new UTS namespace only the container
    // HINT: sees it. Narrate it with trace::syscall: a test reads the trace. Read section
    // HINT: 4.1.
    todo!("exercise 4.1: give the container its own host name (book section 4.1)")
}
// ANCHOR_END: set_hostname

#[cfg(test)]
mod tests {
    use super::check_hostname;

    #[test]
    fn ordinary_host_names_are_valid() {
        let longest = format!("{}.{}", "x".repeat(31), "x".repeat(32)); // 64 bytes
        for name in [
            "box",
            "web-1",
            "a.b.c",
            "3869d9c9de67",
            &"x".repeat(63),
            &longest,
        ] {
            assert!(check_hostname(name).is_ok(), "{name:?} should be valid");
        }
    }

    #[test]
    fn names_rfc_1123_forbids_are_refused() {
        for name in [
            "",
            "-box",
            "box-",
            "a..b",
            "not a name",
            "bad_name",
            &"x".repeat(65),
        ] {
            assert!(check_hostname(name).is_err(), "{name:?} should be refused");
        }
    }
}

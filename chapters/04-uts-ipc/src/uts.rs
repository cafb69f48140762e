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

/// A short random id for a container, as `docker ps` shows them: 12 hex digits.
pub fn container_id() -> Result<String> {
    let mut bytes = [0u8; 6];
    // Read exactly six bytes: /dev/urandom never ends.
    let mut file = fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    std::io::Read::read_exact(&mut file, &mut bytes).context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Checks a host name before any process is started: letters, digits, `-` and `.`, at most
/// 64 bytes, as RFC 1123 allows.
pub fn check_hostname(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    if name.is_empty() || name.len() > MAX_LENGTH || !name.chars().all(allowed) {
        bail!("hostname {name:?} is not valid: use 1 to {MAX_LENGTH} letters, digits, '-' or '.'");
    }
    Ok(())
}

/// Which UTS namespace this process is in: the inode number of `/proc/self/ns/uts`.
pub fn namespace_id() -> Result<u64> {
    let link = "/proc/self/ns/uts";
    Ok(fs::metadata(link)
        .with_context(|| format!("cannot stat {link}"))?
        .ino())
}

// ANCHOR: set_hostname
/// Sets the host name, but only in a UTS namespace that is not the host's: a missing
/// `CLONE_NEWUTS` would otherwise rename the host machine.
pub fn set_hostname(name: &str, host_namespace: u64) -> Result<()> {
    if namespace_id()? == host_namespace {
        bail!(
            "refusing to set the hostname: this process is still in the host's UTS namespace \
             (is CLONE_NEWUTS among the clone flags? see book section 4.1)"
        );
    }
    // TODO: EXERCISE 4.1 (book 4.1): give the container its own host name
    // HINT: one call: nix::unistd::sethostname, wrapped in trace::syscall.
    todo!("exercise 4.1: give the container its own host name (book section 4.1)")
}
// ANCHOR_END: set_hostname

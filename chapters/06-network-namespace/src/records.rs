// Your copy of solutions/06-network-namespace/src/records.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Records: what the runtime keeps on disk that outlives one call, and how it reads it
//! back. Book: section 6.3 (leases), section 7.8 (cgroup records).
//!
//! A runtime killed with SIGKILL runs no cleanup code. What it made on the host (an
//! address on the bridge, a cgroup) is known only from the records it wrote first, and
//! the next start reclaims it. Four rules, the same for every kind of record:
//!
//! - a record names the runtime that wrote it, by PID and start time, and that runtime is
//!   alive only while that process runs: a reused PID or a zombie is dead ([`Runtime`]);
//! - a record is written whole, under a temporary name renamed into place ([`write`]);
//! - a record is hostile until checked. Anyone who can write in the data root could plant
//!   one, and the next start would act on it as root. So the data root and each record
//!   must be the caller's own, writable by no one else ([`check_owned`]); an id must be
//!   12 hex digits ([`check_id`]); and every path is rebuilt from the id, never read from
//!   the record;
//! - a line or record that fails a check is left alone, and said so in one line
//!   ([`ignored`]): the runtime does not remove what it does not understand.

use std::fs::{self, DirBuilder, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::unistd::Uid;

/// How many hex digits a container id has (docker's short ids have as many).
pub const ID_LENGTH: usize = 12;

/// A runtime process, told apart from a later one with the same PID by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runtime {
    pub pid: i32,
    pub started: u64,
}

impl Runtime {
    /// This runtime.
    pub fn this() -> Result<Runtime> {
        let pid = std::process::id() as i32;
        let stat =
            read_stat(pid).context("cannot read this runtime's /proc/self/stat")?;
        Ok(Runtime {
            pid,
            started: stat.started,
        })
    }

    /// A runtime read back from a record: `PID START`, both numbers, the PID above 0.
    pub fn parse(pid: &str, started: &str) -> Result<Runtime, String> {
        let pid: i32 = pid
            .parse()
            .ok()
            .filter(|pid| *pid > 0)
            .ok_or_else(|| format!("{pid:?} is not a PID"))?;
        let started = started
            .parse()
            .map_err(|_| format!("{started:?} is not a start time"))?;
        Ok(Runtime { pid, started })
    }

    // ANCHOR: is_alive
    /// Whether the process that wrote the record still runs. A process killed but not yet
    /// reaped by its parent (a zombie, state `Z`, or `X` while it goes) keeps its PID and
    /// its `/proc` entry, but runs no more code: it will never clean up, so it is dead.
    pub fn is_alive(&self) -> bool {
        read_stat(self.pid).is_some_and(|stat| {
            stat.started == self.started && !matches!(stat.state, 'Z' | 'X')
        })
    }
    // ANCHOR_END: is_alive
}

/// The two fields of `/proc/PID/stat` that say whether a process is still the one meant.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    /// Field 3: `R` running, `S` sleeping, ..., `Z` zombie, `X` dead.
    state: char,
    /// Field 22: when it started, in clock ticks since boot.
    started: u64,
}

fn read_stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(stat: &str) -> Option<Stat> {
    // The command name (field 2) is in parentheses and may hold spaces and `)`: count
    // from the last `)`. After it come field 3, the state, and on to field 22.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let started = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, started })
}

/// Whether `id` is a container id as the kit makes them: 12 lowercase hex digits. Nothing
/// else can climb out of a directory or name another interface.
pub fn is_id(id: &str) -> bool {
    id.len() == ID_LENGTH
        && id
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// The same, as the reason a record is ignored.
pub fn check_id(id: &str) -> Result<(), String> {
    if !is_id(id) {
        return Err(format!("{id:?} is not a container id (12 hex digits)"));
    }
    Ok(())
}

/// Says in one line that a record (or a line of one) was left alone, and why.
pub fn ignored(path: &Path, record: &str, why: &str) {
    eprintln!(
        "byoc: ignoring {record:?} in {path:?}, which this kit did not write ({why}): it \
         is left as it is; remove it by hand if nothing of yours needs it"
    );
}

// ANCHOR: check_owned
/// A directory or record under the data root must be the caller's, and writable by no one
/// else: whoever can write there can make this runtime remove files and kill processes.
/// It must not be a symbolic link either, which could lead anywhere.
pub fn check_owned(path: &Path) -> Result<()> {
    let meta =
        fs::symlink_metadata(path).with_context(|| format!("cannot read {path:?}"))?;
    let me = Uid::effective().as_raw();
    if meta.file_type().is_symlink() {
        bail!("{path:?} is a symbolic link, where the runtime keeps its own data: remove it");
    }
    if meta.uid() != me {
        bail!(
            "{path:?} belongs to uid {}, not to you (uid {me}): the runtime acts on what \
             it finds there, so it must be yours alone (chown it, or give another --root; book 6.3)",
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        bail!(
            "{path:?} has mode {mode:04o}: others may write in it, and the runtime acts \
             on what it finds there (chmod go-w {}; book 6.3)",
            path.display()
        );
    }
    Ok(())
}
// ANCHOR_END: check_owned

/// Makes a directory of the data root (and those above it), mode 0755 whatever the umask
/// says, and checks it is the caller's own.
pub fn make_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("cannot create {dir:?}"))?;
    check_owned(dir)
}

// ANCHOR: write
/// Writes a record to a temporary name beside it, `.NAME.new`, and renames it into place:
/// a crash leaves the old record or the new one, never half of one. Mode 0644, so the
/// next start's [`check_owned`] accepts it whatever the umask.
pub fn write(path: &Path, text: &str) -> Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.new"));
    let mut file = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&temporary)
        .with_context(|| format!("cannot write {temporary:?}"))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {temporary:?}"))?;
    fs::rename(&temporary, path)
        .with_context(|| format!("cannot rename {temporary:?} to {path:?}"))
}
// ANCHOR_END: write

/// Whether a name in a records directory is a record being written by [`write`].
pub fn is_being_written(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".new")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_state_and_start_time_are_read_after_the_name() {
        let stat =
            "42 (a (b) c) Z 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 875460 0 0";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                state: 'Z',
                started: 875460
            })
        );
        assert_eq!(parse_stat("42 (no end"), None);
    }

    #[test]
    fn this_runtime_is_alive_and_one_started_at_another_time_is_not() {
        let this = Runtime::this().unwrap();
        assert!(this.is_alive());
        let reused = Runtime {
            started: this.started + 1,
            ..this
        };
        assert!(!reused.is_alive());
    }

    #[test]
    fn a_zombie_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let started = read_stat(pid).unwrap().started;
        // Not reaped yet: a zombie once it has exited.
        while read_stat(pid).is_some_and(|stat| stat.state != 'Z') {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!Runtime { pid, started }.is_alive());
        child.wait().unwrap();
    }

    #[test]
    fn runtimes_read_back_are_checked() {
        assert_eq!(
            Runtime::parse("42", "7"),
            Ok(Runtime {
                pid: 42,
                started: 7
            })
        );
        assert!(Runtime::parse("0", "7").is_err());
        assert!(Runtime::parse("-1", "7").is_err());
        assert!(Runtime::parse("42", "x").is_err());
    }

    #[test]
    fn only_twelve_lowercase_hex_digits_make_an_id() {
        assert!(is_id("9fece2f3287c"));
        for bad in [
            "",
            "9fece2f3287",
            "9fece2f3287c0",
            "9FECE2F3287C",
            "../../victim",
            "9fece2f3/87c",
        ] {
            assert!(!is_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_record_open_to_others_is_refused_and_one_written_here_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("9fece2f3287c");
        write(&path, "runtime 1 2\n").unwrap();
        check_owned(&path).unwrap();
        assert!(!dir.path().join(".9fece2f3287c.new").exists());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let error = check_owned(&path).unwrap_err().to_string();
        assert!(error.contains("has mode 0666"), "{error}");
        assert!(error.contains("chmod go-w"), "{error}");
    }
}

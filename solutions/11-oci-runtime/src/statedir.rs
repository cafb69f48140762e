//! The state directory: what outlives `create`. The runtime process that made the
//! container exits at once; `start`, `state`, `kill` and `delete` are new processes, and
//! all they know of the container is here, one directory per container under `--root`
//! (`/run/byoc` for root, as runc's `/run/runc`). Book: section 11.1.
//!
//! What is read back is checked before it is acted on, like chapter 6's records: the id
//! is checked before it becomes a path, and a PID is only signalled when the process
//! there started at the time the record says, so a container that ended long ago cannot
//! make `kill` hit whatever process has its number now.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::records;
use crate::userns::is_host_root;

/// The record's file, and the FIFO the container waits on until `start`.
pub const RECORD: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// The longest container id: podman's are 64 hex digits.
const MAX_ID: usize = 1024;

/// What `create` writes, for the commands after it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// When the process started, in clock ticks after boot (`/proc/PID/stat`'s 22nd
    /// field): with the PID, it names one process for the whole life of the machine.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub created: String,
    /// The cgroup below the top of each hierarchy, and whether one was made there.
    pub cgroups_path: PathBuf,
    pub has_cgroup: bool,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

// ANCHOR: status
/// What the spec's `state` says a container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Made, and waiting on its FIFO for `start`.
    Created,
    /// Its command runs.
    Running,
    /// Its process is gone (or a zombie that its parent has not collected yet).
    Stopped,
}
// ANCHOR_END: status

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

/// The directory of every container's state: `given` (`--root`), or the default;
/// made if missing, and refused unless it is the caller's alone.
pub fn state_root(given: Option<&Path>) -> Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None => default_state_root()?,
    };
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| {
                format!("cannot make the state directory {}", dir.display())
            })?;
    }
    records::check_owned(&dir)
        .map_err(|error| anyhow::anyhow!("the state directory {error:#}"))?;
    Ok(dir)
}

/// `/run/byoc` for the machine's root; `$XDG_RUNTIME_DIR/byoc` for anyone else.
fn default_state_root() -> Result<PathBuf> {
    if is_host_root() {
        return Ok(PathBuf::from("/run/byoc"));
    }
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|dir| !dir.is_empty())
        .context("XDG_RUNTIME_DIR is not set: give --root")?;
    Ok(PathBuf::from(runtime_dir).join("byoc"))
}

// ANCHOR: check_id
/// A container id as runc takes them: letters, digits, `_`, `+`, `-` and `.`, not
/// starting with a dot. Nothing else may become a directory's name: not `..`, not a `/`.
pub fn check_id(id: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+-.".contains(c);
    if id.is_empty()
        || id.len() > MAX_ID
        || id.starts_with('.')
        || !id.chars().all(allowed)
    {
        bail!(
            "{id:?} is not a container id: use up to {MAX_ID} letters, digits, _, +, - and \
             ., not starting with a dot"
        );
    }
    Ok(())
}
// ANCHOR_END: check_id

/// The directory of container `id`, which must exist.
pub fn existing(state_root: &Path, id: &str) -> Result<PathBuf> {
    check_id(id)?;
    let dir = state_root.join(id);
    if !dir.is_dir() {
        bail!("there is no container {id:?} (in {})", state_root.display());
    }
    Ok(dir)
}

/// Makes the directory of a new container `id`; it must not exist.
pub fn make(state_root: &Path, id: &str) -> Result<PathBuf> {
    check_id(id)?;
    let dir = state_root.join(id);
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => Ok(dir),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "a container {id:?} exists already: delete it first, or pick another id"
            )
        }
        Err(error) => {
            Err(error).with_context(|| format!("cannot make {}", dir.display()))
        }
    }
}

/// Writes the record: to a temporary name, then renamed, so a reader never sees half.
pub fn write_record(dir: &Path, record: &Record) -> Result<()> {
    let temporary = dir.join(format!(".{RECORD}.new"));
    fs::write(&temporary, serde_json::to_vec_pretty(record)?)?;
    fs::rename(&temporary, dir.join(RECORD))?;
    Ok(())
}

/// Reads the record back, and checks it: its id is the directory's, its PID a real one,
/// its cgroup path plain names.
pub fn read_record(dir: &Path, id: &str) -> Result<Record> {
    let path = dir.join(RECORD);
    records::check_owned(&path)?;
    let text =
        fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let record: Record = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a record the kit wrote", path.display()))?;
    if record.id != id || record.pid <= 1 {
        bail!("{} is not this container's record", path.display());
    }
    crate::plan::cgroups_path_of(record.cgroups_path.to_str(), id).with_context(
        || format!("{} names a cgroup the kit would not make", path.display()),
    )?;
    Ok(record)
}

// ANCHOR: status_of
/// The container's status now: stopped when its process is gone (or is no longer the
/// process the record names); created while the FIFO it waits on is there; else running.
pub fn status_of(dir: &Path, record: &Record) -> Status {
    // EXERCISE 11.2 (book 11.1): tell created, running and stopped apart
    // HINT: three facts decide: is the record's process alive, is it the same process
    // HINT: (its start time), and is the FIFO that `start` removes still there?
    // HINT 2: is_alive(pid, start) answers the first two at once; the FIFO is
    // HINT 2: dir.join(EXEC_FIFO).
    // HINT 3: if !is_alive(Pid::from_raw(record.pid), record.pid_start) { Status::Stopped }
    // HINT 3: else if dir.join(EXEC_FIFO).exists() { Status::Created } else { Status::Running }
    // TRIVIAL: Status::Running
    if !is_alive(Pid::from_raw(record.pid), record.pid_start) {
        Status::Stopped
    } else if dir.join(EXEC_FIFO).exists() {
        Status::Created
    } else {
        Status::Running
    }
    // END EXERCISE 11.2
}
// ANCHOR_END: status_of

/// Whether `pid` is a live process (not a zombie) that started at `start`.
pub fn is_alive(pid: Pid, start: u64) -> bool {
    matches!(stat_of(pid), Some((state, started)) if state != 'Z' && state != 'X' && started == start)
}

/// A process's state letter and start time, from `/proc/PID/stat`. The command's name
/// comes in brackets and may hold spaces and brackets itself, so the fields are counted
/// from the last `)`.
pub fn stat_of(pid: Pid) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: field 3 (state) is the first; field 22 (starttime) the 20th.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The PIDs of every container in the state directory, with their directories.
pub fn all_ids(state_root: &Path) -> Result<Vec<String>> {
    let mut ids: Vec<String> = fs::read_dir(state_root)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|id| check_id(id).is_ok())
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_leave_the_state_directory_are_refused() {
        for bad in ["", "..", ".hidden", "a/b", "a b", "x\0"] {
            assert!(check_id(bad).is_err(), "{bad:?} was taken");
        }
        for good in ["abc", "0123456789abcdef", "my_ctr-1.2+x"] {
            check_id(good).unwrap();
        }
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not_it() {
        let me = Pid::this();
        let (_, start) = stat_of(me).unwrap();
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
    }
}

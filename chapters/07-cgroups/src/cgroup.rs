// Your copy of solutions/07-cgroups/src/cgroup.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! A container's cgroup: made before the container starts, the container put in it before
//! it runs its command, and every process in it killed and the cgroup removed when it ends.
//! Book: chapter 7.
//!
//! Namespaces decide what a process can see; a cgroup decides how much it may use. The two
//! versions of the kernel's interface differ in where the files are and what they are
//! called, not in what is done with them, so both are behind one trait, [`Cgroup`], with
//! [`V2`] and [`V1`] under it (youki's `libcgroups` has the same shape).
//!
//! The cgroup is owned by an [`Owned`], whose `Drop` kills what is left in it and removes
//! it, on every way out of the runtime. For the one way out that runs no code, SIGKILL, the
//! runtime writes a record under its data root first (`cgroups/ID`: who made it, and its
//! directories); the next start finds records whose runtime has died, and removes their
//! cgroups.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, Uid};

use crate::cgroupfs;
use crate::hierarchy::{Hierarchy, V1Controller};
use crate::lease::Runtime;
use crate::limits::Limits;
use crate::trace;
use crate::v1::V1;
use crate::v2::V2;

/// The cgroup every container's goes under, unless `--cgroup-parent` says otherwise
/// (docker's is `docker`).
pub const DEFAULT_PARENT: &str = "byoc";

/// The most levels a `--cgroup-parent` may have, and the longest name of each level: room
/// for any real layout (`system.slice/ci.slice/byoc`), and an error about it fits a line.
pub const MAX_PARENT_LEVELS: usize = 16;
pub const MAX_NAME_BYTES: usize = 64;

// ANCHOR: parse_parent
/// `--cgroup-parent`: a relative path of plain names under the top of the tree, which
/// cannot climb out of it. Checked before anything is made, so a parent that cannot work
/// never leaves half of itself behind.
pub fn parse_parent(text: &str) -> Result<PathBuf> {
    let names: Vec<&str> = text.split('/').collect();
    if names.len() > MAX_PARENT_LEVELS {
        bail!(
            "--cgroup-parent has {} levels, more than {MAX_PARENT_LEVELS}: give a short \
             relative path such as byoc or ci/byoc (book 7.2)",
            names.len()
        );
    }
    for name in names {
        if let Some(problem) = problem_with_name(name) {
            bail!(
                "--cgroup-parent {text:?} is not a cgroup parent: {problem}; give a relative \
                 path of plain names such as byoc or ci/byoc (book 7.2)"
            );
        }
    }
    Ok(PathBuf::from(text))
}
// ANCHOR_END: parse_parent

/// What is wrong with one level of a cgroup parent, if anything.
fn problem_with_name(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("it has an empty level (a / at the start or the end, or //)".to_string())
    } else if name == "." || name == ".." {
        Some(format!("{name:?} would climb out of the cgroup tree"))
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!(
            "a level of {} bytes is longer than {MAX_NAME_BYTES}",
            name.len()
        ))
    } else if name.chars().any(char::is_control) {
        Some(format!(
            "{name:?} has a newline or another control character"
        ))
    } else {
        None
    }
}

// ANCHOR: trait
/// What the runtime does with a container's cgroup, on either version.
pub trait Cgroup: std::fmt::Debug {
    /// `v1` or `v2`.
    fn version(&self) -> &'static str;
    /// Its directories, each with the controller it is for (`v2` for v2's only one).
    fn dirs(&self) -> Vec<(String, PathBuf)>;
    /// Makes its directories, and what they need above them; adds each it made to `made`.
    fn make(&self, made: &mut Vec<PathBuf>) -> Result<()>;
    /// Writes the limits into it.
    fn apply(&self, limits: &Limits) -> Result<()>;
    /// Puts a process in it. Its children are born in it.
    fn add(&self, pid: Pid) -> Result<()>;
    /// How many times the kernel has killed a process in it for lack of memory.
    fn oom_kills(&self) -> u64;
    /// The processes in it now.
    fn processes(&self) -> Result<Vec<i32>>;
    /// Kills every process in it.
    fn kill_all(&self) -> Result<()>;
}
// ANCHOR_END: trait

// ANCHOR: place
/// Puts `pid` in the cgroup at `dir`: its number, written into `cgroup.procs`. The same on
/// v1 and v2; on v1 it is done once in each controller's tree.
pub fn place(dir: &Path, pid: Pid) -> Result<()> {
    // TODO: EXERCISE 7.2 (book 7.2): put the process in the cgroup
    // HINT: a cgroup is a directory; its file cgroup.procs lists the processes in it.
    // HINT: writing a PID into that file moves the process (and its future children) there.
    // HINT: cgroupfs::write(dir, "cgroup.procs", &pid.to_string()) writes it, and narrates it.
    todo!("exercise 7.2: put the process in the cgroup (book section 7.2)")
}
// ANCHOR_END: place

/// Where a container's cgroup can go on this machine, for this user; decided before
/// anything is made.
#[derive(Debug, Clone)]
pub enum Placement {
    /// Under `top` in the v2 tree: its root, or the subtree delegated to this user.
    V2 { top: PathBuf },
    /// At the top of each v1 controller's tree.
    V1 { controllers: Vec<V1Controller> },
}

// ANCHOR: locate
/// Where the container's cgroup goes, or `None` for a container without one (an ordinary
/// user with no cgroup of their own to give, who asked for no limit).
pub fn locate(
    hierarchy: &Hierarchy,
    limits: &Limits,
    machine_root: bool,
) -> Result<Option<Placement>> {
    let placement = match hierarchy {
        Hierarchy::V2 { mount, .. } if machine_root => Some(Placement::V2 { top: mount.clone() }),
        Hierarchy::V1 { controllers } if machine_root => Some(Placement::V1 {
            controllers: controllers.clone(),
        }),
        Hierarchy::V2 { mount, own } => delegated(mount, own).map(|top| Placement::V2 { top }),
        Hierarchy::V1 { .. } => None,
    };
    if placement.is_none() && limits.any() {
        bail!("{}", no_cgroup_to_use(hierarchy));
    }
    Ok(placement)
}
// ANCHOR_END: locate

/// Why an ordinary user cannot have a limit here.
fn no_cgroup_to_use(hierarchy: &Hierarchy) -> String {
    match hierarchy {
        Hierarchy::V1 { .. } => "a limit needs a cgroup of the container's own, and cgroup v1 \
            cannot hand one to an ordinary user: every v1 cgroup belongs to root. Run as root, \
            or on a machine with cgroup v2 (book 7.6)"
            .to_string(),
        Hierarchy::V2 { own, .. } => format!(
            "a limit needs a cgroup of the container's own, and your cgroup ({}) is not yours \
             to divide: it was not delegated to you. systemd delegates user@UID.service to \
             each user (Delegate=yes); from a login shell, run the runtime in a delegated \
             scope: systemd-run --user --scope -p Delegate=yes byoc run ... (book 7.6)",
            own.display()
        ),
    }
}

/// The top of the subtree delegated to this user, if this process is in one: going up from
/// its own cgroup, the last directory that still belongs to the user.
fn delegated(mount: &Path, own: &Path) -> Option<PathBuf> {
    let me = Uid::effective().as_raw();
    let owned_by_me = |dir: &Path| {
        let owner = fs::metadata(dir).map(|meta| std::os::unix::fs::MetadataExt::uid(&meta));
        owner.is_ok_and(|owner| owner == me)
    };
    let mut top = mount.join(own.strip_prefix("/").unwrap_or(own));
    if !owned_by_me(&top) {
        return None;
    }
    while let Some(parent) = top
        .parent()
        .filter(|parent| parent.starts_with(mount) && *parent != mount)
    {
        if !owned_by_me(parent) {
            break;
        }
        top = parent.to_path_buf();
    }
    Some(top)
}

/// A container's cgroup that removes itself, and its record, when dropped.
#[derive(Debug)]
pub struct Owned {
    pub cgroup: Box<dyn Cgroup>,
    record: PathBuf,
}

// ANCHOR: create
/// Makes the container's cgroup `parent/id` with its limits, after removing those of
/// runtimes that died without doing it themselves.
pub fn create(
    placement: &Placement,
    parent: &Path,
    id: &str,
    limits: &Limits,
    data_root: &Path,
) -> Result<Owned> {
    reclaim_dead(data_root)?;
    let cgroup: Box<dyn Cgroup> = match placement {
        Placement::V2 { top } => Box::new(V2::new(top, parent, id)),
        Placement::V1 { controllers } => Box::new(V1::new(controllers, parent, id)),
    };
    // The record first: a runtime killed between these lines leaves a record of a cgroup
    // that may not exist yet, which is harmless; the other way round it would leave a
    // cgroup that nothing knows of.
    let record = write_record(data_root, id, &cgroup.dirs())?;
    let owned = Owned { cgroup, record };
    // A failure part way removes every directory this run made, the parent's levels too.
    let mut made = Vec::new();
    let result = owned.cgroup.make(&mut made);
    if let Err(error) = result.and_then(|()| owned.cgroup.apply(limits)) {
        remove_made(&made);
        return Err(error);
    }
    Ok(owned)
}
// ANCHOR_END: create

/// Removes the directories that one run made, the deepest first. Best effort: the error
/// that made the run fail is the one to report.
fn remove_made(made: &[PathBuf]) {
    for dir in made.iter().rev() {
        let _ = cgroupfs::remove_dir(dir);
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        match remove(self.cgroup.as_ref()) {
            Ok(()) => {
                let _ = fs::remove_file(&self.record);
            }
            Err(error) => eprintln!("byoc: cannot remove the container's cgroup: {error:#}"),
        }
    }
}

// ANCHOR: remove
/// Kills every process left in the cgroup, waits until the kernel has taken them out, and
/// removes its directories.
pub fn remove(cgroup: &dyn Cgroup) -> Result<()> {
    let dirs = cgroup.dirs();
    if dirs.iter().all(|(_, dir)| !dir.exists()) {
        return Ok(()); // never made, or removed already
    }
    cgroup.kill_all()?;
    wait_until_empty(cgroup)?;
    for (_, dir) in dirs {
        cgroupfs::remove_dir(&dir)?;
    }
    Ok(())
}
// ANCHOR_END: remove

/// A killed process leaves its cgroup when it has fully died, a moment after the signal.
fn wait_until_empty(cgroup: &dyn Cgroup) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = cgroup.processes()?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("processes {left:?} were still in the cgroup 5 s after SIGKILL");
        }
        sleep(Duration::from_millis(2));
    }
}

/// Sends SIGKILL to each process listed in the cgroup, once: on v1 once frozen, so none can
/// fork meanwhile; on v2 before Linux 5.14 (no `cgroup.kill`), where a process that forks
/// between the reading and the killing would survive, and [`remove`] would say so.
pub fn kill_each(cgroup: &dyn Cgroup) -> Result<()> {
    for pid in cgroup.processes()? {
        let pid = Pid::from_raw(pid);
        // It may have died since the list was read: ESRCH is no error here.
        let _ = trace::syscall(
            format_args!("kill({pid}, SIGKILL)"),
            kill(pid, Signal::SIGKILL),
        );
    }
    Ok(())
}

// ANCHOR: out_of_memory
/// What to tell the user when the kernel killed a process of the container for memory:
/// `killed: out of memory (limit 64 MiB)`, as docker marks it `OOMKilled`. `code` is the
/// container's exit code (137 when its own command was killed, 128 + SIGKILL).
pub fn out_of_memory(cgroup: &dyn Cgroup, limits: &Limits, code: u8) -> Option<String> {
    // TODO: EXERCISE 7.3 (book 7.3): report a kill for lack of memory
    // HINT: cgroup.oom_kills() counts the processes the kernel killed for memory; 0: say nothing.
    // HINT: name the limit when there was one: limits.memory is Option<Bytes>, shown as "64 MiB".
    // HINT: code 137 means the command itself was killed: "killed: out of memory (limit 64 MiB)";
    // HINT: else one of its processes was: "a process was killed: out of memory (limit 64 MiB)".
    todo!("exercise 7.3: report a kill for lack of memory (book section 7.3)")
}
// ANCHOR_END: out_of_memory

/// `DATA_ROOT/cgroups/ID`: the runtime that made the cgroup, and its directories.
fn write_record(data_root: &Path, id: &str, dirs: &[(String, PathBuf)]) -> Result<PathBuf> {
    let records = data_root.join("cgroups");
    fs::create_dir_all(&records).with_context(|| format!("cannot make {records:?}"))?;
    let runtime = Runtime::this()?;
    let mut text = format!("runtime {} {}\n", runtime.pid, runtime.started);
    for (controller, dir) in dirs {
        text.push_str(&format!("dir {controller} {}\n", dir.display()));
    }
    let path = records.join(id);
    let temporary = records.join(format!(".{id}.new"));
    fs::write(&temporary, text).with_context(|| format!("cannot write {temporary:?}"))?;
    fs::rename(&temporary, &path)
        .with_context(|| format!("cannot rename {temporary:?} to {path:?}"))?;
    Ok(path)
}

/// A record read back: who made the cgroup, and where it is.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    runtime: Runtime,
    dirs: Vec<(String, PathBuf)>,
}

fn parse_record(text: &str) -> Option<Record> {
    let mut lines = text.lines();
    let mut owner = lines.next()?.strip_prefix("runtime ")?.split(' ');
    let runtime = Runtime {
        pid: owner.next()?.parse().ok()?,
        started: owner.next()?.parse().ok()?,
    };
    let dirs = lines
        .map(|line| {
            let (controller, dir) = line.strip_prefix("dir ")?.split_once(' ')?;
            Some((controller.to_string(), PathBuf::from(dir)))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Record { runtime, dirs })
}

/// The cgroups of runtimes that have died (killed with SIGKILL, say) are removed, with their
/// records.
fn reclaim_dead(data_root: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(data_root.join("cgroups")) else {
        return Ok(()); // no record yet
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(record) = fs::read_to_string(&path)
            .ok()
            .as_deref()
            .and_then(parse_record)
        else {
            continue; // a record being written (`.ID.new`), or not one of ours
        };
        if record.runtime.is_alive() {
            continue;
        }
        trace::say(format_args!(
            "reclaiming the cgroup of a runtime that died: {}",
            path.display()
        ));
        remove(from_record(record.dirs).as_ref())?;
        fs::remove_file(&path).with_context(|| format!("cannot remove {path:?}"))?;
    }
    Ok(())
}

/// A cgroup known only by its record's directories.
fn from_record(dirs: Vec<(String, PathBuf)>) -> Box<dyn Cgroup> {
    match dirs.as_slice() {
        [(version, dir)] if version == "v2" => Box::new(V2::at(dir)),
        _ => Box::new(V1 { dirs }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_parent_is_a_short_path_of_plain_names() {
        assert_eq!(parse_parent("ci/byoc").unwrap(), PathBuf::from("ci/byoc"));
        let error = |text: &str| parse_parent(text).unwrap_err().to_string();
        let deep = vec!["a"; 600].join("/");
        assert!(
            error(&deep).contains("600 levels, more than 16"),
            "{}",
            error(&deep)
        );
        assert!(parse_parent(&vec!["a"; 16].join("/")).is_ok());
        let long = "x".repeat(65);
        assert!(error(&long).contains("65 bytes"), "{}", error(&long));
        assert!(parse_parent(&"x".repeat(64)).is_ok());
        for bad in [
            "", "/byoc", "byoc/", "a//b", "..", "a/../b", ".", "a\nb", "a\tb",
        ] {
            let message = error(bad);
            assert!(
                message.contains("is not a cgroup parent"),
                "{bad:?}: {message}"
            );
            assert!(!message.contains('\n'), "{bad:?}: {message}");
        }
    }

    #[test]
    fn records_read_back() {
        let text =
            "runtime 42 1234\ndir memory /sys/fs/cgroup/memory/byoc/ab\ndir pids /p/byoc/ab\n";
        assert_eq!(
            parse_record(text),
            Some(Record {
                runtime: Runtime {
                    pid: 42,
                    started: 1234
                },
                dirs: vec![
                    ("memory".into(), "/sys/fs/cgroup/memory/byoc/ab".into()),
                    ("pids".into(), "/p/byoc/ab".into()),
                ],
            })
        );
        assert_eq!(parse_record("something else\n"), None);
    }

    #[test]
    fn an_ordinary_user_without_delegation_gets_no_cgroup_unless_a_limit_is_asked() {
        let v1 = Hierarchy::V1 {
            controllers: Vec::new(),
        };
        assert!(locate(&v1, &Limits::default(), false).unwrap().is_none());
        let limits = Limits {
            pids: Some(10),
            ..Limits::default()
        };
        let error = locate(&v1, &limits, false).unwrap_err().to_string();
        assert!(
            error.contains("cgroup v1 cannot hand one to an ordinary user"),
            "{error}"
        );
    }
}

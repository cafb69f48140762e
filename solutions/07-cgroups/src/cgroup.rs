//! A container's cgroup: made before the container starts, the container put in it before
//! it runs its command, and every process in it killed and the cgroup removed when it
//! ends. Book: chapter 7.
//!
//! Namespaces decide what a process can see; a cgroup decides how much it may use. The
//! two versions of the kernel's interface differ in where the files are and what they are
//! called, not in what is done with them, so both are behind one trait, [`Cgroup`], with
//! [`V2`] and [`V1`] under it (youki's `libcgroups` has the same shape).
//!
//! The cgroup is owned by an [`Owned`], whose `Drop` kills what is left in it and removes
//! it, on every way out of the runtime. For the one way out that runs no code, SIGKILL,
//! the runtime writes a record under its data root first (`cgroups/ID`: who made it, and
//! under which parent); the next start with the same parent finds records whose runtime
//! has died, and removes their cgroups. What it removes is rebuilt from its own
//! hierarchy, its own parent and the record's id, never read from the record
//! ([`crate::records`]): a record could have been planted to name any cgroup on the
//! machine.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, Uid};

use crate::cgroupfs;
use crate::dataroot;
use crate::hierarchy::{Hierarchy, V1Controller};
use crate::limits::Limits;
use crate::process::Ended;
use crate::records::{self, Runtime};
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
             relative path such as byoc or ci/byoc (book 7.8)",
            names.len()
        );
    }
    for name in names {
        if let Some(problem) = problem_with_name(name) {
            bail!(
                "--cgroup-parent {text:?} is not a cgroup parent: {problem}; give a \
                 relative path of plain names such as byoc or ci/byoc (book 7.8)"
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
/// Puts `pid` in the cgroup at `dir`: its number, written into `cgroup.procs`. The same
/// on v1 and v2; on v1 it is done once in each controller's tree.
pub fn place(dir: &Path, pid: Pid) -> Result<()> {
    // EXERCISE 7.1 (book 7.2): put the process in the cgroup
    // HINT: a cgroup is a directory, and one of its files lists the processes in it.
    // HINT: Writing a PID into that file moves the process there. Read section 7.2.
    // HINT 2: the file is cgroup.procs. cgroupfs::write(dir, file, text) writes one file
    // HINT 2: of a cgroup, and narrates it for --trace.
    // HINT 3: one write, of pid.to_string(), with ?; then Ok(()).
    // TRIVIAL: Ok(())
    cgroupfs::write(dir, "cgroup.procs", &pid.to_string())?;
    Ok(())
    // END EXERCISE 7.1
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
        Hierarchy::V2 { mount, .. } if machine_root => {
            Some(Placement::V2 { top: mount.clone() })
        }
        Hierarchy::V1 { controllers } if machine_root => Some(Placement::V1 {
            controllers: controllers.clone(),
        }),
        Hierarchy::V2 { mount, own } => {
            delegated(mount, own).map(|top| Placement::V2 { top })
        }
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
        Hierarchy::V1 { .. } => "a limit needs a cgroup of the container's own, and \
            cgroup v1 cannot hand one to an ordinary user: every v1 cgroup belongs to \
            root. Run as root, or on a machine with cgroup v2 (book 7.6)"
            .to_string(),
        Hierarchy::V2 { own, .. } => format!(
            "a limit needs a cgroup of the container's own, and your cgroup ({}) is not \
             yours to divide: it was not delegated to you. systemd delegates \
             user@UID.service to each user (Delegate=yes); from a login shell, run the \
             runtime in a delegated scope: systemd-run --user --scope -p Delegate=yes byoc run ... (book 7.6)",
            own.display()
        ),
    }
}

/// The top of the subtree delegated to this user, if this process is in one: going up
/// from its own cgroup, the last directory that still belongs to the user.
fn delegated(mount: &Path, own: &Path) -> Option<PathBuf> {
    let me = Uid::effective().as_raw();
    let owned_by_me = |dir: &Path| {
        let owner =
            fs::metadata(dir).map(|meta| std::os::unix::fs::MetadataExt::uid(&meta));
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

/// The container's cgroup, with its limits, where [`locate`] found it a place; `None`
/// where it found none (no limit asked for, and no tree this user may divide).
pub fn create_if_placed(
    placement: Option<&Placement>,
    parent: &Path,
    id: &str,
    limits: &Limits,
    data_root: &Path,
) -> Result<Option<Owned>> {
    let Some(placement) = placement else {
        trace::say(format_args!(
            "no cgroup of its own: none asked for, none to divide"
        ));
        return Ok(None);
    };
    create(placement, parent, id, limits, data_root).map(Some)
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
    reclaim_dead(placement, parent, data_root)?;
    let cgroup = container_cgroup(placement, parent, id);
    // The record first: a runtime killed between these lines leaves a record of a cgroup
    // that may not exist yet, which is harmless; the other way round it would leave a
    // cgroup that nothing knows of.
    let record = write_record(data_root, id, parent)?;
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

/// The cgroup of container `id`: `parent/id` where `placement` says, on this machine.
fn container_cgroup(placement: &Placement, parent: &Path, id: &str) -> Box<dyn Cgroup> {
    match placement {
        Placement::V2 { top } => Box::new(V2::new(top, parent, id)),
        Placement::V1 { controllers } => Box::new(V1::new(controllers, parent, id)),
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        match remove(self.cgroup.as_ref()) {
            Ok(()) => {
                let _ = fs::remove_file(&self.record);
            }
            Err(error) => {
                eprintln!("byoc: cannot remove the container's cgroup: {error:#}")
            }
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

/// Sends SIGKILL to each process listed in the cgroup, once: on v1 once frozen, so none
/// can fork meanwhile; on v2 before Linux 5.14 (no `cgroup.kill`), where a process that
/// forks between the reading and the killing would survive, and [`remove`] would say so.
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

// ANCHOR: report_out_of_memory
/// One line on stderr when the kernel killed the container, or a process in it, for
/// memory.
pub fn report_out_of_memory(cgroup: Option<&Owned>, limits: &Limits, ended: Ended) {
    let report =
        cgroup.and_then(|owned| out_of_memory(owned.cgroup.as_ref(), limits, ended));
    if let Some(line) = report {
        eprintln!("byoc: {line}");
    }
}
// ANCHOR_END: report_out_of_memory

// ANCHOR: out_of_memory
/// What to tell the user when the kernel killed a process of the container for memory:
/// `killed: out of memory (limit 64 MiB)`, as docker marks it `OOMKilled`. `ended` is how
/// the container's first process ended: killed by `SIGKILL`, or exited with a code (a
/// shell whose child was killed exits with 137 too, and the container lived on).
pub fn out_of_memory(
    cgroup: &dyn Cgroup,
    limits: &Limits,
    ended: Ended,
) -> Option<String> {
    // EXERCISE 7.2 (book 7.3): report a kill for lack of memory
    // HINT: the cgroup counts the processes the kernel killed for lack of memory. None
    // HINT: killed: say nothing. Else say who was killed, and the limit if there was one.
    // HINT: Read section 7.3.
    // HINT 2: cgroup.oom_kills() is the count. limits.memory is an Option<Bytes>, shown
    // HINT 2: as "64 MiB". ended.signal is Some(SIGKILL) when the command itself was
    // HINT 2: killed (its exit code alone cannot tell: a shell passes a killed child's
    // HINT 2: 137 on).
    // HINT 3: the line is "killed: out of memory (limit 64 MiB)" for the command, or "a
    // HINT 3: process was killed: out of memory (limit 64 MiB)" for another; without a
    // HINT 3: limit, no brackets.
    // TRIVIAL: None
    if cgroup.oom_kills() == 0 {
        return None;
    }
    let limit = match limits.memory {
        Some(memory) => format!(" (limit {memory})"),
        None => String::new(),
    };
    let who = if ended.signal == Some(Signal::SIGKILL) {
        "killed"
    } else {
        "a process was killed"
    };
    Some(format!("{who}: out of memory{limit}"))
    // END EXERCISE 7.2
}
// ANCHOR_END: out_of_memory

/// `DATA_ROOT/cgroups/ID`: the runtime that made the cgroup, and the parent it is under.
fn write_record(data_root: &Path, id: &str, parent: &Path) -> Result<PathBuf> {
    let records = dataroot::cgroup_records(data_root);
    records::make_dir(&records)?;
    let runtime = Runtime::this()?;
    let text = format!(
        "runtime {} {}\nparent {}\n",
        runtime.pid,
        runtime.started,
        parent.display()
    );
    let path = records.join(id);
    records::write(&path, &text)?;
    Ok(path)
}

/// A record read back: who made the cgroup, and under which parent.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    runtime: Runtime,
    parent: PathBuf,
}

// ANCHOR: parse_record
/// `runtime PID START` and `parent PATH`, and nothing else: a record that names
/// directories (as a planted one would) is not the kit's.
fn parse_record(text: &str) -> Result<Record, String> {
    let lines: Vec<&str> = text.lines().collect();
    let [owner, parent] = lines[..] else {
        return Err("not two lines: runtime PID START, parent PATH".to_string());
    };
    let not_ours = |line: &str| format!("{line:?} is not a line of the kit's");
    let owner: Vec<&str> = owner.split(' ').collect();
    let ["runtime", pid, started] = owner[..] else {
        return Err(not_ours(&owner.join(" ")));
    };
    let parent = parent
        .strip_prefix("parent ")
        .filter(|parent| !parent.is_empty())
        .ok_or_else(|| not_ours(parent))?;
    Ok(Record {
        runtime: Runtime::parse(pid, started)?,
        parent: PathBuf::from(parent),
    })
}
// ANCHOR_END: parse_record

// ANCHOR: reclaim_dead
/// The cgroups of runtimes that have died (killed with SIGKILL, say) under `parent` are
/// removed, with their records. Each cgroup is rebuilt from this runtime's own placement,
/// `parent` and the record's id: a record can only ever lead to `parent/ID`. Records of
/// other parents are left to a start with that parent.
fn reclaim_dead(placement: &Placement, parent: &Path, data_root: &Path) -> Result<()> {
    let dir = dataroot::cgroup_records(data_root);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(()); // no record yet
    };
    records::check_owned(&dir)?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {dir:?}"))?;
        let id = entry.file_name().to_string_lossy().into_owned();
        if records::is_being_written(&id) {
            continue;
        }
        let record = match read_record(&entry) {
            Ok(record) => record,
            Err(Unread::Ignored(why)) => {
                records::ignored(&dir, &id, &why);
                continue;
            }
            Err(Unread::Refused(error)) => return Err(error),
        };
        if record.runtime.is_alive() || record.parent != parent {
            continue;
        }
        let path = entry.path();
        trace::say(format_args!(
            "reclaiming the cgroup of a runtime that died: {}",
            path.display()
        ));
        remove(container_cgroup(placement, parent, &id).as_ref())?;
        fs::remove_file(&path).with_context(|| format!("cannot remove {path:?}"))?;
    }
    Ok(())
}
// ANCHOR_END: reclaim_dead

/// Why a record was not read: it is not one of the kit's (left alone), or it is not the
/// caller's own (the runtime refuses to go on).
enum Unread {
    Ignored(String),
    Refused(anyhow::Error),
}

/// The record at `entry`, checked: named by an id, a file of the caller's own, as the kit
/// writes them.
fn read_record(entry: &fs::DirEntry) -> Result<Record, Unread> {
    let id = entry.file_name().to_string_lossy().into_owned();
    records::check_id(&id).map_err(Unread::Ignored)?;
    let path = entry.path();
    records::check_owned(&path).map_err(Unread::Refused)?;
    if !entry.file_type().is_ok_and(|kind| kind.is_file()) {
        return Err(Unread::Ignored("not a file".to_string()));
    }
    let text = fs::read_to_string(&path)
        .with_context(|| format!("cannot read {path:?}"))
        .map_err(Unread::Refused)?;
    parse_record(&text).map_err(Unread::Ignored)
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
        assert_eq!(
            parse_record("runtime 42 1234\nparent ci/byoc\n"),
            Ok(Record {
                runtime: Runtime {
                    pid: 42,
                    started: 1234
                },
                parent: "ci/byoc".into(),
            })
        );
    }

    #[test]
    fn a_record_that_names_directories_or_bad_numbers_is_not_the_kits() {
        let planted = "runtime 2147483647 0\ndir pids /sys/fs/cgroup/pids/victim\n";
        let why = parse_record(planted).unwrap_err();
        assert!(why.contains("dir pids"), "{why}");
        for bad in [
            "runtime 0 0\nparent byoc\n",
            "runtime 42 x\nparent byoc\n",
            "runtime 42 1\nparent \n",
            "runtime 42 1\nparent byoc\ndir v2 /sys/fs/cgroup\n",
            "something else\n",
        ] {
            assert!(parse_record(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_record_is_reclaimed_only_as_the_containers_own_cgroup_under_the_parent() {
        let data_root = tempfile::tempdir().unwrap();
        let top = tempfile::tempdir().unwrap();
        let placement = Placement::V2 {
            top: top.path().to_path_buf(),
        };
        let victim = top.path().join("victim");
        fs::create_dir(&victim).unwrap();
        let records = data_root.path().join("cgroups");
        records::make_dir(&records).unwrap();
        let planted = format!("runtime 2147483647 0\ndir v2 {}\n", victim.display());
        records::write(&records.join("aaaaaaaaaaaa"), &planted).unwrap();
        records::write(
            &records.join("victim"),
            "runtime 2147483647 0\nparent byoc\n",
        )
        .unwrap();
        let other_parent = "runtime 2147483647 0\nparent elsewhere\n";
        records::write(&records.join("bbbbbbbbbbbb"), other_parent).unwrap();
        reclaim_dead(&placement, Path::new("byoc"), data_root.path()).unwrap();
        assert!(victim.is_dir());
        for kept in ["aaaaaaaaaaaa", "victim", "bbbbbbbbbbbb"] {
            assert!(records.join(kept).exists(), "{kept}");
        }
        // A dead runtime's record under this parent goes, with its (missing) cgroup.
        records::write(
            &records.join("cccccccccccc"),
            "runtime 2147483647 0\nparent byoc\n",
        )
        .unwrap();
        reclaim_dead(&placement, Path::new("byoc"), data_root.path()).unwrap();
        assert!(!records.join("cccccccccccc").exists());
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

//! Leases: which container has which address on the bridge. Book: section 6.3.
//!
//! A small text file under the data root, one line per container: its address, its id, and
//! the runtime that holds it (PID and start time, so a reused PID is not mistaken for it).
//! A first line, `last ADDRESS`, remembers the address given out last: addresses are given
//! in turn, as docker's are, so one given back is not given again at once. A container's
//! cable goes with its network namespace, which the kernel removes a moment after the
//! container's last process, in its own time; until then that address still answers on
//! the bridge.
//! Every change happens under a lock, so two containers started at the same moment never
//! get the same address; a line whose runtime has died (killed with SIGKILL, say) is
//! reclaimed by the next start.

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};

use crate::subnet::Subnet;

/// One line of the lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub address: Ipv4Addr,
    pub id: String,
    pub runtime: Runtime,
}

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
        let started = start_time(pid).context("cannot read this runtime's start time")?;
        Ok(Runtime { pid, started })
    }

    /// Whether the process is still the one that took the lease.
    pub fn is_alive(&self) -> bool {
        start_time(self.pid).is_some_and(|started| started == self.started)
    }
}

/// When a process started, in clock ticks since boot (field 22 of `/proc/PID/stat`).
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// The lease file of one bridge, and its lock.
#[derive(Debug)]
pub struct LeaseFile {
    path: PathBuf,
    lock: PathBuf,
}

/// The lease file, locked: only one runtime at a time reads and rewrites it.
pub struct Locked<'a> {
    file: &'a LeaseFile,
    _lock: Flock<File>,
    pub entries: Vec<Entry>,
    /// The address given out last, where the next search starts.
    pub last: Option<Ipv4Addr>,
}

impl LeaseFile {
    /// The leases of `bridge`, kept in `dir` (the data root's `networks/`).
    pub fn new(dir: &Path, bridge: &str) -> Result<LeaseFile> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {dir:?}"))?;
        Ok(LeaseFile {
            path: dir.join(format!("{bridge}.leases")),
            lock: dir.join(format!("{bridge}.lock")),
        })
    }

    /// Waits for the lock, and reads the leases.
    pub fn lock(&self) -> Result<Locked<'_>> {
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .with_context(|| format!("cannot open {:?}", self.lock))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .with_context(|| format!("cannot lock {:?}", self.lock))?;
        let (last, entries) = self.read()?;
        Ok(Locked {
            file: self,
            _lock: lock,
            entries,
            last,
        })
    }

    /// The `last` line, if there is one, and the leases.
    fn read(&self) -> Result<(Option<Ipv4Addr>, Vec<Entry>)> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {:?}", self.path))
            }
        };
        let mut lines = text.lines().peekable();
        let last = match lines.peek().and_then(|line| line.strip_prefix("last ")) {
            Some(address) => {
                let address = address.parse().with_context(|| {
                    format!(
                        "{:?} has a line the kit did not write: last {address:?}",
                        self.path
                    )
                })?;
                lines.next();
                Some(address)
            }
            None => None,
        };
        let entries = lines
            .map(|line| {
                parse_entry(line).with_context(|| {
                    format!("{:?} has a line the kit did not write: {line:?}", self.path)
                })
            })
            .collect::<Result<_>>()?;
        Ok((last, entries))
    }
}

fn parse_entry(line: &str) -> Result<Entry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [address, id, pid, started] = fields[..] else {
        bail!("not ADDRESS ID PID START");
    };
    Ok(Entry {
        address: address.parse()?,
        id: id.to_string(),
        runtime: Runtime {
            pid: pid.parse()?,
            started: started.parse()?,
        },
    })
}

impl Locked<'_> {
    // ANCHOR: take
    /// Takes the next free address of `subnet` for container `id`: the first free one after
    /// the address given out last, going round to the start of the subnet at its end.
    pub fn take(&mut self, subnet: &Subnet, id: &str) -> Result<Ipv4Addr> {
        let taken = |address: &Ipv4Addr| self.entries.iter().any(|entry| entry.address == *address);
        let all: Vec<Ipv4Addr> = subnet.container_addresses().collect();
        let after_last = match self.last {
            Some(last) => all
                .iter()
                .position(|address| *address == last)
                .map_or(0, |n| n + 1),
            None => 0,
        };
        let in_turn = all[after_last..].iter().chain(&all[..after_last]);
        let Some(&address) = in_turn.into_iter().find(|address| !taken(address)) else {
            bail!(
                "no free address in {subnet}: {} containers hold them all (stop one, or choose a \
                 larger subnet with --subnet)",
                self.entries.len()
            );
        };
        self.entries.push(Entry {
            address,
            id: id.to_string(),
            runtime: Runtime::this()?,
        });
        self.last = Some(address);
        self.save()?;
        Ok(address)
    }
    // ANCHOR_END: take

    /// Gives back container `id`'s address.
    pub fn release(&mut self, id: &str) -> Result<()> {
        self.entries.retain(|entry| entry.id != id);
        self.save()
    }

    /// Removes the leases whose runtime has died, and returns them, so their other records
    /// can be cleaned up too.
    pub fn reclaim_dead(&mut self) -> Result<Vec<Entry>> {
        let (alive, dead): (Vec<Entry>, Vec<Entry>) = self
            .entries
            .drain(..)
            .partition(|entry| entry.runtime.is_alive());
        self.entries = alive;
        if !dead.is_empty() {
            self.save()?;
        }
        Ok(dead)
    }

    /// Writes the leases to a temporary file and renames it into place: a crash leaves the
    /// old file or the new one, never half of one.
    fn save(&self) -> Result<()> {
        let mut text: String = self
            .last
            .map(|last| format!("last {last}\n"))
            .unwrap_or_default();
        for entry in &self.entries {
            text.push_str(&format!(
                "{} {} {} {}\n",
                entry.address, entry.id, entry.runtime.pid, entry.runtime.started
            ));
        }
        let temporary = self.file.path.with_extension("leases.new");
        fs::write(&temporary, text).with_context(|| format!("cannot write {temporary:?}"))?;
        fs::rename(&temporary, &self.file.path)
            .with_context(|| format!("cannot rename {temporary:?} to {:?}", self.file.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_taken_in_turn_and_an_address_given_back_waits_its_turn() {
        let dir = tempfile::tempdir().unwrap();
        let file = LeaseFile::new(dir.path(), "byoc0").unwrap();
        let subnet: Subnet = "10.99.0.0/29".parse().unwrap();
        let mut locked = file.lock().unwrap();
        assert_eq!(
            locked.take(&subnet, "a").unwrap(),
            Ipv4Addr::new(10, 99, 0, 2)
        );
        assert_eq!(
            locked.take(&subnet, "b").unwrap(),
            Ipv4Addr::new(10, 99, 0, 3)
        );
        locked.release("a").unwrap();
        // .2 is free again, but its turn comes after the rest of the subnet's.
        assert_eq!(
            locked.take(&subnet, "c").unwrap(),
            Ipv4Addr::new(10, 99, 0, 4)
        );
        drop(locked);
        let mut again = file.lock().unwrap();
        let ids: Vec<&str> = again
            .entries
            .iter()
            .map(|entry| entry.id.as_str())
            .collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(again.last, Some(Ipv4Addr::new(10, 99, 0, 4)));
        // A /29 has .2 to .6 for containers: after .6, round to .2.
        again.take(&subnet, "d").unwrap();
        again.take(&subnet, "e").unwrap();
        assert_eq!(
            again.take(&subnet, "f").unwrap(),
            Ipv4Addr::new(10, 99, 0, 2)
        );
    }

    #[test]
    fn a_full_subnet_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = LeaseFile::new(dir.path(), "byoc0").unwrap();
        let subnet: Subnet = "10.99.0.0/30".parse().unwrap();
        let mut locked = file.lock().unwrap();
        locked.take(&subnet, "a").unwrap();
        let error = locked.take(&subnet, "b").unwrap_err().to_string();
        assert!(error.contains("no free address in 10.99.0.0/30"), "{error}");
    }

    #[test]
    fn a_dead_runtimes_lease_is_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let file = LeaseFile::new(dir.path(), "byoc0").unwrap();
        let subnet: Subnet = "10.99.0.0/29".parse().unwrap();
        let mut locked = file.lock().unwrap();
        locked.take(&subnet, "alive").unwrap();
        let mut dead = locked.entries[0].clone();
        dead.id = "dead".to_string();
        dead.runtime.started += 1; // the same PID, started at another time: not this runtime
        locked.entries.push(dead);
        let reclaimed = locked.reclaim_dead().unwrap();
        assert_eq!(reclaimed.len(), 1);
        assert_eq!(reclaimed[0].id, "dead");
        assert_eq!(locked.entries.len(), 1);
    }
}

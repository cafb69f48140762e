// Your copy of solutions/06-network-namespace/src/lease.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Leases: which container has which address on the bridge. Book: section 6.3.
//!
//! A small text file under the data root, one line per container: its address, its id,
//! and the runtime that holds it (PID and start time, so a reused PID is not mistaken for
//! it). A first line, `last ADDRESS`, remembers the address given out last: addresses are
//! given in turn, as docker's are, so one given back is not given again at once. A
//! container's cable goes with its network namespace, which the kernel removes a moment
//! after the container's last process, in its own time; until then that address still
//! answers on the bridge. Every change happens under a lock, so two containers started at
//! the same moment never get the same address; a line whose runtime has died (killed with
//! SIGKILL, say) is reclaimed by the next start. A line is checked before it is used
//! ([`crate::records`]): one that is not as the kit writes it is left in the file as it
//! is, and never acted on.

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};

use crate::records;
use crate::subnet::Subnet;

pub use crate::records::Runtime;

/// One line of the lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub address: Ipv4Addr,
    pub id: String,
    pub runtime: Runtime,
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
    /// Lines the kit did not write, each with why: kept in the file as they are.
    pub ignored: Vec<(String, String)>,
}

impl LeaseFile {
    /// The leases of `bridge`, kept in `dir` (the data root's `networks/`).
    pub fn new(dir: &Path, bridge: &str) -> Result<LeaseFile> {
        records::make_dir(dir)?;
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
            .mode(0o644)
            .open(&self.lock)
            .with_context(|| format!("cannot open {:?}", self.lock))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .with_context(|| format!("cannot lock {:?}", self.lock))?;
        let Leases {
            last,
            entries,
            ignored,
        } = self.read()?;
        Ok(Locked {
            file: self,
            _lock: lock,
            entries,
            last,
            ignored,
        })
    }

    /// The leases, each line checked: the `last` line if there is one, the leases, and
    /// the lines that are neither (with why).
    fn read(&self) -> Result<Leases> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {:?}", self.path))
            }
        };
        if !text.is_empty() {
            records::check_owned(&self.path)?;
        }
        let mut leases = Leases::default();
        for line in text.lines() {
            match parse_line(line) {
                Ok(Line::Last(address)) => leases.last = Some(address),
                Ok(Line::Lease(entry)) => leases.entries.push(entry),
                Err(why) => leases.ignored.push((line.to_string(), why)),
            }
        }
        Ok(leases)
    }
}

/// What the lease file holds, read back.
#[derive(Debug, Default)]
struct Leases {
    last: Option<Ipv4Addr>,
    entries: Vec<Entry>,
    ignored: Vec<(String, String)>,
}

/// A line of the lease file.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Last(Ipv4Addr),
    Lease(Entry),
}

// ANCHOR: parse_line
/// `last ADDRESS`, or `ADDRESS ID PID START`, every field checked: the id is used to name
/// a directory to remove and an interface to delete, so it must be an id and nothing
/// else.
fn parse_line(line: &str) -> Result<Line, String> {
    let address = |text: &str| {
        text.parse::<Ipv4Addr>()
            .map_err(|_| format!("{text:?} is not an IPv4 address"))
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields[..] {
        ["last", last] => Ok(Line::Last(address(last)?)),
        [lease, id, pid, started] => {
            records::check_id(id)?;
            Ok(Line::Lease(Entry {
                address: address(lease)?,
                id: id.to_string(),
                runtime: Runtime::parse(pid, started)?,
            }))
        }
        _ => Err("not ADDRESS ID PID START".to_string()),
    }
}
// ANCHOR_END: parse_line

impl Locked<'_> {
    // ANCHOR: take
    /// Takes the next free address of `subnet` for container `id`: the first free one
    /// after the address given out last, going round to the start of the subnet at its
    /// end.
    pub fn take(&mut self, subnet: &Subnet, id: &str) -> Result<Ipv4Addr> {
        let taken = |address: &Ipv4Addr| {
            self.entries.iter().any(|entry| entry.address == *address)
        };
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
                "no free address in {subnet}: {} containers hold them all (stop one, or \
                 choose a larger subnet with --subnet)",
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

    /// Removes the leases whose runtime has died, and returns them, so their other
    /// records can be cleaned up too. Says which lines it leaves alone, not being the
    /// kit's.
    pub fn reclaim_dead(&mut self) -> Result<Vec<Entry>> {
        for (line, why) in &self.ignored {
            records::ignored(&self.file.path, line, why);
        }
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

    /// Writes the leases, and the lines left alone as they were, whole
    /// ([`records::write`]).
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
        for (line, _) in &self.ignored {
            text.push_str(&format!("{line}\n"));
        }
        records::write(&self.file.path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container id made of one letter, `aaaaaaaaaaaa`.
    fn id(letter: char) -> String {
        letter.to_string().repeat(records::ID_LENGTH)
    }

    #[test]
    fn leases_are_taken_in_turn_and_an_address_given_back_waits_its_turn() {
        let dir = tempfile::tempdir().unwrap();
        let file = LeaseFile::new(dir.path(), "byoc0").unwrap();
        let subnet: Subnet = "10.99.0.0/29".parse().unwrap();
        let mut locked = file.lock().unwrap();
        assert_eq!(
            locked.take(&subnet, &id('a')).unwrap(),
            Ipv4Addr::new(10, 99, 0, 2)
        );
        assert_eq!(
            locked.take(&subnet, &id('b')).unwrap(),
            Ipv4Addr::new(10, 99, 0, 3)
        );
        locked.release(&id('a')).unwrap();
        // .2 is free again, but its turn comes after the rest of the subnet's.
        assert_eq!(
            locked.take(&subnet, &id('c')).unwrap(),
            Ipv4Addr::new(10, 99, 0, 4)
        );
        drop(locked);
        let mut again = file.lock().unwrap();
        let ids: Vec<String> =
            again.entries.iter().map(|entry| entry.id.clone()).collect();
        assert_eq!(ids, [id('b'), id('c')]);
        assert_eq!(again.last, Some(Ipv4Addr::new(10, 99, 0, 4)));
        // A /29 has .2 to .6 for containers: after .6, round to .2.
        again.take(&subnet, &id('d')).unwrap();
        again.take(&subnet, &id('e')).unwrap();
        assert_eq!(
            again.take(&subnet, &id('f')).unwrap(),
            Ipv4Addr::new(10, 99, 0, 2)
        );
    }

    #[test]
    fn a_full_subnet_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = LeaseFile::new(dir.path(), "byoc0").unwrap();
        let subnet: Subnet = "10.99.0.0/30".parse().unwrap();
        let mut locked = file.lock().unwrap();
        locked.take(&subnet, &id('a')).unwrap();
        let error = locked.take(&subnet, &id('b')).unwrap_err().to_string();
        assert!(error.contains("no free address in 10.99.0.0/30"), "{error}");
    }

    #[test]
    fn a_dead_runtimes_lease_is_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let file = LeaseFile::new(dir.path(), "byoc0").unwrap();
        let subnet: Subnet = "10.99.0.0/29".parse().unwrap();
        let mut locked = file.lock().unwrap();
        locked.take(&subnet, &id('a')).unwrap();
        let mut dead = locked.entries[0].clone();
        dead.id = id('d');
        dead.runtime.started += 1; // the same PID, started at another time: not this runtime
        locked.entries.push(dead);
        let reclaimed = locked.reclaim_dead().unwrap();
        assert_eq!(reclaimed.len(), 1);
        assert_eq!(reclaimed[0].id, id('d'));
        assert_eq!(locked.entries.len(), 1);
    }

    #[test]
    fn lines_the_kit_did_not_write_are_left_alone_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = LeaseFile::new(dir.path(), "byoc0").unwrap();
        let forged = [
            "10.88.0.2 ../../victim 1 0",
            "10.88.0.3 aaaaaaaaaaaa 0 0",
            "10.88.0.4 bbbbbbbbbbbb -1 0",
            "nonsense",
        ];
        fs::write(dir.path().join("byoc0.leases"), forged.join("\n") + "\n").unwrap();
        let subnet: Subnet = "10.99.0.0/29".parse().unwrap();
        let mut locked = file.lock().unwrap();
        assert!(locked.entries.is_empty());
        assert_eq!(locked.ignored.len(), forged.len());
        assert!(locked.reclaim_dead().unwrap().is_empty());
        locked.take(&subnet, &id('c')).unwrap();
        drop(locked);
        let text = fs::read_to_string(dir.path().join("byoc0.leases")).unwrap();
        for line in forged {
            assert!(text.lines().any(|kept| kept == line), "{line:?} in {text}");
        }
    }

    #[test]
    fn lines_are_checked_field_by_field() {
        assert_eq!(
            parse_line("last 10.88.0.2"),
            Ok(Line::Last(Ipv4Addr::new(10, 88, 0, 2)))
        );
        let why = parse_line("10.88.0.2 ../../victim 1 0").unwrap_err();
        assert!(why.contains("is not a container id"), "{why}");
        let why = parse_line("10.88.0.999 aaaaaaaaaaaa 1 0").unwrap_err();
        assert!(why.contains("is not an IPv4 address"), "{why}");
        let why = parse_line("10.88.0.2 aaaaaaaaaaaa 0 0").unwrap_err();
        assert!(why.contains("is not a PID"), "{why}");
        assert!(parse_line("last").is_err());
    }
}

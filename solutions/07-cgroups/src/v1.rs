//! cgroup v1: a tree per controller. Book: section 7.2.
//!
//! A container's cgroup is a directory in each tree the kit uses:
//! `/sys/fs/cgroup/memory/byoc/ID`, `/sys/fs/cgroup/cpu/byoc/ID`,
//! `/sys/fs/cgroup/pids/byoc/ID` (and `cpuacct`, `freezer`). Each is told its own limit,
//! and the process is put in each. Where two controllers share a tree (`cpu,cpuacct` on
//! many machines), they share the directory. v1 has no `cgroup.kill`: the `freezer` stops
//! every process first, so none can fork a new one while the others are being killed.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::unistd::Pid;

use crate::cgroup::{self, Cgroup};
use crate::cgroupfs;
use crate::hierarchy::V1Controller;
use crate::limits::{Limits, Swap};
use crate::trace::SyscallError;

/// A container's cgroup on v1: its directory in each controller's tree.
#[derive(Debug)]
pub struct V1 {
    /// (controller, directory), a directory once only.
    pub dirs: Vec<(String, PathBuf)>,
}

impl V1 {
    /// The cgroup `parent/id` at the top of each controller's tree (not made yet).
    pub fn new(controllers: &[V1Controller], parent: &Path, id: &str) -> V1 {
        let mut dirs: Vec<(String, PathBuf)> = Vec::new();
        for controller in controllers {
            if dirs
                .iter()
                .any(|(_, dir)| dir.starts_with(&controller.mount))
            {
                continue; // the same tree as a controller already done (cpu,cpuacct)
            }
            let dir = controller.mount.join(parent).join(id);
            dirs.push((controller.name.clone(), dir));
        }
        V1 { dirs }
    }

    /// The directory in a controller's tree, if the kit has one there.
    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(name, _)| name == controller)
            .map(|(_, dir)| dir.as_path())
    }

    /// Writes one limit into a controller's directory, and says what a refusal means.
    fn set(&self, controller: &str, file: &str, value: &str) -> Result<()> {
        let Some(dir) = self.dir(controller) else {
            bail!(
                "the {controller} controller is not mounted on this machine: {file} cannot be set"
            );
        };
        cgroupfs::write(dir, file, value).or_else(|error| explain(error, file))
    }
}

impl Cgroup for V1 {
    fn version(&self) -> &'static str {
        "v1"
    }

    fn dirs(&self) -> Vec<(String, PathBuf)> {
        self.dirs.clone()
    }

    fn make(&self, made: &mut Vec<PathBuf>) -> Result<()> {
        // The parent (`byoc`) is made by the first container and stays, as docker's does.
        for (_, dir) in &self.dirs {
            cgroupfs::make_dir_all(dir, made)?;
        }
        Ok(())
    }

    // ANCHOR: apply
    fn apply(&self, limits: &Limits) -> Result<()> {
        if let Some(memory) = limits.memory {
            self.set("memory", "memory.limit_in_bytes", &memory.0.to_string())?;
        }
        if let Some(swap) = limits.memory_swap {
            // v1 counts memory and swap together, as docker's --memory-swap does.
            let value = match swap {
                Swap::Limit(total) => total.0.to_string(),
                Swap::Unlimited => "-1".to_string(),
            };
            self.set("memory", "memory.memsw.limit_in_bytes", &value)?;
        }
        if let Some(cpus) = limits.cpus {
            let quota = cpus.quota();
            self.set("cpu", "cpu.cfs_period_us", &quota.period_us.to_string())?;
            self.set("cpu", "cpu.cfs_quota_us", &quota.quota_us.to_string())?;
        }
        if let Some(pids) = limits.pids {
            self.set("pids", "pids.max", &pids.to_string())?;
        }
        Ok(())
    }
    // ANCHOR_END: apply

    fn add(&self, pid: Pid) -> Result<()> {
        for (_, dir) in &self.dirs {
            cgroup::place(dir, pid)?;
        }
        Ok(())
    }

    fn oom_kills(&self) -> u64 {
        self.dir("memory")
            .and_then(|dir| cgroupfs::read(dir, "memory.oom_control").ok())
            .and_then(|control| cgroupfs::counter(&control, "oom_kill"))
            .unwrap_or(0)
    }

    fn processes(&self) -> Result<Vec<i32>> {
        let mut all = Vec::new();
        for (_, dir) in &self.dirs {
            for pid in cgroupfs::pids(&cgroupfs::read(dir, "cgroup.procs")?) {
                if !all.contains(&pid) {
                    all.push(pid);
                }
            }
        }
        Ok(all)
    }

    // ANCHOR: kill_all
    fn kill_all(&self) -> Result<()> {
        let Some(freezer) = self.dir("freezer") else {
            return cgroup::kill_each(self);
        };
        cgroupfs::write(freezer, "freezer.state", "FROZEN")?;
        wait_until_frozen(freezer)?;
        let killed = cgroup::kill_each(self);
        // Thawed even if a kill failed: a frozen process cannot even die.
        cgroupfs::write(freezer, "freezer.state", "THAWED")?;
        killed
    }
    // ANCHOR_END: kill_all
}

/// Freezing takes a moment: each process stops at its next safe point.
fn wait_until_frozen(freezer: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while cgroupfs::read(freezer, "freezer.state")?.trim() != "FROZEN" {
        if Instant::now() > deadline {
            bail!("the processes in {freezer:?} did not freeze within 5 s");
        }
        sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// The kernel's refusals of a limit, in words.
fn explain(error: SyscallError, file: &str) -> Result<()> {
    match (error.errno, file) {
        (Errno::ENOENT, "memory.memsw.limit_in_bytes") => bail!(
            "{error}: this kernel does not count swap (no memory.memsw.limit_in_bytes), \
             so --memory-swap cannot be kept; leave it out, or boot with swapaccount=1 (book 7.3)"
        ),
        (Errno::EINVAL, "cpu.cfs_quota_us") => bail!(
            "{error}: the kernel takes a CPU quota of 1 ms per 100 ms period at the \
             least (--cpus 0.01)"
        ),
        (Errno::EBUSY, "memory.limit_in_bytes") => {
            bail!("{error}: the container already uses more memory than that")
        }
        _ => Err(error.into()),
    }
}

// Your copy of solutions/07-cgroups/src/v2.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! cgroup v2: one tree, every controller in it. Book: section 7.2.
//!
//! A container's cgroup is one directory, `/sys/fs/cgroup/byoc/ID`. Its limits are files
//! in it (`memory.max`, `cpu.max`, `pids.max`), its processes are listed in
//! `cgroup.procs`, and `memory.events` counts what the memory controller did. A parent
//! hands a controller down to its children by naming it in its `cgroup.subtree_control`,
//! so the kit turns the three it uses on at each level above the container's cgroup.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::unistd::Pid;

use crate::cgroup::{self, Cgroup};
use crate::cgroupfs;
use crate::hierarchy::V2_CONTROLLERS;
use crate::limits::{Limits, Swap};
use crate::trace::SyscallError;

/// A container's cgroup on v2: its one directory, `top/parent/id`. `top` is the tree's
/// root for the machine's root, or the subtree delegated to an ordinary user.
#[derive(Debug)]
pub struct V2 {
    pub top: PathBuf,
    pub dir: PathBuf,
}

impl V2 {
    /// The cgroup `parent/id` under `top` (not made yet).
    pub fn new(top: &Path, parent: &Path, id: &str) -> V2 {
        V2 {
            top: top.to_path_buf(),
            dir: top.join(parent).join(id),
        }
    }
}

/// Hands the kit's controllers down from `dir` to its children: `+memory +cpu +pids` into
/// its `cgroup.subtree_control`, for those it has and has not handed down yet.
fn enable_controllers(dir: &Path) -> Result<()> {
    let available = cgroupfs::read(dir, "cgroup.controllers")?;
    let enabled = cgroupfs::read(dir, "cgroup.subtree_control")?;
    let missing = V2_CONTROLLERS.iter().filter(|name| {
        available.split_whitespace().any(|c| c == **name)
            && !enabled.split_whitespace().any(|c| c == **name)
    });
    for name in missing {
        let enabled = cgroupfs::write(dir, "cgroup.subtree_control", &format!("+{name}"));
        enabled.map_err(|error| explain_handing_down(error, dir))?;
    }
    Ok(())
}

/// v2's one rule that bites here: a cgroup with processes of its own hands no controller
/// down (the root excepted). The runtime's own cgroup can be such a top.
fn explain_handing_down(error: SyscallError, dir: &Path) -> anyhow::Error {
    match error.errno {
        Errno::EBUSY => anyhow::anyhow!(
            "{error}: {dir:?} has processes of its own (the runtime's, perhaps), and \
             cgroup v2 hands controllers down only from a cgroup without any: run the \
             runtime in a cgroup below it, as systemd-run --user --scope does (book 7.6)"
        ),
        _ => error.into(),
    }
}

impl Cgroup for V2 {
    fn version(&self) -> &'static str {
        "v2"
    }

    fn dirs(&self) -> Vec<(String, PathBuf)> {
        vec![("v2".to_string(), self.dir.clone())]
    }

    // ANCHOR: make
    fn make(&self, made: &mut Vec<PathBuf>) -> Result<()> {
        // Each level hands the controllers down to the next, from the top to the parent.
        let mut dir = self.top.clone();
        enable_controllers(&dir)?;
        let below = self.dir.strip_prefix(&self.top).unwrap_or(&self.dir);
        let levels: Vec<_> = below.components().collect();
        for (n, step) in levels.iter().enumerate() {
            dir.push(step);
            if cgroupfs::make_dir(&dir)? {
                made.push(dir.clone());
            }
            if n + 1 < levels.len() {
                enable_controllers(&dir)?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: make

    // ANCHOR: apply
    fn apply(&self, limits: &Limits) -> Result<()> {
        if let Some(memory) = limits.memory {
            self.set("memory.max", &memory.0.to_string())?;
        }
        if let (Some(memory), Some(swap)) = (limits.memory, limits.memory_swap) {
            // v2 counts swap apart from memory: the swap allowed is the total less
            // memory.
            let value = match swap {
                Swap::Limit(total) => (total.0 - memory.0).to_string(),
                Swap::Unlimited => "max".to_string(),
            };
            self.set("memory.swap.max", &value)?;
        }
        if let Some(cpus) = limits.cpus {
            let quota = cpus.quota();
            self.set(
                "cpu.max",
                &format!("{} {}", quota.quota_us, quota.period_us),
            )?;
        }
        if let Some(pids) = limits.pids {
            self.set("pids.max", &pids.to_string())?;
        }
        Ok(())
    }
    // ANCHOR_END: apply

    fn add(&self, pid: Pid) -> Result<()> {
        cgroup::place(&self.dir, pid)
    }

    fn oom_kills(&self) -> u64 {
        cgroupfs::read(&self.dir, "memory.events")
            .ok()
            .and_then(|events| cgroupfs::counter(&events, "oom_kill"))
            .unwrap_or(0)
    }

    fn processes(&self) -> Result<Vec<i32>> {
        Ok(cgroupfs::pids(&cgroupfs::read(&self.dir, "cgroup.procs")?))
    }

    // ANCHOR: kill_all
    fn kill_all(&self) -> Result<()> {
        // Linux 5.14 and later kill every process of a cgroup, and of the cgroups under
        // it, in one write; before that, each process is sent SIGKILL in turn.
        if self.dir.join("cgroup.kill").exists() {
            cgroupfs::write(&self.dir, "cgroup.kill", "1")?;
        } else {
            cgroup::kill_each(self)?;
        }
        Ok(())
    }
    // ANCHOR_END: kill_all
}

impl V2 {
    /// Writes one limit, and says what a refusal means.
    fn set(&self, file: &str, value: &str) -> Result<()> {
        cgroupfs::write(&self.dir, file, value)
            .or_else(|error| explain(error, &self.dir, file))
    }
}

/// The kernel's refusals of a limit, in words.
fn explain(error: SyscallError, dir: &Path, file: &str) -> Result<()> {
    let controller = file.split('.').next().unwrap_or(file);
    match (error.errno, file) {
        (Errno::ENOENT, "memory.swap.max") => bail!(
            "{error}: this kernel does not count swap (no memory.swap.max), so \
             --memory-swap cannot be kept; leave it out, or boot with swapaccount=1 (book 7.3)"
        ),
        (Errno::ENOENT, _) => bail!(
            "{error}: the {controller} controller is not handed down to {dir:?}: its \
             parent's cgroup.subtree_control does not list it. For an ordinary user, \
             systemd hands controllers down only where Delegate= says so (book 7.6)"
        ),
        (Errno::EINVAL, "cpu.max") => bail!(
            "{error}: the kernel takes a CPU quota of 1 ms per 100 ms period at the \
             least (--cpus 0.01)"
        ),
        (Errno::EBUSY, "memory.max") => {
            bail!("{error}: the container already uses more memory than that")
        }
        _ => Err(error.into()),
    }
}

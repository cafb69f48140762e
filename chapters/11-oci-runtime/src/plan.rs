// Your copy of solutions/11-oci-runtime/src/plan.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! From `config.json` to what the kit will do: every field read, checked and turned into
//! the kit's own values before anything is made, as chapter 1's spec is from the command
//! line and chapter 9's from an image. Book: section 11.3.
//!
//! A field the spec defines and the kit cannot honour is refused here, by name, with what
//! to do instead. Starting the container without it would be worse than not starting:
//! the caller asked for an SELinux label or a cgroup rule because it wanted the
//! container held tighter.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use serde_json::Value;

use crate::bundle::{self, Config, LinuxConfig, ProcessConfig, ResourcesConfig};
use crate::capabilities::{self, Capabilities};
use crate::idmap::IdMap;
use crate::limits::{Bytes, Cpus, Limits, Swap};
use crate::mount_options::{self, MountOptions};
use crate::seccomp::{self, SeccompConfig};
use crate::spec::UserNamespace;
use crate::spec::{Process, User};
use crate::{rootfs, uts};

// ANCHOR: plan
/// Everything a container from a bundle will be, checked.
#[derive(Debug)]
pub struct Plan {
    pub process: Process,
    pub console_size: Option<(u16, u16)>,
    pub umask: Option<u32>,
    pub rlimits: Vec<Rlimit>,
    /// `None`: the config says nothing of capabilities, and the command keeps root's.
    pub capabilities: Option<Capabilities>,
    pub no_new_privileges: bool,
    pub apparmor_profile: Option<String>,
    pub oom_score_adj: Option<i32>,
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    pub hostname: Option<String>,
    pub mounts: Vec<SpecMount>,
    pub namespaces: Namespaces,
    pub user_namespace: Option<UserNamespace>,
    pub limits: Limits,
    /// Where the container's cgroup goes, below the top of each hierarchy.
    pub cgroups_path: PathBuf,
    pub device_rules: Vec<DeviceRule>,
    pub devices: Vec<DeviceNode>,
    pub sysctl: Vec<(String, String)>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub rootfs_propagation: Option<MsFlags>,
    /// The system call filter to install last, if the config has one.
    pub seccomp: Option<SeccompConfig>,
    pub annotations: BTreeMap<String, String>,
}

/// The namespaces to make new, and those to join by a path (a network namespace podman
/// made, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespaces {
    pub new: CloneFlags,
    pub join: Vec<(CloneFlags, PathBuf)>,
}

/// One entry of `mounts`, in order.
#[derive(Debug, Clone)]
pub struct SpecMount {
    /// Where, inside the container: an absolute path, looked up inside the root.
    pub destination: String,
    pub kind: MountKind,
    pub options: MountOptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A directory or file of the host, by its absolute path.
    Bind { source: PathBuf },
    /// The container's own cgroup, read-only: chapter 7's view (book 7.7).
    Cgroup,
    /// A file system made fresh: `proc`, `sysfs`, `tmpfs`, `devpts` or `mqueue`.
    Fresh { fstype: String, source: String },
}
// ANCHOR_END: plan

/// A resource limit, `setrlimit(2)`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimit {
    pub name: String,
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

/// A rule of the device cgroup: may the container read, write or make (`mknod`) the
/// device files of this type and these numbers (`None` is every number)?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// `a` (all), `c` (character) or `b` (block).
    pub kind: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: String,
}

/// A device file to make in the container's `/dev`, besides the six every container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Its name below `/dev`.
    pub name: String,
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The file systems a mount of the config may make, besides binds and the cgroup view.
const FRESH_FILE_SYSTEMS: [&str; 5] = ["proc", "sysfs", "tmpfs", "devpts", "mqueue"];

/// The most levels a cgroup path may have, and the longest name of each: room for
/// `/libpod_parent/libpod-` and a 64-digit id.
const MAX_CGROUP_LEVELS: usize = 16;
const MAX_CGROUP_NAME: usize = 255;

/// The `sysctl` names that belong to a namespace, and which one: only those can be set
/// for one container without changing the whole machine.
const NAMESPACED_SYSCTLS: [(&str, CloneFlags); 6] = [
    ("net.", CloneFlags::CLONE_NEWNET),
    ("kernel.shm", CloneFlags::CLONE_NEWIPC),
    ("kernel.msg", CloneFlags::CLONE_NEWIPC),
    ("kernel.sem", CloneFlags::CLONE_NEWIPC),
    ("fs.mqueue.", CloneFlags::CLONE_NEWIPC),
    ("kernel.domainname", CloneFlags::CLONE_NEWUTS),
];

// ANCHOR: from_config
/// The plan of container `id` from the bundle at `bundle`.
pub fn read(bundle: &Path, id: &str) -> Result<Plan> {
    let config = bundle::read_config(bundle)?;
    from_config(config, bundle, id)
}

/// The plan from a parsed config: the refusals first, then each part in turn.
pub fn from_config(config: Config, bundle: &Path, id: &str) -> Result<Plan> {
    refuse_what_the_kit_cannot_honour(&config)?;
    let Some(process) = &config.process else {
        bail!("config.json has no process: there is nothing to run");
    };
    let mut linux = config.linux.unwrap_or_default();
    let namespaces = namespaces_of(&linux)?;
    let hostname = match config.hostname.filter(|name| !name.is_empty()) {
        Some(_) if !namespaces.new.contains(CloneFlags::CLONE_NEWUTS) => bail!(
            "config.json gives a hostname but no new UTS namespace: setting it would \
             change the host's (book 4.1)"
        ),
        Some(name) => Some(uts::check_hostname(&name).map(|()| name)?),
        None => None,
    };
    let resources = linux.resources.take().unwrap_or_default();
    let root = config.root.context("config.json has no root")?;
    Ok(Plan {
        process: process_of(process)?,
        console_size: process.console_size.as_ref().map(|s| (s.height, s.width)),
        umask: process.user.umask,
        rlimits: process
            .rlimits
            .iter()
            .map(rlimit_of)
            .collect::<Result<_>>()?,
        capabilities: process.capabilities.as_ref().map(capabilities::from_config),
        no_new_privileges: process.no_new_privileges,
        apparmor_profile: process.apparmor_profile.clone().filter(|p| !p.is_empty()),
        oom_score_adj: process.oom_score_adj,
        rootfs: rootfs::check(&bundle.join(&root.path))?,
        readonly_root: root.readonly,
        hostname,
        mounts: config
            .mounts
            .iter()
            .map(|m| mount_of(m, bundle))
            .collect::<Result<_>>()?,
        user_namespace: user_namespace_of(&linux, &namespaces)?,
        limits: limits_of(&resources)?,
        cgroups_path: cgroups_path_of(linux.cgroups_path.as_deref(), id)?,
        device_rules: resources
            .devices
            .iter()
            .map(device_rule_of)
            .collect::<Result<_>>()?,
        devices: linux
            .devices
            .iter()
            .map(device_node_of)
            .collect::<Result<_>>()?,
        sysctl: sysctls_of(&linux.sysctl, &namespaces)?,
        masked_paths: linux.masked_paths.clone(),
        readonly_paths: linux.readonly_paths.clone(),
        rootfs_propagation: linux
            .rootfs_propagation
            .as_deref()
            .map(mount_options::propagation)
            .transpose()?,
        seccomp: seccomp::from_value(linux.seccomp.as_ref())?,
        namespaces,
        annotations: config.annotations,
    })
}
// ANCHOR_END: from_config

// ANCHOR: refuse
/// The fields the spec defines that the kit does not do, each with why and what to do.
fn refuse_what_the_kit_cannot_honour(config: &Config) -> Result<()> {
    let linux = config.linux.as_ref();
    let process = config.process.as_ref();
    let resources = linux.and_then(|linux| linux.resources.as_ref());
    let memory = resources.and_then(|r| r.memory.as_ref());
    let cpu = resources.and_then(|r| r.cpu.as_ref());
    let refused: [(&str, bool, &str); 19] = [
        ("hooks", present(&config.hooks), "the kit runs no hooks: set the container up before create, or after start"),
        ("domainname", config.domainname.as_ref().is_some_and(|d| !d.is_empty()), "the kit sets a hostname only"),
        ("process.selinuxLabel", process.is_some_and(|p| p.selinux_label.as_ref().is_some_and(|l| !l.is_empty())), "the kit knows no SELinux: with podman, --security-opt label=disable"),
        ("linux.mountLabel", linux.is_some_and(|l| l.mount_label.as_ref().is_some_and(|l| !l.is_empty())), "the kit knows no SELinux: with podman, --security-opt label=disable"),
        ("process.ioPriority", process.is_some_and(|p| present(&p.io_priority)), "the kit sets no I/O priority"),
        ("process.scheduler", process.is_some_and(|p| present(&p.scheduler)), "the kit sets no scheduling policy"),
        ("process.execCPUAffinity", process.is_some_and(|p| present(&p.exec_cpu_affinity)), "the kit pins no CPUs"),
        ("linux.intelRdt", linux.is_some_and(|l| present(&l.intel_rdt)), "the kit knows no Intel RDT"),
        ("linux.personality", linux.is_some_and(|l| present(&l.personality)), "the kit sets no personality"),
        ("linux.timeOffsets", linux.is_some_and(|l| present(&l.time_offsets)), "the kit makes no time namespace"),
        ("linux.resources.blockIO", resources.is_some_and(|r| present(&r.block_io)), "the kit limits memory, CPU and processes only (chapter 7)"),
        ("linux.resources.hugepageLimits", resources.is_some_and(|r| present(&r.hugepage_limits)), "the kit limits memory, CPU and processes only (chapter 7)"),
        ("linux.resources.network", resources.is_some_and(|r| present(&r.network)), "the kit limits memory, CPU and processes only (chapter 7)"),
        ("linux.resources.rdma", resources.is_some_and(|r| present(&r.rdma)), "the kit limits memory, CPU and processes only (chapter 7)"),
        ("linux.resources.unified", resources.is_some_and(|r| present(&r.unified)), "the kit writes its own cgroup files only (chapter 7)"),
        ("linux.resources.memory.reservation, kernel, kernelTCP, swappiness or disableOOMKiller", memory.is_some_and(|m| m.reservation.is_some() || m.kernel.is_some() || m.kernel_tcp.is_some() || m.swappiness.is_some() || m.disable_oom_killer.is_some()), "the kit sets a memory limit and swap only (chapter 7)"),
        ("linux.resources.cpu.shares, realtime or cpuset", cpu.is_some_and(|c| c.shares.is_some() || c.realtime_runtime.is_some() || c.realtime_period.is_some() || c.cpus.as_ref().is_some_and(|s| !s.is_empty()) || c.mems.as_ref().is_some_and(|s| !s.is_empty())), "the kit sets a CPU quota only (chapter 7): with podman, --cpus"),
        ("mounts[].uidMappings", config.mounts.iter().any(|m| present(&m.uid_mappings) || present(&m.gid_mappings)), "the kit makes no id-mapped mounts"),
        ("linux.namespaces time", linux.is_some_and(|l| l.namespaces.iter().any(|n| n.kind == "time")), "the kit makes no time namespace"),
    ];
    if let Some((field, _, why)) = refused.iter().find(|(_, asked, _)| *asked) {
        bail!("config.json asks for {field}, which the kit does not do: {why}");
    }
    Ok(())
}
// ANCHOR_END: refuse

/// Whether an optional part is there and says something (`[]`, `{}` and `null` do not).
fn present(value: &Option<Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(fields)) => !fields.is_empty(),
        Some(_) => true,
    }
}

/// The command, its environment, directory and user.
fn process_of(config: &ProcessConfig) -> Result<Process> {
    if config.args.is_empty() {
        bail!("process.args is empty: config.json names no command to run");
    }
    let cwd = PathBuf::from(&config.cwd);
    if !cwd.is_absolute() {
        bail!("process.cwd {:?} is not an absolute path", config.cwd);
    }
    let args: Vec<OsString> = config.args.iter().map(OsString::from).collect();
    let mut process = Process::new(args, config.terminal)?;
    process.env = config.env.clone();
    process.cwd = cwd;
    process.user = User {
        uid: config.user.uid,
        gid: config.user.gid,
        additional_gids: config.user.additional_gids.clone(),
    };
    Ok(process)
}

/// `RLIMIT_NOFILE` and the others, by the names the spec uses.
fn rlimit_of(config: &bundle::RlimitConfig) -> Result<Rlimit> {
    let resources = [
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_RSS", libc::RLIMIT_RSS),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
        ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
    ];
    let Some((_, resource)) = resources.iter().find(|(name, _)| *name == config.kind)
    else {
        bail!(
            "process.rlimits: {:?} is not a resource limit Linux has",
            config.kind
        );
    };
    if config.soft > config.hard {
        bail!(
            "process.rlimits: {} has a soft limit ({}) above its hard limit ({})",
            config.kind,
            config.soft,
            config.hard
        );
    }
    Ok(Rlimit {
        name: config.kind.clone(),
        resource: *resource as i32,
        soft: config.soft,
        hard: config.hard,
    })
}

/// The namespace flag for a kind the spec names.
fn namespace_flag(kind: &str) -> Result<CloneFlags> {
    Ok(match kind {
        "pid" => CloneFlags::CLONE_NEWPID,
        "network" => CloneFlags::CLONE_NEWNET,
        "mount" => CloneFlags::CLONE_NEWNS,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "user" => CloneFlags::CLONE_NEWUSER,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        other => bail!("linux.namespaces: {other:?} is not a namespace the kit knows"),
    })
}

// ANCHOR: namespaces
/// Which namespaces are new and which are joined. Only a network, IPC or UTS namespace
/// can be joined by path here: joining a PID or user namespace must happen before the
/// container's first process is made, a mount namespace would take the root with it.
fn namespaces_of(linux: &LinuxConfig) -> Result<Namespaces> {
    let joinable =
        CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
    let mut namespaces = Namespaces {
        new: CloneFlags::empty(),
        join: Vec::new(),
    };
    let mut seen = CloneFlags::empty();
    for entry in &linux.namespaces {
        let flag = namespace_flag(&entry.kind)?;
        if seen.contains(flag) {
            bail!("linux.namespaces names {:?} twice", entry.kind);
        }
        seen.insert(flag);
        match entry.path.as_deref().filter(|path| !path.is_empty()) {
            None => namespaces.new.insert(flag),
            Some(path) if joinable.contains(flag) => {
                namespaces.join.push((flag, PathBuf::from(path)))
            }
            Some(path) => bail!(
                "linux.namespaces: the kit joins only network, IPC and UTS namespaces by \
                 path, not a {} namespace ({path})",
                entry.kind
            ),
        }
    }
    if !namespaces.new.contains(CloneFlags::CLONE_NEWNS) {
        bail!(
            "linux.namespaces has no new mount namespace: the kit always gives a container \
             its own, since pivot_root in the host's would move the host's root (book 2.2)"
        );
    }
    Ok(namespaces)
}
// ANCHOR_END: namespaces

/// The id maps of a new user namespace, which must have them.
fn user_namespace_of(
    linux: &LinuxConfig,
    namespaces: &Namespaces,
) -> Result<Option<UserNamespace>> {
    let maps = |mappings: &[bundle::IdMappingConfig]| -> Vec<IdMap> {
        mappings
            .iter()
            .map(|m| IdMap {
                container: m.container_id,
                host: m.host_id,
                size: m.size,
            })
            .collect()
    };
    let new_user = namespaces.new.contains(CloneFlags::CLONE_NEWUSER);
    let given = !linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty();
    match (new_user, given) {
        (false, false) => Ok(None),
        (false, true) => bail!("linux.uidMappings are given, but no new user namespace"),
        (true, false) => bail!(
            "a new user namespace needs linux.uidMappings and linux.gidMappings (book 5.1)"
        ),
        (true, true) => Ok(Some(UserNamespace {
            uid_mappings: maps(&linux.uid_mappings),
            gid_mappings: maps(&linux.gid_mappings),
        })),
    }
}

/// One mount: a bind of a host path, the cgroup view, or a fresh file system.
fn mount_of(config: &bundle::MountConfig, bundle: &Path) -> Result<SpecMount> {
    let options = mount_options::parse(&config.options)
        .with_context(|| format!("the mount on {}", config.destination))?;
    let destination = if config.destination.starts_with('/') {
        config.destination.clone()
    } else {
        format!("/{}", config.destination)
    };
    if destination.contains('\0') {
        bail!("a mount destination contains a NUL byte");
    }
    let fstype = config.kind.as_deref().unwrap_or("none");
    let kind = if options.flags.contains(MsFlags::MS_BIND) || fstype == "bind" {
        let source = config
            .source
            .as_deref()
            .with_context(|| format!("the bind mount on {destination} has no source"))?;
        // A relative source is the bundle's, as the spec says.
        let source = bundle.join(source);
        if !source.exists() {
            bail!(
                "the bind mount on {destination}: its source {} does not exist",
                source.display()
            );
        }
        MountKind::Bind { source }
    } else if fstype == "cgroup" || fstype == "cgroup2" {
        if destination != "/sys/fs/cgroup" {
            bail!("the kit mounts the cgroup view on /sys/fs/cgroup only, not {destination}");
        }
        MountKind::Cgroup
    } else if FRESH_FILE_SYSTEMS.contains(&fstype) {
        MountKind::Fresh {
            fstype: fstype.to_string(),
            source: config.source.clone().unwrap_or_else(|| fstype.to_string()),
        }
    } else {
        bail!(
            "the mount on {destination} is of type {fstype:?}: the kit mounts binds, the \
             cgroup view and {} only",
            FRESH_FILE_SYSTEMS.join(", ")
        );
    };
    Ok(SpecMount {
        destination,
        kind,
        options,
    })
}

// ANCHOR: limits
/// Chapter 7's limits, from the spec's resources: the memory limit, memory and swap
/// together, a CPU quota per period, and a number of processes.
fn limits_of(resources: &ResourcesConfig) -> Result<Limits> {
    let positive = |value: Option<i64>| value.filter(|&v| v > 0).map(|v| v as u64);
    let memory = resources.memory.as_ref();
    let limit = positive(memory.and_then(|m| m.limit));
    let swap = match memory.and_then(|m| m.swap) {
        Some(-1) if limit.is_some() => Some(Swap::Unlimited),
        Some(total) if total > 0 && limit.is_some() => {
            Some(Swap::Limit(Bytes(total as u64)))
        }
        _ => None,
    };
    let cpus = match resources.cpu.as_ref().map(|cpu| (cpu.quota, cpu.period)) {
        Some((Some(quota), Some(period))) if quota > 0 && period > 0 => {
            Some(Cpus(quota as f64 / period as f64))
        }
        _ => None,
    };
    let limits = Limits {
        memory: limit.map(Bytes),
        memory_swap: swap,
        cpus,
        pids: positive(resources.pids.as_ref().map(|pids| pids.limit)),
    };
    limits.check()?;
    Ok(limits)
}
// ANCHOR_END: limits

/// `linux.cgroupsPath`, below the top of the tree: plain names, none of them `..`. The
/// default is `byoc/ID`. systemd's form (`slice:prefix:name`) is refused: the kit writes
/// cgroup files itself.
pub fn cgroups_path_of(given: Option<&str>, id: &str) -> Result<PathBuf> {
    let Some(text) = given.filter(|text| !text.is_empty()) else {
        return Ok(Path::new(crate::cgroup::DEFAULT_PARENT).join(id));
    };
    if text.contains(':') {
        bail!(
            "linux.cgroupsPath {text:?} is systemd's form: the kit makes cgroups by their \
             files, not through systemd; with podman, --cgroup-manager cgroupfs"
        );
    }
    let relative = Path::new(text.trim_start_matches('/'));
    let parts: Vec<Component> = relative.components().collect();
    let plain = parts.iter().all(|part| match part {
        Component::Normal(name) => name.len() <= MAX_CGROUP_NAME,
        _ => false,
    });
    if !plain || parts.is_empty() || parts.len() > MAX_CGROUP_LEVELS {
        bail!(
            "linux.cgroupsPath {text:?} must be at most {MAX_CGROUP_LEVELS} plain names, \
             none of them . or .."
        );
    }
    Ok(relative.to_path_buf())
}

fn device_rule_of(config: &bundle::DeviceRuleConfig) -> Result<DeviceRule> {
    let kind = match config.kind.as_deref().unwrap_or("a") {
        "a" => 'a',
        "c" => 'c',
        "b" => 'b',
        other => bail!("linux.resources.devices: type {other:?} is not a, c or b"),
    };
    let access = config.access.clone().unwrap_or_else(|| "rwm".to_string());
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        bail!("linux.resources.devices: access {access:?} is not made of r, w and m");
    }
    let number = |value: Option<i64>| -> Result<Option<u32>> {
        match value {
            None | Some(-1) => Ok(None),
            Some(n) => u32::try_from(n).map(Some).with_context(|| {
                format!("linux.resources.devices: {n} is not a device number")
            }),
        }
    };
    Ok(DeviceRule {
        allow: config.allow,
        kind,
        major: number(config.major)?,
        minor: number(config.minor)?,
        access,
    })
}

/// A device to make: only below `/dev`, where the kit made a tmpfs of the container's.
fn device_node_of(config: &bundle::DeviceConfig) -> Result<DeviceNode> {
    let Some(name) = config.path.strip_prefix("/dev/") else {
        bail!(
            "linux.devices: {} is not below /dev, the one place the kit makes devices",
            config.path
        );
    };
    if name.is_empty() || name.split('/').any(|part| part.is_empty() || part == "..") {
        bail!(
            "linux.devices: {} is not a plain name below /dev",
            config.path
        );
    }
    let kind = match config.kind.as_str() {
        "c" | "u" => 'c',
        "b" => 'b',
        "p" => 'p',
        other => bail!(
            "linux.devices: {}: type {other:?} is not c, u, b or p",
            config.path
        ),
    };
    let number = |n: Option<i64>| u64::try_from(n.unwrap_or(0)).ok();
    let (Some(major), Some(minor)) = (number(config.major), number(config.minor)) else {
        bail!(
            "linux.devices: {} has a negative device number",
            config.path
        );
    };
    Ok(DeviceNode {
        name: name.to_string(),
        kind,
        major,
        minor,
        mode: config.file_mode.unwrap_or(0o666) & 0o7777,
        uid: config.uid.unwrap_or(0),
        gid: config.gid.unwrap_or(0),
    })
}

/// `linux.sysctl`: only names that belong to a namespace the container has of its own.
fn sysctls_of(
    given: &BTreeMap<String, String>,
    namespaces: &Namespaces,
) -> Result<Vec<(String, String)>> {
    let mut sysctls = Vec::new();
    for (name, value) in given {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !name.contains("..");
        let Some((_, namespace)) = NAMESPACED_SYSCTLS
            .iter()
            .find(|(prefix, _)| plain && name.starts_with(prefix))
        else {
            bail!(
                "linux.sysctl {name:?} is not one the kit sets: only sysctls that belong \
                 to a namespace (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) \
                 can be set for one container without changing the machine"
            );
        };
        let joined = namespaces.join.iter().any(|(flag, _)| flag == namespace);
        if !namespaces.new.contains(*namespace) && !joined {
            bail!("linux.sysctl {name:?} needs a namespace of the container's own, which config.json does not give it");
        }
        sysctls.push((name.clone(), value.clone()));
    }
    Ok(sysctls)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture of `tests/fixtures/oci/`, its placeholders (`/STORAGE`, `/RUNROOT`)
    /// pointed at `dir`, where the files its binds name are made, with a root.
    fn fixture(name: &str, dir: &Path) -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/oci")
            .join(name);
        let text = std::fs::read_to_string(path).unwrap();
        let text = text
            .replace("/STORAGE", &dir.join("storage").to_string_lossy())
            .replace("/RUNROOT", &dir.join("runroot").to_string_lossy());
        let config: Value = serde_json::from_str(&text).unwrap();
        for mount in config["mounts"].as_array().unwrap() {
            if let Some(source) = mount["source"].as_str().filter(|s| s.starts_with('/'))
            {
                let source = Path::new(source);
                std::fs::create_dir_all(source.parent().unwrap()).unwrap();
                match source.ends_with("shm") {
                    true => std::fs::create_dir_all(source).unwrap(),
                    false => std::fs::write(source, "").unwrap(),
                }
            }
        }
        let root = config["root"]["path"].as_str().unwrap();
        std::fs::create_dir_all(dir.join(root)).unwrap();
        config
    }

    fn plan_of(config: &Value, dir: &Path) -> Result<Plan> {
        let config: Config = serde_json::from_value(config.clone())?;
        from_config(config, dir, "0123456789ab")
    }

    #[test]
    fn podmans_seccomp_profile_is_read_with_its_rules() {
        let dir = tempfile::tempdir().unwrap();
        let config = fixture("podman-4.3-run.json", dir.path());
        let plan = plan_of(&config, dir.path()).unwrap();
        let profile = plan.seccomp.expect("podman's config has a profile");
        assert_eq!(profile.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(profile.default_errno_ret, Some(38));
        assert_eq!(profile.architectures.len(), 3);
        let socket = profile
            .syscalls
            .iter()
            .find(|rule| rule.names == ["socket"] && rule.errno_ret == Some(22))
            .expect("the rule that refuses audit sockets");
        assert_eq!(socket.args.len(), 2);
    }

    #[test]
    fn podmans_config_without_seccomp_becomes_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = fixture("podman-4.3-run.json", dir.path());
        config["linux"].as_object_mut().unwrap().remove("seccomp");
        let plan = plan_of(&config, dir.path()).unwrap();
        assert_eq!(plan.process.args, ["echo", "hi"]);
        assert!(plan.process.env.contains(&"container=podman".to_string()));
        assert_eq!(plan.hostname.as_deref(), Some("HOSTNAME"));
        let new = CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNS;
        assert_eq!(plan.namespaces.new, new);
        assert!(plan.namespaces.join.is_empty());
        let destinations: Vec<&str> =
            plan.mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/sys",
                "/dev/pts",
                "/dev/mqueue",
                "/etc/hosts",
                "/dev/shm",
                "/run/.containerenv",
                "/etc/hostname",
                "/sys/fs/cgroup"
            ]
        );
        assert_eq!(plan.mounts[9].kind, MountKind::Cgroup);
        assert!(matches!(plan.mounts[5].kind, MountKind::Bind { .. }));
        assert_eq!(
            plan.mounts[3].options.data,
            "newinstance,ptmxmode=0666,mode=0620,gid=5"
        );
        assert_eq!(plan.limits.memory, Some(Bytes(64 << 20)));
        assert_eq!(plan.limits.memory_swap, Some(Swap::Limit(Bytes(128 << 20))));
        assert_eq!(plan.limits.pids, Some(2048));
        assert!(plan.cgroups_path.starts_with("libpod_parent"));
        assert_eq!(plan.device_rules.len(), 1);
        assert!(!plan.device_rules[0].allow && plan.device_rules[0].kind == 'a');
        let caps = plan.capabilities.unwrap();
        assert_eq!(caps.bounding.count_ones(), 11);
        assert_eq!(caps.bounding & (1 << 21), 0, "CAP_SYS_ADMIN was given");
        assert_eq!(plan.rlimits.len(), 2);
        assert_eq!(plan.masked_paths.len(), 11);
        assert_eq!(plan.readonly_paths.len(), 6);
        assert_eq!(
            plan.sysctl,
            [("net.ipv4.ping_group_range".into(), "0 0".into())]
        );
        assert_eq!(plan.umask, Some(0o022));
    }

    #[test]
    fn the_spec_files_of_runc_and_crun_become_plans() {
        for name in ["runc-1.1-spec.json", "crun-1.8-spec.json"] {
            let dir = tempfile::tempdir().unwrap();
            let config = fixture(name, dir.path());
            let plan = plan_of(&config, dir.path()).unwrap();
            assert_eq!(plan.process.args, ["sh"], "{name}");
            assert!(plan.process.terminal, "{name}");
            assert!(plan.readonly_root, "{name}");
            assert_eq!(
                plan.rootfs,
                dir.path().join("rootfs").canonicalize().unwrap()
            );
            assert_eq!(plan.cgroups_path, Path::new("byoc/0123456789ab"), "{name}");
            assert_eq!(plan.mounts[0].destination, "/proc", "{name}");
            assert!(plan.no_new_privileges, "{name}");
        }
    }

    #[test]
    fn each_field_the_kit_cannot_honour_is_refused_by_name() {
        let cases = [
            (
                "hooks",
                "/hooks",
                serde_json::json!({"prestart": [{"path": "/bin/true"}]}),
            ),
            (
                "process.selinuxLabel",
                "/process/selinuxLabel",
                serde_json::json!("system_u:system_r:container_t:s0"),
            ),
            (
                "linux.resources.blockIO",
                "/linux/resources/blockIO",
                serde_json::json!({"weight": 10}),
            ),
            (
                "linux.resources.cpu.shares",
                "/linux/resources/cpu",
                serde_json::json!({"shares": 512}),
            ),
            (
                "linux.timeOffsets",
                "/linux/timeOffsets",
                serde_json::json!({"monotonic": {"secs": 1}}),
            ),
        ];
        for (field, pointer, value) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut config = fixture("runc-1.1-spec.json", dir.path());
            set(&mut config, pointer, value);
            let error = format!("{:#}", plan_of(&config, dir.path()).unwrap_err());
            assert!(error.contains(field), "{field}: {error}");
        }
    }

    #[test]
    fn a_property_the_spec_does_not_define_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = fixture("runc-1.1-spec.json", dir.path());
        config["org.example.future"] = serde_json::json!({"anything": true});
        config["linux"]["alsoNew"] = serde_json::json!(1);
        plan_of(&config, dir.path()).unwrap();
    }

    #[test]
    fn paths_and_names_that_lead_out_are_refused() {
        let cases = [
            (
                "/linux/cgroupsPath",
                serde_json::json!("/a/../../etc"),
                "plain names",
            ),
            (
                "/linux/cgroupsPath",
                serde_json::json!("system.slice:byoc:x"),
                "systemd",
            ),
            (
                "/linux/sysctl",
                serde_json::json!({"kernel.panic": "1"}),
                "kernel.panic",
            ),
            (
                "/linux/devices",
                serde_json::json!([{"path": "/etc/sda", "type": "b", "major": 8, "minor": 0}]),
                "not below /dev",
            ),
            (
                "/linux/namespaces",
                serde_json::json!([{"type": "pid"}]),
                "no new mount namespace",
            ),
            (
                "/linux/namespaces",
                serde_json::json!([{"type": "mount"}, {"type": "pid", "path": "/proc/1/ns/pid"}]),
                "joins only",
            ),
        ];
        for (pointer, value, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut config = fixture("runc-1.1-spec.json", dir.path());
            set(&mut config, pointer, value);
            let error = format!("{:#}", plan_of(&config, dir.path()).unwrap_err());
            assert!(error.contains(expected), "{pointer}: {error}");
        }
    }

    /// Sets the value at a JSON pointer, making the objects on the way.
    fn set(config: &mut Value, pointer: &str, value: Value) {
        let mut at = config;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for part in &parts[..parts.len() - 1] {
            at = at
                .as_object_mut()
                .unwrap()
                .entry(*part)
                .or_insert(serde_json::json!({}));
        }
        at[parts[parts.len() - 1]] = value;
    }
}

//! A bundle's `config.json`: the OCI runtime specification's document, as podman, crun's
//! `spec` and runc's `spec` write it. Book: section 11.2.
//!
//! The types are the kit's own, not the `oci-spec` crate's: they hold only what the kit
//! reads, so each field here is one the lesson talks about, and a learner reads the
//! document's shape in one screen. The spec says a runtime must ignore properties it does
//! not know, so serde ignores them; a property the spec *does* define but the kit cannot
//! honour (hooks, SELinux labels) is kept as a raw value, and [`crate::plan`] refuses it
//! by name rather than starting a container that is less confined than asked.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

/// The most of a `config.json` the kit reads: podman's, with its seccomp profile, is
/// about 20 KiB. A bigger file is not a config a tool wrote.
pub const CONFIG_LIMIT: u64 = 4 * 1024 * 1024;

// ANCHOR: config
/// The whole document. Every part is optional in the spec's schema but `ociVersion`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    pub oci_version: String,
    pub process: Option<ProcessConfig>,
    pub root: Option<RootConfig>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<MountConfig>,
    pub hooks: Option<Value>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub linux: Option<LinuxConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessConfig {
    #[serde(default)]
    pub terminal: bool,
    pub console_size: Option<ConsoleSize>,
    pub user: UserConfig,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    pub cwd: String,
    pub capabilities: Option<CapabilitiesConfig>,
    #[serde(default)]
    pub rlimits: Vec<RlimitConfig>,
    #[serde(default)]
    pub no_new_privileges: bool,
    pub apparmor_profile: Option<String>,
    pub oom_score_adj: Option<i32>,
    pub selinux_label: Option<String>,
    pub io_priority: Option<Value>,
    pub scheduler: Option<Value>,
    #[serde(rename = "execCPUAffinity")]
    pub exec_cpu_affinity: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct ConsoleSize {
    pub height: u16,
    pub width: u16,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserConfig {
    pub uid: u32,
    pub gid: u32,
    pub umask: Option<u32>,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
}

/// Capability names (`CAP_CHOWN`) in each of the five sets a process has.
#[derive(Debug, Default, Deserialize)]
pub struct CapabilitiesConfig {
    #[serde(default)]
    pub bounding: Vec<String>,
    #[serde(default)]
    pub effective: Vec<String>,
    #[serde(default)]
    pub inheritable: Vec<String>,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub ambient: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct RlimitConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Deserialize)]
pub struct RootConfig {
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountConfig {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub source: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
    pub uid_mappings: Option<Value>,
    pub gid_mappings: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxConfig {
    #[serde(default)]
    pub namespaces: Vec<NamespaceConfig>,
    #[serde(default)]
    pub uid_mappings: Vec<IdMappingConfig>,
    #[serde(default)]
    pub gid_mappings: Vec<IdMappingConfig>,
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
    pub cgroups_path: Option<String>,
    pub resources: Option<ResourcesConfig>,
    pub rootfs_propagation: Option<String>,
    /// Read by [`crate::seccomp`].
    pub seccomp: Option<Value>,
    #[serde(default)]
    pub sysctl: BTreeMap<String, String>,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    pub mount_label: Option<String>,
    pub intel_rdt: Option<Value>,
    pub personality: Option<Value>,
    pub time_offsets: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct NamespaceConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: Option<String>,
}

/// `containerID` and `hostID`, as the spec spells them.
#[derive(Debug, Deserialize)]
pub struct IdMappingConfig {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

/// A device file to make in the container's `/dev`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceConfig {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub file_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesConfig {
    /// Which device files the container may use: the device cgroup's rules, in order.
    #[serde(default)]
    pub devices: Vec<DeviceRuleConfig>,
    pub memory: Option<MemoryConfig>,
    pub cpu: Option<CpuConfig>,
    pub pids: Option<PidsConfig>,
    #[serde(rename = "blockIO")]
    pub block_io: Option<Value>,
    pub hugepage_limits: Option<Value>,
    pub network: Option<Value>,
    pub rdma: Option<Value>,
    pub unified: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeviceRuleConfig {
    pub allow: bool,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryConfig {
    pub limit: Option<i64>,
    /// Memory and swap together, as docker's `--memory-swap`.
    pub swap: Option<i64>,
    pub reservation: Option<i64>,
    pub kernel: Option<i64>,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: Option<i64>,
    pub swappiness: Option<u64>,
    #[serde(rename = "disableOOMKiller")]
    pub disable_oom_killer: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuConfig {
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub period: Option<u64>,
    pub realtime_runtime: Option<i64>,
    pub realtime_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PidsConfig {
    pub limit: i64,
}
// ANCHOR_END: config

/// Reads `BUNDLE/config.json`: a regular file (not a symlink out of the bundle, not a
/// FIFO that never ends), at most [`CONFIG_LIMIT`] bytes, JSON of the spec's shape.
pub fn read_config(bundle: &Path) -> Result<Config> {
    let path = bundle.join("config.json");
    let meta = std::fs::symlink_metadata(&path)
        .with_context(|| format!("the bundle {} has no config.json", bundle.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if meta.len() > CONFIG_LIMIT {
        bail!(
            "{} is {} bytes, more than the {CONFIG_LIMIT} the kit reads",
            path.display(),
            meta.len()
        );
    }
    let text = std::fs::read(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_config(&text)
        .with_context(|| format!("{} is not an OCI config", path.display()))
}

/// The document, from its bytes.
pub fn parse_config(text: &[u8]) -> Result<Config> {
    let config: Config = serde_json::from_slice(text)?;
    if !config.oci_version.starts_with("1.") {
        bail!(
            "ociVersion {:?}: the kit reads version 1 of the runtime spec",
            config.oci_version
        );
    }
    Ok(config)
}

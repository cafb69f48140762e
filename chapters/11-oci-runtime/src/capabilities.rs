// Your copy of solutions/11-oci-runtime/src/capabilities.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Capabilities: root's power cut into about forty pieces, and the five sets of them
//! every process has. A container from podman keeps eleven; everything else (loading
//! modules, mounting, tracing other processes) is gone before its command runs.
//! Book: section 11.5.
//!
//! The kit's earlier chapters gave the command every capability that root (or the user
//! namespace's root) has: a config that lists fewer is asking for less, and the runtime
//! must give less. The order matters: the bounding set first (dropping from it needs
//! `CAP_SETPCAP`, which may be about to go), then the user (the kernel clears the
//! permitted set when root becomes another user, unless asked to keep it), then the
//! effective, permitted and inheritable sets, then the ambient set, which needs the
//! other three.

use anyhow::{Context, Result};
use nix::errno::Errno;

use crate::bundle::CapabilitiesConfig;
use crate::trace;

/// The kernel's numbers for each capability (linux/capability.h).
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// One set of capabilities: bit N is capability N.
pub type CapSet = u64;

/// The five sets the config asks for, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub bounding: CapSet,
    pub effective: CapSet,
    pub inheritable: CapSet,
    pub permitted: CapSet,
    pub ambient: CapSet,
}

/// The highest capability this kernel has.
pub fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(40)
}

/// The five sets, from their names. The spec asks a runtime to warn of a capability it
/// cannot give (an unknown name, or one newer than this kernel), not to fail: the line
/// goes to stderr, which podman shows.
pub fn from_config(config: &CapabilitiesConfig) -> Capabilities {
    let last = last_capability();
    let set = |names: &[String]| -> CapSet {
        names.iter().fold(0, |bits, name| match number_of(name) {
            Some(number) if number <= last => bits | (1 << number),
            _ => {
                eprintln!("byoc: warning: the capability {name:?} is not one this kernel has: not given");
                bits
            }
        })
    };
    Capabilities {
        bounding: set(&config.bounding),
        effective: set(&config.effective),
        inheritable: set(&config.inheritable),
        permitted: set(&config.permitted),
        ambient: set(&config.ambient),
    }
}

/// A capability's number from its name, `CAP_CHOWN` or `chown`.
pub fn number_of(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = match upper.starts_with("CAP_") {
        true => upper,
        false => format!("CAP_{upper}"),
    };
    NAMES
        .iter()
        .position(|known| *known == full)
        .map(|n| n as u32)
}

/// The names of the capabilities in a set, for messages and `features`.
pub fn names(set: CapSet) -> Vec<&'static str> {
    (0..NAMES.len())
        .filter(|number| set & (1 << number) != 0)
        .map(|number| NAMES[number])
        .collect()
}

/// Every capability name the kit knows.
pub fn all_names() -> &'static [&'static str] {
    &NAMES
}

// ANCHOR: drop_bounding
/// Takes out of the bounding set every capability not in `keep`: no program this
/// process runs, set-user-ID or not, can get them back.
pub fn limit_bounding_set(keep: CapSet) -> Result<()> {
    // TODO: EXERCISE 11.4 (book 11.5): drop from the bounding set each capability not
    //       kept
    // HINT: the bounding set is a ceiling: a capability out of it can never come back,
    // HINT: not even through a set-user-ID program. Go through every capability this
    // HINT: kernel has and drop the ones `keep` lacks, one call each. Section 11.5.
    todo!(
        "exercise 11.4: drop from the bounding set each capability not kept (book \
         section 11.5)"
    )
}
// ANCHOR_END: drop_bounding

/// Asks the kernel to keep the permitted set when this process's user changes from root
/// to another (it would empty it), or stops asking.
pub fn keep_across_user_change(keep: bool) -> Result<()> {
    // SAFETY: PR_SET_KEEPCAPS takes 0 or 1 and touches no memory of ours.
    let result =
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, keep as libc::c_ulong, 0, 0, 0) };
    trace::syscall(
        format_args!("prctl(PR_SET_KEEPCAPS, {})", keep as u8),
        Errno::result(result).map(drop),
    )?;
    Ok(())
}

/// The kernel's `capset(2)` header and data, version 3 (two 32-bit words per set).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

// ANCHOR: set_process_sets
/// Sets this process's effective, permitted and inheritable sets, then raises each
/// ambient capability (they survive `execve` for a program without file capabilities,
/// which is how a non-root user's command gets any).
pub fn set_process_sets(caps: &Capabilities) -> Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let word = |set: CapSet, half: u32| (set >> (32 * half)) as u32;
    let data = [0, 1].map(|half| CapData {
        effective: word(caps.effective, half),
        permitted: word(caps.permitted, half),
        inheritable: word(caps.inheritable, half),
    });
    // SAFETY: capset reads one header and two data structs of the layout the kernel
    // defines for version 3; both live until the call returns.
    let result = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    let call = format_args!(
        "capset(effective {:#x}, permitted {:#x}, inheritable {:#x})",
        caps.effective, caps.permitted, caps.inheritable
    );
    trace::syscall(call, Errno::result(result).map(drop))
        .context("cannot set the command's capabilities")?;
    // The kernel takes an ambient capability only if it is permitted and inheritable
    // too; runc's own `spec` lists ambient ones that are not inheritable. The spec asks
    // for a warning, not a failure, for a capability that cannot be given.
    let possible = caps.permitted & caps.inheritable;
    let impossible = caps.ambient & !possible;
    if impossible != 0 {
        eprintln!(
            "byoc: warning: ambient capabilities {:?} are not both permitted and inheritable: not given",
            names(impossible)
        );
    }
    for number in 0..NAMES.len() {
        if caps.ambient & possible & (1 << number) != 0 {
            raise_ambient(number as u32)?;
        }
    }
    Ok(())
}
// ANCHOR_END: set_process_sets

fn raise_ambient(number: u32) -> Result<()> {
    // SAFETY: PR_CAP_AMBIENT_RAISE takes a capability number; no memory of ours.
    let result = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            number as libc::c_ulong,
            0,
            0,
        )
    };
    trace::syscall(
        format_args!("prctl(PR_CAP_AMBIENT_RAISE, {})", NAMES[number as usize]),
        Errno::result(result).map(drop),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_agree_with_the_kernel() {
        assert_eq!(number_of("CAP_CHOWN"), Some(0));
        assert_eq!(number_of("sys_admin"), Some(21));
        assert_eq!(number_of("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number_of("CAP_FLY"), None);
        assert_eq!(names(1 << 21 | 1), vec!["CAP_CHOWN", "CAP_SYS_ADMIN"]);
    }

    #[test]
    fn an_unknown_capability_is_left_out_not_fatal() {
        let config = CapabilitiesConfig {
            bounding: vec!["CAP_KILL".into(), "CAP_FLY".into()],
            ..Default::default()
        };
        assert_eq!(from_config(&config).bounding, 1 << 5);
    }
}

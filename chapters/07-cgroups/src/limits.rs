// Your copy of solutions/07-cgroups/src/limits.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The limits a container may be given, in docker's words: `--memory 512m`, `--cpus 1.5`,
//! `--pids-limit 100`, `--memory-swap 1g`. Book: sections 7.3 to 7.5.
//!
//! Each is checked when it is read, so a limit that cannot work is refused before anything
//! is made. What the kernel is told is worked out here too, the same for v1 and v2: a byte
//! count for memory, a quota per period for CPU, a number for processes.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Context, Error, Result};

/// What a container may use; `None` is "no limit".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub memory: Option<Bytes>,
    /// Memory and swap together (docker's `--memory-swap`); needs `memory`.
    pub memory_swap: Option<Swap>,
    pub cpus: Option<Cpus>,
    pub pids: Option<u64>,
}

impl Limits {
    /// Whether any limit is asked for.
    pub fn any(&self) -> bool {
        self.memory.is_some()
            || self.memory_swap.is_some()
            || self.cpus.is_some()
            || self.pids.is_some()
    }

    /// Checks the limits against each other: what each is alone was checked when parsed.
    pub fn check(&self) -> Result<()> {
        match (self.memory, self.memory_swap) {
            (None, Some(_)) => {
                bail!("--memory-swap is memory and swap together: it needs --memory as well")
            }
            (Some(memory), Some(Swap::Limit(total))) if total.0 < memory.0 => bail!(
                "--memory-swap {total} is less than --memory {memory}: it counts memory and \
                 swap together, so it must be at least as large"
            ),
            _ => Ok(()),
        }
    }
}

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

/// The smallest memory limit the kit takes: docker's. Below it a container cannot even
/// start its command, and the kernel would kill it for memory before it printed a word.
pub const MINIMUM_MEMORY: Bytes = Bytes(6 * 1024 * 1024);

/// `512m`, `1g`, `64k`, `1048576`, `2gb`: docker's sizes, in units of 1024.
impl FromStr for Bytes {
    type Err = Error;

    fn from_str(text: &str) -> Result<Bytes> {
        let lower = text.trim().to_ascii_lowercase();
        let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &lower[digits.len()..];
        let shift = match unit {
            "" | "b" => 0,
            "k" | "kb" => 10,
            "m" | "mb" => 20,
            "g" | "gb" => 30,
            _ => bail!("{text:?} is not a size: use a number and b, k, m or g (512m, 1g)"),
        };
        let number: u64 = digits
            .parse()
            .with_context(|| format!("{text:?} is not a size: use a number and b, k, m or g"))?;
        let bytes = number
            .checked_mul(1 << shift)
            .with_context(|| format!("{text:?} is too large"))?;
        if bytes < MINIMUM_MEMORY.0 {
            bail!(
                "{text:?} is too little memory: the least a container is given is \
                 {MINIMUM_MEMORY} (docker's minimum too)"
            );
        }
        Ok(Bytes(bytes))
    }
}

/// `64 MiB`, `1.5 GiB`: how people say it.
impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(30, "GiB"), (20, "MiB"), (10, "KiB")];
        for (shift, name) in units {
            let unit = 1u64 << shift;
            if self.0 >= unit {
                let value = self.0 as f64 / unit as f64;
                return if self.0 % unit == 0 {
                    write!(f, "{} {name}", self.0 / unit)
                } else {
                    write!(f, "{value:.1} {name}")
                };
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

/// `--memory-swap`: a total of memory and swap, or `-1` for swap without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    Limit(Bytes),
    Unlimited,
}

impl FromStr for Swap {
    type Err = Error;

    fn from_str(text: &str) -> Result<Swap> {
        if text.trim() == "-1" {
            return Ok(Swap::Unlimited);
        }
        Ok(Swap::Limit(text.parse()?))
    }
}

/// A share of the machine's CPUs: `0.5` is half of one CPU, `2` is two CPUs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cpus(pub f64);

impl FromStr for Cpus {
    type Err = Error;

    fn from_str(text: &str) -> Result<Cpus> {
        let cpus: f64 = text
            .trim()
            .parse()
            .with_context(|| format!("{text:?} is not a number of CPUs: use 0.5, 1 or 2.5"))?;
        if !cpus.is_finite() || cpus <= 0.0 {
            bail!("--cpus {text} must be more than 0: it is a share of the machine's CPUs (0.5, 1, 2.5)");
        }
        Ok(Cpus(cpus))
    }
}

/// The scheduler's window: 100 ms, docker's and the kernel's default period.
pub const CPU_PERIOD_US: u64 = 100_000;

/// CPU time per period, in microseconds: how the kernel is told a share of CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

impl Cpus {
    // ANCHOR: quota
    /// The quota for this share: in every period of 100 ms the container's processes
    /// together may run `cpus` × 100 ms, then they wait for the next period.
    pub fn quota(self) -> CpuQuota {
        // TODO: EXERCISE 7.1 (book 7.4): turn a share of CPUs into a quota per period
        // HINT: the period is CPU_PERIOD_US (100 000 µs); 1.0 CPU may run the whole period.
        // HINT: 0.5 CPU is 50 000 µs per period, 2 CPUs 200 000 µs (two CPUs at once).
        // HINT: round to whole microseconds: (self.0 * CPU_PERIOD_US as f64).round() as u64.
        todo!("exercise 7.1: turn a share of CPUs into a quota per period (book section 7.4)")
    }
    // ANCHOR_END: quota
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_reads_them() {
        let bytes = |text: &str| text.parse::<Bytes>().unwrap().0;
        assert_eq!(bytes("64m"), 64 << 20);
        assert_eq!(bytes("64M"), 64 << 20);
        assert_eq!(bytes("1g"), 1 << 30);
        assert_eq!(bytes("2gb"), 2 << 30);
        assert_eq!(bytes("8192k"), 8 << 20);
        assert_eq!(bytes("10485760"), 10 << 20);
    }

    #[test]
    fn bad_sizes_say_why() {
        let error = |text: &str| text.parse::<Bytes>().unwrap_err().to_string();
        assert!(error("3x").contains("is not a size"), "{}", error("3x"));
        assert!(error("").contains("is not a size"));
        assert!(error("0").contains("too little memory"));
        assert!(error("1m").contains("too little memory"));
        assert!(error("99999999999g").contains("too large"));
    }

    #[test]
    fn sizes_print_as_people_say_them() {
        assert_eq!(Bytes(64 << 20).to_string(), "64 MiB");
        assert_eq!(Bytes(3 << 29).to_string(), "1.5 GiB");
        assert_eq!(Bytes(512).to_string(), "512 bytes");
    }

    #[test]
    fn cpus_must_be_more_than_nothing() {
        for bad in ["-1", "0", "nan", "inf", "one"] {
            assert!(bad.parse::<Cpus>().is_err(), "{bad} was taken");
        }
        assert_eq!("1.5".parse::<Cpus>().unwrap(), Cpus(1.5));
    }

    #[test]
    fn swap_needs_memory_and_at_least_as_much() {
        let limits = |memory: Option<&str>, swap: &str| Limits {
            memory: memory.map(|m| m.parse().unwrap()),
            memory_swap: Some(swap.parse().unwrap()),
            ..Limits::default()
        };
        assert!(limits(None, "1g").check().is_err());
        assert!(limits(Some("1g"), "512m").check().is_err());
        assert!(limits(Some("512m"), "1g").check().is_ok());
        assert!(limits(Some("512m"), "-1").check().is_ok());
    }
}

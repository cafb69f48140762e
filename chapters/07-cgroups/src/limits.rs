// Your copy of solutions/07-cgroups/src/limits.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The limits a container may be given, in docker's words: `--memory 512m`, `--cpus 1.5`,
//! `--pids-limit 100`, `--memory-swap 1g`. Book: sections 7.3 to 7.5.
//!
//! Each is checked when it is read, so a limit that cannot work is refused before
//! anything is made. What the kernel is told is worked out here too, the same for v1 and
//! v2: a byte count for memory, a quota per period for CPU, a number for processes.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context, Error, Result};

use crate::cgroup;

// ANCHOR: options
/// `run`'s options for the container's cgroup. Later chapters' `run` flatten this group.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitsArgs {
    /// The most memory the container may use: 512m, 1g (units of 1024, as docker's).
    #[arg(short = 'm', long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<Bytes>,

    /// Memory and swap together, at least --memory; -1 for swap without limit.
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<Swap>,

    /// How much CPU time the container may use, in CPUs: 0.5 is half of one.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub cpus: Option<Cpus>,

    /// The most processes (and threads) the container may have at once.
    #[arg(long = "pids-limit", value_name = "N", value_parser = parse_pids_limit,
          allow_hyphen_values = true)]
    pub pids_limit: Option<u64>,

    /// The cgroup that the container's own goes under.
    #[arg(long = "cgroup-parent", value_name = "PATH", env = "BYOC_CGROUP_PARENT",
          default_value = cgroup::DEFAULT_PARENT)]
    pub cgroup_parent: String,
}

impl LimitsArgs {
    /// The limits asked for, checked together (swap beside memory, CPUs against the
    /// machine).
    pub fn resources(&self) -> Result<Limits> {
        let limits = Limits {
            memory: self.memory,
            memory_swap: self.memory_swap,
            cpus: self.cpus,
            pids: self.pids_limit,
        };
        limits.check()?;
        Ok(limits)
    }

    /// The cgroup parent, checked here and not by clap: clap would print a newline in it
    /// as it is, and the error would not be one line.
    pub fn cgroup_parent(&self) -> Result<PathBuf> {
        cgroup::parse_parent(&self.cgroup_parent)
    }
}
// ANCHOR_END: options

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

    /// Checks the limits against each other and against this machine: what each is alone
    /// was checked when parsed.
    pub fn check(&self) -> Result<()> {
        if let Some(cpus) = self.cpus {
            cpus.check_fits(cpus_of_this_machine()?)?;
        }
        match (self.memory, self.memory_swap) {
            (None, Some(_)) => {
                bail!("--memory-swap is memory and swap together: it needs --memory as well")
            }
            (Some(memory), Some(Swap::Limit(total))) if total.0 < memory.0 => bail!(
                "--memory-swap {total} is less than --memory {memory}: it counts memory \
                 and swap together, so it must be at least as large"
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

/// The largest size the kit takes: docker keeps sizes in a signed 64-bit number (8 EiB).
pub const MAXIMUM_SIZE: Bytes = Bytes(i64::MAX as u64);

/// `512m`, `1g`, `0.5g`, `64k`, `2gb`, `1048576`: docker's sizes, in units of 1024. A
/// number without a unit is a number of bytes, as in docker.
impl FromStr for Bytes {
    type Err = Error;

    fn from_str(text: &str) -> Result<Bytes> {
        let bytes = parse_size(text)?;
        if bytes < MINIMUM_MEMORY {
            let bare = match unit_of(text) {
                "" => " (a number without a unit is bytes)",
                _ => "",
            };
            bail!(
                "{text:?} is too little memory: {bytes}{bare}; the least a container is \
                 given is {MINIMUM_MEMORY} (docker's minimum too)"
            );
        }
        Ok(bytes)
    }
}

/// A size as docker writes it: a number, with a fraction or not, then a unit.
fn parse_size(text: &str) -> Result<Bytes> {
    let not_a_size =
        || format!("{text:?} is not a size: use a number and b, k, m or g (512m, 1.5g)");
    let unit = unit_of(text);
    let number = text
        .trim()
        .strip_suffix(unit)
        .unwrap_or_default()
        .trim_end();
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => bail!("{}", not_a_size()),
    };
    let plain_decimal = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    if !plain_decimal {
        bail!("{}", not_a_size());
    }
    let value: f64 = number.parse().with_context(not_a_size)?;
    let bytes = (value * (1u64 << shift) as f64).round();
    if bytes > MAXIMUM_SIZE.0 as f64 {
        bail!("{text:?} is too large: a size must be less than 8 EiB (2^63 bytes)");
    }
    Ok(Bytes(bytes as u64))
}

/// The letters at the end of a size: `m` in `512m`, `GiB` in `1.5 GiB`, nothing in `10`.
fn unit_of(text: &str) -> &str {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    &text[digits.len()..]
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

/// The smallest share the kernel takes: a quota of 1 ms (1 000 µs) in each 100 ms period.
pub const MINIMUM_CPUS: f64 = 0.01;

impl FromStr for Cpus {
    type Err = Error;

    fn from_str(text: &str) -> Result<Cpus> {
        let cpus: f64 = text.trim().parse().with_context(|| {
            format!("{text:?} is not a number of CPUs: use 0.5, 1 or 2.5")
        })?;
        if !cpus.is_finite() || cpus <= 0.0 {
            bail!("--cpus {text} must be more than 0: it is a share of the machine's CPUs (0.5, 1, 2.5)");
        }
        if cpus < MINIMUM_CPUS {
            bail!(
                "--cpus {text} is less than {MINIMUM_CPUS}: the kernel takes a CPU quota \
                 of 1 ms per 100 ms period at the least (book 7.4)"
            );
        }
        Ok(Cpus(cpus))
    }
}

impl Cpus {
    /// A share of more CPUs than the machine has could never be used; docker refuses it
    /// too.
    pub fn check_fits(self, machine_cpus: usize) -> Result<()> {
        if self.0 > machine_cpus as f64 {
            bail!(
                "--cpus {} is more than this machine's {machine_cpus} CPUs: the range is \
                 {MINIMUM_CPUS} to {machine_cpus} (book 7.4)",
                self.0
            );
        }
        Ok(())
    }
}

/// The CPUs this process may run on, as docker counts them (`sched_getaffinity`).
pub fn cpus_of_this_machine() -> Result<usize> {
    let affinity = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .context("cannot count this machine's CPUs: sched_getaffinity failed")?;
    let count = (0..nix::sched::CpuSet::count())
        .filter(|&cpu| affinity.is_set(cpu).unwrap_or(false))
        .count();
    Ok(count.max(1))
}

/// The most processes a cgroup's `pids.max` takes: the kernel's own limit on PIDs
/// (`PID_MAX_LIMIT`, 4 194 304 on 64-bit machines).
pub const MAXIMUM_PIDS: u64 = 4 * 1024 * 1024;

/// `--pids-limit`: a number of processes, from 1 (the container's first process) to
/// [`MAXIMUM_PIDS`].
pub fn parse_pids_limit(text: &str) -> Result<u64> {
    match text.trim().parse::<u64>() {
        Ok(0) | Err(_) => bail!(
            "{text:?} is not a number of processes: give 1 or more (the container's \
             first process counts)"
        ),
        Ok(limit) if limit > MAXIMUM_PIDS => bail!(
            "--pids-limit {text} is more than the kernel can count: the most is \
             {MAXIMUM_PIDS} (PID_MAX_LIMIT); for no limit, leave --pids-limit out"
        ),
        Ok(limit) => Ok(limit),
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
        // TODO: EXERCISE 7.3 (book 7.4): turn a share of CPUs into a quota per period
        // HINT: the kernel takes a quota of CPU time per period: 1.0 CPU may run the
        // HINT: whole period, 0.5 CPU half of it, 2 CPUs twice it (two CPUs at once).
        // HINT: Read section 7.4.
        todo!(
            "exercise 7.3: turn a share of CPUs into a quota per period (book section \
             7.4)"
        )
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
        assert!(
            error("1.2.3m").contains("is not a size"),
            "{}",
            error("1.2.3m")
        );
        assert!(error("1e9").contains("is not a size"), "{}", error("1e9"));
        assert!(error(".m").contains("is not a size"), "{}", error(".m"));
    }

    #[test]
    fn a_bare_number_is_bytes_and_the_refusal_says_so() {
        let error = "10".parse::<Bytes>().unwrap_err().to_string();
        assert!(error.contains("10 bytes"), "{error}");
        assert!(
            error.contains("a number without a unit is bytes"),
            "{error}"
        );
        let error = "1m".parse::<Bytes>().unwrap_err().to_string();
        assert!(!error.contains("without a unit"), "{error}");
    }

    #[test]
    fn fractions_of_a_unit_are_taken_as_docker_takes_them() {
        let bytes = |text: &str| text.parse::<Bytes>().unwrap().0;
        assert_eq!(bytes("0.5g"), 512 << 20);
        assert_eq!(bytes("1.5G"), 3 << 29);
        assert_eq!(bytes("6.5m"), 13 << 19);
        assert_eq!(bytes("64 MiB"), 64 << 20);
        assert_eq!(bytes("1t"), 1 << 40);
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
    fn cpus_range_from_a_hundredth_to_the_machines_cpus() {
        let error = "0.001".parse::<Cpus>().unwrap_err().to_string();
        assert!(error.contains("less than 0.01"), "{error}");
        assert_eq!("0.01".parse::<Cpus>().unwrap().quota().quota_us, 1000);
        let error = Cpus(3.0).check_fits(2).unwrap_err().to_string();
        assert!(error.contains("the range is 0.01 to 2"), "{error}");
        assert!(Cpus(2.0).check_fits(2).is_ok());
        assert!(Cpus(1e15).check_fits(2).is_err());
    }

    #[test]
    fn pids_range_from_one_to_what_the_kernel_counts() {
        assert!(parse_pids_limit("0").is_err());
        assert_eq!(parse_pids_limit("4194304").unwrap(), MAXIMUM_PIDS);
        let error = parse_pids_limit("2147483648").unwrap_err().to_string();
        assert!(error.contains("the most is 4194304"), "{error}");
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

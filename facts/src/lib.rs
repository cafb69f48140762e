//! Facts about the kit's chapters that the machinery (`cargo xtask`) and the black-box
//! tests both need, kept in one place so they cannot disagree: the chapters' numbers
//! here, and the leak checks in [`leaks`]. Book: "How this kit is built".

/// The first chapter whose runtime an ordinary user can run (a user namespace).
pub const FIRST_ROOTLESS_CHAPTER: u32 = 5;

/// The first chapter with a network namespace and the bridge.
pub const FIRST_NETWORK_CHAPTER: u32 = 6;

/// The first chapter with cgroups and limits.
pub const FIRST_CGROUP_CHAPTER: u32 = 7;

/// The first chapter whose containers outlive their run (`ps`, `rm`, `--rm`), and whose
/// root may be layers.
pub const FIRST_LAYERS_CHAPTER: u32 = 8;

/// The last of the ten chapters: the runtime a person drives, whose command line each
/// chapter extends. Chapter k's tests run against every binary from k to this one.
pub const LAST_CHAPTER: u32 = 10;

/// The bonus chapter: an OCI runtime that podman drives (`create`, `start`, ...). Its
/// command line is runc's, not a superset of chapter 10's, so the ten chapters' tests
/// do not run against it; it has tests of its own.
pub const BONUS_CHAPTER: u32 = 11;

pub mod leaks;

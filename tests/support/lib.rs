//! What every black-box test needs: which binaries to run, the root filesystem, running a
//! container and capturing what it printed, and checking that nothing was left behind.
//!
//! Chapter k's tests run against every binary from k to the newest, because every
//! behaviour taught in chapter k must still work in the chapters after it. `cargo xtask
//! test` sets:
//! - `COURSE_IMPL`: `solutions` (default) or `chapters` (the learner's crates)
//! - `COURSE_ONLY`: a chapter number, to run against that chapter's binary alone
//! - `BYOC_ROOTFS`, `BYOC_BIN_DIR`: where the root filesystem and the binaries are
//!
//! One module per concern; everything is re-exported here, so a chapter's tests `use
//! byoc_tests::*` and need not know where a helper lives.

pub mod cgroups;
pub mod fake_registry;
pub mod hostile;
pub mod htpasswd;
mod images;
mod invocation;
mod layers;
mod leaks;
mod needs;
pub mod netns;
pub mod registry;
mod running;
mod runs;
mod runtime;
mod stage;
mod terminal;
pub mod token_server;
mod transcripts;

pub use byoc_facts::{
    BONUS_CHAPTER, FIRST_CGROUP_CHAPTER, FIRST_LAYERS_CHAPTER, FIRST_NETWORK_CHAPTER,
    FIRST_ROOTLESS_CHAPTER, LAST_CHAPTER,
};
pub use images::*;
pub use invocation::*;
pub use layers::*;
pub use leaks::*;
pub use needs::*;
pub use running::*;
pub use runs::*;
pub use runtime::*;
pub use stage::*;
pub use terminal::*;
pub use transcripts::*;

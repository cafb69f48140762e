//! `cargo xtask fuzz`: random changes to layers and image documents, fed to chapter 9's
//! unpacker and parsers for a fixed time. Book: section 9.3.
//!
//! The fuzzing itself is an ignored test of `solution09` (`tests/fuzz.rs`), so it runs on
//! stable Rust with the kit's own code as it is built for the tests. What it finds is
//! kept under `solutions/09-images/fuzz/found/`, to move to `regressions/`, which every
//! test run replays.

use anyhow::{bail, Result};

use crate::workspace::cargo;

/// The options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct FuzzArgs {
    /// How long to fuzz, in seconds.
    #[arg(long, value_name = "N", default_value_t = 60)]
    seconds: u64,
    /// Where the random changes start: the same seed makes the same inputs.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

pub fn run(args: &FuzzArgs) -> Result<()> {
    let mut command = cargo();
    command
        .args(["test", "-p", "solution09", "--test", "fuzz", "--"])
        .args([
            "--ignored",
            "--nocapture",
            "fuzz_the_unpacker_and_the_parsers",
        ])
        .env("BYOC_FUZZ_SECONDS", args.seconds.to_string());
    if let Some(seed) = args.seed {
        command.env("BYOC_FUZZ_SEED", seed.to_string());
    }
    if !command.status()?.success() {
        bail!(
            "fuzzing found inputs that break a rule: they are in \
             solutions/09-images/fuzz/found/ (replay one with the regression test once it \
             is fixed, by moving it to fuzz/regressions/)"
        );
    }
    Ok(())
}

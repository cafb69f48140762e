//! `cargo xtask`: the course machinery. Book: "How this kit is built".
//!
//! - `rootfs`: build the busybox root filesystem (and the probe) into `rootfs/busybox/`
//! - `gen [--check] [--force]`: make `chapters/` from `solutions/`, or check that it is up
//!   to date; it never overwrites a learner's edits unless forced
//! - `test [--chapter N] [--impl solutions|chapters] [--cgroup-vm]`: build what is needed and
//!   run the tests; `--cgroup-vm` runs the cgroup tests again in a pure cgroup v2 VM
//! - `check N`: a learner's command: test chapter N and say which exercise is not done
//! - `invariant`: every chapter's tests fail on the unsolved crate, naming an exercise
//! - `demo`: run a container from the newest chapter
//! - `book [--serve]`: build the book and check its includes and links; serve it over HTTP
//! - `bench [--runs N] [--warmup N]`: time a container's start-up, beside crun and runc

mod bench;
mod book;
mod check;
mod demo;
mod exercises;
mod gen;
mod generated;
mod invariant;
mod rename;
mod rootfs;
mod testing;
mod todos;
mod vm;
mod wiring;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::testing::Impl;

#[derive(Parser)]
// The learner types `cargo xtask ...`: usage and errors must say so, not `xtask`.
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "byoc's course machinery"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the busybox root filesystem in rootfs/busybox (idempotent).
    Rootfs,
    /// Generate chapters/ from solutions/.
    Gen {
        /// Do not write: fail if chapters/ differs from what would be generated.
        #[arg(long, conflicts_with = "force")]
        check: bool,
        /// Overwrite learner files even where they hold changes gen did not make.
        #[arg(long)]
        force: bool,
    },
    /// Build the binaries and the root filesystem, then run the tests.
    Test {
        /// Only chapter N's tests, against chapter N's binary.
        #[arg(long, value_name = "N")]
        chapter: Option<u32>,
        /// Which binaries to test: the reference solutions or the learner's chapters.
        #[arg(long = "impl", value_enum, default_value = "solutions")]
        implementation: Impl,
        /// Also run the cgroup tests in a small qemu VM whose kernel has cgroup v2 alone
        /// (most learners' machines), and count them in the summary.
        #[arg(long)]
        cgroup_vm: bool,
    },
    /// Check your work on chapter N: run its tests against your chapterN binary.
    Check {
        /// The chapter number.
        chapter: u32,
    },
    /// Check, in a scratch copy, that each chapter's tests fail against its unsolved crate.
    Invariant,
    /// Run a container from the newest chapter that shows its hostname, PID and mounts.
    Demo,
    /// Build the book into book/build and check its includes and internal links.
    Book(book::BookArgs),
    /// Time a container's start-up from the newest chapter, beside crun and runc (as root).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Rootfs => rootfs::ensure().map(|path| {
            println!("root filesystem ready: {}", path.display());
        }),
        Task::Gen { check, force } => gen::run(check, force),
        Task::Test {
            chapter,
            implementation,
            cgroup_vm,
        } => testing::test(chapter, implementation, cgroup_vm),
        Task::Check { chapter } => check::check(chapter),
        Task::Invariant => invariant::invariant(),
        Task::Demo => demo::run(),
        Task::Book(args) => book::run(&args),
        Task::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cargo xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

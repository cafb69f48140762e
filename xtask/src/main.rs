//! `cargo xtask`: the course machinery. Book: "How this kit is built".
//!
//! - `rootfs`: build the busybox root filesystem (and the probe) into `rootfs/busybox/`
//! - `gen [--check] [--force]`: make `chapters/` from `solutions/`, or check that it is
//!   up
//!   to date; it never overwrites a learner's edits unless forced
//! - `test [--chapter N] [--impl solutions|chapters] [--cgroup-vm]`: build what is needed
//!   and
//!   run the tests; `--cgroup-vm` runs the cgroup tests again in a pure cgroup v2 VM
//! - `check N`: a learner's command: test chapter N and say which exercise is not done
//! - `hint N.M [--reset]`: a learner's command: the next hint of exercise N.M
//! - `invariant [--chapter N]`: every chapter's tests fail on the unsolved crate, naming
//!   an
//!   exercise, and `xtask/exercise-tests.txt` says which tests exercise which exercise
//! - `demo`: run a container from the newest chapter
//! - `doctor`: check that this machine has what each chapter needs
//! - `book [--serve]`: build the book and check its includes and links; serve it over
//!   HTTP
//! - `bench [--runs N] [--warmup N]`: time a container's start-up, beside crun and runc

mod bench;
mod book;
mod check;
mod demo;
mod doctor;
mod exercise_tests;
mod exercises;
mod fuzz;
mod gen;
mod generated;
mod hint;
mod invariant;
mod podman_bench;
mod pull_bench;
mod rename;
mod rootfs;
mod testing;
mod todos;
mod unpack_bench;
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
    ///
    /// Done means every test that ran passed and every exercise was exercised by one of
    /// them; tests this machine cannot run are listed, with why, and never count as
    /// passed. Chapter 7 on a machine with cgroup v1: check your code on v2 too, in a
    /// VM, with `cargo xtask check 7 --cgroup-vm` (no root needed).
    Check {
        /// The chapter number.
        chapter: u32,
        /// Also run the chapter's cgroup tests in a small qemu VM whose kernel has cgroup
        /// v2 alone: a test this machine cannot run but the VM passed counts as run.
        #[arg(long)]
        cgroup_vm: bool,
        /// Print the result as one JSON document on stdout (for grading): each
        /// exercise's state and each test's result (Book: "Grading").
        #[arg(long)]
        json: bool,
    },
    /// Show the next hint of exercise N.M: each run goes one level deeper.
    Hint {
        /// The exercise, as its todo!() names it: 5.3.
        exercise: exercises::Number,
        /// Forget how far you got, and start again at the first hint.
        #[arg(long)]
        reset: bool,
    },
    /// Check, in a scratch copy, that each chapter's tests fail against its unsolved
    /// crate.
    Invariant {
        /// Only chapter N (the other chapters' lines of xtask/exercise-tests.txt are
        /// kept).
        #[arg(long, value_name = "N")]
        chapter: Option<u32>,
    },
    /// Run a container from the newest chapter that shows its hostname, PID and mounts.
    Demo,
    /// Check that this machine has what each chapter needs, and print the fix for what
    /// it lacks (before a class, or when something fails).
    Doctor,
    /// Build the book into book/build and check its includes and internal links.
    Book(book::BookArgs),
    /// Time a container's start-up from the newest chapter, beside crun and runc (as
    /// root).
    Bench(bench::BenchArgs),
    /// Feed chapter 9's layer unpacker and image parsers random changes of good and
    /// hostile inputs for a while: none may panic or write outside a layer.
    Fuzz(fuzz::FuzzArgs),
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
        Task::Check {
            chapter,
            cgroup_vm,
            json,
        } => check::check(chapter, cgroup_vm, json),
        Task::Hint { exercise, reset } => hint::hint(exercise, reset),
        Task::Invariant { chapter } => invariant::invariant(chapter),
        Task::Demo => demo::run(),
        Task::Doctor => doctor::doctor(),
        Task::Book(args) => book::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cargo xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

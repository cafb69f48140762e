// Your copy of solutions/04-uts-ipc/src/lib.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 4: UTS and IPC namespaces.
//!
//! Two more flags for `clone`: `CLONE_NEWUTS` gives the container a host name of its own,
//! and `CLONE_NEWIPC` System V message queues, semaphores and shared memory of its own.
//! Book: chapter 4.

#![allow(unused_imports, unused_variables, unused_mut)]

pub use solution03::*;

pub mod uts;

/// Chapter 4's `run` options: chapter 3's, and `--hostname`.
pub mod cli {
    pub use solution03::cli::*;

    /// `run` in chapter 4: chapter 3's options and the container's host name.
    #[derive(Debug, clap::Args)]
    #[group(skip)] // no argument group of its own: its name would clash with chapter 1's
    pub struct RunArgs {
        #[command(flatten)]
        pub base: solution03::cli::RunArgs,

        /// The container's host name (default: its short container id).
        #[arg(long, value_name = "NAME")]
        pub hostname: Option<String>,
    }
}

// Your copy of solutions/03-pid-namespace/src/lib.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 3: a PID namespace of its own.
//!
//! The child is started with `clone(2)` in new mount and PID namespaces, so it is PID 1 of
//! its own process tree. It mounts a fresh `/proc` that shows only that tree. PID 1 has
//! duties no other process has: with `--init`, a tiny init takes them on. Book: chapter 3.

#![allow(unused_imports, unused_variables, unused_mut)]

pub use solution02::*;

pub mod init;
pub mod procfs;
pub mod spawn;

/// Chapter 3's `run` options: chapter 1's, and `--init`.
pub mod cli {
    pub use solution02::cli::*;

    /// `run` in chapter 3: the root filesystem and command, and whether to start an init.
    #[derive(Debug, clap::Args)]
    #[group(skip)] // no argument group of its own: its name would clash with chapter 1's
    pub struct RunArgs {
        #[command(flatten)]
        pub base: solution02::cli::RunArgs,

        /// Run a tiny init as PID 1 that reaps orphans and forwards signals to the command.
        #[arg(long)]
        pub init: bool,
    }
}

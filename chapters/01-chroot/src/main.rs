// Your copy of solutions/01-chroot/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 1: a container is a process in a chroot. Book: chapter 1.
//!
//! The whole run, parent side and child side. Each later chapter rewrites this file to add
//! its own steps: how the story grows is the lesson.

#![allow(unused_imports, unused_variables, unused_mut)]

use std::convert::Infallible;
use std::process::ExitCode;

use anyhow::Result;
use chapter01::cli::{self, RunArgs};
use chapter01::{command, process, rootfs};
use nix::unistd::ForkResult;

fn main() -> ExitCode {
    cli::main_with(run)
}

// ANCHOR: run
/// The parent: check the root filesystem, fork, and wait for the child.
fn run(args: RunArgs) -> Result<u8> {
    let rootfs = rootfs::check(&args.rootfs)?;
    process::ignore_terminal_signals()?;
    match process::fork()? {
        ForkResult::Child => process::run_child(|| child(&rootfs, &args)),
        ForkResult::Parent { child } => process::wait_for(child),
    }
}

/// The child: change root, then become the command.
fn child(rootfs: &std::path::Path, args: &RunArgs) -> Result<Infallible> {
    rootfs::enter(rootfs)?;
    process::default_terminal_signals()?;
    command::exec(&args.command)
}
// ANCHOR_END: run

// Your copy of solutions/02-mount-namespace/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 2: the child gets its own mount namespace and a real root of its own.
//! Book: chapter 2.
//!
//! The parent is as in chapter 1. The child now calls `unshare(CLONE_NEWNS)` and builds its
//! root with `root::setup` instead of `chroot`.

#![allow(unused_imports, unused_variables, unused_mut)]

use std::convert::Infallible;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chapter02::cli::{self, RunArgs};
use chapter02::{command, process, root, rootfs, trace};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::ForkResult;

fn main() -> ExitCode {
    cli::main_with(run)
}

/// The parent: unchanged from chapter 1.
fn run(args: RunArgs) -> Result<u8> {
    let rootfs = rootfs::check(&args.rootfs)?;
    process::ignore_terminal_signals()?;
    match process::fork()? {
        ForkResult::Child => process::run_child(|| child(&rootfs, &args)),
        ForkResult::Parent { child } => process::wait_for(child),
    }
}

// ANCHOR: child
/// The child: a private mount table, then a root of its own, then the command.
fn child(rootfs: &Path, args: &RunArgs) -> Result<Infallible> {
    let flags = CloneFlags::CLONE_NEWNS;
    trace::syscall(
        format_args!("unshare({})", trace::flags(flags)),
        unshare(flags),
    )?;
    root::setup(rootfs)?;
    process::default_terminal_signals()?;
    command::exec(&args.command)
}
// ANCHOR_END: child

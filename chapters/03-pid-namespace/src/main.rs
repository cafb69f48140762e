// Your copy of solutions/03-pid-namespace/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 3: the child is born in new mount and PID namespaces, and is PID 1 there.
//! Book: chapter 3.
//!
//! The parent now uses `clone` instead of `fork`, and supervises the child instead of only
//! waiting: it forwards `Ctrl-C` and `kill` to the container. The child mounts a `/proc` of
//! its own, and with `--init` becomes a tiny init for the command.

#![allow(unused_imports, unused_variables, unused_mut)]

use std::convert::Infallible;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chapter03::cli::{self, RunArgs};
use chapter03::{command, init, procfs, root, rootfs, spawn, trace};
use nix::sched::CloneFlags;
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::getpid;

fn main() -> ExitCode {
    cli::main_with(run)
}

// ANCHOR: run
/// The parent: clone the child into new namespaces, then supervise it.
fn run(args: RunArgs) -> Result<u8> {
    let rootfs = rootfs::check(&args.base.rootfs)?;
    let previous_mask = init::block_signals()?;
    let flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
    let child = spawn::clone_child(flags, || child(&rootfs, &args, &previous_mask))?;
    init::supervise(child)
}
// ANCHOR_END: run

// ANCHOR: child
/// The child, PID 1 of its namespace: a root and a `/proc` of its own, then the command.
fn child(rootfs: &Path, args: &RunArgs, previous_mask: &SigSet) -> Result<Infallible> {
    // If the runtime dies, the container must not live on with nobody to wait for it.
    // (A runtime killed before this line leaves a window; chapter 5's start-up handshake,
    // in which the child waits on a pipe from the parent, closes it.)
    prctl::set_pdeathsig(Signal::SIGKILL)?;
    trace::syscall(format_args!("getpid()"), Ok(getpid()))?;
    root::setup(rootfs)?;
    procfs::mount_proc()?;
    if args.init {
        init::run_as_init(&args.base.command, previous_mask)
    } else {
        init::restore_signals(previous_mask)?;
        command::exec(&args.base.command)
    }
}
// ANCHOR_END: child

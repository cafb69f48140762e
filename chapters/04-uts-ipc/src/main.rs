// Your copy of solutions/04-uts-ipc/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 4: two more namespaces, UTS and IPC, and a host name for the container.
//! Book: chapter 4.
//!
//! The flow is chapter 3's with two more `clone` flags and one more step in the child:
//! `sethostname`, before the root is set up (while the host's `/proc` can still tell us
//! which UTS namespace we are in).

#![allow(unused_imports, unused_variables, unused_mut)]

use std::convert::Infallible;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chapter04::cli::{self, RunArgs};
use chapter04::{command, init, procfs, root, rootfs, spawn, trace, uts};
use nix::sched::CloneFlags;
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::getpid;

fn main() -> ExitCode {
    cli::main_with(run)
}

// ANCHOR: namespaces
/// The namespaces a container gets in this chapter.
fn namespaces() -> CloneFlags {
    // TODO: EXERCISE 4.2 (book 4.2): add the UTS and IPC namespaces to chapter 3's two
    // HINT: CloneFlags::CLONE_NEWUTS and CloneFlags::CLONE_NEWIPC, joined with `|`.
    todo!("exercise 4.2: add the UTS and IPC namespaces to chapter 3's two (book section 4.2)")
}
// ANCHOR_END: namespaces

// ANCHOR: run
/// The parent: check the options, clone the child into new namespaces, supervise it.
fn run(args: RunArgs) -> Result<u8> {
    let rootfs = rootfs::check(&args.base.base.rootfs)?;
    let hostname = match &args.hostname {
        Some(name) => name.clone(),
        None => uts::container_id()?,
    };
    uts::check_hostname(&hostname)?;
    let host_uts = uts::namespace_id()?;
    let previous_mask = init::block_signals()?;
    let child = spawn::clone_child(namespaces(), || {
        child(&rootfs, &args, &hostname, host_uts, &previous_mask)
    })?;
    init::supervise(child)
}
// ANCHOR_END: run

// ANCHOR: child
/// The child, PID 1 of its namespaces: a host name, a root and a `/proc`, then the command.
fn child(
    rootfs: &Path,
    args: &RunArgs,
    hostname: &str,
    host_uts: (u64, u64),
    previous_mask: &SigSet,
) -> Result<Infallible> {
    // If the runtime dies, the container must not live on (see chapter 3).
    prctl::set_pdeathsig(Signal::SIGKILL)?;
    trace::syscall(format_args!("getpid()"), Ok(getpid()))?;
    uts::set_hostname(hostname, host_uts)?;
    root::setup(rootfs)?;
    procfs::mount_proc()?;
    let command = &args.base.base.command;
    if args.base.init {
        init::run_as_init(command, previous_mask)
    } else {
        init::restore_signals(previous_mask)?;
        command::exec(command)
    }
}
// ANCHOR_END: child

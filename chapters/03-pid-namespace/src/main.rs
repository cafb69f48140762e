// Your copy of solutions/03-pid-namespace/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 3: the child is born in new mount and PID namespaces, and is PID 1 there.
//! Book: chapter 3.
//!
//! The parent now uses `clone` instead of `fork`, and supervises the child instead of
//! only waiting: it forwards `Ctrl-C` and `kill` to the container. The child mounts a
//! `/proc` of its own, and with `--init` becomes a tiny init for the command.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use chapter03::root::{self, RootPlan};
use chapter03::spec::{Process, Root, Spec};
use chapter03::sync::ChildEnd;
use chapter03::terminal::Stdio;
use chapter03::{cli, command, devices, init, process, procfs, sealed, spawn, trace};
use clap::{Args, Subcommand};
use nix::sched::CloneFlags;
use nix::sys::signal::SigSet;
use nix::unistd::getpid;

fn main() -> ExitCode {
    cli::main_with(|command| match command {
        Command::Run(args) => run(args),
    })
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command in a new container.
    Run(RunArgs),
}

/// `run`'s options: chapter 1's, and `--init`.
#[derive(Debug, Args)]
struct RunArgs {
    /// The directory that becomes the container's `/`.
    #[arg(long, value_name = "DIR")]
    rootfs: PathBuf,

    /// Give the container a terminal of its own, for an interactive shell.
    #[arg(short = 't', long)]
    tty: bool,

    /// Run a tiny init as PID 1 that reaps orphans and forwards signals to the command.
    #[arg(long)]
    init: bool,

    /// The command to run, and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

impl TryFrom<RunArgs> for Spec {
    type Error = anyhow::Error;

    fn try_from(args: RunArgs) -> Result<Spec> {
        Ok(Spec {
            process: Process::new(args.command, args.tty)?,
            root: Root::new(&args.rootfs, &["dev", "tmp", "proc"])?,
            init: args.init,
        })
    }
}

// ANCHOR: run
/// The parent: clone the child into new namespaces, let it go, then supervise it.
fn run(args: RunArgs) -> Result<u8> {
    let spec = Spec::try_from(args)?;
    if spec.init {
        sealed::run_from_a_sealed_copy()?;
    }
    let stdio = Stdio::choose(spec.process.terminal)?;
    let previous_mask = init::block_signals()?;
    let flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
    let (child, channel) = spawn::clone_child(flags, |channel| {
        child(&spec, &stdio, channel, &previous_mask)
    })?;
    channel.send_go()?;
    let started = process::confirm_started(child, channel)?;
    let relay = stdio.start_relay(started.terminal)?;
    let code = init::supervise(child)?.code;
    relay.finish();
    Ok(code)
}
// ANCHOR_END: run

// ANCHOR: child
/// The child, PID 1 of its namespace: a root and a `/proc` of its own, then the command.
fn child(
    spec: &Spec,
    stdio: &Stdio,
    channel: &ChildEnd,
    previous_mask: &SigSet,
) -> Result<Infallible> {
    channel.wait_for_go()?;
    spawn::die_with_parent(channel)?;
    process::new_session()?;
    trace::syscall(format_args!("getpid()"), Ok(getpid()))?;
    root::setup(&RootPlan {
        rootfs: spec.root.path.clone(),
        make_device: devices::mknod_device,
    })?;
    procfs::mount_proc(Path::new("/proc"))?;
    stdio.connect_child(channel, Path::new("/dev/ptmx"))?;
    process::close_other_fds(channel)?;
    if spec.init {
        init::run_as_init(&spec.process, channel, previous_mask)
    } else {
        init::restore_signals(previous_mask)?;
        command::exec(&spec.process)
    }
}
// ANCHOR_END: child

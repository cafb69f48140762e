// Your copy of solutions/02-mount-namespace/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 2: the child gets its own mount namespace and a real root of its own.
//! Book: chapter 2.
//!
//! The parent is as in chapter 1. The child now calls `unshare(CLONE_NEWNS)` and builds
//! its root with `root::setup` instead of `chroot`.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use chapter02::root::{self, RootPlan};
use chapter02::spec::{Process, Root, Spec};
use chapter02::sync::ChildEnd;
use chapter02::terminal::Stdio;
use chapter02::{cli, command, devices, process, trace};
use clap::{Args, Subcommand};
use nix::sched::{unshare, CloneFlags};

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

/// `run`'s options, as in chapter 1.
#[derive(Debug, Args)]
struct RunArgs {
    /// The directory that becomes the container's `/`.
    #[arg(long, value_name = "DIR")]
    rootfs: PathBuf,

    /// Give the container a terminal of its own, for an interactive shell.
    #[arg(short = 't', long)]
    tty: bool,

    /// The command to run, and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

impl TryFrom<RunArgs> for Spec {
    type Error = anyhow::Error;

    /// As in chapter 1, and the root filesystem must have the directories chapter 2
    /// mounts on: better said now than as a bare ENOENT from `mount` half-way through.
    fn try_from(args: RunArgs) -> Result<Spec> {
        Ok(Spec {
            process: Process::new(args.command, args.tty)?,
            root: Root::new(&args.rootfs, &["dev", "tmp"])?,
        })
    }
}

/// The parent: unchanged from chapter 1.
fn run(args: RunArgs) -> Result<u8> {
    let spec = Spec::try_from(args)?;
    let stdio = Stdio::choose(spec.process.terminal)?;
    let (child, channel) = process::fork_child(|channel| child(&spec, &stdio, channel))?;
    process::pass_signals_on(child)?;
    channel.send_go()?;
    let started = process::confirm_started(child, channel)?;
    let relay = stdio.start_relay(started.terminal)?;
    let code = process::wait_for(child)?;
    relay.finish();
    Ok(code)
}

// ANCHOR: child
/// The child: a private mount table, then a root of its own, then the command.
fn child(spec: &Spec, stdio: &Stdio, channel: &ChildEnd) -> Result<Infallible> {
    channel.wait_for_go()?;
    process::new_session()?;
    let flags = CloneFlags::CLONE_NEWNS;
    trace::syscall(
        format_args!("unshare({})", trace::flags(flags)),
        unshare(flags),
    )?;
    root::setup(&RootPlan {
        rootfs: spec.root.path.clone(),
        make_device: devices::mknod_device,
    })?;
    // Now /dev/ptmx is the container's own (root::setup mounted a devpts).
    stdio.connect_child(channel, Path::new("/dev/ptmx"))?;
    process::default_signals()?;
    process::close_other_fds(channel)?;
    command::exec(&spec.process)
}
// ANCHOR_END: child

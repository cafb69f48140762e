// Your copy of solutions/01-chroot/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 1: a container is a process in a chroot. Book: chapter 1.
//!
//! The whole run, parent side and child side. Each later chapter rewrites this file to
//! add its own steps: how the story grows is the lesson.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use chapter01::spec::{Process, Root, Spec};
use chapter01::sync::ChildEnd;
use chapter01::terminal::Stdio;
use chapter01::{cli, command, process, rootfs};
use clap::{Args, Subcommand};

fn main() -> ExitCode {
    cli::main_with(|command| match command {
        Command::Run(args) => run(args),
    })
}

// ANCHOR: cli
/// What this chapter's runtime can do.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command in a new container.
    Run(RunArgs),
}

/// `run`'s options: where the root filesystem is, and what to run in it.
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

    /// Checks the options whole, before anything is started.
    fn try_from(args: RunArgs) -> Result<Spec> {
        Ok(Spec {
            process: Process::new(args.command, args.tty)?,
            root: Root::new(&args.rootfs, &[])?,
        })
    }
}
// ANCHOR_END: cli

// ANCHOR: run
/// The parent: check the spec, fork, let the child go, and wait for it.
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

/// The child: wait for the parent, leave the host's terminal session, change root, then
/// become the command.
fn child(spec: &Spec, stdio: &Stdio, channel: &ChildEnd) -> Result<Infallible> {
    channel.wait_for_go()?;
    process::new_session()?;
    // The host's /dev/ptmx: the root filesystem has no devices yet (chapter 2 adds them).
    stdio.connect_child(channel, Path::new("/dev/ptmx"))?;
    rootfs::enter(&spec.root.path)?;
    process::default_signals()?;
    process::close_other_fds(channel)?;
    command::exec(&spec.process)
}
// ANCHOR_END: run

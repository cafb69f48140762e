// Your copy of solutions/04-uts-ipc/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 4: two more namespaces, UTS and IPC, and a host name for the container.
//! Book: chapter 4.
//!
//! The flow is chapter 3's with two more `clone` flags and one more step in the child:
//! `sethostname`, before the root is set up (while the host's `/proc` can still tell us
//! which UTS namespace we are in).

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chapter04::basics::{BasicArgs, RootfsArg};
use chapter04::root::{self, RootPlan};
use chapter04::spec::{Process, Root, Spec};
use chapter04::sync::ChildEnd;
use chapter04::terminal::Stdio;
use chapter04::{
    cli, command, devices, init, process, procfs, sealed, spawn, trace, uts,
};
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

/// `run`'s options: chapter 3's, and `--hostname`, in one group that later chapters
/// flatten too.
#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    root: RootfsArg,

    #[command(flatten)]
    basics: BasicArgs,

    /// The command to run, and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

impl TryFrom<RunArgs> for Spec {
    type Error = anyhow::Error;

    fn try_from(args: RunArgs) -> Result<Spec> {
        let basics = args.basics;
        let hostname = match basics.hostname {
            Some(name) => name,
            None => uts::container_id()?,
        };
        uts::check_hostname(&hostname)?;
        Ok(Spec {
            process: Process::new(args.command, basics.tty)?,
            root: Root::new(&args.root.rootfs, &["dev", "tmp", "proc"])?,
            hostname,
            init: basics.init,
        })
    }
}

// ANCHOR: namespaces
/// The namespaces a container gets in this chapter.
fn namespaces() -> CloneFlags {
    // TODO: EXERCISE 4.2 (book 4.2): add the UTS and IPC namespaces to chapter 3's two
    // HINT: the flags are a set: add the two namespaces of this chapter to those of
    // HINT: chapter 3. Read section 4.2.
    todo!(
        "exercise 4.2: add the UTS and IPC namespaces to chapter 3's two (book section \
         4.2)"
    )
}
// ANCHOR_END: namespaces

// ANCHOR: run
/// The parent: check the spec, clone the child into new namespaces, let it go, supervise
/// it.
fn run(args: RunArgs) -> Result<u8> {
    let spec = Spec::try_from(args)?;
    if spec.init {
        sealed::run_from_a_sealed_copy()?;
    }
    let host_uts = uts::namespace_id()?;
    let stdio = Stdio::choose(spec.process.terminal)?;
    let previous_mask = init::block_signals()?;
    let (child, channel) = spawn::clone_child(namespaces(), |channel| {
        child(&spec, &stdio, channel, host_uts, &previous_mask)
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
/// The child, PID 1 of its namespaces: a host name, a root and a `/proc`, then the
/// command.
fn child(
    spec: &Spec,
    stdio: &Stdio,
    channel: &ChildEnd,
    host_uts: (u64, u64),
    previous_mask: &SigSet,
) -> Result<Infallible> {
    channel.wait_for_go()?;
    spawn::die_with_parent(channel)?;
    process::new_session()?;
    trace::syscall(format_args!("getpid()"), Ok(getpid()))?;
    uts::set_hostname(&spec.hostname, host_uts)?;
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

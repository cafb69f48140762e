// Your copy of solutions/05-user-namespace/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 5: a user namespace, and containers for ordinary users. Book: chapter 5.
//!
//! The flow is chapter 4's with one more `clone` flag and one more step on each side: the
//! parent writes the child's id maps while the child waits, and the child becomes root of
//! its namespace when it is let go. Inside a user namespace `/dev` is made of the host's
//! devices, bind-mounted, since `mknod` is not allowed there.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chapter05::basics::{BasicArgs, RootfsArg};
use chapter05::root::{self, RootPlan};
use chapter05::spec::{Process, Root, Spec};
use chapter05::sync::ChildEnd;
use chapter05::terminal::Stdio;
use chapter05::userns::{self, UsernsArgs};
use chapter05::{
    cli, command, devices, init, mounts, process, procfs, sealed, spawn, trace, uts,
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

/// `run`'s options: chapter 4's, and the user namespace's group, which lives in its
/// library with its checks (as each later chapter's group does).
#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    root: RootfsArg,

    #[command(flatten)]
    basics: BasicArgs,

    #[command(flatten)]
    userns: UsernsArgs,

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
        let process = Process::new(args.command, basics.tty)?;
        let user_namespace = args.userns.user_namespace()?;
        userns::check_user_is_mapped(&process.user, user_namespace.as_ref())?;
        Ok(Spec {
            process,
            root: Root::new(&args.root.rootfs, &["dev", "tmp", "proc"])?,
            hostname,
            init: basics.init,
            user_namespace,
        })
    }
}

/// The namespaces a container gets: chapter 4's, and a user namespace if the spec has
/// one.
fn namespaces(spec: &Spec) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if spec.user_namespace.is_some() {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    flags
}

// ANCHOR: run
/// The parent: check the spec, clone the child, write its id maps while it waits, let it
/// go, supervise it.
fn run(args: RunArgs) -> Result<u8> {
    let spec = Spec::try_from(args)?;
    if spec.init {
        sealed::run_from_a_sealed_copy()?;
    }
    let prepared = Prepared {
        stdio: Stdio::choose(spec.process.terminal)?,
        host_uts: uts::namespace_id()?,
        previous_mask: init::block_signals()?,
    };
    let (child, channel) = spawn::clone_child(namespaces(&spec), |channel| {
        child(&spec, &prepared, channel)
    })
    .map_err(userns::explain_clone_failure)?;
    if let Some(user) = &spec.user_namespace {
        userns::write_maps(child, &user.uid_mappings, &user.gid_mappings)
            .inspect_err(|_| process::abandon(child))?;
    }
    channel.send_go()?;
    let started = process::confirm_started(child, channel)?;
    let relay = prepared.stdio.start_relay(started.terminal)?;
    let code = init::supervise(child)?.code;
    relay.finish();
    Ok(code)
}
// ANCHOR_END: run

/// What the parent made for the child before the clone, besides the spec: one value, to
/// which each later chapter adds its part (chapter 4 passed these one by one).
struct Prepared {
    stdio: Stdio,
    /// The host's UTS namespace, so the child can see that it has a new one.
    host_uts: (u64, u64),
    /// The signal mask to give the command back.
    previous_mask: SigSet,
}

// ANCHOR: child
/// The child: once let go, root of its user namespace; then as in chapter 4, with `/dev`
/// bind-mounted from the host inside a user namespace.
fn child(spec: &Spec, prepared: &Prepared, channel: &ChildEnd) -> Result<Infallible> {
    channel.wait_for_go()?;
    let make_device = match spec.user_namespace {
        Some(_) => {
            userns::become_root()?;
            userns::drop_supplementary_groups()?;
            userns::bind_host_device
        }
        None => devices::mknod_device,
    };
    // After become_root: the kernel clears this request when a process's ids change.
    spawn::die_with_parent(channel)?;
    process::new_session()?;
    trace::syscall(format_args!("getpid()"), Ok(getpid()))?;
    uts::set_hostname(&spec.hostname, prepared.host_uts)?;
    let plan = RootPlan {
        rootfs: spec.root.path.clone(),
        make_device,
    };
    // Ubuntu's AppArmor restriction lets the clone through and refuses the first mount;
    // and a root filesystem the container's root cannot reach is refused there too.
    let root = root::prepare(&plan)
        .map_err(userns::explain_clone_failure)
        .map_err(|error| {
            userns::explain_unreachable_root(
                error,
                &spec.root.path,
                spec.user_namespace.as_ref(),
            )
        })?;
    // Before pivot_root: in a user namespace, the kernel lets a new procfs be mounted
    // only where a whole one is already visible in the mount namespace, and the host's
    // /proc is gone once the old root is detached.
    procfs::mount_proc(&root.find_dir("proc")?.path())?;
    // Closed before the old root goes: no descriptor of the host's tree may reach the
    // container.
    drop(root);
    mounts::pivot_root(&plan.rootfs)?;
    prepared
        .stdio
        .connect_child(channel, Path::new("/dev/ptmx"))?;
    process::close_other_fds(channel)?;
    if spec.init {
        init::run_as_init(&spec.process, channel, &prepared.previous_mask)
    } else {
        init::restore_signals(&prepared.previous_mask)?;
        command::exec(&spec.process)
    }
}
// ANCHOR_END: child

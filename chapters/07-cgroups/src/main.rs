// Your copy of solutions/07-cgroups/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 7: cgroups: memory, CPU and process limits. Book: chapter 7.
//!
//! The flow is chapter 6's with a cgroup. Before the clone, the parent decides where the
//! container's cgroup can go (or refuses a limit it cannot keep), makes it and writes the
//! limits. While the child waits, the parent puts it in the cgroup. Once let go, the
//! child makes a cgroup namespace and mounts its part of the tree read-only. When the
//! container ends, the parent says whether the kernel killed it for memory, and the
//! cgroup removes itself with everything still in it.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use chapter07::basics::{BasicArgs, RootfsArg};
use chapter07::cgroup::{self, Owned};
use chapter07::dataroot::DataRootArgs;
use chapter07::hierarchy::Hierarchy;
use chapter07::limits::LimitsArgs;
use chapter07::network::{self, Inside, NetworkArgs};
use chapter07::ports::{self, Dialer};
use chapter07::root::{self, RootPlan};
use chapter07::spec::{NetworkMode, Process, Root, Spec};
use chapter07::sync::ChildEnd;
use chapter07::terminal::Stdio;
use chapter07::userns::{self, UsernsArgs};
use chapter07::{cli, command, devices, dialer, init, inside, mounts, process};
use chapter07::{procfs, sealed, spawn, trace, uts};
use clap::{Args, Subcommand};
use nix::sys::signal::SigSet;
use nix::unistd::{getpid, Pid};

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

/// `run`'s options: chapter 6's, and the limits. Each chapter's group lives in its
/// library, with its checks.
#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    root: RootfsArg,

    #[command(flatten)]
    basics: BasicArgs,

    #[command(flatten)]
    userns: UsernsArgs,

    #[command(flatten)]
    network: NetworkArgs,

    #[command(flatten)]
    data_root: DataRootArgs,

    #[command(flatten)]
    limits: LimitsArgs,

    /// The command to run, and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

impl TryFrom<RunArgs> for Spec {
    type Error = anyhow::Error;

    fn try_from(args: RunArgs) -> Result<Spec> {
        let id = uts::container_id()?;
        let basics = &args.basics;
        let hostname = basics.hostname.clone().unwrap_or_else(|| id.clone());
        uts::check_hostname(&hostname)?;
        let root = Root::new(&args.root.rootfs, &["dev", "tmp", "proc"])?;
        let network = args.network.network()?;
        if matches!(network.mode, NetworkMode::Bridge { .. }) {
            network::check_mount_files(&root.path)?;
        }
        let process = Process::new(args.command, basics.tty)?;
        let user_namespace = args.userns.user_namespace()?;
        userns::check_user_is_mapped(&process.user, user_namespace.as_ref())?;
        Ok(Spec {
            id,
            process,
            root,
            hostname,
            init: basics.init,
            user_namespace,
            network,
            data_root: args.data_root.data_root()?,
            resources: args.limits.resources()?,
            cgroup_parent: args.limits.cgroup_parent()?,
        })
    }
}

// ANCHOR: run
/// The parent: check the spec and where its cgroup can go, listen on the published ports,
/// take an address on the bridge, make the cgroup with its limits, clone the child, write
/// its id maps, plug it in and put it in its cgroup while it waits, let it go, relay its
/// ports and supervise it, and say if it was killed for memory. Leaving, the values made
/// here undo themselves, the last made first: the cgroup with whatever is still running
/// in it, then the address (the cable goes with the container's network namespace).
fn run(args: RunArgs) -> Result<u8> {
    let spec = Spec::try_from(args)?;
    if spec.init {
        sealed::run_from_a_sealed_copy()?;
    }
    let hierarchy = Hierarchy::of_this_machine()?;
    let placement = cgroup::locate(&hierarchy, &spec.resources, userns::is_host_root())?;
    let host_uts = uts::namespace_id()?;
    let published = ports::listen(&spec.network.ports)?;
    let mut joined =
        network::join(spec.network.mode, &spec.data_root, &spec.id, &spec.hostname)?;
    let cgroup = cgroup::create_if_placed(
        placement.as_ref(),
        &spec.cgroup_parent,
        &spec.id,
        &spec.resources,
        &spec.data_root,
    )?;
    let prepared = Prepared {
        stdio: Stdio::choose(spec.process.terminal)?,
        host_uts,
        inside: Inside {
            ethernet: joined.as_ref().map(|joined| joined.ethernet),
        },
        files: joined.as_ref().map(|joined| joined.files.clone()),
        cgroup_view: cgroup.as_ref().map(|_| &hierarchy),
        previous_mask: init::block_signals()?,
    };
    let flags = network::namespaces(spec.user_namespace.is_some(), spec.network.mode);
    let (child, channel) =
        spawn::clone_child(flags, |channel| child(&spec, &prepared, channel))
            .map_err(userns::explain_clone_failure)?;
    let dialer = connect_child(&spec, child, &prepared.inside, cgroup.as_ref())
        .inspect_err(|_| process::abandon(child))?;
    channel.send_go()?;
    let started = process::confirm_started(child, channel)?;
    if let Some(joined) = joined.as_mut() {
        joined.started(); // what its start made on the bridge now stays for the next
    }
    if let Some(dialer) = dialer {
        ports::start_proxy(published, dialer);
    }
    let relay = prepared.stdio.start_relay(started.terminal)?;
    let ended = init::supervise(child)?;
    relay.finish();
    cgroup::report_out_of_memory(cgroup.as_ref(), &spec.resources, ended);
    Ok(ended.code)
}
// ANCHOR_END: run

// ANCHOR: connect_child
/// The host's side of the child's start, while it waits: its id maps, its cgroup, its
/// cable to the bridge, and the way to its published ports.
fn connect_child(
    spec: &Spec,
    child: Pid,
    inside: &Inside,
    cgroup: Option<&Owned>,
) -> Result<Option<Dialer>> {
    if let Some(user) = &spec.user_namespace {
        userns::write_maps(child, &user.uid_mappings, &user.gid_mappings)?;
    }
    if let Some(owned) = cgroup {
        owned.cgroup.add(child)?;
    }
    match &inside.ethernet {
        Some(ethernet) => {
            network::attach(child, &spec.id)?;
            Ok(Some(Dialer::Address(ethernet.address)))
        }
        None if spec.network.ports.is_empty() => Ok(None),
        None => {
            let helper = dialer::start(child, spec.user_namespace.is_some())?;
            Ok(Some(Dialer::Inside(helper)))
        }
    }
}
// ANCHOR_END: connect_child

/// What the parent made for the child before the clone, besides the spec: one value, to
/// which each chapter adds its part.
struct Prepared<'a> {
    stdio: Stdio,
    /// The host's UTS namespace, so the child can see that it has a new one.
    host_uts: (u64, u64),
    /// The container's side of the network (chapter 6).
    inside: Inside,
    /// The container's own /etc/hosts, hostname and resolv.conf, on the bridge (chapter
    /// 6).
    files: Option<PathBuf>,
    /// The hierarchy to show inside, when the container has a cgroup of its own.
    cgroup_view: Option<&'a Hierarchy>,
    /// The signal mask to give the command back.
    previous_mask: SigSet,
}

// ANCHOR: child
/// The child: as in chapter 6, and once let go (and so in its cgroup), a cgroup namespace
/// and a read-only view of its own part of the cgroup tree.
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
    if prepared.cgroup_view.is_some() {
        inside::enter_cgroup_namespace()?;
    }
    process::new_session()?;
    trace::syscall(format_args!("getpid()"), Ok(getpid()))?;
    uts::set_hostname(&spec.hostname, prepared.host_uts)?;
    if spec.network.mode != NetworkMode::Host {
        network::configure_inside(&prepared.inside)?;
    }
    let plan = RootPlan {
        rootfs: spec.root.path.clone(),
        make_device,
    };
    let root = root::prepare(&plan)
        .map_err(userns::explain_clone_failure)
        .map_err(|error| {
            userns::explain_unreachable_root(
                error,
                &spec.root.path,
                spec.user_namespace.as_ref(),
            )
        })?;
    if let Some(files) = &prepared.files {
        network::mount_container_files(files, &root)?;
    }
    if let Some(hierarchy) = prepared.cgroup_view {
        inside::mount_cgroup_fs(&root, hierarchy)?;
    }
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

// Your copy of solutions/06-network-namespace/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 6: a network namespace, a bridge, NAT and published ports. Book: chapter 6.
//!
//! The flow is chapter 5's with one more `clone` flag and one more step on each side.
//! Before the clone, the parent listens on the published ports and takes an address on
//! the bridge; after it, the parent plugs the child into the bridge while it waits. Once
//! let go, the child brings up its loopback and its `eth0`, and mounts its own
//! `/etc/hosts`.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use chapter06::basics::{BasicArgs, RootfsArg};
use chapter06::dataroot::DataRootArgs;
use chapter06::network::{self, Inside, NetworkArgs};
use chapter06::ports::{self, Dialer};
use chapter06::root::{self, RootPlan};
use chapter06::spec::{NetworkMode, Process, Root, Spec};
use chapter06::sync::ChildEnd;
use chapter06::terminal::Stdio;
use chapter06::userns::{self, UsernsArgs};
use chapter06::{cli, command, devices, dialer, init, mounts, process, procfs, spawn};
use chapter06::{sealed, trace, uts};
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

/// `run`'s options: chapter 5's, the network's and the data root. Each chapter's group
/// lives in its library, with its checks.
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
        })
    }
}

// ANCHOR: run
/// The parent: check the spec, listen on the published ports, take an address on the
/// bridge, clone the child, write its id maps and plug it in while it waits, let it go,
/// relay its ports and supervise it. Leaving, the values made here undo themselves.
fn run(args: RunArgs) -> Result<u8> {
    let spec = Spec::try_from(args)?;
    if spec.init {
        sealed::run_from_a_sealed_copy()?;
    }
    let host_uts = uts::namespace_id()?;
    let published = ports::listen(&spec.network.ports)?;
    let mut joined =
        network::join(spec.network.mode, &spec.data_root, &spec.id, &spec.hostname)?;
    let prepared = Prepared {
        stdio: Stdio::choose(spec.process.terminal)?,
        host_uts,
        inside: Inside {
            ethernet: joined.as_ref().map(|joined| joined.ethernet),
        },
        files: joined.as_ref().map(|joined| joined.files.clone()),
        previous_mask: init::block_signals()?,
    };
    let flags = network::namespaces(spec.user_namespace.is_some(), spec.network.mode);
    let (child, channel) =
        spawn::clone_child(flags, |channel| child(&spec, &prepared, channel))
            .map_err(userns::explain_clone_failure)?;
    let dialer = connect_child(&spec, child, &prepared.inside)
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
    let code = init::supervise(child)?.code;
    relay.finish();
    Ok(code)
}
// ANCHOR_END: run

// ANCHOR: connect_child
/// The host's side of the child's start, while it waits: its id maps, its cable to the
/// bridge, and the way to its published ports.
fn connect_child(spec: &Spec, child: Pid, inside: &Inside) -> Result<Option<Dialer>> {
    if let Some(user) = &spec.user_namespace {
        userns::write_maps(child, &user.uid_mappings, &user.gid_mappings)?;
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
struct Prepared {
    stdio: Stdio,
    /// The host's UTS namespace, so the child can see that it has a new one.
    host_uts: (u64, u64),
    /// The container's side of the network.
    inside: Inside,
    /// The container's own /etc/hosts, hostname and resolv.conf, on the bridge.
    files: Option<PathBuf>,
    /// The signal mask to give the command back.
    previous_mask: SigSet,
}

// ANCHOR: child
/// The child: as in chapter 5, and once let go, its network: loopback, `eth0` on the
/// bridge, and its own `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.
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

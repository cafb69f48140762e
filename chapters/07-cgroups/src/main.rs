// Your copy of solutions/07-cgroups/src/main.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 7: cgroups: memory, CPU and process limits. Book: chapter 7.
//!
//! The flow is chapter 6's with a cgroup. Before the clone, the parent decides where the
//! container's cgroup can go (or refuses a limit it cannot keep), makes it and writes the
//! limits. While the child waits, the parent puts it in the cgroup. Once let go, the child
//! makes a cgroup namespace and mounts its part of the tree read-only. When the container
//! ends, the parent says whether the kernel killed it for memory, and the cgroup removes
//! itself with everything still in it.

#![allow(unused_imports, unused_variables, unused_mut)]

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use chapter07::cgroup::{self, Owned};
use chapter07::hierarchy::Hierarchy;
use chapter07::idmap::IdMap;
use chapter07::limits::{self, Bytes, Cpus, Limits, Swap};
use chapter07::network::{self, Inside, Joined};
use chapter07::ports::{self, Dialer, PortMapping};
use chapter07::process::Ended;
use chapter07::root::{self, RootPlan};
use chapter07::spec::{Network, NetworkMode, Process, Root, Spec};
use chapter07::subnet::{Subnet, DEFAULT_SUBNET};
use chapter07::sync::ChildEnd;
use chapter07::terminal::Stdio;
use chapter07::userns;
use chapter07::{cli, command, dataroot, devices, dialer, init, inside, mounts, process};
use chapter07::{procfs, spawn, trace, uts};
use clap::{Args, Subcommand, ValueEnum};
use nix::sched::CloneFlags;
use nix::sys::signal::SigSet;
use nix::unistd::{getpid, Pid, Uid};

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

/// `run`'s options: chapter 6's, and the limits.
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

    /// The container's host name (default: its short container id).
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    hostname: Option<String>,

    /// A user namespace even when run as root (an ordinary user always gets one).
    #[arg(long)]
    userns: bool,

    /// Container uids CONTAINER.. are host uids HOST.., SIZE of them (repeatable).
    #[arg(long = "uid-map", value_name = "CONTAINER:HOST:SIZE")]
    uid_maps: Vec<IdMap>,

    /// Container gids CONTAINER.. are host gids HOST.., SIZE of them (repeatable).
    #[arg(long = "gid-map", value_name = "CONTAINER:HOST:SIZE")]
    gid_maps: Vec<IdMap>,

    /// The container's network (default: bridge as root, none for an ordinary user).
    #[arg(long, value_enum, value_name = "MODE")]
    net: Option<NetArg>,

    /// The bridge's subnet (default: 10.88.0.0/16).
    #[arg(long, value_name = "ADDRESS/PREFIX")]
    subnet: Option<Subnet>,

    /// Publish a container port on the host: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp]
    /// (repeatable).
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    publish: Vec<PortMapping>,

    /// Where the runtime keeps its data (default: /var/lib/byoc as root,
    /// ~/.local/share/byoc for an ordinary user).
    #[arg(long, value_name = "DIR", env = "BYOC_ROOT")]
    root: Option<PathBuf>,

    /// The most memory the container may use: 512m, 1g (units of 1024, as docker's).
    #[arg(short = 'm', long, value_name = "SIZE", allow_hyphen_values = true)]
    memory: Option<Bytes>,

    /// Memory and swap together, at least --memory; -1 for swap without limit.
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    memory_swap: Option<Swap>,

    /// How much CPU time the container may use, in CPUs: 0.5 is half of one.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    cpus: Option<Cpus>,

    /// The most processes (and threads) the container may have at once.
    #[arg(long = "pids-limit", value_name = "N", value_parser = limits::parse_pids_limit, allow_hyphen_values = true)]
    pids_limit: Option<u64>,

    /// The cgroup that the container's own goes under.
    #[arg(long = "cgroup-parent", value_name = "PATH", env = "BYOC_CGROUP_PARENT",
          default_value = cgroup::DEFAULT_PARENT)]
    cgroup_parent: String,

    /// The command to run, and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// The values of `--net`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum NetArg {
    /// The host's own network (no network namespace).
    Host,
    /// A network namespace with only loopback.
    None,
    /// A network namespace on the host's bridge, with NAT and published ports.
    Bridge,
}

impl TryFrom<RunArgs> for Spec {
    type Error = anyhow::Error;

    fn try_from(args: RunArgs) -> Result<Spec> {
        let id = uts::container_id()?;
        let hostname = args.hostname.clone().unwrap_or_else(|| id.clone());
        uts::check_hostname(&hostname)?;
        let wanted = args.userns
            || !args.uid_maps.is_empty()
            || !args.gid_maps.is_empty()
            || !Uid::effective().is_root();
        let user_namespace = if wanted {
            Some(userns::namespace_for(&args.uid_maps, &args.gid_maps)?)
        } else {
            None
        };
        let root = Root::new(&args.rootfs, &["dev", "tmp", "proc"])?;
        let network = network_of(&args)?;
        if matches!(network.mode, NetworkMode::Bridge { .. }) {
            network::check_mount_files(&root.path)?;
        }
        let resources = Limits {
            memory: args.memory,
            memory_swap: args.memory_swap,
            cpus: args.cpus,
            pids: args.pids_limit,
        };
        resources.check()?;
        Ok(Spec {
            id,
            process: Process::new(args.command, args.tty)?,
            root,
            hostname,
            init: args.init,
            user_namespace,
            network,
            resources,
            // Checked here, not by clap: clap would print a newline in it as it is.
            cgroup_parent: cgroup::parse_parent(&args.cgroup_parent)?,
        })
    }
}

/// The network asked for, checked: what cannot work is refused before anything is made.
fn network_of(args: &RunArgs) -> Result<Network> {
    let root = network::is_host_root();
    let net = args
        .net
        .unwrap_or(if root { NetArg::Bridge } else { NetArg::None });
    let mode = match net {
        NetArg::Host => NetworkMode::Host,
        NetArg::None => NetworkMode::None,
        NetArg::Bridge => NetworkMode::Bridge {
            subnet: match args.subnet {
                Some(subnet) => subnet,
                None => DEFAULT_SUBNET.parse()?,
            },
        },
    };
    let subnet_given = args.subnet.is_some();
    match mode {
        NetworkMode::Host if !args.publish.is_empty() => bail!(
            "-p publishes a port of the container's own network, and --net host has none: \
             the container's ports are the host's already"
        ),
        NetworkMode::Bridge { .. } if !root => bail!(
            "--net bridge needs the machine's root: an ordinary user (or root of a user \
             namespace) may not add a bridge or a veth to the host's network (rootless \
             containers get --net none, and -p works there; see book 6.6)"
        ),
        NetworkMode::Host | NetworkMode::None if subnet_given => {
            bail!("--subnet is the bridge's: it needs --net bridge")
        }
        _ => {}
    }
    let data_root = dataroot::choose(args.root.as_deref())?;
    Ok(Network {
        mode,
        ports: args.publish.clone(),
        data_root,
    })
}

/// The namespaces a container gets: chapter 5's, and a network namespace unless it uses
/// the host's network.
fn namespaces(spec: &Spec) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if spec.user_namespace.is_some() {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    if spec.network.mode != NetworkMode::Host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

// ANCHOR: run
/// The parent: check the spec and where its cgroup can go, listen on the published ports,
/// take an address on the bridge, make the cgroup with its limits, clone the child, write
/// its id maps, plug it in and put it in its cgroup while it waits, let it go, relay its
/// ports and supervise it, and say if it was killed for memory. Leaving, the values made
/// here undo themselves, the last made first: the cgroup with whatever is still running in
/// it, then the address (the cable goes with the container's network namespace).
fn run(args: RunArgs) -> Result<u8> {
    let spec = Spec::try_from(args)?;
    let hierarchy = Hierarchy::of_this_machine()?;
    let placement = cgroup::locate(&hierarchy, &spec.resources, network::is_host_root())?;
    let host_uts = uts::namespace_id()?;
    let published = ports::listen(&spec.network.ports)?;
    let mut joined = join_network(&spec)?;
    let inside = Inside {
        ethernet: joined.as_ref().map(|joined| joined.ethernet),
    };
    let files = joined.as_ref().map(|joined| joined.files.clone());
    let cgroup = make_cgroup(&spec, placement.as_ref())?;
    let view = cgroup.as_ref().map(|_| &hierarchy);
    let stdio = Stdio::choose(spec.process.terminal)?;
    let previous_mask = init::block_signals()?;
    let (child, channel) = spawn::clone_child(namespaces(&spec), |channel| {
        let network = (&inside, files.as_deref());
        child(
            &spec,
            &stdio,
            channel,
            host_uts,
            network,
            view,
            &previous_mask,
        )
    })
    .map_err(userns::explain_clone_failure)?;
    let dialer = connect_child(&spec, child, &inside, cgroup.as_ref())
        .inspect_err(|_| process::abandon(child))?;
    channel.send_go()?;
    let started = process::confirm_started(child, channel)?;
    if let Some(joined) = joined.as_mut() {
        joined.started(); // what its start made on the bridge now stays for the next
    }
    if let Some(dialer) = dialer {
        ports::start_proxy(published, dialer);
    }
    let relay = stdio.start_relay(started.terminal)?;
    let ended = init::supervise(child)?;
    relay.finish();
    report_out_of_memory(&spec, cgroup.as_ref(), ended);
    Ok(ended.code)
}
// ANCHOR_END: run

/// The container's cgroup, with its limits, where it can have one.
fn make_cgroup(spec: &Spec, placement: Option<&cgroup::Placement>) -> Result<Option<Owned>> {
    let Some(placement) = placement else {
        trace::say(format_args!(
            "no cgroup of its own: none asked for, none to divide"
        ));
        return Ok(None);
    };
    let data_root = &spec.network.data_root;
    let parent = &spec.cgroup_parent;
    let made = cgroup::create(placement, parent, &spec.id, &spec.resources, data_root)?;
    Ok(Some(made))
}

// ANCHOR: report_out_of_memory
/// One line on stderr when the kernel killed the container, or a process in it, for memory.
fn report_out_of_memory(spec: &Spec, cgroup: Option<&Owned>, ended: Ended) {
    let report = cgroup
        .and_then(|owned| cgroup::out_of_memory(owned.cgroup.as_ref(), &spec.resources, ended));
    if let Some(line) = report {
        eprintln!("byoc: {line}");
    }
}
// ANCHOR_END: report_out_of_memory

/// On the bridge: an address, and the container's own files.
fn join_network(spec: &Spec) -> Result<Option<Joined>> {
    match spec.network.mode {
        NetworkMode::Bridge { subnet } => Ok(Some(network::join_bridge(
            &spec.network.data_root,
            &subnet,
            &spec.id,
            &spec.hostname,
        )?)),
        NetworkMode::Host | NetworkMode::None => Ok(None),
    }
}

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

// ANCHOR: child
/// The child: as in chapter 6, and once let go (and so in its cgroup), a cgroup namespace
/// and a read-only view of its own part of the cgroup tree.
fn child(
    spec: &Spec,
    stdio: &Stdio,
    channel: &ChildEnd,
    host_uts: (u64, u64),
    (inside, files): (&Inside, Option<&Path>),
    cgroup_view: Option<&Hierarchy>,
    previous_mask: &SigSet,
) -> Result<Infallible> {
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
    if cgroup_view.is_some() {
        inside::enter_cgroup_namespace()?;
    }
    process::new_session()?;
    trace::syscall(format_args!("getpid()"), Ok(getpid()))?;
    uts::set_hostname(&spec.hostname, host_uts)?;
    if spec.network.mode != NetworkMode::Host {
        network::configure_inside(inside)?;
    }
    let plan = RootPlan {
        rootfs: spec.root.path.clone(),
        make_device,
    };
    let root = root::prepare(&plan)
        .map_err(userns::explain_clone_failure)
        .map_err(|error| {
            userns::explain_unreachable_root(error, &spec.root.path, spec.user_namespace.as_ref())
        })?;
    if let Some(files) = files {
        network::mount_container_files(files, &root)?;
    }
    if let Some(hierarchy) = cgroup_view {
        inside::mount_cgroup_fs(&root, hierarchy)?;
    }
    procfs::mount_proc(&root.find_dir("proc")?.path())?;
    // Closed before the old root goes: no descriptor of the host's tree may reach the
    // container.
    drop(root);
    mounts::pivot_root(&plan.rootfs)?;
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

//! Chapter 6: a network namespace, a bridge, NAT and published ports. Book: chapter 6.
//!
//! The flow is chapter 5's with one more `clone` flag and one more step on each side. Before
//! the clone, the parent listens on the published ports and takes an address on the bridge;
//! after it, the parent plugs the child into the bridge while it waits. Once let go, the
//! child brings up its loopback and its `eth0`, and mounts its own `/etc/hosts`.

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use nix::sched::CloneFlags;
use nix::sys::signal::SigSet;
use nix::unistd::{getpid, Pid, Uid};
use solution06::idmap::IdMap;
use solution06::network::{self, Inside, Joined};
use solution06::ports::{self, Dialer, PortMapping};
use solution06::root::{self, RootPlan};
use solution06::spec::{Network, NetworkMode, Process, Root, Spec};
use solution06::subnet::{Subnet, DEFAULT_SUBNET};
use solution06::sync::ChildEnd;
use solution06::terminal::Stdio;
use solution06::userns;
use solution06::{cli, command, dataroot, devices, dialer, init, mounts, process, procfs, spawn};
use solution06::{trace, uts};

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

/// `run`'s options: chapter 5's, and the network's.
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
        Ok(Spec {
            id,
            process: Process::new(args.command, args.tty)?,
            root,
            hostname,
            init: args.init,
            user_namespace,
            network,
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
/// The parent: check the spec, listen on the published ports, take an address on the
/// bridge, clone the child, write its id maps and plug it in while it waits, let it go,
/// relay its ports and supervise it. Leaving, the values made here undo themselves.
fn run(args: RunArgs) -> Result<u8> {
    let spec = Spec::try_from(args)?;
    let host_uts = uts::namespace_id()?;
    let published = ports::listen(&spec.network.ports)?;
    let mut joined = join_network(&spec)?;
    let inside = Inside {
        ethernet: joined.as_ref().map(|joined| joined.ethernet),
    };
    let files = joined.as_ref().map(|joined| joined.files.clone());
    let stdio = Stdio::choose(spec.process.terminal)?;
    let previous_mask = init::block_signals()?;
    let (child, channel) = spawn::clone_child(namespaces(&spec), |channel| {
        let network = (&inside, files.as_deref());
        child(&spec, &stdio, channel, host_uts, network, &previous_mask)
    })
    .map_err(userns::explain_clone_failure)?;
    let dialer = connect_child(&spec, child, &inside).inspect_err(|_| process::abandon(child))?;
    channel.send_go()?;
    let started = process::confirm_started(child, channel)?;
    if let Some(joined) = joined.as_mut() {
        joined.started(); // what its start made on the bridge now stays for the next
    }
    if let Some(dialer) = dialer {
        ports::start_proxy(published, dialer);
    }
    let relay = stdio.start_relay(started.terminal)?;
    let code = init::supervise(child)?.code;
    relay.finish();
    Ok(code)
}
// ANCHOR_END: run

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

// ANCHOR: child
/// The child: as in chapter 5, and once let go, its network: loopback, `eth0` on the
/// bridge, and its own `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.
fn child(
    spec: &Spec,
    stdio: &Stdio,
    channel: &ChildEnd,
    host_uts: (u64, u64),
    (inside, files): (&Inside, Option<&Path>),
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

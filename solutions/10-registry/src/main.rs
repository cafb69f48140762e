//! Chapter 10: pulling images from a registry. Book: chapter 10.
//!
//! The flow is chapter 9's. What is new comes before it: `run REF` pulls the image when
//! the store has none of that name (`--pull` says when), and `pull`, `login` and
//! `logout` speak to registries. From there on, the image is chapter 9's.

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use nix::sys::signal::SigSet;
use nix::unistd::{getpid, Pid};
use solution10::basics::BasicArgs;
use solution10::cgroup::{self, Owned};
use solution10::container::{ContainerArgs, ContainerDir};
use solution10::dataroot::DataRootArgs;
use solution10::diff::{self, DiffArgs};
use solution10::hierarchy::Hierarchy;
use solution10::image_command::{self, CommitArgs, ImageCommand};
use solution10::images::{self, Chosen, ImageRunArgs};
use solution10::limits::LimitsArgs;
use solution10::login::{self, LoginArgs, LogoutArgs};
use solution10::network::{self, Inside, NetworkArgs};
use solution10::overlay::{self, OverlayDirs, RootArgs};
use solution10::ports::{self, Dialer};
use solution10::ps::{self, PsArgs, RmArgs};
use solution10::pull::{self, PullArgs, PullPolicy, RegistryArgs};
use solution10::root::{self, RootPlan};
use solution10::spec::{NetworkMode, RootSource, Spec};
use solution10::state::{self, State};
use solution10::sync::ChildEnd;
use solution10::terminal::Stdio;
use solution10::userns::{self, UsernsArgs};
use solution10::volumes::{self, Bind, VolumeArgs, VolumeCommand};
use solution10::{cli, command, devices, dialer, init, inside, mounts, process};
use solution10::{procfs, sealed, spawn, trace, uts};

fn main() -> ExitCode {
    cli::main_with(|command| match command {
        Command::Run(args) => run(args),
        Command::Ps(args) => ps::ps(&args),
        Command::Diff(args) => diff::diff(&args),
        Command::Rm(args) => ps::rm(&args),
        Command::Volume { command } => volumes::volume(&command),
        Command::Image { command } => image_command::image(&command),
        Command::Commit(args) => image_command::commit(&args),
        Command::Pull(args) => pull::pull_command(&args),
        Command::Login(args) => login::login(&args),
        Command::Logout(args) => login::logout(&args),
    })
}

// `run` has many more options than the others; a value made once per call need not be
// boxed to save the difference.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command in a new container.
    Run(RunArgs),
    /// List the running containers (all of them with -a).
    Ps(PsArgs),
    /// Show what a container added (A), changed (C) and deleted (D) in its own layer.
    Diff(DiffArgs),
    /// Remove containers that have ended, and what they wrote.
    Rm(RmArgs),
    /// List or remove named volumes.
    Volume {
        #[command(subcommand)]
        command: VolumeCommand,
    },
    /// Take in, list, inspect, remove or save images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Make a new image of a container's changes, on top of its image.
    Commit(CommitArgs),
    /// Pull an image from a registry into the store.
    Pull(PullArgs),
    /// Check a user and password with a registry, and keep them for pulls.
    Login(LoginArgs),
    /// Forget the user and password kept for a registry.
    Logout(LogoutArgs),
}

/// `run`'s options: chapter 8's, with an image as well as a directory or layers for
/// the root. Each chapter's group lives in its library, with its checks.
#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    root: RootArgs,

    #[command(flatten)]
    image: ImageRunArgs,

    /// When to pull the image: when the store has none of that name, always, or never.
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pull: PullPolicy,

    #[command(flatten)]
    registry: RegistryArgs,

    #[command(flatten)]
    container: ContainerArgs,

    #[command(flatten)]
    volumes: VolumeArgs,

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

    /// The image, then the command and its arguments (the image's own if none); with
    /// --rootfs or --layer, the command alone.
    #[arg(trailing_var_arg = true, value_name = "IMAGE|CMD")]
    command: Vec<OsString>,
}

// ANCHOR: spec
/// The spec of a run, and the image it runs (none for `--rootfs` or `--layer`). The
/// process comes from the image's config, or from the command line as in chapter 8;
/// either way `-e`, `-w` and `-u` have the last word.
fn spec_of(args: RunArgs) -> Result<(Spec, Option<Chosen>)> {
    let id = uts::container_id()?;
    let basics = &args.basics;
    let hostname = basics.hostname.clone().unwrap_or_else(|| id.clone());
    uts::check_hostname(&hostname)?;
    let (root, process, chosen, data_root) = match args.root.is_given() {
        true => {
            let root = args.root.root_source(&["dev", "tmp", "proc"])?;
            let process =
                args.image
                    .process(args.command, &args.container, basics.tty)?;
            (root, process, None, None)
        }
        false => {
            // The image is in the store, under the data root: that is checked first;
            // then the image is pulled, if the store lacks it.
            let data_root = args.data_root.data_root()?;
            // The rest of the command line is checked before a pull, which may take
            // minutes: a typo in --memory should not wait for the layers.
            args.network.network()?;
            args.userns.user_namespace()?;
            args.limits.resources()?;
            args.limits.cgroup_parent()?;
            let mut words = args.command;
            if let Some(first) = words.first_mut() {
                let given = first.to_string_lossy().into_owned();
                let name =
                    pull::ensure_image(&given, args.pull, &args.registry, &data_root)?;
                *first = name.into();
            }
            let (chosen, layers, process) = images::prepare_run(
                &data_root,
                &args.image,
                words,
                &args.container,
                basics.tty,
            )?;
            (
                RootSource::Layers(layers),
                process,
                Some(chosen),
                Some(data_root),
            )
        }
    };
    let network = args.network.network()?;
    if let (NetworkMode::Bridge { .. }, RootSource::Dir(dir)) = (network.mode, &root) {
        network::check_mount_files(&dir.path)?;
    }
    let user_namespace = args.userns.user_namespace()?;
    userns::check_user_is_mapped(&process.user, user_namespace.as_ref())?;
    let data_root = match data_root {
        Some(data_root) => data_root,
        None => args.data_root.data_root()?, // as in chapter 8, after the root's checks
    };
    let spec = Spec {
        id,
        process,
        root,
        hostname,
        init: basics.init,
        user_namespace,
        network,
        data_root,
        resources: args.limits.resources()?,
        cgroup_parent: args.limits.cgroup_parent()?,
        name: args.container.name,
        remove_at_end: args.container.rm,
        volumes: args.volumes.volumes,
    };
    Ok((spec, chosen))
}
// ANCHOR_END: spec

// ANCHOR: run
/// The parent: the spec (from the image, when it runs one), take the container's name
/// and make its directory (with its state, the image it runs, and on layers an empty
/// upper and work directory), make or check its volumes, then as in chapter 7: where
/// its cgroup goes, the published ports, an address on the bridge, the cgroup, the
/// clone, the id maps, the cable and the cgroup while it waits, go, the ports and the
/// supervision, and the OOM report. At the end its state
/// says how it ended. Leaving, the values made here undo themselves, the last made
/// first; the container's directory and name stay unless `--rm`, or the start failed.
fn run(args: RunArgs) -> Result<u8> {
    let (spec, chosen) = spec_of(args)?;
    if spec.init {
        sealed::run_from_a_sealed_copy()?;
    }
    let mut container = ContainerDir::make(
        &spec.data_root,
        State::starting(
            &spec.id,
            spec.name.as_deref(),
            spec.root.describe(),
            spec.root.layers(),
            state::command_line(&spec.process.args),
        )?,
        spec.remove_at_end,
        matches!(spec.root, RootSource::Layers(_)),
    )?;
    if let Some(chosen) = chosen {
        images::record_image(&spec.data_root, &spec.id, &chosen.image)?;
    } // the store's lock goes: the state names the layers now
    let binds = volumes::prepare(&spec.volumes, &spec.data_root)?;
    container.uses_volumes(&binds)?;
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
        overlay: container.overlay.clone(),
        binds,
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
    container.started();
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
    container.ended(ended.code)?;
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
    /// The container's upper, work and merged directories, when its root is layers.
    overlay: Option<OverlayDirs>,
    /// The volumes to mount, their host directories checked or made.
    binds: Vec<Bind>,
    /// The signal mask to give the command back.
    previous_mask: SigSet,
}

// ANCHOR: child
/// The child: as in chapter 7, with its root mounted first when it is layers (the overlay,
/// in its own private mount namespace), and before `pivot_root` its volumes and its
/// working directory, each found inside the root.
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
        rootfs: overlay::mount_root(
            &spec.root,
            prepared.overlay.as_ref(),
            spec.user_namespace.is_some(),
        )?,
        make_device,
    };
    let root = root::prepare(&plan)
        .map_err(userns::explain_clone_failure)
        .map_err(|error| {
            userns::explain_unreachable_root(
                error,
                &plan.rootfs,
                spec.user_namespace.as_ref(),
            )
        })?;
    if let Some(files) = &prepared.files {
        network::mount_container_files(files, &root)?;
    }
    if let Some(hierarchy) = prepared.cgroup_view {
        inside::mount_cgroup_fs(&root, hierarchy)?;
    }
    volumes::mount_all(&prepared.binds, &root, prepared.overlay.is_some())?;
    volumes::make_workdir(&root, &spec.process.cwd, prepared.overlay.is_some())?;
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

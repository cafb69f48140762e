//! The bonus chapter: an OCI runtime, as podman calls runc. Book: chapter 11.
//!
//! The story is split in two where runc splits it. `create` does what chapters 1 to 10
//! did up to the command: the namespaces, the cgroup, the mounts, the user; then the
//! container waits on a FIFO and `create` exits. `start` opens the FIFO, and the command
//! runs. Between the two, the caller can set up what needs the container's process to
//! exist but must be ready before its command runs: a network, hooks. `state`, `kill` and
//! `delete` act on what `create` left in the state directory.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use nix::sched::CloneFlags;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use solution11::cgroup::{self, Cgroup};
use solution11::hierarchy::Hierarchy;
use solution11::inroot::RootDir;
use solution11::plan::{self, Plan};
use solution11::statedir::{self, Record, Status};
use solution11::sync::ChildEnd;
use solution11::{
    commit, console, devices, exit, fifo, inside, launch, mounts, ocicgroup,
};
use solution11::{process, seccomp, spawn, specmounts, trace, userns};

/// The version of the runtime spec the kit reads.
const SPEC_VERSION: &str = "1.0.2";

/// The command line runc and crun have: global options, then a verb.
#[derive(Debug, Parser)]
#[command(
    name = "byoc-oci",
    about = "The kit's OCI runtime: create, start, state, kill and delete containers from bundles",
    disable_version_flag = true
)]
struct Cli {
    /// Where the containers' state is kept (/run/byoc for root).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Also write errors to this file, as conmon asks.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Manage cgroups through systemd: refused, the kit writes cgroup files itself.
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Say more (accepted, as runc's: the kit's --trace says everything).
    #[arg(long, global = true)]
    debug: bool,
    /// Narrate each system call on stderr as it is made.
    #[arg(long, global = true)]
    trace: bool,
    /// Print the runtime's version and the spec's.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    verb: Option<Verb>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Make a container from a bundle, waiting before its command.
    Create(CreateArgs),
    /// Run the command of a created container.
    Start { id: String },
    /// Print a container's state, as the spec's JSON.
    State { id: String },
    /// Send a signal to a container's process (SIGTERM unless told).
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        /// Every process in the container's cgroup, not only its first.
        #[arg(short, long)]
        all: bool,
    },
    /// Remove a stopped container's state and cgroup (--force: stop it first).
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Create, start, wait for the end, delete (--detach: create and start only).
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(short, long)]
        detach: bool,
    },
    /// List the containers in the state directory.
    List {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Say what the kit supports, as the spec's features document.
    Features,
}

#[derive(Debug, Args)]
struct CreateArgs {
    id: String,
    /// The bundle: a directory with config.json (and usually the root filesystem).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's PID here, as the caller's monitor (conmon) reads it.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// A Unix socket to send the terminal's master side to, for process.terminal.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Use chroot, not pivot_root: refused (book 2.2 says why chroot is no jail).
    #[arg(long)]
    no_pivot: bool,
    /// Make no session keyring (the kit makes none anyway).
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass descriptors 3 to 3+N-1 on to the command.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 1 } else { 0 });
        }
    };
    trace::enable(cli.trace);
    let result = carry_out(&cli);
    if let (Err(error), Some(log)) = (&result, &cli.log) {
        log_error(log, cli.log_format, error);
    }
    exit::report(result)
}

fn carry_out(cli: &Cli) -> Result<u8> {
    if cli.version {
        println!(
            "byoc-oci version {}\nspec: {SPEC_VERSION}",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(0);
    }
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: the kit makes cgroups by their files, not through systemd; with podman, --cgroup-manager cgroupfs");
    }
    let Some(verb) = &cli.verb else {
        bail!("no verb: give create, start, state, kill, delete, run, list or features (--help)");
    };
    let state_root = || statedir::state_root(cli.root.as_deref());
    match verb {
        Verb::Create(args) => create(&state_root()?, args).map(|_| 0),
        Verb::Start { id } => start(&state_root()?, id).map(|()| 0),
        Verb::State { id } => state(&state_root()?, id).map(|()| 0),
        Verb::Kill { id, signal, all } => {
            kill(&state_root()?, id, signal, *all).map(|()| 0)
        }
        Verb::Delete { id, force } => delete(&state_root()?, id, *force).map(|()| 0),
        Verb::Run { create, detach } => run(&state_root()?, create, *detach),
        Verb::List { quiet } => list(&state_root()?, *quiet).map(|()| 0),
        Verb::Features => features().map(|()| 0),
    }
}

/// An error, as conmon reads the runtime's log: a line of text, or runc's JSON.
fn log_error(log: &Path, format: LogFormat, error: &anyhow::Error) {
    let message = format!("{error:#}");
    let line = match format {
        LogFormat::Text => format!("byoc: {message}\n"),
        LogFormat::Json => format!(
            "{}\n",
            serde_json::json!({"level": "error", "msg": message, "time": commit::now_rfc3339()})
        ),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log);
    if let Ok(mut file) = file {
        let _ = std::io::Write::write_all(&mut file, line.as_bytes());
    }
}

// ANCHOR: create
/// `create`: the plan, checked whole; the state directory, its FIFO and the cgroup; the
/// clone; the id maps and the cgroup while the child waits; go. When the child has
/// closed its end of the channel it is ready and waits on the FIFO: the record and the
/// PID file are written, and the runtime leaves it there. Anything that fails on the way
/// undoes what was made ([`Made`]).
fn create(state_root: &Path, args: &CreateArgs) -> Result<Pid> {
    if args.no_pivot {
        bail!("--no-pivot: the kit always uses pivot_root, since a chroot can be climbed out of (book 1.4)");
    }
    let bundle = std::path::absolute(&args.bundle).context("cannot find the bundle")?;
    let plan = plan::read(&bundle, &args.id)?;
    if plan.process.terminal && args.console_socket.is_none() {
        bail!("process.terminal is true: give --console-socket, where the terminal's master side goes");
    }
    let hierarchy = Hierarchy::of_this_machine()?;
    let mut made = Made::new(statedir::make(state_root, &args.id)?);
    let fifo_handle = fifo::handle(&fifo::make(&made.dir)?)?;
    let console = args
        .console_socket
        .as_deref()
        .map(console::connect)
        .transpose()?;
    made.cgroup = ocicgroup::make(&plan, &hierarchy)?;
    let filter = plan.seccomp.as_ref().map(seccomp::compile).transpose()?;
    let inherited = Inherited {
        filter,
        fifo: fifo_handle,
        console,
        preserve_fds: args.preserve_fds,
        cgroup_view: made.cgroup.as_ref().map(|_| &hierarchy),
        in_user_namespace: plan.user_namespace.is_some() || !userns::is_host_root(),
    };
    let flags = plan.namespaces.new - CloneFlags::CLONE_NEWCGROUP;
    let (child, channel) =
        spawn::clone_child(flags, |channel| container(&plan, &inherited, channel))
            .map_err(userns::explain_clone_failure)?;
    made.child = Some(child);
    if let Some(user) = &plan.user_namespace {
        userns::write_maps(child, &user.uid_mappings, &user.gid_mappings)?;
    }
    if let Some(cgroup) = &made.cgroup {
        cgroup.add(child)?;
    }
    channel.send_go()?;
    process::confirm_started(child, channel)?;
    let record = record_of(&args.id, child, &bundle, &plan, made.cgroup.is_some())?;
    statedir::write_record(&made.dir, &record)?;
    if let Some(pid_file) = &args.pid_file {
        write_pid_file(pid_file, child)?;
    }
    made.keep();
    Ok(child)
}
// ANCHOR_END: create

/// What `create` made, undone if it fails before the end: the child killed, the cgroup
/// and the state directory removed.
struct Made {
    dir: PathBuf,
    cgroup: Option<Box<dyn Cgroup>>,
    child: Option<Pid>,
    kept: bool,
}

impl Made {
    fn new(dir: PathBuf) -> Made {
        Made {
            dir,
            cgroup: None,
            child: None,
            kept: false,
        }
    }

    /// The container stays: its process waits, its cgroup and state are `delete`'s.
    fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        if let Some(child) = self.child {
            process::abandon(child);
        }
        if let Some(cgroup) = &self.cgroup {
            let _ = cgroup::remove(cgroup.as_ref());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the child takes from `create` besides the plan: descriptors it keeps past the
/// clone, and the hierarchy to show inside.
struct Inherited<'a> {
    /// The seccomp filter, compiled: the child only loads it.
    filter: Option<seccomp::Filter>,
    fifo: OwnedFd,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    cgroup_view: Option<&'a Hierarchy>,
    /// In a user namespace (the config's, or the one rootless podman runs the runtime
    /// in), where no device file can be made: the host's are bound instead (book 5.3).
    in_user_namespace: bool,
}

fn record_of(
    id: &str,
    child: Pid,
    bundle: &Path,
    plan: &Plan,
    has_cgroup: bool,
) -> Result<Record> {
    let (_, pid_start) =
        statedir::stat_of(child).context("the container's process is gone")?;
    Ok(Record {
        id: id.to_string(),
        pid: child.as_raw(),
        pid_start,
        bundle: bundle.to_path_buf(),
        created: commit::now_rfc3339(),
        cgroups_path: plan.cgroups_path.clone(),
        has_cgroup,
        annotations: plan.annotations.clone(),
    })
}

/// The PID, written whole under a temporary name and renamed: conmon reads it as soon as
/// `create` returns.
fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let name = path.file_name().context("--pid-file has no file name")?;
    let temporary = path.with_file_name(format!(".{}.new", name.to_string_lossy()));
    std::fs::write(&temporary, pid.to_string())
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

// ANCHOR: container
/// The container's side: chapter 10's steps, driven by the config. It joins the
/// namespaces the config names by path, gets its own cgroup view once placed, mounts what
/// the config lists inside the root, pivots, hides and locks what the config says, takes
/// a terminal from the console socket, and becomes the config's user with its
/// capabilities. Then it tells `create` it is ready by closing the channel, and waits on
/// the FIFO for `start`.
fn container(
    plan: &Plan,
    inherited: &Inherited,
    channel: &ChildEnd,
) -> Result<Infallible> {
    channel.wait_for_go()?;
    if plan.user_namespace.is_some() {
        userns::become_root()?;
        userns::drop_supplementary_groups()?;
    }
    let make_device = match inherited.in_user_namespace {
        true => userns::bind_host_device,
        false => devices::mknod_device,
    };
    join_namespaces(&plan.namespaces.join)?;
    let shows_cgroup = plan
        .mounts
        .iter()
        .any(|m| m.kind == plan::MountKind::Cgroup);
    if shows_cgroup || plan.namespaces.new.contains(CloneFlags::CLONE_NEWCGROUP) {
        inside::enter_cgroup_namespace()?;
    }
    process::new_session()?;
    if let Some(hostname) = &plan.hostname {
        let set = nix::unistd::sethostname(hostname);
        trace::syscall(format_args!("sethostname({hostname:?})"), set)?;
    }
    mounts::make_private()?;
    mounts::bind_onto_itself(&plan.rootfs)?;
    let root = RootDir::open(&plan.rootfs)?;
    specmounts::mount_all(plan, &root, inherited.cgroup_view, make_device)?;
    drop(root); // no descriptor of the host's tree may reach the container
    mounts::pivot_root(&plan.rootfs)?;
    specmounts::finish_inside(plan)?;
    if let Some(socket) = &inherited.console {
        console::send_terminal(socket, plan.console_size)?;
    }
    launch::set_limits(plan)?;
    launch::set_apparmor_profile(plan)?;
    let program = launch::find_program(&plan.process)?;
    let mut keep: Vec<RawFd> = (3..3 + inherited.preserve_fds as RawFd).collect();
    keep.extend([inherited.fifo.as_raw_fd()]);
    keep.extend(channel.raw_fd());
    launch::close_fds_except(&keep)?;
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before the user and
    // its capabilities. With it, as late as can be, so the filter holds the command and
    // as little of the runtime as possible.
    let filter = inherited.filter.as_ref();
    if let Some(filter) = filter.filter(|_| !plan.no_new_privileges) {
        filter.load()?;
    }
    launch::become_user(plan)?;
    launch::forbid_new_privileges(plan)?;
    if let Some(filter) = filter.filter(|_| plan.no_new_privileges) {
        filter.load()?;
    }
    let cwd = &plan.process.cwd;
    trace::syscall(format_args!("chdir({cwd:?})"), nix::unistd::chdir(cwd))?;
    channel.close(); // `create` reads end of file: the container is created
    fifo::wait_for_start(&inherited.fifo)?;
    launch::exec(&program, &plan.process)
}
// ANCHOR_END: container

/// `setns(2)` into each namespace the config names by path (podman's network namespace).
fn join_namespaces(join: &[(CloneFlags, PathBuf)]) -> Result<()> {
    for (flag, path) in join {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open the namespace {}", path.display()))?;
        let joined = nix::sched::setns(&file, *flag);
        trace::syscall(
            format_args!("setns({path:?}, {})", trace::flags(*flag)),
            joined,
        )?;
    }
    Ok(())
}

// ANCHOR: start
/// `start`: only a created container; opening its FIFO lets it run its command.
fn start(state_root: &Path, id: &str) -> Result<()> {
    let (dir, record) = existing(state_root, id)?;
    match statedir::status_of(&dir, &record) {
        Status::Created => {
            fifo::release(&dir, Pid::from_raw(record.pid), record.pid_start)
        }
        status => bail!(
            "container {id:?} is {}: only a created container can be started",
            status.name()
        ),
    }
}
// ANCHOR_END: start

fn existing(state_root: &Path, id: &str) -> Result<(PathBuf, Record)> {
    let dir = statedir::existing(state_root, id)?;
    let record = statedir::read_record(&dir, id)?;
    Ok((dir, record))
}

// ANCHOR: state
/// `state`: the spec's document. The PID is the container's while it lives.
fn state(state_root: &Path, id: &str) -> Result<()> {
    let (dir, record) = existing(state_root, id)?;
    let status = statedir::status_of(&dir, &record);
    let pid = if status == Status::Stopped {
        0
    } else {
        record.pid
    };
    let document = serde_json::json!({
        "ociVersion": SPEC_VERSION,
        "id": record.id,
        "status": status.name(),
        "pid": pid,
        "bundle": record.bundle,
        "created": record.created,
        "annotations": record.annotations,
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
// ANCHOR_END: state

// ANCHOR: kill
/// `kill`: a signal to the container's first process, or with `--all` to every process
/// in its cgroup. Only while the record's process is the one alive.
fn kill(state_root: &Path, id: &str, signal_name: &str, all: bool) -> Result<()> {
    let signal = parse_signal(signal_name)?;
    let (dir, record) = existing(state_root, id)?;
    if statedir::status_of(&dir, &record) == Status::Stopped {
        bail!("container {id:?} is stopped: there is no process to signal");
    }
    let cgroup = ocicgroup::of_record(record.has_cgroup, &record.cgroups_path)?;
    let pids = match (all, cgroup) {
        (true, Some(cgroup)) => cgroup.processes()?,
        _ => vec![record.pid],
    };
    for pid in pids {
        let sent = signal::kill(Pid::from_raw(pid), signal);
        trace::syscall(format_args!("kill({pid}, {signal})"), sent)?;
    }
    Ok(())
}
// ANCHOR_END: kill

/// `SIGTERM`, `TERM` or `15`.
fn parse_signal(text: &str) -> Result<Signal> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number)
            .with_context(|| format!("{number} is not a signal"));
    }
    let upper = text.to_ascii_uppercase();
    let name = match upper.starts_with("SIG") {
        true => upper,
        false => format!("SIG{upper}"),
    };
    name.parse()
        .with_context(|| format!("{text:?} is not a signal"))
}

// ANCHOR: delete
/// `delete`: a stopped container's cgroup and state go. A created or running one only
/// with `--force`, which kills it first. Deleting one that is not there, with
/// `--force`, is no error: podman asks again after its own clean-up.
fn delete(state_root: &Path, id: &str, force: bool) -> Result<()> {
    statedir::check_id(id)?;
    if force && !state_root.join(id).exists() {
        return Ok(());
    }
    let (dir, record) = existing(state_root, id)?;
    let status = statedir::status_of(&dir, &record);
    if status != Status::Stopped && !force {
        bail!(
            "container {id:?} is {}: stop it first (kill), or delete --force",
            status.name()
        );
    }
    // Removing the cgroup kills whatever is left in it and waits until it is empty.
    if let Some(cgroup) = ocicgroup::of_record(record.has_cgroup, &record.cgroups_path)? {
        cgroup::remove(cgroup.as_ref())?;
    }
    wait_until_gone(&record)?;
    std::fs::remove_dir_all(&dir)
        .with_context(|| format!("cannot remove {}", dir.display()))
}
// ANCHOR_END: delete

/// The container's first process may have no cgroup to be killed with (an ordinary
/// user's container): SIGKILL, then wait until it is gone.
fn wait_until_gone(record: &Record) -> Result<()> {
    let pid = Pid::from_raw(record.pid);
    if statedir::is_alive(pid, record.pid_start) {
        let _ = signal::kill(pid, Signal::SIGKILL);
    }
    for _ in 0..500 {
        if !statedir::is_alive(pid, record.pid_start) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bail!("the container's process {pid} was still alive 5 s after SIGKILL")
}

/// `run`: `create` and `start` in one; then, unless `--detach`, this process is still
/// the container's parent: it waits for the end, deletes, and exits with its code.
fn run(state_root: &Path, args: &CreateArgs, detach: bool) -> Result<u8> {
    let child = create(state_root, args)?;
    start(state_root, &args.id)?;
    if detach {
        return Ok(0);
    }
    let code = process::wait_for(child)?;
    delete(state_root, &args.id, true)?;
    Ok(code)
}

/// `list`: each container's id, PID, status and bundle.
fn list(state_root: &Path, quiet: bool) -> Result<()> {
    if !quiet {
        println!("{:<24} {:>8} {:<8} BUNDLE", "ID", "PID", "STATUS");
    }
    for id in statedir::all_ids(state_root)? {
        let Ok((dir, record)) = existing(state_root, &id) else {
            continue;
        };
        if quiet {
            println!("{id}");
            continue;
        }
        let status = statedir::status_of(&dir, &record);
        let pid = if status == Status::Stopped {
            0
        } else {
            record.pid
        };
        println!(
            "{id:<24} {pid:>8} {:<8} {}",
            status.name(),
            record.bundle.display()
        );
    }
    Ok(())
}

/// `features`: what the kit does, in the spec's features document.
fn features() -> Result<()> {
    let document = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": [],
        "mountOptions": ["ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
            "bind", "rbind", "private", "rprivate", "shared", "rshared", "slave", "rslave",
            "relatime", "norelatime", "strictatime", "noatime"],
        "linux": {
            "namespaces": ["pid", "network", "mount", "ipc", "uts", "user", "cgroup"],
            "capabilities": solution11::capabilities::all_names(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": true, "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO",
                "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS",
                "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG"],
                "operators": ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
                "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]},
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false},
        },
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}

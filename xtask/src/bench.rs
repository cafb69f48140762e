//! `cargo xtask bench`: how long a container takes to start and end, beside the real
//! runtimes crun and runc. Book: "How this kit is built".
//!
//! The lesson: most of a container's start-up is the kernel's work (namespaces, mounts, a
//! veth pair, a cgroup), which a teaching runtime pays for like any other. Each variant
//! runs `/bin/true` in the busybox root filesystem, timed from starting the runtime to
//! its exit; crun and runc run the same container from an OCI bundle that the bench
//! writes.
//!
//! The variants take turns, round after round, so a change in the machine's load hits all
//! of them alike. It is a benchmark, not a test: the figures belong to the machine they
//! were taken on, and nothing fails because of them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::gen::{self, Chapter};
use crate::podman_bench::{self, PodmanStore};
use crate::pull_bench;
use crate::rootfs;
use crate::unpack_bench;
use crate::workspace::{self, cargo};

/// The first chapter with images, and so the unpack bench.
const FIRST_IMAGES_CHAPTER: u32 = 9;
/// The first chapter that pulls from a registry, and so the pull bench.
const FIRST_REGISTRY_CHAPTER: u32 = 10;

/// What every container runs: it does nothing, so what is timed is the runtime alone.
const COMMAND: &str = "/bin/true";

/// The limits of the kit's variants that have them, and of crun's and runc's config.json.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Limits {
    memory_mib: u64,
    cpus: u64,
    pids: u64,
}

const LIMITS: Limits = Limits {
    memory_mib: 256,
    cpus: 1,
    pids: 256,
};

/// The period that the OCI spec's CPU quota is a share of, in microseconds: 100 ms, the
/// kernel's default. A quota of one period per period is one whole CPU.
const CPU_PERIOD_US: u64 = 100_000;

/// The real runtimes the kit is compared with: crun (C) and runc (Go).
const PEERS: [&str; 2] = ["crun", "runc"];

/// The capabilities by number, as `<linux/capability.h>` has them up to Linux 5.9. The
/// bundle names the ones the bench holds, so crun and runc keep what the kit keeps.
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Where the cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The options of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Timed runs of each variant (at least 2, for a standard deviation).
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(2..))]
    runs: u32,
    /// Untimed runs of each variant first, so that caches are warm when the timing
    /// starts.
    #[arg(long, value_name = "N", default_value_t = 3)]
    warmup: u32,
    /// From chapter 9: the size of the image the unpack bench (and from chapter 10 the
    /// pull bench) makes, in MB of compressed layers (CI's is small; the full-size
    /// figure is 500).
    #[arg(long, value_name = "MB", default_value_t = 48)]
    unpack_mb: u64,
    /// From chapter 9: timed runs of each way to unpack (and to pull).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    unpack_runs: u32,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if !workspace::is_root() {
        bail!(
            "the bench needs root: the runtimes it times make namespaces, mounts and \
             a bridge as root, and the bench keeps them off your network in a network \
             namespace of its own, which only root may make (see the README's \"Not \
             root?\" for running cargo with sudo)"
        );
    }
    let chapter = gen::newest_of_the_ten()?;
    let rootfs = rootfs::ensure()?;
    let binary = build_release(&chapter)?;
    let scratch = tempfile::Builder::new()
        .prefix("byoc-bench-")
        .tempdir()
        .context("cannot make a temp dir for the bench")?;
    // After the build, which may fetch crates: from here on nothing needs the network.
    enter_own_network_namespace()?;
    let hidden = hide_hybrid_cgroup2()?;
    let result = compare(&chapter, &binary, &rootfs, scratch.path(), args);
    let result = result.and_then(|()| match chapter.number >= FIRST_IMAGES_CHAPTER {
        true => unpack_bench::run(&unpack_bench::UnpackBench {
            binary: &binary,
            scratch: scratch.path(),
            compressed_mb: args.unpack_mb,
            runs: args.unpack_runs,
        }),
        false => Ok(()),
    });
    let result = result.and_then(|()| match chapter.number >= FIRST_REGISTRY_CHAPTER {
        true => pull_bench::run(&pull_bench::PullBench {
            binary: &binary,
            scratch: scratch.path(),
            compressed_mb: args.unpack_mb,
            runs: args.unpack_runs,
        }),
        false => Ok(()),
    });
    let result =
        result.and_then(|()| podman_drives_the_kit(&rootfs, scratch.path(), args));
    if let Some(unified) = hidden {
        show_again(&unified)?;
    }
    // Even after a failure: a run that stopped half way is what leaves things behind.
    let cleaned = clean_up(scratch.path());
    result.and(cleaned)
}

// ANCHOR: podman_bench
/// The bonus chapter: `podman run --rm IMAGE /bin/true` with the kit as podman's runtime,
/// beside crun and runc as podman's runtime, in turns. The goal: the kit at or under
/// crun.
fn podman_drives_the_kit(rootfs: &Path, scratch: &Path, args: &BenchArgs) -> Result<()> {
    let Ok(bonus) = gen::chapter(byoc_facts::BONUS_CHAPTER) else {
        return Ok(()); // the bonus chapter is not written here
    };
    if !podman_bench::podman_is_installed() {
        println!("\npodman: not installed (apt-get install podman): the bonus chapter's bench did not run");
        return Ok(());
    }
    let kit = build_release(&bonus)?;
    let store = PodmanStore::new(scratch, format!("{}-podman", bench_name()))?;
    store.import(rootfs)?;
    let mut variants = Vec::new();
    for (name, runtime) in podman_bench::runtimes(&kit) {
        let variant = store.variant(&name, &runtime);
        match variant.check() {
            Ok(()) => variants.push(variant),
            Err(error) if runtime == kit => {
                return Err(error.context("podman + byoc did not run"))
            }
            Err(error) => {
                println!("{name}: skipped: {error:#}; no ratio to it can be given")
            }
        }
    }
    println!(
        "\npodman run --rm IMAGE {COMMAND}, each runtime in turn, {} warm-up and {} timed runs...",
        args.warmup, args.runs
    );
    let times = measure(&variants, args)?;
    let summaries: Vec<Summary> = times.iter().map(|times| Summary::of(times)).collect();
    print_table_against(&variants, &summaries, ["podman + crun", "podman + runc"]);
    let kit_mean = mean_of("podman + byoc", &variants, &summaries);
    let crun_mean = mean_of("podman + crun", &variants, &summaries);
    if let (Some(kit), Some(crun)) = (kit_mean, crun_mean) {
        println!(
            "podman with the kit: {:.2}x podman with crun (goal: at most 1.0x)",
            kit / crun
        );
    }
    Ok(())
}
// ANCHOR_END: podman_bench

/// On a hybrid machine (v1 controllers, and a cgroup2 tree beside them that holds a
/// controller), crun refuses to run at all. So the bench moves into a mount namespace of
/// its own and covers that cgroup2 tree with an empty tmpfs there: every variant, the
/// kit's too, then sees a pure v1 machine, which the kit used already. Nothing outside
/// the bench's namespace changes. Returns the covered mount point.
fn hide_hybrid_cgroup2() -> Result<Option<PathBuf>> {
    let Cgroups::Hybrid { unified } = cgroup_layout(&workspace::mount_table()?) else {
        return Ok(None);
    };
    // SAFETY: unshare has no memory-safety preconditions; the bench has one thread here.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        bail!(
            "unshare(CLONE_NEWNS) failed: {}",
            std::io::Error::last_os_error()
        );
    }
    // Private first, so the tmpfs stays in this namespace.
    mount(None, Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE)?;
    mount(
        Some("tmpfs"),
        &unified,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
    )?;
    println!(
        "hybrid machine: crun refuses it, so the bench covers {} in a mount namespace of \
         its own; every variant sees pure cgroup v1",
        unified.display()
    );
    Ok(Some(unified))
}

/// Uncovers the cgroup2 tree again, before the clean-up looks for leftovers.
fn show_again(unified: &Path) -> Result<()> {
    let target = std::ffi::CString::new(unified.as_os_str().as_encoded_bytes())?;
    // SAFETY: umount2 reads the NUL-terminated path it is given.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
        bail!(
            "umount {unified:?} failed: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// `mount(2)`, for the two mounts the bench makes.
fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
) -> Result<()> {
    let c = |text: &str| std::ffi::CString::new(text);
    let source = source.map(c).transpose()?;
    let fstype = fstype.map(c).transpose()?;
    let target_c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())?;
    let pointer = |text: &Option<std::ffi::CString>| {
        text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr())
    };
    // SAFETY: every pointer is a NUL-terminated string that lives across the call, or null.
    let made = unsafe {
        libc::mount(
            pointer(&source),
            target_c.as_ptr(),
            pointer(&fstype),
            flags,
            std::ptr::null(),
        )
    };
    if made != 0 {
        bail!(
            "mount {target:?} failed: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// The bench itself: what it runs on, every variant checked, timed, and compared.
fn compare(
    chapter: &Chapter,
    binary: &Path,
    rootfs: &Path,
    scratch: &Path,
    args: &BenchArgs,
) -> Result<()> {
    print_machine()?;
    println!(
        "byoc: {} (chapter {}), a release build: crun and runc are optimised builds too",
        shown(binary),
        chapter.number
    );
    print_limits(chapter.number);
    let variants = ready_variants(chapter, binary, rootfs, scratch)?;
    print_commands(&variants);
    println!(
        "\n{COMMAND} in {}, {} warm-up and {} timed runs of each variant, in turns...",
        shown(rootfs),
        args.warmup,
        args.runs
    );
    let times = measure(&variants, args)?;
    let summaries: Vec<Summary> = times.iter().map(|times| Summary::of(times)).collect();
    print_table(&variants, &summaries);
    print_headline(&variants, &summaries);
    Ok(())
}

/// The variants that ran once, untimed: the kit's two must, and a peer that cannot is
/// left out, with the reason.
fn ready_variants(
    chapter: &Chapter,
    binary: &Path,
    rootfs: &Path,
    scratch: &Path,
) -> Result<Vec<Variant>> {
    let mut variants = kit_variants(chapter, binary, rootfs, &scratch.join("byoc-data"))?;
    for variant in &variants {
        variant
            .check()
            .with_context(|| format!("{} did not run", variant.name))?;
    }
    let capabilities = own_capabilities()?;
    let limits = limits_of(chapter.number);
    let bundle = write_bundle(scratch, rootfs, limits, &capabilities)?;
    for peer in PEERS {
        match find_peer(peer, &bundle, scratch) {
            Ok(variant) => variants.push(variant),
            Err(reason) => {
                println!("{peer}: skipped: {reason}; no ratio to {peer} can be given")
            }
        }
    }
    Ok(variants)
}

/// A release build of the newest chapter's runtime, in the normal target directory. crun
/// (C) and runc (Go) are optimised builds; a debug build would not be a fair match.
fn build_release(chapter: &Chapter) -> Result<PathBuf> {
    let name = chapter.solution_name();
    println!("building {name} with --release...");
    workspace::run(cargo().args(["build", "--quiet", "--release", "-p", &name]))?;
    Ok(workspace::target_dir().join("release").join(name))
}

/// Moves the bench into a new network namespace, before any runtime starts. Every runtime
/// it starts runs there: the kit's bridge, veth pairs and NAT rules are made there, and
/// go with it when the bench ends. The machine's own network is never touched.
///
/// One namespace for the whole bench, not one per run: making and destroying a namespace
/// takes time that would be added to every run. And the kit's bridge stays between runs,
/// as `docker0` does on a real host, so each run pays what a run on a host pays. Its
/// loopback stays down: nothing uses it, as every container has a loopback of its own.
fn enter_own_network_namespace() -> Result<()> {
    // SAFETY: unshare has no memory-safety preconditions. It moves the calling thread, the
    // main thread, which starts every runtime; a child starts in its parent's namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let error = std::io::Error::last_os_error();
        bail!(
            "unshare(CLONE_NEWNET) failed: {error}; the bench runs no runtime in the \
             machine's own network namespace"
        );
    }
    Ok(())
}

/// A way of running the container: a name for the table, and the command line.
pub struct Variant {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// crun and runc need a new container id for every run: this, a dash and the run's
    /// name, added last. The kit makes its own.
    pub id_prefix: Option<String>,
}

impl Variant {
    /// The command for the run named `run`.
    fn command(&self, run: &str) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        if let Some(prefix) = &self.id_prefix {
            command.arg(format!("{prefix}-{run}"));
        }
        command
    }

    /// One untimed run first: a variant that fails would time its own failure.
    pub fn check(&self) -> Result<()> {
        self.run_once("check").map(|_| ())
    }

    /// Runs the container once; returns how long it took, in milliseconds. The output is
    /// captured, to show when the run fails.
    fn run_once(&self, run: &str) -> Result<f64> {
        let mut command = self.command(run);
        let started = Instant::now();
        let output = command
            .output()
            .with_context(|| format!("cannot start {}", self.program.display()))?;
        let took = started.elapsed();
        if !output.status.success() {
            bail!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(took.as_secs_f64() * 1000.0)
    }
}

/// Which of the kit's variants.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kit {
    /// The container crun and runc run from the bench's bundle: a network namespace with
    /// only loopback, and from chapter 7 the same limits. The one to hold beside crun.
    Like,
    /// The same, on the kit's bridge: the veth pair, address and NAT that crun never
    /// makes. Timed apart, so that its difference from `Like` is what the network costs.
    Bridge,
    /// The least it can do: a network namespace with only loopback, and no limits.
    Bare,
    /// `Like`, on an overlay of three layers (the root filesystem and two small ones)
    /// instead of one directory: from chapter 8, what layers cost at the start.
    Layers,
}

impl Kit {
    /// The name in the table and the summary.
    fn name(self) -> &'static str {
        match self {
            Kit::Like => "byoc (like crun: --net none, the same limits)",
            Kit::Bridge => "byoc (bridge: + veth, address, NAT)",
            Kit::Bare => "byoc (--net none, no limits)",
            Kit::Layers => "byoc (like crun, on an overlay of 3 layers)",
        }
    }
}

/// The limits a chapter's container sets, for the kit and its peers alike: none before
/// chapter 7.
fn limits_of(chapter: u32) -> Option<Limits> {
    (chapter >= byoc_facts::FIRST_CGROUP_CHAPTER).then_some(LIMITS)
}

/// The kit's options for a variant, after `--rootfs` and `--root`. From chapter 7 each
/// container's cgroup goes below a parent of the bench's own, easy to find and remove.
fn kit_options(chapter: u32, kit: Kit, cgroup_parent: &str) -> Vec<String> {
    let net = match kit {
        Kit::Bridge => "bridge",
        Kit::Like | Kit::Bare | Kit::Layers => "none",
    };
    let mut options = vec!["--net".to_string(), net.to_string()];
    if let (Kit::Like | Kit::Bridge | Kit::Layers, Some(limits)) =
        (kit, limits_of(chapter))
    {
        options.extend(limit_options(limits));
    }
    if chapter >= byoc_facts::FIRST_CGROUP_CHAPTER {
        options.extend(["--cgroup-parent".into(), cgroup_parent.into()]);
    }
    if chapter >= byoc_facts::FIRST_LAYERS_CHAPTER {
        // A container outlives its run from chapter 8 on: crun's `run` removes its own
        // state too.
        options.push("--rm".into());
    }
    options
}

/// The kit's options for the limits that `oci_resources` puts in config.json.
fn limit_options(limits: Limits) -> [String; 6] {
    [
        "--memory".into(),
        format!("{}m", limits.memory_mib),
        "--cpus".into(),
        limits.cpus.to_string(),
        "--pids-limit".into(),
        limits.pids.to_string(),
    ]
}

/// The name the bench gives what it makes on the host: unique to this run of the bench.
fn bench_name() -> String {
    format!("byoc-bench-{}", std::process::id())
}

/// The kit's variants, with a data root of the bench's own.
fn kit_variants(
    chapter: &Chapter,
    binary: &Path,
    rootfs: &Path,
    data_root: &Path,
) -> Result<Vec<Variant>> {
    let layers = bench_layers(rootfs, data_root)?;
    let kit_variant = |kit: Kit| {
        let mut args: Vec<OsString> = vec!["run".into()];
        match kit {
            Kit::Layers => {
                for layer in &layers {
                    args.extend(["--layer".into(), layer.into()]);
                }
            }
            Kit::Like | Kit::Bridge | Kit::Bare => {
                args.extend(["--rootfs".into(), rootfs.into()]);
            }
        }
        args.extend(["--root".into(), data_root.into()]);
        args.extend(
            kit_options(chapter.number, kit, &bench_name())
                .into_iter()
                .map(OsString::from),
        );
        args.extend(["--".into(), COMMAND.into()]);
        Variant {
            name: kit.name().to_string(),
            program: binary.to_path_buf(),
            args,
            id_prefix: None,
        }
    };
    let mut kits = vec![Kit::Like, Kit::Bridge, Kit::Bare];
    if chapter.number >= byoc_facts::FIRST_LAYERS_CHAPTER {
        kits.push(Kit::Layers);
    }
    Ok(kits.into_iter().map(kit_variant).collect())
}

/// The three layers of the overlay variant, lowest first: the root filesystem, then two
/// small ones of a file each, made beside the bench's data root.
fn bench_layers(rootfs: &Path, data_root: &Path) -> Result<Vec<PathBuf>> {
    let mut layers = vec![rootfs.to_path_buf()];
    for name in ["middle", "top"] {
        let layer = data_root.with_file_name(format!("layer-{name}"));
        std::fs::create_dir_all(&layer)
            .and_then(|()| std::fs::write(layer.join(name), format!("{name}\n")))
            .with_context(|| format!("cannot make the bench's layer {layer:?}"))?;
        layers.push(layer);
    }
    Ok(layers)
}

/// The limits in force, for every variant that has them.
fn print_limits(chapter: u32) {
    match limits_of(chapter) {
        Some(limits) => println!(
            "limits: --memory {}m --cpus {} --pids-limit {} for {} and {}, and the same \
             in crun's and runc's config.json",
            limits.memory_mib,
            limits.cpus,
            limits.pids,
            Kit::Like.name(),
            Kit::Bridge.name()
        ),
        None => println!(
            "limits: none: chapter {chapter} puts no container in a cgroup, so crun's \
             and runc's config.json sets none either"
        ),
    }
}

/// A peer ready to time: installed, and able to run the bench's container on this
/// machine. If not, why not.
fn find_peer(peer: &str, bundle: &Path, scratch: &Path) -> Result<Variant, String> {
    let version = match Command::new(peer).arg("--version").output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or(peer)
            .to_string(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{peer} is not installed (`apt-get install crun runc`)"
            ))
        }
        Err(error) => return Err(format!("cannot run {peer}: {error}")),
    };
    let variant = peer_variant(peer, bundle, scratch);
    variant
        .check()
        .map_err(|error| format!("{version} did not run here ({error:#})"))?;
    println!("{peer}: {version}");
    Ok(variant)
}

/// `PEER --root STATE run --bundle BUNDLE ID`: a container run to its end. Its state goes
/// under the bench's temp dir, not the machine's `/run`.
fn peer_variant(peer: &str, bundle: &Path, scratch: &Path) -> Variant {
    let state = scratch.join(format!("{peer}-state"));
    Variant {
        name: peer.to_string(),
        program: PathBuf::from(peer),
        args: vec![
            "--root".into(),
            state.into(),
            "run".into(),
            "--bundle".into(),
            bundle.into(),
        ],
        id_prefix: Some(format!("{}-{peer}", bench_name())),
    }
}

/// Writes the OCI bundle for crun and runc, `DIR/bundle/config.json`, and returns the
/// bundle's directory. Its root filesystem is the kit's own, not a copy.
fn write_bundle(
    dir: &Path,
    rootfs: &Path,
    limits: Option<Limits>,
    capabilities: &[&str],
) -> Result<PathBuf> {
    let rootfs = rootfs
        .to_str()
        .with_context(|| format!("{rootfs:?} is not UTF-8, which config.json needs"))?;
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle)
        .with_context(|| format!("cannot make {bundle:?}"))?;
    let config = serde_json::to_string_pretty(&oci_config(rootfs, limits, capabilities))?;
    let path = bundle.join("config.json");
    std::fs::write(&path, config).with_context(|| format!("cannot write {path:?}"))?;
    Ok(bundle)
}

/// The OCI runtime spec (1.0) config for crun and runc: the kit's like-for-like
/// container, as far as the spec can say it. The kit's namespaces, a root filesystem left
/// writable (the kit does not make it read-only), the kit's mounts with the kit's flags,
/// its limits, and the capabilities it keeps, so that every runtime does the same work.
///
/// Where they cannot match: crun and runc make more in `/dev` than the kit (`/dev/fd`,
/// `/dev/stdin` and the like, which the spec asks of them); on cgroup v1 they put the
/// container in every controller's tree and mount each in its cgroup view, where the kit
/// uses five; and they set the capabilities named, where the kit, as root, keeps the ones
/// it has. All of that is work the peers do and the kit does not. Nor is their cgroup
/// below the kit's parent, but where each puts it by default (see `clean_up`): a
/// `cgroupsPath` would be one path for every run.
fn oci_config(rootfs: &str, limits: Option<Limits>, capabilities: &[&str]) -> Value {
    let capabilities = json!({
        "bounding": capabilities,
        "effective": capabilities,
        "permitted": capabilities
    });
    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "capabilities": capabilities,
            "args": [COMMAND],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/"
        },
        "root": { "path": rootfs, "readonly": false },
        "hostname": "byoc-bench",
        "mounts": oci_mounts(limits.is_some()),
        "linux": { "namespaces": oci_namespaces(limits.is_some()) }
    });
    if let Some(limits) = limits {
        config["linux"]["resources"] = oci_resources(limits);
    }
    config
}

/// The kit's namespaces as root: chapter 4's five, and from chapter 7, when the container
/// has a cgroup, a cgroup namespace too.
fn oci_namespaces(cgroup: bool) -> Value {
    let mut kinds = vec!["pid", "mount", "uts", "ipc", "network"];
    if cgroup {
        kinds.push("cgroup");
    }
    kinds
        .into_iter()
        .map(|kind| json!({ "type": kind }))
        .collect()
}

/// The kit's mounts, with its flags: `/proc`, a `/dev` tmpfs with its own devpts, `/tmp`,
/// and from chapter 7 a read-only view of the container's cgroup. No `/dev/shm`, which
/// `runc spec` writes: the kit makes none.
fn oci_mounts(cgroup: bool) -> Value {
    let proc = ["nosuid", "nodev", "noexec"];
    let dev = ["nosuid", "noexec", "mode=755"];
    let pts = [
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    let tmp = ["nosuid", "nodev", "mode=1777"];
    let mut mounts = vec![
        oci_mount("/proc", "proc", "proc", &proc),
        oci_mount("/dev", "tmpfs", "tmpfs", &dev),
        oci_mount("/dev/pts", "devpts", "devpts", &pts),
        oci_mount("/tmp", "tmpfs", "tmpfs", &tmp),
    ];
    if cgroup {
        let view = ["ro", "nosuid", "nodev", "noexec"];
        mounts.push(oci_mount("/sys/fs/cgroup", "cgroup", "cgroup", &view));
    }
    Value::Array(mounts)
}

/// The capabilities the bench holds, which a container the kit starts as root keeps. A
/// bundle with none would have crun and runc drop them all, which the kit never does.
fn own_capabilities() -> Result<Vec<&'static str>> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("cannot read /proc/self/status")?;
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .context("no CapEff in /proc/self/status")?;
    Ok(capability_names(mask))
}

/// The names of the capabilities whose bits are set in `mask`. A bit past the last one
/// named is a capability newer than the list, left out: crun refuses names it does not
/// know.
fn capability_names(mask: u64) -> Vec<&'static str> {
    CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// One mount in the spec's words: where, which file system, from what, with what options.
fn oci_mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Value {
    json!({ "destination": destination, "type": kind, "source": source, "options": options })
}

/// The kit's `--memory 256m --cpus 1 --pids-limit 256` in the spec's words: bytes, a CPU
/// quota per period, and a number of tasks.
fn oci_resources(limits: Limits) -> Value {
    json!({
        "memory": { "limit": limits.memory_mib * 1024 * 1024 },
        "cpu": { "quota": limits.cpus * CPU_PERIOD_US, "period": CPU_PERIOD_US },
        "pids": { "limit": limits.pids }
    })
}

/// Each variant's command line, so that a reader sees exactly what was timed.
fn print_commands(variants: &[Variant]) {
    println!("\nwhat runs, in a network namespace made for the bench:");
    for variant in variants {
        let mut args: Vec<String> = variant
            .args
            .iter()
            .map(|arg| shown(Path::new(arg)))
            .collect();
        if let Some(prefix) = &variant.id_prefix {
            args.push(format!("{prefix}-N"));
        }
        println!(
            "  {}: {} {}",
            variant.name,
            shown(&variant.program),
            args.join(" ")
        );
    }
}

/// A path as the reader knows it: relative to the workspace when it is inside it.
fn shown(path: &Path) -> String {
    let root = workspace::root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The order of the variants in round `round`. Each round starts one further along, so
/// that no variant always runs right after the same other one, whose clean-up may still
/// be going on in the kernel.
fn round_order(round: usize, count: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |index| (round + index) % count)
}

/// Runs every variant, in turns: the warm-up rounds first, then the timed ones. Returns
/// each variant's times, in milliseconds.
fn measure(variants: &[Variant], args: &BenchArgs) -> Result<Vec<Vec<f64>>> {
    let warmup = args.warmup as usize;
    let rounds = warmup + args.runs as usize;
    let mut times = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for index in round_order(round, variants.len()) {
            let variant = &variants[index];
            let took = variant
                .run_once(&round.to_string())
                .with_context(|| format!("{} failed in round {round}", variant.name))?;
            if round >= warmup {
                times[index].push(took);
            }
        }
    }
    Ok(times)
}

/// What a variant's times come to, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    runs: usize,
    mean: f64,
    std_dev: f64,
    min: f64,
    max: f64,
}

impl Summary {
    /// The runs are a sample of what the machine can do, so the standard deviation
    /// divides by `n - 1` (the sample's), not by `n`.
    fn of(times: &[f64]) -> Summary {
        let runs = times.len();
        let mean = times.iter().sum::<f64>() / runs as f64;
        let squares: f64 = times.iter().map(|time| (time - mean).powi(2)).sum();
        let std_dev = if runs > 1 {
            (squares / (runs - 1) as f64).sqrt()
        } else {
            0.0
        };
        Summary {
            runs,
            mean,
            std_dev,
            min: times.iter().copied().fold(f64::INFINITY, f64::min),
            max: times.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// The mean time of the variant named `name`, if it ran.
fn mean_of(name: &str, variants: &[Variant], summaries: &[Summary]) -> Option<f64> {
    let index = variants.iter().position(|variant| variant.name == name)?;
    Some(summaries[index].mean)
}

/// `mean / peer's mean`, or `n/a` when the peer did not run: never a made-up number.
fn ratio(mean: f64, peer_mean: Option<f64>) -> String {
    match peer_mean {
        Some(peer_mean) => format!("{:.2}x", mean / peer_mean),
        None => "n/a".to_string(),
    }
}

fn print_table(variants: &[Variant], summaries: &[Summary]) {
    print_table_against(variants, summaries, PEERS);
}

/// The table, each variant's mean as a multiple of the two named ones'.
fn print_table_against(variants: &[Variant], summaries: &[Summary], peers: [&str; 2]) {
    let width = variants
        .iter()
        .map(|variant| variant.name.len())
        .max()
        .unwrap_or(0);
    println!(
        "\n{:width$}  {:>4}  {:>9}  {:>8}  {:>8}  {:>8}  {:>7}  {:>7}",
        "variant", "runs", "mean (ms)", "std dev", "min", "max", "/ crun", "/ runc"
    );
    let peer_means = peers.map(|peer| mean_of(peer, variants, summaries));
    for (variant, summary) in variants.iter().zip(summaries) {
        println!(
            "{:width$}  {:>4}  {:>9.2}  {:>8.2}  {:>8.2}  {:>8.2}  {:>7}  {:>7}",
            variant.name,
            summary.runs,
            summary.mean,
            summary.std_dev,
            summary.min,
            summary.max,
            ratio(summary.mean, peer_means[0]),
            ratio(summary.mean, peer_means[1]),
        );
    }
}

/// The figures to remember: the kit beside crun doing the same work, and apart from it
/// what the kit's bridge costs, which crun never pays.
fn print_headline(variants: &[Variant], summaries: &[Summary]) {
    let mean = |kit: Kit| mean_of(kit.name(), variants, summaries);
    let (like, bridge) = (mean(Kit::Like), mean(Kit::Bridge));
    println!(
        "\n{}",
        headline(like, bridge, mean_of("crun", variants, summaries))
    );
    if let (Some(layers), Some(like)) = (mean(Kit::Layers), like) {
        println!(
            "an overlay of 3 layers in place of one directory adds {:.2} ms to a start",
            layers - like
        );
    }
}

/// The summary line: like for like against crun, and the bridge's cost in milliseconds.
fn headline(like: Option<f64>, bridge: Option<f64>, crun: Option<f64>) -> String {
    let versus_crun = match (like, crun) {
        (Some(like), Some(crun)) => format!("{:.2}x", like / crun),
        _ => "cannot be given: crun did not run (see above)".to_string(),
    };
    let network = match (bridge, like) {
        (Some(bridge), Some(like)) => {
            format!(
                "; the bridge (veth, address, NAT) adds {:.2} ms",
                bridge - like
            )
        }
        _ => String::new(),
    };
    format!("byoc / crun, like for like: {versus_crun}{network}")
}

/// Removes what the runtimes left, and names it: after a clean run there is nothing.
///
/// What each leaves, as seen on v1 and hybrid machines (runc 1.1, crun 1.8, both with
/// their cgroupfs driver): runc puts each container in a cgroup named after its id, below
/// runc's own cgroup in every hierarchy; crun does the same below each hierarchy's root.
/// Each keeps the container's state in `STATE/ID` while it runs. `run` removes both when
/// the container ends, so only `STATE` itself stays, in the bench's temp dir. A run that
/// fails half way may not: crun 1.8, failing to make its cgroup in one hierarchy, left
/// the ones it had made in the others. The kit removes its container's files under its
/// data root, also in the temp dir; from chapter 7 its cgroups go below the bench's
/// parent, removed here.
fn clean_up(scratch: &Path) -> Result<()> {
    let mut left = Vec::new();
    for peer in PEERS {
        left.extend(delete_containers(
            peer,
            &scratch.join(format!("{peer}-state")),
        ));
    }
    let kit_containers = leftover_dirs(&scratch.join("byoc-data/containers"));
    left.extend(
        kit_containers
            .iter()
            .map(|id| format!("byoc container files {id}")),
    );
    let cgroups = remove_cgroups(Path::new(CGROUP_ROOT), &bench_name());
    // podman makes the parent it was given and a `conmon` cgroup in it, and leaves both
    // (with crun and runc too): those are podman's, not a runtime's.
    let podmans = format!("{}-podman", bench_name());
    let (podman, runtimes): (Vec<String>, Vec<String>) = cgroups
        .removed
        .into_iter()
        .partition(|cgroup| cgroup.contains(&podmans) && !cgroup.contains("/libpod-"));
    left.extend(runtimes);
    if !podman.is_empty() {
        println!(
            "podman's own cgroups (its parent and conmon's), which it leaves: removed"
        );
    }
    if !left.is_empty() {
        println!(
            "left behind by the runtimes, and removed: {}",
            left.join(", ")
        );
    }
    if !cgroups.stuck.is_empty() {
        bail!(
            "cannot remove what the runtimes left: {}",
            cgroups.stuck.join("; ")
        );
    }
    Ok(())
}

/// `PEER --root STATE delete --force ID` for each container whose state is still there.
fn delete_containers(peer: &str, state: &Path) -> Vec<String> {
    let ids = leftover_dirs(state);
    for id in &ids {
        let _ = Command::new(peer)
            .arg("--root")
            .arg(state)
            .args(["delete", "--force", id])
            .output();
    }
    ids.into_iter()
        .map(|id| format!("{peer} container {id}"))
        .collect()
}

/// The names of the directories in `dir`; none when it does not exist.
fn leftover_dirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The bench's cgroups that a runtime left: the ones removed, and why others could not
/// be.
#[derive(Debug, Default)]
struct Leftovers {
    removed: Vec<String>,
    stuck: Vec<String>,
}

/// Removes every cgroup below `root` named after the bench, with what is below it. One
/// that cannot be removed does not stop the others. Names the ones a runtime should have
/// removed itself: all but the kit's parent.
fn remove_cgroups(root: &Path, bench: &str) -> Leftovers {
    let mut found = Vec::new();
    find_cgroups(root, bench, &mut found);
    let mut removed = Vec::new();
    let mut leftovers = Leftovers::default();
    for cgroup in found {
        if let Err(error) = remove_cgroup(&cgroup, &mut removed) {
            leftovers.stuck.push(format!("{error:#}"));
        }
    }
    let parent = std::ffi::OsStr::new(bench);
    leftovers.removed = removed
        .into_iter()
        .filter(|path| path.file_name() != Some(parent))
        .map(|path| format!("cgroup {}", path.display()))
        .collect();
    leftovers
}

/// Whether a cgroup is this bench's: the kit's parent, `byoc-bench-PID`, or a peer's
/// container, `byoc-bench-PID-PEER-RUN`; not another bench's, `byoc-bench-PID2...`.
fn is_the_benchs(name: &str, bench: &str) -> bool {
    name.strip_prefix(bench)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

/// Every cgroup below `dir` that is the bench's, without looking inside those. Symbolic
/// links (`cpu -> cpu,cpuacct`) are not followed: their target is walked anyway.
fn find_cgroups(dir: &Path, bench: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        if is_the_benchs(&entry.file_name().to_string_lossy(), bench) {
            found.push(entry.path());
        } else {
            find_cgroups(&entry.path(), bench, found);
        }
    }
}

/// Removes a cgroup, deepest first: `rmdir` removes a cgroup with its files, but not one
/// that still has cgroups below it.
fn remove_cgroup(cgroup: &Path, removed: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(cgroup)?.flatten() {
        if entry.file_type()?.is_dir() {
            remove_cgroup(&entry.path(), removed)?;
        }
    }
    std::fs::remove_dir(cgroup)
        .with_context(|| format!("cannot remove the cgroup {cgroup:?}"))?;
    removed.push(cgroup.to_path_buf());
    Ok(())
}

/// What about the machine changes the figures: its kernel, its CPUs, and its cgroups.
fn print_machine() -> Result<()> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .context("cannot read /proc/sys/kernel/osrelease")?;
    let cpus = std::thread::available_parallelism().map_or(0, |count| count.get());
    let mountinfo = workspace::mount_table()?;
    println!(
        "machine: Linux {}, {cpus} CPUs, {}",
        kernel.trim(),
        describe(&cgroup_layout(&mountinfo))
    );
    Ok(())
}

/// How the cgroup hierarchies are mounted.
#[derive(Debug, PartialEq)]
enum Cgroups {
    /// One v2 hierarchy at `/sys/fs/cgroup`: most machines today.
    V2,
    /// v1 hierarchies, one per controller, and a v2 one beside them (systemd's "hybrid").
    Hybrid { unified: PathBuf },
    /// v1 hierarchies only.
    V1,
    /// No cgroup file system mounted at all.
    None,
}

/// The cgroup layout, from a mount table in `/proc/self/mountinfo`'s format, where the
/// file system's type follows the ` - ` on each line and the mount point is the fifth
/// field.
fn cgroup_layout(mountinfo: &str) -> Cgroups {
    let mut v1 = false;
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((mount, filesystem)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = mount.split(' ').nth(4).unwrap_or_default();
        match filesystem.split(' ').next() {
            Some("cgroup") => v1 = true,
            Some("cgroup2") => v2 = Some(PathBuf::from(mount_point)),
            _ => {}
        }
    }
    match (v1, v2) {
        (false, Some(_)) => Cgroups::V2,
        (true, Some(unified)) => Cgroups::Hybrid { unified },
        (true, None) => Cgroups::V1,
        (false, None) => Cgroups::None,
    }
}

/// The layout in words, with the controllers a hybrid machine's v2 hierarchy holds: crun
/// refuses to run when there are any.
fn describe(cgroups: &Cgroups) -> String {
    match cgroups {
        Cgroups::V2 => "cgroup v2".to_string(),
        Cgroups::V1 => "cgroup v1".to_string(),
        Cgroups::None => "no cgroups mounted".to_string(),
        Cgroups::Hybrid { unified } => {
            let controllers = std::fs::read_to_string(unified.join("cgroup.controllers"))
                .unwrap_or_default();
            let holding = match controllers.trim() {
                "" => "no controllers".to_string(),
                names => format!("controllers: {names}"),
            };
            format!(
                "cgroup v1, hybrid (v2 at {} with {holding})",
                unified.display()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(left: f64, right: f64) -> bool {
        (left - right).abs() < 1e-9
    }

    #[test]
    fn summary_of_a_sample() {
        let summary = Summary::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(summary.runs, 4);
        assert!(close(summary.mean, 2.5));
        // Squares from the mean: 2.25 + 0.25 + 0.25 + 2.25 = 5, over n - 1 = 3.
        assert!(close(summary.std_dev, (5.0_f64 / 3.0).sqrt()));
        assert!(close(summary.min, 1.0));
        assert!(close(summary.max, 4.0));
    }

    #[test]
    fn equal_times_deviate_by_nothing() {
        let summary = Summary::of(&[7.5, 7.5, 7.5]);
        assert!(close(summary.mean, 7.5));
        assert!(close(summary.std_dev, 0.0));
    }

    #[test]
    fn each_round_starts_one_further_along() {
        let order = |round| round_order(round, 3).collect::<Vec<_>>();
        assert_eq!(order(0), [0, 1, 2]);
        assert_eq!(order(1), [1, 2, 0]);
        assert_eq!(order(2), [2, 0, 1]);
        assert_eq!(order(3), [0, 1, 2]);
    }

    #[test]
    fn chapter_6_gets_the_network_options_only() {
        assert_eq!(kit_options(6, Kit::Like, "parent"), ["--net", "none"]);
        assert_eq!(kit_options(6, Kit::Bridge, "parent"), ["--net", "bridge"]);
        assert_eq!(kit_options(6, Kit::Bare, "parent"), ["--net", "none"]);
        assert_eq!(limits_of(6), None);
    }

    #[test]
    fn chapter_7_adds_limits_but_to_the_bare_variant_and_a_parent_to_all() {
        let limited = |net: &'static str| {
            let limits = ["--memory", "256m", "--cpus", "1", "--pids-limit", "256"];
            let mut options = vec!["--net", net];
            options.extend(limits);
            options.extend(["--cgroup-parent", "parent"]);
            options
        };
        assert_eq!(kit_options(7, Kit::Like, "parent"), limited("none"));
        assert_eq!(kit_options(7, Kit::Bridge, "parent"), limited("bridge"));
        assert_eq!(
            kit_options(7, Kit::Bare, "parent"),
            ["--net", "none", "--cgroup-parent", "parent"]
        );
    }

    #[test]
    fn the_summary_holds_the_kit_beside_crun_and_the_bridge_apart() {
        assert_eq!(
            headline(Some(9.0), Some(14.5), Some(10.0)),
            "byoc / crun, like for like: 0.90x; the bridge (veth, address, NAT) adds 5.50 ms"
        );
        assert_eq!(
            headline(Some(9.0), Some(14.5), None),
            "byoc / crun, like for like: cannot be given: crun did not run (see above); \
             the bridge (veth, address, NAT) adds 5.50 ms"
        );
    }

    /// Lines as they appear in `/proc/self/mountinfo`.
    const ROOT: &str = "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw";
    const V2: &str =
        "31 23 0:28 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw";
    const TMPFS: &str =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755";
    const MEMORY: &str =
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory";
    const UNIFIED: &str =
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";

    #[test]
    fn cgroup_layouts_from_the_mount_table() {
        let table = |lines: &[&str]| lines.join("\n");
        assert_eq!(cgroup_layout(&table(&[ROOT, V2])), Cgroups::V2);
        assert_eq!(
            cgroup_layout(&table(&[ROOT, TMPFS, MEMORY, UNIFIED])),
            Cgroups::Hybrid {
                unified: PathBuf::from("/sys/fs/cgroup/unified")
            }
        );
        assert_eq!(cgroup_layout(&table(&[ROOT, TMPFS, MEMORY])), Cgroups::V1);
        assert_eq!(cgroup_layout(ROOT), Cgroups::None);
    }

    /// The bundle as crun and runc read it: written to a directory, and parsed back.
    fn written_config(limits: Option<Limits>) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = Path::new("/kit/rootfs/busybox");
        let capabilities = ["CAP_CHOWN", "CAP_KILL"];
        let bundle = write_bundle(dir.path(), rootfs, limits, &capabilities).unwrap();
        let text = std::fs::read_to_string(bundle.join("config.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The bundle's namespaces, sorted.
    fn namespaces(config: &Value) -> Vec<&str> {
        let mut kinds: Vec<&str> = config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|namespace| namespace["type"].as_str().unwrap())
            .collect();
        kinds.sort_unstable();
        kinds
    }

    /// The bundle's mounts: where, and which file system.
    fn mounts(config: &Value) -> Vec<(&str, &str)> {
        config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|mount| {
                let destination = mount["destination"].as_str().unwrap();
                (destination, mount["type"].as_str().unwrap())
            })
            .collect()
    }

    #[test]
    fn the_bundle_runs_true_in_the_kits_rootfs_in_five_namespaces() {
        let config = written_config(None);
        assert!(config["ociVersion"].as_str().unwrap().starts_with("1.0."));
        assert_eq!(config["process"]["args"], json!(["/bin/true"]));
        assert_eq!(config["process"]["terminal"], json!(false));
        assert_eq!(config["process"]["cwd"], json!("/"));
        assert_eq!(config["root"]["path"], json!("/kit/rootfs/busybox"));
        assert_eq!(config["root"]["readonly"], json!(false));
        assert_eq!(
            namespaces(&config),
            ["ipc", "mount", "network", "pid", "uts"]
        );
        assert_eq!(
            mounts(&config),
            [
                ("/proc", "proc"),
                ("/dev", "tmpfs"),
                ("/dev/pts", "devpts"),
                ("/tmp", "tmpfs")
            ]
        );
    }

    #[test]
    fn with_a_cgroup_the_bundle_asks_for_its_namespace_and_a_read_only_view() {
        let config = written_config(Some(LIMITS));
        let kinds = ["cgroup", "ipc", "mount", "network", "pid", "uts"];
        assert_eq!(namespaces(&config), kinds);
        assert_eq!(mounts(&config).last(), Some(&("/sys/fs/cgroup", "cgroup")));
        let view = config["mounts"].as_array().unwrap().last().unwrap().clone();
        assert!(view["options"].as_array().unwrap().contains(&json!("ro")));
    }

    #[test]
    fn the_bundle_keeps_the_capabilities_it_is_given() {
        let capabilities = written_config(None)["process"]["capabilities"].clone();
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(capabilities[set], json!(["CAP_CHOWN", "CAP_KILL"]), "{set}");
        }
        assert_eq!(capabilities.get("ambient"), None);
    }

    #[test]
    fn capabilities_are_named_by_their_bits() {
        assert_eq!(capability_names(0b10_0001), ["CAP_CHOWN", "CAP_KILL"]);
        // Bit 41 is past the names the list has: left out, not guessed.
        assert_eq!(
            capability_names(1 << 41 | 1 << 40),
            ["CAP_CHECKPOINT_RESTORE"]
        );
        assert_eq!(capability_names(u64::MAX).len(), CAPABILITIES.len());
    }

    #[test]
    fn without_limits_the_bundle_sets_no_resources() {
        let config = written_config(None);
        assert_eq!(config["linux"].get("resources"), None);
    }

    #[test]
    fn the_bundles_limits_are_the_kits() {
        let resources = written_config(Some(LIMITS))["linux"]["resources"].clone();
        assert_eq!(resources["memory"]["limit"], json!(256 * 1024 * 1024));
        assert_eq!(resources["cpu"]["quota"], json!(100_000));
        assert_eq!(resources["cpu"]["period"], json!(100_000));
        assert_eq!(resources["pids"]["limit"], json!(256));
    }

    #[test]
    fn a_ratio_to_a_peer_that_did_not_run_is_not_given() {
        assert_eq!(ratio(50.0, Some(40.0)), "1.25x");
        assert_eq!(ratio(50.0, None), "n/a");
    }

    #[test]
    fn only_the_benchs_own_cgroups_are_removed_and_named() {
        let root = tempfile::tempdir().unwrap();
        let make = |path: &str| std::fs::create_dir_all(root.path().join(path)).unwrap();
        make("memory/machine/byoc-bench-7-runc-1");
        make("pids/byoc-bench-7/container");
        make("pids/byoc-bench-77-runc-1");
        make("pids/byoc-bench-7x");
        std::os::unix::fs::symlink("pids", root.path().join("pids,alias")).unwrap();
        let leftovers = remove_cgroups(root.path(), "byoc-bench-7");
        assert!(leftovers.stuck.is_empty(), "{leftovers:?}");
        let mut left = leftovers.removed;
        left.sort_unstable();
        let named = |path: &str| format!("cgroup {}", root.path().join(path).display());
        assert_eq!(
            left,
            [
                named("memory/machine/byoc-bench-7-runc-1"),
                named("pids/byoc-bench-7/container")
            ]
        );
        assert!(!root.path().join("pids/byoc-bench-7").exists());
        assert!(root.path().join("pids/byoc-bench-77-runc-1").exists());
        assert!(root.path().join("pids/byoc-bench-7x").exists());
        assert!(root.path().join("memory/machine").exists());
    }

    #[test]
    fn a_cgroup_that_cannot_go_is_named_and_the_others_still_go() {
        let root = tempfile::tempdir().unwrap();
        let make = |path: &str| std::fs::create_dir_all(root.path().join(path)).unwrap();
        make("memory/byoc-bench-7-crun-1");
        make("pids/byoc-bench-7-crun-1");
        // A directory that holds a file is not a cgroup, and rmdir refuses it.
        std::fs::write(root.path().join("memory/byoc-bench-7-crun-1/file"), "").unwrap();
        let leftovers = remove_cgroups(root.path(), "byoc-bench-7");
        assert_eq!(leftovers.stuck.len(), 1, "{leftovers:?}");
        assert!(leftovers.stuck[0].contains("memory/byoc-bench-7-crun-1"));
        assert!(!root.path().join("pids/byoc-bench-7-crun-1").exists());
    }
}

//! `cargo xtask test --cgroup-vm`: the cgroup tests again, in a small virtual machine
//! whose kernel has cgroup v2 alone. Book: "How this kit is built".
//!
//! A kernel offers cgroups in two versions: v1, one hierarchy per controller, and v2, one
//! hierarchy for all. A machine may mount its controllers on v1 (this CI machine does: it
//! is "hybrid"), or on v2 alone, as most learners' machines do. Chapter 7 must work on
//! both, so its tests run on both. The second kind of machine is made here: Debian's own
//! kernel, booted by qemu with `cgroup_no_v1=all`.
//!
//! The VM borrows all it can from the host. Its initramfs holds only busybox and the
//! kernel modules the tests need. The host's `/` is shared into it read-only over 9p (a
//! file-sharing protocol qemu speaks over virtio), so the test binaries, the runtimes,
//! the root filesystem and `/etc/passwd` are at the same paths inside. A temporary
//! directory is shared read-write: the guest writes each test binary's output and exit
//! status there, and the host prints that output as it grows and counts it as it counts
//! its own tests. qemu emulates the CPU in software (TCG): slower than KVM, but it works
//! on any host, even on one that is itself a virtual machine.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::rootfs;
use crate::testing::{self, Impl, Outcome};
use crate::workspace::{self, Workspace};

/// The test targets (`[[test]]` in `tests/Cargo.toml`) that run in the VM: those that
/// check cgroups. The rest behave the same on any cgroup version, and run on the host
/// only.
pub const CGROUP_TEST_TARGETS: &[&str] = &["ch07"];

/// How long the VM may take to boot and run every test. Past it, qemu is killed and each
/// test binary that had not finished counts as failed: a hung guest must neither hang CI
/// nor pass.
const GUEST_TIME_LIMIT: Duration = Duration::from_secs(15 * 60);

const QEMU: &str = "qemu-system-x86_64";

/// Debian's package that always depends on its newest kernel package.
const KERNEL_METAPACKAGE: &str = "linux-image-amd64";

/// `cgroup_no_v1=all` is the point of the VM: no controller may be mounted on v1.
/// `rdinit` names our init in the initramfs; `panic=-1` with qemu's `-no-reboot` turns a
/// kernel panic into qemu's end, not a VM that hangs until the time limit.
const KERNEL_COMMAND_LINE: &str =
    "console=ttyS0 rdinit=/init cgroup_no_v1=all quiet panic=-1";

/// The modules the guest loads, each after the modules it depends on (found in each
/// module's own `.modinfo`). Debian builds most of its kernel as modules, and the guest
/// has no `modprobe` to load one when it is first needed, so all are loaded at boot.
const MODULES: &[&str] = &[
    // 9p over virtio: how the guest reaches the host's files.
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    // What the runtimes make: veth pairs and a bridge (chapter 6), overlays (chapter 8).
    "veth",
    "bridge",
    "overlay",
    // A disk filesystem, loaded on any machine booted from one: a container's root must
    // be refused a mount of it for lack of privilege, not for a kernel that lacks it.
    "ext4",
    // libcrc32c, which nf_tables needs, asks for the "crc32c" algorithm by its alias,
    // which only modprobe could turn into this module.
    "crc32c_generic",
    // nftables and the NAT that chapter 6's masquerade rule needs.
    "nfnetlink",
    "nf_tables",
    "nf_conntrack",
    "nf_nat",
    "nft_chain_nat",
    "nft_masq",
];

/// The guest's first process, from the initramfs. It mounts what the kernel offers, loads
/// the modules, and runs the script this run left in the share (see [`guest_script`]),
/// which says what to test. Then it powers the VM off: were PID 1 to end, the kernel
/// would panic.
const INIT: &str = r#"#!/bin/busybox sh
export PATH=/bin
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The tests' output goes to files; the console only says what the VM does. A kernel
# message (an OOM kill in a memory test, say) would only be noise there.
dmesg -n 1
for module in $(cat /modules/order); do
    insmod "/modules/$module.ko" || echo "cannot load the module $module"
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /share && sh /share/run.sh
sync
poweroff -f
"#;

/// What the guest does before the tests: build, in a chroot, a machine that looks like
/// the host (its files, read-only) but on pure cgroup v2, as systemd sets one up.
/// `$share` is the share's path on the host.
const GUEST_SETUP: &str = r#"
set -u
mkdir -p /host
# cache=loose: the host's files do not change during the run, so the guest may keep them.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot /host
# A view of the host's root before fresh tmpfs cover its /tmp and /run: a workspace cloned
# under one of them is put back in place from it.
mkdir -p /uncovered
mount --bind /host /uncovered
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
mount -t tmpfs -o mode=755 tmpfs /host/run
case "$workspace" in
/tmp/*|/run/*)
    mkdir -p "/host$workspace"
    mount --bind "/uncovered$workspace" "/host$workspace"
    ;;
esac
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup
# As systemd does: the controllers the tests use are enabled for the cgroups below the root.
echo '+cpu +memory +pids' > /host/sys/fs/cgroup/cgroup.subtree_control
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
ip link set lo up
# The share, at its path on the host: the paths in the tests' environment hold inside too.
mkdir -p "/host$share"
mount --bind /share "/host$share"
# The kernel lets no ordinary user make a user namespace in a chroot: where a process's root
# is not its mount namespace's. So, as switch_root does, the host's root is moved onto "/"
# (this shell still sees the initramfs it started in), and each test runs in a chroot to
# ".", the host's root, which the kernel then takes for the real one.
cd /host
mount --move . /
"#;

/// The environment's `PATH` for the tests in the guest: Debian's, for root.
const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything a run in the VM needs, made before the host's own tests run, so that a
/// missing qemu or kernel package is reported at once.
pub struct CgroupVm {
    image: Image,
    tests: Vec<TestBinary>,
    workspace: Workspace,
    chapter: Option<u32>,
    implementation: Impl,
}

/// One test target and the binary cargo built for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TestBinary {
    target: String,
    path: PathBuf,
}

impl CgroupVm {
    /// Checks for qemu, makes (or finds cached) the VM image, and builds the test
    /// binaries that run in it: those of [`CGROUP_TEST_TARGETS`], or, with `chapter`, its
    /// own.
    pub fn prepare(
        workspace: &Workspace,
        chapter: Option<u32>,
        implementation: Impl,
    ) -> Result<CgroupVm> {
        let targets = targets_for(CGROUP_TEST_TARGETS, chapter)?;
        require_qemu()?;
        let image = Image::ensure(&workspace.target_dir)?;
        let tests = build_test_binaries(workspace, &targets)?;
        Ok(CgroupVm {
            image,
            tests,
            workspace: workspace.clone(),
            chapter,
            implementation,
        })
    }

    /// Boots the VM, runs the tests in it while printing their output, and counts them.
    pub fn run(self) -> Result<Outcome> {
        let share = tempfile::Builder::new()
            .prefix("byoc-vm-")
            .tempdir()
            .context("cannot make a temporary directory to share with the VM")?;
        let not_run_dir = share.path().join("not-run");
        fs::create_dir(&not_run_dir)?;
        let figures_dir = share.path().join("figures");
        fs::create_dir(&figures_dir)?;
        let env = self.guest_env(&not_run_dir, &figures_dir);
        let workdir = self.workspace.root.join("tests");
        let script = guest_script(share.path(), &workdir, &env, &self.tests);
        fs::write(share.path().join("run.sh"), script)?;
        println!();
        println!(
            "the cgroup tests, on pure cgroup v2: booting Debian's kernel {} in qemu",
            self.image.version
        );
        let started = Instant::now();
        let finished = boot_and_follow(&self.image, share.path(), &self.tests)?;
        if !finished {
            println!(
                "vm: did not finish within {} s: qemu was killed",
                GUEST_TIME_LIMIT.as_secs()
            );
        }
        println!("vm: ran for {:.1} s", started.elapsed().as_secs_f64());
        let mut outcome = Outcome::default();
        for test in &self.tests {
            count_test_binary(share.path(), test, &mut outcome);
        }
        let not_run = testing::read_not_run(&not_run_dir)?;
        for line in &not_run {
            println!("not run in the VM: {line}");
        }
        outcome.add_not_run(not_run);
        testing::print_figures(&figures_dir, "figure in the VM")?;
        Ok(outcome)
    }

    /// What `cargo xtask test` gives the host's tests (see testing.rs), and what `cargo
    /// test` would: nothing else of the host's environment reaches the guest.
    fn guest_env(
        &self,
        not_run_dir: &Path,
        figures_dir: &Path,
    ) -> Vec<(&'static str, String)> {
        let path = |path: &Path| path.display().to_string();
        let mut env = vec![
            ("PATH", GUEST_PATH.to_string()),
            ("HOME", "/root".to_string()),
            ("RUST_BACKTRACE", "0".to_string()),
            ("COURSE_IMPL", self.implementation.name().to_string()),
            ("BYOC_ROOTFS", path(&rootfs::path())),
            ("BYOC_BIN_DIR", path(&self.workspace.bin_dir())),
            ("BYOC_NOT_RUN_DIR", path(not_run_dir)),
            ("BYOC_FIGURES_DIR", path(figures_dir)),
            // The host's files are read-only in the guest: a snapshot can be compared,
            // never written. insta would otherwise ask cargo where the workspace is.
            ("INSTA_UPDATE", "no".to_string()),
            ("INSTA_WORKSPACE_ROOT", path(&self.workspace.root)),
        ];
        if let Some(number) = self.chapter {
            env.push(("COURSE_ONLY", number.to_string()));
        }
        env
    }
}

/// The targets to run in the VM: all of `cgroup_targets`, or only chapter N's with
/// `--chapter N`, which must be one of them.
fn targets_for(cgroup_targets: &[&str], chapter: Option<u32>) -> Result<Vec<String>> {
    let Some(number) = chapter else {
        return Ok(cgroup_targets.iter().map(|name| name.to_string()).collect());
    };
    let target = format!("ch{number:02}");
    if !cgroup_targets.contains(&target.as_str()) {
        bail!(
            "--cgroup-vm runs the cgroup tests ({}), and chapter {number} has none: \
             leave out --chapter, or name a chapter that has cgroup tests",
            cgroup_targets.join(", ")
        );
    }
    Ok(vec![target])
}

fn require_qemu() -> Result<()> {
    let found = Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        bail!(
            "cannot run {QEMU}: the cgroup tests run in a qemu virtual machine. \
             Install it with `apt-get install qemu-system-x86`"
        );
    }
    Ok(())
}

/// Builds the test binaries of `targets` the way `cargo test` would, without running
/// them, and finds each one's path in cargo's JSON messages. (`json-render-diagnostics`:
/// compiler errors still reach the terminal as text.)
fn build_test_binaries(
    workspace: &Workspace,
    targets: &[String],
) -> Result<Vec<TestBinary>> {
    let mut build = workspace.cargo();
    build.args(["test", "--no-run", "--quiet", "-p", "byoc-tests"]);
    for target in targets {
        build.args(["--test", target]);
    }
    build.arg("--message-format=json-render-diagnostics");
    let output = build
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {build:?}"))?;
    if !output.status.success() {
        bail!(
            "cannot build the tests that run in the VM ({}): is each a [[test]] in \
             tests/Cargo.toml? (chapter 7's are tests/ch07.rs)",
            targets.join(", ")
        );
    }
    let built = test_executables(&String::from_utf8_lossy(&output.stdout));
    targets
        .iter()
        .map(|target| {
            built
                .iter()
                .find(|binary| &binary.target == target)
                .cloned()
                .with_context(|| {
                    format!("cargo built no test binary for the target {target}")
                })
        })
        .collect()
}

/// The test binaries in cargo's JSON messages: a `compiler-artifact` line names its
/// target and, for a test, the executable. Only those two fields are read, so a regex
/// does.
fn test_executables(messages: &str) -> Vec<TestBinary> {
    let target =
        regex::Regex::new(r#""target":\{[^{}]*?"name":"([^"]+)""#).expect("valid");
    let executable = regex::Regex::new(r#""executable":"([^"]+)""#).expect("valid");
    messages
        .lines()
        .filter(|line| line.contains(r#""reason":"compiler-artifact""#))
        .filter_map(|line| {
            Some(TestBinary {
                target: target.captures(line)?[1].to_string(),
                path: PathBuf::from(&executable.captures(line)?[1]),
            })
        })
        .collect()
}

/// A kernel and an initramfs to boot, and the kernel's version.
struct Image {
    kernel: PathBuf,
    initrd: PathBuf,
    version: String,
}

impl Image {
    /// The image for Debian's current kernel, from the cache under the target directory,
    /// made first if it is not there. Its directory is named after the kernel's version
    /// and a fingerprint of what this file puts around it (init, modules), so a change to
    /// either makes a new image. The directory appears whole or not at all.
    fn ensure(target_dir: &Path) -> Result<Image> {
        let package = kernel_package()?;
        let version = package
            .strip_prefix("linux-image-")
            .expect("kernel_package checked the name")
            .to_string();
        let name = format!("{version}-{:08x}", recipe_fingerprint());
        let dir = target_dir.join("byoc-vm").join(name);
        if !dir.exists() {
            build_image(&package, &version, &dir)?;
        }
        Ok(Image {
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initrd.gz"),
            version,
        })
    }
}

/// A fingerprint of how this file makes an image. `DefaultHasher` may change with Rust
/// itself: the cost of that is one rebuilt image.
fn recipe_fingerprint() -> u32 {
    let mut hasher = DefaultHasher::new();
    (INIT, MODULES).hash(&mut hasher);
    hasher.finish() as u32
}

/// The versioned kernel package that `linux-image-amd64` depends on now, such as
/// `linux-image-6.1.0-56-amd64`: its name is how its modules' directory is named.
fn kernel_package() -> Result<String> {
    let output = Command::new("apt-cache")
        .args(["depends", KERNEL_METAPACKAGE])
        .output()
        .context(
            "cannot run apt-cache: the VM boots Debian's kernel package, found with apt \
             (Debian or a Debian-based system)",
        )?;
    let text = String::from_utf8_lossy(&output.stdout);
    match versioned_kernel_package(&text) {
        Some(package) if output.status.success() => Ok(package),
        _ => bail!(
            "apt does not know Debian's {KERNEL_METAPACKAGE}, whose kernel the VM boots: \
             run `apt-get update` (on Debian; its package lists name the kernel to download)"
        ),
    }
}

/// The first `Depends: linux-image-...` in `apt-cache depends linux-image-amd64`'s
/// output. A name in `<...>` is a virtual package, which cannot be downloaded.
fn versioned_kernel_package(apt_cache_depends: &str) -> Option<String> {
    apt_cache_depends.lines().find_map(|line| {
        let name = line.trim().strip_prefix("Depends: ")?;
        let versioned = name.starts_with("linux-image-") && name != KERNEL_METAPACKAGE;
        versioned.then(|| name.to_string())
    })
}

/// Downloads and unpacks the kernel package beside `dir`, builds the initramfs, keeps the
/// two files the VM boots, and renames the whole into `dir`.
fn build_image(package: &str, version: &str, dir: &Path) -> Result<()> {
    let name = dir
        .file_name()
        .expect("a named directory")
        .to_string_lossy();
    let partial = dir.with_file_name(format!("{name}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).with_context(|| format!("cannot make {partial:?}"))?;
    println!("making the VM image from {package}, once (kept in {dir:?})");
    if let Err(error) = fill_image(package, version, &partial) {
        let _ = fs::remove_dir_all(&partial);
        return Err(error);
    }
    fs::rename(&partial, dir).with_context(|| format!("cannot rename into {dir:?}"))?;
    remove_other_images(dir);
    Ok(())
}

/// Removes the images made before `current` (for an older kernel, or by an older recipe):
/// 10 MB each, and never used again; and what an interrupted build left. One that another
/// run is making now is left alone.
fn remove_other_images(current: &Path) {
    let Some(cache) = current.parent() else {
        return;
    };
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    for path in entries.filter_map(|entry| entry.ok().map(|entry| entry.path())) {
        let name = path.to_string_lossy();
        let being_made = name
            .rsplit_once(".partial-")
            .is_some_and(|(_, pid)| Path::new("/proc").join(pid).exists());
        if path != current && !being_made {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

fn fill_image(package: &str, version: &str, partial: &Path) -> Result<()> {
    let deb = rootfs::apt_download(package, partial)?;
    let unpacked = partial.join("unpacked");
    workspace::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    let kernel = unpacked.join(format!("boot/vmlinuz-{version}"));
    fs::copy(&kernel, partial.join("vmlinuz"))
        .with_context(|| format!("cannot copy {kernel:?}"))?;
    let modules = Modules::find(&unpacked.join("lib/modules").join(version))?;
    let order = load_order(MODULES, &|name| modules.depends(name))?;
    let busybox = rootfs::find_busybox()?;
    let initramfs = initramfs(&busybox, &modules, &order)?;
    let cpio = partial.join("initrd");
    fs::write(&cpio, initramfs).with_context(|| format!("cannot write {cpio:?}"))?;
    // gzip is in every Debian system (it is "essential"); -n: no name or time inside.
    workspace::run(Command::new("gzip").arg("-n").arg(&cpio))?;
    fs::remove_dir_all(&unpacked)?; // 400 MB of modules, of which the image keeps a few
    fs::remove_file(&deb)?;
    Ok(())
}

/// The modules of the kernel package: the files, and those built into the kernel.
struct Modules {
    files: HashMap<String, PathBuf>,
    built_in: HashSet<String>,
}

impl Modules {
    /// Indexes `dir` (`lib/modules/VERSION`). Debian's package ships no `modules.dep`
    /// (`depmod` makes it when the package is installed), so each module's dependencies
    /// are read from the module itself.
    fn find(dir: &Path) -> Result<Modules> {
        let mut files = HashMap::new();
        index_modules(&dir.join("kernel"), &mut files)?;
        let listed = dir.join("modules.builtin");
        let built_in = fs::read_to_string(&listed)
            .with_context(|| format!("cannot read {listed:?}"))?
            .lines()
            .filter_map(|line| module_name(Path::new(line)))
            .collect();
        Ok(Modules { files, built_in })
    }

    /// The modules `name` needs loaded before it, or `None` when it is built into the
    /// kernel.
    fn depends(&self, name: &str) -> Result<Option<Vec<String>>> {
        if self.built_in.contains(name) {
            return Ok(None);
        }
        let path = self.files.get(name).with_context(|| {
            format!("the kernel package has no module {name} (as an uncompressed .ko)")
        })?;
        let bytes = fs::read(path).with_context(|| format!("cannot read {path:?}"))?;
        let modinfo = elf_section(&bytes, ".modinfo")
            .with_context(|| format!("{path:?} has no .modinfo section"))?;
        Ok(Some(modinfo_depends(modinfo)))
    }
}

/// Every `NAME.ko` under `dir`, by module name.
fn index_modules(dir: &Path, found: &mut HashMap<String, PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {dir:?}"))? {
        let path = entry?.path();
        if path.is_dir() {
            index_modules(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "ko") {
            if let Some(name) = module_name(&path) {
                found.insert(name, path);
            }
        }
    }
    Ok(())
}

/// A module's name from its file's: `crc32c-intel.ko` is `crc32c_intel` (the kernel reads
/// `-` in a module's name as `_`).
fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    Some(file.strip_suffix(".ko")?.replace('-', "_"))
}

/// The modules to load for `wanted`, in an order that loads each after the modules it
/// depends on, each once: a depth-first walk of the dependencies. `depends` gives a
/// module's direct dependencies, or `None` for one built into the kernel (nothing to
/// load).
fn load_order(
    wanted: &[&str],
    depends: &dyn Fn(&str) -> Result<Option<Vec<String>>>,
) -> Result<Vec<String>> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for name in wanted {
        visit(name, depends, &mut seen, &mut order)?;
    }
    Ok(order)
}

fn visit(
    name: &str,
    depends: &dyn Fn(&str) -> Result<Option<Vec<String>>>,
    seen: &mut HashSet<String>,
    order: &mut Vec<String>,
) -> Result<()> {
    if !seen.insert(name.to_string()) {
        return Ok(());
    }
    let Some(needs) = depends(name)? else {
        return Ok(());
    };
    for need in needs {
        visit(&need, depends, seen, order)?;
    }
    order.push(name.to_string());
    Ok(())
}

/// The `depends=a,b` entry of a module's `.modinfo` section, a list of `key=value`
/// strings each ended by a zero byte: the modules whose symbols this one uses.
fn modinfo_depends(modinfo: &[u8]) -> Vec<String> {
    modinfo
        .split(|byte| *byte == 0)
        .find_map(|entry| entry.strip_prefix(b"depends="))
        .map(|list| String::from_utf8_lossy(list).into_owned())
        .unwrap_or_default()
        .split(',')
        .filter(|name| !name.is_empty())
        .map(|name| name.replace('-', "_"))
        .collect()
}

/// The bytes of the section called `name` in a 64-bit little-endian ELF file (x86-64's):
/// the section headers are a table at `e_shoff`, and their names are in the section that
/// `e_shstrndx` points at.
fn elf_section<'a>(elf: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None; // not ELF, or not 64-bit little-endian
    }
    let number = |at: usize, size: usize| -> Option<usize> {
        let mut bytes = [0u8; 8];
        bytes[..size].copy_from_slice(elf.get(at..at + size)?);
        usize::try_from(u64::from_le_bytes(bytes)).ok()
    };
    let (table, entry_size) = (number(0x28, 8)?, number(0x3a, 2)?);
    let (count, names_index) = (number(0x3c, 2)?, number(0x3e, 2)?);
    let header = |index: usize| table + index * entry_size;
    let names = number(header(names_index) + 0x18, 8)?;
    (0..count).find_map(|index| {
        let name_at = names + number(header(index), 4)?;
        let this_name = elf.get(name_at..)?.split(|byte| *byte == 0).next()?;
        if this_name != name.as_bytes() {
            return None;
        }
        let offset = number(header(index) + 0x18, 8)?;
        let size = number(header(index) + 0x20, 8)?;
        elf.get(offset..offset + size)
    })
}

/// The initramfs: a cpio archive the kernel unpacks into its first root filesystem before
/// it runs `/init`. `/dev/console` must be in it: the kernel opens it for init's output
/// before anything is mounted. (Written here, not with the `cpio` command, which would
/// need a real device node on disk, so root.)
fn initramfs(busybox: &Path, modules: &Modules, order: &[String]) -> Result<Vec<u8>> {
    let mut archive = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "share", "modules"] {
        archive.directory(dir);
    }
    archive.char_device("dev/console", 5, 1);
    archive.file("init", 0o755, INIT.as_bytes());
    let busybox =
        fs::read(busybox).with_context(|| format!("cannot read {busybox:?}"))?;
    archive.file("bin/busybox", 0o755, &busybox);
    for name in order {
        let path = &modules.files[name];
        let bytes = fs::read(path).with_context(|| format!("cannot read {path:?}"))?;
        archive.file(&format!("modules/{name}.ko"), 0o644, &bytes);
    }
    archive.file("modules/order", 0o644, (order.join("\n") + "\n").as_bytes());
    Ok(archive.finish())
}

/// A cpio archive in the "newc" format, the one the kernel reads: for each entry a header
/// of 13 numbers in 8 hex digits, the name, and the data, each padded to 4 bytes.
#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    entries: u32,
}

impl Cpio {
    fn directory(&mut self, name: &str) {
        self.entry(name, 0o040_755, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, permissions: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | permissions, (0, 0), data);
    }

    fn char_device(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020_600, (major, minor), &[]);
    }

    /// The archive, ended by its trailer entry.
    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.bytes
    }

    fn entry(&mut self, name: &str, mode: u32, (major, minor): (u32, u32), data: &[u8]) {
        self.entries += 1;
        let size = u32::try_from(data.len()).expect("an initramfs file under 4 GB");
        let name_size = name.len() as u32 + 1; // with its zero byte

        // The 13 numbers, in order. An initramfs has no disk it came from (device 0, 0);
        // `major, minor` say which device a device node is. newc has no checksum.
        let (inode, uid, gid, links, mtime, checksum) = (self.entries, 0, 0, 1, 0, 0);
        let fields = [
            inode, mode, uid, gid, links, mtime, size, 0, 0, major, minor, name_size,
            checksum,
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            let hex = format!("{field:08x}");
            self.bytes.extend_from_slice(hex.as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.bytes.len() % 4 != 0 {
            self.bytes.push(0);
        }
    }
}

/// The script the guest's init runs for this run: set up the machine ([`GUEST_SETUP`]),
/// then run each test binary in the chroot, with only `env` in its environment and
/// `workdir` as its directory, as `cargo test` would, writing its output and exit status
/// into the share.
fn guest_script(
    share: &Path,
    workdir: &Path,
    env: &[(&str, String)],
    tests: &[TestBinary],
) -> String {
    let mut script =
        String::from("# Written by cargo xtask test --cgroup-vm for one run.\n");
    script.push_str(&format!(
        "share={}\n",
        shell_quote(&share.display().to_string())
    ));
    let workspace = workdir.parent().unwrap_or(workdir);
    script.push_str(&format!(
        "workspace={}\n",
        shell_quote(&workspace.display().to_string())
    ));
    script.push_str(GUEST_SETUP);
    let env: Vec<String> = env
        .iter()
        .map(|(name, value)| shell_quote(&format!("{name}={value}")))
        .collect();
    for test in tests {
        let target = &test.target;
        script.push_str(&format!(
            "\necho 'running {target}'\n\
             chroot . /usr/bin/env -i --chdir={workdir} {env} {binary} --test-threads=2 \
             >/share/{target}.stdout 2>/share/{target}.stderr\n\
             echo $? >/share/{target}.status\n",
            workdir = shell_quote(&workdir.display().to_string()),
            env = env.join(" "),
            binary = shell_quote(&test.path.display().to_string()),
        ));
    }
    script
}

/// `text` as one word for the shell, whatever it holds: in single quotes, where only a
/// single quote needs care (end the quote, an escaped quote, quote again).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The qemu command line. The guest's serial port is qemu's stdout, with no screen (what
/// `-nographic` does, without the firmware's screen codes on that port). `-nic none`: the
/// guest has no network but its own loopback, so no test in it can reach the host's.
/// `security_model=none`: the shares' files keep the host's owners and modes, and qemu
/// needs no root to share them.
fn qemu_command(image: &Image, share: &Path) -> Command {
    let mut qemu = Command::new(QEMU);
    qemu.args(["-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "2"])
        .args(["-display", "none", "-serial", "stdio"])
        .args(["-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(&image.initrd)
        .args(["-append", KERNEL_COMMAND_LINE])
        .arg("-virtfs")
        .arg(format!(
            "local,path={},mount_tag=share,security_model=none",
            virtfs_path(share)
        ))
        .arg("-virtfs")
        .arg("local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap")
        // Not the terminal: qemu would make it raw, for a console nobody types into.
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    qemu
}

/// A path inside a qemu option, where a comma would end the value unless doubled.
fn virtfs_path(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// Boots the VM and prints what the tests write, as they write it, until the VM powers
/// off or runs out of time. Returns whether it powered off by itself.
fn boot_and_follow(image: &Image, share: &Path, tests: &[TestBinary]) -> Result<bool> {
    let mut qemu = qemu_command(image, share)
        .spawn()
        .with_context(|| format!("cannot start {QEMU}"))?;
    let console = echo_console(qemu.stdout.take().expect("stdout is piped"));
    let mut outputs: Vec<Follow> = tests
        .iter()
        .flat_map(|test| {
            let file = |ending: &str| share.join(format!("{}.{ending}", test.target));
            [
                Follow::new(file("stdout"), false),
                Follow::new(file("stderr"), true),
            ]
        })
        .collect();
    let deadline = Instant::now() + GUEST_TIME_LIMIT;
    let finished = loop {
        let ended = qemu.try_wait()?;
        outputs.iter_mut().for_each(Follow::print_new_lines);
        if let Some(status) = ended {
            if !status.success() {
                bail!("{QEMU} failed ({status}): see its message above");
            }
            break true;
        }
        if Instant::now() > deadline {
            stop(&mut qemu);
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    outputs.iter_mut().for_each(Follow::print_rest);
    let _ = console.join();
    Ok(finished)
}

/// Ends a VM that ran out of time, the way pulling its plug would.
fn stop(qemu: &mut Child) {
    let _ = qemu.kill();
    let _ = qemu.wait();
}

/// Prints the guest's console, what its init says, as `vm: ...`, in a thread of its own.
fn echo_console(console: ChildStdout) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(console).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches('\r');
            // The kernel's last word when the VM powers off as it should says nothing,
            // and would print among the tests' last lines, which are read from files.
            if !line.trim().is_empty() && !line.ends_with("reboot: Power down") {
                println!("vm: {line}");
            }
        }
    })
}

/// A file the guest writes through the share, read as it grows: each line is printed once
/// it is whole, on stdout or stderr as the test binary wrote it.
struct Follow {
    path: PathBuf,
    read: u64,
    partial: Vec<u8>,
    is_stderr: bool,
}

impl Follow {
    fn new(path: PathBuf, is_stderr: bool) -> Follow {
        Follow {
            path,
            read: 0,
            partial: Vec::new(),
            is_stderr,
        }
    }

    fn print_new_lines(&mut self) {
        self.read_more();
        while let Some(end) = self.partial.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.print(&line[..end]);
        }
    }

    /// After the VM ended: the last line too, if the binary did not end it.
    fn print_rest(&mut self) {
        self.print_new_lines();
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.print(&rest);
        }
    }

    fn read_more(&mut self) {
        let Ok(mut file) = fs::File::open(&self.path) else {
            return; // the guest has not started this binary yet
        };
        let mut more = Vec::new();
        if file.seek(SeekFrom::Start(self.read)).is_ok()
            && file.read_to_end(&mut more).is_ok()
        {
            self.read += more.len() as u64;
            self.partial.extend_from_slice(&more);
        }
    }

    fn print(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        match self.is_stderr {
            true => eprintln!("{line}"),
            false => println!("{line}"),
        }
    }
}

/// Counts one test binary's run from the files it left in the share, as `cargo test`'s
/// output is counted on the host. A binary that did not finish, or failed before it
/// printed its count (it crashed), is one more failure: never nothing.
fn count_test_binary(share: &Path, test: &TestBinary, outcome: &mut Outcome) {
    let target = &test.target;
    let stdout =
        fs::read_to_string(share.join(format!("{target}.stdout"))).unwrap_or_default();
    let mut counted = Outcome::default();
    for line in stdout.lines() {
        testing::count_line(line, &mut counted);
    }
    counted.failing_tests = (counted.failing_tests.iter())
        .map(|name| format!("{target}::{name} (in the VM)"))
        .collect();
    let status = fs::read_to_string(share.join(format!("{target}.status")));
    let problem = match status.as_deref().map(str::trim) {
        Err(_) => Some("did not finish".to_string()),
        Ok("0") => None,
        Ok(_) if counted.failed > 0 => None,
        Ok(code) => Some(format!("ended with exit status {code} before it said why")),
    };
    if let Some(problem) = problem {
        // It never printed its count: the failures it named count, and so does its end.
        let named = u32::try_from(counted.failing_tests.len()).unwrap_or(u32::MAX);
        counted.failed = counted.failed.max(named) + 1;
        counted
            .failing_tests
            .push(format!("{target} in the VM {problem}"));
    }
    counted.output = stdout;
    outcome.add(counted);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_is_the_versioned_package_the_metapackage_depends_on() {
        let output = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            versioned_kernel_package(output).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        let virtual_only = "linux-image-amd64\n  Depends: <linux-image-6.1.0-9-amd64>\n";
        assert_eq!(versioned_kernel_package(virtual_only), None);
        assert_eq!(versioned_kernel_package("E: No packages found\n"), None);
    }

    fn dependencies(name: &str) -> Result<Option<Vec<String>>> {
        let list: &[&str] = match name {
            "nft_masq" => &["nf_tables", "nf_nat", "nf_conntrack"],
            "nf_nat" => &["nf_conntrack", "libcrc32c"],
            "nf_conntrack" => &["nf_defrag_ipv4", "libcrc32c"],
            "nf_tables" => &["nfnetlink", "libcrc32c"],
            "tmpfs" => return Ok(None), // built in
            "nfnetlink" | "libcrc32c" | "nf_defrag_ipv4" => &[],
            other => bail!("no module {other}"),
        };
        Ok(Some(list.iter().map(|name| name.to_string()).collect()))
    }

    #[test]
    fn each_module_is_loaded_once_and_after_what_it_needs() {
        let order =
            load_order(&["nft_masq", "nf_tables", "tmpfs"], &dependencies).unwrap();
        assert_eq!(
            order,
            [
                "nfnetlink",
                "libcrc32c",
                "nf_tables",
                "nf_defrag_ipv4",
                "nf_conntrack",
                "nf_nat",
                "nft_masq"
            ]
        );
    }

    #[test]
    fn a_missing_module_is_an_error() {
        assert!(load_order(&["nf_tables", "nope"], &dependencies).is_err());
    }

    #[test]
    fn dependencies_are_read_from_modinfo() {
        let modinfo = b"license=GPL\0depends=nf_tables,nf_nat,crc32c-intel\0intree=Y\0";
        assert_eq!(
            modinfo_depends(modinfo),
            ["nf_tables", "nf_nat", "crc32c_intel"]
        );
        assert!(modinfo_depends(b"license=GPL\0depends=\0").is_empty());
    }

    /// A minimal ELF file: its header, the sections' bytes, the names, the section table.
    fn tiny_elf(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut elf = b"\x7fELF\x02\x01".to_vec();
        elf.resize(64, 0);
        let mut places = Vec::new();
        for (_, data) in sections {
            places.push((elf.len(), data.len()));
            elf.extend_from_slice(data);
        }
        let mut names = vec![0u8];
        let mut name_offsets = Vec::new();
        for (name, _) in sections.iter().chain([(".shstrtab", &[][..])].iter()) {
            name_offsets.push(names.len());
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        places.push((elf.len(), names.len()));
        elf.extend_from_slice(&names);
        let table = elf.len();
        for ((offset, size), name) in places.iter().zip(&name_offsets) {
            let mut header = [0u8; 64];
            header[..4].copy_from_slice(&(*name as u32).to_le_bytes());
            header[0x18..0x20].copy_from_slice(&(*offset as u64).to_le_bytes());
            header[0x20..0x28].copy_from_slice(&(*size as u64).to_le_bytes());
            elf.extend_from_slice(&header);
        }
        elf[0x28..0x30].copy_from_slice(&(table as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&(places.len() as u16).to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        elf
    }

    #[test]
    fn a_section_is_found_by_its_name() {
        let elf = tiny_elf(&[(".text", b"code"), (".modinfo", b"depends=a,b\0")]);
        assert_eq!(elf_section(&elf, ".modinfo"), Some(&b"depends=a,b\0"[..]));
        assert_eq!(elf_section(&elf, ".text"), Some(&b"code"[..]));
        assert_eq!(elf_section(&elf, ".data"), None);
        assert_eq!(elf_section(b"not an ELF file", ".modinfo"), None);
    }

    #[test]
    fn module_names_read_dashes_as_underscores() {
        let path = Path::new("kernel/arch/x86/crypto/crc32c-intel.ko");
        assert_eq!(module_name(path).as_deref(), Some("crc32c_intel"));
        assert_eq!(module_name(Path::new("modules.order")), None);
    }

    #[test]
    fn a_cpio_entry_is_a_newc_header_then_name_and_data_padded_to_4() {
        let mut archive = Cpio::default();
        archive.file("init", 0o755, b"#!/bin/sh\n");
        let bytes = archive.finish();
        let header = String::from_utf8_lossy(&bytes[..110]);
        // inode 1, a file rwxr-xr-x, root's, 1 link, time 0, 10 bytes, no devices, a name
        // of 5 bytes with its zero, no checksum.
        let expected = concat!(
            "070701", "00000001", "000081ed", "00000000", "00000000", "00000001",
            "00000000", "0000000a", "00000000", "00000000", "00000000", "00000000",
            "00000005", "00000000",
        );
        assert_eq!(header, expected);
        assert_eq!(&bytes[110..116], b"init\0\0"); // 110 + 5 bytes, padded to 116
        assert_eq!(&bytes[116..126], b"#!/bin/sh\n");
        assert_eq!(&bytes[126..128], b"\0\0");
        assert!(bytes[128..].starts_with(b"070701"));
        assert!(bytes.ends_with(b"TRAILER!!!\0\0\0\0"));
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn cargo_messages_name_each_test_target_and_its_binary() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"crate_types":["lib"],"name":"byoc_tests","src_path":"/w/tests/support/lib.rs"},"executable":null,"fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["test"],"crate_types":["bin"],"name":"ch07","src_path":"/w/tests/ch07.rs","test":true},"profile":{"test":true},"filenames":["/w/target/debug/deps/ch07-0123"],"executable":"/w/target/debug/deps/ch07-0123","fresh":false}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            test_executables(messages),
            [TestBinary {
                target: "ch07".to_string(),
                path: PathBuf::from("/w/target/debug/deps/ch07-0123"),
            }]
        );
    }

    #[test]
    fn the_vm_runs_the_cgroup_targets_or_the_one_chapter_asked_for() {
        assert_eq!(targets_for(&["ch07"], None).unwrap(), ["ch07"]);
        assert_eq!(targets_for(&["ch07", "ch08"], Some(8)).unwrap(), ["ch08"]);
        let error = targets_for(&["ch07"], Some(3)).unwrap_err().to_string();
        assert!(error.contains("chapter 3 has none"), "{error}");
    }

    #[test]
    fn shell_quoting_keeps_any_text_one_word() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_guest_script_runs_each_binary_with_only_the_given_environment() {
        let tests = [TestBinary {
            target: "ch07".to_string(),
            path: PathBuf::from("/w/target/debug/deps/ch07-0123"),
        }];
        let env = [("COURSE_IMPL", "solutions".to_string())];
        let script = guest_script(
            Path::new("/tmp/byoc-vm-x"),
            Path::new("/w/tests"),
            &env,
            &tests,
        );
        assert!(script.contains("share='/tmp/byoc-vm-x'\n"), "{script}");
        assert!(
            script.contains(
                "chroot . /usr/bin/env -i --chdir='/w/tests' 'COURSE_IMPL=solutions' \
                 '/w/target/debug/deps/ch07-0123' --test-threads=2 \
                 >/share/ch07.stdout 2>/share/ch07.stderr\n\
                 echo $? >/share/ch07.status\n"
            ),
            "{script}"
        );
    }

    fn share_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let share = tempfile::tempdir().unwrap();
        for (name, text) in files {
            fs::write(share.path().join(name), text).unwrap();
        }
        share
    }

    fn counted(files: &[(&str, &str)]) -> Outcome {
        let share = share_with(files);
        let test = TestBinary {
            target: "ch07".to_string(),
            path: PathBuf::from("/unused"),
        };
        let mut outcome = Outcome::default();
        count_test_binary(share.path(), &test, &mut outcome);
        outcome
    }

    #[test]
    fn a_binary_in_the_vm_is_counted_from_its_output() {
        let outcome = counted(&[
            (
                "ch07.stdout",
                "test memory_limit ... FAILED\n\
                 test result: FAILED. 9 passed; 1 failed; 0 ignored; 0 measured\n",
            ),
            ("ch07.status", "101\n"),
        ]);
        assert_eq!(outcome.summary(), "summary: 9 passed, 1 failed, 0 not run");
        assert_eq!(outcome.failing_tests, ["ch07::memory_limit (in the VM)"]);
    }

    #[test]
    fn a_binary_that_never_finished_or_crashed_is_a_failure() {
        let unfinished = counted(&[("ch07.stdout", "running 10 tests\n")]);
        assert_eq!(unfinished.failed, 1);
        assert_eq!(unfinished.failing_tests, ["ch07 in the VM did not finish"]);
        let crashed = counted(&[
            (
                "ch07.stdout",
                "running 10 tests\ntest memory_limit ... FAILED\n",
            ),
            ("ch07.status", "134"),
        ]);
        assert_eq!(crashed.failed, 2);
        assert_eq!(
            crashed.failing_tests,
            [
                "ch07::memory_limit (in the VM)",
                "ch07 in the VM ended with exit status 134 before it said why"
            ]
        );
        let passed = counted(&[
            ("ch07.stdout", "test result: ok. 10 passed; 0 failed\n"),
            ("ch07.status", "0\n"),
        ]);
        assert_eq!(passed.summary(), "summary: 10 passed, 0 failed, 0 not run");
    }
}

//! `cargo xtask rootfs`: the tiny root filesystem every chapter runs. Book: "Setting up".
//!
//! It is Debian's static busybox (one binary that is `sh`, `ls`, `mount` and 300 other
//! programs), its applet links, a minimal `/etc`, the empty directories the chapters
//! mount on, and the probe. The tree is built beside its final place and renamed into it,
//! so an interrupted build never leaves half a root filesystem that looks whole.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::workspace::{self, cargo};

/// A file the build writes last: a tree without it is not finished.
const COMPLETE_MARKER: &str = ".byoc-rootfs";

/// Where the finished tree lives.
pub fn path() -> PathBuf {
    workspace::root().join("rootfs/busybox")
}

/// Builds the root filesystem if it is missing, and installs the current probe into it.
pub fn ensure() -> Result<PathBuf> {
    let target = path();
    if !target.join(COMPLETE_MARKER).exists() {
        build_tree(&target)?;
    }
    // Trees built before chapter 2 pivoted with pivot_root(".", ".") have an empty
    // /.oldroot: no chapter writes or needs it now.
    let _ = fs::remove_dir(target.join(".oldroot"));
    write_network_files(&target)?;
    make_cgroup_mount_point(&target)?;
    install_probe(&target)?;
    Ok(target)
}

fn build_tree(target: &Path) -> Result<()> {
    let busybox = find_busybox()?;
    let staging = target.with_extension(format!("tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let result = populate(&staging, &busybox);
    if let Err(error) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(error);
    }
    // A previous build that was interrupted after its rename but before its marker.
    if target.exists() {
        fs::remove_dir_all(target)
            .with_context(|| format!("cannot remove old {target:?}"))?;
    }
    fs::rename(&staging, target)
        .with_context(|| format!("cannot rename into {target:?}"))?;
    Ok(())
}

/// The busybox binary: a cached one, a static one on the host, or one from Debian's
/// `busybox-static` package, downloaded and unpacked without installing it.
pub fn find_busybox() -> Result<PathBuf> {
    let cached = workspace::root().join("rootfs/cache/busybox");
    if cached.exists() {
        return Ok(cached);
    }
    for candidate in ["/bin/busybox", "/usr/bin/busybox"] {
        if is_static_elf(Path::new(candidate)) {
            return copy_to_cache(Path::new(candidate), &cached);
        }
    }
    match download_busybox_static() {
        Ok(unpacked) => copy_to_cache(&unpacked, &cached),
        Err(error) => bail!(
            "no static busybox found: {error:#}\n\
             On Debian or Ubuntu, `apt-get install busybox-static` (or let this command \
             download it: it needs `apt-get` and `dpkg-deb`). Elsewhere, put a \
             statically linked busybox at {cached:?}."
        ),
    }
}

fn copy_to_cache(source: &Path, cached: &Path) -> Result<PathBuf> {
    fs::create_dir_all(cached.parent().expect("the cache has a parent"))?;
    let partial = cached.with_extension("partial");
    fs::copy(source, &partial).with_context(|| format!("cannot copy {source:?}"))?;
    fs::rename(&partial, cached)?;
    Ok(cached.to_path_buf())
}

/// `apt-get download busybox-static` and `dpkg-deb -x`: no root, no system-wide install.
fn download_busybox_static() -> Result<PathBuf> {
    let work = workspace::root().join("rootfs/cache/deb");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let deb = apt_download("busybox-static", &work)?;
    let unpacked = work.join("unpacked");
    workspace::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    let busybox = unpacked.join("bin/busybox");
    if !is_static_elf(&busybox) {
        bail!("{busybox:?} is not a static ELF program");
    }
    Ok(busybox)
}

/// Downloads Debian's `package` into the empty directory `dir` with `apt-get download`,
/// without installing it (so without root), and returns the `.deb` file.
pub fn apt_download(package: &str, dir: &Path) -> Result<PathBuf> {
    workspace::run(
        // apt downloads as its `_apt` user, which cannot write into the kit's cache; it
        // would fall back to root with a warning a newcomer should not have to read.
        Command::new("apt-get")
            .args(["-o", "APT::Sandbox::User=root", "download", package])
            .current_dir(dir),
    )?;
    let deb = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .with_context(|| format!("apt-get download {package} left no .deb file"))?;
    Ok(deb)
}

/// A static ELF program names no program interpreter (no `PT_INTERP` header), so it runs
/// in a root filesystem that has no shared libraries.
fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false; // not a 64-bit ELF file
    }
    let read_u16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let header_table =
        u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes")) as usize;
    let (entry_size, entries) = (read_u16(54), read_u16(56));
    const PT_INTERP: u32 = 3;
    (0..entries).all(|index| {
        let at = header_table + index * entry_size;
        match bytes.get(at..at + 4) {
            Some(kind) => {
                u32::from_le_bytes(kind.try_into().expect("4 bytes")) != PT_INTERP
            }
            None => false,
        }
    })
}

fn populate(root: &Path, busybox: &Path) -> Result<()> {
    for dir in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "usr/local/bin",
        "etc",
        "var",
        "home",
    ] {
        fs::create_dir_all(root.join(dir))?;
    }
    // Empty mount points: chapters mount a fresh /dev, /proc, /sys and /tmp here.
    for (dir, mode) in [
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
    ] {
        let path = root.join(dir);
        fs::create_dir_all(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
    }
    let installed = root.join("bin/busybox");
    fs::copy(busybox, &installed)?;
    fs::set_permissions(&installed, fs::Permissions::from_mode(0o755))?;
    link_applets(root, &installed)?;
    write_etc(root)?;
    fs::write(
        root.join(COMPLETE_MARKER),
        "busybox root filesystem built by cargo xtask rootfs\n",
    )?;
    Ok(())
}

/// One link per applet (`bin/sh -> /bin/busybox`): busybox looks at the name it was run
/// as.
fn link_applets(root: &Path, busybox: &Path) -> Result<()> {
    let output = Command::new(busybox)
        .arg("--list-full")
        .output()
        .with_context(|| format!("cannot run {busybox:?} --list-full"))?;
    if !output.status.success() {
        bail!("{busybox:?} --list-full failed");
    }
    for applet in String::from_utf8_lossy(&output.stdout).lines() {
        let link = root.join(applet);
        if applet == "bin/busybox" || link.exists() {
            continue;
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        symlink("/bin/busybox", &link)
            .with_context(|| format!("cannot link {link:?}"))?;
    }
    Ok(())
}

fn write_etc(root: &Path) -> Result<()> {
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        (
            "etc/os-release",
            "NAME=\"byoc busybox\"\nID=byoc\nPRETTY_NAME=\"byoc busybox root filesystem\"\n",
        ),
    ];
    for (path, text) in files {
        fs::write(root.join(path), text)?;
    }
    Ok(())
}

/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`: chapter 6 mounts a container's
/// own over them, and a mount needs a file to cover. Written when missing, so a tree
/// built before chapter 6 gets them too.
fn write_network_files(root: &Path) -> Result<()> {
    let files = [
        ("etc/hosts", "127.0.0.1\tlocalhost\n"),
        ("etc/hostname", "byoc\n"),
        ("etc/resolv.conf", ""),
    ];
    for (path, text) in files {
        let path = root.join(path);
        if !path.exists() {
            fs::write(&path, text).with_context(|| format!("cannot write {path:?}"))?;
        }
    }
    Ok(())
}

/// `/sys/fs/cgroup`: chapter 7 mounts the container's part of the cgroup tree there, and
/// never writes the root filesystem to make the directory. Made when missing, so a tree
/// built before chapter 7 gets it too.
fn make_cgroup_mount_point(root: &Path) -> Result<()> {
    // `sys` must stay writable for its owner: with a directory in it, an ordinary user
    // could not remove the tree (or a staged copy of it) otherwise. A tree built before
    // chapter 7 had it read-only.
    let sys = root.join("sys");
    fs::set_permissions(&sys, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {sys:?} writable for its owner"))?;
    let path = sys.join("fs/cgroup");
    fs::create_dir_all(&path).with_context(|| format!("cannot make {path:?}"))
}

/// Builds the probe as a static program and installs it as `/bin/probe`.
fn install_probe(root: &Path) -> Result<()> {
    let target_dir = workspace::target_dir().join("probe");
    let triple = host_triple()?;
    // The static flag must not reach build scripts or proc macros, so it is passed only
    // for the target: that is what an explicit `--target` does with RUSTFLAGS.
    workspace::run(
        cargo()
            .args([
                "build",
                "--quiet",
                "--release",
                "-p",
                "probe",
                "--target",
                &triple,
            ])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )?;
    let built = target_dir.join(&triple).join("release/probe");
    let installed = root.join("bin/probe");
    if fs::read(&built).ok() == fs::read(&installed).ok() {
        return Ok(());
    }
    let partial = root.join("bin/.probe.partial");
    fs::copy(&built, &partial).with_context(|| format!("cannot copy {built:?}"))?;
    fs::rename(&partial, &installed)?;
    Ok(())
}

fn host_triple() -> Result<String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("cannot run rustc -vV")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV names no host")
}

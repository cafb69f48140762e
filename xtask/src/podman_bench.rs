//! `cargo xtask bench`, the bonus chapter's part: `podman run --rm IMAGE /bin/true` with
//! the kit as podman's runtime, beside crun and runc as podman's runtime, in turns. What
//! is timed is all of podman's work (storage, conmon, its own state) plus the runtime's:
//! the figure a person who types `podman run` sees. Book: "How this kit is built".

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::bench::Variant;

/// The image podman runs, made from the kit's root filesystem.
const IMAGE: &str = "localhost/byoc-bench:1";

/// podman's storage, run root and temp dir, the bench's own.
pub struct PodmanStore {
    dir: PathBuf,
    run_root: tempfile::TempDir,
    cgroup_parent: String,
}

impl PodmanStore {
    /// Storage under `scratch`; the run root straight under /tmp (podman refuses one of
    /// more than 50 characters); containers under the bench's cgroup parent, which the
    /// bench's clean-up removes.
    pub fn new(scratch: &Path, cgroup_parent: String) -> Result<PodmanStore> {
        let run_root = tempfile::Builder::new()
            .prefix("byoc-bench-podman-")
            .tempdir_in("/tmp")
            .context("cannot make podman's run root")?;
        Ok(PodmanStore {
            dir: scratch.join("podman"),
            run_root,
            cgroup_parent,
        })
    }

    fn global_options(&self) -> Vec<OsString> {
        let mut options: Vec<OsString> =
            vec!["--root".into(), self.dir.join("storage").into()];
        options.extend(["--runroot".into(), self.run_root.path().into()]);
        options.extend(["--tmpdir".into(), self.dir.join("tmp").into()]);
        for word in ["--storage-driver", "vfs", "--events-backend", "none"] {
            options.push(word.into());
        }
        options.extend(["--cgroup-manager".into(), "cgroupfs".into()]);
        options
    }

    /// Imports the root filesystem as the image every variant runs.
    pub fn import(&self, rootfs: &Path) -> Result<()> {
        let tar = self.dir.join("rootfs.tar");
        std::fs::create_dir_all(&self.dir)?;
        let packed = Command::new("tar")
            .arg("-C")
            .arg(rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()?;
        if !packed.success() {
            bail!("tar of {} failed", rootfs.display());
        }
        let imported = Command::new("podman")
            .args(self.global_options())
            .arg("import")
            .arg(&tar)
            .arg(IMAGE)
            .output()
            .context("cannot start podman")?;
        if !imported.status.success() {
            bail!(
                "podman import: {}",
                String::from_utf8_lossy(&imported.stderr).trim()
            );
        }
        Ok(())
    }

    /// `podman --runtime RUNTIME run --rm ... IMAGE /bin/true`, named `name`.
    pub fn variant(&self, name: &str, runtime: &Path) -> Variant {
        let mut args = self.global_options();
        args.extend(["--runtime".into(), runtime.into()]);
        args.push("run".into());
        args.push(format!("--cgroup-parent=/{}", self.cgroup_parent).into());
        // The same container for all three: no network but loopback, podman's own seccomp
        // profile (the kit installs it: book 11.5), limits this machine allows.
        for word in [
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=4096:4096",
            "--ulimit",
            "nproc=1024:1024",
            IMAGE,
            "/bin/true",
        ] {
            args.push(word.into());
        }
        Variant {
            name: name.to_string(),
            program: PathBuf::from("podman"),
            args,
            id_prefix: None,
        }
    }
}

/// The runtimes podman runs its containers with: the kit's bonus binary, then crun and
/// runc where they are installed.
pub fn runtimes(kit: &Path) -> Vec<(String, PathBuf)> {
    let mut runtimes = vec![("podman + byoc".to_string(), kit.to_path_buf())];
    for peer in ["crun", "runc"] {
        let found = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]
            .iter()
            .map(|dir| Path::new(dir).join(peer))
            .find(|path| path.exists());
        match found {
            Some(path) => runtimes.push((format!("podman + {peer}"), path)),
            None => println!("{peer}: not installed: no ratio to it can be given"),
        }
    }
    runtimes
}

/// Whether podman is here at all.
pub fn podman_is_installed() -> bool {
    Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

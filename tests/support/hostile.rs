//! Hostile root filesystems: a copy of the busybox root filesystem that a test changes (a
//! symlink where a mount point should be, a FIFO where a file should be), beside a victim
//! directory on the host that the symlinks aim at. Whatever the runtime does with such a
//! root, the victim must stay as it was, byte for byte (book 2.5).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{host_temp_dir, run_command, Run, Runtime};

/// A root filesystem of the test's own and a victim directory beside it, both in one temp
/// dir.
pub struct HostileRoot {
    _dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub victim: PathBuf,
    before: String,
}

impl HostileRoot {
    /// A fresh copy of the root filesystem, and a victim with a file, a directory and a
    /// file inside that.
    pub fn new() -> HostileRoot {
        let dir = host_temp_dir();
        // Root only may enter it, as a learner's checkout in a private directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod the temp dir");
        let rootfs = dir.path().join("rootfs");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(crate::rootfs())
            .arg(&rootfs)
            .status()
            .expect("cp runs");
        assert!(copied.success(), "cannot copy {:?}", crate::rootfs());
        let victim = dir.path().join("victim");
        std::fs::create_dir_all(victim.join("inner")).expect("make the victim");
        std::fs::write(victim.join("file"), "the host's own file\n")
            .expect("write the victim");
        std::fs::write(victim.join("inner/deeper"), "deeper\n")
            .expect("write the victim");
        let before = listing(&victim);
        HostileRoot {
            _dir: dir,
            rootfs,
            victim,
            before,
        }
    }

    /// Replaces `inner` (a path in the root filesystem, such as `dev`) with a symlink to
    /// `target`.
    pub fn symlink(&self, inner: &str, target: &Path) -> &HostileRoot {
        let path = self.rootfs.join(inner);
        remove_any(&path);
        std::os::unix::fs::symlink(target, &path).expect("make the symlink");
        self
    }

    /// Replaces `inner` with a FIFO.
    pub fn fifo(&self, inner: &str) -> &HostileRoot {
        let path = self.rootfs.join(inner);
        remove_any(&path);
        let made = Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo {path:?}");
        self
    }

    /// `BINARY run --rootfs THIS OPTIONS -- COMMAND`, to its end.
    pub fn run(&self, runtime: &Runtime, options: &[&str], command: &[&str]) -> Run {
        let mut line = Command::new(&runtime.path);
        self.add_run(&mut line, runtime, options, command);
        run_command(&runtime.name, line)
    }

    /// Adds `run --rootfs THIS OPTIONS -- COMMAND` and a clean environment to `line`.
    fn add_run(
        &self,
        line: &mut Command,
        runtime: &Runtime,
        options: &[&str],
        command: &[&str],
    ) {
        line.arg("run")
            .arg("--rootfs")
            .arg(&self.rootfs)
            .args(options)
            .arg("--")
            .args(command)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("RUST_BACKTRACE", "0")
            .env("BYOC_ROOT", runtime.data_root.path());
    }

    /// Runs the runtime with `/` a tmpfs of the test's own, in a mount namespace of the
    /// test's own: the host's directories are bind-mounted into it, and it is made the
    /// runtime's root with `chroot`. A root filesystem's symlink to `/` then aims at that
    /// tmpfs, never at the machine's `/`. Returns the run and the names at the top of
    /// that `/`, and its mount options, before and after.
    pub fn run_with_a_stand_in_host_root(
        &self,
        runtime: &Runtime,
        options: &[&str],
        command: &[&str],
    ) -> (Run, StandInRoot) {
        let stand_in = self._dir.path().join("host-root");
        std::fs::create_dir(&stand_in).expect("make the stand-in root");
        let mut line = Command::new("unshare");
        let private = ["--mount", "--propagation", "private"];
        line.args(private)
            .args(["sh", "-c", STAND_IN_SCRIPT, "sh"])
            .arg(&stand_in)
            .arg(&runtime.path);
        self.add_run(&mut line, runtime, options, command);
        let run = run_command(&runtime.name, line);
        let seen = StandInRoot {
            before: run.value("before"),
            after: run.value("after"),
            options_before: run.value("options-before"),
            options_after: run.value("options-after"),
        };
        (run, seen)
    }

    /// The victim is as it was: the same names, kinds, modes and contents.
    pub fn assert_victim_unchanged(&self, runtime: &Runtime, run: &Run) {
        assert_eq!(
            listing(&self.victim),
            self.before,
            "{}: the victim directory on the host changed\n{}",
            runtime.name,
            run.report()
        );
    }

    /// The names at the top of the root filesystem, to see that a run wrote nothing
    /// there.
    pub fn top_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.rootfs)
            .expect("read the root filesystem")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Default for HostileRoot {
    fn default() -> HostileRoot {
        HostileRoot::new()
    }
}

/// Every entry under `dir`, with its kind, mode, owner, size and contents: a change to
/// any shows.
pub fn listing(dir: &Path) -> String {
    let mut lines = Vec::new();
    walk(dir, dir, &mut lines);
    lines.sort();
    lines.join("\n")
}

fn walk(base: &Path, dir: &Path, lines: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read the victim")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    entries.sort();
    let meta = std::fs::symlink_metadata(dir).expect("stat the victim");
    lines.push(describe(base, dir, &meta));
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).expect("stat an entry");
        if meta.is_dir() {
            walk(base, &path, lines);
        } else {
            lines.push(describe(base, &path, &meta));
        }
    }
}

fn describe(base: &Path, path: &Path, meta: &std::fs::Metadata) -> String {
    let name = path
        .strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string();
    let contents = match meta.is_file() {
        true => std::fs::read_to_string(path).unwrap_or_default(),
        false => String::new(),
    };
    format!(
        "{name:?} mode={:o} owner={}:{} size={} {contents:?}",
        meta.mode(),
        meta.uid(),
        meta.gid(),
        meta.len()
    )
}

fn remove_any(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            std::fs::remove_dir_all(path).expect("remove a directory")
        }
        Ok(_) => std::fs::remove_file(path).expect("remove a file"),
        Err(_) => {}
    }
}

/// The top of a stand-in `/` and its mount options, before and after a run.
#[derive(Debug)]
pub struct StandInRoot {
    pub before: String,
    pub after: String,
    pub options_before: String,
    pub options_after: String,
}

/// Makes `$1` a tmpfs holding binds of the host's top-level directories, then runs the
/// rest of the arguments with it as `/`, and says what was at its top before and after,
/// on stdout.
const STAND_IN_SCRIPT: &str = r#"
set -eu
root="$1"; shift
mount -t tmpfs -o mode=755 stand-in "$root"
for dir in /*; do
    [ -d "$dir" ] && [ ! -L "$dir" ] || continue
    mkdir "$root$dir"
    mount --rbind "$dir" "$root$dir"
done
for dir in /*; do
    [ -L "$dir" ] && ln -s "$(readlink "$dir")" "$root$dir"
done
options() { awk -v root="$root" '$5 == root { print $6 }' /proc/self/mountinfo | tail -n 1; }
echo "before: $(ls -A "$root" | tr '\n' ' ')"
echo "options-before: $(options)"
set +e
chroot "$root" "$@"
code=$?
echo "after: $(ls -A "$root" | tr '\n' ' ')"
echo "options-after: $(options)"
exit $code
"#;

//! `cargo xtask doctor`: is this machine ready for the kit? Each thing a chapter needs
//! is checked here, the way the kit itself would use it (a user namespace is made, an
//! overlay is mounted in one), and printed as `ok` or `missing` with the exact fix.
//! It exits non-zero when some chapter cannot run here. Book: "Preparing machines for
//! a class".

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Result};

use crate::rootfs;
use crate::workspace;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Missing: the chapters in `blocks` cannot run (or their tests cannot) until fixed.
    Missing,
    /// Not needed by any chapter's code, but a tool, a test or a figure wants it.
    Optional,
}

/// One thing checked.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub found: String,
    /// The exact fix, when it is not ok.
    pub fix: String,
    /// The chapters that cannot run without it.
    pub blocks: Vec<u32>,
}

impl Check {
    fn ok(name: &'static str, found: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            found: found.into(),
            fix: String::new(),
            blocks: Vec::new(),
        }
    }

    fn missing(
        name: &'static str,
        found: impl Into<String>,
        fix: &str,
        blocks: &[u32],
    ) -> Check {
        Check {
            name,
            status: Status::Missing,
            found: found.into(),
            fix: fix.to_string(),
            blocks: blocks.to_vec(),
        }
    }

    fn optional(name: &'static str, found: impl Into<String>, fix: &str) -> Check {
        Check {
            name,
            status: Status::Optional,
            found: found.into(),
            fix: fix.to_string(),
            blocks: Vec::new(),
        }
    }
}

/// Every chapter, by number.
const ALL: [u32; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

/// `cargo xtask doctor`.
pub fn doctor() -> Result<()> {
    let checks = run_checks();
    for check in &checks {
        println!("{}", line(check));
    }
    let blocked = blocked_chapters(&checks);
    println!();
    match blocked.is_empty() {
        true => {
            println!("every chapter can run here");
            Ok(())
        }
        false => {
            let runnable: Vec<String> = ALL
                .iter()
                .filter(|n| !blocked.contains(n))
                .map(u32::to_string)
                .collect();
            println!(
                "chapters that can run here: {}",
                if runnable.is_empty() {
                    "none".to_string()
                } else {
                    runnable.join(", ")
                }
            );
            let names: Vec<String> = blocked.iter().map(u32::to_string).collect();
            bail!(
                "chapters {} cannot run here until the fixes above are made",
                names.join(", ")
            )
        }
    }
}

/// One line for a check: `ok      name: found`, or with the fix after it.
pub fn line(check: &Check) -> String {
    let label = match check.status {
        Status::Ok => "ok",
        Status::Missing => "missing",
        Status::Optional => "optional",
    };
    match check.fix.is_empty() {
        true => format!("{label:<9}{}: {}", check.name, check.found),
        false => format!(
            "{label:<9}{}: {}\n         fix: {}",
            check.name, check.found, check.fix
        ),
    }
}

/// The chapters some missing thing blocks, in order.
pub fn blocked_chapters(checks: &[Check]) -> Vec<u32> {
    let mut blocked: Vec<u32> = checks
        .iter()
        .filter(|check| check.status == Status::Missing)
        .flat_map(|check| check.blocks.iter().copied())
        .collect();
    blocked.sort_unstable();
    blocked.dedup();
    blocked
}

/// Every check, in the order of the chapters that need them.
pub fn run_checks() -> Vec<Check> {
    let root = workspace::is_root();
    vec![
        kernel(),
        privilege(root),
        user_namespaces(),
        subordinate_ids(root),
        program("newuidmap", "uidmap", &[5]),
        cgroups(root),
        overlay_in_a_user_namespace(),
        root_filesystem(),
        for_tests("ip", "iproute2", "chapter 6 on"),
        for_tests("nft", "nftables", "chapter 6 on"),
        for_tests("skopeo", "skopeo", "chapters 9 and 10"),
        for_tests("docker-registry", "docker-registry", "chapter 10"),
        for_tests("umoci", "umoci", "chapter 9"),
        for_tests("podman", "podman", "chapter 9"),
        optional_program("mdbook", "cargo install --locked mdbook --version 0.5.4"),
        optional_program("qemu-system-x86_64", "apt-get install qemu-system-x86"),
        optional_program("crun", "apt-get install crun"),
        optional_program("runc", "apt-get install runc"),
    ]
}

/// The kernel: 5.6 or later (`openat2`, which the kit resolves paths in a root with);
/// overlay in a user namespace (5.11) has a check of its own.
fn kernel() -> Check {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    match kernel_version(release) {
        Some(version) if version >= (5, 11) => Check::ok("kernel", release),
        Some(version) if version >= (5, 6) => Check::ok(
            "kernel",
            format!(
                "{release} (an ordinary user's layers need 5.11: see the overlay line)"
            ),
        ),
        Some(_) => Check::missing(
            "kernel",
            format!("{release}, older than 5.6"),
            "use a newer distribution (Ubuntu 22.04, Debian 12, Fedora 38 or later)",
            &ALL,
        ),
        None => Check::missing("kernel", format!("{release:?}?"), "a Linux kernel", &ALL),
    }
}

/// `5.15.0-91-generic` → (5, 15).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Root, which chapters 1 to 4 need (from chapter 5 an ordinary user may run them).
fn privilege(root: bool) -> Check {
    match root {
        true => Check::ok("root", "yes: every chapter can run as root"),
        false => Check::missing(
            "root",
            "no: chapters 1 to 4 need root (from chapter 5 a user namespace will do)",
            "run as root: the README's \"Not root?\" shows cargo with sudo",
            &[1, 2, 3, 4],
        ),
    }
}

/// Can an ordinary process make a user namespace? Tried, by a child `unshare -U`.
fn user_namespaces() -> Check {
    let tried = Command::new("unshare")
        .args(["--user", "--map-root-user", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let restricted =
        fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
            .is_ok_and(|value| value.trim() == "1");
    match tried {
        Ok(status) if status.success() => Check::ok("user namespaces", "a user namespace can be made"),
        _ if restricted => Check::missing(
            "user namespaces",
            "AppArmor forbids them to unconfined programs (Ubuntu 23.10 and later)",
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (see \"Troubleshooting\" in the book)",
            &[5, 6, 7, 8, 9, 10],
        ),
        _ => Check::missing(
            "user namespaces",
            "unshare --user failed",
            "sysctl -w user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 on older Debian)",
            &[5, 6, 7, 8, 9, 10],
        ),
    }
}

/// A subordinate id range for the user who runs the kit (root: the tests' user).
fn subordinate_ids(root: bool) -> Check {
    let user = match root {
        true => "byoc-test".to_string(),
        false => own_name(),
    };
    let has =
        |file: &str| fs::read_to_string(file).is_ok_and(|text| has_range(&text, &user));
    match has("/etc/subuid") && has("/etc/subgid") {
        true => Check::ok(
            "subordinate ids",
            format!("{user} has a range in /etc/subuid and /etc/subgid"),
        ),
        false => Check::missing(
            "subordinate ids",
            format!("{user} has no range in /etc/subuid and /etc/subgid"),
            &format!(
                "usermod --add-subuids 200000-265535 --add-subgids 200000-265535 {user}"
            ),
            &[5],
        ),
    }
}

/// This process's user name, from `/etc/passwd` by its uid (`$USER` may be unset), or
/// the uid itself, which `/etc/subuid` may also use.
fn own_name() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() }.to_string();
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&uid.as_str()))
        .and_then(|fields| fields.first().map(|name| name.to_string()))
        .unwrap_or(uid)
}

/// Whether a `/etc/subuid` text gives `user` a range.
pub fn has_range(text: &str, user: &str) -> bool {
    text.lines().any(|line| {
        let mut fields = line.split(':');
        fields.next() == Some(user)
            && fields
                .next()
                .is_some_and(|start| start.parse::<u64>().is_ok())
            && fields
                .next()
                .is_some_and(|count| count.parse::<u64>().is_ok_and(|c| c > 0))
    })
}

/// The cgroup version, and for an ordinary user on v2, a delegated subtree.
fn cgroups(root: bool) -> Check {
    let version = workspace::cgroup_version().unwrap_or("unknown");
    if root || version == "v1" {
        return Check::ok(
            "cgroups",
            format!("{version} (chapter 7 says which one a run used)"),
        );
    }
    // An ordinary user on v2 needs a subtree of their own, with the controllers in it.
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path = own
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .unwrap_or("/");
    let dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let writable = nix_access_write(&dir);
    match writable {
        true => Check::ok("cgroups", format!("v2, and {} is yours", dir.display())),
        false => Check::missing(
            "cgroups",
            format!("v2, but {} is not yours: no delegation", dir.display()),
            "run in a delegated scope, e.g. systemd-run --user --scope -p Delegate=yes \
             cargo xtask check 7 (an ssh login lands in a scope without one), or run as root",
            &[7],
        ),
    }
}

fn nix_access_write(dir: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: access only reads the path it is given.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// Can overlay be mounted in a user namespace (chapter 8's rootless layers)? Tried.
fn overlay_in_a_user_namespace() -> Check {
    let Ok(dir) = tempfile::Builder::new().prefix("byoc-doctor-").tempdir() else {
        return Check::missing(
            "overlay",
            "no temp dir to try it in",
            "a writable /tmp",
            &[8, 9, 10],
        );
    };
    for name in ["lower", "upper", "work", "merged"] {
        let _ = fs::create_dir(dir.path().join(name));
    }
    let d = dir.path().display();
    let script = format!(
        "mount -t overlay overlay -o lowerdir={d}/lower,upperdir={d}/upper,workdir={d}/work {d}/merged"
    );
    let tried = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // Overlay leaves `work/work` with mode 0: its owner may open it up again, so the
    // temp dir can go (root could remove it anyway; an ordinary user could not).
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(
        dir.path().join("work/work"),
        fs::Permissions::from_mode(0o700),
    );
    match tried {
        Ok(status) if status.success() => Check::ok("overlay", "mounts in a user namespace"),
        _ => Check::missing(
            "overlay",
            format!("cannot be mounted in a user namespace on {d}'s file system"),
            "a kernel of 5.11 or later, and the data root on ext4, xfs or btrfs (book 8.7)",
            &[8, 9, 10],
        ),
    }
}

/// The busybox root filesystem every test runs in.
fn root_filesystem() -> Check {
    let path = rootfs::path();
    match path.join("bin/probe").exists() {
        true => Check::ok("root filesystem", path.display().to_string()),
        false => Check::missing(
            "root filesystem",
            format!("no {}", path.join("bin/probe").display()),
            "cargo xtask rootfs",
            &ALL,
        ),
    }
}

/// A program the kit runs, without which `chapters` cannot run.
fn program(name: &'static str, package: &str, chapters: &[u32]) -> Check {
    match where_is(name) {
        Some(path) => Check::ok(name, path),
        None => Check::missing(
            name,
            "not installed",
            &format!("apt-get install {package}"),
            chapters,
        ),
    }
}

/// A program only some chapters' tests use (to look at what the kit made, or to compare
/// with it): without it those tests say they did not run, and the chapters still do.
fn for_tests(name: &'static str, package: &str, chapters: &str) -> Check {
    match where_is(name) {
        Some(path) => Check::ok(name, path),
        None => Check::optional(
            name,
            format!("not installed: some tests of {chapters} will say they did not run"),
            &format!("apt-get install {package}"),
        ),
    }
}

/// A program the kit's tools use (the book, the VM, the bench), not a chapter.
fn optional_program(name: &'static str, fix: &str) -> Check {
    match where_is(name) {
        Some(path) => Check::ok(name, path),
        None => Check::optional(name, "not installed", fix),
    }
}

fn where_is(program: &str) -> Option<String> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_are_read_from_their_release_names() {
        assert_eq!(kernel_version("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("4.19.128"), Some((4, 19)));
        assert_eq!(kernel_version("garbage"), None);
    }

    #[test]
    fn a_range_is_found_only_for_its_user_and_only_when_it_is_one() {
        let text = "alice:100000:65536\nbob:200000:0\ncarol:x:5\n";
        assert!(has_range(text, "alice"));
        assert!(!has_range(text, "bob"), "an empty range");
        assert!(!has_range(text, "carol"), "not numbers");
        assert!(!has_range(text, "dave"));
    }

    #[test]
    fn only_missing_checks_block_chapters_and_each_chapter_is_named_once() {
        let checks = vec![
            Check::missing("a", "", "fix a", &[5, 6]),
            Check::missing("b", "", "fix b", &[6, 9]),
            Check::optional("c", "", "fix c"),
            Check::ok("d", "here"),
            // Only a missing thing blocks, whatever chapters a check names.
            Check {
                status: Status::Optional,
                blocks: vec![7],
                ..Check::optional("e", "", "fix e")
            },
        ];
        assert_eq!(blocked_chapters(&checks), [5, 6, 9]);
        assert_eq!(line(&checks[3]), "ok       d: here");
        assert!(
            line(&checks[0]).ends_with("fix: fix a"),
            "{}",
            line(&checks[0])
        );
    }

    #[test]
    fn on_this_machine_every_check_answers_and_agrees_with_what_is_here() {
        let checks = run_checks();
        let root = checks.iter().find(|c| c.name == "root").unwrap();
        assert_eq!(root.status == Status::Ok, workspace::is_root());
        let rootfs_check = checks.iter().find(|c| c.name == "root filesystem").unwrap();
        assert_eq!(
            rootfs_check.status == Status::Ok,
            rootfs::path().join("bin/probe").exists()
        );
        let sh = where_is("sh");
        assert!(sh.is_some(), "where_is finds sh");
        assert_eq!(where_is("no-such-program-byoc"), None);
        for check in &checks {
            assert!(
                check.status == Status::Ok || !check.fix.is_empty(),
                "{} is not ok and gives no fix",
                check.name
            );
        }
    }
}

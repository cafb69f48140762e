//! What a test needs from the machine (root, an ordinary user, user namespaces, cgroup
//! v2, ...), and how a test that cannot run here is recorded as not run, never as passed.

use std::path::{Path, PathBuf};

use crate::{cgroups, testing_solutions};

/// What a test may need from the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Root: chapters 1 to 4 use chroot, mounts and namespaces, which need it.
    Root,
    /// Root, for a test of what the runtime does when root runs it (from chapter 5, where
    /// an ordinary user's runs have tests of their own).
    RootRuns,
    /// Root, to make cgroups under the kit's parent and set their limits.
    RootForCgroups,
    /// An ordinary user to run as: see [`test_user`].
    UnprivilegedUser,
    /// A kernel that lets ordinary users make user namespaces.
    UserNamespaces,
    /// `newuidmap` and `newgidmap`, and a subordinate range for the test user in
    /// `/etc/subuid` and `/etc/subgid`.
    SubordinateIds,
    /// A kernel that can load modules at all (some are built without).
    LoadableModules,
    /// `ip` and `nft`, which network tests use to look at the namespaces they make,
    /// independently of the kit's own code.
    NetworkTools,
    /// Root, to make the network namespaces a network test runs the runtime in (its
    /// rootless runs too).
    NetworkNamespaces,
    /// Pure cgroup v2, the kind most learners' machines have: for what only v2 can do
    /// (hand a subtree to an ordinary user).
    CgroupV2,
    /// podman and its conmon, which drive the bonus chapter's runtime.
    Podman,
}

impl Need {
    /// Why the need is not met here, or `None` when it is.
    pub fn unmet(self) -> Option<String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let setting = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|text| text.trim().to_string())
        };
        match self {
            Need::Root if !root => Some(
                "needs root: chroot, mount and namespaces need privileges an ordinary \
                 user only has inside a user namespace (chapter 5)"
                    .to_string(),
            ),
            Need::RootRuns if !root => Some(
                "needs root: it checks what the runtime does when root runs it (your \
                 runs as an ordinary user are checked by the chapter's other tests)"
                    .to_string(),
            ),
            Need::RootForCgroups if !root => Some(root_for_cgroups()),
            Need::UnprivilegedUser if test_user().is_none() => {
                Some("needs an ordinary user to run as".to_string())
            }
            Need::UserNamespaces
                if setting("/proc/sys/kernel/unprivileged_userns_clone").as_deref()
                    == Some("0")
                    || setting("/proc/sys/user/max_user_namespaces").as_deref()
                        == Some("0") =>
            {
                Some(
                    "needs user namespaces for ordinary users, which this kernel forbids"
                        .to_string(),
                )
            }
            // Ubuntu 23.10 and later: AppArmor forbids them to programs without a profile
            // that allows them, as the kit's binaries are.
            Need::UserNamespaces
                if setting("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
                    .as_deref()
                    == Some("1") =>
            {
                Some(
                    "needs user namespaces for ordinary users, which AppArmor forbids here \
                     (kernel.apparmor_restrict_unprivileged_userns=1; see the book's \
                     Troubleshooting page)"
                        .to_string(),
                )
            }
            Need::SubordinateIds => {
                let Some(user) = test_user() else {
                    return Some("needs an ordinary user to run as".to_string());
                };
                let helpers = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"];
                if !helpers.iter().all(|helper| Path::new(helper).exists()) {
                    return Some(
                        "needs newuidmap and newgidmap (apt-get install uidmap)"
                            .to_string(),
                    );
                }
                let has_range = |table: &str| {
                    std::fs::read_to_string(table).is_ok_and(|text| {
                        text.lines()
                            .any(|line| line.split(':').next() == Some(&user.name))
                    })
                };
                (!has_range("/etc/subuid") || !has_range("/etc/subgid")).then(|| {
                    format!(
                        "needs a range for {} in /etc/subuid and /etc/subgid",
                        user.name
                    )
                })
            }
            Need::NetworkNamespaces if !root => Some(
                "needs root to make the network namespaces the test runs the runtime in \
                 (the test never uses your machine's own network)"
                    .to_string(),
            ),
            Need::NetworkTools => {
                let tools = ["ip", "nft"];
                let on_path = |tool: &str| {
                    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                        .iter()
                        .any(|dir| Path::new(dir).join(tool).exists())
                };
                let missing: Vec<&str> =
                    tools.into_iter().filter(|tool| !on_path(tool)).collect();
                (!missing.is_empty()).then(|| {
                    format!(
                        "needs {} to look at the network (apt-get install iproute2 nftables)",
                        missing.join(", ")
                    )
                })
            }
            Need::Podman
                if !Path::new("/usr/bin/podman").exists()
                    || !["/usr/bin/conmon", "/usr/libexec/podman/conmon"]
                        .iter()
                        .any(|path| Path::new(path).exists()) =>
            {
                Some("needs podman and conmon (apt-get install podman)".to_string())
            }
            Need::CgroupV2 if cgroups::version() != "v2" => Some(format!(
                "needs pure cgroup v2, and this machine's memory, cpu and pids \
                 controllers are v1: `{}` runs it on pure v2, in a VM",
                cgroup_vm_command()
            )),
            Need::LoadableModules if !Path::new("/proc/modules").exists() => Some(
                "needs a kernel that loads modules; this one was built without"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// Why a cgroup test needs root here: on v1 nothing can hand controllers to an ordinary
/// user at all, so the way to check one's own code is the v2 VM.
fn root_for_cgroups() -> String {
    match cgroups::version() {
        "v2" => "needs root to make cgroups and set their limits (an ordinary user only \
                 gets limits in a cgroup delegated to it: book 7.6)"
            .to_string(),
        _ => format!(
            "needs root: this machine's memory, cpu and pids controllers are cgroup v1, \
             which cannot be handed to an ordinary user (`{}` runs the tests on v2, in a VM)",
            cgroup_vm_command()
        ),
    }
}

/// The command that runs the cgroup tests on pure v2, for the binaries being tested.
fn cgroup_vm_command() -> &'static str {
    match testing_solutions() {
        true => "cargo xtask test --cgroup-vm",
        false => "cargo xtask test --impl chapters --chapter 7 --cgroup-vm",
    }
}

/// The ordinary user the rootless tests run as.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The user rootless tests run as. As root: `byoc-test` if the machine has it (`.ci/run`
/// makes it, with a subordinate range), else `nobody`. As an ordinary user: yourself.
pub fn test_user() -> Option<TestUser> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let users: Vec<TestUser> = passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(TestUser {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
            })
        })
        .collect();
    // SAFETY: getuid has no preconditions and cannot fail.
    let me = unsafe { libc::getuid() };
    if me != 0 {
        return users.into_iter().find(|user| user.uid == me);
    }
    let by_name = |name: &str| users.iter().find(|user| user.name == name).cloned();
    by_name("byoc-test").or_else(|| by_name("nobody"))
}

/// Does this machine meet every need? If not, the test is recorded as not run, with the
/// reason, and should return at once: it is never counted as passed.
pub fn meets(needs: &[Need]) -> bool {
    match needs.iter().find_map(|need| need.unmet()) {
        None => true,
        Some(reason) => {
            not_run(&reason);
            false
        }
    }
}

/// Records a figure the current test measured (a CPU share, say), which `cargo xtask
/// test` prints after the tests: a figure is shown, and asserted only within a wide band.
pub fn report_figure(text: &str) {
    write_line_for_this_test("BYOC_FIGURES_DIR", "figure", text);
}

/// Records that the current test did not run, and why. `cargo xtask test` sets
/// `BYOC_NOT_RUN_DIR`, reads one line from each file there, and counts those tests as
/// "not run" instead of "passed". Run without it (plain `cargo test`), the reason is
/// printed.
pub fn not_run(reason: &str) {
    write_line_for_this_test("BYOC_NOT_RUN_DIR", "not run", reason);
}

/// Writes `<test binary>::<test name>: <text>` into a file of its own in the directory
/// that `variable` names, or prints it after `label` where there is none (plain `cargo
/// test`).
fn write_line_for_this_test(variable: &str, label: &str, text: &str) {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|path| Some(path.file_stem()?.to_str()?.to_string()))
        .map(|stem| stem.split('-').next().unwrap_or_default().to_string())
        .unwrap_or_else(|| "tests".to_string());
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string();
    let line = format!("{binary}::{test}: {text}");
    match std::env::var_os(variable) {
        Some(dir) => {
            let file =
                PathBuf::from(dir).join(format!("{binary}-{test}").replace("::", "-"));
            std::fs::write(&file, format!("{line}\n")).unwrap_or_else(|error| {
                panic!("cannot record {line:?} in {file:?}: {error}")
            });
        }
        None => eprintln!("{label}: {line}"),
    }
}

// solutions/05-user-namespace/src/userns.rs without its exercise markers, made by `cargo xtask gen` for the book's folded answers.
//! The user namespace: the container's own user and group ids, and root's powers over
//! them alone. Book: sections 5.1 to 5.4.
//!
//! The child is cloned into a new user namespace with the other namespaces. Its ids mean
//! nothing there until the parent writes its maps; meanwhile it waits on the start-up
//! channel. Then it becomes root (uid 0) of its namespace: it has every capability there,
//! and none on the host.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use nix::unistd::{self, Gid, Pid, Uid};

use crate::devices::Device;
use crate::idmap::{self, Allowed, IdMap};
use crate::spec::{User, UserNamespace};
use crate::{mounts, trace};

/// Which of the two maps: they live in different files and have different helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    User,
    Group,
}

impl Ids {
    fn map_file(self) -> &'static str {
        match self {
            Ids::User => "uid_map",
            Ids::Group => "gid_map",
        }
    }

    /// The option that gives a map of this kind.
    fn flag(self) -> &'static str {
        match self {
            Ids::User => "--uid-map",
            Ids::Group => "--gid-map",
        }
    }

    fn helper(self) -> &'static str {
        match self {
            Ids::User => "newuidmap",
            Ids::Group => "newgidmap",
        }
    }

    fn subordinate_table(self) -> &'static str {
        match self {
            Ids::User => "/etc/subuid",
            Ids::Group => "/etc/subgid",
        }
    }

    /// The caller's own id of this kind.
    fn own(self) -> u32 {
        match self {
            Ids::User => Uid::current().as_raw(),
            Ids::Group => Gid::current().as_raw(),
        }
    }
}

/// What the caller may map: `None` for the machine's root, who may map any id. Root of a
/// user namespace (a rootless container, a CI job in one) may map only what its own
/// namespace holds, so it counts as an ordinary user whose own id is 0; it has no
/// subordinate range, as the helper's setuid does not reach past its namespace.
pub fn allowed(ids: Ids) -> Option<Allowed> {
    if is_host_root() {
        return None;
    }
    if Uid::effective().is_root() {
        return Some(Allowed {
            own: ids.own(),
            subordinate: None,
        });
    }
    let name = unistd::User::from_uid(Uid::current())
        .ok()
        .flatten()
        .map(|user| user.name);
    let subordinate = fs::read_to_string(ids.subordinate_table())
        .ok()
        .and_then(|table| {
            idmap::subordinate_range(&table, name.as_deref(), Uid::current().as_raw())
        })
        // The range is no use without the helper that may write it.
        .filter(|_| helper_path(ids).is_some());
    Some(Allowed {
        own: ids.own(),
        subordinate,
    })
}

/// The maps for a run: the ones given, or for an ordinary user the rootless default.
pub fn maps_for(ids: Ids, given: &[IdMap]) -> Result<Vec<IdMap>> {
    let allowed = allowed(ids);
    let maps = match (&allowed, given.is_empty()) {
        (_, false) => given.to_vec(),
        (Some(allowed), true) => {
            idmap::rootless_default(allowed.own, allowed.subordinate)
        }
        // Root, with --userns and no map: its subordinate range if it has one, else 65536
        // ids from 100000, as podman's and docker's examples use.
        (None, true) => vec![IdMap {
            container: 0,
            host: 100_000,
            size: 65536,
        }],
    };
    let kind = ids.map_file().trim_end_matches("_map");
    idmap::check_maps(kind, &maps, allowed.as_ref())?;
    Ok(maps)
}

// ANCHOR: options
/// `run`'s options for the user namespace. Later chapters' `run` flatten this group, so
/// the options and their checks live here, beside the lesson.
#[derive(Debug, Clone, clap::Args)]
pub struct UsernsArgs {
    /// A user namespace even for the machine's root (anyone else always gets one).
    #[arg(long)]
    pub userns: bool,

    /// Container uids CONTAINER.. are host uids HOST.., SIZE of them (repeatable).
    #[arg(long = "uid-map", value_name = "CONTAINER:HOST:SIZE")]
    pub uid_maps: Vec<IdMap>,

    /// Container gids CONTAINER.. are host gids HOST.., SIZE of them (repeatable).
    #[arg(long = "gid-map", value_name = "CONTAINER:HOST:SIZE")]
    pub gid_maps: Vec<IdMap>,
}

impl UsernsArgs {
    /// The spec's user namespace, checked: one when asked for, when maps are given, and
    /// always for anyone but the machine's root (root of a user namespace may not make
    /// device nodes either); none for the machine's root that asks for none.
    pub fn user_namespace(&self) -> Result<Option<UserNamespace>> {
        let wanted = self.userns
            || !self.uid_maps.is_empty()
            || !self.gid_maps.is_empty()
            || !is_host_root();
        match wanted {
            true => namespace_for(&self.uid_maps, &self.gid_maps).map(Some),
            false => Ok(None),
        }
    }
}
// ANCHOR_END: options

/// Whether this process is the machine's root, not only root of a user namespace (as in a
/// rootless container, or a CI job inside one): only the machine's root may add a bridge
/// and links to the host's network, or make cgroups outside a delegated subtree. The
/// first user namespace maps all ids to themselves.
pub fn is_host_root() -> bool {
    let whole_map = fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| {
        map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
    });
    Uid::effective().is_root() && whole_map
}

/// Refuses a user (`-u`, or an image's `User`) that the container's maps do not hold: the
/// kernel would refuse its `setuid` with `EINVAL` only at the very end, after everything
/// is made. Without a user namespace, every id is the host's own, and any will do.
pub fn check_user_is_mapped(
    user: &User,
    namespace: Option<&UserNamespace>,
) -> Result<()> {
    let Some(namespace) = namespace else {
        return Ok(());
    };
    let holds = |maps: &[IdMap], id: u32| {
        maps.iter().any(|map| {
            (map.container..map.container.saturating_add(map.size)).contains(&id)
        })
    };
    if !holds(&namespace.uid_mappings, user.uid) {
        bail!(
            "user {} is not in the container's uid map: inside a user namespace only \
             mapped ids exist (map it with --uid-map, or run as an id that is; book 5.1)",
            user.uid
        );
    }
    let groups = std::iter::once(&user.gid).chain(&user.additional_gids);
    if let Some(gid) = groups
        .copied()
        .find(|gid| !holds(&namespace.gid_mappings, *gid))
    {
        bail!(
            "group {gid} is not in the container's gid map: inside a user namespace only \
             mapped ids exist (map it with --gid-map, or use a group that is; book 5.1)"
        );
    }
    Ok(())
}

/// The maps of a run, checked: the ones given (one kind given alone stands for both, as
/// the map of the other kind too), or the defaults. The container's first process is root
/// in it, so both maps must cover id 0.
pub fn namespace_for(uid_maps: &[IdMap], gid_maps: &[IdMap]) -> Result<UserNamespace> {
    check_root_is_mapped(Ids::User, uid_maps)?;
    check_root_is_mapped(Ids::Group, gid_maps)?;
    let (uids, gids) = match (uid_maps.is_empty(), gid_maps.is_empty()) {
        (false, true) => (uid_maps, uid_maps),
        (true, false) => (gid_maps, gid_maps),
        _ => (uid_maps, gid_maps),
    };
    let uid_mappings = maps_for(Ids::User, uids).map_err(|error| {
        explain_reuse(error, Ids::User, uid_maps.is_empty(), gid_maps)
    })?;
    let gid_mappings = maps_for(Ids::Group, gids).map_err(|error| {
        explain_reuse(error, Ids::Group, gid_maps.is_empty(), uid_maps)
    })?;
    Ok(UserNamespace {
        uid_mappings,
        gid_mappings,
    })
}

/// A map refused for the kind it was not given for says so, and what to give instead.
fn explain_reuse(
    error: anyhow::Error,
    ids: Ids,
    missing: bool,
    other: &[IdMap],
) -> anyhow::Error {
    let (Some(reused), true) = (other.first(), missing) else {
        return error;
    };
    let (flag, other_flag) = match ids {
        Ids::User => (Ids::User.flag(), Ids::Group.flag()),
        Ids::Group => (Ids::Group.flag(), Ids::User.flag()),
    };
    let own = ids.own();
    let fix = format!("{}:{own}:1", reused.container);
    let reused = as_option(reused);
    error.context(format!(
        "no {flag} was given, so {other_flag} {reused} stands for it too (give {flag} {fix})"
    ))
}

/// Refuses maps given that leave the container's root unmapped: its first process runs as
/// id 0. (None given: the defaults map it.)
fn check_root_is_mapped(ids: Ids, maps: &[IdMap]) -> Result<()> {
    if maps.is_empty() || maps.iter().any(|map| map.container == 0) {
        return Ok(());
    }
    let flag = ids.flag();
    let given: Vec<String> = maps.iter().map(as_option).collect();
    bail!(
        "{flag} {} leaves the container's root (id 0) unmapped, and the container's \
         first process runs as root: map id 0 too (for example {flag} 0:100000:65536)",
        given.join(",")
    )
}

/// A map as the command line writes it: `CONTAINER:HOST:SIZE`.
fn as_option(map: &IdMap) -> String {
    format!("{}:{}:{}", map.container, map.host, map.size)
}

// ANCHOR: write_maps
/// Writes the child's uid and gid maps, from the parent, while the child waits. An
/// ordinary user's gid map needs `setgroups` denied first (book 5.1).
pub fn write_maps(child: Pid, uid_maps: &[IdMap], gid_maps: &[IdMap]) -> Result<()> {
    write_map(child, Ids::User, uid_maps)?;
    if needs_setgroups_denied(gid_maps) {
        write_proc_file(child, "setgroups", "deny")?;
    }
    write_map(child, Ids::Group, gid_maps)
}
// ANCHOR_END: write_maps

/// Writes one map: directly when this process may (root, or a single range of its own
/// id), else through the set-user-ID helper `newuidmap` or `newgidmap`, which checks
/// `/etc/subuid` or `/etc/subgid` and writes the map for us.
pub fn write_map(child: Pid, ids: Ids, maps: &[IdMap]) -> Result<()> {
    if may_write_directly(ids, maps) {
        let text: Vec<String> = maps.iter().map(IdMap::to_string).collect();
        return write_proc_file(child, ids.map_file(), &text.join("\n"));
    }
    run_helper(child, ids, maps)
}

/// Root may write any map; an ordinary user only one range, of size 1, of its own id.
fn may_write_directly(ids: Ids, maps: &[IdMap]) -> bool {
    let own_only = matches!(maps, [only] if only.host == ids.own() && only.size == 1);
    Uid::effective().is_root() || own_only
}

/// An ordinary user writing its own gid map must deny `setgroups` first. (The helper, and
/// root, need not: they may grant groups anyway.)
pub fn needs_setgroups_denied(gid_maps: &[IdMap]) -> bool {
    !Uid::effective().is_root() && may_write_directly(Ids::Group, gid_maps)
}

/// Writes `text` to `/proc/PID/NAME`, narrated as the `write` it is.
pub fn write_proc_file(child: Pid, name: &str, text: &str) -> Result<()> {
    let path = format!("/proc/{child}/{name}");
    let result = fs::write(&path, text)
        .map_err(|error| Errno::from_raw(error.raw_os_error().unwrap_or(0)));
    let call = format_args!("write({path:?}, {text:?})");
    trace::syscall(call, result).map_err(|error| explain_map_error(error, name))?;
    Ok(())
}

fn explain_map_error(error: trace::SyscallError, name: &str) -> anyhow::Error {
    let why = match error.errno {
        Errno::EPERM if name.ends_with("map") => {
            " (this process may not write that map: an ordinary user may map only its \
             own id, unless newuidmap and newgidmap are installed and /etc/subuid and \
             /etc/subgid give it a range; see book 5.4)"
        }
        _ => "",
    };
    anyhow::anyhow!("{error}{why}")
}

/// Runs `newuidmap PID C H S [C H S ...]` (or `newgidmap`).
fn run_helper(child: Pid, ids: Ids, maps: &[IdMap]) -> Result<()> {
    let Some(helper) = helper_path(ids) else {
        bail!(
            "{} is not installed, and without it an ordinary user may map only its own \
             id: install it (`apt-get install uidmap`), or map one id, e.g. --uid-map \
             0:{}:1 (see book 5.4)",
            ids.helper(),
            ids.own()
        );
    };
    let mut command = Command::new(&helper);
    command.arg(child.to_string());
    for map in maps {
        command.args([map.container, map.host, map.size].map(|n| n.to_string()));
    }
    trace::announce(format_args!("run {command:?}"));
    let output = command
        .output()
        .with_context(|| format!("cannot run {helper:?}"))?;
    if !output.status.success() {
        bail!(
            "{} refused the map: {} (is there a range for you in {}? see book 5.4)",
            ids.helper(),
            String::from_utf8_lossy(&output.stderr).trim(),
            ids.subordinate_table()
        );
    }
    Ok(())
}

/// Where `newuidmap` or `newgidmap` is, if it is installed.
fn helper_path(ids: Ids) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(ids.helper()))
        .find(|path| path.exists())
}

// ANCHOR: become_root
/// In the child, once its maps are written: becomes uid 0 and gid 0 of its namespace,
/// which are ids of the caller's on the host.
pub fn become_root() -> Result<()> {
    let root_group = Gid::from_raw(0);
    let call = format_args!("setresgid(0, 0, 0)");
    trace::syscall(call, unistd::setresgid(root_group, root_group, root_group))?;
    let root = Uid::from_raw(0);
    let call = format_args!("setresuid(0, 0, 0)");
    trace::syscall(call, unistd::setresuid(root, root, root))?;
    Ok(())
}
// ANCHOR_END: become_root

/// Drops the supplementary groups the child inherited from the caller (host groups, which
/// show as 65534 inside), where the namespace allows `setgroups` at all.
pub fn drop_supplementary_groups() -> Result<()> {
    let allowed = fs::read_to_string("/proc/self/setgroups").unwrap_or_default();
    if allowed.trim() == "allow" {
        trace::syscall(format_args!("setgroups(0, [])"), unistd::setgroups(&[]))?;
    }
    Ok(())
}

// ANCHOR: bind_host_device
/// Puts the host's device file for `device` at `path`: a user namespace may not `mknod`,
/// so an empty file is made and the host's device is bind-mounted onto it, as rootless
/// podman does. It plugs into chapter 2's `RootPlan` as its `make_device`.
pub fn bind_host_device(path: &Path, device: &Device) -> Result<()> {
    let mode = Mode::from_bits_truncate(0o666);
    let flags = OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    let created = trace::syscall(
        format_args!("open({path:?}, O_CREAT|O_WRONLY, 0666)"),
        fcntl::open(path, flags, mode),
    )?;
    drop(created);
    let host = Path::new("/dev").join(device.name);
    mounts::mount(Some(&host), path, None, MsFlags::MS_BIND, None)
}
// ANCHOR_END: bind_host_device

/// A refused `clone` (or, under AppArmor's restriction, a refused first mount) says why,
/// when a kernel setting is the reason.
pub fn explain_clone_failure(error: anyhow::Error) -> anyhow::Error {
    match explain_refusal() {
        Some(why) => error.context(why),
        None => error,
    }
}

/// A root filesystem that the container's root (a host user, in a user namespace) may not
/// enter is refused with EACCES by the first mount: say who must reach it.
pub fn explain_unreachable_root(
    error: anyhow::Error,
    root: &Path,
    user_namespace: Option<&UserNamespace>,
) -> anyhow::Error {
    let denied = error
        .chain()
        .any(|cause| cause.to_string().contains("EACCES"));
    match user_namespace {
        Some(user) if denied => {
            let host_root = user.uid_mappings.iter().find(|map| map.container == 0);
            let who = host_root.map_or("an unmapped user".to_string(), |map| {
                format!("host uid {}", map.host)
            });
            error.context(format!(
                "the container's root is {who}, which may not reach the root filesystem \
                 {:?}: put it where that user can enter every directory on its path \
                 (see book 5, \"New options\")",
                root
            ))
        }
        _ => error,
    }
}

// ANCHOR: explain
/// Why the kernel refused a new user namespace, from the settings that can forbid one,
/// with the fix. `None` when none of them is set.
pub fn explain_refusal() -> Option<String> {
    explain_refusal_from(Path::new("/proc/sys"))
}

/// The same, reading the settings under `sysctl` (`/proc/sys`; a test gives another).
pub fn explain_refusal_from(sysctl: &Path) -> Option<String> {
    let setting = |name: &str| {
        fs::read_to_string(sysctl.join(name))
            .ok()
            .map(|text| text.trim().to_string())
    };
    if setting("kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some(
            "this kernel forbids user namespaces to ordinary users \
             (kernel.unprivileged_userns_clone = 0; as root: sysctl -w \
             kernel.unprivileged_userns_clone=1; see book 5.4)"
                .to_string(),
        );
    }
    if setting("user/max_user_namespaces").as_deref() == Some("0") {
        return Some(
            "user namespaces are turned off (user.max_user_namespaces = 0; as root: \
             sysctl -w user.max_user_namespaces=15000; see book 5.4)"
                .to_string(),
        );
    }
    if setting("kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some(
            "AppArmor restricts user namespaces for ordinary users \
             (kernel.apparmor_restrict_unprivileged_userns = 1, as on Ubuntu 24.04; as \
             root: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give the \
             runtime an AppArmor profile that allows userns; see book 5.4)"
                .to_string(),
        );
    }
    None
}
// ANCHOR_END: explain

#[cfg(test)]
mod tests {
    use super::{check_user_is_mapped, explain_refusal_from, IdMap, User, UserNamespace};

    #[test]
    fn a_user_outside_the_maps_is_refused() {
        let map = |container, host, size| IdMap {
            container,
            host,
            size,
        };
        let namespace = UserNamespace {
            uid_mappings: vec![map(0, 1000, 1), map(1, 100_000, 999)],
            gid_mappings: vec![map(0, 1000, 1)],
        };
        let user = |uid, gid, additional_gids| User {
            uid,
            gid,
            additional_gids,
        };
        let check = |user: User| check_user_is_mapped(&user, Some(&namespace));
        assert!(check(user(0, 0, vec![])).is_ok());
        assert!(check(user(999, 0, vec![])).is_ok());
        let error = check(user(1000, 0, vec![])).unwrap_err().to_string();
        assert!(
            error.contains("user 1000 is not in the container's uid map"),
            "{error}"
        );
        let error = check(user(0, 0, vec![5])).unwrap_err().to_string();
        assert!(
            error.contains("group 5 is not in the container's gid map"),
            "{error}"
        );
        assert!(check_user_is_mapped(&user(1000, 5, vec![]), None).is_ok());
    }

    /// These settings exist only on some kernels (Debian's older ones, Ubuntu's), so the
    /// test lays out a `/proc/sys` of its own with one set as it would be there.
    fn explanation(setting: &str, value: &str) -> Option<String> {
        // One directory per call: tests run at the same time.
        static CALLS: std::sync::atomic::AtomicUsize =
            std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("byoc-sysctl-{}-{call}", std::process::id());
        let sysctl = std::env::temp_dir().join(name);
        let file = sysctl.join(setting);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, format!("{value}\n")).unwrap();
        let explained = explain_refusal_from(&sysctl);
        std::fs::remove_dir_all(&sysctl).unwrap();
        explained
    }

    #[test]
    fn each_setting_that_forbids_user_namespaces_is_named_with_its_fix() {
        for (setting, value, fix) in [
            (
                "kernel/unprivileged_userns_clone",
                "0",
                "kernel.unprivileged_userns_clone=1",
            ),
            (
                "user/max_user_namespaces",
                "0",
                "user.max_user_namespaces=15000",
            ),
            (
                "kernel/apparmor_restrict_unprivileged_userns",
                "1",
                "apparmor_restrict_unprivileged_userns=0",
            ),
        ] {
            let text = explanation(setting, value).unwrap_or_default();
            assert!(
                text.contains(fix) && text.contains("book 5.4"),
                "{setting}: {text:?}"
            );
        }
    }

    #[test]
    fn settings_that_allow_user_namespaces_explain_nothing() {
        assert_eq!(explanation("kernel/unprivileged_userns_clone", "1"), None);
        assert_eq!(explanation("user/max_user_namespaces", "15000"), None);
        assert_eq!(
            explanation("kernel/apparmor_restrict_unprivileged_userns", "0"),
            None
        );
    }
}

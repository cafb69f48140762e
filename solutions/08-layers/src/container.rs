//! A container that outlives its process: its own directory under the data root,
//! `containers/ID/`, with its state and, on layers, its overlay's upper, work and merged
//! directories; and its name, `names/NAME`. Kept when the container ends, unless it was
//! started with `--rm`; removed with all it holds if the start fails. Book: section 8.4.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use nix::unistd::Uid;

use crate::dataroot;
use crate::overlay::OverlayDirs;
use crate::records;
use crate::spec::User;
use crate::state::{self, Ended, State, Status};
use crate::userns::{self, Ids};
use crate::volumes::Bind;
use crate::{process, spawn};

// ANCHOR: options
/// `run`'s options for the container as a thing that outlives its process.
#[derive(Debug, Clone, clap::Args)]
pub struct ContainerArgs {
    /// Give the container a name, to use in place of its id (`ps`, `diff`, `rm`).
    // A name that starts with '-' is taken as a name, so the check can say what is
    // wrong with it.
    #[arg(long, value_name = "NAME", value_parser = parse_name, allow_hyphen_values = true)]
    pub name: Option<String>,

    /// Remove the container, and what it wrote, when it ends.
    #[arg(long)]
    pub rm: bool,

    /// The directory the command starts in, made if the layers lack it.
    #[arg(short = 'w', long = "workdir", value_name = "DIR", value_parser = parse_workdir)]
    pub workdir: Option<PathBuf>,

    /// Who the command runs as inside the container: UID or UID:GID (group 0 if not
    /// given, as docker does).
    #[arg(short = 'u', long = "user", value_name = "UID[:GID]", value_parser = parse_user)]
    pub user: Option<User>,
}
// ANCHOR_END: options

fn parse_workdir(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    let plain = path
        .components()
        .all(|part| !matches!(part, std::path::Component::ParentDir));
    match path.is_absolute() && plain {
        true => Ok(path),
        false => Err(format!("{text:?} is not an absolute path without '..'")),
    }
}

fn parse_user(text: &str) -> Result<User, String> {
    let number = |word: &str| {
        word.parse::<u32>().map_err(|_| {
            format!(
                "{text:?} is not UID or UID:GID: the kit takes numbers (a name would need \
                 the container's /etc/passwd)"
            )
        })
    };
    let (uid, gid) = match text.split_once(':') {
        Some((uid, gid)) => (number(uid)?, number(gid)?),
        None => (number(text)?, 0),
    };
    Ok(User {
        uid,
        gid,
        additional_gids: Vec::new(),
    })
}

fn parse_name(text: &str) -> Result<String, String> {
    state::check_name(text).map(str::to_string)
}

/// `containers/ID/`, and the name that leads to it. Dropped before [`started`] or with
/// `--rm`, it removes both; otherwise they stay for `ps`, `diff` and `rm`.
///
/// [`started`]: ContainerDir::started
#[derive(Debug)]
pub struct ContainerDir {
    path: PathBuf,
    name: Option<PathBuf>,
    /// The overlay's directories, when the root is layers.
    pub overlay: Option<OverlayDirs>,
    state: State,
    keep: bool,
}

impl ContainerDir {
    /// Claims the name, if one was asked for, then makes the container's directory with
    /// its state, and the overlay's empty directories when `on_layers`.
    pub fn make(
        data_root: &Path,
        state: State,
        remove_at_end: bool,
        on_layers: bool,
    ) -> Result<ContainerDir> {
        records::check_id(&state.id).map_err(anyhow::Error::msg)?;
        reclaim_dead(data_root);
        let name = match &state.name {
            Some(name) => Some(claim_name(data_root, name, &state.id)?),
            None => None,
        };
        let path = dataroot::container(data_root, &state.id);
        let mut made = ContainerDir {
            overlay: on_layers.then(|| OverlayDirs::inside(&path)),
            path,
            name,
            state,
            keep: false,
        };
        made.state.remove_at_end = remove_at_end;
        records::make_dir(&made.path)?;
        made.state.write(&made.path)?;
        if let Some(dirs) = &made.overlay {
            for dir in [&dirs.upper, &dirs.work, &dirs.merged] {
                fs::create_dir(dir).with_context(|| format!("cannot make {dir:?}"))?;
            }
        }
        Ok(made)
    }

    /// The named volumes among `binds` are the container's: its state says so.
    pub fn uses_volumes(&mut self, binds: &[Bind]) -> Result<()> {
        self.state.volumes = binds.iter().filter_map(|bind| bind.name.clone()).collect();
        self.state.write(&self.path)
    }

    /// The container runs: from now on it stays when the runtime ends, unless `--rm`.
    pub fn started(&mut self) {
        self.keep = !self.state.remove_at_end;
    }

    /// The container has ended with `code`: its state says so.
    pub fn ended(&mut self, code: u8) -> Result<()> {
        self.state.status = Status::Exited(Some(Ended::now(code)));
        self.state.write(&self.path)
    }
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(error) = remove_tree(&self.path) {
            eprintln!("byoc: cannot remove {:?}: {error:#}", self.path);
        }
        if let Some(name) = &self.name {
            release_name(name);
        }
    }
}

// ANCHOR: claim_name
/// Takes `name` for container `id`: `names/NAME` holds the id. The file is written
/// whole under a name of its own, then hard-linked to `names/NAME`: the kernel makes a
/// link only where there is nothing yet, so of two starts that want one name, one wins
/// and the other is told, and nobody ever reads half a file.
fn claim_name(data_root: &Path, name: &str, id: &str) -> Result<PathBuf> {
    let names = dataroot::names(data_root);
    records::make_dir(&names)?;
    let path = names.join(name);
    let mine = names.join(format!(".{name}.{id}.new"));
    records::write(&mine, &format!("{id}\n"))?;
    let linked = fs::hard_link(&mine, &path);
    let _ = fs::remove_file(&mine);
    match linked {
        Ok(()) => Ok(path),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "the name {name:?} is in use by container {}: remove that container \
                 (rm {name}), or choose another name",
                holder.trim()
            )
        }
        Err(error) => Err(error).with_context(|| format!("cannot make {path:?}")),
    }
}
// ANCHOR_END: claim_name

fn release_name(path: &Path) {
    if let Err(error) = fs::remove_file(path) {
        if error.kind() != ErrorKind::NotFound {
            eprintln!("byoc: cannot remove {path:?}: {error}");
        }
    }
}

/// The id of the container `name_or_id` names: an id (12 hex digits) of a container
/// that has a directory, or a name in `names/`, whose id is checked as read back.
pub fn find(data_root: &Path, name_or_id: &str) -> Result<String> {
    if records::is_id(name_or_id) && dataroot::container(data_root, name_or_id).is_dir() {
        return Ok(name_or_id.to_string());
    }
    let name = state::check_name(name_or_id).map_err(|_| {
        anyhow::anyhow!("no container {name_or_id:?}: neither an id nor a name")
    })?;
    let path = dataroot::names(data_root).join(name);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            bail!("no container is called {name:?} (ps -a lists them all)")
        }
        Err(error) => return Err(error).with_context(|| format!("cannot read {path:?}")),
    };
    let id = text.trim();
    records::check_id(id).map_err(|why| anyhow::anyhow!("{path:?}: {why}"))?;
    Ok(id.to_string())
}

/// Removes container `id`'s directory and its name. Nothing else: the name file is
/// removed only if it still leads to this id.
pub fn remove(data_root: &Path, id: &str, name: Option<&str>) -> Result<()> {
    records::check_id(id).map_err(anyhow::Error::msg)?;
    remove_tree(&dataroot::container(data_root, id))?;
    if let Some(name) = name {
        let path = dataroot::names(data_root).join(name);
        if fs::read_to_string(&path).is_ok_and(|text| text.trim() == id) {
            release_name(&path);
        }
    }
    Ok(())
}

/// Every container's state under the data root, in no order. A directory that is not a
/// container's, or whose state cannot be read, is named on stderr and left as it is.
pub fn all(data_root: &Path) -> Vec<State> {
    let Ok(entries) = fs::read_dir(dataroot::containers(data_root)) else {
        return Vec::new();
    };
    let mut states = Vec::new();
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().to_string();
        if records::check_id(&id).is_err() {
            continue;
        }
        // A start makes the directory, then writes the state into it: a directory with
        // no state yet is one being made, not a stranger's.
        if !entry.path().join("state").exists() {
            continue;
        }
        match State::read(&entry.path()) {
            Ok(state) => states.push(state),
            Err(error) => records::ignored(&entry.path(), "state", &format!("{error:#}")),
        }
    }
    states
}

/// Containers started with `--rm` whose runtime died before it could remove them (killed
/// with SIGKILL): the next start removes them.
fn reclaim_dead(data_root: &Path) {
    for state in all(data_root) {
        if state.remove_at_end && matches!(state.status_now(), Status::Exited(_)) {
            let name = state.name.as_deref();
            if let Err(error) = remove(data_root, &state.id, name) {
                eprintln!("byoc: cannot remove container {}: {error:#}", state.id);
            }
        }
    }
}

// ANCHOR: remove_tree
/// Removes `dir` and all it holds, never following a symlink out of it (the container
/// made them: a link to the host's `/` in the upper is only a link). A directory the
/// container closed to everyone (`chmod 000`), and the kernel's own `work/work`, which
/// it makes with mode 0, are opened again first when they are ours, as an ordinary
/// user may not otherwise look inside them. What a rootless container gave to the other
/// ids of its user namespace (`chown 1000`: a subordinate id on the host) is not the
/// user's at all: that is removed from a user namespace with the same ids, as the
/// container's root.
pub fn remove_tree(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(_) => {
            open_closed_directories(dir)?;
            match fs::remove_dir_all(dir) {
                Err(error) if !userns::is_host_root() && is_denied(&error) => {
                    remove_as_the_containers_root(dir)
                }
                result => result.with_context(|| format!("cannot remove {dir:?}")),
            }
        }
    }
}
// ANCHOR_END: remove_tree

fn is_denied(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::PermissionDenied)
        || error.raw_os_error() == Some(libc::EPERM)
}

// ANCHOR: remove_as_the_containers_root
/// Removes `dir` in a new user namespace with the ids a rootless container gets (the
/// user's own id as 0, and its subordinate range): its root there may remove files of
/// any of those ids, as the container's root could (`podman unshare` does the same).
fn remove_as_the_containers_root(dir: &Path) -> Result<()> {
    let uid_maps = userns::maps_for(Ids::User, &[])?;
    let gid_maps = userns::maps_for(Ids::Group, &[])?;
    let (child, channel) = spawn::clone_child(CloneFlags::CLONE_NEWUSER, |channel| {
        channel.wait_for_go()?;
        userns::become_root()?;
        open_closed_directories(dir)?;
        fs::remove_dir_all(dir).with_context(|| format!("cannot remove {dir:?}"))?;
        process::exit_now(0)
    })?;
    userns::write_maps(child, &uid_maps, &gid_maps)
        .inspect_err(|_| process::abandon(child))?;
    channel.send_go()?;
    process::confirm_started(child, channel)?; // the child's error, if it had one
    match process::wait_for(child)? {
        0 => Ok(()),
        code => bail!("removing {dir:?} as the container's root ended with {code}"),
    }
}
// ANCHOR_END: remove_as_the_containers_root

/// Gives the owner back read, write and search on every directory under `dir` that
/// this process owns, looking at each entry without following symlinks.
fn open_closed_directories(dir: &Path) -> Result<()> {
    let found = fs::symlink_metadata(dir)?;
    if !found.is_dir() {
        return Ok(());
    }
    if found.uid() == Uid::effective().as_raw() && found.mode() & 0o700 != 0o700 {
        let mode = (found.mode() & 0o7777) | 0o700;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    for entry in fs::read_dir(dir)? {
        open_closed_directories(&entry?.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_directory_and_a_symlink_out_are_removed_and_the_target_stays() {
        let host = tempfile::tempdir().unwrap();
        let outside = host.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), "the host's").unwrap();
        let dir = host.path().join("container");
        fs::create_dir_all(dir.join("upper/closed/inner")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("upper/link")).unwrap();
        let closed = dir.join("upper/closed");
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
        assert_eq!(
            fs::read_to_string(outside.join("keep")).unwrap(),
            "the host's"
        );
    }

    #[test]
    fn a_name_is_claimed_once() {
        let data_root = tempfile::tempdir().unwrap();
        let first = claim_name(data_root.path(), "web", "0123456789ab").unwrap();
        let second = claim_name(data_root.path(), "web", "ba9876543210").unwrap_err();
        assert!(second
            .to_string()
            .contains("in use by container 0123456789ab"));
        assert_eq!(find(data_root.path(), "web").unwrap(), "0123456789ab");
        release_name(&first);
        assert!(claim_name(data_root.path(), "web", "ba9876543210").is_ok());
    }
}

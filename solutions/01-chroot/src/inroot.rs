//! Paths inside a root filesystem, looked up inside it. Book: section 2.5.
//!
//! A root filesystem is somebody else's tree, and any name in it may be a symlink that
//! points anywhere. Before `pivot_root` the runtime still sees the host's tree, so a path
//! built by joining strings, `ROOTFS/dev/null`, follows `ROOTFS/dev -> /` to the host's
//! `/null`, and a `mknod` or a mount lands on the host. So every file the runtime makes
//! or mounts on inside a root is looked up by the kernel as if the root were `/`:
//! `openat2(2)` with `RESOLVE_IN_ROOT`, where `..` and absolute symlinks stop at the
//! root, as they do for the container itself. The answer is a file descriptor, not a
//! name, and mounts go on the descriptor (`/proc/self/fd/N`), so nothing can swap the
//! path between the look-up and the mount (runc's fix for CVE-2021-30465). Chapter 9
//! unpacks image layers with the same look-up.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, FileStat, SFlag};

use crate::trace;

/// A root filesystem, opened: the directory every look-up below starts from and stops at.
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
    /// Narrate each look-up with `--trace` (not for the checks made before the start).
    traced: bool,
}

/// A file or directory found inside a root, held open so it cannot be swapped for
/// another.
pub struct Found {
    fd: OwnedFd,
    /// Its name inside the root, for messages: `/dev`.
    pub name: String,
}

impl RootDir {
    /// Opens the root filesystem at `path` (a directory on the host) for look-ups.
    pub fn open(path: &Path) -> Result<RootDir> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = trace::syscall(
            format_args!("open({path:?}, O_PATH|O_DIRECTORY)"),
            fcntl::open(path, flags, stat::Mode::empty()),
        )?;
        Ok(RootDir {
            fd,
            path: path.to_path_buf(),
            traced: true,
        })
    }

    /// The same, for the checks made before anything starts: their look-ups are not
    /// narrated.
    pub fn open_for_checks(path: &Path) -> Result<RootDir> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = fcntl::open(path, flags, stat::Mode::empty())
            .with_context(|| format!("cannot open the root filesystem {path:?}"))?;
        Ok(RootDir {
            fd,
            path: path.to_path_buf(),
            traced: false,
        })
    }

    // ANCHOR: find
    /// Looks up `name` (such as `dev` or `/etc/hosts`) inside the root: symlinks are
    /// followed, but none leads out, and neither does `..`.
    pub fn find(&self, name: &str) -> Result<Found> {
        let inner = relative(name)?;
        let found = self.look_up(&inner);
        if matches!(found, Err(nix::errno::Errno::ENOSYS)) {
            bail!(
                "this kernel has no openat2(2), which the runtime needs: Linux 5.6 or \
                 newer"
            );
        }
        let found = match self.traced {
            true => {
                let root = &self.path;
                let call = format_args!("openat2({root:?}, {inner:?}, RESOLVE_IN_ROOT)");
                trace::syscall(call, found).map_err(anyhow::Error::from)
            }
            false => found.map_err(anyhow::Error::from),
        };
        let fd = found.map_err(|error| self.explain_not_found(name, error))?;
        Ok(Found {
            fd,
            name: format!("/{}", inner.display()),
        })
    }

    /// The look-up itself: `..` and absolute symlinks stop at the root, and the magic
    /// links of `/proc` (which lead anywhere) are not followed at all.
    fn look_up(&self, inner: &Path) -> nix::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        fcntl::openat2(&self.fd, inner, how)
    }
    // ANCHOR_END: find

    /// Looks up a directory to mount on: it must be one, and not the root itself (a
    /// `/dev -> /` would put the container's `/dev` over its whole tree).
    pub fn find_dir(&self, name: &str) -> Result<Found> {
        let found = self.find(name)?;
        let stat = found.stat()?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
            bail!(
                "{} in the root filesystem {:?} is not a directory",
                found.name,
                self.path
            );
        }
        if self.is_the_root(&stat)? {
            bail!(
                "{} in the root filesystem {:?} leads back to the root itself (a symlink \
                 to /): the container's {} would cover its whole tree",
                found.name,
                self.path,
                found.name
            );
        }
        Ok(found)
    }

    /// Looks up a directory that may be missing: `None` when it is.
    pub fn find_dir_if_present(&self, name: &str) -> Result<Option<Found>> {
        match self.exists(name) {
            true => self.find_dir(name).map(Some),
            false => Ok(None),
        }
    }

    /// Looks up a regular file to mount on (a FIFO or a device there is refused by name).
    pub fn find_file(&self, name: &str) -> Result<Found> {
        let found = self.find(name)?;
        let kind = SFlag::from_bits_truncate(found.stat()?.st_mode) & SFlag::S_IFMT;
        if kind != SFlag::S_IFREG {
            bail!(
                "{} in the root filesystem {:?} is {}, not a regular file to mount the \
                 container's own on",
                found.name,
                self.path,
                describe_kind(kind)
            );
        }
        Ok(found)
    }

    /// Is there something at `name`, looked up inside the root?
    pub fn exists(&self, name: &str) -> bool {
        relative(name).is_ok_and(|inner| self.look_up(&inner).is_ok())
    }

    /// Is there nothing at all at `name`, not even a symlink on the way that leads
    /// nowhere inside?
    pub fn is_missing(&self, name: &str) -> bool {
        !self.exists(name) && self.first_symlink(name).is_none()
    }

    /// The root's own descriptor, for calls such as `mkdirat` that take a directory.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn is_the_root(&self, stat: &FileStat) -> Result<bool> {
        let root = stat::fstat(&self.fd).context("cannot stat the root filesystem")?;
        Ok((root.st_dev, root.st_ino) == (stat.st_dev, stat.st_ino))
    }

    /// A look-up that failed says which symlink on the way led nowhere inside the root.
    fn explain_not_found(&self, name: &str, error: anyhow::Error) -> anyhow::Error {
        match self.first_symlink(name) {
            Some((link, target)) => error.context(format!(
                "{link} in the root filesystem {:?} is a symlink to {target:?}, which \
                 leads nowhere inside it (a root's symlinks are followed inside the \
                 root, never out of it: book 2.5)",
                self.path
            )),
            None => error
                .context(format!("the root filesystem {:?} has no {name}", self.path)),
        }
    }

    /// The first component of `name` that is a symlink in the root's own tree, and where
    /// it points. Read with `readlink` on the host's path: only for a message, never
    /// followed.
    fn first_symlink(&self, name: &str) -> Option<(String, PathBuf)> {
        let inner = relative(name).ok()?;
        let mut path = self.path.clone();
        let mut shown = String::new();
        for part in inner.components() {
            path.push(part);
            shown = format!("{shown}/{}", part.as_os_str().to_string_lossy());
            let meta = path.symlink_metadata().ok()?;
            if meta.file_type().is_symlink() {
                return Some((shown, std::fs::read_link(&path).ok()?));
            }
            if !meta.is_dir() || meta.nlink() == 0 {
                return None;
            }
        }
        None
    }
}

impl Found {
    /// The name that reaches exactly this file through its descriptor, for calls that
    /// take a path, such as `mount`: `/proc/self/fd/N`. It is never looked up again by
    /// name.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    fn stat(&self) -> Result<FileStat> {
        stat::fstat(&self.fd).with_context(|| format!("cannot stat {}", self.name))
    }
}

impl AsFd for Found {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `name` as a plain path below the root: `/etc/hosts` and `etc/hosts` are the same file.
fn relative(name: &str) -> Result<PathBuf> {
    let inner: PathBuf = Path::new(name)
        .components()
        .filter(|part| !matches!(part, Component::RootDir | Component::CurDir))
        .collect();
    if inner.as_os_str().is_empty() {
        bail!("{name:?} names the root itself, not a path inside it");
    }
    Ok(inner)
}

fn describe_kind(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFLNK => "a symlink",
        _ => "not a regular file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root with a file, and symlinks that point out of it in each way a path can.
    fn hostile_root(name: &str) -> PathBuf {
        let root = std::env::temp_dir()
            .join(format!("byoc-inroot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), "inside\n").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("absolute")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc", root.join("climbing")).unwrap();
        std::os::unix::fs::symlink(".", root.join("itself")).unwrap();
        root
    }

    fn contents(found: &Found) -> String {
        std::fs::read_to_string(found.path()).unwrap()
    }

    #[test]
    fn symlinks_and_dot_dot_stop_at_the_root() {
        let path = hostile_root("stop");
        let root = RootDir::open_for_checks(&path).unwrap();
        for name in [
            "absolute/hostname",
            "climbing/hostname",
            "/../../etc/hostname",
        ] {
            let found = root.find(name).unwrap();
            assert_eq!(contents(&found), "inside\n", "{name} left the root");
        }
        assert!(
            root.find("absolute/passwd").is_err(),
            "the host's /etc/passwd was reached"
        );
        std::fs::remove_dir_all(&path).unwrap();
    }

    #[test]
    fn a_directory_that_is_the_root_itself_is_refused() {
        let path = hostile_root("itself");
        let root = RootDir::open_for_checks(&path).unwrap();
        let error = root.find_dir("itself").err().unwrap();
        assert!(format!("{error:#}").contains("leads back to the root itself"));
        assert!(root.find_dir("etc").is_ok());
        std::fs::remove_dir_all(&path).unwrap();
    }

    #[test]
    fn a_symlink_that_leads_nowhere_inside_is_named() {
        let path = hostile_root("named");
        let root = RootDir::open_for_checks(&path).unwrap();
        let error = root.find_file("absolute/passwd").err().unwrap();
        let text = format!("{error:#}");
        assert!(text.contains("/absolute in the root filesystem"), "{text}");
        assert!(text.contains("is a symlink to \"/etc\""), "{text}");
        assert!(root.is_missing("nothing") && !root.is_missing("absolute/passwd"));
        std::fs::remove_dir_all(&path).unwrap();
    }
}

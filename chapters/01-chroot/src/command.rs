// Your copy of solutions/01-chroot/src/command.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The command: found on the container's `PATH`, started with `execve(2)` in a clean
//! environment. Book: section 1.2.

use std::convert::Infallible;
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::unistd::{self, execve, Gid, Uid};

use crate::exit;
use crate::spec::{Process, User};
use crate::trace;

/// The `PATH` inside every container: the usual directories, not the host's `PATH`.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a command could not start. Each kind has its own exit code.
#[derive(Debug)]
pub enum CommandError {
    NotFound { command: OsString },
    CannotExecute { path: PathBuf, errno: Errno },
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::NotFound { .. } => exit::NOT_FOUND,
            CommandError::CannotExecute { errno, .. } if *errno == Errno::ENOENT => {
                exit::NOT_FOUND
            }
            CommandError::CannotExecute { .. } => exit::CANNOT_EXECUTE,
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NotFound { command } => {
                write!(
                    f,
                    "command {command:?} not found in the container (PATH={PATH})"
                )
            }
            CommandError::CannotExecute { path, errno } => {
                write!(
                    f,
                    "cannot run {path:?}: {errno:?}: {}",
                    explain(path, *errno)
                )
            }
        }
    }
}

impl std::error::Error for CommandError {}

/// What an `execve` error means for someone starting a container. It is worked out in the
/// container, where `path` is looked up as `execve` looked it up.
fn explain(path: &Path, errno: Errno) -> &'static str {
    match errno {
        Errno::EACCES => {
            "it is not a file the kernel may run (a directory, or no execute bit)"
        }
        // A path given with a `/` is not checked before execve: it may simply not be
        // there.
        Errno::ENOENT if !path.exists() => "there is no such file in the container",
        // The file is there, so what is missing is what it asks for.
        Errno::ENOENT => {
            "the interpreter it needs (its #! line, or the dynamic loader of a \
             dynamically linked program) is missing in the container"
        }
        Errno::ENOEXEC => "the kernel does not recognise its format",
        other => other.desc(),
    }
}

/// The environment a container starts with: nothing from the host but the terminal type.
pub fn environment() -> Vec<String> {
    let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".to_string());
    vec![
        format!("PATH={PATH}"),
        "HOME=/root".to_string(),
        format!("TERM={term}"),
    ]
}

// ANCHOR: find_in_path
/// Finds a command the way a shell does: a name with a `/` is a path, any other name is
/// looked for in each directory of `PATH`, in order, skipping files that may not be run.
pub fn find_in_path(command: &OsStr) -> Option<PathBuf> {
    // TODO: EXERCISE 1.3 (book 1.2): find the command inside the container
    // HINT: a name with a slash in it is already a path. Any other name is looked up in
    // HINT: each directory of the search path, in order, as a shell does (section 1.2).
    todo!("exercise 1.3: find the command inside the container (book section 1.2)")
}
// ANCHOR_END: find_in_path

/// A regular file (after following links) with at least one execute bit set.
pub fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

// ANCHOR: exec
/// Replaces this process with the spec's program. Returns only if that fails.
pub fn exec(process: &Process) -> Result<Infallible> {
    become_user_in_cwd(process)?;
    let program = &process.args[0];
    let path = find_in_path(program).ok_or_else(|| CommandError::NotFound {
        command: program.clone(),
    })?;
    // TODO: EXERCISE 1.4 (book 1.2): replace this process with the program at `path`
    // HINT: execve swaps this process's program for another: on success it never returns,
    // HINT: so the call is narrated before it is made (trace::announce, not
    // HINT: trace::syscall). Read section 1.2.
    todo!(
        "exercise 1.4: replace this process with the program at `path` (book section \
         1.2)"
    )
}
// ANCHOR_END: exec

/// Takes on the process's user and directory, where they are not what the set-up left
/// (root, in `/`): the groups first, then the group, then the user, since a process that
/// gives up root can no longer change its ids.
pub fn become_user_in_cwd(process: &Process) -> Result<()> {
    let user = &process.user;
    if *user != User::default() {
        let groups: Vec<Gid> = user
            .additional_gids
            .iter()
            .map(|&gid| Gid::from_raw(gid))
            .collect();
        let call =
            format_args!("setgroups({}, {:?})", groups.len(), user.additional_gids);
        trace::syscall(call, unistd::setgroups(&groups))?;
        let gid = Gid::from_raw(user.gid);
        trace::syscall(format_args!("setgid({gid})"), unistd::setgid(gid))?;
        let uid = Uid::from_raw(user.uid);
        trace::syscall(format_args!("setuid({uid})"), unistd::setuid(uid))?;
    }
    if process.cwd != Path::new("/") {
        let cwd = &process.cwd;
        trace::syscall(format_args!("chdir({cwd:?})"), unistd::chdir(cwd))?;
    }
    Ok(())
}

/// A C string from an argument; only a NUL byte inside it can make this fail.
pub fn to_c_string(arg: &OsStr) -> Result<CString> {
    CString::new(arg.as_bytes())
        .with_context(|| format!("argument {arg:?} contains a NUL byte"))
}

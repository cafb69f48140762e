//! The cgroup filesystem's few verbs: make a directory, write a value into a file, read
//! one, remove a directory. Book: section 7.2.
//!
//! A cgroup is a directory, and everything said to it is a short write into one of its
//! files: there is no special system call. So each call here is narrated under `--trace`
//! as the shell command that does the same (`mkdir`, `echo 64M > memory.max`, `rmdir`),
//! and a failure names the file, the value and the kernel's `errno`.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::trace::{self, SyscallError};

/// The `errno` behind an I/O error (EIO when it has none).
fn errno_of(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

/// `mkdir DIR`: a new cgroup. One that is there already is taken as it is. Returns
/// whether it was made here, so that a failure later can remove what this run made and
/// nothing else.
pub fn make_dir(dir: &Path) -> Result<bool, SyscallError> {
    let (made, result) = match fs::create_dir(dir) {
        Ok(()) => (true, Ok(())),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => (false, Ok(())),
        Err(error) => (false, Err(errno_of(&error))),
    };
    trace::syscall(format_args!("mkdir {}", dir.display()), result)?;
    Ok(made)
}

/// `mkdir -p DIR`, one `mkdir` per directory that is missing; each one made is added to
/// `made`, the top first.
pub fn make_dir_all(dir: &Path, made: &mut Vec<PathBuf>) -> Result<(), SyscallError> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|dir| !dir.exists()).collect();
    for dir in missing.into_iter().rev() {
        if make_dir(dir)? {
            made.push(dir.to_path_buf());
        }
    }
    Ok(())
}

/// `echo VALUE > DIR/FILE`: one setting, or one command (a PID to `cgroup.procs`).
pub fn write(dir: &Path, file: &str, value: &str) -> Result<(), SyscallError> {
    let path = dir.join(file);
    let result = fs::write(&path, value).map_err(|error| errno_of(&error));
    trace::syscall(format_args!("echo {value} > {}", path.display()), result)
}

/// `cat DIR/FILE`, quietly: the kit reads counters and lists, which `--trace` leaves out.
pub fn read(dir: &Path, file: &str) -> Result<String, SyscallError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|error| SyscallError {
        call: format!("cat {}", path.display()),
        errno: errno_of(&error),
    })
}

/// `rmdir DIR`: the cgroup goes once no process is left in it. One that is gone already
/// (another runtime removed it) is no error.
pub fn remove_dir(dir: &Path) -> Result<(), SyscallError> {
    let result = match fs::remove_dir(dir) {
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        result => result.map_err(|error| errno_of(&error)),
    };
    trace::syscall(format_args!("rmdir {}", dir.display()), result)
}

/// The value of `KEY N` in a flat-keyed file such as `memory.events` or
/// `memory.oom_control`: `oom_kill 1`.
pub fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

/// The PIDs listed in a `cgroup.procs` file.
pub fn pids(text: &str) -> Vec<i32> {
    text.lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_name() {
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(counter(events, "oom_kill"), Some(1));
        assert_eq!(counter(events, "max"), Some(12));
        assert_eq!(counter(events, "missing"), None);
    }

    #[test]
    fn pids_are_one_per_line() {
        assert_eq!(pids("12\n345\n"), [12, 345]);
        assert!(pids("").is_empty());
    }
}

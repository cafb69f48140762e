//! With `--init`, the runtime starts again from a sealed copy of itself, so the
//! container's PID 1 is never the host's binary. Book: section 3.3, "What the init must
//! not give away".
//!
//! With `--init`, the container's PID 1 is the runtime itself, and `/proc/1/exe` is a
//! link to the file it runs from. Any process in the container may open that link; if
//! it leads to the runtime's binary on the host, a root process in the container can
//! hold it open and write to it once the init has ended, and the next run on the host
//! runs the container's code (CVE-2019-5736, found in runc). So a run with `--init`
//! first copies the runtime into a `memfd`, a file that lives in memory only and has no
//! name on any file system, seals it so nobody can ever write to it again, and starts
//! again from the copy with the same command line and environment. The second start
//! finds itself sealed and goes on. It is done before anything else, while the runtime
//! holds nothing that an `execve` would lose: no terminal in raw mode, no child, no
//! blocked signal.

use std::convert::Infallible;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::unistd::fexecve;

use crate::trace;

/// The seals that make the copy unchangeable: no write, no shrinking, no growing, and no
/// taking those seals off.
fn seals() -> SealFlag {
    SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SEAL
}

// ANCHOR: run_from_a_sealed_copy
/// Makes sure this process runs from a sealed copy of the runtime: returns at once if it
/// does already, and otherwise starts the runtime again from one (and so returns only
/// if that failed).
pub fn run_from_a_sealed_copy() -> Result<()> {
    if running_from_a_sealed_copy() {
        return Ok(());
    }
    let copy = sealed_copy_of_the_runtime()?;
    match start_again_from(copy)? {}
}
// ANCHOR_END: run_from_a_sealed_copy

/// Is the file this process runs from a memfd with all of our seals? A file on a disk
/// has no seals at all (`fcntl` refuses with `EINVAL`).
fn running_from_a_sealed_copy() -> bool {
    let Ok(binary) = File::open("/proc/self/exe") else {
        return false;
    };
    fcntl(&binary, FcntlArg::F_GET_SEALS)
        .is_ok_and(|bits| SealFlag::from_bits_truncate(bits).contains(seals()))
}

// ANCHOR: sealed_copy_of_the_runtime
/// Copies the runtime's binary into a new memfd and seals it.
fn sealed_copy_of_the_runtime() -> Result<OwnedFd> {
    let mut copy = File::from(create_memfd()?);
    let mut binary =
        File::open("/proc/self/exe").context("reading the runtime's binary")?;
    // std::io::copy lets the kernel copy from file to file (copy_file_range).
    let size = std::io::copy(&mut binary, &mut copy)
        .context("copying the runtime's binary into a memfd")?;
    trace::say(format_args!(
        "copy_file_range(/proc/self/exe, memfd) = {size}"
    ));
    let call = format_args!("fcntl(memfd, F_ADD_SEALS, WRITE|SHRINK|GROW|SEAL)");
    trace::syscall(call, fcntl(&copy, FcntlArg::F_ADD_SEALS(seals())).map(drop))?;
    Ok(copy.into())
}
// ANCHOR_END: sealed_copy_of_the_runtime

/// `memfd_create(2)`, for a file that may be sealed and executed. Since Linux 6.3 a memfd
/// meant to be executed says so with `MFD_EXEC` (a machine may refuse to run the others:
/// `vm.memfd_noexec`); older kernels do not know the flag and refuse it with `EINVAL`,
/// and then need no flag.
fn create_memfd() -> Result<OwnedFd> {
    let name = c"byoc-sealed-runtime";
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let executable = MFdFlags::from_bits_retain(nix::libc::MFD_EXEC);
    let result = memfd_create(name, flags | executable);
    if result.as_ref().err() != Some(&Errno::EINVAL) {
        let call = format_args!("memfd_create({name:?}, CLOEXEC|ALLOW_SEALING|EXEC)");
        return Ok(trace::syscall(call, result)?);
    }
    // A kernel older than 6.3: no MFD_EXEC, and no need for it.
    let call = format_args!("memfd_create({name:?}, CLOEXEC|ALLOW_SEALING)");
    Ok(trace::syscall(call, memfd_create(name, flags))?)
}

// ANCHOR: start_again_from
/// Starts the runtime again from `copy`, with the command line and environment it was
/// started with. The memfd is close-on-exec, so the new start holds no descriptor of it:
/// only its `/proc/self/exe` leads there.
fn start_again_from(copy: OwnedFd) -> Result<Infallible> {
    let args = c_strings(std::env::args_os())?;
    let env = c_strings(std::env::vars_os().map(|(name, value)| {
        let mut pair = name;
        pair.push("=");
        pair.push(value);
        pair
    }))?;
    trace::announce(format_args!(
        "execveat(memfd, \"\", argv, env, AT_EMPTY_PATH)"
    ));
    let Err(errno) = fexecve(&copy, &args, &env);
    trace::say(format_args!(
        "execveat(memfd) = -1 {errno:?} ({})",
        errno.desc()
    ));
    Err(anyhow::Error::from(errno)
        .context("starting the runtime again from a sealed copy of itself (for --init)"))
}
// ANCHOR_END: start_again_from

/// The words as C strings: no word handed to us by `execve` holds a NUL byte.
fn c_strings(words: impl Iterator<Item = impl AsRef<OsStr>>) -> Result<Vec<CString>> {
    words
        .map(|word| Ok(CString::new(word.as_ref().as_bytes())?))
        .collect()
}

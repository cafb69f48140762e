//! The `--trace` narration: each system call, printed on stderr as it returns, in the
//! style of `strace`. It lets a learner watch a container being made. Book: "Setting up",
//! section "Watching a container being made".
//!
//! Every chapter makes its system calls through [`syscall`], so the story of a run and
//! the error messages of a failed run always name the exact call, its arguments and its
//! result.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Who is speaking: `parent` (the runtime on the host), `child` (the process that becomes
/// the container) or `init` (a tiny init, from chapter 3). After `fork` both processes
/// share this program, so each line says which one made the call.
static ACTOR: Mutex<&str> = Mutex::new("parent");

/// Turns the narration on or off (the `--trace` flag).
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Names the process that makes the calls from now on.
pub fn set_actor(name: &'static str) {
    *ACTOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = name;
}

/// A system call that failed: which call, with which arguments, and the `errno` it
/// returned.
#[derive(Debug)]
pub struct SyscallError {
    pub call: String,
    pub errno: Errno,
}

impl fmt::Display for SyscallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (call, errno) = (&self.call, self.errno);
        write!(f, "{call} failed: {errno:?}: {}", errno.desc())?;
        if errno == Errno::EPERM && !nix::unistd::geteuid().is_root() {
            // The most common cause by far, and the one a learner can fix at once.
            write!(
                f,
                " (you are not root: chapters 1 to 4 need root; see \"Setting up\")"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SyscallError {}

// ANCHOR: syscall
/// Reports a system call that has returned, and turns a failure into an error that names
/// it.
///
/// `call` is the call as a C programmer would write it, for example
/// `format_args!("chroot({rootfs:?})")`.
pub fn syscall<T: Outcome>(
    call: fmt::Arguments<'_>,
    result: nix::Result<T>,
) -> Result<T, SyscallError> {
    match &result {
        Ok(value) => say(format_args!("{call} = {}", value.describe())),
        Err(errno) => say(format_args!("{call} = -1 {errno:?} ({})", errno.desc())),
    }
    result.map_err(|errno| SyscallError {
        call: call.to_string(),
        errno,
    })
}
// ANCHOR_END: syscall

/// Reports a call before it is made: for `execve`, which does not return when it works.
pub fn announce(call: fmt::Arguments<'_>) {
    say(call);
}

/// Writes one line of narration, if `--trace` is on.
pub fn say(line: fmt::Arguments<'_>) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let actor = *ACTOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // One write per line: the parent and the child share stderr, and a line written in
    // pieces could be cut in half by the other process's line.
    let text = format!("[{actor}] {line}\n");
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Formats a set of flags the way C code writes them: `MS_REC|MS_PRIVATE`.
pub fn flags<F: bitflags::Flags>(set: F) -> String {
    let names: Vec<&str> = set.iter_names().map(|(name, _)| name).collect();
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}

/// How a successful call's result is shown after the `=`.
pub trait Outcome {
    fn describe(&self) -> String;
}

impl Outcome for () {
    fn describe(&self) -> String {
        "0".to_string()
    }
}

/// A byte count, from `read` and `write`.
impl Outcome for usize {
    fn describe(&self) -> String {
        self.to_string()
    }
}

/// A new descriptor, from `open`: its number.
impl Outcome for std::os::fd::OwnedFd {
    fn describe(&self) -> String {
        std::os::fd::AsRawFd::as_raw_fd(self).to_string()
    }
}

/// A byte count and maybe a descriptor, from `recvmsg`.
impl Outcome for (usize, Option<std::os::fd::RawFd>) {
    fn describe(&self) -> String {
        match self.1 {
            Some(fd) => format!("{} (and descriptor {fd})", self.0),
            None => self.0.to_string(),
        }
    }
}

/// A pair of descriptors, from `socketpair`: C returns 0 and fills in an array.
impl Outcome for (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    fn describe(&self) -> String {
        "0".to_string()
    }
}

impl Outcome for nix::unistd::Pid {
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl Outcome for nix::unistd::ForkResult {
    fn describe(&self) -> String {
        match self {
            nix::unistd::ForkResult::Parent { child } => child.to_string(),
            nix::unistd::ForkResult::Child => "0".to_string(),
        }
    }
}

impl Outcome for nix::sys::wait::WaitStatus {
    fn describe(&self) -> String {
        use nix::sys::wait::WaitStatus;
        match self {
            WaitStatus::Exited(pid, code) => format!("{pid} (exited with {code})"),
            WaitStatus::Signaled(pid, signal, _) => format!("{pid} (killed by {signal})"),
            WaitStatus::StillAlive => "0 (no child has changed state)".to_string(),
            other => format!("{other:?}"),
        }
    }
}

/// A signal mask, from `sigprocmask`: C returns 0 and fills in the old mask.
impl Outcome for nix::sys::signal::SigSet {
    fn describe(&self) -> String {
        "0".to_string()
    }
}

impl Outcome for nix::sys::signal::Signal {
    fn describe(&self) -> String {
        self.as_str().to_string()
    }
}

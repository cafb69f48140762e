// Your copy of solutions/03-pid-namespace/src/init.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! What PID 1 must do, and a tiny init that does it. Book: section 3.3.
//!
//! PID 1 of a namespace is special in two ways. Orphans are re-parented to it, so it must
//! `wait` for them or they stay zombies. And the kernel gives it no default signal
//! actions: a `SIGTERM` it has no handler for is dropped, so `Ctrl-C` or `kill` does not
//! stop it. A command that was not written to be an init (a shell, a server) does neither
//! job. With `--init`, PID 1 is [`supervise`] instead: it reaps every child and forwards
//! signals to the command, which runs as PID 2. The runtime's parent uses the same loop
//! on the host.

use std::convert::Infallible;

use anyhow::Result;
use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use crate::process::Ended;
use crate::spec::Process;
use crate::sync::ChildEnd;
use crate::{command, process, trace};

/// The signals passed on to the command: what `Ctrl-C`, `kill` and a closed terminal
/// send.
pub const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The forwarded signals and `SIGCHLD`, which says a child has ended.
fn watched() -> SigSet {
    let mut set = SigSet::empty();
    for signal in FORWARDED {
        set.add(signal);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Blocks the watched signals, so they wait in a queue for [`supervise`] instead of
/// interrupting us, and returns the mask there was before. Block them before the child
/// exists: a signal that came in between would otherwise be lost.
pub fn block_signals() -> Result<SigSet> {
    let call = format_args!("sigprocmask(SIG_BLOCK, [INT TERM HUP QUIT CHLD])");
    let previous =
        trace::syscall(call, watched().thread_swap_mask(SigmaskHow::SIG_BLOCK))?;
    Ok(previous)
}

/// Puts back the mask there was before [`block_signals`], and the default action for each
/// forwarded signal and for SIGPIPE. A child inherits its parent's mask and its ignored
/// signals, and `execve` keeps both, so the command would otherwise start with whatever
/// the runtime was started with (a shell ignores SIGINT for its background jobs, for
/// example).
pub fn restore_signals(previous: &SigSet) -> Result<()> {
    // The forwarded signals are chapter 1's: the same list, put back to their defaults.
    process::default_signals()?;
    let call = format_args!("sigprocmask(SIG_SETMASK, the mask before)");
    trace::syscall(call, previous.thread_set_mask())?;
    Ok(())
}

// ANCHOR: supervise
/// Waits until `command` ends, reaping any other child on the way and passing each
/// forwarded signal on to `command`. Returns how it ended: the exit code to pass on, and
/// the signal that killed it, if one did.
pub fn supervise(command: Pid) -> Result<Ended> {
    let signals = watched();
    // TODO: EXERCISE 3.3 (book 3.3): the init loop: wait for a signal, reap on SIGCHLD,
    //       forward others
    // HINT: an init waits for signals. When a child ends, it reaps; when the command has
    // HINT: ended, it returns how it ended. Every other signal is passed on to the
    // HINT: command. Narrate the wait and each signal passed on with trace::syscall. Read
    // HINT: section 3.3.
    todo!(
        "exercise 3.3: the init loop: wait for a signal, reap on SIGCHLD, forward others \
         (book section 3.3)"
    )
}
// ANCHOR_END: supervise

// ANCHOR: reap_children
/// Collects every child that has ended. One `SIGCHLD` can stand for several children, so
/// keep asking until none is left. Returns how the command ended if it was among them.
pub fn reap_children(command: Pid) -> Result<Option<Ended>> {
    let mut command_code = None;
    loop {
        let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return Ok(command_code), // no children at all
            result => trace::syscall(format_args!("wait4(-1, WNOHANG)"), result)?,
        };
        match status {
            WaitStatus::StillAlive => return Ok(command_code),
            status if status.pid() == Some(command) => {
                command_code = process::ended(status)
            }
            _ => {} // an orphan: reaping it is all it needed
        }
    }
}
// ANCHOR_END: reap_children

// ANCHOR: run_as_init
/// Becomes the tiny init: forks the command as PID 2, then supervises it as PID 1, and
/// ends with the command's exit code. The command reports on `channel` whether it
/// started; the init gives up its own copy, so that the command's `execve` is what closes
/// the channel.
pub fn run_as_init(
    command: &Process,
    channel: &ChildEnd,
    previous_mask: &SigSet,
) -> Result<Infallible> {
    trace::set_actor("init");
    forget_the_hosts_words()?;
    match process::fork()? {
        ForkResult::Child => process::run_child(channel, || {
            restore_signals(previous_mask)?;
            command::exec(command)
        }),
        ForkResult::Parent { child } => {
            channel.close();
            let ended = supervise(child)?;
            process::exit_now(ended.code)
        }
    }
}
// ANCHOR_END: run_as_init

// ANCHOR: forget_the_hosts_words
/// Wipes the command line and the environment this process was started with. The init is
/// the runtime itself, started on the host with the host's words: the kernel keeps them
/// in the process's own memory and shows them to the container as `/proc/1/cmdline` and
/// `/proc/1/environ`, a token from the host's shell included. Zeroing those bytes leaves
/// the container nothing to read there (book 3.3).
fn forget_the_hosts_words() -> Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let [arg_start, arg_end, env_start, env_end] = words_in_memory(&stat)?;
    // SAFETY: the process is single-threaded here (the child of a clone), so nothing
    // reads the environment while it is cleared; the two ranges are the process's own
    // writable memory, as the kernel reports it, and no Rust value borrows from them (the
    // runtime copied its arguments into owned strings when it parsed them).
    unsafe {
        nix::libc::clearenv();
        std::ptr::write_bytes(arg_start as *mut u8, 0, arg_end.saturating_sub(arg_start));
        std::ptr::write_bytes(env_start as *mut u8, 0, env_end.saturating_sub(env_start));
    }
    trace::say(format_args!(
        "memset(/proc/self/cmdline and environ, 0) = 0"
    ));
    Ok(())
}
// ANCHOR_END: forget_the_hosts_words

/// Where the command line and the environment lie in memory: fields 48 to 51 of
/// `/proc/self/stat` (arg_start, arg_end, env_start, env_end), counted after the command
/// name, which may hold spaces and so is skipped up to its closing parenthesis.
fn words_in_memory(stat: &str) -> Result<[usize; 4]> {
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // The first field after the name is field 3.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| -> Result<usize> {
        let text = fields.get(number - 3).copied().unwrap_or_default();
        text.parse().map_err(|_| {
            anyhow::anyhow!("/proc/self/stat has no field {number}: {stat:?}")
        })
    };
    Ok([field(48)?, field(49)?, field(50)?, field(51)?])
}

// Your copy of solutions/01-chroot/src/process.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Processes: `fork` makes a copy of the runtime, the copy becomes the container, and the
//! runtime waits for it and turns its end into an exit code. Book: section 1.2.

use std::convert::Infallible;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Result;
use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{self, ForkResult, Pid};

use crate::exit;
use crate::sync::{self, ChildEnd, ParentEnd, Started};
use crate::trace;

// ANCHOR: fork_child
/// Starts the container's first process: `body` runs in a forked child, with the child's
/// end of a start-up channel. The parent gets the child's PID and its own end.
pub fn fork_child(
    body: impl FnOnce(&ChildEnd) -> Result<Infallible>,
) -> Result<(Pid, ParentEnd)> {
    let (parent_end, child_end) = sync::channel()?;
    match fork()? {
        ForkResult::Child => {
            drop(parent_end);
            run_child(&child_end, || body(&child_end))
        }
        // The parent's copy of the child's end closes here, when `child_end` is dropped:
        // from now on only the child holds it, so its end of file means `execve`.
        ForkResult::Parent { child } => Ok((child, parent_end)),
    }
}
// ANCHOR_END: fork_child

/// Ends a child that must not start, because the parent's side failed, and collects it,
/// so nothing is left behind and the child has nothing to report.
pub fn abandon(child: Pid) {
    let killed = nix::sys::signal::kill(child, Signal::SIGKILL);
    let _ = trace::syscall(format_args!("kill({child}, SIGKILL)"), killed);
    let _ = trace::syscall(format_args!("wait4({child})"), waitpid(child, None));
}

// ANCHOR: confirm_started
/// Waits until the child has started the command. If it failed instead, collects the
/// child and returns its error, so the runtime reports it and exits with its code.
pub fn confirm_started(child: Pid, channel: ParentEnd) -> Result<Started> {
    match channel.wait_for_exec() {
        Ok(started) => Ok(started),
        Err(failure) => {
            wait_for(child)?;
            Err(failure)
        }
    }
}
// ANCHOR_END: confirm_started

/// Forks the runtime. `fork` returns twice: the parent gets the child's PID, the child
/// gets 0.
pub fn fork() -> Result<ForkResult> {
    // SAFETY: the runtime is single-threaded when it forks, so the child cannot inherit a
    // lock that another thread was holding.
    let result = unsafe { unistd::fork() };
    if let Ok(ForkResult::Child) = result {
        // The parent narrates the fork; the child speaks from its first call of its own.
        trace::set_actor("child");
        return Ok(ForkResult::Child);
    }
    Ok(trace::syscall(format_args!("fork()"), result)?)
}

/// Runs the child's side of a container and never returns: either the body replaces this
/// process with the command, or the child reports why it could not to the parent over
/// `channel` and exits with the error's code.
pub fn run_child(channel: &ChildEnd, body: impl FnOnce() -> Result<Infallible>) -> ! {
    let (code, message) = match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(never)) => match never {},
        Ok(Err(error)) => (exit::code_for(&error), format!("{error:#}")),
        // The panic hook has printed where (an unfinished exercise, say); say what.
        Err(payload) => (exit::SETUP_FAILED, panic_message(payload.as_ref())),
    };
    if channel.report_failure(code, &message).is_err() {
        // The parent is gone, or the channel was already closed: say it here instead.
        eprintln!("byoc: {message}");
    }
    exit_now(code)
}

/// The text a panic was raised with: `todo!("exercise 1.2: ...")` gives
/// "not yet implemented: exercise 1.2: ...".
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string());
    format!("the container's set-up panicked: {text}")
}

// ANCHOR: close_other_fds
/// Closes every file descriptor except stdin, stdout, stderr and the start-up channel. A
/// descriptor the runtime inherited (an open directory of the host, say) would otherwise
/// pass into the container, and a path through `/proc/self/fd` would lead back to the
/// host: runc's CVE-2024-21626 was such a leak.
pub fn close_other_fds(channel: &ChildEnd) -> Result<()> {
    let Some(keep) = channel.raw_fd() else {
        return close_range(3, u32::MAX);
    };
    let keep = keep as u32; // descriptors are never negative
    if keep > 3 {
        close_range(3, keep - 1)?;
    }
    close_range(keep + 1, u32::MAX)
}

fn close_range(first: u32, last: u32) -> Result<()> {
    // SAFETY: close_range only closes descriptors; nothing in this process uses the ones
    // in the range any more (the channel, which it still needs, is left out).
    let result = unsafe { libc::close_range(first, last, 0) };
    let shown_last = if last == u32::MAX {
        "~0U".to_string()
    } else {
        last.to_string()
    };
    let call = format_args!("close_range({first}, {shown_last}, 0)");
    trace::syscall(call, Errno::result(result).map(drop))?;
    Ok(())
}
// ANCHOR_END: close_other_fds

/// Ends this process at once with `code`.
pub fn exit_now(code: u8) -> ! {
    // `_exit`, not `exit`: a child is a copy of the parent, and must not run the parent's
    // clean-up code or flush the parent's buffers a second time.
    // SAFETY: `_exit` ends the process at once; nothing after it runs.
    unsafe { libc::_exit(code.into()) }
}

// ANCHOR: terminal_signals
/// The signals the runtime passes on: Ctrl-C, Ctrl-\\, `kill`, and a closed terminal.
pub const PASSED_ON: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGHUP,
];

/// The container's PID, for the signal handler, which can take no arguments of ours.
static CONTAINER: AtomicI32 = AtomicI32::new(0);

/// Passes each signal in [`PASSED_ON`] that the runtime gets on to the container, which
/// leads a session of its own and so does not hear the terminal. The runtime lives on to
/// report how the container ended; the command decides what the signal means.
pub fn pass_signals_on(container: Pid) -> Result<()> {
    CONTAINER.store(container.as_raw(), Ordering::SeqCst);
    // SA_RESTART: a wait4 that the signal interrupts goes on, instead of failing with
    // EINTR.
    let action = SigAction::new(
        SigHandler::Handler(pass_on),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in PASSED_ON {
        // SAFETY: the handler only calls kill, which is async-signal-safe.
        let result = unsafe { sigaction(signal, &action) }.map(drop);
        trace::syscall(format_args!("sigaction({signal}, pass_on)"), result)?;
    }
    Ok(())
}

extern "C" fn pass_on(signal: libc::c_int) {
    // SAFETY: kill is async-signal-safe and touches no memory of ours.
    unsafe { libc::kill(CONTAINER.load(Ordering::SeqCst), signal) };
}

/// Gives the command the default action for SIGPIPE and for each signal in [`PASSED_ON`].
/// An ignored signal stays ignored across `execve`, and the runtime may have been started
/// with some ignored: the Rust runtime ignores SIGPIPE (`yes | head -n 1` would never
/// end), and a shell ignores SIGINT and SIGQUIT for a job it starts in the background
/// with `&`.
pub fn default_signals() -> Result<()> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in PASSED_ON.into_iter().chain([Signal::SIGPIPE]) {
        // SAFETY: the default action runs no code of ours, so no handler can be unsound.
        let result = unsafe { sigaction(signal, &default) }.map(drop);
        trace::syscall(format_args!("sigaction({signal}, SIG_DFL)"), result)?;
    }
    Ok(())
}
// ANCHOR_END: terminal_signals

// ANCHOR: new_session
/// Makes the child the leader of a new session, with no controlling terminal. It leaves
/// the host's terminal session: the terminal's signals (Ctrl-C) no longer reach it, and
/// `/dev/tty` no longer opens the host's terminal.
pub fn new_session() -> Result<()> {
    trace::syscall(format_args!("setsid()"), unistd::setsid())?;
    Ok(())
}
// ANCHOR_END: new_session

// ANCHOR: wait_for
/// Waits for a child to end and returns the exit code the runtime should pass on.
pub fn wait_for(child: Pid) -> Result<u8> {
    loop {
        let status =
            trace::syscall(format_args!("wait4({child})"), waitpid(child, None))?;
        if let Some(code) = exit_code(status) {
            return Ok(code);
        }
        // Stopped or continued: the child is still alive, so keep waiting.
    }
}
// ANCHOR_END: wait_for

// ANCHOR: exit_code
/// The shell's rule for a wait status: a normal exit gives its own code, and death by
/// signal N gives 128 + N. `None` means the child has not ended.
pub fn exit_code(status: WaitStatus) -> Option<u8> {
    // TODO: EXERCISE 1.1 (book 1.2): turn a wait status into the exit code the runtime
    //       passes on
    // HINT: a command that exits passes on its own code; one killed by a signal passes on
    // HINT: 128 plus the signal's number, as a shell does. Anything else has not ended
    // HINT: yet. Section 1.2 says why. `cargo xtask hint 1.1` gives more, one step at a
    // HINT: time.
    todo!(
        "exercise 1.1: turn a wait status into the exit code the runtime passes on (book \
         section 1.2)"
    )
}
// ANCHOR_END: exit_code

/// How a child ended: the exit code to pass on, and the signal that killed it, if one
/// did. The code alone cannot tell: 137 is a `SIGKILL`, or a shell passing on its last
/// `$?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub code: u8,
    pub signal: Option<Signal>,
}

/// The same status as [`Ended`]; `None` means the child has not ended.
pub fn ended(status: WaitStatus) -> Option<Ended> {
    let code = exit_code(status)?;
    let signal = match status {
        WaitStatus::Signaled(_, signal, _) => Some(signal),
        _ => None,
    };
    Some(Ended { code, signal })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn a_normal_exit_passes_its_code_through() {
        let status = WaitStatus::Exited(Pid::from_raw(7), 3);
        assert_eq!(exit_code(status), Some(3));
    }

    #[test]
    fn death_by_signal_is_128_plus_the_signal() {
        let status = WaitStatus::Signaled(Pid::from_raw(7), Signal::SIGKILL, false);
        assert_eq!(exit_code(status), Some(137));
    }

    #[test]
    fn a_stopped_child_has_not_ended() {
        let status = WaitStatus::Stopped(Pid::from_raw(7), Signal::SIGSTOP);
        assert_eq!(exit_code(status), None);
    }
}

//! Processes: `fork` makes a copy of the runtime, the copy becomes the container, and the
//! runtime waits for it and turns its end into an exit code. Book: section 1.2.

use std::convert::Infallible;
use std::panic::{self, AssertUnwindSafe};

use anyhow::Result;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{self, ForkResult, Pid};

use crate::exit;
use crate::trace;

/// Forks the runtime. `fork` returns twice: the parent gets the child's PID, the child gets 0.
pub fn fork() -> Result<ForkResult> {
    // SAFETY: the runtime is single-threaded when it forks, so the child cannot inherit a
    // lock that another thread was holding.
    let result = unsafe { unistd::fork() };
    if let Ok(ForkResult::Child) = result {
        trace::set_actor("child");
    }
    Ok(trace::syscall(format_args!("fork()"), result)?)
}

/// Runs the child's side of a container and never returns: either the body replaces this
/// process with the command, or the child exits with an error code.
pub fn run_child(body: impl FnOnce() -> Result<Infallible>) -> ! {
    let code = match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(never)) => match never {},
        Ok(Err(error)) => {
            exit::print_error(&error);
            exit::code_for(&error)
        }
        // The panic hook has already printed the message (an unfinished exercise, say).
        Err(_) => exit::SETUP_FAILED,
    };
    exit_now(code)
}

/// Ends this process at once with `code`.
pub fn exit_now(code: u8) -> ! {
    // `_exit`, not `exit`: a child is a copy of the parent, and must not run the parent's
    // clean-up code or flush the parent's buffers a second time.
    // SAFETY: `_exit` ends the process at once; nothing after it runs.
    unsafe { libc::_exit(code.into()) }
}

// ANCHOR: terminal_signals
/// Ctrl-C and Ctrl-\ send SIGINT and SIGQUIT to every process in the terminal's foreground
/// group: the runtime and the container alike. Like system(3), the runtime ignores them
/// while the command runs, so the command decides what they do and the runtime lives to
/// report it.
pub fn ignore_terminal_signals() -> Result<()> {
    set_terminal_signals(SigHandler::SigIgn, "SIG_IGN")
}

/// Gives the command the default actions back before `execve`: an ignored signal stays
/// ignored in the new program.
pub fn default_terminal_signals() -> Result<()> {
    set_terminal_signals(SigHandler::SigDfl, "SIG_DFL")
}

fn set_terminal_signals(handler: SigHandler, name: &str) -> Result<()> {
    let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: SIG_IGN and SIG_DFL run no code of ours, so no handler can be unsound.
        let result = unsafe { sigaction(signal, &action) }.map(|_| ());
        trace::syscall(
            format_args!("sigaction({}, {name})", signal.as_str()),
            result,
        )?;
    }
    Ok(())
}
// ANCHOR_END: terminal_signals

// ANCHOR: wait_for
/// Waits for a child to end and returns the exit code the runtime should pass on.
pub fn wait_for(child: Pid) -> Result<u8> {
    loop {
        let status = trace::syscall(format_args!("wait4({child})"), waitpid(child, None))?;
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
    // EXERCISE 1.1 (book 1.2): turn a wait status into the exit code the runtime passes on
    // HINT: match on WaitStatus::Exited(_, code) and WaitStatus::Signaled(_, signal, _);
    // HINT: `signal as u8` is the signal's number (they all fit in a byte).
    // HINT: anything else (stopped, continued) has not ended yet: None.
    // TRIVIAL: None
    match status {
        WaitStatus::Exited(_, code) => Some(code as u8),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as u8),
        _ => None,
    }
    // END EXERCISE 1.1
}
// ANCHOR_END: exit_code

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

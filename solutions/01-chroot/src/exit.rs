//! Exit codes: how the runtime tells its caller what went wrong. Book: section 1.2.
//!
//! The numbers follow the shell and `docker run`: a command that ran passes its own
//! status through, 125 means the runtime could not make the container, 126 that the
//! command was found but could not be run, 127 that it was not found.

use std::process::ExitCode;

use crate::command::CommandError;
use crate::sync::SetupFailed;

/// The runtime itself failed: a mistake on the command line, a missing root filesystem, a
/// failed setup step.
pub const SETUP_FAILED: u8 = 125;
/// The command exists in the container but the kernel would not run it.
pub const CANNOT_EXECUTE: u8 = 126;
/// The command does not exist in the container.
pub const NOT_FOUND: u8 = 127;

/// The exit code for an error: 126 or 127 for a command that could not start, else 125.
/// A failure the child reported over the start-up channel carries its own code.
pub fn code_for(error: &anyhow::Error) -> u8 {
    if let Some(failure) = error.downcast_ref::<SetupFailed>() {
        return failure.code;
    }
    match error.downcast_ref::<CommandError>() {
        Some(command_error) => command_error.exit_code(),
        None => SETUP_FAILED,
    }
}

/// Prints an error as one line on stderr, with every cause after a colon.
pub fn print_error(error: &anyhow::Error) {
    eprintln!("byoc: {error:#}");
}

/// Turns the result of a run into the process's exit code; `main` returns this.
pub fn report(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            print_error(&error);
            ExitCode::from(code_for(&error))
        }
    }
}

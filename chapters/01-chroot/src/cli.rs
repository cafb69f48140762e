// Your copy of solutions/01-chroot/src/cli.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The command line shared by every chapter: `byoc [--trace] run --rootfs DIR -- CMD [ARGS]`.
//! Each chapter's `main.rs` adds its own options around [`RunArgs`]. Book: "Setting up".

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::{exit, trace};

/// What every chapter's `main` does: parse the command line, turn on `--trace` if asked,
/// run, and exit with the run's code (printing the error, if there was one).
pub fn main_with<R: Args>(run: impl FnOnce(R) -> anyhow::Result<u8>) -> std::process::ExitCode {
    let cli = match Cli::<R>::try_parse() {
        Ok(cli) => cli,
        Err(error) => return report_usage(error),
    };
    trace::enable(cli.trace);
    let Command::Run(args) = cli.command;
    exit::report(run(args))
}

/// Prints clap's message. `--help` and `--version` are not failures; a mistake on the command
/// line is the runtime's failure, 125, like any other (clap on its own would exit with 2).
fn report_usage(error: clap::Error) -> std::process::ExitCode {
    let _ = error.print();
    if error.use_stderr() {
        std::process::ExitCode::from(exit::SETUP_FAILED)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// The whole command line. `R` is the chapter's own `run` options.
#[derive(Debug, Parser)]
#[command(
    name = "byoc",
    about = "Build Your Own Container: a teaching container runtime"
)]
pub struct Cli<R: Args> {
    /// Narrate each system call on stderr as it is made.
    #[arg(long, global = true)]
    pub trace: bool,

    #[command(subcommand)]
    pub command: Command<R>,
}

#[derive(Debug, Subcommand)]
pub enum Command<R: Args> {
    /// Run a command in a new container.
    Run(R),
}

/// Chapter 1's `run` options: where the root filesystem is, and what to run in it.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The directory that becomes the container's `/`.
    #[arg(long, value_name = "DIR")]
    pub rootfs: PathBuf,

    /// The command to run, and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

// Your copy of solutions/01-chroot/src/cli.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The command line shared by every chapter: `byoc [--trace] COMMAND ...`. Each chapter's
//! `main.rs` says which commands it has (`run` in every chapter; later `image` and
//! `pull`) and what their options are. Book: "Setting up".

use clap::{Parser, Subcommand};

use crate::{exit, trace};

/// What every chapter's `main` does: parse the command line, turn on `--trace` if asked,
/// carry out the command, and exit with its code (printing the error, if there was one).
pub fn main_with<C: Subcommand>(
    carry_out: impl FnOnce(C) -> anyhow::Result<u8>,
) -> std::process::ExitCode {
    let cli = match Cli::<C>::try_parse() {
        Ok(cli) => cli,
        Err(error) => return report_usage(error),
    };
    trace::enable(cli.trace);
    exit::report(carry_out(cli.command))
}

/// Prints clap's message. `--help` and `--version` are not failures; a mistake on the
/// command line is the runtime's failure, 125, like any other (clap on its own would exit
/// with 2).
fn report_usage(error: clap::Error) -> std::process::ExitCode {
    let _ = error.print();
    if error.use_stderr() {
        std::process::ExitCode::from(exit::SETUP_FAILED)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// The whole command line. `C` is the chapter's own set of commands.
#[derive(Debug, Parser)]
#[command(
    name = "byoc",
    about = "Build Your Own Container: a teaching container runtime"
)]
pub struct Cli<C: Subcommand> {
    /// Narrate each system call on stderr as it is made.
    #[arg(long, global = true)]
    pub trace: bool,

    #[command(subcommand)]
    pub command: C,
}

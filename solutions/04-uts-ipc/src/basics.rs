//! The options of `run` that chapters 1 to 4 added, as groups that `run` from chapter 4
//! on flattens: the root filesystem, and a terminal, an init, a host name. Book: section
//! 4.1.

use std::path::PathBuf;

// ANCHOR: basics
/// Where the container's `/` comes from in chapters 1 to 7: one directory. (Chapter 8
/// adds layers, with a group of its own in its place.)
#[derive(Debug, Clone, clap::Args)]
pub struct RootfsArg {
    /// The directory that becomes the container's `/`.
    #[arg(long, value_name = "DIR")]
    pub rootfs: PathBuf,
}

/// `run`'s other options from chapters 1 to 4.
#[derive(Debug, Clone, clap::Args)]
pub struct BasicArgs {
    /// Give the container a terminal of its own, for an interactive shell.
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Run a tiny init as PID 1 that reaps orphans and forwards signals to the command.
    #[arg(long)]
    pub init: bool,

    /// The container's host name (default: its short container id).
    // A name that starts with '-' is taken as a name, so the check can say what is wrong
    // with it, instead of clap suggesting `-- -x`, which would make it the command.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub hostname: Option<String>,
}
// ANCHOR_END: basics

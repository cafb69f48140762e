//! `ps` and `rm`: the containers under the data root, as `docker ps` lists them, and
//! their removal. Book: section 8.4.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use crate::container;
use crate::dataroot::DataRootArgs;
use crate::records::Runtime;
use crate::state::{self, State, Status};

/// `ps`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct PsArgs {
    /// Show every container, not only the running ones.
    #[arg(short, long)]
    pub all: bool,

    /// `table` (the default), or `json`: one JSON object per line, for scripts.
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: Format,

    #[command(flatten)]
    pub data_root: DataRootArgs,
}

/// How `ps` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// One container, as `ps` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    #[serde(rename = "ID")]
    id: String,
    names: String,
    root: String,
    command: String,
    /// Seconds since 1970.
    created_at: u64,
    /// `running` or `exited`.
    state: &'static str,
    /// As docker says it: `Up 3 seconds`, `Exited (137) 2 minutes ago`.
    status: String,
    /// `None` while it runs, or when its runtime was killed before it could say.
    exit_code: Option<u8>,
}

// ANCHOR: ps
/// `ps [-a] [--format json]`.
pub fn ps(args: &PsArgs) -> Result<u8> {
    let data_root = args.data_root.data_root()?;
    let mut states = container::all(&data_root);
    states.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let now = state::now();
    let rows: Vec<Row> = states
        .iter()
        .map(|state| row(state, now))
        .filter(|row| args.all || row.state == "running")
        .collect();
    match args.format {
        Format::Table => print_table(&rows),
        Format::Json => {
            for row in &rows {
                println!("{}", serde_json::to_string(row)?);
            }
        }
    }
    Ok(0)
}
// ANCHOR_END: ps

fn row(state: &State, now: u64) -> Row {
    let (state_word, status, exit_code) = match state.status_now() {
        Status::Running(_) => {
            let up = format!("Up {}", human(now.saturating_sub(state.created)));
            ("running", up, None)
        }
        Status::Exited(Some(ended)) => {
            let ago = human(now.saturating_sub(ended.at));
            let status = format!("Exited ({}) {ago} ago", ended.code);
            ("exited", status, Some(ended.code))
        }
        Status::Exited(None) => ("exited", "Exited (unknown)".to_string(), None),
    };
    Row {
        id: state.id.clone(),
        names: state.name.clone().unwrap_or_default(),
        root: state.root.clone(),
        command: state.command.clone(),
        created_at: state.created,
        state: state_word,
        status,
        exit_code,
    }
}

/// A duration as docker says it: `3 seconds`, `About a minute`, `5 minutes`, `2 hours`,
/// `3 days`.
fn human(seconds: u64) -> String {
    match seconds {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        2..=59 => format!("{seconds} seconds"),
        60..=119 => "About a minute".to_string(),
        120..=3599 => format!("{} minutes", seconds / 60),
        3600..=7199 => "About an hour".to_string(),
        7200..=172_799 => format!("{} hours", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

/// A command as docker's table shows it: in quotes, cut to 20 characters with `…`.
fn shortened(command: &str) -> String {
    let mut chars = command.chars();
    let head: String = chars.by_ref().take(20).collect();
    match chars.next() {
        Some(_) => format!("\"{head}…\""),
        None => format!("\"{head}\""),
    }
}

fn print_table(rows: &[Row]) {
    let created =
        |row: &Row| format!("{} ago", human(state::now().saturating_sub(row.created_at)));
    let mut lines = vec![[
        "CONTAINER ID".to_string(),
        "ROOT".to_string(),
        "COMMAND".to_string(),
        "CREATED".to_string(),
        "STATUS".to_string(),
        "NAMES".to_string(),
    ]];
    for row in rows {
        lines.push([
            row.id.clone(),
            row.root.clone(),
            shortened(&row.command),
            created(row),
            row.status.clone(),
            row.names.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|column| {
            lines
                .iter()
                .map(|line| line[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("   ").trim_end());
    }
}

/// `rm`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct RmArgs {
    /// Kill a running container first, then remove it.
    #[arg(short, long)]
    pub force: bool,

    /// The containers, by name or id.
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,

    #[command(flatten)]
    pub data_root: DataRootArgs,
}

// ANCHOR: rm
/// `rm [-f] CONTAINER...`: each container's directory and name go. A running one is
/// refused unless `-f`; with it, the container is killed first, and its runtime, which
/// then cleans up after it, is given a moment to end.
pub fn rm(args: &RmArgs) -> Result<u8> {
    let data_root = args.data_root.data_root()?;
    for given in &args.containers {
        let id = container::find(&data_root, given)?;
        let dir = crate::dataroot::container(&data_root, &id);
        if !dir.exists() {
            // A name left by a runtime killed before it made the directory: it leads
            // nowhere, and goes.
            container::remove(&data_root, &id, Some(given))?;
            println!("{given}");
            continue;
        }
        let state = State::read(&dir)?;
        if let Status::Running(runtime) = state.status_now() {
            if !args.force {
                bail!("container {given} is running: it must end first, or use rm -f");
            }
            kill_container(&runtime)?;
        }
        container::remove(&data_root, &id, state.name.as_deref())?;
        println!("{given}");
    }
    Ok(0)
}
// ANCHOR_END: rm

/// Kills the container its runtime runs (the runtime's child, its PID 1) with SIGKILL,
/// and waits up to 10 seconds for the runtime to see it and end.
fn kill_container(runtime: &Runtime) -> Result<()> {
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", runtime.pid))
            .unwrap_or_default();
    for child in children
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
    {
        let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while runtime.is_alive() {
        if Instant::now() > deadline {
            bail!(
                "the runtime of the container (PID {}) did not end",
                runtime.pid
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_dockers() {
        assert_eq!(human(3), "3 seconds");
        assert_eq!(human(61), "About a minute");
        assert_eq!(human(150), "2 minutes");
        assert_eq!(human(3 * 3600), "3 hours");
        assert_eq!(human(3 * 86_400), "3 days");
    }
}

//! A container's state, kept in `containers/ID/state` so that it outlives the runtime
//! that ran it: its name, its root and command (to show), when it was made, and how it
//! is: running (and which runtime runs it), or exited (and with which code). Book:
//! section 8.4.
//!
//! The file is a record like the others under the data root: written whole to a
//! temporary name and renamed into place, and checked when read back. What `ps` shows
//! of it is shown, never acted on; what `rm` acts on (the directory) is rebuilt from the
//! id.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};

use crate::records::{self, Runtime};

/// How a container is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Its runtime runs it.
    Running(Runtime),
    /// It has ended, with this exit code, at this time (seconds since 1970). `None`: its
    /// runtime was killed before it could say.
    Exited(Option<Ended>),
}

/// How and when a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub code: u8,
    pub at: u64,
}

impl Ended {
    /// Ended now, with `code`.
    pub fn now(code: u8) -> Ended {
        Ended { code, at: now() }
    }
}

/// What `containers/ID/state` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub id: String,
    pub name: Option<String>,
    /// Seconds since 1970 when the container was made.
    pub created: u64,
    /// Its root as `ps` shows it: the directory, or the top layer and how many.
    pub root: String,
    /// Its layers, lowest first (none for a directory): `diff` looks in them to tell a
    /// change from an addition.
    pub layers: Vec<PathBuf>,
    /// Its command as `ps` shows it.
    pub command: String,
    pub status: Status,
    /// Started with `--rm`: if its runtime dies before it can remove it, the next start
    /// does.
    pub remove_at_end: bool,
    /// The named volumes it has: `volume rm` refuses them while it exists.
    pub volumes: Vec<String>,
}

/// The state file of the container whose directory is `dir`.
fn path_in(dir: &Path) -> PathBuf {
    dir.join("state")
}

impl State {
    /// A container being started now by this runtime.
    pub fn starting(
        id: &str,
        name: Option<&str>,
        root: String,
        layers: &[PathBuf],
        command: String,
    ) -> Result<State> {
        Ok(State {
            id: id.to_string(),
            name: name.map(str::to_string),
            created: now(),
            root,
            layers: layers.to_vec(),
            command,
            status: Status::Running(Runtime::this()?),
            remove_at_end: false,
            volumes: Vec::new(),
        })
    }

    /// Writes it into container directory `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        records::write(&path_in(dir), &self.to_text())
    }

    /// The status as it really is: a state that says running, but whose runtime has
    /// died (killed with SIGKILL, say), has exited, with no code known.
    pub fn status_now(&self) -> Status {
        match &self.status {
            Status::Running(runtime) if !runtime.is_alive() => Status::Exited(None),
            status => status.clone(),
        }
    }

    fn to_text(&self) -> String {
        let status = match &self.status {
            Status::Running(runtime) => {
                format!("running {} {}", runtime.pid, runtime.started)
            }
            Status::Exited(Some(ended)) => format!("exited {} {}", ended.code, ended.at),
            Status::Exited(None) => "exited unknown".to_string(),
        };
        let volumes: String = self
            .volumes
            .iter()
            .map(|volume| format!("volume {volume}\n"))
            .collect();
        let layers: String = self
            .layers
            .iter()
            .map(|layer| format!("layer {}\n", one_line(&layer.display().to_string())))
            .collect();
        format!(
            "id {}\nname {}\ncreated {}\nroot {}\n{layers}command {}\nstatus {status}\n\
             remove {}\n{volumes}",
            self.id,
            self.name.as_deref().unwrap_or(""),
            self.created,
            one_line(&self.root),
            one_line(&self.command),
            if self.remove_at_end { "yes" } else { "no" },
        )
    }

    /// Reads the state in container directory `dir`, checked: an id that is the
    /// directory's own, a name the rules allow, numbers that are numbers.
    pub fn read(dir: &Path) -> Result<State> {
        let path = path_in(dir);
        records::check_owned(&path)?;
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {path:?}"))?;
        let state = State::parse(&text).map_err(|why| anyhow!("{path:?}: {why}"))?;
        let own_id = dir.file_name().unwrap_or_default().to_string_lossy();
        if state.id != own_id {
            return Err(anyhow!(
                "{path:?} names container {}, not {own_id}",
                state.id
            ));
        }
        Ok(state)
    }

    fn parse(text: &str) -> Result<State, String> {
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
                .ok_or(format!("no {key} line"))
        };
        let id = field("id")?.to_string();
        records::check_id(&id)?;
        let name = match field("name")? {
            "" => None,
            name => Some(check_name(name)?.to_string()),
        };
        let created = field("created")?
            .parse()
            .map_err(|_| "created is not a number of seconds".to_string())?;
        let status = parse_status(field("status")?)?;
        let remove_at_end = match field("remove")? {
            "yes" => true,
            "no" => false,
            other => return Err(format!("remove {other:?} is not yes or no")),
        };
        let volumes = text
            .lines()
            .filter_map(|line| line.strip_prefix("volume "))
            .map(|name| check_name(name).map(str::to_string))
            .collect::<Result<_, _>>()?;
        let layers = text
            .lines()
            .filter_map(|line| line.strip_prefix("layer "))
            .map(PathBuf::from)
            .collect();
        Ok(State {
            id,
            name,
            created,
            layers,
            root: field("root")?.to_string(),
            command: field("command")?.to_string(),
            status,
            remove_at_end,
            volumes,
        })
    }
}

fn parse_status(text: &str) -> Result<Status, String> {
    let words: Vec<&str> = text.split(' ').collect();
    match words.as_slice() {
        ["running", pid, started] => Ok(Status::Running(Runtime::parse(pid, started)?)),
        ["exited", "unknown"] => Ok(Status::Exited(None)),
        ["exited", code, at] => {
            let code = code
                .parse()
                .map_err(|_| format!("exit code {code:?} is not 0 to 255"))?;
            let at = at
                .parse()
                .map_err(|_| format!("end time {at:?} is not a number"))?;
            Ok(Status::Exited(Some(Ended { code, at })))
        }
        _ => Err(format!("status {text:?} is not running or exited")),
    }
}

/// A line with no newline or other control character in it, to keep one field per line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Seconds since 1970.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

// ANCHOR: check_name
/// Docker's rule for a container's name: a letter or digit, then letters, digits, `_`,
/// `.` or `-`, at least two in all. So a name is never `..`, never starts with `.` or
/// `-`, and never holds a `/`: it is safe as a file name under `names/`. Up to 64
/// characters here. (A name that is spelled like an id loses to the id in a look-up.)
pub fn check_name(name: &str) -> Result<&str, String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    match first_ok && rest_ok && (2..=64).contains(&name.len()) {
        true => Ok(name),
        false => Err(format!(
            "{name:?} is not a container name: a letter or digit, then letters, digits, \
             '_', '.' or '-', 2 to 64 in all (as docker names them)"
        )),
    }
}
// ANCHOR_END: check_name

/// A command line as `ps` shows it: its words, each in quotes if it has a space.
pub fn command_line(args: &[std::ffi::OsString]) -> String {
    let words: Vec<String> = args
        .iter()
        .map(|arg| {
            let word = arg.to_string_lossy();
            match word.contains(' ') || word.is_empty() {
                true => format!("{word:?}"),
                false => word.into_owned(),
            }
        })
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reads_back_as_it_was_written() {
        let state = State {
            id: "0123456789ab".into(),
            name: Some("web-1".into()),
            created: 1_765_000_000,
            root: "/l/top (2 layers)".into(),
            layers: vec!["/l/low".into(), "/l/top".into()],
            command: "sh -c 'echo hi'".into(),
            status: Status::Exited(Some(Ended {
                code: 137,
                at: 1_765_000_010,
            })),
            remove_at_end: true,
            volumes: vec!["data".into()],
        };
        assert_eq!(State::parse(&state.to_text()), Ok(state));
    }

    #[test]
    fn forged_states_are_refused() {
        let good = "id 0123456789ab\nname web\ncreated 1\nroot r\ncommand c\n\
                    status exited 0 2\nremove no\n";
        assert!(State::parse(good).is_ok());
        for (from, to) in [
            ("id 0123456789ab", "id ../../victim"),
            ("name web", "name ../x"),
            ("status exited 0 2", "status exited 300 2"),
            ("status exited 0 2", "status running 0 1"),
            ("created 1", "created soon"),
        ] {
            let forged = good.replace(from, to);
            assert!(State::parse(&forged).is_err(), "{forged}");
        }
    }

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["web", "a1", "my_app.v2-3"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "-web",
            ".hidden",
            "a/b",
            "..",
            "ü-name",
            &"x".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}

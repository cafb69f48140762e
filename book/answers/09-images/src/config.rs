// solutions/09-images/src/config.rs without its exercise markers, made by `cargo xtask gen` for the book's folded answers.
//! An image's config: the process its containers run (Entrypoint, Cmd, Env, WorkingDir,
//! User) and the digests of its layers' tars (`rootfs.diff_ids`). `run IMAGE` builds the
//! same `Process` from it that `run --rootfs` builds from flags, with docker's rules for
//! what the command line overrides. Book: section 9.4.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::oci::read_json;
use crate::spec::{Process, User};

/// The parts of an OCI image config the kit reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: ProcessConfig,
    pub rootfs: RootFs,
}

/// What the image says its process is (docker's names, capitalised).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Documentation only: a port is published with `-p`, never because an image asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

/// The layers' tars, lowest first, by the digest of their uncompressed bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "digests")]
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Reads a config blob (already checked against its descriptor), and checks it names
    /// one tar for each of the manifest's `layers`.
    pub fn read(path: &Path, layers: usize) -> Result<ImageConfig> {
        let config: ImageConfig = read_json(path)?;
        if config.rootfs.kind != "layers" {
            bail!(
                "{path:?}: rootfs.type is {:?}, not \"layers\"",
                config.rootfs.kind
            );
        }
        let named = config.rootfs.diff_ids.len();
        if named != layers {
            bail!("{path:?} names {named} layer tars, and its manifest {layers} layers");
        }
        if config.os != "linux" {
            bail!(
                "{path:?}: the image is for {:?}, and this is Linux",
                config.os
            );
        }
        Ok(config)
    }
}

/// What `run IMAGE` may override, as docker's flags do.
#[derive(Debug, Default)]
pub struct Overrides {
    /// The command after the image: replaces `Cmd`.
    pub command: Vec<OsString>,
    /// `--entrypoint`: replaces `Entrypoint`, and drops `Cmd`.
    pub entrypoint: Option<String>,
    /// `-e NAME=value` (or `-e NAME`, from the caller's environment): over the image's.
    pub env: Vec<String>,
    pub workdir: Option<PathBuf>,
    pub user: Option<User>,
    pub terminal: bool,
}

// ANCHOR: process
/// The container's process: the entrypoint, then the command (the one given, or the
/// image's `Cmd`); the kit's environment, then the image's, then `-e`; the image's
/// working directory and user unless given. `find_user` reads a user name in the image's
/// `/etc/passwd`.
pub fn process(
    image: &ProcessConfig,
    given: Overrides,
    find_user: impl Fn(&str) -> Result<User>,
) -> Result<Process> {
    let args = command_line(image, given.entrypoint.as_deref(), given.command);
    if args.is_empty() {
        bail!("the image names no command (no Entrypoint and no Cmd): give one after it");
    }
    let mut process = Process::new(args, given.terminal)?;
    merge_env(&mut process.env, image.env.iter().flatten().cloned());
    merge_env(
        &mut process.env,
        given.env.into_iter().filter_map(from_caller),
    );
    process.cwd = match (given.workdir, &image.working_dir) {
        (Some(dir), _) => dir,
        (None, Some(dir)) if !dir.is_empty() => PathBuf::from(dir),
        (None, _) => PathBuf::from("/"),
    };
    process.user = match (given.user, &image.user) {
        (Some(user), _) => user,
        (None, Some(user)) if !user.is_empty() => find_user(user)?,
        (None, _) => User::default(),
    };
    Ok(process)
}
// ANCHOR_END: process

// ANCHOR: command_line
/// The words the container runs: docker's rule. The entrypoint (`--entrypoint`, or the
/// image's `Entrypoint`), then the command (the words after the image, or the image's
/// `Cmd`). A new entrypoint drops the image's `Cmd`, which was written for the old one.
pub fn command_line(
    image: &ProcessConfig,
    entrypoint: Option<&str>,
    command: Vec<OsString>,
) -> Vec<OsString> {
    let mut args = match entrypoint {
        Some(entrypoint) => vec![OsString::from(entrypoint)],
        None => strings(image.entrypoint.as_deref().unwrap_or_default()),
    };
    match (command.is_empty(), entrypoint) {
        (false, _) => args.extend(command),
        (true, Some(_)) => {} // a new entrypoint drops the image's Cmd
        (true, None) => args.extend(strings(image.cmd.as_deref().unwrap_or_default())),
    }
    args
}
// ANCHOR_END: command_line

/// Words of an image's config, as a command line's.
pub fn strings(words: &[String]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

/// `NAME` alone takes the caller's value, as docker's `-e NAME` does, and is left out
/// when the caller has none.
fn from_caller(given: String) -> Option<String> {
    match given.contains('=') {
        true => Some(given),
        false => {
            let value = std::env::var(&given).ok()?;
            Some(format!("{given}={value}"))
        }
    }
}

/// Adds each `NAME=value` of `more`, replacing a variable of the same name.
fn merge_env(env: &mut Vec<String>, more: impl Iterator<Item = String>) {
    for variable in more {
        let name = variable.split('=').next().unwrap_or_default().to_string();
        env.retain(|old| old.split('=').next() != Some(name.as_str()));
        env.push(variable);
    }
}

// ANCHOR: user
/// An image's `User`: `UID`, `UID:GID`, `NAME` or `NAME:GROUP`, names looked up in the
/// image's own `/etc/passwd` and `/etc/group` (`read` gives their text).
pub fn parse_user(text: &str, read: impl Fn(&str) -> Option<String>) -> Result<User> {
    let (user, group) = match text.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (text, None),
    };
    let passwd = read("etc/passwd").unwrap_or_default();
    let (uid, primary) = match user.parse::<u32>() {
        Ok(uid) => (uid, id_in(&passwd, 2, uid).and_then(|line| field(&line, 3))),
        Err(_) => {
            let line = line_named(&passwd, user).with_context(|| {
                format!("the image's user {user:?} is not in its /etc/passwd")
            })?;
            (
                field(&line, 2).context("a bad /etc/passwd line")?,
                field(&line, 3),
            )
        }
    };
    let gid = match group {
        None => primary.unwrap_or(0),
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let groups = read("etc/group").unwrap_or_default();
                let line = line_named(&groups, group).with_context(|| {
                    format!("the image's group {group:?} is not in its /etc/group")
                })?;
                field(&line, 2).context("a bad /etc/group line")?
            }
        },
    };
    Ok(User {
        uid,
        gid,
        additional_gids: Vec::new(),
    })
}
// ANCHOR_END: user

fn line_named(file: &str, name: &str) -> Option<String> {
    file.lines()
        .find(|line| line.split(':').next() == Some(name))
        .map(str::to_string)
}

fn id_in(file: &str, index: usize, id: u32) -> Option<String> {
    file.lines()
        .find(|line| field(line, index) == Some(id))
        .map(str::to_string)
}

fn field(line: &str, index: usize) -> Option<u32> {
    line.split(':').nth(index)?.parse().ok()
}

/// Digests in JSON, each checked as it is read.
mod digests {
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    use crate::digest::Digest;

    pub fn serialize<S: Serializer>(list: &[Digest], to: S) -> Result<S::Ok, S::Error> {
        let texts: Vec<String> = list.iter().map(Digest::to_string).collect();
        texts.serialize(to)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        from: D,
    ) -> Result<Vec<Digest>, D::Error> {
        let texts = Vec::<String>::deserialize(from)?;
        texts
            .iter()
            .map(|text| text.parse().map_err(D::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ProcessConfig {
        ProcessConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["default".into()]),
            env: Some(vec!["PATH=/image/bin".into(), "APP=1".into()]),
            working_dir: Some("/app".into()),
            user: Some("app".into()),
            ..ProcessConfig::default()
        }
    }

    fn passwd(name: &str) -> Option<String> {
        match name {
            "etc/passwd" => {
                Some("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n".into())
            }
            _ => Some("staff:x:50:\n".into()),
        }
    }

    #[test]
    fn the_command_line_overrides_as_docker_does() {
        let find = |user: &str| parse_user(user, passwd);
        let plain = process(&image(), Overrides::default(), find).unwrap();
        assert_eq!(plain.args, ["/entry", "default"]);
        assert!(plain.env.contains(&"PATH=/image/bin".to_string()));
        assert_eq!((plain.user.uid, plain.user.gid), (1000, 1001));
        assert_eq!(plain.cwd, Path::new("/app"));
        let given = Overrides {
            command: vec!["other".into()],
            env: vec!["APP=2".into()],
            ..Overrides::default()
        };
        let changed = process(&image(), given, find).unwrap();
        assert_eq!(changed.args, ["/entry", "other"]);
        assert!(changed.env.contains(&"APP=2".to_string()));
        assert!(!changed.env.contains(&"APP=1".to_string()));
        let entry = Overrides {
            entrypoint: Some("sh".into()),
            ..Overrides::default()
        };
        assert_eq!(process(&image(), entry, find).unwrap().args, ["sh"]);
    }

    #[test]
    fn a_variable_named_alone_takes_the_callers_value_or_is_left_out() {
        assert_eq!(from_caller("A=1".into()), Some("A=1".into()));
        let home = std::env::var("HOME")
            .ok()
            .map(|home| format!("HOME={home}"));
        assert_eq!(from_caller("HOME".into()), home);
        assert_eq!(from_caller("BYOC_NOT_SET_ANYWHERE".into()), None);
    }

    #[test]
    fn users_are_ids_or_names_of_the_images_own_files() {
        assert_eq!(parse_user("app", passwd).unwrap().uid, 1000);
        assert_eq!(parse_user("0:staff", passwd).unwrap().gid, 50);
        assert_eq!(parse_user("1000", passwd).unwrap().gid, 1001);
        let error = parse_user("nobody", passwd).unwrap_err();
        assert!(
            error.to_string().contains("not in its /etc/passwd"),
            "{error}"
        );
    }
}

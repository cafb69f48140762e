// Your copy of solutions/10-registry/src/credentials.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Credentials for registries, where docker and podman keep them: `auths` in
//! `~/.docker/config.json` and in `$XDG_RUNTIME_DIR/containers/auth.json`, each entry
//! `{"auth": base64("USER:PASSWORD")}` under the registry's name. `login` writes them,
//! `logout` removes them, and the file is the caller's alone (mode 0600): it holds a
//! password. Book: section 10.3.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// A user and password for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// `USER:PASSWORD`, as `--creds` takes them.
    pub fn parse(text: &str) -> Result<Credentials> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials {
                user: user.to_string(),
                password: password.to_string(),
            }),
            _ => bail!(
                "credentials are USER:PASSWORD, and these have no user before a ':'"
            ),
        }
    }

    /// The value of `Authorization: Basic ...`.
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// The files credentials are read from, in order: podman's, then docker's.
pub fn files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(runtime).join("containers/auth.json"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".docker/config.json"));
    }
    files
}

// ANCHOR: find
/// The credentials the first of `files` that has any keeps for `registry`.
pub fn find(files: &[PathBuf], registry: &str) -> Result<Option<Credentials>> {
    for file in files {
        let Some(auths) = read_auths(file)? else {
            continue;
        };
        let entry = names_of(registry).iter().find_map(|name| auths.get(name));
        if let Some(auth) = entry
            .and_then(|entry| entry.get("auth"))
            .and_then(Value::as_str)
        {
            return decode(auth)
                .map(Some)
                .with_context(|| format!("{file:?}: {registry}"));
        }
    }
    Ok(None)
}
// ANCHOR_END: find

/// The names a file may keep a registry's credentials under: its own, as a URL, and
/// for Docker Hub the name docker's `login` has always used.
fn names_of(registry: &str) -> Vec<String> {
    let mut names = vec![registry.to_string(), format!("https://{registry}")];
    if registry == crate::reference::DOCKER_HUB {
        names.push("https://index.docker.io/v1/".to_string());
        names.push("index.docker.io".to_string());
    }
    names
}

/// `base64(USER:PASSWORD)`, read back.
fn decode(auth: &str) -> Result<Credentials> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .context("its auth is not base64")?;
    let text = String::from_utf8(bytes).context("its auth is not text")?;
    Credentials::parse(&text)
}

/// The `auths` object of a credentials file; `None` when there is no file.
fn read_auths(file: &Path) -> Result<Option<Map<String, Value>>> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("cannot read {file:?}")),
    };
    let document: Value =
        serde_json::from_str(&text).with_context(|| format!("{file:?} is not JSON"))?;
    Ok(Some(
        document
            .get("auths")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    ))
}

// ANCHOR: store
/// Writes `credentials` for `registry` into `file` (`None`: removes them), keeping the
/// rest of the file. Written whole under a temporary name of mode 0600, then renamed.
pub fn store(
    file: &Path,
    registry: &str,
    credentials: Option<&Credentials>,
) -> Result<bool> {
    // Only a file that is not there starts empty: one that cannot be read is somebody's
    // credentials, not to be written over.
    let mut document: Value = match fs::read_to_string(file) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{file:?} is not JSON"))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(error) => return Err(error).with_context(|| format!("cannot read {file:?}")),
    };
    let object = document
        .as_object_mut()
        .with_context(|| format!("{file:?} is not an object"))?;
    let auths = object.entry("auths").or_insert_with(|| json!({}));
    let auths = auths
        .as_object_mut()
        .with_context(|| format!("{file:?}: auths is not an object"))?;
    let changed = match credentials {
        Some(credentials) => {
            let pair = format!("{}:{}", credentials.user, credentials.password);
            let auth = base64::engine::general_purpose::STANDARD.encode(pair);
            auths.insert(registry.to_string(), json!({ "auth": auth }));
            true
        }
        // Every name a pull would read them under goes (all of them: not `any`, which
        // would stop at the first), or a pull would still use them.
        None => {
            let mut removed = false;
            for name in names_of(registry) {
                removed |= auths.remove(&name).is_some();
            }
            removed
        }
    };
    if changed {
        write_private(file, &serde_json::to_string_pretty(&document)?)?;
    }
    Ok(changed)
}
// ANCHOR_END: store

// ANCHOR: write_private
/// Writes `text` to `file` as the caller's alone: mode 0600 from the start, never a moment
/// readable by others.
fn write_private(file: &Path, text: &str) -> Result<()> {
    let dir = file.parent().context("a file with no directory")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot make {dir:?}"))?;
    let temporary = dir.join(format!(".{}.new", std::process::id()));
    // One left by an earlier process of the same number, killed half way: stale.
    let _ = fs::remove_file(&temporary);
    let mut out = fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot write {temporary:?}"))?;
    out.write_all(text.as_bytes())?;
    fs::rename(&temporary, file).with_context(|| format!("cannot write {file:?}"))
}
// ANCHOR_END: write_private

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn credentials_go_in_and_come_out_and_the_file_is_the_users_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".docker/config.json");
        let alice = Credentials::parse("alice:s3cret:with:colons").unwrap();
        assert!(store(&file, "localhost:5000", Some(&alice)).unwrap());
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let files = [file.clone()];
        assert_eq!(find(&files, "localhost:5000").unwrap(), Some(alice.clone()));
        assert_eq!(find(&files, "elsewhere").unwrap(), None);
        assert!(store(&file, "localhost:5000", None).unwrap());
        assert_eq!(find(&files, "localhost:5000").unwrap(), None);
        assert!(
            !store(&file, "localhost:5000", None).unwrap(),
            "nothing left to remove"
        );
        assert_eq!(alice.basic(), "Basic YWxpY2U6czNjcmV0OndpdGg6Y29sb25z");
    }

    #[test]
    fn docker_hubs_old_key_is_found_too() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        fs::write(
            &file,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let found = find(std::slice::from_ref(&file), "docker.io").unwrap();
        assert_eq!(found.map(|c| c.user), Some("u".to_string()));
        assert!(store(&file, "docker.io", None).unwrap());
        assert_eq!(
            find(&[file], "docker.io").unwrap(),
            None,
            "logout took docker's key"
        );
    }
}

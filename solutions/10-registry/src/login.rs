//! `login REGISTRY` and `logout REGISTRY`: credentials checked against the registry,
//! then kept where docker and podman keep them, or taken away. Book: section 10.3.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::credentials::{self, Credentials};
use crate::http::Http;
use crate::reference::{DOCKER_HUB, DOCKER_HUB_API};
use crate::session::Session;

/// `login`'s options.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: `HOST[:PORT]` (docker.io if none).
    #[arg(default_value = DOCKER_HUB)]
    pub registry: String,

    /// The user.
    #[arg(short, long)]
    pub username: String,

    /// Read the password from standard input (a password on the command line is seen
    /// by every user in `ps`).
    #[arg(long)]
    pub password_stdin: bool,

    /// The credentials file to write (default: podman's, else docker's).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    /// A registry that may be spoken to in plain HTTP (localhost always may).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
}

/// `logout`'s options.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry: `HOST[:PORT]` (docker.io if none).
    #[arg(default_value = DOCKER_HUB)]
    pub registry: String,

    /// The credentials file (default: both podman's and docker's).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

// ANCHOR: login
/// Checks the user and password with the registry (`GET /v2/`, answering its challenge),
/// then stores them.
pub fn login(args: &LoginArgs) -> Result<u8> {
    if !args.password_stdin {
        bail!("give the password on standard input, with --password-stdin");
    }
    let mut password = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut password)
        .context("cannot read the password from standard input")?;
    let credentials = Credentials {
        user: args.username.clone(),
        password: password.trim_end_matches(['\n', '\r']).to_string(),
    };
    let http = Http::new(&args.insecure, Duration::from_secs(30));
    let host = api_host(&args.registry);
    let session = Session::for_registry(&http, host, Some(credentials.clone()));
    let reply = session.get(&session.root_url(), &[])?;
    match reply.status {
        200 => {}
        401 | 403 => bail!(
            "{}: the registry refused {} (wrong user or password?)",
            args.registry,
            args.username
        ),
        _ => return Err(reply.refusal(&format!("login at {}", args.registry))),
    }
    let file = match &args.authfile {
        Some(file) => file.clone(),
        None => credentials::files()
            .into_iter()
            .next()
            .context("no HOME and no XDG_RUNTIME_DIR: nowhere to keep credentials")?,
    };
    credentials::store(&file, &args.registry, Some(&credentials))?;
    println!("Login Succeeded (kept in {})", file.display());
    Ok(0)
}
// ANCHOR_END: login

/// Removes the credentials for the registry from every file that has them.
pub fn logout(args: &LogoutArgs) -> Result<u8> {
    let files = match &args.authfile {
        Some(file) => vec![file.clone()],
        None => credentials::files(),
    };
    let mut removed = false;
    for file in files.iter().filter(|file| file.exists()) {
        removed |= credentials::store(file, &args.registry, None)?;
    }
    match removed {
        true => println!("Removed login credentials for {}", args.registry),
        false => println!("Not logged in to {}", args.registry),
    }
    Ok(0)
}

/// Where the registry's API answers (Docker Hub's is another host).
fn api_host(registry: &str) -> &str {
    match registry {
        DOCKER_HUB => DOCKER_HUB_API,
        other => other,
    }
}

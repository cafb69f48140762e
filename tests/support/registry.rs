//! The real Distribution registry (Debian's `docker-registry`), started by a test on
//! 127.0.0.1 at a free port with its storage in a temp dir, and stopped when dropped.
//! Images go into it with `skopeo copy`, from OCI layouts the tests make.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a test's registry checks who asks.
#[derive(Debug, Clone)]
pub enum RegistryAuth {
    /// Anyone may pull and push.
    Open,
    /// Basic auth against an htpasswd file (bcrypt entries).
    Htpasswd(PathBuf),
    /// Bearer tokens from `realm`, signed by the key whose certificate is in `bundle`.
    Token {
        realm: String,
        service: String,
        issuer: String,
        bundle: PathBuf,
    },
}

/// A running registry.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Whether the machine has what a registry test needs.
    pub fn unavailable() -> Option<String> {
        for (program, package) in
            [("docker-registry", "docker-registry"), ("skopeo", "skopeo")]
        {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .is_ok_and(|out| out.status.success());
            if !found {
                return Some(format!(
                    "{program} is not installed (apt-get install {package})"
                ));
            }
        }
        None
    }

    /// Starts a registry with `auth`, and waits until it answers.
    pub fn start(auth: RegistryAuth) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("byoc-registry-")
            .tempdir()
            .expect("a temp dir for the registry");
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(&config, config_text(dir.path(), &address, &auth))
            .expect("config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("a log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            child,
            address,
            dir,
        };
        registry.wait_until_it_answers();
        registry
    }

    fn wait_until_it_answers(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(&self.address) {
                let request =
                    format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.address);
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the registry did not answer at {}: {}",
            self.address,
            self.log()
        );
    }

    /// A credentials file of this registry's own, for skopeo (none is written to it).
    pub fn auth_file(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }

    /// What the registry wrote to its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Pushes the image `tag` of the OCI layout at `layout` as `REPOSITORY:TAG_THERE`,
    /// with skopeo; `creds` as `USER:PASSWORD` where the registry wants them.
    pub fn push(&self, layout: &Path, tag: &str, to: &str, creds: Option<&str>) {
        let mut command = Command::new("skopeo");
        command.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        // Its own credentials file: skopeo's default for an ordinary user with no
        // XDG_RUNTIME_DIR is /run/containers/UID/auth.json, which may not be theirs.
        command.env("REGISTRY_AUTH_FILE", self.auth_file());
        if let Some(creds) = creds {
            command.args(["--dest-creds", creds]);
        }
        let out = command
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{to}", self.address))
            .output()
            .expect("start skopeo");
        assert!(
            out.status.success(),
            "skopeo copy to the registry: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now (the registry takes it a moment later).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

fn config_text(dir: &Path, address: &str, auth: &RegistryAuth) -> String {
    let storage = dir.join("storage");
    let auth = match auth {
        RegistryAuth::Open => String::new(),
        RegistryAuth::Htpasswd(file) => format!(
            "auth:\n  htpasswd:\n    realm: byoc-test\n    path: {}\n",
            file.display()
        ),
        RegistryAuth::Token { realm, service, issuer, bundle } => format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
            bundle.display()
        ),
    };
    format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n{auth}",
        storage.display()
    )
}

//! The htpasswd file a registry in `auth: htpasswd` mode checks Basic credentials
//! against: one `USER:HASH` line, the hash bcrypt's, the only kind Distribution reads.

use std::path::{Path, PathBuf};

/// bcrypt's cost: low, so writing the file and each check the registry makes are quick
/// (a test's password guards nothing).
const COST: u32 = 5;

/// Writes `dir/htpasswd` with one entry, `user` with `password`; returns its path.
pub fn htpasswd_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let hash = bcrypt::hash_with_result(password, COST).expect("hash the password");
    // `$2y$`, as Apache's htpasswd writes it and Distribution's docs show it.
    let hash = hash.format_for_version(bcrypt::Version::TwoY);
    let file = dir.join("htpasswd");
    std::fs::write(&file, format!("{user}:{hash}\n")).expect("write the htpasswd file");
    file
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Registry, RegistryAuth};

    /// What curl got for `GET /v2/` with `creds` (`USER:PASSWORD`): the status code.
    fn status_of_v2(address: &str, creds: Option<&str>) -> String {
        let mut curl = std::process::Command::new("curl");
        curl.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
        if let Some(creds) = creds {
            curl.args(["-u", creds]);
        }
        let out = curl
            .arg(format!("http://{address}/v2/"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn the_registry_takes_the_right_password_and_no_other() {
        if let Some(why) = Registry::unavailable() {
            eprintln!("not run: {why}");
            return;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = htpasswd_file(dir.path(), "alice", "s3cret");
        let text = std::fs::read_to_string(&file).expect("the file");
        assert!(text.starts_with("alice:$2y$05$"), "{text}");
        let registry = Registry::start(RegistryAuth::Htpasswd(file));
        let address = &registry.address;
        assert_eq!(
            status_of_v2(address, Some("alice:s3cret")),
            "200",
            "{}",
            registry.log()
        );
        assert_eq!(status_of_v2(address, Some("alice:wrong")), "401");
        assert_eq!(status_of_v2(address, Some("bob:s3cret")), "401");
        assert_eq!(status_of_v2(address, None), "401");
    }
}

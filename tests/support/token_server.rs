//! A tiny token server, for a registry in `auth: token` mode. The registry turns a
//! client away with `401` and `WWW-Authenticate: Bearer realm=...,service=...,scope=...`;
//! the client asks the realm for a token with its Basic credentials,
//! `GET /token?service=S&scope=repository:NAME:pull`, and sends the token back to the
//! registry as `Authorization: Bearer TOKEN`.
//!
//! The token is a JWT signed with ES256 by a P-256 key made at start. The registry
//! trusts it because the key's self-signed certificate is both in the token's `x5c`
//! header and in the file its config names as `rootcertbundle`.
//!
//! One user and password are known. The right ones get every action they ask for; no
//! credentials get a token that grants nothing (the registry then refuses the pull);
//! wrong ones get a 401. HTTP/1.1 by hand over `std::net`, one request per connection.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::fake_registry::Request;
use crate::registry::RegistryAuth;

/// How long a token lasts, in seconds.
const LIFETIME: u64 = 300;

/// A running token server on 127.0.0.1, stopped when dropped.
pub struct TokenServer {
    /// Where clients ask for tokens: `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// The registry's name, the tokens' audience.
    pub service: String,
    /// Who signs the tokens, as the registry expects it.
    pub issuer: String,
    /// The certificate that signs, as PEM: the registry's `rootcertbundle`.
    pub bundle: PathBuf,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
}

/// What the server's thread and the test share.
struct Shared {
    user: String,
    password: String,
    signer: Signer,
    asked: Mutex<Vec<Request>>,
    stopping: AtomicBool,
}

impl TokenServer {
    /// Starts a token server that knows `user` with `password`.
    pub fn start(user: &str, password: &str) -> TokenServer {
        let dir = tempfile::Builder::new()
            .prefix("byoc-token-")
            .tempdir()
            .expect("a temp dir for the token server");
        let (service, issuer) = ("byoc-registry", "byoc-token-server");
        let (signer, certificate_pem) = Signer::new(service, issuer);
        let bundle = dir.path().join("token-signer.pem");
        std::fs::write(&bundle, certificate_pem).expect("write the certificate");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let address = listener.local_addr().expect("its address").to_string();
        let shared = Arc::new(Shared {
            user: user.to_string(),
            password: password.to_string(),
            signer,
            asked: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let for_thread = Arc::clone(&shared);
        std::thread::spawn(move || serve(listener, &for_thread));
        TokenServer {
            realm: format!("http://{address}/token"),
            service: service.to_string(),
            issuer: issuer.to_string(),
            bundle,
            shared,
            _dir: dir,
        }
    }

    /// The registry's `auth: token` settings that trust this server.
    pub fn auth(&self) -> RegistryAuth {
        RegistryAuth::Token {
            realm: self.realm.clone(),
            service: self.service.clone(),
            issuer: self.issuer.clone(),
            bundle: self.bundle.clone(),
        }
    }

    /// How many requests the server answered, refused ones too: a client that reuses
    /// its token asks once, not once per request to the registry.
    pub fn requests(&self) -> usize {
        self.shared.asked.lock().unwrap().len()
    }

    /// The requests the server answered, in order: their `scope`, `account`, and
    /// whether credentials came.
    pub fn asked(&self) -> Vec<Request> {
        self.shared.asked.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        // The thread sees the flag and ends. It is not waited for: a client still
        // connected must not make the drop hang.
        self.shared.stopping.store(true, Ordering::SeqCst);
    }
}

/// The key that signs, and what a token says besides its access.
struct Signer {
    key: EncodingKey,
    /// The certificate as DER in standard base64, for the `x5c` header.
    certificate: String,
    service: String,
    issuer: String,
    /// Makes each token's `jti` unique.
    issued: AtomicU64,
}

impl Signer {
    /// A new P-256 key and its self-signed certificate; returns the certificate's PEM
    /// too, for the registry.
    fn new(service: &str, issuer: &str) -> (Signer, String) {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("a P-256 key");
        let params = rcgen::CertificateParams::new(vec![issuer.to_string()])
            .expect("certificate parameters");
        let certificate = params
            .self_signed(&key_pair)
            .expect("a self-signed certificate");
        let der = base64::engine::general_purpose::STANDARD.encode(certificate.der());
        let signer = Signer {
            // rcgen writes the private key as PKCS#8, the DER jsonwebtoken reads.
            key: EncodingKey::from_ec_der(&key_pair.serialize_der()),
            certificate: der,
            service: service.to_string(),
            issuer: issuer.to_string(),
            issued: AtomicU64::new(0),
        };
        (signer, certificate.pem())
    }

    /// A token for `subject` granting `access`, signed.
    fn token(&self, subject: &str, access: &[Value]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock")
            .as_secs();
        let serial = self.issued.fetch_add(1, Ordering::SeqCst);
        let claims = json!({
            "iss": self.issuer,
            "sub": subject,
            // A plain string: Distribution 2.8 reads `aud` as one, and refuses an array.
            "aud": self.service,
            "exp": now + LIFETIME,
            "nbf": now,
            "iat": now,
            "jti": format!("byoc-{now}-{serial}"),
            "access": access,
        });
        let mut header = Header::new(Algorithm::ES256);
        // The certificate rides in the token: the registry checks it against its bundle
        // and takes the public key from it.
        header.x5c = Some(vec![self.certificate.clone()]);
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign the token")
    }
}

/// Who asked: a known user, nobody (no credentials), or someone with wrong ones.
enum Asker {
    User(String),
    Anonymous,
    Refused,
}

impl Shared {
    fn asker(&self, request: &Request) -> Asker {
        let Some(authorization) = request.authorization() else {
            return Asker::Anonymous;
        };
        let basic = authorization.strip_prefix("Basic ").map(str::trim);
        let decoded =
            basic.and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        let decoded = decoded.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        match decoded.as_deref().and_then(|text| text.split_once(':')) {
            Some((user, password)) if user == self.user && password == self.password => {
                Asker::User(user.to_string())
            }
            _ => Asker::Refused,
        }
    }

    /// The status and JSON body for `request`.
    fn answer(&self, request: &Request) -> (u16, Value) {
        if request.method != "GET" || request.path() != "/token" {
            let message =
                format!("no {} {}: ask GET /token", request.method, request.path());
            return (404, error("NOT_FOUND", &message));
        }
        let token = match self.asker(request) {
            Asker::User(user) => self.signer.token(&user, &asked_access(request)),
            // A token that grants nothing: the registry refuses whatever it is shown for.
            Asker::Anonymous => self.signer.token("", &[]),
            Asker::Refused => {
                return (401, error("UNAUTHORIZED", "incorrect username or password"))
            }
        };
        (
            200,
            json!({"token": token, "access_token": token, "expires_in": LIFETIME}),
        )
    }
}

/// An error as a registry writes one, which a client already knows how to tell.
fn error(code: &str, message: &str) -> Value {
    json!({"errors": [{"code": code, "message": message}]})
}

/// The access each `scope` asks for, `TYPE:NAME:ACTION,ACTION`, granted in full. A scope
/// parameter may hold several, space-separated; a name may hold a colon (`host:port/x`).
fn asked_access(request: &Request) -> Vec<Value> {
    let scopes = request.query("scope");
    let scopes = scopes.iter().flat_map(|scope| scope.split_whitespace());
    let access = scopes.filter_map(|scope| {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        let actions: Vec<&str> = actions.split(',').collect();
        Some(json!({"type": kind, "name": name, "actions": actions}))
    });
    access.collect()
}

/// Answers one connection at a time until the server is dropped: a token is quick to
/// make, and the read timeout bounds a client that says nothing.
/// Answers until the server is dropped. The listener does not block, so the flag is
/// seen within a few milliseconds, whatever network namespace the drop happens in.
fn serve(listener: TcpListener, shared: &Shared) {
    listener
        .set_nonblocking(true)
        .expect("a listener that does not block");
    while !shared.stopping.load(Ordering::SeqCst) {
        let Ok((mut stream, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let _ = stream.set_nonblocking(false);
        // A client that connects and sends nothing must not block the others for long.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Some(request) = Request::read_from(&stream) else {
            continue;
        };
        let (status, body) = shared.answer(&request);
        shared.asked.lock().unwrap().push(request);
        let _ = stream.write_all(&response(status, &body));
    }
}

fn response(status: u16, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    (head + &body).into_bytes()
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::process::Command;

    use super::*;
    use crate::registry::Registry;
    use crate::{LayerTar, TestImage};

    /// `GET path` from `server` with `creds`: the status line and the body as JSON.
    fn get(server: &TokenServer, path: &str, creds: Option<&str>) -> (String, Value) {
        let address = server
            .realm
            .trim_start_matches("http://")
            .trim_end_matches("/token");
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n");
        if let Some(creds) = creds {
            let basic = base64::engine::general_purpose::STANDARD.encode(creds);
            request.push_str(&format!("Authorization: Basic {basic}\r\n"));
        }
        stream
            .write_all(format!("{request}\r\n").as_bytes())
            .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read the answer");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.lines().next().unwrap_or_default().to_string();
        (status, serde_json::from_str(body).expect("a JSON body"))
    }

    /// A JWT's header or claims (`part` 0 or 1), decoded.
    fn jwt_part(token: &str, part: usize) -> Value {
        let encoded = token.split('.').nth(part).expect("a JWT part");
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        serde_json::from_slice(&engine.decode(encoded).expect("base64url")).expect("JSON")
    }

    #[test]
    fn a_token_grants_what_the_user_asked_and_nobody_gets_nothing() {
        let server = TokenServer::start("alice", "s3cret");
        let scope = "repository%3Ademo%3Apull%2Cpush"; // as clients escape it
        let path = format!("/token?account=alice&service=byoc-registry&scope={scope}");
        let path = path.as_str();
        let (status, body) = get(&server, path, Some("alice:s3cret"));
        assert!(status.contains(" 200 "), "{status}");
        let token = body["token"].as_str().expect("a token");
        assert_eq!(body["access_token"], token);
        assert_eq!(body["expires_in"], 300);
        let header = jwt_part(token, 0);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["x5c"].as_array().map(Vec::len), Some(1));
        let claims = jwt_part(token, 1);
        assert_eq!(claims["aud"], "byoc-registry");
        assert_eq!(claims["sub"], "alice");
        let access =
            json!([{"type": "repository", "name": "demo", "actions": ["pull", "push"]}]);
        assert_eq!(claims["access"], access);

        let (_, body) = get(&server, path, None);
        let claims = jwt_part(body["token"].as_str().expect("a token"), 1);
        assert_eq!(claims["access"], json!([]));

        let (status, body) = get(&server, path, Some("alice:wrong"));
        assert!(status.contains(" 401 "), "{status}");
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
        assert_eq!(server.requests(), 3);
        assert!(server.asked()[1].authorization().is_none());
    }

    /// `skopeo inspect` of `image` with `creds`: whether it worked, and what it said.
    fn inspect(registry: &Registry, image: &str, creds: Option<&str>) -> (bool, String) {
        let mut skopeo = Command::new("skopeo");
        skopeo.args(["inspect", "--tls-verify=false"]);
        match creds {
            Some(creds) => skopeo.args(["--creds", creds]),
            None => skopeo.arg("--no-creds"),
        };
        let out = skopeo.arg(format!("docker://{}/{image}", registry.address));
        let out = out.output().expect("start skopeo");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn the_registry_trusts_its_tokens() {
        if let Some(why) = Registry::unavailable() {
            eprintln!("not run: {why}");
            return;
        }
        let server = TokenServer::start("alice", "s3cret");
        let registry = Registry::start(server.auth());
        let dir = tempfile::tempdir().expect("a temp dir");
        let layer = LayerTar::new().file("hello", "hello\n", 0o644).finish();
        let image = TestImage::new(vec![layer], json!({"Cmd": ["/hello"]}));
        let layout = image.write_layout(&dir.path().join("layout"), "v1");
        registry.push(&layout, "v1", "byoc/demo:v1", Some("alice:s3cret"));
        // skopeo asks for pull and push to push.
        let scopes = server
            .asked()
            .iter()
            .flat_map(|asked| asked.query("scope"))
            .collect::<Vec<_>>();
        assert!(
            scopes.contains(&"repository:byoc/demo:pull,push".to_string()),
            "{scopes:?}"
        );

        let (worked, said) = inspect(&registry, "byoc/demo:v1", Some("alice:s3cret"));
        assert!(worked, "{said}\n{}", registry.log());
        // The token server's refusal reaches the client: the registry never sees it.
        let (worked, said) = inspect(&registry, "byoc/demo:v1", Some("alice:wrong"));
        assert!(!worked, "a wrong password was let in");
        assert!(said.contains("incorrect username or password"), "{said}");
        // Nobody gets a token, but one that grants nothing: the registry refuses it.
        let (worked, said) = inspect(&registry, "byoc/demo:v1", None);
        assert!(!worked, "nobody was let in");
        assert!(
            said.contains("denied") || said.contains("unauthorized"),
            "{said}"
        );
        assert!(
            registry.log().contains("insufficient scope"),
            "{}",
            registry.log()
        );
    }
}

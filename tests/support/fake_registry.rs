//! A fake registry, for the faults a real one cannot be made to show: a body cut off
//! half-way, a server that goes quiet after its headers, a redirect to another host, a
//! `Range` answer for a resumed download. A test scripts what each (method, path)
//! answers; anything else gets the 404 a registry gives for a name it does not know.
//!
//! It records every request it got, so a test can check what the client sent (did an
//! `Authorization` header follow the redirect to another host? did the resume ask for
//! the right `Range`?), and it counts the body bytes it sent for each path.
//!
//! HTTP/1.1 by hand over `std::net`: a thread per connection, one request per
//! connection, and `Connection: close` on every answer, so no client reuses one.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A request as the fake registry got it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path and the query, as sent: `/v2/demo/manifests/latest`.
    pub target: String,
    /// Every header, its name as sent.
    pub headers: Vec<(String, String)>,
    /// The body, when `Content-Length` announced one.
    pub body: Vec<u8>,
}

impl Request {
    /// Reads one request from `stream`; `None` when what came is not HTTP.
    pub fn read_from(stream: &TcpStream) -> Option<Request> {
        let mut reader = BufReader::new(stream);
        // A client that tries HTTPS first sends a TLS hello (its first byte is 0x16):
        // closing at once makes it fall back to plain HTTP without waiting for a timeout.
        if reader.fill_buf().ok()?.first() == Some(&0x16) {
            return None;
        }
        let line = read_line(&mut reader)?;
        let mut words = line.split(' ');
        let (method, target) = (words.next()?.to_string(), words.next()?.to_string());
        let mut headers = Vec::new();
        loop {
            let line = read_line(&mut reader)?;
            if line.is_empty() {
                break; // the blank line that ends the head
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let mut request = Request {
            method,
            target,
            headers,
            body: Vec::new(),
        };
        let length = request
            .header("content-length")
            .and_then(|v| v.parse().ok());
        request.body = vec![0; length.unwrap_or(0)];
        reader.read_exact(&mut request.body).ok()?;
        Some(request)
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The value of the header `name`, whatever its case.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut headers = self.headers.iter();
        let found = headers.find(|(have, _)| have.eq_ignore_ascii_case(name));
        found.map(|(_, value)| value.as_str())
    }

    /// The `Authorization` header: `Basic ...` or `Bearer ...`.
    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// The `Range` header: `bytes=N-`.
    pub fn range(&self) -> Option<&str> {
        self.header("range")
    }

    /// Every value of the query parameter `key`, percent-decoded (`scope` may come
    /// more than once).
    pub fn query(&self, key: &str) -> Vec<String> {
        let query = self.target.split_once('?').map(|(_, query)| query);
        let pairs = query.unwrap_or_default().split('&');
        let pairs = pairs.filter_map(|pair| pair.split_once('='));
        let values = pairs.filter(|(name, _)| percent_decoded(name) == key);
        values.map(|(_, value)| percent_decoded(value)).collect()
    }
}

/// One line of the head, without its `\r\n`.
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}

/// `text` with its `%XX` escapes decoded, and `+` as a space (as forms write it).
fn percent_decoded(text: &str) -> String {
    let mut bytes = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let hex = tail.get(..2).and_then(|hex| std::str::from_utf8(hex).ok());
        match (byte, hex.and_then(|hex| u8::from_str_radix(hex, 16).ok())) {
            (b'%', Some(decoded)) => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(if byte == b'+' { b' ' } else { byte });
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What the fake registry answers to a request: a status, headers and a body, and the
/// fault to show while sending them.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Whether `Range: bytes=N-` gets a 206 with the body from byte N.
    ranges: bool,
    /// Send only this many bytes of the body, then close: `Content-Length` still says
    /// the full size, so the client sees the connection end too soon.
    cut_after: Option<usize>,
    /// Go quiet this long after the headers (after the bytes `cut_after` lets through,
    /// if any; else before any of the body), then close.
    stall: Option<Duration>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
            ranges: false,
            cut_after: None,
            stall: None,
        }
    }

    /// 200 with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Response {
        Response::new(200, body)
    }

    /// `status` with `value` as its JSON body.
    pub fn json(status: u16, value: &Value) -> Response {
        Response::new(status, value.to_string())
            .header("Content-Type", "application/json")
    }

    /// `status` with an error as a registry writes one:
    /// `{"errors":[{"code":CODE,"message":MESSAGE}]}`.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        let body = json!({"errors": [{"code": code, "message": message}]});
        Response::json(status, &body)
    }

    /// 307 to `location` (an absolute URL sends the client to another host).
    pub fn redirect(location: &str) -> Response {
        Response::new(307, Vec::new()).header("Location", location)
    }

    /// The same, with the header `name: value` too. A `Content-Length` given here is
    /// sent in place of the true one (a server that lies about its size).
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The same, answering `Range: bytes=N-` with 206 and the body from byte N.
    pub fn ranges(mut self) -> Response {
        self.ranges = true;
        self
    }

    /// The same, but the connection closes after `bytes` bytes of the body.
    pub fn cut_after(mut self, bytes: usize) -> Response {
        self.cut_after = Some(bytes);
        self
    }

    /// The same, but the server says nothing for `quiet` after its headers (or after
    /// the bytes `cut_after` lets through), then closes without the rest.
    pub fn stall(mut self, quiet: Duration) -> Response {
        self.stall = Some(quiet);
        self
    }

    /// The status, headers and body to send for a request with `range`: the part asked
    /// for when this response answers ranges, else all of it.
    fn for_range(&self, range: Option<&str>) -> (u16, Vec<(String, String)>, &[u8]) {
        let mut headers = self.headers.clone();
        let start = range.and_then(range_start).filter(|_| self.ranges);
        let total = self.body.len();
        if self.ranges {
            headers.push(("Accept-Ranges".into(), "bytes".into()));
        }
        match start {
            None => (self.status, headers, &self.body),
            Some(start) if start >= total => {
                headers.push(("Content-Range".into(), format!("bytes */{total}")));
                (416, headers, &[])
            }
            Some(start) => {
                let range = format!("bytes {start}-{}/{total}", total - 1);
                headers.push(("Content-Range".into(), range));
                (206, headers, &self.body[start..])
            }
        }
    }
}

/// N, from `bytes=N-` (or `bytes=N-M`: the fake always sends to the end).
fn range_start(range: &str) -> Option<usize> {
    let (start, _end) = range.strip_prefix("bytes=")?.split_once('-')?;
    start.trim().parse().ok()
}

/// The answers scripted for one (method, path): the first request gets the first, the
/// next the next, and the last one is given again to every request after.
#[derive(Debug)]
struct Script {
    answers: Vec<Response>,
    given: usize,
}

impl Script {
    fn current(&self) -> Response {
        let last = self.answers.len() - 1;
        self.answers[self.given.min(last)].clone()
    }
}

/// The scripts, by (method, path).
type Routes = HashMap<(String, String), Script>;

/// The script for `method` and the request's path. A route scripted with a query
/// matches that query alone; one without, any.
fn route_of<'a>(
    routes: &'a mut Routes,
    method: &str,
    request: &Request,
) -> Option<&'a mut Script> {
    let key = |path: &str| (method.to_string(), path.to_string());
    let keys = [key(&request.target), key(request.path())];
    let key = keys.into_iter().find(|key| routes.contains_key(key))?;
    routes.get_mut(&key)
}

/// What the server's threads and the test share.
#[derive(Default)]
struct Shared {
    routes: Mutex<Routes>,
    requests: Mutex<Vec<Request>>,
    bytes_served: Mutex<HashMap<String, u64>>,
    stopping: AtomicBool,
}

impl Shared {
    /// The answer scripted for `request`, taken in turn.
    fn answer_for(&self, request: &Request) -> Response {
        let mut routes = self.routes.lock().unwrap();
        if let Some(script) = route_of(&mut routes, &request.method, request) {
            let answer = script.current();
            script.given += 1;
            return answer;
        }
        // A HEAD with no script of its own gets the GET's headers, as from a registry,
        // without using up the GET's answer.
        if request.method == "HEAD" {
            if let Some(script) = route_of(&mut routes, "GET", request) {
                return script.current();
            }
        }
        let message = format!("the fake registry has no answer for {}", request.target);
        Response::error(404, "NAME_UNKNOWN", &message)
    }

    fn count_served(&self, path: &str, bytes: usize) {
        let mut served = self.bytes_served.lock().unwrap();
        *served.entry(path.to_string()).or_default() += bytes as u64;
    }

    /// Sleeps `quiet`, waking early when the server stops, so a dropped fake leaves no
    /// thread sleeping for long.
    fn stay_quiet(&self, quiet: Duration) {
        let until = Instant::now() + quiet;
        while Instant::now() < until && !self.stopping.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A running fake registry on 127.0.0.1, stopped when dropped.
pub struct FakeRegistry {
    address: String,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// What `serve_layout` put on the fake registry.
#[derive(Debug, Clone)]
pub struct ServedImage {
    /// The digest of the manifest the tag names.
    pub manifest: String,
    /// Every blob served, in the manifests' order: each config, then its layers.
    pub blobs: Vec<String>,
}

impl FakeRegistry {
    /// Starts a fake registry that answers `GET /v2/` with 200 (the check every client
    /// makes first) and nothing else yet.
    pub fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let address = listener.local_addr().expect("its address").to_string();
        let shared = Arc::new(Shared::default());
        let for_thread = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || accept(listener, for_thread));
        let fake = FakeRegistry {
            address,
            shared,
            acceptor: Some(acceptor),
        };
        let ping = Response::json(200, &json!({}))
            .header("Docker-Distribution-API-Version", "registry/2.0");
        fake.route("GET", "/v2/", ping);
        fake
    }

    /// Starts a fake registry with `routes`: (method, path, answer).
    pub fn scripted(routes: Vec<(&str, &str, Response)>) -> FakeRegistry {
        let fake = FakeRegistry::start();
        for (method, path, answer) in routes {
            fake.route(method, path, answer);
        }
        fake
    }

    /// From now on, `method path` gets `answer` (in place of what it got before).
    pub fn route(&self, method: &str, path: &str, answer: Response) -> &FakeRegistry {
        self.route_in_turn(method, path, vec![answer])
    }

    /// From now on, `method path` gets `answers` in turn, the last one ever after: e.g.
    /// a blob cut off the first time, then whole (or from a `Range`) the second.
    pub fn route_in_turn(
        &self,
        method: &str,
        path: &str,
        answers: Vec<Response>,
    ) -> &FakeRegistry {
        assert!(!answers.is_empty(), "a route needs at least one answer");
        let key = (method.to_string(), path.to_string());
        let script = Script { answers, given: 0 };
        self.shared.routes.lock().unwrap().insert(key, script);
        self
    }

    /// Serves the image `tag` of the OCI layout at `layout` as `name:tag`: its manifest
    /// by tag and by digest, and its blobs (which answer ranges), each with the
    /// `Content-Type` and `Docker-Content-Digest` a registry sends. An index is served
    /// with every manifest it names.
    pub fn serve_layout(&self, layout: &Path, tag: &str, name: &str) -> ServedImage {
        let index = read_json(&layout.join("index.json"));
        let tagged = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|entry| {
                entry["annotations"]["org.opencontainers.image.ref.name"] == tag
            });
        let tagged = tagged.unwrap_or_else(|| panic!("no {tag} in {}", layout.display()));
        let digest = tagged["digest"].as_str().expect("a digest").to_string();
        let mut served = ServedImage {
            manifest: digest.clone(),
            blobs: Vec::new(),
        };
        let answer = self.serve_manifest(layout, name, tagged, &mut served.blobs);
        self.route("GET", &manifest_path(name, tag), answer);
        served
    }

    /// Serves the manifest `descriptor` names, by digest, and what it names in turn;
    /// returns its answer, for the tag to get too.
    fn serve_manifest(
        &self,
        layout: &Path,
        name: &str,
        descriptor: &Value,
        blobs: &mut Vec<String>,
    ) -> Response {
        let digest = descriptor["digest"].as_str().expect("a digest");
        let bytes = read_blob(layout, digest);
        let manifest: Value = serde_json::from_slice(&bytes).expect("a JSON manifest");
        // The descriptor says what the manifest is; an old one may say it only inside.
        let media_type = [&descriptor["mediaType"], &manifest["mediaType"]]
            .into_iter()
            .find_map(Value::as_str)
            .unwrap_or("application/vnd.oci.image.manifest.v1+json");
        let answer = Response::ok(bytes.clone())
            .header("Content-Type", media_type)
            .header("Docker-Content-Digest", digest);
        self.route("GET", &manifest_path(name, digest), answer.clone());
        // An index names manifests; an image manifest names its config and layers.
        for child in manifest["manifests"].as_array().into_iter().flatten() {
            self.serve_manifest(layout, name, child, blobs);
        }
        let layers = manifest["layers"].as_array().into_iter().flatten();
        for blob in manifest.get("config").into_iter().chain(layers) {
            let digest = blob["digest"].as_str().expect("a blob's digest");
            let answer = Response::ok(read_blob(layout, digest))
                .header("Content-Type", "application/octet-stream")
                .header("Docker-Content-Digest", digest)
                .ranges();
            self.route("GET", &blob_path(name, digest), answer);
            blobs.push(digest.to_string());
        }
        answer
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request so far, in the order they came.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The requests so far for `path` (any method, any query).
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        let mut requests = self.requests();
        requests.retain(|request| request.path() == path);
        requests
    }

    /// How many body bytes went out for `path`, over all its requests.
    pub fn bytes_served(&self, path: &str) -> u64 {
        let served = self.shared.bytes_served.lock().unwrap();
        served.get(path).copied().unwrap_or(0)
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// `/v2/NAME/manifests/REFERENCE` (a tag or a digest).
pub fn manifest_path(name: &str, reference: &str) -> String {
    format!("/v2/{name}/manifests/{reference}")
}

/// `/v2/NAME/blobs/DIGEST`.
pub fn blob_path(name: &str, digest: &str) -> String {
    format!("/v2/{name}/blobs/{digest}")
}

fn read_json(file: &Path) -> Value {
    let text = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let file = layout.join("blobs").join(digest.replacen(':', "/", 1));
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Takes connections until the fake is dropped, each answered on a thread of its own
/// (a stalled answer must not hold up the next request).
/// Accepts until the fake is dropped. The listener does not block, so the flag is seen
/// within a few milliseconds, whatever network namespace the drop happens in (a
/// connection to wake a blocked accept would go to the dropping thread's namespace).
fn accept(listener: TcpListener, shared: Arc<Shared>) {
    listener
        .set_nonblocking(true)
        .expect("a listener that does not block");
    while !shared.stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || answer(stream, &shared));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn answer(mut stream: TcpStream, shared: &Shared) {
    // A client that connects and sends nothing must not keep the thread for ever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = Request::read_from(&stream) else {
        return;
    };
    let answer = shared.answer_for(&request);
    // Recorded before the answer goes, so a test sees it even while the answer stalls.
    shared.requests.lock().unwrap().push(request.clone());
    let _ = send(&mut stream, &request, &answer, shared);
}

/// Sends `answer` to `request`, with its fault, counting the body bytes that go out.
fn send(
    stream: &mut TcpStream,
    request: &Request,
    answer: &Response,
    shared: &Shared,
) -> std::io::Result<()> {
    let (status, headers, body) = answer.for_range(request.range());
    stream.write_all(&head(status, &headers, body.len()))?;
    let body = if request.method == "HEAD" {
        &[][..]
    } else {
        body
    };
    // A stall alone sends none of the body; a cut, the bytes it lets through.
    let stalled = answer.stall.map(|_| 0);
    let sent = &body[..answer
        .cut_after
        .or(stalled)
        .unwrap_or(body.len())
        .min(body.len())];
    // Chunk by chunk, so the count is right even when the client hangs up half-way.
    for chunk in sent.chunks(16 * 1024) {
        stream.write_all(chunk)?;
        shared.count_served(request.path(), chunk.len());
    }
    stream.flush()?;
    if let Some(quiet) = answer.stall {
        shared.stay_quiet(quiet);
    }
    Ok(()) // dropping the stream closes it: the end of the answer, or a cut
}

/// The status line and headers: `Content-Length` is the full body's (unless the script
/// gave one), and `Connection: close`, as each connection carries one request.
fn head(status: u16, headers: &[(String, String)], length: usize) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LayerTar, TestImage};

    /// Sends `request` (its head, without the blank line) to `fake`; returns the head
    /// and the body the fake sent before it closed.
    fn exchange(fake: &FakeRegistry, request: &str) -> (String, Vec<u8>) {
        let mut stream = TcpStream::connect(fake.address()).expect("connect");
        stream
            .write_all(format!("{request}\r\n\r\n").as_bytes())
            .expect("send");
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .expect("read until the fake closes");
        let end = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head");
        let head = String::from_utf8_lossy(&answer[..end]).into_owned();
        (head, answer[end + 4..].to_vec())
    }

    const BLOB: &str = "/v2/demo/blobs/sha256:abc";

    #[test]
    fn a_cut_off_body_says_its_full_length_and_stops_short() {
        let body: Vec<u8> = (0..100u8).collect();
        let fake =
            FakeRegistry::scripted(vec![("GET", BLOB, Response::ok(body).cut_after(30))]);
        let (head, got) = exchange(&fake, &format!("GET {BLOB} HTTP/1.1\r\nHost: x"));
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(head.contains("Content-Length: 100"), "{head}");
        assert_eq!(got.len(), 30);
        assert_eq!(fake.bytes_served(BLOB), 30);
    }

    #[test]
    fn a_range_gets_the_rest_of_the_body() {
        let body: Vec<u8> = (0..100u8).collect();
        let fake = FakeRegistry::start();
        let first = Response::ok(body.clone()).ranges().cut_after(40);
        fake.route_in_turn("GET", BLOB, vec![first, Response::ok(body).ranges()]);
        let (_, got) = exchange(&fake, &format!("GET {BLOB} HTTP/1.1"));
        assert_eq!(got.len(), 40);
        let resume =
            format!("GET {BLOB} HTTP/1.1\r\nRange: bytes=40-\r\nAuthorization: Bearer t");
        let (head, got) = exchange(&fake, &resume);
        assert!(head.starts_with("HTTP/1.1 206 "), "{head}");
        assert!(head.contains("Content-Range: bytes 40-99/100"), "{head}");
        assert!(head.contains("Content-Length: 60"), "{head}");
        assert_eq!(got, (40..100u8).collect::<Vec<u8>>());
        let (head, _) =
            exchange(&fake, &format!("GET {BLOB} HTTP/1.1\r\nRange: bytes=100-"));
        assert!(head.starts_with("HTTP/1.1 416 "), "{head}");

        let asked = fake.requests_to(BLOB);
        assert_eq!(asked.len(), 3);
        assert_eq!(asked[0].authorization(), None);
        assert_eq!(asked[1].authorization(), Some("Bearer t"));
        assert_eq!(asked[1].range(), Some("bytes=40-"));
        assert_eq!(fake.bytes_served(BLOB), 100);
    }

    #[test]
    fn the_unscripted_get_a_registry_404_and_head_gets_the_get_headers() {
        let fake = FakeRegistry::start();
        fake.route(
            "GET",
            BLOB,
            Response::ok("hello").header("Docker-Content-Digest", "d"),
        );
        let (head, body) = exchange(&fake, "GET /v2/other/manifests/latest HTTP/1.1");
        assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");
        let (head, body) = exchange(&fake, &format!("HEAD {BLOB} HTTP/1.1"));
        assert!(
            head.contains("Content-Length: 5") && head.contains("Digest: d"),
            "{head}"
        );
        assert!(body.is_empty());
        let (head, _) = exchange(&fake, "GET /v2/ HTTP/1.1");
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    }

    #[test]
    fn a_redirect_and_a_stall() {
        let fake = FakeRegistry::start();
        fake.route(
            "GET",
            BLOB,
            Response::redirect("http://localhost:1/elsewhere"),
        );
        fake.route(
            "GET",
            "/slow",
            Response::ok("never").stall(Duration::from_millis(300)),
        );
        let (head, _) = exchange(&fake, &format!("GET {BLOB} HTTP/1.1"));
        assert!(head.starts_with("HTTP/1.1 307 "), "{head}");
        assert!(
            head.contains("Location: http://localhost:1/elsewhere"),
            "{head}"
        );

        let started = Instant::now();
        let (head, body) = exchange(&fake, "GET /slow HTTP/1.1");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(head.contains("Content-Length: 5"), "{head}");
        assert!(body.is_empty());
    }

    #[test]
    fn skopeo_pulls_a_layout_the_fake_serves() {
        if let Some(why) = crate::registry::Registry::unavailable() {
            eprintln!("not run: {why}");
            return;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let layer = LayerTar::new().file("hello", "hello\n", 0o644).finish();
        let image = TestImage::new(vec![layer], json!({"Cmd": ["/hello"]}));
        let layout = image.write_layout(&dir.path().join("layout"), "v1");
        let fake = FakeRegistry::start();
        let served = fake.serve_layout(&layout, "v1", "byoc/demo");
        assert_eq!(served.blobs.len(), 2);
        let out = std::process::Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}/byoc/demo:v1", fake.address()))
            .arg(format!("oci:{}:v1", dir.path().join("pulled").display()))
            .output()
            .expect("start skopeo");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let layer = blob_path("byoc/demo", &served.blobs[1]);
        let size = std::fs::metadata(
            layout
                .join("blobs")
                .join(served.blobs[1].replacen(':', "/", 1)),
        );
        assert_eq!(fake.bytes_served(&layer), size.expect("the layer").len());
        assert!(!fake
            .requests_to(&manifest_path("byoc/demo", "v1"))
            .is_empty());
    }
}

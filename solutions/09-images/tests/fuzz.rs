//! Fuzzing the layer unpacker and the image documents' parsers: random changes to good
//! and hostile inputs, each of which must give an answer (a layer or an error), never a
//! panic, and never a write outside the layer's directory. Book: section 9.3.
//!
//! `cargo xtask fuzz --seconds N` runs the ignored test below for N seconds. Whatever it
//! finds is written to `fuzz/found/` and must be moved to `fuzz/regressions/`, which the
//! ordinary test replays on every run: a crash found once stays fixed.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use solution09::config::ImageConfig;
use solution09::digest::{Digest, Expected};
use solution09::oci::{Index, Manifest};
use solution09::unpack::{unpack, Compression, LayerBlob};

/// A small, fast pseudo-random source, seeded so a run can be told again.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A tar entry, byte for byte: a GNU header with any name and link name.
fn entry(kind: u8, name: &str, link: &str, data: &[u8], mode: u32) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::new(kind));
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_767_225_600);
    let gnu = header.as_gnu_mut().expect("a GNU header");
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    bytes
}

/// Layers to start from: good ones and the hostile kinds chapter 9's tests refuse.
fn seeds() -> Vec<Vec<u8>> {
    let layers: Vec<Vec<Vec<u8>>> = vec![
        vec![
            entry(b'5', "etc/", "", b"", 0o755),
            entry(
                b'0',
                "etc/passwd",
                "",
                b"root:x:0:0::/root:/bin/sh\n",
                0o644,
            ),
            entry(b'2', "etc/link", "passwd", b"", 0o777),
            entry(b'1', "etc/hard", "etc/passwd", b"", 0o644),
            entry(b'0', "etc/.wh.gone", "", b"", 0o644),
            entry(b'0', "var/.wh..wh..opq", "", b"", 0o644),
            entry(b'6', "fifo", "", b"", 0o644),
        ],
        vec![
            entry(b'2', "out", "/", b"", 0o777),
            entry(b'0', "out/victim/x", "", b"x", 0o644),
        ],
        vec![entry(b'0', "../victim/x", "", b"x", 0o644)],
        vec![
            entry(b'0', "f", "", b"1", 0o644),
            entry(b'0', "f/x", "", b"2", 0o644),
            entry(b'1', "h", "../victim/file", b"", 0o644),
        ],
        vec![entry(b'3', "dev/null", "", b"", 0o666)],
    ];
    layers
        .into_iter()
        .map(|entries| {
            let mut tar: Vec<u8> = entries.concat();
            tar.extend(std::iter::repeat_n(0, 1024));
            tar
        })
        .collect()
}

/// One random change: a byte, a run of bytes, a cut, a block copied or removed.
fn mutate(input: &[u8], random: &mut XorShift) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..1 + random.below(4) {
        let at = random.below(bytes.len());
        match random.below(5) {
            0 => bytes[at] = random.next() as u8,
            1 => bytes[at] ^= 1 << random.below(8),
            2 => bytes.truncate(at),
            3 if bytes.len() >= 512 => {
                let from = random.below(bytes.len() / 512) * 512;
                let block = bytes[from..from + 512].to_vec();
                let to = random.below(bytes.len() / 512) * 512;
                bytes.splice(to..to, block);
            }
            _ => {
                let digits = b"0123456777 \0/.";
                bytes[at] = digits[random.below(digits.len())];
            }
        }
        if bytes.is_empty() {
            break;
        }
    }
    bytes
}

/// Unpacks `tar` in a fresh directory beside a victim; the victim must stay as it was
/// and nothing may appear beside the layer. Panics are the caller's to catch.
fn unpack_beside_a_victim(tar: &[u8], scratch: &Path) {
    let _ = fs::remove_dir_all(scratch);
    let victim = scratch.join("victim");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("file"), "the victim's own\n").unwrap();
    let layer = scratch.join("tmp/layer");
    fs::create_dir_all(&layer).unwrap();
    let blob_path = scratch.join("blob");
    fs::write(&blob_path, tar).unwrap();
    let blob = Expected {
        digest: Digest::of(tar),
        size: tar.len() as u64,
    };
    let diff_id = Digest::of(tar);
    let as_root = nix::unistd::Uid::effective().is_root();
    let layer_blob = LayerBlob {
        compression: Compression::None,
        blob: &blob,
        diff_id: &diff_id,
    };
    let _ = unpack(
        fs::File::open(&blob_path).unwrap(),
        &layer_blob,
        &layer,
        as_root,
    );
    let mut beside: Vec<String> = fs::read_dir(scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["blob", "tmp", "victim"],
        "something was made beside the layer"
    );
    let tmp: Vec<_> = fs::read_dir(scratch.join("tmp")).unwrap().collect();
    assert_eq!(tmp.len(), 1, "something was made beside the layer in tmp/");
    let victim_files: Vec<_> = fs::read_dir(&victim).unwrap().collect();
    assert_eq!(victim_files.len(), 1, "a file appeared in the victim");
    assert_eq!(
        fs::read_to_string(victim.join("file")).unwrap(),
        "the victim's own\n"
    );
}

/// The image documents' parsers, on `bytes`: an answer, never a panic.
fn parse_documents(bytes: &[u8], scratch: &Path) {
    let path = scratch.join("document.json");
    fs::create_dir_all(scratch).unwrap();
    fs::write(&path, bytes).unwrap();
    let _ = Index::read(&path);
    let _ = Manifest::read(&path);
    let _ = ImageConfig::read(&path, 1);
}

fn documents() -> Vec<Vec<u8>> {
    let digest = format!("sha256:{}", "a".repeat(64));
    vec![
        format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":3,"annotations":{{"org.opencontainers.image.ref.name":"x:1"}}}}]}}"#).into_bytes(),
        format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{digest}","size":9}}]}}"#).into_bytes(),
        format!(r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"],"Env":["A=1"],"User":"1:2"}},"rootfs":{{"type":"layers","diff_ids":["{digest}"]}}}}"#).into_bytes(),
    ]
}

fn found_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/found")
}

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions")
}

/// Runs `check` on `input`; a panic is written to `fuzz/found/` and returned.
fn try_one(name: &str, input: &[u8], check: impl FnOnce()) -> Option<PathBuf> {
    let outcome = catch_unwind(AssertUnwindSafe(check));
    outcome.err().map(|_| {
        fs::create_dir_all(found_dir()).unwrap();
        let path = found_dir().join(format!("{name}.bin"));
        fs::write(&path, input).unwrap();
        path
    })
}

#[test]
#[ignore = "run by `cargo xtask fuzz`, for as long as it is told"]
fn fuzz_the_unpacker_and_the_parsers() {
    let seconds: u64 = std::env::var("BYOC_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("BYOC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut random = XorShift(seed);
    let scratch = tempfile::tempdir().unwrap();
    let (tars, docs) = (seeds(), documents());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut found) = (0u64, Vec::new());
    while Instant::now() < deadline {
        runs += 1;
        let tar = mutate(&tars[random.below(tars.len())], &mut random);
        let dir = scratch.path().join("unpack");
        found.extend(try_one(&format!("layer-{seed}-{runs}"), &tar, || {
            unpack_beside_a_victim(&tar, &dir)
        }));
        let doc = mutate(&docs[random.below(docs.len())], &mut random);
        found.extend(try_one(&format!("document-{seed}-{runs}"), &doc, || {
            parse_documents(&doc, &dir)
        }));
    }
    println!(
        "fuzz: {runs} layers and {runs} documents in {seconds} s (seed {seed}), {} found",
        found.len()
    );
    assert!(
        found.is_empty(),
        "inputs that broke a rule, kept to replay: {found:?}"
    );
}

#[test]
fn what_fuzzing_found_once_stays_fixed() {
    let scratch = tempfile::tempdir().unwrap();
    let Ok(entries) = fs::read_dir(regressions_dir()) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|extension| extension != "bin") {
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let dir = scratch.path().join(&name);
        match name.starts_with("document") {
            true => parse_documents(&bytes, &dir),
            false => unpack_beside_a_victim(&bytes, &dir),
        }
    }
}

#[test]
fn the_seeds_unpack_or_are_refused_without_a_write_outside() {
    let scratch = tempfile::tempdir().unwrap();
    for (n, tar) in seeds().iter().enumerate() {
        unpack_beside_a_victim(tar, &scratch.path().join(n.to_string()));
    }
}

//! Images a test makes for chapter 9 on: layer tars written in-process with the `tar`
//! crate, entry by entry (hostile ones byte by byte, as no well-behaved tool would write
//! them), and OCI image layouts around them, with digests the test computes itself.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The digest of `bytes`, `sha256:HEX`.
pub fn digest_of(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

/// The time every entry and config of a test image has, so its digests never change.
pub const FIXED_TIME: u64 = 1_767_225_600; // 2026-01-01

/// A layer's tar, being written.
pub struct LayerTar {
    bytes: Vec<u8>,
}

impl Default for LayerTar {
    fn default() -> LayerTar {
        LayerTar::new()
    }
}

impl LayerTar {
    pub fn new() -> LayerTar {
        LayerTar { bytes: Vec::new() }
    }

    /// The busybox root filesystem at `rootfs` as a layer, its symlinks as symlinks.
    pub fn of_dir(rootfs: &Path) -> LayerTar {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Deterministic);
        builder
            .append_dir_all(".", rootfs)
            .expect("tar the root filesystem");
        let mut bytes = builder.into_inner().expect("the tar's bytes");
        bytes.truncate(bytes.len().saturating_sub(1024)); // the end marker comes later
        LayerTar { bytes }
    }

    /// An entry of any kind, with the name and link name as given, byte for byte.
    pub fn raw(
        mut self,
        kind: tar::EntryType,
        name: &[u8],
        link: &[u8],
        data: &[u8],
        mode: u32,
    ) -> LayerTar {
        let header = raw_header(kind, name, link, data.len() as u64, mode, (0, 0));
        self.push(&header, data);
        self
    }

    /// An entry with an owner.
    pub fn owned(
        mut self,
        kind: tar::EntryType,
        name: &str,
        data: &[u8],
        mode: u32,
        owner: (u64, u64),
    ) -> LayerTar {
        let header =
            raw_header(kind, name.as_bytes(), b"", data.len() as u64, mode, owner);
        self.push(&header, data);
        self
    }

    /// A header that claims `size` bytes, followed by only `data`.
    pub fn claiming(mut self, name: &str, size: u64, data: &[u8]) -> LayerTar {
        let header = raw_header(
            tar::EntryType::Regular,
            name.as_bytes(),
            b"",
            size,
            0o644,
            (0, 0),
        );
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(data);
        self
    }

    pub fn dir(self, name: &str, mode: u32) -> LayerTar {
        self.raw(tar::EntryType::Directory, name.as_bytes(), b"", b"", mode)
    }

    pub fn file(self, name: &str, contents: &str, mode: u32) -> LayerTar {
        let data = contents.as_bytes();
        self.raw(tar::EntryType::Regular, name.as_bytes(), b"", data, mode)
    }

    pub fn symlink(self, name: &str, target: &str) -> LayerTar {
        let (name, target) = (name.as_bytes(), target.as_bytes());
        self.raw(tar::EntryType::Symlink, name, target, b"", 0o777)
    }

    pub fn hardlink(self, name: &str, target: &str) -> LayerTar {
        let (name, target) = (name.as_bytes(), target.as_bytes());
        self.raw(tar::EntryType::Link, name, target, b"", 0o644)
    }

    pub fn fifo(self, name: &str) -> LayerTar {
        self.raw(tar::EntryType::Fifo, name.as_bytes(), b"", b"", 0o644)
    }

    /// A device node `major`, `minor`.
    pub fn device(mut self, name: &str, major: u32, minor: u32) -> LayerTar {
        let mut header =
            raw_header(tar::EntryType::Char, name.as_bytes(), b"", 0, 0o666, (0, 0));
        header.set_device_major(major).expect("a major number");
        header.set_device_minor(minor).expect("a minor number");
        header.set_cksum();
        self.push(&header, b"");
        self
    }

    /// OCI's whiteout of `name`.
    pub fn whiteout(self, dir: &str, name: &str) -> LayerTar {
        let path = format!("{dir}.wh.{name}");
        self.raw(tar::EntryType::Regular, path.as_bytes(), b"", b"", 0o644)
    }

    /// OCI's opaque marker in `dir` (which ends with `/`).
    pub fn opaque(self, dir: &str) -> LayerTar {
        let path = format!("{dir}.wh..wh..opq");
        self.raw(tar::EntryType::Regular, path.as_bytes(), b"", b"", 0o644)
    }

    /// A file written by the `tar` crate's own builder, with extended attributes in PAX
    /// headers (and any name, however long, in the form the builder picks).
    pub fn file_with_xattrs(
        mut self,
        name: &str,
        contents: &str,
        xattrs: &[(&str, &[u8])],
    ) -> LayerTar {
        let mut builder = tar::Builder::new(Vec::new());
        if !xattrs.is_empty() {
            let pax: Vec<(String, &[u8])> = xattrs
                .iter()
                .map(|(key, value)| (format!("SCHILY.xattr.{key}"), *value))
                .collect();
            builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
                .expect("PAX headers");
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(FIXED_TIME);
        builder
            .append_data(&mut header, name, contents.as_bytes())
            .expect("a file");
        let bytes = builder.into_inner().expect("the bytes");
        self.bytes.extend_from_slice(&bytes[..bytes.len() - 1024]);
        self
    }

    fn push(&mut self, header: &tar::Header, data: &[u8]) {
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(data);
        let padding = (512 - data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0, padding));
    }

    /// The tar, with its end: two blocks of zeros.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend(std::iter::repeat_n(0, 1024));
        self.bytes
    }

    /// The tar as it is, with no end (a truncated archive's first part).
    pub fn unfinished(self) -> Vec<u8> {
        self.bytes
    }
}

/// A GNU header with `name` and `link` written into their fields as they are (at most
/// 100 bytes each), which the `tar` crate's checked setters would refuse.
fn raw_header(
    kind: tar::EntryType,
    name: &[u8],
    link: &[u8],
    size: u64,
    mode: u32,
    owner: (u64, u64),
) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(owner.0);
    header.set_gid(owner.1);
    header.set_mtime(FIXED_TIME);
    let gnu = header.as_gnu_mut().expect("a GNU header");
    gnu.name[..name.len()].copy_from_slice(name);
    gnu.linkname[..link.len()].copy_from_slice(link);
    header.set_cksum();
    header
}

/// How a test layer's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Plain,
    Gzip,
    Zstd,
}

/// An image to write as an OCI layout: its layers' tars and its config's process.
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub process: Value,
    pub stored: Stored,
    /// Diff ids to write in place of the right ones (a tampered config).
    pub diff_ids: Option<Vec<String>>,
}

impl TestImage {
    /// An image of `layers`, gzip-compressed, whose process is `process` (the config's
    /// `config` object).
    pub fn new(layers: Vec<Vec<u8>>, process: Value) -> TestImage {
        TestImage {
            layers,
            process,
            stored: Stored::Gzip,
            diff_ids: None,
        }
    }

    /// Writes the image as an OCI layout at `dir`, named `tag` in its index; returns the
    /// layout's directory.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> PathBuf {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("make the layout");
        let blob = |bytes: &[u8]| -> (String, usize) {
            let digest = digest_of(bytes);
            let hex = digest.trim_start_matches("sha256:");
            std::fs::write(dir.join("blobs/sha256").join(hex), bytes).expect("a blob");
            (digest, bytes.len())
        };
        let mut diff_ids = Vec::new();
        let mut layers = Vec::new();
        for tar in &self.layers {
            diff_ids.push(digest_of(tar));
            let (media_type, stored) = match self.stored {
                Stored::Plain => ("application/vnd.oci.image.layer.v1.tar", tar.clone()),
                Stored::Gzip => {
                    ("application/vnd.oci.image.layer.v1.tar+gzip", gzip(tar))
                }
                Stored::Zstd => (
                    "application/vnd.oci.image.layer.v1.tar+zstd",
                    zstd::encode_all(&tar[..], 3).expect("compress with zstd"),
                ),
            };
            let (digest, size) = blob(&stored);
            layers.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
        }
        let config = json!({
            "created": "2026-01-01T00:00:00Z",
            "architecture": machine_architecture(),
            "os": "linux",
            "config": self.process,
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids.clone().unwrap_or(diff_ids)},
            "history": [],
        });
        let (config_digest, config_size) = blob(config.to_string().as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": layers,
        });
        let (manifest_digest, manifest_size) = blob(manifest.to_string().as_bytes());
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        std::fs::write(dir.join("index.json"), index.to_string()).expect("the index");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        open_tree_to_all(dir);
        dir.to_path_buf()
    }

    /// Writes the image as `docker save` does, as a tar at `file`: `manifest.json`, the
    /// config, one uncompressed tar per layer. Before Docker 25, each layer is
    /// `ID/layer.tar`; from 25 (`newer`), every file is a blob under `blobs/sha256/`, and
    /// an `oci-layout` and an `index.json` name a manifest of Docker's own media types.
    pub fn write_docker_archive(&self, file: &Path, repo_tag: &str, newer: bool) {
        let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
        let diff_ids: Vec<String> =
            self.layers.iter().map(|tar| digest_of(tar)).collect();
        let name_of = |digest: &str, old_name: String| match newer {
            true => format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
            false => old_name,
        };
        let mut layer_names = Vec::new();
        for (tar, diff_id) in self.layers.iter().zip(&diff_ids) {
            let old = format!("{}/layer.tar", diff_id.trim_start_matches("sha256:"));
            layer_names.push(name_of(diff_id, old));
            entries.push((layer_names.last().unwrap().clone(), tar.clone()));
        }
        let config = json!({
            "architecture": machine_architecture(),
            "os": "linux",
            "config": self.process,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
        .to_string();
        let config_digest = digest_of(config.as_bytes());
        let old = format!("{}.json", config_digest.trim_start_matches("sha256:"));
        let config_name = name_of(&config_digest, old);
        entries.push((config_name.clone(), config.clone().into_bytes()));
        let manifest = json!([{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names}]);
        entries.push(("manifest.json".into(), manifest.to_string().into_bytes()));
        if newer {
            let layers: Vec<_> = self
                .layers
                .iter()
                .zip(&diff_ids)
                .map(|(tar, diff_id)| {
                    json!({
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                    "digest": diff_id, "size": tar.len()})
                })
                .collect();
            let docker_manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": config_digest, "size": config.len()},
                "layers": layers,
            })
            .to_string();
            let manifest_digest = digest_of(docker_manifest.as_bytes());
            let index = json!({"schemaVersion": 2, "manifests": [{
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": manifest_digest, "size": docker_manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": repo_tag}}]});
            entries.push((
                name_of(&manifest_digest, String::new()),
                docker_manifest.into_bytes(),
            ));
            entries.push(("index.json".into(), index.to_string().into_bytes()));
            entries.push((
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ));
        }
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, name, &bytes[..])
                .expect("an entry");
        }
        let bytes = builder.into_inner().expect("the archive");
        std::fs::write(file, bytes).expect("write the archive");
        open_tree_to_all(file.parent().expect("a directory"));
    }
}

/// `bytes` compressed with gzip.
/// This machine's architecture as images name it (Go's names): a test image is for the
/// machine that runs it, as its busybox is.
pub fn machine_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => panic!("no image architecture name for {other} in the tests"),
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("compress")
}

/// Every directory under `dir` open to all, and every file readable by all: the test
/// user's runtime reads what the test wrote.
pub fn open_tree_to_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir).expect("stat");
    let mode = match meta.is_dir() {
        true => 0o755,
        false => 0o644,
    };
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .expect("chmod");
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).expect("read a dir") {
            open_tree_to_all(&entry.expect("an entry").path());
        }
    }
}

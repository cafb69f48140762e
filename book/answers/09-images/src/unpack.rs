// solutions/09-images/src/unpack.rs without its exercise markers, made by `cargo xtask gen` for the book's folded answers.
//! Unpacking a layer: a tar, perhaps compressed, turned into a directory that chapter 8's
//! overlay can stack. Every layer is hostile. Book: section 9.3.
//!
//! A layer is somebody else's archive, and the industry learned the hard way what one can
//! do to the machine that unpacks it: names with `..` (the tar bugs of the 1990s and every
//! decade since), a symlink followed by a file written through it (docker's
//! CVE-2014-6407 and CVE-2014-9356), a hardlink to a file outside (CVE-2018-15664's
//! kin), a `.` that is not a directory (umoci's CVE-2021-29136), a whiteout aimed through
//! a symlink (containerd's CVE-2021-32760 class). So the kit never lets a library unpack
//! one. It reads the entries with the `tar` crate and makes each file itself, through a
//! descriptor of the layer's directory, with every look-up done by the kernel inside it
//! (`openat2` with `RESOLVE_IN_ROOT`) and never through a symlink the layer made. The
//! same single pass hashes the compressed bytes and the uncompressed tar, so a layer is
//! used only when both are the ones its image names.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::digest::{Digest, Expected};

/// The most one layer may hold, uncompressed: a layer that claims more is refused before
/// a byte of it is written (real layers are a few GiB at most).
pub const LAYER_LIMIT: u64 = 64 << 30;

/// The prefix of OCI's whiteout names.
pub const WHITEOUT: &str = ".wh.";
/// The name that makes its directory opaque.
pub const OPAQUE: &str = ".wh..wh..opq";

/// How a layer's bytes are compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type names (checked by `oci::Manifest::read`):
    /// OCI's `…tar+gzip`, or Docker's `…tar.gzip`.
    pub fn of(media_type: &str) -> Compression {
        if media_type == crate::oci::DOCKER_LAYER {
            return Compression::Gzip;
        }
        match media_type.rsplit_once('+').map(|(_, suffix)| suffix) {
            Some("gzip") => Compression::Gzip,
            Some("zstd") => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// What the layer's blob and tar must be.
pub struct LayerBlob<'a> {
    pub compression: Compression,
    /// The compressed blob's digest and size (the manifest's descriptor).
    pub blob: &'a Expected,
    /// The uncompressed tar's digest (the config's `rootfs.diff_ids`).
    pub diff_id: &'a Digest,
}

/// What an unpack leaves for the caller.
#[derive(Debug, Default)]
pub struct Unpacked {
    /// Hardlinks to files of a lower layer, `(link, target)`: made by copying the
    /// target once the layers below are there, as overlay's copy-up would.
    pub links_below: Vec<(PathBuf, PathBuf)>,
    /// What a rootless unpack could not make, said once per layer.
    pub skipped: Vec<String>,
}

// ANCHOR: unpack
/// Unpacks the blob `from` reads (a file, or a download) into the empty directory
/// `into`, which belongs to the caller. Returns only when every entry was made and both
/// digests matched, with the reader, read to its end; the caller removes `into`
/// otherwise. `as_root` keeps owners, device nodes and setuid bits, which an ordinary
/// user cannot have.
///
/// Two threads share the work, so one layer can use two cores: the first reads the
/// blob, hashes it and inflates it; the second hashes the tar and makes its entries. A
/// few chunks of the tar are in flight between them, never the whole layer.
pub fn unpack<R: Read + Send>(
    from: R,
    layer: &LayerBlob,
    into: &Path,
    as_root: bool,
) -> Result<(Unpacked, R)> {
    let (chunks, tar) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    let compression = layer.compression;
    std::thread::scope(|scope| {
        let inflating = scope.spawn(move || inflate(from, compression, chunks));
        let made = make_entries(Chunks::new(tar), layer, into, as_root);
        let inflated = inflating
            .join()
            .expect("the inflating thread does not panic");
        match (inflated, made) {
            (Err(Stop::Failed(error)), _) => Err(broken(layer, error)),
            (Err(Stop::Abandoned), made) => Err(made.err().unwrap_or_else(|| {
                anyhow!("the tar ended before the blob did (trailing garbage)")
            })),
            (Ok(_), Err(error)) => Err(error),
            (Ok((from, digest, size)), Ok((unpacked, diff_id))) => {
                check_digests(layer, (&digest, size), &diff_id)?;
                Ok((unpacked, from))
            }
        }
    })
}
// ANCHOR_END: unpack

/// How much of the tar goes from the inflating thread to the other at once, and how
/// many such chunks may wait: 2 MiB in flight per layer at most.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 8;

/// Why the inflating thread stopped early.
enum Stop {
    /// The blob is broken, or could not be read.
    Failed(anyhow::Error),
    /// The other thread stopped reading (its own error says why).
    Abandoned,
}

/// The first thread: reads the blob, hashes it, inflates it, and sends the tar on in
/// chunks; after the compressed stream's end, nothing may follow. Returns the reader,
/// the blob's digest and size.
fn inflate<R: Read>(
    from: R,
    compression: Compression,
    to: mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> Result<(R, Digest, u64), Stop> {
    let mut decoder =
        Decoder::new(Hashing::new(from), compression).map_err(Stop::Failed)?;
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let read = match read_up_to(&mut decoder, &mut chunk) {
            Ok(read) => read,
            Err(error) => {
                // The other thread hears of it as an error of its reader.
                let _ = to.send(Err(io::Error::new(error.kind(), error.to_string())));
                return Err(Stop::Failed(error.into()));
            }
        };
        if read == 0 {
            break;
        }
        chunk.truncate(read);
        to.send(Ok(chunk)).map_err(|_| Stop::Abandoned)?;
    }
    drop(to); // the end of the tar, for the other thread
    let mut compressed = decoder.into_inner();
    let mut one = [0u8; 1];
    match compressed.read(&mut one) {
        Ok(0) => Ok(compressed.finish()),
        Ok(_) => Err(Stop::Failed(anyhow!(
            "bytes follow the end of the compressed stream"
        ))),
        Err(error) => Err(Stop::Failed(error.into())),
    }
}

/// Reads until `buffer` is full or the stream ends: a decoder returns little at a time.
fn read_up_to(from: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match from.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// The tar, as the inflating thread sends it.
struct Chunks {
    arriving: mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Chunks {
    fn new(arriving: mpsc::Receiver<io::Result<Vec<u8>>>) -> Chunks {
        Chunks {
            arriving,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.at == self.chunk.len() {
            match self.arriving.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(error)) => return Err(error),
                Err(_) => return Ok(0), // the inflating thread is done
            }
        }
        let read = buffer.len().min(self.chunk.len() - self.at);
        buffer[..read].copy_from_slice(&self.chunk[self.at..self.at + read]);
        self.at += read;
        Ok(read)
    }
}

/// The second thread (the caller's): makes every entry of the tar, then reads what
/// follows it, which may only be zeros. Returns the tar's digest.
fn make_entries(
    tar: Chunks,
    layer: &LayerBlob,
    into: &Path,
    as_root: bool,
) -> Result<(Unpacked, Digest)> {
    let mut archive = tar::Archive::new(Hashing::new(tar));
    let mut layer_dir = LayerDir::open(into, as_root)?;
    for entry in archive.entries().context("cannot read the layer's tar")? {
        let mut entry = entry.map_err(|error| broken(layer, error))?;
        layer_dir
            .add(&mut entry)
            .map_err(|error| broken(layer, error))?;
    }
    let mut tar = archive.into_inner();
    let mut rest = [0u8; 64 * 1024];
    loop {
        let read = tar.read(&mut rest).map_err(|error| broken(layer, error))?;
        if read == 0 {
            break;
        }
        if rest[..read].iter().any(|byte| *byte != 0) {
            return Err(broken(
                layer,
                anyhow!("bytes follow the end of the tar archive (trailing garbage)"),
            ));
        }
    }
    let (_, diff_id, _) = tar.finish();
    Ok((layer_dir.finish()?, diff_id))
}

/// A layer whose tar or compression is broken: what went wrong, named by the layer.
fn broken(layer: &LayerBlob, error: impl Into<anyhow::Error>) -> anyhow::Error {
    error
        .into()
        .context(format!("layer {}: refused", layer.blob.digest))
}

/// Both hashes must be the ones the image names: the blob's (and its size) and the
/// tar's.
fn check_digests(
    layer: &LayerBlob,
    blob: (&Digest, u64),
    diff_id: &Digest,
) -> Result<()> {
    let (digest, size) = blob;
    if *digest != layer.blob.digest || size != layer.blob.size {
        bail!(
            "layer {}: its bytes hash to {digest} ({size} bytes): not the layer its \
             manifest names, refused",
            layer.blob.digest
        );
    }
    if *diff_id != *layer.diff_id {
        bail!(
            "layer {}: its tar hashes to {diff_id}, but the image's config says {} \
             (its diff_id): refused",
            layer.blob.digest,
            layer.diff_id
        );
    }
    Ok(())
}

/// A reader that hashes and counts what passes through it.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The reader, the digest of what was read and how many bytes.
    pub fn finish(self) -> (R, Digest, u64) {
        let digest = Digest::from_sha256(&self.hasher.finalize());
        (self.inner, digest, self.count)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.count += read as u64;
        if self.count > LAYER_LIMIT {
            return Err(io::Error::other(format!(
                "more than {} GiB: no layer is that big",
                LAYER_LIMIT >> 30
            )));
        }
        Ok(read)
    }
}

/// The decompressor a layer's media type asks for. One per layer, so its size does not
/// matter.
#[allow(clippy::large_enum_variant)]
enum Decoder<R: Read> {
    None(Hashing<R>),
    Gzip(flate2::read::MultiGzDecoder<Hashing<R>>),
    #[cfg(feature = "zstd")]
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Hashing<R>>>),
}

impl<R: Read> Decoder<R> {
    fn new(from: Hashing<R>, compression: Compression) -> Result<Decoder<R>> {
        Ok(match compression {
            Compression::None => Decoder::None(from),
            Compression::Gzip => Decoder::Gzip(flate2::read::MultiGzDecoder::new(from)),
            #[cfg(feature = "zstd")]
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::new(from)?),
            #[cfg(not(feature = "zstd"))]
            Compression::Zstd => bail!(
                "this layer is compressed with zstd, and this build of the runtime has \
                 no zstd: build it with `--features zstd`"
            ),
        })
    }

    fn into_inner(self) -> Hashing<R> {
        match self {
            Decoder::None(inner) => inner,
            Decoder::Gzip(decoder) => decoder.into_inner(),
            #[cfg(feature = "zstd")]
            Decoder::Zstd(decoder) => decoder.finish().into_inner(),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(inner) => inner.read(buffer),
            Decoder::Gzip(decoder) => decoder.read(buffer),
            #[cfg(feature = "zstd")]
            Decoder::Zstd(decoder) => decoder.read(buffer),
        }
    }
}

/// What an entry already made in this layer is, for the entries that come after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    Directory,
    /// A directory made because an entry below it came first.
    ImpliedDirectory,
    Whiteout,
    Other,
}

/// A directory's owner, mode, times and attributes, set once everything in it is made
/// (a directory of mode 0555 could not be filled, and each entry made in one changes its
/// time).
struct DirMeta {
    path: PathBuf,
    meta: Meta,
}

/// What the tar header says about an entry, beyond its kind.
#[derive(Clone)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The layer's directory, being filled.
struct LayerDir {
    fd: OwnedFd,
    as_root: bool,
    made: HashMap<PathBuf, Made>,
    dirs: Vec<DirMeta>,
    result: Unpacked,
    devices_skipped: usize,
    xattrs_skipped: HashSet<String>,
}

impl LayerDir {
    fn open(path: &Path, as_root: bool) -> Result<LayerDir> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = fcntl::open(path, flags, Mode::empty())
            .with_context(|| format!("cannot open {path:?}"))?;
        Ok(LayerDir {
            fd,
            as_root,
            made: HashMap::new(),
            dirs: Vec::new(),
            result: Unpacked::default(),
            devices_skipped: 0,
            xattrs_skipped: HashSet::new(),
        })
    }

    // ANCHOR: add
    /// Makes one entry, or refuses the layer naming it.
    fn add<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let raw = entry
            .path()
            .context("an entry has no readable name")?
            .into_owned();
        let path = inner_path(&raw).map_err(|why| anyhow!("entry {raw:?}: {why}"))?;
        let meta = self.meta_of(entry, &raw)?;
        let kind = entry.header().entry_type();
        let made = self
            .make(entry, &path, kind, meta)
            .with_context(|| format!("entry {raw:?}"))?;
        if let Some(made) = made {
            self.made.insert(path, made);
        }
        Ok(())
    }
    // ANCHOR_END: add

    /// Makes the entry at `path`; what it made, for the entries that follow.
    fn make<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        path: &Path,
        kind: EntryType,
        meta: Meta,
    ) -> Result<Option<Made>> {
        if path.as_os_str().is_empty() {
            return self.root_entry(kind, meta).map(|()| None);
        }
        if let Some(Made::Directory | Made::Other) = self.made.get(path) {
            bail!("a second entry for the same path (an image must not have two)");
        }
        let name = path.file_name().expect("a path below the root has a name");
        if name.as_bytes().starts_with(WHITEOUT.as_bytes()) {
            return self.whiteout(path, name).map(Some);
        }
        let parent = self.parent_dir(path)?;
        if kind != EntryType::Directory {
            self.clear_whiteout(&parent, path, name)?;
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(entry, &parent, name, &meta)?
            }
            EntryType::Directory => return self.directory(&parent, path, meta).map(Some),
            EntryType::Symlink => self.symlink(entry, &parent, path, &meta)?,
            EntryType::Link => return self.hardlink(entry, &parent, path),
            EntryType::Fifo => self.node(&parent, name, SFlag::S_IFIFO, 0, &meta)?,
            EntryType::Char | EntryType::Block => {
                return self.device(entry, &parent, name, kind, &meta);
            }
            other => bail!("{other:?} entries are not part of an image layer"),
        }
        Ok(Some(Made::Other))
    }

    /// `.` or `/` itself: it may only be a directory (umoci's CVE-2021-29136 followed a
    /// `.` that was a symlink), and gives the layer's top its mode.
    fn root_entry(&mut self, kind: EntryType, meta: Meta) -> Result<()> {
        if kind != EntryType::Directory {
            bail!("the layer's root (`.` or `/`) must be a directory, and this is not");
        }
        self.dirs.push(DirMeta {
            path: PathBuf::new(),
            meta,
        });
        Ok(())
    }

    /// The owner, mode, time and extended attributes of the entry, as this unpack may
    /// keep them.
    fn meta_of<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        raw: &Path,
    ) -> Result<Meta> {
        let xattrs = self.xattrs_of(entry, raw)?;
        let size = entry.size();
        if size > LAYER_LIMIT {
            bail!("entry {raw:?} says it holds {size} bytes: no layer is that big");
        }
        let header = entry.header();
        let mut mode = header.mode().context("a bad mode")? & 0o7777;
        if !self.as_root {
            // Setuid and setgid: a user's own file with them runs as that user, whoever
            // starts it, which is not what the image meant by them.
            mode &= !0o6000;
        }
        Ok(Meta {
            mode,
            uid: header.uid().context("a bad uid")? as u32,
            gid: header.gid().context("a bad gid")? as u32,
            mtime: header.mtime().unwrap_or(0).min(i64::MAX as u64) as i64,
            xattrs,
        })
    }

    /// The extended attributes the archive gives the entry (PAX `SCHILY.xattr.NAME`).
    /// Overlay's own are refused: with them a layer could hide or redirect the files of
    /// the layers below it. An ordinary user may set only `user.` attributes.
    fn xattrs_of<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        raw: &Path,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut kept = Vec::new();
        let Some(extensions) = entry.pax_extensions().context("bad PAX headers")? else {
            return Ok(kept);
        };
        for extension in extensions {
            let extension = extension.context("a bad PAX header")?;
            let Some(name) = extension.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                continue;
            };
            if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
            {
                bail!(
                    "entry {raw:?} carries overlay's own attribute {:?}, with which a \
                     layer could hide the layers below",
                    String::from_utf8_lossy(name)
                );
            }
            if !self.as_root && !name.starts_with(b"user.") {
                self.xattrs_skipped
                    .insert(String::from_utf8_lossy(name).into_owned());
                continue;
            }
            kept.push((name.to_vec(), extension.value_bytes().to_vec()));
        }
        Ok(kept)
    }

    // ANCHOR: parent_dir
    /// The directory `path` goes in, made if the archive did not have it yet. Looked up
    /// inside the layer, and never through a symlink: a symlink the layer made earlier
    /// must not carry the next entry anywhere else, inside or out.
    fn parent_dir(&mut self, path: &Path) -> Result<OwnedFd> {
        let parent = path.parent().unwrap_or(Path::new(""));
        let mut at: Option<OwnedFd> = None;
        let mut walked = PathBuf::new();
        for part in parent.components() {
            walked.push(part);
            let dir = at.as_ref().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            let next = match open_dir_in(dir, Path::new(part.as_os_str())) {
                Err(Errno::ENOENT) => {
                    stat::mkdirat(dir, part.as_os_str(), Mode::from_bits_truncate(0o755))
                        .with_context(|| format!("cannot make {walked:?}"))?;
                    self.made.insert(walked.clone(), Made::ImpliedDirectory);
                    open_dir_in(dir, Path::new(part.as_os_str()))
                }
                other => other,
            };
            at = Some(next.map_err(|error| self.not_a_directory(&walked, error))?);
        }
        match at {
            Some(fd) => Ok(fd),
            None => Ok(self.fd.try_clone()?),
        }
    }
    // ANCHOR_END: parent_dir

    fn not_a_directory(&self, walked: &Path, error: Errno) -> anyhow::Error {
        let what = match (self.made.get(walked), error) {
            (_, Errno::ELOOP) => "a symlink, and an entry may not go through one",
            (Some(Made::Whiteout), _) => "a whiteout (deleted) in this layer",
            (_, Errno::ENOTDIR) => "not a directory, and an entry cannot go under it",
            _ => "not a directory the unpack can open",
        };
        anyhow!("{walked:?} on its way is {what}")
    }

    /// A name this layer whited out, made again by a later entry: the entry wins, as it
    /// hides the layers below anyway (a whiteout applies to lower layers only).
    fn clear_whiteout(&self, parent: &OwnedFd, path: &Path, name: &OsStr) -> Result<()> {
        if self.made.get(path) == Some(&Made::Whiteout) {
            unistd::unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
                .context("cannot remove the whiteout before it")?;
        }
        Ok(())
    }

    // ANCHOR: whiteout
    /// `.wh..wh..opq` makes its directory opaque; `.wh.NAME` deletes NAME of the layers
    /// below, and becomes overlay's whiteout, a character device 0, 0. Nothing in this
    /// layer is deleted: a whiteout applies only to the layers below it.
    fn whiteout(&mut self, path: &Path, name: &OsStr) -> Result<Made> {
        let parent = self.parent_dir(path)?;
        let hidden = match read_whiteout(name.as_bytes()).map_err(|why| anyhow!(why))? {
            Whiteout::Opaque => {
                let attribute = self.opaque_attribute().to_vec();
                set_xattrs(parent.as_fd(), &[(attribute, b"y".to_vec())])?;
                return Ok(Made::Other);
            }
            Whiteout::Hides(hidden) => OsStr::from_bytes(hidden),
        };
        let target = path.with_file_name(hidden);
        if self.made.contains_key(&target) {
            return Ok(Made::Other); // made by this layer: stays, and hides the layers below
        }
        stat::mknodat(&parent, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
            .context("cannot make the whiteout")?;
        self.made.insert(target, Made::Whiteout);
        Ok(Made::Other)
    }
    // ANCHOR_END: whiteout

    /// The attribute that marks a directory opaque, with the name overlay reads: the
    /// machine's root mounts read `trusted.`, a user namespace's (`userxattr`) `user.`.
    fn opaque_attribute(&self) -> &'static [u8] {
        match self.as_root {
            true => b"trusted.overlay.opaque",
            false => b"user.overlay.opaque",
        }
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        parent: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
    ) -> Result<()> {
        let flags = OFlag::O_CREAT
            | OFlag::O_EXCL
            | OFlag::O_WRONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(parent, name, flags, Mode::from_bits_truncate(0o600))
            .map_err(|error| self.exists_error(error))?;
        let mut file = File::from(fd);
        copy_contents(entry, &mut file)?;
        self.set_meta(file.as_fd(), meta)
    }

    fn exists_error(&self, error: Errno) -> anyhow::Error {
        match error {
            Errno::EEXIST => anyhow!("a directory of that name came first in this layer"),
            error => anyhow!("cannot make it: {error}"),
        }
    }

    /// Owner first (a chown clears setuid), then mode, attributes, and time.
    fn set_meta(&self, fd: BorrowedFd, meta: &Meta) -> Result<()> {
        if self.as_root {
            let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
            unistd::fchown(fd, Some(uid), Some(gid)).context("cannot set its owner")?;
        }
        stat::fchmod(fd, Mode::from_bits_truncate(meta.mode))
            .context("cannot set its mode")?;
        set_xattrs(fd, &meta.xattrs)?;
        let time = TimeSpec::new(meta.mtime, 0);
        stat::futimens(fd, &time, &time).context("cannot set its time")?;
        Ok(())
    }

    fn directory(&mut self, parent: &OwnedFd, path: &Path, meta: Meta) -> Result<Made> {
        let name = path.file_name().expect("a path below the root has a name");
        self.clear_whiteout(parent, path, name)?;
        match stat::mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST)
                if self.made.get(path) == Some(&Made::ImpliedDirectory) => {}
            Err(Errno::EEXIST) => bail!("a file of that name came first in this layer"),
            Err(error) => bail!("cannot make it: {error}"),
        }
        self.dirs.push(DirMeta {
            path: path.to_path_buf(),
            meta,
        });
        Ok(Made::Directory)
    }

    // ANCHOR: symlink
    /// A symlink is only text, and inside a container it is followed inside the
    /// container's root. One whose relative target climbs above the layer's top (more
    /// `..` than it has directories above it) can only be meant for the host: refused.
    fn symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        parent: &OwnedFd,
        path: &Path,
        meta: &Meta,
    ) -> Result<()> {
        let target = entry
            .link_name()
            .context("a bad symlink target")?
            .ok_or_else(|| anyhow!("a symlink with no target"))?
            .into_owned();
        if climbs_out(path, &target) {
            bail!("a symlink to {target:?}, which leads out of the layer's root");
        }
        let name = path.file_name().expect("a path below the root has a name");
        unistd::symlinkat(&target, parent, name).map_err(|e| self.exists_error(e))?;
        self.set_owner_and_time_at(parent, name, meta)
    }
    // ANCHOR_END: symlink

    /// Owner and time of what `name` in `parent` is itself, not of where it leads: for
    /// symlinks and device nodes, which cannot be opened to be changed.
    fn set_owner_and_time_at(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
    ) -> Result<()> {
        if self.as_root {
            let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
            let nofollow = AtFlags::AT_SYMLINK_NOFOLLOW;
            unistd::fchownat(parent, name, Some(uid), Some(gid), nofollow)
                .context("cannot set its owner")?;
        }
        let time = TimeSpec::new(meta.mtime, 0);
        let flag = stat::UtimensatFlags::NoFollowSymlink;
        stat::utimensat(parent, name, &time, &time, flag).context("cannot set its time")
    }

    // ANCHOR: hardlink
    /// A hardlink names a file of the archive. One of this layer is linked, looked up as
    /// any entry is (inside, through no symlink); one the layer does not have must be a
    /// file of a layer below, and is copied up from there when those are unpacked.
    fn hardlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        parent: &OwnedFd,
        path: &Path,
    ) -> Result<Option<Made>> {
        let raw = entry
            .link_name()
            .context("a bad hardlink target")?
            .ok_or_else(|| anyhow!("a hardlink with no target"))?
            .into_owned();
        let target =
            inner_path(&raw).map_err(|why| anyhow!("a hardlink to {raw:?}: {why}"))?;
        if let Some(on_the_way) = target
            .ancestors()
            .skip(1)
            .find(|up| matches!(self.made.get(*up), Some(Made::Other | Made::Whiteout)))
        {
            bail!("a hardlink to {raw:?}, through {on_the_way:?}: a symlink or file of this layer");
        }
        match self.made.get(&target) {
            Some(Made::Other) => {}
            Some(_) => bail!("a hardlink to {raw:?}, which is no file of this layer"),
            None => {
                self.result.links_below.push((path.to_path_buf(), target));
                return Ok(None);
            }
        }
        let target_parent = self.parent_dir(&target)?;
        let target_name = target
            .file_name()
            .expect("a path below the root has a name");
        let name = path.file_name().expect("a path below the root has a name");
        unistd::linkat(&target_parent, target_name, parent, name, AtFlags::empty())
            .map_err(|error| anyhow!("cannot link it to {raw:?}: {error}"))?;
        Ok(Some(Made::Other))
    }
    // ANCHOR_END: hardlink

    fn node(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        kind: SFlag,
        device: libc::dev_t,
        meta: &Meta,
    ) -> Result<()> {
        let mode = Mode::from_bits_truncate(meta.mode);
        stat::mknodat(parent, name, kind, mode, device)
            .map_err(|e| self.exists_error(e))?;
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(parent, name, flags, Mode::empty())?;
        let at_fd = PathBuf::from(format!("/proc/self/fd/{}", fd_number(&fd)));
        stat::fchmodat(
            fcntl::AT_FDCWD,
            &at_fd,
            mode,
            stat::FchmodatFlags::FollowSymlink,
        )
        .context("cannot set its mode")?;
        self.set_owner_and_time_at(parent, name, meta)
    }

    // ANCHOR: device
    /// A device node. The machine's root makes it; an ordinary user cannot, so a rootless
    /// unpack leaves it out and says so (the container's `/dev` is the runtime's own
    /// anyway, chapter 5). A character device 0, 0 is overlay's own whiteout, which an
    /// OCI layer never holds (it deletes with `.wh.` names): refused.
    fn device<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        parent: &OwnedFd,
        name: &OsStr,
        kind: EntryType,
        meta: &Meta,
    ) -> Result<Option<Made>> {
        let header = entry.header();
        let major = header.device_major()?.unwrap_or(0);
        let minor = header.device_minor()?.unwrap_or(0);
        if kind == EntryType::Char && (major, minor) == (0, 0) {
            bail!(
                "a character device 0, 0 is overlay's whiteout, not part of an OCI layer \
                 (which deletes with .wh. names)"
            );
        }
        if !self.as_root {
            self.devices_skipped += 1;
            return Ok(None);
        }
        let sflag = match kind {
            EntryType::Char => SFlag::S_IFCHR,
            _ => SFlag::S_IFBLK,
        };
        let device = libc::makedev(major, minor);
        self.node(parent, name, sflag, device, meta)?;
        Ok(Some(Made::Other))
    }
    // ANCHOR_END: device

    /// Sets the directories' owners, modes and times, deepest first, and says what a
    /// rootless unpack left out.
    fn finish(mut self) -> Result<Unpacked> {
        self.dirs
            .sort_by_key(|dir| std::cmp::Reverse(dir.path.components().count()));
        for dir in &self.dirs {
            let fd = match dir.path.as_os_str().is_empty() {
                true => self.fd.try_clone()?,
                false => open_dir_in(self.fd.as_fd(), &dir.path)
                    .with_context(|| format!("cannot open {:?} again", dir.path))?,
            };
            self.set_meta(fd.as_fd(), &dir.meta)
                .with_context(|| format!("directory {:?}", dir.path))?;
        }
        if self.devices_skipped > 0 {
            self.result.skipped.push(format!(
                "{} device nodes (an ordinary user cannot make them)",
                self.devices_skipped
            ));
        }
        if !self.xattrs_skipped.is_empty() {
            let mut names: Vec<_> = self.xattrs_skipped.into_iter().collect();
            names.sort();
            self.result.skipped.push(format!(
                "the attributes {} (an ordinary user may set only user.*)",
                names.join(", ")
            ));
        }
        Ok(self.result)
    }
}

/// What a name that starts with `.wh.` asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// `.wh..wh..opq`: hide everything the layers below have in this directory.
    Opaque,
    /// `.wh.NAME`: hide NAME of the layers below.
    Hides(&'a [u8]),
}

// ANCHOR: read_whiteout
/// Reads a whiteout name. Refused: a bare `.wh.`, one that would hide `.` or `..` (the
/// directory itself, or the one above it), and the other `.wh..wh.` names, which the
/// spec keeps for itself and which mean nothing here.
pub fn read_whiteout(name: &[u8]) -> Result<Whiteout<'_>, String> {
    if name == OPAQUE.as_bytes() {
        return Ok(Whiteout::Opaque);
    }
    let hidden = name.strip_prefix(WHITEOUT.as_bytes()).unwrap_or(name);
    if hidden.is_empty() || hidden == b"." || hidden == b".." {
        return Err(
            "a whiteout must name something in its directory, and this names none".into(),
        );
    }
    if hidden.starts_with(WHITEOUT.as_bytes()) {
        return Err(
            "names that start with .wh..wh. are reserved, and this one means nothing"
                .into(),
        );
    }
    Ok(Whiteout::Hides(hidden))
}
// ANCHOR_END: read_whiteout

/// Opens the directory `path` below `dir` for reading: inside it, through no symlink.
fn open_dir_in(dir: BorrowedFd, path: &Path) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    fcntl::openat2(dir, path, how)
}

fn fd_number(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

// ANCHOR: inner_path
/// An entry's name as a path below the layer's top: `./etc/passwd`, `/etc/passwd` and
/// `etc/passwd` are the same entry, and a name with `..` in it is refused, wherever it
/// would lead. An empty answer is the top itself.
fn inner_path(raw: &Path) -> Result<PathBuf, String> {
    let mut inner = PathBuf::new();
    for part in raw.components() {
        match part {
            Component::Normal(name) => inner.push(name),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err("a name with '..' in it could lead out of the layer".into())
            }
        }
    }
    Ok(inner)
}
// ANCHOR_END: inner_path

/// Whether a relative symlink at `path` pointing to `target` climbs above the top.
fn climbs_out(path: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false; // followed from the container's own root
    }
    let mut depth = path.components().count() as i64 - 1;
    for part in target.components() {
        match part {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Copies an entry's bytes into its file: exactly as many as its header says, or the
/// archive was cut short. A full disk is an error like any other: the caller removes
/// the half-made layer.
fn copy_contents<R: Read>(entry: &mut tar::Entry<R>, file: &mut File) -> Result<()> {
    let expected = entry.size();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut copied = 0u64;
    loop {
        let read = match entry.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error).context("the archive ends inside this file"),
        };
        file.write_all(&buffer[..read]).context("cannot write it")?;
        copied += read as u64;
    }
    if copied != expected {
        bail!("the archive ends inside this file: {copied} of its {expected} bytes");
    }
    Ok(())
}

/// Sets extended attributes on an open file or directory.
fn set_xattrs(fd: BorrowedFd, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
    use std::os::fd::AsRawFd;
    for (name, value) in xattrs {
        let name_c = std::ffi::CString::new(name.clone())
            .map_err(|_| anyhow!("an attribute name with a NUL byte"))?;
        // SAFETY: the name is NUL-terminated; the value's pointer and length agree; both
        // live across the call.
        let set = unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                name_c.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if set != 0 {
            let error = io::Error::last_os_error();
            bail!("cannot set the attribute {name_c:?}: {error}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_dot_dot_are_refused_and_the_rest_are_below_the_top() {
        assert_eq!(
            inner_path(Path::new("./etc/passwd")).unwrap(),
            Path::new("etc/passwd")
        );
        assert_eq!(
            inner_path(Path::new("/etc/passwd")).unwrap(),
            Path::new("etc/passwd")
        );
        assert_eq!(inner_path(Path::new("./")).unwrap(), Path::new(""));
        assert!(inner_path(Path::new("etc/../../x")).is_err());
        assert!(inner_path(Path::new("../x")).is_err());
    }

    #[test]
    fn whiteout_names_hide_one_name_or_make_the_directory_opaque() {
        assert_eq!(read_whiteout(b".wh..wh..opq"), Ok(Whiteout::Opaque));
        assert_eq!(read_whiteout(b".wh.passwd"), Ok(Whiteout::Hides(b"passwd")));
        for bad in [&b".wh."[..], b".wh..", b".wh...", b".wh..wh.plnk"] {
            assert!(
                read_whiteout(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_symlink_climbing_above_the_top_is_told_apart() {
        assert!(climbs_out(Path::new("a/link"), Path::new("../../etc")));
        assert!(!climbs_out(Path::new("a/b/link"), Path::new("../../etc")));
        assert!(!climbs_out(Path::new("link"), Path::new("/etc/passwd")));
        assert!(climbs_out(Path::new("link"), Path::new("x/../../y")));
    }
}

// Your copy of solutions/10-registry/src/download.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Layers from a registry: `GET /v2/NAME/blobs/DIGEST`, streamed into chapter 9's
//! unpack as the bytes arrive. Book: section 10.4.
//!
//! Each blob is written to `ingest/HEX` under the data root as it arrives, and renamed
//! into the store only once the unpack has hashed all of it and found the digest and
//! size the manifest names. A download cut off (a reset, an early close, a stall) is
//! taken up again in the same pull with a `Range` request; cut off for good (or the
//! runtime killed), it leaves its ingest file, and the next pull asks only for the
//! rest. A blob that proved wrong is thrown away. A few layers download at once (3,
//! as containerd): more rarely helps, and each is unpacked by the thread that reads it.

use anyhow::{anyhow, bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::blobs::{self, BlobReader, LayerSource, Tee};
use crate::digest::Expected;
use crate::oci::Descriptor;
use crate::progress::{LayerProgress, Progress};
use crate::records;
use crate::session::Session;
use crate::store::Store;
use crate::trace;
use crate::unpack::Hashing;

/// The blobs of one image on one registry, for the layers not unpacked yet.
pub struct RegistryBlobs<'a> {
    pub session: &'a Session<'a>,
    pub store: &'a Store,
    /// `ingest/` under the data root.
    pub ingest: PathBuf,
    pub progress: &'a Progress,
    /// How many layers download at once.
    pub at_once: usize,
}

// ANCHOR: registry_blobs
impl LayerSource for RegistryBlobs<'_> {
    fn open(&self, layer: &Descriptor) -> Result<Box<dyn BlobReader + '_>> {
        let stored = self.store.blob_path(&layer.digest);
        if stored.is_file() {
            return Ok(Box::new(blobs::open_blob(&stored, &layer.digest)?));
        }
        Ok(Box::new(self.start(layer)?))
    }

    fn at_once(&self) -> usize {
        self.at_once
    }
}
// ANCHOR_END: registry_blobs

impl RegistryBlobs<'_> {
    // ANCHOR: start
    /// Starts downloading `layer`: from its first byte, or from the end of what an
    /// earlier pull left in `ingest/`, if the registry serves ranges.
    fn start(&self, layer: &Descriptor) -> Result<Download<'_>> {
        records::make_dir(&self.ingest)?;
        let partial = self.ingest.join(layer.digest.hex());
        // Anything there that is not a regular file (a symlink planted to a file outside)
        // is no download of the kit's: it goes, and the download starts afresh.
        if fs::symlink_metadata(&partial).is_ok_and(|meta| !meta.file_type().is_file()) {
            fs::remove_file(&partial).with_context(|| {
                format!("cannot remove {partial:?}, which is no download")
            })?;
        }
        let have = fs::symlink_metadata(&partial).map_or(0, |meta| meta.len());
        // A whole blob left unrenamed is fetched again: it cannot be resumed (a range
        // past the end is an error), and it is rare (killed between two calls).
        let have = if have >= layer.size { 0 } else { have };
        let url = self.session.url("blobs", &layer.digest.to_string());
        let (body, from) = ask_from(self.session, &url, have, layer.size)?;
        let report = self.progress.layer(&layer.digest, layer.size);
        report.advance(from);
        let cut = Arc::new(Mutex::new(None));
        let network = Network {
            session: self.session,
            url,
            body,
            resumes_left: RESUMES,
            cut: cut.clone(),
            report,
            received: from,
            size: layer.size,
            ended: false,
        };
        // The ingest file is the data root's, read back: opened only as a regular file
        // of its own, never through a symlink planted there.
        let (file, already) = match from > 0 {
            true => (
                no_follow().append(true).open(&partial)?,
                Some(BufReader::new(no_follow().read(true).open(&partial)?)),
            ),
            false => (
                no_follow()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&partial)?,
                None,
            ),
        };
        let keep_as = self.store.blob_path(&layer.digest);
        Ok(Download {
            already,
            arriving: Tee::appending(network, file, &partial, keep_as),
            cut,
            expected: layer.expected(),
        })
    }
    // ANCHOR_END: start

    /// Downloads `layer` into the store without unpacking it: a blob whose layer is
    /// unpacked already (another image had the same tar, compressed otherwise).
    pub fn fetch_only(&self, layer: &Descriptor) -> Result<()> {
        let mut download = self.start(layer)?;
        let mut hashing = Hashing::new(&mut download);
        let copied = io::copy(&mut hashing, &mut io::sink());
        let (_, digest, size) = hashing.finish();
        if let Err(error) = copied {
            return Err(Box::new(download).discard(error.into()));
        }
        let expected = layer.expected();
        if digest != expected.digest || size != expected.size {
            let error = anyhow!(
                "blob {}: its bytes hash to {digest} ({size} bytes): refused",
                layer.digest
            );
            return Err(Box::new(download).discard(error));
        }
        Box::new(download).keep()
    }
}

/// Options that open a file only if it is not a symlink (`O_NOFOLLOW`).
fn no_follow() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.custom_flags(libc::O_NOFOLLOW);
    options
}

/// How many times one download is taken up again, in the same pull, from where it was
/// cut off.
const RESUMES: u32 = 3;

// ANCHOR: ask_from
/// Asks for the blob at `url` from byte `have` on (a `Range` request), or whole when
/// `have` is 0. Returns the body and where it starts: `have` when the registry serves
/// the range, 0 when it sends the whole blob instead.
fn ask_from(
    session: &Session,
    url: &str,
    have: u64,
    size: u64,
) -> Result<(io::Take<ureq::BodyReader<'static>>, u64)> {
    let mut headers = Vec::new();
    if have > 0 {
        headers.push(("Range", format!("bytes={have}-")));
    }
    let reply = session.get(url, &headers)?;
    let from = match reply.status {
        200 => 0,
        206 => {
            let range = reply.header("content-range").unwrap_or_default();
            if have == 0 || !range.starts_with(&format!("bytes {have}-")) {
                bail!("{url}: the registry sent the range {range:?}, not the one asked for: refused");
            }
            have
        }
        _ => {
            return Err(
                reply.refusal(&format!("blob {}", url.rsplit('/').next().unwrap_or(url)))
            )
        }
    };
    let arriving = size - from;
    if let Some(length) = reply.header("content-length") {
        if length.parse::<u64>().ok() != Some(arriving) {
            bail!("{url}: the registry sends {length} bytes where {arriving} are due: refused");
        }
    }
    // One byte more than is due, so a blob that is longer is seen to be.
    Ok((reply.body.into_reader().take(arriving + 1), from))
}
// ANCHOR_END: ask_from

// ANCHOR: network
/// The response body, counted and watched. A read that fails, or an end before the
/// blob's size, is a download cut off: the rest is asked for (a few times), and when
/// that fails too, the download stops and says why.
struct Network<'a> {
    session: &'a Session<'a>,
    url: String,
    body: io::Take<ureq::BodyReader<'static>>,
    resumes_left: u32,
    /// Set when the download was cut off for good: what happened.
    cut: Arc<Mutex<Option<String>>>,
    report: LayerProgress<'a>,
    /// Bytes of the blob in hand so far (an earlier pull's too).
    received: u64,
    size: u64,
    ended: bool,
}

impl Read for Network<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = loop {
            match self.read_body(buffer) {
                Ok(read) => break read,
                Err(error) if self.resumes_left > 0 && self.take_up_again() => {
                    trace::say(format_args!(
                        "HTTP {}: cut off after {} bytes ({error}): the rest asked for",
                        self.url, self.received
                    ));
                }
                Err(error) => return Err(self.cut_off(error)),
            }
        };
        self.received += read as u64;
        self.report.advance(read as u64);
        if read == 0 && !self.ended {
            self.ended = true;
            self.report.downloaded();
        }
        Ok(read)
    }
}

impl Network<'_> {
    /// A read of the body; its end before the blob's size is an error.
    fn read_body(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self.body.read(buffer) {
            Ok(0) if self.received < self.size => {
                Err(io::Error::from(io::ErrorKind::UnexpectedEof))
            }
            other => other,
        }
    }

    /// Asks for the rest of the blob; whether the registry serves it as a range.
    fn take_up_again(&mut self) -> bool {
        self.resumes_left -= 1;
        match ask_from(self.session, &self.url, self.received, self.size) {
            Ok((body, from)) if from == self.received => {
                self.body = body;
                true
            }
            _ => false,
        }
    }

    /// Records why the download stopped short, and passes the error on.
    fn cut_off(&mut self, error: io::Error) -> io::Error {
        let stalled = error.kind() == io::ErrorKind::TimedOut
            || error.kind() == io::ErrorKind::WouldBlock
            || error.to_string().contains("timeout");
        let why = match (stalled, error.kind()) {
            (true, _) => format!(
                "it stalled (no byte for {} s)",
                self.session.http.stall().as_secs()
            ),
            (false, io::ErrorKind::UnexpectedEof) => "the connection closed".to_string(),
            (false, _) => error.to_string(),
        };
        let line = format!(
            "the download was cut off after {} of {} bytes: {why}",
            self.received, self.size
        );
        self.report.failed();
        *self.cut.lock().expect("no thread panics holding it") = Some(line.clone());
        io::Error::other(line)
    }
}
// ANCHOR_END: network

/// A blob being downloaded: what an earlier pull left, then the bytes arriving, each
/// written after it in the ingest file.
pub struct Download<'a> {
    already: Option<BufReader<File>>,
    arriving: Tee<Network<'a>>,
    cut: Arc<Mutex<Option<String>>>,
    expected: Expected,
}

impl Read for Download<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if let Some(already) = &mut self.already {
            let read = already.read(buffer)?;
            if read > 0 {
                return Ok(read);
            }
            self.already = None;
        }
        self.arriving.read(buffer)
    }
}

// ANCHOR: keep_discard
impl BlobReader for Download<'_> {
    fn keep(mut self: Box<Self>) -> Result<()> {
        self.arriving.inner_mut().report.done();
        self.arriving
            .keep_copy()
            .with_context(|| format!("blob {}", self.expected.digest))
    }

    /// A download cut off keeps what arrived, for the next pull to go on from, and
    /// says so; a blob that proved wrong (or a layer that was refused) goes.
    fn discard(mut self: Box<Self>, error: anyhow::Error) -> anyhow::Error {
        self.arriving.inner_mut().report.failed();
        let cut = self.cut.lock().expect("no thread panics holding it").take();
        let digest = &self.expected.digest;
        match cut {
            Some(line) if self.arriving.inner_mut().received > 0 => {
                let _ = self.arriving.flush_copy();
                anyhow!("blob {digest}: {line}; what arrived is kept, and the next pull goes on from there")
            }
            Some(line) => {
                self.arriving.remove();
                anyhow!("blob {digest}: {line}")
            }
            None => {
                self.arriving.remove();
                error
            }
        }
    }
}
// ANCHOR_END: keep_discard

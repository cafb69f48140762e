// Your copy of solutions/09-images/src/blobs.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Where a layer's bytes come from. Book: section 9.3.
//!
//! Unpacking does not care: it reads a stream, hashes it and makes the layer's entries.
//! Here, the stream is the store's own copy of the blob, or the blob of the layout being
//! imported, copied into the store as it goes by; in chapter 10 it is a download. Every
//! source says what becomes of its copy once the unpack has checked every byte of it
//! (kept under its digest) or found it wrong (thrown away).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::digest::Digest;
use crate::oci::Descriptor;
use crate::store::Store;

// ANCHOR: layer_source
/// A layer's blob being read, for one unpack.
pub trait BlobReader: Read + Send {
    /// The unpack checked every byte against the blob's digest: keep the copy (if any)
    /// in the store.
    fn keep(self: Box<Self>) -> Result<()>;

    /// The unpack failed with `error`: the copy (if any) goes. Returns the error to
    /// report, which the source may tell better (a download cut off, say).
    fn discard(self: Box<Self>, error: anyhow::Error) -> anyhow::Error;
}

/// Where the blobs of layers not unpacked yet are read from.
pub trait LayerSource: Sync {
    /// The blob of `layer`, opened for one unpack.
    fn open(&self, layer: &Descriptor) -> Result<Box<dyn BlobReader + '_>>;

    /// How many layers to read at once.
    fn at_once(&self) -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}
// ANCHOR_END: layer_source

/// Chapter 9's source: the store's own copy of a blob, or, when it has none, the copy
/// in the layout at `layout` (an import), copied into the store on the way.
pub struct LocalBlobs<'a> {
    pub store: &'a Store,
    pub layout: Option<&'a Path>,
}

impl LayerSource for LocalBlobs<'_> {
    fn open(&self, layer: &Descriptor) -> Result<Box<dyn BlobReader + '_>> {
        let stored = self.store.blob_path(&layer.digest);
        match self.layout {
            Some(layout) if !stored.is_file() => {
                let file = open_blob(&layer.digest.path_in(layout), &layer.digest)?;
                let temporary = layer.digest.temporary_in(self.store.root())?;
                let keep_as = self.store.blob_path(&layer.digest);
                let copy = Tee::new(file, &temporary, keep_as)?;
                Ok(Box::new(copy))
            }
            _ => Ok(Box::new(open_blob(&stored, &layer.digest)?)),
        }
    }
}

/// A blob file, read with a large buffer (layers are big).
pub fn open_blob(path: &Path, digest: &Digest) -> Result<BufReader<File>> {
    let file =
        File::open(path).with_context(|| format!("cannot read the layer {digest}"))?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

/// The store's own copy: nothing to keep or throw away.
impl BlobReader for BufReader<File> {
    fn keep(self: Box<Self>) -> Result<()> {
        Ok(())
    }

    fn discard(self: Box<Self>, error: anyhow::Error) -> anyhow::Error {
        error
    }
}

/// A reader that also writes what it reads to a temporary file in the store: the blob
/// goes into the store in the same pass that unpacks it.
pub struct Tee<R> {
    inner: R,
    copy: BufWriter<File>,
    temporary: PathBuf,
    keep_as: PathBuf,
}

impl<R: Read> Tee<R> {
    /// `inner`'s bytes, copied to `temporary` (made new) as they are read; renamed to
    /// `keep_as` once kept.
    pub fn new(inner: R, temporary: &Path, keep_as: PathBuf) -> Result<Tee<R>> {
        // New, and never through a symlink: the store is read back as hostile.
        let file = File::options()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(temporary)
            .with_context(|| format!("cannot write {temporary:?}"))?;
        Ok(Tee::appending(inner, file, temporary, keep_as))
    }

    /// The same, writing after what `file` (at `temporary`) already holds.
    pub fn appending(inner: R, file: File, temporary: &Path, keep_as: PathBuf) -> Tee<R> {
        Tee {
            inner,
            copy: BufWriter::with_capacity(1 << 20, file),
            temporary: temporary.to_path_buf(),
            keep_as,
        }
    }

    /// Writes out the copy and renames it to its name in the store.
    pub fn keep_copy(mut self) -> Result<()> {
        self.copy
            .flush()
            .context("cannot write the copy of the layer's blob")?;
        fs::rename(&self.temporary, &self.keep_as)
            .with_context(|| format!("cannot keep the blob {:?}", self.keep_as))
    }

    /// Writes out what the copy holds so far, and keeps it under its temporary name.
    pub fn flush_copy(&mut self) -> io::Result<()> {
        self.copy.flush()
    }

    /// Removes the copy.
    pub fn remove(self) {
        let _ = fs::remove_file(&self.temporary);
    }

    /// The reader inside.
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.copy.write_all(&buffer[..read])?;
        Ok(read)
    }
}

impl<R: Read + Send> BlobReader for Tee<R> {
    fn keep(self: Box<Self>) -> Result<()> {
        self.keep_copy()
    }

    fn discard(self: Box<Self>, error: anyhow::Error) -> anyhow::Error {
        self.remove();
        error
    }
}

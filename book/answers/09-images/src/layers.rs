// solutions/09-images/src/layers.rs without its exercise markers, made by `cargo xtask gen` for the book's folded answers.
//! Each layer unpacked once, into `layers/CHAIN_ID/` under the data root, and shared by
//! every image that has it. Book: section 9.3.
//!
//! A layer's directory is named by its chain id, the hash of its own tar's digest
//! (diff_id) on top of the chain id of the layers below it, not by its diff_id alone: a
//! hardlink to a file of a lower layer is copied up from that layer, so what the
//! directory holds depends on what is below it. A directory is unpacked under `tmp/`
//! and renamed to its name only when whole: a runtime killed half way leaves a
//! directory under `tmp/` that the next one removes, never a half layer.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid};

use crate::blobs::LayerSource;
use crate::config::ImageConfig;
use crate::container::remove_tree;
use crate::dataroot;
use crate::digest::Digest;
use crate::oci::Descriptor;
use crate::oci::Manifest;
use crate::records::{self, Runtime};
use crate::unpack::{self, Compression, LayerBlob, Unpacked};

// ANCHOR: chain_ids
/// The chain ids of layers whose tars are `diff_ids`, lowest first: the lowest's is its
/// diff_id; each next is `sha256(CHAIN_BELOW + " " + DIFF_ID)` (the image spec's rule).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(below) => Digest::of(format!("{below} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}
// ANCHOR_END: chain_ids

/// The directory of the layer whose chain id is `chain`.
pub fn dir(data_root: &Path, chain: &Digest) -> PathBuf {
    dataroot::layers(data_root).join(chain.hex())
}

// ANCHOR: ensure_unpacked
/// The image's layer directories, lowest first, unpacking those not there yet from
/// `source`: in parallel, each into a directory of its own under `tmp/`; then the
/// hardlinks to lower layers are copied up, lowest layer first; then each directory is
/// renamed into place.
pub fn ensure_unpacked(
    data_root: &Path,
    image: (&Manifest, &ImageConfig),
    source: &dyn LayerSource,
    as_root: bool,
) -> Result<Vec<PathBuf>> {
    let (manifest, config) = image;
    let chain = chain_ids(&config.rootfs.diff_ids);
    let finals: Vec<PathBuf> = chain.iter().map(|id| dir(data_root, id)).collect();
    let missing: Vec<usize> =
        (0..finals.len()).filter(|i| !finals[*i].is_dir()).collect();
    if missing.is_empty() {
        return Ok(finals);
    }
    records::make_dir(&dataroot::layers(data_root))?;
    let mut work = TmpDirs::new(data_root)?;
    let jobs: Vec<Job> = missing
        .iter()
        .map(|&i| {
            Ok(Job {
                index: i,
                blob: &manifest.layers[i],
                diff_id: &config.rootfs.diff_ids[i],
                into: work.make()?,
            })
        })
        .collect::<Result<_>>()?;
    let unpacked = unpack_all(&jobs, source, as_root)?;
    let mut lowers = finals.clone();
    for (job, result) in jobs.iter().zip(&unpacked) {
        lowers[job.index] = job.into.clone();
        for note in &result.skipped {
            eprintln!("note: layer {}: left out {note}", job.blob.digest);
        }
    }
    for (job, result) in jobs.iter().zip(&unpacked) {
        copy_up_links(
            &job.into,
            &lowers[..job.index],
            &result.links_below,
            as_root,
        )
        .with_context(|| format!("layer {}", job.blob.digest))?;
    }
    for job in &jobs {
        put_in_place(&job.into, &finals[job.index])?;
    }
    work.done();
    Ok(finals)
}
// ANCHOR_END: ensure_unpacked

/// One layer to unpack.
struct Job<'a> {
    index: usize,
    blob: &'a Descriptor,
    diff_id: &'a Digest,
    into: PathBuf,
}

/// Unpacks every job, `source.at_once()` at a time (or fewer, if fewer jobs); the
/// first error is the answer. A manifest may name one blob twice (old images repeat an
/// empty layer): its copy into the store is made once, by the first job that has it,
/// and the others read the store's copy after that.
fn unpack_all(
    jobs: &[Job],
    source: &dyn LayerSource,
    as_root: bool,
) -> Result<Vec<Unpacked>> {
    let mut seen = std::collections::HashSet::new();
    let (first, again): (Vec<usize>, Vec<usize>) =
        (0..jobs.len()).partition(|&i| seen.insert(&jobs[i].blob.digest));
    let mut results: Vec<Option<Unpacked>> = jobs.iter().map(|_| None).collect();
    for round in [first, again] {
        let unpacked = in_parallel(&round, jobs, source, as_root);
        for (i, result) in round.iter().zip(unpacked) {
            results[*i] = Some(result?);
        }
    }
    Ok(results
        .into_iter()
        .map(|result| result.expect("every job ran"))
        .collect())
}

/// Unpacks the jobs numbered `indices`, on as many threads as the source allows.
fn in_parallel(
    indices: &[usize],
    jobs: &[Job],
    source: &dyn LayerSource,
    as_root: bool,
) -> Vec<Result<Unpacked>> {
    let threads = source.at_once().clamp(1, indices.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Unpacked>>>> =
        Mutex::new(indices.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = indices.get(n) else { break };
                let result = unpack_one(&jobs[i], source, as_root);
                results.lock().expect("no thread panics holding it")[n] = Some(result);
            });
        }
    });
    let results = results.into_inner().expect("no thread panicked holding it");
    results
        .into_iter()
        .map(|result| result.expect("every job ran"))
        .collect()
}

// ANCHOR: unpack_one
/// Unpacks one layer from its source; the source's copy of the blob is kept only when
/// the unpack checked all of it.
fn unpack_one(job: &Job, source: &dyn LayerSource, as_root: bool) -> Result<Unpacked> {
    let layer = LayerBlob {
        compression: Compression::of(&job.blob.media_type),
        blob: &job.blob.expected(),
        diff_id: job.diff_id,
    };
    let mut reader = source.open(job.blob)?;
    match unpack::unpack(&mut reader, &layer, &job.into, as_root) {
        Ok((unpacked, _)) => {
            reader.keep()?;
            Ok(unpacked)
        }
        Err(error) => Err(reader.discard(error)),
    }
}
// ANCHOR_END: unpack_one

/// Renames a whole layer into place. If another runtime put the same layer there first,
/// this copy goes: the same chain id is the same layer.
fn put_in_place(from: &Path, to: &Path) -> Result<()> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(_) if to.is_dir() => remove_tree(from),
        Err(error) => {
            Err(error).with_context(|| format!("cannot rename {from:?} to {to:?}"))
        }
    }
}

// ANCHOR: copy_up_links
/// Makes each hardlink to a lower layer's file (`link`, `target`) as overlay's copy-up
/// would: a copy of the file the layers below show at `target`, with its owner, mode and
/// time. Deleted there, or no file, and the link is refused.
fn copy_up_links(
    layer: &Path,
    lowers: &[PathBuf],
    links: &[(PathBuf, PathBuf)],
    as_root: bool,
) -> Result<()> {
    for (link, target) in links {
        let source = merged_file(lowers, target)?.ok_or_else(|| {
            anyhow!(
                "a hardlink {link:?} to {target:?}, which no layer below has: refused"
            )
        })?;
        copy_file(source, layer, link, as_root)
            .with_context(|| format!("cannot copy {target:?} up to {link:?}"))?;
    }
    Ok(())
}
// ANCHOR_END: copy_up_links

// ANCHOR: merged_file
/// The regular file at `path` of the merged view of `lowers` (lowest first), as overlay
/// would find it, without mounting anything: the highest layer that has a name there
/// decides. A whiteout on the way (or at `path`) means deleted; a directory on the way
/// that is opaque hides the layers below it; a file on the way hides what is below.
/// Every look-up is inside the layer, through no symlink.
pub fn merged_file(lowers: &[PathBuf], path: &Path) -> Result<Option<File>> {
    for layer in lowers.iter().rev() {
        let root = fcntl::open(layer, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
        let mut opaque = false;
        let mut walked = PathBuf::new();
        for part in path.components() {
            walked.push(part);
            let Some(kind) = kind_at(&root, &walked)? else {
                break; // not in this layer: the next one down may have it
            };
            let at_the_end = walked.as_path() == path;
            match kind {
                Kind::Whiteout => return Ok(None),
                Kind::Directory { opaque: true } if !at_the_end => opaque = true,
                Kind::Directory { .. } if !at_the_end => continue,
                Kind::File if at_the_end => return open_in(&root, path).map(Some),
                _ => return Ok(None), // a file where a directory belongs, or no file
            }
        }
        if opaque {
            return Ok(None);
        }
    }
    Ok(None)
}
// ANCHOR_END: merged_file

/// What a layer has at a name, as overlay tells it.
enum Kind {
    Whiteout,
    Directory { opaque: bool },
    File,
    Other,
}

/// What the layer at `root` has at `path`; `None` for nothing.
fn kind_at(root: &impl std::os::fd::AsFd, path: &Path) -> Result<Option<Kind>> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let found = match fcntl::openat2(root.as_fd(), path, how) {
        Ok(found) => found,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(nix::errno::Errno::ELOOP) => return Ok(Some(Kind::Other)), // a symlink
        Err(error) => bail!("{path:?} cannot be looked up in a layer: {error}"),
    };
    let stat = stat::fstat(&found)?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    Ok(Some(match kind {
        SFlag::S_IFCHR if stat.st_rdev == 0 => Kind::Whiteout,
        SFlag::S_IFDIR => Kind::Directory {
            opaque: is_opaque_at(root, path)?,
        },
        SFlag::S_IFREG => Kind::File,
        _ => Kind::Other,
    }))
}

/// Whether the directory `path` of the layer at `root` is opaque, in either of overlay's
/// attribute names (read through a descriptor of the directory itself).
fn is_opaque_at(root: &impl std::os::fd::AsFd, path: &Path) -> Result<bool> {
    use std::os::fd::AsRawFd;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let dir = fcntl::openat2(root.as_fd(), path, how)?;
    let opaque = [c"trusted.overlay.opaque", c"user.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut value = [0u8; 2];
            // SAFETY: the name is NUL-terminated; the buffer's pointer and length match.
            let size = unsafe {
                libc::fgetxattr(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            size == 1 && value[0] == b'y'
        });
    Ok(opaque)
}

/// Opens the regular file `path` of the layer at `root` for reading.
fn open_in(root: &impl std::os::fd::AsFd, path: &Path) -> Result<File> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    Ok(File::from(fcntl::openat2(root.as_fd(), path, how)?))
}

fn copy_file(mut source: File, layer: &Path, link: &Path, as_root: bool) -> Result<()> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let root = fcntl::open(layer, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
    let parent = match link.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."), // a link at the layer's top
    };
    let parent = fcntl::openat2(&root, parent, how)?;
    let name = link.file_name().context("a link with no name")?;
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW;
    let mut copy = File::from(fcntl::openat(&parent, name, flags, Mode::empty())?);
    io::copy(&mut source, &mut copy)?;
    let meta = stat::fstat(&source)?;
    if as_root {
        let (uid, gid) = (Uid::from_raw(meta.st_uid), Gid::from_raw(meta.st_gid));
        unistd::fchown(copy.as_fd(), Some(uid), Some(gid))?;
    }
    stat::fchmod(
        copy.as_fd(),
        Mode::from_bits_truncate(meta.st_mode & 0o7777),
    )?;
    let time = TimeSpec::new(meta.st_mtime, meta.st_mtime_nsec);
    stat::futimens(copy.as_fd(), &time, &time)?;
    Ok(())
}

// ANCHOR: tmp_dirs
/// The directories a runtime is making under `tmp/`, named `PID.START.N` after it, and
/// removed unless [`TmpDirs::done`] says they were put in place. Made, they also remove
/// what a runtime that is no longer alive left there.
pub struct TmpDirs {
    base: PathBuf,
    runtime: Runtime,
    made: Vec<PathBuf>,
}

impl TmpDirs {
    pub fn new(data_root: &Path) -> Result<TmpDirs> {
        let base = dataroot::tmp(data_root);
        records::make_dir(&base)?;
        remove_left_behind(&base);
        Ok(TmpDirs {
            base,
            runtime: Runtime::this()?,
            made: Vec::new(),
        })
    }

    /// A new empty directory, this runtime's own.
    pub fn make(&mut self) -> Result<PathBuf> {
        // Numbered across the process: an import holds two sets at once (the archive's
        // files, and the layers it unpacks).
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let Runtime { pid, started } = self.runtime;
        let path = self.base.join(format!("{pid}.{started}.{n}"));
        fs::create_dir(&path).with_context(|| format!("cannot make {path:?}"))?;
        self.made.push(path.clone());
        Ok(path)
    }

    /// Everything made was put in place: nothing to remove.
    pub fn done(&mut self) {
        self.made.clear();
    }
}

impl Drop for TmpDirs {
    fn drop(&mut self) {
        for dir in &self.made {
            if let Err(error) = remove_tree(dir) {
                eprintln!("warning: cannot remove {dir:?}: {error:#}");
            }
        }
    }
}

/// Removes what runtimes that are no longer alive left under `tmp/`. A name that is not
/// `PID.START.N` is not the kit's, and stays.
fn remove_left_behind(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let mut parts = name.split('.');
        let (Some(pid), Some(started)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(runtime) = Runtime::parse(pid, started) else {
            continue;
        };
        if !runtime.is_alive() {
            let _ = remove_tree(&entry.path());
        }
    }
}
// ANCHOR_END: tmp_dirs

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_stack_each_diff_id_on_the_ones_below() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::of(format!("{a} {b}").as_bytes()));
        assert_ne!(chain_ids(&[b.clone(), a.clone()])[1], chain[1]);
    }
}

//! `cargo xtask bench`, second part (from chapter 9): how long taking in and unpacking an
//! image takes, beside umoci and tar. Book: "How this kit is built".
//!
//! The bench makes an image of three gzip layers (half of each layer's bytes random, half
//! text, in files small and large), writes it as an OCI layout, and times, in turns:
//! - `byoc image import`: every blob copied into the store and checked, every layer
//!   unpacked (in parallel, one thread per layer up to the cores) and checked;
//! - `umoci unpack` of the same layout;
//! - `tar -xzf` of each layer, one after another, into one directory;
//! - the floor: the kit's own decompressor (flate2 on zlib-rs) inflating every layer to
//!   nowhere, a thread per layer. Nothing that unpacks can be faster than that.
//!
//! CI makes a small image; `--unpack-mb 500` makes the full-size one by hand.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

/// What the unpack bench is asked for.
pub struct UnpackBench<'a> {
    pub binary: &'a Path,
    pub scratch: &'a Path,
    /// About how many MB the image's layers are, compressed.
    pub compressed_mb: u64,
    pub runs: u32,
}

/// Unpacks the image into a directory (removed after each run, untimed).
pub(crate) type Unpack = Box<dyn Fn(&Path) -> Result<Measured>>;

/// One way to unpack the image.
pub(crate) struct Way {
    pub name: &'static str,
    pub run: Unpack,
}

/// A run's time, the CPU time it used (user and system, every thread), and the most
/// memory its process had at once, when it is a process.
pub(crate) struct Measured {
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub peak_kb: Option<u64>,
}

impl Measured {
    /// Two runs one after the other, as one: times add, the peak is the larger.
    pub(crate) fn then(self, next: Measured) -> Measured {
        Measured {
            seconds: self.seconds + next.seconds,
            cpu_seconds: self.cpu_seconds + next.cpu_seconds,
            peak_kb: self.peak_kb.max(next.peak_kb),
        }
    }
}

pub fn run(bench: &UnpackBench) -> Result<()> {
    println!("\n== unpack: an image of three gzip layers, taken in and unpacked ==");
    println!(
        "before each run the bench writes out and drops this machine's page cache, then \
         reads the run's input back in, so that every way starts alike"
    );
    let layout = bench.scratch.join("unpack-layout");
    let started = Instant::now();
    let layers = make_image(&layout, bench.compressed_mb)?;
    let compressed: u64 = layers.iter().map(|l| l.compressed).sum();
    let tar_bytes: u64 = layers.iter().map(|l| l.tar).sum();
    println!(
        "the image: {} MB of layers compressed, {} MB of tar, made in {:.1} s at {}",
        compressed / 1_000_000,
        tar_bytes / 1_000_000,
        started.elapsed().as_secs_f64(),
        layout.display()
    );
    let ways = ways(bench, &layout, &layers);
    let mut times: Vec<Vec<Measured>> = ways.iter().map(|_| Vec::new()).collect();
    for round in 0..bench.runs {
        for (i, way) in ways.iter().enumerate() {
            let into = bench.scratch.join(format!("unpack-{round}-{i}"));
            settle(&[&layout])?;
            let measured =
                (way.run)(&into).with_context(|| format!("{} failed", way.name))?;
            remove(&into)?;
            times[i].push(measured);
        }
    }
    print_results(&ways, &times, &[("umoci", 0.25), ("tar", 0.7)]);
    remove(&layout)
}

/// A layer of the bench's image: its blob and sizes.
pub(crate) struct Layer {
    pub blob: PathBuf,
    pub compressed: u64,
    pub tar: u64,
}

fn ways(bench: &UnpackBench, layout: &Path, layers: &[Layer]) -> Vec<Way> {
    let mut ways = Vec::new();
    let binary = bench.binary.to_path_buf();
    let layout_text = layout.display().to_string();
    ways.push(Way {
        name: "byoc image import",
        run: Box::new(move |into| {
            let mut command = Command::new(&binary);
            command
                .args(["image", "import", &layout_text, "bench:1"])
                .env("BYOC_ROOT", into);
            timed(command)
        }),
    });
    if Command::new("umoci").arg("--version").output().is_ok() {
        let image = format!("{}:latest", layout.display());
        ways.push(Way {
            name: "umoci unpack",
            run: Box::new(move |into| {
                let mut command = Command::new("umoci");
                command.args(["unpack", "--image", &image]).arg(into);
                timed(command)
            }),
        });
    } else {
        println!("umoci is not installed: its row is left out (apt-get install umoci)");
    }
    let blobs: Vec<PathBuf> = layers.iter().map(|l| l.blob.clone()).collect();
    let tar_blobs = blobs.clone();
    ways.push(Way {
        name: "tar -xzf, one layer after another",
        run: Box::new(move |into| untar_one_after_another(&tar_blobs, into)),
    });
    ways.push(Way {
        name: "floor: inflate to nowhere, a thread per layer",
        run: Box::new(move |_| inflate_all(&blobs)),
    });
    ways
}

/// `tar -xzf` of each blob into `into`, one after another, as one run.
pub(crate) fn untar_one_after_another(
    blobs: &[PathBuf],
    into: &Path,
) -> Result<Measured> {
    fs::create_dir_all(into)?;
    let mut all = Measured {
        seconds: 0.0,
        cpu_seconds: 0.0,
        peak_kb: None,
    };
    for blob in blobs {
        let mut command = Command::new("tar");
        command.arg("-xzf").arg(blob).arg("-C").arg(into);
        all = all.then(timed(command)?);
    }
    Ok(all)
}

/// Runs `command` to its end, timed, with the CPU time it and the children it waited
/// for used (`wait4`'s rusage), and its peak resident memory: `VmHWM` of
/// `/proc/PID/status`, read every few milliseconds while it runs (the rusage's
/// `ru_maxrss` would count the pages it shared with this process before its exec).
pub(crate) fn timed(mut command: Command) -> Result<Measured> {
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn().context("cannot start it")?;
    let mut pipe = child.stderr.take().context("no stderr")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    let (status, cpu_seconds) = loop {
        if let Some(kb) = high_water_kb(&status_file) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(ended) = reap_if_ended(&child)? {
            break ended;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let seconds = start.elapsed().as_secs_f64();
    let stderr = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("it failed: {}", stderr.trim());
    }
    Ok(Measured {
        seconds,
        cpu_seconds,
        peak_kb: Some(peak_kb),
    })
}

/// The child's exit status and CPU seconds, once it has ended (`wait4` without
/// blocking: std's `try_wait` does not give the rusage).
fn reap_if_ended(child: &std::process::Child) -> Result<Option<(ExitStatus, f64)>> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, which wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: the pointers are to live locals; the pid is our own child's.
    let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    match reaped {
        0 => Ok(None),
        -1 => Err(io::Error::last_os_error()).context("cannot wait for it"),
        _ => Ok(Some((ExitStatus::from_raw(status), cpu_of(&usage)))),
    }
}

/// User and system seconds of a rusage.
fn cpu_of(usage: &libc::rusage) -> f64 {
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The CPU seconds this process (every thread of it) has used so far.
fn own_cpu_seconds() -> f64 {
    // SAFETY: as in `reap_if_ended`; RUSAGE_SELF needs nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live local.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    cpu_of(&usage)
}

/// The `VmHWM` line of a process's status, in kB.
fn high_water_kb(status_file: &str) -> Option<u64> {
    let status = fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Inflates every blob to nowhere, a thread each.
pub(crate) fn inflate_all(blobs: &[PathBuf]) -> Result<Measured> {
    let start = Instant::now();
    let cpu_before = own_cpu_seconds();
    std::thread::scope(|scope| -> Result<()> {
        let threads: Vec<_> = blobs
            .iter()
            .map(|blob| {
                scope.spawn(move || -> Result<u64> {
                    let file = io::BufReader::with_capacity(1 << 20, File::open(blob)?);
                    let mut decoder = flate2::read::MultiGzDecoder::new(file);
                    Ok(io::copy(&mut decoder, &mut io::sink())?)
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("an inflate thread")?;
        }
        Ok(())
    })?;
    Ok(Measured {
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: own_cpu_seconds() - cpu_before,
        peak_kb: None,
    })
}

/// Prints each way's mean, deviation, CPU time and peak memory, then the kit's ratios to
/// the ways whose names start with the prefixes of `goals`, each with its goal, and to
/// the floor, with the least time the kit's CPU time allows on this machine's CPUs.
pub(crate) fn print_results(
    ways: &[Way],
    times: &[Vec<Measured>],
    goals: &[(&str, f64)],
) {
    println!(
        "\n{:<48} {:>8} {:>8} {:>8} {:>9}",
        "way", "mean s", "sd s", "cpu s", "peak MB"
    );
    let mut means = Vec::new();
    for (way, measured) in ways.iter().zip(times) {
        let summary = Summary::of(measured);
        let peak = summary
            .peak_kb
            .map_or("-".to_string(), |kb| format!("{:.1}", kb as f64 / 1024.0));
        println!(
            "{:<48} {:>8.3} {:>8.3} {:>8.3} {peak:>9}",
            way.name, summary.mean, summary.deviation, summary.cpu
        );
        means.push((way.name, summary));
    }
    let find = |prefix: &str| {
        means
            .iter()
            .find(|(name, _)| name.starts_with(prefix))
            .map(|(name, summary)| (*name, summary))
    };
    let Some((_, kit)) = find("byoc") else {
        return;
    };
    println!();
    for &(prefix, goal) in goals {
        if let Some((name, peer)) = find(prefix) {
            let ratio = kit.mean / peer.mean;
            println!("byoc / {name}: {ratio:.2}x (goal: at most {goal}x)");
        }
    }
    if let Some((_, floor)) = find("floor") {
        println!(
            "byoc / the floor: {:.2}x (goal: within 1.3x)",
            kit.mean / floor.mean
        );
        print_cpu_bound(kit, floor);
    }
    if let Some(kb) = kit.peak_kb {
        println!(
            "byoc's peak memory: {:.1} MB (goal: under 64 MB)",
            kb as f64 / 1024.0
        );
    }
}

/// A way's runs, summed up.
struct Summary {
    mean: f64,
    deviation: f64,
    cpu: f64,
    peak_kb: Option<u64>,
}

impl Summary {
    fn of(measured: &[Measured]) -> Summary {
        let count = measured.len() as f64;
        let mean = measured.iter().map(|m| m.seconds).sum::<f64>() / count;
        let variance = measured
            .iter()
            .map(|m| (m.seconds - mean).powi(2))
            .sum::<f64>()
            / (measured.len().max(2) - 1) as f64;
        Summary {
            mean,
            deviation: variance.sqrt(),
            cpu: measured.iter().map(|m| m.cpu_seconds).sum::<f64>() / count,
            peak_kb: measured.iter().filter_map(|m| m.peak_kb).max(),
        }
    }
}

/// The floor keeps every CPU busy inflating; the kit must also hash and write. Whatever
/// its threads, it cannot finish before its CPU time spread over every CPU: that, beside
/// the floor, is the nearest this machine lets it come.
fn print_cpu_bound(kit: &Summary, floor: &Summary) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let least = kit.cpu / cpus;
    println!(
        "byoc's CPU time / the floor's: {:.2}x; on {cpus} CPUs the kit cannot take \
         less than {least:.2} s, {:.2}x the floor",
        kit.cpu / floor.cpu,
        least / floor.mean
    );
}

/// Before each timed run, every way starts from the same state: what the runs before
/// wrote is on disk and out of the page cache, and the run's inputs (`warm`) are back in
/// it. The reason is the file system more than fairness: an ext4 without a journal (as
/// on the machine of the book's figures) will not reuse an inode deleted in the last
/// five minutes while its block is dirty in the cache, so the file after thousands just
/// removed is made only after the allocator has looked at each of them. Left alone, that
/// search grew from run to run, doubled the system time of every way, and timed the file
/// system's history instead of the unpacker.
pub(crate) fn settle(warm: &[&Path]) -> Result<()> {
    // SAFETY: sync takes nothing and cannot fail.
    unsafe { libc::sync() };
    fs::write("/proc/sys/vm/drop_caches", "1")
        .context("cannot drop the page cache between runs (the bench runs as root)")?;
    for path in warm {
        read_every_file(path)?;
    }
    Ok(())
}

/// Reads every file under `path` to nowhere, so that it is in the page cache.
fn read_every_file(path: &Path) -> Result<()> {
    for entry in fs::read_dir(path).with_context(|| format!("cannot read {path:?}"))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            read_every_file(&entry.path())?;
        } else if kind.is_file() {
            io::copy(&mut File::open(entry.path())?, &mut io::sink())?;
        }
    }
    Ok(())
}

pub(crate) fn remove(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// The image

/// Writes an OCI layout at `layout` with three gzip layers of about `mb` MB in all
/// (half, a third and a sixth of it).
pub(crate) fn make_image(layout: &Path, mb: u64) -> Result<Vec<Layer>> {
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    let shares = [3, 2, 1];
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (n, share) in shares.iter().enumerate() {
        let target = mb * 1_000_000 * share / 6;
        let (layer, digest, diff_id) = write_layer(&blobs, n, target, &mut random)?;
        descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest, "size": layer.compressed,
        }));
        diff_ids.push(diff_id);
        layers.push(layer);
    }
    let config = json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = blob(&blobs, config.to_string().as_bytes())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.0, "size": config.1},
        "layers": descriptors,
    });
    let manifest = blob(&blobs, manifest.to_string().as_bytes())?;
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest.0, "size": manifest.1,
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    fs::write(layout.join("index.json"), index.to_string())?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok(layers)
}

/// Stores `bytes` as a blob; its digest and size.
fn blob(blobs: &Path, bytes: &[u8]) -> Result<(String, usize)> {
    let digest = hex(&Sha256::digest(bytes));
    fs::write(blobs.join(&digest), bytes)?;
    Ok((format!("sha256:{digest}"), bytes.len()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes layer `n`: files until the compressed bytes reach `target`, both digests
/// taken as the bytes go by.
fn write_layer(
    blobs: &Path,
    n: usize,
    target: u64,
    random: &mut XorShift,
) -> Result<(Layer, String, String)> {
    let path = blobs.join(format!("layer-{n}.new"));
    let file = Hashing::new(BufWriter::with_capacity(1 << 20, File::create(&path)?));
    let gzip = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(Hashing::new(gzip));
    let mut count = 0u64;
    while tar.get_ref().get_ref().get_ref().count < target {
        let size = match count % 50 {
            0 => 8 << 20,                         // a few large files
            _ => 4096 * (1 + random.next() % 32), // and many small ones
        };
        let data = file_data(random, size as usize);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_767_225_600);
        let name = format!("layer{n}/d{:03}/f{count:06}", count % 97);
        tar.append_data(&mut header, name, &data[..])?;
        count += 1;
    }
    let (gzip, diff_id, tar_size) = tar.into_inner()?.finish();
    let (mut file, digest, compressed) = gzip.finish()?.finish();
    file.flush()?;
    let final_path = blobs.join(&digest);
    fs::rename(&path, &final_path)?;
    let layer = Layer {
        blob: final_path,
        compressed,
        tar: tar_size,
    };
    Ok((
        layer,
        format!("sha256:{digest}"),
        format!("sha256:{diff_id}"),
    ))
}

/// A file's bytes: half random (as compressed or encrypted data is), half text-like.
fn file_data(random: &mut XorShift, size: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        let chunk = (size - data.len()).min(4096);
        match random.next() % 2 {
            0 => {
                let words = chunk.div_ceil(8);
                let bytes = (0..words).flat_map(|_| random.next().to_le_bytes());
                data.extend(bytes.take(chunk));
            }
            _ => {
                let line = format!(
                    "line {} of some text, repeated a little\n",
                    random.next() % 1000
                );
                data.extend(line.bytes().cycle().take(chunk));
            }
        }
    }
    data
}

/// A small, fast pseudo-random source: the same image on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn get_ref(&self) -> &W {
        &self.inner
    }

    fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seconds: f64, cpu_seconds: f64, peak_kb: Option<u64>) -> Measured {
        Measured {
            seconds,
            cpu_seconds,
            peak_kb,
        }
    }

    #[test]
    fn a_summary_averages_time_and_cpu_and_keeps_the_highest_peak() {
        let summary = Summary::of(&[run(1.0, 3.0, Some(10)), run(3.0, 5.0, Some(30))]);
        assert_eq!(summary.mean, 2.0);
        assert!((summary.deviation - 2f64.sqrt()).abs() < 1e-9);
        assert_eq!(summary.cpu, 4.0);
        assert_eq!(summary.peak_kb, Some(30));
    }

    #[test]
    fn runs_one_after_another_add_up_as_one() {
        let both = run(1.0, 0.5, Some(7)).then(run(2.0, 1.5, None));
        assert_eq!((both.seconds, both.cpu_seconds), (3.0, 2.0));
        assert_eq!(both.peak_kb, Some(7));
    }

    #[test]
    fn a_child_s_cpu_time_is_counted() {
        let mut busy = Command::new("sh");
        busy.args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"]);
        let measured = timed(busy).unwrap();
        assert!(measured.cpu_seconds > 0.01, "{}", measured.cpu_seconds);
        assert!(measured.cpu_seconds <= measured.seconds * 1.05 + 0.01);
    }
}

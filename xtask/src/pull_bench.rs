//! `cargo xtask bench`, third part (from chapter 10): how long pulling an image from a
//! registry and unpacking it takes, beside skopeo with umoci and tar. Book: "How this
//! kit is built".
//!
//! The bench makes the unpack bench's image (three gzip layers), pushes it to Debian's
//! `docker-registry` on loopback (in the bench's own network namespace), and times, in
//! turns:
//! - `byoc pull`: the manifest and config, then the layers, three at a time, each
//!   unpacked while it streams in;
//! - `skopeo copy` to an OCI layout, then `umoci unpack` of it: the peers' way;
//! - `tar -xzf` of each layer, one after another, from local files (no download);
//! - the floor: inflating every layer to nowhere, a thread per layer.
//!
//! CI makes a small image; `--unpack-mb 500` makes the full-size one by hand.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::unpack_bench::{self, Measured, Way};

/// What the pull bench is asked for.
pub struct PullBench<'a> {
    pub binary: &'a Path,
    pub scratch: &'a Path,
    /// About how many MB the image's layers are, compressed.
    pub compressed_mb: u64,
    pub runs: u32,
}

/// The goals: at most this many times the peer's time.
const GOALS: [(&str, f64); 2] = [("skopeo", 0.3), ("tar", 0.6)];

pub fn run(bench: &PullBench) -> Result<()> {
    println!(
        "\n== pull: the same kind of image, pushed to a registry on loopback, pulled =="
    );
    if !has("docker-registry") || !has("skopeo") {
        println!(
            "docker-registry or skopeo is not installed: the pull bench did not run \
             (apt-get install docker-registry skopeo)"
        );
        return Ok(());
    }
    bring_loopback_up()?;
    let layout = bench.scratch.join("pull-layout");
    let layers = unpack_bench::make_image(&layout, bench.compressed_mb)?;
    let compressed: u64 = layers.iter().map(|l| l.compressed).sum();
    println!(
        "the image: {} MB of layers compressed, {} MB of tar",
        compressed / 1_000_000,
        layers.iter().map(|l| l.tar).sum::<u64>() / 1_000_000
    );
    let registry_dir = bench.scratch.join("pull-registry");
    let registry = Registry::start(&registry_dir)?;
    let reference = format!("{}/bench/image:1", registry.address);
    push(&layout, &reference)?;
    let blobs: Vec<PathBuf> = layers.iter().map(|l| l.blob.clone()).collect();
    let ways = ways(bench.binary, &reference, blobs);
    let mut times: Vec<Vec<Measured>> = ways.iter().map(|_| Vec::new()).collect();
    for round in 0..bench.runs {
        for (i, way) in ways.iter().enumerate() {
            let into = bench.scratch.join(format!("pull-{round}-{i}"));
            unpack_bench::settle(&[&layout, &registry_dir])?;
            let measured =
                (way.run)(&into).with_context(|| format!("{} failed", way.name))?;
            unpack_bench::remove(&into)?;
            times[i].push(measured);
        }
    }
    unpack_bench::print_results(&ways, &times, &GOALS);
    unpack_bench::remove(&layout)
}

fn ways(binary: &Path, reference: &str, blobs: Vec<PathBuf>) -> Vec<Way> {
    let mut ways = Vec::new();
    let binary = binary.to_path_buf();
    let image = reference.to_string();
    ways.push(Way {
        name: "byoc pull",
        run: Box::new(move |into| {
            let mut command = Command::new(&binary);
            command.args(["pull", "-q", &image]).env("BYOC_ROOT", into);
            unpack_bench::timed(command)
        }),
    });
    let image = reference.to_string();
    if has("umoci") {
        ways.push(Way {
            name: "skopeo copy, then umoci unpack",
            run: Box::new(move |into| skopeo_then_umoci(&image, into)),
        });
    } else {
        println!(
            "umoci is not installed: skopeo's row is left out (apt-get install umoci)"
        );
    }
    let tar_blobs = blobs.clone();
    ways.push(Way {
        name: "tar -xzf, one layer after another",
        run: Box::new(move |into| {
            unpack_bench::untar_one_after_another(&tar_blobs, into)
        }),
    });
    ways.push(Way {
        name: "floor: inflate to nowhere, a thread per layer",
        run: Box::new(move |_| unpack_bench::inflate_all(&blobs)),
    });
    ways
}

/// The peers' pull: skopeo copies the image into an OCI layout, umoci unpacks it.
fn skopeo_then_umoci(image: &str, into: &Path) -> Result<Measured> {
    fs::create_dir_all(into)?;
    let layout = format!("oci:{}:1", into.join("layout").display());
    let mut copy = Command::new("skopeo");
    copy.args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(&layout);
    let copied = unpack_bench::timed(copy)?;
    let mut unpack = Command::new("umoci");
    unpack
        .args(["unpack", "--image"])
        .arg(format!("{}:1", into.join("layout").display()))
        .arg(into.join("bundle"));
    Ok(copied.then(unpack_bench::timed(unpack)?))
}

fn push(layout: &Path, reference: &str) -> Result<()> {
    let started = Instant::now();
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .context("cannot start skopeo")?;
    if !out.status.success() {
        bail!(
            "skopeo could not push: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "pushed to {reference} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The bench's network namespace starts with its loopback down.
fn bring_loopback_up() -> Result<()> {
    let status = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .context("cannot start ip")?;
    if !status.success() {
        bail!("ip link set lo up failed");
    }
    Ok(())
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Debian's `docker-registry`, on 127.0.0.1 with its storage in `dir`, stopped when
/// dropped.
struct Registry {
    child: Child,
    address: String,
}

impl Registry {
    fn start(dir: &Path) -> Result<Registry> {
        fs::create_dir_all(dir)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: {address}\n",
                dir.join("storage").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start docker-registry")?;
        let registry = Registry { child, address };
        registry.wait_until_it_answers()?;
        Ok(registry)
    }

    fn wait_until_it_answers(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(&self.address) {
                let request =
                    format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.address);
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.")
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("docker-registry did not answer at {}", self.address)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! `cargo xtask demo`: the first thing to run. It builds what is missing and starts a
//! container from the newest chapter, which shows its own hostname, PID 1 and mounts.

use std::process::Command;

use anyhow::Result;

use crate::gen;
use crate::rootfs;
use crate::workspace::{self, cargo};

/// What the container runs: three questions a container answers differently from the
/// host.
const SCRIPT: &str = "echo \"hostname: $(hostname)\"; \
                      echo \"my PID: $$\"; \
                      cd /proc; echo \"processes I can see:\" [0-9]*; \
                      echo 'mount table:'; cat /proc/self/mounts";

pub fn run() -> Result<()> {
    let newest = gen::newest_of_the_ten()?;
    let binary = newest.solution_name();
    // A first build takes a minute or more: say what is happening, and let cargo show it.
    println!("building the root filesystem and the probe if they are missing (the first time takes a minute)...");
    let rootfs = rootfs::ensure()?;
    println!("building {binary}, chapter {}'s runtime...", newest.number);
    workspace::run(cargo().args(["build", "-p", &binary]))?;
    let program = workspace::target_dir().join("debug").join(&binary);
    let mut container = Command::new(&program);
    container.arg("run").arg("--rootfs").arg(&rootfs);
    // From chapter 6 a container as root is plugged into a bridge on the host's network
    // by default. The demo leaves the machine's network alone: the container gets its own
    // network namespace with only loopback (chapter 6 shows the bridge).
    let network = if newest.number >= byoc_facts::FIRST_NETWORK_CHAPTER {
        "--net none "
    } else {
        ""
    };
    container.args(network.split_whitespace());
    // From chapter 8 a container is kept when it ends, for `ps` and `diff`: the demo's
    // goes at once, and leaves nothing under the data root.
    let remove = if newest.number >= byoc_facts::FIRST_LAYERS_CHAPTER {
        "--rm "
    } else {
        ""
    };
    container.args(remove.split_whitespace());
    container.args(["--hostname", "byoc-demo", "--", "sh", "-c", SCRIPT]);
    println!(
        "$ {binary} run --rootfs {} {network}{remove}--hostname byoc-demo -- sh -c '...'",
        rootfs.display()
    );
    println!("(add --trace after {binary} to watch every system call)\n");
    workspace::run(&mut container)
}

//! Network namespaces that a test makes, so that no test touches the machine's own
//! network.
//!
//! A [`NetHost`] stands in for the host: the runtime runs in it, makes its bridge, links
//! and NAT rules there, and the test's own clients and servers make their sockets there.
//! A [`World`] is another namespace joined to it by a veth pair: the internet, as far as
//! the container can tell. Only these namespaces' addresses are used (192.0.2.0/24 is
//! reserved for documentation and examples). Everything goes when the test drops them.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};

use crate::{Run, Runtime, Waiting};

/// A network namespace made by the test, standing in for the host.
pub struct NetHost {
    namespace: File,
}

/// Runs `body` in a new thread that has entered `namespace`. A thread may change its own
/// network namespace; what it makes there (a socket, a child process) stays there.
fn in_namespace<T: Send>(namespace: &File, body: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: setns has no memory-safety preconditions; the fd is open.
                let entered =
                    unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
                body()
            })
            .join()
            .expect("the thread in the namespace ends")
    })
}

/// A new network namespace, with its loopback up, held by an open descriptor.
fn new_namespace() -> File {
    std::thread::spawn(|| {
        // SAFETY: unshare has no memory-safety preconditions; it changes only this thread.
        let made = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            made,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );
        let namespace =
            File::open("/proc/thread-self/ns/net").expect("the new namespace opens");
        ip_here(&["link", "set", "lo", "up"]);
        namespace
    })
    .join()
    .expect("the namespace is made")
}

/// Runs `ip ARGS` in the calling thread's network namespace and returns what it printed.
fn ip_here(args: &[&str]) -> String {
    output_here(Command::new("ip").args(args))
}

fn output_here(command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Default for NetHost {
    fn default() -> NetHost {
        NetHost::new()
    }
}

impl NetHost {
    /// A fresh host: loopback up, nothing else.
    pub fn new() -> NetHost {
        NetHost {
            namespace: new_namespace(),
        }
    }

    /// Runs `body` in this host's network namespace.
    pub fn within<T: Send>(&self, body: impl FnOnce() -> T + Send) -> T {
        in_namespace(&self.namespace, body)
    }

    /// `ip ARGS` on this host.
    pub fn ip(&self, args: &[&str]) -> String {
        self.within(|| ip_here(args))
    }

    /// A container run to its end on this host.
    pub fn run(&self, runtime: &Runtime, options: &[&str], command: &[&str]) -> Run {
        let prepared = runtime.command(options, command);
        self.within(|| crate::run_command(&runtime.name, prepared))
    }

    /// A container started on this host that says `ready` and waits (see [`Waiting`]).
    pub fn start_waiting(
        &self,
        runtime: &Runtime,
        options: &[&str],
        command: &[&str],
    ) -> Waiting {
        let prepared = runtime.command(options, command);
        self.within(|| runtime.start_waiting_command(prepared))
    }

    /// A runtime command started on this host, not waited for.
    pub fn spawn(&self, mut command: Command) -> Child {
        self.within(move || command.spawn().expect("the runtime starts"))
    }

    /// The interfaces of this host, by name.
    pub fn links(&self) -> Vec<String> {
        let listing = self.ip(&["-o", "link", "show"]);
        listing
            .lines()
            .filter_map(|line| line.split(": ").nth(1))
            .map(|name| name.split('@').next().unwrap_or(name).to_string())
            .collect()
    }

    /// The ports of the bridge `bridge`.
    pub fn bridge_ports(&self, bridge: &str) -> Vec<String> {
        if !self.links().iter().any(|link| link == bridge) {
            return Vec::new();
        }
        let listing = self.ip(&["-o", "link", "show", "master", bridge]);
        listing
            .lines()
            .filter_map(|line| line.split(": ").nth(1).map(str::to_string))
            .collect()
    }

    /// This host's nftables rules, as `nft list ruleset` prints them.
    pub fn nft_rules(&self) -> String {
        self.within(|| output_here(Command::new("nft").args(["list", "ruleset"])))
    }

    /// The TCP ports something listens on in this host (from `/proc/net/tcp`).
    pub fn listening_ports(&self) -> Vec<u16> {
        self.within(|| {
            let table = std::fs::read_to_string("/proc/thread-self/net/tcp")
                .expect("/proc/thread-self/net/tcp is readable");
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let listening = fields.get(3) == Some(&"0A");
                    let port = fields.get(1)?.rsplit(':').next()?;
                    listening
                        .then(|| u16::from_str_radix(port, 16).ok())
                        .flatten()
                })
                .collect()
        })
    }

    /// Fails the test if a container left anything on this host: a link other than
    /// loopback, the bridge and the test's own uplink; a port on the bridge; an nftables
    /// rule; a listening socket; a lease or a container's files under the data root.
    pub fn assert_clean(&self, runtime: &Runtime) {
        let extra = self.links_left();
        assert!(
            extra.is_empty(),
            "{}: links left on the host: {extra:?}",
            runtime.name
        );
        let ports = self.bridge_ports("byoc0");
        assert!(
            ports.is_empty(),
            "{}: bridge ports left: {ports:?}",
            runtime.name
        );
        // The NAT table stays with the bridge, as docker's rule stays with docker0.
        let rules = self.nft_rules();
        let (nat, others) = split_table(&rules, "table ip byoc {");
        assert!(
            others.trim().is_empty(),
            "{}: nftables rules left:\n{rules}",
            runtime.name
        );
        assert!(
            nat.is_empty() || self.links().iter().any(|link| link == "byoc0"),
            "{}: the NAT table is there without its bridge:\n{rules}",
            runtime.name
        );
        assert!(
            nat.matches("masquerade").count() <= 1,
            "{}: the NAT rule was added more than once:\n{rules}",
            runtime.name
        );
        let listening = self.listening_ports();
        assert!(
            listening.is_empty(),
            "{}: sockets still listening on ports {listening:?}",
            runtime.name
        );
        assert_data_root_clean(runtime);
    }
}

impl NetHost {
    /// The links other than loopback, the bridge and the test's own uplink, once the
    /// kernel has had its time: a container's veth pair goes with its network namespace,
    /// which the kernel removes a moment after the container's last process (within 5 s
    /// here).
    fn links_left(&self) -> Vec<String> {
        let allowed = ["lo", "byoc0", "uplink"];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let extra: Vec<String> = self
                .links()
                .into_iter()
                .filter(|link| !allowed.contains(&link.as_str()))
                .collect();
            if extra.is_empty() || std::time::Instant::now() > deadline {
                return extra;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// `nft list ruleset`'s listing split in two: the table that starts with `header`, up to
/// its closing brace, and everything else.
fn split_table(listing: &str, header: &str) -> (String, String) {
    let (mut table, mut others) = (String::new(), String::new());
    let mut inside = false;
    for line in listing.lines() {
        inside |= line.starts_with(header);
        let part = if inside { &mut table } else { &mut others };
        part.push_str(line);
        part.push('\n');
        if inside && line == "}" {
            inside = false;
        }
    }
    (table, others)
}

/// The lease lines of the bridge's lease file under `data_root` (not its `last` line,
/// which remembers the address given out last).
pub fn leases_in(data_root: &std::path::Path) -> Vec<String> {
    let file = std::fs::read_to_string(data_root.join("networks/byoc0.leases"))
        .unwrap_or_default();
    file.lines()
        .filter(|line| !line.starts_with("last "))
        .map(str::to_string)
        .collect()
}

/// No lease and no container's files are left under the runtime's data root.
pub fn assert_data_root_clean(runtime: &Runtime) {
    let root = runtime.data_root.path();
    let leases = leases_in(root);
    assert!(
        leases.is_empty(),
        "{}: leases left in the data root: {leases:?}",
        runtime.name
    );
    let containers: Vec<_> = std::fs::read_dir(root.join("containers"))
        .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
        .unwrap_or_default();
    assert!(
        containers.is_empty(),
        "{}: container files left in the data root: {containers:?}",
        runtime.name
    );
}

/// The world outside the host: a namespace joined to the host by a veth pair, `uplink`
/// (192.0.2.1) on the host and `world0` (192.0.2.2) in the world.
pub struct World {
    namespace: File,
}

/// The world's address, as the host reaches it.
pub const WORLD_ADDRESS: &str = "192.0.2.2";
/// The host's address on its uplink: what NAT rewrites the containers' addresses to.
pub const HOST_UPLINK_ADDRESS: &str = "192.0.2.1";

impl World {
    /// Makes the world and joins `host` to it.
    pub fn joined_to(host: &NetHost) -> World {
        let namespace = new_namespace();
        // `ip link set DEV netns PID` names a namespace by a process in it.
        let mut holder = in_namespace(&namespace, || {
            Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("a process holds the world's namespace for ip")
        });
        let pid = holder.id().to_string();
        host.ip(&[
            "link", "add", "uplink", "type", "veth", "peer", "name", "world0", "netns",
            &pid,
        ]);
        let _ = holder.kill();
        let _ = holder.wait();
        host.ip(&["addr", "add", "192.0.2.1/24", "dev", "uplink"]);
        host.ip(&["link", "set", "uplink", "up"]);
        in_namespace(&namespace, || {
            ip_here(&["addr", "add", "192.0.2.2/24", "dev", "world0"]);
            ip_here(&["link", "set", "world0", "up"]);
        });
        World { namespace }
    }

    /// Runs `body` in the world's network namespace.
    pub fn within<T: Send>(&self, body: impl FnOnce() -> T + Send) -> T {
        in_namespace(&self.namespace, body)
    }
}

/// The machine's own network namespace, held open: the one this test process started in.
fn machine_namespace() -> &'static File {
    static MACHINE: std::sync::OnceLock<File> = std::sync::OnceLock::new();
    // /proc/self is the process, not the thread: its namespace is the main thread's,
    // which never leaves the machine's.
    MACHINE
        .get_or_init(|| File::open("/proc/self/ns/net").expect("/proc/self/ns/net opens"))
}

/// Runs `body` in the machine's own network namespace: on this thread if it is there,
/// else on a thread that enters it (only root makes a test's own namespaces, and only
/// root may enter one). The leak checks look at the machine's network from there.
pub fn in_machine_namespace<T: Send>(body: impl FnOnce() -> T + Send) -> T {
    let here = std::fs::metadata("/proc/thread-self/ns/net")
        .map(|meta| meta.ino())
        .ok();
    let machine = machine_namespace().metadata().map(|meta| meta.ino()).ok();
    match here == machine {
        true => body(),
        false => in_namespace(machine_namespace(), body),
    }
}

/// A user namespace and a network namespace it owns, held by a process that sleeps in
/// them: a network of one's own, where root of that user namespace may build the bridge
/// (as rootlesskit makes one for rootless podman). It is made by the runtime's own user,
/// so an ordinary user's runtime can be root there; the machine's network never sees
/// what is built in it. Everything goes when it is dropped.
pub struct OwnNetwork {
    holder: Child,
    user: File,
    network: File,
}

impl OwnNetwork {
    /// A new pair, made by the user who runs `runtime`, with loopback up.
    pub fn for_runtime(runtime: &Runtime) -> OwnNetwork {
        let mut command = Command::new("unshare");
        command.args(["--user", "--map-root-user", "--net", "--", "sh", "-c"]);
        command.arg("ip link set lo up && echo up && exec sleep 600");
        if let Some(rootless) = &runtime.rootless {
            crate::become_as_at_login(&mut command, &rootless.user);
        }
        let mut holder = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
        let mut said = String::new();
        let stdout = holder.stdout.take().expect("stdout is piped");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut said)
            .expect("the holder's stdout is readable");
        assert_eq!(said.trim(), "up", "{command:?} did not make its namespaces");
        let open = |kind: &str| {
            File::open(format!("/proc/{}/ns/{kind}", holder.id()))
                .unwrap_or_else(|error| panic!("/proc/PID/ns/{kind}: {error}"))
        };
        let (user, network) = (open("user"), open("net"));
        OwnNetwork {
            holder,
            user,
            network,
        }
    }

    /// Makes `command` start in these namespaces: it enters the user namespace first (its
    /// maker owns it), then the network namespace that user namespace owns.
    pub fn enter(&self, command: &mut Command) {
        let user = self.user.as_raw_fd();
        let network = self.network.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec, single-threaded as
        // setns(CLONE_NEWUSER) requires, and only makes system calls on descriptors this
        // value keeps open until the command has started.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(command, move || {
                for (namespace, kind) in
                    [(user, libc::CLONE_NEWUSER), (network, libc::CLONE_NEWNET)]
                {
                    if libc::setns(namespace, kind) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            })
        };
    }
}

impl Drop for OwnNetwork {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

//! The container's network: none, the host's, or a port on the host's bridge. Book:
//! chapter 6.
//!
//! With `CLONE_NEWNET` the container gets a network stack of its own, with nothing in it
//! but a loopback interface that is down. `--net none` brings loopback up and stops
//! there. `--net bridge` also gives it a cable to the host: a veth pair from the
//! container's `eth0` to a port of the bridge `byoc0`, an address from the bridge's
//! subnet, a default route through the bridge, and NAT on the host so replies find their
//! way back.
//!
//! The host side is done by the parent, before the child is let go: [`join_bridge`] takes
//! a lease (and sets up the bridge and NAT for the first container, and checks them for
//! the next ones), [`attach`] plugs the cable in. The container side is done by the child
//! in its own namespace: [`configure_inside`]. Each host-side value undoes itself when
//! dropped.

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::unistd::{Pid, Uid};

use crate::dataroot;
use crate::inroot::RootDir;
use crate::lease::{LeaseFile, Locked};
use crate::link::{self, Link};
use crate::mounts;
use crate::nat::{self, Nat};
use crate::netlink::Netlink;
use crate::ports::PortMapping;
use crate::spec::{Network, NetworkMode};
use crate::subnet::{Subnet, DEFAULT_SUBNET};
use crate::trace::SyscallError;
use crate::userns::is_host_root;

/// The bridge every container on the host is plugged into (docker's is `docker0`).
pub const BRIDGE: &str = "byoc0";

/// The three files a container on the bridge gets of its own, bind-mounted over the root
/// filesystem's (which is never written).
pub const CONTAINER_FILES: [&str; 3] = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];

// ANCHOR: options
/// `run`'s options for the network. Later chapters' `run` flatten this group.
#[derive(Debug, Clone, clap::Args)]
pub struct NetworkArgs {
    /// The container's network (default: bridge as root, none for an ordinary user).
    #[arg(long, value_enum, value_name = "MODE")]
    pub net: Option<NetArg>,

    /// The bridge's subnet (default: 10.88.0.0/16).
    #[arg(long, value_name = "ADDRESS/PREFIX")]
    pub subnet: Option<Subnet>,

    /// Publish a container port on the host: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp]
    /// (repeatable).
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<PortMapping>,
}

/// The values of `--net`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum NetArg {
    /// The host's own network (no network namespace).
    Host,
    /// A network namespace with only loopback.
    None,
    /// A network namespace on the host's bridge, with NAT and published ports.
    Bridge,
}

impl NetworkArgs {
    /// The network asked for, checked: what cannot work is refused before anything is
    /// made.
    pub fn network(&self) -> Result<Network> {
        let root = may_build_the_bridge_here();
        let net = self
            .net
            .unwrap_or(if root { NetArg::Bridge } else { NetArg::None });
        let mode = match net {
            NetArg::Host => NetworkMode::Host,
            NetArg::None => NetworkMode::None,
            NetArg::Bridge => NetworkMode::Bridge {
                subnet: match self.subnet {
                    Some(subnet) => subnet,
                    None => DEFAULT_SUBNET.parse()?,
                },
            },
        };
        let subnet_given = self.subnet.is_some();
        match mode {
            NetworkMode::Host if !self.publish.is_empty() => bail!(
                "-p publishes a port of the container's own network, and --net host has \
                 none: the container's ports are the host's already"
            ),
            NetworkMode::Bridge { .. } if !root => bail!(
                "--net bridge needs the machine's root, or root of a user namespace in a \
                 network namespace of its own: an ordinary user may not add a bridge or a \
                 veth to the host's network (rootless containers get --net none, and -p \
                 works there; see book 6.6)"
            ),
            NetworkMode::Host | NetworkMode::None if subnet_given => {
                bail!("--subnet is the bridge's: it needs --net bridge")
            }
            _ => {}
        }
        Ok(Network {
            mode,
            ports: self.publish.clone(),
        })
    }
}
// ANCHOR_END: options

// ANCHOR: may_build_the_bridge_here
/// May this process build the bridge where it is? The machine's root may, in the host's
/// network. So may root of a user namespace, in a network namespace that user namespace
/// owns: the bridge, the links and the NAT rules are then that namespace's, and the
/// host's network never sees them. Rootless podman works in such a pair, which
/// rootlesskit or pasta make for it (book 6.6).
pub fn may_build_the_bridge_here() -> bool {
    is_host_root() || (Uid::effective().is_root() && our_network_is_our_own())
}
// ANCHOR_END: may_build_the_bridge_here

/// Is the network namespace we are in owned by the user namespace we are in? The
/// `NS_GET_USERNS` ioctl on a namespace gives its owner, compared by inode.
fn our_network_is_our_own() -> bool {
    let (Ok(network), Ok(ours)) = (
        File::open("/proc/self/ns/net"),
        fs::metadata("/proc/self/ns/user"),
    ) else {
        return false;
    };
    // SAFETY: NS_GET_USERNS takes no argument and returns a new descriptor, or -1.
    let owner = unsafe { libc::ioctl(network.as_raw_fd(), libc::NS_GET_USERNS) };
    if owner < 0 {
        return false;
    }
    // SAFETY: the descriptor is new and ours alone.
    let owner = File::from(unsafe { OwnedFd::from_raw_fd(owner) });
    owner
        .metadata()
        .is_ok_and(|owner| (owner.dev(), owner.ino()) == (ours.dev(), ours.ino()))
}

/// What the container's side of the network looks like, for the child to set up.
#[derive(Debug, Clone)]
pub struct Inside {
    /// `eth0`'s address, the subnet's prefix, and the gateway: `None` for `--net none`.
    pub ethernet: Option<Ethernet>,
}

/// `eth0`'s settings.
#[derive(Debug, Clone, Copy)]
pub struct Ethernet {
    pub address: Ipv4Addr,
    pub subnet: Subnet,
}

/// A container's place on the bridge: its lease and its own files under the data root.
/// Dropping it gives the address back and removes the files. The bridge and its NAT rule
/// stay for the next container, as `docker0` and docker's rule do, once a container has
/// started with them: what the start of a container that never ran made, it removes.
pub struct Joined {
    pub ethernet: Ethernet,
    pub files: PathBuf,
    id: String,
    leases: LeaseFile,
    made: MadeHere,
    keeper: String,
}

/// What one start made on the host for the bridge.
#[derive(Debug, Default, Clone, Copy)]
struct MadeHere {
    bridge: bool,
    nat: bool,
}

/// On the bridge: an address and the container's own files. Off it: nothing to join.
pub fn join(
    mode: NetworkMode,
    data_root: &Path,
    id: &str,
    hostname: &str,
) -> Result<Option<Joined>> {
    match mode {
        NetworkMode::Bridge { subnet } => {
            Ok(Some(join_bridge(data_root, &subnet, id, hostname)?))
        }
        NetworkMode::Host | NetworkMode::None => Ok(None),
    }
}

/// The namespaces a container gets from chapter 6 on: its own mounts, PIDs, host name and
/// IPC, a user namespace when it has one, and a network namespace unless it uses the
/// host's network.
pub fn namespaces(user_namespace: bool, mode: NetworkMode) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if user_namespace {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    if mode != NetworkMode::Host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

// ANCHOR: join_bridge
/// Takes an address on the bridge for container `id`, under the lease file's lock. The
/// first container also makes the bridge and adds NAT; a lease left by a runtime that
/// died is reclaimed first. Everything is checked before anything is made: that this data
/// root keeps the bridge's leases, and that the bridge, the leases and the subnet agree.
pub fn join_bridge(
    data_root: &Path,
    subnet: &Subnet,
    id: &str,
    hostname: &str,
) -> Result<Joined> {
    let leases = LeaseFile::new(&dataroot::networks(data_root), BRIDGE)?;
    let keeper = keeper_alias(data_root)?;
    let mut locked = leases.lock()?;
    let bridge_is_there = check_bridge(subnet, &keeper)?;
    reclaim_dead(&mut locked, data_root)?;
    check_leases_in(&locked, subnet)?;
    let mut made = MadeHere::default();
    let taken =
        make_and_take(&mut locked, bridge_is_there, subnet, id, &keeper, &mut made);
    let address = match taken {
        Ok(address) => address,
        Err(error) => {
            // Nothing half-made is left: the batch that adds NAT is all or nothing, and
            // the bridge goes if this start made it.
            give_back(&mut locked, id, made, &keeper);
            return Err(error);
        }
    };
    drop(locked);
    let joined = Joined {
        ethernet: Ethernet {
            address,
            subnet: *subnet,
        },
        files: container_dir(data_root, id),
        id: id.to_string(),
        leases,
        made,
        keeper,
    };
    write_container_files(&joined.files, hostname, address)?;
    Ok(joined)
}
// ANCHOR_END: join_bridge

/// What is left of the runtimes that died: their containers' files and cables.
fn reclaim_dead(locked: &mut Locked<'_>, data_root: &Path) -> Result<()> {
    for dead in locked.reclaim_dead()? {
        remove_container_files(&container_dir(data_root, &dead.id));
        delete_host_end(&host_end_name(&dead.id))?;
    }
    Ok(())
}

/// The bridge if this start has to make it, an address, and the way out: forwarding, and
/// NAT for the bridge's subnet. The rule stays with the bridge: adding and removing it
/// for every container would cost each start and end an nftables commit, the slowest step
/// of a start.
fn make_and_take(
    locked: &mut Locked<'_>,
    bridge_is_there: bool,
    subnet: &Subnet,
    id: &str,
    keeper: &str,
    made: &mut MadeHere,
) -> Result<Ipv4Addr> {
    if !bridge_is_there {
        make_bridge(subnet, keeper, made)?;
    }
    let address = locked.take(subnet, id)?;
    nat::enable_forwarding()?;
    made.nat = nat::ensure_masquerade(subnet, BRIDGE)? == Nat::Made;
    Ok(address)
}

impl Joined {
    /// The container runs: what its start made on the host (the bridge, the NAT table)
    /// stays for the next container.
    pub fn started(&mut self) {
        self.made = MadeHere::default();
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        remove_container_files(&self.files);
        match self.leases.lock() {
            Ok(mut locked) => give_back(&mut locked, &self.id, self.made, &self.keeper),
            Err(error) => eprintln!(
                "byoc: cannot give back the address of container {}: {error:#}",
                self.id
            ),
        }
    }
}

/// Gives back container `id`'s address and, when no other container holds one, removes
/// what its start made: nothing else uses it. Errors are said, not returned: this runs
/// when a start has failed already, or when a container has ended.
fn give_back(locked: &mut Locked<'_>, id: &str, made: MadeHere, keeper: &str) {
    if let Err(error) = locked.release(id) {
        eprintln!("byoc: cannot give back the address of container {id}: {error:#}");
        return;
    }
    if !locked.entries.is_empty() {
        return;
    }
    if let Err(error) = undo(made, keeper) {
        eprintln!("byoc: cannot remove what the start of container {id} made: {error:#}");
    }
}

/// Removes the NAT table and the bridge, if this start made them.
fn undo(made: MadeHere, keeper: &str) -> Result<()> {
    if made.nat {
        nat::remove_masquerade()?;
    }
    if made.bridge {
        let mut netlink = Netlink::route()?;
        let bridge = link::find(&mut netlink, BRIDGE)?;
        // The alias is this data root's, or none if the start failed before writing it.
        let ours =
            |bridge: &Link| bridge.alias.as_deref().is_none_or(|alias| alias == keeper);
        if let Some(bridge) = bridge.filter(ours) {
            link::delete(&mut netlink, &bridge)?;
        }
    }
    Ok(())
}

/// Where a container's own files live: `containers/ID/` under the data root.
pub fn container_dir(data_root: &Path, id: &str) -> PathBuf {
    dataroot::container(data_root, id)
}

// ANCHOR: keeper
/// How the bridge's alias begins: the rest names the data root whose lease file is the
/// bridge's one ledger. Two lease files for one bridge would give the same address twice.
const KEEPER: &str = "byoc data root ";

/// The alias this data root writes on the bridge it makes: `byoc data root DIR`, with the
/// data root's whole path, so two ways of writing one directory are one keeper.
fn keeper_alias(data_root: &Path) -> Result<String> {
    let canonical = fs::canonicalize(data_root)
        .with_context(|| format!("cannot find the data root {data_root:?}"))?;
    let Some(path) = canonical.to_str() else {
        bail!(
            "data root {canonical:?} is not UTF-8: bridge {BRIDGE} names the data root \
             that keeps its leases in its alias, which is text (choose another --root)"
        );
    };
    let alias = format!("{KEEPER}{path}");
    if alias.len() > link::ALIAS_LENGTH {
        bail!(
            "data root {path:?} is {} bytes long: bridge {BRIDGE} names the data root \
             that keeps its leases in its alias, which holds {} (choose a shorter \
             --root)",
            path.len(),
            link::ALIAS_LENGTH - KEEPER.len()
        );
    }
    Ok(alias)
}

/// The bridge's alias, read back, must name this data root. Anyone with the right may
/// write an alias: it is only compared, and printed quoted, never used as a path.
fn check_keeper(bridge: &Link, keeper: &str) -> Result<()> {
    let ours = keeper.strip_prefix(KEEPER).unwrap_or(keeper);
    let alias = bridge.alias.as_deref().unwrap_or("");
    match alias.strip_prefix(KEEPER) {
        Some(theirs) if theirs == ours => Ok(()),
        Some(theirs) => bail!(
            "bridge {BRIDGE} keeps its leases in data root {theirs:?}, and this \
             runtime's is {ours:?}: two lease files would give the same addresses twice \
             (use --root {theirs:?}, or run in a network namespace of your own with \
             `unshare -n` and a --root of its own, where the bridge is a new one; see \
             book 6.3)"
        ),
        None => bail!(
            "bridge {BRIDGE} does not name the data root that keeps its leases (its \
             alias is {alias:?}): it was made by hand, by an older byoc, or at this \
             moment by a runtime with another data root (when no container uses it, `ip \
             link delete {BRIDGE}`; see book 6.3)"
        ),
    }
}
// ANCHOR_END: keeper

/// Whether the bridge is there. If it is, this data root must keep its leases, and it
/// must be on `subnet`; if not, `subnet` must not overlap a route the host has: it would
/// make some of the host's own network unreachable. Nothing is made here.
fn check_bridge(subnet: &Subnet, keeper: &str) -> Result<bool> {
    let mut netlink = Netlink::route()?;
    let Some(bridge) = link::find(&mut netlink, BRIDGE)? else {
        check_no_overlap(&mut netlink, subnet)?;
        return Ok(false);
    };
    check_keeper(&bridge, keeper)?;
    check_bridge_subnet(&mut netlink, &bridge, subnet)?;
    Ok(true)
}

/// Every container on the bridge shares its subnet. A lease outside `subnet` is a
/// container that still runs from before the bridge was removed (by hand, say) and made
/// again on another subnet: its NAT rule, replaced, would leave it without a way out.
fn check_leases_in(locked: &Locked<'_>, subnet: &Subnet) -> Result<()> {
    match locked
        .entries
        .iter()
        .find(|entry| !subnet.contains(entry.address))
    {
        Some(entry) => bail!(
            "container {:?} still runs with address {}, outside subnet {subnet}: every \
             container on bridge {BRIDGE} shares one subnet (stop it first, or give the \
             --subnet it was started with)",
            entry.id,
            entry.address
        ),
        None => Ok(()),
    }
}

/// `ip link add byoc0 type bridge`, the alias that names this data root, its address (the
/// gateway), `ip link set byoc0 up`. `made` says what is made so far, for a failure.
fn make_bridge(subnet: &Subnet, keeper: &str, made: &mut MadeHere) -> Result<()> {
    let mut netlink = Netlink::route()?;
    link::add_bridge(&mut netlink, BRIDGE).map_err(explain_bridge_race)?;
    made.bridge = true;
    let bridge = link::find(&mut netlink, BRIDGE)?
        .with_context(|| format!("the new bridge {BRIDGE} is not there"))?;
    link::set_alias(&mut netlink, &bridge, keeper)?;
    link::add_address(&mut netlink, &bridge, subnet.gateway(), subnet.prefix)?;
    link::set_up(&mut netlink, &bridge)
}

/// Runtimes of one data root make the bridge in turn, under its lock: `EEXIST` is one of
/// another data root, which made it at the same moment.
fn explain_bridge_race(error: anyhow::Error) -> anyhow::Error {
    if !is_errno(&error, Errno::EEXIST) {
        return error;
    }
    anyhow!(
        "bridge {BRIDGE} was made at this same moment by a runtime with another data \
         root: two lease files would give the same addresses twice (use the same --root, \
         or run in a network namespace of your own with `unshare -n` and a --root of its \
         own; see book 6.3)"
    )
}

/// An existing bridge serves one subnet: the one its address is in.
fn check_bridge_subnet(
    netlink: &mut Netlink<RouteNetlinkMessage>,
    bridge: &Link,
    subnet: &Subnet,
) -> Result<()> {
    let addresses = link::addresses(netlink, bridge)?;
    let has_gateway = addresses
        .iter()
        .any(|&(address, prefix)| address == subnet.gateway() && prefix == subnet.prefix);
    if !has_gateway {
        let held: Vec<String> = addresses
            .iter()
            .map(|(address, prefix)| format!("{address}/{prefix}"))
            .collect();
        bail!(
            "bridge {BRIDGE} is already there with address {} and this container asks \
             for subnet {subnet}: every container on it shares its subnet (leave out \
             --subnet, or give the one it has)",
            if held.is_empty() {
                "none".to_string()
            } else {
                held.join(", ")
            }
        );
    }
    Ok(())
}

fn check_no_overlap(
    netlink: &mut Netlink<RouteNetlinkMessage>,
    subnet: &Subnet,
) -> Result<()> {
    let links = link::links(netlink)?;
    for route in link::routes(netlink)? {
        if route.destination.overlaps(subnet) {
            let device = route
                .interface
                .and_then(|index| links.iter().find(|link| link.index == index))
                .map_or("?".to_string(), |link| link.name.clone());
            bail!(
                "subnet {subnet} overlaps the host's route to {} on {device}: containers \
                 would hide that part of the host's network (choose another with --subnet)",
                route.destination
            );
        }
    }
    Ok(())
}

// ANCHOR: attach
/// Plugs the container into the bridge: a veth pair, `eth0` inside, `vethID` on the
/// bridge.
///
/// Nothing on the host owns the pair: it goes with the container's network namespace.
/// When the container's last process ends, the kernel removes the namespace, and every
/// interface in it: `eth0`, and with it its peer on the bridge. It does so a moment
/// later, in its own time; a runtime that deleted the pair itself would wait for that
/// work (on this kit's CI machines, a third of a container's start-up). The address goes
/// back to the leases at once, and waits its turn there ([`crate::lease`]).
pub fn attach(container: Pid, id: &str) -> Result<()> {
    let mut netlink = Netlink::route()?;
    let bridge = link::find(&mut netlink, BRIDGE)?
        .with_context(|| format!("the bridge {BRIDGE} has gone"))?;
    link::add_veth(&mut netlink, &host_end_name(id), container, &bridge)
}
// ANCHOR_END: attach

/// `veth` and the first 8 characters of the id: 12, within the kernel's 15.
pub fn host_end_name(id: &str) -> String {
    format!("veth{}", &id[..id.len().min(8)])
}

/// Deletes a veth's host end if it is still there: one whose runtime was killed, and
/// whose namespace the kernel has not removed yet when the next runtime reclaims its
/// lease.
fn delete_host_end(name: &str) -> Result<()> {
    let mut netlink = Netlink::route()?;
    let Some(host_end) = link::find(&mut netlink, name)? else {
        return Ok(());
    };
    match link::delete(&mut netlink, &host_end) {
        // ENODEV: the kernel took it away between the look and the delete.
        Err(error) if is_errno(&error, Errno::ENODEV) => Ok(()),
        other => other,
    }
}

fn is_errno(error: &anyhow::Error, errno: Errno) -> bool {
    error
        .downcast_ref::<SyscallError>()
        .is_some_and(|failed| failed.errno == errno)
}

// ANCHOR: configure_inside
/// The child's side, in its own network namespace: loopback up, and on the bridge,
/// `eth0`'s address, `eth0` up and a default route through the bridge.
pub fn configure_inside(inside: &Inside) -> Result<()> {
    let mut netlink = Netlink::route()?;
    let loopback =
        link::find(&mut netlink, "lo")?.context("this namespace has no loopback")?;
    link::set_up(&mut netlink, &loopback)?;
    if let Some(ethernet) = &inside.ethernet {
        configure_ethernet(&mut netlink, ethernet)?;
    }
    Ok(())
}
// ANCHOR_END: configure_inside

// ANCHOR: configure_ethernet
/// `eth0`'s address, `eth0` up, and the default route through the bridge.
fn configure_ethernet(
    netlink: &mut Netlink<RouteNetlinkMessage>,
    ethernet: &Ethernet,
) -> Result<()> {
    // EXERCISE 6.2 (book 6.3): give eth0 its address, bring it up, route through the bridge
    // HINT: inside the container: find eth0, give it its address, bring it up, and add
    // HINT: the default route through the bridge. The order matters: the kernel takes a
    // HINT: route only through a link that is up. Read section 6.3.
    // HINT 2: this module's link functions do each step: find (by the name
    // HINT 2: CONTAINER_END), add_address, set_up, add_default_route. The address and
    // HINT 2: prefix are in `ethernet`; the gateway is ethernet.subnet.gateway().
    // HINT 3: let eth0 = link::find(..)?.context("no eth0")?; add_address(netlink, &eth0,
    // HINT 3: address, prefix)?; set_up(netlink, &eth0)?; add_default_route(netlink,
    // HINT 3: gateway) is the value.
    // TRIVIAL: Ok(())
    let eth0 = link::find(netlink, link::CONTAINER_END)?
        .context("the container has no eth0: the parent did not plug it in")?;
    link::add_address(netlink, &eth0, ethernet.address, ethernet.subnet.prefix)?;
    link::set_up(netlink, &eth0)?;
    link::add_default_route(netlink, ethernet.subnet.gateway())
    // END EXERCISE 6.2
}
// ANCHOR_END: configure_ethernet

/// A root filesystem for the bridge needs the three files to mount the container's own
/// over: the kit never creates them in the root filesystem itself. Each is looked up
/// inside the root, as the child will look it up (book 2.5).
pub fn check_mount_files(rootfs: &Path) -> Result<()> {
    let root = RootDir::open_for_checks(rootfs)?;
    for file in CONTAINER_FILES {
        if root.is_missing(file) {
            bail!(
                "your root filesystem {rootfs:?} has no /{file} to mount the container's \
                 own on (build one with `cargo xtask rootfs`, or use --net none)"
            );
        }
        root.find_file(file)?;
    }
    Ok(())
}

/// Writes `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for the container.
fn write_container_files(dir: &Path, hostname: &str, address: Ipv4Addr) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {dir:?}"))?;
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{address}\t{hostname}\n"
    );
    let files = [
        ("hosts", hosts),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv_conf()),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("cannot write {path:?}"))?;
    }
    Ok(())
}

/// The host's name servers, but those on the host's loopback (systemd-resolved's
/// 127.0.0.53, or ::1): the container's loopback is its own, and nothing answers there.
fn resolv_conf() -> String {
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut text =
        String::from("# the host's name servers, as the container can reach them\n");
    for line in host.lines() {
        let on_loopback = line.strip_prefix("nameserver").is_some_and(|server| {
            server.trim().starts_with("127.") || server.trim() == "::1"
        });
        let useful = line.starts_with("nameserver") || line.starts_with("search");
        if useful && !on_loopback {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Removes the files [`write_container_files`] wrote in `dir`, then `dir` itself when
/// nothing else is in it: from chapter 8 on, the container's state and its own layer
/// live there too, and may outlive its network.
fn remove_container_files(dir: &Path) {
    let say = |path: &Path, error: std::io::Error| {
        if error.kind() != std::io::ErrorKind::NotFound {
            eprintln!("byoc: cannot remove {path:?}: {error}");
        }
    };
    for file in CONTAINER_FILES {
        let path = dir.join(Path::new(file).file_name().unwrap_or_default());
        if let Err(error) = fs::remove_file(&path) {
            say(&path, error);
        }
    }
    match fs::remove_dir(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::DirectoryNotEmpty => {}
        Err(error) => say(dir, error),
        Ok(()) => {}
    }
}

/// In the child, before `pivot_root`: bind-mounts the container's own files over the root
/// filesystem's, each found inside the root (book 2.5).
pub fn mount_container_files(files: &Path, root: &RootDir) -> Result<()> {
    for file in CONTAINER_FILES {
        let source = files.join(Path::new(file).file_name().unwrap_or_default());
        let target = root.find_file(file)?;
        let mounted =
            mounts::mount(Some(&source), &target.path(), None, MsFlags::MS_BIND, None);
        mounted.map_err(|error| explain_unreachable_files(error, files))?;
    }
    Ok(())
}

/// In a user namespace the container's root is not the host's root: it reaches the data
/// root only through directories that others may search.
fn explain_unreachable_files(error: anyhow::Error, files: &Path) -> anyhow::Error {
    let refused = error
        .downcast_ref::<SyscallError>()
        .is_some_and(|call| call.errno == Errno::EACCES);
    if !refused {
        return error;
    }
    error.context(format!(
        "the container's root, in a user namespace, may not reach its own files in \
         {files:?}: a directory of the data root on the way is closed to others (chmod \
         o+x it, or give --root a directory others may search)"
    ))
}

// Your copy of solutions/06-network-namespace/src/network.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! The container's network: none, the host's, or a port on the host's bridge. Book: chapter 6.
//!
//! With `CLONE_NEWNET` the container gets a network stack of its own, with nothing in it
//! but a loopback interface that is down. `--net none` brings loopback up and stops there.
//! `--net bridge` also gives it a cable to the host: a veth pair from the container's `eth0`
//! to a port of the bridge `byoc0`, an address from the bridge's subnet, a default route
//! through the bridge, and NAT on the host so replies find their way back.
//!
//! The host side is done by the parent, before the child is let go: [`join_bridge`] takes a
//! lease (and sets up the bridge and NAT for the first container), [`attach`] plugs the
//! cable in. The container side is done by the child in its own namespace:
//! [`configure_inside`]. Each host-side value undoes itself when dropped.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::unistd::Pid;

use crate::inroot::RootDir;
use crate::lease::LeaseFile;
use crate::link::{self, Link};
use crate::mounts;
use crate::nat;
use crate::netlink::Netlink;
use crate::subnet::Subnet;
use crate::trace::SyscallError;

/// The bridge every container on the host is plugged into (docker's is `docker0`).
pub const BRIDGE: &str = "byoc0";

/// The three files a container on the bridge gets of its own, bind-mounted over the root
/// filesystem's (which is never written).
pub const CONTAINER_FILES: [&str; 3] = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];

/// Whether this process is the machine's root, not only root of a user namespace (as in a
/// rootless container, or a CI job inside one): only the machine's root may add a bridge
/// and links to the host's network. The first user namespace maps all ids to themselves.
pub fn is_host_root() -> bool {
    let whole_map = fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]);
    nix::unistd::Uid::effective().is_root() && whole_map
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
/// stay for the next container, as `docker0` and docker's rule do.
pub struct Joined {
    pub ethernet: Ethernet,
    pub files: PathBuf,
    id: String,
    leases: LeaseFile,
}

// ANCHOR: join_bridge
/// Takes an address on the bridge for container `id`, under the lease file's lock. The
/// first container also makes the bridge and adds NAT; a lease left by a runtime that died
/// is reclaimed first.
pub fn join_bridge(data_root: &Path, subnet: &Subnet, id: &str, hostname: &str) -> Result<Joined> {
    let leases = LeaseFile::new(&data_root.join("networks"), BRIDGE)?;
    let mut locked = leases.lock()?;
    for dead in locked.reclaim_dead()? {
        remove_container_files(&container_dir(data_root, &dead.id));
        delete_host_end(&host_end_name(&dead.id))?;
    }
    let mut netlink = Netlink::route()?;
    ensure_bridge(&mut netlink, subnet)?;
    let address = locked.take(subnet, id)?;
    if let Err(error) = ensure_nat(subnet) {
        // Nothing half-made is left: the batch that adds NAT is all or nothing.
        locked.release(id)?;
        return Err(error);
    }
    let ethernet = Ethernet {
        address,
        subnet: *subnet,
    };
    let files = container_dir(data_root, id);
    drop(locked);
    let joined = Joined {
        ethernet,
        files,
        id: id.to_string(),
        leases,
    };
    write_container_files(&joined.files, hostname, address)?;
    Ok(joined)
}
// ANCHOR_END: join_bridge

/// The way out: forwarding, and NAT for the bridge's subnet. The first container adds the
/// rule, and it stays with the bridge: adding and removing it for every container would
/// cost each start and end an nftables commit, the slowest step of a start.
fn ensure_nat(subnet: &Subnet) -> Result<()> {
    nat::enable_forwarding()?;
    nat::add_masquerade_once(subnet, BRIDGE)
}

impl Drop for Joined {
    fn drop(&mut self) {
        remove_container_files(&self.files);
        let released = self
            .leases
            .lock()
            .and_then(|mut locked| locked.release(&self.id));
        if let Err(error) = released {
            eprintln!(
                "byoc: cannot give back the address of container {}: {error:#}",
                self.id
            );
        }
    }
}

/// Where a container's own files live: `containers/ID/` under the data root.
pub fn container_dir(data_root: &Path, id: &str) -> PathBuf {
    data_root.join("containers").join(id)
}

/// Makes the bridge if it is not there: `ip link add byoc0 type bridge`, its address (the
/// gateway), `ip link set byoc0 up`. A subnet that overlaps a route the host already has
/// would make some of the host's own network unreachable: it is refused.
fn ensure_bridge(netlink: &mut Netlink<RouteNetlinkMessage>, subnet: &Subnet) -> Result<Link> {
    if let Some(bridge) = link::find(netlink, BRIDGE)? {
        check_bridge_subnet(netlink, &bridge, subnet)?;
        return Ok(bridge);
    }
    check_no_overlap(netlink, subnet)?;
    link::add_bridge(netlink, BRIDGE)?;
    let bridge = link::find(netlink, BRIDGE)?
        .with_context(|| format!("the new bridge {BRIDGE} is not there"))?;
    link::add_address(netlink, &bridge, subnet.gateway(), subnet.prefix)?;
    link::set_up(netlink, &bridge)?;
    Ok(bridge)
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
            "bridge {BRIDGE} is already there with address {} and this container asks for \
             subnet {subnet}: every container on it shares its subnet (leave out --subnet, or \
             give the one it has)",
            if held.is_empty() {
                "none".to_string()
            } else {
                held.join(", ")
            }
        );
    }
    Ok(())
}

fn check_no_overlap(netlink: &mut Netlink<RouteNetlinkMessage>, subnet: &Subnet) -> Result<()> {
    let links = link::links(netlink)?;
    for route in link::routes(netlink)? {
        if route.destination.overlaps(subnet) {
            let device = route
                .interface
                .and_then(|index| links.iter().find(|link| link.index == index))
                .map_or("?".to_string(), |link| link.name.clone());
            bail!(
                "subnet {subnet} overlaps the host's route to {} on {device}: containers would \
                 hide that part of the host's network (choose another with --subnet)",
                route.destination
            );
        }
    }
    Ok(())
}

// ANCHOR: attach
/// Plugs the container into the bridge: a veth pair, `eth0` inside, `vethID` on the bridge.
///
/// Nothing on the host owns the pair: it goes with the container's network namespace. When
/// the container's last process ends, the kernel removes the namespace, and every interface
/// in it: `eth0`, and with it its peer on the bridge. It does so a moment later, in its own
/// time; a runtime that deleted the pair itself would wait for that work (on this kit's CI
/// machines, a third of a container's start-up). The address goes back to the leases at
/// once, and waits its turn there ([`crate::lease`]).
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

/// Deletes a veth's host end if it is still there: one whose runtime was killed, and whose
/// namespace the kernel has not removed yet when the next runtime reclaims its lease.
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
/// The child's side, in its own network namespace: loopback up, and on the bridge, `eth0`'s
/// address, `eth0` up and a default route through the bridge.
pub fn configure_inside(inside: &Inside) -> Result<()> {
    let mut netlink = Netlink::route()?;
    let loopback = link::find(&mut netlink, "lo")?.context("this namespace has no loopback")?;
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
    // TODO: EXERCISE 6.2 (book 6.3): give eth0 its address, bring it up, route through the bridge
    // HINT: link::find(netlink, link::CONTAINER_END) finds eth0 (the parent made it here).
    // HINT: link::add_address(netlink, &eth0, ethernet.address, ethernet.subnet.prefix)
    // HINT: then link::set_up; the default route needs eth0 up, since the kernel checks
    // HINT: that the gateway (ethernet.subnet.gateway()) is reachable through an up link.
    todo!("exercise 6.2: give eth0 its address, bring it up, route through the bridge (book section 6.3)")
}
// ANCHOR_END: configure_ethernet

/// A root filesystem for the bridge needs the three files to mount the container's own
/// over: the kit never creates them in the root filesystem itself. Each is looked up inside
/// the root, as the child will look it up (book 2.5).
pub fn check_mount_files(rootfs: &Path) -> Result<()> {
    let root = RootDir::open_for_checks(rootfs)?;
    for file in CONTAINER_FILES {
        if root.is_missing(file) {
            bail!(
                "your root filesystem {rootfs:?} has no /{file} to mount the container's own \
                 on (build one with `cargo xtask rootfs`, or use --net none)"
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
    let mut text = String::from("# the host's name servers, as the container can reach them\n");
    for line in host.lines() {
        let on_loopback = line
            .strip_prefix("nameserver")
            .is_some_and(|server| server.trim().starts_with("127.") || server.trim() == "::1");
        let useful = line.starts_with("nameserver") || line.starts_with("search");
        if useful && !on_loopback {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

fn remove_container_files(dir: &Path) {
    if let Err(error) = fs::remove_dir_all(dir) {
        if error.kind() != std::io::ErrorKind::NotFound {
            eprintln!("byoc: cannot remove {dir:?}: {error}");
        }
    }
}

/// In the child, before `pivot_root`: bind-mounts the container's own files over the root
/// filesystem's, each found inside the root (book 2.5).
pub fn mount_container_files(files: &Path, root: &RootDir) -> Result<()> {
    for file in CONTAINER_FILES {
        let source = files.join(Path::new(file).file_name().unwrap_or_default());
        let target = root.find_file(file)?;
        let mounted = mounts::mount(Some(&source), &target.path(), None, MsFlags::MS_BIND, None);
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
        "the container's root, in a user namespace, may not reach its own files in {files:?}: \
         a directory of the data root on the way is closed to others (chmod o+x it, or give \
         --root a directory others may search)"
    ))
}

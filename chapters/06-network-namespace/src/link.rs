// Your copy of solutions/06-network-namespace/src/link.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Links, addresses and routes: what `ip link`, `ip addr` and `ip route` ask the kernel
//! for. Book: sections 6.2 and 6.3.
//!
//! Each function sends one netlink request and is narrated, with `--trace`, as the `ip`
//! command that sends the same one.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::netlink::Netlink;
use crate::subnet::Subnet;

/// A network interface as `ip link` lists it: its number, its name, the bridge it is a
/// port of, if any, and its alias, a note anyone with the right may write on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub bridge: Option<u32>,
    pub alias: Option<String>,
}

/// A route as `ip route` lists it: where to, and through which interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Subnet,
    pub interface: Option<u32>,
}

/// Every interface of this network namespace (`ip link show`).
pub fn links(netlink: &mut Netlink<RouteNetlinkMessage>) -> Result<Vec<Link>> {
    let answers = netlink.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
    Ok(answers
        .into_iter()
        .filter_map(|answer| match answer {
            RouteNetlinkMessage::NewLink(message) => Some(link_from(message)),
            _ => None,
        })
        .collect())
}

fn link_from(message: LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        bridge: None,
        alias: None,
    };
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Controller(bridge) => link.bridge = Some(bridge),
            LinkAttribute::IfAlias(alias) if !alias.is_empty() => {
                link.alias = Some(alias)
            }
            _ => {}
        }
    }
    link
}

/// The interface called `name`, if there is one.
pub fn find(
    netlink: &mut Netlink<RouteNetlinkMessage>,
    name: &str,
) -> Result<Option<Link>> {
    Ok(links(netlink)?.into_iter().find(|link| link.name == name))
}

/// `ip link add NAME type bridge`: a virtual switch. Its ports are veth ends; the host
/// reaches the containers through its own address on it.
pub fn add_bridge(netlink: &mut Netlink<RouteNetlinkMessage>, name: &str) -> Result<()> {
    let mut message = LinkMessage::default();
    message.attributes = vec![
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
    ];
    netlink.request(
        RouteNetlinkMessage::NewLink(message),
        NLM_F_CREATE | NLM_F_EXCL,
        format_args!("ip link add {name} type bridge"),
    )?;
    Ok(())
}

// ANCHOR: add_veth
/// `ip link add HOST_END master BRIDGE type veth peer name eth0 netns PID`, then `ip link
/// set HOST_END up`: a veth pair is two interfaces joined by a cable. One end is made
/// inside the container's network namespace already named `eth0`; the other stays on the
/// host as a port of the bridge.
pub fn add_veth(
    netlink: &mut Netlink<RouteNetlinkMessage>,
    host_end: &str,
    container: nix::unistd::Pid,
    bridge: &Link,
) -> Result<()> {
    // TODO: EXERCISE 6.1 (book 6.3): make a veth pair whose peer is eth0 in the container
    // HINT: one netlink request makes both ends: the host's end, a port of the bridge,
    // HINT: and its peer, named eth0 and placed in the container's network namespace.
    // HINT: Then bring the host's end up. Section 6.3 shows the message, attribute by
    // HINT: attribute.
    todo!(
        "exercise 6.1: make a veth pair whose peer is eth0 in the container (book \
         section 6.3)"
    )
}
// ANCHOR_END: add_veth

/// The name of the container's end of its veth pair.
pub const CONTAINER_END: &str = "eth0";

/// `ip link set NAME up`: an interface carries no packets until it is up.
pub fn set_up(netlink: &mut Netlink<RouteNetlinkMessage>, link: &Link) -> Result<()> {
    let mut message = LinkMessage::default();
    message.header.index = link.index;
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    netlink.request(
        RouteNetlinkMessage::SetLink(message),
        0,
        format_args!("ip link set {} up", link.name),
    )?;
    Ok(())
}

/// `ip link set NAME alias TEXT`: a note on the interface, which `ip link show` prints.
/// The kernel keeps at most [`ALIAS_LENGTH`] bytes, and takes none when a link is made.
pub fn set_alias(
    netlink: &mut Netlink<RouteNetlinkMessage>,
    link: &Link,
    alias: &str,
) -> Result<()> {
    let mut message = LinkMessage::default();
    message.header.index = link.index;
    message.attributes = vec![LinkAttribute::IfAlias(alias.to_string())];
    netlink.request(
        RouteNetlinkMessage::SetLink(message),
        0,
        format_args!("ip link set {} alias {alias:?}", link.name),
    )?;
    Ok(())
}

/// The longest alias the kernel keeps (`IFALIASZ`, less the closing NUL).
pub const ALIAS_LENGTH: usize = 255;

/// `ip link delete NAME`. Deleting one end of a veth pair deletes the other.
pub fn delete(netlink: &mut Netlink<RouteNetlinkMessage>, link: &Link) -> Result<()> {
    let mut message = LinkMessage::default();
    message.header.index = link.index;
    netlink.request(
        RouteNetlinkMessage::DelLink(message),
        0,
        format_args!("ip link delete {}", link.name),
    )?;
    Ok(())
}

/// `ip addr add ADDRESS/PREFIX dev NAME`. The kernel adds the route to the subnet with
/// it.
pub fn add_address(
    netlink: &mut Netlink<RouteNetlinkMessage>,
    link: &Link,
    address: Ipv4Addr,
    prefix: u8,
) -> Result<()> {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix;
    message.header.index = link.index;
    message.attributes = vec![
        AddressAttribute::Local(IpAddr::V4(address)),
        AddressAttribute::Address(IpAddr::V4(address)),
    ];
    netlink.request(
        RouteNetlinkMessage::NewAddress(message),
        NLM_F_CREATE | NLM_F_EXCL,
        format_args!("ip addr add {address}/{prefix} dev {}", link.name),
    )?;
    Ok(())
}

/// The IPv4 addresses of an interface (`ip -4 addr show dev NAME`).
pub fn addresses(
    netlink: &mut Netlink<RouteNetlinkMessage>,
    link: &Link,
) -> Result<Vec<(Ipv4Addr, u8)>> {
    let answers =
        netlink.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
    let mut found = Vec::new();
    for answer in answers {
        let RouteNetlinkMessage::NewAddress(message) = answer else {
            continue;
        };
        if message.header.index != link.index {
            continue;
        }
        for attribute in message.attributes {
            if let AddressAttribute::Local(IpAddr::V4(address)) = attribute {
                found.push((address, message.header.prefix_len));
            }
        }
    }
    Ok(found)
}

/// `ip route add default via GATEWAY`: where packets go that no other route takes.
pub fn add_default_route(
    netlink: &mut Netlink<RouteNetlinkMessage>,
    gateway: Ipv4Addr,
) -> Result<()> {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::Static;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway))];
    netlink.request(
        RouteNetlinkMessage::NewRoute(message),
        NLM_F_CREATE | NLM_F_EXCL,
        format_args!("ip route add default via {gateway}"),
    )?;
    Ok(())
}

/// The IPv4 routes of the main table, but the default route (`ip -4 route show`).
pub fn routes(netlink: &mut Netlink<RouteNetlinkMessage>) -> Result<Vec<Route>> {
    let mut request = RouteMessage::default();
    request.header.address_family = AddressFamily::Inet;
    let answers = netlink.dump(RouteNetlinkMessage::GetRoute(request))?;
    let mut found = Vec::new();
    for answer in answers {
        let RouteNetlinkMessage::NewRoute(message) = answer else {
            continue;
        };
        let prefix = message.header.destination_prefix_length;
        if message.header.table != RouteHeader::RT_TABLE_MAIN || prefix == 0 {
            continue;
        }
        let mut route = Route {
            destination: Subnet {
                network: Ipv4Addr::UNSPECIFIED,
                prefix,
            },
            interface: None,
        };
        for attribute in message.attributes {
            match attribute {
                RouteAttribute::Destination(RouteAddress::Inet(network)) => {
                    route.destination.network = network;
                }
                RouteAttribute::Oif(index) => route.interface = Some(index),
                _ => {}
            }
        }
        found.push(route);
    }
    Ok(found)
}

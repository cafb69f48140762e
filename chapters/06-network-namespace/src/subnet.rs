// Your copy of solutions/06-network-namespace/src/subnet.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Subnets: the block of addresses the bridge hands out. Book: section 6.3.
//!
//! `10.88.0.0/16` means: the first 16 bits are the network, the other 16 number the hosts
//! on it. The bridge takes the first host address (`10.88.0.1`) and is every container's
//! gateway; containers take the addresses after it.
//!
//! Some ranges have a meaning of their own, to the kernel or to every router (RFC 6890
//! lists them): loopback, multicast, and the like. A bridge on one of them cannot work,
//! so the parse refuses them, before anything is made on the host.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use anyhow::{bail, Context, Error, Result};

/// The subnet a bridge uses when none is asked for: podman's default.
pub const DEFAULT_SUBNET: &str = "10.88.0.0/16";

/// An IPv4 subnet: a network address and the length of its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// The bits of an address that name the network.
    pub fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether `address` is in this subnet.
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == u32::from(self.network)
    }

    /// Whether the two subnets share any address: one holds the other's network.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The `n`th address of the subnet (0 is the network's own address).
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + n)
    }

    /// The bridge's address: the first host.
    pub fn gateway(&self) -> Ipv4Addr {
        self.host(1)
    }

    /// The addresses containers may take: after the gateway, before the broadcast
    /// address.
    pub fn container_addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let size = 1u32 << (32 - u32::from(self.prefix));
        (2..size - 1).map(|n| self.host(n))
    }
}

/// A range that no bridge may use: where it is, what it is called, and why not.
struct SpecialRange {
    range: Subnet,
    name: &'static str,
    why: &'static str,
}

const fn range(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Subnet {
    Subnet {
        network: Ipv4Addr::new(a, b, c, d),
        prefix,
    }
}

// ANCHOR: special_ranges
/// The ranges a bridge's subnet must not touch. The broadcast address comes before the
/// reserved range that holds it, so a subnet that holds it is told the more exact reason.
const SPECIAL_RANGES: [SpecialRange; 6] = [
    SpecialRange {
        range: range(0, 0, 0, 0, 8),
        name: "the \"this network\" range",
        why: "its addresses stand for a host that does not know its own yet, and the \
              kernel routes to none of them",
    },
    SpecialRange {
        range: range(127, 0, 0, 0, 8),
        name: "the loopback range",
        why: "every host and every container keeps it for itself, so its packets never \
              leave one",
    },
    SpecialRange {
        range: range(169, 254, 0, 0, 16),
        name: "the link-local range",
        why: "its addresses are for one cable only, routers never forward them, and \
              clouds answer there with the machine's own secrets (169.254.169.254)",
    },
    SpecialRange {
        range: range(224, 0, 0, 0, 4),
        name: "the multicast range",
        why: "its addresses name groups of listeners, not one interface, and the kernel \
              takes none of them as a gateway",
    },
    SpecialRange {
        range: range(255, 255, 255, 255, 32),
        name: "the broadcast address",
        why: "a packet sent to it goes to every machine on the cable, so no interface \
              may have it",
    },
    SpecialRange {
        range: range(240, 0, 0, 0, 4),
        name: "the reserved range",
        why: "it is kept for future use, and hosts and routers drop its packets",
    },
];
// ANCHOR_END: special_ranges

/// Refuses a subnet that touches one of the [`SPECIAL_RANGES`], naming it and why.
fn check_not_special(text: &str, subnet: &Subnet) -> Result<()> {
    let Some(special) = SPECIAL_RANGES
        .iter()
        .find(|special| special.range.overlaps(subnet))
    else {
        return Ok(());
    };
    let range = special.range;
    let relation = if range.contains(subnet.network) {
        "is in"
    } else {
        "holds"
    };
    bail!(
        "subnet {text:?} {relation} {range}, {}: {} (choose a private range, like \
         {DEFAULT_SUBNET} or 192.168.100.0/24; see book 6.3)",
        special.name,
        special.why
    )
}

/// The shortest prefix the kit accepts (a /8 is 16 million addresses already) and the
/// longest (a /30 has room for the gateway and one container).
const PREFIXES: std::ops::RangeInclusive<u8> = 8..=30;

impl FromStr for Subnet {
    type Err = Error;

    fn from_str(text: &str) -> Result<Subnet> {
        let (address, prefix) = text.split_once('/').with_context(|| {
            format!("subnet {text:?} is not ADDRESS/PREFIX, like {DEFAULT_SUBNET}")
        })?;
        let network: Ipv4Addr = address.parse().with_context(|| {
            format!("{address:?} in subnet {text:?} is not an IPv4 address")
        })?;
        let prefix: u8 = prefix.parse().with_context(|| {
            format!("{prefix:?} in subnet {text:?} is not a prefix length")
        })?;
        if !PREFIXES.contains(&prefix) {
            bail!(
                "subnet {text:?}: a prefix of /{prefix} is not between /{} and /{}",
                PREFIXES.start(),
                PREFIXES.end()
            );
        }
        let subnet = Subnet { network, prefix };
        if u32::from(network) & !subnet.mask() != 0 {
            let masked = Ipv4Addr::from(u32::from(network) & subnet.mask());
            bail!("subnet {text:?} has host bits set: did you mean {masked}/{prefix}?");
        }
        check_not_special(text, &subnet)?;
        Ok(subnet)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_subnet_has_a_gateway_and_room_for_containers() {
        let subnet: Subnet = DEFAULT_SUBNET.parse().unwrap();
        assert_eq!(subnet.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        let mut addresses = subnet.container_addresses();
        assert_eq!(addresses.next(), Some(Ipv4Addr::new(10, 88, 0, 2)));
        assert_eq!(addresses.last(), Some(Ipv4Addr::new(10, 88, 255, 254)));
    }

    #[test]
    fn a_slash_30_holds_one_container() {
        let subnet: Subnet = "10.99.0.0/30".parse().unwrap();
        let addresses: Vec<_> = subnet.container_addresses().collect();
        assert_eq!(addresses, [Ipv4Addr::new(10, 99, 0, 2)]);
    }

    #[test]
    fn overlapping_subnets_are_seen_from_either_side() {
        let wide: Subnet = "10.0.0.0/8".parse().unwrap();
        let narrow: Subnet = "10.88.0.0/16".parse().unwrap();
        let apart: Subnet = "192.168.0.0/24".parse().unwrap();
        assert!(wide.overlaps(&narrow) && narrow.overlaps(&wide));
        assert!(!narrow.overlaps(&apart));
    }

    #[test]
    fn bad_subnets_are_refused_with_the_reason() {
        let error = |text: &str| text.parse::<Subnet>().unwrap_err().to_string();
        assert!(error("10.88.0.1/16").contains("did you mean 10.88.0.0/16"));
        assert!(error("10.88.0.0/31").contains("between /8 and /30"));
        assert!(error("10.88.0.0").contains("ADDRESS/PREFIX"));
        assert!(error("10.88.0/16").contains("not an IPv4 address"));
    }

    #[test]
    fn ranges_with_a_meaning_of_their_own_are_refused_with_their_name() {
        let error = |text: &str| text.parse::<Subnet>().unwrap_err().to_string();
        let cases = [
            ("0.0.0.0/8", "is in 0.0.0.0/8, the \"this network\" range"),
            ("127.0.0.0/8", "is in 127.0.0.0/8, the loopback range"),
            ("127.1.2.0/24", "is in 127.0.0.0/8, the loopback range"),
            (
                "169.254.0.0/16",
                "is in 169.254.0.0/16, the link-local range",
            ),
            ("169.0.0.0/8", "holds 169.254.0.0/16, the link-local range"),
            ("224.0.0.0/8", "is in 224.0.0.0/4, the multicast range"),
            ("239.1.0.0/16", "is in 224.0.0.0/4, the multicast range"),
            (
                "255.255.255.252/30",
                "holds 255.255.255.255/32, the broadcast address",
            ),
            ("255.255.255.0/30", "is in 240.0.0.0/4, the reserved range"),
            ("240.0.0.0/8", "is in 240.0.0.0/4, the reserved range"),
        ];
        for (text, expected) in cases {
            let said = error(text);
            assert!(said.contains(expected), "{text}: {said}");
            assert!(said.contains("choose a private range"), "{text}: {said}");
            assert!(!said.contains('\n'), "{text}: one line: {said}");
        }
    }

    #[test]
    fn ordinary_ranges_next_to_the_special_ones_are_accepted() {
        for text in [
            "10.88.0.0/16",
            "1.0.0.0/8",
            "126.0.0.0/8",
            "128.0.0.0/8",
            "169.253.0.0/16",
            "172.16.0.0/12",
            "192.168.100.0/24",
            "223.255.255.0/24",
        ] {
            assert!(text.parse::<Subnet>().is_ok(), "{text} is refused");
        }
    }
}

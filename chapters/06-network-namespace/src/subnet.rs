// Your copy of solutions/06-network-namespace/src/subnet.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Subnets: the block of addresses the bridge hands out. Book: section 6.3.
//!
//! `10.88.0.0/16` means: the first 16 bits are the network, the other 16 number the hosts on
//! it. The bridge takes the first host address (`10.88.0.1`) and is every container's
//! gateway; containers take the addresses after it.

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

    /// The addresses containers may take: after the gateway, before the broadcast address.
    pub fn container_addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let size = 1u32 << (32 - u32::from(self.prefix));
        (2..size - 1).map(|n| self.host(n))
    }
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
        let network: Ipv4Addr = address
            .parse()
            .with_context(|| format!("{address:?} in subnet {text:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .with_context(|| format!("{prefix:?} in subnet {text:?} is not a prefix length"))?;
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
}

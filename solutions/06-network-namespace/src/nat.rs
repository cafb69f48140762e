//! NAT: how a container reaches the world with the host's address. Book: section 6.4.
//!
//! A container's packets leave with a source address from the bridge's subnet,
//! `10.88.0.2` say, which no router outside the host knows how to answer. Masquerade
//! (source NAT) rewrites that source address, as the packet leaves the host, to the
//! address of the interface it leaves by: the host's own. Conntrack remembers every
//! rewrite and undoes it on the replies: their destination becomes the container's
//! address again, and the host routes them back over the bridge.
//!
//! The rule skips packets that leave by the bridge itself: those go from one container to
//! another, inside the subnet, where every address is known. Rewriting them would only
//! hide from each container who spoke to it.
//!
//! Two settings make it work, the ones docker and podman make:
//!
//! ```text
//! sysctl -w net.ipv4.ip_forward=1
//! nft add table ip byoc
//! nft add chain ip byoc postrouting '{ type nat hook postrouting priority srcnat; }'
//! nft add rule ip byoc postrouting ip saddr 10.88.0.0/16 oifname != "byoc0" masquerade
//! ```
//!
//! `nft` is a netlink client too: it sends its commands as one batch of messages, which
//! the kernel applies all together or not at all. The kit sends the same batch.

use std::fmt;
use std::fs;
use std::net::Ipv4Addr;

use anyhow::{anyhow, bail, Result};
use netlink_packet_core::{NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_netfilter::nftables::{
    Bitwise, ChainAttribute, ChainMessage, Cmp, DataAttribute, ExpressionAttribute,
    Expressions, Hook, InetHookNumber, ListAttribute, Meta, MetaKey, NfTablesMessage,
    Operator, Payload, Register, RuleAttribute, RuleMessage, TableAttribute,
    TableMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::protocols::NETLINK_NETFILTER;
use nix::errno::Errno;

use crate::netlink::Netlink;
use crate::subnet::Subnet;
use crate::trace::{self, SyscallError};

/// The table's name, so tests and the book can name it.
pub const TABLE: &str = "byoc";

/// The chain's name, after the hook it is attached to.
const CHAIN: &str = "postrouting";

/// `priority srcnat`: where nft places source NAT among the postrouting hook's chains
/// (`NF_IP_PRI_NAT_SRC`), after filtering, as late as possible before the packet leaves.
const SRCNAT_PRIORITY: u32 = 100;

/// The switch for forwarding, in this network namespace.
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// `NFT_PAYLOAD_NETWORK_HEADER`: payload offsets count from the start of the IP header.
const NETWORK_HEADER: u32 = 1;

/// Where an IPv4 header keeps the source address, and its length.
const IPV4_SOURCE_OFFSET: u32 = 12;
const IPV4_ADDRESS_LENGTH: u32 = 4;

/// `IFNAMSIZ`: the kernel keeps interface names in 16 bytes, the last one a NUL.
const IFNAMSIZ: usize = 16;

/// Batch messages are addressed to the nftables subsystem of netfilter's netlink.
const NFNL_SUBSYS_NFTABLES: u16 = libc::NFNL_SUBSYS_NFTABLES as u16;

/// One expression of a rule, as netlink carries it: a name and its attributes.
type Expression = ListAttribute<ExpressionAttribute>;

/// Lets the host route packets between its interfaces (`net.ipv4.ip_forward = 1`), as
/// docker does: without it, the host drops a container's packet for the world instead of
/// passing it from the bridge to the outgoing interface.
///
/// ```text
/// sysctl -w net.ipv4.ip_forward=1
/// ```
pub fn enable_forwarding() -> Result<()> {
    let written = fs::write(IP_FORWARD, "1").map_err(|error| {
        // A write to /proc/sys fails with an errno: keep it for the narration.
        error.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
    });
    trace::syscall(format_args!("sysctl -w net.ipv4.ip_forward=1"), written)
        .map_err(explain_forwarding_error)
}

fn explain_forwarding_error(error: SyscallError) -> anyhow::Error {
    let why = match error.errno {
        // (EPERM has its hint already, from SyscallError.)
        Errno::EACCES => " (only root may turn on forwarding: run the runtime as root)",
        Errno::EROFS => {
            " (/proc/sys is mounted read-only here: are you inside a container already?)"
        }
        _ => "",
    };
    anyhow!("cannot turn on IPv4 forwarding in {IP_FORWARD}: {error}{why}")
}

/// What a start did about NAT: found the rule it needs, or made it. What a start made, a
/// start that fails removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    Found,
    Made,
}

// ANCHOR: ensure_masquerade
/// Makes sure the table holds the masquerade rule for the containers of `subnet` on the
/// bridge `bridge`, and nothing else. The table, its chain and its rule are made in one
/// batch, which the kernel applies all together or not at all: a table that is there
/// holds its chain. Its rule is read back and checked: one left by a bridge on another
/// subnet (removed by hand, say) would send the new containers' packets out unchanged,
/// and their replies nowhere. Such a table is replaced, in one batch too.
///
/// ```text
/// nft create table ip byoc
/// nft add chain ip byoc postrouting '{ type nat hook postrouting priority srcnat; }'
/// nft add rule ip byoc postrouting ip saddr 10.88.0.0/16 oifname != "byoc0" masquerade
/// ```
pub fn ensure_masquerade(subnet: &Subnet, bridge: &str) -> Result<Nat> {
    // Asked first: a batch the kernel refuses costs as much as one it applies.
    if !table_exists()? {
        return make_masquerade(subnet, bridge, Replace::Nothing);
    }
    let masqueraded = masqueraded_subnets()?;
    if masqueraded == [Some(*subnet)] {
        return Ok(Nat::Found);
    }
    trace::say(format_args!(
        "table ip {TABLE} masquerades {}, not {subnet}: it is replaced",
        describe(&masqueraded)
    ));
    make_masquerade(subnet, bridge, Replace::OldTable)
}
// ANCHOR_END: ensure_masquerade

/// Whether the batch first deletes a table that is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replace {
    Nothing,
    OldTable,
}

fn make_masquerade(subnet: &Subnet, bridge: &str, replace: Replace) -> Result<Nat> {
    let mut changes = Vec::new();
    if replace == Replace::OldTable {
        changes.push((delete_table(), 0));
    }
    changes.extend([
        // `create`, not `add`: with NLM_F_EXCL the kernel refuses a table that exists,
        // and with it the whole batch, so the rule is never added twice.
        (add_table(), NLM_F_CREATE | NLM_F_EXCL),
        (add_nat_chain(), NLM_F_CREATE),
        (
            add_rule(masquerade_rule(subnet, bridge)?),
            NLM_F_CREATE | NLM_F_APPEND,
        ),
    ]);
    let delete = match replace {
        Replace::OldTable => format!("nft delete table ip {TABLE}; "),
        Replace::Nothing => String::new(),
    };
    let says = format_args!(
        "{delete}nft create table ip {TABLE}; \
         nft add chain ip {TABLE} {CHAIN} '{{ type nat hook postrouting priority srcnat; \
         }}'; nft add rule ip {TABLE} {CHAIN} ip saddr {subnet} oifname != \"{bridge}\" masquerade"
    );
    match send_batch(changes, says)? {
        Ok(()) => Ok(Nat::Made),
        // Made by an earlier start a moment ago: the next start checks its rule.
        Err(error) if error.errno == Errno::EEXIST => Ok(Nat::Found),
        Err(error) => Err(explain_masquerade_error(error, subnet)),
    }
}

fn explain_masquerade_error(error: SyscallError, subnet: &Subnet) -> anyhow::Error {
    let why = match error.errno {
        // The table is made in the same batch, so "no such thing" can only mean the nat
        // chain type or the masq expression: the kernel does not have them.
        Errno::ENOENT | Errno::EOPNOTSUPP => {
            " (the kernel lacks nftables NAT support: it needs nf_tables, nft_chain_nat, \
             nft_masq and nf_nat; try `modprobe nft_masq` as root, see book 6.4)"
        }
        _ => "",
    };
    anyhow!("cannot masquerade the containers of {subnet}: {error}{why}")
}

/// Whether the table is there, by asking for it: a read, which changes nothing.
///
/// ```text
/// nft list table ip byoc
/// ```
fn table_exists() -> Result<bool> {
    let mut netlink = Netlink::<NetfilterMessage>::open(NETLINK_NETFILTER)?;
    let get = NfTablesMessage::GetTable(TableMessage {
        attributes: vec![TableAttribute::Name(TABLE.into())],
    });
    match netlink.request(for_ipv4(get), 0, format_args!("nft list table ip {TABLE}")) {
        Ok(()) => Ok(true),
        Err(error) if error.errno == Errno::ENOENT => Ok(false),
        Err(error) => Err(anyhow!("cannot look for table ip {TABLE}: {error}")),
    }
}

/// Removes the table, its chain and its rule: what a start that failed had made.
///
/// ```text
/// nft delete table ip byoc
/// ```
pub fn remove_masquerade() -> Result<()> {
    let says = format_args!("nft delete table ip {TABLE}");
    match send_batch(vec![(delete_table(), 0)], says)? {
        // ENOENT: removed by hand already.
        Err(error) if error.errno != Errno::ENOENT => {
            Err(anyhow!("cannot remove table ip {TABLE}: {error}"))
        }
        _ => Ok(()),
    }
}

/// The subnets the table's rules masquerade, read back from the kernel, in the order of
/// the rules: `None` for a rule that is not one the kit writes.
///
/// ```text
/// nft list chain ip byoc postrouting
/// ```
fn masqueraded_subnets() -> Result<Vec<Option<Subnet>>> {
    let mut netlink = Netlink::<NetfilterMessage>::open(NETLINK_NETFILTER)?;
    let get = NfTablesMessage::GetRule(RuleMessage {
        attributes: vec![
            RuleAttribute::Table(TABLE.into()),
            RuleAttribute::Chain(CHAIN.into()),
        ],
    });
    let answers = netlink.dump(for_ipv4(get)).map_err(|error| {
        anyhow!("cannot list the rules of table ip {TABLE}: {error:#}")
    })?;
    Ok(answers
        .into_iter()
        .filter_map(|answer| match answer.inner {
            NetfilterMessageInner::NfTables(NfTablesMessage::NewRule(rule)) => Some(rule),
            _ => None,
        })
        .map(|rule| masqueraded_subnet(&rule))
        .collect())
}

/// The subnet a rule masquerades, if it is the kit's rule: a `bitwise` that masks the
/// source address, a `cmp eq` with the network, and a `masq`. What the kernel hands back
/// is checked like any input: the mask must be a prefix, the network must fit it.
fn masqueraded_subnet(rule: &RuleMessage) -> Option<Subnet> {
    let expressions = rule
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            RuleAttribute::Expressions(expressions) => Some(expressions),
            _ => None,
        })?;
    let data: Vec<&Expressions> =
        expressions.iter().filter_map(expression_data).collect();
    let mask = data.iter().find_map(|expression| match expression {
        Expressions::Bitwise(attributes) => {
            attributes.iter().find_map(|attribute| match attribute {
                Bitwise::Mask(DataAttribute::Value(bytes)) => four_bytes(bytes),
                _ => None,
            })
        }
        _ => None,
    })?;
    let network = data.iter().find_map(|expression| match expression {
        Expressions::Cmp(attributes)
            if attributes.contains(&Cmp::Op(Operator::Equal)) =>
        {
            attributes.iter().find_map(|attribute| match attribute {
                Cmp::Data(DataAttribute::Value(bytes)) => four_bytes(bytes),
                _ => None,
            })
        }
        _ => None,
    })?;
    let masquerades = expressions.iter().any(|expression| {
        matches!(expression, ListAttribute::Element(attributes)
            if attributes.contains(&ExpressionAttribute::Name("masq".into())))
    });
    let subnet = Subnet {
        network: Ipv4Addr::from(network),
        prefix: u8::try_from(mask.leading_ones()).ok()?,
    };
    let whole = subnet.mask() == mask && network & !mask == 0;
    (masquerades && whole).then_some(subnet)
}

/// The data of one expression of a rule, if it has some.
fn expression_data(expression: &Expression) -> Option<&Expressions> {
    let ListAttribute::Element(attributes) = expression else {
        return None;
    };
    attributes.iter().find_map(|attribute| match attribute {
        ExpressionAttribute::Data(data) => Some(data),
        _ => None,
    })
}

/// Four bytes, as an address or a mask in network byte order.
fn four_bytes(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// What the table masquerades, for the narration: `10.77.0.0/16`, or what else it holds.
fn describe(masqueraded: &[Option<Subnet>]) -> String {
    match masqueraded {
        [] => "nothing".to_string(),
        [Some(subnet)] => subnet.to_string(),
        _ => format!("{} rules the kit did not write", masqueraded.len()),
    }
}

// ANCHOR: masquerade_rule
/// The rule's expressions, run one after the other on each packet; the first that does
/// not match ends the rule. `nft --debug=netlink` lists them so:
///
/// ```text
/// [ payload load 4b @ network header + 12 => reg 1 ]
/// [ bitwise reg 1 = ( reg 1 & 0x0000ffff ) ^ 0x00000000 ]
/// [ cmp eq reg 1 0x0000580a ]
/// [ meta load oifname => reg 1 ]
/// [ cmp neq reg 1 0x636f7962 0x00000030 0x00000000 0x00000000 ]
/// [ masq ]
/// ```
///
/// (`nft` itself, for a prefix of whole bytes like /16, loads only those 2 bytes and
/// skips the mask; loading all 4 and masking them works for every prefix, /20 as well.)
fn masquerade_rule(subnet: &Subnet, bridge: &str) -> Result<Vec<Expression>> {
    Ok(vec![
        // ip saddr: copy the packet's source address into register 1,
        Expressions::Payload(vec![
            Payload::DestinationRegister(Register::Reg1),
            Payload::Base(NETWORK_HEADER),
            Payload::Offset(IPV4_SOURCE_OFFSET),
            Payload::Len(IPV4_ADDRESS_LENGTH),
        ])
        .into(),
        // 10.88.0.0/16: keep only its network bits (register & mask ^ 0),
        Expressions::Bitwise(vec![
            Bitwise::SourceRegister(Register::Reg1),
            Bitwise::DestinationRegister(Register::Reg1),
            Bitwise::Length(IPV4_ADDRESS_LENGTH),
            Bitwise::Mask(DataAttribute::Value(subnet.mask().to_be_bytes().to_vec())),
            Bitwise::Xor(DataAttribute::Value(vec![0; IPV4_ADDRESS_LENGTH as usize])),
        ])
        .into(),
        // and they must be the subnet's network.
        Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(Operator::Equal),
            Cmp::Data(DataAttribute::Value(subnet.network.octets().to_vec())),
        ])
        .into(),
        // oifname: the name of the interface the packet leaves by,
        Expressions::Meta(vec![
            Meta::DestinationRegister(Register::Reg1),
            Meta::Key(MetaKey::Oifname),
        ])
        .into(),
        // != "byoc0": must not be the bridge's.
        Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(Operator::NotEqual),
            Cmp::Data(DataAttribute::Value(interface_name(bridge)?)),
        ])
        .into(),
        // masquerade: rewrite the source to the outgoing interface's address. The
        // expression has no attributes, so it is a name alone.
        ListAttribute::Element(vec![ExpressionAttribute::Name("masq".into())]),
    ])
}
// ANCHOR_END: masquerade_rule

/// An interface name as the kernel keeps it, and as `meta oifname` loads it: padded with
/// NULs to `IFNAMSIZ` bytes. Comparing all 16 bytes matches the whole name, not a prefix.
fn interface_name(name: &str) -> Result<Vec<u8>> {
    if name.is_empty() {
        bail!("the bridge's name is empty");
    }
    if name.len() >= IFNAMSIZ {
        bail!(
            "bridge name {name:?} is {} bytes long: an interface name has at most {}",
            name.len(),
            IFNAMSIZ - 1
        );
    }
    let mut padded = name.as_bytes().to_vec();
    padded.resize(IFNAMSIZ, 0);
    Ok(padded)
}

/// `nft delete table ip byoc`: the table, with its chains and rules.
fn delete_table() -> NfTablesMessage {
    NfTablesMessage::DeleteTable(TableMessage {
        attributes: vec![TableAttribute::Name(TABLE.into())],
    })
}

/// `nft add table ip byoc`
fn add_table() -> NfTablesMessage {
    NfTablesMessage::NewTable(TableMessage {
        attributes: vec![TableAttribute::Name(TABLE.into())],
    })
}

/// `nft add chain ip byoc postrouting '{ type nat hook postrouting priority srcnat; }'`
fn add_nat_chain() -> NfTablesMessage {
    NfTablesMessage::NewChain(ChainMessage {
        attributes: vec![
            ChainAttribute::Table(TABLE.into()),
            ChainAttribute::Name(CHAIN.into()),
            ChainAttribute::Hook(vec![
                Hook::Number(InetHookNumber::PostRouting.into()),
                Hook::Priority(SRCNAT_PRIORITY),
            ]),
            ChainAttribute::Type("nat".into()),
        ],
    })
}

/// `nft add rule ip byoc postrouting ...`
fn add_rule(expressions: Vec<Expression>) -> NfTablesMessage {
    NfTablesMessage::NewRule(RuleMessage {
        attributes: vec![
            RuleAttribute::Table(TABLE.into()),
            RuleAttribute::Chain(CHAIN.into()),
            RuleAttribute::Expressions(expressions),
        ],
    })
}

/// Sends `changes` to the kernel as one batch, and waits for each change's answer. The
/// outer error is a socket that would not open; the inner one, the kernel's refusal.
fn send_batch(
    changes: Vec<(NfTablesMessage, u16)>,
    says: fmt::Arguments<'_>,
) -> Result<Result<(), SyscallError>> {
    let acknowledged = changes.len();
    let mut netlink = Netlink::<NetfilterMessage>::open(NETLINK_NETFILTER)?;
    Ok(netlink.request_all(in_one_batch(changes), acknowledged, says))
}

/// Frames the changes between `BATCH_BEGIN` and `BATCH_END`, so the kernel applies them
/// all or none. Each change asks for an acknowledgement (`NLM_F_ACK`), the frame does
/// not: that is how the caller knows how many answers to wait for.
fn in_one_batch(changes: Vec<(NfTablesMessage, u16)>) -> Vec<(NetfilterMessage, u16)> {
    let mut batch = vec![(batch_control(ControlMessage::BatchBegin), 0)];
    for (change, flags) in changes {
        batch.push((for_ipv4(change), flags | NLM_F_ACK));
    }
    batch.push((batch_control(ControlMessage::BatchEnd), 0));
    batch
}

/// A message about the `ip` family's tables (`nft ... ip byoc`).
fn for_ipv4(message: NfTablesMessage) -> NetfilterMessage {
    NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0),
        message,
    )
}

/// A batch's first or last message, addressed to nftables.
fn batch_control(message: ControlMessage) -> NetfilterMessage {
    let header =
        NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES);
    NetfilterMessage::new(header, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    #[test]
    fn the_rule_reads_like_nfts_listing() {
        let rule = masquerade_rule(&subnet("10.88.0.0/16"), "byoc0").unwrap();
        let names: Vec<&str> = rule
            .iter()
            .map(|expression| match expression {
                ListAttribute::Element(attributes) => match attributes.first() {
                    Some(ExpressionAttribute::Name(name)) => name.as_str(),
                    _ => "?",
                },
                _ => "?",
            })
            .collect();
        assert_eq!(names, ["payload", "bitwise", "cmp", "meta", "cmp", "masq"]);
    }

    #[test]
    fn the_source_address_is_masked_with_the_prefix_and_compared_with_the_network() {
        let rule = masquerade_rule(&subnet("192.168.5.0/24"), "byoc0").unwrap();
        let mask = Expressions::Bitwise(vec![
            Bitwise::SourceRegister(Register::Reg1),
            Bitwise::DestinationRegister(Register::Reg1),
            Bitwise::Length(4),
            Bitwise::Mask(DataAttribute::Value(vec![255, 255, 255, 0])),
            Bitwise::Xor(DataAttribute::Value(vec![0, 0, 0, 0])),
        ]);
        let network = Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(Operator::Equal),
            Cmp::Data(DataAttribute::Value(vec![192, 168, 5, 0])),
        ]);
        assert_eq!(rule[1], mask.into());
        assert_eq!(rule[2], network.into());
    }

    fn rule_of(expressions: Vec<Expression>) -> RuleMessage {
        RuleMessage {
            attributes: vec![RuleAttribute::Expressions(expressions)],
        }
    }

    #[test]
    fn the_subnet_a_rule_masquerades_is_read_back_from_it() {
        for text in [
            "10.88.0.0/16",
            "192.168.5.0/24",
            "10.99.0.0/30",
            "172.16.0.0/12",
        ] {
            let rule = rule_of(masquerade_rule(&subnet(text), "byoc0").unwrap());
            assert_eq!(masqueraded_subnet(&rule), Some(subnet(text)), "{text}");
        }
    }

    #[test]
    fn a_rule_the_kit_did_not_write_is_not_read_as_one_of_its_own() {
        let mut no_masquerade =
            masquerade_rule(&subnet("10.88.0.0/16"), "byoc0").unwrap();
        no_masquerade.pop();
        assert_eq!(masqueraded_subnet(&rule_of(no_masquerade)), None);
        // A mask with a hole in it is no prefix.
        let mut holed = masquerade_rule(&subnet("10.88.0.0/16"), "byoc0").unwrap();
        holed[1] = Expressions::Bitwise(vec![Bitwise::Mask(DataAttribute::Value(vec![
            255, 0, 255, 0,
        ]))])
        .into();
        assert_eq!(masqueraded_subnet(&rule_of(holed)), None);
        assert_eq!(masqueraded_subnet(&rule_of(Vec::new())), None);
    }

    #[test]
    fn the_bridge_is_compared_by_its_whole_padded_name() {
        let rule = masquerade_rule(&subnet("10.88.0.0/16"), "byoc0").unwrap();
        let padded = b"byoc0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        let not_the_bridge = Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(Operator::NotEqual),
            Cmp::Data(DataAttribute::Value(padded)),
        ]);
        assert_eq!(rule[4], not_the_bridge.into());
    }

    #[test]
    fn a_bridge_name_too_long_for_the_kernel_is_refused() {
        assert_eq!(interface_name("fifteen-bytes-x").unwrap().len(), IFNAMSIZ);
        let error = interface_name("sixteen-bytes-xx").unwrap_err().to_string();
        assert!(
            error.contains("\"sixteen-bytes-xx\" is 16 bytes long"),
            "{error}"
        );
        assert!(interface_name("").is_err());
    }

    #[test]
    fn a_batch_is_framed_for_nftables_and_only_its_changes_are_acknowledged() {
        let batch = in_one_batch(vec![(add_table(), NLM_F_CREATE), (add_nat_chain(), 0)]);
        let acknowledged: Vec<bool> = batch
            .iter()
            .map(|(_, flags)| flags & NLM_F_ACK != 0)
            .collect();
        assert_eq!(acknowledged, [false, true, true, false]);
        let (first, _) = &batch[0];
        let (last, _) = &batch[3];
        assert_eq!(
            first.inner,
            NetfilterMessageInner::None(ControlMessage::BatchBegin)
        );
        assert_eq!(
            last.inner,
            NetfilterMessageInner::None(ControlMessage::BatchEnd)
        );
        assert_eq!(first.header.res_id, 10);
        assert_eq!(batch[1].0.header.family, NetfilterProtoFamily::IPv4);
    }
}

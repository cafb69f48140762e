// Your copy of solutions/06-network-namespace/src/lib.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 6: the network namespace.
//!
//! One more flag for `clone`, `CLONE_NEWNET`, and the container gets a network stack of
//! its own: its own interfaces, addresses, routes, ports and firewall. This chapter gives
//! it a loopback, a cable to a bridge on the host, a way out through NAT, and ports the
//! host publishes. Book: chapter 6.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

pub use solution05::*;

pub mod dataroot;
pub mod dialer;
pub mod lease;
pub mod link;
pub mod nat;
pub mod netlink;
pub mod network;
pub mod ports;
pub mod records;
pub mod subnet;

/// Chapter 6's spec: chapter 5's, the container's id, and its network.
pub mod spec {
    pub use solution05::spec::{Process, Root, User, UserNamespace};

    use std::path::PathBuf;

    use crate::ports::PortMapping;
    use crate::subnet::Subnet;

    /// What this chapter's container is.
    #[derive(Debug, Clone)]
    pub struct Spec {
        /// The container's id: 12 hex digits, and its host name unless one is given.
        pub id: String,
        pub process: Process,
        pub root: Root,
        pub hostname: String,
        pub init: bool,
        pub user_namespace: Option<UserNamespace>,
        /// The container's network (OCI's network namespace, and the runtime's own
        /// settings for what is put in it).
        pub network: Network,
        /// Where the runtime keeps what outlives a call: leases, each container's files
        /// (`dataroot` owns the layout).
        pub data_root: PathBuf,
    }

    /// How the container is connected.
    #[derive(Debug, Clone)]
    pub struct Network {
        pub mode: NetworkMode,
        /// The host ports that lead to container ports (`-p`).
        pub ports: Vec<PortMapping>,
    }

    /// `--net host`, `--net none` or `--net bridge`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum NetworkMode {
        /// The host's own network: no network namespace (docker's `--network host`).
        Host,
        /// A network namespace with only loopback.
        None,
        /// A network namespace plugged into the bridge, with an address from `subnet`.
        Bridge { subnet: Subnet },
    }
}

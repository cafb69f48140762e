// Your copy of solutions/07-cgroups/src/lib.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 7: cgroups.
//!
//! Namespaces decide what a container can see. A cgroup decides how much it may use: how
//! much memory, how much CPU time, how many processes. This chapter puts each container
//! in a cgroup of its own, with the limits asked for, on either version of the kernel's
//! interface (v2, one tree; v1, a tree per controller), says so when the kernel kills the
//! container for memory, and leaves no cgroup behind. Book: chapter 7.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

pub use solution06::*;

pub mod cgroup;
pub mod cgroupfs;
pub mod hierarchy;
pub mod inside;
pub mod limits;
pub mod v1;
pub mod v2;

/// Chapter 7's spec: chapter 6's, and the container's resources.
pub mod spec {
    pub use solution06::spec::{
        Network, NetworkMode, Process, Root, User, UserNamespace,
    };

    use std::path::PathBuf;

    use crate::limits::Limits;

    /// What this chapter's container is.
    #[derive(Debug, Clone)]
    pub struct Spec {
        pub id: String,
        pub process: Process,
        pub root: Root,
        pub hostname: String,
        pub init: bool,
        pub user_namespace: Option<UserNamespace>,
        pub network: Network,
        /// Where the runtime keeps what outlives a call (`dataroot` owns the layout).
        pub data_root: PathBuf,
        /// What it may use (OCI's `linux.resources`).
        pub resources: Limits,
        /// The cgroup its own goes under, relative to the top of the tree (OCI's
        /// `linux.cgroupsPath` is this and the id).
        pub cgroup_parent: PathBuf,
    }
}

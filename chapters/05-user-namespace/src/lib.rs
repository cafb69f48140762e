// Your copy of solutions/05-user-namespace/src/lib.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 5: the user namespace.
//!
//! One more flag for `clone`, `CLONE_NEWUSER`, and the container gets user and group ids
//! of its own: uid 0 inside is an ordinary user's id outside. An ordinary user can now
//! run every chapter so far, without root. Book: chapter 5.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

pub use solution04::*;

pub mod idmap;
pub mod userns;

/// Chapter 5's spec: chapter 4's, and the user namespace's id maps.
pub mod spec {
    pub use solution04::spec::{Process, Root, User};

    use crate::idmap::IdMap;

    /// What this chapter's container is.
    #[derive(Debug, Clone)]
    pub struct Spec {
        pub process: Process,
        pub root: Root,
        /// The name `uname` and `hostname` report inside the container.
        pub hostname: String,
        /// Run a tiny init as PID 1, and the command as its child (`docker run --init`).
        pub init: bool,
        /// A user namespace and its maps (OCI's `linux.uidMappings`,
        /// `linux.gidMappings`): always for an ordinary user; for root, only when asked.
        pub user_namespace: Option<UserNamespace>,
    }

    /// The id maps of a user namespace.
    #[derive(Debug, Clone)]
    pub struct UserNamespace {
        pub uid_mappings: Vec<IdMap>,
        pub gid_mappings: Vec<IdMap>,
    }
}

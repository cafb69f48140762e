// Your copy of solutions/03-pid-namespace/src/lib.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 3: a PID namespace of its own.
//!
//! The child is started with `clone(2)` in new mount and PID namespaces, so it is PID 1
//! of its own process tree. It mounts a fresh `/proc` that shows only that tree. PID 1
//! has duties no other process has: with `--init`, a tiny init takes them on. Book:
//! chapter 3.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

pub use solution02::*;

pub mod init;
pub mod procfs;
pub mod sealed;
pub mod spawn;

/// Chapter 3's spec: chapter 1's, and whether a tiny init runs as PID 1.
pub mod spec {
    pub use solution02::spec::{Process, Root, User};

    /// What this chapter's container is.
    #[derive(Debug, Clone)]
    pub struct Spec {
        pub process: Process,
        pub root: Root,
        /// Run a tiny init as PID 1, and the command as its child (`docker run --init`).
        pub init: bool,
    }
}

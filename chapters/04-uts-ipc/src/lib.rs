// Your copy of solutions/04-uts-ipc/src/lib.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 4: UTS and IPC namespaces.
//!
//! Two more flags for `clone`: `CLONE_NEWUTS` gives the container a host name of its own,
//! and `CLONE_NEWIPC` System V message queues, semaphores and shared memory of its own.
//! Book: chapter 4.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

pub use solution03::*;

pub mod basics;
pub mod uts;

/// Chapter 4's spec: chapter 3's, and the container's host name.
pub mod spec {
    pub use solution03::spec::{Process, Root, User};

    /// What this chapter's container is.
    #[derive(Debug, Clone)]
    pub struct Spec {
        pub process: Process,
        pub root: Root,
        /// The name `uname` and `hostname` report inside the container.
        pub hostname: String,
        /// Run a tiny init as PID 1, and the command as its child (`docker run --init`).
        pub init: bool,
    }
}

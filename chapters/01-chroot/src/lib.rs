// Your copy of solutions/01-chroot/src/lib.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 1: a container is a process.
//!
//! The runtime forks a child, the child changes its root directory with `chroot(2)` and
//! replaces itself with the command (`execve(2)`), and the parent waits and passes the
//! command's exit status on. Book: chapter 1.
//!
//! Later chapters re-export this crate (`pub use solution01::*;`) and add their own
//! modules.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

pub mod cli;
pub mod command;
pub mod exit;
pub mod inroot;
pub mod process;
pub mod rootfs;
pub mod spec;
pub mod sync;
pub mod terminal;
pub mod trace;

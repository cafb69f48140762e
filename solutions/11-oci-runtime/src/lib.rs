//! The bonus chapter: the OCI runtime interface. Book: chapter 11.
//!
//! Chapters 1 to 10 built a runtime that a person drives. The tools people use every
//! day drive a runtime of their own: podman, containerd and docker write a bundle (a
//! `config.json` and a root filesystem) and call `create`, `start`, `state`, `kill` and
//! `delete`. This chapter speaks that interface with the kit's building blocks, so podman
//! can run its containers with the kit.

pub use solution10::*;

pub mod bundle;
pub mod capabilities;
pub mod console;
pub mod fifo;
pub mod launch;
pub mod mount_options;
pub mod ocicgroup;
pub mod plan;
pub mod seccomp;
pub mod specmounts;
pub mod statedir;

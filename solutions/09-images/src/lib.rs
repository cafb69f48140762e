//! Chapter 9: OCI images. Book: chapter 9.
//!
//! An image is a set of files that name each other by the hash of their content: an
//! index names manifests, a manifest names a config and layers. This chapter keeps
//! images in such a content-addressed store, checks every byte against the hash that
//! names it, unpacks each layer once, and runs containers from them.

pub use solution08::*;

pub mod digest;
pub mod oci;
pub mod store;

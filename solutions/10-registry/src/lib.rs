//! Chapter 10: pulling images from a registry. Book: chapter 10.
//!
//! A registry serves an image by name over HTTP: a manifest, then the blobs it names,
//! each checked against its digest as it arrives. This chapter speaks the distribution
//! API itself, with the auth registries ask for, and unpacks each layer as it streams in.

pub use solution09::*;

pub mod challenge;
pub mod credentials;
pub mod download;
pub mod errors;
pub mod http;
pub mod login;
pub mod manifests;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod session;

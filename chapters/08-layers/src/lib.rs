// Your copy of solutions/08-layers/src/lib.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Chapter 8: layer storage.
//!
//! An image is a stack of read-only layers. This chapter gives a container a `/` made of
//! such layers with overlay: the layers stay as they are, shared by every container that
//! uses them, and each container writes to a thin layer of its own under the data root,
//! removed when it is done. Book: chapter 8.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

pub use solution07::*;

pub mod container;
pub mod diff;
pub mod overlay;
pub mod ps;
pub mod state;
pub mod volumes;

/// Chapter 8's spec: chapter 7's, with a root made of layers as well as of a directory.
pub mod spec {
    pub use solution07::spec::{
        Network, NetworkMode, Process, Root, User, UserNamespace,
    };

    use std::path::PathBuf;

    use crate::limits::Limits;
    use crate::overlay::Layers;

    /// Where the container's `/` comes from.
    #[derive(Debug, Clone)]
    pub enum RootSource {
        /// A directory, as in chapters 1 to 7 (`--rootfs`).
        Dir(Root),
        /// Read-only layers under an upper layer of the container's own (`--layer`).
        Layers(Layers),
    }

    /// What this chapter's container is.
    #[derive(Debug, Clone)]
    pub struct Spec {
        pub id: String,
        pub process: Process,
        pub root: RootSource,
        pub hostname: String,
        pub init: bool,
        pub user_namespace: Option<UserNamespace>,
        pub network: Network,
        /// Where the runtime keeps what outlives a call (`dataroot` owns the layout).
        pub data_root: PathBuf,
        /// What it may use (OCI's `linux.resources`).
        pub resources: Limits,
        /// The cgroup its own goes under, relative to the top of the tree.
        pub cgroup_parent: PathBuf,
        /// Its name, to use in place of its id.
        pub name: Option<String>,
        /// Remove it, and what it wrote, when it ends (`--rm`).
        pub remove_at_end: bool,
        /// The volumes mounted in it (OCI's `mounts`, of the bind kind).
        pub volumes: Vec<crate::volumes::Volume>,
    }

    impl RootSource {
        /// The layers, lowest first; none for a directory.
        pub fn layers(&self) -> &[PathBuf] {
            match self {
                RootSource::Dir(_) => &[],
                RootSource::Layers(layers) => layers.lowest_first(),
            }
        }

        /// The root as `ps` shows it.
        pub fn describe(&self) -> String {
            match self {
                RootSource::Dir(root) => root.path.display().to_string(),
                RootSource::Layers(layers) => {
                    let all = layers.lowest_first();
                    let top = all.last().map(|top| top.display().to_string());
                    let count = match all.len() {
                        1 => "1 layer".to_string(),
                        n => format!("{n} layers"),
                    };
                    format!("{} ({count})", top.unwrap_or_default())
                }
            }
        }
    }
}

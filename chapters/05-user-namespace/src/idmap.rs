// Your copy of solutions/05-user-namespace/src/idmap.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! Id maps: which user and group ids of the container are which ids of the host.
//! Book: section 5.1.
//!
//! A map is a list of ranges. `0:1000:1` says: container id 0 is host id 1000, for one
//! id. An id that no range covers shows as the overflow id, 65534 ("nobody"), inside.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Context, Result};

// ANCHOR: id_map
/// One range of a map: `size` ids from `container` inside are `size` ids from `host`
/// outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl FromStr for IdMap {
    type Err = anyhow::Error;

    /// `CONTAINER:HOST:SIZE`, as `--uid-map` and `--gid-map` take it.
    fn from_str(text: &str) -> Result<IdMap> {
        let fields: Vec<&str> = text.split(':').collect();
        let [container, host, size] = fields[..] else {
            bail!("id map {text:?} is not CONTAINER:HOST:SIZE, for example 0:1000:1");
        };
        let number = |field: &str, name: &str| -> Result<u32> {
            field.parse().with_context(|| {
                format!("id map {text:?}: {name} {field:?} is not a number")
            })
        };
        Ok(IdMap {
            container: number(container, "CONTAINER")?,
            host: number(host, "HOST")?,
            size: number(size, "SIZE")?,
        })
    }
}
// ANCHOR_END: id_map

impl fmt::Display for IdMap {
    /// The form `/proc/PID/uid_map` takes and shows: three numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.container, self.host, self.size)
    }
}

impl IdMap {
    fn container_end(&self) -> u64 {
        u64::from(self.container) + u64::from(self.size)
    }

    fn host_end(&self) -> u64 {
        u64::from(self.host) + u64::from(self.size)
    }
}

/// The host ids an ordinary user may put in a map: its own, and the subordinate range
/// that `/etc/subuid` (or `/etc/subgid`) gives it, if any. Root may map any id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub own: u32,
    /// First id and how many.
    pub subordinate: Option<(u32, u32)>,
}

impl Allowed {
    fn covers(&self, map: &IdMap) -> bool {
        let own = map.host == self.own && map.size == 1;
        let in_range = self.subordinate.is_some_and(|(first, count)| {
            map.host >= first && map.host_end() <= u64::from(first) + u64::from(count)
        });
        own || in_range
    }
}

/// The most lines the kernel takes in one map file.
pub const MAX_LINES: usize = 340;

// ANCHOR: check_maps
/// Checks a uid or gid map (`kind` names it in errors) before anything is created: every
/// range has a size, fits in 32 bits, and overlaps no other range on either side; and an
/// ordinary user (`allowed` is `Some`) uses only the host ids it may.
pub fn check_maps(kind: &str, maps: &[IdMap], allowed: Option<&Allowed>) -> Result<()> {
    if maps.is_empty() || maps.len() > MAX_LINES {
        bail!(
            "the {kind} map needs 1 to {MAX_LINES} ranges, not {}",
            maps.len()
        );
    }
    for (index, map) in maps.iter().enumerate() {
        if map.size == 0 {
            bail!("{kind} map {map}: a range of size 0 maps nothing");
        }
        if map.container_end() > u64::from(u32::MAX)
            || map.host_end() > u64::from(u32::MAX)
        {
            bail!(
                "{kind} map {map}: the range goes past the largest id, {}",
                u32::MAX - 1
            );
        }
        for other in &maps[..index] {
            if overlap(
                map.container,
                map.container_end(),
                other.container,
                other.container_end(),
            ) {
                bail!("{kind} maps {other} and {map} overlap inside the container");
            }
            if overlap(map.host, map.host_end(), other.host, other.host_end()) {
                bail!("{kind} maps {other} and {map} overlap on the host");
            }
        }
        if let Some(allowed) = allowed.filter(|allowed| !allowed.covers(map)) {
            bail!(
                "{kind} map {map}: you may map only your own id ({}){} (see book 5.1)",
                allowed.own,
                match allowed.subordinate {
                    Some((first, count)) => format!(
                        " and your subordinate ids {first}..{}",
                        u64::from(first) + u64::from(count) - 1
                    ),
                    None => " (you have no subordinate ids)".to_string(),
                }
            );
        }
    }
    Ok(())
}
// ANCHOR_END: check_maps

fn overlap(start: u32, end: u64, other_start: u32, other_end: u64) -> bool {
    u64::from(start) < other_end && u64::from(other_start) < end
}

/// The subordinate range of a user in `/etc/subuid` or `/etc/subgid` (`table` is the
/// file's text): the first line `NAME:FIRST:COUNT` or `ID:FIRST:COUNT` that names it.
pub fn subordinate_range(table: &str, name: Option<&str>, id: u32) -> Option<(u32, u32)> {
    table.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let (owner, first, count) = (fields.next()?, fields.next()?, fields.next()?);
        let names_this_user = Some(owner) == name || owner.parse() == Ok(id);
        if !names_this_user {
            return None;
        }
        Some((first.parse().ok()?, count.parse().ok()?))
    })
}

/// The maps a rootless run gets when none are given: container id 0 is the caller, and,
/// with a subordinate range, ids 1 to 65536 (or as many as the range has) come from it,
/// as podman does, so that `chown` inside works.
pub fn rootless_default(own: u32, subordinate: Option<(u32, u32)>) -> Vec<IdMap> {
    let mut maps = vec![IdMap {
        container: 0,
        host: own,
        size: 1,
    }];
    if let Some((first, count)) = subordinate {
        maps.push(IdMap {
            container: 1,
            host: first,
            size: count.min(65536),
        });
    }
    maps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(text: &str) -> IdMap {
        text.parse().unwrap()
    }

    #[test]
    fn a_map_is_container_host_size() {
        assert_eq!(
            map("0:1000:1"),
            IdMap {
                container: 0,
                host: 1000,
                size: 1
            }
        );
        assert!("0:1000".parse::<IdMap>().is_err());
        assert!("0:x:1".parse::<IdMap>().is_err());
        assert_eq!(map("1:100000:65536").to_string(), "1 100000 65536");
    }

    #[test]
    fn overlaps_and_empty_ranges_are_refused() {
        assert!(
            check_maps("uid", &[map("0:1000:1"), map("1:100000:65536")], None).is_ok()
        );
        assert!(check_maps("uid", &[map("0:1000:2"), map("1:100000:5")], None).is_err());
        assert!(check_maps("uid", &[map("0:1000:1"), map("1:1000:1")], None).is_err());
        assert!(check_maps("uid", &[map("0:1000:0")], None).is_err());
        assert!(check_maps("uid", &[map("0:4294967295:1")], None).is_err());
        assert!(check_maps("uid", &[], None).is_err());
    }

    #[test]
    fn an_ordinary_user_maps_only_its_own_ids() {
        let allowed = Allowed {
            own: 1000,
            subordinate: Some((100000, 65536)),
        };
        let ok = [map("0:1000:1"), map("1:100000:65536")];
        assert!(check_maps("uid", &ok, Some(&allowed)).is_ok());
        assert!(check_maps("uid", &[map("0:0:1")], Some(&allowed)).is_err());
        assert!(check_maps("uid", &[map("0:100000:65537")], Some(&allowed)).is_err());
        assert!(check_maps("uid", &[map("0:1000:2")], Some(&allowed)).is_err());
    }

    #[test]
    fn the_subordinate_range_is_found_by_name_or_id() {
        let table = "alice:100000:65536\n1001:200000:1000\n";
        assert_eq!(
            subordinate_range(table, Some("alice"), 1000),
            Some((100000, 65536))
        );
        assert_eq!(
            subordinate_range(table, Some("bob"), 1001),
            Some((200000, 1000))
        );
        assert_eq!(subordinate_range(table, Some("carol"), 1002), None);
    }
}

//! Platforms: one name in a registry often stands for an image index, a list of images of
//! the same program built for several machines (`linux/amd64`, `linux/arm64/v8`, ...).
//! The puller picks the one for the machine it runs on, or the one asked for with
//! `--platform`. Book: section 10.2.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// A platform, as an image index describes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    // ANCHOR: of_this_machine
    /// This machine's, in the names Go (and so the registries) give them.
    pub fn of_this_machine() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }
    // ANCHOR_END: of_this_machine
}

impl FromStr for Platform {
    type Err = String;

    /// `OS/ARCH` or `OS/ARCH/VARIANT`, as `--platform` takes it.
    fn from_str(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let plain = |part: &&str| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric())
        };
        match parts.as_slice() {
            [os, architecture] | [os, architecture, _]
                if parts.iter().all(plain) && plain(os) && plain(architecture) =>
            {
                Ok(Platform {
                    os: os.to_string(),
                    architecture: architecture.to_string(),
                    variant: parts.get(2).map(|v| v.to_string()),
                })
            }
            _ => Err(format!("{text:?} is not a platform: OS/ARCH or OS/ARCH/VARIANT, such as linux/arm64")),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

// ANCHOR: choose
/// The index of the entry of `offered` that runs on `wanted`: the same OS and
/// architecture, and the same variant when both say one (an entry with no variant does
/// for any). The exact variant wins over an entry without one. None fits: an error that
/// lists what there is.
pub fn choose(offered: &[Option<Platform>], wanted: &Platform) -> Result<usize> {
    let fits = |platform: &Platform| {
        platform.os == wanted.os && platform.architecture == wanted.architecture
    };
    let exact = offered.iter().position(|p| {
        p.as_ref()
            .is_some_and(|p| fits(p) && p.variant == wanted.variant)
    });
    let loose = offered.iter().position(|p| {
        p.as_ref()
            .is_some_and(|p| fits(p) && (p.variant.is_none() || wanted.variant.is_none()))
    });
    if let Some(found) = exact.or(loose) {
        return Ok(found);
    }
    let there: Vec<String> = offered.iter().flatten().map(Platform::to_string).collect();
    bail!(
        "the image has no {wanted}: it is built for {} (choose one with --platform)",
        there.join(", ")
    )
}
// ANCHOR_END: choose

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(text: &str) -> Option<Platform> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_machines_platform_is_chosen_and_a_missing_one_lists_the_others() {
        let offered = [
            platform("linux/amd64"),
            platform("linux/arm64/v8"),
            platform("linux/arm/v7"),
            None,
        ];
        assert_eq!(
            choose(&offered, &"linux/arm64/v8".parse().unwrap()).unwrap(),
            1
        );
        assert_eq!(
            choose(&offered, &"linux/arm64".parse().unwrap()).unwrap(),
            1
        );
        assert_eq!(
            choose(&offered, &"linux/amd64".parse().unwrap()).unwrap(),
            0
        );
        let error = choose(&offered, &"linux/s390x".parse().unwrap()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("linux/amd64, linux/arm64/v8, linux/arm/v7"),
            "{error}"
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/../x".parse::<Platform>().is_err());
    }
}

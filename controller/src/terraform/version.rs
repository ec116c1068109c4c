//! Which Terraform the runner drives: flavour and version from `version -json`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Terraform or OpenTofu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Flavour {
    /// HashiCorp Terraform.
    Terraform,
    /// OpenTofu.
    OpenTofu,
}

impl Flavour {
    /// The oldest version of this flavour the runner supports.
    #[must_use]
    pub fn minimum(self) -> Version {
        match self {
            Self::Terraform => Version::new(1, 5, 0),
            Self::OpenTofu => Version::new(1, 6, 0),
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Terraform => "Terraform",
            Self::OpenTofu => "OpenTofu",
        })
    }
}

/// A `major.minor.patch[-pre]` version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
    /// Pre-release suffix (`beta1`, `rc2`…), if any.
    pub pre: Option<String>,
}

impl Version {
    /// A release version.
    #[must_use]
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
            pre: None,
        }
    }

    /// Parses `1.15.5`, `v1.6.0-rc1`, `1.9.0-alpha20240404`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().trim_start_matches('v');
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p.to_owned())),
            None => (s, None),
        };
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().unwrap_or("0").parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// Whether this is at least `other` (pre-releases of a version count as that version).
    #[must_use]
    pub fn at_least(&self, other: &Version) -> bool {
        (self.major, self.minor, self.patch) >= (other.major, other.minor, other.patch)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

/// What `version -json` says about the binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TerraformVersion {
    /// Terraform or OpenTofu.
    pub flavour: Flavour,
    /// Its version.
    pub version: Version,
    /// e.g. `linux_amd64`.
    pub platform: String,
}

impl TerraformVersion {
    /// Reads `version -json` output. Both flavours print `terraform_version`; only
    /// Terraform prints `terraform_outdated` (its upgrade check), which OpenTofu dropped, so
    /// its absence (or a `fips140`/`module_selections` field, OpenTofu-only) means OpenTofu.
    pub fn from_version_json(json: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Raw {
            terraform_version: String,
            #[serde(default)]
            platform: String,
            #[serde(default)]
            terraform_outdated: Option<bool>,
            #[serde(default)]
            fips140: Option<bool>,
            #[serde(default)]
            module_selections: Option<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let flavour = if raw.terraform_outdated.is_some()
            && raw.fips140.is_none()
            && raw.module_selections.is_none()
        {
            Flavour::Terraform
        } else {
            Flavour::OpenTofu
        };
        let version = Version::parse(&raw.terraform_version)
            .ok_or_else(|| format!("unrecognised version {:?}", raw.terraform_version))?;
        Ok(Self {
            flavour,
            version,
            platform: raw.platform,
        })
    }

    /// Whether the runner supports this binary.
    #[must_use]
    pub fn is_supported(&self) -> bool {
        self.version.at_least(&self.flavour.minimum())
    }
}

impl fmt::Display for TerraformVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.flavour, self.version)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn terraform_version_json() {
        let v = TerraformVersion::from_version_json(
            r#"{"terraform_version":"1.15.5","platform":"linux_amd64","provider_selections":{},"terraform_outdated":false}"#,
        )
        .unwrap();
        assert_eq!(v.flavour, Flavour::Terraform);
        assert_eq!(v.version, Version::new(1, 15, 5));
        assert!(v.is_supported());
        assert_eq!(v.to_string(), "Terraform v1.15.5");
    }

    #[test]
    fn opentofu_version_json() {
        let v = TerraformVersion::from_version_json(
            r#"{"terraform_version":"1.8.3","platform":"linux_arm64","provider_selections":{}}"#,
        )
        .unwrap();
        assert_eq!(v.flavour, Flavour::OpenTofu);
        assert!(v.is_supported());
        let pre = TerraformVersion::from_version_json(
            r#"{"terraform_version":"1.10.0-beta1","platform":"linux_amd64","provider_selections":{},"fips140":false}"#,
        )
        .unwrap();
        assert_eq!(pre.version.pre.as_deref(), Some("beta1"));
        assert_eq!(pre.flavour, Flavour::OpenTofu);
    }

    #[test]
    fn old_terraform_unsupported() {
        let v = TerraformVersion::from_version_json(
            r#"{"terraform_version":"1.4.7","platform":"linux_amd64","provider_selections":{},"terraform_outdated":true}"#,
        )
        .unwrap();
        assert!(!v.is_supported());
        assert!(
            Version::parse("1.5.0-rc1")
                .unwrap()
                .at_least(&Version::new(1, 5, 0))
        );
        assert!(Version::parse("x.y").is_none());
    }
}

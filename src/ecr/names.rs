//! Validated identifiers of the ECR domain: accounts, regions, repository
//! names. Each is built by a fallible constructor; holding one means it is
//! valid ("parse, don't validate").
//!
//! Repository names follow the ECR API reference (`RepositoryName`: 2 to 256
//! characters, `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`).

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A 12-digit AWS account id (also the ECR registry id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_string()))
        } else {
            Err(format!("'{s}' is not a 12-digit account id"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS region name such as `us-east-1`, as named by a SigV4 credential scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Region(String);

static REGION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$").expect("region pattern compiles")
});

/// The namespace of ECR Public registries in keys and signed paths. ECR
/// Public is global (its ARNs have no region); this name is no region
/// [`Region::parse`] accepts, so no SigV4 scope of a private-registry call
/// can ever name it.
pub const PUBLIC_NAMESPACE: &str = "ecr-public";

impl Region {
    /// A region a client named (a SigV4 scope, a request field).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() <= 32 && REGION.is_match(s) {
            Ok(Region(s.to_string()))
        } else {
            Err(format!("'{s}' is not a region name"))
        }
    }
    /// A region as ecrd itself wrote it (a store key, a path it signed):
    /// a region, or the public namespace.
    pub fn parse_stored(s: &str) -> Result<Self, String> {
        if s == PUBLIC_NAMESPACE {
            Ok(Region::public())
        } else {
            Region::parse(s)
        }
    }
    /// The namespace of ECR Public registries.
    pub fn public() -> Self {
        Region(PUBLIC_NAMESPACE.to_string())
    }
    pub fn is_public(&self) -> bool {
        self.0 == PUBLIC_NAMESPACE
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The namespace every resource lives in: one registry per account and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scope {
    pub account: AccountId,
    pub region: Region,
}

impl Scope {
    pub fn new(account: AccountId, region: Region) -> Self {
        Scope { account, region }
    }
    /// An account's ECR Public registry.
    pub fn public(account: AccountId) -> Self {
        Scope {
            account,
            region: Region::public(),
        }
    }
    /// Whether this is an ECR Public registry.
    pub fn is_public(&self) -> bool {
        self.region.is_public()
    }
    /// The key prefix all records of this registry share in the store.
    pub fn key_prefix(&self) -> String {
        format!("{}/{}/", self.account, self.region)
    }
}

/// The pattern of repository names, exactly as the ECR API reference states it.
pub const REPOSITORY_NAME_PATTERN: &str =
    "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*";

static REPOSITORY_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^(?:{REPOSITORY_NAME_PATTERN})$")).expect("name pattern compiles")
});

/// Why a repository name was refused; `constraint` is worded as ECR words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub constraint: String,
}

/// A valid ECR repository name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RepositoryName(String);

impl RepositoryName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let chars = s.chars().count();
        if chars < 2 {
            return Err(NameError {
                constraint: "must have length greater than or equal to 2".into(),
            });
        }
        if chars > 256 {
            return Err(NameError {
                constraint: "must have length less than or equal to 256".into(),
            });
        }
        if !REPOSITORY_NAME.is_match(s) {
            return Err(NameError {
                constraint: format!("must satisfy regular expression '{REPOSITORY_NAME_PATTERN}'"),
            });
        }
        Ok(RepositoryName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["ab", "team/app", "a.b_c-d/e2", "x/y/z9"] {
            assert!(RepositoryName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a", "Team/app", "/app", "app/", "a..b", "a//b", "-ab", "ab-", "../etc",
        ] {
            assert!(RepositoryName::parse(bad).is_err(), "{bad}");
        }
        assert!(RepositoryName::parse(&"a".repeat(257)).is_err());
        assert!(RepositoryName::parse(&"a".repeat(256)).is_ok());
    }

    #[test]
    fn accounts_and_regions() {
        assert!(AccountId::parse("123456789012").is_ok());
        assert!(AccountId::parse("12345678901").is_err());
        assert!(AccountId::parse("12345678901a").is_err());
        assert!(Region::parse("us-east-1").is_ok());
        assert!(Region::parse("us-gov-west-1").is_ok());
        assert!(Region::parse("cn-northwest-1").is_ok());
        assert!(Region::parse("US-EAST-1").is_err());
        assert!(Region::parse("../x").is_err());
        assert!(Region::parse(PUBLIC_NAMESPACE).is_err());
        assert!(Region::parse_stored(PUBLIC_NAMESPACE).is_ok_and(|r| r.is_public()));
        assert!(Region::parse_stored("eu-west-1").is_ok_and(|r| !r.is_public()));
    }
}

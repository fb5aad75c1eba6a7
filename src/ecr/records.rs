//! The records the domain keeps in the metadata store. They are the stored
//! form (JSON), so fields are only ever added with `#[serde(default)]`.

use serde::{Deserialize, Serialize};

/// One tag-mutability exclusion filter (`filterType` is always `WILDCARD`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagFilter {
    pub filter_type: String,
    pub filter: String,
}

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceTag {
    pub key: String,
    pub value: String,
}

/// A repository and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepositoryRecord {
    pub name: String,
    /// Creation time, epoch milliseconds.
    pub created_at_ms: i64,
    /// `MUTABLE`, `IMMUTABLE`, `MUTABLE_WITH_EXCLUSION` or `IMMUTABLE_WITH_EXCLUSION`.
    pub tag_mutability: String,
    #[serde(default)]
    pub tag_mutability_exclusions: Vec<TagFilter>,
    #[serde(default)]
    pub scan_on_push: bool,
    /// `AES256`, `KMS` or `KMS_DSSE`.
    pub encryption_type: String,
    /// The KMS key ARN, for the KMS encryption types.
    #[serde(default)]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub tags: Vec<ResourceTag>,
}

/// Registry-wide configuration of one account and region.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistryRecord {
    /// The replication configuration as last put (JSON of the wire shape).
    #[serde(default)]
    pub replication_configuration: Option<serde_json::Value>,
}

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
    /// The lifecycle policy text as put (validated by `lifecycle::Policy`).
    #[serde(default)]
    pub lifecycle_policy: Option<String>,
    /// When the lifecycle policy was last put, epoch milliseconds.
    #[serde(default)]
    pub lifecycle_policy_updated_ms: Option<i64>,
    /// When the lifecycle policy last ran on the repository.
    #[serde(default)]
    pub lifecycle_last_evaluated_ms: Option<i64>,
}

/// Registry-wide configuration of one account and region.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistryRecord {
    /// The replication configuration as last put (JSON of the wire shape).
    #[serde(default)]
    pub replication_configuration: Option<serde_json::Value>,
}

/// One image (a manifest) in a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub digest: crate::digest::Digest,
    /// The manifest exactly as pushed.
    pub manifest: String,
    pub media_type: String,
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Tags currently pointing at this image, in the order they were set.
    #[serde(default)]
    pub tags: Vec<String>,
    /// ECR's imageSizeInBytes.
    pub size_in_bytes: i64,
    pub pushed_at_ms: i64,
    #[serde(default)]
    pub last_pulled_ms: Option<i64>,
    /// The manifest this one refers to (OCI `subject`), if any.
    #[serde(default)]
    pub subject: Option<crate::digest::Digest>,
    /// Child manifests of an index.
    #[serde(default)]
    pub children: Vec<crate::digest::Digest>,
    /// Blobs (config and layers) the manifest references.
    #[serde(default)]
    pub blobs: Vec<crate::digest::Digest>,
    /// `ACTIVE`, `ARCHIVED` or `ACTIVATING`.
    #[serde(default = "active")]
    pub status: String,
    /// When the image last moved to the archive storage class (ECR's
    /// `lastArchivedAt`; `sinceImageTransitioned` counts from it).
    #[serde(default)]
    pub last_archived_ms: Option<i64>,
    /// When the image's latest restore from archive completes or completed
    /// (ECR's `lastActivatedAt`). While the clock is before it, an
    /// `ACTIVATING` image is still being restored; see
    /// `lifecycle_runs::effective_status`.
    #[serde(default)]
    pub last_activated_ms: Option<i64>,
}

pub(crate) fn active() -> String {
    "ACTIVE".to_string()
}

/// A blob (layer or config) made available to a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub size: u64,
    pub added_at_ms: i64,
}

/// An upload in progress, and the repository it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub id: String,
    pub scope: super::names::Scope,
    pub repository: String,
    pub started_at_ms: i64,
    /// UploadLayerPart only: the size of the latest part received.
    #[serde(default)]
    pub last_part_size: Option<u64>,
    /// UploadLayerPart only: the size of a part below ECR's minimum part
    /// size that turned out not to be the last one (CompleteLayerUpload then
    /// answers LayerPartTooSmallException).
    #[serde(default)]
    pub undersized_part: Option<u64>,
}

/// A repository creation template (CreateRepositoryCreationTemplate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRecord {
    /// The prefix as given: a namespace such as `prod` or `prod/team`, or `ROOT`.
    pub prefix: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `AES256`, `KMS` or `KMS_DSSE`.
    pub encryption_type: String,
    /// The KMS key as given, for the KMS encryption types.
    #[serde(default)]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub resource_tags: Vec<ResourceTag>,
    pub tag_mutability: String,
    #[serde(default)]
    pub tag_mutability_exclusions: Vec<TagFilter>,
    #[serde(default)]
    pub repository_policy: Option<String>,
    #[serde(default)]
    pub lifecycle_policy: Option<String>,
    /// `REPLICATION`, `PULL_THROUGH_CACHE`, `CREATE_ON_PUSH`.
    pub applied_for: Vec<String>,
    #[serde(default)]
    pub custom_role_arn: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One rule of a registry's replication configuration, in the wire shape
/// (DescribeRegistry answers it as stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationRuleRecord {
    pub destinations: Vec<ReplicationDestinationRecord>,
    #[serde(
        rename = "repositoryFilters",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub repository_filters: Option<Vec<RepositoryFilterRecord>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationDestinationRecord {
    pub region: String,
    #[serde(rename = "registryId")]
    pub registry_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryFilterRecord {
    pub filter: String,
    #[serde(rename = "filterType")]
    pub filter_type: String,
}

/// A pushed image waiting to be copied to its destinations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationJob {
    pub source: super::names::Scope,
    pub repository: String,
    pub digest: crate::digest::Digest,
    /// The tag the push set, if any.
    #[serde(default)]
    pub tag: Option<String>,
    pub destinations: Vec<super::names::Scope>,
    pub queued_at_ms: i64,
}

/// An image's replication status, per destination registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicationStatusRecord {
    pub destinations: Vec<DestinationStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationStatus {
    pub destination: super::names::Scope,
    /// `IN_PROGRESS`, `COMPLETE` or `FAILED`.
    pub status: String,
    #[serde(default)]
    pub failure_code: Option<String>,
    /// Queued jobs for this image and destination not yet finished: the
    /// status stays IN_PROGRESS until the last one finishes.
    #[serde(default)]
    pub pending: u32,
}

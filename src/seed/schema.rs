//! The seed file's shape. Field names are the ECR API's: a repository entry
//! carries CreateRepository's fields (`imageTagMutability`,
//! `imageScanningConfiguration`, `encryptionConfiguration`, `tags`, ...), a
//! creation template is CreateRepositoryCreationTemplate's request, the
//! scanning configuration PutRegistryScanningConfiguration's, and so on.
//! Those parts stay JSON values here: the API's own decoding and
//! constraint checks judge them when they are applied (`seed::apply`), so
//! a seed file is refused exactly where the API would refuse the call.
//!
//! Unknown fields at this level are refused (a misspelt section must not
//! be skipped in silence).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub accounts: Vec<AccountSeed>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountSeed {
    pub account: String,
    /// Access keys of the account, as `--credentials-file` lines give them.
    #[serde(default)]
    pub credentials: Vec<CredentialSeed>,
    #[serde(default)]
    pub regions: Vec<RegionSeed>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialSeed {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Defaults to the account's root.
    pub principal_arn: Option<String>,
    /// Principal tags (`aws:PrincipalTag/<key>`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The principal's IAM identity policy (a JSON string or a mapping).
    pub policy: Option<PolicyText>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegionSeed {
    pub region: String,
    /// PutAccountSetting, one per entry.
    #[serde(default)]
    pub account_settings: Vec<AccountSettingSeed>,
    /// PutRegistryPolicy's `policyText`.
    pub registry_policy: Option<PolicyText>,
    /// PutRegistryScanningConfiguration's request (`scanType`, `rules`).
    pub registry_scanning_configuration: Option<Value>,
    /// PutReplicationConfiguration's `replicationConfiguration` (`rules`).
    pub replication_configuration: Option<Value>,
    /// CreateRepositoryCreationTemplate's requests.
    #[serde(default)]
    pub repository_creation_templates: Vec<Map<String, Value>>,
    /// CreatePullThroughCacheRule's requests.
    #[serde(default)]
    pub pull_through_cache_rules: Vec<Map<String, Value>>,
    #[serde(default)]
    pub repositories: Vec<RepositorySeed>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountSettingSeed {
    pub name: Value,
    pub value: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositorySeed {
    /// CreateRepository's `repositoryName`.
    pub name: String,
    pub image_tag_mutability: Option<Value>,
    pub image_tag_mutability_exclusion_filters: Option<Value>,
    pub image_scanning_configuration: Option<Value>,
    pub encryption_configuration: Option<Value>,
    /// `[{Key, Value}]` as the API takes them, or a `{key: value}` mapping.
    pub tags: Option<Value>,
    /// SetRepositoryPolicy's `policyText`.
    pub repository_policy: Option<PolicyText>,
    /// PutLifecyclePolicy's `lifecyclePolicyText`.
    pub lifecycle_policy: Option<PolicyText>,
    #[serde(default)]
    pub images: Vec<ImageSeed>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageSeed {
    /// `oci:DIR[:REF]`, `oci-archive:FILE[:REF]` or `docker-archive:FILE[:REF]`,
    /// a path relative to the seed file.
    pub source: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A policy document: the JSON text the API takes, or the document itself
/// written as YAML/JSON structure.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PolicyText {
    Text(String),
    Document(Map<String, Value>),
}

impl PolicyText {
    /// The text handed to the API: a string as given, a document as
    /// compact JSON (the same text on every start, so reapplying changes
    /// nothing).
    pub fn text(&self) -> String {
        match self {
            PolicyText::Text(t) => t.clone(),
            PolicyText::Document(d) => Value::Object(d.clone()).to_string(),
        }
    }
}

/// Tags as the API takes them: `[{Key, Value}]`, from either form.
pub fn api_tags(tags: &Value) -> Value {
    match tags {
        Value::Object(map) => Value::Array(
            map.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => Value::String(s.clone()),
                        other => Value::String(other.to_string()),
                    };
                    serde_json::json!({ "Key": k, "Value": value })
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

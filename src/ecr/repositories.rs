//! Repositories: creation with its settings, listing with ECR's paging rules,
//! deletion, tag mutability, scan-on-push, and resource tags.
//!
//! Implements the ECR API reference for CreateRepository,
//! DescribeRepositories, DeleteRepository, PutImageTagMutability,
//! PutImageScanningConfiguration, TagResource, UntagResource and
//! ListTagsForResource.

use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::arn::parse_repository_arn;
use super::error::{EcrError, EcrResult, ErrorKind};
use super::names::{RepositoryName, Scope};
use super::records::{RepositoryRecord, ResourceTag, TagFilter};
use super::{load, save, Ecr};
use crate::store::{ReadTxn, Table, WriteTxn};

/// Tags a resource may carry.
pub const MAX_TAGS: usize = 50;
/// DescribeRepositories' page size when `maxResults` is absent.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// What CreateRepository asks for, already shaped by the model's constraints.
#[derive(Debug, Clone, Default)]
pub struct NewRepository {
    pub name: String,
    pub tag_mutability: Option<String>,
    pub tag_mutability_exclusions: Option<Vec<TagFilter>>,
    pub scan_on_push: Option<bool>,
    pub encryption_type: Option<String>,
    pub kms_key: Option<String>,
    pub tags: Vec<ResourceTag>,
}

/// A page of repositories and the token for the next one.
#[derive(Debug, Clone)]
pub struct RepositoryPage {
    pub repositories: Vec<RepositoryRecord>,
    pub next_token: Option<String>,
}

pub(crate) fn repository_key(scope: &Scope, name: &str) -> String {
    format!("{}{}", scope.key_prefix(), name)
}

/// Parses a repository name from a request field, with ECR's wording.
pub fn parse_name(name: &str) -> EcrResult<RepositoryName> {
    RepositoryName::parse(name)
        .map_err(|e| EcrError::invalid_parameter("repositoryName", &e.constraint))
}

/// Reads one repository or fails with RepositoryNotFoundException.
pub fn get_repository(
    tx: &(impl ReadTxn + ?Sized),
    scope: &Scope,
    name: &RepositoryName,
) -> EcrResult<RepositoryRecord> {
    load(
        tx,
        Table::Repositories,
        &repository_key(scope, name.as_str()),
    )?
    .ok_or_else(|| EcrError::repository_not_found(name.as_str(), scope.account.as_str()))
}

/// The ARN of the AWS managed key `aws/ecr` of a registry. Real ECR names a
/// key id that is fixed per account and region; derive a stable one.
/// Stores a new repository's record, or RepositoryAlreadyExistsException.
pub(crate) fn insert_repository_in(
    tx: &mut dyn WriteTxn,
    scope: &Scope,
    record: &RepositoryRecord,
) -> EcrResult<()> {
    let key = repository_key(scope, &record.name);
    if tx.get(Table::Repositories, &key)?.is_some() {
        return Err(EcrError::new(
            ErrorKind::RepositoryAlreadyExists,
            format!(
                "The repository with name '{}' already exists in the registry with id '{}'",
                record.name, scope.account
            ),
        ));
    }
    save(tx, Table::Repositories, &key, record)?;
    Ok(())
}

pub fn default_kms_key(scope: &Scope) -> String {
    let digest = Sha256::digest(format!("aws/ecr:{}:{}", scope.account, scope.region));
    let h = hex::encode(&digest[..16]);
    format!(
        "arn:aws:kms:{}:{}:key/{}-{}-{}-{}-{}",
        scope.region,
        scope.account,
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Expands a key id or alias to the ARN ECR reports.
pub(crate) fn kms_key_arn(scope: &Scope, key: &str) -> String {
    if key.starts_with("arn:") {
        key.to_string()
    } else if key.starts_with("alias/") {
        format!("arn:aws:kms:{}:{}:{}", scope.region, scope.account, key)
    } else {
        format!("arn:aws:kms:{}:{}:key/{}", scope.region, scope.account, key)
    }
}

/// Checks that exclusion filters come exactly with the `*_WITH_EXCLUSION`
/// mutability values, and defaults the mutability to `MUTABLE`.
pub(crate) fn tag_mutability_settings(
    mutability: Option<String>,
    exclusions: Option<Vec<TagFilter>>,
) -> EcrResult<(String, Vec<TagFilter>)> {
    let mutability = mutability.unwrap_or_else(|| "MUTABLE".to_string());
    let wants_exclusions = mutability.ends_with("_WITH_EXCLUSION");
    match (wants_exclusions, exclusions) {
        (true, Some(filters)) if !filters.is_empty() => Ok((mutability, filters)),
        (true, _) => Err(EcrError::invalid_parameter(
            "imageTagMutabilityExclusionFilters",
            &format!("must be specified when imageTagMutability is {mutability}"),
        )),
        (false, Some(filters)) if !filters.is_empty() => Err(EcrError::invalid_parameter(
            "imageTagMutabilityExclusionFilters",
            &format!("can only be specified when imageTagMutability is MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION, not {mutability}"),
        )),
        (false, _) => Ok((mutability, Vec::new())),
    }
}

/// Validates a set of tags against AWS's tagging rules.
fn check_tags(tags: &[ResourceTag]) -> EcrResult<()> {
    for tag in tags {
        let key_len = tag.key.chars().count();
        if key_len == 0 || key_len > 128 {
            return Err(EcrError::new(
                ErrorKind::InvalidTagParameter,
                format!(
                    "The tag key '{}' must be between 1 and 128 characters long.",
                    tag.key
                ),
            ));
        }
        if tag.value.chars().count() > 256 {
            return Err(EcrError::new(
                ErrorKind::InvalidTagParameter,
                format!(
                    "The tag value for key '{}' must be at most 256 characters long.",
                    tag.key
                ),
            ));
        }
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(EcrError::new(
                ErrorKind::InvalidTagParameter,
                format!("The tag key '{}' uses the reserved prefix 'aws:'.", tag.key),
            ));
        }
        let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
        if !tag.key.chars().all(allowed) || !tag.value.chars().all(allowed) {
            return Err(EcrError::new(
                ErrorKind::InvalidTagParameter,
                format!(
                    "The tag '{}' contains characters outside letters, digits, white space and _ . : / = + - @.",
                    tag.key
                ),
            ));
        }
    }
    Ok(())
}

/// Applies `added` over `existing` (a key given again takes the new value)
/// and enforces the 50-tag limit. Linear in the input, and the limit is
/// checked before any tag is validated or copied: a request carrying
/// 100,000 tags costs one hash insert per tag up to the 51st distinct key.
pub(crate) fn merge_tags(
    existing: &[ResourceTag],
    added: &[ResourceTag],
) -> EcrResult<Vec<ResourceTag>> {
    let mut position: HashMap<&str, usize> = existing
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect();
    let mut order: Vec<&ResourceTag> = existing.iter().collect();
    for tag in added {
        match position.get(tag.key.as_str()) {
            Some(&at) => order[at] = tag,
            None => {
                if order.len() == MAX_TAGS {
                    return Err(EcrError::new(
                        ErrorKind::TooManyTags,
                        format!(
                            "The repository would have more than {MAX_TAGS} tags; a resource can have at most {MAX_TAGS} tags."
                        ),
                    ));
                }
                position.insert(tag.key.as_str(), order.len());
                order.push(tag);
            }
        }
    }
    check_tags(added)?;
    Ok(order.into_iter().cloned().collect())
}

fn encode_token(last_name: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("repositories:{last_name}"))
}

fn decode_token(token: &str) -> EcrResult<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| s.strip_prefix("repositories:").map(str::to_string))
        .ok_or_else(|| {
            EcrError::invalid_parameter(
                "nextToken",
                "must be a nextToken returned by an earlier call",
            )
        })
}

impl Ecr {
    pub fn create_repository(
        &self,
        scope: &Scope,
        new: NewRepository,
    ) -> EcrResult<RepositoryRecord> {
        let record = self.new_repository_record(scope, new)?;
        let mut tx = self.store.write()?;
        insert_repository_in(&mut *tx, scope, &record)?;
        tx.commit()?;
        Ok(record)
    }

    /// The record CreateRepository would store, once every setting is
    /// checked (no record is read: the name's uniqueness is
    /// [`insert_repository_in`]'s).
    pub(crate) fn new_repository_record(
        &self,
        scope: &Scope,
        new: NewRepository,
    ) -> EcrResult<RepositoryRecord> {
        let name = parse_name(&new.name)?;
        let (tag_mutability, tag_mutability_exclusions) =
            tag_mutability_settings(new.tag_mutability, new.tag_mutability_exclusions)?;
        let encryption_type = new.encryption_type.unwrap_or_else(|| "AES256".to_string());
        let kms_key = match (encryption_type.as_str(), new.kms_key) {
            ("AES256", Some(_)) => {
                return Err(EcrError::invalid_parameter(
                    "encryptionConfiguration.kmsKey",
                    "must not be specified when encryptionType is AES256",
                ))
            }
            ("AES256", None) => None,
            (_, Some(key)) => Some(kms_key_arn(scope, &key)),
            (_, None) => Some(default_kms_key(scope)),
        };
        let tags = merge_tags(&[], &new.tags)?;
        let record = RepositoryRecord {
            name: name.as_str().to_string(),
            created_at_ms: self.clock.now_ms(),
            tag_mutability,
            tag_mutability_exclusions,
            scan_on_push: new.scan_on_push.unwrap_or(false),
            encryption_type,
            kms_key,
            tags,
            lifecycle_policy: None,
            lifecycle_policy_updated_ms: None,
            lifecycle_last_evaluated_ms: None,
        };
        Ok(record)
    }

    /// DescribeRepositories: either the named repositories (all must exist),
    /// or a page of all of them in name order.
    pub fn describe_repositories(
        &self,
        scope: &Scope,
        names: Option<Vec<String>>,
        next_token: Option<String>,
        max_results: Option<usize>,
    ) -> EcrResult<RepositoryPage> {
        let tx = self.store.read()?;
        if let Some(names) = names {
            if max_results.is_some() || next_token.is_some() {
                return Err(EcrError::invalid_parameter(
                    if max_results.is_some() {
                        "maxResults"
                    } else {
                        "nextToken"
                    },
                    "cannot be specified together with repositoryNames",
                ));
            }
            let mut repositories = Vec::with_capacity(names.len());
            for name in names {
                let name = parse_name(&name)?;
                let record = get_repository(&*tx, scope, &name)?;
                if !repositories
                    .iter()
                    .any(|r: &RepositoryRecord| r.name == record.name)
                {
                    repositories.push(record);
                }
            }
            return Ok(RepositoryPage {
                repositories,
                next_token: None,
            });
        }
        let limit = max_results.unwrap_or(DEFAULT_PAGE_SIZE);
        let prefix = scope.key_prefix();
        let start_after = match next_token {
            Some(token) => Some(repository_key(scope, &decode_token(&token)?)),
            None => None,
        };
        // Read one extra entry to learn whether another page exists.
        let entries = tx.scan(
            Table::Repositories,
            &prefix,
            start_after.as_deref(),
            limit + 1,
        )?;
        let more = entries.len() > limit;
        let repositories = entries
            .into_iter()
            .take(limit)
            .map(|(_, bytes)| serde_json::from_slice::<RepositoryRecord>(&bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let next_token = match repositories.last() {
            Some(last) if more => Some(encode_token(&last.name)),
            _ => None,
        };
        Ok(RepositoryPage {
            repositories,
            next_token,
        })
    }

    pub fn delete_repository(
        &self,
        scope: &Scope,
        name: &str,
        force: bool,
    ) -> EcrResult<RepositoryRecord> {
        let name = parse_name(name)?;
        let mut tx = self.store.write()?;
        let record = get_repository(&*tx, scope, &name)?;
        let has_images = self.repository_has_images(&*tx, scope, &name)?;
        if has_images && !force {
            return Err(EcrError::new(
                ErrorKind::RepositoryNotEmpty,
                format!(
                    "The repository with name '{}' in registry with id '{}' cannot be deleted because it still contains images",
                    name, scope.account
                ),
            ));
        }
        self.delete_repository_contents(&mut *tx, scope, &name)?;
        let key = repository_key(scope, name.as_str());
        tx.delete(Table::Repositories, &key)?;
        // The repository's policy (and a public one's catalog data) go with it.
        tx.delete(Table::RepositoryPolicies, &key)?;
        tx.delete(Table::RepositoryCatalogs, &key)?;
        tx.commit()?;
        Ok(record)
    }

    /// Reads, changes and writes back one repository in one transaction.
    fn update_repository(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        change: impl FnOnce(&mut RepositoryRecord) -> EcrResult<()>,
    ) -> EcrResult<RepositoryRecord> {
        let mut tx = self.store.write()?;
        let mut record = get_repository(&*tx, scope, name)?;
        change(&mut record)?;
        save(
            &mut *tx,
            Table::Repositories,
            &repository_key(scope, name.as_str()),
            &record,
        )?;
        tx.commit()?;
        Ok(record)
    }

    pub fn put_image_tag_mutability(
        &self,
        scope: &Scope,
        name: &str,
        mutability: String,
        exclusions: Option<Vec<TagFilter>>,
    ) -> EcrResult<RepositoryRecord> {
        let name = parse_name(name)?;
        let (mutability, exclusions) = tag_mutability_settings(Some(mutability), exclusions)?;
        self.update_repository(scope, &name, |r| {
            r.tag_mutability = mutability;
            r.tag_mutability_exclusions = exclusions;
            Ok(())
        })
    }

    pub fn put_image_scanning_configuration(
        &self,
        scope: &Scope,
        name: &str,
        scan_on_push: bool,
    ) -> EcrResult<RepositoryRecord> {
        let name = parse_name(name)?;
        self.update_repository(scope, &name, |r| {
            r.scan_on_push = scan_on_push;
            Ok(())
        })
    }

    /// Resolves a resource ARN to a repository of the caller's registry.
    /// The repository a resource ARN names: an ECR one in the caller's
    /// region, or, for a caller in the public namespace, an ECR Public one.
    fn repository_for_arn(&self, caller: &Scope, arn: &str) -> EcrResult<(Scope, RepositoryName)> {
        let (scope, name) = if caller.is_public() {
            super::arn::parse_public_repository_arn(arn, "resourceArn")?
        } else {
            parse_repository_arn(arn, "resourceArn")?
        };
        if scope.region != caller.region {
            return Err(EcrError::invalid_parameter(
                "resourceArn",
                &format!("must name a resource in region {}", caller.region),
            ));
        }
        Ok((scope, name))
    }

    pub fn tag_resource(&self, caller: &Scope, arn: &str, tags: Vec<ResourceTag>) -> EcrResult<()> {
        let (scope, name) = self.repository_for_arn(caller, arn)?;
        self.update_repository(&scope, &name, |r| {
            r.tags = merge_tags(&r.tags, &tags)?;
            Ok(())
        })?;
        Ok(())
    }

    pub fn untag_resource(&self, caller: &Scope, arn: &str, keys: Vec<String>) -> EcrResult<()> {
        let (scope, name) = self.repository_for_arn(caller, arn)?;
        self.update_repository(&scope, &name, |r| {
            let keys: HashSet<&str> = keys.iter().map(String::as_str).collect();
            r.tags.retain(|t| !keys.contains(t.key.as_str()));
            Ok(())
        })?;
        Ok(())
    }

    pub fn list_tags_for_resource(&self, caller: &Scope, arn: &str) -> EcrResult<Vec<ResourceTag>> {
        let (scope, name) = self.repository_for_arn(caller, arn)?;
        let tx = self.store.read()?;
        Ok(get_repository(&*tx, &scope, &name)?.tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecr::clock::Clock;
    use crate::ecr::names::{AccountId, Region};
    use crate::store::memory::MemoryStore;
    use std::sync::Arc;

    fn ecr() -> Ecr {
        Ecr::new(
            Arc::new(MemoryStore::new()),
            Arc::new(crate::store::memory_blobs::MemoryBlobStore::new()),
            Arc::new(Clock::default()),
            "localhost:4566".into(),
        )
    }

    fn scope() -> Scope {
        Scope::new(
            AccountId::parse("000000000000").unwrap(),
            Region::parse("us-east-1").unwrap(),
        )
    }

    fn tag(k: &str, v: &str) -> ResourceTag {
        ResourceTag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn create_describe_page_delete() {
        let ecr = ecr();
        for i in 0..5 {
            ecr.create_repository(
                &scope(),
                NewRepository {
                    name: format!("r{i}"),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        let err = ecr
            .create_repository(
                &scope(),
                NewRepository {
                    name: "r1".into(),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::RepositoryAlreadyExists);
        let p1 = ecr
            .describe_repositories(&scope(), None, None, Some(2))
            .unwrap();
        assert_eq!(p1.repositories.len(), 2);
        let p2 = ecr
            .describe_repositories(&scope(), None, p1.next_token, Some(2))
            .unwrap();
        let p3 = ecr
            .describe_repositories(&scope(), None, p2.next_token, Some(2))
            .unwrap();
        assert_eq!(p3.repositories.len(), 1);
        assert!(p3.next_token.is_none());
        let deleted = ecr.delete_repository(&scope(), "r0", false).unwrap();
        assert_eq!(deleted.name, "r0");
        assert_eq!(
            ecr.delete_repository(&scope(), "r0", false)
                .unwrap_err()
                .kind,
            ErrorKind::RepositoryNotFound
        );
    }

    #[test]
    fn tags_merge_and_limit() {
        let merged = merge_tags(&[tag("a", "1")], &[tag("a", "2"), tag("b", "3")]).unwrap();
        assert_eq!(merged, vec![tag("a", "2"), tag("b", "3")]);
        let many: Vec<ResourceTag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert_eq!(
            merge_tags(&[], &many).unwrap_err().kind,
            ErrorKind::TooManyTags
        );
        assert_eq!(
            merge_tags(&[], &[tag("aws:x", "v")]).unwrap_err().kind,
            ErrorKind::InvalidTagParameter
        );
        assert_eq!(
            merge_tags(&[], &[tag("", "v")]).unwrap_err().kind,
            ErrorKind::InvalidTagParameter
        );
    }

    #[test]
    fn exclusion_filters_follow_mutability() {
        let f = vec![TagFilter {
            filter_type: "WILDCARD".into(),
            filter: "latest".into(),
        }];
        assert!(
            tag_mutability_settings(Some("IMMUTABLE_WITH_EXCLUSION".into()), Some(f.clone()))
                .is_ok()
        );
        assert!(tag_mutability_settings(Some("IMMUTABLE_WITH_EXCLUSION".into()), None).is_err());
        assert!(tag_mutability_settings(Some("IMMUTABLE".into()), Some(f)).is_err());
        assert_eq!(tag_mutability_settings(None, None).unwrap().0, "MUTABLE");
    }

    #[test]
    fn default_kms_key_is_stable_per_registry() {
        let a = default_kms_key(&scope());
        assert_eq!(a, default_kms_key(&scope()));
        assert!(a.starts_with("arn:aws:kms:us-east-1:000000000000:key/"));
    }
}

//! Repository creation templates: CreateRepositoryCreationTemplate,
//! DescribeRepositoryCreationTemplates, UpdateRepositoryCreationTemplate,
//! DeleteRepositoryCreationTemplate, and the one place a repository is made
//! from a template (replication into a registry that lacks the repository,
//! and create-on-push).
//!
//! From the ECR User Guide ("Templates to control repositories created
//! during a pull through cache, create on push, or replication action"):
//! a template's prefix is a repository namespace — `prod` applies to every
//! repository whose name begins with `prod/` — or `ROOT`, which applies to
//! every repository no other template matches; the most specific matching
//! prefix wins; a template applies only to the scenarios its `appliedFor`
//! names. A repository created from a template gets its tag mutability
//! (with exclusion filters), encryption, resource tags, repository policy
//! and lifecycle policy. Policy texts are validated exactly as
//! SetRepositoryPolicy and PutLifecyclePolicy validate them.

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use regex::Regex;

use super::access::{Policy as AccessPolicy, PolicyKind};
use super::error::{EcrError, EcrResult, ErrorKind};
use super::lifecycle::Policy as LifecyclePolicy;
use super::names::{RepositoryName, Scope};
use super::policies::invalid as invalid_policy;
use super::records::{RepositoryRecord, ResourceTag, TagFilter, TemplateRecord};
use super::repositories::{
    default_kms_key, get_repository, kms_key_arn, merge_tags, repository_key,
    tag_mutability_settings,
};
use super::{load, save, Ecr};
use crate::store::{Table, WriteTxn};

/// The prefix that matches every repository.
pub const ROOT: &str = "ROOT";
/// The scenarios a template can apply to (the model's `RCTAppliedFor`).
pub const REPLICATION: &str = "REPLICATION";
pub const PULL_THROUGH_CACHE: &str = "PULL_THROUGH_CACHE";
pub const CREATE_ON_PUSH: &str = "CREATE_ON_PUSH";
const APPLIED_FOR: &[&str] = &[REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH];
/// DescribeRepositoryCreationTemplates' page size without `maxResults`.
pub const DEFAULT_PAGE_SIZE: usize = 100;

static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws(-[a-z]+)*:iam::([0-9]{12}):role/[\w+=,.@/-]+$")
        .expect("role ARN pattern compiles")
});

/// The settings of a template, as Create gives them (all) or Update
/// changes them (`None` keeps the current value; for the optional texts
/// and `customRoleArn`, an empty string removes it, as the Terraform
/// provider sends it).
#[derive(Debug, Clone, Default)]
pub struct TemplateSettings {
    pub description: Option<String>,
    /// (encryptionType, kmsKey)
    pub encryption: Option<(String, Option<String>)>,
    pub resource_tags: Option<Vec<ResourceTag>>,
    pub tag_mutability: Option<String>,
    pub tag_mutability_exclusions: Option<Vec<TagFilter>>,
    pub repository_policy: Option<String>,
    pub lifecycle_policy: Option<String>,
    pub applied_for: Option<Vec<String>>,
    pub custom_role_arn: Option<String>,
}

/// A page of templates and the token for the next one.
#[derive(Debug, Clone)]
pub struct TemplatePage {
    pub templates: Vec<TemplateRecord>,
    pub next_token: Option<String>,
}

fn template_key(scope: &Scope, prefix: &str) -> String {
    format!("{}{}", scope.key_prefix(), prefix)
}

fn not_found(scope: &Scope, prefix: &str) -> EcrError {
    EcrError::new(
        ErrorKind::TemplateNotFound,
        format!(
            "The repository creation template with prefix '{prefix}' does not exist in the registry with id '{}'",
            scope.account
        ),
    )
}

/// Whether a template's prefix covers a repository name: `ROOT` covers
/// all; `prod` (or `prod/`) covers `prod/...`.
pub fn prefix_matches(prefix: &str, name: &str) -> bool {
    if prefix == ROOT {
        return true;
    }
    let namespace = prefix.trim_end_matches('/');
    name.strip_prefix(namespace)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// How specific a matching prefix is: `ROOT` least, then by length.
fn specificity(prefix: &str) -> usize {
    if prefix == ROOT {
        0
    } else {
        prefix.trim_end_matches('/').len() + 1
    }
}

fn optional_text(value: String) -> Option<String> {
    if value.is_empty() {
        None
    } else {
        Some(value)
    }
}

/// Checks the settings a template ends up with, in ECR's terms.
fn check(scope: &Scope, t: &TemplateRecord) -> EcrResult<()> {
    if t.applied_for.is_empty() {
        return Err(EcrError::invalid_parameter(
            "appliedFor",
            "Member must contain at least one of [REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH]",
        ));
    }
    if let Some(bad) = t
        .applied_for
        .iter()
        .find(|a| !APPLIED_FOR.contains(&a.as_str()))
    {
        return Err(EcrError::invalid_parameter(
            "appliedFor",
            &format!("'{bad}' is not one of [REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH]"),
        ));
    }
    if t.encryption_type == "AES256" && t.kms_key.is_some() {
        return Err(EcrError::invalid_parameter(
            "encryptionConfiguration.kmsKey",
            "must not be specified when encryptionType is AES256",
        ));
    }
    tag_mutability_settings(
        Some(t.tag_mutability.clone()),
        Some(t.tag_mutability_exclusions.clone()),
    )?;
    merge_tags(&[], &t.resource_tags)?;
    if let Some(text) = &t.repository_policy {
        AccessPolicy::parse(text, PolicyKind::Repository)
            .map_err(|e| invalid_policy("repository", &e.reason))?;
    }
    if let Some(text) = &t.lifecycle_policy {
        LifecyclePolicy::parse(text)?;
    }
    if let Some(arn) = &t.custom_role_arn {
        let account = ROLE_ARN
            .captures(arn)
            .and_then(|c| c.get(2))
            .map(|m| m.as_str());
        match account {
            None => {
                return Err(EcrError::invalid_parameter(
                    "customRoleArn",
                    "must be the ARN of an IAM role",
                ))
            }
            Some(a) if a != scope.account.as_str() => {
                return Err(EcrError::invalid_parameter(
                    "customRoleArn",
                    "must name a role in the same account as the registry",
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Applies `settings` over `base`.
fn apply(mut t: TemplateRecord, s: TemplateSettings) -> TemplateRecord {
    if let Some(d) = s.description {
        t.description = optional_text(d);
    }
    if let Some((kind, key)) = s.encryption {
        t.encryption_type = kind;
        t.kms_key = key.and_then(optional_text);
    }
    if let Some(tags) = s.resource_tags {
        t.resource_tags = tags;
    }
    match (s.tag_mutability, s.tag_mutability_exclusions) {
        (Some(m), filters) => {
            t.tag_mutability = m;
            t.tag_mutability_exclusions = filters.unwrap_or_default();
        }
        (None, Some(filters)) => t.tag_mutability_exclusions = filters,
        (None, None) => {}
    }
    if let Some(p) = s.repository_policy {
        t.repository_policy = optional_text(p);
    }
    if let Some(p) = s.lifecycle_policy {
        t.lifecycle_policy = optional_text(p);
    }
    if let Some(mut a) = s.applied_for {
        let mut seen = Vec::new();
        a.retain(|x| {
            let new = !seen.contains(x);
            seen.push(x.clone());
            new
        });
        t.applied_for = a;
    }
    if let Some(r) = s.custom_role_arn {
        t.custom_role_arn = optional_text(r);
    }
    t
}

fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("templates:{last}"))
}

fn decode_token(token: &str) -> EcrResult<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("templates:").map(str::to_string))
        .ok_or_else(|| {
            EcrError::invalid_parameter(
                "nextToken",
                "must be a nextToken returned by an earlier call",
            )
        })
}

fn now_ms(ecr: &Ecr) -> i64 {
    ecr.clock.now_ms()
}

impl Ecr {
    pub fn create_template(
        &self,
        scope: &Scope,
        prefix: &str,
        settings: TemplateSettings,
    ) -> EcrResult<TemplateRecord> {
        let now = now_ms(self);
        let base = TemplateRecord {
            prefix: prefix.to_string(),
            description: None,
            encryption_type: "AES256".to_string(),
            kms_key: None,
            resource_tags: Vec::new(),
            tag_mutability: "MUTABLE".to_string(),
            tag_mutability_exclusions: Vec::new(),
            repository_policy: None,
            lifecycle_policy: None,
            applied_for: Vec::new(),
            custom_role_arn: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let template = apply(base, settings);
        check(scope, &template)?;
        let key = template_key(scope, prefix);
        let mut tx = self.store.write()?;
        if tx.get(Table::CreationTemplates, &key)?.is_some() {
            return Err(EcrError::new(
                ErrorKind::TemplateAlreadyExists,
                format!(
                    "The repository creation template with prefix '{prefix}' already exists in the registry with id '{}'",
                    scope.account
                ),
            ));
        }
        save(&mut *tx, Table::CreationTemplates, &key, &template)?;
        tx.commit()?;
        Ok(template)
    }

    pub fn update_template(
        &self,
        scope: &Scope,
        prefix: &str,
        settings: TemplateSettings,
    ) -> EcrResult<TemplateRecord> {
        let key = template_key(scope, prefix);
        let mut tx = self.store.write()?;
        let current: TemplateRecord =
            load(&*tx, Table::CreationTemplates, &key)?.ok_or_else(|| not_found(scope, prefix))?;
        let mut template = apply(current, settings);
        check(scope, &template)?;
        template.updated_at_ms = now_ms(self);
        save(&mut *tx, Table::CreationTemplates, &key, &template)?;
        tx.commit()?;
        Ok(template)
    }

    pub fn delete_template(&self, scope: &Scope, prefix: &str) -> EcrResult<TemplateRecord> {
        let key = template_key(scope, prefix);
        let mut tx = self.store.write()?;
        let current: TemplateRecord =
            load(&*tx, Table::CreationTemplates, &key)?.ok_or_else(|| not_found(scope, prefix))?;
        tx.delete(Table::CreationTemplates, &key)?;
        tx.commit()?;
        Ok(current)
    }

    /// DescribeRepositoryCreationTemplates: the named prefixes (those that
    /// exist), or a page of all templates in prefix order.
    pub fn describe_templates(
        &self,
        scope: &Scope,
        prefixes: Option<Vec<String>>,
        next_token: Option<String>,
        max_results: Option<usize>,
    ) -> EcrResult<TemplatePage> {
        let tx = self.store.read()?;
        let limit = max_results.unwrap_or(DEFAULT_PAGE_SIZE);
        let after = next_token.as_deref().map(decode_token).transpose()?;
        if let Some(mut prefixes) = prefixes.filter(|p| !p.is_empty()) {
            prefixes.sort();
            prefixes.dedup();
            let mut templates = Vec::new();
            let mut more = false;
            for prefix in prefixes
                .into_iter()
                .filter(|p| after.as_deref().is_none_or(|a| p.as_str() > a))
            {
                if let Some(t) = load::<TemplateRecord>(
                    &*tx,
                    Table::CreationTemplates,
                    &template_key(scope, &prefix),
                )? {
                    if templates.len() == limit {
                        more = true;
                        break;
                    }
                    templates.push(t);
                }
            }
            let next_token = match templates.last() {
                Some(last) if more => Some(encode_token(&last.prefix)),
                _ => None,
            };
            return Ok(TemplatePage {
                templates,
                next_token,
            });
        }
        let start = after.map(|a| template_key(scope, &a));
        let entries = tx.scan(
            Table::CreationTemplates,
            &scope.key_prefix(),
            start.as_deref(),
            limit + 1,
        )?;
        let more = entries.len() > limit;
        let templates = entries
            .into_iter()
            .take(limit)
            .map(|(_, b)| serde_json::from_slice::<TemplateRecord>(&b))
            .collect::<Result<Vec<_>, _>>()?;
        let next_token = match templates.last() {
            Some(last) if more => Some(encode_token(&last.prefix)),
            _ => None,
        };
        Ok(TemplatePage {
            templates,
            next_token,
        })
    }

    /// The template that applies to creating `name` for `scenario`: of the
    /// templates applied for it whose prefix covers the name, the most
    /// specific.
    pub(crate) fn matching_template(
        &self,
        tx: &(impl crate::store::ReadTxn + ?Sized),
        scope: &Scope,
        name: &str,
        scenario: &str,
    ) -> EcrResult<Option<TemplateRecord>> {
        let mut best: Option<TemplateRecord> = None;
        let mut after: Option<String> = None;
        loop {
            let page = tx.scan(
                Table::CreationTemplates,
                &scope.key_prefix(),
                after.as_deref(),
                1000,
            )?;
            let full = page.len() == 1000;
            after = page.last().map(|(k, _)| k.clone());
            for (_, bytes) in page {
                let t: TemplateRecord = serde_json::from_slice(&bytes)?;
                if !t.applied_for.iter().any(|a| a == scenario) || !prefix_matches(&t.prefix, name)
                {
                    continue;
                }
                if best
                    .as_ref()
                    .is_none_or(|b| specificity(&t.prefix) > specificity(&b.prefix))
                {
                    best = Some(t);
                }
            }
            if !full {
                return Ok(best);
            }
        }
    }

    /// Creates `name` in `scope` inside `tx`, with the settings of
    /// `template` (or ECR's defaults without one): the repository record,
    /// and the repository policy when the template has one.
    pub(crate) fn create_repository_in(
        &self,
        tx: &mut dyn WriteTxn,
        scope: &Scope,
        name: &RepositoryName,
        template: Option<&TemplateRecord>,
    ) -> EcrResult<RepositoryRecord> {
        let now = now_ms(self);
        let mut record = RepositoryRecord {
            name: name.as_str().to_string(),
            created_at_ms: now,
            tag_mutability: "MUTABLE".to_string(),
            tag_mutability_exclusions: Vec::new(),
            scan_on_push: false,
            encryption_type: "AES256".to_string(),
            kms_key: None,
            tags: Vec::new(),
            lifecycle_policy: None,
            lifecycle_policy_updated_ms: None,
            lifecycle_last_evaluated_ms: None,
        };
        let key = repository_key(scope, name.as_str());
        if let Some(t) = template {
            record.tag_mutability = t.tag_mutability.clone();
            record.tag_mutability_exclusions = t.tag_mutability_exclusions.clone();
            record.encryption_type = t.encryption_type.clone();
            record.kms_key = match (t.encryption_type.as_str(), &t.kms_key) {
                ("AES256", _) => None,
                (_, Some(k)) => Some(kms_key_arn(scope, k)),
                (_, None) => Some(default_kms_key(scope)),
            };
            record.tags = t.resource_tags.clone();
            if let Some(policy) = &t.lifecycle_policy {
                record.lifecycle_policy = Some(policy.clone());
                record.lifecycle_policy_updated_ms = Some(now);
            }
            if let Some(policy) = &t.repository_policy {
                tx.put(Table::RepositoryPolicies, &key, policy.as_bytes().to_vec())?;
            }
        }
        save(tx, Table::Repositories, &key, &record)?;
        Ok(record)
    }

    /// The repository a push writes to. A missing one is created from the
    /// registry's matching CREATE_ON_PUSH template when there is one;
    /// otherwise the push fails with RepositoryNotFoundException (NAME_UNKNOWN
    /// on `/v2/`), as without create-on-push.
    pub(crate) fn repository_for_push(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> EcrResult<RepositoryRecord> {
        match self.repository(scope, name) {
            Err(e) if e.kind == ErrorKind::RepositoryNotFound => {
                let mut tx = self.store.write()?;
                if let Ok(existing) = get_repository(&*tx, scope, name) {
                    return Ok(existing);
                }
                let Some(template) =
                    self.matching_template(&*tx, scope, name.as_str(), CREATE_ON_PUSH)?
                else {
                    return Err(e);
                };
                let record = self.create_repository_in(&mut *tx, scope, name, Some(&template))?;
                tx.commit()?;
                tracing::info!(repository = %name, prefix = %template.prefix, "repository created on push");
                Ok(record)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(prefix_matches("ROOT", "anything"));
        assert!(prefix_matches("prod", "prod/api"));
        assert!(prefix_matches("prod/", "prod/api"));
        assert!(prefix_matches("prod/team", "prod/team/api"));
        assert!(!prefix_matches("prod", "production/api"));
        assert!(!prefix_matches("prod", "prod"));
        assert!(specificity("prod/team") > specificity("prod"));
        assert!(specificity("prod") > specificity("ROOT"));
    }
}

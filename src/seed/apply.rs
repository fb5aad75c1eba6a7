//! Applies a parsed seed file: every setting as the ECR API operation that
//! sets it, run in-process (`api::ops::dispatch`, so the API's decoding,
//! constraint checks and domain rules judge it), as the root of the
//! account, in a staging copy of the metadata; then the difference is
//! written to the real store in one transaction (see `seed`).
//!
//! Per region, in this order: account settings, registry policy, registry
//! scanning configuration, replication configuration, repository creation
//! templates, pull-through cache rules, then each repository (created, or
//! brought to its declared settings), its images, its repository policy and
//! its lifecycle policy (the policies last, so a policy denying pushes does
//! not stop the seed's own images).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::schema::{api_tags, PolicyText, RegionSeed, RepositorySeed};
use super::sources::{self, ImageSource, LoadedImage};
use super::{Seed, SeedError};
use crate::api::error::ApiError;
use crate::api::model::Operation;
use crate::api::Ctx;
use crate::auth::credentials::root_arn;
use crate::auth::token::TokenSigner;
use crate::ecr::caller::Caller;
use crate::ecr::error::{EcrError, ErrorKind};
use crate::ecr::names::{AccountId, Region, RepositoryName, Scope};
use crate::ecr::Ecr;
use crate::progress::Progress;
use crate::state::AppState;
use crate::store::memory::MemoryStore;
use crate::store::tables;

/// Blob uploads a seed runs at once (see `Run::upload_missing`).
const UPLOADS_AT_ONCE: usize = 16;

/// What a seed did.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub repositories: usize,
    pub images: usize,
    /// Blobs uploaded (those already in a repository are not sent again).
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
    /// Metadata records written and deleted in the real store (0 when the
    /// seed was already applied).
    pub records_written: usize,
    pub records_deleted: usize,
    pub elapsed: Duration,
}

/// Applies `seed` to the server state `app`.
pub async fn apply(app: &Arc<AppState>, seed: &Seed) -> Result<SeedReport, SeedError> {
    let store_error = |e: crate::store::StoreError| seed.error("", e.to_string());
    let before = tables::dump(&*app.ecr.store).map_err(store_error)?;
    let staging_store = Arc::new(MemoryStore::new());
    tables::load(&*staging_store, &before).map_err(store_error)?;
    let staging = Arc::new(AppState {
        config: app.config.clone(),
        ecr: Arc::new(app.ecr.staging(staging_store.clone())),
        credentials: app.credentials.clone(),
        default_account: app.default_account.clone(),
        tokens: TokenSigner::random(),
        started: app.started,
        api_bodies: app.api_bodies.clone(),
        // The staging state serves no request anyone scrapes.
        metrics: crate::metrics::Metrics::new(app.ecr.clone()),
    });
    let total_images: usize = seed
        .spec
        .accounts
        .iter()
        .flat_map(|a| &a.regions)
        .flat_map(|r| &r.repositories)
        .map(|r| r.images.len())
        .sum();
    let mut run = Run {
        seed,
        app: staging,
        report: SeedReport::default(),
        progress: Progress::new("seed", "images", total_images as u64),
    };
    for (a, account) in seed.spec.accounts.iter().enumerate() {
        let at = format!("accounts[{a}]");
        let id = AccountId::parse(&account.account)
            .map_err(|e| seed.error(&format!("{at}.account"), e))?;
        for (r, region) in account.regions.iter().enumerate() {
            let at = format!("{at}.regions[{r}]");
            let name = Region::parse(&region.region)
                .map_err(|e| seed.error(&format!("{at}.region"), e))?;
            run.region(&Scope::new(id.clone(), name), region, &at)
                .await?;
        }
    }
    let after = tables::dump(&*staging_store).map_err(store_error)?;
    let changes =
        tables::apply_difference(&*app.ecr.store, &before, &after).map_err(store_error)?;
    let Run {
        mut report,
        progress,
        ..
    } = run;
    report.records_written = changes.written;
    report.records_deleted = changes.deleted;
    report.elapsed = progress.finish(&format!(
        "{} repositories, {} images ({} blobs, {} bytes uploaded), {} records written",
        report.repositories,
        report.images,
        report.blobs_uploaded,
        report.bytes_uploaded,
        report.records_written
    ));
    Ok(report)
}

struct Run<'a> {
    seed: &'a Seed,
    app: Arc<AppState>,
    report: SeedReport,
    progress: Progress,
}

/// Maps a field path of an API message (`rules.1.member.scanFrequency`)
/// to the seed file's (`rules[0].scanFrequency`).
fn api_path_to_seed(api: &str) -> String {
    let mut out = String::new();
    let mut parts = api.split('.').peekable();
    while let Some(part) = parts.next() {
        if let Ok(n) = part.parse::<usize>() {
            out.push_str(&format!("[{}]", n.saturating_sub(1)));
            if parts.peek() == Some(&"member") {
                parts.next();
            }
        } else if part == "member" {
            continue;
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// The field an API error message names (`... at 'imageTagMutability' ...`).
fn field_in_message(message: &str) -> Option<String> {
    let start = message.find(" at '")? + 5;
    let end = message[start..].find('\'')?;
    Some(api_path_to_seed(&message[start..start + end]))
}

/// Is every field of `wanted` in `current` with the same value?
fn is_subset(wanted: &Value, current: &Value) -> bool {
    match (wanted, current) {
        (Value::Object(w), Value::Object(c)) => w
            .iter()
            .all(|(k, v)| c.get(k).is_some_and(|cv| is_subset(v, cv))),
        (Value::Array(w), Value::Array(c)) => {
            w.len() == c.len() && w.iter().zip(c).all(|(a, b)| is_subset(a, b))
        }
        (w, c) => w == c,
    }
}

fn root_caller(scope: &Scope) -> Caller {
    Caller {
        account: scope.account.clone(),
        region: scope.region.clone(),
        principal_arn: root_arn(&scope.account),
        user_id: scope.account.to_string(),
        access_key_id: "ecrd-seed".to_string(),
        source_ip: None,
        secure_transport: false,
        tags: Default::default(),
        identity_policy: None,
    }
}

impl Run<'_> {
    fn ecr(&self) -> &Ecr {
        &self.app.ecr
    }

    /// Runs one API operation; the error as the API answers it.
    async fn try_call(&self, scope: &Scope, op: Operation, body: Value) -> Result<Value, ApiError> {
        let ctx = Ctx {
            app: self.app.clone(),
            caller: root_caller(scope),
            action: format!("ecr:{}", op.name()),
            request_id: uuid::Uuid::new_v4().to_string(),
            public: false,
        };
        let bytes =
            serde_json::to_vec(&body).map_err(|e| ApiError::serialization(e.to_string()))?;
        let out = crate::api::ops::dispatch(op, ctx, &bytes).await?;
        Ok(serde_json::from_slice(&out).unwrap_or(Value::Null))
    }

    /// Runs one API operation for the seed entry at `at`; a refusal names
    /// the entry's field the message names, where it can tell, with
    /// `renames` mapping API field names to the seed's.
    async fn call(
        &self,
        scope: &Scope,
        op: Operation,
        body: Value,
        at: &str,
        renames: &[(&str, &str)],
    ) -> Result<Value, SeedError> {
        self.try_call(scope, op, body)
            .await
            .map_err(|e| self.api_error(op, &e, at, renames))
    }

    fn api_error(
        &self,
        op: Operation,
        e: &ApiError,
        at: &str,
        renames: &[(&str, &str)],
    ) -> SeedError {
        let path = match field_in_message(&e.message) {
            Some(field) => {
                // Messages spell some fields capitalised ('PolicyText').
                let lower = field.to_ascii_lowercase();
                let field = renames
                    .iter()
                    .find(|(api, _)| {
                        let api = api.to_ascii_lowercase();
                        lower == api || lower.starts_with(&format!("{api}."))
                    })
                    .map(|(api, ours)| format!("{ours}{}", &field[api.len()..]))
                    .unwrap_or(field);
                let field = field.trim_start_matches('.').to_string();
                if field.is_empty() {
                    at.to_string()
                } else {
                    format!("{at}.{field}")
                }
            }
            None => at.to_string(),
        };
        self.seed.error(
            &path,
            format!("{} refused it: {}: {}", op.name(), e.code, e.message),
        )
    }

    fn domain_error(&self, at: &str, e: EcrError) -> SeedError {
        self.seed
            .error(at, format!("{}: {}", e.kind.code(), e.message))
    }

    async fn region(
        &mut self,
        scope: &Scope,
        region: &RegionSeed,
        at: &str,
    ) -> Result<(), SeedError> {
        for (i, setting) in region.account_settings.iter().enumerate() {
            self.call(
                scope,
                Operation::PutAccountSetting,
                json!({ "name": setting.name, "value": setting.value }),
                &format!("{at}.accountSettings[{i}]"),
                &[],
            )
            .await?;
        }
        if let Some(policy) = &region.registry_policy {
            self.call(
                scope,
                Operation::PutRegistryPolicy,
                json!({ "policyText": policy.text() }),
                &format!("{at}.registryPolicy"),
                &[("policyText", "")],
            )
            .await?;
        }
        if let Some(configuration) = &region.registry_scanning_configuration {
            self.call(
                scope,
                Operation::PutRegistryScanningConfiguration,
                configuration.clone(),
                &format!("{at}.registryScanningConfiguration"),
                &[],
            )
            .await?;
        }
        if let Some(configuration) = &region.replication_configuration {
            self.call(
                scope,
                Operation::PutReplicationConfiguration,
                json!({ "replicationConfiguration": configuration }),
                &format!("{at}.replicationConfiguration"),
                &[("replicationConfiguration", "")],
            )
            .await?;
        }
        for (i, template) in region.repository_creation_templates.iter().enumerate() {
            self.template(
                scope,
                template,
                &format!("{at}.repositoryCreationTemplates[{i}]"),
            )
            .await?;
        }
        for (i, rule) in region.pull_through_cache_rules.iter().enumerate() {
            self.pull_through_cache_rule(scope, rule, &format!("{at}.pullThroughCacheRules[{i}]"))
                .await?;
        }
        for (i, repository) in region.repositories.iter().enumerate() {
            self.repository(scope, repository, &format!("{at}.repositories[{i}]"))
                .await?;
        }
        Ok(())
    }

    /// Creates the template, or updates it when it exists and differs.
    async fn template(
        &self,
        scope: &Scope,
        template: &Map<String, Value>,
        at: &str,
    ) -> Result<(), SeedError> {
        let body = Value::Object(template.clone());
        let prefix = template.get("prefix").cloned().unwrap_or(Value::Null);
        let existing = match self
            .try_call(
                scope,
                Operation::DescribeRepositoryCreationTemplates,
                json!({ "prefixes": [prefix] }),
            )
            .await
        {
            Ok(found) => found["repositoryCreationTemplates"]
                .as_array()
                .and_then(|t| t.first().cloned()),
            Err(_) => None,
        };
        let op = match existing {
            Some(current) if is_subset(&body, &current) => return Ok(()),
            Some(_) => Operation::UpdateRepositoryCreationTemplate,
            None => Operation::CreateRepositoryCreationTemplate,
        };
        self.call(scope, op, body, at, &[]).await?;
        Ok(())
    }

    /// Pull-through cache rules go through the API's
    /// Describe/Create/UpdatePullThroughCacheRule, like every other section,
    /// so a rule the API refuses refuses the seed with the API's answer.
    async fn pull_through_cache_rule(
        &self,
        scope: &Scope,
        rule: &Map<String, Value>,
        at: &str,
    ) -> Result<(), SeedError> {
        let body = Value::Object(rule.clone());
        let prefix = rule
            .get("ecrRepositoryPrefix")
            .cloned()
            .unwrap_or(Value::Null);
        let found = self
            .call(
                scope,
                Operation::DescribePullThroughCacheRules,
                json!({ "ecrRepositoryPrefixes": [prefix] }),
                at,
                &[("ecrRepositoryPrefixes", "ecrRepositoryPrefix")],
            )
            .await;
        let existing = match found {
            Ok(found) => found["pullThroughCacheRules"]
                .as_array()
                .and_then(|r| r.first().cloned()),
            // A rule not there yet is an error of Describe with names.
            Err(e) if e.message.contains("PullThroughCacheRuleNotFoundException") => None,
            Err(e) => return Err(e),
        };
        let op = match existing {
            Some(current) if is_subset(&body, &current) => return Ok(()),
            Some(_) => Operation::UpdatePullThroughCacheRule,
            None => Operation::CreatePullThroughCacheRule,
        };
        self.call(scope, op, body, at, &[]).await?;
        Ok(())
    }

    async fn repository(
        &mut self,
        scope: &Scope,
        repo: &RepositorySeed,
        at: &str,
    ) -> Result<(), SeedError> {
        let renames: &[(&str, &str)] = &[
            ("repositoryName", "name"),
            ("lifecyclePolicyText", ""),
            ("policyText", ""),
        ];
        let name = RepositoryName::parse(&repo.name).map_err(|e| {
            self.seed.error(
                &format!("{at}.name"),
                format!(
                    "InvalidParameterException: {}",
                    EcrError::invalid_parameter("repositoryName", &e.constraint).message
                ),
            )
        })?;
        let tags = repo.tags.as_ref().map(api_tags);
        let exists = match self.ecr().repository(scope, &name) {
            Ok(record) => Some(record),
            Err(e) if e.kind == ErrorKind::RepositoryNotFound => None,
            Err(e) => return Err(self.domain_error(at, e)),
        };
        match exists {
            None => {
                let mut body = Map::new();
                body.insert("repositoryName".into(), json!(repo.name));
                let fields = [
                    ("imageTagMutability", &repo.image_tag_mutability),
                    (
                        "imageTagMutabilityExclusionFilters",
                        &repo.image_tag_mutability_exclusion_filters,
                    ),
                    (
                        "imageScanningConfiguration",
                        &repo.image_scanning_configuration,
                    ),
                    ("encryptionConfiguration", &repo.encryption_configuration),
                    ("tags", &tags),
                ];
                for (key, value) in fields {
                    if let Some(v) = value {
                        body.insert(key.into(), v.clone());
                    }
                }
                self.call(
                    scope,
                    Operation::CreateRepository,
                    Value::Object(body),
                    at,
                    renames,
                )
                .await?;
            }
            Some(record) => {
                // An existing repository is brought to the declared
                // settings; writing a setting it already has changes no
                // record, so a second start leaves the store as it was.
                if repo.image_tag_mutability.is_some()
                    || repo.image_tag_mutability_exclusion_filters.is_some()
                {
                    let mut body = json!({
                        "repositoryName": repo.name,
                        "imageTagMutability": repo.image_tag_mutability.clone().unwrap_or(json!("MUTABLE")),
                    });
                    if let Some(filters) = &repo.image_tag_mutability_exclusion_filters {
                        body["imageTagMutabilityExclusionFilters"] = filters.clone();
                    }
                    self.call(scope, Operation::PutImageTagMutability, body, at, renames)
                        .await?;
                }
                if let Some(scanning) = &repo.image_scanning_configuration {
                    self.call(
                        scope,
                        Operation::PutImageScanningConfiguration,
                        json!({ "repositoryName": repo.name, "imageScanningConfiguration": scanning }),
                        at,
                        renames,
                    )
                    .await?;
                }
                if let Some(encryption) = &repo.encryption_configuration {
                    let wanted = encryption
                        .get("encryptionType")
                        .and_then(Value::as_str)
                        .unwrap_or("AES256");
                    if wanted != record.encryption_type {
                        return Err(self.seed.error(
                            &format!("{at}.encryptionConfiguration"),
                            format!(
                                "the repository '{}' exists with encryptionType {}; ECR does not change a repository's encryption after it is created",
                                repo.name, record.encryption_type
                            ),
                        ));
                    }
                }
                if let Some(tags) = &tags {
                    self.call(
                        scope,
                        Operation::TagResource,
                        json!({
                            "resourceArn": crate::ecr::arn::repository_arn(scope, &name),
                            "tags": tags,
                        }),
                        at,
                        renames,
                    )
                    .await?;
                }
            }
        }
        self.report.repositories += 1;
        let mut loaded = Vec::with_capacity(repo.images.len());
        for (i, image) in repo.images.iter().enumerate() {
            loaded.push(self.load_image(image, &format!("{at}.images[{i}]")).await?);
        }
        self.upload_missing(scope, &name, &loaded, at).await?;
        for (i, (image, loaded)) in repo.images.iter().zip(&loaded).enumerate() {
            self.push_image(scope, &name, image, loaded, &format!("{at}.images[{i}]"))?;
        }
        if let Some(policy) = &repo.repository_policy {
            self.call(
                scope,
                Operation::SetRepositoryPolicy,
                json!({ "repositoryName": repo.name, "policyText": policy.text(), "force": true }),
                &format!("{at}.repositoryPolicy"),
                renames,
            )
            .await?;
        }
        if let Some(policy) = &repo.lifecycle_policy {
            self.lifecycle_policy(scope, repo, policy, &format!("{at}.lifecyclePolicy"))
                .await?;
        }
        Ok(())
    }

    /// PutLifecyclePolicy, unless the repository has this policy already
    /// (putting it again would move its `lastEvaluatedAt`).
    async fn lifecycle_policy(
        &self,
        scope: &Scope,
        repo: &RepositorySeed,
        policy: &PolicyText,
        at: &str,
    ) -> Result<(), SeedError> {
        let text = policy.text();
        let current = self
            .try_call(
                scope,
                Operation::GetLifecyclePolicy,
                json!({ "repositoryName": repo.name }),
            )
            .await
            .ok();
        if current
            .as_ref()
            .and_then(|c| c["lifecyclePolicyText"].as_str())
            == Some(text.as_str())
        {
            return Ok(());
        }
        self.call(
            scope,
            Operation::PutLifecyclePolicy,
            json!({ "repositoryName": repo.name, "lifecyclePolicyText": text }),
            at,
            &[("lifecyclePolicyText", ""), ("repositoryName", "")],
        )
        .await?;
        Ok(())
    }

    /// Reads one image's source (index, manifests, which blobs it needs).
    async fn load_image(
        &self,
        image: &super::schema::ImageSeed,
        at: &str,
    ) -> Result<LoadedImage, SeedError> {
        let source_at = format!("{at}.source");
        let source = ImageSource::parse(&image.source, &self.seed.base_dir())
            .map_err(|e| self.seed.error(&source_at, e))?;
        tokio::task::spawn_blocking(move || sources::load(&source))
            .await
            .map_err(|e| self.seed.error(&source_at, e.to_string()))?
            .map_err(|e| self.seed.error(&source_at, e))
    }

    /// Uploads, as a client's push would (a layer upload each), every blob
    /// of the repository's images that the repository lacks, each once and
    /// `UPLOADS_AT_ONCE` at a time. On disk every stored blob costs two
    /// fsyncs (the file, then its directory); run one after another they
    /// are most of a seed's time, while concurrent ones share the
    /// filesystem's journal commits (about 25x faster here).
    async fn upload_missing(
        &mut self,
        scope: &Scope,
        repo: &RepositoryName,
        loaded: &[LoadedImage],
        at: &str,
    ) -> Result<(), SeedError> {
        use futures_util::stream::{self, StreamExt};
        let source_at = |i: usize| format!("{at}.images[{i}].source");
        let mut wanted: Vec<(usize, &sources::BlobFile)> = Vec::new();
        for (i, image) in loaded.iter().enumerate() {
            for blob in &image.blobs {
                if wanted.iter().any(|(_, b)| b.digest == blob.digest) {
                    continue;
                }
                let present = self
                    .ecr()
                    .layer_size(scope, repo, &blob.digest)
                    .await
                    .map_err(|e| self.domain_error(&source_at(i), e))?;
                if present.is_none() {
                    wanted.push((i, blob));
                }
            }
        }
        let this = &*self;
        let mut results: Vec<(usize, Result<u64, EcrError>)> = stream::iter(wanted)
            .map(|(i, blob)| async move { (i, this.upload(scope, repo, &loaded[i], blob).await) })
            .buffer_unordered(UPLOADS_AT_ONCE)
            .collect()
            .await;
        // The first failing image in file order names the error.
        results.sort_by_key(|(i, _)| *i);
        for (i, result) in results {
            let size = result.map_err(|e| self.domain_error(&source_at(i), e))?;
            self.report.blobs_uploaded += 1;
            self.report.bytes_uploaded += size;
        }
        Ok(())
    }

    /// Pushes one image's manifests (children first), its blobs already
    /// uploaded, and applies its tags.
    fn push_image(
        &mut self,
        scope: &Scope,
        repo: &RepositoryName,
        image: &super::schema::ImageSeed,
        loaded: &LoadedImage,
        at: &str,
    ) -> Result<(), SeedError> {
        let source_at = format!("{at}.source");
        let Some((top, children)) = loaded.manifests.split_last() else {
            return Err(self.seed.error(&source_at, "the source holds no manifest"));
        };
        for child in children {
            self.ecr()
                .put_manifest(
                    scope,
                    repo,
                    None,
                    Some(&child.digest),
                    &child.bytes,
                    Some(&child.media_type),
                )
                .map_err(|e| self.domain_error(&source_at, e))?;
        }
        if image.tags.is_empty() {
            self.ecr()
                .put_manifest(
                    scope,
                    repo,
                    None,
                    Some(&top.digest),
                    &top.bytes,
                    Some(&top.media_type),
                )
                .map_err(|e| self.domain_error(&source_at, e))?;
        }
        for (t, tag) in image.tags.iter().enumerate() {
            self.ecr()
                .put_manifest(
                    scope,
                    repo,
                    Some(tag),
                    Some(&top.digest),
                    &top.bytes,
                    Some(&top.media_type),
                )
                .map_err(|e| self.domain_error(&format!("{at}.tags[{t}]"), e))?;
        }
        self.report.images += 1;
        self.progress.advance(1, &format!("{repo}@{}", top.digest));
        Ok(())
    }

    async fn upload(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        loaded: &LoadedImage,
        blob: &sources::BlobFile,
    ) -> Result<u64, EcrError> {
        let ecr = self.ecr();
        let id = ecr.start_upload(scope, repo).await?;
        let stream = loaded.files.stream(&blob.file).await.map_err(|e| {
            EcrError::new(ErrorKind::Server, format!("cannot read {}: {e}", blob.file))
        })?;
        ecr.append_upload(scope, repo, &id, None, stream).await?;
        ecr.complete_upload(scope, repo, &id, &blob.digest).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_become_seed_paths() {
        assert_eq!(
            api_path_to_seed("rules.1.member.scanFrequency"),
            "rules[0].scanFrequency"
        );
        assert_eq!(api_path_to_seed("imageTagMutability"), "imageTagMutability");
        assert_eq!(
            field_in_message("Value 'X' at 'imageTagMutability' failed to satisfy constraint"),
            Some("imageTagMutability".to_string())
        );
    }

    #[test]
    fn subsets() {
        assert!(is_subset(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!is_subset(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!is_subset(&json!([1]), &json!([1, 2])));
    }
}

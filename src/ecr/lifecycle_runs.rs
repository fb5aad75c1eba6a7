//! Lifecycle policies at work: storing a repository's policy
//! (PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy), previews
//! (StartLifecyclePolicyPreview, GetLifecyclePolicyPreview), applying a
//! policy to a repository's images (on demand and on a timer), and the
//! archive storage class (UpdateImageStorageClass, and what "archived" means
//! for a pull).
//!
//! The rules decide nothing here: `lifecycle::Policy::evaluate` does. This
//! module feeds it the images of a repository and carries out its
//! decisions. A preview and a run call the same [`plan`], so a preview taken
//! at some moment lists exactly what a run at that moment does.
//!
//! Implements the ECR API reference for the operations above and the ECR
//! User Guide's "Lifecycle policies", "Archiving an image" and "Restoring an
//! image" pages, with these choices where they leave room:
//! - every time is ecrd's clock (`Ecr::clock`), so `POST /_ecrd/clock`
//!   ages images;
//! - a preview is computed when it is started, from the repository as it is
//!   then. StartLifecyclePolicyPreview answers `IN_PROGRESS`, and the preview
//!   counts as in progress until the first GetLifecyclePolicyPreview reads it
//!   (which answers `COMPLETE`) or [`PREVIEW_SETTLE_MS`] pass; another Start
//!   meanwhile is LifecyclePolicyPreviewInProgressException;
//! - a restore (`STANDARD` on an `ARCHIVED` image) takes [`RESTORE_DELAY_MS`]
//!   of ecrd's clock: the image is `ACTIVATING` until then and `ACTIVE`
//!   after. The stored record keeps `ACTIVATING` until something writes it;
//!   every reader goes through [`effective_status`] or [`resolve_storage`];
//! - an `ACTIVATING` image is left alone by lifecycle rules (it is in
//!   neither storage class until the restore completes);
//! - image indexes stay in the standard storage class: UpdateImageStorageClass
//!   refuses them and a lifecycle `transition` leaves them where they are;
//! - an image that an index of the repository lists is not expired while
//!   that index stays (it goes in the run that expires the index, or a
//!   later one), so a lifecycle run never breaks a multi-platform image.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::error::{EcrError, EcrResult, ErrorKind};
use super::images::{delete_image_in, image_key, tag_key, Reference};
use super::lifecycle::{Action, ImageFacts, Policy};
use super::manifest::{DOCKER_LIST, OCI_INDEX};
use super::names::{AccountId, Region, RepositoryName, Scope};
use super::records::{ImageRecord, RepositoryRecord};
use super::repositories::{get_repository, parse_name, repository_key};
use super::{load, save, Ecr};
use crate::digest::Digest;
use crate::store::{ReadTxn, Table};

/// How long a restore from archive takes, in ecrd's clock.
pub const RESTORE_DELAY_MS: i64 = 60_000;
/// GetLifecyclePolicyPreview's page size when `maxResults` is absent.
pub const PREVIEW_PAGE_SIZE: usize = 100;
/// How long an unread preview blocks another StartLifecyclePolicyPreview.
pub const PREVIEW_SETTLE_MS: i64 = 60_000;
/// Images read per store scan.
const SCAN_PAGE: usize = 1000;

pub const ACTIVE: &str = "ACTIVE";
pub const ARCHIVED: &str = "ARCHIVED";
pub const ACTIVATING: &str = "ACTIVATING";

fn now_ms(ecr: &Ecr) -> i64 {
    ecr.clock.now_ms()
}

// ------------------------------------------------------------ storage class

/// The image's status at `now_ms`: `ACTIVE`, `ARCHIVED` or `ACTIVATING`.
/// An `ACTIVATING` record whose restore time has passed is `ACTIVE`.
pub fn effective_status(image: &ImageRecord, now_ms: i64) -> &'static str {
    match image.status.as_str() {
        ARCHIVED => ARCHIVED,
        ACTIVATING if image.last_activated_ms.is_some_and(|t| now_ms < t) => ACTIVATING,
        _ => ACTIVE,
    }
}

/// Brings `image.status` to [`effective_status`]; true if it changed (the
/// caller may then save it).
pub fn resolve_storage(image: &mut ImageRecord, now_ms: i64) -> bool {
    let status = effective_status(image, now_ms);
    if image.status == status {
        false
    } else {
        image.status = status.to_string();
        true
    }
}

/// ECR's `lastActivatedAt`: when the latest restore completed, once it has.
pub fn last_activated_at(image: &ImageRecord, now_ms: i64) -> Option<i64> {
    image.last_activated_ms.filter(|&t| t <= now_ms)
}

/// The storage class a lifecycle preview reports for an image.
fn storage_class(status: &str) -> &'static str {
    if status == ACTIVE {
        "STANDARD"
    } else {
        "ARCHIVE"
    }
}

fn is_index(image: &ImageRecord) -> bool {
    image.media_type == OCI_INDEX || image.media_type == DOCKER_LIST
}

/// Fails with ImageArchivedException unless the image can be pulled at
/// `now_ms`, and resolves a finished restore into the record.
pub(crate) fn ensure_pullable(
    image: &mut ImageRecord,
    now_ms: i64,
    scope: &Scope,
    repo: &RepositoryName,
    reference: &Reference,
) -> EcrResult<()> {
    resolve_storage(image, now_ms);
    let id = match reference {
        Reference::Tag(t) => format!("imageTag:'{t}'"),
        Reference::Digest(d) => format!("imageDigest:'{d}'"),
    };
    match image.status.as_str() {
        ARCHIVED => Err(EcrError::new(
            ErrorKind::ImageArchived,
            format!("The image with imageId {{{id}}} in the repository with name '{repo}' in the registry with id '{}' is archived and cannot be pulled. Restore it to the STANDARD storage class with UpdateImageStorageClass first.", scope.account),
        )),
        ACTIVATING => Err(EcrError::new(
            ErrorKind::ImageArchived,
            format!("The image with imageId {{{id}}} in the repository with name '{repo}' in the registry with id '{}' is being restored from the archive and cannot be pulled until the restore completes.", scope.account),
        )),
        _ => Ok(()),
    }
}

// --------------------------------------------------------------- planning

/// One image a policy acts on, as previews and runs report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAction {
    pub image_digest: Digest,
    pub image_tags: Vec<String>,
    pub image_pushed_at_ms: i64,
    /// `EXPIRE` or `TRANSITION`.
    pub action: String,
    /// `ARCHIVE` for a transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_storage_class: Option<String>,
    pub rule_priority: i64,
    /// The storage class the image is in: `STANDARD` or `ARCHIVE`.
    pub storage_class: String,
}

/// What `policy` does to `images` at `now_ms`. The one function both
/// previews and runs call.
pub fn plan(policy: &Policy, images: &[ImageRecord], now_ms: i64) -> Vec<PlannedAction> {
    let considered: Vec<&ImageRecord> = images
        .iter()
        .filter(|i| effective_status(i, now_ms) != ACTIVATING)
        .collect();
    let facts: Vec<ImageFacts> = considered
        .iter()
        .map(|i| ImageFacts {
            digest: i.digest.clone(),
            tags: i.tags.clone(),
            pushed_at_ms: i.pushed_at_ms,
            last_pulled_ms: i.last_pulled_ms,
            archived: effective_status(i, now_ms) == ARCHIVED,
            transitioned_at_ms: i.last_archived_ms,
        })
        .collect();
    let by_digest: HashMap<&Digest, &ImageRecord> =
        considered.iter().map(|i| (&i.digest, *i)).collect();
    let decisions = policy.evaluate(&facts, now_ms);
    let expiring: HashSet<&Digest> = decisions
        .iter()
        .filter(|d| d.action == Action::Expire)
        .map(|d| &d.digest)
        .collect();
    let held = held_by_kept_indexes(images, &expiring);
    decisions
        .into_iter()
        .filter_map(|d| {
            let image = by_digest.get(&d.digest)?;
            if d.action == Action::Transition && is_index(image) {
                return None;
            }
            // An image that a kept index lists is part of that index: it
            // goes when the index does, never before (as BatchDeleteImage
            // refuses with ImageReferencedByManifestList).
            if d.action == Action::Expire && held.contains(&d.digest) {
                return None;
            }
            Some(PlannedAction {
                image_digest: d.digest,
                image_tags: d.tags,
                image_pushed_at_ms: d.pushed_at_ms,
                action: d.action.wire().to_string(),
                target_storage_class: (d.action == Action::Transition)
                    .then(|| "ARCHIVE".to_string()),
                rule_priority: d.rule_priority,
                storage_class: storage_class(effective_status(image, now_ms)).to_string(),
            })
        })
        .collect()
}

/// The images that an index not about to expire lists, directly or
/// through nested indexes.
fn held_by_kept_indexes(images: &[ImageRecord], expiring: &HashSet<&Digest>) -> HashSet<Digest> {
    let by_digest: HashMap<&Digest, &ImageRecord> = images.iter().map(|i| (&i.digest, i)).collect();
    let mut held: HashSet<Digest> = HashSet::new();
    let mut pending: Vec<&Digest> = images
        .iter()
        .filter(|i| !i.children.is_empty() && !expiring.contains(&i.digest))
        .flat_map(|i| i.children.iter())
        .collect();
    while let Some(child) = pending.pop() {
        if !held.insert(child.clone()) {
            continue;
        }
        if let Some(image) = by_digest.get(child) {
            pending.extend(image.children.iter());
        }
    }
    held
}

// ----------------------------------------------------------------- records

/// A repository's lifecycle policy as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecyclePolicyState {
    pub repository: String,
    pub text: String,
    /// The last run, or the time the policy was put if it has not run since.
    pub last_evaluated_ms: Option<i64>,
}

impl LifecyclePolicyState {
    fn of(record: &RepositoryRecord) -> Option<Self> {
        record
            .lifecycle_policy
            .as_ref()
            .map(|text| LifecyclePolicyState {
                repository: record.name.clone(),
                text: text.clone(),
                last_evaluated_ms: record
                    .lifecycle_last_evaluated_ms
                    .or(record.lifecycle_policy_updated_ms),
            })
    }
}

/// The stored preview of a repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PreviewRecord {
    /// Ties the preview to this incarnation of the repository name.
    repository_created_ms: i64,
    policy_text: String,
    started_ms: i64,
    /// Whether GetLifecyclePolicyPreview has answered it once.
    #[serde(default)]
    read: bool,
    /// Whether the policy has a transition rule (the summary then counts
    /// transitions even when there are none).
    #[serde(default)]
    transitions: bool,
    results: Vec<PlannedAction>,
}

impl PreviewRecord {
    fn in_progress(&self, now_ms: i64) -> bool {
        !self.read && now_ms - self.started_ms < PREVIEW_SETTLE_MS
    }
}

/// What GetLifecyclePolicyPreview asks for.
#[derive(Debug, Clone, Default)]
pub struct PreviewQuery {
    /// `(imageDigest, imageTag)` pairs; a result matches when it has every
    /// part given.
    pub image_ids: Option<Vec<(Option<String>, Option<String>)>>,
    pub next_token: Option<String>,
    pub max_results: Option<usize>,
    /// `TAGGED`, `UNTAGGED` or `ANY`.
    pub tag_status: Option<String>,
}

/// One page of a preview.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewPage {
    pub repository: String,
    pub policy_text: String,
    /// Always `COMPLETE`: a preview is computed when started.
    pub status: &'static str,
    pub results: Vec<PlannedAction>,
    pub next_token: Option<String>,
    /// Summary of the whole preview (not only this page).
    pub expiring_count: usize,
    /// Images transitioning to `ARCHIVE`, when the policy transitions.
    pub transitioning_count: Option<usize>,
}

/// What one lifecycle run did to one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedAction {
    pub registry_id: String,
    pub region: String,
    pub repository_name: String,
    #[serde(flatten)]
    pub action: PlannedAction,
}

/// A repository a run could not evaluate, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFailure {
    pub registry_id: String,
    pub region: String,
    pub repository_name: String,
    pub error: String,
}

/// What a lifecycle run over some repositories did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRunReport {
    /// ecrd's clock when the run started, RFC 3339.
    pub evaluated_at: String,
    /// Repositories that have a lifecycle policy and were evaluated.
    pub repositories_evaluated: usize,
    pub actions: Vec<AppliedAction>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<RunFailure>,
}

/// Which repositories a run covers; each part left out matches all.
#[derive(Debug, Clone, Default)]
pub struct LifecycleTarget {
    pub account: Option<AccountId>,
    pub region: Option<Region>,
    pub repository: Option<RepositoryName>,
}

impl LifecycleTarget {
    /// From the operator endpoint's optional `registryId`, `region` and
    /// `repositoryName`.
    pub fn parse(
        registry_id: Option<&str>,
        region: Option<&str>,
        repository: Option<&str>,
    ) -> EcrResult<LifecycleTarget> {
        Ok(LifecycleTarget {
            account: registry_id
                .map(|a| {
                    AccountId::parse(a).map_err(|e| EcrError::invalid_parameter("registryId", &e))
                })
                .transpose()?,
            region: region
                .map(|r| Region::parse(r).map_err(|e| EcrError::invalid_parameter("region", &e)))
                .transpose()?,
            repository: repository.map(parse_name).transpose()?,
        })
    }
}

fn policy_not_found(repo: &RepositoryName, scope: &Scope) -> EcrError {
    EcrError::new(
        ErrorKind::LifecyclePolicyNotFound,
        format!(
            "Lifecycle policy does not exist for the repository with name '{repo}' in the registry with id '{}'",
            scope.account
        ),
    )
}

fn preview_not_found(repo: &RepositoryName, scope: &Scope) -> EcrError {
    EcrError::new(
        ErrorKind::LifecyclePolicyPreviewNotFound,
        format!(
            "Lifecycle policy preview does not exist for the repository with name '{repo}' in the registry with id '{}'",
            scope.account
        ),
    )
}

fn bad_token() -> EcrError {
    EcrError::invalid_parameter(
        "nextToken",
        "must be a nextToken returned by an earlier call",
    )
}

fn encode_token(started_ms: i64, position: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("lifecycle-preview:{started_ms}:{position}"))
}

fn decode_token(token: &str, started_ms: i64) -> EcrResult<usize> {
    let text = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad_token)?;
    let rest = text
        .strip_prefix("lifecycle-preview:")
        .ok_or_else(bad_token)?;
    let (started, position) = rest.split_once(':').ok_or_else(bad_token)?;
    if started.parse::<i64>().ok() != Some(started_ms) {
        // A token of an earlier preview of the repository.
        return Err(bad_token());
    }
    position.parse().map_err(|_| bad_token())
}

fn matches_ids(result: &PlannedAction, ids: &[(Option<String>, Option<String>)]) -> bool {
    ids.iter().any(|(digest, tag)| {
        digest
            .as_deref()
            .is_none_or(|d| result.image_digest.to_string() == d)
            && tag
                .as_deref()
                .is_none_or(|t| result.image_tags.iter().any(|x| x == t))
            && (digest.is_some() || tag.is_some())
    })
}

fn matches_tag_status(result: &PlannedAction, tag_status: Option<&str>) -> bool {
    match tag_status {
        Some("TAGGED") => !result.image_tags.is_empty(),
        Some("UNTAGGED") => result.image_tags.is_empty(),
        _ => true,
    }
}

/// Splits a Repositories key `<account>/<region>/<name>`.
fn parse_repository_key(key: &str) -> Option<(Scope, RepositoryName)> {
    let mut parts = key.splitn(3, '/');
    let account = AccountId::parse(parts.next()?).ok()?;
    let region = Region::parse(parts.next()?).ok()?;
    let name = RepositoryName::parse(parts.next()?).ok()?;
    Some((Scope::new(account, region), name))
}

impl Ecr {
    /// Every image of a repository, in digest order.
    fn repository_images(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
    ) -> EcrResult<Vec<ImageRecord>> {
        let mut images = Vec::new();
        let mut after: Option<Digest> = None;
        loop {
            let page = self.scan_images(scope, repo, after.as_ref(), SCAN_PAGE)?;
            let full = page.len() == SCAN_PAGE;
            after = page.last().map(|i| i.digest.clone());
            images.extend(page);
            if !full {
                return Ok(images);
            }
        }
    }

    // ----------------------------------------------------------- policies

    /// PutLifecyclePolicy: validates and stores the policy text as given.
    pub fn put_lifecycle_policy(
        &self,
        scope: &Scope,
        name: &str,
        text: &str,
    ) -> EcrResult<LifecyclePolicyState> {
        let repo = parse_name(name)?;
        Policy::parse(text)?;
        let now = now_ms(self);
        let mut tx = self.store.write()?;
        let mut record = get_repository(&*tx, scope, &repo)?;
        record.lifecycle_policy = Some(text.to_string());
        record.lifecycle_policy_updated_ms = Some(now);
        record.lifecycle_last_evaluated_ms = None;
        save(
            &mut *tx,
            Table::Repositories,
            &repository_key(scope, repo.as_str()),
            &record,
        )?;
        tx.commit()?;
        LifecyclePolicyState::of(&record).ok_or_else(|| policy_not_found(&repo, scope))
    }

    /// GetLifecyclePolicy.
    pub fn get_lifecycle_policy(
        &self,
        scope: &Scope,
        name: &str,
    ) -> EcrResult<LifecyclePolicyState> {
        let repo = parse_name(name)?;
        let record = self.repository(scope, &repo)?;
        LifecyclePolicyState::of(&record).ok_or_else(|| policy_not_found(&repo, scope))
    }

    /// DeleteLifecyclePolicy: removes the policy and answers what it was.
    pub fn delete_lifecycle_policy(
        &self,
        scope: &Scope,
        name: &str,
    ) -> EcrResult<LifecyclePolicyState> {
        let repo = parse_name(name)?;
        let mut tx = self.store.write()?;
        let mut record = get_repository(&*tx, scope, &repo)?;
        let state =
            LifecyclePolicyState::of(&record).ok_or_else(|| policy_not_found(&repo, scope))?;
        record.lifecycle_policy = None;
        record.lifecycle_policy_updated_ms = None;
        record.lifecycle_last_evaluated_ms = None;
        save(
            &mut *tx,
            Table::Repositories,
            &repository_key(scope, repo.as_str()),
            &record,
        )?;
        tx.commit()?;
        Ok(state)
    }

    // ------------------------------------------------------------ previews

    /// StartLifecyclePolicyPreview: evaluates `text` (or the stored policy)
    /// against the repository now and keeps the result. Answers the policy
    /// text previewed.
    pub fn start_lifecycle_policy_preview(
        &self,
        scope: &Scope,
        name: &str,
        text: Option<&str>,
    ) -> EcrResult<String> {
        let repo = parse_name(name)?;
        let record = self.repository(scope, &repo)?;
        let text = match text {
            Some(t) => t.to_string(),
            None => record
                .lifecycle_policy
                .clone()
                .ok_or_else(|| policy_not_found(&repo, scope))?,
        };
        let policy = Policy::parse(&text)?;
        let now = now_ms(self);
        let images = self.images_for_plan(scope, &repo)?;
        let preview = PreviewRecord {
            repository_created_ms: record.created_at_ms,
            policy_text: text.clone(),
            started_ms: now,
            read: false,
            transitions: policy.rules.iter().any(|r| r.action == Action::Transition),
            results: plan(&policy, &images, now),
        };
        let key = repository_key(scope, repo.as_str());
        let mut tx = self.store.write()?;
        let current = get_repository(&*tx, scope, &repo)?;
        if current.created_at_ms != record.created_at_ms {
            // Deleted and created again while the images were read.
            return Err(EcrError::repository_not_found(
                repo.as_str(),
                scope.account.as_str(),
            ));
        }
        let existing: Option<PreviewRecord> = load(&*tx, Table::LifecyclePreviews, &key)?;
        if existing
            .filter(|p| p.repository_created_ms == current.created_at_ms)
            .is_some_and(|p| p.in_progress(now))
        {
            return Err(EcrError::new(
                ErrorKind::LifecyclePolicyPreviewInProgress,
                format!("The previous lifecycle policy preview request has not completed for the repository with name '{repo}' in the registry with id '{}'. Wait and try again.", scope.account),
            ));
        }
        save(&mut *tx, Table::LifecyclePreviews, &key, &preview)?;
        tx.commit()?;
        Ok(text)
    }

    /// GetLifecyclePolicyPreview: a page of the latest preview's results.
    pub fn get_lifecycle_policy_preview(
        &self,
        scope: &Scope,
        name: &str,
        query: PreviewQuery,
    ) -> EcrResult<PreviewPage> {
        let repo = parse_name(name)?;
        if query.image_ids.is_some() && (query.max_results.is_some() || query.next_token.is_some())
        {
            return Err(EcrError::invalid_parameter(
                if query.max_results.is_some() {
                    "maxResults"
                } else {
                    "nextToken"
                },
                "cannot be specified together with imageIds",
            ));
        }
        let key = repository_key(scope, repo.as_str());
        let mut tx = self.store.write()?;
        let record = get_repository(&*tx, scope, &repo)?;
        let mut preview: PreviewRecord =
            load::<PreviewRecord>(&*tx, Table::LifecyclePreviews, &key)?
                .filter(|p| p.repository_created_ms == record.created_at_ms)
                .ok_or_else(|| preview_not_found(&repo, scope))?;
        let start = match &query.next_token {
            Some(token) => decode_token(token, preview.started_ms)?,
            None => 0,
        };
        let limit = match &query.image_ids {
            Some(_) => usize::MAX,
            None => query.max_results.unwrap_or(PREVIEW_PAGE_SIZE).max(1),
        };
        let mut matching = preview
            .results
            .iter()
            .enumerate()
            .skip(start)
            .filter(|(_, r)| matches_tag_status(r, query.tag_status.as_deref()))
            .filter(|(_, r)| {
                query
                    .image_ids
                    .as_deref()
                    .is_none_or(|ids| matches_ids(r, ids))
            });
        let results: Vec<PlannedAction> = matching
            .by_ref()
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect();
        let next_token = matching
            .next()
            .map(|(position, _)| encode_token(preview.started_ms, position));
        let expiring_count = preview
            .results
            .iter()
            .filter(|r| r.action == Action::Expire.wire())
            .count();
        let transitioned = preview.results.len() - expiring_count;
        let transitioning_count = (preview.transitions || transitioned > 0).then_some(transitioned);
        if !preview.read {
            preview.read = true;
            save(&mut *tx, Table::LifecyclePreviews, &key, &preview)?;
            tx.commit()?;
        }
        Ok(PreviewPage {
            repository: record.name,
            policy_text: preview.policy_text,
            status: "COMPLETE",
            results,
            next_token,
            expiring_count,
            transitioning_count,
        })
    }

    // ---------------------------------------------------------------- runs

    /// Applies the repository's lifecycle policy at ecrd's clock now:
    /// expired images are deleted (with their tags), transitioned ones
    /// archived. `None` when the repository has no policy.
    ///
    /// The images are read first and the decisions carried out in one write
    /// transaction afterwards; an image that changed in between (deleted,
    /// retagged, pulled, restored) is left for the next run.
    pub fn apply_lifecycle_policy(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
    ) -> EcrResult<Option<Vec<PlannedAction>>> {
        let record = self.repository(scope, repo)?;
        let Some(text) = record.lifecycle_policy.clone() else {
            return Ok(None);
        };
        let policy = Policy::parse(&text)?;
        let now = now_ms(self);
        let images = self.repository_images(scope, repo)?;
        let planned = plan(&policy, &images, now);
        let snapshot: HashMap<&Digest, &ImageRecord> =
            images.iter().map(|i| (&i.digest, i)).collect();

        let mut tx = self.store.write()?;
        let mut current = get_repository(&*tx, scope, repo)?;
        if current.created_at_ms != record.created_at_ms
            || current.lifecycle_policy.as_deref() != Some(text.as_str())
        {
            // The policy changed while the images were read; the next run
            // evaluates the new one.
            return Ok(Some(Vec::new()));
        }
        let unchanged = |tx: &dyn ReadTxn, digest: &Digest| -> EcrResult<Option<ImageRecord>> {
            let stored: Option<ImageRecord> =
                load(tx, Table::Images, &image_key(scope, repo.as_str(), digest))?;
            Ok(stored.filter(|s| snapshot.get(digest).is_some_and(|seen| *seen == s)))
        };
        // An index pushed since the snapshot may list an image planned to
        // expire: read in this transaction, it keeps that image.
        let expiring: HashSet<Digest> = planned
            .iter()
            .filter(|a| a.action == Action::Expire.wire())
            .map(|a| a.image_digest.clone())
            .collect();
        let listed = self.indexes_listing(&*tx, scope, repo, &expiring)?;
        let mut applied = Vec::with_capacity(planned.len());
        for action in planned {
            let Some(mut image) = unchanged(&*tx, &action.image_digest)? else {
                continue;
            };
            if action.action == Action::Expire.wire() {
                if listed.contains_key(&action.image_digest) {
                    continue;
                }
                if delete_image_in(&mut *tx, scope, repo, &action.image_digest)?.is_none() {
                    continue;
                }
            } else {
                image.status = ARCHIVED.to_string();
                image.last_archived_ms = Some(now);
                save(
                    &mut *tx,
                    Table::Images,
                    &image_key(scope, repo.as_str(), &image.digest),
                    &image,
                )?;
            }
            applied.push(action);
        }
        // Write finished restores back, so the stored status catches up.
        for image in &images {
            if effective_status(image, now) != image.status {
                if let Some(mut stored) = unchanged(&*tx, &image.digest)? {
                    resolve_storage(&mut stored, now);
                    save(
                        &mut *tx,
                        Table::Images,
                        &image_key(scope, repo.as_str(), &stored.digest),
                        &stored,
                    )?;
                }
            }
        }
        current.lifecycle_last_evaluated_ms = Some(now);
        save(
            &mut *tx,
            Table::Repositories,
            &repository_key(scope, repo.as_str()),
            &current,
        )?;
        tx.commit()?;
        if !applied.is_empty() {
            tracing::info!(
                account = %scope.account,
                region = %scope.region,
                repository = %repo,
                expired = applied.iter().filter(|a| a.action == Action::Expire.wire()).count(),
                transitioned = applied.iter().filter(|a| a.action == Action::Transition.wire()).count(),
                "lifecycle policy applied"
            );
        }
        Ok(Some(applied))
    }

    /// Applies the lifecycle policies of every repository `target` covers.
    /// A repository named with its registry must exist; otherwise a
    /// repository that fails is reported and the run goes on.
    pub fn run_lifecycle(&self, target: &LifecycleTarget) -> EcrResult<LifecycleRunReport> {
        let started_ms = self.clock.now_ms();
        let result = self.apply_lifecycle_policies(target);
        let (outcome, failed) = match &result {
            Ok(report) => (
                format!(
                    "{} repositories evaluated, {} actions, {} failures",
                    report.repositories_evaluated,
                    report.actions.len(),
                    report.failures.len()
                ),
                !report.failures.is_empty(),
            ),
            Err(e) => (e.to_string(), true),
        };
        self.record_task_run("lifecycle", started_ms, outcome, failed);
        result
    }

    fn apply_lifecycle_policies(&self, target: &LifecycleTarget) -> EcrResult<LifecycleRunReport> {
        let evaluated_at = self
            .clock
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let repositories: Vec<(Scope, RepositoryName)> =
            match (&target.account, &target.region, &target.repository) {
                (Some(account), Some(region), Some(name)) => {
                    let scope = Scope::new(account.clone(), region.clone());
                    self.repository(&scope, name)?;
                    vec![(scope, name.clone())]
                }
                _ => {
                    let found = self.repositories_with_policies(target)?;
                    if let (Some(name), true) = (&target.repository, found.is_empty()) {
                        if !self.repository_exists_anywhere(target)? {
                            return Err(EcrError::repository_not_found(
                                name.as_str(),
                                target
                                    .account
                                    .as_ref()
                                    .map(|a| a.as_str())
                                    .unwrap_or("(any)"),
                            ));
                        }
                    }
                    found
                }
            };
        let single =
            target.account.is_some() && target.region.is_some() && target.repository.is_some();
        let mut report = LifecycleRunReport {
            evaluated_at,
            repositories_evaluated: 0,
            actions: Vec::new(),
            failures: Vec::new(),
        };
        for (scope, name) in repositories {
            match self.apply_lifecycle_policy(&scope, &name) {
                Ok(None) => {}
                Ok(Some(actions)) => {
                    report.repositories_evaluated += 1;
                    report
                        .actions
                        .extend(actions.into_iter().map(|action| AppliedAction {
                            registry_id: scope.account.to_string(),
                            region: scope.region.to_string(),
                            repository_name: name.to_string(),
                            action,
                        }));
                }
                // Deleted since it was listed.
                Err(e) if e.kind == ErrorKind::RepositoryNotFound && !single => {}
                Err(e) if single => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, repository = %name, "lifecycle run failed");
                    report.failures.push(RunFailure {
                        registry_id: scope.account.to_string(),
                        region: scope.region.to_string(),
                        repository_name: name.to_string(),
                        error: e.to_string(),
                    });
                }
            }
        }
        Ok(report)
    }

    /// The repositories `target` covers, those with a policy only.
    fn repositories_with_policies(
        &self,
        target: &LifecycleTarget,
    ) -> EcrResult<Vec<(Scope, RepositoryName)>> {
        let mut out = Vec::new();
        self.each_repository(target, |scope, name, record| {
            if record.lifecycle_policy.is_some() {
                out.push((scope, name));
            }
        })?;
        Ok(out)
    }

    fn repository_exists_anywhere(&self, target: &LifecycleTarget) -> EcrResult<bool> {
        let mut any = false;
        self.each_repository(target, |_, _, _| any = true)?;
        Ok(any)
    }

    /// Calls `f` for every repository `target` covers, in key order.
    fn each_repository(
        &self,
        target: &LifecycleTarget,
        mut f: impl FnMut(Scope, RepositoryName, RepositoryRecord),
    ) -> EcrResult<()> {
        let prefix = match (&target.account, &target.region) {
            (Some(a), Some(r)) => format!("{a}/{r}/"),
            (Some(a), None) => format!("{a}/"),
            _ => String::new(),
        };
        let mut after: Option<String> = None;
        loop {
            let page = {
                let tx = self.store.read()?;
                tx.scan(Table::Repositories, &prefix, after.as_deref(), SCAN_PAGE)?
            };
            let full = page.len() == SCAN_PAGE;
            after = page.last().map(|(k, _)| k.clone());
            for (key, bytes) in page {
                let Some((scope, name)) = parse_repository_key(&key) else {
                    continue;
                };
                if target.region.as_ref().is_some_and(|r| *r != scope.region)
                    || target.account.as_ref().is_some_and(|a| *a != scope.account)
                    || target.repository.as_ref().is_some_and(|n| *n != name)
                {
                    continue;
                }
                let record: RepositoryRecord = serde_json::from_slice(&bytes)?;
                f(scope, name, record);
            }
            if !full {
                return Ok(());
            }
        }
    }

    // ------------------------------------------------------- storage class

    /// UpdateImageStorageClass. `ARCHIVE` moves an `ACTIVE` image to
    /// `ARCHIVED`; `STANDARD` starts restoring an `ARCHIVED` image
    /// (`ACTIVATING`, then `ACTIVE` after [`RESTORE_DELAY_MS`]). Any other
    /// move, and any move of an image index, is
    /// ImageStorageClassUpdateNotSupportedException. Answers the image as it
    /// now is.
    pub fn update_image_storage_class(
        &self,
        scope: &Scope,
        name: &str,
        digest: Option<&str>,
        tag: Option<&str>,
        target: &str,
    ) -> EcrResult<ImageRecord> {
        let repo = parse_name(name)?;
        let digest =
            match digest {
                Some(d) => Some(Digest::parse(d).map_err(|e| {
                    EcrError::invalid_parameter("imageId.imageDigest", &e.to_string())
                })?),
                None => None,
            };
        if digest.is_none() && tag.is_none() {
            return Err(EcrError::invalid_parameter(
                "imageId",
                "must specify an imageDigest or an imageTag",
            ));
        }
        let described = match (&digest, tag) {
            (Some(d), Some(t)) => format!("imageDigest:'{d}', imageTag:'{t}'"),
            (Some(d), None) => format!("imageDigest:'{d}'"),
            (None, Some(t)) => format!("imageTag:'{t}'"),
            (None, None) => String::new(),
        };
        let not_found = || {
            EcrError::new(
                ErrorKind::ImageNotFound,
                format!("The image with imageId {{{described}}} does not exist within the repository with name '{repo}' in the registry with id '{}'", scope.account),
            )
        };
        let not_supported = |why: &str| {
            EcrError::new(
                ErrorKind::ImageStorageClassUpdateNotSupported,
                format!("The image with imageId {{{described}}} in the repository with name '{repo}' in the registry with id '{}' cannot be moved to the {target} storage class: {why}.", scope.account),
            )
        };
        let now = now_ms(self);
        let mut tx = self.store.write()?;
        get_repository(&*tx, scope, &repo)?;
        let by_tag: Option<Digest> = match tag {
            Some(t) => Some(
                load::<Digest>(&*tx, Table::Tags, &tag_key(scope, repo.as_str(), t))?
                    .ok_or_else(not_found)?,
            ),
            None => None,
        };
        let resolved = match (digest, by_tag) {
            (Some(d), Some(t)) if d != t => return Err(not_found()),
            (Some(d), _) | (None, Some(d)) => d,
            (None, None) => return Err(not_found()),
        };
        let key = image_key(scope, repo.as_str(), &resolved);
        let mut image: ImageRecord = load(&*tx, Table::Images, &key)?.ok_or_else(not_found)?;
        if is_index(&image) {
            return Err(not_supported(
                "an image index stays in the STANDARD storage class",
            ));
        }
        resolve_storage(&mut image, now);
        match (target, image.status.as_str()) {
            ("ARCHIVE", ACTIVE) => {
                image.status = ARCHIVED.to_string();
                image.last_archived_ms = Some(now);
            }
            ("STANDARD", ARCHIVED) => {
                image.status = ACTIVATING.to_string();
                image.last_activated_ms = Some(now + RESTORE_DELAY_MS);
            }
            ("ARCHIVE", ARCHIVED) => return Err(not_supported("the image is already archived")),
            ("ARCHIVE", _) => {
                return Err(not_supported(
                    "the image is being restored from the archive",
                ))
            }
            ("STANDARD", ACTIVE) => {
                return Err(not_supported(
                    "the image is already in the STANDARD storage class",
                ))
            }
            ("STANDARD", _) => {
                return Err(not_supported(
                    "the image is already being restored from the archive",
                ))
            }
            _ => {
                return Err(EcrError::invalid_parameter(
                    "targetStorageClass",
                    "Member must satisfy enum value set: [STANDARD, ARCHIVE]",
                ))
            }
        }
        save(&mut *tx, Table::Images, &key, &image)?;
        tx.commit()?;
        Ok(image)
    }
}

/// Runs every repository's lifecycle policy each `every`, until the task is
/// dropped. The first run is one interval after the start. A run that fails
/// or panics is logged and the next interval runs again
/// (`background::repeat`).
pub async fn run_periodically(ecr: Arc<Ecr>, every: Duration) {
    super::background::repeat(
        every,
        "lifecycle",
        move || {
            let ecr = ecr.clone();
            async move {
                let run = {
                    let ecr = ecr.clone();
                    async move {
                        // Off the async workers: a run reads every repository.
                        match tokio::task::spawn_blocking(move || {
                            ecr.run_lifecycle(&LifecycleTarget::default())
                        })
                        .await
                        {
                            Ok(result) => result,
                            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                            Err(e) => Err(EcrError::new(ErrorKind::Server, e.to_string())),
                        }
                    }
                };
                super::background::if_leading(&ecr, crate::store::fleet::FleetTask::Lifecycle, run)
                    .await
            }
        },
        |report: Option<LifecycleRunReport>| {
            let Some(report) = report else { return };
            tracing::debug!(
                repositories = report.repositories_evaluated,
                actions = report.actions.len(),
                "lifecycle policies evaluated"
            )
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ecr::clock::Clock;
    use crate::ecr::repositories::NewRepository;
    use crate::store::memory::MemoryStore;
    use crate::store::memory_blobs::MemoryBlobStore;

    const DAY: i64 = 86_400_000;

    fn ecr() -> Ecr {
        Ecr::new(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryBlobStore::new()),
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

    fn record(n: u8, tags: &[&str], pushed_ms: i64) -> ImageRecord {
        ImageRecord {
            digest: Digest::sha256_of(&[n]),
            manifest: "{}".into(),
            media_type: crate::ecr::manifest::OCI_MANIFEST.into(),
            artifact_type: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            size_in_bytes: 1,
            pushed_at_ms: pushed_ms,
            last_pulled_ms: None,
            subject: None,
            children: Vec::new(),
            blobs: Vec::new(),
            status: ACTIVE.into(),
            last_archived_ms: None,
            last_activated_ms: None,
        }
    }

    /// Stores images (and their tags) straight into the metadata store.
    fn store(ecr: &Ecr, repo: &str, images: &[ImageRecord]) {
        let mut tx = ecr.store.write().unwrap();
        for image in images {
            save(
                &mut *tx,
                Table::Images,
                &image_key(&scope(), repo, &image.digest),
                image,
            )
            .unwrap();
            for tag in &image.tags {
                save(
                    &mut *tx,
                    Table::Tags,
                    &tag_key(&scope(), repo, tag),
                    &image.digest,
                )
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }

    fn repo(ecr: &Ecr, name: &str) -> RepositoryName {
        ecr.create_repository(
            &scope(),
            NewRepository {
                name: name.into(),
                ..Default::default()
            },
        )
        .unwrap();
        RepositoryName::parse(name).unwrap()
    }

    const UNTAGGED_30_DAYS: &str = r#"{"rules":[{"rulePriority":1,"description":"old untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}"#;

    #[test]
    fn statuses_resolve_with_the_clock() {
        let mut image = record(1, &[], 0);
        image.status = ACTIVATING.into();
        image.last_activated_ms = Some(1000);
        assert_eq!(effective_status(&image, 999), ACTIVATING);
        assert_eq!(last_activated_at(&image, 999), None);
        assert_eq!(effective_status(&image, 1000), ACTIVE);
        assert_eq!(last_activated_at(&image, 1000), Some(1000));
        assert!(resolve_storage(&mut image, 1000));
        assert_eq!(image.status, ACTIVE);
        assert!(!resolve_storage(&mut image, 2000));
        image.status = ARCHIVED.into();
        assert_eq!(effective_status(&image, i64::MAX), ARCHIVED);
    }

    #[test]
    fn plan_skips_restoring_images_and_archiving_indexes() {
        let now = 100 * DAY;
        let mut restoring = record(1, &[], 0);
        restoring.status = ACTIVATING.into();
        restoring.last_activated_ms = Some(now + 1);
        let mut index = record(2, &[], 0);
        index.media_type = OCI_INDEX.into();
        let plain = record(3, &[], 0);
        let images = [restoring, index, plain.clone()];
        let archive = Policy::parse(r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"transition","targetStorageClass":"archive"}}]}"#).unwrap();
        let planned = plan(&archive, &images, now);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].image_digest, plain.digest);
        assert_eq!(planned[0].action, "TRANSITION");
        assert_eq!(planned[0].target_storage_class.as_deref(), Some("ARCHIVE"));
        assert_eq!(planned[0].storage_class, "STANDARD");
        let expire = Policy::parse(UNTAGGED_30_DAYS).unwrap();
        assert_eq!(plan(&expire, &images, now).len(), 2);
    }

    #[test]
    fn policy_crud_and_errors() {
        let ecr = ecr();
        let r = repo(&ecr, "app");
        let err = ecr.get_lifecycle_policy(&scope(), "app").unwrap_err();
        assert_eq!(err.kind, ErrorKind::LifecyclePolicyNotFound);
        assert_eq!(
            err.message,
            "Lifecycle policy does not exist for the repository with name 'app' in the registry with id '000000000000'"
        );
        assert_eq!(
            ecr.put_lifecycle_policy(&scope(), "nope", UNTAGGED_30_DAYS)
                .unwrap_err()
                .kind,
            ErrorKind::RepositoryNotFound
        );
        assert_eq!(
            ecr.put_lifecycle_policy(&scope(), "app", "{}")
                .unwrap_err()
                .kind,
            ErrorKind::InvalidParameter
        );
        let put = ecr
            .put_lifecycle_policy(&scope(), "app", UNTAGGED_30_DAYS)
            .unwrap();
        assert_eq!(put.text, UNTAGGED_30_DAYS);
        let got = ecr.get_lifecycle_policy(&scope(), r.as_str()).unwrap();
        assert_eq!(got, put);
        assert!(got.last_evaluated_ms.is_some());
        let deleted = ecr.delete_lifecycle_policy(&scope(), "app").unwrap();
        assert_eq!(deleted.text, UNTAGGED_30_DAYS);
        assert_eq!(
            ecr.delete_lifecycle_policy(&scope(), "app")
                .unwrap_err()
                .kind,
            ErrorKind::LifecyclePolicyNotFound
        );
    }

    #[test]
    fn preview_and_run_agree() {
        let ecr = ecr();
        let r = repo(&ecr, "app");
        let now = now_ms(&ecr);
        let images: Vec<ImageRecord> = (0..5u8)
            .map(|n| {
                record(
                    n,
                    if n == 0 { &["v0"] } else { &[] },
                    now - (40 - i64::from(n)) * DAY,
                )
            })
            .chain([record(9, &[], now)])
            .collect();
        store(&ecr, "app", &images);
        assert_eq!(
            ecr.start_lifecycle_policy_preview(&scope(), "app", None)
                .unwrap_err()
                .kind,
            ErrorKind::LifecyclePolicyNotFound
        );
        assert_eq!(
            ecr.get_lifecycle_policy_preview(&scope(), "app", PreviewQuery::default())
                .unwrap_err()
                .kind,
            ErrorKind::LifecyclePolicyPreviewNotFound
        );
        ecr.put_lifecycle_policy(&scope(), "app", UNTAGGED_30_DAYS)
            .unwrap();
        ecr.start_lifecycle_policy_preview(&scope(), "app", None)
            .unwrap();
        assert_eq!(
            ecr.start_lifecycle_policy_preview(&scope(), "app", None)
                .unwrap_err()
                .kind,
            ErrorKind::LifecyclePolicyPreviewInProgress
        );
        let first = ecr
            .get_lifecycle_policy_preview(
                &scope(),
                "app",
                PreviewQuery {
                    max_results: Some(3),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(first.results.len(), 3);
        assert_eq!(first.expiring_count, 4);
        assert_eq!(first.transitioning_count, None);
        let second = ecr
            .get_lifecycle_policy_preview(
                &scope(),
                "app",
                PreviewQuery {
                    max_results: Some(3),
                    next_token: first.next_token.clone(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(second.results.len(), 1);
        assert!(second.next_token.is_none());
        let previewed: Vec<Digest> = first
            .results
            .iter()
            .chain(&second.results)
            .map(|p| p.image_digest.clone())
            .collect();

        let report = ecr.run_lifecycle(&LifecycleTarget::default()).unwrap();
        assert_eq!(report.repositories_evaluated, 1);
        let ran: Vec<Digest> = report
            .actions
            .iter()
            .map(|a| a.action.image_digest.clone())
            .collect();
        assert_eq!(ran, previewed);
        let left: Vec<Digest> = ecr
            .scan_images(&scope(), &r, None, 100)
            .unwrap()
            .into_iter()
            .map(|i| i.digest)
            .collect();
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|d| !previewed.contains(d)));
        // Read once: a new preview may start.
        ecr.start_lifecycle_policy_preview(&scope(), "app", None)
            .unwrap();
    }

    #[test]
    fn storage_class_moves() {
        let ecr = ecr();
        let r = repo(&ecr, "app");
        let image = record(1, &["v1"], now_ms(&ecr));
        let mut index = record(2, &["multi"], now_ms(&ecr));
        index.media_type = DOCKER_LIST.into();
        store(&ecr, "app", &[image.clone(), index]);
        let kind = |target: &str, tag: &str| {
            ecr.update_image_storage_class(&scope(), "app", None, Some(tag), target)
                .unwrap_err()
                .kind
        };
        assert_eq!(
            kind("STANDARD", "v1"),
            ErrorKind::ImageStorageClassUpdateNotSupported
        );
        assert_eq!(
            kind("ARCHIVE", "multi"),
            ErrorKind::ImageStorageClassUpdateNotSupported
        );
        assert_eq!(kind("ARCHIVE", "v9"), ErrorKind::ImageNotFound);
        let archived = ecr
            .update_image_storage_class(
                &scope(),
                "app",
                Some(&image.digest.to_string()),
                None,
                "ARCHIVE",
            )
            .unwrap();
        assert_eq!(archived.status, ARCHIVED);
        assert_eq!(
            kind("ARCHIVE", "v1"),
            ErrorKind::ImageStorageClassUpdateNotSupported
        );
        let pull = |ecr: &Ecr| {
            ecr.get_image(
                &scope(),
                &r,
                &Reference::Tag("v1".into()),
                Some("arn:aws:iam::000000000000:root"),
            )
        };
        assert_eq!(pull(&ecr).unwrap_err().kind, ErrorKind::ImageArchived);
        let restoring = ecr
            .update_image_storage_class(&scope(), "app", None, Some("v1"), "STANDARD")
            .unwrap();
        assert_eq!(restoring.status, ACTIVATING);
        assert_eq!(
            kind("STANDARD", "v1"),
            ErrorKind::ImageStorageClassUpdateNotSupported
        );
        assert_eq!(pull(&ecr).unwrap_err().kind, ErrorKind::ImageArchived);
        ecr.clock
            .advance(time::Duration::milliseconds(RESTORE_DELAY_MS + 1));
        let pulled = pull(&ecr).unwrap();
        assert_eq!(pulled.status, ACTIVE);
        assert!(pulled.last_pulled_ms.is_some());
    }
}

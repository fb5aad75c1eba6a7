//! Private image replication: the registry's replication configuration
//! (PutReplicationConfiguration; DescribeRegistry shows it), the durable
//! queue a push feeds, the worker that copies queued images to their
//! destination registries, and DescribeImageReplicationStatus.
//!
//! As the ECR User Guide ("Private image replication") describes it:
//! - only images pushed after the configuration exists are replicated;
//!   deletions and lifecycle actions are not; a replicated image is not
//!   replicated again from its destination (no chaining);
//! - a rule's repository filters are `PREFIX_MATCH` on the repository name;
//!   a rule without filters matches every repository;
//! - a missing destination repository is created, with the settings of the
//!   destination registry's matching REPLICATION creation template, or
//!   ECR's defaults;
//! - cross-account destinations need the destination's registry policy to
//!   allow the source account `ecr:ReplicateImage`, and `ecr:CreateRepository`
//!   when the repository does not exist there yet.
//!
//! Durability: a push writes its job into [`Table::ReplicationQueue`] in the
//! same transaction as the image, so a restart finishes what was
//! acknowledged. A job is removed only with its outcome recorded; running
//! one again is harmless (a manifest put again changes nothing). Blobs are
//! content-addressed and shared by every registry of the process, so a copy
//! links the layers into the destination repository and puts the manifest
//! byte for byte; no layer bytes are copied.
//!
//! Failure codes (the model leaves `ReplicationError` a free string and the
//! ECR documentation lists no values; these are ecrd's):
//! [`PERMISSION_DENIED`], [`IMAGE_TAG_IMMUTABLE`], [`SOURCE_IMAGE_NOT_FOUND`],
//! [`INTERNAL_ERROR`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::caller::Caller;
use super::error::{EcrError, EcrResult, ErrorKind};
use super::images::{image_blobs, image_key, layer_key, Origin, Reference};
use super::names::{AccountId, Region, RepositoryName, Scope};
use super::records::{
    DestinationStatus, ImageRecord, LayerRecord, RegistryRecord, ReplicationJob,
    ReplicationRuleRecord, ReplicationStatusRecord,
};
use super::repositories::get_repository;
use super::templates::REPLICATION;
use super::{load, save, Ecr};
use crate::digest::Digest;
use crate::store::{Table, WriteTxn};

pub const IN_PROGRESS: &str = "IN_PROGRESS";
pub const COMPLETE: &str = "COMPLETE";
pub const FAILED: &str = "FAILED";

/// The destination registry's policy does not allow the source account.
pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
/// The destination's tag is immutable and names another image.
pub const IMAGE_TAG_IMMUTABLE: &str = "IMAGE_TAG_IMMUTABLE";
/// The source image was gone before it could be copied.
pub const SOURCE_IMAGE_NOT_FOUND: &str = "SOURCE_IMAGE_NOT_FOUND";
/// Anything else.
pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";

/// ECR's limit on distinct destinations across all rules.
pub const MAX_DESTINATIONS: usize = 25;
/// Jobs read from the queue at a time.
const QUEUE_PAGE: usize = 64;
/// How often the worker looks at the queue without being woken.
const POLL: Duration = Duration::from_secs(1);

fn invalid_configuration(constraint: &str) -> EcrError {
    EcrError::invalid_parameter("replicationConfiguration", constraint)
}

fn status_key(scope: &Scope, repo: &str, digest: &Digest) -> String {
    image_key(scope, repo, digest)
}

/// The registries a rule set sends `repository` to, each once, in the
/// order the rules name them.
pub fn destinations_for(rules: &[ReplicationRuleRecord], repository: &str) -> Vec<Scope> {
    let mut out: Vec<Scope> = Vec::new();
    for rule in rules {
        let matches = match &rule.repository_filters {
            None => true,
            Some(filters) if filters.is_empty() => true,
            Some(filters) => filters
                .iter()
                .any(|f| f.filter_type == "PREFIX_MATCH" && repository.starts_with(&f.filter)),
        };
        if !matches {
            continue;
        }
        for d in &rule.destinations {
            let (Ok(account), Ok(region)) =
                (AccountId::parse(&d.registry_id), Region::parse(&d.region))
            else {
                continue;
            };
            let scope = Scope::new(account, region);
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
    }
    out
}

/// The source account as the destination's registry policy sees it: ECR
/// replicates on behalf of the source registry's account.
fn source_principal(source: &Scope) -> Caller {
    Caller {
        account: source.account.clone(),
        region: source.region.clone(),
        principal_arn: format!("arn:aws:iam::{}:root", source.account),
        user_id: source.account.to_string(),
        access_key_id: String::new(),
        source_ip: None,
        secure_transport: true,
        tags: Default::default(),
        identity_policy: None,
    }
}

/// Why one destination failed.
struct Failure(&'static str, String);

impl From<EcrError> for Failure {
    fn from(e: EcrError) -> Self {
        let code = match e.kind {
            ErrorKind::AccessDenied => PERMISSION_DENIED,
            ErrorKind::ImageTagAlreadyExists => IMAGE_TAG_IMMUTABLE,
            _ => INTERNAL_ERROR,
        };
        Failure(code, e.message)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        EcrError::from(e).into()
    }
}

impl Ecr {
    // ------------------------------------------------------ configuration

    /// PutReplicationConfiguration: validates and stores the rules (an
    /// empty list removes the configuration) and answers them as stored.
    pub fn put_replication_configuration(
        &self,
        scope: &Scope,
        rules: Vec<ReplicationRuleRecord>,
    ) -> EcrResult<Vec<ReplicationRuleRecord>> {
        let mut distinct = BTreeSet::new();
        for rule in &rules {
            if rule.destinations.is_empty() {
                return Err(invalid_configuration(
                    "Each replication rule must have at least one destination",
                ));
            }
            for d in &rule.destinations {
                if Region::parse(&d.region).is_err() {
                    return Err(invalid_configuration(&format!(
                        "Invalid destination region '{}'",
                        d.region
                    )));
                }
                if AccountId::parse(&d.registry_id).is_err() {
                    return Err(invalid_configuration(&format!(
                        "Invalid destination registry id '{}'",
                        d.registry_id
                    )));
                }
                if d.region == scope.region.as_str() && d.registry_id == scope.account.as_str() {
                    return Err(invalid_configuration(
                        "Replication destination cannot be the same as the source registry",
                    ));
                }
                distinct.insert((d.region.clone(), d.registry_id.clone()));
            }
            for f in rule.repository_filters.iter().flatten() {
                if f.filter_type != "PREFIX_MATCH" {
                    return Err(EcrError::invalid_parameter(
                        "filterType",
                        "Member must satisfy enum value set: [PREFIX_MATCH]",
                    ));
                }
            }
        }
        if distinct.len() > MAX_DESTINATIONS {
            return Err(invalid_configuration(&format!(
                "A replication configuration can have at most {MAX_DESTINATIONS} unique destinations"
            )));
        }
        let key = scope.key_prefix();
        let mut tx = self.store.write()?;
        let mut record: RegistryRecord = load(&*tx, Table::Registries, &key)?.unwrap_or_default();
        record.replication_configuration = if rules.is_empty() {
            None
        } else {
            Some(serde_json::json!({ "rules": serde_json::to_value(&rules)? }))
        };
        save(&mut *tx, Table::Registries, &key, &record)?;
        tx.commit()?;
        Ok(rules)
    }

    /// The registry's replication rules (none without a configuration).
    pub(crate) fn replication_rules(
        &self,
        tx: &(impl crate::store::ReadTxn + ?Sized),
        scope: &Scope,
    ) -> EcrResult<Vec<ReplicationRuleRecord>> {
        let record: Option<RegistryRecord> = load(tx, Table::Registries, &scope.key_prefix())?;
        let Some(config) = record.and_then(|r| r.replication_configuration) else {
            return Ok(Vec::new());
        };
        match config.get("rules") {
            Some(rules) => Ok(serde_json::from_value(rules.clone())?),
            None => Ok(Vec::new()),
        }
    }

    // -------------------------------------------------------------- queue

    /// The push hook: inside the push's transaction, queues the image for
    /// every destination the registry's rules send `repo` to, and marks
    /// each destination IN_PROGRESS. Does nothing without matching rules.
    pub(crate) fn enqueue_replication(
        &self,
        tx: &mut dyn WriteTxn,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
        tag: Option<&str>,
    ) -> EcrResult<()> {
        let rules = self.replication_rules(&*tx, scope)?;
        if rules.is_empty() {
            return Ok(());
        }
        let destinations = destinations_for(&rules, repo.as_str());
        if destinations.is_empty() {
            return Ok(());
        }
        let skey = status_key(scope, repo.as_str(), digest);
        let mut status: ReplicationStatusRecord =
            load(&*tx, Table::ReplicationStatuses, &skey)?.unwrap_or_default();
        for d in &destinations {
            match status.destinations.iter_mut().find(|s| &s.destination == d) {
                Some(s) => {
                    s.status = IN_PROGRESS.to_string();
                    s.failure_code = None;
                    s.pending = s.pending.saturating_add(1);
                }
                None => status.destinations.push(DestinationStatus {
                    destination: d.clone(),
                    status: IN_PROGRESS.to_string(),
                    failure_code: None,
                    pending: 1,
                }),
            }
        }
        save(tx, Table::ReplicationStatuses, &skey, &status)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let job = ReplicationJob {
            source: scope.clone(),
            repository: repo.to_string(),
            digest: digest.clone(),
            tag: tag.map(str::to_string),
            destinations,
            queued_at_ms: self.clock.now_ms(),
        };
        let key = format!("{nanos:032x}-{}", uuid::Uuid::new_v4());
        save(tx, Table::ReplicationQueue, &key, &job)?;
        self.replication_wakeup.notify_one();
        Ok(())
    }

    /// Runs every queued job, oldest first, until the queue is empty.
    /// Returns how many jobs ran. A run that found jobs (or failed) is
    /// recorded in the task log; the worker's empty polls are not.
    pub async fn run_replication(&self) -> EcrResult<usize> {
        let started_ms = self.clock.now_ms();
        let mut failed_copies = 0usize;
        let result = self.replicate_queue(&mut failed_copies).await;
        let (outcome, failed) = match &result {
            Ok(0) => return result,
            Ok(jobs) => (
                format!("{jobs} jobs run, {failed_copies} destination copies failed"),
                failed_copies > 0,
            ),
            Err(e) => (e.to_string(), true),
        };
        self.record_task_run("replication", started_ms, outcome, failed);
        result
    }

    async fn replicate_queue(&self, failed_copies: &mut usize) -> EcrResult<usize> {
        let mut done = 0;
        loop {
            let page = {
                let tx = self.store.read()?;
                tx.scan(Table::ReplicationQueue, "", None, QUEUE_PAGE)?
            };
            if page.is_empty() {
                return Ok(done);
            }
            for (key, bytes) in page {
                let job: ReplicationJob = serde_json::from_slice(&bytes)?;
                let mut outcomes = Vec::with_capacity(job.destinations.len());
                for destination in &job.destinations {
                    let outcome = self.replicate_to(&job, destination).await;
                    if let Err(Failure(code, message)) = &outcome {
                        *failed_copies += 1;
                        tracing::warn!(
                            repository = %job.repository,
                            digest = %job.digest,
                            destination = %destination.key_prefix(),
                            code,
                            message = %message,
                            "replication failed"
                        );
                    }
                    outcomes.push((destination.clone(), outcome.err().map(|f| f.0)));
                }
                self.finish_job(&key, &job, outcomes)?;
                done += 1;
            }
        }
    }

    /// Records the job's outcomes and removes it from the queue, together.
    /// A destination's status is final once its last queued job finishes.
    fn finish_job(
        &self,
        key: &str,
        job: &ReplicationJob,
        outcomes: Vec<(Scope, Option<&'static str>)>,
    ) -> EcrResult<()> {
        let mut tx = self.store.write()?;
        if tx.get(Table::ReplicationQueue, key)?.is_none() {
            // Another run (the worker, or the operator endpoint) finished it.
            return Ok(());
        }
        let skey = status_key(&job.source, &job.repository, &job.digest);
        if let Some(mut status) =
            load::<ReplicationStatusRecord>(&*tx, Table::ReplicationStatuses, &skey)?
        {
            for (destination, failure) in outcomes {
                if let Some(s) = status
                    .destinations
                    .iter_mut()
                    .find(|s| s.destination == destination)
                {
                    s.pending = s.pending.saturating_sub(1);
                    if s.pending == 0 {
                        s.status = if failure.is_some() { FAILED } else { COMPLETE }.to_string();
                        s.failure_code = failure.map(str::to_string);
                    }
                }
            }
            save(&mut *tx, Table::ReplicationStatuses, &skey, &status)?;
        }
        tx.delete(Table::ReplicationQueue, key)?;
        tx.commit()?;
        Ok(())
    }

    /// Copies the job's image into one destination registry.
    async fn replicate_to(&self, job: &ReplicationJob, destination: &Scope) -> Result<(), Failure> {
        let repo = RepositoryName::parse(&job.repository)
            .map_err(|e| Failure(INTERNAL_ERROR, e.constraint))?;
        let cross_account = job.source.account != destination.account;
        let exists = self.repository(destination, &repo).is_ok();
        if cross_account {
            let caller = source_principal(&job.source);
            let mut actions = vec!["ecr:ReplicateImage"];
            if !exists {
                actions.push("ecr:CreateRepository");
            }
            self.authorize_all(&caller, &actions, destination, Some(repo.as_str()))?;
        }
        // The blobs seen present stay so until the image commits (see `gc`).
        let _publishing = self.collection.read().await?;
        if !exists {
            let mut tx = self.store.write()?;
            if get_repository(&*tx, destination, &repo).is_err() {
                let template =
                    self.matching_template(&*tx, destination, repo.as_str(), REPLICATION)?;
                self.create_repository_in(&mut *tx, destination, &repo, template.as_ref())?;
                tx.commit()?;
            }
        }
        self.copy_image(job, destination, &repo, &job.digest, job.tag.as_deref())
            .await
    }

    /// Copies one image (an index after its children) from the source
    /// repository into the destination one.
    async fn copy_image(
        &self,
        job: &ReplicationJob,
        destination: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
        tag: Option<&str>,
    ) -> Result<(), Failure> {
        let mut pending: Vec<(Digest, Option<&str>, bool)> = vec![(digest.clone(), tag, false)];
        // Depth-first: an image is put once every child is in place.
        while let Some((digest, tag, expanded)) = pending.pop() {
            let image: ImageRecord = {
                let tx = self.store.read()?;
                load(
                    &*tx,
                    Table::Images,
                    &image_key(&job.source, repo.as_str(), &digest),
                )?
            }
            .ok_or_else(|| {
                Failure(
                    SOURCE_IMAGE_NOT_FOUND,
                    format!("{digest} is no longer in the source repository"),
                )
            })?;
            if !expanded && !image.children.is_empty() {
                pending.push((digest.clone(), tag, true));
                for child in &image.children {
                    let present = {
                        let tx = self.store.read()?;
                        tx.get(Table::Images, &image_key(destination, repo.as_str(), child))?
                            .is_some()
                    };
                    if !present {
                        pending.push((child.clone(), None, false));
                    }
                }
                continue;
            }
            self.link_blobs(destination, repo, &image).await?;
            self.put_manifest_as(
                destination,
                repo,
                tag,
                Some(&digest),
                &Bytes::from(image.manifest.clone()),
                Some(&image.media_type),
                Origin::Replication,
            )?;
        }
        Ok(())
    }

    /// Links an image's blobs (shared by digest) into the destination repository.
    async fn link_blobs(
        &self,
        destination: &Scope,
        repo: &RepositoryName,
        image: &ImageRecord,
    ) -> Result<(), Failure> {
        let blobs = image_blobs(image)?;
        let mut sizes = Vec::with_capacity(blobs.len());
        for blob in blobs {
            let size = self
                .blobs
                .size(&blob)
                .await
                .map_err(EcrError::from)?
                .ok_or_else(|| {
                    Failure(
                        INTERNAL_ERROR,
                        format!("blob {blob} is missing from the store"),
                    )
                })?;
            sizes.push((blob, size));
        }
        let now = self.clock.now_ms();
        let mut tx = self.store.write()?;
        get_repository(&*tx, destination, repo)?;
        for (blob, size) in sizes {
            let key = layer_key(destination, repo.as_str(), &blob);
            if tx.get(Table::Layers, &key)?.is_none() {
                save(
                    &mut *tx,
                    Table::Layers,
                    &key,
                    &LayerRecord {
                        size,
                        added_at_ms: now,
                    },
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    // ------------------------------------------------------------- status

    /// DescribeImageReplicationStatus: the image's status per destination
    /// (none when it was pushed before replication was configured, or no
    /// rule matches its repository).
    pub fn image_replication_status(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> EcrResult<(ImageRecord, Vec<DestinationStatus>)> {
        let image = self.get_image(scope, repo, reference, None)?;
        let tx = self.store.read()?;
        let status: Option<ReplicationStatusRecord> = load(
            &*tx,
            Table::ReplicationStatuses,
            &status_key(scope, repo.as_str(), &image.digest),
        )?;
        Ok((image, status.map(|s| s.destinations).unwrap_or_default()))
    }
}

/// Runs queued replication whenever a push wakes it (and every second, for
/// what a restart left queued), until the task is aborted. A run that fails
/// is logged and retried on the next wake.
pub async fn run_worker(ecr: Arc<Ecr>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let run = {
            let ecr = ecr.clone();
            tokio::spawn(async move {
                super::background::if_leading(
                    &ecr,
                    crate::store::fleet::FleetTask::Replication,
                    ecr.run_replication(),
                )
                .await
            })
        };
        // Awaited to the end even when stopping: a run never outlives the
        // worker (it holds the domain, and so a data directory's lock).
        match run.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "replication run failed; it runs again"),
            Err(e) => tracing::error!(error = %e, "replication run panicked; it runs again"),
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::timeout(POLL, ecr.replication_wakeup.notified()) => {}
        }
        // A push wakes the worker from inside its transaction: give the
        // commit a moment to land before looking.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ecr::records::{ReplicationDestinationRecord, RepositoryFilterRecord};

    fn rule(dest: &[(&str, &str)], filters: Option<&[&str]>) -> ReplicationRuleRecord {
        ReplicationRuleRecord {
            destinations: dest
                .iter()
                .map(|(r, a)| ReplicationDestinationRecord {
                    region: r.to_string(),
                    registry_id: a.to_string(),
                })
                .collect(),
            repository_filters: filters.map(|f| {
                f.iter()
                    .map(|f| RepositoryFilterRecord {
                        filter: f.to_string(),
                        filter_type: "PREFIX_MATCH".to_string(),
                    })
                    .collect()
            }),
        }
    }

    #[test]
    fn filters_and_dedup() {
        let a = ("eu-west-1", "000000000000");
        let b = ("us-east-1", "111111111111");
        let rules = vec![rule(&[a], Some(&["prod"])), rule(&[a, b], None)];
        assert_eq!(destinations_for(&rules, "prod/api").len(), 2);
        let rules = vec![rule(&[a], Some(&["prod"]))];
        assert_eq!(destinations_for(&rules, "production").len(), 1);
        assert!(destinations_for(&rules, "dev/api").is_empty());
    }
}

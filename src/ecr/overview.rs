//! Read models for an operator looking at the whole of ecrd (the web console
//! in `console/`): which registries exist, what each repository stores, what
//! a lifecycle run would do now, which uploads are open and what the
//! background tasks last did. Every figure is computed from the same records
//! and functions the API answers from, so the console never disagrees with
//! DescribeImages or GetLifecyclePolicyPreview.
//!
//! These reads bypass access control on purpose: they serve the operator of
//! the process, who can read the data directory anyway. The console that
//! shows them is only reachable where the operator endpoints are.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use serde::Serialize;

use super::error::EcrResult;
use super::lifecycle::Policy;
use super::lifecycle_runs::{plan, PlannedAction};
use super::names::{AccountId, Region, RepositoryName, Scope};
use super::records::{ImageRecord, LayerRecord, RepositoryRecord, UploadRecord};
use super::repositories::get_repository;
use super::Ecr;
use crate::store::{ReadTxn, Table};

/// How many entries one store scan reads at a time.
const CHUNK: usize = 1000;

/// One registry (account and region) that holds at least one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySummary {
    pub scope: Scope,
    pub repositories: usize,
    /// Bytes of the distinct blobs its repositories link (a layer shared by
    /// two repositories counts once, as it is stored once).
    pub stored_bytes: u64,
}

/// A repository with what it holds.
#[derive(Debug, Clone)]
pub struct RepositorySummary {
    pub record: RepositoryRecord,
    pub images: usize,
    /// Bytes of the blobs linked into the repository.
    pub stored_bytes: u64,
    pub has_policy: bool,
}

/// A page of repository summaries.
#[derive(Debug, Clone)]
pub struct RepositorySummaryPage {
    pub repositories: Vec<RepositorySummary>,
    /// The name to continue after, when more match.
    pub next_after: Option<String>,
}

/// An upload session in progress and the bytes it holds so far.
#[derive(Debug, Clone)]
pub struct OpenUpload {
    pub record: UploadRecord,
    pub bytes: u64,
}

/// What a lifecycle run would do to a repository now.
#[derive(Debug, Clone)]
pub struct LifecycleOutlook {
    pub policy_text: String,
    pub actions: Vec<PlannedAction>,
}

/// The last run of one background task.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRun {
    pub started_ms: i64,
    pub finished_ms: i64,
    /// What the run did, in a sentence, or why it failed.
    pub outcome: String,
    pub failed: bool,
}

/// Runs and failures of one background task, and its latest run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    pub runs: u64,
    pub failures: u64,
    pub last: Option<TaskRun>,
}

/// The latest run of each background task since the process started.
#[derive(Debug, Default)]
pub struct TaskLog {
    tasks: Mutex<BTreeMap<&'static str, TaskStatus>>,
}

impl TaskLog {
    /// Records a finished run of `task`.
    pub fn record(&self, task: &'static str, run: TaskRun) {
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let status = tasks.entry(task).or_default();
        status.runs += 1;
        if run.failed {
            status.failures += 1;
        }
        status.last = Some(run);
    }

    /// Every task that ran at least once, by name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, TaskStatus> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Splits a repository key (`<account>/<region>/<name>`) into its parts.
fn split_repository_key(key: &str) -> Option<(Scope, &str)> {
    let mut parts = key.splitn(3, '/');
    let account = AccountId::parse(parts.next()?).ok()?;
    let region = Region::parse(parts.next()?).ok()?;
    Some((Scope::new(account, region), parts.next()?))
}

/// Calls `each` for every entry of `table` under `prefix`, in key order.
fn for_each_entry(
    tx: &dyn ReadTxn,
    table: Table,
    prefix: &str,
    mut each: impl FnMut(&str, &[u8]) -> EcrResult<()>,
) -> EcrResult<()> {
    let mut after: Option<String> = None;
    loop {
        let page = tx.scan(table, prefix, after.as_deref(), CHUNK)?;
        let full = page.len() == CHUNK;
        for (key, value) in &page {
            each(key, value)?;
        }
        after = page.last().map(|(k, _)| k.clone());
        if !full {
            return Ok(());
        }
    }
}

/// The layer-link prefix of a repository (`Table::Layers` and
/// `Table::Images` share the `<account>/<region>/<name>@` shape).
fn contents_prefix(scope: &Scope, name: &str) -> String {
    format!("{}{}@", scope.key_prefix(), name)
}

/// Bytes of the blobs linked into a repository, and how many images it holds.
fn repository_contents(tx: &dyn ReadTxn, scope: &Scope, name: &str) -> EcrResult<(usize, u64)> {
    let prefix = contents_prefix(scope, name);
    let mut bytes = 0u64;
    for_each_entry(tx, Table::Layers, &prefix, |_, value| {
        let layer: LayerRecord = serde_json::from_slice(value)?;
        bytes += layer.size;
        Ok(())
    })?;
    let mut images = 0usize;
    for_each_entry(tx, Table::Images, &prefix, |_, _| {
        images += 1;
        Ok(())
    })?;
    Ok((images, bytes))
}

impl Ecr {
    /// Records in the task log a run of `task` that started at
    /// `started_ms` (ecrd's clock) and finishes now.
    pub(crate) fn record_task_run(
        &self,
        task: &'static str,
        started_ms: i64,
        outcome: String,
        failed: bool,
    ) {
        self.tasks.record(
            task,
            TaskRun {
                started_ms,
                finished_ms: self.clock.now_ms(),
                outcome,
                failed,
            },
        );
    }

    /// Every registry holding a repository, in account then region order.
    pub fn registry_summaries(&self) -> EcrResult<Vec<RegistrySummary>> {
        let tx = self.store.read()?;
        let mut counts: BTreeMap<(String, String), (Scope, usize)> = BTreeMap::new();
        for_each_entry(&*tx, Table::Repositories, "", |key, _| {
            if let Some((scope, _)) = split_repository_key(key) {
                let entry = counts
                    .entry((
                        scope.account.as_str().to_string(),
                        scope.region.as_str().to_string(),
                    ))
                    .or_insert_with(|| (scope.clone(), 0));
                entry.1 += 1;
            }
            Ok(())
        })?;
        let mut out = Vec::with_capacity(counts.len());
        for (_, (scope, repositories)) in counts {
            let mut seen: HashSet<String> = HashSet::new();
            let mut stored_bytes = 0u64;
            for_each_entry(&*tx, Table::Layers, &scope.key_prefix(), |key, value| {
                let digest = key.rsplit('@').next().unwrap_or(key);
                if seen.insert(digest.to_string()) {
                    let layer: LayerRecord = serde_json::from_slice(value)?;
                    stored_bytes += layer.size;
                }
                Ok(())
            })?;
            out.push(RegistrySummary {
                scope,
                repositories,
                stored_bytes,
            });
        }
        Ok(out)
    }

    /// A page of a registry's repositories whose names start with `prefix`,
    /// in name order, after `after`, with what each holds.
    pub fn repository_summaries(
        &self,
        scope: &Scope,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> EcrResult<RepositorySummaryPage> {
        let tx = self.store.read()?;
        let key_prefix = format!("{}{}", scope.key_prefix(), prefix);
        let start_after = after.map(|a| format!("{}{}", scope.key_prefix(), a));
        let limit = limit.max(1);
        let entries = tx.scan(
            Table::Repositories,
            &key_prefix,
            start_after.as_deref(),
            limit + 1,
        )?;
        let more = entries.len() > limit;
        let mut repositories = Vec::with_capacity(limit.min(entries.len()));
        for (key, value) in entries.into_iter().take(limit) {
            let record: RepositoryRecord = serde_json::from_slice(&value)?;
            let (images, stored_bytes) = repository_contents(&*tx, scope, &record.name)?;
            let has_policy = tx.get(Table::RepositoryPolicies, &key)?.is_some();
            repositories.push(RepositorySummary {
                record,
                images,
                stored_bytes,
                has_policy,
            });
        }
        let next_after = match repositories.last() {
            Some(last) if more => Some(last.record.name.clone()),
            _ => None,
        };
        Ok(RepositorySummaryPage {
            repositories,
            next_after,
        })
    }

    /// One repository with what it holds.
    pub fn repository_summary(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> EcrResult<RepositorySummary> {
        let tx = self.store.read()?;
        let record = get_repository(&*tx, scope, name)?;
        let (images, stored_bytes) = repository_contents(&*tx, scope, name.as_str())?;
        let key = format!("{}{}", scope.key_prefix(), name);
        let has_policy = tx.get(Table::RepositoryPolicies, &key)?.is_some();
        Ok(RepositorySummary {
            record,
            images,
            stored_bytes,
            has_policy,
        })
    }

    /// Every image of a repository, in digest order (for the console's
    /// size-over-time picture and the lifecycle outlook).
    pub fn all_images(&self, scope: &Scope, name: &RepositoryName) -> EcrResult<Vec<ImageRecord>> {
        let mut images = Vec::new();
        let mut after = None;
        loop {
            let page = self.scan_images(scope, name, after.as_ref(), CHUNK)?;
            let full = page.len() == CHUNK;
            after = page.last().map(|i| i.digest.clone());
            images.extend(page);
            if !full {
                return Ok(images);
            }
        }
    }

    /// What the repository's lifecycle policy would do if it ran now: the
    /// same `plan` that previews and runs call. `None` without a policy.
    pub fn lifecycle_outlook(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> EcrResult<Option<LifecycleOutlook>> {
        let record = self.repository(scope, name)?;
        let Some(policy_text) = record.lifecycle_policy else {
            return Ok(None);
        };
        let policy = Policy::parse(&policy_text)?;
        let images = self.all_images(scope, name)?;
        let actions = plan(&policy, &images, self.clock.now_ms());
        Ok(Some(LifecycleOutlook {
            policy_text,
            actions,
        }))
    }

    /// The registries the replication rules send the repository's pushes to.
    pub fn replication_destinations(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> EcrResult<Vec<Scope>> {
        let tx = self.store.read()?;
        let rules = self.replication_rules(&*tx, scope)?;
        Ok(super::replication::destinations_for(&rules, name.as_str()))
    }

    /// Upload sessions in progress, oldest first, with the bytes each holds.
    pub async fn open_uploads(&self) -> EcrResult<Vec<OpenUpload>> {
        let records = {
            let tx = self.store.read()?;
            let mut records = Vec::new();
            for_each_entry(&*tx, Table::Uploads, "", |_, value| {
                records.push(serde_json::from_slice::<UploadRecord>(value)?);
                Ok(())
            })?;
            records
        };
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            // A session that ended while this list was read holds nothing.
            let bytes = self.blobs.upload_size(&record.id).await.unwrap_or(0);
            out.push(OpenUpload { record, bytes });
        }
        out.sort_by_key(|u| u.record.started_at_ms);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn task_log_counts_runs_and_failures() {
        let log = TaskLog::default();
        let run = |failed| TaskRun {
            started_ms: 1,
            finished_ms: 2,
            outcome: "x".into(),
            failed,
        };
        log.record("gc", run(false));
        log.record("gc", run(true));
        log.record("lifecycle", run(false));
        let tasks = log.snapshot();
        assert_eq!(tasks["gc"].runs, 2);
        assert_eq!(tasks["gc"].failures, 1);
        assert!(tasks["gc"].last.as_ref().unwrap().failed);
        assert_eq!(tasks["lifecycle"].failures, 0);
    }

    #[test]
    fn repository_keys_split_into_scope_and_name() {
        let (scope, name) = split_repository_key("000000000000/us-east-1/team/app").unwrap();
        assert_eq!(scope.account.as_str(), "000000000000");
        assert_eq!(scope.region.as_str(), "us-east-1");
        assert_eq!(name, "team/app");
        assert!(split_repository_key("bad").is_none());
    }
}

//! Bounds on open layer-upload sessions, for both planes (InitiateLayerUpload
//! and `POST /v2/<name>/blobs/uploads/`): at most `per_repository` sessions
//! per repository and `per_registry` per registry (an account in a region,
//! the unit of every ECR quota), counted over the session records, so the
//! count survives a restart.
//!
//! A session idle (no byte received, by ecrd's clock) for longer than
//! `idle` no longer counts: when a new session would go over a bound, the
//! idle ones of that registry are ended first and their partial bytes
//! released; garbage collection ends the rest on its own schedule
//! (`gc`). Only then is a new session refused, with LimitExceededException
//! (on `/v2/`, 429 TOOMANYREQUESTS).
//!
//! ECR documents no quota on open upload sessions (its service quotas list
//! parts per layer, part and layer sizes, and request rates), and no message
//! for one; the exception is the model's "would have exceeded a service
//! limit for your account", and the message is ecrd's own.

use std::collections::HashMap;
use std::time::Duration;

use super::error::{EcrError, EcrResult, ErrorKind};
use super::gc::{epoch_ms, for_each};
use super::names::{RepositoryName, Scope};
use super::records::UploadRecord;
use super::Ecr;
use crate::store::blobs::BlobError;
use crate::store::{ReadTxn, Table};

/// How many upload sessions may be open at once, and when one is idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    pub per_repository: usize,
    pub per_registry: usize,
    /// A session that received nothing for this long may be ended.
    pub idle: Duration,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            per_repository: 1000,
            per_registry: 10_000,
            idle: Duration::from_secs(3600),
        }
    }
}

/// The open sessions of one registry, and how many of them are `repo`'s.
fn count(
    tx: &dyn ReadTxn,
    scope: &Scope,
    repo: &RepositoryName,
) -> EcrResult<(usize, usize, Vec<UploadRecord>)> {
    let mut in_repository = 0;
    let mut sessions = Vec::new();
    for_each(tx, Table::Uploads, "", |_, value| {
        let session: UploadRecord = serde_json::from_slice(value)?;
        if &session.scope == scope {
            if session.repository == repo.as_str() {
                in_repository += 1;
            }
            sessions.push(session);
        }
        Ok(())
    })?;
    Ok((in_repository, sessions.len(), sessions))
}

impl Ecr {
    /// Ends idle sessions of `scope` when `repo` or its registry is at a
    /// bound, before a new session is opened. The final check is
    /// [`Ecr::check_upload_room`], inside the transaction that records the
    /// new session.
    pub(crate) async fn make_room_for_upload(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
    ) -> EcrResult<()> {
        let limits = self.upload_limits;
        let (in_repository, in_registry, sessions) = {
            let tx = self.store.read()?;
            count(&*tx, scope, repo)?
        };
        if in_repository < limits.per_repository && in_registry < limits.per_registry {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let idle_ms = i64::try_from(limits.idle.as_millis()).unwrap_or(i64::MAX);
        let active: HashMap<String, i64> = self
            .blobs
            .list_uploads()
            .await?
            .into_iter()
            .map(|u| (u.id, epoch_ms(u.active)))
            .collect();
        for session in sessions {
            let last = active
                .get(&session.id)
                .map_or(session.started_at_ms, |&t| t.max(session.started_at_ms));
            if now.saturating_sub(last) <= idle_ms {
                continue;
            }
            let mut tx = self.store.write()?;
            let current: Option<UploadRecord> = super::load(&*tx, Table::Uploads, &session.id)?;
            if current.is_none() {
                continue;
            }
            tx.delete(Table::Uploads, &session.id)?;
            tx.commit()?;
            match self.blobs.cancel_upload(&session.id).await {
                Ok(()) | Err(BlobError::UploadUnknown) => {}
                Err(e) => {
                    tracing::warn!(upload = %session.id, error = %e, "cannot release an idle upload's bytes")
                }
            }
            tracing::info!(upload = %session.id, repository = %session.repository, "idle upload session ended to make room");
        }
        Ok(())
    }

    /// LimitExceededException when `repo` or its registry already holds as
    /// many sessions as allowed (read in the transaction about to add one).
    pub(crate) fn check_upload_room(
        &self,
        tx: &dyn ReadTxn,
        scope: &Scope,
        repo: &RepositoryName,
    ) -> EcrResult<()> {
        let limits = self.upload_limits;
        let (in_repository, in_registry, _) = count(tx, scope, repo)?;
        if in_repository >= limits.per_repository {
            return Err(EcrError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "The repository with name '{repo}' in the registry with id '{}' already has {} layer uploads in progress, the most allowed; complete or cancel one first (idle uploads end after {} seconds)",
                    scope.account,
                    limits.per_repository,
                    limits.idle.as_secs()
                ),
            ));
        }
        if in_registry >= limits.per_registry {
            return Err(EcrError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "The registry with id '{}' already has {} layer uploads in progress in this region, the most allowed; complete or cancel one first (idle uploads end after {} seconds)",
                    scope.account,
                    limits.per_registry,
                    limits.idle.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

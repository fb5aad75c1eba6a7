//! Pull-time update exclusions: RegisterPullTimeUpdateExclusion,
//! DeregisterPullTimeUpdateExclusion, ListPullTimeUpdateExclusions, and the
//! one rule they feed — whether a pull by a principal records the image's
//! `lastRecordedPullTime` ([`Ecr::records_pulls_by`]).
//!
//! From the ECR User Guide ("Pull-time update exclusions"): ECR updates
//! `LastRecordedPullTime` on every pull, except pulls by the IAM principals
//! on the registry's exclusion list (third-party scanners, CI); such a pull
//! leaves the pull time unchanged, so it does not count for a
//! `sinceImagePulled` lifecycle rule. Up to 100 exclusions per registry.
//! The principal ARN's grammar (IAM users and roles only) is the model's
//! `PrincipalArn` pattern, checked by the generated validation.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::error::{EcrError, EcrResult, ErrorKind};
use super::names::Scope;
use super::{load, save, Ecr};
use crate::store::{ReadTxn, Table};

/// The most exclusions a registry holds ("up to 100 exclusions per account").
pub const MAX_EXCLUSIONS: usize = 100;
/// ListPullTimeUpdateExclusions' page size without `maxResults`.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// One excluded principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionRecord {
    pub principal_arn: String,
    pub created_at_ms: i64,
}

/// A page of excluded principal ARNs and the token for the next one.
#[derive(Debug, Clone)]
pub struct ExclusionPage {
    pub principal_arns: Vec<String>,
    pub next_token: Option<String>,
}

fn exclusion_key(scope: &Scope, principal_arn: &str) -> String {
    format!("{}{}", scope.key_prefix(), principal_arn)
}

fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("exclusions:{last}"))
}

fn decode_token(token: &str) -> EcrResult<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("exclusions:").map(str::to_string))
        .ok_or_else(|| {
            EcrError::invalid_parameter(
                "nextToken",
                "must be a nextToken returned by an earlier call",
            )
        })
}

/// The IAM role an assumed-role session ARN acts as:
/// `arn:aws:sts::<account>:assumed-role/<role>/<session>` → (`aws`,
/// `<account>`, `<role>`).
fn assumed_role(principal_arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = principal_arn.splitn(6, ':');
    let (arn, partition, service, _region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn != "arn" || service != "sts" {
        return None;
    }
    let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
    Some((partition, account, role))
}

/// Whether an excluded ARN names the principal that pulls. A role's
/// exclusion also covers its sessions: a session ARN carries the role's
/// name but not its path, so the role matches by partition, account and
/// name.
fn covers(excluded: &str, puller: &str) -> bool {
    if excluded == puller {
        return true;
    }
    let Some((partition, account, role)) = assumed_role(puller) else {
        return false;
    };
    let prefix = format!("arn:{partition}:iam::{account}:role/");
    excluded
        .strip_prefix(&prefix)
        .and_then(|path| path.rsplit('/').next())
        .is_some_and(|name| name == role)
}

/// Whether a pull by `puller` in `scope` leaves the pull time unchanged,
/// read in the pull's own transaction.
pub(crate) fn is_excluded(
    tx: &(impl ReadTxn + ?Sized),
    scope: &Scope,
    puller: &str,
) -> EcrResult<bool> {
    if tx
        .get(Table::PullTimeExclusions, &exclusion_key(scope, puller))?
        .is_some()
    {
        return Ok(true);
    }
    if assumed_role(puller).is_none() {
        return Ok(false);
    }
    let entries = tx.scan(
        Table::PullTimeExclusions,
        &scope.key_prefix(),
        None,
        MAX_EXCLUSIONS + 1,
    )?;
    let prefix_len = scope.key_prefix().len();
    Ok(entries
        .iter()
        .any(|(key, _)| key.get(prefix_len..).is_some_and(|arn| covers(arn, puller))))
}

impl Ecr {
    /// RegisterPullTimeUpdateExclusion.
    pub fn register_exclusion(
        &self,
        scope: &Scope,
        principal_arn: &str,
    ) -> EcrResult<ExclusionRecord> {
        let key = exclusion_key(scope, principal_arn);
        let mut tx = self.store.write()?;
        if tx.get(Table::PullTimeExclusions, &key)?.is_some() {
            return Err(EcrError::new(
                ErrorKind::ExclusionAlreadyExists,
                format!(
                    "The pull time update exclusion for principal '{principal_arn}' already exists in the registry with id '{}'",
                    scope.account
                ),
            ));
        }
        let count = tx
            .scan(
                Table::PullTimeExclusions,
                &scope.key_prefix(),
                None,
                MAX_EXCLUSIONS,
            )?
            .len();
        if count >= MAX_EXCLUSIONS {
            return Err(EcrError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "The maximum number of pull time update exclusions ({MAX_EXCLUSIONS}) has been reached for the registry with id '{}'",
                    scope.account
                ),
            ));
        }
        let record = ExclusionRecord {
            principal_arn: principal_arn.to_string(),
            created_at_ms: self.clock.now_ms(),
        };
        save(&mut *tx, Table::PullTimeExclusions, &key, &record)?;
        tx.commit()?;
        Ok(record)
    }

    /// DeregisterPullTimeUpdateExclusion.
    pub fn deregister_exclusion(
        &self,
        scope: &Scope,
        principal_arn: &str,
    ) -> EcrResult<ExclusionRecord> {
        let key = exclusion_key(scope, principal_arn);
        let mut tx = self.store.write()?;
        let record: ExclusionRecord =
            load(&*tx, Table::PullTimeExclusions, &key)?.ok_or_else(|| {
                EcrError::new(
                    ErrorKind::ExclusionNotFound,
                    format!(
                        "The pull time update exclusion for principal '{principal_arn}' does not exist in the registry with id '{}'",
                        scope.account
                    ),
                )
            })?;
        tx.delete(Table::PullTimeExclusions, &key)?;
        tx.commit()?;
        Ok(record)
    }

    /// ListPullTimeUpdateExclusions: the excluded ARNs in ARN order.
    pub fn list_exclusions(
        &self,
        scope: &Scope,
        next_token: Option<&str>,
        max_results: Option<usize>,
    ) -> EcrResult<ExclusionPage> {
        let limit = max_results.unwrap_or(DEFAULT_PAGE_SIZE);
        let after = next_token.map(decode_token).transpose()?;
        let start = after.map(|a| exclusion_key(scope, &a));
        let tx = self.store.read()?;
        let entries = tx.scan(
            Table::PullTimeExclusions,
            &scope.key_prefix(),
            start.as_deref(),
            limit + 1,
        )?;
        let more = entries.len() > limit;
        let principal_arns = entries
            .into_iter()
            .take(limit)
            .map(|(_, b)| serde_json::from_slice::<ExclusionRecord>(&b).map(|r| r.principal_arn))
            .collect::<Result<Vec<_>, _>>()?;
        let next_token = match principal_arns.last() {
            Some(last) if more => Some(encode_token(last)),
            _ => None,
        };
        Ok(ExclusionPage {
            principal_arns,
            next_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_exclusion_covers_its_sessions() {
        let role = "arn:aws:iam::111122223333:role/scanners/trivy";
        assert!(covers(role, role));
        assert!(covers(
            role,
            "arn:aws:sts::111122223333:assumed-role/trivy/session-1"
        ));
        assert!(!covers(
            role,
            "arn:aws:sts::444455556666:assumed-role/trivy/session-1"
        ));
        assert!(!covers(
            role,
            "arn:aws:sts::111122223333:assumed-role/snyk/session-1"
        ));
        assert!(!covers(role, "arn:aws:iam::111122223333:user/trivy"));
    }
}

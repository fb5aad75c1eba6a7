//! Image scans as ECR keeps them: each image's latest scan (status,
//! timestamps, severity counts), its findings, and the package inventory
//! the findings were matched from; the rules of StartImageScan,
//! DescribeImageScanFindings and scan on push; and findings an operator
//! injects for tests. The scanning itself (reading layers, matching the
//! vulnerability data) runs off the request path, in `scan_runs`.
//!
//! Facts this follows (ECR user guide, API reference, and answers quoted in
//! public issue threads):
//! - One scan per image per 24 hours, scan on push included; another
//!   StartImageScan within that window is LimitExceededException ("The scan
//!   quota per image has been exceeded. Wait and try again.").
//! - Indexes and artifacts cannot be scanned: UnsupportedImageTypeException
//!   ("An artifact with media type '…' cannot be scanned. …"). The images an
//!   index lists are scanned on their own, each when it is pushed.
//! - A finished scan reads COMPLETE, "The scan was completed successfully.";
//!   under ENHANCED with CONTINUOUS_SCAN it reads ACTIVE, "Continuous scan
//!   is selected for image." (so `aws ecr wait image-scan-complete` waits
//!   in vain there, as against ECR); BASIC scanning of an image whose OS or
//!   package manager it does not know FAILS with "UnsupportedImageError: The
//!   operating system and/or package manager are not supported.".
//! - BASIC scanning reports operating-system packages only; ENHANCED
//!   (Amazon Inspector) also reports language packages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{EcrError, EcrResult, ErrorKind};
use super::image_queries::{image_not_found, resolve, ImageId};
use super::images::image_key;
use super::lifecycle_runs::{effective_status, ACTIVATING, ARCHIVED};
use super::manifest::{DOCKER_LIST, OCI_INDEX};
use super::names::{RepositoryName, Scope};
use super::records::{ImageRecord, RepositoryRecord};
use super::scan::cvss::{CvssScore, CvssVersion};
use super::scan::osv::Match;
use super::scan::package::Inventory;
use super::scan::package::PackageKind;
use super::scanning::{ScanFrequency, ScanType, ScanningConfiguration};
use super::{load, save, Ecr};
use crate::store::{ReadTxn, Table, WriteTxn};

/// How long an image waits between scans.
pub const SCAN_QUOTA_MS: i64 = 24 * 60 * 60 * 1000;
/// DescribeImageScanFindings' page size when `maxResults` is not given.
pub const DEFAULT_FINDINGS_PAGE: usize = 100;

pub const IN_PROGRESS: &str = "IN_PROGRESS";
pub const COMPLETE: &str = "COMPLETE";
pub const FAILED: &str = "FAILED";
pub const ACTIVE: &str = "ACTIVE";

pub const COMPLETE_DESCRIPTION: &str = "The scan was completed successfully.";
pub const CONTINUOUS_DESCRIPTION: &str = "Continuous scan is selected for image.";
pub const UNSUPPORTED_DESCRIPTION: &str =
    "UnsupportedImageError: The operating system and/or package manager are not supported.";
pub const INJECTED_DESCRIPTION: &str =
    "The findings were set through ecrd's operator endpoint (injected, not found by analysis).";

/// Image config media types: a manifest with another config is an artifact.
const IMAGE_CONFIGS: &[&str] = &[
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
];

/// An image's latest scan (`Table::ImageScans`). Small, so DescribeImages
/// can read it for every image it lists; the findings live apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanRecord {
    /// IN_PROGRESS, COMPLETE, ACTIVE or FAILED.
    pub status: String,
    #[serde(default)]
    pub description: Option<String>,
    pub scan_type: ScanType,
    /// When the scan was asked for (the 24-hour quota counts from here).
    pub started_ms: i64,
    #[serde(default)]
    pub completed_ms: Option<i64>,
    /// vulnerabilitySourceUpdatedAt: the newest record of the vulnerability
    /// data the findings come from; 0 (the epoch) when ecrd has no data.
    #[serde(default)]
    pub source_updated_ms: Option<i64>,
    /// findingSeverityCounts (only severities that occur).
    #[serde(default)]
    pub counts: BTreeMap<String, i32>,
    /// Whether the findings were injected by the operator endpoint.
    #[serde(default)]
    pub injected: bool,
    /// The vulnerability data's fingerprint the findings were matched
    /// against (continuous rescans skip images already current).
    #[serde(default)]
    pub source_stamp: Option<String>,
}

impl ScanRecord {
    pub fn is_finished(&self) -> bool {
        self.status != IN_PROGRESS
    }
}

/// One finding as kept: the match and when it was first and last seen
/// (enhanced findings' firstObservedAt / updatedAt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFinding {
    pub finding: Match,
    pub first_observed_ms: i64,
    pub updated_ms: i64,
}

/// A scan waiting for the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanJob {
    pub scope: Scope,
    pub repository: RepositoryName,
    pub digest: crate::digest::Digest,
}

/// DescribeImageScanFindings' answer.
#[derive(Debug, Clone)]
pub struct FindingsPage {
    pub image: ImageRecord,
    pub scan: ScanRecord,
    pub findings: Vec<StoredFinding>,
    pub next_token: Option<String>,
}

/// A finding given to the operator endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InjectedFinding {
    pub name: String,
    pub severity: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub package_name: Option<String>,
    #[serde(default)]
    pub package_version: Option<String>,
    #[serde(default)]
    pub fixed_in_version: Option<String>,
    /// A CVSS vector; its score is computed.
    #[serde(default)]
    pub cvss_vector: Option<String>,
}

pub(crate) fn scan_key(scope: &Scope, repo: &str, digest: &crate::digest::Digest) -> String {
    image_key(scope, repo, digest)
}

/// Fails with UnsupportedImageTypeException unless the image is a
/// single-platform container image.
pub(crate) fn ensure_scannable(image: &ImageRecord) -> EcrResult<()> {
    let unsupported = |media_type: &str| {
        Err(EcrError::new(
            ErrorKind::UnsupportedImageType,
            format!("An artifact with media type '{media_type}' cannot be scanned. For more information, see the Amazon ECR documentation."),
        ))
    };
    if image.media_type == OCI_INDEX || image.media_type == DOCKER_LIST {
        return unsupported(&image.media_type);
    }
    match image.artifact_type.as_deref() {
        Some(kind) if IMAGE_CONFIGS.contains(&kind) => Ok(()),
        Some(kind) => unsupported(kind),
        None => unsupported(&image.media_type),
    }
}

/// Whether pushing an image into `repository` scans it, by the registry's
/// scanning configuration and the repository's own `scanOnPush`.
pub(crate) fn scans_on_push(
    configuration: &ScanningConfiguration,
    repository: &RepositoryRecord,
) -> bool {
    matches!(
        configuration
            .applied_to(&repository.name, repository.scan_on_push)
            .scan_frequency,
        ScanFrequency::ScanOnPush | ScanFrequency::ContinuousScan
    )
}

/// Severity counts of a list of findings.
pub fn severity_counts<'a>(findings: impl IntoIterator<Item = &'a Match>) -> BTreeMap<String, i32> {
    let mut counts = BTreeMap::new();
    for finding in findings {
        *counts
            .entry(finding.severity.as_str().to_string())
            .or_insert(0) += 1;
    }
    counts
}

fn reference_text(id: &ImageId) -> String {
    format!(
        "{{imageDigest:'{}', imageTag:'{}'}}",
        id.digest.as_deref().unwrap_or("null"),
        id.tag.as_deref().unwrap_or("null")
    )
}

/// Resolves an image identifier the way the scan operations answer it.
fn resolve_image(
    tx: &(impl ReadTxn + ?Sized),
    scope: &Scope,
    repo: &RepositoryName,
    id: &ImageId,
) -> EcrResult<ImageRecord> {
    match resolve(tx, scope, repo, id)? {
        Ok(image) => Ok(image),
        Err(("ImageNotFound", _)) => Err(image_not_found(id, repo, scope)),
        Err((_, reason)) => Err(EcrError::new(ErrorKind::InvalidParameter, reason)),
    }
}

/// Deletes an image's scan, findings and inventory (with the image).
pub(crate) fn delete_scan_in(tx: &mut dyn WriteTxn, key: &str) -> EcrResult<()> {
    tx.delete(Table::ImageScans, key)?;
    tx.delete(Table::ScanFindings, key)?;
    tx.delete(Table::ImageInventories, key)?;
    Ok(())
}

fn bad_token() -> EcrError {
    EcrError::invalid_parameter(
        "nextToken",
        "must be a nextToken returned by an earlier call",
    )
}

impl Ecr {
    /// Starts a scan of a newly pushed image when the repository scans on
    /// push (inside the push's transaction, so the scan is recorded with
    /// the image). Returns the job to queue once the push commits.
    pub(crate) fn scan_on_push_in(
        &self,
        tx: &mut dyn WriteTxn,
        scope: &Scope,
        repository: &RepositoryRecord,
        image: &ImageRecord,
    ) -> EcrResult<Option<ScanJob>> {
        if ensure_scannable(image).is_err() {
            return Ok(None);
        }
        let configuration: ScanningConfiguration =
            load(tx, Table::ScanningConfigurations, &scope.key_prefix())?.unwrap_or_default();
        if !scans_on_push(&configuration, repository) {
            return Ok(None);
        }
        let repo = super::repositories::parse_name(&repository.name)?;
        let record = ScanRecord {
            status: IN_PROGRESS.to_string(),
            description: None,
            scan_type: configuration.scan_type,
            started_ms: self.clock.now_ms(),
            completed_ms: None,
            source_updated_ms: None,
            counts: BTreeMap::new(),
            injected: false,
            source_stamp: None,
        };
        save(
            tx,
            Table::ImageScans,
            &scan_key(scope, repo.as_str(), &image.digest),
            &record,
        )?;
        Ok(Some(ScanJob {
            scope: scope.clone(),
            repository: repo,
            digest: image.digest.clone(),
        }))
    }

    /// StartImageScan: records a scan in progress and queues it.
    pub fn start_image_scan(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &ImageId,
    ) -> EcrResult<(ImageRecord, ScanRecord)> {
        let now = self.clock.now_ms();
        let mut tx = self.store.write()?;
        super::repositories::get_repository(&*tx, scope, repo)?;
        let image = resolve_image(&*tx, scope, repo, id)?;
        let status = effective_status(&image, now);
        if status == ARCHIVED || status == ACTIVATING {
            return Err(EcrError::new(
                ErrorKind::ImageArchived,
                format!("The image with imageId {} in the repository with name '{repo}' in the registry with id '{}' is archived and cannot be scanned.", reference_text(id), scope.account),
            ));
        }
        ensure_scannable(&image)?;
        let configuration: ScanningConfiguration =
            load(&*tx, Table::ScanningConfigurations, &scope.key_prefix())?.unwrap_or_default();
        if configuration.scan_type == ScanType::Enhanced {
            // Amazon Inspector scans on its own schedule; ECR refuses manual
            // scans of a registry configured for it.
            return Err(EcrError::new(
                ErrorKind::Validation,
                "This feature is disabled.",
            ));
        }
        let key = scan_key(scope, repo.as_str(), &image.digest);
        if let Some(previous) = load::<ScanRecord>(&*tx, Table::ImageScans, &key)? {
            if !previous.injected && now - previous.started_ms < SCAN_QUOTA_MS {
                return Err(EcrError::new(
                    ErrorKind::LimitExceeded,
                    "The scan quota per image has been exceeded. Wait and try again.",
                ));
            }
        }
        let record = ScanRecord {
            status: IN_PROGRESS.to_string(),
            description: None,
            scan_type: configuration.scan_type,
            started_ms: now,
            completed_ms: None,
            source_updated_ms: None,
            counts: BTreeMap::new(),
            injected: false,
            source_stamp: None,
        };
        save(&mut *tx, Table::ImageScans, &key, &record)?;
        tx.commit()?;
        self.scanner.enqueue(ScanJob {
            scope: scope.clone(),
            repository: repo.clone(),
            digest: image.digest.clone(),
        });
        Ok((image, record))
    }

    /// DescribeImageScanFindings: the image's latest scan and a page of its
    /// findings (in the scanner's order: severity, then name).
    pub fn describe_image_scan_findings(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &ImageId,
        next_token: Option<&str>,
        max_results: Option<usize>,
    ) -> EcrResult<FindingsPage> {
        let tx = self.store.read()?;
        super::repositories::get_repository(&*tx, scope, repo)?;
        let image = resolve_image(&*tx, scope, repo, id)?;
        let key = scan_key(scope, repo.as_str(), &image.digest);
        let Some(scan) = load::<ScanRecord>(&*tx, Table::ImageScans, &key)? else {
            return Err(EcrError::new(
                ErrorKind::ScanNotFound,
                format!(
                    "Image scan does not exist for the image with '{}' in the repository with name '{repo}' in the registry with id '{}'",
                    reference_text(id),
                    scope.account
                ),
            ));
        };
        let all: Vec<StoredFinding> = if scan.is_finished() {
            load(&*tx, Table::ScanFindings, &key)?.unwrap_or_default()
        } else {
            Vec::new()
        };
        let start = match next_token {
            None => 0,
            Some(token) => {
                let position = decode_position(token).ok_or_else(bad_token)?;
                if position > all.len() {
                    return Err(bad_token());
                }
                position
            }
        };
        let limit = max_results.unwrap_or(DEFAULT_FINDINGS_PAGE).max(1);
        let end = (start + limit).min(all.len());
        let next_token = (end < all.len()).then(|| encode_position(end));
        let findings = all[start..end].to_vec();
        Ok(FindingsPage {
            image,
            scan,
            findings,
            next_token,
        })
    }

    /// The operator endpoint: sets an image's findings explicitly, as a
    /// finished scan marked injected.
    pub fn inject_scan_findings(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &ImageId,
        findings: Vec<InjectedFinding>,
    ) -> EcrResult<ScanRecord> {
        let now = self.clock.now_ms();
        let mut tx = self.store.write()?;
        super::repositories::get_repository(&*tx, scope, repo)?;
        let image = resolve_image(&*tx, scope, repo, id)?;
        let configuration: ScanningConfiguration =
            load(&*tx, Table::ScanningConfigurations, &scope.key_prefix())?.unwrap_or_default();
        let mut stored = Vec::with_capacity(findings.len());
        for (index, given) in findings.into_iter().enumerate() {
            let finding = super::scan_runs::injected_match(given, index)?;
            stored.push(StoredFinding {
                finding,
                first_observed_ms: now,
                updated_ms: now,
            });
        }
        super::scan_runs::sort_findings(&mut stored);
        let record = ScanRecord {
            status: COMPLETE.to_string(),
            description: Some(INJECTED_DESCRIPTION.to_string()),
            scan_type: configuration.scan_type,
            started_ms: now,
            completed_ms: Some(now),
            source_updated_ms: Some(now),
            counts: severity_counts(stored.iter().map(|s| &s.finding)),
            injected: true,
            source_stamp: None,
        };
        let key = scan_key(scope, repo.as_str(), &image.digest);
        save(&mut *tx, Table::ImageScans, &key, &record)?;
        save(&mut *tx, Table::ScanFindings, &key, &stored)?;
        tx.commit()?;
        Ok(record)
    }

    /// An image's latest scan, for DescribeImages.
    pub(crate) fn scan_of(
        tx: &(impl ReadTxn + ?Sized),
        scope: &Scope,
        repo: &str,
        digest: &crate::digest::Digest,
    ) -> EcrResult<Option<ScanRecord>> {
        load(tx, Table::ImageScans, &scan_key(scope, repo, digest))
    }

    /// The latest scans of the images `digests` of one repository (a page
    /// of a listing), read with range scans over the keys from the least to
    /// the greatest rather than one look-up each: on a
    /// networked store each look-up is a round trip, and a page of 100
    /// images would cost 100 of them.
    pub(crate) fn scans_of_page(
        tx: &(impl ReadTxn + ?Sized),
        scope: &Scope,
        repo: &str,
        digests: &[crate::digest::Digest],
    ) -> EcrResult<std::collections::HashMap<crate::digest::Digest, ScanRecord>> {
        const CHUNK: usize = 128;
        let mut found = std::collections::HashMap::new();
        let (Some(first), Some(last)) = (digests.iter().min(), digests.iter().max()) else {
            return Ok(found);
        };
        let wanted: std::collections::HashSet<&crate::digest::Digest> = digests.iter().collect();
        let first_key = scan_key(scope, repo, first);
        let last_key = scan_key(scope, repo, last);
        let prefix = &first_key[..first_key.len() - first.to_string().len()];
        // Scans begin after a key; the first key less its last character
        // sorts before it, and what lies between is filtered out below.
        let mut after = first_key[..first_key.len() - 1].to_string();
        loop {
            let batch = tx.scan(Table::ImageScans, prefix, Some(&after), CHUNK)?;
            let complete = batch.len() < CHUNK;
            for (key, value) in batch {
                if key > last_key {
                    return Ok(found);
                }
                if let Ok(digest) = crate::digest::Digest::parse(&key[prefix.len()..]) {
                    if wanted.contains(&digest) {
                        found.insert(digest, serde_json::from_slice(&value)?);
                    }
                }
                after = key;
            }
            if complete {
                return Ok(found);
            }
        }
    }

    /// The inventory kept for an image, if it was scanned before.
    pub(crate) fn inventory_of(
        tx: &(impl ReadTxn + ?Sized),
        key: &str,
    ) -> EcrResult<Option<Inventory>> {
        load(tx, Table::ImageInventories, key)
    }
}

/// The score a finding is ranked by: CVSS v3 first (what ECR and Inspector
/// report), then v4, then v2.
pub fn preferred_cvss(cvss: &[CvssScore]) -> Option<&CvssScore> {
    let rank = |v: CvssVersion| match v {
        CvssVersion::V3_1 => 0,
        CvssVersion::V3_0 => 1,
        CvssVersion::V4_0 => 2,
        CvssVersion::V2 => 3,
    };
    cvss.iter().min_by_key(|c| rank(c.version))
}

/// `[epoch:]version[-release]` of an OS package, split as Inspector
/// reports it.
pub fn split_os_version(kind: PackageKind, version: &str) -> (Option<i32>, String, Option<String>) {
    if !matches!(
        kind,
        PackageKind::Dpkg | PackageKind::Rpm | PackageKind::Apk
    ) {
        return (Some(0), version.to_string(), None);
    }
    let (epoch, rest) = match version.split_once(':') {
        Some((e, rest)) if e.chars().all(|c| c.is_ascii_digit()) && !e.is_empty() => {
            (e.parse().ok(), rest)
        }
        _ => (Some(0), version),
    };
    match rest.rsplit_once('-') {
        Some((v, release)) => (epoch, v.to_string(), Some(release.to_string())),
        None => (epoch, rest.to_string(), None),
    }
}

fn encode_position(position: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("findings:{position}"))
}

fn decode_position(token: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("findings:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        assert_eq!(decode_position(&encode_position(42)), Some(42));
        assert_eq!(decode_position("nonsense"), None);
    }
}

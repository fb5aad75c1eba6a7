//! The blob scrub: every blob re-hashed against its digest, one at a time,
//! every `--scrub-interval` (and on demand, `POST /_ecrd/scrub`).
//!
//! Whole-blob reads are checked as they stream unless the store already
//! knows the file good and unchanged (`store::disk_read`); the scrub covers
//! what that cannot see — decay beneath the file system, and blobs only ever
//! read by range — so a corrupt blob is found within one interval and set
//! aside (it then reads as absent, and a push stores it again). The memory
//! store has nothing to scrub.
//!
//! Like scans, the scrub gives way to uploads: before each blob it waits
//! while any upload is receiving or being verified (at most `MAX_WAIT`).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::error::EcrResult;
use super::Ecr;
use crate::store::fleet::FleetTask;

/// The longest the scrub waits for uploads before its next blob.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// What one scrub pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScrubReport {
    /// Blobs re-hashed.
    pub checked: u64,
    /// Blobs whose content no longer had their digest (set aside).
    pub corrupt: Vec<String>,
}

impl Ecr {
    /// Re-hashes every stored blob once.
    pub async fn scrub_blobs(self: &Arc<Self>) -> EcrResult<ScrubReport> {
        let mut report = ScrubReport::default();
        for digest in self.blobs.list().await? {
            let started = tokio::time::Instant::now();
            while self.scanner.uploads_in_flight() > 0 && started.elapsed() < MAX_WAIT {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            match self.blobs.scrub(&digest).await? {
                Some(true) => report.checked += 1,
                Some(false) => {
                    report.checked += 1;
                    report.corrupt.push(digest.to_string());
                }
                None => {}
            }
        }
        Ok(report)
    }
}

/// Scrubs every `every` until aborted.
pub async fn run_periodically(ecr: Arc<Ecr>, every: Duration) {
    super::background::repeat(
        every,
        "scrub",
        move || {
            let ecr = ecr.clone();
            async move {
                super::background::if_leading(&ecr, FleetTask::Scrub, ecr.scrub_blobs()).await
            }
        },
        |report: Option<ScrubReport>| {
            let Some(report) = report else { return };
            if report.corrupt.is_empty() {
                tracing::debug!(checked = report.checked, "scrub finished");
            } else {
                tracing::error!(
                    checked = report.checked,
                    corrupt = ?report.corrupt,
                    "scrub set corrupt blobs aside"
                );
            }
        },
    )
    .await
}

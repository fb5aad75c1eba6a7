//! What a lifecycle preview reads of a repository's images: every field of
//! an image record that a rule, a storage class or the index-holds-its-
//! children rule looks at, and not the manifest text, the blob list or the
//! subject. The manifest is most of a record's bytes; decoding it (and three
//! digests per image) was most of a preview over 100,000 images
//! (`benches/scale_bench.py`, perf: JSON string decoding, digest parsing
//! and the allocator on top).
//!
//! The records built here are views for `lifecycle_runs::plan` only: their
//! `manifest` is empty and `blobs` and `subject` are not read, so they are
//! never saved or shown. A run, which rewrites records, reads whole ones.

use serde::Deserialize;

use super::error::EcrResult;
use super::names::{RepositoryName, Scope};
use super::records::{active, ImageRecord};
use super::repositories::get_repository;
use super::Ecr;
use crate::digest::Digest;
use crate::store::Table;

/// Images read per store scan.
const SCAN_PAGE: usize = 1000;

/// The fields of an `ImageRecord` planning needs, with the record's own
/// defaults; serde skips the others without building them.
#[derive(Deserialize)]
struct PlanFields {
    digest: Digest,
    media_type: String,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    size_in_bytes: i64,
    pushed_at_ms: i64,
    #[serde(default)]
    last_pulled_ms: Option<i64>,
    #[serde(default)]
    children: Vec<Digest>,
    #[serde(default = "active")]
    status: String,
    #[serde(default)]
    last_archived_ms: Option<i64>,
    #[serde(default)]
    last_activated_ms: Option<i64>,
}

impl From<PlanFields> for ImageRecord {
    fn from(f: PlanFields) -> Self {
        ImageRecord {
            digest: f.digest,
            manifest: String::new(),
            media_type: f.media_type,
            artifact_type: f.artifact_type,
            tags: f.tags,
            size_in_bytes: f.size_in_bytes,
            pushed_at_ms: f.pushed_at_ms,
            last_pulled_ms: f.last_pulled_ms,
            subject: None,
            children: f.children,
            blobs: Vec::new(),
            status: f.status,
            last_archived_ms: f.last_archived_ms,
            last_activated_ms: f.last_activated_ms,
        }
    }
}

impl Ecr {
    /// Every image of a repository in digest order, as planning views (see
    /// the module's note), read in one transaction.
    pub(crate) fn images_for_plan(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
    ) -> EcrResult<Vec<ImageRecord>> {
        let tx = self.store.read()?;
        get_repository(&*tx, scope, repo)?;
        let prefix = format!("{}{}@", scope.key_prefix(), repo);
        let mut images = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = tx.scan(Table::Images, &prefix, after.as_deref(), SCAN_PAGE)?;
            let full = page.len() == SCAN_PAGE;
            for (_, bytes) in &page {
                images.push(serde_json::from_slice::<PlanFields>(bytes)?.into());
            }
            after = page.into_iter().next_back().map(|(k, _)| k);
            if !full {
                return Ok(images);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_view_keeps_what_planning_reads() {
        let record = ImageRecord {
            digest: Digest::sha256_of(b"m"),
            manifest: "{}".to_string(),
            media_type: "application/vnd.oci.image.manifest.v1+json".to_string(),
            artifact_type: None,
            tags: vec!["a".to_string()],
            size_in_bytes: 5,
            pushed_at_ms: 7,
            last_pulled_ms: Some(9),
            subject: Some(Digest::sha256_of(b"s")),
            children: vec![Digest::sha256_of(b"c")],
            blobs: vec![Digest::sha256_of(b"b")],
            status: "ARCHIVED".to_string(),
            last_archived_ms: Some(8),
            last_activated_ms: None,
        };
        let bytes = serde_json::to_vec(&record).unwrap();
        let view: ImageRecord = serde_json::from_slice::<PlanFields>(&bytes).unwrap().into();
        assert_eq!(
            view,
            ImageRecord {
                manifest: String::new(),
                subject: None,
                blobs: Vec::new(),
                ..record
            }
        );
    }
}

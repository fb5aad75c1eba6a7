//! The scale fixture: fills a registry with many images in one repository
//! and many (empty) repositories beside it, through the domain's own entry
//! points (`ecr::bulk`), so every record is one a client's push could have
//! made. `ecrd fixture --data-dir DIR --images N --repositories M` runs it on
//! a data directory; `benches/scale_bench.py` measures a server on the
//! result (and, for memory mode, on a snapshot of it).
//!
//! What it makes, in the registry of `scope`:
//! - `scale/images`, holding `images` images: each its own tiny config blob
//!   (so each has its own digest) over one shared layer, tagged `v000001`,
//!   `v000002`, ..., pushed at times spread over the last
//!   [`SPREAD_DAYS`] days (oldest first), so age and count rules of a
//!   lifecycle policy have work to do;
//! - `scale/repo-00001` ... so that the registry holds `repositories`
//!   repositories in all.
//!
//! The pushes go in batches of `batch` images per metadata transaction: on
//! disk a commit waits for an fsync, and one per image would be most of the
//! time spent.

use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use time::Duration;

use crate::ecr::error::{EcrError, EcrResult, ErrorKind};
use crate::ecr::names::{RepositoryName, Scope};
use crate::ecr::repositories::{parse_name, NewRepository};
use crate::ecr::Ecr;

/// The repository that holds the images.
pub const IMAGES_REPOSITORY: &str = "scale/images";
/// Push times run from this many days ago until now.
pub const SPREAD_DAYS: i64 = 200;

/// How big a fixture to make.
#[derive(Debug, Clone)]
pub struct FixtureSpec {
    /// Images in [`IMAGES_REPOSITORY`].
    pub images: usize,
    /// Repositories in the registry, [`IMAGES_REPOSITORY`] included.
    pub repositories: usize,
    /// Images (and repositories) per metadata transaction.
    pub batch: usize,
}

/// What [`fill`] made and how long it took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FixtureReport {
    pub images: usize,
    pub repositories: usize,
    pub seconds: f64,
}

/// The name of the `n`th (from 1) repository besides the images' one.
pub fn repository_name(n: usize) -> String {
    format!("scale/repo-{n:05}")
}

/// The tag of the `n`th (from 1) image.
pub fn image_tag(n: usize) -> String {
    format!("v{n:06}")
}

fn new_repository(name: String) -> NewRepository {
    NewRepository {
        name,
        tag_mutability: None,
        tag_mutability_exclusions: None,
        scan_on_push: None,
        encryption_type: None,
        kms_key: None,
        tags: Vec::new(),
    }
}

fn config_blob(n: usize) -> Bytes {
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { "ecrd.fixture.image": n.to_string() } },
        "rootfs": { "type": "layers", "diff_ids": [] },
    });
    Bytes::from(config.to_string())
}

fn manifest(
    config: &crate::digest::Digest,
    config_size: usize,
    layer: &crate::digest::Digest,
    layer_size: usize,
) -> Bytes {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.to_string(),
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer.to_string(),
            "size": layer_size,
        }],
    });
    Bytes::from(manifest.to_string())
}

/// Makes the fixture of `spec` in `scope`'s registry of `ecr`, calling
/// `progress` with the images pushed so far after each batch. Moves `ecr`'s
/// clock to date the pushes and resets it afterwards: run it on a domain
/// nothing else is using.
pub async fn fill(
    ecr: &Ecr,
    scope: &Scope,
    spec: &FixtureSpec,
    mut progress: impl FnMut(usize),
) -> EcrResult<FixtureReport> {
    let started = Instant::now();
    let batch = spec.batch.max(1);
    let repositories = spec.repositories.max(1);
    let mut names = vec![IMAGES_REPOSITORY.to_string()];
    names.extend((1..repositories).map(repository_name));
    for chunk in names.chunks(batch) {
        ecr.create_repositories(scope, chunk.iter().cloned().map(new_repository).collect())?;
    }

    let repo: RepositoryName = parse_name(IMAGES_REPOSITORY)?;
    let layer_bytes = Bytes::from_static(b"ecrd scale fixture: one layer every image shares\n");
    let layer = ecr
        .put_layers(scope, &repo, vec![layer_bytes.clone()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| EcrError::new(ErrorKind::Server, "the shared layer was not stored"))?;

    let real_now = ecr.clock.now();
    let batches = spec.images.div_ceil(batch).max(1) as i64;
    let step = Duration::days(SPREAD_DAYS) / batches as f64;
    let mut pushed = 0;
    let mut dated = Ok(());
    for (index, first) in (1..=spec.images).step_by(batch).enumerate() {
        let last = (first + batch - 1).min(spec.images);
        let configs: Vec<Bytes> = (first..=last).map(config_blob).collect();
        let sizes: Vec<usize> = configs.iter().map(Bytes::len).collect();
        let digests = ecr.put_layers(scope, &repo, configs).await?;
        let manifests: Vec<(Option<String>, Bytes)> = (first..=last)
            .zip(digests.iter().zip(sizes))
            .map(|(n, (digest, size))| {
                (
                    Some(image_tag(n)),
                    manifest(digest, size, &layer, layer_bytes.len()),
                )
            })
            .collect();
        // Oldest batch first, the last one pushed "now".
        let age = step * (batches - 1 - index as i64) as f64;
        dated = ecr.clock.try_set_now(real_now - age);
        if dated.is_err() {
            break;
        }
        let result = ecr.put_manifests(scope, &repo, &manifests);
        ecr.clock.reset();
        result?;
        pushed = last;
        progress(pushed);
    }
    ecr.clock.reset();
    dated.map_err(|e| EcrError::new(ErrorKind::Server, e.to_string()))?;
    Ok(FixtureReport {
        images: pushed,
        repositories,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ecr::image_queries::ImageFilter;
    use crate::ecr::names::{AccountId, Region};
    use std::sync::Arc;

    #[tokio::test]
    async fn fills_a_memory_registry() {
        let ecr = Ecr::new(
            Arc::new(crate::store::memory::MemoryStore::new()),
            Arc::new(crate::store::memory_blobs::MemoryBlobStore::new()),
            Arc::new(crate::ecr::clock::Clock::default()),
            "localhost".to_string(),
        );
        let scope = Scope::new(
            AccountId::parse("000000000000").unwrap(),
            Region::parse("us-east-1").unwrap(),
        );
        let spec = FixtureSpec {
            images: 25,
            repositories: 7,
            batch: 10,
        };
        let mut seen = Vec::new();
        let report = fill(&ecr, &scope, &spec, |n| seen.push(n)).await.unwrap();
        assert_eq!((report.images, report.repositories), (25, 7));
        assert_eq!(seen, vec![10, 20, 25]);
        let repo = parse_name(IMAGES_REPOSITORY).unwrap();
        let page = ecr
            .describe_images(
                &scope,
                &repo,
                None,
                &ImageFilter::default(),
                None,
                Some(1000),
            )
            .unwrap();
        assert_eq!(page.items.len(), 25);
        let mut pushed: Vec<i64> = page.items.iter().map(|d| d.image.pushed_at_ms).collect();
        pushed.sort();
        // Real time passes while a batch is pushed, so a batch's images may
        // straddle a millisecond; batches themselves are days apart.
        let batch_starts = 1 + pushed
            .windows(2)
            .filter(|w| w[1] - w[0] > 3_600_000)
            .count();
        assert_eq!(batch_starts, 3, "one push time per batch");
        let repos = ecr.catalog(&scope, None, 100).unwrap().0;
        assert_eq!(repos.len(), 7);
    }
}

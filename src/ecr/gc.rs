//! Online garbage collection: frees the blobs no image needs any more, the
//! layer links no image uses, and abandoned uploads, while the registry
//! keeps serving pushes and pulls (no read-only mode).
//!
//! # What is live
//!
//! A blob is live while
//! - an image record (any repository, any account) lists it in `blobs`
//!   (its config and layers; for records without that list the manifest is
//!   parsed; if one cannot be, no blob is deleted in that run), or
//! - a layer link (`Table::Layers`) points at it that an image of its
//!   repository references, or that is younger than the grace period (a
//!   layer just pushed whose manifest has not come yet).
//!
//! Layer links older than the grace period that no image of their
//! repository references are removed, as ECR drops layers no image uses.
//! Blobs that are not live and were stored longer ago than the grace period
//! are deleted. Upload sessions idle for the grace period (by the later of
//! their start and the last byte received), sessions whose repository or
//! data is gone, and upload data without a session record (a crash between
//! the two) are removed. Deleting an image or a repository therefore frees
//! its blobs' space once nothing else uses them and the grace has passed.
//!
//! # Time
//!
//! "Now" is ecrd's clock (`Ecr::clock`), as for every other age. Records
//! carry ecrd-clock times; the blob store stamps blobs and uploads with the
//! system clock (file mtimes on disk), and those stamps are read as points
//! on ecrd's clock. With no clock offset (production) both are the same;
//! moving the clock forward ages everything alike, which is how tests age
//! things without sleeping. Something the store stamps after such a jump
//! looks older than it is. For blobs that is harmless: no push in progress
//! depends on a time comparison (below), and a pushed layer's link carries
//! an ecrd-clock time, so it keeps its grace. An upload session that spans
//! a forward jump larger than the grace may look idle and be ended (the
//! client starts again); acknowledged content is never affected.
//!
//! # Races
//!
//! Three steps handle a blob or an upload while no record refers to it, and
//! hold `Ecr::collection` shared meanwhile: `complete_upload` from
//! `finish_upload` (which stores the blob, or keeps a copy already there)
//! until the layer link commits, `mount_layer` (and the pull-through cache's
//! and replication's copies) from seeing the blob present until its link or
//! image commits, and `start_upload` from making the upload's data until its
//! session record commits.
//!
//! A collection plans without holding writers back:
//! 1. it turns on `Ecr::gc_watch`, which records every put to the images,
//!    layer links and upload sessions tables from then on (`store::watched`),
//!    and waits until every step that was in flight has committed
//!    (`CollectionLock::drain`, which holds no new step back): what they
//!    wrote is in the snapshot, and what anyone writes later is in the
//!    watch;
//! 2. it lists the blob store and plans from one snapshot, while pushes go
//!    on;
//! 3. it drains the steps in flight again and drops from the plan the uploads
//!    they started or finished (in the snapshot these look like data without
//!    a session, or a session without data); if the plan still frees
//!    something, it takes `collection` exclusively (no link, blob or upload
//!    is being made) and, in a write transaction serialised with every other
//!    metadata write, re-reads the images of each repository whose links it
//!    is about to remove and keeps any link (and so its blob) that an image
//!    now references; then it turns the watch off and keeps every blob an
//!    image or a link written meanwhile names and every upload whose session
//!    was written meanwhile; only then does it delete.
//!
//! Once step 3's transaction commits, a planned blob has no link and no
//! image anywhere, and none can appear before the file is gone (a new image
//! needs a link in its repository, which `put_manifest` checks inside its
//! transaction; a new link needs the shared lock). A push of the same
//! content after the collection stores a fresh copy. Hence no acknowledged
//! push loses a blob, whatever the grace (0 included) or the clock.
//!
//! The cost: pushes finishing a blob wait only for step 3's exclusive hold
//! (work in proportion to what is freed; none when the plan frees nothing,
//! since what is written meanwhile can only keep more), not for the drains
//! nor for the plan's scan of every image, which is what grows with the
//! registry. Since steps that arrive while a collection waits for the lock
//! queue behind it, a step's hold is kept to the instant of publishing:
//! `complete_upload` makes the upload durable and checks its digest
//! (`BlobStore::prepare_finish`) before it asks. Appends to uploads never
//! wait. A client returning to a session idle for longer than the grace finds
//! it gone (BLOB_UPLOAD_UNKNOWN) and starts again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::collection_lock::CollectionGuard;
use super::error::{EcrError, EcrResult, ErrorKind};
use super::images::image_blobs;
use super::records::{ImageRecord, LayerRecord, UploadRecord};
use super::{load, Ecr};
use crate::digest::Digest;
use crate::store::blobs::{BlobError, BlobStat, UploadStat};
use crate::store::fleet::FleetTask;
use crate::store::{ReadTxn, Table};

/// Entries read per scan call.
const PAGE: usize = 1000;

/// The tables whose writes a collection must learn of while it plans.
pub(crate) const WATCHED_TABLES: &[Table] = &[Table::Images, Table::Layers, Table::Uploads];

/// What a collection did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    pub grace_seconds: u64,
    /// Blobs deleted from the blob store.
    pub blobs_deleted: Vec<Digest>,
    /// Their bytes.
    pub blob_bytes_freed: u64,
    /// Blobs left in place.
    pub blobs_kept: usize,
    /// Layer links removed, as `<account>/<region>/<repository>@<digest>`.
    pub layers_unlinked: Vec<String>,
    /// Upload sessions (and data without a session) removed.
    pub uploads_removed: Vec<String>,
    /// The bytes those uploads held.
    pub upload_bytes_freed: u64,
    /// Why no blob was deleted, when the live set could not be known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobs_skipped: Option<String>,
    pub duration_ms: u64,
}

/// What the snapshot says should go, before the write transaction confirms it.
#[derive(Default)]
struct Plan {
    /// Blobs that must stay.
    live: HashSet<Digest>,
    /// Set when some image's blobs are unknown: then no blob is deleted.
    uncertain: Option<String>,
    /// Old links no image of their repository references, by repository key.
    links: BTreeMap<String, Vec<(String, Digest)>>,
    /// Sessions to end, with the record as the snapshot read it.
    sessions: Vec<(String, Vec<u8>)>,
    /// Upload data no session record owns.
    orphans: Vec<String>,
}

impl Plan {
    /// Whether the blob goes: no image or link keeps it, and it is older
    /// than the grace.
    fn frees_blob(&self, blob: &BlobStat, cutoff: i64) -> bool {
        self.uncertain.is_none()
            && !self.live.contains(&blob.digest)
            && epoch_ms(blob.stored) <= cutoff
    }

    fn frees_something(&self, blobs: &[BlobStat], cutoff: i64) -> bool {
        !self.links.is_empty()
            || !self.sessions.is_empty()
            || !self.orphans.is_empty()
            || blobs.iter().any(|blob| self.frees_blob(blob, cutoff))
    }
}

/// What step 3 leaves to delete, and the hold it is deleted under.
struct Confirmed {
    cutoff: i64,
    uploads: Vec<UploadStat>,
    blobs: Vec<BlobStat>,
    plan: Plan,
    /// Links removed by the confirming transaction.
    unlinked: Vec<String>,
    /// Sessions ended by it, whose data goes too.
    ended: Vec<String>,
    /// Held until the deletions are done; none when nothing is freed.
    _exclusive: Option<CollectionGuard>,
}

pub(crate) fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Splits `<account>/<region>/<repository>@<digest>` (image and layer keys).
fn split_key(key: &str) -> Option<(&str, Digest)> {
    let (repo, digest) = key.rsplit_once('@')?;
    Some((repo, Digest::parse(digest).ok()?))
}

/// Calls `each` for every entry of `table` under `prefix`, page by page.
pub(crate) fn for_each(
    tx: &dyn ReadTxn,
    table: Table,
    prefix: &str,
    mut each: impl FnMut(&str, &[u8]) -> EcrResult<()>,
) -> EcrResult<()> {
    let mut after: Option<String> = None;
    loop {
        let page = tx.scan(table, prefix, after.as_deref(), PAGE)?;
        for (key, value) in &page {
            each(key, value)?;
        }
        if page.len() < PAGE {
            return Ok(());
        }
        after = page.last().map(|(k, _)| k.clone());
    }
}

impl Ecr {
    /// Runs one collection with the given grace period (see the module
    /// documentation for what goes and why it is safe while serving).
    pub async fn collect_garbage(self: &Arc<Self>, grace: Duration) -> EcrResult<GcReport> {
        let started_ms = self.clock.now_ms();
        let result = self.collect(grace).await;
        let (outcome, failed) = match &result {
            Ok(report) => (
                format!(
                    "{} blobs deleted ({} bytes), {} kept, {} layer links and {} uploads removed",
                    report.blobs_deleted.len(),
                    report.blob_bytes_freed,
                    report.blobs_kept,
                    report.layers_unlinked.len(),
                    report.uploads_removed.len()
                ),
                false,
            ),
            Err(e) => (e.to_string(), true),
        };
        self.record_task_run("garbage collection", started_ms, outcome, failed);
        result
    }

    async fn collect(self: &Arc<Self>, grace: Duration) -> EcrResult<GcReport> {
        let started = Instant::now();
        let _one_at_a_time = self.collecting.lock().await;
        // Step 1 (see the module documentation): watch, then let the steps
        // in flight commit.
        self.gc_watch.start()?;
        let confirmed = self.plan_and_confirm(grace).await;
        // After the confirming transaction: what another replica commits
        // later cannot name a blob planned here (see "Races").
        let written = self.gc_watch.stop();
        let Confirmed {
            cutoff,
            uploads,
            blobs,
            mut plan,
            unlinked,
            ended,
            _exclusive,
        } = confirmed?;
        let written = written?;
        let mut written_uploads: HashSet<String> = HashSet::new();
        for (table, key, value) in written {
            match table {
                Table::Images => {
                    let blobs = serde_json::from_slice::<ImageRecord>(&value)
                        .map_err(EcrError::from)
                        .and_then(|image| image_blobs(&image));
                    match blobs {
                        Ok(digests) => plan.live.extend(digests),
                        Err(e) => {
                            plan.uncertain.get_or_insert(format!(
                                "the blobs of image {key}, written during the collection, cannot be told ({}), so no blob was deleted",
                                e.message
                            ));
                        }
                    }
                }
                Table::Layers => {
                    if let Some((_, digest)) = split_key(&key) {
                        plan.live.insert(digest);
                    }
                }
                Table::Uploads => {
                    written_uploads.insert(key);
                }
                _ => {}
            }
        }
        plan.orphans.retain(|id| !written_uploads.contains(id));

        let mut report = GcReport {
            grace_seconds: grace.as_secs(),
            layers_unlinked: unlinked,
            blobs_skipped: plan.uncertain.clone(),
            ..GcReport::default()
        };
        for blob in blobs {
            if !plan.frees_blob(&blob, cutoff) {
                report.blobs_kept += 1;
                continue;
            }
            self.blobs.delete(&blob.digest).await?;
            report.blob_bytes_freed += blob.size;
            report.blobs_deleted.push(blob.digest);
        }
        let sizes: HashMap<&str, &UploadStat> =
            uploads.iter().map(|u| (u.id.as_str(), u)).collect();
        for id in ended.into_iter().chain(plan.orphans) {
            match self.blobs.cancel_upload(&id).await {
                Ok(()) => {
                    report.upload_bytes_freed += sizes.get(id.as_str()).map_or(0, |u| u.size);
                    report.uploads_removed.push(id);
                }
                // Its data was gone already: the record was what was left.
                Err(BlobError::UploadUnknown) => report.uploads_removed.push(id),
                Err(BlobError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    return Err(EcrError::new(
                        ErrorKind::Server,
                        format!("cannot remove upload {id}: {e}"),
                    ))
                }
            }
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(report)
    }

    /// Steps 1 to 3 with the watch on, up to the deletions.
    async fn plan_and_confirm(self: &Arc<Self>, grace: Duration) -> EcrResult<Confirmed> {
        let (cutoff, uploads, blobs, mut plan) = self.plan_watched(grace).await?;
        // Step 3. A session written since the watch began is in use,
        // whatever the snapshot said (its data may have been made after the
        // listing), and an upload that ended since is not anyone's to
        // remove: once the steps in flight have committed, both are dropped
        // from the plan. What is written meanwhile can only keep more, so a
        // plan that frees nothing then needs neither the lock nor the
        // transaction (most collections: pushes never wait for them); one
        // that frees something drops fresh sessions again under the lock,
        // when no step is in flight.
        self.settle(&mut plan).await?;
        if !plan.frees_something(&blobs, cutoff) {
            return Ok(Confirmed {
                cutoff,
                uploads,
                blobs,
                plan,
                unlinked: Vec::new(),
                ended: Vec::new(),
                _exclusive: None,
            });
        }
        let exclusive = self.collection.write().await?;
        self.drop_fresh_uploads(&mut plan)?;
        let ecr = self.clone();
        let (plan, unlinked, ended) =
            tokio::task::spawn_blocking(move || ecr.confirm(cutoff, plan))
                .await
                .map_err(|e| {
                    EcrError::new(ErrorKind::Server, format!("collection failed: {e}"))
                })??;
        Ok(Confirmed {
            cutoff,
            uploads,
            blobs,
            plan,
            unlinked,
            ended,
            _exclusive: Some(exclusive),
        })
    }

    /// Steps 1 and 2: lets the steps in flight commit, lists the blob
    /// store and plans from one snapshot, holding no lock meanwhile.
    async fn plan_watched(
        self: &Arc<Self>,
        grace: Duration,
    ) -> EcrResult<(i64, Vec<UploadStat>, Vec<BlobStat>, Plan)> {
        self.collection.drain().await?;
        let now_ms = (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64;
        let cutoff = now_ms.saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        let uploads = self.blobs.list_uploads().await?;
        let blobs = self.blobs.list_stats().await?;
        let ecr = self.clone();
        let listed = uploads.clone();
        let plan = tokio::task::spawn_blocking(move || ecr.plan(cutoff, &listed))
            .await
            .map_err(|e| EcrError::new(ErrorKind::Server, format!("collection failed: {e}")))??;
        Ok((cutoff, uploads, blobs, plan))
    }

    /// Keeps the sessions written since the watch began, and their data.
    fn drop_fresh_uploads(&self, plan: &mut Plan) -> EcrResult<()> {
        let fresh = self.gc_watch.keys_of(Table::Uploads)?;
        plan.sessions.retain(|(id, _)| !fresh.contains(id));
        plan.orphans.retain(|id| !fresh.contains(id));
        Ok(())
    }

    /// Lets the steps in flight since the plan commit (uploads starting
    /// or finishing then look orphaned or gone in the snapshot), then drops
    /// what they took from the plan.
    async fn settle(&self, plan: &mut Plan) -> EcrResult<()> {
        self.collection.drain().await?;
        self.drop_fresh_uploads(plan)?;
        self.drop_settled_uploads(plan).await
    }

    /// Drops from the plan the uploads that ended by themselves since it
    /// was made, mostly ones that finished between the listing and the
    /// snapshot: data listed without a session (it has become a blob since),
    /// a session whose data was not listed (its record is gone since).
    /// Neither is anyone's to remove, and a plan holding only those must
    /// not make pushes wait for step 3.
    async fn drop_settled_uploads(&self, plan: &mut Plan) -> EcrResult<()> {
        let mut orphans = Vec::with_capacity(plan.orphans.len());
        for id in std::mem::take(&mut plan.orphans) {
            match self.blobs.upload_size(&id).await {
                Err(BlobError::UploadUnknown) => {}
                _ => orphans.push(id),
            }
        }
        plan.orphans = orphans;
        if !plan.sessions.is_empty() {
            let tx = self.store.read()?;
            let mut sessions = Vec::with_capacity(plan.sessions.len());
            for (id, planned) in std::mem::take(&mut plan.sessions) {
                if tx.get(Table::Uploads, &id)?.as_ref() == Some(&planned) {
                    sessions.push((id, planned));
                }
            }
            plan.sessions = sessions;
        }
        Ok(())
    }

    /// Reads one snapshot and decides what should go.
    fn plan(&self, cutoff: i64, uploads: &[UploadStat]) -> EcrResult<Plan> {
        let tx = self.store.read()?;
        let mut plan = Plan::default();

        // Every image's blobs, globally and per repository.
        let mut used: HashSet<(String, Digest)> = HashSet::new();
        for_each(&*tx, Table::Images, "", |key, value| {
            let image: ImageRecord = serde_json::from_slice(value)?;
            let repo = key.rsplit_once('@').map_or(key, |(r, _)| r);
            match image_blobs(&image) {
                Ok(digests) => {
                    for d in digests {
                        plan.live.insert(d.clone());
                        used.insert((repo.to_string(), d));
                    }
                }
                Err(e) => {
                    tracing::warn!(image = key, error = %e, "cannot tell which blobs an image needs; no blob is collected");
                    plan.uncertain = Some(format!(
                        "the blobs of image {key} cannot be told ({}), so no blob was deleted",
                        e.message
                    ));
                }
            }
            Ok(())
        })?;

        // Links: used or young ones keep their blob; old unused ones go.
        for_each(&*tx, Table::Layers, "", |key, value| {
            let Some((repo, digest)) = split_key(key) else {
                return Ok(());
            };
            let link: LayerRecord = serde_json::from_slice(value)?;
            if used.contains(&(repo.to_string(), digest.clone())) {
                return Ok(());
            }
            if link.added_at_ms > cutoff {
                plan.live.insert(digest);
            } else {
                plan.links
                    .entry(repo.to_string())
                    .or_default()
                    .push((key.to_string(), digest));
            }
            Ok(())
        })?;

        // Upload sessions and their data.
        let data: HashMap<&str, &UploadStat> = uploads.iter().map(|u| (u.id.as_str(), u)).collect();
        let mut recorded: HashSet<String> = HashSet::new();
        for_each(&*tx, Table::Uploads, "", |key, value| {
            recorded.insert(key.to_string());
            let session: UploadRecord = serde_json::from_slice(value)?;
            let repository = format!("{}{}", session.scope.key_prefix(), session.repository);
            let stale = match data.get(key) {
                // Its data is gone: the session cannot go on.
                None => true,
                Some(stat) => session.started_at_ms.max(epoch_ms(stat.active)) <= cutoff,
            };
            if stale || tx.get(Table::Repositories, &repository)?.is_none() {
                plan.sessions.push((key.to_string(), value.to_vec()));
            }
            Ok(())
        })?;
        plan.orphans = uploads
            .iter()
            .filter(|u| !recorded.contains(&u.id))
            .map(|u| u.id.clone())
            .collect();
        Ok(plan)
    }

    /// In one write transaction: removes the planned links no image uses by
    /// now and the planned sessions still as planned. Returns the plan with
    /// the blobs of kept links marked live, the links removed and the
    /// sessions ended.
    fn confirm(&self, cutoff: i64, mut plan: Plan) -> EcrResult<(Plan, Vec<String>, Vec<String>)> {
        let mut tx = self.store.write()?;
        let mut unlinked = Vec::new();
        for (repo, links) in std::mem::take(&mut plan.links) {
            // Images pushed since the snapshot may use these links now.
            let mut used: HashSet<Digest> = HashSet::new();
            let mut unknown = None;
            for_each(&*tx, Table::Images, &format!("{repo}@"), |key, value| {
                let image: ImageRecord = serde_json::from_slice(value)?;
                match image_blobs(&image) {
                    Ok(digests) => used.extend(digests),
                    Err(e) => unknown = Some(format!("image {key}: {}", e.message)),
                }
                Ok(())
            })?;
            if let Some(why) = unknown {
                // Cannot tell which of this repository's links are used.
                for (_, digest) in links {
                    plan.live.insert(digest);
                }
                plan.uncertain.get_or_insert(why);
                continue;
            }
            for (key, digest) in links {
                let current: Option<LayerRecord> = load(&*tx, Table::Layers, &key)?;
                match current {
                    Some(link) if link.added_at_ms <= cutoff && !used.contains(&digest) => {
                        tx.delete(Table::Layers, &key)?;
                        unlinked.push(key);
                    }
                    Some(_) => {
                        plan.live.insert(digest);
                    }
                    None => {}
                }
            }
        }
        let mut ended = Vec::new();
        for (id, snapshot) in std::mem::take(&mut plan.sessions) {
            match tx.get(Table::Uploads, &id)? {
                Some(current) if current == snapshot => {
                    tx.delete(Table::Uploads, &id)?;
                    ended.push(id);
                }
                // Ended meanwhile: its data may still need removing.
                None => ended.push(id),
                // Written meanwhile (a part arrived): in use after all.
                Some(_) => {}
            }
        }
        tx.commit()?;
        Ok((plan, unlinked, ended))
    }
}

/// Collects every `every`, with the given grace, until the task is aborted.
/// A collection that fails or panics is logged and the next interval
/// collects again (`background::repeat`).
pub async fn run_periodically(ecr: Arc<Ecr>, every: Duration, grace: Duration) {
    super::background::repeat(
        every,
        "garbage collection",
        move || {
            let ecr = ecr.clone();
            async move {
                super::background::if_leading(
                    &ecr,
                    FleetTask::GarbageCollection,
                    ecr.collect_garbage(grace),
                )
                .await
            }
        },
        |report: Option<GcReport>| {
            let Some(report) = report else { return };
            if !report.blobs_deleted.is_empty() || !report.uploads_removed.is_empty() {
                tracing::info!(
                    blobs = report.blobs_deleted.len(),
                    blob_bytes = report.blob_bytes_freed,
                    layers_unlinked = report.layers_unlinked.len(),
                    uploads = report.uploads_removed.len(),
                    upload_bytes = report.upload_bytes_freed,
                    "garbage collected"
                )
            } else {
                tracing::debug!(
                    blobs_kept = report.blobs_kept,
                    layers_unlinked = report.layers_unlinked.len(),
                    "garbage collection found nothing to free"
                )
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ecr::clock::Clock;
    use crate::ecr::images::image_key;
    use crate::ecr::manifest;
    use crate::ecr::names::{AccountId, Region, RepositoryName, Scope};
    use crate::ecr::repositories::NewRepository;
    use crate::ecr::save;
    use crate::store::memory::MemoryStore;
    use crate::store::memory_blobs::MemoryBlobStore;
    use bytes::Bytes;

    fn scope() -> Scope {
        Scope::new(
            AccountId::parse("000000000000").unwrap(),
            Region::parse("us-east-1").unwrap(),
        )
    }

    async fn layer(ecr: &Ecr, repo: &RepositoryName, data: &'static [u8]) -> Digest {
        let id = ecr.start_upload(&scope(), repo).await.unwrap();
        let body: crate::store::blobs::ByteStream = Box::pin(futures_util::stream::iter(vec![Ok(
            Bytes::from_static(data),
        )]));
        ecr.append_upload(&scope(), repo, &id, None, body)
            .await
            .unwrap();
        let digest = Digest::sha256_of(data);
        ecr.complete_upload(&scope(), repo, &id, &digest)
            .await
            .unwrap();
        digest
    }

    /// An image stored before records listed their blobs (or whose list is
    /// otherwise empty) keeps them through its manifest; an image whose
    /// blobs cannot be told stops every blob deletion.
    #[tokio::test]
    async fn blobs_come_from_the_manifest_when_the_record_has_none() {
        let ecr = Arc::new(Ecr::new(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryBlobStore::new()),
            Arc::new(Clock::default()),
            "localhost:4566".into(),
        ));
        ecr.create_repository(
            &scope(),
            NewRepository {
                name: "old".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let repo = RepositoryName::parse("old").unwrap();
        let config = layer(&ecr, &repo, b"{}").await;
        let data = layer(&ecr, &repo, b"old layer").await;
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{data}","size":9}}]}}"#,
            manifest::OCI_MANIFEST
        );
        let pushed = ecr
            .put_manifest(
                &scope(),
                &repo,
                Some("v1"),
                None,
                &Bytes::from(manifest),
                None,
            )
            .unwrap();
        let key = image_key(&scope(), "old", &pushed.image.digest);
        let rewrite = |image: &ImageRecord| {
            let mut tx = ecr.store.write().unwrap();
            save(&mut *tx, Table::Images, &key, image).unwrap();
            tx.commit().unwrap();
        };
        let mut image = pushed.image.clone();
        image.blobs.clear();
        rewrite(&image);
        let report = ecr.collect_garbage(Duration::ZERO).await.unwrap();
        assert!(report.blobs_deleted.is_empty(), "{report:?}");
        assert!(report.layers_unlinked.is_empty(), "{report:?}");
        assert_eq!(report.blobs_kept, 2);

        // Unknown blobs: nothing is deleted, and the report says why.
        image.manifest = "not a manifest".into();
        rewrite(&image);
        let stray = ecr.blobs.put(Bytes::from_static(b"stray")).await.unwrap();
        let report = ecr.collect_garbage(Duration::ZERO).await.unwrap();
        assert!(report.blobs_deleted.is_empty(), "{report:?}");
        assert!(report.blobs_skipped.as_deref().unwrap().contains(&key));
        assert!(ecr.blobs.size(&stray).await.unwrap().is_some());

        // Once the image is readable again, only the stray blob goes.
        rewrite(&pushed.image);
        let report = ecr.collect_garbage(Duration::ZERO).await.unwrap();
        assert_eq!(report.blobs_deleted, vec![stray]);
        assert_eq!(report.blobs_skipped, None);
    }
}

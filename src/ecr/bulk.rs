//! Bulk entry points: many repositories, many blobs or many manifests, each
//! batch in one metadata transaction. They exist for the scale fixture
//! (`crate::fixture`) and anything else that loads a lot at once: on disk a
//! commit waits for an fsync (`synchronous=FULL`), so pushing 100,000 images
//! one transaction each would spend minutes waiting on the disk.
//!
//! No rule lives here. Each item goes through the same checks and the same
//! in-transaction steps as a single CreateRepository, blob upload or
//! manifest push (`create_repository`, `link_layer`, `put_manifest_in`);
//! a batch is all or nothing, like one call that failed part way would be.

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};

use super::error::{EcrError, EcrResult};
use super::images::{check_manifest, Origin, PushedImage};
use super::names::{RepositoryName, Scope};
use super::records::RepositoryRecord;
use super::repositories::{insert_repository_in, NewRepository};
use super::Ecr;
use crate::digest::Digest;

/// Blobs [`Ecr::put_layers`] stores at once.
const PUT_CONCURRENCY: usize = 32;

impl Ecr {
    /// CreateRepository for each of `repositories`, in one transaction.
    pub fn create_repositories(
        &self,
        scope: &Scope,
        repositories: Vec<NewRepository>,
    ) -> EcrResult<Vec<RepositoryRecord>> {
        let records = repositories
            .into_iter()
            .map(|new| self.new_repository_record(scope, new))
            .collect::<EcrResult<Vec<_>>>()?;
        let mut tx = self.store.write()?;
        for record in &records {
            insert_repository_in(&mut *tx, scope, record)?;
        }
        tx.commit()?;
        Ok(records)
    }

    /// Stores each blob and links it into `repo` (what a completed upload
    /// does), the links in one transaction. Returns the digests in order.
    pub async fn put_layers(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        blobs: Vec<Bytes>,
    ) -> EcrResult<Vec<Digest>> {
        self.repository_for_push(scope, repo)?;
        // A stored blob nothing links to yet looks orphaned to garbage
        // collection, which waits for this guard (see `gc`).
        let _publishing = self.collection.read().await?;
        // Several at once: a disk store syncs each blob file, and those
        // waits overlap.
        let stored: Vec<(Digest, u64)> = futures_util::stream::iter(blobs)
            .map(|data| async move {
                let size = data.len() as u64;
                Ok::<_, EcrError>((self.blobs.put(data).await?, size))
            })
            .buffered(PUT_CONCURRENCY)
            .try_collect()
            .await?;
        let mut tx = self.store.write()?;
        for (digest, size) in &stored {
            self.link_layer(&mut *tx, scope, repo, digest, *size)?;
        }
        tx.commit()?;
        Ok(stored.into_iter().map(|(digest, _)| digest).collect())
    }

    /// A manifest push (as `put_manifest`, media type from the manifest) for
    /// each `(tag, manifest)`, in order, in one transaction.
    pub fn put_manifests(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        manifests: &[(Option<String>, Bytes)],
    ) -> EcrResult<Vec<PushedImage>> {
        self.repository_for_push(scope, repo)?;
        let checked = manifests
            .iter()
            .map(|(tag, bytes)| check_manifest(tag.as_deref(), None, bytes, None))
            .collect::<EcrResult<Vec<_>>>()?;
        let mut tx = self.store.write()?;
        let mut pushed = Vec::with_capacity(checked.len());
        let mut scans = Vec::new();
        for ((tag, _), checked) in manifests.iter().zip(checked) {
            let (image, scan) =
                self.put_manifest_in(&mut *tx, scope, repo, tag.as_deref(), checked, Origin::Push)?;
            scans.extend(scan);
            pushed.push(image);
        }
        if pushed.iter().any(|p| p.changed) {
            tx.commit()?;
        }
        for job in scans {
            self.scanner.enqueue(job);
        }
        Ok(pushed)
    }
}

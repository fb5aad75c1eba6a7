//! What the pull through cache is fetching right now, so that concurrent
//! pulls share one fetch instead of each going to the upstream:
//!
//! - image imports: a manifest fetched and verified whose blobs are still
//!   being imported in the background, found by the reference it was pulled
//!   by and by its digest; a pull that finds one is answered with that
//!   manifest and starts nothing;
//! - blob fetches: at most one fetch of a digest at a time (an import's, or
//!   a client's `/v2/` GET streamed through); whoever finds a digest claimed
//!   waits until the claim ends, then uses the stored blob (or, if that
//!   fetch failed, claims it and fetches it itself).
//!
//! A layer download URL (GetDownloadUrlForLayer) is only handed out for a
//! layer an image uses, so it waits for the imports in flight that need
//! the layer ([`InFlight::wait_for_images_needing`]).
//!
//! Entries leave when their guard drops: an import's once its image is
//! committed or has failed, a blob's once it is stored (and linked) or has
//! failed. Nothing here is persisted: a restart forgets fetches in flight,
//! and the next pull starts them again.
//!
//! Lock order (see `gc`): a fetcher takes `Ecr::collection` shared *before*
//! it claims a blob, and nobody takes it while holding or waiting for a
//! claim, so a collection waiting for the lock never stalls a fetch another
//! fetch waits for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::cache::FetchedImage;
use crate::digest::Digest;

type ImageMap = Arc<Mutex<HashMap<String, ImageEntry>>>;

/// An import in flight: its manifest, the blobs it imports, and a signal
/// that ends with it.
#[derive(Clone)]
struct ImageEntry {
    fetched: FetchedImage,
    blobs: Arc<Vec<Digest>>,
    done: watch::Receiver<()>,
}
type BlobMap = Arc<Mutex<HashMap<String, watch::Receiver<()>>>>;

/// The imports and blob fetches in flight (one per `Ecr`).
#[derive(Default)]
pub struct InFlight {
    images: ImageMap,
    blobs: BlobMap,
}

/// Keeps an import registered; dropping it ends the registration.
pub struct ImageGuard {
    keys: Vec<String>,
    map: ImageMap,
    /// Dropped after the entries are removed: waiters wake to a committed
    /// (or abandoned) import.
    _done: watch::Sender<()>,
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock() {
            for key in &self.keys {
                map.remove(key);
            }
        }
    }
}

/// A claim on fetching one blob; dropping it wakes whoever waits.
pub struct BlobGuard {
    key: String,
    map: BlobMap,
    /// Dropped after the entry is removed: waiters wake to a free digest.
    _done: watch::Sender<()>,
}

impl Drop for BlobGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&self.key);
        }
    }
}

/// The outcome of claiming a blob.
pub enum BlobClaim {
    /// The caller fetches it.
    Mine(BlobGuard),
    /// Someone else is fetching it: wait with [`BlobClaim::wait`].
    Theirs(watch::Receiver<()>),
}

impl BlobClaim {
    /// Waits until another fetcher's claim ends (at once for `Mine`).
    pub async fn wait(self) {
        if let BlobClaim::Theirs(mut rx) = self {
            // Never sent to: this returns when the sender is dropped.
            let _ = rx.changed().await;
        }
    }
}

impl InFlight {
    /// The manifest of an import in flight under `key`.
    pub fn image(&self, key: &str) -> Option<FetchedImage> {
        Some(self.images.lock().ok()?.get(key)?.fetched.clone())
    }

    /// Registers an import of `blobs` under every key (each starting with
    /// the repository's key prefix), unless one is in flight under any of
    /// them: then `Err` with that import's manifest.
    pub fn begin_image(
        &self,
        keys: Vec<String>,
        fetched: &FetchedImage,
        blobs: &[Digest],
    ) -> Result<ImageGuard, FetchedImage> {
        let (tx, rx) = watch::channel(());
        let mut map = match self.images.lock() {
            Ok(map) => map,
            // A poisoned map only loses sharing: import without registering.
            Err(_) => {
                return Ok(ImageGuard {
                    keys: Vec::new(),
                    map: self.images.clone(),
                    _done: tx,
                })
            }
        };
        if let Some(existing) = keys.iter().find_map(|k| map.get(k)) {
            return Err(existing.fetched.clone());
        }
        let entry = ImageEntry {
            fetched: fetched.clone(),
            blobs: Arc::new(blobs.to_vec()),
            done: rx,
        };
        for key in &keys {
            map.insert(key.clone(), entry.clone());
        }
        Ok(ImageGuard {
            keys,
            map: self.images.clone(),
            _done: tx,
        })
    }

    /// Waits until no import in flight under keys starting with
    /// `repo_prefix` still imports `digest`.
    pub async fn wait_for_images_needing(&self, repo_prefix: &str, digest: &Digest) {
        loop {
            let waiting = self.images.lock().ok().and_then(|map| {
                map.iter()
                    .find(|(k, e)| k.starts_with(repo_prefix) && e.blobs.contains(digest))
                    .map(|(_, e)| e.done.clone())
            });
            let Some(mut done) = waiting else { return };
            // Never sent to: this returns when the import's guard drops.
            let _ = done.changed().await;
        }
    }

    /// Imports in flight (each counted once).
    pub fn images_in_flight(&self) -> usize {
        self.images.lock().map_or(0, |map| {
            let mut digests: Vec<&Digest> = map.values().map(|e| &e.fetched.digest).collect();
            digests.sort();
            digests.dedup();
            digests.len()
        })
    }

    /// Claims fetching `digest`, or tells who has.
    pub fn claim_blob(&self, digest: &Digest) -> BlobClaim {
        let key = digest.to_string();
        let (tx, rx) = watch::channel(());
        let Ok(mut map) = self.blobs.lock() else {
            // Poisoned: fetch without sharing (a duplicate fetch at worst).
            drop(rx);
            return BlobClaim::Mine(BlobGuard {
                key: String::new(),
                map: self.blobs.clone(),
                _done: tx,
            });
        };
        if let Some(theirs) = map.get(&key) {
            return BlobClaim::Theirs(theirs.clone());
        }
        map.insert(key.clone(), rx);
        BlobClaim::Mine(BlobGuard {
            key,
            map: self.blobs.clone(),
            _done: tx,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;

    fn fetched(seed: &str) -> FetchedImage {
        let manifest = Bytes::from(seed.to_string());
        FetchedImage {
            digest: Digest::sha256_of(&manifest),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            manifest,
        }
    }

    #[tokio::test]
    async fn imports_and_blobs_are_shared_until_their_guard_drops() {
        let in_flight = InFlight::default();
        let a = fetched("a");
        let guard = in_flight
            .begin_image(
                vec!["r:v1".into(), "r:sha".into()],
                &a,
                &[Digest::sha256_of(b"blob")],
            )
            .unwrap();
        assert_eq!(in_flight.images_in_flight(), 1);
        assert_eq!(in_flight.image("r:sha").unwrap().digest, a.digest);
        let joined = in_flight
            .begin_image(vec!["r:sha".into()], &fetched("b"), &[])
            .err()
            .unwrap();
        assert_eq!(joined.digest, a.digest);
        let in_flight = Arc::new(in_flight);
        let blob = Digest::sha256_of(b"blob");
        // Another repository's imports, or another blob: no wait.
        in_flight.wait_for_images_needing("q:", &blob).await;
        in_flight
            .wait_for_images_needing("r:", &Digest::sha256_of(b"other"))
            .await;
        let shared = in_flight.clone();
        let waiter = tokio::spawn(async move { shared.wait_for_images_needing("r:", &blob).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(guard);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(in_flight.image("r:v1").is_none());
        assert_eq!(in_flight.images_in_flight(), 0);

        let mine = in_flight.claim_blob(&a.digest);
        assert!(matches!(mine, BlobClaim::Mine(_)));
        let theirs = in_flight.claim_blob(&a.digest);
        assert!(matches!(theirs, BlobClaim::Theirs(_)));
        let waiter = tokio::spawn(theirs.wait());
        drop(mine);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            in_flight.claim_blob(&a.digest),
            BlobClaim::Mine(_)
        ));
    }
}

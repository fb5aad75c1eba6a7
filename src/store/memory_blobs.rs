//! The in-memory blob store: blobs as lists of reference-counted blocks,
//! uploads as the blocks received so far with a running SHA-256.
//!
//! A request body arrives in the HTTP stack's chunks (tens of KiB); they
//! are gathered into blocks of about a MiB as they arrive, so finishing an
//! upload moves the blocks into the store without copying them again and a
//! blob costs its size plus one partly filled block at its peak (a final
//! concatenation used to double the peak and cost a pass over the bytes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::blobs::{BlobError, BlobStat, BlobStore, ByteStream, UploadStat};
use super::StoreError;
use crate::digest::{Algorithm, Digest, Hasher};

fn join_error(e: tokio::task::JoinError) -> BlobError {
    BlobError::Store(StoreError(format!("a blob store task failed: {e}")))
}

/// Size of the blocks a blob is kept in, and so of the chunks it streams
/// out in.
const BLOCK: usize = 1 << 20;

struct Upload {
    content: Blocks,
    size: u64,
    /// The SHA-256 of every byte received, except while an append runs.
    sha256: Hasher,
    /// How much of the open block `sha256` covers.
    open_hashed: usize,
    /// When bytes last arrived (or the upload was made).
    active: SystemTime,
}

impl Upload {
    fn new() -> Self {
        Upload {
            content: Blocks::default(),
            size: 0,
            open_hashed: 0,
            sha256: Hasher::new(Algorithm::Sha256),
            active: SystemTime::now(),
        }
    }
}

/// Content as a list of blocks, gathered as it arrives.
#[derive(Default)]
struct Blocks {
    full: Vec<Bytes>,
    /// The block being filled.
    open: BytesMut,
}

impl Blocks {
    /// Adds bytes; returns the block they completed, if any.
    fn append(&mut self, chunk: Bytes) -> Option<Bytes> {
        if self.open.is_empty() && chunk.len() >= BLOCK / 2 {
            // Big enough to keep as it came.
            self.full.push(chunk.clone());
            return Some(chunk);
        }
        if self.open.capacity() == 0 {
            self.open = BytesMut::with_capacity(BLOCK);
        }
        self.open.extend_from_slice(&chunk);
        if self.open.len() < BLOCK {
            return None;
        }
        let block = std::mem::take(&mut self.open).freeze();
        self.full.push(block.clone());
        Some(block)
    }

    /// The block being filled.
    fn open_bytes(&self) -> &[u8] {
        &self.open
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.full
            .iter()
            .map(|b| &b[..])
            .chain((!self.open.is_empty()).then_some(&self.open[..]))
    }

    fn into_blob(mut self) -> Blob {
        if !self.open.is_empty() {
            // Frozen as it is, a short last block would keep the whole
            // `BLOCK` it was allocated with: every small blob (a config, a
            // tiny layer) would cost 1 MiB for as long as it is stored.
            let last = if self.open.len() < BLOCK / 2 {
                Bytes::copy_from_slice(&self.open)
            } else {
                self.open.freeze()
            };
            self.full.push(last);
        }
        Blob::new(self.full)
    }
}

/// A stored blob's bytes: blocks and where each begins.
#[derive(Clone)]
struct Blob {
    blocks: std::sync::Arc<[Bytes]>,
    /// `starts[i]` is the offset of `blocks[i]`.
    starts: std::sync::Arc<[u64]>,
    len: u64,
}

impl Blob {
    fn new(blocks: Vec<Bytes>) -> Blob {
        let mut starts = Vec::with_capacity(blocks.len());
        let mut len = 0u64;
        for b in &blocks {
            starts.push(len);
            len += b.len() as u64;
        }
        Blob {
            blocks: blocks.into(),
            starts: starts.into(),
            len,
        }
    }

    /// The bytes `start..end` as slices of the blocks (no copy).
    fn range(&self, start: u64, end: u64) -> Vec<Bytes> {
        if start >= end {
            return Vec::new();
        }
        // The block holding `start`: the last one beginning at or before it.
        let first = self.starts.partition_point(|&s| s <= start) - 1;
        let mut out = Vec::new();
        for (block, &at) in self.blocks[first..].iter().zip(&self.starts[first..]) {
            if at >= end {
                break;
            }
            let from = start.saturating_sub(at) as usize;
            let to = ((end - at) as usize).min(block.len());
            out.push(block.slice(from..to));
        }
        out
    }
}

/// A stored blob and when it was last stored.
struct Stored {
    data: Blob,
    stored: SystemTime,
}

/// Blobs kept in process memory.
#[derive(Default)]
pub struct MemoryBlobStore {
    blobs: RwLock<HashMap<Digest, Stored>>,
    uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Upload>>>>,
}

impl MemoryBlobStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn upload(&self, id: &str) -> Result<Arc<tokio::sync::Mutex<Upload>>, BlobError> {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or(BlobError::UploadUnknown)
    }

    /// Keeps an existing copy, but as stored now: a blob stored again is
    /// as young as a new one to garbage collection.
    fn insert(&self, digest: Digest, data: Blob) {
        let now = SystemTime::now();
        self.blobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest)
            .and_modify(|s| s.stored = now)
            .or_insert(Stored { data, stored: now });
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn create_upload(&self) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(Upload::new())));
        Ok(id)
    }

    async fn append_upload(&self, id: &str, mut body: ByteStream) -> Result<u64, BlobError> {
        let upload = self.upload(id)?;
        let mut upload = upload.lock().await;
        // Each completed block is hashed on the blocking pool while the next
        // one is received (inline, the hash halved a push's throughput);
        // one block at a time, in order.
        let mut hashing: Option<tokio::task::JoinHandle<Hasher>> = None;
        let received = loop {
            let chunk = match body.next().await {
                None => break Ok(()),
                Some(Err(e)) => break Err(BlobError::Body(e)),
                Some(Ok(chunk)) => chunk,
            };
            upload.size += chunk.len() as u64;
            upload.active = SystemTime::now();
            let Some(block) = upload.content.append(chunk) else {
                continue;
            };
            // The part of the block an earlier append already hashed.
            let skip = std::mem::take(&mut upload.open_hashed);
            let mut hasher = match hashing.take() {
                Some(task) => task.await.map_err(join_error)?,
                None => std::mem::replace(&mut upload.sha256, Hasher::new(Algorithm::Sha256)),
            };
            hashing = Some(tokio::task::spawn_blocking(move || {
                hasher.update(&block[skip..]);
                hasher
            }));
        };
        if let Some(task) = hashing {
            upload.sha256 = task.await.map_err(join_error)?;
        }
        // The open block's new bytes, so the hash covers everything held
        // (a client may finish after this append, or resume after an error).
        let upload = &mut *upload;
        let open = upload.content.open_bytes();
        upload.sha256.update(&open[upload.open_hashed..]);
        upload.open_hashed = open.len();
        received.map(|()| upload.size)
    }

    async fn upload_size(&self, id: &str) -> Result<u64, BlobError> {
        let upload = self.upload(id)?;
        let size = upload.lock().await.size;
        Ok(size)
    }

    async fn finish_upload(&self, id: &str, expected: &Digest) -> Result<u64, BlobError> {
        let upload = self.upload(id)?;
        let mut upload = upload.lock().await;
        let computed = match expected.algorithm() {
            Algorithm::Sha256 => upload.sha256.clone().finish(),
            other => {
                let mut h = Hasher::new(other);
                upload.content.iter().for_each(|c| h.update(c));
                h.finish()
            }
        };
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if &computed != expected {
            return Err(BlobError::DigestMismatch { computed });
        }
        let size = upload.size;
        self.insert(computed, std::mem::take(&mut upload.content).into_blob());
        Ok(size)
    }

    async fn cancel_upload(&self, id: &str) -> Result<(), BlobError> {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .map(|_| ())
            .ok_or(BlobError::UploadUnknown)
    }

    async fn put(&self, data: Bytes) -> Result<Digest, StoreError> {
        let digest = Digest::sha256_of(&data);
        self.insert(digest.clone(), Blob::new(vec![data]));
        Ok(digest)
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        Ok(self
            .blobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .map(|b| b.data.len))
    }

    async fn read(
        &self,
        digest: &Digest,
        start: u64,
        end: Option<u64>,
    ) -> Result<Option<ByteStream>, StoreError> {
        let Some(data) = self
            .blobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .map(|s| s.data.clone())
        else {
            return Ok(None);
        };
        let len = data.len;
        let end = end.unwrap_or(len).min(len);
        let start = start.min(end);
        // A block put in one step (a manifest, a seeded layer) may be big:
        // stream it in pieces of a block's size.
        let chunks: Vec<Result<Bytes, std::io::Error>> = data
            .range(start, end)
            .into_iter()
            .flat_map(|piece| {
                (0..piece.len())
                    .step_by(BLOCK)
                    .map(move |at| Ok(piece.slice(at..(at + BLOCK).min(piece.len()))))
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(Some(Box::pin(futures_util::stream::iter(chunks))))
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        self.blobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Digest>, StoreError> {
        Ok(self
            .blobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect())
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.blobs.read().unwrap_or_else(|e| e.into_inner()).len() as u64)
    }

    async fn list_stats(&self) -> Result<Vec<BlobStat>, StoreError> {
        Ok(self
            .blobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(digest, s)| BlobStat {
                digest: digest.clone(),
                size: s.data.len,
                stored: s.stored,
            })
            .collect())
    }

    async fn list_uploads(&self) -> Result<Vec<UploadStat>, StoreError> {
        let uploads: Vec<(String, Arc<tokio::sync::Mutex<Upload>>)> = self
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, u)| (id.clone(), u.clone()))
            .collect();
        Ok(uploads
            .into_iter()
            .map(|(id, upload)| match upload.try_lock() {
                Ok(u) => UploadStat {
                    id,
                    size: u.size,
                    active: u.active,
                },
                // An append is streaming into it right now.
                Err(_) => UploadStat {
                    id,
                    size: 0,
                    active: SystemTime::now(),
                },
            })
            .collect())
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.blobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        super::super::conformance::run_blobs(&super::MemoryBlobStore::new()).await;
    }

    #[test]
    fn ranges_cross_block_boundaries() {
        use super::*;
        let bytes: Vec<u8> = (0..40u8).collect();
        let mut blocks = Blocks::default();
        for piece in [&bytes[..3], &bytes[3..4], &bytes[4..20], &bytes[20..]] {
            blocks.full.push(Bytes::copy_from_slice(piece));
        }
        let blob = blocks.into_blob();
        assert_eq!(blob.len, 40);
        for start in 0..=40u64 {
            for end in start..=40u64 {
                let got: Vec<u8> = blob.range(start, end).concat();
                assert_eq!(got, &bytes[start as usize..end as usize], "{start}..{end}");
            }
        }
    }

    #[test]
    fn small_chunks_are_gathered_into_blocks() {
        use super::*;
        let mut blocks = Blocks::default();
        for _ in 0..(3 * BLOCK / 1000) {
            blocks.append(Bytes::from(vec![7u8; 1000]));
        }
        blocks.append(Bytes::from(vec![8u8; BLOCK]));
        let total: usize = blocks.iter().map(|b| b.len()).sum();
        assert_eq!(total, 3 * BLOCK / 1000 * 1000 + BLOCK);
        let blob = blocks.into_blob();
        assert!(blob.blocks.len() <= 5, "{} blocks", blob.blocks.len());
        assert_eq!(blob.len as usize, total);
    }

    #[tokio::test]
    async fn storing_again_makes_a_blob_young() {
        use super::*;
        let store = MemoryBlobStore::new();
        let old = SystemTime::now() - std::time::Duration::from_secs(7200);
        let d = store.put(Bytes::from_static(b"again")).await.unwrap();
        let age = |store: &MemoryBlobStore| {
            for s in store.blobs.write().unwrap().values_mut() {
                s.stored = old;
            }
        };
        age(&store);
        assert_eq!(store.list_stats().await.unwrap()[0].stored, old);
        store.put(Bytes::from_static(b"again")).await.unwrap();
        assert!(store.list_stats().await.unwrap()[0].stored > old);
        age(&store);
        let id = store.create_upload().await.unwrap();
        let chunk: ByteStream = Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from_static(
            b"again",
        ))]));
        store.append_upload(&id, chunk).await.unwrap();
        store.finish_upload(&id, &d).await.unwrap();
        assert!(store.list_stats().await.unwrap()[0].stored > old);
    }
}

//! The in-memory blob store: blobs as reference-counted byte buffers, uploads
//! as lists of received chunks with a running SHA-256.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::blobs::{BlobError, BlobStat, BlobStore, ByteStream, UploadStat};
use super::StoreError;
use crate::digest::{Algorithm, Digest, Hasher};

/// Chunk size for streaming a stored blob out.
const READ_CHUNK: usize = 1 << 20;

struct Upload {
    chunks: Vec<Bytes>,
    size: u64,
    sha256: Hasher,
    /// When bytes last arrived (or the upload was made).
    active: SystemTime,
}

impl Upload {
    fn new() -> Self {
        Upload {
            chunks: Vec::new(),
            size: 0,
            sha256: Hasher::new(Algorithm::Sha256),
            active: SystemTime::now(),
        }
    }
}

/// A stored blob and when it was last stored.
struct Stored {
    data: Bytes,
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
    fn insert(&self, digest: Digest, data: Bytes) {
        let now = SystemTime::now();
        self.blobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest)
            .and_modify(|s| s.stored = now)
            .or_insert(Stored { data, stored: now });
    }
}

fn concat(chunks: &[Bytes], size: u64) -> Bytes {
    match chunks {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let mut out = BytesMut::with_capacity(size as usize);
            for c in many {
                out.extend_from_slice(c);
            }
            out.freeze()
        }
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
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(BlobError::Body)?;
            upload.sha256.update(&chunk);
            upload.size += chunk.len() as u64;
            upload.chunks.push(chunk);
            upload.active = SystemTime::now();
        }
        Ok(upload.size)
    }

    async fn upload_size(&self, id: &str) -> Result<u64, BlobError> {
        let upload = self.upload(id)?;
        let size = upload.lock().await.size;
        Ok(size)
    }

    async fn finish_upload(&self, id: &str, expected: &Digest) -> Result<u64, BlobError> {
        let upload = self.upload(id)?;
        let upload = upload.lock().await;
        let computed = match expected.algorithm() {
            Algorithm::Sha256 => upload.sha256.clone().finish(),
            other => {
                let mut h = Hasher::new(other);
                upload.chunks.iter().for_each(|c| h.update(c));
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
        self.insert(computed, concat(&upload.chunks, upload.size));
        Ok(upload.size)
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
        self.insert(digest.clone(), data);
        Ok(digest)
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        Ok(self
            .blobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .map(|b| b.data.len() as u64))
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
        let len = data.len() as u64;
        let end = end.unwrap_or(len).min(len);
        let start = start.min(end);
        let slice = data.slice(start as usize..end as usize);
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..slice.len())
            .step_by(READ_CHUNK)
            .map(|at| Ok(slice.slice(at..(at + READ_CHUNK).min(slice.len()))))
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
                size: s.data.len() as u64,
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
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        super::super::conformance::run_blobs(&super::MemoryBlobStore::new()).await;
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

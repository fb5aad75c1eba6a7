//! The blob store trait: content-addressed bytes and the upload sessions
//! that produce them.
//!
//! An upload is appended to in order, hashed while it streams in, and
//! finished against the digest the client names; the store computes the
//! digest itself and refuses a mismatch. One copy per digest serves every
//! repository and account (which repository may see a blob is metadata, kept
//! by the domain).

use std::pin::Pin;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use super::StoreError;
use crate::digest::Digest;

/// A stream of bytes in or out of the store.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Why a blob operation failed.
#[derive(Debug)]
pub enum BlobError {
    /// No upload session with this id.
    UploadUnknown,
    /// The content's digest is not the one the client named.
    DigestMismatch {
        computed: Digest,
    },
    /// Reading the client's body failed (disconnect, truncated body).
    Body(std::io::Error),
    Store(StoreError),
}

impl From<StoreError> for BlobError {
    fn from(e: StoreError) -> Self {
        BlobError::Store(e)
    }
}

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobError::UploadUnknown => f.write_str("upload unknown"),
            BlobError::DigestMismatch { computed } => write!(f, "content has digest {computed}"),
            BlobError::Body(e) => write!(f, "reading the request body: {e}"),
            BlobError::Store(e) => e.fmt(f),
        }
    }
}

/// A stored blob as garbage collection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobStat {
    pub digest: Digest,
    pub size: u64,
    /// When the blob was last stored (made, or finished or put again while
    /// already present), by the system's clock.
    pub stored: SystemTime,
}

/// An upload's data as garbage collection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStat {
    pub id: String,
    pub size: u64,
    /// When the upload last received bytes (or was made), by the system's
    /// clock; the current time while an append is streaming into it.
    pub active: SystemTime,
}

/// Where a client is sent to fetch a blob (a registry GET's 307, the URL
/// GetDownloadUrlForLayer hands out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobUrl {
    /// ecrd serves the blob itself, on its own signed URL.
    Ecrd,
    /// A presigned URL of the object store, needing no other credentials.
    Presigned(String),
    /// The store holds no blob of that digest and size.
    Missing,
}

/// Bytes addressed by digest, plus upload sessions.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Starts an empty upload and returns its id.
    async fn create_upload(&self) -> Result<String, StoreError>;
    /// Appends a body to an upload; returns the upload's new size. On a body
    /// error the bytes received so far stay appended, so a client can resume.
    async fn append_upload(&self, id: &str, body: ByteStream) -> Result<u64, BlobError>;
    /// How many bytes an upload holds.
    async fn upload_size(&self, id: &str) -> Result<u64, BlobError>;
    /// The slow part of `finish_upload`, ahead of it: makes the upload's
    /// content durable and checks it against `expected`, so that the
    /// `finish_upload` that follows (which garbage collection waits for)
    /// only has to install it, unless bytes were appended in between. A
    /// mismatch discards the upload, as `finish_upload` would. By default
    /// nothing: the store's own finish is quick, or cannot be split.
    async fn prepare_finish(&self, id: &str, expected: &Digest) -> Result<(), BlobError> {
        let _ = (id, expected);
        Ok(())
    }
    /// Verifies the upload's content against `expected` and, if it matches,
    /// makes it the blob of that digest (keeping an existing copy) and ends
    /// the upload. On a mismatch the upload is discarded. Returns the size.
    async fn finish_upload(&self, id: &str, expected: &Digest) -> Result<u64, BlobError>;
    /// Discards an upload.
    async fn cancel_upload(&self, id: &str) -> Result<(), BlobError>;
    /// Stores small content in one step (manifests, configs); returns its
    /// sha256 digest.
    async fn put(&self, data: Bytes) -> Result<Digest, StoreError>;
    /// The blob's size, or None if absent.
    async fn size(&self, digest: &Digest) -> Result<Option<u64>, StoreError>;
    /// The blob's bytes from `start` (inclusive) to `end` (exclusive;
    /// None = to the end), or None if absent. The caller checks ranges.
    async fn read(
        &self,
        digest: &Digest,
        start: u64,
        end: Option<u64>,
    ) -> Result<Option<ByteStream>, StoreError>;
    /// Removes a blob (no error if absent).
    async fn delete(&self, digest: &Digest) -> Result<(), StoreError>;
    /// Every stored blob, for garbage collection.
    async fn list(&self) -> Result<Vec<Digest>, StoreError>;
    /// How many blobs are stored (by default, by listing them).
    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.list().await?.len() as u64)
    }
    /// Every stored blob with its size and the time it was last stored.
    async fn list_stats(&self) -> Result<Vec<BlobStat>, StoreError>;
    /// Every upload in progress with its size and last activity.
    async fn list_uploads(&self) -> Result<Vec<UploadStat>, StoreError>;
    /// Drops all blobs and uploads.
    async fn clear(&self) -> Result<(), StoreError>;
    /// Re-hashes a stored blob against its digest now (the background
    /// scrub): Some(false) when its content no longer matches (the blob is
    /// then set aside and reads as absent), None when absent or when the
    /// store keeps nothing that can decay (memory).
    async fn scrub(&self, digest: &Digest) -> Result<Option<bool>, StoreError> {
        let _ = digest;
        Ok(None)
    }
    /// Where a client fetches the blob of `digest`, which the caller knows
    /// to be `size` bytes, for `expires_in`. By default, from ecrd itself;
    /// an object store presigns a URL of its own (after checking the object
    /// is there, so a missing one answers "unknown" rather than a dead link).
    async fn download_url(
        &self,
        digest: &Digest,
        size: u64,
        expires_in: Duration,
    ) -> Result<BlobUrl, StoreError> {
        let _ = (digest, size, expires_in);
        Ok(BlobUrl::Ecrd)
    }
    /// A short name for health output: `memory`, `disk` or `s3`.
    fn backend(&self) -> &'static str;
}

/// Reads a whole (small) blob into memory; None if absent.
pub async fn read_all(store: &dyn BlobStore, digest: &Digest) -> Result<Option<Bytes>, StoreError> {
    use futures_util::StreamExt;
    let Some(mut stream) = store.read(digest, 0, None).await? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.map_err(|e| StoreError(e.to_string()))?);
    }
    Ok(Some(Bytes::from(out)))
}

//! The S3 blob store (`--blobs s3://BUCKET/PREFIX`): blobs as objects of an
//! S3-compatible bucket, uploads as S3 multipart uploads whose state is kept
//! in the bucket too, so several ecrd replicas can share one bucket and an
//! upload one replica started can be continued and finished by another.
//!
//! Key layout, under `PREFIX/`:
//!
//! - `blobs/<alg>/<ab>/<hex>`: the blob of digest `<alg>:<hex>` (`<ab>` its
//!   first two hex digits), one copy per digest, as the disk store lays
//!   them out.
//! - `uploads/<id>/state`: an upload session (JSON, [`UploadState`]): the
//!   multipart upload's id, each finished part's ETag, the size, the name
//!   of the tail object and the running SHA-256 (`sha256_state`).
//! - `uploads/<id>/tail-<n>`: the bytes received after the last whole part
//!   (fewer than [`PART_SIZE`]): S3 refuses parts under 5 MiB except the
//!   last, and OCI clients send chunks of any size (oci-client 4 MiB, some
//!   a few KiB), so small chunks are gathered here until they make a part.
//!   Each write gets a new `<n>`, so the state never names a tail object
//!   that is half written.
//! - `uploads/<id>/data`: where the multipart upload is assembled. Its key
//!   cannot be the content address (unknown until the upload ends), so on
//!   finish it is copied there (CopyObject, up to 5 GiB; larger blobs are
//!   streamed through a new multipart upload) and removed.
//! - `corrupt/<alg>-<hex>-<nanos>`: blobs whose content no longer had their
//!   digest, moved aside so they read as absent and can be pushed again.
//!
//! Every state write is conditional on the ETag last read (`If-Match`), so
//! two replicas appending to one upload at once cannot both win: the loser's
//! append fails. Within one process appends to an upload run one at a time.
//!
//! Verification. A sha256 upload's digest is known from the saved hash state
//! before the multipart upload is completed, so a mismatch costs no read; a
//! sha512 upload is assembled, re-read and hashed before it is copied to its
//! content address. A whole-blob read hashes what it streams and holds its
//! last chunk back (`checked_read`); a blob that fails is moved to
//! `corrupt/`. Ranged reads are not verified; `scrub` re-hashes.
//!
//! Downloads: [`BlobStore::download_url`] presigns a GET of the blob's object
//! (after a HEAD confirms it is there, of the size expected), which is what
//! ECR's own 307 redirects point at. (A registry GET so costs two HEADs:
//! the domain's `layer_size` asks for the size first.)
//!
//! Not collected here: multipart uploads and `uploads/<id>/` objects left by
//! a replica that died mid-finish. A bucket lifecycle rule
//! (AbortIncompleteMultipartUpload, and expiry of `PREFIX/uploads/`) is the
//! S3-native way to reclaim them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion, WriteMultipart,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::blobs::{BlobError, BlobStat, BlobStore, BlobUrl, ByteStream, UploadStat};
use super::checked_read::HoldBack;
use super::sha256_state::Sha256State;
use super::StoreError;
use crate::digest::{Algorithm, Digest, Hasher};

/// The size of every part but an upload's last. S3 wants at least 5 MiB
/// (and at most 10,000 parts, so this allows blobs up to 78 GiB, past
/// ECR's own 52,000 MiB layer limit); equal parts also suit stores that
/// require them (Cloudflare R2).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// The largest object CopyObject copies in one request.
const COPY_LIMIT: u64 = 5 * 1024 * 1024 * 1024;

/// Chunks of a checked read fetched ahead of the socket.
const READ_AHEAD: usize = 8;

/// An upload session as kept in `uploads/<id>/state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UploadState {
    /// The S3 multipart upload at `uploads/<id>/data`, made with the first
    /// part (a blob smaller than a part never needs one).
    multipart: Option<String>,
    /// The ETags of parts 1, 2, ..., each [`PART_SIZE`] bytes.
    parts: Vec<String>,
    /// Bytes in the tail object.
    tail: u64,
    /// The tail object's number (`tail-<n>`); meaningless while `tail` is 0.
    tail_number: u64,
    /// The SHA-256 of every byte of the parts and the tail.
    sha256: Sha256State,
}

impl UploadState {
    fn new() -> Self {
        UploadState {
            multipart: None,
            parts: Vec::new(),
            tail: 0,
            tail_number: 0,
            sha256: Sha256State::new(),
        }
    }

    fn size(&self) -> u64 {
        self.parts.len() as u64 * PART_SIZE as u64 + self.tail
    }
}

/// A saved state and the ETag it was saved with (what the next write must
/// match).
struct Saved {
    state: UploadState,
    e_tag: Option<String>,
}

fn s3_error(what: &str, key: &Path, e: object_store::Error) -> StoreError {
    StoreError(format!("{what} s3 object {key}: {e}"))
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

/// Blobs kept in an S3-compatible bucket.
pub struct S3BlobStore {
    s3: Arc<AmazonS3>,
    /// `PREFIX/` (or nothing), prepended to every key.
    prefix: String,
    /// Appends, finishes and cancels of one upload run one at a time in this
    /// process; a held lock also means "active now" to `list_uploads`.
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Blobs above this size are copied to their content address by
    /// streaming them instead of by CopyObject (lowered in tests).
    copy_limit: u64,
}

impl S3BlobStore {
    /// The store of `--blobs s3://BUCKET[/PREFIX]` with `--s3-endpoint`:
    /// region and credentials from the standard AWS environment variables
    /// (`AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; without keys, the
    /// container or instance role), the endpoint from `endpoint` (else AWS's
    /// own). Makes no request: a wrong bucket shows on first use.
    pub fn from_config(url: &str, endpoint: Option<&str>) -> Result<Self, StoreError> {
        let (bucket, prefix) = parse_url(url)?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        Self::with_builder(builder, &prefix)
    }

    /// The store of a configured builder, under `prefix` (no leading or
    /// trailing `/` needed).
    pub fn with_builder(builder: AmazonS3Builder, prefix: &str) -> Result<Self, StoreError> {
        let s3 = builder
            .build()
            .map_err(|e| StoreError(format!("--blobs: {e}")))?;
        let prefix = prefix.trim_matches('/');
        check_prefix(prefix).map_err(|e| StoreError(format!("--blobs: {e}")))?;
        Ok(S3BlobStore {
            s3: Arc::new(s3),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            sessions: Mutex::new(HashMap::new()),
            copy_limit: COPY_LIMIT,
        })
    }

    /// As the domain holds a blob store.
    pub fn shared(self) -> Arc<dyn BlobStore> {
        Arc::new(self)
    }

    fn key(&self, rel: &str) -> Path {
        Path::from(format!("{}{rel}", self.prefix))
    }

    fn blob_key(&self, digest: &Digest) -> Path {
        // A `Digest` holds only lowercase hex of a fixed length.
        let hex = digest.hex();
        self.key(&format!(
            "blobs/{}/{}/{hex}",
            digest.algorithm().name(),
            &hex[..2]
        ))
    }

    fn state_key(&self, id: &str) -> Path {
        self.key(&format!("uploads/{id}/state"))
    }

    fn tail_key(&self, id: &str, number: u64) -> Path {
        self.key(&format!("uploads/{id}/tail-{number}"))
    }

    fn data_key(&self, id: &str) -> Path {
        self.key(&format!("uploads/{id}/data"))
    }

    /// This process's lock of an upload.
    fn session(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    fn end_session(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Ends an upload (the caller holds its session): removes its state,
    /// so a replica appending to it now fails to save, and returns what
    /// the state said. Its parts are the caller's to use or discard.
    async fn end_upload(&self, id: &str) -> Result<UploadState, BlobError> {
        let saved = self.load_state(id).await?;
        let key = self.state_key(id);
        self.s3
            .delete(&key)
            .await
            .map_err(|e| s3_error("cannot remove", &key, e))?;
        self.end_session(id);
        Ok(saved.state)
    }

    fn busy(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .is_some_and(|s| s.try_lock().is_err())
    }

    async fn load_state(&self, id: &str) -> Result<Saved, BlobError> {
        if !well_formed_id(id) {
            return Err(BlobError::UploadUnknown);
        }
        let key = self.state_key(id);
        let got = match self.s3.get(&key).await {
            Ok(got) => got,
            Err(e) if is_not_found(&e) => {
                self.end_session(id);
                return Err(BlobError::UploadUnknown);
            }
            Err(e) => return Err(s3_error("cannot read", &key, e).into()),
        };
        let e_tag = got.meta.e_tag.clone();
        let bytes = got
            .bytes()
            .await
            .map_err(|e| s3_error("cannot read", &key, e))?;
        let state = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError(format!("s3 object {key} is not an upload state: {e}")))?;
        Ok(Saved { state, e_tag })
    }

    /// Writes a state over the one last read; fails if another replica wrote
    /// it meanwhile (or ended the upload).
    async fn save_state(&self, id: &str, saved: &mut Saved) -> Result<(), StoreError> {
        let key = self.state_key(id);
        let json = serde_json::to_vec(&saved.state)
            .map_err(|e| StoreError(format!("cannot encode an upload state: {e}")))?;
        let mode = match &saved.e_tag {
            Some(e_tag) => PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag.clone()),
                version: None,
            }),
            None => PutMode::Overwrite,
        };
        match self
            .s3
            .put_opts(&key, PutPayload::from(json), PutOptions::from(mode))
            .await
        {
            Ok(put) => {
                saved.e_tag = put.e_tag;
                Ok(())
            }
            Err(object_store::Error::Precondition { .. }) => Err(StoreError(format!(
                "upload {id} was changed by another ecrd meanwhile"
            ))),
            Err(e) => Err(s3_error("cannot write", &key, e)),
        }
    }

    async fn get_bytes(&self, key: &Path) -> Result<Bytes, StoreError> {
        let got = self
            .s3
            .get(key)
            .await
            .map_err(|e| s3_error("cannot read", key, e))?;
        got.bytes()
            .await
            .map_err(|e| s3_error("cannot read", key, e))
    }

    /// Removes an object, ignoring its absence and (logging them) other
    /// failures: used for clean-up that must not hide the real outcome.
    async fn remove_quietly(&self, key: &Path) {
        match self.s3.delete(key).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(key = %key, error = %e, "cannot remove s3 object"),
        }
    }

    /// Drops everything an upload keeps in the bucket: its multipart upload
    /// and every object of its folder (also tails a failed append left).
    async fn discard_parts(&self, id: &str, state: &UploadState) {
        if let Some(multipart) = &state.multipart {
            if let Err(e) = self.s3.abort_multipart(&self.data_key(id), multipart).await {
                tracing::warn!(upload = id, error = %e, "cannot abort s3 multipart upload");
            }
        }
        match self.list_under(&format!("uploads/{id}/")).await {
            Ok(objects) => {
                for meta in objects {
                    self.remove_quietly(&meta.location).await;
                }
            }
            Err(e) => tracing::warn!(upload = id, error = %e, "cannot list an upload's objects"),
        }
    }

    /// The upload's tail bytes.
    async fn read_tail(&self, id: &str, state: &UploadState) -> Result<Bytes, StoreError> {
        if state.tail == 0 {
            return Ok(Bytes::new());
        }
        let key = self.tail_key(id, state.tail_number);
        let tail = self.get_bytes(&key).await?;
        if tail.len() as u64 != state.tail {
            return Err(StoreError(format!(
                "s3 object {key} holds {} bytes, its upload says {}",
                tail.len(),
                state.tail
            )));
        }
        Ok(tail)
    }

    /// Where a corrupt blob is moved.
    fn corrupt_key(&self, digest: &Digest) -> Path {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        self.key(&format!(
            "corrupt/{}-{}-{nanos}",
            digest.algorithm().name(),
            digest.hex()
        ))
    }

    /// Streams the whole object of `digest` (of `size` bytes), checking it
    /// as it goes, from a task of its own (so the hashing runs beside the
    /// socket writes) that stops when the response is dropped.
    fn checked_stream(
        &self,
        digest: Digest,
        size: u64,
        body: BoxStream<'static, object_store::Result<Bytes>>,
    ) -> ByteStream {
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(READ_AHEAD);
        let aside = Aside {
            s3: self.s3.clone(),
            from: self.blob_key(&digest),
            to: self.corrupt_key(&digest),
        };
        tokio::spawn(check_into(aside, digest, size, body, tx));
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        }))
    }

    /// The digest of an object's content under `algorithm`, reading it all.
    async fn hash_object(&self, key: &Path, algorithm: Algorithm) -> Result<Digest, StoreError> {
        let mut body = self
            .s3
            .get(key)
            .await
            .map_err(|e| s3_error("cannot read", key, e))?
            .into_stream();
        let mut hasher = Hasher::new(algorithm);
        while let Some(chunk) = body.next().await {
            hasher.update(&chunk.map_err(|e| s3_error("cannot read", key, e))?);
        }
        Ok(hasher.finish())
    }

    /// Copies an assembled upload to its content address. CopyObject stops
    /// at 5 GiB; a larger blob is streamed through a new multipart upload.
    async fn copy_into_place(&self, from: &Path, to: &Path, size: u64) -> Result<(), StoreError> {
        if size <= self.copy_limit {
            return self
                .s3
                .copy(from, to)
                .await
                .map_err(|e| s3_error("cannot copy to", to, e));
        }
        let upload = self
            .s3
            .put_multipart(to)
            .await
            .map_err(|e| s3_error("cannot write", to, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut body = self
            .s3
            .get(from)
            .await
            .map_err(|e| s3_error("cannot read", from, e))?
            .into_stream();
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    // Two parts in flight at most, or the whole blob would
                    // queue up in memory.
                    if let Err(e) = writer.wait_for_capacity(2).await {
                        return Err(s3_error("cannot write", to, e));
                    }
                    writer.put(chunk)
                }
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(s3_error("cannot read", from, e));
                }
            }
        }
        writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| s3_error("cannot write", to, e))
    }

    /// Stores the assembled object of a finished upload as the blob
    /// `expected`, after checking digests the saved SHA-256 cannot.
    async fn install(
        &self,
        id: &str,
        state: &UploadState,
        expected: &Digest,
    ) -> Result<u64, BlobError> {
        let size = state.size();
        let target = self.blob_key(expected);
        let Some(multipart) = &state.multipart else {
            // Smaller than a part: the tail is the whole blob.
            let content = self.read_tail(id, state).await?;
            let computed = Digest::of(expected.algorithm(), &content);
            if &computed != expected {
                return Err(BlobError::DigestMismatch { computed });
            }
            self.s3
                .put(&target, PutPayload::from(content))
                .await
                .map_err(|e| s3_error("cannot write", &target, e))?;
            return Ok(size);
        };
        let data = self.data_key(id);
        let mut parts: Vec<PartId> = state
            .parts
            .iter()
            .map(|e| PartId {
                content_id: e.clone(),
            })
            .collect();
        if state.tail > 0 {
            let tail = self.read_tail(id, state).await?;
            let part = self
                .s3
                .put_part(&data, multipart, parts.len(), PutPayload::from(tail))
                .await
                .map_err(|e| s3_error("cannot write a part of", &data, e))?;
            parts.push(part);
        }
        self.s3
            .complete_multipart(&data, multipart, parts)
            .await
            .map_err(|e| s3_error("cannot complete", &data, e))?;
        if expected.algorithm() != Algorithm::Sha256 {
            let computed = self.hash_object(&data, expected.algorithm()).await?;
            if &computed != expected {
                return Err(BlobError::DigestMismatch { computed });
            }
        }
        self.copy_into_place(&data, &target, size).await?;
        Ok(size)
    }

    /// Reads a body into an upload: whole parts go to S3 as they fill (one
    /// in flight while the next fills), and the state is saved after each,
    /// so another replica sees the progress; what is left becomes the tail.
    async fn append_locked(
        &self,
        id: &str,
        saved: &mut Saved,
        mut body: ByteStream,
    ) -> Result<(), BlobError> {
        let mut buffer = BytesMut::with_capacity(PART_SIZE);
        buffer.extend_from_slice(&self.read_tail(id, &saved.state).await?);
        // The tail object the saved state names, until a part or a new
        // tail takes its bytes.
        let mut old_tail = (saved.state.tail > 0).then_some(saved.state.tail_number);
        let mut sha256 = saved.state.sha256.clone();
        let mut in_flight: Option<PartTask> = None;
        let mut body_error = None;
        while let Some(chunk) = body.next().await {
            let mut chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    body_error = Some(e);
                    break;
                }
            };
            while !chunk.is_empty() {
                let room = PART_SIZE - buffer.len();
                let piece = chunk.split_to(room.min(chunk.len()));
                sha256.update(&piece);
                buffer.extend_from_slice(&piece);
                if buffer.len() < PART_SIZE {
                    continue;
                }
                if let Some(task) = in_flight.take() {
                    self.record_part(id, saved, task, &mut old_tail).await?;
                }
                let part = std::mem::replace(&mut buffer, BytesMut::with_capacity(PART_SIZE));
                let part = part.freeze();
                in_flight = Some(self.start_part(id, &mut saved.state, part, &sha256).await?);
            }
        }
        if let Some(task) = in_flight.take() {
            self.record_part(id, saved, task, &mut old_tail).await?;
        }
        // The rest becomes the new tail (also after a body error: what
        // arrived stays appended). Nothing to save when no byte came after
        // the last part saved.
        if sha256.len() > saved.state.sha256.len() {
            let number = saved.state.tail_number + 1;
            let rest = buffer.len() as u64;
            let key = self.tail_key(id, number);
            self.s3
                .put(&key, PutPayload::from(buffer.freeze()))
                .await
                .map_err(|e| s3_error("cannot write", &key, e))?;
            saved.state.tail = rest;
            saved.state.tail_number = number;
            saved.state.sha256 = sha256;
            self.save_state(id, saved).await?;
            if let Some(n) = old_tail.take() {
                self.remove_quietly(&self.tail_key(id, n)).await;
            }
        }
        match body_error {
            Some(e) => Err(BlobError::Body(e)),
            None => Ok(()),
        }
    }

    /// Sends a full part to S3 in the background (making the multipart
    /// upload first if this is the first part).
    async fn start_part(
        &self,
        id: &str,
        state: &mut UploadState,
        part: Bytes,
        sha256: &Sha256State,
    ) -> Result<PartTask, StoreError> {
        let data = self.data_key(id);
        let multipart = match &state.multipart {
            Some(m) => m.clone(),
            None => {
                let m = self
                    .s3
                    .create_multipart(&data)
                    .await
                    .map_err(|e| s3_error("cannot start a multipart upload of", &data, e))?;
                state.multipart = Some(m.clone());
                m
            }
        };
        let s3 = self.s3.clone();
        let index = state.parts.len();
        let handle = tokio::spawn(async move {
            s3.put_part(&data, &multipart, index, PutPayload::from(part))
                .await
                .map_err(|e| s3_error("cannot write a part of", &data, e))
        });
        Ok(PartTask {
            handle,
            sha256: sha256.clone(),
        })
    }

    /// Waits for a part and saves the state that includes it; the old tail
    /// object, now inside a part, goes.
    async fn record_part(
        &self,
        id: &str,
        saved: &mut Saved,
        task: PartTask,
        old_tail: &mut Option<u64>,
    ) -> Result<(), StoreError> {
        let part = task
            .handle
            .await
            .map_err(|e| StoreError(format!("an s3 part upload failed: {e}")))??;
        saved.state.parts.push(part.content_id);
        saved.state.tail = 0;
        saved.state.sha256 = task.sha256;
        self.save_state(id, saved).await?;
        if let Some(n) = old_tail.take() {
            self.remove_quietly(&self.tail_key(id, n)).await;
        }
        Ok(())
    }

    /// Every object under `rel` (a folder of the layout).
    async fn list_under(&self, rel: &str) -> Result<Vec<object_store::ObjectMeta>, StoreError> {
        let prefix = self.key(rel);
        self.s3
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| s3_error("cannot list", &prefix, e))
    }

    /// The digest a blob key names, if it is one.
    fn digest_of_key(&self, key: &Path) -> Option<Digest> {
        let rel = key.as_ref().strip_prefix(&self.prefix)?;
        let mut parts = rel.split('/');
        let (Some("blobs"), Some(alg), Some(_fan), Some(hex), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        Digest::parse(&format!("{alg}:{hex}")).ok()
    }

    /// The id of an upload's state key, if it is one.
    fn upload_of_key(&self, key: &Path) -> Option<String> {
        let rel = key.as_ref().strip_prefix(&self.prefix)?;
        let id = rel.strip_prefix("uploads/")?.strip_suffix("/state")?;
        well_formed_id(id).then(|| id.to_string())
    }
}

/// A part being sent, and the SHA-256 of everything up to its end.
struct PartTask {
    handle: tokio::task::JoinHandle<Result<PartId, StoreError>>,
    sha256: Sha256State,
}

/// Where a blob that turns out corrupt goes.
struct Aside {
    s3: Arc<AmazonS3>,
    from: Path,
    to: Path,
}

impl Aside {
    /// Moves a blob whose content has digest `computed` instead of its own
    /// out of the way, so it reads as absent and can be pushed again, and
    /// says so in the log.
    async fn move_aside(&self, digest: &Digest, computed: &Digest) {
        let moved = self.s3.rename(&self.from, &self.to).await;
        tracing::error!(
            blob = %digest,
            key = %self.from,
            content = %computed,
            moved_to = %self.to,
            moved = moved.is_ok(),
            "blob content does not match its digest; it is set aside as corrupt"
        );
    }
}

/// The task behind a checked read.
async fn check_into(
    aside: Aside,
    digest: Digest,
    size: u64,
    mut body: BoxStream<'static, object_store::Result<Bytes>>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut held = HoldBack::new(digest.clone());
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                return;
            }
        };
        received += chunk.len() as u64;
        if let Some(ready) = held.push(chunk) {
            if tx.send(Ok(ready)).await.is_err() {
                return;
            }
        }
    }
    if received != size {
        let _ = tx
            .send(Err(std::io::Error::other(format!(
                "the s3 object of blob {digest} ended after {received} of {size} bytes"
            ))))
            .await;
        return;
    }
    match held.finish() {
        Ok(Some(last)) => {
            let _ = tx.send(Ok(last)).await;
        }
        Ok(None) => {}
        Err(computed) => {
            aside.move_aside(&digest, &computed).await;
            let _ = tx
                .send(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "blob {digest} is corrupt in s3 ({}): its content has digest {computed}",
                        aside.from
                    ),
                )))
                .await;
        }
    }
}

/// `s3://BUCKET[/PREFIX]` → (bucket, prefix).
fn parse_url(url: &str) -> Result<(String, String), StoreError> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        StoreError(format!(
            "--blobs: '{url}' is not an s3://BUCKET[/PREFIX] URL"
        ))
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(StoreError(format!("--blobs: '{url}' names no bucket")));
    }
    let prefix = prefix.trim_matches('/');
    check_prefix(prefix).map_err(|e| StoreError(format!("--blobs: '{url}': {e}")))?;
    Ok((bucket.to_string(), prefix.to_string()))
}

/// A prefix of characters S3 keys carry as they are, so a key is the
/// prefix followed by the layout with nothing escaped.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    let segment_ok = |p: &str| !p.is_empty() && p != "." && p != ".." && p.chars().all(plain);
    if prefix.is_empty() || prefix.split('/').all(segment_ok) {
        Ok(())
    } else {
        Err(format!(
            "the prefix '{prefix}' must be segments of letters, digits, '-', '_' and '.' (not '.' or '..') separated by single '/'"
        ))
    }
}

/// Whether an id is one this store could have made: a canonical (lowercase,
/// hyphenated) UUID, so no id can name a key outside its upload's folder.
fn well_formed_id(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::parse_str(id).is_ok_and(|u| u.hyphenated().to_string() == id)
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn create_upload(&self) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        let mut saved = Saved {
            state: UploadState::new(),
            e_tag: None,
        };
        self.save_state(&id, &mut saved).await?;
        Ok(id)
    }

    async fn append_upload(&self, id: &str, body: ByteStream) -> Result<u64, BlobError> {
        let session = self.session(id);
        let _held = session.lock().await;
        let mut saved = self.load_state(id).await?;
        let appended = self.append_locked(id, &mut saved, body).await;
        appended.map(|()| saved.state.size())
    }

    async fn upload_size(&self, id: &str) -> Result<u64, BlobError> {
        Ok(self.load_state(id).await?.state.size())
    }

    async fn finish_upload(&self, id: &str, expected: &Digest) -> Result<u64, BlobError> {
        let session = self.session(id);
        let _held = session.lock().await;
        let state = self.end_upload(id).await?;
        let outcome = match expected.algorithm() {
            Algorithm::Sha256 if &state.sha256.finish() != expected => {
                Err(BlobError::DigestMismatch {
                    computed: state.sha256.finish(),
                })
            }
            _ => self.install(id, &state, expected).await,
        };
        self.discard_parts(id, &state).await;
        outcome
    }

    async fn cancel_upload(&self, id: &str) -> Result<(), BlobError> {
        let session = self.session(id);
        let _held = session.lock().await;
        let state = self.end_upload(id).await?;
        self.discard_parts(id, &state).await;
        Ok(())
    }

    async fn put(&self, data: Bytes) -> Result<Digest, StoreError> {
        let digest = Digest::sha256_of(&data);
        let key = self.blob_key(&digest);
        // Written again even when present: stored again, a blob is as young
        // as a new one to garbage collection (the object's time).
        self.s3
            .put(&key, PutPayload::from(data))
            .await
            .map_err(|e| s3_error("cannot write", &key, e))?;
        Ok(digest)
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let key = self.blob_key(digest);
        match self.s3.head(&key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(s3_error("cannot read", &key, e)),
        }
    }

    async fn read(
        &self,
        digest: &Digest,
        start: u64,
        end: Option<u64>,
    ) -> Result<Option<ByteStream>, StoreError> {
        let key = self.blob_key(digest);
        if start == 0 {
            // The usual whole read costs one GET, which also tells the size.
            let got = match self.s3.get(&key).await {
                Ok(got) => got,
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(s3_error("cannot read", &key, e)),
            };
            let size = got.meta.size;
            if end.is_none_or(|end| end >= size) {
                return Ok(Some(self.checked_stream(
                    digest.clone(),
                    size,
                    got.into_stream(),
                )));
            }
        }
        let Some(size) = self.size(digest).await? else {
            return Ok(None);
        };
        let end = end.unwrap_or(size).min(size);
        let start = start.min(end);
        if start == end {
            return Ok(Some(Box::pin(futures_util::stream::empty())));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(start..end)),
            ..GetOptions::default()
        };
        let got = match self.s3.get_opts(&key, options).await {
            Ok(got) => got,
            // Deleted (or set aside) since the HEAD.
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(s3_error("cannot read", &key, e)),
        };
        // Ranges are not checked (they cannot be without the whole object).
        Ok(Some(Box::pin(
            got.into_stream()
                .map_err(|e| std::io::Error::other(e.to_string())),
        )))
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        let key = self.blob_key(digest);
        match self.s3.delete(&key).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(s3_error("cannot remove", &key, e)),
        }
    }

    async fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out: Vec<Digest> = self
            .list_under("blobs/")
            .await?
            .iter()
            .filter_map(|m| self.digest_of_key(&m.location))
            .collect();
        out.sort();
        Ok(out)
    }

    async fn list_stats(&self) -> Result<Vec<BlobStat>, StoreError> {
        let mut out: Vec<BlobStat> = self
            .list_under("blobs/")
            .await?
            .into_iter()
            .filter_map(|m| {
                Some(BlobStat {
                    digest: self.digest_of_key(&m.location)?,
                    size: m.size,
                    stored: SystemTime::from(m.last_modified),
                })
            })
            .collect();
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    async fn list_uploads(&self) -> Result<Vec<UploadStat>, StoreError> {
        let mut out = Vec::new();
        for meta in self.list_under("uploads/").await? {
            let Some(id) = self.upload_of_key(&meta.location) else {
                continue;
            };
            let size = match self.load_state(&id).await {
                Ok(saved) => saved.state.size(),
                // Finished or cancelled meanwhile.
                Err(BlobError::UploadUnknown) => continue,
                Err(BlobError::Store(e)) => return Err(e),
                Err(e) => return Err(StoreError(e.to_string())),
            };
            // A state is saved after every part, so only this process's
            // appends between two saves need marking as active.
            let active = if self.busy(&id) {
                SystemTime::now()
            } else {
                SystemTime::from(meta.last_modified)
            };
            out.push(UploadStat { id, size, active });
        }
        Ok(out)
    }

    async fn clear(&self) -> Result<(), StoreError> {
        for stat in self.list_uploads().await? {
            if let Ok(saved) = self.load_state(&stat.id).await {
                self.discard_parts(&stat.id, &saved.state).await;
            }
        }
        let all = self.list_under("").await?;
        for meta in all {
            self.remove_quietly(&meta.location).await;
        }
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }

    async fn scrub(&self, digest: &Digest) -> Result<Option<bool>, StoreError> {
        let key = self.blob_key(digest);
        let computed = match self.hash_object(&key, digest.algorithm()).await {
            Ok(c) => c,
            Err(_) if self.size(digest).await?.is_none() => return Ok(None),
            Err(e) => return Err(e),
        };
        if &computed == digest {
            return Ok(Some(true));
        }
        let aside = Aside {
            s3: self.s3.clone(),
            from: key,
            to: self.corrupt_key(digest),
        };
        aside.move_aside(digest, &computed).await;
        Ok(Some(false))
    }

    async fn download_url(
        &self,
        digest: &Digest,
        size: u64,
        expires_in: Duration,
    ) -> Result<BlobUrl, StoreError> {
        // A URL for a missing (or truncated) object would only fail later,
        // at the client; answer that the blob is unknown now instead.
        match BlobStore::size(self, digest).await? {
            Some(stored) if stored == size => {}
            _ => return Ok(BlobUrl::Missing),
        }
        let key = self.blob_key(digest);
        let url = self
            .s3
            .signed_url(http::Method::GET, &key, expires_in)
            .await
            .map_err(|e| s3_error("cannot presign a GET of", &key, e))?;
        Ok(BlobUrl::Presigned(url.to_string()))
    }

    fn backend(&self) -> &'static str {
        "s3"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::blobs::read_all;
    use crate::test_support::s3::S3TestServer;

    /// A store on a fresh bucket (and a second handle, as another replica
    /// would open it).
    async fn open(server: &S3TestServer) -> (S3BlobStore, S3BlobStore) {
        let bucket = server.bucket().await;
        let a = S3BlobStore::with_builder(server.builder(&bucket), "ecrd/test").unwrap();
        let b = S3BlobStore::with_builder(server.builder(&bucket), "ecrd/test").unwrap();
        (a, b)
    }

    use crate::store::conformance::owned_body as body;

    /// Content that differs everywhere, so a misplaced byte shows.
    fn content(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 31 + seed as usize) % 251) as u8)
            .collect()
    }

    async fn stream_all(mut s: ByteStream) -> Result<Vec<u8>, (usize, std::io::Error)> {
        let mut got = Vec::new();
        while let Some(chunk) = s.next().await {
            match chunk {
                Ok(c) => got.extend_from_slice(&c),
                Err(e) => return Err((got.len(), e)),
            }
        }
        Ok(got)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        let server = S3TestServer::start();
        let (store, _) = open(&server).await;
        crate::store::conformance::run_blobs(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn layout_is_content_addressed_under_the_prefix() {
        let server = S3TestServer::start();
        let (store, _) = open(&server).await;
        let d = store.put(Bytes::from_static(b"layout")).await.unwrap();
        let key = format!("ecrd/test/blobs/sha256/{}/{}", &d.hex()[..2], d.hex());
        let got = store.s3.get(&Path::from(key)).await.unwrap();
        assert_eq!(&got.bytes().await.unwrap()[..], b"layout");
        assert_eq!(store.put(Bytes::from_static(b"layout")).await.unwrap(), d);
        assert_eq!(store.list().await.unwrap(), vec![d]);
    }

    /// Appends of 1.5 MiB, as a chunked client sends them: whole parts of
    /// `PART_SIZE` go to S3 as they fill and the rest waits in the tail;
    /// S3 (moto too) refuses a part under 5 MiB that is not the last, so
    /// the finish succeeding shows every part but the last was whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_appends_are_gathered_into_whole_parts() {
        let server = S3TestServer::start();
        let (store, _) = open(&server).await;
        let all = content(12 * 1536 * 1024, 1);
        let id = store.create_upload().await.unwrap();
        for (i, piece) in all.chunks(1536 * 1024).enumerate() {
            // Each append in small chunks, as an HTTP body arrives.
            let chunks: Vec<Vec<u8>> = piece.chunks(100_000).map(<[u8]>::to_vec).collect();
            let size = store.append_upload(&id, body(chunks)).await.unwrap();
            assert_eq!(size, ((i + 1) * 1536 * 1024) as u64);
            let state = store.load_state(&id).await.unwrap().state;
            assert_eq!(
                state.parts.len(),
                (i + 1) * 1536 * 1024 / PART_SIZE,
                "after {i}"
            );
            assert_eq!(state.size(), size);
            assert!(state.tail < PART_SIZE as u64);
        }
        let state = store.load_state(&id).await.unwrap().state;
        assert_eq!((state.parts.len(), state.tail), (2, 2 * 1024 * 1024));
        // Only the current tail object is left.
        let tails: Vec<_> = store
            .list_under(&format!("uploads/{id}/"))
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.location.as_ref().contains("/tail-"))
            .collect();
        assert_eq!(tails.len(), 1, "{tails:?}");
        let digest = Digest::sha256_of(&all);
        assert_eq!(
            store.finish_upload(&id, &digest).await.unwrap(),
            all.len() as u64
        );
        assert_eq!(read_all(&store, &digest).await.unwrap().unwrap(), all);
        // Nothing of the upload is left but the blob.
        assert!(store.list_under("uploads/").await.unwrap().is_empty());
        let mut s = store
            .read(&digest, PART_SIZE as u64 - 10, Some(PART_SIZE as u64 + 10))
            .await
            .unwrap()
            .unwrap();
        let mut got = Vec::new();
        while let Some(c) = s.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, &all[PART_SIZE - 10..PART_SIZE + 10]);
    }

    /// The replica case: one ecrd starts an upload, another (its own
    /// process memory, the same bucket) continues and finishes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_replica_continues_and_finishes_an_upload() {
        let server = S3TestServer::start();
        let (first, second) = open(&server).await;
        let all = content(PART_SIZE + 3 * 1024 * 1024 + 7, 2);
        let (head, rest) = all.split_at(PART_SIZE + 1000);
        let id = first.create_upload().await.unwrap();
        first
            .append_upload(&id, body(vec![head.to_vec()]))
            .await
            .unwrap();
        assert_eq!(second.upload_size(&id).await.unwrap(), head.len() as u64);
        assert_eq!(
            second
                .append_upload(&id, body(vec![rest.to_vec()]))
                .await
                .unwrap(),
            all.len() as u64
        );
        assert_eq!(first.upload_size(&id).await.unwrap(), all.len() as u64);
        let listed = first.list_uploads().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].id.as_str(), listed[0].size),
            (id.as_str(), all.len() as u64)
        );
        // A wrong digest ends the upload for both.
        let digest = Digest::sha256_of(&all);
        assert_eq!(
            second.finish_upload(&id, &digest).await.unwrap(),
            all.len() as u64
        );
        assert!(matches!(
            first.upload_size(&id).await,
            Err(BlobError::UploadUnknown)
        ));
        assert_eq!(read_all(&first, &digest).await.unwrap().unwrap(), all);

        // sha512: assembled, re-read and checked before it is stored; a
        // replica's view of a mismatch is the same.
        let id = first.create_upload().await.unwrap();
        first
            .append_upload(&id, body(vec![all.clone()]))
            .await
            .unwrap();
        let wrong = Digest::of(Algorithm::Sha512, b"other");
        assert!(matches!(
            second.finish_upload(&id, &wrong).await,
            Err(BlobError::DigestMismatch { computed }) if computed == Digest::of(Algorithm::Sha512, &all)
        ));
        assert_eq!(second.size(&wrong).await.unwrap(), None);
        let id = first.create_upload().await.unwrap();
        first
            .append_upload(&id, body(vec![all.clone()]))
            .await
            .unwrap();
        let d512 = Digest::of(Algorithm::Sha512, &all);
        assert_eq!(
            second.finish_upload(&id, &d512).await.unwrap(),
            all.len() as u64
        );
        assert_eq!(read_all(&first, &d512).await.unwrap().unwrap(), all);
        assert!(first.list_under("uploads/").await.unwrap().is_empty());
    }

    /// Two writers of one upload state: the second to save, having read the
    /// state before the first saved, is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_state_is_not_saved() {
        let server = S3TestServer::start();
        let (first, second) = open(&server).await;
        let id = first.create_upload().await.unwrap();
        let mut stale = second.load_state(&id).await.unwrap();
        first
            .append_upload(&id, body(vec![b"first".to_vec()]))
            .await
            .unwrap();
        stale.state.sha256.update(b"second");
        let err = second.save_state(&id, &mut stale).await.unwrap_err();
        assert!(err.0.contains("changed by another ecrd"), "{err}");
        assert_eq!(second.upload_size(&id).await.unwrap(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn body_error_keeps_what_arrived() {
        let server = S3TestServer::start();
        let (store, other) = open(&server).await;
        crate::store::conformance::body_error_keeps_what_arrived(&store, &other).await;
    }

    /// A blob overwritten in the bucket with garbage of the same length:
    /// a whole read never delivers all of it, ends in an error, and the
    /// blob is moved aside so it reads as absent; the scrub finds the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupt_object_is_never_streamed_whole() {
        let server = S3TestServer::start();
        let (store, _) = open(&server).await;
        let good = content(3 * 1024 * 1024 + 5, 3);
        let digest = store.put(Bytes::from(good.clone())).await.unwrap();
        assert_eq!(read_all(&store, &digest).await.unwrap().unwrap(), good);
        assert_eq!(store.scrub(&digest).await.unwrap(), Some(true));

        let mut rotten = good.clone();
        rotten[10] ^= 0xff;
        let key = store.blob_key(&digest);
        store
            .s3
            .put(&key, PutPayload::from(rotten.clone()))
            .await
            .unwrap();
        // A range is served as stored (it cannot be checked).
        let part = stream_all(store.read(&digest, 5, Some(15)).await.unwrap().unwrap())
            .await
            .unwrap();
        assert_eq!(part, &rotten[5..15]);
        let (received, err) = stream_all(store.read(&digest, 0, None).await.unwrap().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(received < good.len(), "{received} bytes went out");
        assert_eq!(store.size(&digest).await.unwrap(), None);
        assert_eq!(store.list_under("corrupt/").await.unwrap().len(), 1);
        // Pushed again, it is whole again.
        assert_eq!(store.put(Bytes::from(good.clone())).await.unwrap(), digest);
        assert_eq!(read_all(&store, &digest).await.unwrap().unwrap(), good);

        // The same length of other bytes, found by the scrub.
        store
            .s3
            .put(&key, PutPayload::from(vec![0u8; good.len()]))
            .await
            .unwrap();
        assert_eq!(store.scrub(&digest).await.unwrap(), Some(false));
        assert_eq!(store.size(&digest).await.unwrap(), None);
        assert_eq!(store.scrub(&digest).await.unwrap(), None);
        // A truncated object: the read stops short too.
        let d = store.put(Bytes::from(good.clone())).await.unwrap();
        store
            .s3
            .put(&key, PutPayload::from(good[..100].to_vec()))
            .await
            .unwrap();
        let got = stream_all(store.read(&d, 0, None).await.unwrap().unwrap()).await;
        assert!(got.is_err());
    }

    /// Past the copy limit (5 GiB on S3, lowered here) a finished upload is
    /// streamed to its content address instead of copied.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_blobs_are_streamed_into_place() {
        let server = S3TestServer::start();
        let (mut store, _) = open(&server).await;
        store.copy_limit = 1024;
        let all = content(PART_SIZE + PART_SIZE / 2, 4);
        let id = store.create_upload().await.unwrap();
        store
            .append_upload(&id, body(vec![all.clone()]))
            .await
            .unwrap();
        let digest = Digest::sha256_of(&all);
        store.finish_upload(&id, &digest).await.unwrap();
        assert_eq!(read_all(&store, &digest).await.unwrap().unwrap(), all);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn download_urls_are_presigned_only_for_what_is_there() {
        let server = S3TestServer::start();
        let (store, _) = open(&server).await;
        let d = store.put(Bytes::from_static(b"presigned")).await.unwrap();
        let hour = Duration::from_secs(3600);
        let BlobUrl::Presigned(url) = store.download_url(&d, 9, hour).await.unwrap() else {
            panic!("expected a presigned URL");
        };
        assert!(url.starts_with(server.endpoint()), "{url}");
        assert!(url.contains("X-Amz-Signature="), "{url}");
        assert!(url.contains("X-Amz-Expires=3600"), "{url}");
        let got = reqwest::get(&url).await.unwrap();
        assert!(got.status().is_success());
        assert_eq!(&got.bytes().await.unwrap()[..], b"presigned");
        // A size other than the stored one, or no object: no URL.
        assert_eq!(
            store.download_url(&d, 8, hour).await.unwrap(),
            BlobUrl::Missing
        );
        store.delete(&d).await.unwrap();
        assert_eq!(
            store.download_url(&d, 9, hour).await.unwrap(),
            BlobUrl::Missing
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ids_cannot_escape_their_upload_folder() {
        let server = S3TestServer::start();
        let (store, _) = open(&server).await;
        for id in [
            "../blobs",
            "",
            "x/../../state",
            "ABCDEF00-0000-4000-8000-000000000000",
        ] {
            assert!(
                matches!(store.upload_size(id).await, Err(BlobError::UploadUnknown)),
                "{id}"
            );
            assert!(matches!(
                store.append_upload(id, body(vec![b"x".to_vec()])).await,
                Err(BlobError::UploadUnknown)
            ));
        }
    }

    #[test]
    fn blob_urls_parse() {
        assert_eq!(
            parse_url("s3://bucket/some/prefix/").unwrap(),
            ("bucket".to_string(), "some/prefix".to_string())
        );
        assert_eq!(
            parse_url("s3://bucket").unwrap(),
            ("bucket".to_string(), String::new())
        );
        for bad in [
            "bucket/x",
            "s3:///x",
            "http://bucket/x",
            "s3://b/a//b",
            "s3://b/../x",
            "s3://b/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}

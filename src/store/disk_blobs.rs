//! The disk blob store: one file per blob under `DIR/blobs/<alg>/<ab>/<hex>`,
//! one file per upload session under `DIR/uploads/<uuid>`.
//!
//! Crash safety. A blob file only ever appears complete: an upload's bytes
//! are fsynced, verified against the digest the client names, then renamed
//! into place (an atomic step) and the blob's directory is fsynced, all
//! before `finish_upload` returns. One-step `put`s go the same way through
//! `DIR/tmp/`. Appends are not fsynced: after a crash an upload may hold
//! fewer bytes than were acknowledged, which its size (the file's length)
//! then says, so the client resumes from there or starts again; nothing
//! unverified ever becomes a blob.
//!
//! Hashing. Each upload keeps its running SHA-256 in memory, so finishing a
//! sha256 upload costs no re-read. After a restart (or a failed write whose
//! extent is unknown) that state is rebuilt by hashing the file on demand.
//! sha512 digests are verified by re-reading the file.
//!
//! Corruption. A whole-blob read hashes what it streams; if the bytes on disk
//! no longer match their name, the stream ends in an error (the client sees
//! a broken transfer, never a silently wrong blob) and the file is moved to
//! `DIR/corrupt/`, so the blob reads as absent and a client can push it
//! again. `verify`/`fsck` check blobs on demand. Ranged reads are not
//! verified.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use super::blobs::{BlobError, BlobStat, BlobStore, ByteStream, UploadStat};
use super::disk::DataDir;
use super::disk_read;
use super::StoreError;
use crate::digest::{Algorithm, Digest, Hasher};

/// Bytes of a request body gathered before they are handed to a write.
const WRITE_BATCH: usize = 1024 * 1024;

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("{what} {}: {e}", path.display()))
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError(format!("a blob store task failed: {e}"))
}

/// What this process knows of an upload's file.
struct Known {
    size: u64,
    sha256: Hasher,
}

struct Session {
    /// None until the file has been (re)hashed by this process.
    known: Option<Known>,
    /// Finished or cancelled: whoever still holds the session must not touch
    /// the file.
    gone: bool,
    /// The digest the file was synced and found to have (`prepare_finish`),
    /// until bytes are appended.
    verified: Option<Digest>,
}

type SessionRef = Arc<tokio::sync::Mutex<Session>>;

/// Blobs kept as files in a data directory.
pub struct DiskBlobStore {
    _dir: Arc<DataDir>,
    blobs: PathBuf,
    uploads: PathBuf,
    tmp: PathBuf,
    corrupt: PathBuf,
    sessions: Mutex<HashMap<String, SessionRef>>,
    /// Files this process has hashed and not seen change since
    /// (`disk_read`): their whole reads skip the check.
    known_good: disk_read::KnownGood,
}

impl DiskBlobStore {
    /// Opens the blob directories of a data directory, creating them and
    /// emptying the scratch directory.
    pub fn open(dir: Arc<DataDir>) -> Result<Self, StoreError> {
        let root = dir.path().to_path_buf();
        let store = DiskBlobStore {
            blobs: root.join("blobs"),
            uploads: root.join("uploads"),
            tmp: root.join("tmp"),
            corrupt: root.join("corrupt"),
            _dir: dir,
            sessions: Mutex::new(HashMap::new()),
            known_good: disk_read::KnownGood::default(),
        };
        for d in [&store.blobs, &store.uploads, &store.tmp] {
            std::fs::create_dir_all(d).map_err(|e| io_error("cannot create", d, e))?;
        }
        // Leftovers of puts interrupted by a crash; nothing refers to them.
        if let Ok(entries) = std::fs::read_dir(&store.tmp) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(store)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        // A `Digest` holds only lowercase hex of a fixed length.
        let hex = digest.hex();
        self.blobs
            .join(digest.algorithm().name())
            .join(&hex[..2])
            .join(hex)
    }

    /// The file of an upload id, if the id is one this store could have
    /// made: a canonical (lowercase, hyphenated) UUID, so no id can name a
    /// path outside `DIR/uploads`.
    fn upload_path(&self, id: &str) -> Option<PathBuf> {
        let well_formed = !id.is_empty()
            && id.len() <= 36
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
            && uuid::Uuid::parse_str(id).is_ok_and(|u| u.hyphenated().to_string() == id);
        well_formed.then(|| self.uploads.join(id))
    }

    /// The session of an upload, picked up from its file after a restart.
    async fn session(&self, id: &str) -> Result<(SessionRef, PathBuf), BlobError> {
        let path = self.upload_path(id).ok_or(BlobError::UploadUnknown)?;
        if let Some(s) = self.sessions().get(id) {
            return Ok((s.clone(), path));
        }
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(BlobError::UploadUnknown),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::UploadUnknown)
            }
            Err(e) => return Err(io_error("cannot read upload", &path, e).into()),
        }
        let session = self
            .sessions()
            .entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Session {
                    known: None,
                    gone: false,
                    verified: None,
                }))
            })
            .clone();
        Ok((session, path))
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionRef>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a session: later holders see it gone, later lookups find no file.
    fn end_session(&self, id: &str, session: &mut Session) {
        session.gone = true;
        session.known = None;
        self.sessions().remove(id);
    }

    /// Whether the blob's content still has its digest; None if absent.
    pub async fn verify(&self, digest: &Digest) -> Result<Option<bool>, StoreError> {
        let path = self.blob_path(digest);
        let algorithm = digest.algorithm();
        let hashed = tokio::task::spawn_blocking(move || hash_file(&path, algorithm))
            .await
            .map_err(join_error)?;
        match hashed {
            Ok((_, computed)) => Ok(Some(&computed == digest)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("cannot read blob", &self.blob_path(digest), e)),
        }
    }

    /// Re-hashes every blob and returns those whose content no longer has
    /// their digest (it reads everything: an operator's or a GC's tool, not
    /// something to run on every start).
    pub async fn fsck(&self) -> Result<Vec<Digest>, StoreError> {
        let mut bad = Vec::new();
        for digest in self.list().await? {
            if self.verify(&digest).await? == Some(false) {
                bad.push(digest);
            }
        }
        Ok(bad)
    }
}

/// Calls `each` for every blob file under `root` (`<alg>/<ab>/<hex>`).
fn walk_blobs(
    root: &Path,
    mut each: impl FnMut(Digest, &std::fs::DirEntry) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let dir = root.join(algorithm.name());
        let fans = match std::fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("cannot list", &dir, e)),
        };
        for fan in fans {
            let fan = fan.map_err(|e| io_error("cannot list", &dir, e))?.path();
            let Ok(files) = std::fs::read_dir(&fan) else {
                continue;
            };
            for file in files {
                let file = file.map_err(|e| io_error("cannot list", &fan, e))?;
                let name = file.file_name();
                let Some(name) = name.to_str() else { continue };
                if let Ok(d) = Digest::parse(&format!("{}:{name}", algorithm.name())) {
                    each(d, &file)?;
                }
            }
        }
    }
    Ok(())
}

/// Hashes a file, returning its size and digest.
fn hash_file(path: &Path, algorithm: Algorithm) -> std::io::Result<(u64, Digest)> {
    let mut file = File::open(path)?;
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finish()))
}

/// Hashes an upload's file into the state appends continue from.
fn rehash(path: &Path) -> std::io::Result<Known> {
    let mut file = File::open(path)?;
    let mut sha256 = Hasher::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha256.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Known { size, sha256 })
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Sets a file's modification time, which is when its blob was stored as
/// garbage collection reads it (`list_stats`).
fn touch(path: &Path, at: std::time::SystemTime) -> std::io::Result<()> {
    OpenOptions::new().write(true).open(path)?.set_modified(at)
}

/// Makes `from` (complete, verified and fsynced) the blob at `target`, and
/// makes the new directory entry durable. An existing copy is kept, unless
/// its size shows it damaged (then the good copy atomically replaces it).
/// Either way the blob's time becomes now: stored again, it is as young as
/// a new blob. True when `from` became the blob.
fn install(from: &Path, target: &Path, blobs_root: &Path) -> std::io::Result<bool> {
    let now = std::time::SystemTime::now();
    if let Ok(existing) = std::fs::metadata(target) {
        if existing.len() == std::fs::metadata(from)?.len() && touch(target, now).is_ok() {
            let _ = std::fs::remove_file(from);
            return Ok(false);
        }
    }
    touch(from, now)?;
    let Some(parent) = target.parent() else {
        return Err(std::io::Error::other("a blob path has no parent"));
    };
    if !parent.exists() {
        std::fs::create_dir_all(parent)?;
        // The new directories' own entries must be durable too.
        let mut dir = parent.parent();
        while let Some(d) = dir {
            sync_dir(d)?;
            if d == blobs_root {
                break;
            }
            dir = d.parent();
        }
    }
    std::fs::rename(from, target)?;
    sync_dir(parent)?;
    Ok(true)
}

/// The part of an upload a blocking write task owns while it runs.
struct Writer {
    path: PathBuf,
    file: Option<File>,
    known: Option<Known>,
}

impl Writer {
    /// Appends a batch. On a failed write the file is cut back to what was
    /// written and hashed before it, so file and state agree; if even that
    /// fails, the state is dropped and rebuilt from the file later.
    fn write(mut self, batch: Vec<Bytes>) -> (Self, std::io::Result<()>) {
        let result = self.write_inner(&batch);
        (self, result)
    }

    fn write_inner(&mut self, batch: &[Bytes]) -> std::io::Result<()> {
        let Some(known) = self.known.as_mut() else {
            return Err(std::io::Error::other("upload state unknown"));
        };
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().append(true).open(&self.path)?);
        }
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::Error::other("upload file not open"));
        };
        for chunk in batch {
            if let Err(e) = file.write_all(chunk) {
                if file.set_len(known.size).is_err() {
                    self.known = None;
                }
                return Err(e);
            }
            known.sha256.update(chunk);
            known.size += chunk.len() as u64;
        }
        Ok(())
    }
}

type WriteTask = tokio::task::JoinHandle<(Writer, std::io::Result<()>)>;

#[async_trait]
impl BlobStore for DiskBlobStore {
    async fn create_upload(&self) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        let path = self.uploads.join(&id);
        tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| io_error("cannot create upload", &path, e))?;
        self.sessions().insert(
            id.clone(),
            Arc::new(tokio::sync::Mutex::new(Session {
                known: Some(Known {
                    size: 0,
                    sha256: Hasher::new(Algorithm::Sha256),
                }),
                gone: false,
                verified: None,
            })),
        );
        Ok(id)
    }

    async fn append_upload(&self, id: &str, mut body: ByteStream) -> Result<u64, BlobError> {
        let (session, path) = self.session(id).await?;
        let mut session = session.lock().await;
        if session.gone {
            return Err(BlobError::UploadUnknown);
        }
        session.verified = None;
        let known = match session.known.take() {
            Some(k) => k,
            None => {
                let p = path.clone();
                let rehashed = tokio::task::spawn_blocking(move || rehash(&p))
                    .await
                    .map_err(join_error)?;
                match rehashed {
                    Ok(k) => k,
                    // Finished or cancelled by someone else meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        self.end_session(id, &mut session);
                        return Err(BlobError::UploadUnknown);
                    }
                    Err(e) => return Err(io_error("cannot read upload", &path, e).into()),
                }
            }
        };
        // Writing and hashing run on the blocking pool while the next batch
        // of the body arrives: one batch in flight, one filling.
        let mut idle = Some(Writer {
            path: path.clone(),
            file: None,
            known: Some(known),
        });
        let mut in_flight: Option<WriteTask> = None;
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batch_len = 0usize;
        let mut body_error = None;
        let mut write_error = None;
        loop {
            let ended = match body.next().await {
                Some(Ok(chunk)) => {
                    batch_len += chunk.len();
                    if !chunk.is_empty() {
                        batch.push(chunk);
                    }
                    false
                }
                Some(Err(e)) => {
                    body_error = Some(e);
                    true
                }
                None => true,
            };
            if !batch.is_empty() && (ended || batch_len >= WRITE_BATCH) {
                if let Some(task) = in_flight.take() {
                    let (writer, result) = task.await.map_err(join_error)?;
                    idle = Some(writer);
                    if let Err(e) = result {
                        write_error = Some(e);
                        break;
                    }
                }
                let Some(writer) = idle.take() else {
                    return Err(StoreError("upload writer lost".into()).into());
                };
                let full = std::mem::take(&mut batch);
                batch_len = 0;
                in_flight = Some(tokio::task::spawn_blocking(move || writer.write(full)));
            }
            if ended {
                break;
            }
        }
        if let Some(task) = in_flight.take() {
            let (writer, result) = task.await.map_err(join_error)?;
            idle = Some(writer);
            if let Err(e) = result {
                write_error.get_or_insert(e);
            }
        }
        let Some(writer) = idle else {
            return Err(StoreError("upload writer lost".into()).into());
        };
        session.known = writer.known;
        if let Some(e) = write_error {
            return Err(io_error("cannot write upload", &path, e).into());
        }
        if let Some(e) = body_error {
            return Err(BlobError::Body(e));
        }
        match &session.known {
            Some(k) => Ok(k.size),
            None => {
                Err(StoreError(format!("upload {} is in an unknown state", path.display())).into())
            }
        }
    }

    async fn upload_size(&self, id: &str) -> Result<u64, BlobError> {
        let (session, path) = self.session(id).await?;
        let session = session.lock().await;
        if session.gone {
            return Err(BlobError::UploadUnknown);
        }
        if let Some(k) = &session.known {
            return Ok(k.size);
        }
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::UploadUnknown),
            Err(e) => Err(io_error("cannot read upload", &path, e).into()),
        }
    }

    async fn prepare_finish(&self, id: &str, expected: &Digest) -> Result<(), BlobError> {
        let (session, path) = self.session(id).await?;
        let mut session = session.lock().await;
        if session.gone {
            return Err(BlobError::UploadUnknown);
        }
        let hashed = match (expected.algorithm(), &session.known) {
            (Algorithm::Sha256, Some(k)) => Some(k.sha256.clone().finish()),
            _ => None,
        };
        let algorithm = expected.algorithm();
        let upload = path.clone();
        let checked = tokio::task::spawn_blocking(move || -> std::io::Result<Digest> {
            File::open(&upload).and_then(|f| f.sync_all())?;
            match hashed {
                Some(digest) => Ok(digest),
                None => hash_file(&upload, algorithm).map(|(_, digest)| digest),
            }
        })
        .await
        .map_err(join_error)?;
        match checked {
            Ok(computed) if &computed == expected => {
                session.verified = Some(computed);
                Ok(())
            }
            Ok(computed) => {
                self.end_session(id, &mut session);
                let _ = tokio::fs::remove_file(&path).await;
                Err(BlobError::DigestMismatch { computed })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.end_session(id, &mut session);
                Err(BlobError::UploadUnknown)
            }
            Err(e) => Err(io_error("cannot sync upload", &path, e).into()),
        }
    }

    async fn finish_upload(&self, id: &str, expected: &Digest) -> Result<u64, BlobError> {
        let (session, path) = self.session(id).await?;
        let mut session = session.lock().await;
        if session.gone {
            return Err(BlobError::UploadUnknown);
        }
        let known = session.known.take();
        // Synced and checked by `prepare_finish`, with nothing appended since.
        let verified = session.verified.take().is_some_and(|d| &d == expected);
        // Whatever happens next, the upload ends here.
        self.end_session(id, &mut session);
        let target = self.blob_path(expected);
        let blobs_root = self.blobs.clone();
        let expected = expected.clone();
        let upload = path.clone();
        let known_good = self.known_good.clone();
        let outcome = tokio::task::spawn_blocking(move || -> Result<u64, BlobError> {
            let fail = |what: &str, e: std::io::Error| -> BlobError {
                let _ = std::fs::remove_file(&upload);
                io_error(what, &upload, e).into()
            };
            let not_found = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
            let size = if verified {
                match known {
                    Some(k) => k.size,
                    None => match std::fs::metadata(&upload) {
                        Ok(m) => m.len(),
                        Err(e) if not_found(&e) => return Err(BlobError::UploadUnknown),
                        Err(e) => return Err(fail("cannot read upload", e)),
                    },
                }
            } else {
                match File::open(&upload).and_then(|f| f.sync_all()) {
                    Ok(()) => {}
                    Err(e) if not_found(&e) => return Err(BlobError::UploadUnknown),
                    Err(e) => return Err(fail("cannot sync upload", e)),
                }
                let (size, computed) = match (expected.algorithm(), known) {
                    (Algorithm::Sha256, Some(k)) => (k.size, k.sha256.finish()),
                    (algorithm, _) => {
                        hash_file(&upload, algorithm).map_err(|e| fail("cannot read upload", e))?
                    }
                };
                if computed != expected {
                    let _ = std::fs::remove_file(&upload);
                    return Err(BlobError::DigestMismatch { computed });
                }
                size
            };
            // The file holds the bytes that were hashed: known good. A copy
            // already there was not checked, so its next read is.
            if install(&upload, &target, &blobs_root)
                .map_err(|e| fail("cannot store blob from upload", e))?
            {
                known_good.remember_file(expected, &target);
            }
            Ok(size)
        })
        .await
        .map_err(join_error)?;
        outcome
    }

    async fn cancel_upload(&self, id: &str) -> Result<(), BlobError> {
        let (session, path) = self.session(id).await?;
        let mut session = session.lock().await;
        if session.gone {
            return Err(BlobError::UploadUnknown);
        }
        self.end_session(id, &mut session);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::UploadUnknown),
            Err(e) => Err(io_error("cannot remove upload", &path, e).into()),
        }
    }

    async fn put(&self, data: Bytes) -> Result<Digest, StoreError> {
        let tmp = self.tmp.join(uuid::Uuid::new_v4().hyphenated().to_string());
        let blobs_root = self.blobs.clone();
        let digest = Digest::sha256_of(&data);
        let target = self.blob_path(&digest);
        let known_good = self.known_good.clone();
        let written = digest.clone();
        tokio::task::spawn_blocking(move || {
            if target.exists() && touch(&target, std::time::SystemTime::now()).is_ok() {
                return Ok(());
            }
            let write = || -> std::io::Result<()> {
                let mut f = File::create(&tmp)?;
                f.write_all(&data)?;
                f.sync_all()?;
                if install(&tmp, &target, &blobs_root)? {
                    known_good.remember_file(written, &target);
                }
                Ok(())
            };
            write().map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io_error("cannot store blob", &target, e)
            })
        })
        .await
        .map_err(join_error)??;
        Ok(digest)
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let path = self.blob_path(digest);
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("cannot read blob", &path, e)),
        }
    }

    async fn read(
        &self,
        digest: &Digest,
        start: u64,
        end: Option<u64>,
    ) -> Result<Option<ByteStream>, StoreError> {
        let path = self.blob_path(digest);
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let file = File::open(&path)?;
                let stamp = disk_read::Stamp::of(&file.metadata()?);
                Ok::<_, std::io::Error>((file, stamp))
            })
            .await
            .map_err(join_error)?
        };
        let (file, stamp) = match opened {
            Ok(opened) => opened,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot read blob", &path, e)),
        };
        let len = stamp.size();
        let end = end.unwrap_or(len).min(len);
        let start = start.min(end);
        let whole = start == 0 && end == len;
        let check = (whole && !self.known_good.is_good(digest, &stamp)).then(|| disk_read::Check {
            expected: digest.clone(),
            corrupt_dir: self.corrupt.clone(),
            known_good: self.known_good.clone(),
            stamp,
        });
        Ok(Some(disk_read::stream(file, path, start, end, check)))
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        self.known_good.forget(digest);
        let path = self.blob_path(digest);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("cannot delete blob", &path, e)),
        }
    }

    /// A directory walk (no file is opened or stat'ed): the one count in
    /// the metrics that grows with what is stored.
    async fn count(&self) -> Result<u64, StoreError> {
        let root = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            let mut n = 0u64;
            walk_blobs(&root, |_, _| {
                n += 1;
                Ok(())
            })?;
            Ok(n)
        })
        .await
        .map_err(join_error)?
    }

    async fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let root = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk_blobs(&root, |digest, _| {
                out.push(digest);
                Ok(())
            })?;
            out.sort();
            Ok(out)
        })
        .await
        .map_err(join_error)?
    }

    async fn list_stats(&self) -> Result<Vec<BlobStat>, StoreError> {
        let root = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk_blobs(&root, |digest, file| {
                let meta = match file.metadata() {
                    Ok(m) => m,
                    // Deleted (or set aside as corrupt) meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(io_error("cannot read", &file.path(), e)),
                };
                let stored = meta
                    .modified()
                    .map_err(|e| io_error("cannot read the time of", &file.path(), e))?;
                out.push(BlobStat {
                    digest,
                    size: meta.len(),
                    stored,
                });
                Ok(())
            })?;
            out.sort_by(|a, b| a.digest.cmp(&b.digest));
            Ok(out)
        })
        .await
        .map_err(join_error)?
    }

    async fn list_uploads(&self) -> Result<Vec<UploadStat>, StoreError> {
        let dir = self.uploads.clone();
        let files = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let entries = match std::fs::read_dir(&dir) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(io_error("cannot list", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_error("cannot list", &dir, e))?;
                let Ok(id) = entry.file_name().into_string() else {
                    continue;
                };
                let meta = match entry.metadata() {
                    Ok(m) if m.is_file() => m,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error("cannot read", &entry.path(), e)),
                };
                let active = meta
                    .modified()
                    .map_err(|e| io_error("cannot read the time of", &entry.path(), e))?;
                out.push(UploadStat {
                    id,
                    size: meta.len(),
                    active,
                });
            }
            Ok(out)
        })
        .await
        .map_err(join_error)??;
        let mut out = Vec::with_capacity(files.len());
        for mut stat in files {
            if self.upload_path(&stat.id).is_none() {
                continue;
            }
            // An append holding the session is streaming into it now.
            let busy = self
                .sessions()
                .get(&stat.id)
                .is_some_and(|s| s.try_lock().is_err());
            if busy {
                stat.active = std::time::SystemTime::now();
            }
            out.push(stat);
        }
        Ok(out)
    }

    async fn scrub(&self, digest: &Digest) -> Result<Option<bool>, StoreError> {
        let path = self.blob_path(digest);
        let corrupt = self.corrupt.clone();
        let known_good = self.known_good.clone();
        let expected = digest.clone();
        tokio::task::spawn_blocking(move || {
            let stamp = match std::fs::metadata(&path) {
                Ok(m) => disk_read::Stamp::of(&m),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_error("cannot read blob", &path, e)),
            };
            let computed = match hash_file(&path, expected.algorithm()) {
                Ok((_, computed)) => computed,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_error("cannot read blob", &path, e)),
            };
            if computed == expected {
                known_good.remember(expected, stamp);
                return Ok(Some(true));
            }
            known_good.forget(&expected);
            disk_read::set_aside(&path, &corrupt, &expected, &computed);
            Ok(Some(false))
        })
        .await
        .map_err(join_error)?
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.known_good.clear();
        let sessions: Vec<SessionRef> = self.sessions().drain().map(|(_, s)| s).collect();
        for s in sessions {
            let mut s = s.lock().await;
            s.gone = true;
            s.known = None;
        }
        let dirs = [self.blobs.clone(), self.uploads.clone(), self.tmp.clone()];
        tokio::task::spawn_blocking(move || {
            for d in dirs {
                match std::fs::remove_dir_all(&d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("cannot clear", &d, e)),
                }
                std::fs::create_dir_all(&d).map_err(|e| io_error("cannot create", &d, e))?;
            }
            Ok(())
        })
        .await
        .map_err(join_error)?
    }

    fn backend(&self) -> &'static str {
        "disk"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::blobs::read_all;

    fn open(dir: &Path) -> DiskBlobStore {
        DiskBlobStore::open(DataDir::open(dir).unwrap()).unwrap()
    }

    use crate::store::conformance::owned_body as body;

    #[tokio::test]
    async fn conformance() {
        let tmp = tempfile::tempdir().unwrap();
        super::super::conformance::run_blobs(&open(tmp.path())).await;
    }

    #[tokio::test]
    async fn layout_is_content_addressed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        let d = store.put(Bytes::from_static(b"layout")).await.unwrap();
        let path = tmp
            .path()
            .join("blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex());
        assert_eq!(std::fs::read(path).unwrap(), b"layout");
        // A second put of the same content keeps the one copy.
        assert_eq!(store.put(Bytes::from_static(b"layout")).await.unwrap(), d);
        assert_eq!(store.list().await.unwrap(), vec![d]);
    }

    #[tokio::test]
    async fn large_upload_streams_in_batches() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        let id = store.create_upload().await.unwrap();
        let parts: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100_000]).collect();
        let all: Vec<u8> = parts.concat();
        assert_eq!(
            store.append_upload(&id, body(parts)).await.unwrap(),
            all.len() as u64
        );
        let digest = Digest::sha256_of(&all);
        store.finish_upload(&id, &digest).await.unwrap();
        assert_eq!(read_all(&store, &digest).await.unwrap().unwrap(), all);
        // A range in the middle.
        let mut s = store
            .read(&digest, 150_000, Some(350_001))
            .await
            .unwrap()
            .unwrap();
        let mut got = Vec::new();
        while let Some(c) = s.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, &all[150_000..350_001]);
    }

    #[tokio::test]
    async fn upload_continues_after_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let id = {
            let store = open(tmp.path());
            let id = store.create_upload().await.unwrap();
            store
                .append_upload(&id, body(vec![b"hello ".to_vec()]))
                .await
                .unwrap();
            id
        };
        let store = open(tmp.path());
        assert_eq!(store.upload_size(&id).await.unwrap(), 6);
        assert_eq!(
            store
                .append_upload(&id, body(vec![b"again".to_vec()]))
                .await
                .unwrap(),
            11
        );
        let digest = Digest::sha256_of(b"hello again");
        assert_eq!(store.finish_upload(&id, &digest).await.unwrap(), 11);
        assert_eq!(
            read_all(&store, &digest).await.unwrap().unwrap(),
            Bytes::from_static(b"hello again")
        );

        // Finishing straight after a restart re-hashes the whole file.
        let id = store.create_upload().await.unwrap();
        store
            .append_upload(&id, body(vec![b"only".to_vec()]))
            .await
            .unwrap();
        drop(store);
        let store = open(tmp.path());
        let wrong = Digest::sha256_of(b"other");
        assert!(matches!(
            store.finish_upload(&id, &wrong).await,
            Err(BlobError::DigestMismatch { computed }) if computed == Digest::sha256_of(b"only")
        ));
        assert!(matches!(
            store.upload_size(&id).await,
            Err(BlobError::UploadUnknown)
        ));
    }

    #[tokio::test]
    async fn ids_cannot_escape_the_uploads_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        std::fs::write(tmp.path().join("secret"), b"x").unwrap();
        for id in [
            "../secret",
            "..",
            "",
            "/etc/passwd",
            "LOCK",
            "ABCDEF00-0000-4000-8000-000000000000",
            "0000000000004000800000000000000",
        ] {
            assert!(
                matches!(store.upload_size(id).await, Err(BlobError::UploadUnknown)),
                "{id}"
            );
            assert!(matches!(
                store.append_upload(id, body(vec![b"x".to_vec()])).await,
                Err(BlobError::UploadUnknown)
            ));
            assert!(matches!(
                store.cancel_upload(id).await,
                Err(BlobError::UploadUnknown)
            ));
        }
        assert_eq!(std::fs::read(tmp.path().join("secret")).unwrap(), b"x");
    }

    #[tokio::test]
    async fn body_error_keeps_what_arrived() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        crate::store::conformance::body_error_keeps_what_arrived(&store, &store).await;
    }

    /// A full disk (here /dev/full standing in for the upload's file): the
    /// append fails with an error naming the file, and the upload's state
    /// still matches its file.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn write_errors_name_the_file_and_leave_the_upload_consistent() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        let id = store.create_upload().await.unwrap();
        let path = tmp.path().join("uploads").join(&id);
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let err = store
            .append_upload(&id, body(vec![b"abc".to_vec()]))
            .await
            .unwrap_err();
        let BlobError::Store(err) = err else {
            panic!("expected a store error, got {err:?}")
        };
        assert!(err.0.contains(&path.display().to_string()), "{err}");
        assert!(err.0.contains("No space left on device"), "{err}");
        assert_eq!(store.upload_size(&id).await.unwrap(), 0);
        store.cancel_upload(&id).await.unwrap();
    }

    #[tokio::test]
    async fn corrupt_blob_is_detected_and_set_aside() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        let good = store
            .put(Bytes::from_static(b"good content"))
            .await
            .unwrap();
        let bad = store.put(Bytes::from_static(b"will rot")).await.unwrap();
        let path = store.blob_path(&bad);
        std::fs::write(&path, b"has rot!").unwrap();

        assert_eq!(store.verify(&good).await.unwrap(), Some(true));
        assert_eq!(store.verify(&bad).await.unwrap(), Some(false));
        assert_eq!(store.fsck().await.unwrap(), vec![bad.clone()]);

        // A ranged read is served as is (it cannot be checked cheaply).
        let mut s = store.read(&bad, 0, Some(3)).await.unwrap().unwrap();
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"has"));

        // A whole read fails instead of sending its last chunk (here, its
        // only one), and the blob is moved aside so it can be pushed again.
        let mut s = store.read(&bad, 0, None).await.unwrap().unwrap();
        let err = s.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(read_all(&store, &good).await.unwrap().is_some());
        assert_eq!(store.size(&bad).await.unwrap(), None);
        assert_eq!(
            std::fs::read_dir(tmp.path().join("corrupt"))
                .unwrap()
                .count(),
            1
        );
        assert_eq!(
            store.put(Bytes::from_static(b"will rot")).await.unwrap(),
            bad
        );
        assert_eq!(store.verify(&bad).await.unwrap(), Some(true));
    }

    #[tokio::test]
    async fn a_corrupt_blob_never_streams_its_whole_length() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        let content: Vec<u8> = (0..(5 * disk_read::READ_CHUNK / 2))
            .map(|i| (i % 251) as u8)
            .collect();
        let digest = store.put(Bytes::from(content.clone())).await.unwrap();
        // A good copy streams whole, in order.
        assert_eq!(
            &read_all(&store, &digest).await.unwrap().unwrap()[..],
            &content[..]
        );
        // One byte rots in the first chunk: the chunks before the last may
        // go out, the last never does, and the stream ends in an error.
        let mut rotten = content.clone();
        rotten[10] ^= 0xff;
        std::fs::write(store.blob_path(&digest), &rotten).unwrap();
        let mut s = store.read(&digest, 0, None).await.unwrap().unwrap();
        let mut received = 0;
        let err = loop {
            match s.next().await.unwrap() {
                Ok(chunk) => received += chunk.len(),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(received < content.len(), "{received} bytes went out");
        assert!(s.next().await.is_none());
        assert_eq!(store.size(&digest).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_truncated_copy_is_replaced_by_a_new_push() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        let d = store
            .put(Bytes::from_static(b"whole content"))
            .await
            .unwrap();
        std::fs::write(store.blob_path(&d), b"whole").unwrap();
        let id = store.create_upload().await.unwrap();
        store
            .append_upload(&id, body(vec![b"whole content".to_vec()]))
            .await
            .unwrap();
        store.finish_upload(&id, &d).await.unwrap();
        assert_eq!(store.verify(&d).await.unwrap(), Some(true));
    }

    #[tokio::test]
    async fn storing_again_makes_a_blob_young() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        let d = store.put(Bytes::from_static(b"again")).await.unwrap();
        touch(&store.blob_path(&d), old).unwrap();
        assert_eq!(store.list_stats().await.unwrap()[0].stored, old);
        store.put(Bytes::from_static(b"again")).await.unwrap();
        assert!(store.list_stats().await.unwrap()[0].stored > old);

        touch(&store.blob_path(&d), old).unwrap();
        let id = store.create_upload().await.unwrap();
        store
            .append_upload(&id, body(vec![b"again".to_vec()]))
            .await
            .unwrap();
        // An upload idle for long still makes a blob stored now.
        touch(&tmp.path().join("uploads").join(&id), old).unwrap();
        let stat = store.list_uploads().await.unwrap();
        assert_eq!((stat[0].size, stat[0].active), (5, old));
        store.finish_upload(&id, &d).await.unwrap();
        assert!(store.list_stats().await.unwrap()[0].stored > old);
        let id = store.create_upload().await.unwrap();
        store
            .append_upload(&id, body(vec![b"new one".to_vec()]))
            .await
            .unwrap();
        touch(&tmp.path().join("uploads").join(&id), old).unwrap();
        let fresh = Digest::sha256_of(b"new one");
        store.finish_upload(&id, &fresh).await.unwrap();
        let stats = store.list_stats().await.unwrap();
        assert!(stats.iter().all(|s| s.stored > old), "{stats:?}");
    }

    #[tokio::test]
    async fn interrupted_puts_are_swept_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        drop(open(tmp.path()));
        std::fs::write(tmp.path().join("tmp/leftover"), b"half").unwrap();
        let store = open(tmp.path());
        assert_eq!(
            std::fs::read_dir(tmp.path().join("tmp")).unwrap().count(),
            0
        );
        assert!(store.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn concurrent_appends_to_one_upload_serialise() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(open(tmp.path()));
        let id = store.create_upload().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let store = store.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .append_upload(&id, body(vec![vec![i; 1000], vec![i; 1000]]))
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let path = tmp.path().join("uploads").join(&id);
        let content = std::fs::read(path).unwrap();
        assert_eq!(content.len(), 16_000);
        // Each append landed whole, not interleaved.
        for block in content.chunks(2000) {
            assert!(block.iter().all(|b| *b == block[0]));
        }
        let digest = Digest::sha256_of(&content);
        assert_eq!(store.finish_upload(&id, &digest).await.unwrap(), 16_000);
    }
}

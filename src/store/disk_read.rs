//! Streaming a blob file out of the disk blob store.
//!
//! A read runs on a blocking thread that reads the file sequentially and
//! hands chunks to the response through a short channel, so the disk reads
//! and the digest check of a whole-blob read run beside the socket writes on
//! another core instead of between them (inline on the runtime the hash
//! halved a pull's throughput).
//!
//! Every whole-blob read is checked: the reader hashes what it reads and
//! holds the last chunk back until the digest is known. If the content no
//! longer has its digest the last chunk is never sent; the stream ends in an
//! error instead, so the response stops short of its `Content-Length` and
//! the client sees a broken transfer, never a complete wrong blob. The file
//! is then moved aside (`quarantine`) so the blob reads as absent and can be
//! pushed again. Ranged reads cannot be checked without reading the whole
//! file; the background scrub (`DiskBlobStore::scrub_one`) catches those.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::blobs::ByteStream;
use crate::digest::{Digest, Hasher};

/// Size of the chunks a stored blob is streamed out in.
pub const READ_CHUNK: usize = 1024 * 1024;
/// Chunks read ahead of the socket.
const READ_AHEAD: usize = 4;

type Chunk = Result<Bytes, std::io::Error>;

/// What a reader checks at the end of a whole read.
pub struct Check {
    pub expected: Digest,
    /// Where a corrupt file is moved.
    pub corrupt_dir: PathBuf,
}

/// Streams bytes `start..end` of the open `file` (at `path`); with `check`,
/// the whole file is being read and its digest is checked before the last
/// chunk goes out.
pub fn stream(file: File, path: PathBuf, start: u64, end: u64, check: Option<Check>) -> ByteStream {
    let (tx, rx) = mpsc::channel::<Chunk>(READ_AHEAD);
    tokio::task::spawn_blocking(move || read_into(file, &path, start, end, check, &tx));
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

/// The reader thread. Stops early when the response is dropped (the
/// receiver is gone).
fn read_into(
    mut file: File,
    path: &Path,
    start: u64,
    end: u64,
    check: Option<Check>,
    tx: &mpsc::Sender<Chunk>,
) {
    let mut hasher = check.as_ref().map(|c| Hasher::new(c.expected.algorithm()));
    if start > 0 {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    }
    let mut left = end - start;
    // The chunk read last, not yet sent: with a check, the last one waits
    // for the verdict.
    let mut pending: Option<Bytes> = None;
    while left > 0 {
        let want = left.min(READ_CHUNK as u64) as usize;
        let mut buf = BytesMut::zeroed(want);
        if let Err(e) = file.read_exact(&mut buf) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        left -= want as u64;
        if let Some(h) = hasher.as_mut() {
            h.update(&buf);
        }
        if let Some(previous) = pending.replace(buf.freeze()) {
            if tx.blocking_send(Ok(previous)).is_err() {
                return;
            }
        }
    }
    if let (Some(check), Some(hasher)) = (check, hasher) {
        if let Some(e) = verdict(path, &check, hasher) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    }
    if let Some(last) = pending {
        let _ = tx.blocking_send(Ok(last));
    }
}

/// None when the content has its digest; else the error that ends the
/// stream, after the file is moved aside.
fn verdict(path: &Path, check: &Check, hasher: Hasher) -> Option<std::io::Error> {
    let computed = hasher.finish();
    if computed == check.expected {
        return None;
    }
    let moved_to = quarantine(path, &check.corrupt_dir, &check.expected);
    tracing::error!(
        blob = %check.expected,
        path = %path.display(),
        content = %computed,
        moved_to = ?moved_to,
        "blob content does not match its digest; it is set aside as corrupt"
    );
    Some(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "blob {} is corrupt on disk ({}): its content has digest {computed}",
            check.expected,
            path.display()
        ),
    ))
}

/// Moves a corrupt blob out of the way, so it reads as absent and can be
/// pushed again; returns where it went.
pub fn quarantine(path: &Path, corrupt_dir: &Path, digest: &Digest) -> Option<PathBuf> {
    std::fs::create_dir_all(corrupt_dir).ok()?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let to = corrupt_dir.join(format!(
        "{}-{}-{stamp}",
        digest.algorithm().name(),
        digest.hex()
    ));
    std::fs::rename(path, &to).ok()?;
    Some(to)
}

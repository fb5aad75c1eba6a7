//! Streaming a blob file out of the disk blob store.
//!
//! A read runs on a blocking thread that reads the file sequentially and
//! hands chunks to the response through a short channel, so the disk reads
//! and the digest check of a whole-blob read run beside the socket writes on
//! another core instead of between them (inline on the runtime the hash
//! halved a pull's throughput).
//!
//! A whole-blob read is checked unless this process already knows the file
//! good (`KnownGood`): the reader hashes what it reads and holds the last
//! chunk back until the digest is known (`checked_read`). If the content no longer has its
//! digest the last chunk is never sent; the stream ends in an error
//! instead, so the response stops short of its `Content-Length` and the
//! client sees a broken transfer, never a complete wrong blob. The file is
//! then moved aside (`quarantine`) so the blob reads as absent and can be
//! pushed again.
//!
//! A file is known good once this process hashed it (it wrote the file from
//! bytes it hashed, a checked read matched, or the scrub matched), for as
//! long as its inode, length, mtime and ctime are the ones seen then. Any
//! change through the file system moves ctime (which no one can set back),
//! so a rewritten, truncated or replaced file is checked again on its next
//! read. What a stamp cannot see is rot beneath the file system; the
//! background scrub (`Ecr::scrub_blobs`) re-hashes every blob each
//! `--scrub-interval`, and ranged reads, which cannot be checked without
//! reading the whole file, rely on it too.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::blobs::ByteStream;
use super::checked_read::HoldBack;
use crate::digest::Digest;

/// Size of the chunks a stored blob is streamed out in.
pub const READ_CHUNK: usize = 1024 * 1024;
/// Chunks read ahead of the socket.
const READ_AHEAD: usize = 4;

type Chunk = Result<Bytes, std::io::Error>;

/// What identifies one version of a file: changing it through the file
/// system changes at least its ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    inode: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn of(metadata: &std::fs::Metadata) -> Stamp {
        Stamp {
            inode: metadata.ino(),
            len: metadata.len(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    pub fn size(&self) -> u64 {
        self.len
    }
}

/// The blobs this process has hashed, with the stamp their file had then.
#[derive(Debug, Clone, Default)]
pub struct KnownGood(Arc<Mutex<HashMap<Digest, Stamp>>>);

impl KnownGood {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Stamp>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_good(&self, digest: &Digest, stamp: &Stamp) -> bool {
        self.map().get(digest) == Some(stamp)
    }

    pub fn remember(&self, digest: Digest, stamp: Stamp) {
        self.map().insert(digest, stamp);
    }

    /// Remembers the file at `path` as it is now (just written from hashed
    /// bytes, or just hashed).
    pub fn remember_file(&self, digest: Digest, path: &Path) {
        if let Ok(metadata) = std::fs::metadata(path) {
            self.remember(digest, Stamp::of(&metadata));
        }
    }

    pub fn forget(&self, digest: &Digest) {
        self.map().remove(digest);
    }

    pub fn clear(&self) {
        self.map().clear();
    }
}

/// What a reader checks at the end of a whole read.
pub struct Check {
    pub expected: Digest,
    /// Where a corrupt file is moved.
    pub corrupt_dir: PathBuf,
    /// Where a match is remembered, with the file's stamp at open.
    pub known_good: KnownGood,
    pub stamp: Stamp,
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
    let mut held = check.as_ref().map(|c| HoldBack::new(c.expected.clone()));
    if start > 0 {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    }
    let mut left = end - start;
    // Without a check, the chunk read last; with one, `held` keeps it until
    // the verdict.
    let mut pending: Option<Bytes> = None;
    while left > 0 {
        let want = left.min(READ_CHUNK as u64) as usize;
        // Read into spare capacity: nothing is zeroed first.
        let mut buf = Vec::with_capacity(want);
        match (&mut file).take(want as u64).read_to_end(&mut buf) {
            Ok(n) if n == want => {}
            Ok(_) => {
                let _ = tx.blocking_send(Err(std::io::ErrorKind::UnexpectedEof.into()));
                return;
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
        left -= want as u64;
        let ready = match held.as_mut() {
            Some(h) => h.push(Bytes::from(buf)),
            None => pending.replace(Bytes::from(buf)),
        };
        if let Some(previous) = ready {
            if tx.blocking_send(Ok(previous)).is_err() {
                return;
            }
        }
    }
    if let (Some(check), Some(held)) = (check, held) {
        match held.finish() {
            Ok(last) => pending = last,
            Err(computed) => {
                let _ = tx.blocking_send(Err(corrupt(path, &check, &computed)));
                return;
            }
        }
        check.known_good.remember(check.expected, check.stamp);
    }
    if let Some(last) = pending {
        let _ = tx.blocking_send(Ok(last));
    }
}

/// The error that ends the stream of a blob whose content has digest
/// `computed`, after the file is moved aside.
fn corrupt(path: &Path, check: &Check, computed: &Digest) -> std::io::Error {
    set_aside(path, &check.corrupt_dir, &check.expected, computed);
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "blob {} is corrupt on disk ({}): its content has digest {computed}",
            check.expected,
            path.display()
        ),
    )
}

/// Moves a blob whose content has digest `computed` instead of its own out
/// of the way (`quarantine`) and says so in the log.
pub fn set_aside(path: &Path, corrupt_dir: &Path, expected: &Digest, computed: &Digest) {
    let moved_to = quarantine(path, corrupt_dir, expected);
    tracing::error!(
        blob = %expected,
        path = %path.display(),
        content = %computed,
        moved_to = ?moved_to,
        "blob content does not match its digest; it is set aside as corrupt"
    );
}

/// Moves a corrupt blob out of the way, so it reads as absent and can be
/// pushed again; returns where it went.
fn quarantine(path: &Path, corrupt_dir: &Path, digest: &Digest) -> Option<PathBuf> {
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

//! State snapshots: the whole of a registry's state in one tar file, to save
//! and restore (`ecrd export` / `ecrd import`, and `GET` / `POST
//! /_ecrd/snapshot` on a running server), between the memory and disk
//! backends alike.
//!
//! Format version 1, a tar file holding, in this order:
//! 1. `ecrd-snapshot.json`: `{"format": "ecrd-snapshot", "version": 1,
//!    "ecrdVersion", "createdAt", "tables": [{"name", "file", "records",
//!    "sha256"}], "blobs": [{"digest", "size"}]}`;
//! 2. `tables/<name>.jsonl`: every record of one metadata table, one JSON
//!    object a line, `{"key": K, "value": V}` (V the stored bytes as a
//!    string when they are UTF-8, else `{"key": K, "base64": B}`), in key
//!    order. Every table is carried (generically, `Table::ALL`) except
//!    `uploads`: an upload in progress lives in the blob store's working
//!    area, which a snapshot does not carry;
//! 3. `blobs/<algorithm>/<hex>`: every stored blob, each once, named by its
//!    digest.
//!
//! Import checks everything before it changes anything: the format and
//! version, each table file's SHA-256 and record count, each blob's digest
//! (computed while it streams into the blob store) and size, that every
//! listed file is there exactly once and nothing else is. Only then are the
//! metadata tables replaced, in one transaction. Blobs stored on the way
//! are content-addressed: a refused import leaves at most blobs no record
//! refers to, which garbage collection frees.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::progress::Progress;
use crate::store::blobs::{BlobError, BlobStore};
use crate::store::tables::{self, Dump};
use crate::store::{MetadataStore, Table};

pub const FORMAT: &str = "ecrd-snapshot";
pub const VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "ecrd-snapshot.json";
/// Bytes of a blob sent to the blob store at a time on import.
const CHUNK: usize = 1024 * 1024;
/// The largest manifest or table file accepted (they are held in memory).
const MAX_METADATA_FILE: u64 = 1 << 30;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub ecrd_version: String,
    pub created_at: String,
    pub tables: Vec<TableEntry>,
    pub blobs: Vec<BlobEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableEntry {
    pub name: String,
    pub file: String,
    pub records: usize,
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobEntry {
    pub digest: String,
    pub size: u64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
}

/// Why a snapshot could not be written or was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SnapshotError(pub String);

fn fail(message: impl Into<String>) -> SnapshotError {
    SnapshotError(message.into())
}

impl From<crate::store::StoreError> for SnapshotError {
    fn from(e: crate::store::StoreError) -> Self {
        fail(e.to_string())
    }
}

impl From<std::io::Error> for SnapshotError {
    fn from(e: std::io::Error) -> Self {
        fail(e.to_string())
    }
}

/// What an export or import carried.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSummary {
    pub records: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
}

fn blob_file(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}

fn table_file(table: Table) -> String {
    format!("tables/{}.jsonl", table.name())
}

fn carried(table: Table) -> bool {
    table != Table::Uploads
}

fn append(
    builder: &mut tar::Builder<impl Write>,
    name: &str,
    size: u64,
    data: impl Read,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data)
}

/// Writes a snapshot of `store` and `blobs` to `out`. Blocking: call it
/// from a blocking thread of the runtime `handle` belongs to.
pub fn export(
    handle: &tokio::runtime::Handle,
    store: &dyn MetadataStore,
    blobs: &Arc<dyn BlobStore>,
    out: impl Write,
) -> Result<SnapshotSummary, SnapshotError> {
    let dump = tables::dump(store)?;
    let stats = handle.block_on(blobs.list_stats())?;
    let mut summary = SnapshotSummary::default();
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for (&table, records) in &dump {
        if !carried(table) {
            continue;
        }
        let mut text = Vec::new();
        for (key, value) in records {
            let line = match std::str::from_utf8(value) {
                Ok(s) => Line {
                    key: key.clone(),
                    value: Some(s.to_string()),
                    base64: None,
                },
                Err(_) => Line {
                    key: key.clone(),
                    value: None,
                    base64: Some(STANDARD.encode(value)),
                },
            };
            serde_json::to_writer(&mut text, &line).map_err(|e| fail(e.to_string()))?;
            text.push(b'\n');
        }
        summary.records += records.len();
        entries.push(TableEntry {
            name: table.name().to_string(),
            file: table_file(table),
            records: records.len(),
            sha256: hex::encode(Sha256::digest(&text)),
        });
        files.push((table_file(table), text));
    }
    let mut blob_entries: Vec<BlobEntry> = stats
        .iter()
        .map(|s| BlobEntry {
            digest: s.digest.to_string(),
            size: s.size,
        })
        .collect();
    blob_entries.sort_by(|a, b| a.digest.cmp(&b.digest));
    let manifest = Manifest {
        format: FORMAT.to_string(),
        version: VERSION,
        ecrd_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        tables: entries,
        blobs: blob_entries,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| fail(e.to_string()))?;
    let mut builder = tar::Builder::new(out);
    append(
        &mut builder,
        MANIFEST_FILE,
        manifest_bytes.len() as u64,
        manifest_bytes.as_slice(),
    )?;
    for (name, text) in &files {
        append(&mut builder, name, text.len() as u64, text.as_slice())?;
    }
    let mut progress = Progress::new("export", "blobs", manifest.blobs.len() as u64);
    for stat in &stats {
        let Some(stream) = handle.block_on(blobs.read(&stat.digest, 0, None))? else {
            return Err(fail(format!(
                "the blob {} vanished while the snapshot was written",
                stat.digest
            )));
        };
        let reader = tokio_util::io::SyncIoBridge::new_with_handle(
            tokio_util::io::StreamReader::new(stream),
            handle.clone(),
        );
        append(&mut builder, &blob_file(&stat.digest), stat.size, reader)?;
        summary.blobs += 1;
        summary.blob_bytes += stat.size;
        progress.advance(1, &stat.digest.to_string());
    }
    builder.into_inner()?.flush()?;
    progress.finish(&format!(
        "{} records, {} blobs ({} bytes) exported",
        summary.records, summary.blobs, summary.blob_bytes
    ));
    Ok(summary)
}

/// A table file's records, checked against its manifest entry.
fn read_table(entry: &TableEntry, text: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, SnapshotError> {
    if hex::encode(Sha256::digest(text)) != entry.sha256 {
        return Err(fail(format!(
            "{} does not have the SHA-256 the manifest names: the snapshot was changed or damaged",
            entry.file
        )));
    }
    let mut records = BTreeMap::new();
    for (n, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let line: Line = serde_json::from_slice(line)
            .map_err(|e| fail(format!("{}, line {}: {e}", entry.file, n + 1)))?;
        let value = match (line.value, line.base64) {
            (Some(v), None) => v.into_bytes(),
            (None, Some(b)) => STANDARD
                .decode(b)
                .map_err(|e| fail(format!("{}, line {}: {e}", entry.file, n + 1)))?,
            _ => {
                return Err(fail(format!(
                    "{}, line {}: a record needs exactly one of value or base64",
                    entry.file,
                    n + 1
                )))
            }
        };
        records.insert(line.key, value);
    }
    if records.len() != entry.records {
        return Err(fail(format!(
            "{} holds {} records, the manifest says {}",
            entry.file,
            records.len(),
            entry.records
        )));
    }
    Ok(records)
}

fn read_small(entry: &mut impl Read, size: u64, name: &str) -> Result<Vec<u8>, SnapshotError> {
    if size > MAX_METADATA_FILE {
        return Err(fail(format!("{name} is too big ({size} bytes)")));
    }
    let mut out = Vec::with_capacity(size as usize);
    entry.read_to_end(&mut out)?;
    if out.len() as u64 != size {
        return Err(fail(format!(
            "{name} is cut short: the snapshot is truncated"
        )));
    }
    Ok(out)
}

/// Streams one blob into the blob store, verifying its digest.
fn import_blob(
    handle: &tokio::runtime::Handle,
    blobs: &Arc<dyn BlobStore>,
    digest: &Digest,
    entry: &mut impl Read,
) -> Result<u64, SnapshotError> {
    let id = handle.block_on(blobs.create_upload())?;
    let outcome = (|| {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let mut filled = 0;
            while filled < CHUNK {
                let n = entry.read(&mut buf[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            let chunk = Bytes::copy_from_slice(&buf[..filled]);
            let body: crate::store::blobs::ByteStream =
                Box::pin(futures_util::stream::once(async move { Ok(chunk) }));
            handle
                .block_on(blobs.append_upload(&id, body))
                .map_err(|e| fail(e.to_string()))?;
            if filled < CHUNK {
                break;
            }
        }
        match handle.block_on(blobs.finish_upload(&id, digest)) {
            Ok(size) => Ok(size),
            Err(BlobError::DigestMismatch { computed }) => Err(fail(format!(
                "{} holds content of digest {computed}: the snapshot was changed or damaged",
                blob_file(digest)
            ))),
            Err(e) => Err(fail(e.to_string())),
        }
    })();
    if outcome.is_err() {
        let _ = handle.block_on(blobs.cancel_upload(&id));
    }
    outcome
}

/// Reads a snapshot from `input`, verifies all of it, and only then makes
/// `store` hold exactly its records (blobs are added to `blobs`). Blocking:
/// call it from a blocking thread of the runtime `handle` belongs to.
pub fn import(
    handle: &tokio::runtime::Handle,
    store: &dyn MetadataStore,
    blobs: &Arc<dyn BlobStore>,
    input: impl Read,
) -> Result<SnapshotSummary, SnapshotError> {
    let mut archive = tar::Archive::new(input);
    let mut entries = archive.entries()?;
    let manifest: Manifest = {
        let mut first = entries
            .next()
            .ok_or_else(|| fail("the snapshot is empty"))??;
        let name = first.path()?.to_string_lossy().to_string();
        if name != MANIFEST_FILE {
            return Err(fail(format!(
                "not an ecrd snapshot: the first file is '{name}', not '{MANIFEST_FILE}'"
            )));
        }
        let size = first.size();
        let bytes = read_small(&mut first, size, MANIFEST_FILE)?;
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("{MANIFEST_FILE}: {e}")))?
    };
    if manifest.format != FORMAT {
        return Err(fail(format!(
            "not an ecrd snapshot: format '{}'",
            manifest.format
        )));
    }
    if manifest.version != VERSION {
        return Err(fail(format!(
            "snapshot format version {} is not supported (this ecrd reads version {VERSION})",
            manifest.version
        )));
    }
    let mut expected_tables: HashMap<String, (&TableEntry, Table)> = HashMap::new();
    for entry in &manifest.tables {
        let table = Table::from_name(&entry.name)
            .filter(|t| carried(*t))
            .ok_or_else(|| {
                fail(format!(
                    "the snapshot has an unknown table '{}'",
                    entry.name
                ))
            })?;
        expected_tables.insert(entry.file.clone(), (entry, table));
    }
    let mut expected_blobs: HashMap<String, (Digest, u64)> = HashMap::new();
    for entry in &manifest.blobs {
        let digest = Digest::parse(&entry.digest).map_err(|e| {
            fail(format!(
                "the manifest names a bad digest '{}': {e:?}",
                entry.digest
            ))
        })?;
        expected_blobs.insert(blob_file(&digest), (digest, entry.size));
    }
    let mut imported = Dump::new();
    let mut summary = SnapshotSummary::default();
    let mut progress = Progress::new("import", "blobs", manifest.blobs.len() as u64);
    for entry in entries {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().to_string();
        let size = entry.size();
        if let Some((table_entry, table)) = expected_tables.remove(&name) {
            let text = read_small(&mut entry, size, &name)?;
            let records = read_table(table_entry, &text)?;
            summary.records += records.len();
            imported.insert(table, records);
        } else if let Some((digest, expected_size)) = expected_blobs.remove(&name) {
            if size != expected_size {
                return Err(fail(format!(
                    "{name} is {size} bytes, the manifest says {expected_size}"
                )));
            }
            let stored = import_blob(handle, blobs, &digest, &mut entry)?;
            if stored != expected_size {
                return Err(fail(format!(
                    "{name} is cut short: the snapshot is truncated"
                )));
            }
            summary.blobs += 1;
            summary.blob_bytes += stored;
            progress.advance(1, &name);
        } else {
            return Err(fail(format!(
                "the snapshot holds '{name}', which its manifest does not list (or lists once)"
            )));
        }
    }
    if let Some(missing) = expected_tables.keys().chain(expected_blobs.keys()).next() {
        return Err(fail(format!(
            "the snapshot lacks '{missing}', which its manifest lists: it is truncated"
        )));
    }
    // Uploads in progress are the target's own; keep them.
    let current = tables::dump(store)?;
    if let Some(uploads) = current.get(&Table::Uploads) {
        imported.insert(Table::Uploads, uploads.clone());
    }
    tables::apply_difference(store, &current, &imported)?;
    progress.finish(&format!(
        "{} records, {} blobs ({} bytes) imported",
        summary.records, summary.blobs, summary.blob_bytes
    ));
    Ok(summary)
}

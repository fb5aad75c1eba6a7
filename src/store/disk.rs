//! The disk backend's data directory and its metadata store.
//!
//! A data directory (`ecrd serve --data-dir DIR`) holds:
//!
//! ```text
//! DIR/LOCK               OS file lock held for the process lifetime (one ecrd per dir)
//! DIR/metadata.db        SQLite (+ -wal, -shm): every record of every table
//! DIR/token-secret       the registry-password signing secret (mode 0600)
//! DIR/blobs/<alg>/<ab>/<hex>   content-addressed blobs   (store::disk_blobs)
//! DIR/uploads/<uuid>     upload sessions in progress    (store::disk_blobs)
//! DIR/tmp/               scratch for one-step puts, emptied at start
//! DIR/corrupt/           blobs whose content no longer matched their digest
//! ```
//!
//! Metadata lives in one SQLite table, `kv(tbl, key, value)`, with a unique
//! index on `(tbl, key)`: the ordered index a page of a listing walks, so
//! `scan` is a range query whose cost does not depend on how many rows the
//! table holds. The values live in the rowid table beside it, not in the
//! index: records are often bigger than a b-tree cell holds (image records
//! of about 1.5 KB, lifecycle previews of megabytes), and a seek that meets
//! an overflowing cell reads its whole overflow chain, so with the values in
//! the index (schema version 1, `WITHOUT ROWID`) one large record slowed
//! every look-up near it (tags/list from 0.3 to 18 ms beside a stored
//! preview; `benches/scale_bench.py`). A version 1 directory is converted
//! when opened. The database runs in WAL mode with
//! `synchronous=FULL`: a commit returns only after the WAL is fsynced, so an
//! acknowledged write survives SIGKILL and power loss.
//!
//! Writes go through one connection behind a mutex (`BEGIN IMMEDIATE` …
//! `COMMIT`, rolled back when dropped uncommitted). Reads take a connection
//! from a small pool and hold a read transaction, so they see one snapshot,
//! never wait for a writer, and may nest.
//!
//! The `meta` table records the schema version; a directory written by an
//! unknown version is refused with a message naming it, never guessed at.

use std::fmt::Display;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{prefix_upper_bound, Entry, MetadataStore, ReadTxn, StoreError, Table, WriteTxn};

/// The layout version of a data directory (database schema and file layout).
pub const SCHEMA_VERSION: i64 = 2;

/// `PRAGMA application_id` of ecrd databases ("ecrd"), so a foreign SQLite
/// file is recognised as such.
const APPLICATION_ID: i32 = 0x6563_7264;

/// Idle read connections kept for reuse.
const READ_POOL: usize = 8;

fn io_error(what: &str, path: &Path, e: impl Display) -> StoreError {
    StoreError(format!("{what} {}: {e}", path.display()))
}

/// An open, locked data directory. The stores of one directory share it, and
/// the lock is released when the last of them is dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed and takes its lock.
    pub fn open(path: &Path) -> Result<Arc<DataDir>, StoreError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        std::fs::create_dir_all(&path)
            .map_err(|e| io_error("cannot create the data directory", &path, e))?;
        let lock_path = path.join("LOCK");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io_error("cannot open the lock file", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError(format!(
                    "data directory {} is in use by another ecrd process",
                    path.display()
                )))
            }
            Err(TryLockError::Error(e)) => {
                return Err(io_error("cannot lock", &lock_path, e));
            }
        }
        // For whoever wonders which process holds the directory.
        let _ = lock
            .set_len(0)
            .and_then(|()| writeln!(lock, "{}", std::process::id()));
        Ok(Arc::new(DataDir { path, _lock: lock }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The registry-password signing secret kept in `DIR/token-secret`,
    /// made (random, mode 0600) on first use. The file holds the secret as
    /// `--token-secret` would take it, so passing its content as the flag
    /// signs the same tokens.
    pub fn token_secret(&self) -> Result<Vec<u8>, StoreError> {
        let path = self.path.join("token-secret");
        match File::open(&path) {
            Ok(mut f) => {
                let mut text = String::new();
                f.read_to_string(&mut text)
                    .map_err(|e| io_error("cannot read", &path, e))?;
                let secret = text.trim();
                if secret.is_empty() {
                    return Err(StoreError(format!(
                        "{} is empty; delete it to have a new secret made",
                        path.display()
                    )));
                }
                return Ok(secret.as_bytes().to_vec());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("cannot read", &path, e)),
        }
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let tmp = self.path.join("token-secret.tmp");
        let write = || -> std::io::Result<()> {
            let mut options = OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options.open(&tmp)?;
            f.write_all(secret.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            File::open(&self.path)?.sync_all()
        };
        write().map_err(|e| io_error("cannot write", &path, e))?;
        Ok(secret.into_bytes())
    }
}

/// Metadata kept in `DIR/metadata.db`.
pub struct DiskStore {
    _dir: Arc<DataDir>,
    db_path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("db_path", &self.db_path)
            .finish()
    }
}

impl DiskStore {
    /// Opens (creating if needed) the metadata database of a data directory.
    pub fn open(dir: Arc<DataDir>) -> Result<Self, StoreError> {
        let db_path = dir.path().join("metadata.db");
        let writer = open_connection(&db_path, false)?;
        init_schema(&writer, &db_path)?;
        Ok(DiskStore {
            _dir: dir,
            db_path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn db_error(&self, e: rusqlite::Error) -> StoreError {
        io_error("metadata database", &self.db_path, e)
    }

    fn reader(&self) -> Result<Connection, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => open_connection(&self.db_path, true),
        }
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        let conn = match self.writer.try_lock() {
            Ok(conn) => conn,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            // Another write is committing (an fsync): wait off the runtime.
            Err(std::sync::TryLockError::WouldBlock) => {
                blocking(|| self.writer.lock().unwrap_or_else(|e| e.into_inner()))
            }
        };
        // A panic inside a transaction unwinds through its Drop, which rolls
        // back; this is the belt to that brace.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        conn
    }
}

/// Runs `f`, which may block for milliseconds (a commit's fsync, a wait for
/// the writer), without stalling the other tasks of a multi-threaded
/// runtime's worker. Elsewhere (a current-thread runtime, no runtime) it just
/// runs `f`.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn open_connection(db_path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let err = |e: rusqlite::Error| {
        io_error(
            "cannot open the metadata database",
            db_path,
            format!("{e} (is it an ecrd database, and intact?)"),
        )
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db_path, flags).map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(io_error(
            "cannot open the metadata database",
            db_path,
            format!("it refused WAL mode (journal_mode is {mode})"),
        ));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    if read_only {
        conn.pragma_update(None, "query_only", true).map_err(err)?;
    }
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// The records' table (schema version 2): a rowid table, its `(tbl, key)`
/// index holding only keys.
const KV_TABLE: &str = "CREATE TABLE kv (
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    UNIQUE (tbl, key)
);";

fn init_schema(conn: &Connection, db_path: &Path) -> Result<(), StoreError> {
    let err = |e: rusqlite::Error| io_error("cannot initialise the metadata database", db_path, e);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    let result = (|| -> Result<(), StoreError> {
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(err)?;
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
            return Err(StoreError(format!(
                "{} is not an ecrd metadata database (application_id {app_id:#x}); \
                 point --data-dir at an empty directory or one ecrd made",
                db_path.display()
            )));
        }
        if tables == 0 {
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(err)?;
            conn.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
            )
            .map_err(err)?;
            conn.execute_batch(KV_TABLE).map_err(err)?;
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                params![SCHEMA_VERSION.to_string()],
            )
            .map_err(err)?;
            return Ok(());
        }
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        match version.as_deref().map(str::parse::<i64>) {
            Some(Ok(SCHEMA_VERSION)) => Ok(()),
            Some(Ok(1)) => {
                // Version 1 kept the values in the index (WITHOUT ROWID):
                // copy them into a version 2 table, in this transaction.
                conn.execute_batch(&format!(
                    "ALTER TABLE kv RENAME TO kv_v1;
                     {KV_TABLE}
                     INSERT INTO kv (tbl, key, value) SELECT tbl, key, value FROM kv_v1 ORDER BY tbl, key;
                     DROP TABLE kv_v1;"
                ))
                .map_err(err)?;
                conn.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(err)?;
                tracing::info!(
                    database = %db_path.display(),
                    "converted the metadata database from schema version 1 to {SCHEMA_VERSION}"
                );
                Ok(())
            }
            Some(Ok(v)) => Err(StoreError(format!(
                "data directory {} was written with schema version {v}, but this ecrd ({}) \
                 reads only version {SCHEMA_VERSION}; use the ecrd that wrote it, or a new directory",
                db_path.parent().unwrap_or(db_path).display(),
                env!("CARGO_PKG_VERSION"),
            ))),
            _ => Err(StoreError(format!(
                "{} has no valid schema version; it is damaged or was not made by ecrd",
                db_path.display()
            ))),
        }
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(err),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn get_in(conn: &Connection, table: Table, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM kv WHERE tbl = ?1 AND key = ?2")?
        .query_row(params![table.name(), key], |r| r.get(0))
        .optional()
}

fn scan_in(
    conn: &Connection,
    table: Table,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<Entry>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (exclusive, lower) = match start_after {
        Some(after) if after >= prefix => (true, after),
        _ => (false, prefix),
    };
    let upper = prefix_upper_bound(prefix);
    let sql = match (exclusive, upper.is_some()) {
        (false, false) => {
            "SELECT key, value FROM kv WHERE tbl = ?1 AND key >= ?2 ORDER BY key LIMIT ?3"
        }
        (true, false) => {
            "SELECT key, value FROM kv WHERE tbl = ?1 AND key > ?2 ORDER BY key LIMIT ?3"
        }
        (false, true) => {
            "SELECT key, value FROM kv WHERE tbl = ?1 AND key >= ?2 AND key < ?4 ORDER BY key LIMIT ?3"
        }
        (true, true) => {
            "SELECT key, value FROM kv WHERE tbl = ?1 AND key > ?2 AND key < ?4 ORDER BY key LIMIT ?3"
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
    let rows = match &upper {
        Some(upper) => stmt.query_map(params![table.name(), lower, limit, upper], row)?,
        None => stmt.query_map(params![table.name(), lower, limit], row)?,
    };
    rows.collect()
}

struct DiskRead<'a> {
    store: &'a DiskStore,
    conn: Option<Connection>,
}

impl DiskRead<'_> {
    fn conn(&self) -> Result<&Connection, StoreError> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError("read transaction already ended".into()))
    }
}

impl Drop for DiskRead<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // A read transaction has nothing to commit; ending it releases the
        // snapshot. A connection in any doubt is closed, not pooled.
        if conn.execute_batch("COMMIT").is_ok() && conn.is_autocommit() {
            let mut pool = self.store.readers.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < READ_POOL {
                pool.push(conn);
            }
        }
    }
}

impl ReadTxn for DiskRead<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        get_in(self.conn()?, table, key).map_err(|e| self.store.db_error(e))
    }

    fn scan(
        &self,
        table: Table,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        scan_in(self.conn()?, table, prefix, start_after, limit).map_err(|e| self.store.db_error(e))
    }

    fn count(&self, table: Table) -> Result<u64, StoreError> {
        // Counts the (tbl, key) index's entries; no value is read.
        self.conn()?
            .prepare_cached("SELECT COUNT(*) FROM kv WHERE tbl = ?1")
            .and_then(|mut stmt| stmt.query_row(params![table.name()], |r| r.get::<_, i64>(0)))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| self.store.db_error(e))
    }
}

struct DiskWrite<'a> {
    store: &'a DiskStore,
    conn: MutexGuard<'a, Connection>,
    open: bool,
}

impl Drop for DiskWrite<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl ReadTxn for DiskWrite<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        get_in(&self.conn, table, key).map_err(|e| self.store.db_error(e))
    }

    fn scan(
        &self,
        table: Table,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        scan_in(&self.conn, table, prefix, start_after, limit).map_err(|e| self.store.db_error(e))
    }
}

impl WriteTxn for DiskWrite<'_> {
    fn put(&mut self, table: Table, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO kv (tbl, key, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute(params![table.name(), key, value]))
            .map(|_| ())
            .map_err(|e| self.store.db_error(e))
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM kv WHERE tbl = ?1 AND key = ?2")
            .and_then(|mut s| s.execute(params![table.name(), key]))
            .map(|_| ())
            .map_err(|e| self.store.db_error(e))
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let result = blocking(|| self.conn.execute_batch("COMMIT"));
        if result.is_ok() {
            self.open = false;
        }
        // On failure Drop rolls back whatever SQLite left open.
        result.map_err(|e| self.store.db_error(e))
    }
}

impl MetadataStore for DiskStore {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>, StoreError> {
        let conn = self.reader()?;
        conn.execute_batch("BEGIN").map_err(|e| self.db_error(e))?;
        Ok(Box::new(DiskRead {
            store: self,
            conn: Some(conn),
        }))
    }

    fn write(&self) -> Result<Box<dyn WriteTxn + '_>, StoreError> {
        let conn = self.writer();
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.db_error(e))?;
        Ok(Box::new(DiskWrite {
            store: self,
            conn,
            open: true,
        }))
    }

    fn clear(&self) -> Result<(), StoreError> {
        let mut tx = DiskWrite {
            store: self,
            conn: self.writer(),
            open: false,
        };
        tx.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.db_error(e))?;
        tx.open = true;
        tx.conn
            .execute("DELETE FROM kv", [])
            .map_err(|e| self.db_error(e))?;
        Box::new(tx).commit()
    }

    fn backend(&self) -> &'static str {
        "disk"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn open(dir: &Path) -> DiskStore {
        DiskStore::open(DataDir::open(dir).unwrap()).unwrap()
    }

    #[test]
    fn conformance() {
        let tmp = tempfile::tempdir().unwrap();
        super::super::conformance::run(&open(tmp.path()));
    }

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a/b/").as_deref(), Some("a/b0"));
        assert_eq!(
            prefix_upper_bound("a\u{d7ff}").as_deref(),
            Some("a\u{e000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10ffff}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10ffff}"), None);
    }

    #[test]
    fn scan_with_unusual_characters() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        let mut tx = store.write().unwrap();
        for key in [
            "p\u{10ffff}",
            "p\u{10ffff}x",
            "p\u{10ffff}\u{10ffff}",
            "q",
            "p",
        ] {
            tx.put(Table::Tags, key, vec![]).unwrap();
        }
        tx.commit().unwrap();
        let read = store.read().unwrap();
        let keys: Vec<String> = read
            .scan(Table::Tags, "p\u{10ffff}", None, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(
            keys,
            ["p\u{10ffff}", "p\u{10ffff}x", "p\u{10ffff}\u{10ffff}"]
        );
        assert_eq!(read.scan(Table::Tags, "", None, 10).unwrap().len(), 5);
        assert_eq!(read.scan(Table::Tags, "p", Some("o"), 1).unwrap()[0].0, "p");
        assert!(read.scan(Table::Tags, "p", None, 0).unwrap().is_empty());
    }

    #[test]
    fn reopen_sees_committed_not_uncommitted() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = open(tmp.path());
            let mut tx = store.write().unwrap();
            tx.put(Table::Repositories, "a/r/kept", b"1".to_vec())
                .unwrap();
            tx.commit().unwrap();
            let mut tx = store.write().unwrap();
            tx.put(Table::Repositories, "a/r/lost", b"2".to_vec())
                .unwrap();
            tx.delete(Table::Repositories, "a/r/kept").unwrap();
            // Dropped without commit.
        }
        let store = open(tmp.path());
        let read = store.read().unwrap();
        assert_eq!(
            read.get(Table::Repositories, "a/r/kept").unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(read.get(Table::Repositories, "a/r/lost").unwrap(), None);
    }

    #[test]
    fn reads_nest_and_see_a_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        crate::store::conformance::reads_see_a_snapshot(&open(tmp.path()));
    }

    #[test]
    fn second_open_is_refused_while_the_first_lives() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DataDir::open(tmp.path()).unwrap();
        let err = DataDir::open(tmp.path()).unwrap_err();
        let path = std::path::absolute(tmp.path()).unwrap();
        assert_eq!(
            err.0,
            format!(
                "data directory {} is in use by another ecrd process",
                path.display()
            )
        );
        drop(first);
        DataDir::open(tmp.path()).unwrap();
    }

    #[test]
    fn a_version_1_directory_is_converted_keeping_every_record() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(tmp.path().join("metadata.db")).unwrap();
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .unwrap();
            conn.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                 CREATE TABLE kv (tbl TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                                  PRIMARY KEY (tbl, key)) WITHOUT ROWID;
                 INSERT INTO meta VALUES ('schema_version', '1');",
            )
            .unwrap();
            for i in 0..50 {
                conn.execute(
                    "INSERT INTO kv VALUES (?1, ?2, ?3)",
                    params!["images", format!("k{i:02}"), vec![i as u8; 3000]],
                )
                .unwrap();
            }
        }
        let store = open(tmp.path());
        let tx = store.read().unwrap();
        let all = tx.scan(Table::Images, "k", None, 100).unwrap();
        assert_eq!(all.len(), 50);
        assert_eq!(all[7], ("k07".to_string(), vec![7u8; 3000]));
        drop(tx);
        let mut tx = store.write().unwrap();
        tx.put(Table::Images, "k07", b"new".to_vec()).unwrap();
        tx.commit().unwrap();
        assert_eq!(
            store.read().unwrap().get(Table::Images, "k07").unwrap(),
            Some(b"new".to_vec())
        );
        let conn = store.reader().unwrap();
        let version: String = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION.to_string());
    }

    #[test]
    fn unknown_schema_version_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        drop(open(tmp.path()));
        let conn = Connection::open(tmp.path().join("metadata.db")).unwrap();
        conn.execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(conn);
        let err = DiskStore::open(DataDir::open(tmp.path()).unwrap()).unwrap_err();
        assert!(err.0.contains("schema version 99"), "{err}");
        assert!(err.0.contains(&tmp.path().display().to_string()), "{err}");
    }

    #[test]
    fn corrupt_or_foreign_database_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("metadata.db");
        std::fs::write(&db, vec![0x5a; 8192]).unwrap();
        let err = DiskStore::open(DataDir::open(tmp.path()).unwrap()).unwrap_err();
        assert!(err.0.contains(&db.display().to_string()), "{err}");
        assert!(err.0.contains("not a database"), "{err}");

        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("metadata.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        drop(conn);
        let err = DiskStore::open(DataDir::open(tmp.path()).unwrap()).unwrap_err();
        assert!(err.0.contains("not an ecrd metadata database"), "{err}");
    }

    #[test]
    fn token_secret_persists_with_mode_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let a = dir.token_secret().unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(dir.token_secret().unwrap(), a);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(tmp.path().join("token-secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn clear_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = open(tmp.path());
            let mut tx = store.write().unwrap();
            tx.put(Table::Tags, "x", vec![1]).unwrap();
            tx.commit().unwrap();
            store.clear().unwrap();
        }
        let store = open(tmp.path());
        assert!(store
            .read()
            .unwrap()
            .scan(Table::Tags, "", None, 10)
            .unwrap()
            .is_empty());
    }

    /// Commits on a multi-threaded runtime step off the worker while they
    /// fsync, and concurrent writers queue without losing anything.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_on_a_multi_threaded_runtime() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(open(tmp.path()));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = store.write().unwrap();
                let key = format!("k{i:02}");
                tx.put(Table::Layers, &key, vec![i]).unwrap();
                tx.commit().unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let all = store
            .read()
            .unwrap()
            .scan(Table::Layers, "k", None, 100)
            .unwrap();
        assert_eq!(all.len(), 16);
    }

    /// A page costs an index range lookup, whatever the table's size.
    #[test]
    fn scan_uses_the_primary_key_range() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        let conn = store.reader().unwrap();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT key, value FROM kv WHERE tbl = ?1 AND key > ?2 AND key < ?4 ORDER BY key LIMIT ?3",
            )
            .unwrap()
            .query_map(params!["t", "a", 10, "b"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(
            plan.contains(
                "SEARCH kv USING INDEX sqlite_autoindex_kv_1 (tbl=? AND key>? AND key<?)"
            ),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}

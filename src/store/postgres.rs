//! The PostgreSQL metadata store (`ecrd serve --metadata postgres://...`),
//! for a registry that several ecrd replicas share.
//!
//! Every record lives in one table, `ecrd_kv(tbl, key, value)`, whose
//! primary key `(tbl, key)` is the ordered index a listing's page walks. The
//! key column uses the `"C"` collation, so keys compare bytewise, as in the
//! memory (`BTreeMap<String, _>`) and disk (SQLite `BINARY`) backends, and a
//! page means the same on all three. `ecrd_meta(name, value)` holds the
//! schema version and the registry-password secret the replicas share.
//!
//! **Transactions.** The trait's transactions are synchronous and a write
//! transaction reads what it then writes, with no way to re-run a closure on
//! a serialization failure. So write transactions are serialised instead of
//! retried: each one begins by taking one transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`), held by at most one transaction of the whole
//! fleet until it commits or rolls back, and runs at `READ COMMITTED`; with
//! no other writer able to commit meanwhile, every read it makes sees the
//! latest committed state and nothing it read can change under it, which is
//! what serializable would give. This is how the disk backend works too
//! (one writer, `BEGIN IMMEDIATE`). Read transactions run at
//! `REPEATABLE READ READ ONLY`: one snapshot, never waiting for a writer, and
//! they may nest. The cost is that writes of the whole fleet are one queue;
//! ecrd's write transactions are a few statements long.
//!
//! **Threads.** The connections' sockets are driven by a runtime of the
//! store's own, on its own thread; a call of the synchronous trait sends its
//! statement to that connection and parks the calling thread until the
//! answer arrives ([`wait`]). Like SQLite's, the call blocks its thread for
//! the length of a statement. The client side of `tokio-postgres` needs no
//! runtime, so it can be waited on from anywhere, even a runtime's worker.
//!
//! **Schema versions.** `ecrd_meta.schema_version` counts the migrations
//! applied; opening applies the missing ones in order (under a session
//! advisory lock, so replicas starting together migrate once) and refuses a
//! database of a newer version, naming it.

use std::future::Future;
use std::pin::pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::future::join;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use super::fleet::{FleetGuard, FleetLock, FleetTask, LockMode};
use super::watched::Writes;
use super::{prefix_upper_bound, Entry, MetadataStore, ReadTxn, StoreError, Table, WriteTxn};

/// The schema each migration leads to, in order; the schema version is how
/// many have been applied.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE ecrd_kv (
        tbl text NOT NULL,
        key text COLLATE \"C\" NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (tbl, key)
    )",
    // Version 2: where each record falls in the write history, so a
    // collection can learn what other replicas wrote while it planned
    // (`MetadataStore::written_since`).
    "CREATE SEQUENCE ecrd_written;
     ALTER TABLE ecrd_kv ADD COLUMN written bigint NOT NULL DEFAULT nextval('ecrd_written');
     CREATE INDEX ecrd_kv_written ON ecrd_kv (written)",
];

/// The schema version this ecrd writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Advisory lock keys (one 64-bit space per database): every write
/// transaction takes the first, opening (migrations) the second.
const WRITER_LOCK: i64 = 0x6563_7264_0000_0001;
const MIGRATION_LOCK: i64 = 0x6563_7264_0000_0002;

/// The advisory lock key of a fleet lock.
fn fleet_lock_key(lock: FleetLock) -> i64 {
    match lock {
        FleetLock::Collection => 0x6563_7264_0000_0010,
    }
}

/// The advisory lock key whose holder leads a background task.
fn lead_key(task: FleetTask) -> i64 {
    0x6563_7264_0001_0000
        + match task {
            FleetTask::GarbageCollection => 1,
            FleetTask::Lifecycle => 2,
            FleetTask::Scrub => 3,
            FleetTask::Replication => 4,
            FleetTask::Signing => 5,
        }
}

/// Idle connections kept for reuse; more are opened while many
/// transactions are open at once (reads nest), and closed after.
const IDLE_CONNECTIONS: usize = 8;

/// Polls `future` to completion on the calling thread, parking it while the
/// future waits (its wakers unpark it). Used only on futures of
/// `tokio-postgres`'s client side and of channels, which need no reactor.
fn wait<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        // A spurious wake-up only polls once more.
        std::thread::park();
    }
}

/// The runtime that drives the connections, on a thread of its own (a
/// runtime cannot be dropped inside another, and the store may be dropped
/// anywhere); it ends when the store is dropped.
struct Driver {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Driver {
    fn start() -> Result<Driver, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError(format!("cannot start the PostgreSQL driver: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ecrd-postgres".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| StoreError(format!("cannot start the PostgreSQL driver: {e}")))?;
        Ok(Driver {
            handle,
            _stop: stop,
        })
    }

    /// Runs `future` on the driver and waits for its output.
    fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        wait(rx).map_err(|_| StoreError("the PostgreSQL driver stopped".into()))
    }
}

/// One connection with the statements a transaction uses, prepared once.
struct Conn {
    client: Client,
    get: Statement,
    /// `[exclusive lower bound][has an upper bound]`.
    scan: [[Statement; 2]; 2],
    count: Statement,
    put: Statement,
    delete: Statement,
}

const SCANS: [[&str; 2]; 2] = [
    [
        "SELECT key, value FROM ecrd_kv WHERE tbl = $1 AND key >= $2 ORDER BY key LIMIT $3",
        "SELECT key, value FROM ecrd_kv WHERE tbl = $1 AND key >= $2 AND key < $4 ORDER BY key LIMIT $3",
    ],
    [
        "SELECT key, value FROM ecrd_kv WHERE tbl = $1 AND key > $2 ORDER BY key LIMIT $3",
        "SELECT key, value FROM ecrd_kv WHERE tbl = $1 AND key > $2 AND key < $4 ORDER BY key LIMIT $3",
    ],
];

impl Conn {
    async fn prepare(client: Client) -> Result<Conn, tokio_postgres::Error> {
        let get = client
            .prepare("SELECT value FROM ecrd_kv WHERE tbl = $1 AND key = $2")
            .await?;
        let scan = [
            [
                client.prepare(SCANS[0][0]).await?,
                client.prepare(SCANS[0][1]).await?,
            ],
            [
                client.prepare(SCANS[1][0]).await?,
                client.prepare(SCANS[1][1]).await?,
            ],
        ];
        let count = client
            .prepare("SELECT COUNT(*) FROM ecrd_kv WHERE tbl = $1")
            .await?;
        let put = client
            .prepare(
                "INSERT INTO ecrd_kv (tbl, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value, \
                 written = nextval('ecrd_written')",
            )
            .await?;
        let delete = client
            .prepare("DELETE FROM ecrd_kv WHERE tbl = $1 AND key = $2")
            .await?;
        Ok(Conn {
            client,
            get,
            scan,
            count,
            put,
            delete,
        })
    }
}

/// Metadata in a PostgreSQL database.
pub struct PostgresStore {
    config: tokio_postgres::Config,
    /// The URL without its password, for messages.
    shown: String,
    driver: Driver,
    idle: Arc<Mutex<Vec<Conn>>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.shown)
            .finish()
    }
}

fn pool(idle: &Mutex<Vec<Conn>>, conn: Conn) {
    let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
    if idle.len() < IDLE_CONNECTIONS && !conn.client.is_closed() {
        idle.push(conn);
    }
}

/// A session-level advisory lock and the connection that holds it. Should
/// this process die, the connection closes and PostgreSQL releases the
/// lock by itself, so a dead replica never keeps one.
struct Held {
    conn: Option<Conn>,
    release: String,
    idle: Arc<Mutex<Vec<Conn>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // Released, the connection is reused; if releasing fails, dropping
        // the connection releases the lock anyway.
        if wait(conn.client.batch_execute(&self.release)).is_ok() {
            pool(&self.idle, conn);
        }
    }
}

/// `url` with any password replaced by `***`.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl PostgresStore {
    /// Connects to the database of `url` (`postgres://user:pass@host:port/db`
    /// or libpq's `key=value` form), applies any migrations it lacks, and
    /// refuses a database a newer ecrd has written.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let shown = without_password(url);
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError(format!("--metadata {shown}: {e}")))?;
        let store = PostgresStore {
            config,
            shown,
            driver: Driver::start()?,
            idle: Arc::new(Mutex::new(Vec::new())),
        };
        store.migrate()?;
        Ok(store)
    }

    fn error(&self, e: tokio_postgres::Error) -> StoreError {
        StoreError(format!("PostgreSQL {}: {e}", self.shown))
    }

    /// A new connection, driven by the store's runtime.
    fn connect(&self) -> Result<Client, StoreError> {
        let config = self.config.clone();
        let connected = self.driver.run(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                // Ends when the client is dropped or the server goes away;
                // a statement on a dead connection then fails by itself.
                let _ = connection.await;
            });
            Ok::<_, tokio_postgres::Error>(client)
        })?;
        connected.map_err(|e| self.error(e))
    }

    fn lease(&self) -> Result<Conn, StoreError> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            if !conn.client.is_closed() {
                return Ok(conn);
            }
        }
        let client = self.connect()?;
        wait(Conn::prepare(client)).map_err(|e| self.error(e))
    }

    /// Takes back a connection whose transaction ended cleanly.
    fn give_back(&self, conn: Conn) {
        pool(&self.idle, conn);
    }

    /// Runs `sql` (which yields one boolean) on a connection kept for the
    /// guard; the guard runs `release` and pools the connection when
    /// dropped. None when `sql` answers false (not granted).
    fn hold(&self, sql: String, release: String) -> Result<Option<FleetGuard>, StoreError> {
        let conn = self.lease()?;
        let row = wait(conn.client.query_one(sql.as_str(), &[])).map_err(|e| self.error(e))?;
        if !row.get::<_, bool>(0) {
            self.give_back(conn);
            return Ok(None);
        }
        Ok(Some(FleetGuard::holding(Held {
            conn: Some(conn),
            release,
            idle: self.idle.clone(),
        })))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let client = self.connect()?;
        wait(async {
            client
                .batch_execute(&format!(
                    "SELECT pg_advisory_lock({MIGRATION_LOCK});
                     CREATE TABLE IF NOT EXISTS ecrd_meta (name text PRIMARY KEY, value text NOT NULL);"
                ))
                .await?;
            let result = self.apply_migrations(&client).await;
            client
                .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                .await?;
            Ok::<_, tokio_postgres::Error>(result)
        })
        .map_err(|e| self.error(e))?
    }

    async fn apply_migrations(&self, client: &Client) -> Result<(), StoreError> {
        let row = client
            .query_opt(
                "SELECT value FROM ecrd_meta WHERE name = 'schema_version'",
                &[],
            )
            .await
            .map_err(|e| self.error(e))?;
        let version: i64 = match row {
            None => 0,
            Some(row) => {
                let text: String = row.get(0);
                text.parse().map_err(|_| {
                    StoreError(format!(
                        "PostgreSQL {}: ecrd_meta.schema_version is '{text}', not a number",
                        self.shown
                    ))
                })?
            }
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError(format!(
                "PostgreSQL {} holds metadata of schema version {version}, written by a newer ecrd; \
                 this ecrd knows versions up to {SCHEMA_VERSION} and does not guess at newer ones",
                self.shown
            )));
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let to = index as i64 + 1;
            let sql = format!(
                "BEGIN;
                 {migration};
                 INSERT INTO ecrd_meta (name, value) VALUES ('schema_version', '{to}')
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value;
                 COMMIT;"
            );
            if let Err(e) = client.batch_execute(&sql).await {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(StoreError(format!(
                    "PostgreSQL {}: migrating to schema version {to}: {e}",
                    self.shown
                )));
            }
        }
        Ok(())
    }

    /// A write transaction, holding the fleet's writer lock from its start
    /// as the disk backend's `BEGIN IMMEDIATE` does: what the transaction
    /// reads is then what it writes over.
    fn begin_write(&self) -> Result<PostgresTxn<'_>, StoreError> {
        let conn = self.lease()?;
        let began = wait(conn.client.batch_execute(&format!(
            "{WRITE_BEGIN}; SELECT pg_advisory_xact_lock({WRITER_LOCK})"
        )));
        began.map_err(|e| self.error(e))?;
        Ok(PostgresTxn(Mutex::new(Txn {
            store: self,
            conn: Some(conn),
            begun: true,
            begin: WRITE_BEGIN,
        })))
    }

    /// The registry-password signing secret every replica on this database
    /// shares: made (random) by the first ecrd that asks, kept in
    /// `ecrd_meta`.
    pub fn token_secret(&self) -> Result<Vec<u8>, StoreError> {
        let conn = self.lease()?;
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        let secret = wait(async {
            conn.client
                .execute(
                    "INSERT INTO ecrd_meta (name, value) VALUES ('token_secret', $1) \
                     ON CONFLICT (name) DO NOTHING",
                    &[&fresh],
                )
                .await?;
            let row = conn
                .client
                .query_one(
                    "SELECT value FROM ecrd_meta WHERE name = 'token_secret'",
                    &[],
                )
                .await?;
            Ok::<String, tokio_postgres::Error>(row.get(0))
        })
        .map_err(|e| self.error(e))?;
        self.give_back(conn);
        Ok(secret.into_bytes())
    }
}

/// What a transaction holds: its connection, and whether it has begun (a
/// read transaction's `BEGIN` goes out with its first statement).
struct Txn<'a> {
    store: &'a PostgresStore,
    conn: Option<Conn>,
    begun: bool,
    /// The statement that begins the transaction.
    begin: &'static str,
}

impl Txn<'_> {
    fn conn(&self) -> Result<&Conn, StoreError> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError("transaction already ended".into()))
    }

    /// Runs a query, sending the pending `BEGIN` in the same round trip.
    fn query(
        &mut self,
        pick: impl FnOnce(&Conn) -> &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let begun = self.begun;
        let conn = self.conn()?;
        let statement = pick(conn);
        let result = if begun {
            wait(conn.client.query(statement, params))
        } else {
            let (began, rows) = wait(join(
                conn.client.batch_execute(self.begin),
                conn.client.query(statement, params),
            ));
            began.and(rows)
        };
        self.begun = true;
        result.map_err(|e| self.failed(e))
    }

    /// A failed statement leaves the transaction aborted: its connection is
    /// closed rather than reused.
    fn failed(&mut self, e: tokio_postgres::Error) -> StoreError {
        self.conn = None;
        self.store.error(e)
    }

    /// Ends the transaction with `sql` (COMMIT or ROLLBACK) and pools the
    /// connection if that worked.
    fn end(&mut self, sql: &str) -> Result<(), StoreError> {
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        if !self.begun {
            self.store.give_back(conn);
            return Ok(());
        }
        match wait(conn.client.batch_execute(sql)) {
            Ok(()) => {
                self.store.give_back(conn);
                Ok(())
            }
            Err(e) => Err(self.store.error(e)),
        }
    }

    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.query(|c| &c.get, &[&table.name(), &key])?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    fn scan(
        &mut self,
        table: Table,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (exclusive, lower) = match start_after {
            Some(after) if after >= prefix => (1, after),
            _ => (0, prefix),
        };
        let name = table.name();
        let rows = match prefix_upper_bound(prefix) {
            Some(upper) => self.query(
                |c| &c.scan[exclusive][1],
                &[&name, &lower, &limit, &upper.as_str()],
            )?,
            None => self.query(|c| &c.scan[exclusive][0], &[&name, &lower, &limit])?,
        };
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    fn count(&mut self, table: Table) -> Result<u64, StoreError> {
        let rows = self.query(|c| &c.count, &[&table.name()])?;
        let n: i64 = rows.first().map(|row| row.get(0)).unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        // Uncommitted: its changes are discarded (a read has none).
        let _ = self.end(if self.begin == WRITE_BEGIN {
            "ROLLBACK"
        } else {
            "COMMIT"
        });
    }
}

const READ_BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
const WRITE_BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// A transaction, read or write. The trait's reads take `&self`, and a
/// statement needs the transaction mutably (it may send the `BEGIN`), hence
/// the cell. A write transaction holds the fleet's writer lock from its
/// start ([`PostgresStore::begin_write`]).
struct PostgresTxn<'a>(Mutex<Txn<'a>>);

impl<'a> PostgresTxn<'a> {
    fn txn(&self) -> std::sync::MutexGuard<'_, Txn<'a>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ReadTxn for PostgresTxn<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.txn().get(table, key)
    }
    fn scan(
        &self,
        table: Table,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.txn().scan(table, prefix, start_after, limit)
    }
    fn count(&self, table: Table) -> Result<u64, StoreError> {
        self.txn().count(table)
    }
}

impl WriteTxn for PostgresTxn<'_> {
    fn put(&mut self, table: Table, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.txn()
            .query(|c| &c.put, &[&table.name(), &key, &value])
            .map(drop)
    }
    fn delete(&mut self, table: Table, key: &str) -> Result<(), StoreError> {
        self.txn()
            .query(|c| &c.delete, &[&table.name(), &key])
            .map(drop)
    }
    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.txn().end("COMMIT")
    }
}

impl MetadataStore for PostgresStore {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>, StoreError> {
        let conn = self.lease()?;
        Ok(Box::new(PostgresTxn(Mutex::new(Txn {
            store: self,
            conn: Some(conn),
            begun: false,
            begin: READ_BEGIN,
        }))))
    }

    fn write(&self) -> Result<Box<dyn WriteTxn + '_>, StoreError> {
        Ok(Box::new(self.begin_write()?))
    }

    fn clear(&self) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        {
            let mut txn = tx.txn();
            let deleted = wait(txn.conn()?.client.batch_execute("DELETE FROM ecrd_kv"));
            deleted.map_err(|e| txn.failed(e))?;
        }
        Box::new(tx).commit()
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn fleet_lock(
        &self,
        lock: FleetLock,
        mode: LockMode,
    ) -> Result<Option<FleetGuard>, StoreError> {
        let key = fleet_lock_key(lock);
        // `pg_advisory_lock*` waits for the lock and returns void; the
        // outer select makes that a row of `true`.
        let (take, release) = match mode {
            LockMode::Shared => (
                format!("SELECT true FROM (SELECT pg_advisory_lock_shared({key})) AS taken"),
                format!("SELECT pg_advisory_unlock_shared({key})"),
            ),
            LockMode::Exclusive => (
                format!("SELECT true FROM (SELECT pg_advisory_lock({key})) AS taken"),
                format!("SELECT pg_advisory_unlock({key})"),
            ),
        };
        self.hold(take, release)
    }

    fn lead(&self, task: FleetTask) -> Result<Option<FleetGuard>, StoreError> {
        let key = lead_key(task);
        self.hold(
            format!("SELECT pg_try_advisory_lock({key})"),
            format!("SELECT pg_advisory_unlock({key})"),
        )
    }

    fn write_mark(&self) -> Result<Option<u64>, StoreError> {
        // Under the writer lock: every write numbered up to the mark has
        // committed, and every later one will be numbered above it.
        let tx = self.begin_write()?;
        let mark = {
            let mut txn = tx.txn();
            let conn = txn.conn()?;
            let row = wait(
                conn.client
                    .query_one("SELECT COALESCE(MAX(written), 0) FROM ecrd_kv", &[]),
            );
            let row = row.map_err(|e| txn.failed(e))?;
            row.get::<_, i64>(0)
        };
        Box::new(tx).commit()?;
        Ok(Some(u64::try_from(mark).unwrap_or(0)))
    }

    fn written_since(&self, mark: u64, tables: &[Table]) -> Result<Writes, StoreError> {
        let names: Vec<&str> = tables.iter().map(|t| t.name()).collect();
        let mark = i64::try_from(mark).unwrap_or(i64::MAX);
        let conn = self.lease()?;
        let rows = wait(conn.client.query(
            "SELECT tbl, key, value FROM ecrd_kv WHERE written > $1 AND tbl = ANY($2)",
            &[&mark, &names],
        ))
        .map_err(|e| self.error(e))?;
        self.give_back(conn);
        Ok(rows
            .iter()
            .filter_map(|row| {
                let table = Table::from_name(row.get::<_, &str>(0))?;
                Some((table, row.get::<_, String>(1), row.get::<_, Vec<u8>>(2)))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::test_support::postgres::fresh_database;

    #[test]
    fn conformance() {
        let store = PostgresStore::open(&fresh_database()).unwrap();
        crate::store::conformance::run(&store);
        assert_eq!(store.backend(), "postgres");
    }

    #[test]
    fn reads_nest_and_see_a_snapshot() {
        let store = PostgresStore::open(&fresh_database()).unwrap();
        crate::store::conformance::reads_see_a_snapshot(&store);
    }

    /// Two stores on one database are two replicas: their write
    /// transactions take turns, so read-modify-write loses no update.
    #[test]
    fn writers_of_two_replicas_take_turns() {
        let url = fresh_database();
        let stores = [
            Arc::new(PostgresStore::open(&url).unwrap()),
            Arc::new(PostgresStore::open(&url).unwrap()),
        ];
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let store = stores[i % 2].clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let mut tx = store.write().unwrap();
                        let n: u64 = tx
                            .get(Table::Registries, "counter")
                            .unwrap()
                            .map(|v| String::from_utf8(v).unwrap().parse().unwrap())
                            .unwrap_or(0);
                        tx.put(
                            Table::Registries,
                            "counter",
                            (n + 1).to_string().into_bytes(),
                        )
                        .unwrap();
                        tx.commit().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let value = stores[0]
            .read()
            .unwrap()
            .get(Table::Registries, "counter")
            .unwrap();
        assert_eq!(value, Some(b"100".to_vec()));
    }

    #[tokio::test]
    async fn usable_from_inside_a_runtime() {
        let store = PostgresStore::open(&fresh_database()).unwrap();
        let mut tx = store.write().unwrap();
        tx.put(Table::Tags, "a/b/c:t", b"d".to_vec()).unwrap();
        tx.commit().unwrap();
        let read = store.read().unwrap();
        assert_eq!(read.count(Table::Tags).unwrap(), 1);
        drop(read);
        drop(store);
    }

    #[test]
    fn a_newer_schema_is_refused_and_the_secret_is_shared() {
        let url = fresh_database();
        let first = PostgresStore::open(&url).unwrap();
        let secret = first.token_secret().unwrap();
        assert_eq!(secret.len(), 64);
        let second = PostgresStore::open(&url).unwrap();
        assert_eq!(
            second.token_secret().unwrap(),
            secret,
            "replicas share the secret"
        );
        let conn = first.lease().unwrap();
        wait(
            conn.client
                .batch_execute("UPDATE ecrd_meta SET value = '99' WHERE name = 'schema_version'"),
        )
        .unwrap();
        let refused = PostgresStore::open(&url).unwrap_err().0;
        assert!(refused.contains("schema version 99"), "{refused}");
        assert!(refused.contains("newer ecrd"), "{refused}");
    }

    #[test]
    fn one_replica_leads_a_task_and_a_dead_leader_frees_it() {
        let url = fresh_database();
        let a = PostgresStore::open(&url).unwrap();
        let b = PostgresStore::open(&url).unwrap();
        let lead = a.lead(FleetTask::GarbageCollection).unwrap();
        assert!(lead.is_some());
        assert!(b.lead(FleetTask::GarbageCollection).unwrap().is_none());
        assert!(
            b.lead(FleetTask::Lifecycle).unwrap().is_some(),
            "tasks are separate"
        );
        drop(lead);
        assert!(b.lead(FleetTask::GarbageCollection).unwrap().is_some());
        // A replica that dies takes its connections with it.
        let lead = a.lead(FleetTask::Scrub).unwrap();
        assert!(lead.is_some());
        std::mem::forget(lead);
        drop(a);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if b.lead(FleetTask::Scrub).unwrap().is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the dead replica's lead stayed"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn an_exclusive_fleet_lock_waits_for_every_shared_holder() {
        let url = fresh_database();
        let a = Arc::new(PostgresStore::open(&url).unwrap());
        let b = Arc::new(PostgresStore::open(&url).unwrap());
        let shared = a
            .fleet_lock(FleetLock::Collection, LockMode::Shared)
            .unwrap();
        let also_shared = b
            .fleet_lock(FleetLock::Collection, LockMode::Shared)
            .unwrap();
        assert!(shared.is_some() && also_shared.is_some());
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || {
                let exclusive = b
                    .fleet_lock(FleetLock::Collection, LockMode::Exclusive)
                    .unwrap();
                tx.send(()).unwrap();
                drop(exclusive);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "taken while shared holders remain");
        drop(shared);
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            rx.try_recv().is_err(),
            "taken while one shared holder remains"
        );
        drop(also_shared);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn written_since_a_mark_is_what_any_replica_wrote_after_it() {
        let url = fresh_database();
        let a = PostgresStore::open(&url).unwrap();
        let b = PostgresStore::open(&url).unwrap();
        let put = |store: &PostgresStore, table, key: &str| {
            let mut tx = store.write().unwrap();
            tx.put(table, key, key.as_bytes().to_vec()).unwrap();
            tx.commit().unwrap();
        };
        put(&a, Table::Images, "before");
        let mark = a.write_mark().unwrap().unwrap();
        put(&b, Table::Images, "after");
        put(&b, Table::Tags, "other table");
        // Written again after the mark: reported too.
        put(&a, Table::Images, "before");
        let mut seen: Vec<String> = a
            .written_since(mark, &[Table::Images, Table::Layers])
            .unwrap()
            .into_iter()
            .map(|(_, k, _)| k)
            .collect();
        seen.sort();
        assert_eq!(seen, ["after", "before"]);
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            without_password("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(without_password("postgres://u@h/db"), "postgres://u@h/db");
        let refused = PostgresStore::open("postgres://u:secret@127.0.0.1:1/db")
            .unwrap_err()
            .0;
        assert!(!refused.contains("secret"), "{refused}");
    }
}

//! A metadata store that can report what was written to some of its tables
//! while a watch was on: garbage collection plans from one snapshot without
//! holding writers back, then learns from the watch which records were
//! written since (`ecr::gc`).
//!
//! A put is recorded when it is made, before its transaction commits, so
//! the record is a superset of what committed: a watcher may keep more than
//! it needs, never less.

use std::sync::{Arc, Mutex};

use super::{Entry, MetadataStore, ReadTxn, StoreError, Table, WriteTxn};

/// The puts made while a watch was on: table, key, value.
pub type Writes = Vec<(Table, String, Vec<u8>)>;

/// Turns the watch on and off and takes what it saw.
#[derive(Clone)]
pub struct Watch {
    slot: Arc<Mutex<Option<Watching>>>,
    /// The watched store, asked for what other processes wrote (a store
    /// that replicas share: `MetadataStore::written_since`).
    store: Arc<dyn MetadataStore>,
    tables: &'static [Table],
}

struct Watching {
    writes: Writes,
    mark: Option<u64>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("tables", &self.tables)
            .finish()
    }
}

impl Watch {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Watching>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts recording (dropping anything recorded before).
    pub fn start(&self) -> Result<(), StoreError> {
        let mark = self.store.write_mark()?;
        *self.slot() = Some(Watching {
            writes: Vec::new(),
            mark,
        });
        Ok(())
    }

    /// Stops recording and returns what was written since `start`: by this
    /// process, and by any other that shares the store.
    pub fn stop(&self) -> Result<Writes, StoreError> {
        let Some(Watching { mut writes, mark }) = self.slot().take() else {
            return Ok(Vec::new());
        };
        if let Some(mark) = mark {
            writes.extend(self.store.written_since(mark, self.tables)?);
        }
        Ok(writes)
    }

    /// The keys of `table` written since `start`, recording on.
    pub fn keys_of(&self, table: Table) -> Result<std::collections::HashSet<String>, StoreError> {
        let (mut keys, mark): (std::collections::HashSet<String>, _) = match self.slot().as_ref() {
            Some(watching) => (
                watching
                    .writes
                    .iter()
                    .filter(|(t, _, _)| *t == table)
                    .map(|(_, k, _)| k.clone())
                    .collect(),
                watching.mark,
            ),
            None => return Ok(Default::default()),
        };
        if let Some(mark) = mark {
            let others = self.store.written_since(mark, &[table])?;
            keys.extend(others.into_iter().map(|(_, k, _)| k));
        }
        Ok(keys)
    }

    fn record(&self, table: Table, key: &str, value: &[u8]) {
        if let Some(watching) = self.slot().as_mut() {
            watching
                .writes
                .push((table, key.to_string(), value.to_vec()));
        }
    }
}

/// `inner`, with puts to `tables` reported to a [`Watch`].
pub struct WatchedStore {
    inner: Arc<dyn MetadataStore>,
    tables: &'static [Table],
    watch: Watch,
}

impl WatchedStore {
    pub fn new(inner: Arc<dyn MetadataStore>, tables: &'static [Table]) -> Self {
        WatchedStore {
            watch: Watch {
                slot: Arc::default(),
                store: inner.clone(),
                tables,
            },
            inner,
            tables,
        }
    }

    pub fn watch(&self) -> Watch {
        self.watch.clone()
    }
}

struct WatchedWrite<'a> {
    inner: Box<dyn WriteTxn + 'a>,
    tables: &'static [Table],
    watch: &'a Watch,
}

impl ReadTxn for WatchedWrite<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }

    fn scan(
        &self,
        table: Table,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.scan(table, prefix, start_after, limit)
    }

    fn count(&self, table: Table) -> Result<u64, StoreError> {
        self.inner.count(table)
    }
}

impl WriteTxn for WatchedWrite<'_> {
    fn put(&mut self, table: Table, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        if self.tables.contains(&table) {
            self.watch.record(table, key, &value);
        }
        self.inner.put(table, key, value)
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<(), StoreError> {
        self.inner.delete(table, key)
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.commit()
    }
}

impl MetadataStore for WatchedStore {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>, StoreError> {
        self.inner.read()
    }

    fn write(&self) -> Result<Box<dyn WriteTxn + '_>, StoreError> {
        Ok(Box::new(WatchedWrite {
            inner: self.inner.write()?,
            tables: self.tables,
            watch: &self.watch,
        }))
    }

    fn clear(&self) -> Result<(), StoreError> {
        self.inner.clear()
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn fleet_lock(
        &self,
        lock: super::fleet::FleetLock,
        mode: super::fleet::LockMode,
    ) -> Result<Option<super::fleet::FleetGuard>, StoreError> {
        self.inner.fleet_lock(lock, mode)
    }

    fn lead(
        &self,
        task: super::fleet::FleetTask,
    ) -> Result<Option<super::fleet::FleetGuard>, StoreError> {
        self.inner.lead(task)
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }

    fn write_mark(&self) -> Result<Option<u64>, StoreError> {
        self.inner.write_mark()
    }

    fn written_since(&self, mark: u64, tables: &[Table]) -> Result<Writes, StoreError> {
        self.inner.written_since(mark, tables)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::memory::MemoryStore;

    #[test]
    fn conformance() {
        super::super::conformance::run(&WatchedStore::new(
            Arc::new(MemoryStore::new()),
            &[Table::Images],
        ));
    }

    #[test]
    fn records_puts_to_watched_tables_while_on() {
        let store = WatchedStore::new(Arc::new(MemoryStore::new()), &[Table::Images]);
        let watch = store.watch();
        let put = |table, key: &str| {
            let mut tx = store.write().unwrap();
            tx.put(table, key, key.as_bytes().to_vec()).unwrap();
            tx.commit().unwrap();
        };
        put(Table::Images, "before");
        watch.start().unwrap();
        put(Table::Images, "during");
        put(Table::Tags, "other table");
        {
            // Recorded even though it never commits.
            let mut tx = store.write().unwrap();
            tx.put(Table::Images, "dropped", b"x".to_vec()).unwrap();
        }
        let seen: Vec<String> = watch
            .stop()
            .unwrap()
            .into_iter()
            .map(|(_, k, _)| k)
            .collect();
        assert_eq!(seen, ["during", "dropped"]);
        put(Table::Images, "after");
        assert!(watch.stop().unwrap().is_empty());
    }
}

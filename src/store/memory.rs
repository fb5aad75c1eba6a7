//! The in-memory metadata store: one ordered map per table behind a
//! read-write lock. A write transaction holds the write lock and buffers its
//! changes in an overlay, so an uncommitted transaction changes nothing.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{Entry, MetadataStore, ReadTxn, StoreError, Table, WriteTxn};

type Tables = BTreeMap<Table, BTreeMap<String, Vec<u8>>>;

/// Metadata kept in process memory; gone when the process exits.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn scan_map<'a>(
    map: Option<&'a BTreeMap<String, Vec<u8>>>,
    prefix: &'a str,
    start_after: Option<&'a str>,
) -> impl Iterator<Item = (&'a String, &'a Vec<u8>)> + 'a {
    let lower = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after.to_string()),
        _ => Bound::Included(prefix.to_string()),
    };
    map.into_iter()
        .flat_map(move |m| m.range((lower.clone(), Bound::Unbounded)))
        .take_while(move |(k, _)| k.starts_with(prefix))
}

struct MemoryRead<'a> {
    guard: RwLockReadGuard<'a, Tables>,
}

impl ReadTxn for MemoryRead<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.guard.get(&table).and_then(|m| m.get(key)).cloned())
    }

    fn scan(
        &self,
        table: Table,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        Ok(scan_map(self.guard.get(&table), prefix, start_after)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn count(&self, table: Table) -> Result<u64, StoreError> {
        Ok(self.guard.get(&table).map_or(0, |m| m.len() as u64))
    }
}

/// Pending changes: `None` marks a delete.
type Overlay = BTreeMap<Table, BTreeMap<String, Option<Vec<u8>>>>;

struct MemoryWrite<'a> {
    guard: RwLockWriteGuard<'a, Tables>,
    overlay: Overlay,
}

impl ReadTxn for MemoryWrite<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(pending) = self.overlay.get(&table).and_then(|m| m.get(key)) {
            return Ok(pending.clone());
        }
        Ok(self.guard.get(&table).and_then(|m| m.get(key)).cloned())
    }

    fn scan(
        &self,
        table: Table,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        // Merge the committed entries with the overlay, the overlay winning.
        let pending = self.overlay.get(&table);
        let mut merged: BTreeMap<&String, Option<&Vec<u8>>> = BTreeMap::new();
        // Committed entries beyond what the overlay could hide are not
        // needed: take `limit` plus the number of pending deletes.
        let pending_count = pending.map_or(0, |p| p.len());
        for (k, v) in
            scan_map(self.guard.get(&table), prefix, start_after).take(limit + pending_count)
        {
            merged.insert(k, Some(v));
        }
        if let Some(pending) = pending {
            let lower = match start_after {
                Some(after) if after >= prefix => Bound::Excluded(after.to_string()),
                _ => Bound::Included(prefix.to_string()),
            };
            for (k, v) in pending
                .range((lower, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
            {
                merged.insert(k, v.as_ref());
            }
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.clone(), v.clone())))
            .take(limit)
            .collect())
    }
}

impl WriteTxn for MemoryWrite<'_> {
    fn put(&mut self, table: Table, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.overlay
            .entry(table)
            .or_default()
            .insert(key.to_string(), Some(value));
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<(), StoreError> {
        self.overlay
            .entry(table)
            .or_default()
            .insert(key.to_string(), None);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let MemoryWrite { mut guard, overlay } = *self;
        for (table, changes) in overlay {
            let map = guard.entry(table).or_default();
            for (key, value) in changes {
                match value {
                    Some(v) => map.insert(key, v),
                    None => map.remove(&key),
                };
            }
        }
        Ok(())
    }
}

impl MetadataStore for MemoryStore {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>, StoreError> {
        let guard = self.tables.read().unwrap_or_else(|e| e.into_inner());
        Ok(Box::new(MemoryRead { guard }))
    }

    fn write(&self) -> Result<Box<dyn WriteTxn + '_>, StoreError> {
        let guard = self.tables.write().unwrap_or_else(|e| e.into_inner());
        Ok(Box::new(MemoryWrite {
            guard,
            overlay: Overlay::new(),
        }))
    }

    fn clear(&self) -> Result<(), StoreError> {
        self.tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        super::super::conformance::run(&super::MemoryStore::new());
    }
}

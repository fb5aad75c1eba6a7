//! Whole-store copies, table by table and generically over [`Table::ALL`]
//! (so a table added later is carried without a change here): dumping every
//! record, loading a dump into an empty store, and writing the difference
//! between two dumps to a store in one transaction. Seeding stages its work
//! in a copy and commits the difference (`seed`); snapshots dump and
//! restore (`snapshot`).

use std::collections::BTreeMap;

use super::{MetadataStore, StoreError, Table};

/// Every record of a store: table → key → value.
pub type Dump = BTreeMap<Table, BTreeMap<String, Vec<u8>>>;

/// Reads every table in one consistent read.
pub fn dump(store: &dyn MetadataStore) -> Result<Dump, StoreError> {
    let tx = store.read()?;
    let mut out = Dump::new();
    for &table in Table::ALL {
        let entries = tx.scan(table, "", None, usize::MAX)?;
        if !entries.is_empty() {
            out.insert(table, entries.into_iter().collect());
        }
    }
    Ok(out)
}

/// Writes every record of `dump` into `store` in one transaction.
pub fn load(store: &dyn MetadataStore, dump: &Dump) -> Result<(), StoreError> {
    let mut tx = store.write()?;
    for (&table, entries) in dump {
        for (key, value) in entries {
            tx.put(table, key, value.clone())?;
        }
    }
    tx.commit()
}

/// How many records a change writes and deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub written: usize,
    pub deleted: usize,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.written == 0 && self.deleted == 0
    }
}

/// Makes `store`, which holds `before`, hold `after`: writes the records
/// that are new or changed and deletes the ones that are gone, all in one
/// transaction (nothing when the two are equal).
pub fn apply_difference(
    store: &dyn MetadataStore,
    before: &Dump,
    after: &Dump,
) -> Result<Changes, StoreError> {
    let empty = BTreeMap::new();
    let mut changes = Changes::default();
    let mut tx = store.write()?;
    for &table in Table::ALL {
        let old = before.get(&table).unwrap_or(&empty);
        let new = after.get(&table).unwrap_or(&empty);
        for (key, value) in new {
            if old.get(key) != Some(value) {
                tx.put(table, key, value.clone())?;
                changes.written += 1;
            }
        }
        for key in old.keys() {
            if !new.contains_key(key) {
                tx.delete(table, key)?;
                changes.deleted += 1;
            }
        }
    }
    if !changes.is_empty() {
        tx.commit()?;
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[test]
    fn difference_round_trip() {
        let a = MemoryStore::new();
        {
            let mut tx = a.write().unwrap();
            tx.put(Table::Repositories, "x", b"1".to_vec()).unwrap();
            tx.put(Table::Tags, "t", b"2".to_vec()).unwrap();
            tx.commit().unwrap();
        }
        let before = dump(&a).unwrap();
        let b = MemoryStore::new();
        load(&b, &before).unwrap();
        {
            let mut tx = b.write().unwrap();
            tx.put(Table::Repositories, "y", b"3".to_vec()).unwrap();
            tx.delete(Table::Tags, "t").unwrap();
            tx.commit().unwrap();
        }
        let after = dump(&b).unwrap();
        let changes = apply_difference(&a, &before, &after).unwrap();
        assert_eq!(
            changes,
            Changes {
                written: 1,
                deleted: 1
            }
        );
        assert_eq!(dump(&a).unwrap(), after);
        assert!(apply_difference(&a, &after, &after).unwrap().is_empty());
    }
}

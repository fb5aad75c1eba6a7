//! The conformance suite every metadata backend passes.

use super::{MetadataStore, Table};

/// Runs every check against an empty store.
pub fn run(store: &dyn MetadataStore) {
    put_get_delete(store);
    uncommitted_is_discarded(store);
    scan_order_prefix_and_paging(store);
    scan_sees_own_writes(store);
    clear_empties(store);
}

fn put_get_delete(store: &dyn MetadataStore) {
    let mut tx = store.write().unwrap();
    tx.put(Table::Repositories, "a/r/x", b"1".to_vec()).unwrap();
    assert_eq!(
        tx.get(Table::Repositories, "a/r/x").unwrap(),
        Some(b"1".to_vec())
    );
    tx.commit().unwrap();
    assert_eq!(
        store
            .read()
            .unwrap()
            .get(Table::Repositories, "a/r/x")
            .unwrap(),
        Some(b"1".to_vec())
    );
    // Tables are separate namespaces.
    assert_eq!(
        store
            .read()
            .unwrap()
            .get(Table::Registries, "a/r/x")
            .unwrap(),
        None
    );
    let mut tx = store.write().unwrap();
    tx.delete(Table::Repositories, "a/r/x").unwrap();
    assert_eq!(tx.get(Table::Repositories, "a/r/x").unwrap(), None);
    tx.commit().unwrap();
    assert_eq!(
        store
            .read()
            .unwrap()
            .get(Table::Repositories, "a/r/x")
            .unwrap(),
        None
    );
}

fn uncommitted_is_discarded(store: &dyn MetadataStore) {
    {
        let mut tx = store.write().unwrap();
        tx.put(Table::Repositories, "a/r/gone", b"1".to_vec())
            .unwrap();
    }
    assert_eq!(
        store
            .read()
            .unwrap()
            .get(Table::Repositories, "a/r/gone")
            .unwrap(),
        None
    );
}

fn scan_order_prefix_and_paging(store: &dyn MetadataStore) {
    let mut tx = store.write().unwrap();
    for key in ["p/1/c", "p/1/a", "p/1/b/x", "p/10/z", "p/2/a", "o/1/a"] {
        tx.put(Table::Repositories, key, key.as_bytes().to_vec())
            .unwrap();
    }
    tx.commit().unwrap();
    let read = store.read().unwrap();
    let keys =
        |entries: Vec<(String, Vec<u8>)>| entries.into_iter().map(|e| e.0).collect::<Vec<_>>();
    assert_eq!(
        keys(read.scan(Table::Repositories, "p/1/", None, 100).unwrap()),
        ["p/1/a", "p/1/b/x", "p/1/c"]
    );
    assert_eq!(
        keys(read.scan(Table::Repositories, "p/1/", None, 2).unwrap()),
        ["p/1/a", "p/1/b/x"]
    );
    assert_eq!(
        keys(
            read.scan(Table::Repositories, "p/1/", Some("p/1/b/x"), 2)
                .unwrap()
        ),
        ["p/1/c"]
    );
    assert!(read
        .scan(Table::Repositories, "p/1/", Some("p/1/c"), 2)
        .unwrap()
        .is_empty());
    assert!(read
        .scan(Table::Repositories, "q/", None, 10)
        .unwrap()
        .is_empty());
    drop(read);
    let mut tx = store.write().unwrap();
    for key in ["p/1/c", "p/1/a", "p/1/b/x", "p/10/z", "p/2/a", "o/1/a"] {
        tx.delete(Table::Repositories, key).unwrap();
    }
    tx.commit().unwrap();
}

fn scan_sees_own_writes(store: &dyn MetadataStore) {
    let mut tx = store.write().unwrap();
    for key in ["s/a", "s/b", "s/c"] {
        tx.put(Table::Registries, key, b"v".to_vec()).unwrap();
    }
    tx.commit().unwrap();
    let mut tx = store.write().unwrap();
    tx.delete(Table::Registries, "s/a").unwrap();
    tx.put(Table::Registries, "s/bb", b"new".to_vec()).unwrap();
    let seen: Vec<String> = tx
        .scan(Table::Registries, "s/", None, 3)
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(seen, ["s/b", "s/bb", "s/c"]);
    drop(tx);
    let seen: Vec<String> = store
        .read()
        .unwrap()
        .scan(Table::Registries, "s/", None, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(seen, ["s/a", "s/b", "s/c"]);
}

fn clear_empties(store: &dyn MetadataStore) {
    store.clear().unwrap();
    for table in Table::ALL {
        assert!(store
            .read()
            .unwrap()
            .scan(*table, "", None, 10)
            .unwrap()
            .is_empty());
    }
}

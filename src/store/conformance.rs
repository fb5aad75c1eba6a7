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

/// For stores whose reads never wait for a writer (disk, PostgreSQL; the
/// memory store's reads hold its lock): a read transaction keeps its
/// snapshot while writes commit, and reads may nest.
pub fn reads_see_a_snapshot(store: &dyn MetadataStore) {
    let mut tx = store.write().unwrap();
    tx.put(Table::Images, "k", b"old".to_vec()).unwrap();
    tx.commit().unwrap();
    let outer = store.read().unwrap();
    assert_eq!(
        outer.get(Table::Images, "k").unwrap(),
        Some(b"old".to_vec())
    );
    let mut tx = store.write().unwrap();
    tx.put(Table::Images, "k", b"new".to_vec()).unwrap();
    tx.commit().unwrap();
    // The outer read keeps its snapshot; a new (nested) one sees the commit.
    assert_eq!(
        outer.get(Table::Images, "k").unwrap(),
        Some(b"old".to_vec())
    );
    let inner = store.read().unwrap();
    assert_eq!(
        inner.get(Table::Images, "k").unwrap(),
        Some(b"new".to_vec())
    );
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

/// The checks every blob store passes.
pub async fn run_blobs(store: &dyn super::blobs::BlobStore) {
    use super::blobs::{read_all, BlobError, ByteStream};
    use crate::digest::{Algorithm, Digest};
    use bytes::Bytes;

    fn body(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, std::io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures_util::stream::iter(items))
    }

    // Chunked upload, finished with the right digest.
    let id = store.create_upload().await.unwrap();
    assert_eq!(
        store
            .append_upload(&id, body(&[b"hello ", b"wor"]))
            .await
            .unwrap(),
        9
    );
    assert_eq!(store.append_upload(&id, body(&[b"ld"])).await.unwrap(), 11);
    assert_eq!(store.upload_size(&id).await.unwrap(), 11);
    let digest = Digest::sha256_of(b"hello world");
    assert_eq!(store.size(&digest).await.unwrap(), None);
    assert_eq!(store.finish_upload(&id, &digest).await.unwrap(), 11);
    assert!(matches!(
        store.upload_size(&id).await,
        Err(BlobError::UploadUnknown)
    ));
    assert_eq!(store.size(&digest).await.unwrap(), Some(11));
    assert_eq!(
        read_all(store, &digest).await.unwrap().unwrap(),
        Bytes::from_static(b"hello world")
    );

    // Ranges.
    use futures_util::StreamExt;
    let mut part = store.read(&digest, 6, Some(9)).await.unwrap().unwrap();
    let mut got = Vec::new();
    while let Some(c) = part.next().await {
        got.extend_from_slice(&c.unwrap());
    }
    assert_eq!(got, b"wor");

    // A wrong digest is refused and stores nothing.
    let id = store.create_upload().await.unwrap();
    store.append_upload(&id, body(&[b"abc"])).await.unwrap();
    let wrong = Digest::sha256_of(b"abd");
    match store.finish_upload(&id, &wrong).await {
        Err(BlobError::DigestMismatch { computed }) => {
            assert_eq!(computed, Digest::sha256_of(b"abc"))
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert_eq!(store.size(&wrong).await.unwrap(), None);
    assert_eq!(store.size(&Digest::sha256_of(b"abc")).await.unwrap(), None);

    // Prepared, then finished (the way `complete_upload` finishes); a
    // wrong digest is refused at either step; bytes appended after a
    // preparation are checked again at the finish.
    let id = store.create_upload().await.unwrap();
    store
        .append_upload(&id, body(&[b"prep", b"ared"]))
        .await
        .unwrap();
    let prepared = Digest::sha256_of(b"prepared");
    store.prepare_finish(&id, &prepared).await.unwrap();
    assert_eq!(store.finish_upload(&id, &prepared).await.unwrap(), 8);
    assert_eq!(
        read_all(store, &prepared).await.unwrap().unwrap(),
        Bytes::from_static(b"prepared")
    );
    let id = store.create_upload().await.unwrap();
    store.append_upload(&id, body(&[b"abc"])).await.unwrap();
    let refused = match store.prepare_finish(&id, &wrong).await {
        Ok(()) => store.finish_upload(&id, &wrong).await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(
        matches!(refused, Err(BlobError::DigestMismatch { ref computed }) if *computed == Digest::sha256_of(b"abc")),
        "{refused:?}"
    );
    assert_eq!(store.size(&wrong).await.unwrap(), None);
    let id = store.create_upload().await.unwrap();
    store.append_upload(&id, body(&[b"one"])).await.unwrap();
    store
        .prepare_finish(&id, &Digest::sha256_of(b"one"))
        .await
        .unwrap();
    store.append_upload(&id, body(&[b"two"])).await.unwrap();
    match store.finish_upload(&id, &Digest::sha256_of(b"one")).await {
        Err(BlobError::DigestMismatch { computed }) => {
            assert_eq!(computed, Digest::sha256_of(b"onetwo"))
        }
        other => panic!("a stale preparation was trusted: {other:?}"),
    }
    assert_eq!(store.size(&Digest::sha256_of(b"one")).await.unwrap(), None);

    // sha512 digests are verified too.
    let id = store.create_upload().await.unwrap();
    store.append_upload(&id, body(&[b"x512"])).await.unwrap();
    let d512 = Digest::of(Algorithm::Sha512, b"x512");
    assert_eq!(store.finish_upload(&id, &d512).await.unwrap(), 4);
    assert_eq!(store.size(&d512).await.unwrap(), Some(4));

    // Empty uploads make the empty blob.
    let id = store.create_upload().await.unwrap();
    let empty = Digest::sha256_of(b"");
    assert_eq!(store.finish_upload(&id, &empty).await.unwrap(), 0);
    assert_eq!(read_all(store, &empty).await.unwrap().unwrap().len(), 0);

    // Cancel, put, delete, list, clear.
    let id = store.create_upload().await.unwrap();
    store.cancel_upload(&id).await.unwrap();
    assert!(matches!(
        store.cancel_upload(&id).await,
        Err(BlobError::UploadUnknown)
    ));
    assert!(matches!(
        store.append_upload("nope", body(&[b"x"])).await,
        Err(BlobError::UploadUnknown)
    ));
    let put = store.put(Bytes::from_static(b"{}")).await.unwrap();
    assert_eq!(put, Digest::sha256_of(b"{}"));
    assert!(store.list().await.unwrap().contains(&put));

    // What garbage collection reads: every blob with its size and when it
    // was stored; every upload with its size and last activity.
    let recent = |t: std::time::SystemTime| {
        let now = std::time::SystemTime::now();
        let slack = std::time::Duration::from_secs(60);
        t + slack >= now && t <= now + slack
    };
    let stats = store.list_stats().await.unwrap();
    let mut listed: Vec<Digest> = stats.iter().map(|s| s.digest.clone()).collect();
    listed.sort();
    let mut expected = store.list().await.unwrap();
    expected.sort();
    assert_eq!(listed, expected);
    let hello = stats.iter().find(|s| s.digest == digest).unwrap();
    assert_eq!(hello.size, 11);
    assert!(recent(hello.stored));
    let id = store.create_upload().await.unwrap();
    let uploads = store.list_uploads().await.unwrap();
    let open = uploads.iter().find(|u| u.id == id).unwrap();
    assert_eq!(open.size, 0);
    assert!(recent(open.active));
    store.append_upload(&id, body(&[b"abc"])).await.unwrap();
    let uploads = store.list_uploads().await.unwrap();
    assert_eq!(uploads.iter().find(|u| u.id == id).unwrap().size, 3);
    store.cancel_upload(&id).await.unwrap();
    assert!(!store
        .list_uploads()
        .await
        .unwrap()
        .iter()
        .any(|u| u.id == id));
    store.delete(&put).await.unwrap();
    assert_eq!(store.size(&put).await.unwrap(), None);
    store.clear().await.unwrap();
    assert!(store.list().await.unwrap().is_empty());
}

/// A request body of `parts`, for blob store tests.
pub fn owned_body(parts: Vec<Vec<u8>>) -> super::blobs::ByteStream {
    let items: Vec<Result<bytes::Bytes, std::io::Error>> = parts
        .into_iter()
        .map(|p| Ok(bytes::Bytes::from(p)))
        .collect();
    Box::pin(futures_util::stream::iter(items))
}

/// A body that fails part-way keeps what arrived appended, and the upload
/// goes on from there, on `resumed_by` (the same store, or another replica
/// on the same storage).
pub async fn body_error_keeps_what_arrived(
    store: &dyn super::blobs::BlobStore,
    resumed_by: &dyn super::blobs::BlobStore,
) {
    use super::blobs::BlobError;
    let id = store.create_upload().await.unwrap();
    let items: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from_static(b"part")),
        Err(std::io::Error::other("client went away")),
    ];
    assert!(matches!(
        store
            .append_upload(&id, Box::pin(futures_util::stream::iter(items)))
            .await,
        Err(BlobError::Body(_))
    ));
    assert_eq!(resumed_by.upload_size(&id).await.unwrap(), 4);
    resumed_by
        .append_upload(&id, owned_body(vec![b"ial".to_vec()]))
        .await
        .unwrap();
    store
        .finish_upload(&id, &crate::digest::Digest::sha256_of(b"partial"))
        .await
        .unwrap();
}

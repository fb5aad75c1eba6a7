//! Online garbage collection (`POST /_ecrd/gc`, `--gc-interval`,
//! `--gc-grace`): blobs no image uses go once the grace has passed, shared
//! and fresh ones stay, abandoned uploads go, space on disk comes back, and
//! pushes running during a collection lose nothing. Every backend.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::{Backend, TestServer, BACKENDS};
use ecrd::digest::Digest;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const HOUR: i64 = 3600;

fn sha256(data: &[u8]) -> String {
    Digest::sha256_of(data).to_string()
}

/// A registry client over raw HTTP with an ECR login.
struct Reg {
    server: TestServer,
    http: reqwest::Client,
    auth: String,
}

impl Reg {
    async fn start(backend: Backend) -> Reg {
        Self::start_with(backend, |_| {}).await
    }

    async fn start_with(backend: Backend, configure: impl FnOnce(&mut ecrd::ServeConfig)) -> Reg {
        let server = TestServer::start_with(backend, configure).await;
        let out = server.ecr().get_authorization_token().send().await.unwrap();
        let token = out.authorization_data()[0]
            .authorization_token()
            .unwrap()
            .to_string();
        assert!(base64::engine::general_purpose::STANDARD
            .decode(&token)
            .unwrap()
            .starts_with(b"AWS:"));
        Reg {
            server,
            http: reqwest::Client::new(),
            auth: format!("Basic {token}"),
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server.url))
            .header("authorization", &self.auth)
    }

    async fn create_repo(&self, name: &str) {
        self.server
            .ecr()
            .create_repository()
            .repository_name(name)
            .send()
            .await
            .unwrap();
    }

    async fn delete_repo(&self, name: &str) {
        self.server
            .ecr()
            .delete_repository()
            .repository_name(name)
            .force(true)
            .send()
            .await
            .unwrap();
    }

    /// Monolithic upload; returns the digest.
    async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            )
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        digest
    }

    fn manifest(config: &[u8], layers: &[&[u8]]) -> String {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": config.len()},
            "layers": layers.iter().map(|l| json!({
                "mediaType": OCI_LAYER, "digest": sha256(l), "size": l.len()
            })).collect::<Vec<_>>(),
        })
        .to_string()
    }

    async fn put_manifest(&self, repo: &str, reference: &str, manifest: &str) -> reqwest::Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Pushes config, layers and manifest under `tag`; returns the
    /// manifest's digest.
    async fn push_image(&self, repo: &str, tag: &str, config: &[u8], layers: &[&[u8]]) -> String {
        self.push_blob(repo, config).await;
        for layer in layers {
            self.push_blob(repo, layer).await;
        }
        let manifest = Self::manifest(config, layers);
        let r = self.put_manifest(repo, tag, &manifest).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        sha256(manifest.as_bytes())
    }

    async fn delete_manifest(&self, repo: &str, digest: &str) {
        let r = self
            .req(Method::DELETE, &format!("/v2/{repo}/manifests/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }

    /// Status of a blob HEAD in a repository.
    async fn head_blob(&self, repo: &str, digest: &str) -> StatusCode {
        self.req(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A blob's bytes, following the redirect to the signed URL.
    async fn pull_blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let r = self
            .req(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET blob {digest} of {repo}");
        r.bytes().await.unwrap().to_vec()
    }

    /// `POST /_ecrd/gc`, optionally overriding the grace.
    async fn gc(&self, grace_seconds: Option<u64>) -> Value {
        let mut r = self.http.post(format!("{}/_ecrd/gc", self.server.url));
        if let Some(g) = grace_seconds {
            r = r.json(&json!({ "graceSeconds": g }));
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    fn advance(&self, seconds: i64) {
        self.server
            .state
            .ecr
            .clock
            .advance(time::Duration::seconds(seconds));
    }

    async fn stored(&self) -> HashSet<String> {
        self.server
            .state
            .ecr
            .blobs
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.to_string())
            .collect()
    }

    /// Bytes of the files under the data directory's `blobs/` (disk only).
    fn disk_bytes(&self) -> Option<u64> {
        fn walk(dir: &Path) -> u64 {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| match e.metadata() {
                            Ok(m) if m.is_dir() => walk(&e.path()),
                            Ok(m) => m.len(),
                            Err(_) => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        let dir = self.server.state.config.data_dir.as_ref()?;
        Some(walk(&dir.join("blobs")))
    }
}

fn strings(v: &Value) -> HashSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn unused_blobs_go_once_the_grace_has_passed_and_shared_ones_stay() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("gc/a").await;
        reg.create_repo("gc/b").await;
        let big = |seed: u8| -> Vec<u8> { (0..200_000u32).map(|i| (i as u8) ^ seed).collect() };
        let shared = big(1);
        let (a1_layer, a2_layer, b1_layer) = (big(2), big(3), big(4));
        let a1 = reg
            .push_image("gc/a", "one", b"{\"a\":1}", &[&shared, &a1_layer])
            .await;
        reg.push_image("gc/a", "two", b"{\"a\":2}", &[&shared, &a2_layer])
            .await;
        reg.push_image("gc/b", "one", b"{\"b\":1}", &[&shared, &b1_layer])
            .await;
        let all = reg.stored().await;
        assert_eq!(all.len(), 7, "{backend:?}");
        let bytes_full = reg.disk_bytes();

        // Everything is used: nothing goes, whatever the grace.
        let report = reg.gc(Some(0)).await;
        assert_eq!(strings(&report["blobsDeleted"]), set(&[]), "{report}");
        assert_eq!(report["blobsKept"], 7);
        assert_eq!(reg.stored().await, all);

        // An image deleted: its own blobs are unused, but younger than the
        // grace (by their own time and their links' time), so they stay.
        reg.delete_manifest("gc/a", &a1).await;
        let report = reg.gc(None).await;
        assert_eq!(report["graceSeconds"], 3600);
        assert_eq!(strings(&report["blobsDeleted"]), set(&[]), "{report}");
        assert_eq!(strings(&report["layersUnlinked"]), set(&[]), "{report}");
        assert_eq!(
            reg.head_blob("gc/a", &sha256(&a1_layer)).await,
            StatusCode::OK
        );

        // Past the grace they go: links first, then the blobs.
        reg.advance(HOUR + 60);
        let report = reg.gc(None).await;
        let gone = set(&[&sha256(b"{\"a\":1}"), &sha256(&a1_layer)]);
        assert_eq!(
            strings(&report["blobsDeleted"]),
            gone,
            "{backend:?} {report}"
        );
        assert_eq!(
            report["blobBytesFreed"].as_u64().unwrap(),
            7 + a1_layer.len() as u64
        );
        assert_eq!(
            strings(&report["layersUnlinked"]),
            gone.iter()
                .map(|d| format!("000000000000/us-east-1/gc/a@{d}"))
                .collect(),
        );
        assert_eq!(reg.stored().await, &all - &gone);
        assert_eq!(
            reg.head_blob("gc/a", &sha256(&a1_layer)).await,
            StatusCode::NOT_FOUND
        );
        // The shared layer and the other images are intact.
        assert_eq!(reg.pull_blob("gc/a", &sha256(&shared)).await, shared);
        assert_eq!(reg.pull_blob("gc/a", &sha256(&a2_layer)).await, a2_layer);
        assert_eq!(reg.pull_blob("gc/b", &sha256(&b1_layer)).await, b1_layer);
        if let (Some(before), Some(after)) = (bytes_full, reg.disk_bytes()) {
            assert_eq!(before - after, 7 + a1_layer.len() as u64);
        }

        // A second run finds nothing more.
        let report = reg.gc(None).await;
        assert_eq!(strings(&report["blobsDeleted"]), set(&[]), "{report}");

        // A repository deleted: its own blobs go, the shared one stays for gc/a.
        reg.delete_repo("gc/b").await;
        reg.advance(HOUR + 60);
        let report = reg.gc(None).await;
        assert_eq!(
            strings(&report["blobsDeleted"]),
            set(&[&sha256(b"{\"b\":1}"), &sha256(&b1_layer)]),
            "{report}"
        );
        assert_eq!(reg.pull_blob("gc/a", &sha256(&shared)).await, shared);

        // The last repository deleted: everything goes, the disk is empty again.
        reg.delete_repo("gc/a").await;
        reg.advance(HOUR + 60);
        let report = reg.gc(None).await;
        assert_eq!(strings(&report["blobsDeleted"]).len(), 3, "{report}");
        assert!(reg.stored().await.is_empty());
        if let Some(after) = reg.disk_bytes() {
            assert_eq!(after, 0, "{backend:?}");
            assert!(bytes_full.unwrap() > 800_000);
        }
        reg.server.stop().await;
    }
}

#[tokio::test]
async fn a_layer_waiting_for_its_manifest_keeps_the_grace() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("wait").await;
        let config = b"{\"waiting\":true}";
        let layer = b"a layer whose manifest comes later";
        reg.push_blob("wait", config).await;
        reg.push_blob("wait", layer).await;

        // Within the grace: kept, however often a collection runs.
        for _ in 0..2 {
            reg.advance(25 * 60);
            let report = reg.gc(None).await;
            assert_eq!(strings(&report["blobsDeleted"]), set(&[]), "{report}");
        }
        // The manifest arrives late, but within the grace: the image is whole.
        let manifest = Reg::manifest(config, &[layer]);
        let r = reg.put_manifest("wait", "late", &manifest).await;
        assert_eq!(r.status(), 201);
        reg.advance(2 * HOUR);
        let report = reg.gc(None).await;
        assert_eq!(strings(&report["blobsDeleted"]), set(&[]), "{report}");
        assert_eq!(reg.pull_blob("wait", &sha256(layer)).await, layer);

        // A layer nothing ever uses: kept within the grace, gone after it;
        // a manifest naming it afterwards is refused, as the layer is gone.
        let orphan = b"a layer no manifest will name in time";
        reg.push_blob("wait", orphan).await;
        reg.advance(50 * 60);
        assert_eq!(
            strings(&reg.gc(None).await["blobsDeleted"]),
            set(&[]),
            "{backend:?}"
        );
        reg.advance(11 * 60);
        let report = reg.gc(None).await;
        assert_eq!(
            strings(&report["blobsDeleted"]),
            set(&[&sha256(orphan)]),
            "{report}"
        );
        assert_eq!(
            strings(&report["layersUnlinked"]),
            set(&[&format!("000000000000/us-east-1/wait@{}", sha256(orphan))])
        );
        let r = reg
            .put_manifest("wait", "too-late", &Reg::manifest(config, &[orphan]))
            .await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN", "{body}");

        // Pushing an old layer again gives it a new grace.
        let again = b"pushed twice";
        reg.push_blob("wait", again).await;
        reg.advance(2 * HOUR);
        reg.push_blob("wait", again).await;
        let report = reg.gc(None).await;
        assert_eq!(strings(&report["blobsDeleted"]), set(&[]), "{report}");
        let r = reg
            .put_manifest("wait", "again", &Reg::manifest(config, &[again]))
            .await;
        assert_eq!(r.status(), 201);
        reg.server.stop().await;
    }
}

#[tokio::test]
async fn abandoned_uploads_are_removed() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("up").await;
        reg.create_repo("doomed").await;
        let open = |repo: &'static str| {
            let reg = &reg;
            async move {
                let r = reg
                    .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                let location = r.headers()["location"].to_str().unwrap().to_string();
                let r = reg
                    .req(Method::PATCH, &location)
                    .body(vec![7u8; 1000])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                location
            }
        };
        let stale = open("up").await;
        let of_deleted_repo = open("doomed").await;
        // Upload data no session record owns (as a crash between making the
        // data and committing its record leaves it).
        let orphan = reg.server.state.ecr.blobs.create_upload().await.unwrap();
        reg.delete_repo("doomed").await;

        let report = reg.gc(None).await;
        let removed = strings(&report["uploadsRemoved"]);
        let id_of = |location: &str| location.rsplit('/').next().unwrap().to_string();
        assert_eq!(
            removed,
            [orphan.clone(), id_of(&of_deleted_repo)]
                .into_iter()
                .collect(),
            "{backend:?} {report}"
        );
        assert_eq!(report["uploadBytesFreed"], 1000);
        let status = reg.req(Method::GET, &stale).send().await.unwrap();
        assert_eq!(status.status(), 204, "a session in use stays");
        assert_eq!(status.headers()["range"], "0-999");

        // Idle for longer than the grace: ended.
        reg.advance(HOUR + 60);
        let fresh = open("up").await;
        let report = reg.gc(None).await;
        assert_eq!(
            strings(&report["uploadsRemoved"]),
            set(&[&id_of(&stale)]),
            "{report}"
        );
        let r = reg.req(Method::GET, &stale).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "BLOB_UPLOAD_UNKNOWN");
        // The session started after the jump goes on and finishes.
        let digest = sha256(&[7u8; 1000]);
        let r = reg
            .req(Method::PUT, &format!("{fresh}?digest={digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert!(reg
            .server
            .state
            .ecr
            .blobs
            .list_uploads()
            .await
            .unwrap()
            .is_empty());
        if let Some(dir) = &reg.server.state.config.data_dir {
            assert_eq!(std::fs::read_dir(dir.join("uploads")).unwrap().count(), 0);
        }
        reg.server.stop().await;
    }
}

#[tokio::test]
async fn the_endpoint_takes_a_grace_and_refuses_nonsense() {
    let reg = Reg::start(Backend::Memory).await;
    reg.create_repo("now").await;
    let digest = reg
        .push_image("now", "x", b"{\"now\":1}", &[b"now layer"])
        .await;
    reg.delete_manifest("now", &digest).await;
    // Query parameter form, grace 0: unused now means gone now.
    let r = reg
        .http
        .post(format!("{}/_ecrd/gc?graceSeconds=0", reg.server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["graceSeconds"], 0);
    assert_eq!(strings(&report["blobsDeleted"]).len(), 2, "{report}");
    for key in [
        "blobBytesFreed",
        "blobsKept",
        "layersUnlinked",
        "uploadsRemoved",
        "uploadBytesFreed",
        "durationMs",
    ] {
        assert!(report.get(key).is_some(), "{key} missing: {report}");
    }
    for bad in [r#"{"graceSeconds":-1}"#, r#"{"grace":1}"#, "not json"] {
        let r = reg
            .http
            .post(format!("{}/_ecrd/gc", reg.server.url))
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["__type"], "InvalidParameterException");
    }
    reg.server.stop().await;
}

#[tokio::test]
async fn a_background_collection_runs_every_interval() {
    for &backend in BACKENDS {
        let reg = Reg::start_with(backend, |c| c.gc_interval = 1).await;
        reg.create_repo("bg").await;
        let digest = reg
            .push_image("bg", "x", b"{\"bg\":1}", &[b"background layer"])
            .await;
        reg.delete_manifest("bg", &digest).await;
        reg.advance(2 * HOUR);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !reg.stored().await.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "{backend:?}: the background collection did not run"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reg.server.stop().await;
    }
}

/// Old garbage and new pushes of the very same content meet: collections
/// run back to back while pushers push images made of the blobs being
/// collected (and new ones). Every acknowledged image stays whole. The
/// clock is far ahead, so blob times give no protection: only the
/// collection's ordering does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collecting_while_pushing_loses_nothing() {
    for &backend in BACKENDS {
        let reg = Arc::new(Reg::start(backend).await);
        reg.create_repo("race").await;
        let content = |i: usize| -> (Vec<u8>, Vec<u8>) {
            (
                format!("{{\"race\":{i}}}").into_bytes(),
                format!("layer {i} ").repeat(2000).into_bytes(),
            )
        };
        // Garbage: images pushed, then deleted, then aged past the grace.
        for i in 0..8 {
            let (c, l) = content(i);
            let d = reg.push_image("race", &format!("old{i}"), &c, &[&l]).await;
            reg.delete_manifest("race", &d).await;
        }
        reg.advance(3 * HOUR);

        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let collector = {
            let (reg, stop) = (reg.clone(), stop.clone());
            tokio::spawn(async move {
                let mut runs = 0;
                let mut deleted = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let report = reg.gc(None).await;
                    deleted += report["blobsDeleted"].as_array().unwrap().len();
                    runs += 1;
                }
                (runs, deleted)
            })
        };
        let mut pushers = Vec::new();
        for p in 0..4usize {
            let reg = reg.clone();
            pushers.push(tokio::spawn(async move {
                let mut pushed = Vec::new();
                for round in 0..6usize {
                    // Half re-push collected content, half is new.
                    let i = if round % 2 == 0 {
                        (p + round) % 8
                    } else {
                        100 + p * 10 + round
                    };
                    let (c, l) = content(i);
                    let tag = format!("p{p}r{round}");
                    reg.push_image("race", &tag, &c, &[&l]).await;
                    pushed.push((tag, c, l));
                }
                pushed
            }));
        }
        let mut pushed = Vec::new();
        for p in pushers {
            pushed.extend(p.await.unwrap());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (runs, deleted) = collector.await.unwrap();
        assert!(runs >= 2, "{backend:?}: only {runs} collections ran");
        assert!(deleted > 0, "{backend:?}: the old garbage was collected");
        // And once more, with everything settled.
        reg.gc(None).await;
        for (tag, c, l) in &pushed {
            let r = reg
                .req(Method::GET, &format!("/v2/race/manifests/{tag}"))
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{backend:?} {tag}");
            assert_eq!(reg.pull_blob("race", &sha256(c)).await, *c, "{tag}");
            assert_eq!(reg.pull_blob("race", &sha256(l)).await, *l, "{tag}");
        }
        match Arc::try_unwrap(reg) {
            Ok(reg) => reg.server.stop().await,
            Err(_) => panic!("registry client still shared"),
        }
    }
}

/// A blob whose file no longer has its digest is never served whole: the
/// response stops short of its Content-Length and the blob is set aside
/// (it reads as absent until pushed again). The scrub (`POST
/// /_ecrd/scrub`) finds rot no read has met. Memory keeps nothing to scrub.
#[tokio::test]
async fn a_corrupt_blob_is_never_served_whole_and_the_scrub_sets_it_aside() {
    use common::registry::Registry;
    for backend in BACKENDS {
        let server = TestServer::start(*backend).await;
        server
            .ecr()
            .create_repository()
            .repository_name("integrity")
            .send()
            .await
            .unwrap();
        let reg = Registry::login(&server).await;
        let a: Vec<u8> = (0..(3 << 20) + 11).map(|i| (i % 253) as u8).collect();
        let b: Vec<u8> = (0..(1 << 20) + 7).map(|i| (i % 241) as u8).collect();
        let da = reg.push_blob("integrity", &a).await.unwrap();
        let db = reg.push_blob("integrity", &b).await.unwrap();
        let scrub = || async {
            let r = server
                .http()
                .post(format!("{}/_ecrd/scrub", server.url))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        };
        let report = scrub().await;
        if server.state.config.blobs_url.is_some() {
            // A bucket's blobs are re-hashed too; rot in the bucket is
            // `store::s3_blobs::tests::a_corrupt_object_is_never_streamed_whole`.
            assert_eq!(report["corrupt"], json!([]), "{report}");
            assert!(report["checked"].as_u64().unwrap() >= 2, "{report}");
            continue;
        }
        let Some(dir) = server.state.config.data_dir.clone() else {
            assert_eq!(report, json!({"checked": 0, "corrupt": []}), "{backend:?}");
            continue;
        };
        assert_eq!(report["corrupt"], json!([]), "{report}");
        assert!(report["checked"].as_u64().unwrap() >= 2, "{report}");
        let file = |digest: &str| {
            let hex = digest.trim_start_matches("sha256:");
            dir.join("blobs/sha256").join(&hex[..2]).join(hex)
        };

        // One byte of A rots in place (same length): a whole GET sends
        // less than its Content-Length, then the blob is gone.
        let mut rotten = a.clone();
        rotten[5] ^= 0x20;
        std::fs::write(file(&da), &rotten).unwrap();
        let r = reg
            .req(Method::GET, &format!("/v2/integrity/blobs/{da}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.content_length(), Some(a.len() as u64));
        assert!(r.bytes().await.is_err(), "a corrupt blob was served whole");
        let gone = reg.get_blob("integrity", &da, None).await.unwrap_err();
        assert_eq!((gone.status, gone.code.as_str()), (404, "BLOB_UNKNOWN"));
        // Pushed again, it is whole again.
        reg.push_blob("integrity", &a).await.unwrap();
        assert_eq!(reg.get_blob("integrity", &da, None).await.unwrap(), a);

        // B rots where no read looks: the scrub finds it.
        let mut rotten = b.clone();
        rotten[b.len() - 1] ^= 0x01;
        std::fs::write(file(&db), &rotten).unwrap();
        let report = scrub().await;
        assert_eq!(report["corrupt"], json!([db]), "{report}");
        let gone = reg.get_blob("integrity", &db, None).await.unwrap_err();
        assert_eq!(gone.status, 404);
        assert_eq!(dir.join("corrupt").read_dir().unwrap().count(), 2);
        server.stop().await;
    }
}

//! Many clients at once over `/v2/`: the same blob pushed by many, one tag
//! moved by many, and pushes racing a forced DeleteRepository. Every
//! backend, on a multi-threaded runtime so requests really overlap.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine;
use common::{err_code, Backend, TestServer, BACKENDS};
use ecrd::digest::Digest;
use ecrd::store::Table;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

fn sha256(data: &[u8]) -> String {
    Digest::sha256_of(data).to_string()
}

struct Reg {
    server: TestServer,
    http: reqwest::Client,
    auth: String,
}

impl Reg {
    async fn start(backend: Backend) -> Arc<Reg> {
        let server = TestServer::start(backend).await;
        let out = server.ecr().get_authorization_token().send().await.unwrap();
        let token = out.authorization_data()[0]
            .authorization_token()
            .unwrap()
            .to_string();
        assert!(base64::engine::general_purpose::STANDARD
            .decode(&token)
            .unwrap()
            .starts_with(b"AWS:"));
        Arc::new(Reg {
            server,
            http: reqwest::Client::new(),
            auth: format!("Basic {token}"),
        })
    }

    async fn stop(self: Arc<Self>) {
        match Arc::try_unwrap(self) {
            Ok(reg) => reg.server.stop().await,
            Err(_) => panic!("registry client still shared"),
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.server.url)
        };
        self.http
            .request(method, url)
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

    /// Monolithic upload: the status.
    async fn post_blob(&self, repo: &str, data: &[u8]) -> reqwest::Response {
        self.req(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(data)),
        )
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
    }

    /// Session, two PATCHes, final PUT: the final answer (or the first
    /// failing one).
    async fn chunked_blob(&self, repo: &str, data: &[u8]) -> reqwest::Response {
        let r = self
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        if r.status() != StatusCode::ACCEPTED {
            return r;
        }
        let mut location = r.headers()["location"].to_str().unwrap().to_string();
        let half = data.len() / 2;
        for (start, chunk) in [(0, &data[..half]), (half, &data[half..])] {
            let r = self
                .req(Method::PATCH, &location)
                .header(
                    "content-range",
                    format!("{start}-{}", start + chunk.len() - 1),
                )
                .body(chunk.to_vec())
                .send()
                .await
                .unwrap();
            if r.status() != StatusCode::ACCEPTED {
                return r;
            }
            location = r.headers()["location"].to_str().unwrap().to_string();
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        self.req(
            Method::PUT,
            &format!("{location}{sep}digest={}", sha256(data)),
        )
        .send()
        .await
        .unwrap()
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

    async fn get(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let r = self
            .req(Method::GET, path)
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        (r.status(), r.bytes().await.unwrap().to_vec())
    }
}

/// The registry error code of an answer, if it has one.
async fn code_of(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        body["errors"][0]["code"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_push_the_same_blob_at_once() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("same/one").await;
        reg.create_repo("same/two").await;
        let data: Arc<Vec<u8>> = Arc::new((0..600_000u32).map(|i| (i % 251) as u8).collect());
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (reg, data) = (reg.clone(), data.clone());
            tasks.push(tokio::spawn(async move {
                let repo = if i % 2 == 0 { "same/one" } else { "same/two" };
                let r = if i % 4 < 2 {
                    reg.post_blob(repo, &data).await
                } else {
                    reg.chunked_blob(repo, &data).await
                };
                let status = r.status();
                let digest = r
                    .headers()
                    .get("docker-content-digest")
                    .map(|v| v.to_str().unwrap().to_string());
                (status, digest, r.text().await.unwrap())
            }));
        }
        let digest = sha256(&data);
        for t in tasks {
            let (status, answered, body) = t.await.unwrap();
            assert_eq!(status, 201, "{backend:?}: {body}");
            assert_eq!(answered.as_deref(), Some(digest.as_str()));
        }
        // One copy, nothing left over, the right bytes in both repositories.
        let listed = reg.server.state.ecr.blobs.list().await.unwrap();
        assert_eq!(
            listed.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            vec![digest.clone()]
        );
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
            let hex = &digest["sha256:".len()..];
            let fan = dir.join("blobs/sha256").join(&hex[..2]);
            let names: Vec<_> = std::fs::read_dir(&fan)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, vec![std::ffi::OsString::from(hex)]);
            for scratch in ["uploads", "tmp"] {
                assert_eq!(std::fs::read_dir(dir.join(scratch)).unwrap().count(), 0);
            }
        }
        for repo in ["same/one", "same/two"] {
            let (status, body) = reg.get(&format!("/v2/{repo}/blobs/{digest}")).await;
            assert_eq!(status, 200);
            assert!(body == *data, "{backend:?} {repo}: the blob's bytes differ");
        }
        reg.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_move_one_tag_at_once() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("tagged").await;
        let config = b"{\"shared\":\"config\"}";
        assert_eq!(reg.post_blob("tagged", config).await.status(), 201);
        let mut manifests = Vec::new();
        for i in 0..12 {
            let layer = format!("layer of contender {i}").into_bytes();
            assert_eq!(reg.post_blob("tagged", &layer).await.status(), 201);
            manifests.push(Reg::manifest(config, &[&layer]));
        }
        let mut tasks = Vec::new();
        for m in &manifests {
            let (reg, m) = (reg.clone(), m.clone());
            tasks.push(tokio::spawn(async move {
                let r = reg.put_manifest("tagged", "latest", &m).await;
                (r.status(), r.text().await.unwrap())
            }));
        }
        for t in tasks {
            let (status, body) = t.await.unwrap();
            assert_eq!(status, 201, "{backend:?}: {body}");
        }
        let digests: HashSet<String> = manifests.iter().map(|m| sha256(m.as_bytes())).collect();

        // The tag names one of them, and it is the only tagged image.
        let (status, body) = reg.get("/v2/tagged/manifests/latest").await;
        assert_eq!(status, 200);
        let winner = sha256(&body);
        assert!(digests.contains(&winner));
        let images = reg
            .server
            .ecr()
            .describe_images()
            .repository_name("tagged")
            .send()
            .await
            .unwrap();
        let details = images.image_details();
        assert_eq!(details.len(), manifests.len(), "{backend:?}");
        for d in details {
            let digest = d.image_digest().unwrap();
            if digest == winner {
                assert_eq!(d.image_tags(), ["latest".to_string()]);
            } else {
                assert!(d.image_tags().is_empty(), "{digest}: {:?}", d.image_tags());
            }
        }
        // Every image the tag left is untagged but whole.
        for m in &manifests {
            let digest = sha256(m.as_bytes());
            let (status, body) = reg.get(&format!("/v2/tagged/manifests/{digest}")).await;
            assert_eq!(status, 200);
            assert_eq!(body, m.as_bytes());
        }
        let (_, tags) = reg.get("/v2/tagged/tags/list").await;
        let tags: Value = serde_json::from_slice(&tags).unwrap();
        assert_eq!(tags["tags"], json!(["latest"]));
        reg.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_racing_a_forced_repository_delete() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("doomed").await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pushed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut pushers = Vec::new();
        for p in 0..4usize {
            let (reg, stop, pushed) = (reg.clone(), stop.clone(), pushed.clone());
            pushers.push(tokio::spawn(async move {
                let mut answers: Vec<(u16, String)> = Vec::new();
                let mut round = 0usize;
                // Push until the repository is gone and a few pushes after.
                let mut after = 0;
                while after < 3 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        after += 1;
                    }
                    let config = format!("{{\"p\":{p},\"r\":{round}}}").into_bytes();
                    let layer = format!("layer {p}/{round} ").repeat(500).into_bytes();
                    let mut failed = None;
                    for (i, blob) in [&config, &layer].into_iter().enumerate() {
                        let r = if (round + i).is_multiple_of(2) {
                            reg.post_blob("doomed", blob).await
                        } else {
                            reg.chunked_blob("doomed", blob).await
                        };
                        if r.status() != 201 {
                            failed = Some(code_of(r).await);
                            break;
                        }
                    }
                    let answer = match failed {
                        Some(f) => f,
                        None => {
                            let m = Reg::manifest(&config, &[&layer]);
                            let r = reg
                                .put_manifest("doomed", &format!("p{p}-{}", round % 3), &m)
                                .await;
                            if r.status() == 201 {
                                pushed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                (201, String::new())
                            } else {
                                code_of(r).await
                            }
                        }
                    };
                    answers.push(answer);
                    round += 1;
                }
                answers
            }));
        }
        // Delete once pushes are well under way, in the middle of some.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while pushed.load(std::sync::atomic::Ordering::Relaxed) < 6 {
            assert!(std::time::Instant::now() < deadline, "pushes do not finish");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        reg.server
            .ecr()
            .delete_repository()
            .repository_name("doomed")
            .force(true)
            .send()
            .await
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut successes = 0;
        for p in pushers {
            let answers = p.await.unwrap();
            // Each pusher's last pushes came after the delete.
            for (status, code) in &answers[answers.len() - 2..] {
                assert_eq!(
                    (*status, code.as_str()),
                    (404, "NAME_UNKNOWN"),
                    "{backend:?}"
                );
            }
            for (status, code) in &answers {
                match (*status, code.as_str()) {
                    (201, _) => successes += 1,
                    // The repository went between two steps of a push.
                    (404, "NAME_UNKNOWN" | "BLOB_UPLOAD_UNKNOWN")
                    | (400, "MANIFEST_BLOB_UNKNOWN") => {}
                    other => panic!("{backend:?}: unexpected answer {other:?}"),
                }
            }
        }
        assert!(
            successes > 0,
            "{backend:?}: no push finished before the delete"
        );

        // Gone entirely: no repository, no image, tag, layer or referrer
        // record of it, and nothing to see through either plane.
        let err = reg
            .server
            .ecr()
            .describe_images()
            .repository_name("doomed")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
        let prefix = "000000000000/us-east-1/doomed";
        {
            let tx = reg.server.state.ecr.store.read().unwrap();
            for table in [Table::Images, Table::Tags, Table::Layers, Table::Referrers] {
                let left = tx.scan(table, prefix, None, 10).unwrap();
                assert!(left.is_empty(), "{backend:?} {table:?}: {left:?}");
            }
        }
        let (status, _) = reg.get("/v2/doomed/tags/list").await;
        assert_eq!(status, 404);
        // A collection then frees what the pushes left (sessions the
        // delete cut short, blobs nothing uses).
        reg.server.state.ecr.clock.advance(time::Duration::hours(2));
        reg.server
            .state
            .ecr
            .collect_garbage(std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(reg.server.state.ecr.blobs.list().await.unwrap().is_empty());
        assert!(reg
            .server
            .state
            .ecr
            .blobs
            .list_uploads()
            .await
            .unwrap()
            .is_empty());
        {
            let tx = reg.server.state.ecr.store.read().unwrap();
            assert!(tx.scan(Table::Uploads, "", None, 10).unwrap().is_empty());
        }
        // A new repository of the same name starts empty.
        reg.create_repo("doomed").await;
        let (status, body) = reg.get("/v2/doomed/tags/list").await;
        assert_eq!(status, 200);
        let tags: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            tags["tags"].as_array().is_none_or(|t| t.is_empty()),
            "{tags}"
        );
        reg.stop().await;
    }
}

//! A small in-test upstream registry for the pull-through cache tests: the
//! OCI pull API (manifests by tag or digest, blobs) over images held in
//! memory, with anonymous, Basic or Bearer-token authentication (a token
//! endpoint on the same server, as Docker Hub's `auth.docker.io` works), a
//! switch that corrupts blob bodies, a gate that holds back the second half
//! of every blob body until released, and counts of manifest and blob GETs.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine;

use super::sha256_digest;

/// How the upstream authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAuth {
    Anonymous,
    Basic { username: String, password: String },
    Bearer { username: String, password: String },
}

#[derive(Default)]
struct Content {
    /// (repository, reference) → (media type, manifest bytes).
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
}

struct Shared {
    auth: UpstreamAuth,
    content: Mutex<Content>,
    corrupt_blobs: AtomicBool,
    /// While closed (`Some`), blob bodies stop half way until it opens.
    blob_gate: Mutex<Option<tokio::sync::watch::Receiver<bool>>>,
    manifest_gets: AtomicUsize,
    blob_gets: AtomicUsize,
    token: String,
}

pub struct Upstream {
    pub url: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A pushed image: its manifest digest and the digests of its blobs.
pub struct UpstreamImage {
    pub digest: String,
    pub manifest: Vec<u8>,
    pub blobs: Vec<(String, Vec<u8>)>,
}

impl Upstream {
    pub async fn start(auth: UpstreamAuth) -> Self {
        let shared = Arc::new(Shared {
            auth,
            content: Mutex::new(Content::default()),
            corrupt_blobs: AtomicBool::new(false),
            blob_gate: Mutex::new(None),
            manifest_gets: AtomicUsize::new(0),
            blob_gets: AtomicUsize::new(0),
            token: format!("tok-{}", uuid::Uuid::new_v4()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/token", get(token))
            .route("/v2/", any(v2))
            .route("/v2/{*rest}", any(v2))
            .with_state(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Upstream {
            url: format!("http://{addr}"),
            shared,
            shutdown: Some(tx),
        }
    }

    /// Stops answering (connections are refused from now on).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    pub fn manifest_gets(&self) -> usize {
        self.shared.manifest_gets.load(Ordering::SeqCst)
    }

    /// Blob GETs answered (each a fetch of the blob's body).
    pub fn blob_gets(&self) -> usize {
        self.shared.blob_gets.load(Ordering::SeqCst)
    }

    pub fn corrupt_blobs(&self, on: bool) {
        self.shared.corrupt_blobs.store(on, Ordering::SeqCst);
    }

    /// Blob bodies served from now on send their first half, then wait
    /// until the returned sender sends `true`.
    pub fn hold_blobs(&self) -> tokio::sync::watch::Sender<bool> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        *self.shared.blob_gate.lock().unwrap() = Some(rx);
        tx
    }

    /// Adds a blob of `bytes` (referenced by no manifest) and returns its digest.
    pub fn add_blob(&self, bytes: Vec<u8>) -> String {
        let digest = sha256_digest(&bytes);
        self.shared
            .content
            .lock()
            .unwrap()
            .blobs
            .insert(digest.clone(), bytes);
        digest
    }

    /// Adds an image (a config and one layer made from `seed`) under `tag`.
    pub fn add_image(&self, repository: &str, tag: &str, seed: &str) -> UpstreamImage {
        let config =
            format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#).into_bytes();
        let layer = format!("upstream layer of {seed}").repeat(50).into_bytes();
        let (c, l) = (sha256_digest(&config), sha256_digest(&layer));
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{c}"}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{},"digest":"{l}"}}]}}"#,
            config.len(),
            layer.len()
        )
        .into_bytes();
        let digest = sha256_digest(&manifest);
        let mut content = self.shared.content.lock().unwrap();
        content.blobs.insert(c.clone(), config.clone());
        content.blobs.insert(l.clone(), layer.clone());
        let entry = (
            "application/vnd.oci.image.manifest.v1+json".to_string(),
            manifest.clone(),
        );
        content
            .manifests
            .insert((repository.into(), digest.clone()), entry.clone());
        content
            .manifests
            .insert((repository.into(), tag.into()), entry);
        UpstreamImage {
            digest,
            manifest,
            blobs: vec![(c, config), (l, layer)],
        }
    }

    /// Adds an OCI index listing `children` (already added) under `tag`.
    pub fn add_index(&self, repository: &str, tag: &str, children: &[&UpstreamImage]) -> String {
        let entries: Vec<String> = children
            .iter()
            .map(|c| {
                format!(
                    r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":{},"digest":"{}","platform":{{"architecture":"amd64","os":"linux"}}}}"#,
                    c.manifest.len(),
                    c.digest
                )
            })
            .collect();
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            entries.join(",")
        )
        .into_bytes();
        let digest = sha256_digest(&index);
        let entry = ("application/vnd.oci.image.index.v1+json".to_string(), index);
        let mut content = self.shared.content.lock().unwrap();
        content
            .manifests
            .insert((repository.into(), digest.clone()), entry.clone());
        content
            .manifests
            .insert((repository.into(), tag.into()), entry);
        digest
    }
}

fn basic_of(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization").and_then(|v| v.to_str().ok())
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Query(_params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match &shared.auth {
        UpstreamAuth::Bearer { username, password }
            if authorization(&headers) == Some(basic_of(username, password).as_str()) =>
        {
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                format!(r#"{{"token":"{}"}}"#, shared.token),
            )
                .into_response()
        }
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// The 401 answer asking for the upstream's kind of authentication.
fn challenge(shared: &Shared, host: &str, path: &str) -> Option<Response> {
    let header = match &shared.auth {
        UpstreamAuth::Anonymous => return None,
        UpstreamAuth::Basic { .. } => r#"Basic realm="test upstream""#.to_string(),
        UpstreamAuth::Bearer { .. } => {
            let scope = path
                .strip_prefix("/v2/")
                .and_then(|r| {
                    r.rsplit_once("/manifests/")
                        .or_else(|| r.rsplit_once("/blobs/"))
                })
                .map(|(name, _)| format!(r#",scope="repository:{name}:pull""#))
                .unwrap_or_default();
            format!(r#"Bearer realm="http://{host}/token",service="test-upstream"{scope}"#)
        }
    };
    Some((StatusCode::UNAUTHORIZED, [("www-authenticate", header)], "").into_response())
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let expected = match &shared.auth {
        UpstreamAuth::Anonymous => return true,
        UpstreamAuth::Basic { username, password } => basic_of(username, password),
        UpstreamAuth::Bearer { .. } => format!("Bearer {}", shared.token),
    };
    authorization(headers) == Some(expected.as_str())
}

async fn v2(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    if !authorized(&shared, &headers) {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_string();
        if let Some(r) = challenge(&shared, &host, &path) {
            return r;
        }
    }
    if path == "/v2/" {
        return (StatusCode::OK, "{}").into_response();
    }
    let rest = path.strip_prefix("/v2/").unwrap_or("");
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        let content = shared.content.lock().unwrap();
        let Some((media_type, bytes)) = content
            .manifests
            .get(&(repo.to_string(), reference.to_string()))
            .cloned()
        else {
            return (
                StatusCode::NOT_FOUND,
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
            )
                .into_response();
        };
        if method == Method::GET {
            shared.manifest_gets.fetch_add(1, Ordering::SeqCst);
        }
        let digest = sha256_digest(&bytes);
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(bytes.clone())
        };
        let mut response = (StatusCode::OK, body).into_response();
        let h = response.headers_mut();
        h.insert("content-type", media_type.parse().unwrap());
        h.insert("docker-content-digest", digest.parse().unwrap());
        h.insert("content-length", bytes.len().to_string().parse().unwrap());
        return response;
    }
    if let Some((_repo, digest)) = rest.rsplit_once("/blobs/") {
        let content = shared.content.lock().unwrap();
        let Some(mut bytes) = content.blobs.get(digest).cloned() else {
            return StatusCode::NOT_FOUND.into_response();
        };
        drop(content);
        if method == Method::GET {
            shared.blob_gets.fetch_add(1, Ordering::SeqCst);
        }
        if shared.corrupt_blobs.load(Ordering::SeqCst) {
            if let Some(b) = bytes.last_mut() {
                *b ^= 0xff;
            }
        }
        let gate = shared.blob_gate.lock().unwrap().clone();
        if let Some(mut gate) = gate {
            let second = bytes.split_off(bytes.len() / 2);
            let length = bytes.len() + second.len();
            let first = futures_util::stream::once(async move {
                Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))
            });
            let rest = futures_util::stream::once(async move {
                let _ = gate.wait_for(|open| *open).await;
                Ok::<_, std::io::Error>(bytes::Bytes::from(second))
            });
            let mut response = (
                StatusCode::OK,
                Body::from_stream(futures_util::StreamExt::chain(first, rest)),
            )
                .into_response();
            response
                .headers_mut()
                .insert("content-length", length.to_string().parse().unwrap());
            return response;
        }
        return (StatusCode::OK, bytes).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

//! A registry (`/v2/`) client over reqwest for tests that drive the OCI
//! plane by hand: logged in the ECR way, pushing blobs (monolithic or in
//! chunks) and manifests, pulling with digest checks, deleting manifests.
//! Failures are returned as the answer's status and registry error code,
//! so a caller can tell an expected race from a bug.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{registry_authorization, sha256_digest, TestServer};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// What the registry answered when it did not answer success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// The first `errors[].code` (empty when the body has none).
    pub code: String,
    pub body: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.body)
    }
}

async fn refusal(r: reqwest::Response) -> Refusal {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["errors"][0]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    Refusal { status, code, body }
}

/// A connection-pooling `/v2/` client of one server, logged in with the
/// default account's registry password.
#[derive(Clone)]
pub struct Registry {
    pub url: String,
    pub http: reqwest::Client,
    pub auth: String,
}

impl Registry {
    pub async fn login(server: &TestServer) -> Registry {
        Registry {
            url: server.url.clone(),
            http: reqwest::Client::new(),
            auth: registry_authorization(&server.ecr()).await,
        }
    }

    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.url)
        };
        self.http
            .request(method, url)
            .header("authorization", &self.auth)
    }

    /// One `POST ?digest=` with the whole blob; its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Result<String, Refusal> {
        let digest = sha256_digest(data);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            )
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        if r.status() != StatusCode::CREATED {
            return Err(refusal(r).await);
        }
        Ok(digest)
    }

    /// A session, one `PATCH` per chunk of `chunk` bytes, the final `PUT`;
    /// the blob's digest.
    pub async fn push_blob_chunked(
        &self,
        repo: &str,
        data: &[u8],
        chunk: usize,
    ) -> Result<String, Refusal> {
        let digest = sha256_digest(data);
        let r = self
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        if r.status() != StatusCode::ACCEPTED {
            return Err(refusal(r).await);
        }
        let mut location = r.headers()["location"].to_str().unwrap().to_string();
        for (i, part) in data.chunks(chunk.max(1)).enumerate() {
            let start = i * chunk.max(1);
            let r = self
                .req(Method::PATCH, &location)
                .header(
                    "content-range",
                    format!("{start}-{}", start + part.len() - 1),
                )
                .header("content-type", "application/octet-stream")
                .body(part.to_vec())
                .send()
                .await
                .unwrap();
            if r.status() != StatusCode::ACCEPTED {
                return Err(refusal(r).await);
            }
            location = r.headers()["location"].to_str().unwrap().to_string();
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let r = self
            .req(Method::PUT, &format!("{location}{sep}digest={digest}"))
            .send()
            .await
            .unwrap();
        if r.status() != StatusCode::CREATED {
            return Err(refusal(r).await);
        }
        Ok(digest)
    }

    /// An OCI image manifest of `config` and `layers` (already pushed).
    pub fn manifest(config: &[u8], layers: &[&[u8]]) -> String {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": config.len()},
            "layers": layers.iter().map(|l| json!({
                "mediaType": OCI_LAYER, "digest": sha256_digest(l), "size": l.len()
            })).collect::<Vec<_>>(),
        })
        .to_string()
    }

    /// `PUT /v2/<repo>/manifests/<reference>`; the manifest's digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &str,
    ) -> Result<String, Refusal> {
        let r = self
            .req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.to_string())
            .send()
            .await
            .unwrap();
        if r.status() != StatusCode::CREATED {
            return Err(refusal(r).await);
        }
        let digest = sha256_digest(manifest.as_bytes());
        let answered = r.headers()["docker-content-digest"].to_str().unwrap();
        assert_eq!(
            answered, digest,
            "Docker-Content-Digest of a pushed manifest"
        );
        Ok(digest)
    }

    /// `GET` a manifest by tag or digest: its bytes, checked against the
    /// `Docker-Content-Digest` answered (and `reference`, when a digest).
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Vec<u8>, Refusal> {
        let r = self
            .req(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        if r.status() != StatusCode::OK {
            return Err(refusal(r).await);
        }
        let answered = r.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_string();
        let bytes = r.bytes().await.unwrap().to_vec();
        assert_eq!(sha256_digest(&bytes), answered, "{repo}@{reference}");
        if reference.starts_with("sha256:") {
            assert_eq!(answered, reference, "{repo}@{reference}");
        }
        Ok(bytes)
    }

    /// `GET` a blob (following the redirect to its signed URL), checked
    /// against its digest and, when given, its size.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &str,
        size: Option<u64>,
    ) -> Result<Vec<u8>, Refusal> {
        let r = self
            .req(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        if r.status() != StatusCode::OK {
            return Err(refusal(r).await);
        }
        let bytes = r.bytes().await.unwrap().to_vec();
        assert_eq!(sha256_digest(&bytes), digest, "blob {digest} of {repo}");
        if let Some(size) = size {
            assert_eq!(bytes.len() as u64, size, "blob {digest} of {repo}");
        }
        Ok(bytes)
    }

    /// `DELETE /v2/<repo>/manifests/<digest>`.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<(), Refusal> {
        let r = self
            .req(Method::DELETE, &format!("/v2/{repo}/manifests/{digest}"))
            .send()
            .await
            .unwrap();
        if r.status() != StatusCode::ACCEPTED {
            return Err(refusal(r).await);
        }
        Ok(())
    }
}

/// The `(digest, size)` of a manifest's config and layers.
pub fn manifest_blobs(manifest: &[u8]) -> Vec<(String, u64)> {
    let value: Value = serde_json::from_slice(manifest).unwrap();
    std::iter::once(&value["config"])
        .chain(value["layers"].as_array().into_iter().flatten())
        .map(|d| {
            (
                d["digest"].as_str().unwrap().to_string(),
                d["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

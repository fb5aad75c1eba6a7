//! A client for upstream registries: what the pull through cache
//! (`ecr::pull_through`) uses to read manifests and blobs from the registry
//! a rule names. It speaks the OCI Distribution Specification v1.1 pull
//! API ("Pulling manifests", "Pulling blobs") and the token authentication
//! registries use (Docker's "Token Authentication Specification": a `401`
//! with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, a token
//! fetched from the realm with the credentials, the request retried with
//! `Authorization: Bearer <token>`), or a `Basic` challenge answered with
//! the credentials directly. Anonymous upstreams need neither.
//!
//! Bodies are streamed, never buffered whole (a layer can be gigabytes);
//! only manifests, which are small and bounded, are read into memory.
//! The module knows no ECR rule: it returns bytes and what the upstream
//! said about them, and the domain decides. An ECR upstream's Basic
//! password comes from logging in first ([`ecr_login`]).

pub mod ecr_login;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use futures_util::TryStreamExt;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};

use crate::store::blobs::ByteStream;

/// The media types a manifest request accepts: every manifest and index
/// type ECR stores.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, \
application/vnd.docker.distribution.manifest.v1+json";

/// Largest manifest read from an upstream (ECR's own manifest limit).
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Credentials for an upstream, from a rule's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Why an upstream request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// The upstream could not be reached (connection refused, timeout, TLS).
    Unreachable(String),
    /// The upstream refused the credentials (401/403 after authenticating).
    Unauthorized(String),
    /// The upstream does not have the manifest or blob (404).
    NotFound(String),
    /// Any other answer the client cannot use.
    Protocol(String),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Unreachable(m)
            | UpstreamError::Unauthorized(m)
            | UpstreamError::NotFound(m)
            | UpstreamError::Protocol(m) => f.write_str(m),
        }
    }
}

/// A manifest as the upstream served it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub media_type: Option<String>,
    /// The upstream's `Docker-Content-Digest`, if it sent one.
    pub digest: Option<String>,
}

/// A blob's bytes as they arrive, and the length the upstream announced.
pub struct FetchedBlob {
    pub length: Option<u64>,
    pub body: ByteStream,
}

/// One upstream registry, reached at `base` (`https://ghcr.io`,
/// `http://127.0.0.1:5000`), with optional credentials.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
    credentials: Option<Credentials>,
    /// For an ECR upstream: the login that yields the Basic password.
    login: Option<ecr_login::EcrLogin>,
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

fn parse_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let value = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    for (key, val) in challenge_params(rest) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(val),
            "service" => service = Some(val),
            "scope" => scope = Some(val),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

/// `key="value",key=value` pairs; quoted values may hold commas.
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_string(), &after[end..]),
                None => (after.trim().to_string(), ""),
            }
        };
        out.push((key, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// How long an upstream may take to connect, and to send the next bytes
/// of an answer: an upstream that stalls longer fails the fetch (and a
/// background import with it, so the next pull starts again) instead of
/// holding it forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
}

fn unreachable(e: reqwest::Error) -> UpstreamError {
    UpstreamError::Unreachable(format!("the upstream registry could not be reached: {e}"))
}

impl RegistryClient {
    pub fn new(base: &str, credentials: Option<Credentials>) -> Self {
        let http = http_builder().build().unwrap_or_default();
        RegistryClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            credentials,
            login: None,
        }
    }

    /// The same client, answering a Basic challenge with the password an
    /// ECR login yields (user `AWS`) instead of fixed credentials.
    pub fn with_login(mut self, login: ecr_login::EcrLogin) -> Self {
        self.login = Some(login);
        self
    }

    /// A client for a registry named `host` that is reached at `addr` over
    /// plain HTTP, whatever `host` resolves to (this ecrd's own registry,
    /// which picks the registry by the host name).
    pub fn resolving(
        host: &str,
        addr: std::net::SocketAddr,
        credentials: Option<Credentials>,
    ) -> Self {
        let http = http_builder()
            .resolve(host, addr)
            .build()
            .unwrap_or_default();
        RegistryClient {
            http,
            base: format!("http://{host}:{}", addr.port()),
            credentials,
            login: None,
        }
    }

    /// The Basic `Authorization` value, if the client has credentials.
    async fn basic(&self) -> Result<Option<String>, UpstreamError> {
        let credentials = match &self.login {
            Some(login) => Some(Credentials {
                username: "AWS".to_string(),
                password: login.password(&self.http).await?,
            }),
            None => self.credentials.clone(),
        };
        Ok(credentials.map(|c| {
            format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", c.username, c.password))
            )
        }))
    }

    /// Answers a challenge: the `Authorization` value to retry with.
    async fn authorization(
        &self,
        challenge: &Challenge,
        repository: Option<&str>,
    ) -> Result<String, UpstreamError> {
        match challenge {
            Challenge::Basic => self.basic().await?.ok_or_else(|| {
                UpstreamError::Unauthorized(
                    "the upstream registry requires authentication and the rule has no credentials"
                        .to_string(),
                )
            }),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut query: Vec<(&str, String)> = Vec::new();
                if let Some(s) = service {
                    query.push(("service", s.clone()));
                }
                let scope = scope
                    .clone()
                    .or_else(|| repository.map(|r| format!("repository:{r}:pull")));
                if let Some(s) = scope {
                    query.push(("scope", s));
                }
                let mut request = self.http.get(realm).query(&query);
                if let Some(basic) = self.basic().await? {
                    request = request.header(AUTHORIZATION, basic);
                }
                let response = request.send().await.map_err(unreachable)?;
                if !response.status().is_success() {
                    return Err(UpstreamError::Unauthorized(format!(
                        "the upstream registry's token service answered {}",
                        response.status()
                    )));
                }
                // Bytes then serde_json: reqwest's `json` feature is only
                // enabled for the tests, so `cargo build --bin ecrd` has no
                // `Response::json`.
                let no_token = |e: String| {
                    UpstreamError::Protocol(format!(
                        "the upstream registry's token service answered no token: {e}"
                    ))
                };
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| no_token(e.to_string()))?;
                let body: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| no_token(e.to_string()))?;
                let token = body
                    .get("token")
                    .or_else(|| body.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| {
                        UpstreamError::Protocol(
                            "the upstream registry's token service answered no token".to_string(),
                        )
                    })?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    /// Sends a request, answering one authentication challenge.
    async fn send(
        &self,
        method: Method,
        path: &str,
        repository: Option<&str>,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = format!("{}{path}", self.base);
        let build = |auth: Option<&str>| {
            let mut r = self.http.request(method.clone(), &url);
            if let Some(a) = accept {
                r = r.header(ACCEPT, a);
            }
            if let Some(a) = auth {
                r = r.header(AUTHORIZATION, a);
            }
            r
        };
        let first = build(None).send().await.map_err(unreachable)?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let challenge = parse_challenge(first.headers()).ok_or_else(|| {
            UpstreamError::Unauthorized(
                "the upstream registry refused the request without a usable challenge".to_string(),
            )
        })?;
        let auth = self.authorization(&challenge, repository).await?;
        let second = build(Some(&auth)).send().await.map_err(unreachable)?;
        if matches!(
            second.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(UpstreamError::Unauthorized(format!(
                "the upstream registry refused the credentials ({})",
                second.status()
            )));
        }
        Ok(second)
    }

    /// `GET /v2/`: whether the upstream answers and takes the credentials.
    pub async fn ping(&self) -> Result<(), UpstreamError> {
        let response = self.send(Method::GET, "/v2/", None, None).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(UpstreamError::Protocol(format!(
                "the upstream registry answered {} to /v2/",
                response.status()
            )))
        }
    }

    fn check_status(response: &reqwest::Response, what: &str) -> Result<(), UpstreamError> {
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(UpstreamError::NotFound(format!(
                "the upstream registry does not have {what}"
            ))),
            StatusCode::FORBIDDEN => Err(UpstreamError::Unauthorized(format!(
                "the upstream registry refused access to {what}"
            ))),
            s => Err(UpstreamError::Protocol(format!(
                "the upstream registry answered {s} for {what}"
            ))),
        }
    }

    /// `GET /v2/<repository>/manifests/<reference>`.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, UpstreamError> {
        let what = format!("the manifest {repository}:{reference}");
        let response = self
            .send(
                Method::GET,
                &format!("/v2/{repository}/manifests/{reference}"),
                Some(repository),
                Some(MANIFEST_ACCEPT),
            )
            .await?;
        Self::check_status(&response, &what)?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
        };
        let media_type = header("content-type");
        let digest = header("docker-content-digest");
        if response
            .content_length()
            .is_some_and(|l| l > MAX_MANIFEST_BYTES as u64)
        {
            return Err(UpstreamError::Protocol(format!(
                "{what} is larger than 4 MiB"
            )));
        }
        let mut body = response.bytes_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(unreachable)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_MANIFEST_BYTES {
                return Err(UpstreamError::Protocol(format!(
                    "{what} is larger than 4 MiB"
                )));
            }
        }
        Ok(FetchedManifest {
            bytes: Bytes::from(bytes),
            media_type,
            digest,
        })
    }

    /// `HEAD /v2/<repository>/manifests/<tag>`: the digest the tag names
    /// upstream now, when the upstream says.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, UpstreamError> {
        let response = self
            .send(
                Method::HEAD,
                &format!("/v2/{repository}/manifests/{tag}"),
                Some(repository),
                Some(MANIFEST_ACCEPT),
            )
            .await?;
        Self::check_status(&response, &format!("the manifest {repository}:{tag}"))?;
        Ok(response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }

    /// `GET /v2/<repository>/blobs/<digest>`, streamed (redirects followed).
    pub async fn blob(&self, repository: &str, digest: &str) -> Result<FetchedBlob, UpstreamError> {
        let response = self
            .send(
                Method::GET,
                &format!("/v2/{repository}/blobs/{digest}"),
                Some(repository),
                None,
            )
            .await?;
        Self::check_status(&response, &format!("the blob {digest} of {repository}"))?;
        let length = response.content_length();
        let body: ByteStream = Box::pin(response.bytes_stream().map_err(std::io::Error::other));
        Ok(FetchedBlob { length, body })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::header::HeaderValue;

    fn challenge(value: &str) -> Option<Challenge> {
        let mut h = HeaderMap::new();
        h.insert(WWW_AUTHENTICATE, HeaderValue::from_str(value).unwrap());
        parse_challenge(&h)
    }

    #[test]
    fn challenges() {
        assert_eq!(
            challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(
            challenge(r#"Bearer realm="https://ghcr.io/token",scope="repository:a/b:pull,push""#),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: None,
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(challenge(r#"Basic realm="x""#), Some(Challenge::Basic));
        assert_eq!(challenge("Negotiate"), None);
        assert_eq!(challenge("Bearer service=x"), None);
    }
}

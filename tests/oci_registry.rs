//! The registry (`/v2/`) over raw HTTP: ECR-style Basic login, every
//! endpoint of the OCI Distribution Spec v1.1 and its errors, on every
//! storage backend.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use base64::Engine;
use common::{Backend, TestServer, BACKENDS};
use ecrd::digest::{Algorithm, Digest};
use ecrd::ecr::images::Reference;
use ecrd::ecr::names::{AccountId, Region, RepositoryName, Scope};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A registry client speaking raw HTTP with an ECR login.
struct Reg {
    server: TestServer,
    http: reqwest::Client,
    /// `Basic <base64(AWS:password)>`.
    auth: String,
}

fn sha256(data: &[u8]) -> String {
    Digest::sha256_of(data).to_string()
}

async fn login(server: &TestServer, ecr: &aws_sdk_ecr::Client) -> String {
    let out = ecr.get_authorization_token().send().await.unwrap();
    let token = out.authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_string();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&token)
        .unwrap();
    assert!(decoded.starts_with(b"AWS:"));
    let _ = server;
    format!("Basic {token}")
}

impl Reg {
    async fn start(backend: Backend) -> Reg {
        Self::start_with(backend, |_| {}).await
    }

    async fn start_with(backend: Backend, configure: impl FnOnce(&mut ecrd::ServeConfig)) -> Reg {
        let server = TestServer::start_with(backend, configure).await;
        let auth = login(&server, &server.ecr()).await;
        Reg {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            server,
            auth,
        }
    }

    /// A path on the server, or a URL elsewhere as it is (a redirect to a
    /// bucket's presigned URL).
    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        format!("{}{path}", self.server.url)
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
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

    /// Monolithic upload in one POST; returns the digest.
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

    async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &str,
    ) -> Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Pushes a small OCI image (config + one layer) under `tag`; returns
    /// the manifest text and its digest.
    async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (String, String) {
        let config = format!("{{\"seed\":\"{seed}\"}}");
        let layer = format!("layer of {seed}");
        let c = self.push_blob(repo, config.as_bytes()).await;
        let l = self.push_blob(repo, layer.as_bytes()).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": c, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l, "size": layer.len()}],
        })
        .to_string();
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let digest = sha256(manifest.as_bytes());
        (manifest, digest)
    }

    fn scope(&self) -> Scope {
        Scope::new(
            AccountId::parse("000000000000").unwrap(),
            Region::parse("us-east-1").unwrap(),
        )
    }
}

/// Status, first error code and message of an error answer.
async fn error_of(r: Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()["content-type"],
        "application/json",
        "errors are JSON"
    );
    let body: Value = r.json().await.unwrap();
    let e = &body["errors"][0];
    (
        status,
        e["code"].as_str().unwrap_or("").to_string(),
        e["message"].as_str().unwrap_or("").to_string(),
    )
}

fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn login_the_ecr_way() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        let plain = reqwest::Client::new();

        // No credentials: 401 with ECR's challenge and the API version.
        let r = plain.get(reg.url("/v2/")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            header(&r, "docker-distribution-api-version"),
            "registry/2.0"
        );
        let challenge = header(&r, "www-authenticate").to_string();
        assert!(
            challenge.starts_with(&format!(
                "Basic realm=\"http://127.0.0.1:{}",
                reg.server.port
            )),
            "{challenge}"
        );
        assert!(
            challenge.ends_with(",service=\"ecr.amazonaws.com\""),
            "{challenge}"
        );
        let (_, code, _) = error_of(r).await;
        assert_eq!(code, "UNAUTHORIZED");

        // Any endpoint asks for credentials first.
        let r = plain
            .get(reg.url("/v2/some/repo/tags/list"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));

        // Logged in: 200 {}.
        let r = reg.req(Method::GET, "/v2/").send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(&r, "docker-distribution-api-version"),
            "registry/2.0"
        );
        assert_eq!(r.json::<Value>().await.unwrap(), json!({}));

        // Wrong user, a password we never issued, not Basic at all.
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let password = {
            let token = reg.auth.trim_start_matches("Basic ");
            let raw = base64::engine::general_purpose::STANDARD
                .decode(token)
                .unwrap();
            String::from_utf8(raw).unwrap()[4..].to_string()
        };
        for bad in [
            format!("Basic {}", b64(&format!("admin:{password}"))),
            format!("Basic {}", b64("AWS:not-a-token")),
            "Basic !!!".to_string(),
            format!("Bearer {password}"),
        ] {
            let r = plain
                .get(reg.url("/v2/"))
                .header("authorization", bad)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
            assert!(r.headers().contains_key("www-authenticate"));
            assert_eq!(error_of(r).await.1, "UNAUTHORIZED");
        }

        // An ECR-shaped host must name the token's registry.
        let host = format!(
            "000000000000.dkr.ecr.us-east-1.localhost:{}",
            reg.server.port
        );
        let r = reg
            .req(Method::GET, "/v2/")
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let host = format!(
            "111111111111.dkr.ecr.us-east-1.localhost:{}",
            reg.server.port
        );
        // Logging in to another account's registry works, as in ECR (the
        // password names the principal; that registry's policies decide
        // what it may do there): its repositories stay closed.
        let r = reg
            .req(Method::GET, "/v2/")
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = reg
            .req(Method::GET, "/v2/any/tags/list")
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(
            header(&r, "docker-distribution-api-version"),
            "registry/2.0"
        );
        assert_eq!(error_of(r).await.1, "DENIED");
        let host = format!(
            "000000000000.dkr.ecr.eu-west-1.localhost:{}",
            reg.server.port
        );
        let r = reg
            .req(Method::GET, "/v2/")
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);

        // 12 hours later the password has expired.
        reg.server
            .state
            .ecr
            .clock
            .advance(time::Duration::hours(13));
        let r = reg.req(Method::GET, "/v2/").send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        let (_, _, message) = error_of(r).await;
        assert_eq!(
            message,
            "Your authorization token has expired. Reauthenticate and try again."
        );
    }
}

#[tokio::test]
async fn a_token_opens_only_its_own_account() {
    for &backend in BACKENDS {
        let reg = Reg::start_with(backend, |c| {
            c.credentials = Some("AKIAOTHER:othersecret:111111111111".into())
        })
        .await;
        reg.create_repo("team/app").await;
        reg.push_image("team/app", "v1", "a").await;

        let other = login(
            &reg.server,
            &reg.server.ecr_as("AKIAOTHER", "othersecret", "us-east-1"),
        )
        .await;
        let r = reg
            .http
            .get(reg.url("/v2/team/app/manifests/v1"))
            .header("authorization", &other)
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_of(r).await;
        assert_eq!((status, code.as_str()), (404, "NAME_UNKNOWN"));
        assert_eq!(
            message,
            "The repository with name 'team/app' does not exist in the registry with id '111111111111'"
        );
        let r = reg
            .http
            .get(reg.url("/v2/_catalog"))
            .header("authorization", &other)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"repositories": []})
        );
        // Addressing account A's host with B's token is refused outright.
        let r = reg
            .http
            .get(reg.url("/v2/team/app/manifests/v1"))
            .header("authorization", &other)
            .header(
                "host",
                format!(
                    "000000000000.dkr.ecr.us-east-1.localhost:{}",
                    reg.server.port
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        // A token for another region is another registry too.
        let west = login(&reg.server, &reg.server.ecr_as("test", "test", "eu-west-1")).await;
        let r = reg
            .http
            .get(reg.url("/v2/team/app/tags/list"))
            .header("authorization", &west)
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "NAME_UNKNOWN");
    }
}

#[tokio::test]
async fn monolithic_uploads() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("mono").await;
        let data = b"hello blob".to_vec();
        let digest = sha256(&data);

        // POST, then PUT with the whole body.
        let r = reg
            .req(Method::POST, "/v2/mono/blobs/uploads/")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(header(&r, "range"), "0-0");
        assert_eq!(header(&r, "content-length"), "0");
        let location = header(&r, "location").to_string();
        let uuid = header(&r, "docker-upload-uuid").to_string();
        assert_eq!(location, format!("/v2/mono/blobs/uploads/{uuid}"));
        let r = reg
            .req(Method::PUT, &format!("{location}?digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(header(&r, "location"), format!("/v2/mono/blobs/{digest}"));
        assert_eq!(header(&r, "docker-content-digest"), digest);
        // The session is over.
        let r = reg.req(Method::GET, &location).send().await.unwrap();
        assert_eq!(error_of(r).await.1, "BLOB_UPLOAD_UNKNOWN");

        // HEAD answers directly.
        let r = reg
            .req(Method::HEAD, &format!("/v2/mono/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-length"), data.len().to_string());
        assert_eq!(header(&r, "docker-content-digest"), digest);
        assert_eq!(
            header(&r, "docker-distribution-api-version"),
            "registry/2.0"
        );
        assert!(r.bytes().await.unwrap().is_empty());

        // One POST with ?digest=.
        let other = b"another blob".to_vec();
        let d2 = reg.push_blob("mono", &other).await;
        let r = reg
            .req(Method::HEAD, &format!("/v2/mono/blobs/{d2}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // An empty blob.
        let empty = reg.push_blob("mono", b"").await;
        let r = reg
            .req(Method::HEAD, &format!("/v2/mono/blobs/{empty}"))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "content-length"), "0");

        // The wrong digest: DIGEST_INVALID, and no blob under either digest.
        let wrong = sha256(b"something else");
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/mono/blobs/uploads/?digest={wrong}"),
            )
            .body(b"not that".to_vec())
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (400, "DIGEST_INVALID"));
        for d in [wrong, sha256(b"not that")] {
            let r = reg
                .req(Method::HEAD, &format!("/v2/mono/blobs/{d}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404);
        }
        // A digest that is not one.
        let r = reg
            .req(Method::POST, "/v2/mono/blobs/uploads/?digest=sha256:xyz")
            .body(b"x".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "DIGEST_INVALID");
        let r = reg
            .req(Method::POST, "/v2/mono/blobs/uploads/")
            .send()
            .await
            .unwrap();
        let location = header(&r, "location").to_string();
        let r = reg
            .req(Method::PUT, &location)
            .body(b"x".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "DIGEST_INVALID");
        let r = reg
            .req(Method::PUT, &format!("{location}?digest=md5:abcd"))
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "DIGEST_INVALID");

        // Uploads to a missing repository.
        let r = reg
            .req(Method::POST, "/v2/nope/blobs/uploads/")
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_of(r).await;
        assert_eq!((status, code.as_str()), (404, "NAME_UNKNOWN"));
        assert_eq!(
            message,
            "The repository with name 'nope' does not exist in the registry with id '000000000000'"
        );
    }
}

#[tokio::test]
async fn chunked_and_streamed_uploads() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("chunks").await;
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let digest = sha256(&data);

        let r = reg
            .req(Method::POST, "/v2/chunks/blobs/uploads/")
            .send()
            .await
            .unwrap();
        let mut location = header(&r, "location").to_string();
        let mut sent = 0usize;
        for chunk in data.chunks(100_000) {
            let end = sent + chunk.len() - 1;
            let r = reg
                .req(Method::PATCH, &location)
                .header("content-range", format!("{sent}-{end}"))
                .header("content-type", "application/octet-stream")
                .body(chunk.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            assert_eq!(header(&r, "range"), format!("0-{end}"));
            assert_eq!(header(&r, "content-length"), "0");
            location = header(&r, "location").to_string();
            sent += chunk.len();

            // Out of order: 416 with where the upload stands.
            let r = reg
                .req(Method::PATCH, &location)
                .header("content-range", "5-9")
                .body(b"12345".to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 416);
            assert_eq!(header(&r, "range"), format!("0-{end}"));
            assert_eq!(header(&r, "location"), location);
            assert_eq!(error_of(r).await.1, "BLOB_UPLOAD_INVALID");
        }
        // Status.
        let r = reg.req(Method::GET, &location).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(header(&r, "range"), format!("0-{}", data.len() - 1));
        assert_eq!(header(&r, "location"), location);
        assert!(r.headers().contains_key("docker-upload-uuid"));
        let r = reg
            .req(Method::PUT, &format!("{location}?digest={digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(header(&r, "docker-content-digest"), digest);

        // Streamed PATCH (chunked transfer encoding, no Content-Range), then
        // a final chunk on the PUT.
        let r = reg
            .req(Method::POST, "/v2/chunks/blobs/uploads/")
            .send()
            .await
            .unwrap();
        let location = header(&r, "location").to_string();
        let data2: Vec<u8> = data.iter().rev().copied().collect();
        let (head, tail) = data2.split_at(250_000);
        let parts: Vec<Result<Vec<u8>, std::io::Error>> =
            head.chunks(7_000).map(|c| Ok(c.to_vec())).collect();
        let r = reg
            .req(Method::PATCH, &location)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                parts,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(header(&r, "range"), "0-249999");
        let location = header(&r, "location").to_string();
        let r = reg
            .req(
                Method::PUT,
                &format!("{location}?digest={}", sha256(&data2)),
            )
            .header("content-range", format!("250000-{}", data2.len() - 1))
            .body(tail.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);

        // Both read back whole.
        for (d, bytes) in [(digest, &data), (sha256(&data2), &data2)] {
            let r = reg
                .http
                .get(reg.url(&format!("/v2/chunks/blobs/{d}")))
                .header("authorization", &reg.auth)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 307);
            let to = header(&r, "location").to_string();
            let got = reqwest::get(reg.url(&to))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(&got[..], &bytes[..]);
        }

        // Cancel.
        let r = reg
            .req(Method::POST, "/v2/chunks/blobs/uploads/")
            .send()
            .await
            .unwrap();
        let location = header(&r, "location").to_string();
        let r = reg
            .req(Method::PATCH, &location)
            .body(b"abc".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let r = reg.req(Method::DELETE, &location).send().await.unwrap();
        assert_eq!(r.status(), 204);
        for m in [Method::GET, Method::DELETE, Method::PATCH] {
            let r = reg.req(m, &location).send().await.unwrap();
            let (status, code, _) = error_of(r).await;
            assert_eq!((status, code.as_str()), (404, "BLOB_UPLOAD_UNKNOWN"));
        }
        // Ids that are not ids, and an upload of another repository.
        reg.create_repo("chunks2").await;
        let r = reg
            .req(Method::POST, "/v2/chunks/blobs/uploads/")
            .send()
            .await
            .unwrap();
        let id = header(&r, "docker-upload-uuid").to_string();
        for path in [
            format!("/v2/chunks2/blobs/uploads/{id}"),
            "/v2/chunks/blobs/uploads/..".to_string(),
            "/v2/chunks/blobs/uploads/%2e%2e".to_string(),
            "/v2/chunks/blobs/uploads/a%2f..%2fb".to_string(),
        ] {
            let (status, body) = raw(&reg, "GET", &path).await;
            assert_eq!(status, 404, "{path}");
            assert_eq!(body["errors"][0]["code"], "BLOB_UPLOAD_UNKNOWN", "{path}");
        }
    }
}

/// Sends a request with its path exactly as given (URL libraries resolve
/// `..` and `%2e%2e` before sending); returns the status and JSON body.
async fn raw(reg: &Reg, method: &str, path: &str) -> (u16, Value) {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", reg.server.port))
        .await
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nauthorization: {}\r\nconnection: close\r\n\r\n",
        reg.server.port, reg.auth
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Sends a request whose body stops short of its Content-Length, then
/// hangs up.
async fn send_truncated(reg: &Reg, method: &str, path: &str, declared: usize, sent: &[u8]) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", reg.server.port))
        .await
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nauthorization: {}\r\ncontent-length: {declared}\r\n\r\n",
        reg.server.port, reg.auth
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn an_aborted_upload_never_makes_a_blob() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("abort").await;
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let digest = sha256(&data);

        // A PATCH that breaks off: the upload stays resumable (or unknown).
        let r = reg
            .req(Method::POST, "/v2/abort/blobs/uploads/")
            .send()
            .await
            .unwrap();
        let location = header(&r, "location").to_string();
        send_truncated(&reg, "PATCH", &location, data.len(), &data[..10_000]).await;
        let r = reg
            .req(Method::HEAD, &format!("/v2/abort/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let r = reg.req(Method::GET, &location).send().await.unwrap();
        match r.status().as_u16() {
            204 => {
                let range = header(&r, "range").to_string();
                let have: usize = range.split('-').nth(1).unwrap().parse::<usize>().unwrap() + 1;
                let have = if range == "0-0" { 0 } else { have };
                assert!(have <= 10_000, "{range}");
                // Resume from where it stands.
                let r = reg
                    .req(Method::PATCH, &location)
                    .header("content-range", format!("{have}-{}", data.len() - 1))
                    .body(data[have..].to_vec())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                let r = reg
                    .req(Method::PUT, &format!("{location}?digest={digest}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
            404 => {}
            other => panic!("unexpected status {other}"),
        }

        // A monolithic PUT that breaks off leaves no blob either.
        let data2 = b"x".repeat(40_000);
        let d2 = sha256(&data2);
        let r = reg
            .req(Method::POST, "/v2/abort/blobs/uploads/")
            .send()
            .await
            .unwrap();
        let location = header(&r, "location").to_string();
        send_truncated(
            &reg,
            "PUT",
            &format!("{location}?digest={d2}"),
            data2.len(),
            &data2[..100],
        )
        .await;
        let r = reg
            .req(Method::HEAD, &format!("/v2/abort/blobs/{d2}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        // And one POST with ?digest= that breaks off: no blob, no session.
        send_truncated(
            &reg,
            "POST",
            &format!("/v2/abort/blobs/uploads/?digest={d2}"),
            data2.len(),
            &data2[..100],
        )
        .await;
        let r = reg
            .req(Method::HEAD, &format!("/v2/abort/blobs/{d2}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
}

#[tokio::test]
async fn cross_repository_mounts() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        for r in ["src/app", "dst/app", "dst/two", "dst/three"] {
            reg.create_repo(r).await;
        }
        let digest = reg.push_blob("src/app", b"shared layer").await;

        let r = reg
            .req(
                Method::POST,
                &format!("/v2/dst/app/blobs/uploads/?mount={digest}&from=src/app"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(
            header(&r, "location"),
            format!("/v2/dst/app/blobs/{digest}")
        );
        assert_eq!(header(&r, "docker-content-digest"), digest);
        let r = reg
            .req(Method::HEAD, &format!("/v2/dst/app/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // Without `from`: any repository of the registry.
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/dst/two/blobs/uploads/?mount={digest}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);

        // Not there to mount: a new upload session instead.
        let missing = sha256(b"never pushed");
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/dst/three/blobs/uploads/?mount={missing}&from=src/app"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert!(header(&r, "location").starts_with("/v2/dst/three/blobs/uploads/"));
        // From a repository that does not hold it.
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/dst/three/blobs/uploads/?mount={digest}&from=dst/three"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let r = reg
            .req(Method::HEAD, &format!("/v2/dst/three/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        // Bad mount parameters.
        let r = reg
            .req(
                Method::POST,
                "/v2/dst/three/blobs/uploads/?mount=sha256:nope&from=src/app",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "DIGEST_INVALID");
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/dst/three/blobs/uploads/?mount={digest}&from=Bad..Name"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "NAME_INVALID");
    }
}

#[tokio::test]
async fn manifests_of_every_type() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("kinds").await;
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let layer = b"a layer".to_vec();
        let c = reg.push_blob("kinds", config).await;
        let l = reg.push_blob("kinds", &layer).await;

        let docker = json!({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": c},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": l}],
        })
        .to_string();
        // Unknown fields and odd spacing are kept byte for byte.
        let oci = format!(
            "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{OCI_MANIFEST}\",\n  \"config\": {{\"mediaType\": \"{OCI_CONFIG}\", \"size\": {}, \"digest\": \"{c}\"}},\n  \"layers\": [{{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"size\": {}, \"digest\": \"{l}\"}}],\n  \"x-unknown\": {{\"kept\": [1, 2.50, \"\\u00e9\"]}}\n}}\n",
            config.len(),
            layer.len()
        );
        let mut digests = Vec::new();
        for (tag, media_type, body) in [
            ("docker", DOCKER_MANIFEST, &docker),
            ("oci", OCI_MANIFEST, &oci),
        ] {
            let r = reg.put_manifest("kinds", tag, media_type, body).await;
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            let d = sha256(body.as_bytes());
            assert_eq!(header(&r, "docker-content-digest"), d);
            assert_eq!(header(&r, "location"), format!("/v2/kinds/manifests/{d}"));
            assert!(r.headers().get("oci-subject").is_none());
            digests.push((d, media_type, body.clone()));
        }
        let list = json!({
            "schemaVersion": 2, "mediaType": DOCKER_LIST,
            "manifests": [{"mediaType": DOCKER_MANIFEST, "size": docker.len(), "digest": digests[0].0,
                           "platform": {"architecture": "amd64", "os": "linux"}}],
        })
        .to_string();
        let index = json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "size": oci.len(), "digest": digests[1].0,
                           "platform": {"architecture": "arm64", "os": "linux"}}],
            "annotations": {"org.opencontainers.image.ref.name": "x"},
        })
        .to_string();
        for (tag, media_type, body) in [("list", DOCKER_LIST, &list), ("index", OCI_INDEX, &index)]
        {
            let r = reg.put_manifest("kinds", tag, media_type, body).await;
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            digests.push((sha256(body.as_bytes()), media_type, body.clone()));
        }

        // Read back by tag and by digest, GET and HEAD.
        for ((d, media_type, body), tag) in digests.iter().zip(["docker", "oci", "list", "index"]) {
            for reference in [tag, d.as_str()] {
                let path = format!("/v2/kinds/manifests/{reference}");
                let r = reg
                    .req(Method::GET, &path)
                    .header("accept", *media_type)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(header(&r, "content-type"), *media_type);
                assert_eq!(header(&r, "docker-content-digest"), d);
                assert_eq!(header(&r, "content-length"), body.len().to_string());
                assert_eq!(
                    header(&r, "docker-distribution-api-version"),
                    "registry/2.0"
                );
                assert_eq!(r.text().await.unwrap(), *body);
                let r = reg.req(Method::HEAD, &path).send().await.unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(header(&r, "content-type"), *media_type);
                assert_eq!(header(&r, "content-length"), body.len().to_string());
                assert_eq!(header(&r, "docker-content-digest"), d);
                assert!(r.bytes().await.unwrap().is_empty());
            }
        }

        // A Content-Type that disagrees with the document's mediaType.
        let r = reg
            .put_manifest("kinds", "bad", OCI_MANIFEST, &docker)
            .await;
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (400, "MANIFEST_INVALID"));
        for junk in [
            "not json",
            r#"{"schemaVersion":1}"#,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
        ] {
            let r = reg.put_manifest("kinds", "bad", OCI_MANIFEST, junk).await;
            assert_eq!(error_of(r).await.1, "MANIFEST_INVALID");
        }

        // Push by digest; a digest that does not match; sha512.
        let again = oci.replace("kept", "kept too");
        let d = sha256(again.as_bytes());
        let r = reg.put_manifest("kinds", &d, OCI_MANIFEST, &again).await;
        assert_eq!(r.status(), 201);
        assert_eq!(header(&r, "docker-content-digest"), d);
        let r = reg
            .put_manifest("kinds", &sha256(b"other"), OCI_MANIFEST, &again)
            .await;
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (400, "DIGEST_INVALID"));
        let third = oci.replace("kept", "kept three");
        let d512 = Digest::of(Algorithm::Sha512, third.as_bytes()).to_string();
        let r = reg.put_manifest("kinds", &d512, OCI_MANIFEST, &third).await;
        assert_eq!(r.status(), 201);
        assert_eq!(header(&r, "docker-content-digest"), d512);
        let r = reg
            .req(Method::GET, &format!("/v2/kinds/manifests/{d512}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), third);

        // Missing blobs and missing child manifests.
        let missing = sha256(b"missing layer");
        let dangling = docker.replace(&l, &missing);
        let r = reg
            .put_manifest("kinds", "dangling", DOCKER_MANIFEST, &dangling)
            .await;
        let (status, code, message) = error_of(r).await;
        assert_eq!((status, code.as_str()), (400, "MANIFEST_BLOB_UNKNOWN"));
        assert!(message.contains(&missing), "{message}");
        let dangling_index = index.replace(&digests[1].0, &sha256(b"no such manifest"));
        let r = reg
            .put_manifest("kinds", "dangling", OCI_INDEX, &dangling_index)
            .await;
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (400, "MANIFEST_BLOB_UNKNOWN"));

        // Content negotiation: an explicit list without the stored type.
        let r = reg
            .req(Method::GET, "/v2/kinds/manifests/oci")
            .header("accept", DOCKER_MANIFEST)
            .header("accept", DOCKER_LIST)
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (404, "MANIFEST_UNKNOWN"));
        // Several Accept headers are merged.
        let r = reg
            .req(Method::GET, "/v2/kinds/manifests/oci")
            .header("accept", DOCKER_MANIFEST)
            .header("accept", format!("{OCI_INDEX}, {OCI_MANIFEST};q=0.9"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        for accept in ["*/*", "application/json"] {
            let r = reg
                .req(Method::GET, "/v2/kinds/manifests/oci")
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        // A digest names exact bytes: served whatever the Accept list says.
        let r = reg
            .req(
                Method::GET,
                &format!("/v2/kinds/manifests/{}", digests[1].0),
            )
            .header("accept", DOCKER_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // Unknown tag or digest; bad tag; bad digest.
        let r = reg
            .req(Method::GET, "/v2/kinds/manifests/nope")
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (404, "MANIFEST_UNKNOWN"));
        let r = reg
            .req(
                Method::HEAD,
                &format!("/v2/kinds/manifests/{}", sha256(b"x")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let r = reg
            .req(Method::GET, "/v2/kinds/manifests/-bad")
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "TAG_INVALID");
        let r = reg
            .req(Method::GET, "/v2/kinds/manifests/sha256:abc")
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "DIGEST_INVALID");
        let r = reg
            .put_manifest("kinds", &"t".repeat(301), OCI_MANIFEST, &oci)
            .await;
        assert_eq!(error_of(r).await.1, "TAG_INVALID");
    }
}

#[tokio::test]
async fn pulls_are_recorded_by_get_not_head() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("pulls").await;
        reg.push_image("pulls", "v1", "p").await;
        let repo = RepositoryName::parse("pulls").unwrap();
        let tag = Reference::Tag("v1".into());
        let pulled = || {
            reg.server
                .state
                .ecr
                .get_image(&reg.scope(), &repo, &tag, None)
                .unwrap()
                .last_pulled_ms
        };
        assert_eq!(pulled(), None);
        let r = reg
            .req(Method::HEAD, "/v2/pulls/manifests/v1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(pulled(), None);
        let r = reg
            .req(Method::GET, "/v2/pulls/manifests/v1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(pulled().is_some());
    }
}

#[tokio::test]
async fn size_limits_and_repository_rules() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("rules").await;
        // 5 MiB of manifest: 413.
        let big = format!(
            "{{\"schemaVersion\":2,\"pad\":\"{}\"}}",
            "x".repeat(5 * 1024 * 1024)
        );
        let r = reg.put_manifest("rules", "big", OCI_MANIFEST, &big).await;
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (413, "SIZE_INVALID"));
        // ... also when it streams without a Content-Length.
        let parts: Vec<Result<Vec<u8>, std::io::Error>> = big
            .as_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok(c.to_vec()))
            .collect();
        let r = reg
            .req(Method::PUT, "/v2/rules/manifests/big")
            .header("content-type", OCI_MANIFEST)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                parts,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);

        // A missing repository, worded as ECR words it.
        let valid = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(b"{}"), "size": 2}, "layers": []})
        .to_string();
        let r = reg
            .put_manifest("team/missing", "v1", OCI_MANIFEST, &valid)
            .await;
        let r2 = reg
            .req(Method::GET, "/v2/team/missing/manifests/v1")
            .send()
            .await
            .unwrap();
        for r in [r, r2] {
            let (status, code, message) = error_of(r).await;
            assert_eq!((status, code.as_str()), (404, "NAME_UNKNOWN"));
            assert_eq!(
                message,
                "The repository with name 'team/missing' does not exist in the registry with id '000000000000'"
            );
        }

        // Immutable tags stay put.
        reg.server
            .ecr()
            .create_repository()
            .repository_name("frozen")
            .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
            .send()
            .await
            .unwrap();
        let (manifest, _) = reg.push_image("frozen", "v1", "one").await;
        // The same manifest again is fine.
        let r = reg
            .put_manifest("frozen", "v1", OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(r.status(), 201);
        let config = b"{}";
        let c = reg.push_blob("frozen", config).await;
        let other = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": c, "size": 2}, "layers": []})
        .to_string();
        let r = reg.put_manifest("frozen", "v1", OCI_MANIFEST, &other).await;
        let (status, code, message) = error_of(r).await;
        assert_eq!((status, code.as_str()), (400, "TAG_INVALID"));
        assert_eq!(
            message,
            "The image tag 'v1' already exists in the 'frozen' repository and cannot be overwritten because the repository is immutable."
        );

        // Names that are not names, and path tricks (sent raw, as no URL
        // library would send them): never a file access.
        for path in [
            "/v2/Bad/manifests/v1",
            "/v2/a..b/manifests/v1",
            "/v2/%2e%2e/rules/manifests/v1",
            "/v2/rules/%2e%2e/manifests/v1",
            "/v2/../rules/manifests/v1",
            "/v2/rules/../manifests/v1",
            "/v2//rules/manifests/v1",
            "/v2/rules//tags/list",
            "/v2/x/tags/list",
            "/v2/rules%2fx/tags/list",
        ] {
            let (status, body) = raw(&reg, "GET", path).await;
            assert_eq!(status, 400, "{path}");
            assert_eq!(body["errors"][0]["code"], "NAME_INVALID", "{path}");
        }
        let (status, _) = raw(&reg, "GET", "/v2/rules/../../etc/passwd").await;
        assert_eq!(status, 404);
        let (status, body) = raw(&reg, "GET", "/v2/rules/blobs/sha256:..%2f..%2fetc").await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["code"], "DIGEST_INVALID");
        let (status, _) = raw(&reg, "GET", "/_ecrd/layers/000000000000/us-east-1/..%2f..%2fetc?repository=rules&expires=9999999999&signature=00").await;
        assert_eq!(status, 403);
        let r = reg
            .req(Method::GET, "/v2/rules/blobs/sha256:abc")
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "DIGEST_INVALID");
        let r = reg
            .req(
                Method::GET,
                "/v2/rules/blobs/md5:d41d8cd98f00b204e9800998ecf8427e",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "DIGEST_INVALID");
        // No such endpoint; no such method.
        let r = reg
            .req(Method::GET, "/v2/rules/nothing/here")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(
            header(&r, "docker-distribution-api-version"),
            "registry/2.0"
        );
        let r = reg
            .req(Method::POST, "/v2/rules/manifests/v1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
        assert_eq!(error_of(r).await.1, "UNSUPPORTED");
    }
}

#[tokio::test]
async fn subjects_and_referrers() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("refs").await;
        let (_, subject) = reg.push_image("refs", "v1", "s").await;
        let empty = reg.push_blob("refs", b"{}").await;
        let sig = reg.push_blob("refs", b"signature bytes").await;

        let artifact = |artifact_type: &str, subject: &str, note: &str| {
            json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
                "layers": [{"mediaType": "application/octet-stream", "digest": sig, "size": 15}],
                "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 100},
                "annotations": {"note": note},
            })
            .to_string()
        };
        let sbom = artifact("application/vnd.example.sbom", &subject, "sbom");
        let signature = artifact("application/vnd.example.sig", &subject, "sig");
        let mut pushed = Vec::new();
        for body in [&sbom, &signature] {
            let d = sha256(body.as_bytes());
            let r = reg.put_manifest("refs", &d, OCI_MANIFEST, body).await;
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            assert_eq!(header(&r, "oci-subject"), subject);
            pushed.push(d);
        }
        // A subject that is not (yet) in the repository is allowed.
        let ghost = sha256(b"ghost subject");
        let orphan = artifact("application/vnd.example.sig", &ghost, "early");
        let r = reg
            .put_manifest("refs", "orphan", OCI_MANIFEST, &orphan)
            .await;
        assert_eq!(r.status(), 201);
        assert_eq!(header(&r, "oci-subject"), ghost);

        let r = reg
            .req(Method::GET, &format!("/v2/refs/referrers/{subject}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), OCI_INDEX);
        assert!(r.headers().get("oci-filters-applied").is_none());
        let index: Value = r.json().await.unwrap();
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["mediaType"], OCI_INDEX);
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 2);
        for m in manifests {
            let d = m["digest"].as_str().unwrap();
            assert!(pushed.iter().any(|p| p == d));
            assert_eq!(m["mediaType"], OCI_MANIFEST);
            let body = if d == pushed[0] { &sbom } else { &signature };
            assert_eq!(m["size"], body.len());
            assert!(m["artifactType"]
                .as_str()
                .unwrap()
                .starts_with("application/vnd.example."));
            assert!(m["annotations"]["note"].is_string());
        }

        let r = reg
            .req(
                Method::GET,
                &format!("/v2/refs/referrers/{subject}?artifactType=application/vnd.example.sbom"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
        let index: Value = r.json().await.unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(index["manifests"][0]["digest"], pushed[0]);
        assert_eq!(
            index["manifests"][0]["artifactType"],
            "application/vnd.example.sbom"
        );
        assert_eq!(
            index["manifests"][0]["annotations"],
            json!({"note": "sbom"})
        );

        let r = reg
            .req(Method::GET, &format!("/v2/refs/referrers/{ghost}"))
            .send()
            .await
            .unwrap();
        let index: Value = r.json().await.unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
        // Unknown subject: an empty index. Missing repository: 404.
        let r = reg
            .req(
                Method::GET,
                &format!("/v2/refs/referrers/{}", sha256(b"nobody")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["manifests"], json!([]));
        let r = reg
            .req(Method::GET, &format!("/v2/nope/referrers/{subject}"))
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "NAME_UNKNOWN");
        let r = reg
            .req(Method::GET, "/v2/refs/referrers/sha256:bad")
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "DIGEST_INVALID");

        // Deleting a referrer takes it out of the list.
        let r = reg
            .req(Method::DELETE, &format!("/v2/refs/manifests/{}", pushed[1]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let r = reg
            .req(Method::GET, &format!("/v2/refs/referrers/{subject}"))
            .send()
            .await
            .unwrap();
        let index: Value = r.json().await.unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn tags_and_catalog_pages() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        for name in ["pages/b", "pages/a", "pages/c", "zz"] {
            reg.create_repo(name).await;
        }
        let (manifest, _) = reg.push_image("pages/a", "t0", "x").await;
        for t in ["t1", "t2", "t3", "t4"] {
            let r = reg
                .put_manifest("pages/a", t, OCI_MANIFEST, &manifest)
                .await;
            assert_eq!(r.status(), 201);
        }
        let r = reg
            .req(Method::GET, "/v2/pages/a/tags/list")
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("link").is_none());
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"name": "pages/a", "tags": ["t0", "t1", "t2", "t3", "t4"]})
        );
        // Follow the Link header page by page.
        let mut next = Some("/v2/pages/a/tags/list?n=2".to_string());
        let mut pages = Vec::new();
        while let Some(path) = next {
            let r = reg.req(Method::GET, &path).send().await.unwrap();
            assert_eq!(r.status(), 200);
            next = r.headers().get("link").map(|l| {
                let l = l.to_str().unwrap();
                assert!(l.ends_with(">; rel=\"next\""), "{l}");
                l[1..l.find('>').unwrap()].to_string()
            });
            pages.push(r.json::<Value>().await.unwrap()["tags"].clone());
        }
        assert_eq!(
            pages,
            vec![json!(["t0", "t1"]), json!(["t2", "t3"]), json!(["t4"])]
        );
        let r = reg
            .req(Method::GET, "/v2/pages/a/tags/list?n=2")
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(&r, "link"),
            "</v2/pages/a/tags/list?n=2&last=t1>; rel=\"next\""
        );
        let r = reg
            .req(Method::GET, "/v2/pages/a/tags/list?n=2&last=t2")
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("link").is_none());
        assert_eq!(
            r.json::<Value>().await.unwrap()["tags"],
            json!(["t3", "t4"])
        );
        let r = reg
            .req(Method::GET, "/v2/pages/a/tags/list?n=0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!([]));
        let r = reg
            .req(Method::GET, "/v2/pages/a/tags/list?n=-1")
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.0, 400);
        let r = reg
            .req(Method::GET, "/v2/pages/b/tags/list")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"name": "pages/b", "tags": []})
        );
        let r = reg
            .req(Method::GET, "/v2/pages/none/tags/list")
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "NAME_UNKNOWN");

        // The catalog.
        let r = reg.req(Method::GET, "/v2/_catalog").send().await.unwrap();
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"repositories": ["pages/a", "pages/b", "pages/c", "zz"]})
        );
        let r = reg
            .req(Method::GET, "/v2/_catalog?n=3")
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(&r, "link"),
            "</v2/_catalog?n=3&last=pages%2Fc>; rel=\"next\""
        );
        assert_eq!(
            r.json::<Value>().await.unwrap()["repositories"],
            json!(["pages/a", "pages/b", "pages/c"])
        );
        let r = reg
            .req(Method::GET, "/v2/_catalog?n=3&last=pages%2Fc")
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("link").is_none());
        assert_eq!(
            r.json::<Value>().await.unwrap()["repositories"],
            json!(["zz"])
        );
    }
}

#[tokio::test]
async fn deletes() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("del").await;
        let (manifest, digest) = reg.push_image("del", "v1", "d").await;
        let r = reg.put_manifest("del", "v2", OCI_MANIFEST, &manifest).await;
        assert_eq!(r.status(), 201);

        // By tag: only the tag goes.
        let r = reg
            .req(Method::DELETE, "/v2/del/manifests/v1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let r = reg
            .req(Method::GET, "/v2/del/manifests/v1")
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "MANIFEST_UNKNOWN");
        let r = reg
            .req(Method::HEAD, &format!("/v2/del/manifests/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = reg
            .req(Method::DELETE, "/v2/del/manifests/v1")
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "MANIFEST_UNKNOWN");

        // By digest: the image and its remaining tags.
        let r = reg
            .req(Method::DELETE, &format!("/v2/del/manifests/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let r = reg
            .req(Method::GET, "/v2/del/manifests/v2")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let r = reg
            .req(Method::DELETE, &format!("/v2/del/manifests/{digest}"))
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (404, "MANIFEST_UNKNOWN"));
        let r = reg
            .req(Method::GET, "/v2/del/tags/list")
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!([]));

        // Blobs.
        let blob = reg.push_blob("del", b"to delete").await;
        let r = reg
            .req(Method::DELETE, &format!("/v2/del/blobs/{blob}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let r = reg
            .req(Method::HEAD, &format!("/v2/del/blobs/{blob}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let r = reg
            .req(Method::DELETE, &format!("/v2/del/blobs/{blob}"))
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (404, "BLOB_UNKNOWN"));
    }
}

/// A DELETE never breaks an acknowledged image: a blob an image of the
/// repository uses is refused with 405 UNSUPPORTED naming the image, and a
/// manifest an index lists is refused as BatchDeleteImage refuses it
/// (ImageReferencedByManifestList). Once nothing uses them, both go.
#[tokio::test]
async fn deletes_never_break_an_acknowledged_image() {
    for &backend in BACKENDS {
        let reg = Reg::start(backend).await;
        reg.create_repo("keep").await;
        let (manifest, digest) = reg.push_image("keep", "v1", "k").await;
        let parsed: Value = serde_json::from_str(&manifest).unwrap();
        let layer = parsed["layers"][0]["digest"].as_str().unwrap().to_string();
        let config = parsed["config"]["digest"].as_str().unwrap().to_string();

        // The layer and the config of a tagged image stay.
        for blob in [&layer, &config] {
            let r = reg
                .req(Method::DELETE, &format!("/v2/keep/blobs/{blob}"))
                .send()
                .await
                .unwrap();
            let (status, code, message) = error_of(r).await;
            assert_eq!((status, code.as_str()), (405, "UNSUPPORTED"), "{message}");
            assert!(message.contains(&digest), "{message}");
            assert!(message.contains(blob.as_str()), "{message}");
        }
        // ... and the image is still pullable, blob by blob.
        let r = reg
            .req(Method::GET, "/v2/keep/manifests/v1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        for blob in [&layer, &config] {
            let r = reg
                .req(Method::HEAD, &format!("/v2/keep/blobs/{blob}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{blob}");
        }

        // An index listing the image keeps it from a DELETE by digest,
        // with BatchDeleteImage's code and reason.
        let index = json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "size": manifest.len(), "digest": digest}],
        })
        .to_string();
        let r = reg.put_manifest("keep", "multi", OCI_INDEX, &index).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let index_digest = sha256(index.as_bytes());
        let r = reg
            .req(Method::DELETE, &format!("/v2/keep/manifests/{digest}"))
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_of(r).await;
        assert_eq!((status, code.as_str()), (405, "UNSUPPORTED"));
        let batch = reg
            .server
            .ecr()
            .batch_delete_image()
            .repository_name("keep")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(&digest)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let failure = &batch.failures()[0];
        assert_eq!(
            failure.failure_code().map(|c| c.as_str()),
            Some("ImageReferencedByManifestList")
        );
        assert_eq!(failure.failure_reason(), Some(message.as_str()));
        assert_eq!(
            message,
            format!("Requested image referenced by manifest list: [{index_digest}]")
        );
        let r = reg
            .req(Method::GET, &format!("/v2/keep/manifests/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // Deleting by tag only removes the tag (the image stays, listed).
        let r = reg
            .req(Method::DELETE, "/v2/keep/manifests/v1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);

        // Index first, then the image, then its blobs: all allowed.
        for path in [
            format!("/v2/keep/manifests/{index_digest}"),
            format!("/v2/keep/manifests/{digest}"),
            format!("/v2/keep/blobs/{layer}"),
            format!("/v2/keep/blobs/{config}"),
        ] {
            let r = reg.req(Method::DELETE, &path).send().await.unwrap();
            assert_eq!(r.status(), 202, "{path}: {}", r.text().await.unwrap());
        }
        let r = reg
            .req(Method::HEAD, &format!("/v2/keep/blobs/{layer}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
}

/// ecrd's own signed layer URLs; a bucket's presigned ones are
/// `s3_blobs_are_served_by_presigned_urls`.
#[tokio::test]
async fn blob_redirects_and_signed_urls() {
    for &backend in BACKENDS {
        if backend == Backend::Shared {
            continue;
        }
        let reg = Reg::start(backend).await;
        reg.create_repo("team/redirect").await;
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 13) as u8).collect();
        let digest = reg.push_blob("team/redirect", &data).await;

        // The raw 307.
        let r = reg
            .req(Method::GET, &format!("/v2/team/redirect/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            header(&r, "docker-distribution-api-version"),
            "registry/2.0"
        );
        let location = header(&r, "location").to_string();
        assert!(
            location.starts_with(&format!(
                "/_ecrd/layers/000000000000/us-east-1/{digest}?repository=team%2Fredirect&expires="
            )),
            "{location}"
        );

        // The URL needs no other credentials, and serves Range.
        let r = reqwest::get(reg.url(&location)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-length"), data.len().to_string());
        assert_eq!(header(&r, "docker-content-digest"), digest);
        assert_eq!(r.bytes().await.unwrap(), data);
        let r = reqwest::Client::new()
            .get(reg.url(&location))
            .header("range", "bytes=10-19")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes 10-19/{}", data.len())
        );
        assert_eq!(r.bytes().await.unwrap(), &data[10..20]);

        // Following the redirect, as clients do.
        let follow = reqwest::Client::new();
        let r = follow
            .get(reg.url(&format!("/v2/team/redirect/blobs/{digest}")))
            .header("authorization", &reg.auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap(), data);

        // A tampered URL is refused.
        let tampered_sig = {
            let (head, sig) = location.split_once("signature=").unwrap();
            let mut sig = sig.to_string();
            let first = if sig.starts_with('0') { "1" } else { "0" };
            sig.replace_range(0..1, first);
            format!("{head}signature={sig}")
        };
        let other_repo = location.replace("repository=team%2Fredirect", "repository=team%2Fother");
        let other_digest = location.replace(&digest, &sha256(b"x"));
        let later = {
            let expires: i64 = location
                .split("expires=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            location.replace(
                &format!("expires={expires}"),
                &format!("expires={}", expires + 3600),
            )
        };
        for bad in [tampered_sig, other_repo, other_digest, later] {
            let r = reqwest::get(reg.url(&bad)).await.unwrap();
            let (status, code, _) = error_of(r).await;
            assert_eq!((status, code.as_str()), (403, "DENIED"), "{bad}");
        }
        // And an expired one.
        reg.server.state.ecr.clock.advance(time::Duration::hours(2));
        let r = reqwest::get(reg.url(&location)).await.unwrap();
        assert_eq!(r.status(), 403);

        // Unknown blob: 404 before any redirect.
        let r = reg
            .req(
                Method::GET,
                &format!("/v2/team/redirect/blobs/{}", sha256(b"none")),
            )
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (404, "BLOB_UNKNOWN"));
    }
}

#[tokio::test]
async fn direct_blob_reads_and_ranges() {
    for &backend in BACKENDS {
        let reg = Reg::start_with(backend, |c| c.blob_redirect = false).await;
        reg.create_repo("direct").await;
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 97) as u8).collect();
        let digest = reg.push_blob("direct", &data).await;
        let path = format!("/v2/direct/blobs/{digest}");

        let r = reg.req(Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-length"), "10000");
        assert_eq!(header(&r, "docker-content-digest"), digest);
        assert_eq!(
            header(&r, "docker-distribution-api-version"),
            "registry/2.0"
        );
        assert_eq!(r.bytes().await.unwrap(), data);

        for (range, start, end) in [
            ("bytes=0-0", 0usize, 1usize),
            ("bytes=100-199", 100, 200),
            ("bytes=9990-", 9990, 10_000),
            ("bytes=-10", 9990, 10_000),
            ("bytes=9000-20000", 9000, 10_000),
        ] {
            let r = reg
                .req(Method::GET, &path)
                .header("range", range)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 206, "{range}");
            assert_eq!(
                header(&r, "content-range"),
                format!("bytes {start}-{}/10000", end - 1)
            );
            assert_eq!(header(&r, "content-length"), (end - start).to_string());
            assert_eq!(r.bytes().await.unwrap(), &data[start..end]);
        }
        for range in ["bytes=10000-", "bytes=20000-20010", "bytes=-0"] {
            let r = reg
                .req(Method::GET, &path)
                .header("range", range)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 416, "{range}");
            assert_eq!(header(&r, "content-range"), "bytes */10000");
        }
        // Several ranges: the whole blob.
        let r = reg
            .req(Method::GET, &path)
            .header("range", "bytes=0-1,5-6")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // sha512 blobs, through a chunked session.
        let d512 = Digest::of(Algorithm::Sha512, &data).to_string();
        let r = reg
            .req(Method::POST, "/v2/direct/blobs/uploads/")
            .send()
            .await
            .unwrap();
        let location = header(&r, "location").to_string();
        let r = reg
            .req(Method::PATCH, &location)
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let r = reg
            .req(Method::PUT, &format!("{location}?digest={d512}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(header(&r, "docker-content-digest"), d512);
        let r = reg
            .req(Method::GET, &format!("/v2/direct/blobs/{d512}"))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "docker-content-digest"), d512);
        assert_eq!(r.bytes().await.unwrap(), data);
        let r = reg
            .req(
                Method::POST,
                &format!(
                    "/v2/direct/blobs/uploads/?digest={}",
                    Digest::of(Algorithm::Sha512, b"tiny")
                ),
            )
            .body(b"tiny".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
}

/// `--blobs s3://BUCKET/PREFIX` (moto's S3 server here) under in-memory
/// metadata: a chunked push of a layer bigger than a multipart part, a
/// pull that follows the 307 to a presigned URL of the bucket (as ECR
/// redirects to S3), GetDownloadUrlForLayer handing out the same kind of
/// URL, and a blob gone from the bucket answering BLOB_UNKNOWN and
/// LayersNotFoundException instead of a dead link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_blobs_are_served_by_presigned_urls() {
    ecrd::test_support::s3::use_test_credentials();
    let s3 = ecrd::test_support::s3::S3TestServer::start();
    let bucket = s3.bucket().await;
    let endpoint = s3.endpoint().to_string();
    let reg = Reg::start_with(Backend::Memory, |c| {
        c.blobs_url = Some(format!("s3://{bucket}/ecrd"));
        c.s3_endpoint = Some(endpoint.clone());
    })
    .await;
    let health: Value = reqwest::get(reg.url("/_ecrd/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (health["backend"].as_str(), health["blobs"].as_str()),
        (Some("memory"), Some("s3"))
    );
    reg.create_repo("s3/app").await;

    // A 9 MiB layer in two PATCHes, as chunked clients push.
    let layer: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let digest = sha256(&layer);
    let r = reg
        .req(Method::POST, "/v2/s3/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut location = header(&r, "location").to_string();
    for piece in layer.chunks(layer.len() / 2 + 1) {
        let r = reg
            .http
            .patch(reg.url(&location))
            .header("authorization", &reg.auth)
            .header("content-type", "application/octet-stream")
            .body(piece.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        location = header(&r, "location").to_string();
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = reg
        .http
        .put(reg.url(&format!("{location}{sep}digest={digest}")))
        .header("authorization", &reg.auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let c = reg.push_blob("s3/app", config).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": c, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": layer.len()}],
    })
    .to_string();
    let r = reg
        .put_manifest("s3/app", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // The pull: a 307 to the bucket, whose URL needs nothing else.
    let blob_path = format!("/v2/s3/app/blobs/{digest}");
    let r = reg.req(Method::GET, &blob_path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    let presigned = header(&r, "location").to_string();
    let hex = &digest["sha256:".len()..];
    let object = format!("{endpoint}/{bucket}/ecrd/blobs/sha256/{}/{hex}", &hex[..2]);
    assert!(
        presigned.starts_with(&format!("{object}?")),
        "{presigned} is not {object}?..."
    );
    assert!(presigned.contains("X-Amz-Signature="), "{presigned}");
    let r = reqwest::get(&presigned).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), layer);
    // A HEAD is still answered by ecrd.
    let r = reg.req(Method::HEAD, &blob_path).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), layer.len().to_string());

    // GetDownloadUrlForLayer hands out the bucket's URL too.
    let ecr = reg.server.ecr();
    let (_, _) = common::push_image(&ecr, "s3/app", "sdk", "v2").await;
    let sdk_layer = "layer of sdk".repeat(10);
    let out = ecr
        .get_download_url_for_layer()
        .repository_name("s3/app")
        .layer_digest(sha256(sdk_layer.as_bytes()))
        .send()
        .await
        .unwrap();
    let url = out.download_url().unwrap();
    assert!(
        url.starts_with(&format!("{endpoint}/{bucket}/ecrd/blobs/")),
        "{url}"
    );
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), sdk_layer.as_bytes());

    // The object gone from the bucket: unknown, not a dead URL.
    use object_store::ObjectStoreExt as _;
    let key = object
        .strip_prefix(&format!("{endpoint}/{bucket}/"))
        .unwrap()
        .to_string();
    s3.builder(&bucket)
        .build()
        .unwrap()
        .delete(&object_store::path::Path::from(key))
        .await
        .unwrap();
    let r = reg.req(Method::GET, &blob_path).send().await.unwrap();
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (404, "BLOB_UNKNOWN"));
    let err = ecr
        .get_download_url_for_layer()
        .repository_name("s3/app")
        .layer_digest(&digest)
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::err_code(&err).0, "LayersNotFoundException");
}

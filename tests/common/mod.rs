//! Test harness: starts ecrd in-process on an ephemeral loopback port and
//! builds real clients (the AWS SDK for Rust) pointed at it.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

pub mod registry;
pub mod upstream;

use aws_credential_types::Credentials;
use aws_sdk_ecr::config::Region;
use ecrd::{AppState, ServeConfig, Server};

/// The storage backends every integration test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    /// `--data-dir` on a fresh temporary directory.
    Disk,
    /// `--metadata` on a fresh PostgreSQL database
    /// (`ecrd::test_support::postgres`), blobs in a fresh `--data-dir`.
    Postgres,
    /// What replicas run on: `--metadata` on a fresh PostgreSQL database
    /// and `--blobs` on a fresh bucket of an S3 server
    /// (`ecrd::test_support::s3`), no data directory.
    Shared,
}

/// The backends a test loops over: memory and disk, or the list in
/// `ECRD_TEST_BACKENDS` (comma-separated names, e.g. `postgres`), which is
/// how CI runs whole suites again on PostgreSQL.
pub const BACKENDS: Backends = Backends;

pub struct Backends;

impl IntoIterator for Backends {
    type Item = &'static Backend;
    type IntoIter = std::slice::Iter<'static, Backend>;

    fn into_iter(self) -> Self::IntoIter {
        static SELECTED: std::sync::OnceLock<Vec<Backend>> = std::sync::OnceLock::new();
        SELECTED
            .get_or_init(|| match std::env::var("ECRD_TEST_BACKENDS") {
                Ok(list) if !list.trim().is_empty() => list
                    .split(',')
                    .map(|name| {
                        Backend::from_label(name.trim()).unwrap_or_else(|| {
                            panic!("ECRD_TEST_BACKENDS: unknown backend '{name}'")
                        })
                    })
                    .collect(),
                _ => vec![Backend::Memory, Backend::Disk],
            })
            .iter()
    }
}

impl Backend {
    /// What `/_ecrd/health` reports as `backend` (the metadata's).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Disk => "disk",
            Backend::Postgres | Backend::Shared => "postgres",
        }
    }

    /// Its name in `ECRD_TEST_BACKENDS`.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Shared => "shared",
            other => other.name(),
        }
    }

    fn from_label(label: &str) -> Option<Backend> {
        [
            Backend::Memory,
            Backend::Disk,
            Backend::Postgres,
            Backend::Shared,
        ]
        .into_iter()
        .find(|b| b.label() == label)
    }

    /// Whether state outlives the process (a restart on the same
    /// configuration sees it).
    pub fn durable(self) -> bool {
        self != Backend::Memory
    }
}

pub struct TestServer {
    pub url: String,
    pub port: u16,
    /// The public registry's URL, for a server started with `public_port`.
    pub public_url: Option<String>,
    /// The generated CA of a server started with `--tls`.
    pub tls_ca: Option<std::path::PathBuf>,
    pub state: Arc<AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The data directory of a Disk server, removed when the server is.
    data_dir: Option<tempfile::TempDir>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut ServeConfig)) -> Self {
        let mut config = ServeConfig::for_tests();
        configure(&mut config);
        if matches!(backend, Backend::Postgres | Backend::Shared) && config.metadata_url.is_none() {
            config.metadata_url = Some(ecrd::test_support::postgres::fresh_database());
        }
        if backend == Backend::Shared && config.blobs_url.is_none() {
            ecrd::test_support::s3::use_test_credentials();
            let s3 = ecrd::test_support::s3::shared();
            config.blobs_url = Some(format!("s3://{}/ecrd", s3.bucket().await));
            config.s3_endpoint = Some(s3.endpoint().to_string());
        }
        let data_dir = match backend {
            Backend::Memory | Backend::Shared => None,
            // A test that names its own directory (to restart on it) keeps it.
            Backend::Disk | Backend::Postgres if config.data_dir.is_some() => None,
            Backend::Disk | Backend::Postgres => {
                let dir = tempfile::tempdir().expect("temporary data directory");
                config.data_dir = Some(dir.path().to_path_buf());
                Some(dir)
            }
        };
        let server = Server::bind(config).await.expect("server binds");
        let addr = server.local_addr().unwrap();
        let public_url = server.public_addr().map(|a| format!("http://{a}"));
        let state = server.state();
        let tls_ca = server.tls_ca_path().map(|p| p.to_path_buf());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        TestServer {
            url: format!("http://{addr}"),
            port: addr.port(),
            public_url,
            tls_ca,
            state,
            shutdown: Some(tx),
            task: Some(task),
            data_dir,
        }
    }

    /// Shuts the server down and waits until its state (and so a data
    /// directory's lock) is released, so another server can open the same
    /// directory. Clones of `state` held elsewhere must be dropped first.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .expect("server stops within 10 s")
                .expect("server task")
                .expect("server ran");
        }
        let weak = Arc::downgrade(&self.state);
        drop(self);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while weak.strong_count() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "server state still referenced 10 s after shutdown"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// An ECR client with the built-in `test`/`test` key in us-east-1.
    pub fn ecr(&self) -> aws_sdk_ecr::Client {
        self.ecr_as("test", "test", "us-east-1")
    }

    pub fn ecr_as(&self, key: &str, secret: &str, region: &str) -> aws_sdk_ecr::Client {
        let config = aws_sdk_ecr::Config::builder()
            .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(Region::new(region.to_string()))
            .credentials_provider(Credentials::new(key, secret, None, None, "ecrd-tests"))
            .build();
        aws_sdk_ecr::Client::from_conf(config)
    }

    /// An ECR Public client with the given key, in ECR Public's one region.
    pub fn ecr_public_as(&self, key: &str, secret: &str) -> aws_sdk_ecrpublic::Client {
        self.ecr_public_in(key, secret, "us-east-1")
    }

    pub fn ecr_public_in(
        &self,
        key: &str,
        secret: &str,
        region: &str,
    ) -> aws_sdk_ecrpublic::Client {
        let config = aws_sdk_ecrpublic::Config::builder()
            .behavior_version(aws_sdk_ecrpublic::config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_sdk_ecrpublic::config::Region::new(region.to_string()))
            .credentials_provider(Credentials::new(key, secret, None, None, "ecrd-tests"))
            .build();
        aws_sdk_ecrpublic::Client::from_conf(config)
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// `https://localhost:<port>`, for a server started with `--tls`.
    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// A client that trusts the server's generated CA (and only it).
    pub fn https(&self) -> reqwest::Client {
        let ca = self.tls_ca.as_ref().expect("server started with --tls");
        let pem = std::fs::read(ca).unwrap();
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }
}

/// The error code and message of a failed SDK call.
pub fn err_code<E, R>(err: &aws_sdk_ecr::error::SdkError<E, R>) -> (String, String)
where
    E: aws_sdk_ecr::error::ProvideErrorMetadata,
{
    let meta = err.as_service_error().map(|e| (e.code(), e.message()));
    match meta {
        Some((code, message)) => (
            code.unwrap_or("").to_string(),
            message.unwrap_or("").to_string(),
        ),
        None => ("not a service error".to_string(), String::new()),
    }
}

/// Signs a control-plane request with aws-sigv4 (the SDK's own signer) and
/// sends it with reqwest, so tests can send bodies no SDK would.
pub async fn signed_post(
    url: &str,
    target: Option<&str>,
    body: Vec<u8>,
    key: &str,
    secret: &str,
    region: &str,
    at: std::time::SystemTime,
) -> reqwest::Response {
    let mut headers: Vec<(String, String)> =
        vec![("content-type".into(), "application/x-amz-json-1.1".into())];
    if let Some(t) = target {
        headers.push((
            "x-amz-target".into(),
            format!("AmazonEC2ContainerRegistry_V20150921.{t}"),
        ));
    }
    let builder = signed_builder(
        &reqwest::Client::new(),
        url,
        "ecr",
        headers,
        &body,
        key,
        secret,
        region,
        at,
    );
    builder.body(body).send().await.unwrap()
}

/// An ECR operation signed with the default key and region, sent with
/// `client` (e.g. over HTTPS with `TestServer::https`).
pub async fn api_call_via(
    client: &reqwest::Client,
    url: &str,
    target: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let headers = vec![
        ("content-type".into(), "application/x-amz-json-1.1".into()),
        (
            "x-amz-target".into(),
            format!("AmazonEC2ContainerRegistry_V20150921.{target}"),
        ),
    ];
    let builder = signed_builder(
        client,
        url,
        "ecr",
        headers,
        body.as_bytes(),
        "test",
        "test",
        "us-east-1",
        std::time::SystemTime::now(),
    );
    let response = builder.body(body.to_string()).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json)
}

/// `signed_post` with the default key, region and the current time.
pub async fn api_call(
    url: &str,
    target: &str,
    body: &str,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let response = signed_post(
        url,
        Some(target),
        body.as_bytes().to_vec(),
        "test",
        "test",
        "us-east-1",
        std::time::SystemTime::now(),
    )
    .await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json, headers)
}

/// The SHA-256 digest of `data`, as `sha256:<hex>`.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Uploads `data` as one layer through the control plane; returns its digest.
pub async fn upload_layer(
    ecr: &aws_sdk_ecr::Client,
    registry: Option<&str>,
    repo: &str,
    data: &[u8],
) -> String {
    let upload = ecr
        .initiate_layer_upload()
        .set_registry_id(registry.map(str::to_string))
        .repository_name(repo)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap().to_string();
    ecr.upload_layer_part()
        .set_registry_id(registry.map(str::to_string))
        .repository_name(repo)
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(data.len() as i64 - 1)
        .layer_part_blob(aws_smithy_types::Blob::new(data.to_vec()))
        .send()
        .await
        .unwrap();
    let digest = sha256_digest(data);
    ecr.complete_layer_upload()
        .set_registry_id(registry.map(str::to_string))
        .repository_name(repo)
        .upload_id(&id)
        .layer_digests(&digest)
        .send()
        .await
        .unwrap();
    digest
}

/// Pushes a small Docker v2 image (a config and one layer made from `seed`)
/// through the control plane, tagged `tag`; returns the manifest and its
/// digest.
pub async fn push_image(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    seed: &str,
    tag: &str,
) -> (String, String) {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let layer = format!("layer of {seed}").repeat(10);
    let c = upload_layer(ecr, None, repo, config.as_bytes()).await;
    let l = upload_layer(ecr, None, repo, layer.as_bytes()).await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{c}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{l}"}}]}}"#,
        config.len(),
        layer.len()
    );
    ecr.put_image()
        .repository_name(repo)
        .image_manifest(&manifest)
        .image_tag(tag)
        .send()
        .await
        .unwrap();
    let digest = sha256_digest(manifest.as_bytes());
    (manifest, digest)
}

/// Sends a SigV4-signed `POST /` for any service (`sts` for the query
/// protocol) with the given content type; returns status and body text.
pub async fn signed_service_post(
    url: &str,
    service: &str,
    content_type: &str,
    body: &str,
    key: &str,
    secret: &str,
    region: &str,
) -> (u16, String) {
    let headers = vec![("content-type".to_string(), content_type.to_string())];
    let builder = signed_builder(
        &reqwest::Client::new(),
        url,
        service,
        headers,
        body.as_bytes(),
        key,
        secret,
        region,
        std::time::SystemTime::now(),
    );
    let response = builder.body(body.to_string()).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// A reqwest `POST /` carrying `headers` and the SigV4 headers that
/// aws-sigv4 (the SDK's own signer) computes for `service` over `body`.
#[allow(clippy::too_many_arguments)]
fn signed_builder(
    client: &reqwest::Client,
    url: &str,
    service: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
    key: &str,
    secret: &str,
    region: &str,
    at: std::time::SystemTime,
) -> reqwest::RequestBuilder {
    let signed = sigv4_headers(url, service, headers, body, key, secret, region, at, false);
    let mut builder = client.post(format!("{url}/"));
    for (k, v) in &signed {
        if k != "host" {
            builder = builder.header(k.as_str(), v.as_str());
        }
    }
    builder
}

/// Every header of a `POST /` to `url` signed by aws-sigv4 for `service`
/// over `body`: `headers` (with `host` first) plus the signature's.
/// `declare_hash` adds a signed `x-amz-content-sha256` (as S3 clients do).
#[allow(clippy::too_many_arguments)]
pub fn sigv4_headers(
    url: &str,
    service: &str,
    mut headers: Vec<(String, String)>,
    body: &[u8],
    key: &str,
    secret: &str,
    region: &str,
    at: std::time::SystemTime,
    declare_hash: bool,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
    };
    use aws_sigv4::sign::v4;
    headers.insert(
        0,
        (
            "host".into(),
            url.trim_start_matches("http://")
                .trim_start_matches("https://")
                .to_string(),
        ),
    );
    let identity = Credentials::new(key, secret, None, None, "t").into();
    let mut settings = SigningSettings::default();
    if declare_hash {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        format!("{url}/"),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("{url}/"));
    for (k, v) in &headers {
        request = request.header(k, v);
    }
    let mut request = request.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect()
}

/// A gzip-compressed tar layer holding `files` (path, content); a path
/// ending in `/` is a directory. Deterministic (fixed times and modes).
pub fn tar_gz_layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, path, std::io::empty())
                .unwrap();
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            builder.append_data(&mut header, path, *content).unwrap();
        }
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// Pushes an OCI image of `layers` (gzip tar blobs, base first) through
/// the control plane, tagged `tag`; returns the manifest digest.
pub async fn push_layered_image(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    tag: &str,
    layers: &[Vec<u8>],
) -> String {
    let mut descriptors = Vec::new();
    for layer in layers {
        let digest = upload_layer(ecr, None, repo, layer).await;
        descriptors.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{},"digest":"{digest}"}}"#,
            layer.len()
        ));
    }
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"tag":"{tag}"}}"#
    );
    let c = upload_layer(ecr, None, repo, config.as_bytes()).await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{c}"}},"layers":[{}]}}"#,
        config.len(),
        descriptors.join(",")
    );
    ecr.put_image()
        .repository_name(repo)
        .image_manifest(&manifest)
        .image_manifest_media_type("application/vnd.oci.image.manifest.v1+json")
        .image_tag(tag)
        .send()
        .await
        .unwrap();
    sha256_digest(manifest.as_bytes())
}

/// The `Authorization` header value a registry client sends after
/// `docker login` with `ecr`'s `get-login-password`: `Basic <token>`.
pub async fn registry_authorization(ecr: &aws_sdk_ecr::Client) -> String {
    let out = ecr.get_authorization_token().send().await.unwrap();
    let token = out.authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_string();
    format!("Basic {token}")
}

/// An OCI image layout at `dir` holding one image (one gzip layer holding
/// `content` at `hello.txt`) named `ref_name`; returns the manifest digest.
pub fn write_oci_layout(dir: &std::path::Path, ref_name: &str, content: &[u8]) -> String {
    let put = |bytes: &[u8]| -> (String, usize) {
        let digest = sha256_digest(bytes);
        let path = dir.join("blobs/sha256").join(&digest["sha256:".len()..]);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        (digest, bytes.len())
    };
    let layer = tar_gz_layer(&[("hello.txt", content)]);
    let (layer_digest, layer_size) = put(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{"Labels":{{"ref":"{ref_name}"}}}}}}"#
    );
    let (config_digest, config_size) = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{config_size},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{layer_size},"digest":"{layer_digest}"}}]}}"#
    );
    let (manifest_digest, manifest_size) = put(manifest.as_bytes());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":{manifest_size},"digest":"{manifest_digest}","annotations":{{"org.opencontainers.image.ref.name":"{ref_name}"}}}}]}}"#
        ),
    )
    .unwrap();
    manifest_digest
}

/// A tar file at `file` of the directory `dir` (an OCI archive of a layout).
pub fn tar_directory(dir: &std::path::Path, file: &std::path::Path) {
    let mut builder = tar::Builder::new(std::fs::File::create(file).unwrap());
    builder.append_dir_all(".", dir).unwrap();
    builder.finish().unwrap();
}

/// A `docker save` archive (the format before Docker 25: `manifest.json`,
/// a config file and uncompressed layer tars) tagged `repo_tag`.
pub fn write_docker_archive(file: &std::path::Path, repo_tag: &str, content: &[u8]) {
    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    layer
        .append_data(&mut header, "hello.txt", content)
        .unwrap();
    let layer = layer.into_inner().unwrap();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let listing = format!(
        r#"[{{"Config":"cfg.json","RepoTags":["{repo_tag}"],"Layers":["0123abcd/layer.tar"]}}]"#
    );
    let mut builder = tar::Builder::new(std::fs::File::create(file).unwrap());
    for (name, bytes) in [
        ("manifest.json", listing.as_bytes()),
        ("cfg.json", &config[..]),
        ("0123abcd/layer.tar", layer.as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, bytes).unwrap();
    }
    builder.finish().unwrap();
}

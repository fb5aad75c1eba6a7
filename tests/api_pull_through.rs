//! Pull through cache: the five rule operations through the AWS SDK for
//! Rust (validation, errors, pagination, the fields answers carry), and
//! pulls through the cache from an in-test upstream registry on both
//! planes: anonymous, Basic and Bearer-token upstreams, later pulls from
//! the cache, the upstream stopped, the daily tag re-check on ecrd's clock,
//! an index and its child, a corrupt upstream refused, a manifest answered
//! before its blobs are fetched, and `ecr` upstreams (this ecrd, or a remote
//! one logged in to with GetAuthorizationToken). Every test runs on the
//! memory and the disk backend.

#![allow(clippy::unwrap_used)]

mod common;

use common::upstream::{Upstream, UpstreamAuth};
use common::{err_code, sha256_digest, TestServer, BACKENDS};

const HUB_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/hub";
const GH_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/gh";
const BAD_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/garbled";
const OTHER_REGION_SECRET: &str =
    "arn:aws:secretsmanager:eu-west-1:000000000000:secret:ecr-pullthroughcache/hub";
const MISSING_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/none";

/// A server whose upstream kinds point at `upstreams`, with a secrets file
/// holding `user`/`pass` for the hub and gh secrets.
async fn server(
    backend: common::Backend,
    upstreams: &[(&str, &str)],
) -> (TestServer, tempfile::TempDir) {
    server_with_secrets(backend, upstreams, serde_json::json!({})).await
}

/// [`server`], with more entries in the secrets file.
async fn server_with_secrets(
    backend: common::Backend,
    upstreams: &[(&str, &str)],
    extra: serde_json::Value,
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.json");
    let mut body = serde_json::json!({
        HUB_SECRET: {"username": "user", "accessToken": "pass"},
        GH_SECRET: {"username": "user", "accessToken": "pass"},
        OTHER_REGION_SECRET: {"username": "user", "accessToken": "pass"},
        BAD_SECRET: "not an object",
    });
    if let (Some(all), Some(more)) = (body.as_object_mut(), extra.as_object()) {
        all.extend(more.clone());
    }
    std::fs::write(&secrets, body.to_string()).unwrap();
    let list: Vec<String> = upstreams.iter().map(|(k, u)| format!("{k}={u}")).collect();
    let server = TestServer::start_with(backend, |c| {
        c.secrets_file = Some(secrets.clone());
        c.upstreams = list;
    })
    .await;
    (server, dir)
}

async fn password(ecr: &aws_sdk_ecr::Client) -> String {
    let out = ecr.get_authorization_token().send().await.unwrap();
    out.authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_string()
}

/// `GET` on `/v2/`, logged in; status, headers and body.
async fn pull(
    server: &TestServer,
    token: &str,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = server
        .http()
        .get(format!("{}/v2/{path}", server.url))
        .header("authorization", format!("Basic {token}"))
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// Waits until the server's background imports (a manifest answered, its
/// blobs still being fetched) have committed or failed.
async fn imports_done(server: &TestServer) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.state.ecr.pull_through_imports() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "imports still running after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn create_rule(ecr: &aws_sdk_ecr::Client, prefix: &str, url: &str, secret: Option<&str>) {
    ecr.create_pull_through_cache_rule()
        .ecr_repository_prefix(prefix)
        .upstream_registry_url(url)
        .set_credential_arn(secret.map(str::to_string))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn rules_crud_validation_and_pagination() {
    for &backend in BACKENDS {
        let (server, _dir) = server(backend, &[]).await;
        let ecr = server.ecr();
        let created = ecr
            .create_pull_through_cache_rule()
            .ecr_repository_prefix("hub")
            .upstream_registry_url("registry-1.docker.io")
            .credential_arn(HUB_SECRET)
            .send()
            .await
            .unwrap();
        assert_eq!(created.ecr_repository_prefix(), Some("hub"));
        assert_eq!(
            created.upstream_registry().map(|u| u.as_str()),
            Some("docker-hub")
        );
        assert_eq!(created.credential_arn(), Some(HUB_SECRET));
        assert_eq!(created.registry_id(), Some("000000000000"));
        assert!(created.created_at().is_some());
        // Fields the user did not set are absent.
        assert_eq!(created.upstream_repository_prefix(), None);
        assert_eq!(created.custom_role_arn(), None);

        create_rule(&ecr, "quay", "quay.io", None).await;
        create_rule(&ecr, "k8s", "registry.k8s.io", None).await;
        create_rule(&ecr, "ecr-public", "public.ecr.aws", None).await;

        // Errors, as ECR answers them.
        let cases: Vec<(&str, &str, Option<&str>, &str)> = vec![
            (
                "hub",
                "registry-1.docker.io",
                Some(HUB_SECRET),
                "PullThroughCacheRuleAlreadyExistsException",
            ),
            (
                "harbor",
                "harbor.example.com",
                None,
                "UnsupportedUpstreamRegistryException",
            ),
            (
                "dh",
                "registry-1.docker.io",
                None,
                "UnsupportedUpstreamRegistryException",
            ),
            (
                "dh",
                "registry-1.docker.io",
                Some(MISSING_SECRET),
                "SecretNotFoundException",
            ),
            (
                "dh",
                "registry-1.docker.io",
                Some(BAD_SECRET),
                "UnableToDecryptSecretValueException",
            ),
            (
                "dh",
                "registry-1.docker.io",
                Some(OTHER_REGION_SECRET),
                "UnableToAccessSecretException",
            ),
            (
                "q2",
                "quay.io",
                Some(HUB_SECRET),
                "InvalidParameterException",
            ),
            ("Bad_Prefix", "quay.io", None, "InvalidParameterException"),
        ];
        for (prefix, url, secret, code) in cases {
            let err = ecr
                .create_pull_through_cache_rule()
                .ecr_repository_prefix(prefix)
                .upstream_registry_url(url)
                .set_credential_arn(secret.map(str::to_string))
                .send()
                .await
                .unwrap_err();
            assert_eq!(
                err_code(&err).0,
                code,
                "{prefix} {url} {secret:?}: {:?}",
                err_code(&err)
            );
        }
        let err = ecr
            .create_pull_through_cache_rule()
            .ecr_repository_prefix("harbor")
            .upstream_registry_url("harbor.example.com")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err).1,
            "The upstream registry URL harbor.example.com is invalid. Specify a valid upstream registry URL and try again"
        );
        let err = ecr
            .create_pull_through_cache_rule()
            .ecr_repository_prefix("q3")
            .upstream_registry_url("quay.io")
            .upstream_repository_prefix("team")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");

        // Describe: all, in prefix order, in pages.
        let all = ecr
            .describe_pull_through_cache_rules()
            .send()
            .await
            .unwrap();
        let prefixes: Vec<&str> = all
            .pull_through_cache_rules()
            .iter()
            .filter_map(|r| r.ecr_repository_prefix())
            .collect();
        assert_eq!(prefixes, ["ecr-public", "hub", "k8s", "quay"]);
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = ecr
                .describe_pull_through_cache_rules()
                .max_results(3)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            assert!(page.pull_through_cache_rules().len() <= 3);
            seen.extend(
                page.pull_through_cache_rules()
                    .iter()
                    .map(|r| r.ecr_repository_prefix().unwrap().to_string()),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen, prefixes);

        // By prefix; a missing one is not found (Terraform's "gone").
        let one = ecr
            .describe_pull_through_cache_rules()
            .ecr_repository_prefixes("hub")
            .send()
            .await
            .unwrap();
        let rule = &one.pull_through_cache_rules()[0];
        assert_eq!(rule.upstream_registry_url(), Some("registry-1.docker.io"));
        assert_eq!(rule.credential_arn(), Some(HUB_SECRET));
        assert!(rule.updated_at().is_some());
        assert_eq!(rule.upstream_repository_prefix(), None);
        let err = ecr
            .describe_pull_through_cache_rules()
            .ecr_repository_prefixes("nope")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "PullThroughCacheRuleNotFoundException");

        // Update: a new secret, checked as at create time.
        let updated = ecr
            .update_pull_through_cache_rule()
            .ecr_repository_prefix("hub")
            .credential_arn(GH_SECRET)
            .send()
            .await
            .unwrap();
        assert_eq!(updated.credential_arn(), Some(GH_SECRET));
        let err = ecr
            .update_pull_through_cache_rule()
            .ecr_repository_prefix("hub")
            .credential_arn(MISSING_SECRET)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "SecretNotFoundException");
        let err = ecr
            .update_pull_through_cache_rule()
            .ecr_repository_prefix("nope")
            .credential_arn(GH_SECRET)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "PullThroughCacheRuleNotFoundException");

        // Delete answers the rule; a second delete is not found.
        let deleted = ecr
            .delete_pull_through_cache_rule()
            .ecr_repository_prefix("quay")
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.upstream_registry_url(), Some("quay.io"));
        let err = ecr
            .delete_pull_through_cache_rule()
            .ecr_repository_prefix("quay")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "PullThroughCacheRuleNotFoundException");

        // The rule limit.
        for i in 0..47 {
            create_rule(&ecr, &format!("p{i:02}"), "quay.io", None).await;
        }
        let err = ecr
            .create_pull_through_cache_rule()
            .ecr_repository_prefix("one-too-many")
            .upstream_registry_url("quay.io")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "LimitExceededException");
    }
}

#[tokio::test]
async fn pull_through_basic_upstream_caches_and_survives_the_upstream() {
    for &backend in BACKENDS {
        let upstream = Upstream::start(UpstreamAuth::Basic {
            username: "user".into(),
            password: "pass".into(),
        })
        .await;
        let image = upstream.add_image("library/busybox", "1.36", "one");
        let (server, _dir) = server(backend, &[("docker-hub", &upstream.url)]).await;
        let ecr = server.ecr();
        create_rule(&ecr, "hub", "registry-1.docker.io", Some(HUB_SECRET)).await;
        let valid = ecr
            .validate_pull_through_cache_rule()
            .ecr_repository_prefix("hub")
            .send()
            .await
            .unwrap();
        assert!(valid.is_valid(), "{:?}", valid.failure());
        let token = password(&ecr).await;

        // First pull: fetched (docker-hub's `library/` for a single name).
        let (status, headers, body) = pull(&server, &token, "hub/busybox/manifests/1.36").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, image.manifest);
        assert_eq!(headers["docker-content-digest"], image.digest.as_str());
        for (digest, bytes) in &image.blobs {
            let (status, _, body) =
                pull(&server, &token, &format!("hub/busybox/blobs/{digest}")).await;
            assert_eq!(status, 200);
            assert_eq!(&body, bytes);
        }
        assert_eq!(upstream.manifest_gets(), 1);
        imports_done(&server).await;
        let repos = ecr
            .describe_repositories()
            .repository_names("hub/busybox")
            .send()
            .await
            .unwrap();
        assert_eq!(
            repos.repositories()[0]
                .image_tag_mutability()
                .unwrap()
                .as_str(),
            "MUTABLE"
        );

        // Later pulls come from the cache, on both planes.
        let (status, _, _) = pull(&server, &token, "hub/busybox/manifests/1.36").await;
        assert_eq!(status, 200);
        let got = ecr
            .batch_get_image()
            .repository_name("hub/busybox")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("1.36")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(got.images().len(), 1);
        assert_eq!(upstream.manifest_gets(), 1);

        // A changed upstream tag is picked up only after ECR's 24 hours.
        let newer = upstream.add_image("library/busybox", "1.36", "two");
        let (_, headers, _) = pull(&server, &token, "hub/busybox/manifests/1.36").await;
        assert_eq!(headers["docker-content-digest"], image.digest.as_str());
        server.state.ecr.clock.advance(time::Duration::hours(25));
        // Registry passwords last 12 hours on ecrd's clock.
        let token = password(&ecr).await;
        let (status, headers, _) = pull(&server, &token, "hub/busybox/manifests/1.36").await;
        assert_eq!(status, 200);
        assert_eq!(headers["docker-content-digest"], newer.digest.as_str());
        imports_done(&server).await;

        // Upstream down: cached content is served (even past the interval),
        // uncached content is not.
        upstream.stop().await;
        server.state.ecr.clock.advance(time::Duration::hours(25));
        // Registry passwords last 12 hours on ecrd's clock.
        let token = password(&ecr).await;
        let (status, headers, _) = pull(&server, &token, "hub/busybox/manifests/1.36").await;
        assert_eq!(status, 200);
        assert_eq!(headers["docker-content-digest"], newer.digest.as_str());
        let (status, _, body) = pull(&server, &token, "hub/busybox/manifests/other").await;
        assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
        let err = ecr
            .batch_get_image()
            .repository_name("hub/alpine")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("3")
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "UnableToGetUpstreamImageException");
        let valid = ecr
            .validate_pull_through_cache_rule()
            .ecr_repository_prefix("hub")
            .send()
            .await
            .unwrap();
        assert!(!valid.is_valid());
        assert!(valid.failure().is_some_and(|f| !f.is_empty()));
    }
}

#[tokio::test]
async fn pull_through_bearer_token_upstream_and_an_index() {
    for &backend in BACKENDS {
        let upstream = Upstream::start(UpstreamAuth::Bearer {
            username: "user".into(),
            password: "pass".into(),
        })
        .await;
        let child = upstream.add_image("org/tool", "amd64", "child");
        let index = upstream.add_index("org/tool", "v1", &[&child]);
        let (server, _dir) = server(backend, &[("github-container-registry", &upstream.url)]).await;
        let ecr = server.ecr();
        create_rule(&ecr, "gh", "ghcr.io", Some(GH_SECRET)).await;
        let token = password(&ecr).await;
        let (status, headers, body) = pull(&server, &token, "gh/org/tool/manifests/v1").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers["docker-content-digest"], index.as_str());
        // The child the client asks for next is fetched then, through the
        // control plane this time.
        let layer = &child.blobs[1].0;
        let got = ecr
            .batch_get_image()
            .repository_name("gh/org/tool")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(&child.digest)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(got.images().len(), 1, "{:?}", got.failures());
        let url = ecr
            .get_download_url_for_layer()
            .repository_name("gh/org/tool")
            .layer_digest(layer)
            .send()
            .await
            .unwrap();
        let bytes = reqwest::get(url.download_url().unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(sha256_digest(&bytes), *layer);
    }
}

#[tokio::test]
async fn wrong_credentials_and_a_corrupt_upstream_store_nothing() {
    for &backend in BACKENDS {
        let upstream = Upstream::start(UpstreamAuth::Bearer {
            username: "someone".into(),
            password: "else".into(),
        })
        .await;
        upstream.add_image("org/app", "v1", "x");
        let open = Upstream::start(UpstreamAuth::Anonymous).await;
        open.add_image("app", "v1", "y");
        open.corrupt_blobs(true);
        let (server, _dir) = server(
            backend,
            &[
                ("github-container-registry", &upstream.url),
                ("quay", &open.url),
            ],
        )
        .await;
        let ecr = server.ecr();
        create_rule(&ecr, "gh", "ghcr.io", Some(GH_SECRET)).await;
        create_rule(&ecr, "qy", "quay.io", None).await;
        let token = password(&ecr).await;
        let valid = ecr
            .validate_pull_through_cache_rule()
            .ecr_repository_prefix("gh")
            .send()
            .await
            .unwrap();
        assert!(!valid.is_valid());
        let (status, _, _) = pull(&server, &token, "gh/org/app/manifests/v1").await;
        assert_eq!(status, 404);
        // The manifest is answered at once; the corrupt layer is refused by
        // the import behind it, and nothing is kept.
        let (status, _, body) = pull(&server, &token, "qy/app/manifests/v1").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        imports_done(&server).await;
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let layer = parsed["layers"][0]["digest"].as_str().unwrap();
        let response = server
            .http()
            .get(format!("{}/v2/qy/app/blobs/{layer}", server.url))
            .header("authorization", format!("Basic {token}"))
            .send()
            .await
            .unwrap();
        assert!(
            response.bytes().await.is_err(),
            "a corrupt blob never completes"
        );
        // The config blob (intact) is linked by nobody: the failed import
        // left no repository and no image (nor did the refused upstream).
        for name in ["qy/app", "gh/org/app"] {
            let err = ecr
                .describe_images()
                .repository_name(name)
                .send()
                .await
                .unwrap_err();
            assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
        }
        // Once the upstream serves the right bytes, the next pull imports.
        open.corrupt_blobs(false);
        let (status, _, _) = pull(&server, &token, "qy/app/manifests/v1").await;
        assert_eq!(status, 200);
        imports_done(&server).await;
        let images = ecr
            .describe_images()
            .repository_name("qy/app")
            .send()
            .await
            .unwrap();
        assert_eq!(images.image_details().len(), 1);
    }
}

#[tokio::test]
async fn an_uncached_blob_is_served_while_it_is_fetched() {
    for &backend in BACKENDS {
        let upstream = Upstream::start(UpstreamAuth::Anonymous).await;
        let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let digest = upstream.add_blob(big.clone());
        let broken = Upstream::start(UpstreamAuth::Anonymous).await;
        let other: Vec<u8> = big.iter().rev().copied().collect();
        let bad_digest = broken.add_blob(other);
        broken.corrupt_blobs(true);
        let (server, _dir) =
            server(backend, &[("quay", &upstream.url), ("k8s", &broken.url)]).await;
        let ecr = server.ecr();
        create_rule(&ecr, "qy", "quay.io", None).await;
        create_rule(&ecr, "k8", "registry.k8s.io", None).await;
        let token = password(&ecr).await;

        // The upstream holds back the second half: most of the first half
        // reaches the client all the same (ecrd holds back one chunk).
        let release = upstream.hold_blobs();
        let mut response = server
            .http()
            .get(format!("{}/v2/qy/big/blobs/{digest}", server.url))
            .header("authorization", format!("Basic {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.content_length(), Some(big.len() as u64));
        assert_eq!(response.headers()["docker-content-digest"], digest.as_str());
        let mut received = Vec::new();
        while received.len() < big.len() / 4 {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), response.chunk())
                .await
                .expect("the first half arrives while the upstream holds the rest")
                .unwrap()
                .expect("more body");
            received.extend_from_slice(&chunk);
        }
        // Not cached until the whole blob is verified.
        let err = ecr
            .batch_check_layer_availability()
            .repository_name("qy/big")
            .layer_digests(&digest)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
        release.send(true).unwrap();
        while let Some(chunk) = response.chunk().await.unwrap() {
            received.extend_from_slice(&chunk);
        }
        assert!(received == big, "the streamed blob is the upstream's");

        // Cached: served with the upstream gone.
        upstream.stop().await;
        let (status, _, body) = pull(&server, &token, &format!("qy/big/blobs/{digest}")).await;
        assert_eq!(status, 200);
        assert!(body == big);

        // Bytes that do not match their digest: the transfer breaks at the
        // end instead of completing, and nothing is kept.
        let response = server
            .http()
            .get(format!("{}/v2/k8/big/blobs/{bad_digest}", server.url))
            .header("authorization", format!("Basic {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.bytes().await.is_err(),
            "a corrupt blob never completes"
        );
        let err = ecr
            .batch_check_layer_availability()
            .repository_name("k8/big")
            .layer_digests(&bad_digest)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
        assert_eq!(
            server
                .state
                .ecr
                .blobs
                .size(&ecrd::digest::Digest::parse(&bad_digest).unwrap())
                .await
                .unwrap(),
            None
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn an_ecr_upstream_is_another_account_or_region_of_the_same_ecrd() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| {
            c.credentials = Some("AKIAB:secretb:111111111111".into());
        })
        .await;
        let owner = server.ecr();
        owner
            .create_repository()
            .repository_name("base/app")
            .send()
            .await
            .unwrap();
        let (manifest, _) = common::push_image(&owner, "base/app", "upstream", "v1").await;
        let europe = server.ecr_as("test", "test", "eu-west-1");
        europe
            .create_repository()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        let (euro_manifest, _) = common::push_image(&europe, "app", "europe", "v1").await;

        // Same account, another region: no role needed.
        owner
            .create_pull_through_cache_rule()
            .ecr_repository_prefix("euro")
            .upstream_registry_url("000000000000.dkr.ecr.eu-west-1.amazonaws.com")
            .send()
            .await
            .unwrap();
        let token = password(&owner).await;
        let (status, _, body) = pull(&server, &token, "euro/app/manifests/v1").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, euro_manifest.as_bytes());

        // Another account, through its role: the upstream's policy decides.
        let other = server.ecr_as("AKIAB", "secretb", "us-east-1");
        other
            .create_pull_through_cache_rule()
            .ecr_repository_prefix("mirror")
            .upstream_registry_url("000000000000.dkr.ecr.us-east-1.amazonaws.com")
            .custom_role_arn("arn:aws:iam::111111111111:role/ptc")
            .upstream_repository_prefix("base")
            .send()
            .await
            .unwrap();
        let other_token = password(&other).await;
        let (status, _, _) = pull(&server, &other_token, "mirror/app/manifests/v1").await;
        assert_eq!(status, 404, "refused by the upstream without a policy");
        owner
            .set_repository_policy()
            .repository_name("base/app")
            .policy_text(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/ptc"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#,
            )
            .send()
            .await
            .unwrap();
        let (status, _, body) = pull(&server, &other_token, "mirror/app/manifests/v1").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, manifest.as_bytes());
        let parsed: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        let layer = parsed["layers"][0]["digest"].as_str().unwrap();
        let (status, _, blob) =
            pull(&server, &other_token, &format!("mirror/app/blobs/{layer}")).await;
        assert_eq!(status, 200);
        assert_eq!(sha256_digest(&blob), layer);
        imports_done(&server).await;
        let cached = other
            .describe_images()
            .repository_name("mirror/app")
            .send()
            .await
            .unwrap();
        assert_eq!(cached.image_details().len(), 1);
        server.stop().await;
    }
}

/// GetAuthorizationToken calls a server has answered with 200.
async fn logins(server: &TestServer) -> f64 {
    let text = server
        .http()
        .get(format!("{}/_ecrd/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("ecrd_requests_total{")
                && l.contains(r#"operation="GetAuthorizationToken""#)
                && l.contains(r#"status="200""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn an_ecr_upstream_may_be_a_remote_ecrd_logged_in_with_get_authorization_token() {
    const ROLE: &str = "arn:aws:iam::000000000000:role/puller";
    const WRONG_ROLE: &str = "arn:aws:iam::000000000000:role/wrong";
    for &backend in BACKENDS {
        // The upstream: another ecrd, whose account 222222222222 holds an
        // image in eu-west-1.
        let remote = TestServer::start_with(backend, |c| {
            c.credentials = Some("AKIAUPSTREAM:upsecret:222222222222".into());
        })
        .await;
        let owner = remote.ecr_as("AKIAUPSTREAM", "upsecret", "eu-west-1");
        owner
            .create_repository()
            .repository_name("team/app")
            .send()
            .await
            .unwrap();
        let (manifest, digest) = common::push_image(&owner, "team/app", "remote", "v1").await;
        let logins_before = logins(&remote).await;

        let (server, _dir) = server_with_secrets(
            backend,
            &[("ecr", &remote.url)],
            serde_json::json!({
                ROLE: {"accessKeyId": "AKIAUPSTREAM", "secretAccessKey": "upsecret"},
                WRONG_ROLE: {"accessKeyId": "AKIAUPSTREAM", "secretAccessKey": "not-it"},
            }),
        )
        .await;
        let ecr = server.ecr();
        for (prefix, role) in [("remote", ROLE), ("wrong", WRONG_ROLE)] {
            ecr.create_pull_through_cache_rule()
                .ecr_repository_prefix(prefix)
                .upstream_registry_url("222222222222.dkr.ecr.eu-west-1.amazonaws.com")
                .custom_role_arn(role)
                .send()
                .await
                .unwrap();
        }
        for (prefix, valid) in [("remote", true), ("wrong", false)] {
            let answer = ecr
                .validate_pull_through_cache_rule()
                .ecr_repository_prefix(prefix)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.is_valid(), valid, "{prefix}: {:?}", answer.failure());
        }
        let token = password(&ecr).await;

        // Through the right keys: the image, digests intact.
        let (status, headers, body) = pull(&server, &token, "remote/team/app/manifests/v1").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, manifest.as_bytes());
        assert_eq!(headers["docker-content-digest"], digest.as_str());
        let parsed: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        for blob in [&parsed["config"], &parsed["layers"][0]] {
            let wanted = blob["digest"].as_str().unwrap();
            let (status, _, bytes) =
                pull(&server, &token, &format!("remote/team/app/blobs/{wanted}")).await;
            assert_eq!(status, 200);
            assert_eq!(sha256_digest(&bytes), wanted);
        }
        imports_done(&server).await;
        let cached = ecr
            .describe_images()
            .repository_name("remote/team/app")
            .send()
            .await
            .unwrap();
        assert_eq!(
            cached.image_details()[0].image_digest(),
            Some(digest.as_str())
        );

        // Through the wrong keys: the upstream's failure, nothing cached.
        let (status, _, body) = pull(&server, &token, "wrong/team/app/manifests/v1").await;
        assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
        let err = ecr
            .batch_get_image()
            .repository_name("wrong/team/app")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("v1")
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "UnableToGetUpstreamImageException");
        let err = ecr
            .describe_repositories()
            .repository_names("wrong/team/app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");

        // One login served every request with the right keys (the password
        // is kept until it nears its expiry).
        assert_eq!(logins(&remote).await - logins_before, 1.0);

        // Cached: served with the upstream gone.
        remote.stop().await;
        let (status, _, body) = pull(&server, &token, "remote/team/app/manifests/v1").await;
        assert_eq!(status, 200);
        assert_eq!(body, manifest.as_bytes());
        server.stop().await;
    }
}

#[tokio::test]
async fn a_manifest_is_answered_before_its_blobs_are_fetched() {
    for &backend in BACKENDS {
        let upstream = Upstream::start(UpstreamAuth::Anonymous).await;
        let image = upstream.add_image("app", "v1", "held");
        let (server, _dir) = server(backend, &[("quay", &upstream.url)]).await;
        let ecr = server.ecr();
        create_rule(&ecr, "qy", "quay.io", None).await;
        let token = password(&ecr).await;

        // The upstream holds back every blob's second half: the manifest
        // reaches the client all the same, on both planes.
        let release = upstream.hold_blobs();
        let wait = std::time::Duration::from_secs(10);
        let (status, headers, body) =
            tokio::time::timeout(wait, pull(&server, &token, "qy/app/manifests/v1"))
                .await
                .expect("the manifest is answered while the blobs are held");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, image.manifest);
        assert_eq!(headers["docker-content-digest"], image.digest.as_str());
        // A second pull (by tag, by digest, through BatchGetImage) shares
        // the import: no new upstream fetch.
        let (status, _, body) = tokio::time::timeout(
            wait,
            pull(
                &server,
                &token,
                &format!("qy/app/manifests/{}", image.digest),
            ),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, image.manifest);
        let got = ecr
            .batch_get_image()
            .repository_name("qy/app")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("v1")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.images()[0].image_id().unwrap().image_digest(),
            Some(image.digest.as_str())
        );
        assert_eq!(upstream.manifest_gets(), 1);
        assert_eq!(server.state.ecr.pull_through_imports(), 1);
        // Not committed while its blobs are missing.
        let err = ecr
            .describe_images()
            .repository_name("qy/app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");

        // A blob GET during the import is served once the import has it.
        let (layer, layer_bytes) = image.blobs[1].clone();
        let url = format!("{}/v2/qy/app/blobs/{layer}", server.url);
        let auth = format!("Basic {token}");
        let blob_get = tokio::spawn(async move {
            let r = reqwest::Client::new()
                .get(url)
                .header("authorization", auth)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        release.send(true).unwrap();
        let (status, bytes) = tokio::time::timeout(wait, blob_get).await.unwrap().unwrap();
        assert_eq!(status, 200);
        assert!(bytes == layer_bytes);
        imports_done(&server).await;
        // Each blob was fetched once, by the import.
        assert_eq!(upstream.blob_gets(), image.blobs.len());
        let images = ecr
            .describe_images()
            .repository_name("qy/app")
            .send()
            .await
            .unwrap();
        let detail = &images.image_details()[0];
        assert_eq!(detail.image_digest(), Some(image.digest.as_str()));
        assert_eq!(detail.image_tags(), ["v1"]);
        assert!(detail.last_recorded_pull_time().is_some());

        // Later pulls come from the cache, with the upstream gone.
        upstream.stop().await;
        let (status, _, body) = pull(&server, &token, "qy/app/manifests/v1").await;
        assert_eq!(status, 200);
        assert_eq!(body, image.manifest);
        for (digest, bytes) in &image.blobs {
            let (status, _, body) = pull(&server, &token, &format!("qy/app/blobs/{digest}")).await;
            assert_eq!(status, 200);
            assert!(&body == bytes);
        }
        server.stop().await;
    }
}

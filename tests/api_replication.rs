//! Replication, repository creation templates and create-on-push through
//! real clients (the AWS SDK for Rust, and raw `/v2/` requests with an ECR
//! login), on both backends: cross-region and cross-account copies (allowed
//! and refused by the destination's registry policy), filters, an index
//! with its children and a signature referrer, status transitions,
//! templates and their precedence, create-on-push, and a queue that
//! survives a restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use aws_sdk_ecr::types::{
    EncryptionConfigurationForRepositoryCreationTemplate, EncryptionType, ImageIdentifier,
    ImageTagMutability, ImageTagMutabilityExclusionFilter, ImageTagMutabilityExclusionFilterType,
    RctAppliedFor, ReplicationConfiguration, ReplicationDestination, ReplicationRule,
    RepositoryFilter, RepositoryFilterType, Tag,
};
use base64::Engine;
use common::{err_code, push_image, sha256_digest, Backend, TestServer, BACKENDS};
use reqwest::Method;
use serde_json::json;

const SOURCE: &str = "000000000000";
const PARTNER: &str = "111111111111";
const STRANGER: &str = "222222222222";
const CREDENTIALS: &str =
    "AKIAPARTNER:partnersecret:111111111111,AKIASTRANGER:strangersecret:222222222222";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

async fn server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.credentials = Some(CREDENTIALS.into())).await
}

fn partner(server: &TestServer, region: &str) -> aws_sdk_ecr::Client {
    server.ecr_as("AKIAPARTNER", "partnersecret", region)
}

fn stranger(server: &TestServer, region: &str) -> aws_sdk_ecr::Client {
    server.ecr_as("AKIASTRANGER", "strangersecret", region)
}

fn destination(region: &str, registry: &str) -> ReplicationDestination {
    ReplicationDestination::builder()
        .region(region)
        .registry_id(registry)
        .build()
        .unwrap()
}

fn rule(destinations: &[(&str, &str)], prefixes: &[&str]) -> ReplicationRule {
    let mut b = ReplicationRule::builder().set_destinations(Some(
        destinations
            .iter()
            .map(|(r, a)| destination(r, a))
            .collect(),
    ));
    for p in prefixes {
        b = b.repository_filters(
            RepositoryFilter::builder()
                .filter(*p)
                .filter_type(RepositoryFilterType::PrefixMatch)
                .build()
                .unwrap(),
        );
    }
    b.build().unwrap()
}

async fn configure(ecr: &aws_sdk_ecr::Client, rules: Vec<ReplicationRule>) {
    ecr.put_replication_configuration()
        .replication_configuration(
            ReplicationConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// A registry policy letting the source account replicate (and, with
/// `create`, create repositories) into the caller's registry.
async fn allow_source(ecr: &aws_sdk_ecr::Client, region: &str, account: &str, create: bool) {
    let mut actions = vec!["ecr:ReplicateImage"];
    if create {
        actions.push("ecr:CreateRepository");
    }
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReplicationAccessCrossAccount",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{SOURCE}:root")},
            "Action": actions,
            "Resource": format!("arn:aws:ecr:{region}:{account}:repository/*"),
        }]
    });
    ecr.put_registry_policy()
        .policy_text(policy.to_string())
        .send()
        .await
        .unwrap();
}

/// (region, registry, status, failure code) per destination, sorted.
type Statuses = Vec<(String, String, String, Option<String>)>;

async fn statuses(ecr: &aws_sdk_ecr::Client, repo: &str, tag: &str) -> Statuses {
    let out = ecr
        .describe_image_replication_status()
        .repository_name(repo)
        .image_id(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .unwrap();
    let mut all: Statuses = out
        .replication_statuses()
        .iter()
        .map(|s| {
            (
                s.region().unwrap_or_default().to_string(),
                s.registry_id().unwrap_or_default().to_string(),
                s.status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                s.failure_code().map(str::to_string),
            )
        })
        .collect();
    all.sort();
    all
}

/// The statuses once none is IN_PROGRESS any more.
async fn settled(ecr: &aws_sdk_ecr::Client, repo: &str, tag: &str) -> Statuses {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = statuses(ecr, repo, tag).await;
        if now.iter().all(|s| s.2 != "IN_PROGRESS") {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still replicating: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn st(
    region: &str,
    registry: &str,
    status: &str,
    code: Option<&str>,
) -> (String, String, String, Option<String>) {
    (
        region.to_string(),
        registry.to_string(),
        status.to_string(),
        code.map(str::to_string),
    )
}

/// The manifest text of `repo:tag` as `ecr` sees it, if there is one.
async fn manifest_of(
    ecr: &aws_sdk_ecr::Client,
    registry: Option<&str>,
    repo: &str,
    tag: &str,
) -> Option<String> {
    let out = ecr
        .batch_get_image()
        .set_registry_id(registry.map(str::to_string))
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .ok()?;
    out.images()
        .first()
        .and_then(|i| i.image_manifest().map(str::to_string))
}

/// A raw `/v2/` client logged in to one account and region.
struct Registry {
    url: String,
    auth: String,
    http: reqwest::Client,
}

impl Registry {
    async fn login(server: &TestServer, ecr: &aws_sdk_ecr::Client) -> Registry {
        let out = ecr.get_authorization_token().send().await.unwrap();
        let token = out.authorization_data()[0].authorization_token().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap();
        assert!(decoded.starts_with(b"AWS:"));
        Registry {
            url: server.url.clone(),
            auth: format!("Basic {token}"),
            http: reqwest::Client::new(),
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("authorization", &self.auth)
    }

    async fn push_blob(&self, repo: &str, data: &[u8]) -> (u16, String) {
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
        (r.status().as_u16(), digest)
    }

    async fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &str) -> u16 {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Pushes an OCI image (config + one layer); returns its manifest.
    async fn push_image(&self, repo: &str, reference: &str, seed: &str) -> String {
        let config = format!("{{\"seed\":\"{seed}\"}}");
        let layer = format!("layer of {seed}");
        let (s1, c) = self.push_blob(repo, config.as_bytes()).await;
        let (s2, l) = self.push_blob(repo, layer.as_bytes()).await;
        assert_eq!((s1, s2), (201, 201));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": c, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l, "size": layer.len()}],
        })
        .to_string();
        assert_eq!(
            self.put_manifest(repo, reference, OCI_MANIFEST, &manifest)
                .await,
            201
        );
        manifest
    }

    async fn get(&self, path: &str, accept: &str) -> (u16, Vec<u8>) {
        let r = self
            .req(Method::GET, path)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.bytes().await.unwrap().to_vec())
    }
}

#[tokio::test]
async fn configuration_validation_and_describe_registry() {
    for &backend in BACKENDS {
        let server = server(backend).await;
        let ecr = server.ecr();
        let described = ecr.describe_registry().send().await.unwrap();
        assert_eq!(described.registry_id(), Some(SOURCE));
        assert!(described
            .replication_configuration()
            .unwrap()
            .rules()
            .is_empty());

        let config = ReplicationConfiguration::builder()
            .rules(rule(
                &[("eu-west-1", SOURCE), ("us-east-1", PARTNER)],
                &["prod"],
            ))
            .build()
            .unwrap();
        let put = ecr
            .put_replication_configuration()
            .replication_configuration(config.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.replication_configuration(), Some(&config));
        let described = ecr.describe_registry().send().await.unwrap();
        assert_eq!(described.replication_configuration(), Some(&config));
        // Another region of the same account has its own (empty) configuration.
        let other = server.ecr_as("test", "test", "eu-west-1");
        let described = other.describe_registry().send().await.unwrap();
        assert!(described
            .replication_configuration()
            .unwrap()
            .rules()
            .is_empty());

        // The source registry itself is not a destination.
        let err = ecr
            .put_replication_configuration()
            .replication_configuration(
                ReplicationConfiguration::builder()
                    .rules(rule(&[("us-east-1", SOURCE)], &[]))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "InvalidParameterException".to_string(),
                "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Replication destination cannot be the same as the source registry'".to_string()
            )
        );
        // Model constraints: 12-digit registry ids, at most 10 rules, filter grammar.
        for body in [
            json!({"replicationConfiguration": {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": "12345"}]}]}}),
            json!({"replicationConfiguration": {"rules": (0..11).map(|_| json!({"destinations": [{"region": "eu-west-1", "registryId": SOURCE}]})).collect::<Vec<_>>()}}),
            json!({"replicationConfiguration": {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": SOURCE}], "repositoryFilters": [{"filter": "Prod", "filterType": "PREFIX_MATCH"}]}]}}),
            json!({"replicationConfiguration": {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": SOURCE}], "repositoryFilters": [{"filter": "prod", "filterType": "WILDCARD"}]}]}}),
            json!({"replicationConfiguration": {"rules": [{"destinations": []}]}}),
            json!({"replicationConfiguration": {"rules": [{"destinations": (0..26).map(|i| json!({"region": "eu-west-1", "registryId": format!("{:012}", 100 + i)})).collect::<Vec<_>>()}]}}),
            json!({}),
        ] {
            let (status, answer, _) = common::api_call(
                &server.url,
                "PutReplicationConfiguration",
                &body.to_string(),
            )
            .await;
            assert_eq!(status, 400, "{body} → {answer}");
            let kind = answer["__type"].as_str().unwrap();
            assert!(
                kind == "InvalidParameterException" || kind == "ValidationException",
                "{body} → {answer}"
            );
        }
        // Still the configuration put first.
        let described = ecr.describe_registry().send().await.unwrap();
        assert_eq!(described.replication_configuration(), Some(&config));

        // An empty rule list removes it (the Terraform provider deletes so).
        configure(&ecr, vec![]).await;
        let described = ecr.describe_registry().send().await.unwrap();
        assert!(described
            .replication_configuration()
            .unwrap()
            .rules()
            .is_empty());
    }
}

#[tokio::test]
async fn cross_region_and_cross_account_replication() {
    for &backend in BACKENDS {
        let server = server(backend).await;
        let ecr = server.ecr();
        let partner_ecr = partner(&server, "us-east-1");
        let stranger_ecr = stranger(&server, "us-east-1");
        allow_source(&partner_ecr, "us-east-1", PARTNER, true).await;
        // The stranger allows replication but not repository creation.
        allow_source(&stranger_ecr, "us-east-1", STRANGER, false).await;
        // The partner replicates onwards: a replicated image must not chain.
        configure(&partner_ecr, vec![rule(&[("us-west-2", PARTNER)], &[])]).await;
        configure(
            &ecr,
            vec![rule(
                &[
                    ("eu-west-1", SOURCE),
                    ("us-east-1", PARTNER),
                    ("us-east-1", STRANGER),
                ],
                &["prod"],
            )],
        )
        .await;
        for repo in ["prod/api", "dev/api"] {
            ecr.create_repository()
                .repository_name(repo)
                .send()
                .await
                .unwrap();
        }
        let (manifest, digest) = push_image(&ecr, "prod/api", "a", "v1").await;
        push_image(&ecr, "dev/api", "b", "v1").await;

        assert_eq!(
            settled(&ecr, "prod/api", "v1").await,
            vec![
                st("eu-west-1", SOURCE, "COMPLETE", None),
                st("us-east-1", PARTNER, "COMPLETE", None),
                st("us-east-1", STRANGER, "FAILED", Some("PERMISSION_DENIED")),
            ]
        );
        // Filters: dev/api matches no rule.
        assert!(statuses(&ecr, "dev/api", "v1").await.is_empty());

        // The same bytes in the other region and the other account.
        let eu = server.ecr_as("test", "test", "eu-west-1");
        assert_eq!(
            manifest_of(&eu, None, "prod/api", "v1").await.as_deref(),
            Some(&*manifest)
        );
        assert_eq!(
            manifest_of(&partner_ecr, None, "prod/api", "v1")
                .await
                .as_deref(),
            Some(&*manifest)
        );
        let described = eu
            .describe_images()
            .repository_name("prod/api")
            .send()
            .await
            .unwrap();
        assert_eq!(described.image_details()[0].image_digest(), Some(&*digest));
        assert_eq!(described.image_details()[0].image_tags(), ["v1"]);
        // Layers are there to pull, and were linked, not uploaded.
        let layers: Vec<String> = serde_json::from_str::<serde_json::Value>(&manifest).unwrap()
            ["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect();
        let check = eu
            .batch_check_layer_availability()
            .repository_name("prod/api")
            .set_layer_digests(Some(layers.clone()))
            .send()
            .await
            .unwrap();
        assert!(check
            .layers()
            .iter()
            .all(|l| l.layer_availability().unwrap().as_str() == "AVAILABLE"));
        eu.get_download_url_for_layer()
            .repository_name("prod/api")
            .layer_digest(&layers[0])
            .send()
            .await
            .unwrap();
        // Nothing else was replicated.
        assert!(eu
            .describe_repositories()
            .repository_names("dev/api")
            .send()
            .await
            .is_err());
        // The created repositories have ECR's defaults.
        let created = partner_ecr
            .describe_repositories()
            .repository_names("prod/api")
            .send()
            .await
            .unwrap();
        let repo = &created.repositories()[0];
        assert_eq!(repo.image_tag_mutability().unwrap().as_str(), "MUTABLE");
        assert_eq!(
            repo.encryption_configuration()
                .unwrap()
                .encryption_type()
                .as_str(),
            "AES256"
        );
        // No chaining: the partner's copy is not replicated to us-west-2.
        assert!(statuses(&partner_ecr, "prod/api", "v1").await.is_empty());
        let west = partner(&server, "us-west-2");
        assert!(west
            .describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .is_empty());
        // The stranger's registry got nothing.
        assert!(stranger_ecr
            .describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .is_empty());

        // With the repository there, ReplicateImage alone is enough.
        stranger_ecr
            .create_repository()
            .repository_name("prod/api")
            .send()
            .await
            .unwrap();
        let (manifest2, _) = push_image(&ecr, "prod/api", "c", "v2").await;
        assert_eq!(
            settled(&ecr, "prod/api", "v2").await,
            vec![
                st("eu-west-1", SOURCE, "COMPLETE", None),
                st("us-east-1", PARTNER, "COMPLETE", None),
                st("us-east-1", STRANGER, "COMPLETE", None),
            ]
        );
        assert_eq!(
            manifest_of(&stranger_ecr, None, "prod/api", "v2")
                .await
                .as_deref(),
            Some(&*manifest2)
        );
        // Without the registry policy, even that is refused.
        stranger_ecr.delete_registry_policy().send().await.unwrap();
        push_image(&ecr, "prod/api", "d", "v3").await;
        assert_eq!(
            settled(&ecr, "prod/api", "v3").await[2],
            st("us-east-1", STRANGER, "FAILED", Some("PERMISSION_DENIED"))
        );
        // Deletions are not replicated.
        ecr.batch_delete_image()
            .repository_name("prod/api")
            .image_ids(ImageIdentifier::builder().image_tag("v1").build())
            .send()
            .await
            .unwrap();
        server.state.ecr.run_replication().await.unwrap();
        assert!(manifest_of(&eu, None, "prod/api", "v1").await.is_some());
    }
}

#[tokio::test]
async fn index_children_and_referrers_over_the_registry_plane() {
    for &backend in BACKENDS {
        let server = server(backend).await;
        let ecr = server.ecr();
        configure(
            &ecr,
            vec![rule(&[("eu-west-1", SOURCE), ("us-east-1", PARTNER)], &[])],
        )
        .await;
        allow_source(&partner(&server, "us-east-1"), "us-east-1", PARTNER, true).await;
        ecr.create_repository()
            .repository_name("multi")
            .send()
            .await
            .unwrap();
        let reg = Registry::login(&server, &ecr).await;
        let mut children = Vec::new();
        for seed in ["amd64", "arm64"] {
            let config = format!("{{\"seed\":\"{seed}\"}}");
            let layer = format!("layer of {seed}");
            let (_, c) = reg.push_blob("multi", config.as_bytes()).await;
            let (_, l) = reg.push_blob("multi", layer.as_bytes()).await;
            let manifest = json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": c, "size": config.len()},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l, "size": layer.len()}],
            })
            .to_string();
            let digest = sha256_digest(manifest.as_bytes());
            assert_eq!(
                reg.put_manifest("multi", &digest, OCI_MANIFEST, &manifest)
                    .await,
                201
            );
            children.push((digest, manifest));
        }
        let index = json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": children.iter().zip(["amd64", "arm64"]).map(|((d, m), arch)| json!({
                "mediaType": OCI_MANIFEST, "digest": d, "size": m.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })).collect::<Vec<_>>(),
        })
        .to_string();
        let index_digest = sha256_digest(index.as_bytes());
        assert_eq!(
            reg.put_manifest("multi", "v1", OCI_INDEX, &index).await,
            201
        );
        // A signature referring to the index.
        let (_, empty) = reg.push_blob("multi", b"{}").await;
        let (_, sig) = reg.push_blob("multi", b"signature bytes").await;
        let signature = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": sig, "size": 15}],
            "subject": {"mediaType": OCI_INDEX, "digest": index_digest, "size": index.len()},
        })
        .to_string();
        let signature_digest = sha256_digest(signature.as_bytes());
        assert_eq!(
            reg.put_manifest("multi", &signature_digest, OCI_MANIFEST, &signature)
                .await,
            201
        );
        assert_eq!(
            settled(&ecr, "multi", "v1").await,
            vec![
                st("eu-west-1", SOURCE, "COMPLETE", None),
                st("us-east-1", PARTNER, "COMPLETE", None),
            ]
        );
        // Pull everything from the other region and the other account.
        for client in [
            server.ecr_as("test", "test", "eu-west-1"),
            partner(&server, "us-east-1"),
        ] {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let there = Registry::login(&server, &client).await;
            loop {
                let (status, body) = there
                    .get(&format!("/v2/multi/referrers/{index_digest}"), OCI_INDEX)
                    .await;
                if status == 200 && String::from_utf8_lossy(&body).contains(&signature_digest) {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "referrer not replicated"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let (status, body) = there.get("/v2/multi/manifests/v1", OCI_INDEX).await;
            assert_eq!((status, body), (200, index.clone().into_bytes()));
            for (digest, manifest) in &children {
                let (status, body) = there
                    .get(&format!("/v2/multi/manifests/{digest}"), OCI_MANIFEST)
                    .await;
                assert_eq!((status, body), (200, manifest.clone().into_bytes()));
                let layer: serde_json::Value = serde_json::from_str(manifest).unwrap();
                let blob = layer["layers"][0]["digest"].as_str().unwrap();
                let r = there
                    .req(Method::GET, &format!("/v2/multi/blobs/{blob}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
            let (status, body) = there
                .get(
                    &format!("/v2/multi/manifests/{signature_digest}"),
                    OCI_MANIFEST,
                )
                .await;
            assert_eq!((status, body), (200, signature.clone().into_bytes()));
        }
    }
}

#[tokio::test]
async fn status_transitions_and_errors() {
    for &backend in BACKENDS {
        // The worker is off: copies wait in the queue.
        let server = TestServer::start_with(backend, |c| {
            c.credentials = Some(CREDENTIALS.into());
            c.replication = false;
        })
        .await;
        let ecr = server.ecr();
        configure(&ecr, vec![rule(&[("eu-west-1", SOURCE)], &[])]).await;
        ecr.create_repository()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        // An image pushed before the configuration has no status.
        configure(&ecr, vec![]).await;
        push_image(&ecr, "app", "early", "early").await;
        configure(&ecr, vec![rule(&[("eu-west-1", SOURCE)], &[])]).await;
        assert!(statuses(&ecr, "app", "early").await.is_empty());

        let (v1, _) = push_image(&ecr, "app", "a", "v1").await;
        assert_eq!(
            statuses(&ecr, "app", "v1").await,
            vec![st("eu-west-1", SOURCE, "IN_PROGRESS", None)]
        );
        let eu = server.ecr_as("test", "test", "eu-west-1");
        assert!(manifest_of(&eu, None, "app", "v1").await.is_none());
        // The operator endpoint runs the queue.
        let r = server
            .http()
            .post(format!("{}/_ecrd/replication/run", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["jobs"], 1);
        assert_eq!(
            statuses(&ecr, "app", "v1").await,
            vec![st("eu-west-1", SOURCE, "COMPLETE", None)]
        );
        assert!(manifest_of(&eu, None, "app", "v1").await.is_some());
        // Two more tags for the same image: one status, settled by the last job.
        for tag in ["v1b", "v1c"] {
            ecr.put_image()
                .repository_name("app")
                .image_manifest(&v1)
                .image_tag(tag)
                .send()
                .await
                .unwrap();
        }
        assert_eq!(
            statuses(&ecr, "app", "v1b").await,
            vec![st("eu-west-1", SOURCE, "IN_PROGRESS", None)]
        );
        assert_eq!(server.state.ecr.run_replication().await.unwrap(), 2);
        assert_eq!(
            statuses(&ecr, "app", "v1c").await,
            vec![st("eu-west-1", SOURCE, "COMPLETE", None)]
        );
        assert_eq!(
            manifest_of(&eu, None, "app", "v1c").await.as_deref(),
            Some(&*v1)
        );
        // The same push again queues nothing; the early image was never copied.
        let again = ecr
            .put_image()
            .repository_name("app")
            .image_manifest(&v1)
            .image_tag("v1")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&again).0, "ImageAlreadyExistsException");
        assert_eq!(server.state.ecr.run_replication().await.unwrap(), 0);
        assert!(manifest_of(&eu, None, "app", "early").await.is_none());

        // An immutable tag in the destination keeps its image.
        eu.put_image_tag_mutability()
            .repository_name("app")
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await
            .unwrap();
        push_image(&ecr, "app", "b", "v1").await;
        assert_eq!(server.state.ecr.run_replication().await.unwrap(), 1);
        assert_eq!(
            statuses(&ecr, "app", "v1").await,
            vec![st(
                "eu-west-1",
                SOURCE,
                "FAILED",
                Some("IMAGE_TAG_IMMUTABLE")
            )]
        );

        // ECR's errors.
        let err = ecr
            .describe_image_replication_status()
            .repository_name("nope")
            .image_id(ImageIdentifier::builder().image_tag("v1").build())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "RepositoryNotFoundException".to_string(),
                format!("The repository with name 'nope' does not exist in the registry with id '{SOURCE}'")
            )
        );
        let err = ecr
            .describe_image_replication_status()
            .repository_name("app")
            .image_id(ImageIdentifier::builder().image_tag("v9").build())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "ImageNotFoundException".to_string(),
                format!("The image with imageId {{imageTag:'v9'}} does not exist within the repository with name 'app' in the registry with id '{SOURCE}'")
            )
        );
        // By digest.
        let (_, digest) = push_image(&ecr, "app", "c", "v3").await;
        let out = ecr
            .describe_image_replication_status()
            .repository_name("app")
            .image_id(ImageIdentifier::builder().image_digest(&digest).build())
            .send()
            .await
            .unwrap();
        assert_eq!(out.image_id().unwrap().image_digest(), Some(&*digest));
        assert_eq!(
            out.replication_statuses()[0].status().unwrap().as_str(),
            "IN_PROGRESS"
        );
    }
}

fn template_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "pull", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{PARTNER}:root")}, "Action": ["ecr:BatchGetImage"]}]
    })
    .to_string()
}

fn lifecycle_policy() -> String {
    json!({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}}]}).to_string()
}

#[tokio::test]
async fn template_operations_and_validation() {
    for &backend in BACKENDS {
        let server = server(backend).await;
        let ecr = server.ecr();
        let created = ecr
            .create_repository_creation_template()
            .prefix("prod")
            .description("production")
            .applied_for(RctAppliedFor::Replication)
            .applied_for(RctAppliedFor::CreateOnPush)
            .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
            .image_tag_mutability_exclusion_filters(
                ImageTagMutabilityExclusionFilter::builder()
                    .filter("latest")
                    .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
                    .build()
                    .unwrap(),
            )
            .encryption_configuration(
                EncryptionConfigurationForRepositoryCreationTemplate::builder()
                    .encryption_type(EncryptionType::Kms)
                    .build()
                    .unwrap(),
            )
            .resource_tags(Tag::builder().key("team").value("core").build().unwrap())
            .repository_policy(template_policy())
            .lifecycle_policy(lifecycle_policy())
            .custom_role_arn(format!("arn:aws:iam::{SOURCE}:role/ecr-templates"))
            .send()
            .await
            .unwrap();
        assert_eq!(created.registry_id(), Some(SOURCE));
        let t = created.repository_creation_template().unwrap();
        assert_eq!(t.prefix(), Some("prod"));
        assert_eq!(t.description(), Some("production"));
        assert_eq!(t.applied_for().len(), 2);
        assert_eq!(
            t.image_tag_mutability().unwrap().as_str(),
            "IMMUTABLE_WITH_EXCLUSION"
        );
        assert_eq!(t.resource_tags()[0].key(), "team");
        assert_eq!(t.repository_policy(), Some(&*template_policy()));
        assert!(t.created_at().is_some() && t.updated_at().is_some());

        let err = ecr
            .create_repository_creation_template()
            .prefix("prod")
            .applied_for(RctAppliedFor::Replication)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "TemplateAlreadyExistsException");

        // Validation, as the operations that set each setting validate it.
        let base = |p: &str| {
            ecr.create_repository_creation_template()
                .prefix(p)
                .applied_for(RctAppliedFor::Replication)
        };
        let bad_policy = base("a1")
            .repository_policy("{not json")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&bad_policy),
            (
                "InvalidParameterException".to_string(),
                "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'".to_string()
            )
        );
        let bad_lifecycle = base("a2")
            .lifecycle_policy("{\"rules\":[]}")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&bad_lifecycle).0, "InvalidParameterException");
        let bad_key = base("a3")
            .encryption_configuration(
                EncryptionConfigurationForRepositoryCreationTemplate::builder()
                    .encryption_type(EncryptionType::Aes256)
                    .kms_key("alias/x")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&bad_key).0, "InvalidParameterException");
        let bad_filters = base("a4")
            .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&bad_filters).0, "InvalidParameterException");
        let bad_role = base("a5")
            .custom_role_arn("arn:aws:iam::000000000000:user/u")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&bad_role).0, "InvalidParameterException");
        let bad_tag = base("a6")
            .resource_tags(Tag::builder().key("aws:x").value("y").build().unwrap())
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&bad_tag).0, "InvalidTagParameterException");
        for body in [
            json!({"prefix": "Prod", "appliedFor": ["REPLICATION"]}),
            json!({"prefix": "prod", "appliedFor": ["SOMETIMES"]}),
            json!({"prefix": "x1", "appliedFor": []}),
            json!({"prefix": "x2"}),
            json!({"appliedFor": ["REPLICATION"]}),
        ] {
            let (status, answer, _) = common::api_call(
                &server.url,
                "CreateRepositoryCreationTemplate",
                &body.to_string(),
            )
            .await;
            assert_eq!(status, 400, "{body} → {answer}");
        }

        // ROOT, listing, prefixes, pagination.
        for p in ["ROOT", "dev", "prod/team"] {
            base(p).send().await.unwrap();
        }
        let all = ecr
            .describe_repository_creation_templates()
            .send()
            .await
            .unwrap();
        let names: Vec<&str> = all
            .repository_creation_templates()
            .iter()
            .map(|t| t.prefix().unwrap())
            .collect();
        assert_eq!(names, ["ROOT", "dev", "prod", "prod/team"]);
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = ecr
                .describe_repository_creation_templates()
                .max_results(3)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            seen.extend(
                page.repository_creation_templates()
                    .iter()
                    .map(|t| t.prefix().unwrap().to_string()),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen, names);
        let some = ecr
            .describe_repository_creation_templates()
            .prefixes("prod")
            .prefixes("missing")
            .send()
            .await
            .unwrap();
        assert_eq!(some.repository_creation_templates().len(), 1);
        assert_eq!(
            some.repository_creation_templates()[0].prefix(),
            Some("prod")
        );

        // Update changes what it names; empty strings remove (Terraform's way).
        let updated = ecr
            .update_repository_creation_template()
            .prefix("prod")
            .description("")
            .custom_role_arn("")
            .image_tag_mutability(ImageTagMutability::Mutable)
            .applied_for(RctAppliedFor::Replication)
            .send()
            .await
            .unwrap();
        let t = updated.repository_creation_template().unwrap();
        assert_eq!(t.description(), None);
        assert_eq!(t.custom_role_arn(), None);
        assert_eq!(t.image_tag_mutability().unwrap().as_str(), "MUTABLE");
        assert!(t.image_tag_mutability_exclusion_filters().is_empty());
        assert_eq!(t.applied_for(), [RctAppliedFor::Replication]);
        assert_eq!(t.lifecycle_policy(), Some(&*lifecycle_policy()));
        let err = ecr
            .update_repository_creation_template()
            .prefix("nope")
            .description("x")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "TemplateNotFoundException");

        let deleted = ecr
            .delete_repository_creation_template()
            .prefix("dev")
            .send()
            .await
            .unwrap();
        assert_eq!(
            deleted.repository_creation_template().unwrap().prefix(),
            Some("dev")
        );
        let err = ecr
            .delete_repository_creation_template()
            .prefix("dev")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "TemplateNotFoundException");
        // Templates are per registry.
        let eu = server.ecr_as("test", "test", "eu-west-1");
        assert!(eu
            .describe_repository_creation_templates()
            .send()
            .await
            .unwrap()
            .repository_creation_templates()
            .is_empty());
    }
}

#[tokio::test]
async fn replication_creates_repositories_from_the_most_specific_template() {
    for &backend in BACKENDS {
        let server = server(backend).await;
        let ecr = server.ecr();
        let eu = server.ecr_as("test", "test", "eu-west-1");
        // The destination registry's templates decide.
        eu.create_repository_creation_template()
            .prefix("ROOT")
            .applied_for(RctAppliedFor::Replication)
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await
            .unwrap();
        eu.create_repository_creation_template()
            .prefix("prod")
            .applied_for(RctAppliedFor::Replication)
            .image_tag_mutability(ImageTagMutability::MutableWithExclusion)
            .image_tag_mutability_exclusion_filters(
                ImageTagMutabilityExclusionFilter::builder()
                    .filter("release-*")
                    .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
                    .build()
                    .unwrap(),
            )
            .encryption_configuration(
                EncryptionConfigurationForRepositoryCreationTemplate::builder()
                    .encryption_type(EncryptionType::Kms)
                    .kms_key(format!("arn:aws:kms:eu-west-1:{SOURCE}:key/prod-key"))
                    .build()
                    .unwrap(),
            )
            .resource_tags(Tag::builder().key("env").value("prod").build().unwrap())
            .repository_policy(template_policy())
            .lifecycle_policy(lifecycle_policy())
            .send()
            .await
            .unwrap();
        // More specific, but not for replication.
        eu.create_repository_creation_template()
            .prefix("prod/team")
            .applied_for(RctAppliedFor::CreateOnPush)
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await
            .unwrap();
        configure(&ecr, vec![rule(&[("eu-west-1", SOURCE)], &[])]).await;
        for repo in ["prod/team/api", "tools/lint", "production"] {
            ecr.create_repository()
                .repository_name(repo)
                .send()
                .await
                .unwrap();
            push_image(&ecr, repo, repo, "v1").await;
            assert_eq!(settled(&ecr, repo, "v1").await[0].2, "COMPLETE");
        }
        let described = eu
            .describe_repositories()
            .repository_names("prod/team/api")
            .repository_names("tools/lint")
            .repository_names("production")
            .send()
            .await
            .unwrap();
        let repos = described.repositories();
        let prod = &repos[0];
        assert_eq!(
            prod.image_tag_mutability().unwrap().as_str(),
            "MUTABLE_WITH_EXCLUSION"
        );
        assert_eq!(
            prod.image_tag_mutability_exclusion_filters()[0].filter(),
            "release-*"
        );
        let enc = prod.encryption_configuration().unwrap();
        assert_eq!(enc.encryption_type().as_str(), "KMS");
        assert_eq!(
            enc.kms_key(),
            Some(format!("arn:aws:kms:eu-west-1:{SOURCE}:key/prod-key").as_str())
        );
        let tags = eu
            .list_tags_for_resource()
            .resource_arn(prod.repository_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(tags.tags()[0].key(), "env");
        let policy = eu
            .get_repository_policy()
            .repository_name("prod/team/api")
            .send()
            .await
            .unwrap();
        assert_eq!(policy.policy_text(), Some(&*template_policy()));
        let lifecycle = eu
            .get_lifecycle_policy()
            .repository_name("prod/team/api")
            .send()
            .await
            .unwrap();
        assert_eq!(
            lifecycle.lifecycle_policy_text(),
            Some(&*lifecycle_policy())
        );
        // ROOT for the rest ("production" is not in the prod/ namespace).
        for other in &repos[1..] {
            assert_eq!(other.image_tag_mutability().unwrap().as_str(), "IMMUTABLE");
            assert_eq!(
                other
                    .encryption_configuration()
                    .unwrap()
                    .encryption_type()
                    .as_str(),
                "AES256"
            );
        }
        assert!(eu
            .get_repository_policy()
            .repository_name("tools/lint")
            .send()
            .await
            .is_err());
    }
}

#[tokio::test]
async fn create_on_push_with_and_without_a_template() {
    for &backend in BACKENDS {
        let server = server(backend).await;
        let ecr = server.ecr();
        let reg = Registry::login(&server, &ecr).await;
        // Without a template: NAME_UNKNOWN on /v2/, RepositoryNotFoundException on the API.
        let r = reg
            .req(Method::POST, "/v2/auto/svc/blobs/uploads/")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");
        assert_eq!(
            body["errors"][0]["message"],
            format!("The repository with name 'auto/svc' does not exist in the registry with id '{SOURCE}'")
        );
        let err = ecr
            .initiate_layer_upload()
            .repository_name("auto/svc")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
        // A REPLICATION-only template does not create on push.
        ecr.create_repository_creation_template()
            .prefix("auto")
            .applied_for(RctAppliedFor::Replication)
            .send()
            .await
            .unwrap();
        assert_eq!(reg.push_blob("auto/svc", b"data").await.0, 404);

        ecr.update_repository_creation_template()
            .prefix("auto")
            .applied_for(RctAppliedFor::CreateOnPush)
            .image_tag_mutability(ImageTagMutability::Immutable)
            .resource_tags(Tag::builder().key("made").value("on-push").build().unwrap())
            .send()
            .await
            .unwrap();
        // Over /v2/, the way docker pushes.
        let manifest = reg.push_image("auto/svc", "v1", "svc").await;
        let described = ecr
            .describe_repositories()
            .repository_names("auto/svc")
            .send()
            .await
            .unwrap();
        let repo = &described.repositories()[0];
        assert_eq!(repo.image_tag_mutability().unwrap().as_str(), "IMMUTABLE");
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(repo.repository_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(tags.tags()[0].value(), "on-push");
        assert_eq!(
            manifest_of(&ecr, None, "auto/svc", "v1").await.as_deref(),
            Some(&*manifest)
        );
        // Over the API, PutImage alone (the blobs are mounted from nowhere:
        // an index of no manifests needs none).
        let empty_index =
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).to_string();
        ecr.put_image()
            .repository_name("auto/other")
            .image_manifest(&empty_index)
            .image_manifest_media_type(OCI_INDEX)
            .image_tag("v1")
            .send()
            .await
            .unwrap();
        assert!(ecr
            .describe_repositories()
            .repository_names("auto/other")
            .send()
            .await
            .is_ok());
        // Outside the template's namespace: still refused.
        let err = ecr
            .put_image()
            .repository_name("manual")
            .image_manifest(&empty_index)
            .image_manifest_media_type(OCI_INDEX)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
    }
}

#[tokio::test]
async fn queued_replication_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let start = |replication: bool| {
        let path = path.clone();
        TestServer::start_with(Backend::Disk, move |c| {
            c.data_dir = Some(path);
            c.replication = replication;
        })
    };
    let server = start(false).await;
    let ecr = server.ecr();
    eu_template(&server).await;
    configure(&ecr, vec![rule(&[("eu-west-1", SOURCE)], &[])]).await;
    ecr.create_repository()
        .repository_name("durable")
        .send()
        .await
        .unwrap();
    let (manifest, _) = push_image(&ecr, "durable", "d", "v1").await;
    assert_eq!(statuses(&ecr, "durable", "v1").await[0].2, "IN_PROGRESS");
    drop(ecr);
    server.stop().await;

    let server = start(true).await;
    let ecr = server.ecr();
    assert_eq!(
        settled(&ecr, "durable", "v1").await,
        vec![st("eu-west-1", SOURCE, "COMPLETE", None)]
    );
    let eu = server.ecr_as("test", "test", "eu-west-1");
    assert_eq!(
        manifest_of(&eu, None, "durable", "v1").await.as_deref(),
        Some(&*manifest)
    );
    // The template survived too, and was applied.
    let repo = eu
        .describe_repositories()
        .repository_names("durable")
        .send()
        .await
        .unwrap();
    assert_eq!(
        repo.repositories()[0]
            .image_tag_mutability()
            .unwrap()
            .as_str(),
        "IMMUTABLE"
    );
    // The configuration survived, and the operator reset clears all of it.
    assert_eq!(
        ecr.describe_registry()
            .send()
            .await
            .unwrap()
            .replication_configuration()
            .unwrap()
            .rules()
            .len(),
        1
    );
    let r = server
        .http()
        .post(format!("{}/_ecrd/reset", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(ecr
        .describe_registry()
        .send()
        .await
        .unwrap()
        .replication_configuration()
        .unwrap()
        .rules()
        .is_empty());
    assert!(eu
        .describe_repository_creation_templates()
        .send()
        .await
        .unwrap()
        .repository_creation_templates()
        .is_empty());
    server.stop().await;
}

async fn eu_template(server: &TestServer) {
    server
        .ecr_as("test", "test", "eu-west-1")
        .create_repository_creation_template()
        .prefix("ROOT")
        .applied_for(RctAppliedFor::Replication)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
}

/// The `ecrd` binary on a data directory, SIGKILLed when dropped.
struct Process {
    child: std::process::Child,
    url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn start(dir: &std::path::Path, replication: bool) -> Process {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ecrd"))
            .args(["serve", "--port", "0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(dir)
            .arg(format!("--replication={replication}"))
            .env("ECRD_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ecrd starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the bound address, then keeps draining the pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if event["fields"]["message"] == "ecrd listening" {
                    if let (Some(tx), Some(addr)) = (tx.take(), event["fields"]["addr"].as_str()) {
                        let _ = tx.send(addr.to_string());
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("ecrd listens");
        Process {
            child,
            url: format!("http://{addr}"),
        }
    }

    fn ecr(&self, region: &str) -> aws_sdk_ecr::Client {
        let config = aws_sdk_ecr::Config::builder()
            .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_sdk_ecr::config::Region::new(region.to_string()))
            .credentials_provider(aws_credential_types::Credentials::new(
                "test",
                "test",
                None,
                None,
                "ecrd-tests",
            ))
            .build();
        aws_sdk_ecr::Client::from_conf(config)
    }
}

/// A push acknowledged before a SIGKILL is replicated after the restart.
#[tokio::test]
async fn an_acknowledged_push_is_replicated_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, digest) = {
        // Replication off: the copy can only come from the durable queue.
        let process = Process::start(dir.path(), false);
        let ecr = process.ecr("us-east-1");
        configure(&ecr, vec![rule(&[("eu-west-1", SOURCE)], &[])]).await;
        ecr.create_repository()
            .repository_name("killed")
            .send()
            .await
            .unwrap();
        let pushed = push_image(&ecr, "killed", "k", "v1").await;
        assert_eq!(statuses(&ecr, "killed", "v1").await[0].2, "IN_PROGRESS");
        pushed
        // Dropped: SIGKILL.
    };
    let process = Process::start(dir.path(), true);
    let ecr = process.ecr("us-east-1");
    assert_eq!(
        settled(&ecr, "killed", "v1").await,
        vec![st("eu-west-1", SOURCE, "COMPLETE", None)]
    );
    let eu = process.ecr("eu-west-1");
    assert_eq!(
        manifest_of(&eu, None, "killed", "v1").await.as_deref(),
        Some(&*manifest)
    );
    let described = eu
        .describe_images()
        .repository_name("killed")
        .send()
        .await
        .unwrap();
    assert_eq!(described.image_details()[0].image_digest(), Some(&*digest));
}

/// Create on push needs the pusher's `ecr:CreateRepository` as well as the
/// push actions; without it the push is denied and nothing is created.
#[tokio::test]
async fn create_on_push_needs_create_repository_permission() {
    for &backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let pusher_only = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
                           "ecr:PutImage", "ecr:BatchCheckLayerAvailability", "ecr:GetAuthorizationToken"],
                "Resource": "*"
            }]
        });
        std::fs::write(dir.path().join("pusher.json"), pusher_only.to_string()).unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            "AKIAPUSHER pushersecret 000000000000 arn:aws:iam::000000000000:user/ci policy=pusher.json\n",
        )
        .unwrap();
        let server =
            TestServer::start_with(backend, |c| c.credentials_file = Some(creds.clone())).await;
        let admin = server.ecr();
        admin
            .create_repository_creation_template()
            .prefix("auto")
            .applied_for(RctAppliedFor::CreateOnPush)
            .send()
            .await
            .unwrap();
        let pusher = server.ecr_as("AKIAPUSHER", "pushersecret", "us-east-1");
        let err = pusher
            .initiate_layer_upload()
            .repository_name("auto/svc")
            .send()
            .await
            .unwrap_err();
        let (code, message) = err_code(&err);
        assert_eq!(code, "AccessDeniedException", "{message}");
        assert!(message.contains("ecr:CreateRepository"), "{message}");
        assert!(admin
            .describe_repositories()
            .repository_names("auto/svc")
            .send()
            .await
            .is_err());
        // Once the repository exists, the same principal pushes to it.
        admin
            .create_repository()
            .repository_name("auto/svc")
            .send()
            .await
            .unwrap();
        pusher
            .initiate_layer_upload()
            .repository_name("auto/svc")
            .send()
            .await
            .unwrap();
        server.stop().await;
    }
}

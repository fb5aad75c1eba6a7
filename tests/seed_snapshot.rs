//! Seeding at startup (`--init`) and state snapshots (`/_ecrd/snapshot`),
//! on both backends: a seed file using every section, restart idempotence,
//! a refusal per section naming the line and field with nothing applied,
//! and snapshots moved between memory and disk byte for byte, a tampered
//! one refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{Backend, TestServer, BACKENDS};
use ecrd::store::tables;
use ecrd::store::Table;
use ecrd::{ServeConfig, Server};

const REPOSITORY_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":["ecr:BatchGetImage"]}]}"#;
const LIFECYCLE_POLICY: &str = r#"{"rules":[{"rulePriority":1,"description":"expire untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;

/// A directory with the image sources the seeds name: an OCI layout, an
/// OCI archive and a docker archive.
struct Sources {
    dir: tempfile::TempDir,
    app_digest: String,
}

impl Sources {
    fn new() -> Sources {
        let dir = tempfile::tempdir().unwrap();
        let app_digest =
            common::write_oci_layout(&dir.path().join("layouts/app"), "v1", b"app v1\n");
        let v2 = dir.path().join("v2-layout");
        common::write_oci_layout(&v2, "v2", b"app v2\n");
        common::tar_directory(&v2, &dir.path().join("app-v2.tar"));
        common::write_docker_archive(&dir.path().join("legacy.tar"), "legacy:1", b"legacy\n");
        Sources { dir, app_digest }
    }

    fn seed(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("seed.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn full_seed() -> String {
    format!(
        r#"# every section of a seed file
accounts:
  - account: "000000000000"
    regions:
      - region: us-east-1
        accountSettings:
          - name: BLOB_MOUNTING
            value: DISABLED
        registryPolicy:
          Version: "2012-10-17"
          Statement:
            - Sid: ReplicateFromDev
              Effect: Allow
              Principal: {{AWS: "arn:aws:iam::111111111111:root"}}
              Action: ["ecr:CreateRepository", "ecr:ReplicateImage"]
              Resource: "arn:aws:ecr:us-east-1:000000000000:repository/*"
        registryScanningConfiguration:
          scanType: ENHANCED
          rules:
            - scanFrequency: SCAN_ON_PUSH
              repositoryFilters: [{{filter: "team/*", filterType: WILDCARD}}]
        replicationConfiguration:
          rules:
            - destinations: [{{region: us-west-2, registryId: "000000000000"}}]
              repositoryFilters: [{{filter: team, filterType: PREFIX_MATCH}}]
        repositoryCreationTemplates:
          - prefix: team
            description: team repositories
            appliedFor: [REPLICATION]
            imageTagMutability: IMMUTABLE
        repositories:
          - name: team/app
            imageTagMutability: IMMUTABLE_WITH_EXCLUSION
            imageTagMutabilityExclusionFilters:
              - {{filterType: WILDCARD, filter: "latest*"}}
            imageScanningConfiguration: {{scanOnPush: true}}
            encryptionConfiguration: {{encryptionType: KMS, kmsKey: alias/team}}
            tags: {{env: dev, team: app}}
            repositoryPolicy: '{REPOSITORY_POLICY}'
            lifecyclePolicy: '{LIFECYCLE_POLICY}'
            images:
              - source: "oci:layouts/app"
                tags: [v1, stable]
              - source: "oci-archive:app-v2.tar:v2"
                tags: [v2]
              - source: "docker-archive:legacy.tar"
                tags: [legacy]
          - name: plain
            images:
              - source: "oci:layouts/app:v1"
  - account: "111111111111"
    credentials:
      - accessKeyId: AKIASEEDED
        secretAccessKey: seededsecret
        principalArn: arn:aws:iam::111111111111:user/ci
        tags: {{team: ci}}
    regions:
      - region: eu-west-1
        repositories:
          - name: other
"#
    )
}

/// A seed whose application starts no background work (no scan on push,
/// no replication), so its state can be compared across restarts.
fn quiet_seed() -> String {
    format!(
        r#"accounts:
  - account: "000000000000"
    regions:
      - region: us-east-1
        accountSettings: [{{name: BLOB_MOUNTING, value: DISABLED}}]
        repositoryCreationTemplates:
          - {{prefix: team, appliedFor: [CREATE_ON_PUSH], imageTagMutability: IMMUTABLE}}
        repositories:
          - name: team/app
            imageTagMutability: IMMUTABLE
            tags: [{{Key: env, Value: dev}}]
            repositoryPolicy: '{REPOSITORY_POLICY}'
            lifecyclePolicy: '{LIFECYCLE_POLICY}'
            images:
              - {{source: "oci:layouts/app", tags: [v1, stable]}}
              - {{source: "docker-archive:legacy.tar", tags: [legacy]}}
"#
    )
}

async fn seeded(backend: Backend, seed: PathBuf, data_dir: Option<PathBuf>) -> TestServer {
    TestServer::start_with(backend, move |c| {
        c.init = Some(seed);
        c.replication = false;
        if data_dir.is_some() {
            c.data_dir = data_dir;
        }
    })
    .await
}

fn carried_dump(server: &TestServer) -> tables::Dump {
    let mut dump = tables::dump(&*server.state.ecr.store).unwrap();
    dump.remove(&Table::Uploads);
    dump
}

async fn blob_set(server: &TestServer) -> Vec<(String, u64)> {
    let mut stats: Vec<(String, u64)> = server
        .state
        .ecr
        .blobs
        .list_stats()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.digest.to_string(), s.size))
        .collect();
    stats.sort();
    stats
}

#[tokio::test]
async fn a_seed_file_sets_every_section() {
    for &backend in BACKENDS {
        let sources = Sources::new();
        let server = seeded(backend, sources.seed(&full_seed()), None).await;
        let ecr = server.ecr();

        let repo = ecr
            .describe_repositories()
            .repository_names("team/app")
            .send()
            .await
            .unwrap()
            .repositories
            .unwrap()
            .remove(0);
        assert_eq!(
            repo.image_tag_mutability.unwrap().as_str(),
            "IMMUTABLE_WITH_EXCLUSION"
        );
        let filters = repo.image_tag_mutability_exclusion_filters.unwrap();
        assert_eq!(filters[0].filter, "latest*");
        assert!(repo.image_scanning_configuration.unwrap().scan_on_push);
        let encryption = repo.encryption_configuration.unwrap();
        assert_eq!(encryption.encryption_type.as_str(), "KMS");
        assert_eq!(
            encryption.kms_key.as_deref(),
            Some("arn:aws:kms:us-east-1:000000000000:alias/team")
        );
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(repo.repository_arn.unwrap())
            .send()
            .await
            .unwrap()
            .tags
            .unwrap();
        let mut tags: Vec<(String, String)> = tags.into_iter().map(|t| (t.key, t.value)).collect();
        tags.sort();
        assert_eq!(
            tags,
            [("env".into(), "dev".into()), ("team".into(), "app".into())]
        );
        let policy = ecr
            .get_repository_policy()
            .repository_name("team/app")
            .send()
            .await
            .unwrap();
        assert_eq!(policy.policy_text.as_deref(), Some(REPOSITORY_POLICY));
        let lifecycle = ecr
            .get_lifecycle_policy()
            .repository_name("team/app")
            .send()
            .await
            .unwrap();
        assert_eq!(
            lifecycle.lifecycle_policy_text.as_deref(),
            Some(LIFECYCLE_POLICY)
        );

        let images = ecr
            .describe_images()
            .repository_name("team/app")
            .send()
            .await
            .unwrap()
            .image_details
            .unwrap();
        let mut tagged: Vec<Vec<String>> = images
            .iter()
            .map(|i| {
                let mut t = i.image_tags.clone().unwrap_or_default();
                t.sort();
                t
            })
            .collect();
        tagged.sort();
        assert_eq!(tagged, [vec!["legacy"], vec!["stable", "v1"], vec!["v2"]]);
        let v1 = images
            .iter()
            .find(|i| {
                i.image_tags
                    .as_ref()
                    .is_some_and(|t| t.contains(&"v1".to_string()))
            })
            .unwrap();
        assert_eq!(
            v1.image_digest.as_deref(),
            Some(sources.app_digest.as_str())
        );
        let plain = ecr
            .describe_images()
            .repository_name("plain")
            .send()
            .await
            .unwrap();
        let plain = plain.image_details.unwrap();
        assert_eq!(plain.len(), 1);
        assert_eq!(
            plain[0].image_digest.as_deref(),
            Some(sources.app_digest.as_str())
        );
        assert!(plain[0].image_tags.is_none());

        let registry_policy = ecr.get_registry_policy().send().await.unwrap();
        assert!(registry_policy
            .policy_text
            .unwrap()
            .contains("ReplicateFromDev"));
        let scanning = ecr
            .get_registry_scanning_configuration()
            .send()
            .await
            .unwrap()
            .scanning_configuration
            .unwrap();
        assert_eq!(scanning.scan_type.unwrap().as_str(), "ENHANCED");
        let registry = ecr.describe_registry().send().await.unwrap();
        let rules = registry.replication_configuration.unwrap().rules;
        assert_eq!(rules[0].destinations[0].region, "us-west-2");
        let templates = ecr
            .describe_repository_creation_templates()
            .send()
            .await
            .unwrap()
            .repository_creation_templates
            .unwrap();
        assert_eq!(templates[0].prefix.as_deref(), Some("team"));
        assert_eq!(
            templates[0].description.as_deref(),
            Some("team repositories")
        );
        let setting = ecr
            .get_account_setting()
            .name("BLOB_MOUNTING")
            .send()
            .await
            .unwrap();
        assert_eq!(setting.value.as_deref(), Some("DISABLED"));

        // The seeded credential is the seeded principal of its account.
        let other = server.ecr_as("AKIASEEDED", "seededsecret", "eu-west-1");
        let repos = other.describe_repositories().send().await.unwrap();
        let names: Vec<String> = repos
            .repositories
            .unwrap()
            .into_iter()
            .filter_map(|r| r.repository_name)
            .collect();
        assert_eq!(names, ["other"]);
        let caller = server.state.credentials.get("AKIASEEDED").unwrap();
        assert_eq!(caller.principal_arn, "arn:aws:iam::111111111111:user/ci");
        assert_eq!(caller.tags.get("team").map(String::as_str), Some("ci"));
        server.stop().await;
    }
}

#[tokio::test]
async fn seeding_again_changes_nothing() {
    let sources = Sources::new();
    let seed_path = sources.seed(&quiet_seed());
    let dir = tempfile::tempdir().unwrap();
    let first = seeded(
        Backend::Disk,
        seed_path.clone(),
        Some(dir.path().to_path_buf()),
    )
    .await;
    let after_first = carried_dump(&first);
    assert!(!after_first.is_empty());
    // Applying the same file to the running state writes no record.
    let seed = ecrd::seed::Seed::load(&seed_path).unwrap();
    let report = ecrd::seed::apply(&first.state, &seed).await.unwrap();
    assert_eq!((report.records_written, report.records_deleted), (0, 0));
    assert_eq!(report.blobs_uploaded, 0);
    assert_eq!(report.images, 2);
    first.stop().await;

    let second = seeded(Backend::Disk, seed_path, Some(dir.path().to_path_buf())).await;
    assert_eq!(carried_dump(&second), after_first);
    second.stop().await;

    // Memory: the same file applied twice in one process.
    let memory = seeded(Backend::Memory, sources.seed(&quiet_seed()), None).await;
    let report = ecrd::seed::apply(&memory.state, &seed).await.unwrap();
    assert_eq!((report.records_written, report.records_deleted), (0, 0));
    memory.stop().await;
}

/// The line of `text` holding `marker` (1-based).
fn line_of(text: &str, marker: &str) -> usize {
    text.lines().position(|l| l.contains(marker)).unwrap() + 1
}

#[tokio::test]
async fn a_bad_field_in_any_section_stops_startup_and_applies_nothing() {
    // (what to replace in the quiet seed, with what, the line marker, the
    // field path, and what the message says)
    let base = quiet_seed();
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            base.replace("regions:\n", "credentials:\n      - {accessKeyId: AKIABAD, secretAccessKey: s, principalArn: \"arn:aws:iam::222222222222:user/x\"}\n    regions:\n"),
            "AKIABAD",
            "accounts[0].credentials[0].principalArn",
            "not in the credential's account",
        ),
        (
            base.replace("value: DISABLED", "value: SOMETIMES"),
            "accountSettings",
            "accounts[0].regions[0].accountSettings[0].value",
            "InvalidParameterException",
        ),
        (
            base.replace("accountSettings:", "registryPolicy: '{\"Version\":\"2012-10-17\"}'\n        accountSettings:"),
            "registryPolicy",
            "accounts[0].regions[0].registryPolicy",
            "Invalid registry policy provided",
        ),
        (
            base.replace("accountSettings:", "registryScanningConfiguration: {scanType: FAST}\n        accountSettings:"),
            "registryScanningConfiguration",
            "accounts[0].regions[0].registryScanningConfiguration.scanType",
            "PutRegistryScanningConfiguration refused it: InvalidParameterException",
        ),
        (
            base.replace("accountSettings:", "replicationConfiguration: {rules: [{destinations: [{region: us-east-1, registryId: \"000000000000\"}]}]}\n        accountSettings:"),
            "replicationConfiguration",
            "accounts[0].regions[0].replicationConfiguration",
            "Replication destination cannot be the same as the source registry",
        ),
        (
            base.replace("appliedFor: [CREATE_ON_PUSH]", "appliedFor: [SOMETIMES]"),
            "SOMETIMES",
            "accounts[0].regions[0].repositoryCreationTemplates[0]",
            "CreateRepositoryCreationTemplate refused it",
        ),
        (
            base.replace("imageTagMutability: IMMUTABLE\n            tags", "imageTagMutability: SOMETIMES\n            tags"),
            "SOMETIMES",
            "accounts[0].regions[0].repositories[0].imageTagMutability",
            "CreateRepository refused it: InvalidParameterException",
        ),
        (
            base.replace("imageTagMutability: IMMUTABLE\n            tags", "imageTagMutabilty: IMMUTABLE\n            tags"),
            "imageTagMutabilty",
            "accounts[0].regions[0].repositories[0]",
            "unknown field `imageTagMutabilty`",
        ),
        (
            base.replace("name: team/app", "name: Team/App"),
            "Team/App",
            "accounts[0].regions[0].repositories[0].name",
            "InvalidParameterException",
        ),
        (
            base.replace(&format!("repositoryPolicy: '{REPOSITORY_POLICY}'"), "repositoryPolicy: '{\"Statement\": 1}'"),
            "repositoryPolicy",
            "accounts[0].regions[0].repositories[0].repositoryPolicy",
            "Invalid repository policy provided",
        ),
        (
            base.replace(&format!("lifecyclePolicy: '{LIFECYCLE_POLICY}'"), "lifecyclePolicy: '{\"rules\": \"x\"}'"),
            "lifecyclePolicy",
            "accounts[0].regions[0].repositories[0].lifecyclePolicy",
            "PutLifecyclePolicy refused it",
        ),
        (
            base.replace("oci:layouts/app", "oci:layouts/missing"),
            "layouts/missing",
            "accounts[0].regions[0].repositories[0].images[0].source",
            "not a directory",
        ),
        (
            base.replace("tags: [v1, stable]", "tags: [v1, \"bad tag\"]"),
            "bad tag",
            "accounts[0].regions[0].repositories[0].images[0].tags[1]",
            "InvalidParameterException",
        ),
        (
            base.replace("region: us-east-1", "region: us-east-1\n        region: us-west-2"),
            "us-west-2",
            "",
            "given twice",
        ),
    ];
    for &backend in BACKENDS {
        for (text, marker, path, message) in &cases {
            let sources = Sources::new();
            let seed = sources.seed(text);
            let dir = tempfile::tempdir().unwrap();
            let mut config = ServeConfig::for_tests();
            config.init = Some(seed.clone());
            if backend == Backend::Disk {
                config.data_dir = Some(dir.path().to_path_buf());
            }
            let error = match Server::bind(config).await {
                Ok(_) => panic!("{backend:?}: the seed with {marker:?} was accepted"),
                Err(e) => e.to_string(),
            };
            let expected_line = line_of(text, marker);
            assert!(
                error.starts_with(&format!(
                    "seed file {}, line {expected_line}, column ",
                    seed.display()
                )),
                "{backend:?} {marker:?}: {error}"
            );
            if !path.is_empty() {
                assert!(
                    error.contains(&format!(", {path}")),
                    "{backend:?} {marker:?}: {error}"
                );
            }
            assert!(error.contains(message), "{backend:?} {marker:?}: {error}");
            if backend == Backend::Disk {
                // Nothing was applied: the directory holds no record.
                let server = TestServer::start_with(Backend::Disk, |c| {
                    c.data_dir = Some(dir.path().to_path_buf())
                })
                .await;
                assert!(
                    carried_dump(&server).is_empty(),
                    "{marker:?}: state was left behind"
                );
                server.stop().await;
            }
        }
    }
}

async fn export(server: &TestServer) -> Vec<u8> {
    let response = server
        .http()
        .get(format!("{}/_ecrd/snapshot", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-tar");
    response.bytes().await.unwrap().to_vec()
}

async fn import(server: &TestServer, snapshot: Vec<u8>) -> (u16, serde_json::Value) {
    let response = server
        .http()
        .post(format!("{}/_ecrd/snapshot", server.url))
        .header("content-type", "application/x-tar")
        .body(snapshot)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn snapshots_move_state_between_backends_byte_for_byte() {
    let sources = Sources::new();
    let memory = seeded(Backend::Memory, sources.seed(&quiet_seed()), None).await;
    // Some time passes, so the timestamps are not all the same instant.
    memory.state.ecr.clock.advance(time::Duration::hours(5));
    let snapshot = export(&memory).await;
    let (expected, expected_blobs) = (carried_dump(&memory), blob_set(&memory).await);

    let disk = TestServer::start_with(Backend::Disk, |c| c.replication = false).await;
    let (status, body) = import(&disk, snapshot).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["blobs"], expected_blobs.len());
    assert_eq!(carried_dump(&disk), expected);
    assert_eq!(blob_set(&disk).await, expected_blobs);
    // What clients see is the same too: a pull of the seeded image.
    let images = disk
        .ecr()
        .describe_images()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(images.image_details.unwrap().len(), 2);
    let layer = disk
        .state
        .ecr
        .read_layer(
            &ecrd::ecr::names::Scope::new(
                ecrd::ecr::names::AccountId::parse("000000000000").unwrap(),
                ecrd::ecr::names::Region::parse("us-east-1").unwrap(),
            ),
            &ecrd::ecr::names::RepositoryName::parse("team/app").unwrap(),
            &ecrd::digest::Digest::parse(&expected_blobs[0].0).unwrap(),
            0,
            None,
        )
        .await
        .unwrap();
    assert!(layer.is_some());

    // And back: disk → a fresh memory server, which replaces what it held.
    let back = TestServer::start_with(Backend::Memory, |c| c.replication = false).await;
    back.ecr()
        .create_repository()
        .repository_name("scratch")
        .send()
        .await
        .unwrap();
    let (status, body) = import(&back, export(&disk).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(carried_dump(&back), expected);
    assert_eq!(blob_set(&back).await, expected_blobs);
    memory.stop().await;
    disk.stop().await;
    back.stop().await;
}

/// The byte offset of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[tokio::test]
async fn a_tampered_or_truncated_snapshot_is_refused_and_changes_nothing() {
    let sources = Sources::new();
    let source = seeded(Backend::Memory, sources.seed(&quiet_seed()), None).await;
    let snapshot = export(&source).await;
    for &backend in BACKENDS {
        let target = TestServer::start_with(backend, |c| c.replication = false).await;
        target
            .ecr()
            .create_repository()
            .repository_name("kept")
            .send()
            .await
            .unwrap();
        let before = carried_dump(&target);

        let mut tampered = snapshot.clone();
        let at = find(&tampered, b"legacy\n");
        tampered[at] = b'A';
        let (status, body) = import(&target, tampered).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["__type"], "InvalidSnapshotException");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("changed or damaged"),
            "{body}"
        );
        assert_eq!(carried_dump(&target), before);

        let mut records = snapshot.clone();
        let at = find(&records, b"IMMUTABLE");
        records[at] = b'X';
        let (status, body) = import(&target, records).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("SHA-256"),
            "{body}"
        );
        assert_eq!(carried_dump(&target), before);

        let truncated = snapshot[..snapshot.len() / 2].to_vec();
        let (status, body) = import(&target, truncated).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(carried_dump(&target), before);

        // Not a tar content type: refused before reading.
        let response = target
            .http()
            .post(format!("{}/_ecrd/snapshot", target.url))
            .header("content-type", "text/plain")
            .body(snapshot.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415);
        assert_eq!(carried_dump(&target), before);
        target.stop().await;
    }
    source.stop().await;
}

//! Lifecycle policies through the AWS SDK for Rust, on every backend:
//! storing policies, previews, runs (`POST /_ecrd/lifecycle/evaluate`) with
//! ecrd's clock moved, and the archive storage class.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use aws_sdk_ecr::types::{
    ImageIdentifier, LifecyclePolicyPreviewFilter, TagStatus, TargetStorageClass,
};
use bytes::Bytes;
use common::{err_code, TestServer, BACKENDS};
use ecrd::ecr::error::ErrorKind;
use ecrd::ecr::images::Reference;
use ecrd::ecr::names::{AccountId, Region, RepositoryName, Scope};
use serde_json::{json, Value};

const DAY: f64 = 86_400.0;

fn scope() -> Scope {
    Scope::new(
        AccountId::parse("000000000000").unwrap(),
        Region::parse("us-east-1").unwrap(),
    )
}

fn name(repo: &str) -> RepositoryName {
    RepositoryName::parse(repo).unwrap()
}

/// Uploads one blob into `repo` through the domain; returns its descriptor.
async fn blob(server: &TestServer, repo: &str, content: Vec<u8>) -> (String, usize) {
    let ecr = &server.state.ecr;
    let digest = ecrd::digest::Digest::sha256_of(&content);
    let size = content.len();
    let id = ecr.start_upload(&scope(), &name(repo)).await.unwrap();
    let body: ecrd::store::blobs::ByteStream = Box::pin(futures_util::stream::once(async move {
        Ok::<_, std::io::Error>(Bytes::from(content))
    }));
    ecr.append_upload(&scope(), &name(repo), &id, None, body)
        .await
        .unwrap();
    ecr.complete_upload(&scope(), &name(repo), &id, &digest)
        .await
        .unwrap();
    (digest.to_string(), size)
}

/// Pushes a tiny Docker v2 image (a config and one layer, both unique to
/// `salt`) through the domain, optionally tagged; returns its digest.
async fn push(server: &TestServer, repo: &str, tag: Option<&str>, salt: &str) -> String {
    let config = json!({"architecture": "amd64", "os": "linux", "salt": salt});
    let (config_digest, config_size) =
        blob(server, repo, serde_json::to_vec(&config).unwrap()).await;
    let (layer_digest, layer_size) =
        blob(server, repo, format!("layer of {salt}").into_bytes()).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config_size, "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer_size, "digest": layer_digest}],
    });
    put_manifest(server, repo, tag, manifest).await
}

async fn put_manifest(
    server: &TestServer,
    repo: &str,
    tag: Option<&str>,
    manifest: Value,
) -> String {
    let bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let media_type = manifest["mediaType"].as_str().map(str::to_string);
    server
        .state
        .ecr
        .put_manifest(
            &scope(),
            &name(repo),
            tag,
            None,
            &bytes,
            media_type.as_deref(),
        )
        .unwrap()
        .image
        .digest
        .to_string()
}

/// Moves ecrd's clock by `seconds` through the operator endpoint.
async fn move_clock(server: &TestServer, seconds: f64) {
    let r = server
        .http()
        .post(format!("{}/_ecrd/clock", server.url))
        .json(&json!({ "offsetSeconds": seconds }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `POST /_ecrd/lifecycle/evaluate` with a JSON body (or none).
async fn evaluate(server: &TestServer, body: Option<Value>) -> (u16, Value) {
    let mut request = server
        .http()
        .post(format!("{}/_ecrd/lifecycle/evaluate", server.url));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The digests of a repository, through the domain.
fn digests(server: &TestServer, repo: &str) -> BTreeSet<String> {
    server
        .state
        .ecr
        .scan_images(&scope(), &name(repo), None, 1000)
        .unwrap()
        .into_iter()
        .map(|i| i.digest.to_string())
        .collect()
}

async fn create(server: &TestServer, repo: &str) {
    server
        .ecr()
        .create_repository()
        .repository_name(repo)
        .send()
        .await
        .unwrap();
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

const UNTAGGED_30_DAYS: &str = r#"{"rules":[{"rulePriority":1,"description":"Expire untagged images older than 30 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}"#;

#[tokio::test]
async fn put_get_delete_policy_and_errors() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create(&server, "app").await;

        let err = ecr
            .get_lifecycle_policy()
            .repository_name("app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "LifecyclePolicyNotFoundException".to_string(),
                "Lifecycle policy does not exist for the repository with name 'app' in the registry with id '000000000000'".to_string()
            )
        );
        let err = ecr
            .delete_lifecycle_policy()
            .repository_name("app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "LifecyclePolicyNotFoundException");
        let err = ecr
            .put_lifecycle_policy()
            .repository_name("missing")
            .lifecycle_policy_text(UNTAGGED_30_DAYS)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "RepositoryNotFoundException".to_string(),
                "The repository with name 'missing' does not exist in the registry with id '000000000000'".to_string()
            )
        );
        let err = ecr
            .get_lifecycle_policy()
            .repository_name("missing")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");

        // The engine's validation, worded as ECR words it.
        let tagged_without_list = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#;
        let err = ecr
            .put_lifecycle_policy()
            .repository_name("app")
            .lifecycle_policy_text(tagged_without_list)
            .send()
            .await
            .unwrap_err();
        let (code, message) = err_code(&err);
        assert_eq!(code, "InvalidParameterException");
        assert!(
            message.starts_with("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "),
            "{message}"
        );
        assert!(
            message.contains("tagPrefixList or tagPatternList must be specified"),
            "{message}"
        );

        let put = ecr
            .put_lifecycle_policy()
            .repository_name("app")
            .lifecycle_policy_text(UNTAGGED_30_DAYS)
            .send()
            .await
            .unwrap();
        assert_eq!(put.registry_id(), Some("000000000000"));
        assert_eq!(put.repository_name(), Some("app"));
        assert_eq!(put.lifecycle_policy_text(), Some(UNTAGGED_30_DAYS));

        let got = ecr
            .get_lifecycle_policy()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        assert_eq!(got.lifecycle_policy_text(), Some(UNTAGGED_30_DAYS));
        let evaluated = got.last_evaluated_at().unwrap().as_secs_f64();
        assert!((evaluated - now_secs()).abs() < 60.0, "{evaluated}");

        // A run moves lastEvaluatedAt.
        move_clock(&server, 120.0).await;
        let (status, report) = evaluate(&server, None).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["repositoriesEvaluated"], 1);
        let got = ecr
            .get_lifecycle_policy()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        assert!(got.last_evaluated_at().unwrap().as_secs_f64() >= evaluated + 119.0);

        let deleted = ecr
            .delete_lifecycle_policy()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.lifecycle_policy_text(), Some(UNTAGGED_30_DAYS));
        assert!(deleted.last_evaluated_at().is_some());
        let err = ecr
            .get_lifecycle_policy()
            .repository_name("app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "LifecyclePolicyNotFoundException");
        // No policy, nothing evaluated.
        let (_, report) = evaluate(&server, None).await;
        assert_eq!(report["repositoriesEvaluated"], 0);
    }
}

/// Rule 1 keeps the newest `v*` image; rule 2 expires old untagged images;
/// rule 3 archives anything else older than 30 days.
const MIXED: &str = r#"{"rules":[
 {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
 {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}},
 {"rulePriority":3,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}}]}"#;

#[tokio::test]
async fn preview_then_run_acts_on_exactly_the_previewed_images() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create(&server, "app").await;

        // Images pushed 40 days ago: move the clock back, push, come back.
        move_clock(&server, -40.0 * DAY).await;
        let mut old_untagged = BTreeSet::new();
        for n in 0..3 {
            old_untagged.insert(push(&server, "app", None, &format!("old-untagged-{n}")).await);
        }
        let v1 = push(&server, "app", Some("v1"), "v1").await;
        let archive_me = push(&server, "app", Some("old-1"), "old-1").await;
        move_clock(&server, 40.0 * DAY).await;
        let new_untagged = push(&server, "app", None, "new-untagged").await;
        let v2 = push(&server, "app", Some("v2"), "v2").await;
        assert_eq!(digests(&server, "app").len(), 7);

        let err = ecr
            .start_lifecycle_policy_preview()
            .repository_name("app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "LifecyclePolicyNotFoundException");
        let err = ecr
            .get_lifecycle_policy_preview()
            .repository_name("app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "LifecyclePolicyPreviewNotFoundException");
        let err = ecr
            .start_lifecycle_policy_preview()
            .repository_name("app")
            .lifecycle_policy_text(r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":30},"action":{"type":"expire"}}]}"#)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");

        let started = ecr
            .start_lifecycle_policy_preview()
            .repository_name("app")
            .lifecycle_policy_text(MIXED)
            .send()
            .await
            .unwrap();
        assert_eq!(started.status().map(|s| s.as_str()), Some("IN_PROGRESS"));
        assert_eq!(started.lifecycle_policy_text(), Some(MIXED));
        let err = ecr
            .start_lifecycle_policy_preview()
            .repository_name("app")
            .lifecycle_policy_text(MIXED)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err).0,
            "LifecyclePolicyPreviewInProgressException"
        );

        // Page through the results two at a time.
        let mut previewed = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = ecr
                .get_lifecycle_policy_preview()
                .repository_name("app")
                .max_results(2)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap();
            pages += 1;
            assert_eq!(page.status().map(|s| s.as_str()), Some("COMPLETE"));
            assert_eq!(page.lifecycle_policy_text(), Some(MIXED));
            assert!(page.preview_results().len() <= 2);
            let summary = page.summary().unwrap();
            assert_eq!(summary.expiring_image_total_count(), Some(4));
            let transitioning = summary.transitioning_image_total_counts();
            assert_eq!(transitioning.len(), 1);
            assert_eq!(
                transitioning[0].target_storage_class().map(|s| s.as_str()),
                Some("ARCHIVE")
            );
            assert_eq!(transitioning[0].image_total_count(), Some(1));
            previewed.extend(page.preview_results().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(previewed.len(), 5);
        let by_digest = |d: &str| {
            previewed
                .iter()
                .find(|r| r.image_digest() == Some(d))
                .unwrap_or_else(|| panic!("{d} not previewed"))
        };
        let r = by_digest(&v1);
        assert_eq!(r.image_tags(), ["v1"]);
        assert_eq!(r.action().unwrap().r#type().unwrap().as_str(), "EXPIRE");
        assert_eq!(r.applied_rule_priority(), Some(1));
        assert_eq!(r.storage_class().map(|s| s.as_str()), Some("STANDARD"));
        let pushed = r.image_pushed_at().unwrap().as_secs_f64();
        assert!((now_secs() - 40.0 * DAY - pushed).abs() < 120.0, "{pushed}");
        for d in &old_untagged {
            let r = by_digest(d);
            assert!(r.image_tags().is_empty());
            assert_eq!(r.applied_rule_priority(), Some(2));
        }
        let r = by_digest(&archive_me);
        let action = r.action().unwrap();
        assert_eq!(action.r#type().unwrap().as_str(), "TRANSITION");
        assert_eq!(
            action.target_storage_class().map(|s| s.as_str()),
            Some("ARCHIVE")
        );
        assert_eq!(r.applied_rule_priority(), Some(3));

        // Filters and image ids.
        let untagged = ecr
            .get_lifecycle_policy_preview()
            .repository_name("app")
            .filter(
                LifecyclePolicyPreviewFilter::builder()
                    .tag_status(TagStatus::Untagged)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(untagged.preview_results().len(), 3);
        let tagged = ecr
            .get_lifecycle_policy_preview()
            .repository_name("app")
            .filter(
                LifecyclePolicyPreviewFilter::builder()
                    .tag_status(TagStatus::Tagged)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(tagged.preview_results().len(), 2);
        let one = ecr
            .get_lifecycle_policy_preview()
            .repository_name("app")
            .image_ids(ImageIdentifier::builder().image_tag("old-1").build())
            .send()
            .await
            .unwrap();
        assert_eq!(one.preview_results().len(), 1);
        assert_eq!(
            one.preview_results()[0].image_digest(),
            Some(archive_me.as_str())
        );
        let none = ecr
            .get_lifecycle_policy_preview()
            .repository_name("app")
            .image_ids(ImageIdentifier::builder().image_tag("v2").build())
            .send()
            .await
            .unwrap();
        assert!(none.preview_results().is_empty());
        let err = ecr
            .get_lifecycle_policy_preview()
            .repository_name("app")
            .image_ids(ImageIdentifier::builder().image_tag("v2").build())
            .max_results(5)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
        let err = ecr
            .get_lifecycle_policy_preview()
            .repository_name("app")
            .next_token("bm90LWEtdG9rZW4")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");

        // The policy runs: exactly the previewed images go or are archived.
        ecr.put_lifecycle_policy()
            .repository_name("app")
            .lifecycle_policy_text(MIXED)
            .send()
            .await
            .unwrap();
        let (status, report) = evaluate(&server, None).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["repositoriesEvaluated"], 1);
        let acted: Vec<(String, String, i64)> = report["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                assert_eq!(a["registryId"], "000000000000");
                assert_eq!(a["region"], "us-east-1");
                assert_eq!(a["repositoryName"], "app");
                (
                    a["imageDigest"].as_str().unwrap().to_string(),
                    a["action"].as_str().unwrap().to_string(),
                    a["rulePriority"].as_i64().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(String, String, i64)> = previewed
            .iter()
            .map(|r| {
                (
                    r.image_digest().unwrap().to_string(),
                    r.action().unwrap().r#type().unwrap().as_str().to_string(),
                    i64::from(r.applied_rule_priority().unwrap()),
                )
            })
            .collect();
        assert_eq!(acted, expected);

        let left = digests(&server, "app");
        let expected_left: BTreeSet<String> =
            [archive_me.clone(), new_untagged.clone(), v2.clone()].into();
        assert_eq!(left, expected_left);
        let archived = server
            .state
            .ecr
            .get_image(
                &scope(),
                &name("app"),
                &Reference::Tag("old-1".into()),
                None,
            )
            .unwrap();
        assert_eq!(archived.status, "ARCHIVED");
        assert!(archived.last_archived_ms.is_some());
        // Expired images' tags went with them.
        let listed = ecr
            .list_images()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        for id in listed.image_ids() {
            assert!(id.image_tag() != Some("v1"), "{id:?}");
            assert!(!old_untagged.contains(id.image_digest().unwrap()));
        }

        // A second run finds nothing more to do.
        let (_, report) = evaluate(&server, None).await;
        assert_eq!(report["actions"], json!([]));
        // The preview was read, so another may start (the stored policy).
        let started = ecr
            .start_lifecycle_policy_preview()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        assert_eq!(started.lifecycle_policy_text(), Some(MIXED));
        let page = ecr
            .get_lifecycle_policy_preview()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        assert!(page.preview_results().is_empty());
        assert_eq!(
            page.summary().unwrap().expiring_image_total_count(),
            Some(0)
        );
    }
}

#[tokio::test]
async fn evaluation_follows_the_clock_and_its_target() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create(&server, "app").await;
        create(&server, "other").await;
        let a = push(&server, "app", None, "a").await;
        let b = push(&server, "app", None, "b").await;
        let kept = push(&server, "app", Some("latest"), "kept").await;
        let other = push(&server, "other", None, "other").await;
        for repo in ["app", "other"] {
            ecr.put_lifecycle_policy()
                .repository_name(repo)
                .lifecycle_policy_text(UNTAGGED_30_DAYS)
                .send()
                .await
                .unwrap();
        }

        let (status, report) = evaluate(&server, None).await;
        assert_eq!(status, 200);
        assert_eq!(report["repositoriesEvaluated"], 2);
        assert_eq!(report["actions"], json!([]));

        move_clock(&server, 31.0 * DAY).await;
        let (status, report) = evaluate(
            &server,
            Some(json!({"registryId": "000000000000", "region": "us-east-1", "repositoryName": "app"})),
        )
        .await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["repositoriesEvaluated"], 1);
        let acted: BTreeSet<String> = report["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                assert_eq!(a["action"], "EXPIRE");
                assert_eq!(a["rulePriority"], 1);
                assert_eq!(a["storageClass"], "STANDARD");
                a["imageDigest"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(acted, [a.clone(), b.clone()].into());
        assert_eq!(digests(&server, "app"), [kept.clone()].into());
        // "other" was not in the target.
        assert_eq!(digests(&server, "other"), [other.clone()].into());

        // Query parameters work too.
        let r = server
            .http()
            .post(format!(
                "{}/_ecrd/lifecycle/evaluate?region=us-east-1&repositoryName=other",
                server.url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let report: Value = r.json().await.unwrap();
        assert_eq!(report["actions"][0]["imageDigest"], other.as_str());
        assert!(digests(&server, "other").is_empty());

        // Another region has no such repositories.
        let (_, report) = evaluate(&server, Some(json!({"region": "eu-west-1"}))).await;
        assert_eq!(report["repositoriesEvaluated"], 0);
        let (status, body) = evaluate(
            &server,
            Some(json!({"registryId": "000000000000", "region": "us-east-1", "repositoryName": "nope"})),
        )
        .await;
        assert_eq!(status, 404);
        assert_eq!(body["__type"], "RepositoryNotFoundException");
        let (status, body) = evaluate(&server, Some(json!({"repositoryName": "nope"}))).await;
        assert_eq!(status, 404, "{body}");
        let (status, body) = evaluate(&server, Some(json!({"registryId": "12"}))).await;
        assert_eq!(status, 400);
        assert_eq!(body["__type"], "InvalidParameterException");

        // Back to real time so the SDK's signatures are current again.
        move_clock(&server, -31.0 * DAY).await;
        let listed = ecr
            .list_images()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        let listed: Vec<&str> = listed
            .image_ids()
            .iter()
            .filter_map(|i| i.image_digest())
            .collect();
        assert!(!listed.contains(&a.as_str()) && !listed.contains(&b.as_str()));
        assert!(listed.contains(&kept.as_str()));
    }
}

/// DescribeImages' imageStatus of an image, and whether lastArchivedAt is set.
async fn status_of(ecr: &aws_sdk_ecr::Client, digest: &str) -> (String, bool) {
    let described = ecr
        .describe_images()
        .repository_name("app")
        .image_ids(ImageIdentifier::builder().image_digest(digest).build())
        .send()
        .await
        .unwrap();
    let detail = &described.image_details()[0];
    (
        detail.image_status().unwrap().as_str().to_string(),
        detail.last_archived_at().is_some(),
    )
}

#[tokio::test]
async fn archive_and_restore() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let domain = &server.state.ecr;
        create(&server, "app").await;
        let v1 = push(&server, "app", Some("v1"), "v1").await;
        let amd = push(&server, "app", None, "amd64").await;
        let index = put_manifest(
            &server,
            "app",
            Some("multi"),
            json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": amd, "size": 1, "platform": {"architecture": "amd64", "os": "linux"}}],
            }),
        )
        .await;
        let pull = |tag: &str| {
            domain.get_image(
                &scope(),
                &name("app"),
                &Reference::Tag(tag.into()),
                Some("arn:aws:iam::000000000000:root"),
            )
        };
        pull("v1").unwrap();

        // A lifecycle rule archives v1 two days later; the index stays put.
        ecr.put_lifecycle_policy()
            .repository_name("app")
            .lifecycle_policy_text(r#"{"rules":[{"rulePriority":1,"description":"archive what nobody pulled for a day","selection":{"tagStatus":"tagged","tagPatternList":["*"],"countType":"sinceImagePulled","countUnit":"days","countNumber":1},"action":{"type":"transition","targetStorageClass":"archive"}}]}"#)
            .send()
            .await
            .unwrap();
        move_clock(&server, 2.0 * DAY).await;
        let (status, report) = evaluate(&server, None).await;
        assert_eq!(status, 200, "{report}");
        let actions = report["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1, "{report}");
        assert_eq!(actions[0]["imageDigest"], v1.as_str());
        assert_eq!(actions[0]["action"], "TRANSITION");
        assert_eq!(actions[0]["targetStorageClass"], "ARCHIVE");
        move_clock(&server, -2.0 * DAY).await;
        ecr.delete_lifecycle_policy()
            .repository_name("app")
            .send()
            .await
            .unwrap();

        let image = domain
            .get_image(&scope(), &name("app"), &Reference::Tag("v1".into()), None)
            .unwrap();
        assert_eq!(image.status, "ARCHIVED");
        let err = pull("v1").unwrap_err();
        assert_eq!(err.kind, ErrorKind::ImageArchived);
        assert!(err.message.contains("is archived"), "{}", err.message);
        assert_eq!(status_of(&ecr, &v1).await, ("ARCHIVED".to_string(), true));
        assert!(err
            .message
            .starts_with("The image with imageId {imageTag:'v1'}"));
        pull("multi").unwrap();

        let update = |tag: &str, target: TargetStorageClass| {
            ecr.update_image_storage_class()
                .repository_name("app")
                .image_id(ImageIdentifier::builder().image_tag(tag).build())
                .target_storage_class(target)
                .send()
        };
        let err = update("v1", TargetStorageClass::Archive).await.unwrap_err();
        assert_eq!(
            err_code(&err).0,
            "ImageStorageClassUpdateNotSupportedException"
        );
        let err = update("multi", TargetStorageClass::Archive)
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err).0,
            "ImageStorageClassUpdateNotSupportedException"
        );
        let err = update("nope", TargetStorageClass::Archive)
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "ImageNotFoundException".to_string(),
                "The image with imageId {imageTag:'nope'} does not exist within the repository with name 'app' in the registry with id '000000000000'".to_string()
            )
        );
        let err = ecr
            .update_image_storage_class()
            .repository_name("missing")
            .image_id(ImageIdentifier::builder().image_tag("v1").build())
            .target_storage_class(TargetStorageClass::Standard)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");

        // Restore: ACTIVATING for a minute of ecrd's clock, then ACTIVE.
        let restored = update("v1", TargetStorageClass::Standard).await.unwrap();
        assert_eq!(
            restored.image_status().map(|s| s.as_str()),
            Some("ACTIVATING")
        );
        assert_eq!(restored.repository_name(), Some("app"));
        assert_eq!(
            restored.image_id().unwrap().image_digest(),
            Some(v1.as_str())
        );
        assert_eq!(restored.image_id().unwrap().image_tag(), Some("v1"));
        assert_eq!(status_of(&ecr, &v1).await.0, "ACTIVATING");
        let err = pull("v1").unwrap_err();
        assert_eq!(err.kind, ErrorKind::ImageArchived);
        let err = update("v1", TargetStorageClass::Standard)
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err).0,
            "ImageStorageClassUpdateNotSupportedException"
        );

        move_clock(&server, 61.0).await;
        assert_eq!(status_of(&ecr, &v1).await.0, "ACTIVE");
        let image = pull("v1").unwrap();
        assert_eq!(image.status, "ACTIVE");
        assert!(image.last_activated_ms.is_some());
        let err = update("v1", TargetStorageClass::Standard)
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err).0,
            "ImageStorageClassUpdateNotSupportedException"
        );

        // Archived by hand (by digest), then expired after 90 days in archive.
        let archived = ecr
            .update_image_storage_class()
            .repository_name("app")
            .image_id(ImageIdentifier::builder().image_digest(&v1).build())
            .target_storage_class(TargetStorageClass::Archive)
            .send()
            .await
            .unwrap();
        assert_eq!(
            archived.image_status().map(|s| s.as_str()),
            Some("ARCHIVED")
        );
        ecr.put_lifecycle_policy()
            .repository_name("app")
            .lifecycle_policy_text(r#"{"rules":[{"rulePriority":1,"description":"drop after 90 days in archive","selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":90},"action":{"type":"expire"}}]}"#)
            .send()
            .await
            .unwrap();
        let (_, report) = evaluate(&server, None).await;
        assert_eq!(report["actions"], json!([]));
        move_clock(&server, 91.0 * DAY).await;
        let (_, report) = evaluate(&server, None).await;
        assert_eq!(report["actions"][0]["imageDigest"], v1.as_str());
        assert_eq!(report["actions"][0]["storageClass"], "ARCHIVE");
        move_clock(&server, -91.0 * DAY - 61.0).await;
        assert_eq!(digests(&server, "app"), [amd.clone(), index.clone()].into());
        assert_eq!(pull("v1").unwrap_err().kind, ErrorKind::ImageNotFound);
    }
}

#[tokio::test]
async fn background_runs_apply_policies() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| c.lifecycle_interval = 1).await;
        create(&server, "app").await;
        push(&server, "app", None, "stale").await;
        let kept = push(&server, "app", Some("latest"), "kept").await;
        server
            .ecr()
            .put_lifecycle_policy()
            .repository_name("app")
            .lifecycle_policy_text(UNTAGGED_30_DAYS)
            .send()
            .await
            .unwrap();
        move_clock(&server, 31.0 * DAY).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while digests(&server, "app").len() > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "no background run within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(digests(&server, "app"), [kept].into());
        server.stop().await;
    }
}

/// An image that a kept index lists is never expired before the index, as
/// BatchDeleteImage refuses to delete it: untagged children of a tagged
/// index stay while an unlisted untagged image goes; once a rule expires the
/// index, its children go in the same run, and nothing is left pointing at
/// a missing manifest. Previews say the same as the runs.
#[tokio::test]
async fn an_index_keeps_its_children_until_it_expires() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        create(&server, "multi").await;
        let amd = push(&server, "multi", None, "amd64").await;
        let arm = push(&server, "multi", None, "arm64").await;
        let stray = push(&server, "multi", None, "stray").await;
        let child = |digest: &str, arch: &str| {
            json!({"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                   "size": 1, "digest": digest,
                   "platform": {"architecture": arch, "os": "linux"}})
        };
        // The children's real manifest sizes, so a client could follow it.
        let manifests: Vec<Value> = [(&amd, "amd64"), (&arm, "arm64")]
            .into_iter()
            .map(|(d, a)| {
                let size = server
                    .state
                    .ecr
                    .scan_images(&scope(), &name("multi"), None, 1000)
                    .unwrap()
                    .into_iter()
                    .find(|i| i.digest.to_string() == *d)
                    .unwrap()
                    .manifest
                    .len();
                let mut c = child(d, a);
                c["size"] = json!(size);
                c
            })
            .collect();
        let index = put_manifest(
            &server,
            "multi",
            Some("v1"),
            json!({"schemaVersion": 2,
                   "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                   "manifests": manifests}),
        )
        .await;
        server
            .ecr()
            .put_lifecycle_policy()
            .repository_name("multi")
            .lifecycle_policy_text(UNTAGGED_30_DAYS)
            .send()
            .await
            .unwrap();
        move_clock(&server, 31.0 * DAY).await;

        let (status, ran) = evaluate(&server, None).await;
        assert_eq!(status, 200, "{ran}");
        let left = digests(&server, "multi");
        assert!(
            !left.contains(&stray),
            "the unlisted untagged image expires"
        );
        for kept in [&amd, &arm, &index] {
            assert!(left.contains(kept), "{kept} is kept while v1 lists it");
        }

        // A rule that expires tagged images too takes the index and, in the
        // same run, the children it held.
        let everything = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}"#;
        server
            .ecr()
            .put_lifecycle_policy()
            .repository_name("multi")
            .lifecycle_policy_text(everything)
            .send()
            .await
            .unwrap();
        let (status, ran) = evaluate(&server, None).await;
        assert_eq!(status, 200, "{ran}");
        assert!(
            digests(&server, "multi").is_empty(),
            "{:?}",
            digests(&server, "multi")
        );
        server.stop().await;
    }
}

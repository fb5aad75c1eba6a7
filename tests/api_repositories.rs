//! Repository operations through the AWS SDK for Rust, on every backend.

mod common;

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
    ImageTagMutabilityExclusionFilter, ImageTagMutabilityExclusionFilterType, Tag,
};
use common::{err_code, TestServer, BACKENDS};

#[tokio::test]
async fn create_describe_delete_round_trip() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let created = ecr
            .create_repository()
            .repository_name("team/app")
            .tags(Tag::builder().key("env").value("dev").build().unwrap())
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(true)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        assert_eq!(created.repository_name(), Some("team/app"));
        assert_eq!(created.registry_id(), Some("000000000000"));
        assert_eq!(
            created.repository_arn(),
            Some("arn:aws:ecr:us-east-1:000000000000:repository/team/app")
        );
        assert_eq!(
            created.repository_uri(),
            Some(format!("localhost:{}/team/app", server.port).as_str())
        );
        assert_eq!(
            created.image_tag_mutability(),
            Some(&ImageTagMutability::Mutable)
        );
        assert!(created
            .image_scanning_configuration()
            .unwrap()
            .scan_on_push());
        let enc = created.encryption_configuration().unwrap();
        assert_eq!(enc.encryption_type(), &EncryptionType::Aes256);
        assert!(enc.kms_key().is_none());
        let created_at = created.created_at().unwrap().secs();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((created_at - now).abs() < 60, "createdAt is epoch seconds");

        let described = ecr
            .describe_repositories()
            .repository_names("team/app")
            .send()
            .await
            .unwrap();
        assert_eq!(described.repositories().len(), 1);
        assert_eq!(described.repositories()[0], created);

        let again = ecr
            .create_repository()
            .repository_name("team/app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&again),
            (
                "RepositoryAlreadyExistsException".into(),
                "The repository with name 'team/app' already exists in the registry with id '000000000000'".into()
            )
        );

        let deleted = ecr
            .delete_repository()
            .repository_name("team/app")
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        assert_eq!(deleted.repository_name(), Some("team/app"));
        let missing = ecr
            .describe_repositories()
            .repository_names("team/app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&missing),
            (
                "RepositoryNotFoundException".into(),
                "The repository with name 'team/app' does not exist in the registry with id '000000000000'".into()
            )
        );
        let missing = ecr
            .delete_repository()
            .repository_name("team/app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&missing).0, "RepositoryNotFoundException");
    }
}

#[tokio::test]
async fn invalid_names_get_ecr_messages() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let err = ecr
            .create_repository()
            .repository_name("Team/App")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "InvalidParameterException".into(),
                "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''".into()
            )
        );
        let err = ecr
            .create_repository()
            .repository_name("a")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err).1,
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must have length greater than or equal to 2'"
        );
        for bad in ["../etc", "a//b", "app/", "x y"] {
            let err = ecr
                .create_repository()
                .repository_name(bad)
                .send()
                .await
                .unwrap_err();
            assert_eq!(err_code(&err).0, "InvalidParameterException", "{bad}");
        }
        let listed = ecr.describe_repositories().send().await.unwrap();
        assert!(listed.repositories().is_empty());
    }
}

#[tokio::test]
async fn describe_pages_with_stable_tokens() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        for i in 0..7 {
            ecr.create_repository()
                .repository_name(format!("repo-{i}"))
                .send()
                .await
                .unwrap();
        }
        let mut names = Vec::new();
        let mut token = None;
        let mut pages = 0;
        loop {
            let page = ecr
                .describe_repositories()
                .max_results(3)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap();
            pages += 1;
            names.extend(
                page.repositories()
                    .iter()
                    .map(|r| r.repository_name().unwrap().to_string()),
            );
            // Asking again with the same token gives the same page.
            if let Some(t) = &token {
                let again = ecr
                    .describe_repositories()
                    .max_results(3)
                    .next_token(t)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(again.repositories(), page.repositories());
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(pages, 3);
        let expected: Vec<String> = (0..7).map(|i| format!("repo-{i}")).collect();
        assert_eq!(names, expected);

        // The SDK paginator walks the same pages.
        let all: Vec<_> = ecr
            .describe_repositories()
            .max_results(2)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(all.len(), 7);

        // maxResults and repositoryNames are exclusive.
        let err = ecr
            .describe_repositories()
            .repository_names("repo-1")
            .max_results(2)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
        let err = ecr
            .describe_repositories()
            .max_results(1001)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err).1,
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'must have value less than or equal to 1000'"
        );
        let err = ecr
            .describe_repositories()
            .next_token("garbage!")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
    }
}

#[tokio::test]
async fn delete_repository_force_flag_and_registry_id() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        ecr.create_repository()
            .repository_name("other")
            .registry_id("000000000000")
            .send()
            .await
            .unwrap();
        let out = ecr
            .delete_repository()
            .repository_name("other")
            .force(true)
            .send()
            .await
            .unwrap();
        assert_eq!(out.repository().unwrap().repository_name(), Some("other"));
    }
}

#[tokio::test]
async fn tag_mutability_with_exclusions() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let filter = ImageTagMutabilityExclusionFilter::builder()
            .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
            .filter("latest*")
            .build()
            .unwrap();
        let repo = ecr
            .create_repository()
            .repository_name("immut")
            .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
            .image_tag_mutability_exclusion_filters(filter.clone())
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        assert_eq!(
            repo.image_tag_mutability(),
            Some(&ImageTagMutability::ImmutableWithExclusion)
        );
        assert_eq!(
            repo.image_tag_mutability_exclusion_filters(),
            std::slice::from_ref(&filter)
        );

        let err = ecr
            .create_repository()
            .repository_name("immut2")
            .image_tag_mutability(ImageTagMutability::MutableWithExclusion)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");

        let out = ecr
            .put_image_tag_mutability()
            .repository_name("immut")
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.image_tag_mutability(),
            Some(&ImageTagMutability::Immutable)
        );
        assert!(out.image_tag_mutability_exclusion_filters().is_empty());
        assert_eq!(out.registry_id(), Some("000000000000"));
        let described = ecr
            .describe_repositories()
            .repository_names("immut")
            .send()
            .await
            .unwrap();
        assert_eq!(
            described.repositories()[0].image_tag_mutability(),
            Some(&ImageTagMutability::Immutable)
        );

        let err = ecr
            .put_image_tag_mutability()
            .repository_name("missing")
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");

        let bad_filter = ImageTagMutabilityExclusionFilter::builder()
            .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
            .filter("bad filter!")
            .build()
            .unwrap();
        let err = ecr
            .put_image_tag_mutability()
            .repository_name("immut")
            .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
            .image_tag_mutability_exclusion_filters(bad_filter)
            .send()
            .await
            .unwrap_err();
        let (code, message) = err_code(&err);
        assert_eq!(code, "InvalidParameterException");
        assert!(
            message.contains("imageTagMutabilityExclusionFilters.1.member.filter"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn scanning_configuration_and_encryption() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let kms = ecr
            .create_repository()
            .repository_name("kms-default")
            .encryption_configuration(
                EncryptionConfiguration::builder()
                    .encryption_type(EncryptionType::Kms)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        let key = kms
            .encryption_configuration()
            .unwrap()
            .kms_key()
            .unwrap()
            .to_string();
        assert!(
            key.starts_with("arn:aws:kms:us-east-1:000000000000:key/"),
            "{key}"
        );
        let dsse = ecr
            .create_repository()
            .repository_name("kms-dsse")
            .encryption_configuration(
                EncryptionConfiguration::builder()
                    .encryption_type(EncryptionType::KmsDsse)
                    .kms_key("1234abcd-12ab-34cd-56ef-1234567890ab")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        assert_eq!(
            dsse.encryption_configuration().unwrap().kms_key(),
            Some("arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        );
        let err = ecr
            .create_repository()
            .repository_name("aes-with-key")
            .encryption_configuration(
                EncryptionConfiguration::builder()
                    .encryption_type(EncryptionType::Aes256)
                    .kms_key("some-key")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");

        let out = ecr
            .put_image_scanning_configuration()
            .repository_name("kms-default")
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(true)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert!(out.image_scanning_configuration().unwrap().scan_on_push());
        assert_eq!(out.repository_name(), Some("kms-default"));
        let described = ecr
            .describe_repositories()
            .repository_names("kms-default")
            .send()
            .await
            .unwrap();
        assert!(described.repositories()[0]
            .image_scanning_configuration()
            .unwrap()
            .scan_on_push());
    }
}

#[tokio::test]
async fn resource_tags() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let arn = ecr
            .create_repository()
            .repository_name("tagged")
            .tags(Tag::builder().key("a").value("1").build().unwrap())
            .send()
            .await
            .unwrap()
            .repository
            .unwrap()
            .repository_arn
            .unwrap();
        ecr.tag_resource()
            .resource_arn(&arn)
            .tags(Tag::builder().key("a").value("2").build().unwrap())
            .tags(Tag::builder().key("b").value("3").build().unwrap())
            .send()
            .await
            .unwrap();
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .unwrap();
        let pairs: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
        assert_eq!(pairs, [("a", "2"), ("b", "3")]);

        ecr.untag_resource()
            .resource_arn(&arn)
            .tag_keys("a")
            .send()
            .await
            .unwrap();
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .unwrap();
        assert_eq!(tags.tags().len(), 1);

        let mut too_many = ecr.tag_resource().resource_arn(&arn);
        for i in 0..50 {
            too_many = too_many.tags(
                Tag::builder()
                    .key(format!("k{i}"))
                    .value("v")
                    .build()
                    .unwrap(),
            );
        }
        let err = too_many.send().await.unwrap_err();
        assert_eq!(err_code(&err).0, "TooManyTagsException");
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .unwrap();
        assert_eq!(
            tags.tags().len(),
            1,
            "a refused TagResource changes nothing"
        );

        let err = ecr
            .tag_resource()
            .resource_arn(&arn)
            .tags(
                Tag::builder()
                    .key("aws:reserved")
                    .value("x")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidTagParameterException");

        let err = ecr
            .list_tags_for_resource()
            .resource_arn("not-an-arn")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
        let err = ecr
            .list_tags_for_resource()
            .resource_arn("arn:aws:ecr:us-east-1:000000000000:repository/nope")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
    }
}

#[tokio::test]
async fn account_settings_and_registry() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let got = ecr
            .get_account_setting()
            .name("BASIC_SCAN_TYPE_VERSION")
            .send()
            .await
            .unwrap();
        assert_eq!(
            (got.name(), got.value()),
            (Some("BASIC_SCAN_TYPE_VERSION"), Some("AWS_NATIVE"))
        );
        let put = ecr
            .put_account_setting()
            .name("REGISTRY_POLICY_SCOPE")
            .value("V1")
            .send()
            .await
            .unwrap();
        assert_eq!(put.value(), Some("V1"));
        let got = ecr
            .get_account_setting()
            .name("REGISTRY_POLICY_SCOPE")
            .send()
            .await
            .unwrap();
        assert_eq!(got.value(), Some("V1"));
        let err = ecr
            .put_account_setting()
            .name("REGISTRY_POLICY_SCOPE")
            .value("V9")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
        let err = ecr
            .get_account_setting()
            .name("NOPE")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");

        let registry = ecr.describe_registry().send().await.unwrap();
        assert_eq!(registry.registry_id(), Some("000000000000"));
        assert!(registry
            .replication_configuration()
            .unwrap()
            .rules()
            .is_empty());
    }
}

/// Limits are checked before work proportional to the input: 100,000 tags
/// (CreateRepository, TagResource) are refused with TooManyTagsException,
/// and 100,000 image ids or layer digests with the model's list limit
/// (InvalidParameterException), each well within a second of server time.
/// Before the merge was made linear, the tags alone took 21 s of CPU.
#[tokio::test]
async fn hundred_thousand_items_are_refused_fast() {
    use aws_sdk_ecr::types::ImageIdentifier;
    use std::time::{Duration, Instant};
    const N: usize = 100_000;
    let tags: Vec<Tag> = (0..N)
        .map(|i| {
            Tag::builder()
                .key(format!("key-{i}"))
                .value("v")
                .build()
                .unwrap()
        })
        .collect();
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let started = Instant::now();
        let err = ecr
            .create_repository()
            .repository_name("many-tags")
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .unwrap_err();
        let took = started.elapsed();
        let (code, message) = err_code(&err);
        assert_eq!(code, "TooManyTagsException", "{message}");
        assert!(message.contains("50"), "{message}");
        eprintln!("CreateRepository with {N} tags refused in {took:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");

        let arn = ecr
            .create_repository()
            .repository_name("some-tags")
            .send()
            .await
            .unwrap()
            .repository
            .unwrap()
            .repository_arn
            .unwrap();
        let started = Instant::now();
        let err = ecr
            .tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(err_code(&err).0, "TooManyTagsException");
        eprintln!("TagResource with {N} tags refused in {took:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");

        // Many copies of one key are one tag; untagging many keys is linear.
        let started = Instant::now();
        ecr.tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(vec![
                Tag::builder()
                    .key("same")
                    .value("v")
                    .build()
                    .unwrap();
                N
            ]))
            .send()
            .await
            .unwrap();
        ecr.untag_resource()
            .resource_arn(&arn)
            .set_tag_keys(Some((0..N).map(|i| format!("key-{i}")).collect()))
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?}");
        let listed = ecr
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .unwrap();
        let keys: Vec<&str> = listed.tags().iter().map(|t| t.key()).collect();
        assert_eq!(keys, ["same"]);

        let started = Instant::now();
        let ids: Vec<ImageIdentifier> = (0..N)
            .map(|i| {
                ImageIdentifier::builder()
                    .image_tag(format!("t{i}"))
                    .build()
            })
            .collect();
        let err = ecr
            .batch_get_image()
            .repository_name("some-tags")
            .set_image_ids(Some(ids.clone()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
        let err = ecr
            .batch_delete_image()
            .repository_name("some-tags")
            .set_image_ids(Some(ids))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
        let digests: Vec<String> = (0..N).map(|i| format!("sha256:{i:064x}")).collect();
        let err = ecr
            .batch_check_layer_availability()
            .repository_name("some-tags")
            .set_layer_digests(Some(digests.clone()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
        let err = ecr
            .complete_layer_upload()
            .repository_name("some-tags")
            .upload_id("00000000-0000-0000-0000-000000000000")
            .set_layer_digests(Some(digests))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
        let took = started.elapsed();
        eprintln!("four batch calls with {N} items each refused in {took:?}");
        assert!(took < Duration::from_secs(10), "took {took:?}");
    }
}

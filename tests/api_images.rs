//! Image and layer operations through the AWS SDK for Rust, on every
//! backend: an image pushed part by part with InitiateLayerUpload /
//! UploadLayerPart / CompleteLayerUpload and PutImage, then read, listed,
//! paged, pulled and deleted, with ECR's errors along the way.
#![allow(clippy::unwrap_used)]

mod common;

use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::{
    DescribeImagesFilter, ImageIdentifier, ImageTagMutability, LayerAvailability,
    ListImageReferrersFilter, ListImagesFilter, SubjectIdentifier, TagStatus,
};
use aws_sdk_ecr::Client;
use common::{err_code, Backend, TestServer, BACKENDS};
use sha2::{Digest as _, Sha256};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const MIB: usize = 1024 * 1024;

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn id_tag(tag: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_tag(tag).build()
}

fn id_digest(digest: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_digest(digest).build()
}

async fn create_repo(ecr: &Client, name: &str) {
    ecr.create_repository()
        .repository_name(name)
        .send()
        .await
        .unwrap();
}

/// Uploads `data` as one layer in parts of `part` bytes; returns its digest.
async fn upload_in_parts(ecr: &Client, repo: &str, data: &[u8], part: usize) -> String {
    let upload = ecr
        .initiate_layer_upload()
        .repository_name(repo)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap().to_string();
    let mut offset = 0;
    for chunk in data.chunks(part) {
        let last = offset + chunk.len() - 1;
        let out = ecr
            .upload_layer_part()
            .repository_name(repo)
            .upload_id(&id)
            .part_first_byte(offset as i64)
            .part_last_byte(last as i64)
            .layer_part_blob(Blob::new(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        assert_eq!(out.last_byte_received(), Some(last as i64));
        assert_eq!(out.upload_id(), Some(id.as_str()));
        assert_eq!(out.repository_name(), Some(repo));
        assert_eq!(out.registry_id(), Some("000000000000"));
        offset = last + 1;
    }
    let digest = sha256(data);
    let done = ecr
        .complete_layer_upload()
        .repository_name(repo)
        .upload_id(&id)
        .layer_digests(&digest)
        .send()
        .await
        .unwrap();
    assert_eq!(done.layer_digest(), Some(digest.as_str()));
    assert_eq!(done.upload_id(), Some(id.as_str()));
    digest
}

async fn upload(ecr: &Client, repo: &str, data: &[u8]) -> String {
    upload_in_parts(ecr, repo, data, data.len().max(1)).await
}

fn docker_manifest(config: (&str, usize), layers: &[(&str, usize)]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, n)| format!(r#"{{"mediaType":"{DOCKER_LAYER}","size":{n},"digest":"{d}"}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":{},"digest":"{}"}},"layers":[{}]}}"#,
        config.1,
        config.0,
        layers.join(",")
    )
}

/// Uploads a config and a layer made from `seed` and puts a Docker v2
/// manifest over them, tagged or not; returns the manifest's digest.
async fn push(ecr: &Client, repo: &str, seed: &str, tag: Option<&str>) -> String {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let layer = format!("layer of {seed}").repeat(10);
    let c = upload(ecr, repo, config.as_bytes()).await;
    let l = upload(ecr, repo, layer.as_bytes()).await;
    let manifest = docker_manifest((&c, config.len()), &[(&l, layer.len())]);
    ecr.put_image()
        .repository_name(repo)
        .image_manifest(&manifest)
        .set_image_tag(tag.map(str::to_string))
        .send()
        .await
        .unwrap();
    sha256(manifest.as_bytes())
}

async fn list_all(ecr: &Client, repo: &str, status: TagStatus) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = ecr
        .list_images()
        .repository_name(repo)
        .filter(ListImagesFilter::builder().tag_status(status).build())
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .into_iter()
        .map(|i| {
            (
                i.image_digest().unwrap().to_string(),
                i.image_tag().map(str::to_string),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn push_describe_pull_download_delete() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create_repo(&ecr, "team/app").await;

        let started = ecr
            .initiate_layer_upload()
            .repository_name("team/app")
            .send()
            .await
            .unwrap();
        assert_eq!(started.part_size(), Some(10_485_760));
        assert_eq!(started.upload_id().unwrap().len(), 36);

        // A config, a small layer, and a layer sent as a 5 MiB part and a
        // smaller last part.
        let config = br#"{"architecture":"amd64","os":"linux","config":{}}"#.to_vec();
        let small: Vec<u8> = b"small layer ".repeat(100);
        let big: Vec<u8> = (0..5 * MIB + 1234).map(|i| (i % 251) as u8).collect();
        let missing = sha256(b"never uploaded");
        let before = ecr
            .batch_check_layer_availability()
            .repository_name("team/app")
            .layer_digests(sha256(&config))
            .layer_digests(&missing)
            .send()
            .await
            .unwrap();
        assert!(before
            .layers()
            .iter()
            .all(|l| l.layer_availability() == Some(&LayerAvailability::Unavailable)));
        assert!(before.failures().is_empty());

        let c = upload(&ecr, "team/app", &config).await;
        let s = upload(&ecr, "team/app", &small).await;
        let b = upload_in_parts(&ecr, "team/app", &big, 5 * MIB).await;

        let after = ecr
            .batch_check_layer_availability()
            .repository_name("team/app")
            .layer_digests(&c)
            .layer_digests(&b)
            .layer_digests(&missing)
            .layer_digests("sha256:not-hex")
            .layer_digests("")
            .send()
            .await
            .unwrap();
        let layers = after.layers();
        assert_eq!(layers.len(), 3);
        assert_eq!(layers[0].layer_digest(), Some(c.as_str()));
        assert_eq!(
            layers[0].layer_availability(),
            Some(&LayerAvailability::Available)
        );
        assert_eq!(layers[0].layer_size(), Some(config.len() as i64));
        assert_eq!(layers[1].layer_size(), Some(big.len() as i64));
        assert_eq!(
            layers[2].layer_availability(),
            Some(&LayerAvailability::Unavailable)
        );
        let codes: Vec<&str> = after
            .failures()
            .iter()
            .map(|f| f.failure_code().unwrap().as_str())
            .collect();
        assert_eq!(codes, ["InvalidLayerDigest", "MissingLayerDigest"]);
        assert_eq!(after.failures()[0].layer_digest(), Some("sha256:not-hex"));

        // PutImage.
        let manifest = docker_manifest((&c, config.len()), &[(&s, small.len()), (&b, big.len())]);
        let digest = sha256(manifest.as_bytes());
        let put = ecr
            .put_image()
            .repository_name("team/app")
            .image_manifest(&manifest)
            .image_tag("v1")
            .image_digest(&digest)
            .send()
            .await
            .unwrap();
        let image = put.image().unwrap();
        assert_eq!(image.registry_id(), Some("000000000000"));
        assert_eq!(image.repository_name(), Some("team/app"));
        assert_eq!(
            image.image_id().unwrap().image_digest(),
            Some(digest.as_str())
        );
        assert_eq!(image.image_id().unwrap().image_tag(), Some("v1"));
        assert_eq!(image.image_manifest(), Some(manifest.as_str()));
        assert_eq!(image.image_manifest_media_type(), Some(DOCKER_MANIFEST));

        // The same push again changes nothing: ImageAlreadyExistsException,
        // tagged or not.
        for tag in [Some("v1"), None] {
            let err = ecr
                .put_image()
                .repository_name("team/app")
                .image_manifest(&manifest)
                .set_image_tag(tag.map(str::to_string))
                .send()
                .await
                .unwrap_err();
            let (code, message) = err_code(&err);
            assert_eq!(code, "ImageAlreadyExistsException");
            assert!(message.contains(&digest), "{message}");
        }
        // A second tag for the same manifest is a change.
        ecr.put_image()
            .repository_name("team/app")
            .image_manifest(&manifest)
            .image_tag("stable")
            .send()
            .await
            .unwrap();

        // DescribeImages.
        let described = ecr
            .describe_images()
            .repository_name("team/app")
            .send()
            .await
            .unwrap();
        assert_eq!(described.image_details().len(), 1);
        let detail = &described.image_details()[0];
        assert_eq!(detail.registry_id(), Some("000000000000"));
        assert_eq!(detail.repository_name(), Some("team/app"));
        assert_eq!(detail.image_digest(), Some(digest.as_str()));
        assert_eq!(detail.image_tags(), ["v1", "stable"]);
        assert_eq!(
            detail.image_size_in_bytes(),
            Some((small.len() + big.len()) as i64)
        );
        assert_eq!(detail.image_manifest_media_type(), Some(DOCKER_MANIFEST));
        assert_eq!(detail.artifact_media_type(), Some(DOCKER_CONFIG));
        assert_eq!(detail.image_status().unwrap().as_str(), "ACTIVE");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((detail.image_pushed_at().unwrap().secs() - now).abs() < 60);
        assert!(detail.last_recorded_pull_time().is_none());
        assert!(detail.image_scan_status().is_none());

        // ListImages: one entry per tag.
        assert_eq!(
            list_all(&ecr, "team/app", TagStatus::Any).await,
            vec![
                (digest.clone(), Some("stable".to_string())),
                (digest.clone(), Some("v1".to_string())),
            ]
        );

        // BatchGetImage is a pull.
        let got = ecr
            .batch_get_image()
            .repository_name("team/app")
            .image_ids(id_tag("v1"))
            .image_ids(id_digest(&digest))
            .accepted_media_types(DOCKER_MANIFEST)
            .send()
            .await
            .unwrap();
        assert!(got.failures().is_empty());
        assert_eq!(got.images().len(), 2);
        let first = &got.images()[0];
        assert_eq!(first.image_manifest(), Some(manifest.as_str()));
        assert_eq!(first.image_manifest_media_type(), Some(DOCKER_MANIFEST));
        assert_eq!(
            first.image_id().unwrap(),
            &ImageIdentifier::builder()
                .image_digest(&digest)
                .image_tag("v1")
                .build()
        );
        assert_eq!(got.images()[1].image_id().unwrap(), &id_digest(&digest));
        let pulled = ecr
            .describe_images()
            .repository_name("team/app")
            .image_ids(id_tag("stable"))
            .send()
            .await
            .unwrap();
        let pulled_at = pulled.image_details()[0]
            .last_recorded_pull_time()
            .expect("BatchGetImage records a pull")
            .secs();
        assert!((pulled_at - now).abs() < 60);

        // GetDownloadUrlForLayer: a short-lived URL on ecrd itself, or, with
        // the blobs in a bucket, a presigned URL of the bucket (as ECR's
        // point at S3).
        let url = ecr
            .get_download_url_for_layer()
            .repository_name("team/app")
            .layer_digest(&s)
            .send()
            .await
            .unwrap();
        assert_eq!(url.layer_digest(), Some(s.as_str()));
        let download = url.download_url().unwrap();
        if backend == Backend::Shared {
            let endpoint = server.state.config.s3_endpoint.clone().unwrap();
            let hex = &s["sha256:".len()..];
            assert!(download.starts_with(&endpoint), "{download}");
            assert!(
                download.contains(&format!("/blobs/sha256/{}/{hex}?", &hex[..2])),
                "{download}"
            );
            assert!(download.contains("X-Amz-Signature="), "{download}");
        } else {
            let prefix = format!(
                "http://localhost:{}/_ecrd/layers/000000000000/us-east-1/{s}?repository=team%2Fapp&expires=",
                server.port
            );
            assert!(download.starts_with(&prefix), "{download}");
            assert!(download.contains("&signature="));
        }
        // Fetch it when the data plane serves the route (it is written in
        // parallel with these operations).
        let fetched = server
            .http()
            .get(download.replace("localhost", "127.0.0.1"))
            .send()
            .await
            .unwrap();
        if fetched.status() != 404 {
            assert_eq!(fetched.status(), 200);
            assert_eq!(fetched.bytes().await.unwrap().as_ref(), small.as_slice());
        }

        // A repository holding images is not deleted without force.
        let err = ecr
            .delete_repository()
            .repository_name("team/app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "RepositoryNotEmptyException".into(),
                "The repository with name 'team/app' in registry with id '000000000000' cannot be deleted because it still contains images".into()
            )
        );

        // Deleting by digest removes the image and all its tags, one
        // identifier per tag in the answer.
        let deleted = ecr
            .batch_delete_image()
            .repository_name("team/app")
            .image_ids(id_digest(&digest))
            .send()
            .await
            .unwrap();
        assert!(deleted.failures().is_empty());
        let mut ids: Vec<(Option<&str>, Option<&str>)> = deleted
            .image_ids()
            .iter()
            .map(|i| (i.image_digest(), i.image_tag()))
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            [
                (Some(digest.as_str()), Some("stable")),
                (Some(digest.as_str()), Some("v1"))
            ]
        );
        assert!(list_all(&ecr, "team/app", TagStatus::Any).await.is_empty());
        ecr.delete_repository()
            .repository_name("team/app")
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn layer_upload_rules() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create_repo(&ecr, "layers").await;
        let start = || async {
            ecr.initiate_layer_upload()
                .repository_name("layers")
                .send()
                .await
                .unwrap()
                .upload_id()
                .unwrap()
                .to_string()
        };
        let part = |id: &str, first: i64, last: i64, data: &[u8]| {
            ecr.upload_layer_part()
                .repository_name("layers")
                .upload_id(id)
                .part_first_byte(first)
                .part_last_byte(last)
                .layer_part_blob(Blob::new(data.to_vec()))
                .send()
        };
        let complete = |id: &str, digest: &str| {
            ecr.complete_layer_upload()
                .repository_name("layers")
                .upload_id(id)
                .layer_digests(digest)
                .send()
        };

        // Unknown upload.
        let unknown = "6cb64b8a-9378-0e33-2ab1-b780fab8a9e9";
        let err = part(unknown, 0, 2, b"abc").await.unwrap_err();
        assert_eq!(err_code(&err).0, "UploadNotFoundException");
        let err = complete(unknown, &sha256(b"abc")).await.unwrap_err();
        assert_eq!(err_code(&err).0, "UploadNotFoundException");

        // Parts must be contiguous and match their stated span.
        let id = start().await;
        part(&id, 0, 9, b"0123456789").await.unwrap();
        for (first, last) in [(5, 9), (11, 15), (0, 4)] {
            let err = part(&id, first, last, b"abcde").await.unwrap_err();
            let (code, message) = err_code(&err);
            assert_eq!(code, "InvalidLayerPartException");
            assert!(message.contains("lastValidByteReceived: 9"), "{message}");
            // The exception's modelled members, as the SDK reads them.
            match err.into_service_error() {
                aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError::InvalidLayerPartException(e) => {
                    assert_eq!(e.registry_id(), Some("000000000000"));
                    assert_eq!(e.repository_name(), Some("layers"));
                    assert_eq!(e.upload_id(), Some(id.as_str()));
                    assert_eq!(e.last_valid_byte_received(), Some(9));
                }
                other => panic!("{other:?}"),
            }
        }
        let err = part(&id, 10, 14, b"abc").await.unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidLayerPartException");
        let err = part(&id, 10, 9, b"").await.unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidLayerPartException");
        // The part was too small, and another one follows it: the upload
        // cannot be completed.
        let out = part(&id, 10, 12, b"abc").await.unwrap();
        assert_eq!(out.last_byte_received(), Some(12));
        let err = complete(&id, &sha256(b"0123456789abc")).await.unwrap_err();
        let (code, message) = err_code(&err);
        assert_eq!(code, "LayerPartTooSmallException");
        assert!(message.contains("10 bytes"), "{message}");

        // Nothing uploaded.
        let id = start().await;
        let err = complete(&id, &sha256(b"")).await.unwrap_err();
        assert_eq!(err_code(&err).0, "EmptyUploadException");

        // Content that is not what the digest names.
        part(&id, 0, 2, b"abc").await.unwrap();
        let err = complete(&id, &sha256(b"xyz")).await.unwrap_err();
        let (code, message) = err_code(&err);
        assert_eq!(code, "InvalidLayerException");
        assert!(message.contains(&sha256(b"abc")), "{message}");
        // The failed upload is over.
        let err = part(&id, 3, 5, b"def").await.unwrap_err();
        assert_eq!(err_code(&err).0, "UploadNotFoundException");

        // A layer the repository already holds.
        let digest = upload(&ecr, "layers", b"abc").await;
        let id = start().await;
        part(&id, 0, 2, b"abc").await.unwrap();
        let err = complete(&id, &digest).await.unwrap_err();
        let (code, message) = err_code(&err);
        assert_eq!(code, "LayerAlreadyExistsException");
        assert!(message.contains(&digest), "{message}");
        // ...which another repository does not.
        create_repo(&ecr, "other").await;
        let digest_again = upload(&ecr, "other", b"abc").await;
        assert_eq!(digest_again, digest);

        // An upload belongs to its repository.
        let id = start().await;
        let err = ecr
            .upload_layer_part()
            .repository_name("other")
            .upload_id(&id)
            .part_first_byte(0)
            .part_last_byte(0)
            .layer_part_blob(Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "UploadNotFoundException");

        // Repositories must exist.
        let err = ecr
            .initiate_layer_upload()
            .repository_name("nope")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
        let err = ecr
            .batch_check_layer_availability()
            .repository_name("nope")
            .layer_digests(&digest)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");

        // Download URLs only for layers an image references.
        let err = ecr
            .get_download_url_for_layer()
            .repository_name("layers")
            .layer_digest(sha256(b"nothing"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "LayersNotFoundException");
        let err = ecr
            .get_download_url_for_layer()
            .repository_name("layers")
            .layer_digest(&digest)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "LayerInaccessibleException");
        let err = ecr
            .get_download_url_for_layer()
            .repository_name("layers")
            .layer_digest("sha256:abc")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
    }
}

#[tokio::test]
async fn put_image_errors() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create_repo(&ecr, "errs").await;
        let config = br#"{"os":"linux"}"#;
        let c = upload(&ecr, "errs", config).await;

        // Missing layers.
        let absent = sha256(b"absent layer");
        let manifest = docker_manifest((&c, config.len()), &[(&absent, 12)]);
        let err = ecr
            .put_image()
            .repository_name("errs")
            .image_manifest(&manifest)
            .image_tag("v1")
            .send()
            .await
            .unwrap_err();
        let (code, message) = err_code(&err);
        assert_eq!(code, "LayersNotFoundException");
        assert!(message.contains(&absent), "{message}");

        // imageDigest that is not the manifest's.
        let good = docker_manifest((&c, config.len()), &[]);
        let err = ecr
            .put_image()
            .repository_name("errs")
            .image_manifest(&good)
            .image_digest(sha256(b"something else"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "ImageDigestDoesNotMatchException");

        // A manifest without mediaType needs imageManifestMediaType.
        let bare = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_EMPTY}","size":{},"digest":"{c}"}},"layers":[]}}"#,
            config.len()
        );
        let err = ecr
            .put_image()
            .repository_name("errs")
            .image_manifest(&bare)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "InvalidParameterException".into(),
                "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'".into()
            )
        );
        let put = ecr
            .put_image()
            .repository_name("errs")
            .image_manifest(&bare)
            .image_manifest_media_type(OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.image().unwrap().image_manifest_media_type(),
            Some(OCI_MANIFEST)
        );
        assert_eq!(put.image().unwrap().image_id().unwrap().image_tag(), None);

        // Not JSON at all.
        let err = ecr
            .put_image()
            .repository_name("errs")
            .image_manifest("not json")
            .image_manifest_media_type(OCI_MANIFEST)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");

        // An index whose manifests are not in the repository.
        let child = sha256(b"no such manifest");
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","size":10,"digest":"{child}"}}]}}"#
        );
        let err = ecr
            .put_image()
            .repository_name("errs")
            .image_manifest(&index)
            .image_tag("multi")
            .send()
            .await
            .unwrap_err();
        let (code, message) = err_code(&err);
        assert_eq!(code, "ReferencedImagesNotFoundException");
        assert!(message.contains(&child), "{message}");

        // Immutable tags stay put.
        ecr.create_repository()
            .repository_name("frozen")
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await
            .unwrap();
        push(&ecr, "frozen", "one", Some("v1")).await;
        let c2 = upload(&ecr, "frozen", b"{\"other\":true}").await;
        let other = docker_manifest((&c2, 14), &[]);
        let err = ecr
            .put_image()
            .repository_name("frozen")
            .image_manifest(&other)
            .image_tag("v1")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "ImageTagAlreadyExistsException".into(),
                "The image tag 'v1' already exists in the 'frozen' repository and cannot be overwritten because the repository is immutable.".into()
            )
        );

        // Missing repository.
        let err = ecr
            .put_image()
            .repository_name("nope")
            .image_manifest(&good)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
    }
}

#[tokio::test]
async fn tags_move_and_batch_failures() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create_repo(&ecr, "moves").await;
        let a = push(&ecr, "moves", "a", Some("latest")).await;
        let a_manifest = ecr
            .batch_get_image()
            .repository_name("moves")
            .image_ids(id_digest(&a))
            .send()
            .await
            .unwrap()
            .images()[0]
            .image_manifest()
            .unwrap()
            .to_string();
        ecr.put_image()
            .repository_name("moves")
            .image_manifest(&a_manifest)
            .image_tag("v1")
            .send()
            .await
            .unwrap();
        // "latest" moves to b; a keeps v1.
        let b = push(&ecr, "moves", "b", Some("latest")).await;
        // "v1" moves to c; a is left untagged.
        let c = push(&ecr, "moves", "c", Some("v1")).await;
        assert_eq!(
            list_all(&ecr, "moves", TagStatus::Untagged).await,
            vec![(a.clone(), None)]
        );
        let mut tagged = vec![
            (b.clone(), Some("latest".to_string())),
            (c.clone(), Some("v1".to_string())),
        ];
        tagged.sort();
        assert_eq!(list_all(&ecr, "moves", TagStatus::Tagged).await, tagged);
        let untagged = ecr
            .describe_images()
            .repository_name("moves")
            .filter(
                DescribeImagesFilter::builder()
                    .tag_status(TagStatus::Untagged)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(untagged.image_details().len(), 1);
        assert_eq!(untagged.image_details()[0].image_digest(), Some(a.as_str()));
        assert!(untagged.image_details()[0].image_tags().is_empty());

        // BatchGetImage failures, with ECR's codes and reasons.
        let got = ecr
            .batch_get_image()
            .repository_name("moves")
            .image_ids(id_tag("nope"))
            .image_ids(id_digest("invalid_digest"))
            .image_ids(ImageIdentifier::builder().build())
            .image_ids(
                ImageIdentifier::builder()
                    .image_tag("latest")
                    .image_digest(&c)
                    .build(),
            )
            .image_ids(id_digest(&sha256(b"unknown")))
            .image_ids(
                ImageIdentifier::builder()
                    .image_tag("latest")
                    .image_digest(&b)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(got.images().len(), 1);
        let failures: Vec<(Option<&str>, Option<&str>, &str, &str)> = got
            .failures()
            .iter()
            .map(|f| {
                (
                    f.image_id().unwrap().image_digest(),
                    f.image_id().unwrap().image_tag(),
                    f.failure_code().unwrap().as_str(),
                    f.failure_reason().unwrap(),
                )
            })
            .collect();
        let unknown = sha256(b"unknown");
        assert_eq!(
            failures,
            [
                (None, Some("nope"), "ImageNotFound", "Requested image not found"),
                (
                    Some("invalid_digest"),
                    None,
                    "InvalidImageDigest",
                    "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"
                ),
                (
                    None,
                    None,
                    "MissingDigestAndTag",
                    "Invalid request parameters: both tag and digest cannot be null"
                ),
                (
                    Some(c.as_str()),
                    Some("latest"),
                    "ImageTagDoesNotMatchDigest",
                    "Invalid request parameters: given tag does not map to the given digest"
                ),
                (
                    Some(unknown.as_str()),
                    None,
                    "ImageNotFound",
                    "Requested image not found"
                ),
            ]
        );

        // DescribeImages raises instead.
        let err = ecr
            .describe_images()
            .repository_name("moves")
            .image_ids(id_tag("nope"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "ImageNotFoundException".into(),
                "The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the repository with name 'moves' in the registry with id '000000000000'".into()
            )
        );

        // BatchDeleteImage: removing the last tag deletes the image; the
        // same image named twice is deleted once; failures carry codes.
        let deleted = ecr
            .batch_delete_image()
            .repository_name("moves")
            .image_ids(id_tag("latest"))
            .image_ids(id_digest(&b))
            .image_ids(id_tag("nope"))
            .image_ids(
                ImageIdentifier::builder()
                    .image_tag("v1")
                    .image_digest(&a)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let ids: Vec<(Option<&str>, Option<&str>)> = deleted
            .image_ids()
            .iter()
            .map(|i| (i.image_digest(), i.image_tag()))
            .collect();
        assert_eq!(ids, [(Some(b.as_str()), Some("latest"))]);
        let codes: Vec<&str> = deleted
            .failures()
            .iter()
            .map(|f| f.failure_code().unwrap().as_str())
            .collect();
        assert_eq!(codes, ["ImageNotFound", "ImageTagDoesNotMatchDigest"]);
        // An untagged image is deleted by its digest, answered by digest alone.
        let deleted = ecr
            .batch_delete_image()
            .repository_name("moves")
            .image_ids(id_digest(&a))
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.image_ids(), [id_digest(&a)]);
        assert_eq!(
            list_all(&ecr, "moves", TagStatus::Any).await,
            vec![(c.clone(), Some("v1".to_string()))]
        );

        // A tag of an image with several tags is only removed.
        ecr.put_image()
            .repository_name("moves")
            .image_manifest(
                ecr.batch_get_image()
                    .repository_name("moves")
                    .image_ids(id_tag("v1"))
                    .send()
                    .await
                    .unwrap()
                    .images()[0]
                    .image_manifest()
                    .unwrap(),
            )
            .image_tag("v2")
            .send()
            .await
            .unwrap();
        let deleted = ecr
            .batch_delete_image()
            .repository_name("moves")
            .image_ids(id_tag("v1"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            deleted.image_ids(),
            [ImageIdentifier::builder()
                .image_digest(&c)
                .image_tag("v1")
                .build()]
        );
        assert_eq!(
            list_all(&ecr, "moves", TagStatus::Any).await,
            vec![(c.clone(), Some("v2".to_string()))]
        );

        // An image an index lists cannot be deleted while the index stays.
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","size":100,"digest":"{c}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        let index_digest = sha256(index.as_bytes());
        ecr.put_image()
            .repository_name("moves")
            .image_manifest(&index)
            .image_tag("multi")
            .send()
            .await
            .unwrap();
        let refused = ecr
            .batch_delete_image()
            .repository_name("moves")
            .image_ids(id_digest(&c))
            .send()
            .await
            .unwrap();
        assert!(refused.image_ids().is_empty());
        let failure = &refused.failures()[0];
        assert_eq!(
            failure.failure_code().unwrap().as_str(),
            "ImageReferencedByManifestList"
        );
        assert!(failure.failure_reason().unwrap().contains(&index_digest));
        // The index's size is that of its largest manifest.
        let detail = ecr
            .describe_images()
            .repository_name("moves")
            .image_ids(id_tag("multi"))
            .send()
            .await
            .unwrap();
        let child = ecr
            .describe_images()
            .repository_name("moves")
            .image_ids(id_digest(&c))
            .send()
            .await
            .unwrap();
        assert_eq!(
            detail.image_details()[0].image_size_in_bytes(),
            child.image_details()[0].image_size_in_bytes()
        );
        // Together with the index it goes.
        let deleted = ecr
            .batch_delete_image()
            .repository_name("moves")
            .image_ids(id_digest(&c))
            .image_ids(id_tag("multi"))
            .send()
            .await
            .unwrap();
        assert!(deleted.failures().is_empty());
        assert_eq!(deleted.image_ids().len(), 2);
        assert!(list_all(&ecr, "moves", TagStatus::Any).await.is_empty());
    }
}

#[tokio::test]
async fn list_and_describe_pages() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create_repo(&ecr, "paged").await;
        let mut expected = Vec::new();
        for i in 0..7 {
            let tag = format!("t{i}");
            let d = push(&ecr, "paged", &format!("img{i}"), Some(&tag)).await;
            expected.push((d.clone(), Some(tag)));
            if i % 3 == 0 {
                // A second tag on some images makes entries straddle pages.
                let manifest = ecr
                    .batch_get_image()
                    .repository_name("paged")
                    .image_ids(id_digest(&d))
                    .send()
                    .await
                    .unwrap()
                    .images()[0]
                    .image_manifest()
                    .unwrap()
                    .to_string();
                let extra = format!("extra{i}");
                ecr.put_image()
                    .repository_name("paged")
                    .image_manifest(&manifest)
                    .image_tag(&extra)
                    .send()
                    .await
                    .unwrap();
                expected.push((d, Some(extra)));
            }
        }
        expected.sort();
        assert_eq!(expected.len(), 10);

        // ListImages page by page with the SDK paginator.
        let pages: Vec<_> = ecr
            .list_images()
            .repository_name("paged")
            .max_results(3)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(pages.len(), 4);
        assert!(pages[..3].iter().all(|p| p.image_ids().len() == 3));
        assert!(pages[3].next_token().is_none());
        let mut listed: Vec<(String, Option<String>)> = pages
            .iter()
            .flat_map(|p| p.image_ids())
            .map(|i| {
                (
                    i.image_digest().unwrap().to_string(),
                    i.image_tag().map(str::to_string),
                )
            })
            .collect();
        let in_order = listed.clone();
        listed.sort();
        assert_eq!(listed, expected);
        assert_eq!(in_order, expected, "digest order, then tag order");
        let unpaged = ecr
            .list_images()
            .repository_name("paged")
            .send()
            .await
            .unwrap();
        assert_eq!(unpaged.image_ids().len(), 10);
        assert!(unpaged.next_token().is_none());

        // DescribeImages: 7 images in pages of 3.
        let pages: Vec<_> = ecr
            .describe_images()
            .repository_name("paged")
            .max_results(3)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        let sizes: Vec<usize> = pages.iter().map(|p| p.image_details().len()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        let digests: Vec<&str> = pages
            .iter()
            .flat_map(|p| p.image_details())
            .map(|d| d.image_digest().unwrap())
            .collect();
        let mut sorted = digests.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(digests, sorted);
        // A token, used again, gives the same page.
        let first = ecr
            .describe_images()
            .repository_name("paged")
            .max_results(3)
            .send()
            .await
            .unwrap();
        let token = first.next_token().unwrap();
        let a = ecr
            .describe_images()
            .repository_name("paged")
            .max_results(3)
            .next_token(token)
            .send()
            .await
            .unwrap();
        let b = ecr
            .describe_images()
            .repository_name("paged")
            .max_results(3)
            .next_token(token)
            .send()
            .await
            .unwrap();
        assert_eq!(a.image_details(), b.image_details());

        // Tagged-only pages.
        let tagged: Vec<_> = ecr
            .describe_images()
            .repository_name("paged")
            .max_results(2)
            .filter(
                DescribeImagesFilter::builder()
                    .tag_status(TagStatus::Tagged)
                    .build(),
            )
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(tagged.len(), 7);

        // Rules of the parameters.
        let err = ecr
            .list_images()
            .repository_name("paged")
            .next_token("garbage!")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
        let err = ecr
            .describe_images()
            .repository_name("paged")
            .image_ids(id_tag("t1"))
            .max_results(2)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
        let err = ecr
            .list_images()
            .repository_name("paged")
            .max_results(1001)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err).1,
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'must have value less than or equal to 1000'"
        );
        let err = ecr
            .list_images()
            .repository_name("nope")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
    }
}

#[tokio::test]
async fn artifacts_and_referrers() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create_repo(&ecr, "signed").await;
        let subject = push(&ecr, "signed", "app", Some("v1")).await;
        let subject_size = ecr
            .batch_get_image()
            .repository_name("signed")
            .image_ids(id_digest(&subject))
            .send()
            .await
            .unwrap()
            .images()[0]
            .image_manifest()
            .unwrap()
            .len();

        let empty = upload(&ecr, "signed", b"{}").await;
        let sbom = br#"{"sbom":"spdx"}"#;
        let sbom_digest = upload(&ecr, "signed", sbom).await;
        let artifact = |kind: &str, note: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"{kind}","config":{{"mediaType":"{OCI_EMPTY}","digest":"{empty}","size":2}},"layers":[{{"mediaType":"application/spdx+json","digest":"{sbom_digest}","size":{}}}],"subject":{{"mediaType":"{DOCKER_MANIFEST}","digest":"{subject}","size":{subject_size}}},"annotations":{{"note":"{note}"}}}}"#,
                sbom.len()
            )
        };
        let mut pushed = Vec::new();
        for (kind, note) in [
            ("application/vnd.example.sbom", "first"),
            ("application/vnd.example.sig", "second"),
            ("application/vnd.example.sbom", "third"),
        ] {
            let manifest = artifact(kind, note);
            ecr.put_image()
                .repository_name("signed")
                .image_manifest(&manifest)
                .send()
                .await
                .unwrap();
            pushed.push((sha256(manifest.as_bytes()), kind, note, manifest.len()));
        }
        pushed.sort();

        let subject_id = SubjectIdentifier::builder()
            .image_digest(&subject)
            .build()
            .unwrap();
        let all = ecr
            .list_image_referrers()
            .repository_name("signed")
            .subject_id(subject_id.clone())
            .send()
            .await
            .unwrap();
        assert!(all.next_token().is_none());
        let found: Vec<(String, &str, &str, usize)> = all
            .referrers()
            .iter()
            .map(|r| {
                assert_eq!(r.media_type(), OCI_MANIFEST);
                assert_eq!(r.artifact_status().unwrap().as_str(), "ACTIVE");
                (
                    r.digest().to_string(),
                    r.artifact_type().unwrap(),
                    r.annotations().unwrap()["note"].as_str(),
                    r.size() as usize,
                )
            })
            .collect();
        let expected: Vec<(String, &str, &str, usize)> = pushed
            .iter()
            .map(|(d, k, n, s)| (d.clone(), *k, *n, *s))
            .collect();
        assert_eq!(found, expected);

        // Filtered by artifact type, and paged.
        let sboms = ecr
            .list_image_referrers()
            .repository_name("signed")
            .subject_id(subject_id.clone())
            .filter(
                ListImageReferrersFilter::builder()
                    .artifact_types("application/vnd.example.sbom")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(sboms.referrers().len(), 2);
        let first = ecr
            .list_image_referrers()
            .repository_name("signed")
            .subject_id(subject_id.clone())
            .max_results(2)
            .send()
            .await
            .unwrap();
        assert_eq!(first.referrers().len(), 2);
        let rest = ecr
            .list_image_referrers()
            .repository_name("signed")
            .subject_id(subject_id.clone())
            .max_results(2)
            .next_token(first.next_token().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(rest.referrers().len(), 1);
        assert!(rest.next_token().is_none());
        assert_eq!(rest.referrers()[0].digest(), pushed[2].0);

        // The artifact as DescribeImages shows it.
        let detail = ecr
            .describe_images()
            .repository_name("signed")
            .image_ids(id_digest(&pushed[0].0))
            .send()
            .await
            .unwrap();
        let detail = &detail.image_details()[0];
        assert_eq!(detail.subject_manifest_digest(), Some(subject.as_str()));
        assert_eq!(detail.artifact_media_type(), Some(pushed[0].1));
        assert_eq!(detail.image_manifest_media_type(), Some(OCI_MANIFEST));
        assert!(detail.image_tags().is_empty());

        // A subject without referrers, and one that is not a digest.
        let none = ecr
            .list_image_referrers()
            .repository_name("signed")
            .subject_id(
                SubjectIdentifier::builder()
                    .image_digest(sha256(b"x"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert!(none.referrers().is_empty());
        let err = ecr
            .list_image_referrers()
            .repository_name("signed")
            .subject_id(
                SubjectIdentifier::builder()
                    .image_digest("v1")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "InvalidParameterException");
    }
}

#[tokio::test]
async fn archived_images_are_listed_on_request_and_not_pulled() {
    use aws_sdk_ecr::types::{ImageStatusFilter, TargetStorageClass};
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create_repo(&ecr, "cold").await;
        let kept = push(&ecr, "cold", "kept", Some("kept")).await;
        let old = push(&ecr, "cold", "old", Some("old")).await;
        ecr.update_image_storage_class()
            .repository_name("cold")
            .image_id(id_digest(&old))
            .target_storage_class(TargetStorageClass::Archive)
            .send()
            .await
            .unwrap();

        // Without a filter only ACTIVE images are listed and described.
        assert_eq!(
            list_all(&ecr, "cold", TagStatus::Any).await,
            vec![(kept.clone(), Some("kept".to_string()))]
        );
        let active = ecr
            .describe_images()
            .repository_name("cold")
            .send()
            .await
            .unwrap();
        assert_eq!(active.image_details().len(), 1);
        let archived = ecr
            .describe_images()
            .repository_name("cold")
            .filter(
                DescribeImagesFilter::builder()
                    .image_status(ImageStatusFilter::Archived)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let detail = &archived.image_details()[0];
        assert_eq!(detail.image_digest(), Some(old.as_str()));
        assert_eq!(detail.image_status().unwrap().as_str(), "ARCHIVED");
        assert!(detail.last_archived_at().is_some());
        let any = ecr
            .list_images()
            .repository_name("cold")
            .filter(
                ListImagesFilter::builder()
                    .image_status(ImageStatusFilter::Any)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(any.image_ids().len(), 2);

        // An archived image is not pulled.
        let got = ecr
            .batch_get_image()
            .repository_name("cold")
            .image_ids(id_tag("old"))
            .send()
            .await
            .unwrap();
        assert!(got.images().is_empty());
        assert_eq!(
            got.failures()[0].failure_code().unwrap().as_str(),
            "ImageInaccessible"
        );
    }
}

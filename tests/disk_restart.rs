//! `--data-dir`: everything a server was told survives its restart on the
//! same directory, and a directory serves one process at a time.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Tag};
use base64::Engine;
use bytes::Bytes;
use common::{Backend, TestServer};
use ecrd::digest::Digest;
use ecrd::ecr::images::Reference;
use ecrd::ecr::names::{AccountId, Region, RepositoryName, Scope};
use ecrd::{AppState, ServeConfig, Server};
use futures_util::StreamExt;

async fn on_dir(dir: &std::path::Path) -> TestServer {
    let dir = dir.to_path_buf();
    TestServer::start_with(Backend::Disk, move |c| c.data_dir = Some(dir)).await
}

fn scope() -> Scope {
    Scope::new(
        AccountId::parse("000000000000").unwrap(),
        Region::parse("us-east-1").unwrap(),
    )
}

fn body(data: &'static [u8]) -> ecrd::store::blobs::ByteStream {
    Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from_static(
        data,
    ))]))
}

async fn upload(state: &AppState, repo: &RepositoryName, data: &'static [u8]) -> Digest {
    let ecr = &state.ecr;
    let id = ecr.start_upload(&scope(), repo).await.unwrap();
    ecr.append_upload(&scope(), repo, &id, None, body(data))
        .await
        .unwrap();
    let digest = Digest::sha256_of(data);
    ecr.complete_upload(&scope(), repo, &id, &digest)
        .await
        .unwrap();
    digest
}

async fn read_layer(state: &AppState, repo: &RepositoryName, digest: &Digest) -> Vec<u8> {
    let mut stream = state
        .ecr
        .read_layer(&scope(), repo, digest, 0, None)
        .await
        .unwrap()
        .expect("layer present");
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// Everything the control plane shows about the registry, for comparison.
async fn snapshot(server: &TestServer) -> String {
    let ecr = server.ecr();
    let repos = ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories
        .unwrap_or_default();
    let mut out = format!("{repos:?}\n");
    for repo in &repos {
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(repo.repository_arn().unwrap())
            .send()
            .await
            .unwrap();
        out += &format!("{:?}\n", tags.tags());
    }
    let setting = ecr
        .get_account_setting()
        .name("REGISTRY_POLICY_SCOPE")
        .send()
        .await
        .unwrap();
    out += &format!("{:?}\n", setting.value());
    // Repository URIs name the port, which a restart changes.
    out.replace(&format!("localhost:{}", server.port), "localhost:PORT")
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = RepositoryName::parse("team/app").unwrap();

    let server = on_dir(dir.path()).await;
    let ecr = server.ecr();
    ecr.create_repository()
        .repository_name("team/app")
        .tags(Tag::builder().key("env").value("dev").build().unwrap())
        .image_tag_mutability(ImageTagMutability::Immutable)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    for name in ["base", "tools/a", "tools/b"] {
        ecr.create_repository()
            .repository_name(name)
            .send()
            .await
            .unwrap();
    }
    let base_arn = "arn:aws:ecr:us-east-1:000000000000:repository/base";
    ecr.tag_resource()
        .resource_arn(base_arn)
        .tags(Tag::builder().key("team").value("core").build().unwrap())
        .tags(Tag::builder().key("cost").value("42").build().unwrap())
        .send()
        .await
        .unwrap();
    ecr.delete_repository()
        .repository_name("tools/b")
        .send()
        .await
        .unwrap();
    ecr.put_account_setting()
        .name("REGISTRY_POLICY_SCOPE")
        .value("V1")
        .send()
        .await
        .unwrap();
    let token = ecr.get_authorization_token().send().await.unwrap();
    let token = base64::engine::general_purpose::STANDARD
        .decode(token.authorization_data()[0].authorization_token().unwrap())
        .unwrap();
    let password = String::from_utf8(token)
        .unwrap()
        .strip_prefix("AWS:")
        .unwrap()
        .to_string();

    // An image, and an upload left half done.
    let config = upload(
        &server.state,
        &app,
        b"{\"architecture\":\"amd64\",\"os\":\"linux\"}",
    )
    .await;
    let layer = upload(&server.state, &app, b"layer bytes").await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":38}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":11}}]}}"#
    );
    let pushed = server
        .state
        .ecr
        .put_manifest(
            &scope(),
            &app,
            Some("v1"),
            None,
            &Bytes::from(manifest.clone()),
            None,
        )
        .unwrap();
    let half = server.state.ecr.start_upload(&scope(), &app).await.unwrap();
    server
        .state
        .ecr
        .append_upload(&scope(), &app, &half, None, body(b"first half, "))
        .await
        .unwrap();

    let before = snapshot(&server).await;
    assert!(before.contains("team/app") && before.contains("core"));
    drop(ecr);
    server.stop().await;

    let server = on_dir(dir.path()).await;
    assert_eq!(snapshot(&server).await, before);
    let claims = server
        .state
        .tokens
        .verify(&password, server.state.ecr.clock.now())
        .expect("a password issued before the restart still verifies");
    assert_eq!(claims.account.as_str(), "000000000000");

    // The image, its tag and its blobs.
    let image = server
        .state
        .ecr
        .get_image(&scope(), &app, &Reference::parse("v1").unwrap(), None)
        .unwrap();
    assert_eq!(format!("{image:?}"), format!("{:?}", pushed.image));
    assert_eq!(
        read_layer(&server.state, &app, &layer).await,
        b"layer bytes"
    );

    // The upload goes on where it stopped.
    let ecr = &server.state.ecr;
    assert_eq!(ecr.upload_size(&scope(), &app, &half).await.unwrap(), 12);
    ecr.append_upload(&scope(), &app, &half, Some(12), body(b"second half"))
        .await
        .unwrap();
    let whole = Digest::sha256_of(b"first half, second half");
    assert_eq!(
        ecr.complete_upload(&scope(), &app, &half, &whole)
            .await
            .unwrap(),
        23
    );
    assert_eq!(
        read_layer(&server.state, &app, &whole).await,
        b"first half, second half"
    );

    let health: serde_json::Value = server
        .http()
        .get(format!("{}/_ecrd/health", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["backend"], "disk");
    server.stop().await;
}

#[tokio::test]
async fn reset_is_durable_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = on_dir(dir.path()).await;
    server
        .ecr()
        .create_repository()
        .repository_name("gone")
        .send()
        .await
        .unwrap();
    let reset = server
        .http()
        .post(format!("{}/_ecrd/reset", server.url))
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success());
    server.stop().await;
    let server = on_dir(dir.path()).await;
    let repos = server.ecr().describe_repositories().send().await.unwrap();
    assert!(repos.repositories().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn one_process_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = on_dir(dir.path()).await;
    let mut config = ServeConfig::for_tests();
    config.data_dir = Some(dir.path().to_path_buf());
    let err = match Server::bind(config.clone()).await {
        Ok(_) => panic!("a second server opened a directory in use"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        format!(
            "data directory {} is in use by another ecrd process",
            dir.path().display()
        )
    );
    server.stop().await;
    // Free again once the first has stopped.
    let again = Server::bind(config).await.map(|s| s.state());
    let state: Arc<AppState> = again.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state.ecr.store.backend(), "disk");
}

#[tokio::test]
async fn explicit_token_secret_wins_and_the_dir_secret_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let server = on_dir(dir.path()).await;
    let issued = server
        .state
        .tokens
        .issue(&scope(), "test", server.state.ecr.clock.now());
    server.stop().await;
    let secret = std::fs::read_to_string(dir.path().join("token-secret")).unwrap();
    let path = dir.path().to_path_buf();
    let server = TestServer::start_with(Backend::Disk, move |c| {
        c.data_dir = Some(path);
        c.token_secret = Some(secret.trim().to_string());
    })
    .await;
    assert!(server
        .state
        .tokens
        .verify(&issued.0, server.state.ecr.clock.now())
        .is_ok());
    server.stop().await;
}

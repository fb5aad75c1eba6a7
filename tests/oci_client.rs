//! A real registry client, the `oci-client` crate (the one wasmtime,
//! krustlet and many Rust tools use), pushes and pulls images of several MB
//! through `/v2/`, logged in with `aws ecr get-login-password`'s password.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::{TestServer, BACKENDS};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

async fn password(server: &TestServer) -> String {
    let out = server.ecr().get_authorization_token().send().await.unwrap();
    let token = out.authorization_data()[0].authorization_token().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .unwrap();
    String::from_utf8(decoded)
        .unwrap()
        .strip_prefix("AWS:")
        .unwrap()
        .to_string()
}

fn client(monolithic: bool) -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        use_monolithic_push: monolithic,
        ..Default::default()
    })
}

/// Bytes that do not compress or repeat, so a wrong offset shows.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn push_and_pull_with_oci_client() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        for repo in ["apps/mono", "apps/chunked"] {
            server
                .ecr()
                .create_repository()
                .repository_name(repo)
                .send()
                .await
                .unwrap();
        }
        let auth = RegistryAuth::Basic("AWS".to_string(), password(&server).await);
        let registry = format!("127.0.0.1:{}", server.port);

        for (repo, monolithic, seed) in [("apps/mono", true, 1u64), ("apps/chunked", false, 2)] {
            let client = client(monolithic);
            let reference: Reference = format!("{registry}/{repo}:v1").parse().unwrap();
            // 9 MiB and 3 MiB: the first goes in three 4 MiB chunks when chunked.
            let layers = vec![
                ImageLayer::oci_v1(noise(9 * 1024 * 1024 + 17, seed), None),
                ImageLayer::oci_v1_gzip(noise(3 * 1024 * 1024, seed + 10), None),
            ];
            let config = Config::oci_v1(
                br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                    .to_vec(),
                None,
            );
            let pushed = client
                .push(&reference, &layers, config.clone(), &auth, None)
                .await
                .unwrap_or_else(|e| panic!("push to {repo}: {e:?}"));
            assert!(
                pushed
                    .manifest_url
                    .contains(&format!("/v2/{repo}/manifests/sha256:")),
                "{}",
                pushed.manifest_url
            );

            // A fresh client pulls it back byte for byte (following the 307s).
            let puller = self::client(false);
            let image = puller
                .pull(
                    &reference,
                    &auth,
                    vec![
                        oci_client::manifest::IMAGE_LAYER_MEDIA_TYPE,
                        oci_client::manifest::IMAGE_LAYER_GZIP_MEDIA_TYPE,
                    ],
                )
                .await
                .unwrap_or_else(|e| panic!("pull from {repo}: {e:?}"));
            assert_eq!(image.layers.len(), 2);
            // Layers download concurrently and arrive in any order.
            for want in &layers {
                let got = image
                    .layers
                    .iter()
                    .find(|l| l.media_type == want.media_type)
                    .expect("every layer comes back");
                assert_eq!(got.data.len(), want.data.len());
                assert!(got.data == want.data, "layer differs after the round trip");
            }
            assert_eq!(image.config.data, config.data);
            let digest = image.digest.clone().unwrap();
            assert!(digest.starts_with("sha256:"));

            // The manifest's digest as the registry reports it.
            let (manifest, listed_digest) =
                puller.pull_image_manifest(&reference, &auth).await.unwrap();
            assert_eq!(listed_digest, digest);
            assert_eq!(manifest.layers.len(), 2);

            let tags = puller
                .list_tags(&reference, &auth, None, None)
                .await
                .unwrap();
            assert_eq!(tags.name, repo);
            assert_eq!(tags.tags, vec!["v1".to_string()]);
        }

        // A blob mounted from another repository, then an image reusing it.
        let client = client(false);
        let source: Reference = format!("{registry}/apps/mono:v1").parse().unwrap();
        let target: Reference = format!("{registry}/apps/chunked:v2").parse().unwrap();
        let (manifest, _) = client.pull_image_manifest(&source, &auth).await.unwrap();
        for layer in &manifest.layers {
            client
                .mount_blob(&target, &source, &layer.digest)
                .await
                .unwrap();
            assert!(client.blob_exists(&target, &layer.digest).await.unwrap());
        }

        // The control plane sees what the registry received.
        let repos = server.ecr().describe_repositories().send().await.unwrap();
        let mut names: Vec<&str> = repos
            .repositories()
            .iter()
            .filter_map(|r| r.repository_name())
            .collect();
        names.sort();
        assert_eq!(names, vec!["apps/chunked", "apps/mono"]);
        let images = server
            .ecr()
            .describe_images()
            .repository_name("apps/mono")
            .send()
            .await
            .unwrap();
        let details = images.image_details();
        assert_eq!(details.len(), 1);
        assert_eq!(details[0].image_tags(), ["v1".to_string()]);
        assert_eq!(
            details[0].image_manifest_media_type(),
            Some(oci_client::manifest::OCI_IMAGE_MEDIA_TYPE)
        );
        assert!(details[0].image_size_in_bytes().unwrap_or(0) > 12 * 1024 * 1024);
        let catalog = client.catalog(&source, &auth, Some(1), None).await.unwrap();
        assert_eq!(catalog.repositories, vec!["apps/chunked".to_string()]);
    }
}

#[tokio::test]
async fn oci_client_with_a_wrong_password_is_refused() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        server
            .ecr()
            .create_repository()
            .repository_name("locked")
            .send()
            .await
            .unwrap();
        let reference: Reference = format!("127.0.0.1:{}/locked:v1", server.port)
            .parse()
            .unwrap();
        let auth = RegistryAuth::Basic("AWS".to_string(), "not-a-token".to_string());
        let err = client(false)
            .push(
                &reference,
                &[ImageLayer::oci_v1(b"x".to_vec(), None)],
                Config::oci_v1(b"{}".to_vec(), None),
                &auth,
                None,
            )
            .await
            .err()
            .expect("a push with a wrong password fails");
        let text = format!("{err:?}");
        assert!(
            text.contains("401") || text.contains("UNAUTHORIZED"),
            "{text}"
        );
    }
}

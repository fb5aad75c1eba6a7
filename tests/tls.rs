//! `--tls`: HTTPS and plain HTTP on one port, the generated CA (reused on
//! restart), the user's own certificate, and the schemes of the URLs ecrd
//! hands out (`proxyEndpoint` always `https://`, a layer download URL on
//! the scheme the call came over). Both backends.

mod common;

use common::{api_call, api_call_via, push_image, Backend, TestServer, BACKENDS};

async fn tls_server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.tls = true).await
}

#[tokio::test]
async fn https_and_plain_http_share_the_port() {
    for &backend in BACKENDS {
        let server = tls_server(backend).await;
        let https = server.https();
        let secure = https
            .get(format!("{}/_ecrd/health", server.https_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(secure.status(), 200, "{backend:?}");
        let plain = server
            .http()
            .get(format!("{}/_ecrd/health", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 200, "{backend:?}");
        // The control plane over HTTPS, signed as the SDKs sign.
        let (status, body) = api_call_via(
            &https,
            &server.https_url(),
            "CreateRepository",
            r#"{"repositoryName":"over-tls"}"#,
        )
        .await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        assert_eq!(body["repository"]["repositoryName"], "over-tls");
    }
}

#[tokio::test]
async fn the_ca_signs_the_served_names_and_untrusted_clients_fail() {
    for &backend in BACKENDS {
        let server = tls_server(backend).await;
        let ca = server.tls_ca.clone().expect("generated CA");
        assert!(ca.is_file(), "{backend:?}: {}", ca.display());
        // Trusting nothing: the handshake must fail (a real certificate
        // check happens).
        let untrusted = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .build()
            .unwrap();
        let refused = untrusted
            .get(format!("{}/_ecrd/health", server.https_url()))
            .send()
            .await;
        assert!(
            refused.is_err(),
            "{backend:?}: an untrusted CA was accepted"
        );
        // 127.0.0.1 is in the certificate too.
        let by_ip = server
            .https()
            .get(format!("https://127.0.0.1:{}/_ecrd/health", server.port))
            .send()
            .await
            .unwrap();
        assert_eq!(by_ip.status(), 200, "{backend:?}");
    }
}

#[tokio::test]
async fn proxy_endpoint_is_https_and_download_urls_follow_the_connection() {
    for &backend in BACKENDS {
        let server = tls_server(backend).await;
        let ecr = server.ecr();
        ecr.create_repository()
            .repository_name("dl")
            .send()
            .await
            .unwrap();
        push_image(&ecr, "dl", "tls", "v1").await;
        let layer = "layer of tls".repeat(10);
        let digest = common::sha256_digest(layer.as_bytes());
        let (status, token, _) = api_call(&server.url, "GetAuthorizationToken", "{}").await;
        assert_eq!(status, 200);
        assert_eq!(
            token["authorizationData"][0]["proxyEndpoint"],
            format!("https://localhost:{}", server.port),
            "{backend:?}"
        );
        if server.state.config.blobs_url.is_some() {
            // A bucket's presigned URLs name the bucket's endpoint, whatever
            // the connection (`s3_blobs_are_served_by_presigned_urls`).
            continue;
        }
        let request = format!(r#"{{"repositoryName":"dl","layerDigest":"{digest}"}}"#);
        let (status, plain, _) = api_call(&server.url, "GetDownloadUrlForLayer", &request).await;
        assert_eq!(status, 200, "{backend:?}: {plain}");
        let plain_url = plain["downloadUrl"].as_str().unwrap().to_string();
        assert!(
            plain_url.starts_with(&format!("http://localhost:{}/", server.port)),
            "{backend:?}: {plain_url}"
        );
        let https = server.https();
        let (status, secure) = api_call_via(
            &https,
            &server.https_url(),
            "GetDownloadUrlForLayer",
            &request,
        )
        .await;
        assert_eq!(status, 200, "{backend:?}: {secure}");
        let secure_url = secure["downloadUrl"].as_str().unwrap().to_string();
        assert!(
            secure_url.starts_with(&format!("https://localhost:{}/", server.port)),
            "{backend:?}: {secure_url}"
        );
        // Each URL works on its own transport.
        let bytes = https.get(&secure_url).send().await.unwrap();
        assert_eq!(bytes.status(), 200);
        assert_eq!(bytes.bytes().await.unwrap().as_ref(), layer.as_bytes());
        let bytes = server.http().get(&plain_url).send().await.unwrap();
        assert_eq!(bytes.status(), 200);
    }
}

#[tokio::test]
async fn the_generated_ca_survives_a_restart_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let first = TestServer::start_with(Backend::Disk, |c| {
        c.tls = true;
        c.data_dir = Some(path.clone());
    })
    .await;
    let ca = first.tls_ca.clone().unwrap();
    assert_eq!(ca, path.join("tls").join("ca.pem"));
    let before = std::fs::read(&ca).unwrap();
    first.stop().await;
    let second = TestServer::start_with(Backend::Disk, |c| {
        c.tls = true;
        c.data_dir = Some(path.clone());
    })
    .await;
    assert_eq!(std::fs::read(&ca).unwrap(), before, "the CA was replaced");
    // The new leaf verifies against the CA a client already trusts.
    let status = second
        .https()
        .get(format!("{}/_ecrd/health", second.https_url()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_user_certificate_is_served() {
    // A certificate the user brings: here, the one a first server made.
    let source = tempfile::tempdir().unwrap();
    let maker = TestServer::start_with(Backend::Disk, |c| {
        c.tls = true;
        c.data_dir = Some(source.path().to_path_buf());
    })
    .await;
    let ca = maker.tls_ca.clone().unwrap();
    maker.stop().await;
    let tls = source.path().join("tls");
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| {
            c.tls_cert = Some(tls.join("cert.pem"));
            c.tls_key = Some(tls.join("key.pem"));
        })
        .await;
        assert!(
            server.tls_ca.is_none(),
            "no CA is generated for a user's own certificate"
        );
        let pem = std::fs::read(&ca).unwrap();
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        let status = client
            .get(format!("{}/_ecrd/health", server.https_url()))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{backend:?}");
    }
}

#[tokio::test]
async fn a_missing_certificate_file_stops_the_start() {
    let mut config = ecrd::ServeConfig::for_tests();
    config.tls_cert = Some("/nonexistent/cert.pem".into());
    config.tls_key = Some("/nonexistent/key.pem".into());
    let error = ecrd::Server::bind(config).await.err().expect("refused");
    let message = error.to_string();
    assert!(message.contains("/nonexistent/cert.pem"), "{message}");
}

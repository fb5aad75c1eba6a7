//! SigV4 verification, credentials and accounts, regions as namespaces, and
//! GetAuthorizationToken, through the AWS SDK for Rust and raw signed HTTP.

mod common;

use std::time::{Duration, SystemTime};

use base64::Engine;
use common::{err_code, signed_post, TestServer, BACKENDS};

#[tokio::test]
async fn unknown_key_and_wrong_secret_are_refused() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let err = server
            .ecr_as("nobody", "whatever", "us-east-1")
            .describe_repositories()
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "UnrecognizedClientException".into(),
                "The security token included in the request is invalid.".into()
            )
        );
        let err = server
            .ecr_as("test", "not-the-secret", "us-east-1")
            .describe_repositories()
            .send()
            .await
            .unwrap_err();
        let (code, message) = err_code(&err);
        assert_eq!(code, "InvalidSignatureException");
        assert!(
            message.starts_with(
                "The request signature we calculated does not match the signature you provided."
            ),
            "{message}"
        );
    }
}

#[tokio::test]
async fn missing_and_incomplete_signatures() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let http = server.http();
        let r = http
            .post(format!("{}/", server.url))
            .header(
                "x-amz-target",
                "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
            )
            .header("content-type", "application/x-amz-json-1.1")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["__type"], "MissingAuthenticationTokenException");
        assert_eq!(body["message"], "Missing Authentication Token");

        let r = http
            .post(format!("{}/", server.url))
            .header(
                "x-amz-target",
                "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
            )
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/ecr/aws4_request",
            )
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["__type"], "IncompleteSignatureException");
    }
}

#[tokio::test]
async fn clock_skew_and_scope() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let old = SystemTime::now() - Duration::from_secs(16 * 60);
        let r = signed_post(
            &server.url,
            Some("DescribeRepositories"),
            b"{}".to_vec(),
            "test",
            "test",
            "us-east-1",
            old,
        )
        .await;
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["__type"], "InvalidSignatureException");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Signature expired:"),
            "{body}"
        );

        let future = SystemTime::now() + Duration::from_secs(16 * 60);
        let r = signed_post(
            &server.url,
            Some("DescribeRepositories"),
            b"{}".to_vec(),
            "test",
            "test",
            "us-east-1",
            future,
        )
        .await;
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Signature not yet current:"),
            "{body}"
        );

        // Within 15 minutes is fine.
        let near = SystemTime::now() - Duration::from_secs(10 * 60);
        let r = signed_post(
            &server.url,
            Some("DescribeRepositories"),
            b"{}".to_vec(),
            "test",
            "test",
            "us-east-1",
            near,
        )
        .await;
        assert_eq!(r.status(), 200);

        // Moving ecrd's clock (to age images) does not break signatures:
        // their age is checked against the real time.
        server.state.ecr.clock.advance(time::Duration::days(20));
        server.ecr().describe_repositories().send().await.unwrap();
    }
}

#[tokio::test]
async fn accounts_and_regions_are_namespaces() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| {
            c.credentials = Some("AKIAOTHER:othersecret:111111111111".into());
        })
        .await;
        let default = server.ecr();
        let other = server.ecr_as("AKIAOTHER", "othersecret", "us-east-1");
        let west = server.ecr_as("test", "test", "eu-west-1");
        default
            .create_repository()
            .repository_name("shared-name")
            .send()
            .await
            .unwrap();
        let repo = other
            .create_repository()
            .repository_name("shared-name")
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        assert_eq!(repo.registry_id(), Some("111111111111"));
        assert_eq!(
            repo.repository_arn(),
            Some("arn:aws:ecr:us-east-1:111111111111:repository/shared-name")
        );
        assert!(west
            .describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .is_empty());
        west.create_repository()
            .repository_name("shared-name")
            .send()
            .await
            .unwrap();
        let listed = west.describe_repositories().send().await.unwrap();
        assert_eq!(
            listed.repositories()[0].repository_arn(),
            Some("arn:aws:ecr:eu-west-1:000000000000:repository/shared-name")
        );
        other
            .delete_repository()
            .repository_name("shared-name")
            .send()
            .await
            .unwrap();
        assert_eq!(
            default
                .describe_repositories()
                .send()
                .await
                .unwrap()
                .repositories()
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn credentials_file_and_default_account() {
    for &backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, "# ci keys\nAKIAFILE filesecret 222222222222\n").unwrap();
        let server = TestServer::start_with(backend, |c| {
            c.credentials_file = Some(path.clone());
            c.default_account = "123456789012".into();
        })
        .await;
        let repo = server
            .ecr_as("AKIAFILE", "filesecret", "us-east-1")
            .create_repository()
            .repository_name("from-file")
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        assert_eq!(repo.registry_id(), Some("222222222222"));
        let repo = server
            .ecr()
            .create_repository()
            .repository_name("default-acct")
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        assert_eq!(repo.registry_id(), Some("123456789012"));
    }
}

#[tokio::test]
async fn permissive_mode_takes_the_account_from_the_key() {
    for &backend in BACKENDS {
        let server =
            TestServer::start_with(backend, |c| c.auth = ecrd::config::AuthMode::Permissive).await;
        let repo = server
            .ecr_as("333333333333", "anything", "ap-south-1")
            .create_repository()
            .repository_name("loose")
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        assert_eq!(
            repo.repository_arn(),
            Some("arn:aws:ecr:ap-south-1:333333333333:repository/loose")
        );
        let repo = server
            .ecr_as("whoever", "anything", "us-east-1")
            .create_repository()
            .repository_name("loose")
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        assert_eq!(repo.registry_id(), Some("000000000000"));
    }
}

#[tokio::test]
async fn authorization_token_is_verifiable_and_expires_in_12_hours() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| {
            c.registry_host = Some("{account}.dkr.ecr.{region}.amazonaws.com".into());
        })
        .await;
        let out = server.ecr().get_authorization_token().send().await.unwrap();
        let data = &out.authorization_data()[0];
        assert_eq!(
            data.proxy_endpoint(),
            Some("https://000000000000.dkr.ecr.us-east-1.amazonaws.com")
        );
        let expires = data.expires_at().unwrap().secs();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((expires - now - 12 * 3600).abs() < 60);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data.authorization_token().unwrap())
            .unwrap();
        let decoded = String::from_utf8(decoded).unwrap();
        let password = decoded.strip_prefix("AWS:").expect("user is AWS");
        let claims = server
            .state
            .tokens
            .verify(password, server.state.ecr.clock.now())
            .expect("the server accepts its own password");
        assert_eq!(claims.account.as_str(), "000000000000");
        assert_eq!(claims.region.as_str(), "us-east-1");
        // Twelve hours later it no longer verifies.
        let later = server.state.ecr.clock.now() + time::Duration::hours(12);
        assert!(server.state.tokens.verify(password, later).is_err());

        let repo = server
            .ecr()
            .create_repository()
            .repository_name("uri-form")
            .send()
            .await
            .unwrap()
            .repository
            .unwrap();
        assert_eq!(
            repo.repository_uri(),
            Some("000000000000.dkr.ecr.us-east-1.amazonaws.com/uri-form")
        );
    }
}

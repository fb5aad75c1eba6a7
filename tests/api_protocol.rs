//! The awsJson1_1 protocol itself: framing, errors, limits, operator
//! endpoints. Raw HTTP, signed with aws-sigv4, so the bodies can be wrong in
//! ways no SDK would send.

mod common;

use common::{api_call, signed_post, TestServer, BACKENDS};
use serde_json::json;

#[tokio::test]
async fn answers_carry_request_id_and_json_type() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let (status, body, headers) = api_call(&server.url, "DescribeRepositories", "{}").await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({ "repositories": [] }));
        assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
        assert_eq!(headers["x-amzn-requestid"].len(), 36);

        let (status, body, headers) = api_call(
            &server.url,
            "DescribeRepositories",
            r#"{"repositoryNames":["nope"]}"#,
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["__type"], "RepositoryNotFoundException");
        assert!(headers.contains_key("x-amzn-requestid"));
    }
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_serialization_errors() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        for (target, bad) in [
            ("CreateRepository", "{"),
            ("CreateRepository", "[1,2]"),
            ("CreateRepository", "\"x\""),
            ("CreateRepository", "{\"repositoryName\": 5}"),
            ("DescribeRepositories", "{\"maxResults\": \"ten\"}"),
            ("DescribeRepositories", "{\"repositoryNames\": \"one\"}"),
            ("CreateRepository", "\u{0}"),
        ] {
            let (status, body, _) = api_call(&server.url, target, bad).await;
            assert_eq!(status, 400, "{bad}");
            assert_eq!(body["__type"], "SerializationException", "{bad}: {body}");
            assert!(body["message"].as_str().unwrap().len() > 10);
        }
        // An empty body is an empty input.
        let (status, body, _) = api_call(&server.url, "DescribeRepositories", "").await;
        assert_eq!((status, &body["repositories"]), (200, &json!([])));
        // A missing required member is a constraint violation.
        let (status, body, _) = api_call(&server.url, "CreateRepository", "{}").await;
        assert_eq!(status, 400);
        assert_eq!(body["__type"], "InvalidParameterException");
        assert_eq!(
            body["message"],
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must not be null'"
        );
        // Unknown members are ignored, as AWS does.
        let (status, _, _) = api_call(
            &server.url,
            "CreateRepository",
            r#"{"repositoryName":"ok-repo","extra":1}"#,
        )
        .await;
        assert_eq!(status, 200);
        // An enum value outside the model's set.
        let (status, body, _) = api_call(
            &server.url,
            "CreateRepository",
            r#"{"repositoryName":"enum-repo","imageTagMutability":"SOMETIMES"}"#,
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("must satisfy enum value set"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn unknown_and_unimplemented_operations() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let (status, body, _) = api_call(&server.url, "FlyToTheMoon", "{}").await;
        assert_eq!(status, 400);
        assert_eq!(body["__type"], "UnknownOperationException");
        let response = signed_post(
            &server.url,
            None,
            b"{}".to_vec(),
            "test",
            "test",
            "us-east-1",
            std::time::SystemTime::now(),
        )
        .await;
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["__type"], "UnknownOperationException");
    }
}

#[tokio::test]
async fn oversize_bodies_are_refused_clearly() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| c.max_api_body = 1024).await;
        let big = format!(r#"{{"repositoryName":"x{}"}}"#, "a".repeat(4096));
        let (status, body, _) = api_call(&server.url, "CreateRepository", &big).await;
        assert_eq!(status, 413);
        assert_eq!(body["__type"], "RequestEntityTooLargeException");
        assert!(body["message"].as_str().unwrap().contains("1024"));
    }
}

#[tokio::test]
async fn operator_endpoints() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let http = server.http();
        let health: serde_json::Value = http
            .get(format!("{}/_ecrd/health", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["backend"], backend.name());
        assert!(health["version"].is_string());
        assert!(health["uptimeSeconds"].is_number());
        let ls: serde_json::Value = http
            .get(format!("{}/_localstack/health", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ls["services"]["ecr"], "running");

        let ecr = server.ecr();
        ecr.create_repository()
            .repository_name("before-reset")
            .send()
            .await
            .unwrap();
        for path in ["/_ecrd/reset", "/moto-api/reset"] {
            let r = http
                .post(format!("{}{}", server.url, path))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let listed = ecr.describe_repositories().send().await.unwrap();
            assert!(listed.repositories().is_empty());
            ecr.create_repository()
                .repository_name("before-reset")
                .send()
                .await
                .unwrap();
        }

        let clock: serde_json::Value = http
            .post(format!("{}/_ecrd/clock", server.url))
            .body(r#"{"offsetSeconds": 3600}"#)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(clock["offsetSeconds"].as_f64().unwrap() >= 3599.0);
        let r = http
            .post(format!("{}/_ecrd/clock", server.url))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = http
            .post(format!("{}/_ecrd/clock", server.url))
            .body(r#"{"now": "2030-01-01T00:00:00Z"}"#)
            .send()
            .await
            .unwrap();
        let clock: serde_json::Value = r.json().await.unwrap();
        assert!(clock["now"]
            .as_str()
            .unwrap()
            .starts_with("2030-01-01T00:00:0"));
    }
}

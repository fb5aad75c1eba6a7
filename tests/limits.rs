//! Resource bounds on both planes: control-plane bodies read only after the
//! caller is known and within a global budget, upload sessions bounded and
//! expiring.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::{api_call, sigv4_headers, TestServer, BACKENDS};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories";

/// Sends `headers` and the first `sent` bytes of a body that claims
/// `content_length` bytes, then reads what the server answers within
/// `limit` without sending the rest. `None`: no answer in time.
async fn answer_before_body(
    server: &TestServer,
    headers: &[(String, String)],
    content_length: usize,
    sent: &[u8],
    limit: Duration,
) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{}", server.port))
        .await
        .unwrap();
    let mut head = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in headers {
        if k != "content-length" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!("content-length: {content_length}\r\n\r\n"));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let started = std::time::Instant::now();
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    if length.is_some_and(|l| body.len() >= l) {
                        break;
                    }
                }
            }
        }
    }
    Some(String::from_utf8_lossy(&got).into_owned())
}

fn json_headers() -> Vec<(String, String)> {
    vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("x-amz-target".to_string(), TARGET.to_string()),
    ]
}

/// A stranger's body is never waited for: no Authorization, an unknown
/// access key, or (with a signed `x-amz-content-sha256`) a wrong secret is
/// answered while the declared 60 MB body has not been sent.
#[tokio::test]
async fn strangers_are_refused_before_their_body_is_read() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let declared = 60_000_000;
        let limit = Duration::from_secs(3);

        let answer = answer_before_body(&server, &json_headers(), declared, b"{", limit)
            .await
            .expect("an unsigned request is answered before its body");
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(
            answer.contains("MissingAuthenticationTokenException"),
            "{answer}"
        );

        let body = b"{}";
        let now = SystemTime::now();
        let unknown = sigv4_headers(
            &server.url,
            "ecr",
            json_headers(),
            body,
            "AKIDNOBODYKNOWS",
            "x",
            "us-east-1",
            now,
            false,
        );
        let answer = answer_before_body(&server, &unknown, declared, b"{", limit)
            .await
            .expect("an unknown key is answered before its body");
        assert!(answer.contains("UnrecognizedClientException"), "{answer}");

        let wrong_secret = sigv4_headers(
            &server.url,
            "ecr",
            json_headers(),
            body,
            "test",
            "not-the-secret",
            "us-east-1",
            now,
            true,
        );
        let answer = answer_before_body(&server, &wrong_secret, declared, b"{", limit)
            .await
            .expect("a bad signature over a declared hash is answered before the body");
        assert!(answer.contains("InvalidSignatureException"), "{answer}");
        assert!(answer.contains("does not match the signature"), "{answer}");

        // The right key with a declared hash still works end to end, and a
        // body that differs from its signed hash is refused.
        let good = sigv4_headers(
            &server.url,
            "ecr",
            json_headers(),
            body,
            "test",
            "test",
            "us-east-1",
            now,
            true,
        );
        let answer = answer_before_body(&server, &good, body.len(), body, limit)
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let answer = answer_before_body(&server, &good, 2, b"[]", limit)
            .await
            .unwrap();
        assert!(
            answer.contains("The provided 'x-amz-content-sha256' header does not match"),
            "{answer}"
        );

        // Over --max-api-body by Content-Length alone: refused unread.
        let answer = answer_before_body(&server, &good, 65 * 1024 * 1024, b"{", limit)
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        server.stop().await;
    }
}

/// With `--api-body-budget` smaller than a body, that body is answered
/// ThrottlingException "Rate exceeded" (which SDKs retry) without being
/// read; smaller ones are served, and a held body's bytes come back.
#[tokio::test]
async fn body_budget_throttles_what_it_cannot_hold() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| c.api_body_budget = 4096).await;
        let (status, _, _) = api_call(&server.url, "DescribeRepositories", "{}").await;
        assert_eq!(status, 200);

        let big = format!(r#"{{"repositoryNames":["{}"]}}"#, "a".repeat(5000));
        let (status, body, _) = api_call(&server.url, "DescribeRepositories", &big).await;
        assert_eq!(status, 400);
        assert_eq!(body["__type"], "ThrottlingException");
        assert_eq!(body["message"], "Rate exceeded");

        // One client holding 3000 bytes of the budget (its body unfinished)
        // leaves too little for a second of 3000 bytes.
        let half = "a".repeat(3000);
        let signed = sigv4_headers(
            &server.url,
            "ecr",
            json_headers(),
            half.as_bytes(),
            "test",
            "test",
            "us-east-1",
            SystemTime::now(),
            false,
        );
        let mut holder = tokio::net::TcpStream::connect(format!("127.0.0.1:{}", server.port))
            .await
            .unwrap();
        let mut head = String::from("POST / HTTP/1.1\r\n");
        for (k, v) in &signed {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("content-length: 3000\r\n\r\n");
        holder.write_all(head.as_bytes()).await.unwrap();
        holder.write_all(b"aaa").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = format!(r#"{{"repositoryNames":["{}"]}}"#, "b".repeat(2970));
        let (status, body, _) = api_call(&server.url, "DescribeRepositories", &second).await;
        assert_eq!(
            (status, body["__type"].as_str()),
            (400, Some("ThrottlingException"))
        );
        drop(holder);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, body, _) = api_call(&server.url, "DescribeRepositories", &second).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["__type"], "InvalidParameterException",
            "the budget is back once the first request ended: {body}"
        );
        assert_eq!(server.state.api_bodies.available(), 4096);
        server.stop().await;
    }
}

/// Opens a `/v2/` upload session; answers the status and its Location.
async fn open_v2_upload(server: &TestServer, auth: &str, repo: &str) -> (u16, String) {
    let r = server
        .http()
        .post(format!("{}/v2/{repo}/blobs/uploads/", server.url))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    (status, if location.is_empty() { text } else { location })
}

/// Sessions are bounded per repository and per registry on both planes,
/// with LimitExceededException (429 TOOMANYREQUESTS on /v2/); cancelling
/// one makes room, and once sessions sit idle past `--upload-idle-timeout`
/// on ecrd's clock they are ended, their bytes released, to make room.
#[tokio::test]
async fn upload_sessions_are_bounded_and_idle_ones_expire() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| {
            c.max_uploads_per_repository = 2;
            c.max_uploads_per_registry = 3;
            c.upload_idle_timeout = 600;
        })
        .await;
        let ecr = server.ecr();
        for name in ["aa", "bb"] {
            ecr.create_repository()
                .repository_name(name)
                .send()
                .await
                .unwrap();
        }
        let auth = common::registry_authorization(&ecr).await;

        let first = ecr
            .initiate_layer_upload()
            .repository_name("aa")
            .send()
            .await
            .unwrap();
        let first_id = first.upload_id().unwrap().to_string();
        ecr.upload_layer_part()
            .repository_name("aa")
            .upload_id(&first_id)
            .part_first_byte(0)
            .part_last_byte(9)
            .layer_part_blob(aws_sdk_ecr::primitives::Blob::new(vec![7u8; 10]))
            .send()
            .await
            .unwrap();
        let (status, second) = open_v2_upload(&server, &auth, "aa").await;
        assert_eq!(status, 202, "{second}");

        // The repository is full, on both planes.
        let err = ecr
            .initiate_layer_upload()
            .repository_name("aa")
            .send()
            .await
            .unwrap_err();
        let (code, message) = common::err_code(&err);
        assert_eq!(code, "LimitExceededException");
        assert!(message.contains("'aa'"), "{message}");
        let (status, body) = open_v2_upload(&server, &auth, "aa").await;
        assert_eq!(status, 429, "{body}");
        assert!(body.contains("TOOMANYREQUESTS"), "{body}");

        // Another repository still has room, up to the registry's bound.
        let (status, _) = open_v2_upload(&server, &auth, "bb").await;
        assert_eq!(status, 202);
        let (status, body) = open_v2_upload(&server, &auth, "bb").await;
        assert_eq!(status, 429, "{body}");
        assert!(body.contains("registry"), "{body}");

        // Cancelling one makes room.
        let r = server
            .http()
            .delete(format!("{}{second}", server.url))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (status, third) = open_v2_upload(&server, &auth, "aa").await;
        assert_eq!(status, 202, "{third}");

        // Idle past the timeout on ecrd's clock: ended to make room, and
        // the first session's bytes go with it.
        server
            .state
            .ecr
            .clock
            .try_advance(time::Duration::seconds(601))
            .unwrap();
        let (status, fresh) = open_v2_upload(&server, &auth, "aa").await;
        assert_eq!(status, 202, "{fresh}");
        let err = ecr
            .upload_layer_part()
            .repository_name("aa")
            .upload_id(&first_id)
            .part_first_byte(10)
            .part_last_byte(19)
            .layer_part_blob(aws_sdk_ecr::primitives::Blob::new(vec![7u8; 10]))
            .send()
            .await
            .unwrap_err();
        assert_eq!(common::err_code(&err).0, "UploadNotFoundException");
        let open = server.state.ecr.blobs.list_uploads().await.unwrap();
        assert!(
            open.iter().all(|u| u.id != first_id),
            "the idle upload's bytes are released"
        );
        server.stop().await;
    }
}

/// The head of a raw `/v2/` upload chunk of `length` bytes.
fn upload_chunk_head(path: &str, auth: &str, length: usize) -> String {
    format!(
        "PATCH {path} HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {length}\r\n\r\n"
    )
}

/// Sends a raw request head and `first` body bytes, then one more byte
/// every `drip` until the server answers or closes; answers what it said
/// (empty when it just closed) and how long that took, or `None` if it
/// was still waiting at `limit`.
async fn drip_body(
    server: &TestServer,
    head: String,
    first: &[u8],
    drip: Duration,
    limit: Duration,
) -> Option<(String, Duration)> {
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{}", server.port))
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match tokio::time::timeout(drip, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => {
                if stream.write_all(b"x").await.is_err() {
                    break;
                }
            }
        }
    }
    if started.elapsed() >= limit {
        return None;
    }
    Some((
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    ))
}

/// A body that stalls, or drips far below `--min-body-rate`, is cut off
/// soon after `--body-timeout` on both planes, with the control plane's
/// SerializationException; a body that keeps the pace is served in full
/// however long it takes, and the server goes on serving.
#[tokio::test]
async fn slow_bodies_are_cut_off_on_both_planes() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| {
            c.body_timeout = 1;
            c.min_body_rate = 1000;
            c.header_timeout = 30;
            c.idle_timeout = 0;
        })
        .await;
        let ecr = server.ecr();
        ecr.create_repository()
            .repository_name("aa")
            .send()
            .await
            .unwrap();

        // Control plane: a signed request whose body stops after one byte.
        let body = br#"{"maxResults": 5}"#;
        let signed = sigv4_headers(
            &server.url,
            "ecr",
            json_headers(),
            body,
            "test",
            "test",
            "us-east-1",
            SystemTime::now(),
            true,
        );
        let answer = answer_before_body(
            &server,
            &signed,
            body.len(),
            &body[..1],
            Duration::from_secs(6),
        )
        .await
        .expect("a stalled control-plane body is answered");
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("SerializationException"), "{answer}");
        assert!(answer.contains("too slowly"), "{answer}");

        // Registry plane: an upload chunk dripping 5 bytes a second.
        let auth = common::registry_authorization(&ecr).await;
        let (status, location) = open_v2_upload(&server, &auth, "aa").await;
        assert_eq!(status, 202, "{location}");
        let path = location.strip_prefix(&server.url).unwrap_or(&location);
        let head = upload_chunk_head(path, &auth, 100000);
        let (said, took) = drip_body(
            &server,
            head,
            &[7u8; 10],
            Duration::from_millis(200),
            Duration::from_secs(8),
        )
        .await
        .expect("a dripping upload is cut off");
        assert!(took >= Duration::from_millis(800), "{took:?} {said}");
        assert!(
            said.is_empty() || !said.starts_with("HTTP/1.1 2"),
            "a cut-off chunk is not acknowledged: {said}"
        );

        // A body that keeps the pace (2,000 bytes a second for 2 s, past the
        // grace) is taken whole.
        let (status, location) = open_v2_upload(&server, &auth, "aa").await;
        assert_eq!(status, 202, "{location}");
        let path = location.strip_prefix(&server.url).unwrap_or(&location);
        let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{}", server.port))
            .await
            .unwrap();
        let head = upload_chunk_head(path, &auth, 4000);
        stream.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..20 {
            stream.write_all(&[1u8; 200]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 202"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("range: 0-3999"),
            "{text}"
        );

        // Everyone else was served throughout.
        let listed = ecr.describe_repositories().send().await.unwrap();
        assert_eq!(listed.repositories().len(), 1);
        server.stop().await;
    }
}

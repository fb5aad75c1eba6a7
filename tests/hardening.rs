//! Hardening against hostile and careless clients, on every backend: the
//! clock endpoint's range, background tasks that outlive a bad run,
//! operator endpoints a web page cannot reach; and what an operator sees of
//! a running server: the metrics endpoint's counts and the request id on
//! every answer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TestServer, BACKENDS};
use serde_json::{json, Value};

async fn set_clock(server: &TestServer, body: Value) -> (u16, Value) {
    let r = server
        .http()
        .post(format!("{}/_ecrd/clock", server.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn offset(server: &TestServer) -> f64 {
    let clock: Value = server
        .http()
        .get(format!("{}/_ecrd/clock", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    clock["offsetSeconds"].as_f64().unwrap()
}

/// `/_ecrd/clock` refuses times outside 1970-01-01..2200-01-01 and offsets
/// that are not whole, finite and in range, with a 400 naming the limit;
/// the clock does not move and every plane keeps answering.
#[tokio::test]
async fn clock_refuses_times_it_cannot_represent() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        ecr.create_repository()
            .repository_name("still-here")
            .send()
            .await
            .unwrap();
        for body in [
            json!({"now": "9999-12-31T23:59:59Z"}),
            json!({"now": "2200-01-01T00:00:00Z"}),
            json!({"now": "1969-12-31T23:59:59Z"}),
            json!({"offsetSeconds": 1e12}),
            json!({"offsetSeconds": -1e12}),
            json!({"offsetSeconds": 1e300}),
            json!({"offsetSeconds": 9_223_372_036_854_775_807i64}),
        ] {
            let (status, answer) = set_clock(&server, body.clone()).await;
            assert_eq!(status, 400, "{body}: {answer}");
            let message = answer["error"].as_str().unwrap();
            assert!(
                message.contains("1970-01-01T00:00:00Z")
                    && message.contains("2200-01-01T00:00:00Z"),
                "{body}: {message}"
            );
        }
        let (status, answer) = set_clock(&server, json!({"offsetSeconds": 1.5})).await;
        assert_eq!(status, 400);
        assert!(
            answer["error"].as_str().unwrap().contains("whole number"),
            "{answer}"
        );
        // JSON has no NaN or infinity; a number too large for f64 is not JSON
        // serde accepts either.
        let r = server
            .http()
            .post(format!("{}/_ecrd/clock", server.url))
            .body(r#"{"offsetSeconds": 1e999}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(offset(&server).await, 0.0);

        // Everything still works, including the registry login (whose
        // token expiry is 12 h after "now").
        let listed = ecr.describe_repositories().send().await.unwrap();
        assert_eq!(listed.repositories().len(), 1);
        ecr.get_authorization_token().send().await.unwrap();

        // The edges of the range are accepted.
        let (status, answer) = set_clock(&server, json!({"now": "2199-12-31T00:00:00Z"})).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["now"].as_str().unwrap().starts_with("2199-12-31"));
        ecr.get_authorization_token().send().await.unwrap();
        ecr.create_repository()
            .repository_name("in-2199")
            .send()
            .await
            .unwrap();
        let (status, _) = set_clock(&server, json!({"offsetSeconds": 2 * 86_400})).await;
        assert_eq!(status, 400, "past 2200 from 2199-12-31");
        let (status, _) = set_clock(&server, json!({"now": "1970-01-01T00:00:00Z"})).await;
        assert_eq!(status, 200);
        let listed = ecr.describe_repositories().send().await.unwrap();
        assert_eq!(listed.repositories().len(), 2);
    }
}

/// The background garbage collection keeps running after a refused clock
/// move (which used to make every run panic): with a 1 s interval, a
/// deleted image's blobs are freed without asking once the grace is past.
#[tokio::test]
async fn background_gc_keeps_running() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| {
            c.gc_interval = 1;
            c.gc_grace = 60;
        })
        .await;
        let (status, _) = set_clock(&server, json!({"now": "9999-12-31T23:59:59Z"})).await;
        assert_eq!(status, 400);
        let ecr = server.ecr();
        ecr.create_repository()
            .repository_name("collected")
            .send()
            .await
            .unwrap();
        let (_, digest) = common::push_image(&ecr, "collected", "gc", "v1").await;
        let before = server.state.ecr.blobs.list().await.unwrap().len();
        assert!(before >= 2, "{before} blobs");
        ecr.batch_delete_image()
            .repository_name("collected")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(&digest)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        server.state.ecr.clock.advance(time::Duration::seconds(120));
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let left = server.state.ecr.blobs.list().await.unwrap().len();
            if left == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{left} blobs left 15 s after the delete"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A request as a web page could send it cross-site: no preflight for a
/// "simple" content type, and always an `Origin`.
async fn post(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> (u16, String) {
    let mut r = server.http().post(format!("{}{path}", server.url));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.body(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

const STATE_CHANGING: &[&str] = &[
    "/_ecrd/reset",
    "/moto-api/reset",
    "/_ecrd/clock",
    "/_ecrd/gc",
    "/_ecrd/lifecycle/evaluate",
];

/// State-changing operator endpoints refuse a form or text content type
/// (415) and any `Origin` (403), so a page in the developer's browser
/// cannot wipe state; no CORS header is ever sent. JSON and bodiless
/// requests (curl -X POST, the SDK-less harnesses) still work.
#[tokio::test]
async fn operator_endpoints_refuse_what_a_web_page_can_send() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        ecr.create_repository()
            .repository_name("survivor")
            .send()
            .await
            .unwrap();
        for path in STATE_CHANGING {
            for content_type in [
                "text/plain",
                "text/plain;charset=UTF-8",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=----x",
            ] {
                let (status, body) = post(
                    &server,
                    path,
                    &[("content-type", content_type)],
                    r#"{"offsetSeconds": 86400}"#,
                )
                .await;
                assert_eq!(status, 415, "{path} {content_type}: {body}");
                let body: Value = serde_json::from_str(&body).unwrap();
                assert!(body["message"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"));
            }
            for origin in ["http://evil.example", "null"] {
                for headers in [
                    vec![("origin", origin)],
                    vec![("origin", origin), ("content-type", "application/json")],
                ] {
                    let (status, body) =
                        post(&server, path, &headers, r#"{"offsetSeconds": 86400}"#).await;
                    assert_eq!(status, 403, "{path} {headers:?}: {body}");
                }
            }
            // A preflight gets no CORS permission.
            let r = server
                .http()
                .request(reqwest::Method::OPTIONS, format!("{}{path}", server.url))
                .header("origin", "http://evil.example")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .send()
                .await
                .unwrap();
            assert!(!r.status().is_success(), "{path}: {}", r.status());
            assert!(r.headers().get("access-control-allow-origin").is_none());
        }
        assert_eq!(offset(&server).await, 0.0);
        let listed = ecr.describe_repositories().send().await.unwrap();
        assert_eq!(listed.repositories().len(), 1, "nothing was reset");

        // What harnesses send keeps working.
        let (status, body) = post(
            &server,
            "/_ecrd/clock",
            &[("content-type", "application/json; charset=utf-8")],
            r#"{"offsetSeconds": 60}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = post(&server, "/_ecrd/gc", &[], "").await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = post(&server, "/_ecrd/reset", &[], "").await;
        assert_eq!(status, 200, "{body}");
        let listed = ecr.describe_repositories().send().await.unwrap();
        assert!(listed.repositories().is_empty());
        // Health is not state-changing and stays open to anything.
        let r = server
            .http()
            .get(format!("{}/_ecrd/health", server.url))
            .header("origin", "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

/// DNS rebinding: a page on `evil.example` whose name now resolves to
/// 127.0.0.1 is same-origin with ecrd, so it can send JSON without an
/// `Origin` check helping; but it still sends `Host: evil.example`. The
/// operator endpoints and the console answer such a request 403 and change
/// nothing; `localhost:PORT`, an IP, an ECR-form name and a name given to
/// `--allowed-host` are served. Health and both planes ignore `Host`.
#[tokio::test]
async fn operator_endpoints_refuse_a_rebound_host() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| {
            c.allowed_hosts = vec!["ecrd".into(), "Build-Box.lan".into()];
        })
        .await;
        let ecr = server.ecr();
        ecr.create_repository()
            .repository_name("survivor")
            .send()
            .await
            .unwrap();
        let send = |method: reqwest::Method, path: &str, host: &str| {
            server
                .http()
                .request(method, format!("{}{path}", server.url))
                .header("host", host)
                .header("content-type", "application/json")
                .body("{}")
                .send()
        };
        for host in ["evil.example", "evil.example:80", "localhost.evil.example"] {
            for path in STATE_CHANGING {
                let r = send(reqwest::Method::POST, path, host).await.unwrap();
                assert_eq!(r.status(), 403, "{host} {path}");
                let body: Value = r.json().await.unwrap();
                let message = body["message"].as_str().unwrap();
                assert!(
                    message.contains("--allowed-host") && message.contains(host),
                    "{message}"
                );
            }
            for path in ["/_ecrd/clock", "/_ecrd/metrics", "/_ecrd/console/"] {
                let r = send(reqwest::Method::GET, path, host).await.unwrap();
                assert_eq!(r.status(), 403, "{host} GET {path}");
            }
            let r = send(reqwest::Method::GET, "/_ecrd/health", host)
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "health stays open");
        }
        let listed = ecr.describe_repositories().send().await.unwrap();
        assert_eq!(listed.repositories().len(), 1, "nothing was reset");
        assert_eq!(offset(&server).await, 0.0);

        for host in [
            format!("127.0.0.1:{}", server.port),
            format!("[::1]:{}", server.port),
            "ecrd.localhost".to_string(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com".to_string(),
            format!("ecrd:{}", server.port),
            "build-box.lan".to_string(),
        ] {
            let r = send(reqwest::Method::GET, "/_ecrd/clock", &host)
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{host}");
            let r = send(reqwest::Method::POST, "/_ecrd/gc", &host)
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{host}");
        }
        let r = send(
            reqwest::Method::POST,
            "/_ecrd/reset",
            &format!("localhost:{}", server.port),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let listed = ecr.describe_repositories().send().await.unwrap();
        assert!(listed.repositories().is_empty(), "localhost may reset");
    }
}

/// With `--operator-token`, every operator endpoint but health needs
/// `Authorization: Bearer <token>`.
#[tokio::test]
async fn operator_token_is_required_when_set() {
    for &backend in BACKENDS {
        let server = TestServer::start_with(backend, |c| {
            c.operator_token = Some("op-s3cret".into());
        })
        .await;
        let http = server.http();
        for path in ["/_ecrd/health", "/_localstack/health"] {
            let r = http
                .get(format!("{}{path}", server.url))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
        }
        for path in STATE_CHANGING {
            for auth in [None, Some("Bearer wrong"), Some("Basic b3AtczNjcmV0")] {
                let mut r = http.post(format!("{}{path}", server.url));
                if let Some(auth) = auth {
                    r = r.header("authorization", auth);
                }
                let r = r.send().await.unwrap();
                assert_eq!(r.status(), 401, "{path} {auth:?}");
                assert!(r.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer"));
            }
        }
        let r = http
            .get(format!("{}/_ecrd/clock", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "reading the clock needs the token too");
        for path in STATE_CHANGING {
            let body = match *path {
                "/_ecrd/clock" => json!({"offsetSeconds": 0}),
                _ => json!({}),
            };
            let r = http
                .post(format!("{}{path}", server.url))
                .header("authorization", "Bearer op-s3cret")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            assert!(
                status.is_success(),
                "{path}: {status} {}",
                r.text().await.unwrap()
            );
        }
        // The token does not open the door to web pages.
        let (status, _) = post(
            &server,
            "/_ecrd/reset",
            &[
                ("authorization", "Bearer op-s3cret"),
                ("content-type", "text/plain"),
            ],
            "",
        )
        .await;
        assert_eq!(status, 415);
    }
}

/// Reads from a raw connection until the server closes it (EOF or reset),
/// giving up after `limit`; answers the bytes read and how long it took, or
/// `None` when the connection was still open at `limit`.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> Option<(Vec<u8>, Duration)> {
    use tokio::io::AsyncReadExt as _;
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((got, started.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A connection that sends nothing, and one that drips a request header a
/// byte at a time, are both closed after `--header-timeout`; a normal
/// request on a fresh connection is answered meanwhile.
#[tokio::test]
async fn slow_headers_are_cut_off_and_others_still_served() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::start_with(common::Backend::Memory, |c| {
        c.header_timeout = 1;
        c.idle_timeout = 0;
    })
    .await;
    let addr = format!("127.0.0.1:{}", server.port);
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let drip_addr = addr.clone();
    let drip = tokio::spawn(async move {
        let mut stream = tokio::net::TcpStream::connect(&drip_addr).await.unwrap();
        let started = std::time::Instant::now();
        for byte in b"GET /_ecrd/health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa" {
            if stream.write_all(&[*byte]).await.is_err() {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            // The server closing shows as EOF on a read that does not block.
            let mut probe = [0u8; 64];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut probe)).await
            {
                return Some(started.elapsed());
            }
        }
        None
    });
    // Served while the slow ones are held open.
    let health = server
        .http()
        .get(format!("{}/_ecrd/health", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (_, took) = read_until_closed(&mut silent, Duration::from_secs(5))
        .await
        .expect("a silent connection is closed");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let took = drip
        .await
        .unwrap()
        .expect("a dripping connection is closed before its header is done");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "{took:?}"
    );
    server.stop().await;
}

/// A kept-alive connection that sends no new request is closed after
/// `--idle-timeout`, having been answered first.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::start_with(common::Backend::Memory, |c| {
        c.header_timeout = 30;
        c.idle_timeout = 1;
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{}", server.port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /_ecrd/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (got, took) = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("an idle connection is closed well before the header timeout");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"status\":\"ok\""), "{text}");
    assert!(took >= Duration::from_millis(800), "{took:?}");
    server.stop().await;
}

/// With `--max-connections 2`, a third connection is not served while two
/// are open, and is served as soon as one closes.
#[tokio::test]
async fn connections_over_the_cap_wait_for_a_slot() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::start_with(common::Backend::Memory, |c| {
        c.max_connections = 2;
        c.header_timeout = 30;
        c.idle_timeout = 0;
    })
    .await;
    let addr = format!("127.0.0.1:{}", server.port);
    let first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Let the server accept both before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    third
        .write_all(b"GET /_ecrd/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut third, Duration::from_secs(1))
            .await
            .is_none(),
        "the third connection was served while two were open"
    );
    drop(first);
    let (got, _) = read_until_closed(&mut third, Duration::from_secs(5))
        .await
        .expect("served once a slot is free");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(second);
    server.stop().await;
}

/// The value of the series `name{labels...}` in a Prometheus text
/// exposition (labels given must all match; others may be present), or 0
/// when no such series is there yet.
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (family, label_text) = match key.split_once('{') {
            Some((f, rest)) => (f, rest.trim_end_matches('}')),
            None => (key, ""),
        };
        if family != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| label_text.split(',').any(|kv| kv == format!("{k}=\"{v}\"")))
        {
            assert!(found.is_none(), "{name}{labels:?} matches two series");
            found = Some(value.parse::<f64>().unwrap());
        }
    }
    found.unwrap_or(0.0)
}

async fn scrape(server: &TestServer) -> String {
    let r = server
        .http()
        .get(format!("{}/_ecrd/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.unwrap()
}

/// `/_ecrd/metrics` counts what the planes did, by the right amounts:
/// control-plane calls by operation and status, registry requests by route,
/// the bytes a registry client pushed and pulled, what is stored and open,
/// and background runs; no label ever carries a repository name or digest.
#[tokio::test]
async fn metrics_count_what_the_planes_did() {
    const API: &str = "api";
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let repo = "metrics/app";
        ecr.create_repository()
            .repository_name(repo)
            .send()
            .await
            .unwrap();
        for _ in 0..3 {
            ecr.describe_repositories().send().await.unwrap();
        }
        let missing = ecr
            .describe_repositories()
            .repository_names("metrics/missing")
            .send()
            .await
            .unwrap_err();
        assert_eq!(common::err_code(&missing).0, "RepositoryNotFoundException");

        // A registry push and pull with the login password: one blob
        // monolithically, a config, a manifest; then the manifest and the
        // blob back (the blob through its redirect to the download URL).
        let auth = common::registry_authorization(&ecr).await;
        let http = server.http();
        let layer = b"a layer of exactly thirty bytes".to_vec();
        let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
        let mut pushed = 0u64;
        let mut digests = Vec::new();
        for blob in [&layer, &config] {
            let digest = common::sha256_digest(blob);
            let r = http
                .post(format!(
                    "{}/v2/{repo}/blobs/uploads/?digest={digest}",
                    server.url
                ))
                .header("authorization", &auth)
                .body(blob.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            pushed += blob.len() as u64;
            digests.push(digest);
        }
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{}"}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":{},"digest":"{}"}}]}}"#,
            config.len(),
            digests[1],
            layer.len(),
            digests[0]
        );
        let r = http
            .put(format!("{}/v2/{repo}/manifests/v1", server.url))
            .header("authorization", &auth)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let got = http
            .get(format!("{}/v2/{repo}/manifests/v1", server.url))
            .header("authorization", &auth)
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(got.bytes().await.unwrap(), manifest.as_bytes());
        let got = http
            .get(format!("{}/v2/{repo}/blobs/{}", server.url, digests[0]))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(got.bytes().await.unwrap(), layer);
        // An upload left open.
        let r = http
            .post(format!("{}/v2/{repo}/blobs/uploads/", server.url))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let r = http
            .post(format!("{}/_ecrd/gc", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // A path a client made up is counted, but not as a label.
        let r = http
            .get(format!("{}/_ecrd/made-up/{}", server.url, digests[0]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);

        let text = scrape(&server).await;
        let requests = |plane: &str, operation: &str, status: &str| {
            series(
                &text,
                "ecrd_requests_total",
                &[
                    ("plane", plane),
                    ("operation", operation),
                    ("status", status),
                ],
            )
        };
        assert_eq!(requests(API, "CreateRepository", "200"), 1.0, "{text}");
        assert_eq!(requests(API, "DescribeRepositories", "200"), 3.0);
        assert_eq!(requests(API, "DescribeRepositories", "400"), 1.0);
        assert_eq!(requests(API, "GetAuthorizationToken", "200"), 1.0);
        assert_eq!(requests("registry", "upload_start", "201"), 2.0);
        assert_eq!(requests("registry", "upload_start", "202"), 1.0);
        assert_eq!(requests("registry", "manifest_put", "201"), 1.0);
        assert_eq!(requests("registry", "manifest_get", "200"), 1.0);
        assert_eq!(requests("registry", "blob_get", "307"), 1.0);
        // The redirect leads to ecrd's own layer URL, or to a bucket's.
        let downloads = if server.state.config.blobs_url.is_some() {
            0.0
        } else {
            1.0
        };
        assert_eq!(requests("registry", "blob_download", "200"), downloads);
        assert_eq!(requests("operator", "/_ecrd/gc", "200"), 1.0);
        assert_eq!(requests("other", "unmatched", "404"), 1.0);
        // Every request has its latency observed under the same labels.
        assert_eq!(
            series(
                &text,
                "ecrd_request_duration_seconds_count",
                &[
                    ("plane", API),
                    ("operation", "DescribeRepositories"),
                    ("status", "200")
                ],
            ),
            3.0
        );
        assert_eq!(
            series(
                &text,
                "ecrd_request_duration_seconds_bucket",
                &[
                    ("plane", API),
                    ("operation", "DescribeRepositories"),
                    ("status", "200"),
                    ("le", "+Inf")
                ],
            ),
            3.0
        );
        assert_eq!(
            series(
                &text,
                "ecrd_registry_pushed_bytes_total",
                &[("kind", "blob")]
            ),
            pushed as f64
        );
        assert_eq!(
            series(
                &text,
                "ecrd_registry_pushed_bytes_total",
                &[("kind", "manifest")]
            ),
            manifest.len() as f64
        );
        assert_eq!(
            series(
                &text,
                "ecrd_registry_pulled_bytes_total",
                &[("kind", "manifest")]
            ),
            manifest.len() as f64
        );
        assert_eq!(
            series(
                &text,
                "ecrd_registry_pulled_bytes_total",
                &[("kind", "blob")]
            ),
            // A bucket serves the bytes itself.
            layer.len() as f64 * downloads
        );
        assert_eq!(series(&text, "ecrd_repositories", &[]), 1.0);
        assert_eq!(series(&text, "ecrd_images", &[]), 1.0);
        assert_eq!(series(&text, "ecrd_blobs", &[]), 2.0);
        assert_eq!(series(&text, "ecrd_upload_sessions", &[]), 1.0);
        assert_eq!(
            series(
                &text,
                "ecrd_background_runs_total",
                &[("task", "garbage_collection")]
            ),
            1.0
        );
        assert_eq!(
            series(
                &text,
                "ecrd_background_failures_total",
                &[("task", "garbage_collection")]
            ),
            0.0
        );
        // Three uploads opened, two of them finished into layers: five
        // steps waited (however briefly) for the collection's lock.
        assert_eq!(
            series(&text, "ecrd_gc_lock_wait_seconds_count", &[]),
            5.0,
            "{text}"
        );
        assert_eq!(
            series(&text, "ecrd_gc_lock_wait_seconds_bucket", &[("le", "+Inf")]),
            5.0
        );
        assert!(!text.contains(repo), "a repository name is a label: {text}");
        assert!(!text.contains("sha256:"), "a digest is a label: {text}");
        assert!(!text.contains("made-up"), "a made-up path is a label");

        // The scrape itself was counted before the next one.
        let text = scrape(&server).await;
        assert_eq!(
            series(
                &text,
                "ecrd_requests_total",
                &[("plane", "operator"), ("operation", "/_ecrd/metrics")]
            ),
            1.0
        );
        server.stop().await;
    }
}

/// Every answer carries a request id in `x-amzn-RequestId`, errors of
/// every plane included (the control plane's JSON errors, the registry's
/// OCI errors, the operator endpoints' refusals), each its own; the SDK
/// reads it into its error.
#[tokio::test]
async fn every_answer_carries_its_request_id() {
    use aws_sdk_ecr::operation::RequestId as _;
    let server = TestServer::start_with(common::Backend::Memory, |c| {
        c.operator_token = Some("s3cret".into());
    })
    .await;
    let missing = server
        .ecr()
        .describe_repositories()
        .repository_names("nope")
        .send()
        .await
        .unwrap_err();
    let sdk_id = missing.request_id().unwrap().to_string();
    assert_eq!(sdk_id.len(), 36, "{sdk_id}");
    let http = server.http();
    let mut ids = vec![sdk_id];
    for (method, path, status) in [
        (reqwest::Method::POST, "/", 400),   // unsigned API call
        (reqwest::Method::GET, "/v2/", 401), // registry without login
        (reqwest::Method::GET, "/v2/a/manifests/x", 401), // registry OCI error
        (reqwest::Method::POST, "/_ecrd/reset", 401), // operator without token
        (reqwest::Method::GET, "/_ecrd/metrics", 401), // metrics need the token too
        (reqwest::Method::GET, "/_ecrd/health", 200), // health stays open
        (reqwest::Method::GET, "/nowhere", 404), // no route
    ] {
        let mut r = http.request(method.clone(), format!("{}{path}", server.url));
        if path == "/" {
            r = r.header(
                "x-amz-target",
                "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
            );
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        let id = r.headers()["x-amzn-requestid"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(uuid_like(&id), "{method} {path}: {id}");
        ids.push(id);
    }
    let r = http
        .get(format!("{}/_ecrd/metrics", server.url))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "ids repeat: {ids:?}");
    server.stop().await;
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

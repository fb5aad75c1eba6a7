//! Fault injection against the real binary: rounds of "start ecrd on a data
//! directory, push from several clients at once, SIGKILL it at a random
//! moment, start it again on the same directory". After every restart,
//! without any repair step:
//! - every acknowledged (201) manifest pulls back byte for byte by digest,
//!   and every acknowledged blob (alone or in an image) byte for byte with
//!   its digest;
//! - every tag names a manifest pushed under it: for a tag one client owns,
//!   the last acknowledged one or one sent after it (a push cut by the kill
//!   may or may not have committed); for a tag all clients share, any of
//!   theirs;
//! - an upload cut by the kill is either resumable from what it holds (a
//!   prefix of what was sent, finishing into the right blob) or unknown.
//!
//! Background garbage collection runs every second throughout. The seed is
//! printed, and `ECRD_CRASH_SEED` / `ECRD_CRASH_ROUNDS` replay or lengthen a run.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecrd::digest::Digest;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const REPO: &str = "crash/test";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const PUSHERS: usize = 4;

fn sha256(data: &[u8]) -> String {
    Digest::sha256_of(data).to_string()
}

/// A running ecrd process, killed when dropped.
struct Ecrd {
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Ecrd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ecrd {
    fn start(dir: &Path) -> Ecrd {
        Ecrd::launch(
            &["--data-dir".into(), dir.into()],
            &dir.display().to_string(),
        )
    }

    /// A replica with its metadata in `database` and its blobs in `bucket`
    /// of the S3 server at `endpoint`.
    fn start_replica(database: &str, endpoint: &str, bucket: &str) -> Ecrd {
        Ecrd::launch(
            &[
                "--metadata".into(),
                database.into(),
                "--blobs".into(),
                format!("s3://{bucket}/fleet").into(),
                "--s3-endpoint".into(),
                endpoint.into(),
            ],
            database,
        )
    }

    fn launch(storage: &[std::ffi::OsString], what: &str) -> Ecrd {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecrd"))
            .args(["serve", "--port", "0", "--log-format", "json"])
            .args(storage)
            .args(["--gc-interval", "1"])
            .env("ECRD_LOG", "info")
            // The S3 test server takes any key.
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ecrd starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut pipe = child.stderr.take().unwrap();
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        // The log line naming the bound address; then keep draining, so
        // the process never blocks on a full pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.is_none() {
                    continue;
                }
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if event["fields"]["message"] == "ecrd listening" {
                    if let (Some(tx), Some(addr)) = (tx.take(), event["fields"]["addr"].as_str()) {
                        let _ = tx.send(addr.to_string());
                    }
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ecrd did not start on {what}: {}", stderr.lock().unwrap());
            }
        };
        Ecrd {
            child,
            url: format!("http://{addr}"),
            stderr,
        }
    }

    /// SIGKILL, and wait until the process (and its directory lock) is gone.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// What the clients were told, and what they had in flight at the kill.
#[derive(Default)]
struct Ledger {
    /// Acknowledged blobs: digest → content.
    blobs: HashMap<String, Arc<Vec<u8>>>,
    /// Acknowledged manifests: digest → (content, blob digests).
    manifests: HashMap<String, (String, Vec<String>)>,
    /// Per tag, the manifests sent under it in order, and whether each was
    /// acknowledged.
    tags: HashMap<String, Vec<(String, bool)>>,
    /// Chunked uploads in progress: location → (content, bytes sent so far
    /// including a PATCH in flight).
    uploads: HashMap<String, (Arc<Vec<u8>>, usize)>,
    /// Blobs whose bytes were checked after some restart.
    verified: std::collections::HashSet<String>,
    /// Answers no healthy server gives (only transport errors are expected
    /// from a killed one).
    unexpected: Vec<String>,
}

struct Client {
    http: reqwest::Client,
    url: String,
    auth: String,
}

/// A transport error (the server died) ends a pusher; any other failure is
/// recorded as unexpected.
enum Stop {
    Transport,
    Unexpected(String),
}

impl Client {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("authorization", &self.auth)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Stop> {
        request.send().await.map_err(|_| Stop::Transport)
    }

    async fn expect(
        &self,
        request: reqwest::RequestBuilder,
        status: u16,
        what: &str,
    ) -> Result<reqwest::Response, Stop> {
        let r = self.send(request).await?;
        if r.status() == status {
            return Ok(r);
        }
        let got = r.status();
        match r.text().await {
            Ok(body) => Err(Stop::Unexpected(format!("{what}: {got} {body}"))),
            Err(_) => Err(Stop::Transport),
        }
    }

    async fn push_blob(
        &self,
        ledger: &Mutex<Ledger>,
        data: Arc<Vec<u8>>,
        chunked: bool,
    ) -> Result<String, Stop> {
        let digest = sha256(&data);
        if !chunked {
            let post = self
                .req(
                    Method::POST,
                    &format!("/v2/{REPO}/blobs/uploads/?digest={digest}"),
                )
                .body(data.to_vec());
            self.expect(post, 201, "monolithic upload").await?;
        } else {
            let r = self
                .expect(
                    self.req(Method::POST, &format!("/v2/{REPO}/blobs/uploads/")),
                    202,
                    "open upload",
                )
                .await?;
            let location = r.headers()["location"].to_str().unwrap().to_string();
            let cut = data.len() / 3;
            let mut at = 0;
            for end in [cut, data.len()] {
                ledger
                    .lock()
                    .unwrap()
                    .uploads
                    .insert(location.clone(), (data.clone(), end));
                let patch = self
                    .req(Method::PATCH, &location)
                    .header("content-range", format!("{at}-{}", end - 1))
                    .body(data[at..end].to_vec());
                self.expect(patch, 202, "PATCH").await?;
                at = end;
            }
            let put = self.req(Method::PUT, &format!("{location}?digest={digest}"));
            self.expect(put, 201, "finish upload").await?;
            ledger.lock().unwrap().uploads.remove(&location);
        }
        ledger.lock().unwrap().blobs.insert(digest.clone(), data);
        Ok(digest)
    }

    /// Pushes one random image under `tag`.
    async fn push_image(
        &self,
        ledger: &Mutex<Ledger>,
        rng: &mut StdRng,
        base: &Arc<Vec<u8>>,
        tag: &str,
    ) -> Result<(), Stop> {
        let config = Arc::new(
            json!({"architecture": "amd64", "os": "linux", "nonce": rng.gen::<u64>()})
                .to_string()
                .into_bytes(),
        );
        let mut layers = Vec::new();
        if rng.gen_bool(0.3) {
            layers.push(base.clone());
        }
        for _ in 0..rng.gen_range(1..=2) {
            let size = if rng.gen_bool(0.2) {
                rng.gen_range(100_000..400_000)
            } else {
                rng.gen_range(500..40_000)
            };
            let mut data = vec![0u8; size];
            rng.fill(&mut data[..]);
            layers.push(Arc::new(data));
        }
        let mut digests = vec![
            self.push_blob(ledger, config.clone(), rng.gen_bool(0.3))
                .await?,
        ];
        for layer in &layers {
            digests.push(
                self.push_blob(ledger, layer.clone(), rng.gen_bool(0.5))
                    .await?,
            );
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digests[0], "size": config.len()},
            "layers": layers.iter().zip(&digests[1..]).map(|(l, d)| json!({
                "mediaType": OCI_LAYER, "digest": d, "size": l.len()
            })).collect::<Vec<_>>(),
        })
        .to_string();
        let digest = sha256(manifest.as_bytes());
        ledger
            .lock()
            .unwrap()
            .tags
            .entry(tag.to_string())
            .or_default()
            .push((digest.clone(), false));
        let put = self
            .req(Method::PUT, &format!("/v2/{REPO}/manifests/{tag}"))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone());
        self.expect(put, 201, "manifest").await?;
        let mut ledger = ledger.lock().unwrap();
        if let Some(last) = ledger.tags.get_mut(tag).and_then(|h| h.last_mut()) {
            last.1 = true;
        }
        ledger.manifests.insert(digest, (manifest, digests));
        Ok(())
    }

    async fn get(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let r = self
            .req(Method::GET, path)
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        (r.status(), r.bytes().await.unwrap().to_vec())
    }
}

/// The registry password, by GetAuthorizationToken signed with SigV4.
/// `ECRD_CRASH_SEED` (else a random seed) and `ECRD_CRASH_ROUNDS` (else
/// `default_rounds`).
fn seed_and_rounds(default_rounds: usize) -> (u64, usize) {
    let seed = std::env::var("ECRD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let rounds = std::env::var("ECRD_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_rounds);
    (seed, rounds)
}

async fn login(url: &str) -> String {
    let (status, body, _) = common::api_call(url, "GetAuthorizationToken", "{}").await;
    assert_eq!(status, 200, "{body}");
    let token = body["authorizationData"][0]["authorizationToken"]
        .as_str()
        .unwrap();
    format!("Basic {token}")
}

/// Checks everything the ledger says survived; resumes cut uploads. Every
/// manifest and tag is checked each time, every blob's presence and size
/// too; blob bytes are checked for blobs new since the last check, a
/// sample of the others, and all of them when `full`.
async fn verify(client: &Client, ledger: &Mutex<Ledger>, round: usize, full: bool) {
    use futures_util::StreamExt;
    let (blobs, manifests, tags, uploads, verified) = {
        let mut l = ledger.lock().unwrap();
        (
            l.blobs.clone(),
            l.manifests.clone(),
            l.tags.clone(),
            std::mem::take(&mut l.uploads),
            l.verified.clone(),
        )
    };
    // What to read whole: new since the last check, an eighth of the rest
    // (a different eighth each round), or everything.
    let mut sample = 0;
    let mut whole = |digest: &str| {
        full || !verified.contains(digest) || {
            sample += 1;
            sample % 8 == round % 8
        }
    };
    // A HEAD answers from the records and the blob's size; a GET proves
    // the bytes (and, for a manifest, records a pull: a committed write).
    let head = |path: String| async move {
        let r = client.req(Method::HEAD, &path).send().await.unwrap();
        assert_eq!(r.status(), 200, "round {round}: HEAD {path}");
        (
            r.headers()["content-length"]
                .to_str()
                .unwrap()
                .parse::<usize>()
                .unwrap(),
            r.headers()["docker-content-digest"]
                .to_str()
                .unwrap()
                .to_string(),
        )
    };
    let checks = manifests.iter().map(|(digest, (manifest, parts))| {
        for part in parts {
            assert!(blobs.contains_key(part), "acknowledged before its manifest");
        }
        let whole = whole(digest);
        let path = format!("/v2/{REPO}/manifests/{digest}");
        async move {
            if whole {
                let (status, body) = client.get(&path).await;
                assert_eq!(status, 200, "round {round}: manifest {digest}");
                assert_eq!(body, manifest.as_bytes(), "round {round}: {digest}");
            } else {
                assert_eq!(head(path).await, (manifest.len(), digest.clone()));
            }
            digest.clone()
        }
    });
    let mut checked: Vec<String> = futures_util::stream::iter(checks)
        .buffer_unordered(8)
        .collect()
        .await;
    let checks = blobs.iter().map(|(digest, data)| {
        let whole = whole(digest);
        let path = format!("/v2/{REPO}/blobs/{digest}");
        async move {
            if whole {
                let (status, body) = client.get(&path).await;
                assert_eq!(status, 200, "round {round}: blob {digest}");
                assert_eq!(sha256(&body), *digest, "round {round}: blob {digest}");
                assert!(body == **data, "round {round}: blob {digest} differs");
            } else {
                assert_eq!(head(path).await, (data.len(), digest.clone()));
            }
            digest.clone()
        }
    });
    checked.extend(
        futures_util::stream::iter(checks)
            .buffer_unordered(8)
            .collect::<Vec<String>>()
            .await,
    );
    ledger.lock().unwrap().verified.extend(checked);
    for (tag, history) in &tags {
        let r = client
            .req(Method::HEAD, &format!("/v2/{REPO}/manifests/{tag}"))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let acked = history.iter().rposition(|(_, a)| *a);
        if status == StatusCode::NOT_FOUND {
            assert!(acked.is_none(), "round {round}: tag {tag} lost");
            continue;
        }
        assert_eq!(status, 200, "round {round}: tag {tag}");
        let digest = r.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_string();
        let allowed: Vec<&String> = if tag == "shared" {
            history.iter().map(|(d, _)| d).collect()
        } else {
            history[acked.unwrap_or(0)..]
                .iter()
                .map(|(d, _)| d)
                .collect()
        };
        assert!(
            allowed.contains(&&digest),
            "round {round}: tag {tag} names {digest}, not one of {allowed:?}"
        );
    }
    for (location, (data, sent)) in uploads {
        let r = client.req(Method::GET, &location).send().await.unwrap();
        if r.status() == StatusCode::NOT_FOUND {
            continue;
        }
        assert_eq!(r.status(), 204, "round {round}: upload {location}");
        let range = r.headers()["range"].to_str().unwrap().to_string();
        let end: usize = range.trim_start_matches("0-").parse().unwrap();
        // "0-0" is both empty and one byte: try empty first.
        let mut held = if end == 0 { 0 } else { end + 1 };
        assert!(
            held <= sent,
            "round {round}: upload holds {held} of {sent} sent"
        );
        let mut resumed = held == data.len();
        while !resumed {
            let patch = client
                .req(Method::PATCH, &location)
                .header("content-range", format!("{held}-{}", data.len() - 1))
                .body(data[held..].to_vec())
                .send()
                .await
                .unwrap();
            if patch.status() == StatusCode::RANGE_NOT_SATISFIABLE && held == 0 {
                held = 1;
                continue;
            }
            let status = patch.status();
            let range = patch.headers().get("range").cloned();
            assert_eq!(
                status,
                202,
                "round {round}: resume {location} from {held} ({range:?}): {}",
                patch.text().await.unwrap()
            );
            resumed = true;
        }
        let digest = sha256(&data);
        let put = client
            .req(Method::PUT, &format!("{location}?digest={digest}"))
            .send()
            .await
            .unwrap();
        let status = put.status();
        assert_eq!(
            status,
            201,
            "round {round}: a resumed upload must finish into its blob: {}",
            put.text().await.unwrap()
        );
        let (status, body) = client.get(&format!("/v2/{REPO}/blobs/{digest}")).await;
        assert_eq!(status, 200);
        assert!(
            body == *data,
            "round {round}: resumed blob {digest} differs"
        );
        ledger.lock().unwrap().blobs.insert(digest, data);
    }
}

/// A collection with no grace; the ledger forgets the blobs no
/// acknowledged image uses, which it may delete.
async fn collect_everything(client: &Client, ledger: &Mutex<Ledger>) -> Value {
    let r = client
        .http
        .post(format!("{}/_ecrd/gc?graceSeconds=0", client.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    let mut l = ledger.lock().unwrap();
    let used: std::collections::HashSet<String> = l
        .manifests
        .values()
        .flat_map(|(_, parts)| parts.clone())
        .collect();
    l.blobs.retain(|d, _| used.contains(d));
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_pushes_survive_sigkill() {
    let started = Instant::now();
    let (seed, rounds) = seed_and_rounds(16);
    eprintln!("crash test: seed {seed}, {rounds} rounds (ECRD_CRASH_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let base = Arc::new(vec![0x5au8; 100_000]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let ecrd = Ecrd::start(dir.path());
    let (status, body, _) = common::api_call(
        &ecrd.url,
        "CreateRepository",
        &json!({ "repositoryName": REPO }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Issued once: the token secret lives in the data directory, so the
    // password stays good across every restart.
    let auth = login(&ecrd.url).await;
    let mut ecrd = Some(ecrd);
    let mut kills_with_uploads_cut = 0;

    for round in 0..rounds {
        let restart = Instant::now();
        let server = match ecrd.take() {
            Some(s) => s,
            None => Ecrd::start(dir.path()),
        };
        let restart = restart.elapsed();
        let client = Arc::new(Client {
            http: http.clone(),
            url: server.url.clone(),
            auth: auth.clone(),
        });
        let checking = Instant::now();
        verify(&client, &ledger, round, false).await;
        if round % 4 == 3 {
            // What the kills left (sessions never acknowledged, blobs of
            // manifests never sent) goes; acknowledged images stay whole,
            // as the next rounds check.
            collect_everything(&client, &ledger).await;
        }
        let checking = checking.elapsed();

        let stop = Arc::new(AtomicBool::new(false));
        let mut pushers = Vec::new();
        for p in 0..PUSHERS {
            let (client, ledger, stop, base) =
                (client.clone(), ledger.clone(), stop.clone(), base.clone());
            let mut rng = StdRng::seed_from_u64(rng.gen());
            pushers.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let tag = if rng.gen_bool(0.25) {
                        "shared".to_string()
                    } else {
                        format!("p{p}-{}", n % 3)
                    };
                    match client.push_image(&ledger, &mut rng, &base, &tag).await {
                        Ok(()) => n += 1,
                        Err(Stop::Transport) => break,
                        Err(Stop::Unexpected(e)) => {
                            // A request the kill cut may still have been
                            // answered; only a live server's answers count.
                            if !stop.load(Ordering::Relaxed) {
                                ledger.lock().unwrap().unexpected.push(e);
                            }
                            break;
                        }
                    }
                }
                n
            }));
        }
        let kill_after = Duration::from_millis(rng.gen_range(30..450));
        tokio::time::sleep(kill_after).await;
        stop.store(true, Ordering::Relaxed);
        let cut = ledger.lock().unwrap().uploads.len();
        kills_with_uploads_cut += usize::from(cut > 0);
        let stderr = server.stderr.clone();
        server.kill();
        let mut pushed = 0;
        for p in pushers {
            pushed += p.await.unwrap();
        }
        let unexpected = std::mem::take(&mut ledger.lock().unwrap().unexpected);
        assert!(
            unexpected.is_empty(),
            "round {round} (seed {seed}): {unexpected:?}\n{}",
            stderr.lock().unwrap()
        );
        eprintln!(
            "round {round}: restarted in {restart:?}, verified in {checking:?}, killed after \
             {kill_after:?}, {pushed} images acknowledged, {cut} uploads cut"
        );
    }

    // Last restart: everything checks out, and a collection with no grace
    // leaves every acknowledged image whole and no upload behind.
    let server = Ecrd::start(dir.path());
    let client = Client {
        http: http.clone(),
        url: server.url.clone(),
        auth: auth.clone(),
    };
    verify(&client, &ledger, rounds, true).await;
    let report = collect_everything(&client, &ledger).await;
    verify(&client, &ledger, rounds + 1, false).await;
    assert_eq!(
        std::fs::read_dir(dir.path().join("uploads"))
            .unwrap()
            .count(),
        0,
        "{report}"
    );
    let images = ledger.lock().unwrap().manifests.len();
    server.kill();
    eprintln!(
        "crash test: {rounds} kills ({kills_with_uploads_cut} with uploads cut), {images} images verified, {:?}",
        started.elapsed()
    );
    assert!(images > 0, "no push was ever acknowledged");
}

/// Prunes from the ledger the blobs no acknowledged image uses, after a
/// collection they may have gone in.
fn forget_unused_blobs(ledger: &Mutex<Ledger>) {
    let mut l = ledger.lock().unwrap();
    let used: std::collections::HashSet<String> = l
        .manifests
        .values()
        .flat_map(|(_, parts)| parts.clone())
        .collect();
    l.blobs.retain(|d, _| used.contains(d));
}

/// Two replicas on one PostgreSQL database and one S3 bucket, pushed to at
/// once; each round one of them is SIGKILLed at a random moment (every
/// other round just after it began a garbage collection with a grace of a
/// second) while the other carries on. Then, checked through the replica
/// that stayed up: every acknowledged manifest, tag and blob is there, and
/// uploads the kill cut resume there (an upload moving between replicas).
/// Pushes to the surviving replica never fail: the locks and leadership the
/// dead one held went with its connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_lose_nothing_when_one_is_killed() {
    let started = Instant::now();
    let (seed, rounds) = seed_and_rounds(8);
    eprintln!(
        "replica crash test: seed {seed}, {rounds} rounds (ECRD_CRASH_SEED={seed} replays it)"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let database = ecrd::test_support::postgres::fresh_database();
    let s3 = ecrd::test_support::s3::S3TestServer::start();
    let bucket = s3.bucket().await;
    let start = || Ecrd::start_replica(&database, s3.endpoint(), &bucket);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let base = Arc::new(vec![0x5au8; 100_000]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let mut replicas = [Some(start()), Some(start())];
    let first = replicas[0].as_ref().unwrap().url.clone();
    let (status, body, _) = common::api_call(
        &first,
        "CreateRepository",
        &json!({ "repositoryName": REPO }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Issued by one replica, good on both (the secret is in the database).
    let auth = login(&first).await;
    let mut gc_kills = 0;

    for round in 0..rounds {
        for slot in replicas.iter_mut() {
            if slot.is_none() {
                *slot = Some(start());
            }
        }
        let victim = rng.gen_range(0..2usize);
        let clients: Vec<Arc<Client>> = replicas
            .iter()
            .map(|r| {
                Arc::new(Client {
                    http: http.clone(),
                    url: r.as_ref().unwrap().url.clone(),
                    auth: auth.clone(),
                })
            })
            .collect();
        // What earlier rounds left, through the replica that will stay up:
        // half the time the one just restarted.
        verify(&clients[1 - victim], &ledger, round, false).await;

        let stop = Arc::new(AtomicBool::new(false));
        let mut pushers = Vec::new();
        for p in 0..PUSHERS {
            let replica = p % 2;
            let (client, ledger, stop, base) = (
                clients[replica].clone(),
                ledger.clone(),
                stop.clone(),
                base.clone(),
            );
            let mut rng = StdRng::seed_from_u64(rng.gen());
            pushers.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let tag = format!("p{p}-{}", n % 3);
                    match client.push_image(&ledger, &mut rng, &base, &tag).await {
                        Ok(()) => n += 1,
                        Err(Stop::Transport) => break,
                        Err(Stop::Unexpected(e)) => {
                            if !stop.load(Ordering::Relaxed) || replica != victim {
                                ledger.lock().unwrap().unexpected.push(e);
                            }
                            break;
                        }
                    }
                }
                (replica, n)
            }));
        }
        let mid_gc = round % 2 == 1;
        // Long enough for the victim to acknowledge pushes too (an image takes
        // tens of milliseconds against moto's S3).
        let kill_after = Duration::from_millis(rng.gen_range(300..1200));
        tokio::time::sleep(kill_after).await;
        if mid_gc {
            // A collection on the victim, killed a moment after it began.
            let gc = http
                .post(format!("{}/_ecrd/gc?graceSeconds=1", clients[victim].url))
                .send();
            let _ = tokio::time::timeout(Duration::from_millis(rng.gen_range(1..30)), gc).await;
            gc_kills += 1;
        }
        let dead = replicas[victim].take().unwrap();
        let stderr = dead.stderr.clone();
        dead.kill();
        // The survivor's pushers go on a while after the kill.
        tokio::time::sleep(Duration::from_millis(150)).await;
        stop.store(true, Ordering::Relaxed);
        let mut pushed = [0usize; 2];
        for p in pushers {
            let (replica, n) = p.await.unwrap();
            pushed[replica] += n;
        }
        if mid_gc {
            forget_unused_blobs(&ledger);
        }
        let unexpected = std::mem::take(&mut ledger.lock().unwrap().unexpected);
        assert!(
            unexpected.is_empty(),
            "round {round} (seed {seed}), replica {victim} killed: {unexpected:?}\n{}",
            stderr.lock().unwrap()
        );
        eprintln!(
            "round {round}: replica {victim} killed after {kill_after:?}{}, images acknowledged \
             {pushed:?}",
            if mid_gc { " in a collection" } else { "" }
        );
    }

    // Both up again: everything checks out through each, and a collection
    // with no grace leaves every acknowledged image whole.
    for slot in replicas.iter_mut() {
        if slot.is_none() {
            *slot = Some(start());
        }
    }
    let clients: Vec<Client> = replicas
        .iter()
        .map(|r| Client {
            http: http.clone(),
            url: r.as_ref().unwrap().url.clone(),
            auth: auth.clone(),
        })
        .collect();
    verify(&clients[0], &ledger, rounds, true).await;

    // A chunked upload begun on one replica, continued and finished on the
    // other, pulled back through the first.
    let data: Vec<u8> = (0..(9 << 20) + 5).map(|i| (i % 239) as u8).collect();
    let digest = sha256(&data);
    let r = clients[0]
        .req(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut location = r.headers()["location"].to_str().unwrap().to_string();
    let half = data.len() / 2;
    for (client, part, start) in [
        (&clients[0], &data[..half], 0),
        (&clients[1], &data[half..], half),
    ] {
        let r = client
            .req(Method::PATCH, &location)
            .header(
                "content-range",
                format!("{start}-{}", start + part.len() - 1),
            )
            .header("content-type", "application/octet-stream")
            .body(part.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        location = r.headers()["location"].to_str().unwrap().to_string();
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = clients[1]
        .req(Method::PUT, &format!("{location}{sep}digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let (status, body) = clients[0].get(&format!("/v2/{REPO}/blobs/{digest}")).await;
    assert_eq!(status, 200);
    assert!(body == data, "the moved upload's blob differs");

    collect_everything(&clients[1], &ledger).await;
    verify(&clients[0], &ledger, rounds + 1, false).await;
    let images = ledger.lock().unwrap().manifests.len();
    eprintln!(
        "replica crash test: {rounds} kills ({gc_kills} in a collection), {images} images verified, {:?}",
        started.elapsed()
    );
    assert!(images > 0, "no push was ever acknowledged");
}

//! A bounded soak: a fixed number of clients hammer one in-process server
//! for a fixed time (`ECRD_SOAK_SECONDS`, default 20 per backend), on every
//! backend, over loopback. They mix pushes of small random images through
//! `/v2/` (monolithic and chunked, some sharing a base layer), pulls that
//! check every digest, control-plane reads and retags through the AWS SDK,
//! deletes on both planes, lifecycle runs that expire images and garbage
//! collections. Every answer must be a success or the error a race
//! explains (an image deleted or expired under a pull); anything else fails
//! the test. Afterwards, with the clients stopped and a collection of grace
//! 0 run, every image DescribeImages lists pulls completely and no blob is
//! kept that no image uses.
//!
//! Prints the count and p50/p99 latency of each kind of operation and the
//! process's resident memory (the server runs in this process), and bounds
//! the peak. `cargo test --release --test soak -- --nocapture` shows them;
//! `ECRD_SOAK_SEED` replays a run's choices.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ecr::types::{ImageFailureCode, ImageIdentifier};
use common::registry::{manifest_blobs, Refusal, Registry, OCI_MANIFEST};
use common::{err_code, sha256_digest, Backend, TestServer, BACKENDS};
use serde_json::json;

/// Concurrent clients per backend.
const CLIENTS: usize = 8;
const REPOSITORIES: [&str; 3] = ["soak/alpha", "soak/beta", "soak/gamma"];
/// The grace of the collections run during the soak: a blob pushed ahead
/// of its manifest is safe for this long, an unused one goes after it.
const GC_GRACE_SECONDS: u64 = 5;
/// Peak resident memory allowed over one backend's soak, for the whole test
/// process (server, clients and the test harness). Measured on 2 shared
/// cores: 121-130 MiB for the memory backend (which holds every blob younger
/// than the grace: 5 s of 15-19 MiB/s of pushes), 143-144 MiB for disk (run
/// after memory, whose freed pages the allocator keeps). Before the memory
/// store stopped keeping a whole 1 MiB block per small blob, memory peaked
/// at 312-365 MiB. A machine fast enough to push more within one grace
/// window holds more, so the bound grows by twice what the busiest window
/// pushed beyond `WINDOW_ALLOWANCE_MIB`.
const PEAK_RSS_LIMIT_MIB: u64 = 200;
const WINDOW_ALLOWANCE_MIB: u64 = 80;
/// A backend soaked after another starts with that one's freed pages still
/// resident (the allocator keeps them, and reuses them before asking for
/// more): on a machine that pushed fast through the memory backend, disk
/// started at 305 MiB. Such a backend may peak at most this much above
/// where it started; the second-half check below still catches a leak.
const INHERITED_HEADROOM_MIB: u64 = 64;
/// Once the grace has passed, memory must stop growing with the pushes: over
/// the second half of the soak RSS may grow by at most this much plus a
/// quarter of the bytes pushed meanwhile. A server that kept every pushed
/// blob (or a copy of each request body) would grow by all of them.
const SECOND_HALF_GROWTH_MIB: u64 = 16;
/// Images remembered for pulls and deletes (the oldest are forgotten).
const KNOWN_LIMIT: usize = 48;

/// xorshift64*: deterministic per client, so `ECRD_SOAK_SEED` replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

#[derive(Clone, Debug)]
struct Known {
    repo: &'static str,
    digest: String,
    tag: String,
}

struct Shared {
    known: Mutex<Vec<Known>>,
    counter: AtomicU64,
    /// Bytes of every blob pushed.
    pushed: AtomicU64,
}

impl Shared {
    fn remember(&self, known: Known) {
        let mut all = self.known.lock().unwrap();
        if all.len() >= KNOWN_LIMIT {
            all.remove(0);
        }
        all.push(known);
    }
    fn pick(&self, rng: &mut Rng) -> Option<Known> {
        let all = self.known.lock().unwrap();
        if all.is_empty() {
            return None;
        }
        Some(all[rng.below(all.len() as u64) as usize].clone())
    }
    fn forget(&self, digest: &str) {
        self.known.lock().unwrap().retain(|k| k.digest != digest);
    }
}

/// How an operation ended when it did not simply succeed.
enum Outcome {
    Done,
    /// An error that a concurrent delete, expiry or collection explains.
    Race(&'static str),
}

type OpResult = Result<Outcome, String>;

struct Client {
    registry: Registry,
    ecr: aws_sdk_ecr::Client,
    http: reqwest::Client,
    url: String,
    shared: Arc<Shared>,
    rng: Rng,
}

#[derive(Default)]
struct Stats {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    races: BTreeMap<String, u64>,
    unexpected: Vec<String>,
}

/// The base layer every `repo`'s images may share (the same bytes each
/// time, so pushes of it deduplicate and collections must keep it).
fn base_layer(repo: &str) -> Vec<u8> {
    let mut rng = Rng(0x5eed ^ repo.len() as u64 ^ (repo.as_bytes()[5] as u64) << 32);
    rng.bytes(24 * 1024)
}

impl Client {
    fn repo(&mut self) -> &'static str {
        REPOSITORIES[self.rng.below(REPOSITORIES.len() as u64) as usize]
    }

    /// A config and 1-3 random layers of 256 B-32 KiB (the first, one time
    /// in three, the repository's shared base), each blob monolithic or in
    /// 8 KiB chunks, then the manifest under a fresh tag.
    async fn push(&mut self) -> OpResult {
        let repo = self.repo();
        let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"n":{n}}}"#
        );
        let mut layers = Vec::new();
        for i in 0..1 + self.rng.below(3) {
            if i == 0 && self.rng.below(3) == 0 {
                layers.push(base_layer(repo));
            } else {
                let len = 256 + self.rng.below(32 * 1024) as usize;
                layers.push(self.rng.bytes(len));
            }
        }
        for blob in std::iter::once(config.as_bytes()).chain(layers.iter().map(Vec::as_slice)) {
            let pushed = if self.rng.below(3) == 0 {
                self.registry.push_blob_chunked(repo, blob, 8 * 1024).await
            } else {
                self.registry.push_blob(repo, blob).await
            };
            pushed.map_err(|e| format!("blob push to {repo}: {e}"))?;
            self.shared
                .pushed
                .fetch_add(blob.len() as u64, Ordering::Relaxed);
        }
        let layer_refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
        let manifest = Registry::manifest(config.as_bytes(), &layer_refs);
        let tag = format!("t{n}");
        let digest = self
            .registry
            .put_manifest(repo, &tag, &manifest)
            .await
            .map_err(|e| format!("manifest push to {repo}:{tag}: {e}"))?;
        self.shared.remember(Known { repo, digest, tag });
        Ok(Outcome::Done)
    }

    /// A known image by tag or digest, then every blob it names.
    async fn pull(&mut self) -> OpResult {
        let Some(known) = self.shared.pick(&mut self.rng) else {
            return Ok(Outcome::Done);
        };
        let reference = if self.rng.below(2) == 0 {
            known.digest.clone()
        } else {
            known.tag.clone()
        };
        let manifest = match self.registry.get_manifest(known.repo, &reference).await {
            Ok(m) => m,
            Err(r) if r.status == 404 && r.code == "MANIFEST_UNKNOWN" => {
                self.shared.forget(&known.digest);
                return Ok(Outcome::Race("pull: MANIFEST_UNKNOWN (deleted or expired)"));
            }
            Err(r) => return Err(format!("pull {}@{reference}: {r}", known.repo)),
        };
        if sha256_digest(&manifest) != known.digest {
            return Err(format!(
                "pull {}:{} gave {} not {}",
                known.repo,
                known.tag,
                sha256_digest(&manifest),
                known.digest
            ));
        }
        for (digest, size) in manifest_blobs(&manifest) {
            if let Err(r) = self
                .registry
                .get_blob(known.repo, &digest, Some(size))
                .await
            {
                return self.blob_race(&known, &digest, r).await;
            }
        }
        Ok(Outcome::Done)
    }

    /// A blob of an image missing in the middle of its pull is a race only
    /// when the image is gone too (deleted or expired, then collected).
    async fn blob_race(&self, known: &Known, digest: &str, r: Refusal) -> OpResult {
        if r.status != 404 {
            return Err(format!("pull blob {digest} of {}: {r}", known.repo));
        }
        match self.registry.get_manifest(known.repo, &known.digest).await {
            Err(m) if m.code == "MANIFEST_UNKNOWN" => {
                self.shared.forget(&known.digest);
                Ok(Outcome::Race("pull: blob gone with its image"))
            }
            other => Err(format!(
                "blob {digest} of {}@{} is gone ({r}) but the image is not ({:?})",
                known.repo,
                known.digest,
                other.map(|m| m.len())
            )),
        }
    }

    async fn describe_images(&mut self) -> OpResult {
        if self.rng.below(2) == 0 {
            let repo = self.repo();
            self.ecr
                .describe_images()
                .repository_name(repo)
                .max_results(100)
                .send()
                .await
                .map_err(|e| format!("DescribeImages {repo}: {:?}", err_code(&e)))?;
            return Ok(Outcome::Done);
        }
        let Some(known) = self.shared.pick(&mut self.rng) else {
            return Ok(Outcome::Done);
        };
        match self
            .ecr
            .describe_images()
            .repository_name(known.repo)
            .image_ids(
                ImageIdentifier::builder()
                    .image_digest(&known.digest)
                    .build(),
            )
            .send()
            .await
        {
            Ok(out) => {
                let found = out.image_details().iter().any(|d| {
                    d.image_digest() == Some(known.digest.as_str())
                        && d.image_size_in_bytes().unwrap_or(0) > 0
                });
                if found {
                    Ok(Outcome::Done)
                } else {
                    Err(format!("DescribeImages of {known:?}: {out:?}"))
                }
            }
            Err(e) if err_code(&e).0 == "ImageNotFoundException" => {
                self.shared.forget(&known.digest);
                Ok(Outcome::Race("DescribeImages: ImageNotFoundException"))
            }
            Err(e) => Err(format!("DescribeImages {known:?}: {:?}", err_code(&e))),
        }
    }

    async fn describe_repositories(&mut self) -> OpResult {
        let out = self
            .ecr
            .describe_repositories()
            .send()
            .await
            .map_err(|e| format!("DescribeRepositories: {:?}", err_code(&e)))?;
        if out.repositories().len() != REPOSITORIES.len() {
            return Err(format!("DescribeRepositories: {out:?}"));
        }
        Ok(Outcome::Done)
    }

    async fn list_images(&mut self) -> OpResult {
        let repo = self.repo();
        self.ecr
            .list_images()
            .repository_name(repo)
            .send()
            .await
            .map_err(|e| format!("ListImages {repo}: {:?}", err_code(&e)))?;
        Ok(Outcome::Done)
    }

    /// BatchGetImage of a known digest: its manifest, byte for byte, or
    /// an `ImageNotFound` failure.
    async fn batch_get_image(&mut self, known: &Known) -> Result<Option<(String, String)>, String> {
        let out = self
            .ecr
            .batch_get_image()
            .repository_name(known.repo)
            .image_ids(
                ImageIdentifier::builder()
                    .image_digest(&known.digest)
                    .build(),
            )
            .accepted_media_types(OCI_MANIFEST)
            .send()
            .await
            .map_err(|e| format!("BatchGetImage {known:?}: {:?}", err_code(&e)))?;
        if let Some(image) = out.images().first() {
            let manifest = image.image_manifest().unwrap_or("").to_string();
            if sha256_digest(manifest.as_bytes()) != known.digest {
                return Err(format!("BatchGetImage {known:?} gave another manifest"));
            }
            let media_type = image
                .image_manifest_media_type()
                .unwrap_or(OCI_MANIFEST)
                .to_string();
            return Ok(Some((manifest, media_type)));
        }
        match out.failures().first().and_then(|f| f.failure_code()) {
            Some(ImageFailureCode::ImageNotFound) => {
                self.shared.forget(&known.digest);
                Ok(None)
            }
            _ => Err(format!("BatchGetImage {known:?}: {out:?}")),
        }
    }

    async fn batch_get(&mut self) -> OpResult {
        let Some(known) = self.shared.pick(&mut self.rng) else {
            return Ok(Outcome::Done);
        };
        Ok(match self.batch_get_image(&known).await? {
            Some(_) => Outcome::Done,
            None => Outcome::Race("BatchGetImage: ImageNotFound"),
        })
    }

    /// PutImage of a known image's manifest under a new tag.
    async fn retag(&mut self) -> OpResult {
        let Some(known) = self.shared.pick(&mut self.rng) else {
            return Ok(Outcome::Done);
        };
        let Some((manifest, media_type)) = self.batch_get_image(&known).await? else {
            return Ok(Outcome::Race("retag: ImageNotFound"));
        };
        let tag = format!("r{}", self.shared.counter.fetch_add(1, Ordering::Relaxed));
        match self
            .ecr
            .put_image()
            .repository_name(known.repo)
            .image_manifest(manifest)
            .image_manifest_media_type(media_type)
            .image_tag(&tag)
            .send()
            .await
        {
            Ok(_) => {
                self.shared.remember(Known {
                    repo: known.repo,
                    digest: known.digest,
                    tag,
                });
                Ok(Outcome::Done)
            }
            // The image was deleted after BatchGetImage and its layers
            // collected.
            Err(e) if err_code(&e).0 == "LayersNotFoundException" => {
                Ok(Outcome::Race("retag: LayersNotFoundException"))
            }
            Err(e) => Err(format!("PutImage {known:?} as {tag}: {:?}", err_code(&e))),
        }
    }

    async fn batch_delete(&mut self) -> OpResult {
        let Some(known) = self.shared.pick(&mut self.rng) else {
            return Ok(Outcome::Done);
        };
        self.shared.forget(&known.digest);
        let out = self
            .ecr
            .batch_delete_image()
            .repository_name(known.repo)
            .image_ids(
                ImageIdentifier::builder()
                    .image_digest(&known.digest)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| format!("BatchDeleteImage {known:?}: {:?}", err_code(&e)))?;
        if !out.image_ids().is_empty() {
            return Ok(Outcome::Done);
        }
        match out.failures().first().and_then(|f| f.failure_code()) {
            Some(ImageFailureCode::ImageNotFound) => {
                Ok(Outcome::Race("BatchDeleteImage: ImageNotFound"))
            }
            _ => Err(format!("BatchDeleteImage {known:?}: {out:?}")),
        }
    }

    async fn manifest_delete(&mut self) -> OpResult {
        let Some(known) = self.shared.pick(&mut self.rng) else {
            return Ok(Outcome::Done);
        };
        self.shared.forget(&known.digest);
        match self
            .registry
            .delete_manifest(known.repo, &known.digest)
            .await
        {
            Ok(()) => Ok(Outcome::Done),
            Err(r) if r.status == 404 && r.code == "MANIFEST_UNKNOWN" => {
                Ok(Outcome::Race("manifest DELETE: MANIFEST_UNKNOWN"))
            }
            Err(r) => Err(format!("DELETE {known:?}: {r}")),
        }
    }

    async fn operator(&mut self, path: &str, body: serde_json::Value) -> OpResult {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if status != 200 {
            return Err(format!("POST {path}: {status} {text}"));
        }
        Ok(Outcome::Done)
    }

    async fn run(mut self, until: Instant) -> Stats {
        let mut stats = Stats::default();
        while Instant::now() < until {
            let roll = self.rng.below(100);
            let (kind, started) = (kind_of(roll), Instant::now());
            let result = match kind {
                "push" => self.push().await,
                "pull" => self.pull().await,
                "DescribeImages" => self.describe_images().await,
                "DescribeRepositories" => self.describe_repositories().await,
                "ListImages" => self.list_images().await,
                "BatchGetImage" => self.batch_get().await,
                "PutImage (retag)" => self.retag().await,
                "BatchDeleteImage" => self.batch_delete().await,
                "manifest DELETE" => self.manifest_delete().await,
                "lifecycle run" => self.operator("/_ecrd/lifecycle/evaluate", json!({})).await,
                _ => {
                    self.operator("/_ecrd/gc", json!({"graceSeconds": GC_GRACE_SECONDS}))
                        .await
                }
            };
            stats
                .latencies
                .entry(kind)
                .or_default()
                .push(started.elapsed());
            match result {
                Ok(Outcome::Done) => {}
                Ok(Outcome::Race(what)) => *stats.races.entry(what.to_string()).or_default() += 1,
                Err(e) => stats.unexpected.push(e),
            }
        }
        stats
    }
}

/// The mix, out of 100.
fn kind_of(roll: u64) -> &'static str {
    match roll {
        0..=29 => "push",
        30..=54 => "pull",
        55..=61 => "DescribeImages",
        62..=64 => "DescribeRepositories",
        65..=69 => "ListImages",
        70..=76 => "BatchGetImage",
        77..=82 => "PutImage (retag)",
        83..=87 => "BatchDeleteImage",
        88..=92 => "manifest DELETE",
        93..=96 => "lifecycle run",
        _ => "gc run",
    }
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets `VmHWM` to the current RSS (Linux 4.0+), so each backend's peak
/// is its own; where refused, the peak is the process's so far.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Keeps only the newest 16 images of a repository, and untagged ones for a
/// day: runs during the soak expire images that clients are pulling.
const LIFECYCLE: &str = r#"{"rules":[
  {"rulePriority":1,"description":"untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}},
  {"rulePriority":2,"description":"newest 16","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":16},"action":{"type":"expire"}}
]}"#;

async fn soak(backend: Backend, seconds: u64, seed: u64) {
    let server = TestServer::start(backend).await;
    let ecr = server.ecr();
    for repo in REPOSITORIES {
        ecr.create_repository()
            .repository_name(repo)
            .send()
            .await
            .unwrap();
        ecr.put_lifecycle_policy()
            .repository_name(repo)
            .lifecycle_policy_text(LIFECYCLE)
            .send()
            .await
            .unwrap();
    }
    let registry = Registry::login(&server).await;
    let shared = Arc::new(Shared {
        known: Mutex::new(Vec::new()),
        counter: AtomicU64::new(0),
        pushed: AtomicU64::new(0),
    });
    let peak_is_own = reset_peak();
    let (rss_before, _) = memory();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    // RSS over time: a plateau is allocator slack, a steady climb a leak.
    let pushed = shared.clone();
    let sampler = tokio::spawn(async move {
        // (RSS KiB, bytes pushed so far) each second.
        let mut samples = Vec::new();
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(1).min(until - Instant::now())).await;
            samples.push((memory().0, pushed.pushed.load(Ordering::Relaxed)));
        }
        samples
    });
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let client = Client {
            registry: registry.clone(),
            ecr: server.ecr(),
            http: reqwest::Client::new(),
            url: server.url.clone(),
            shared: shared.clone(),
            rng: Rng(seed ^ ((i as u64 + 1) * 0x9E37_79B9_7F4A_7C15) | 1),
        };
        tasks.push(tokio::spawn(client.run(until)));
    }
    let mut all = Stats::default();
    for task in tasks {
        let stats = task.await.expect("a client panicked (see above)");
        for (kind, l) in stats.latencies {
            all.latencies.entry(kind).or_default().extend(l);
        }
        for (what, n) in stats.races {
            *all.races.entry(what).or_default() += n;
        }
        all.unexpected.extend(stats.unexpected);
    }
    let elapsed = started.elapsed();
    let (rss_after, peak) = memory();
    let samples = sampler.await.unwrap();

    let name = backend.name();
    let mut overall: Vec<Duration> = Vec::new();
    let total: usize = all.latencies.values().map(Vec::len).sum();
    println!(
        "soak [{name}]: {CLIENTS} clients, {:.1} s, {total} operations ({:.0}/s), seed {seed}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  {:<22} {:>6} {:>11} {:>11}",
        "operation", "count", "p50", "p99"
    );
    for (kind, latencies) in &mut all.latencies {
        latencies.sort();
        overall.extend(latencies.iter());
        println!(
            "  {:<22} {:>6} {:>11} {:>11}",
            kind,
            latencies.len(),
            ms(percentile(latencies, 0.5)),
            ms(percentile(latencies, 0.99))
        );
    }
    overall.sort();
    println!(
        "  {:<22} {:>6} {:>11} {:>11}",
        "all",
        overall.len(),
        ms(percentile(&overall, 0.5)),
        ms(percentile(&overall, 0.99))
    );
    for (what, n) in &all.races {
        println!("  expected race: {what} x{n}");
    }
    println!(
        "  blobs pushed: {} MiB; RSS each second (MiB): {:?}",
        shared.pushed.load(Ordering::Relaxed) >> 20,
        samples.iter().map(|(rss, _)| rss >> 10).collect::<Vec<_>>()
    );
    println!(
        "  RSS before {} MiB, after {} MiB, peak {} MiB ({})",
        rss_before / 1024,
        rss_after / 1024,
        peak / 1024,
        if peak_is_own {
            "this backend's soak"
        } else {
            "whole process so far"
        }
    );
    assert!(
        all.unexpected.is_empty(),
        "[{name}] {} unexpected outcomes, the first: {:#?}",
        all.unexpected.len(),
        &all.unexpected[..all.unexpected.len().min(20)]
    );
    assert!(
        all.latencies.get("push").map_or(0, Vec::len) > 10,
        "[{name}] too few pushes to mean anything"
    );
    let window = GC_GRACE_SECONDS as usize + 1;
    let busiest = (0..samples.len())
        .map(|i| samples[i].1 - samples[i.saturating_sub(window)].1)
        .max()
        .unwrap_or(0)
        .max(samples.first().map_or(0, |s| s.1));
    let limit = (PEAK_RSS_LIMIT_MIB + 2 * (busiest >> 20).saturating_sub(WINDOW_ALLOWANCE_MIB))
        .max(rss_before / 1024 + INHERITED_HEADROOM_MIB);
    println!(
        "  busiest {window} s pushed {} MiB; peak RSS bound {limit} MiB",
        busiest >> 20
    );
    assert!(
        peak / 1024 < limit,
        "[{name}] peak RSS {} MiB over the {limit} MiB bound",
        peak / 1024
    );
    // Only meaningful when the second half starts after the grace.
    if samples.len() >= 2 * GC_GRACE_SECONDS as usize + 2 {
        let (half_rss, half_pushed) = samples[samples.len() / 2 - 1];
        let (end_rss, end_pushed) = samples[samples.len() - 1];
        let grew = end_rss.saturating_sub(half_rss) * 1024;
        let allowed = (SECOND_HALF_GROWTH_MIB << 20) + (end_pushed - half_pushed) / 4;
        println!(
            "  RSS grew {} MiB over the second half (allowed {} MiB)",
            grew >> 20,
            allowed >> 20
        );
        assert!(
            grew <= allowed,
            "[{name}] RSS grew {} MiB in the second half, {} MiB pushed: memory grows with pushes",
            grew >> 20,
            (end_pushed - half_pushed) >> 20
        );
    }

    check_consistency(&server, &registry).await;
    server.stop().await;
}

/// With nothing in flight and a collection of grace 0 run: every image
/// DescribeImages lists pulls completely, and the blob store holds exactly
/// the blobs those images use.
async fn check_consistency(server: &TestServer, registry: &Registry) {
    let r = registry
        .http
        .post(format!("{}/_ecrd/gc", server.url))
        .json(&json!({"graceSeconds": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ecr = server.ecr();
    let mut used = BTreeSet::new();
    let mut images = 0;
    for repo in REPOSITORIES {
        let mut token = None;
        loop {
            let out = ecr
                .describe_images()
                .repository_name(repo)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            for detail in out.image_details() {
                let digest = detail.image_digest().unwrap();
                let manifest = registry
                    .get_manifest(repo, digest)
                    .await
                    .unwrap_or_else(|e| panic!("{repo}@{digest} is listed but not served: {e}"));
                for (blob, size) in manifest_blobs(&manifest) {
                    registry
                        .get_blob(repo, &blob, Some(size))
                        .await
                        .unwrap_or_else(|e| {
                            panic!("blob {blob} of listed {repo}@{digest} is not served: {e}")
                        });
                    used.insert(blob);
                }
                for tag in detail.image_tags() {
                    let by_tag = registry.get_manifest(repo, tag).await.unwrap();
                    assert_eq!(sha256_digest(&by_tag), digest, "{repo}:{tag}");
                }
                images += 1;
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    let stored: BTreeSet<String> = server
        .state
        .ecr
        .blobs
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        stored, used,
        "after a collection of grace 0 the store holds exactly the listed images' blobs"
    );
    println!(
        "  consistent: {images} images listed, each pulled whole; {} blobs stored, all used",
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_for_a_while() {
    let seconds = std::env::var("ECRD_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed = std::env::var("ECRD_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    // `ECRD_SOAK_BACKEND=disk` soaks one backend only.
    let only = std::env::var("ECRD_SOAK_BACKEND").ok();
    for &backend in BACKENDS {
        if only.as_deref().is_some_and(|b| b != backend.name()) {
            continue;
        }
        soak(backend, seconds, seed).await;
    }
}

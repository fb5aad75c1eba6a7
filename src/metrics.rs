//! What ecrd measures about itself and how it is read: `GET /_ecrd/metrics`
//! in the Prometheus text exposition format (version 0.0.4), through the
//! `prometheus-client` crate.
//!
//! This module owns the router's front, [`track`], which every request
//! passes first: it gives the request its id (`request_log::RequestId`),
//! runs the rest of the router in the request's log context
//! (`request_log::in_context`), which the plane answering names and adds
//! its fields to (`api`, `oci`; `request` when none does), times
//! the request, counts it by plane, operation and status, counts registry
//! body bytes as they stream, and puts the id on the answer.
//!
//! Families:
//! - `ecrd_requests_total` and `ecrd_request_duration_seconds` (time to the
//!   answer's head; a streamed body is not waited for), by `plane`
//!   (`api`, `sts`, `registry`, `operator`, `console`, `other`),
//!   `operation` (the `X-Amz-Target` operation; the registry route such as
//!   `manifest_get`, `blob_head`, `upload_patch`; the operator or console
//!   path) and `status`;
//! - `ecrd_registry_pushed_bytes_total`, `ecrd_registry_pulled_bytes_total`
//!   by `kind` (`blob`, `manifest`): registry-plane body bytes received and
//!   sent;
//! - `ecrd_repositories`, `ecrd_images`, `ecrd_blobs`, `ecrd_upload_sessions`:
//!   what is stored now, counted when scraped (the metadata stores count a
//!   table without reading its records; see `store::ReadTxn::count`);
//! - `ecrd_background_runs_total`, `ecrd_background_failures_total` by
//!   `task`, read from the domain's task log (`ecr::overview::TaskLog`);
//! - `ecrd_build_info` by `version`.
//!
//! Labels take values from fixed sets only: never a repository name, a
//! digest or an arbitrary path, so a scrape's size does not grow with what
//! is stored or what clients send.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::ecr::Ecr;
use crate::request_log::{RequestId, REQUEST_ID_HEADER};
use crate::state::AppState;

/// The content type of the Prometheus text format this endpoint answers.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds: from 100 µs (a cached
/// control-plane answer) to 10 s (a large manifest list or a slow disk).
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The background tasks that always appear (at 0 before their first run),
/// as the task log names them.
const TASKS: [&str; 5] = [
    "lifecycle",
    "garbage collection",
    "replication",
    "signing",
    "scanning",
];

/// One request's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub plane: &'static str,
    pub operation: &'static str,
    pub status: u16,
}

/// What a registry body holds.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BodyLabels {
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric ecrd keeps, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pushed: Family<BodyLabels, Counter>,
    pulled: Family<BodyLabels, Counter>,
    repositories: Gauge,
    images: Gauge,
    blobs: Gauge,
    uploads: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics of one server over `ecr`, whose task log the background
    /// families read.
    pub fn new(ecr: Arc<Ecr>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "ecrd_requests",
            "Requests answered, by plane, operation or route, and status",
            requests.clone(),
        );
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "ecrd_request_duration_seconds",
            "Time from a request's arrival to its answer's head, by plane, operation or route, and status",
            latency.clone(),
        );
        let pushed = Family::<BodyLabels, Counter>::default();
        registry.register(
            "ecrd_registry_pushed_bytes",
            "Bytes of registry request bodies received (blob uploads and manifest PUTs)",
            pushed.clone(),
        );
        let pulled = Family::<BodyLabels, Counter>::default();
        registry.register(
            "ecrd_registry_pulled_bytes",
            "Bytes of registry response bodies sent (blob and manifest GETs, layer download URLs)",
            pulled.clone(),
        );
        let repositories = Gauge::default();
        registry.register(
            "ecrd_repositories",
            "Repositories stored, in every registry",
            repositories.clone(),
        );
        let images = Gauge::default();
        registry.register(
            "ecrd_images",
            "Images (manifests) stored, in every repository",
            images.clone(),
        );
        let blobs = Gauge::default();
        registry.register(
            "ecrd_blobs",
            "Blobs in the blob store (each stored once, however many repositories link it)",
            blobs.clone(),
        );
        let uploads = Gauge::default();
        registry.register(
            "ecrd_upload_sessions",
            "Layer upload sessions open (both planes)",
            uploads.clone(),
        );
        registry.register(
            "ecrd_build",
            "The running ecrd",
            Info::new(VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        // Both kinds from the start, at 0: a rate over a series that
        // appears only at the first push misses that push.
        for kind in ["blob", "manifest"] {
            pushed.get_or_create(&BodyLabels { kind }).inc_by(0);
            pulled.get_or_create(&BodyLabels { kind }).inc_by(0);
        }
        registry.register(
            "ecrd_gc_lock_wait_seconds",
            "Time a step that publishes a blob (a finished upload, a mount, a cached, replicated or signed copy) waited for garbage collection's lock",
            ecr.gc_lock_waits(),
        );
        registry.register_collector(Box::new(BackgroundTasks(ecr)));
        Metrics {
            registry,
            requests,
            latency,
            pushed,
            pulled,
            repositories,
            images,
            blobs,
            uploads,
        }
    }

    /// Counts one answered request.
    pub fn observe(&self, labels: &RequestLabels, elapsed: Duration) {
        self.requests.get_or_create(labels).inc();
        self.latency
            .get_or_create(labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The counter of registry bytes received for `kind`.
    pub fn pushed(&self, kind: &'static str) -> Counter {
        self.pushed.get_or_create_owned(&BodyLabels { kind })
    }

    /// The counter of registry bytes sent for `kind`.
    pub fn pulled(&self, kind: &'static str) -> Counter {
        self.pulled.get_or_create_owned(&BodyLabels { kind })
    }

    /// The exposition: counts what is stored now, then encodes everything.
    pub async fn render(&self, ecr: &Arc<Ecr>) -> Result<String, String> {
        let counting = ecr.clone();
        let stored = tokio::task::spawn_blocking(move || -> Result<[u64; 3], String> {
            use crate::store::Table;
            let tx = counting.store.read().map_err(|e| e.to_string())?;
            let count = |table| tx.count(table).map_err(|e| e.to_string());
            Ok([
                count(Table::Repositories)?,
                count(Table::Images)?,
                count(Table::Uploads)?,
            ])
        })
        .await
        .map_err(|e| e.to_string())??;
        let blobs = ecr.blobs.count().await.map_err(|e| e.to_string())?;
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.repositories.set(gauge(stored[0]));
        self.images.set(gauge(stored[1]));
        self.uploads.set(gauge(stored[2]));
        self.blobs.set(gauge(blobs));
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Runs and failures of the background tasks, read from the task log at
/// each scrape (the domain keeps them; this only reports them).
struct BackgroundTasks(Arc<Ecr>);

impl std::fmt::Debug for BackgroundTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackgroundTasks")
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: String,
}

impl Collector for BackgroundTasks {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let log = self.0.tasks.snapshot();
        let mut names: Vec<&str> = TASKS.to_vec();
        names.extend(log.keys().copied().filter(|name| !TASKS.contains(name)));
        for (family, help, value) in [
            (
                "ecrd_background_runs",
                "Runs of a background task (or of its operator endpoint) since start",
                (|s: &crate::ecr::overview::TaskStatus| s.runs) as fn(&_) -> u64,
            ),
            (
                "ecrd_background_failures",
                "Runs of a background task that failed (in whole or in part) since start",
                |s: &crate::ecr::overview::TaskStatus| s.failures,
            ),
        ] {
            let mut metric = encoder.encode_descriptor(family, help, None, MetricType::Counter)?;
            for name in &names {
                let count = log.get(name).map(value).unwrap_or(0);
                let labels = TaskLabels {
                    task: name.replace(' ', "_"),
                };
                ConstCounter::new(count).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// `GET /_ecrd/metrics`.
pub async fn endpoint(State(app): State<Arc<AppState>>) -> Response {
    match app.metrics.render(&app.ecr).await {
        Ok(text) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(message) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({
                "__type": "ServerException",
                "message": format!("cannot count what is stored: {message}"),
            })),
        )
            .into_response(),
    }
}

/// Where a request goes, as the metrics and the log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    pub plane: &'static str,
    pub operation: &'static str,
    /// The registry request body is pushed content of this kind.
    pub pushes: Option<&'static str>,
    /// The registry response body is pulled content of this kind.
    pub pulls: Option<&'static str>,
}

impl Class {
    /// Whether the plane that answers logs the request's line itself.
    fn plane_logs_itself(&self) -> bool {
        matches!(self.plane, "api" | "sts" | "registry")
    }

    fn of(plane: &'static str, operation: &'static str) -> Self {
        Class {
            plane,
            operation,
            pushes: None,
            pulls: None,
        }
    }
}

/// The operator endpoints and console views, by path (the label is the
/// path itself: a fixed set).
const OPERATOR_PATHS: [&str; 14] = [
    "/_ecrd/health",
    "/_ecrd/metrics",
    "/_ecrd/reset",
    "/_ecrd/clock",
    "/_ecrd/lifecycle/evaluate",
    "/_ecrd/gc",
    "/_ecrd/scrub",
    "/_ecrd/replication/run",
    "/_ecrd/scan-findings",
    "/_ecrd/vuln-db/reload",
    "/_ecrd/signing/certificate",
    "/_ecrd/signing/run",
    "/_ecrd/snapshot",
    "/moto-api/reset",
];

const CONSOLE_PATHS: [&str; 9] = [
    "/_ecrd/console",
    "/_ecrd/console/",
    "/_ecrd/console/registry",
    "/_ecrd/console/repository",
    "/_ecrd/console/lifecycle",
    "/_ecrd/console/image",
    "/_ecrd/console/uploads",
    "/_ecrd/console/tasks",
    "/_localstack/health",
];

/// Classifies a request from its method, path and headers alone (before
/// routing, so every request, routed or not, is counted once).
pub fn classify(method: &Method, path: &str, headers: &HeaderMap) -> Class {
    if path == "/" {
        if *method != Method::POST {
            return Class::of("other", "unmatched");
        }
        if crate::sts::is_sts_request(headers) {
            return Class::of("sts", "sts");
        }
        let operation = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix(crate::api::TARGET_PREFIX))
            .and_then(crate::api::model::Operation::from_name)
            .map(|o| o.name())
            .unwrap_or("unknown");
        return Class::of("api", operation);
    }
    if path == "/v2" || path.starts_with("/v2/") {
        return registry_class(method, &crate::oci::path::Route::parse(path));
    }
    if path.starts_with("/_ecrd/layers/") {
        let mut class = Class::of("registry", "blob_download");
        if *method == Method::GET {
            class.pulls = Some("blob");
        }
        return class;
    }
    if let Some(known) = OPERATOR_PATHS.iter().find(|p| **p == path) {
        return Class::of("operator", known);
    }
    if let Some(known) = CONSOLE_PATHS.iter().find(|p| **p == path) {
        let plane = if *known == "/_localstack/health" {
            "operator"
        } else {
            "console"
        };
        return Class::of(plane, known);
    }
    Class::of("other", "unmatched")
}

/// The registry route and method as one label (`manifest_get`, ...).
fn registry_class(method: &Method, route: &crate::oci::path::Route) -> Class {
    use crate::oci::path::Route;
    let m = method.as_str();
    let operation = match (route, m) {
        (Route::Base, _) => "base",
        (Route::Catalog, _) => "catalog",
        (Route::Tags(_), _) => "tags_list",
        (Route::Referrers(..), _) => "referrers_list",
        (Route::Manifest(..), "GET") => "manifest_get",
        (Route::Manifest(..), "HEAD") => "manifest_head",
        (Route::Manifest(..), "PUT") => "manifest_put",
        (Route::Manifest(..), "DELETE") => "manifest_delete",
        (Route::Blob(..), "GET") => "blob_get",
        (Route::Blob(..), "HEAD") => "blob_head",
        (Route::Blob(..), "DELETE") => "blob_delete",
        (Route::UploadStart(_), "POST") => "upload_start",
        (Route::Upload(..), "GET") => "upload_status",
        (Route::Upload(..), "PATCH") => "upload_patch",
        (Route::Upload(..), "PUT") => "upload_put",
        (Route::Upload(..), "DELETE") => "upload_cancel",
        (Route::Unknown, _) => "unknown",
        _ => "unsupported",
    };
    let mut class = Class::of("registry", operation);
    class.pushes = match operation {
        "upload_start" | "upload_patch" | "upload_put" => Some("blob"),
        "manifest_put" => Some("manifest"),
        _ => None,
    };
    class.pulls = match operation {
        "blob_get" => Some("blob"),
        "manifest_get" => Some("manifest"),
        _ => None,
    };
    class
}

/// A body that adds the length of every data frame to `counter` as it
/// streams through.
fn counted(body: Body, counter: Counter) -> Body {
    Body::new(body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            counter.inc_by(data.len() as u64);
        }
        frame
    }))
}

/// The router's front (see the module docs): id, log context, timing, counts.
pub async fn track(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let class = classify(request.method(), request.uri().path(), request.headers());
    let id = RequestId::new();
    let (mut parts, body) = request.into_parts();
    let method = parts.method.clone();
    parts.extensions.insert(id.clone());
    let body = match class.pushes {
        Some(kind) => counted(body, app.metrics.pushed(kind)),
        None => body,
    };
    let request = Request::from_parts(parts, body);
    // Every line logged while the request is answered, and the one below,
    // carries the request's context (`request_log`).
    let mut response = crate::request_log::in_context(&id, async {
        let response = next.run(request).await;
        let elapsed = started.elapsed();
        let status = response.status();
        app.metrics.observe(
            &RequestLabels {
                plane: class.plane,
                operation: class.operation,
                status: status.as_u16(),
            },
            elapsed,
        );
        // The planes log their own line (with the error's code and
        // message); everything else gets one here.
        if !class.plane_logs_itself() {
            let elapsed_us = elapsed.as_micros() as u64;
            let status = status.as_u16();
            if crate::request_log::is_server_fault(status) {
                tracing::error!(%method, path = class.operation, status, elapsed_us, "failed");
            } else if class.operation.ends_with("/health") {
                // Probed every few seconds by container health checks.
                tracing::debug!(%method, path = class.operation, status, elapsed_us, "done");
            } else {
                tracing::info!(%method, path = class.operation, status, elapsed_us, "done");
            }
        }
        response
    })
    .await;
    let status = response.status();
    if !response.headers().contains_key(REQUEST_ID_HEADER) {
        if let Ok(value) = HeaderValue::from_str(&id.0) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
    }
    match class.pulls {
        Some(kind) if status.is_success() && method == Method::GET => {
            let counter = app.metrics.pulled(kind);
            response.map(|body| counted(body, counter))
        }
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn classifies_every_plane_with_bounded_labels() {
        let none = HeaderMap::new();
        let c = classify(&Method::GET, "/v2/team/app/manifests/latest", &none);
        assert_eq!(
            (c.plane, c.operation, c.pulls),
            ("registry", "manifest_get", Some("manifest"))
        );
        let c = classify(&Method::PATCH, "/v2/a/blobs/uploads/123", &none);
        assert_eq!((c.operation, c.pushes), ("upload_patch", Some("blob")));
        let c = classify(&Method::HEAD, "/v2/a/blobs/sha256:00", &none);
        assert_eq!((c.operation, c.pulls), ("blob_head", None));
        let mut api = HeaderMap::new();
        api.insert(
            "x-amz-target",
            HeaderValue::from_static("AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"),
        );
        let c = classify(&Method::POST, "/", &api);
        assert_eq!((c.plane, c.operation), ("api", "DescribeRepositories"));
        api.insert(
            "x-amz-target",
            HeaderValue::from_static("AmazonEC2ContainerRegistry_V20150921.NoSuchThing"),
        );
        assert_eq!(classify(&Method::POST, "/", &api).operation, "unknown");
        let c = classify(&Method::POST, "/_ecrd/gc", &none);
        assert_eq!((c.plane, c.operation), ("operator", "/_ecrd/gc"));
        // A path a client makes up is never a label value.
        let c = classify(&Method::GET, "/_ecrd/whatever/team/app", &none);
        assert_eq!((c.plane, c.operation), ("other", "unmatched"));
    }
}

//! Assembles the service: the shared state, the router that puts both planes
//! and the operator endpoints on one port, and the background tasks around
//! the accept loop (`listener`).
//!
//! Operator endpoints (not part of ECR):
//! - `GET /_ecrd/health`: version, uptime, backend;
//! - `POST /_ecrd/reset`: drops all state;
//! - `GET|POST /_ecrd/clock`: reads or moves ecrd's clock;
//! - `POST /_ecrd/lifecycle/evaluate`: runs lifecycle policies now (all
//!   repositories, or those `registryId` / `region` / `repositoryName` name,
//!   as a JSON body or query parameters) and lists what they did;
//! - `POST /_ecrd/gc`: collects garbage now (`ecr::gc`) and lists what it
//!   freed; `graceSeconds` (JSON body or query) overrides `--gc-grace`;
//! - `POST /_ecrd/replication/run`: runs every queued replication job now
//!   (`ecr::replication`), e.g. with `--replication=false`;
//! - `POST /_ecrd/scan-findings`: sets an image's scan findings explicitly
//!   (a finished scan marked as injected; see `ecr::scans`);
//! - `POST /_ecrd/vuln-db/reload`: checks `--vuln-db` for changed data now,
//!   loads it and rescans continuous images;
//! - `GET /_ecrd/signing/certificate?signingProfileArn=<arn>`: the PEM
//!   certificate of the signing profile's local key, against which managed
//!   signing's signatures verify (`ecr::signing`);
//! - `POST /_ecrd/signing/run`: signs every queued image now;
//! - `GET /_ecrd/metrics`: counters, latency histograms and stored totals
//!   in the Prometheus text format (`metrics`);
//! - `GET /_ecrd/snapshot`: the whole state as a snapshot tar (`snapshot`);
//! - `POST /_ecrd/snapshot`: replaces the whole state with the snapshot tar
//!   in the body (`Content-Type: application/x-tar`), verified first;
//! - `POST /moto-api/reset` and `GET /_localstack/health`: the conventions
//!   existing test harnesses already call.
//!
//! All but the two health endpoints pass `operator_guard`: state-changing
//! requests with a content type other than JSON or `application/x-tar`
//! (415: a form or text type is what a page can send) or an `Origin` (403),
//! as a web page would send them, are refused, and `--operator-token`
//! requires a bearer token. They and the console also refuse (403) a `Host`
//! that is not a name ecrd is known by (`host_is_allowed`), which is what a
//! DNS-rebinding page sends.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::ServeConfig;
pub use crate::state::{AppState, StartError};

/// The router serving both planes and the operator endpoints.
pub fn router(state: Arc<AppState>) -> Router {
    let operator = Router::new()
        .route("/_ecrd/reset", post(reset))
        .route("/_ecrd/clock", get(get_clock).post(set_clock))
        .route("/_ecrd/lifecycle/evaluate", post(evaluate_lifecycle))
        .route("/_ecrd/gc", post(collect_garbage))
        .route("/_ecrd/scrub", post(scrub_blobs))
        .route("/_ecrd/replication/run", post(run_replication))
        .route("/_ecrd/scan-findings", post(inject_scan_findings))
        .route("/_ecrd/vuln-db/reload", post(reload_vuln_db))
        .route("/_ecrd/signing/certificate", get(signing_certificate))
        .route("/_ecrd/signing/run", post(run_signing))
        .route("/_ecrd/snapshot", get(get_snapshot).post(post_snapshot))
        .route("/_ecrd/metrics", get(crate::metrics::endpoint))
        .route("/moto-api/reset", post(reset))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            operator_guard,
        ));
    Router::new()
        .route("/", post(root))
        .route("/_ecrd/health", get(health))
        .route("/_localstack/health", get(localstack_health))
        .merge(operator)
        .merge(
            crate::console::routes().route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                host_guard,
            )),
        )
        .merge(crate::oci::routes())
        .fallback(not_found)
        // Outermost: every request, routed or not, gets its id, its span
        // and its count here.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}

/// The router of `--public-port`: the public registry's `/v2/`, its token
/// endpoint, layer downloads and logos; every request is marked as the
/// public registry's ([`crate::oci::public::PublicPort`]).
pub fn public_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/_ecrd/health", get(health))
        .merge(crate::oci::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(
            |mut request: axum::extract::Request, next: axum::middleware::Next| async move {
                request
                    .extensions_mut()
                    .insert(crate::oci::public::PublicPort);
                next.run(request).await
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}

/// Keeps web pages and other users away from the operator endpoints.
///
/// A page in the developer's browser can send a cross-site POST without a
/// CORS preflight only with a "simple" content type (`text/plain`, a form
/// encoding) or none, and the browser always adds `Origin` to it. So a
/// state-changing request is refused with 415 when it carries a
/// `Content-Type` other than `application/json` or `application/x-tar`
/// (which a page cannot send cross-site without a preflight, and ecrd
/// answers no preflight), and with
/// 403 when it carries an `Origin` header at all (command-line clients and
/// SDKs send none). With `--operator-token`, every operator request needs
/// `Authorization: Bearer <token>` (401 otherwise). ecrd sends no CORS
/// headers, so no page can read an answer either.
async fn operator_guard(
    State(app): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let refuse = |status: StatusCode, kind: &str, message: String| {
        (status, Json(json!({ "__type": kind, "message": message }))).into_response()
    };
    if let Some(refused) = refuse_foreign_host(&app.config, &request) {
        return refused;
    }
    let headers = request.headers();
    if let Some(expected) = &app.config.operator_token {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        if !given.is_some_and(|t| same_secret(t, expected)) {
            let mut response = refuse(
                StatusCode::UNAUTHORIZED,
                "UnauthorizedException",
                "this operator endpoint needs 'Authorization: Bearer <token>' with the token given to --operator-token".into(),
            );
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"ecrd operator\""),
            );
            return response;
        }
    }
    if request.method() != axum::http::Method::GET && request.method() != axum::http::Method::HEAD {
        if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
            return refuse(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                format!(
                    "operator endpoints do not accept requests from web pages (Origin: {})",
                    origin.to_str().unwrap_or("?")
                ),
            );
        }
        if let Some(content_type) = headers.get(axum::http::header::CONTENT_TYPE) {
            let media_type = content_type
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if media_type != "application/json" && media_type != "application/x-tar" {
                return refuse(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaTypeException",
                    format!(
                        "operator endpoints take 'Content-Type: application/json' (application/x-tar for a snapshot; or no body and no Content-Type), not '{}'",
                        content_type.to_str().unwrap_or("?")
                    ),
                );
            }
        }
    }
    next.run(request).await
}

/// The console's guard: only the `Host` check of `operator_guard` (the
/// console is read-only, and open without the operator token).
async fn host_guard(
    State(app): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(refused) = refuse_foreign_host(&app.config, &request) {
        return refused;
    }
    next.run(request).await
}

/// A 403 for a request whose `Host` (or HTTP/2 `:authority`) names a host
/// that ecrd is not known by: DNS rebinding. A page on `evil.example` whose
/// name its DNS later points at 127.0.0.1 is same-origin with ecrd to the
/// browser, so it can send JSON and read the answers, but its requests
/// still carry `Host: evil.example`. A request with no host at all comes
/// from no browser and passes.
fn refuse_foreign_host(config: &ServeConfig, request: &axum::extract::Request) -> Option<Response> {
    let host = match request.headers().get(axum::http::header::HOST) {
        Some(value) => value.to_str().unwrap_or("\u{fffd}").to_string(),
        None => request.uri().authority()?.as_str().to_string(),
    };
    if host_is_allowed(
        &host,
        config.registry_host.as_deref(),
        &config.allowed_hosts,
    ) {
        return None;
    }
    Some(
        (
            StatusCode::FORBIDDEN,
            Json(json!({
                "__type": "AccessDeniedException",
                "message": format!(
                    "the operator endpoints and the console answer only for IP addresses, localhost, *.localhost, *.amazonaws.com, the registry host and the names given to --allowed-host (ECRD_ALLOWED_HOSTS), not Host '{}'; start ecrd with --allowed-host NAME to reach them by that name",
                    host.chars().take(256).collect::<String>()
                ),
            })),
        )
            .into_response(),
    )
}

/// Whether `host` (a `Host` header: a name or IP literal, maybe with a
/// port) is a name ecrd answers operator requests for: an IP literal,
/// `localhost` or `*.localhost` (RFC 6761: never resolved to another
/// machine), a name under `amazonaws.com` (an ECR-form registry host, whose
/// DNS no page controls), the `--registry-host` (its `{account}` and
/// `{region}` standing for any value), or one of `allowed`. Names compare
/// case-insensitively, a trailing dot ignored.
#[doc(hidden)]
pub fn host_is_allowed(host: &str, registry_host: Option<&str>, allowed: &[String]) -> bool {
    let Some(name) = host_name(host) else {
        return false;
    };
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return false;
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    if name.ends_with(".amazonaws.com") || name.ends_with(".amazonaws.com.cn") {
        return true;
    }
    if let Some(template) = registry_host.and_then(host_name) {
        if template_matches(&template.to_ascii_lowercase(), name) {
            return true;
        }
    }
    allowed.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        let a = host_name(&a).unwrap_or(&a);
        a.strip_suffix('.').unwrap_or(a) == name
    })
}

/// The host of a `Host` value without its port: `[::1]:80` → `::1`,
/// `name:80` → `name`. `None` for a malformed bracket or port.
fn host_name(host: &str) -> Option<&str> {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        return (after.is_empty() || port_ok(after.strip_prefix(':')?)).then_some(ip);
    }
    match host.rsplit_once(':') {
        // A bare IPv6 literal is not a valid Host, but is no rebound name.
        Some(_) if host.parse::<std::net::Ipv6Addr>().is_ok() => Some(host),
        Some((name, port)) => port_ok(port).then_some(name),
        None => Some(host),
    }
}

fn port_ok(port: &str) -> bool {
    // `{port}` stands in a --registry-host template.
    port == "{port}"
        || (!port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `name` is `template` with each `{...}` placeholder replaced by
/// a non-empty run of letters, digits and dashes (no dots).
fn template_matches(template: &str, name: &str) -> bool {
    match template.find('{') {
        None => template == name,
        Some(open) => {
            let Some(close) = template[open..].find('}') else {
                return template == name;
            };
            let (prefix, rest) = (&template[..open], &template[open + close + 1..]);
            let Some(tail) = name.strip_prefix(prefix) else {
                return false;
            };
            let run = tail
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
                .count();
            (1..=run).any(|n| template_matches(rest, &tail[n..]))
        }
    }
}

/// Compares two secrets in time independent of where they differ (and,
/// hashing first, of their lengths).
fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;
    let a = sha2::Sha256::digest(given.as_bytes());
    let b = sha2::Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

/// `POST /`: the ECR JSON API, or STS's query API when the request is one.
async fn root(state: State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    if crate::sts::is_sts_request(request.headers()) {
        crate::sts::handle(state, request).await
    } else {
        crate::api::handle(state, request).await
    }
}

async fn health(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": app.started.elapsed().as_secs_f64(),
        "backend": app.ecr.store.backend(),
        // Where blobs live: `--blobs` may put them elsewhere than metadata.
        "blobs": app.ecr.blobs.backend(),
    }))
}

/// `GET /_ecrd/signing/certificate`'s query.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertificateQuery {
    signing_profile_arn: String,
}

async fn signing_certificate(
    State(app): State<Arc<AppState>>,
    query: Result<axum::extract::Query<CertificateQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(axum::extract::Query(query)) = query else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "the query must name signingProfileArn"})),
        )
            .into_response();
    };
    let ecr = app.ecr.clone();
    let arn = query.signing_profile_arn;
    match tokio::task::spawn_blocking(move || ecr.signing_certificate(&arn)).await {
        Ok(Ok(pem)) => (
            StatusCode::OK,
            [("content-type", "application/x-pem-file")],
            pem,
        )
            .into_response(),
        Ok(Err(e)) if e.kind == crate::ecr::error::ErrorKind::InvalidParameter => {
            (StatusCode::BAD_REQUEST, Json(json!({"error": e.message}))).into_response()
        }
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.message})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn run_signing(State(app): State<Arc<AppState>>) -> Response {
    match app.ecr.run_signing().await {
        Ok(signed) => Json(json!({"signed": signed})).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.message})),
        )
            .into_response(),
    }
}

async fn localstack_health() -> Json<serde_json::Value> {
    Json(json!({
        "services": { "ecr": "running" },
        "edition": "ecrd",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn reset(State(app): State<Arc<AppState>>) -> Response {
    let cleared = match app.ecr.store.clear() {
        Ok(()) => app.ecr.blobs.clear().await,
        Err(e) => Err(e),
    };
    match cleared {
        Ok(()) => {
            app.ecr.clock.reset();
            tracing::info!("state reset");
            Json(json!({ "reset": true })).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

fn clock_body(app: &AppState) -> serde_json::Value {
    let now = app.ecr.clock.now();
    json!({
        "now": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "offsetSeconds": app.ecr.clock.offset().as_seconds_f64(),
    })
}

async fn get_clock(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(clock_body(&app))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClockChange {
    offset_seconds: Option<f64>,
    now: Option<String>,
}

async fn set_clock(State(app): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let bad =
        |msg: String| (StatusCode::BAD_REQUEST, Json(json!({ "error": msg }))).into_response();
    let change: ClockChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return bad(format!(
                "expected {{\"offsetSeconds\": N}} or {{\"now\": \"<RFC 3339>\"}}: {e}"
            ))
        }
    };
    use crate::ecr::clock::OutOfRange;
    let moved: Result<(), OutOfRange> = match (change.offset_seconds, change.now) {
        (Some(seconds), None) => {
            if !seconds.is_finite() || seconds.fract() != 0.0 {
                return bad(format!(
                    "offsetSeconds must be a whole number of seconds, not {seconds}"
                ));
            }
            match time::Duration::checked_seconds_f64(seconds) {
                Some(by) => app.ecr.clock.try_advance(by),
                None => Err(OutOfRange),
            }
        }
        (None, Some(now)) => {
            match time::OffsetDateTime::parse(&now, &time::format_description::well_known::Rfc3339)
            {
                Ok(at) => app.ecr.clock.try_set_now(at),
                Err(e) => return bad(format!("'now' is not an RFC 3339 time: {e}")),
            }
        }
        _ => return bad("give exactly one of offsetSeconds (a number) or now (RFC 3339)".into()),
    };
    if let Err(e) = moved {
        return bad(format!("{e}; the clock was not moved"));
    }
    Json(clock_body(&app)).into_response()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LifecycleEvaluation {
    registry_id: Option<String>,
    region: Option<String>,
    repository_name: Option<String>,
}

async fn evaluate_lifecycle(
    State(app): State<Arc<AppState>>,
    query: Result<
        axum::extract::Query<LifecycleEvaluation>,
        axum::extract::rejection::QueryRejection,
    >,
    body: axum::body::Bytes,
) -> Response {
    use crate::ecr::error::{EcrError, ErrorKind};
    use crate::ecr::lifecycle_runs::LifecycleTarget;
    let failed = |e: EcrError| {
        let status = match e.kind {
            ErrorKind::RepositoryNotFound => StatusCode::NOT_FOUND,
            ErrorKind::Server => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        (
            status,
            Json(json!({ "__type": e.kind.code(), "message": e.message })),
        )
            .into_response()
    };
    let from_query = match query {
        Ok(q) => q.0,
        Err(e) => return failed(EcrError::new(ErrorKind::InvalidParameter, e.body_text())),
    };
    let from_body: LifecycleEvaluation = if body.iter().all(u8::is_ascii_whitespace) {
        LifecycleEvaluation::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return failed(EcrError::new(
                ErrorKind::InvalidParameter,
                format!("expected {{\"registryId\", \"region\", \"repositoryName\"}} (each optional): {e}"),
            )),
        }
    };
    let target = match LifecycleTarget::parse(
        from_body.registry_id.or(from_query.registry_id).as_deref(),
        from_body.region.or(from_query.region).as_deref(),
        from_body
            .repository_name
            .or(from_query.repository_name)
            .as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => return failed(e),
    };
    let ecr = app.ecr.clone();
    match tokio::task::spawn_blocking(move || ecr.run_lifecycle(&target)).await {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(EcrError::new(ErrorKind::Server, e.to_string())),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GcRequest {
    grace_seconds: Option<u64>,
}

async fn collect_garbage(
    State(app): State<Arc<AppState>>,
    query: Result<axum::extract::Query<GcRequest>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Bytes,
) -> Response {
    let bad = |msg: String| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "__type": "InvalidParameterException", "message": msg })),
        )
            .into_response()
    };
    let from_query = match query {
        Ok(q) => q.0,
        Err(e) => return bad(e.body_text()),
    };
    let from_body: GcRequest = if body.iter().all(u8::is_ascii_whitespace) {
        GcRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return bad(format!("expected {{\"graceSeconds\": N}} (optional): {e}")),
        }
    };
    let grace = from_body
        .grace_seconds
        .or(from_query.grace_seconds)
        .unwrap_or(app.config.gc_grace);
    match app
        .ecr
        .collect_garbage(std::time::Duration::from_secs(grace))
        .await
    {
        Ok(report) => Json(report).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "__type": e.kind.code(), "message": e.message })),
        )
            .into_response(),
    }
}

/// Re-hashes every stored blob now; answers how many were checked and
/// which were corrupt (and set aside).
async fn scrub_blobs(State(app): State<Arc<AppState>>) -> Response {
    match app.ecr.scrub_blobs().await {
        Ok(report) => Json(report).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "__type": e.kind.code(), "message": e.message })),
        )
            .into_response(),
    }
}

/// Runs every queued replication job now; answers how many ran.
async fn run_replication(State(app): State<Arc<AppState>>) -> Response {
    match app.ecr.run_replication().await {
        Ok(jobs) => Json(json!({ "jobs": jobs })).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "__type": e.kind.code(), "message": e.message })),
        )
            .into_response(),
    }
}

/// `GET /_ecrd/snapshot`: streams a snapshot of the whole state, written
/// by a blocking task as the client reads it.
async fn get_snapshot(State(app): State<Arc<AppState>>) -> Response {
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let handle = tokio::runtime::Handle::current();
    let ecr = app.ecr.clone();
    tokio::task::spawn_blocking(move || {
        let out = tokio_util::io::SyncIoBridge::new_with_handle(writer, handle.clone());
        // A failure cuts the tar short, which every import refuses.
        if let Err(e) = crate::snapshot::export(&handle, &*ecr.store, &ecr.blobs, out) {
            tracing::warn!(error = %e, "snapshot export failed");
        }
    });
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/x-tar"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"ecrd-snapshot.tar\"",
            ),
        ],
        axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(reader)),
    )
        .into_response()
}

/// `POST /_ecrd/snapshot`: replaces the whole state with the snapshot in
/// the body, once all of it is verified (nothing changes otherwise).
async fn post_snapshot(
    State(app): State<Arc<AppState>>,
    request: axum::extract::Request,
) -> Response {
    let refuse = |status: StatusCode, kind: &str, message: String| {
        (status, Json(json!({ "__type": kind, "message": message }))).into_response()
    };
    let is_tar = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-tar")
        });
    if !is_tar {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaTypeException",
            "a snapshot is sent with 'Content-Type: application/x-tar'".into(),
        );
    }
    use futures_util::TryStreamExt as _;
    let stream = request
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let handle = tokio::runtime::Handle::current();
    let ecr = app.ecr.clone();
    let imported = tokio::task::spawn_blocking(move || {
        let input = tokio_util::io::SyncIoBridge::new_with_handle(
            tokio_util::io::StreamReader::new(stream),
            handle.clone(),
        );
        crate::snapshot::import(&handle, &*ecr.store, &ecr.blobs, input)
    })
    .await;
    match imported {
        Ok(Ok(summary)) => {
            tracing::info!(
                records = summary.records,
                blobs = summary.blobs,
                "snapshot imported"
            );
            Json(summary).into_response()
        }
        Ok(Err(e)) => refuse(
            StatusCode::BAD_REQUEST,
            "InvalidSnapshotException",
            e.to_string(),
        ),
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerException",
            e.to_string(),
        ),
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "__type": "UnknownOperationException", "message": "No such endpoint" })),
    )
        .into_response()
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    /// `--public-port`'s listener.
    public_listener: Option<TcpListener>,
    state: Arc<AppState>,
    tls: Option<crate::tls::Tls>,
}

/// Where TLS comes from for a configuration, if it asks for TLS at all.
fn tls_source(config: &ServeConfig, port: u16, state: &AppState) -> Option<crate::tls::Source> {
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        return Some(crate::tls::Source::Files {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    if !config.tls {
        return None;
    }
    let dir = match &config.data_dir {
        Some(data_dir) => data_dir.join("tls"),
        // Per process: a shared, predictable directory in /tmp could hold
        // a CA someone else planted.
        None => std::env::temp_dir().join(format!(
            "ecrd-tls-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )),
    };
    let template = config
        .registry_host
        .clone()
        .unwrap_or_else(|| "localhost:{port}".to_string())
        .replace("{port}", &port.to_string());
    let accounts = state.credentials.accounts();
    let names = crate::tls::leaf_names(&template, accounts.iter().map(|a| a.as_str()));
    Some(crate::tls::Source::Generated { dir, names })
}

impl Server {
    /// Binds the configured address and builds the state.
    pub async fn bind(mut config: ServeConfig) -> Result<Self, StartError> {
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.port);
        let public_listener = match config.public_port {
            Some(public_port) => {
                let addr = SocketAddr::new(config.host, public_port);
                let public = TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?;
                // Port 0 asks for any free port: URIs name the one bound.
                config.public_port = Some(public.local_addr().map_or(public_port, |a| a.port()));
                Some(public)
            }
            None => None,
        };
        let state = Arc::new(AppState::new(config, port)?);
        if let Some(path) = state.config.init.clone() {
            // Before the first request: a client that sees the port open
            // sees the whole seed.
            let seed = crate::seed::Seed::load(&path)?;
            crate::seed::apply(&state, &seed).await?;
        }
        let tls = match tls_source(&state.config, port, &state) {
            Some(source) => Some(crate::tls::Tls::prepare(&source)?),
            None => None,
        };
        Ok(Server {
            listener,
            public_listener,
            state,
            tls,
        })
    }

    /// Whether the server answers TLS (besides plain HTTP).
    pub fn serves_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The generated CA's certificate, for clients to trust (`None`
    /// without TLS or with `--tls-cert`).
    pub fn tls_ca_path(&self) -> Option<&std::path::Path> {
        self.tls.as_ref().and_then(|t| t.ca_path.as_deref())
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The public registry's address, with `--public-port`.
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let lifecycle = match self.state.config.lifecycle_interval {
            0 => None,
            seconds => Some(tokio::spawn(crate::ecr::lifecycle_runs::run_periodically(
                self.state.ecr.clone(),
                std::time::Duration::from_secs(seconds),
            ))),
        };
        let gc = match self.state.config.gc_interval {
            0 => None,
            seconds => Some(tokio::spawn(crate::ecr::gc::run_periodically(
                self.state.ecr.clone(),
                std::time::Duration::from_secs(seconds),
                std::time::Duration::from_secs(self.state.config.gc_grace),
            ))),
        };
        let scrub = match self.state.config.scrub_interval {
            0 => None,
            seconds => Some(tokio::spawn(crate::ecr::scrub::run_periodically(
                self.state.ecr.clone(),
                std::time::Duration::from_secs(seconds),
            ))),
        };
        let (stop_background, background_stopped) = tokio::sync::watch::channel(false);
        let replication = self.state.config.replication.then(|| {
            tokio::spawn(crate::ecr::replication::run_worker(
                self.state.ecr.clone(),
                background_stopped.clone(),
            ))
        });
        let signing = tokio::spawn(crate::ecr::signing::run_worker(
            self.state.ecr.clone(),
            background_stopped.clone(),
        ));
        let scans = tokio::spawn(crate::ecr::scan_runs::run(
            self.state.ecr.clone(),
            std::time::Duration::from_secs(self.state.config.vuln_db_refresh),
            background_stopped,
        ));
        let seconds = |s: u64| (s > 0).then(|| std::time::Duration::from_secs(s));
        let limits = crate::listener::Limits {
            header_timeout: seconds(self.state.config.header_timeout),
            idle_timeout: seconds(self.state.config.idle_timeout),
            max_connections: self.state.config.max_connections,
            body_rate: (self.state.config.body_timeout > 0 && self.state.config.min_body_rate > 0)
                .then(|| crate::body_rate::BodyRate {
                    grace: std::time::Duration::from_secs(self.state.config.body_timeout),
                    bytes_per_second: self.state.config.min_body_rate,
                }),
        };
        // No tower-http TraceLayer: `metrics::track` logs every request in
        // a span that carries its id.
        let app = router(self.state.clone());
        let acceptor = self.tls.map(|t| t.acceptor);
        // One shutdown signal for both listeners.
        let (stop_listeners, listeners_stopping) = tokio::sync::watch::channel(false);
        let public = self.public_listener.map(|listener| {
            let mut stopping = listeners_stopping.clone();
            tokio::spawn(crate::listener::serve(
                listener,
                public_router(self.state.clone()),
                limits,
                acceptor.clone(),
                async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                },
            ))
        });
        let stopped = listeners_stopping.clone();
        let mut stopping = listeners_stopping;
        let main_stop = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = stop_listeners.send(true);
        });
        let served = crate::listener::serve(self.listener, app, limits, acceptor, main_stop).await;
        signal.abort();
        if let Some(public) = public {
            // Stopped by the signal: it finishes its requests as the main
            // listener did. Otherwise the main listener failed: stop now.
            if !*stopped.borrow() {
                public.abort();
            }
            let _ = public.await;
        }
        // Wait for the background tasks to end, not just ask them to: each
        // holds the domain (and so a data directory's lock) until dropped.
        // The scanner and the replication worker stop between steps, so no
        // blocking step of theirs outlives this either.
        let _ = stop_background.send(true);
        let _ = scans.await;
        let _ = signing.await;
        if let Some(replication) = replication {
            let _ = replication.await;
        }
        for task in [lifecycle, gc, scrub].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        served
    }
}

/// `POST /_ecrd/scan-findings`'s body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FindingsInjection {
    registry_id: Option<String>,
    region: Option<String>,
    repository_name: String,
    image_digest: Option<String>,
    image_tag: Option<String>,
    findings: Vec<crate::ecr::scans::InjectedFinding>,
}

async fn inject_scan_findings(
    State(app): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Response {
    use crate::ecr::error::{EcrError, ErrorKind};
    use crate::ecr::names::{AccountId, Region, Scope};
    let failed = |e: EcrError| {
        let status = match e.kind {
            ErrorKind::RepositoryNotFound | ErrorKind::ImageNotFound => StatusCode::NOT_FOUND,
            ErrorKind::Server => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        (
            status,
            Json(json!({ "__type": e.kind.code(), "message": e.message })),
        )
            .into_response()
    };
    let request: FindingsInjection = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return failed(EcrError::new(
            ErrorKind::InvalidParameter,
            format!("expected {{\"repositoryName\", \"imageTag\" or \"imageDigest\", \"findings\": [{{\"name\", \"severity\", ...}}], \"registryId\"?, \"region\"?}}: {e}"),
        )),
    };
    let account = match request.registry_id.as_deref() {
        Some(a) => match AccountId::parse(a) {
            Ok(a) => a,
            Err(e) => return failed(EcrError::invalid_parameter("registryId", &e)),
        },
        None => app.default_account.clone(),
    };
    let region = match Region::parse(request.region.as_deref().unwrap_or("us-east-1")) {
        Ok(r) => r,
        Err(e) => return failed(EcrError::invalid_parameter("region", &e)),
    };
    let repo = match crate::ecr::repositories::parse_name(&request.repository_name) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let id = crate::ecr::image_queries::ImageId {
        digest: request.image_digest,
        tag: request.image_tag,
    };
    let scope = Scope::new(account, region);
    match app
        .ecr
        .inject_scan_findings(&scope, &repo, &id, request.findings)
    {
        Ok(scan) => Json(json!({
            "status": scan.status,
            "description": scan.description,
            "findingSeverityCounts": scan.counts,
        }))
        .into_response(),
        Err(e) => failed(e),
    }
}

async fn reload_vuln_db(State(app): State<Arc<AppState>>) -> Response {
    crate::ecr::scan_runs::reload(&app.ecr).await;
    let db = app.ecr.scanner.db();
    Json(json!({
        "records": db.len(),
        "updatedAt": db.updated_at(),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::host_is_allowed;

    #[test]
    fn hosts_that_cannot_be_rebound_are_allowed() {
        let allowed = vec!["ecrd".to_string(), "Registry.Internal:5000".to_string()];
        let ok = |h: &str| host_is_allowed(h, Some("{account}.reg.test:{port}"), &allowed);
        for host in [
            "127.0.0.1",
            "127.0.0.1:4566",
            "[::1]:4566",
            "::1",
            "10.1.2.3:80",
            "localhost",
            "LOCALHOST:4566",
            "localhost.",
            "ecrd.localhost:4566",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "ecr.eu-west-1.amazonaws.com:443",
            "000000000000.reg.test:4566",
            "ecrd:4566",
            "registry.internal",
        ] {
            assert!(ok(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:4566",
            "localhost.evil.example",
            "amazonaws.com.evil.example",
            "evilamazonaws.com",
            "reg.test",
            "a.b.reg.test",
            "ecrd.evil",
            "",
            "[::1",
            "localhost:port",
            "local host",
        ] {
            assert!(!ok(host), "{host}");
        }
        assert!(!host_is_allowed("ecrd", None, &[]));
    }
}

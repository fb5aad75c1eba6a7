//! Assembles the service: the shared state, the router that puts both planes
//! and the operator endpoints on one port, and the listener loop with
//! graceful shutdown.
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
//! - `POST /moto-api/reset` and `GET /_localstack/health`: the conventions
//!   existing test harnesses already call.

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
    Router::new()
        .route("/", post(root))
        .route("/_ecrd/health", get(health))
        .route("/_ecrd/reset", post(reset))
        .route("/_ecrd/clock", get(get_clock).post(set_clock))
        .route("/_ecrd/lifecycle/evaluate", post(evaluate_lifecycle))
        .route("/_ecrd/gc", post(collect_garbage))
        .route("/moto-api/reset", post(reset))
        .route("/_localstack/health", get(localstack_health))
        .merge(crate::oci::routes())
        .fallback(not_found)
        .with_state(state)
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
    }))
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
    match (change.offset_seconds, change.now) {
        (Some(seconds), None) if seconds.is_finite() => {
            app.ecr.clock.advance(time::Duration::seconds_f64(seconds))
        }
        (None, Some(now)) => {
            match time::OffsetDateTime::parse(&now, &time::format_description::well_known::Rfc3339)
            {
                Ok(at) => app.ecr.clock.set_now(at),
                Err(e) => return bad(format!("'now' is not an RFC 3339 time: {e}")),
            }
        }
        _ => return bad("give exactly one of offsetSeconds (a number) or now (RFC 3339)".into()),
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
    state: Arc<AppState>,
}

impl Server {
    /// Binds the configured address and builds the state.
    pub async fn bind(config: ServeConfig) -> Result<Self, StartError> {
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.port);
        let state = Arc::new(AppState::new(config, port)?);
        Ok(Server { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
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
        let app = router(self.state).layer(tower_http::trace::TraceLayer::new_for_http());
        let served = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        for task in [lifecycle, gc].into_iter().flatten() {
            task.abort();
        }
        served
    }
}

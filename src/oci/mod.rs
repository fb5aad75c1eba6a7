//! The data plane: the OCI Distribution Specification v1.1 registry API on
//! `/v2/`, served the way Amazon ECR serves it (Basic login with the
//! GetAuthorizationToken password, blob GETs redirected to short-lived
//! signed URLs, ECR's error messages).
//!
//! This adapter turns HTTP into calls on `ecr/` and answers back: it parses
//! paths, headers and query strings into typed values, streams bodies in and
//! out without buffering a layer, and renders errors in one place
//! (`error.rs`). It holds no image rule: those live in `ecr/images.rs`.
//! Every answer under `/v2/` carries `Docker-Distribution-Api-Version:
//! registry/2.0`; every `Location` is relative.

pub mod auth;
pub mod blobs;
pub mod error;
pub mod manifests;
pub mod path;
pub mod public;
pub mod referrers;
pub mod tags;
pub mod uploads;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures_util::TryStreamExt;

use crate::ecr::authorize::RegistryRequest;
use crate::ecr::caller::Caller;
use crate::ecr::names::Scope;
use crate::state::AppState;
use crate::store::blobs::ByteStream;
use error::{OciError, OciResult};
use path::Route;

pub const API_VERSION_HEADER: &str = "docker-distribution-api-version";
pub const API_VERSION: &str = "registry/2.0";

/// The registry's routes, merged into the server's router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v2", any(handle))
        .route("/v2/", any(handle))
        .route("/v2/{*rest}", any(handle))
        .route(
            "/_ecrd/layers/{account}/{region}/{digest}",
            get(blobs::download),
        )
        .route("/token", get(public::token))
        .route(
            "/_ecrd/public/logos/{account}/{*repository}",
            get(public::logo),
        )
}

/// What a registry handler gets: the app, the caller its password proves,
/// and the registry the request addresses (the host's account, else the
/// caller's own), which the domain has already let the caller act on.
#[derive(Clone)]
pub struct Ctx {
    pub app: Arc<AppState>,
    pub caller: Caller,
    pub scope: Scope,
}

/// Axum handler for everything under `/v2`.
pub async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let route = Route::parse(request.uri().path());
    crate::request_log::answered_by("oci");
    crate::request_log::record_str("route", route.kind());
    crate::request_log::record_display("method", request.method());
    crate::request_log::record_str("repository", route.repository().unwrap_or("").to_string());
    let started = std::time::Instant::now();
    let result = process(app, route, request).await;
    let mut response = match result {
        Ok(response) => {
            tracing::info!(
                status = response.status().as_u16(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "done"
            );
            response
        }
        Err(e) => {
            crate::request_log::failed(
                e.status.as_u16(),
                e.code,
                &e.message,
                started.elapsed().as_micros() as u64,
            );
            e.into_response()
        }
    };
    response
        .headers_mut()
        .insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION));
    response
}

async fn process(app: Arc<AppState>, route: Route, request: Request) -> OciResult<Response> {
    if public::addresses_public(&app, &request) {
        return public::process(app, route, request).await;
    }
    let claims = auth::authenticate(&app, request.headers())?;
    let scope = auth::target_registry(request.headers(), &claims)?;
    crate::request_log::record_registry(scope.account.as_str(), scope.region.as_str());
    let transport = crate::listener::Transport::of(request.extensions());
    let caller = app.caller_for_token(&claims, transport);
    let (parts, body) = request.into_parts();
    let params = query(&parts.uri)?;
    authorize(&app, &caller, &scope, &route, &parts.method, &params)?;
    let ctx = Ctx { app, caller, scope };
    serve(ctx, route, parts, body, &params).await
}

/// Serves a request the caller may make, on the registry `ctx` names.
pub(crate) async fn serve(
    ctx: Ctx,
    route: Route,
    parts: axum::http::request::Parts,
    body: Body,
    params: &Params,
) -> OciResult<Response> {
    let headers = &parts.headers;
    let head = parts.method == Method::HEAD;
    match (route, parts.method.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(json_response(StatusCode::OK, "{}")),
        (Route::Catalog, Method::GET | Method::HEAD) => tags::catalog(ctx, params).await,
        (Route::Tags(name), Method::GET | Method::HEAD) => tags::list(ctx, &name, params).await,
        (Route::Manifest(name, r), Method::GET | Method::HEAD) => {
            manifests::get(ctx, &name, &r, head, headers).await
        }
        (Route::Manifest(name, r), Method::PUT) => {
            manifests::put(ctx, &name, &r, headers, body).await
        }
        (Route::Manifest(name, r), Method::DELETE) => manifests::delete(ctx, &name, &r).await,
        (Route::Blob(name, d), Method::GET | Method::HEAD) => {
            blobs::get(ctx, &name, &d, head, headers).await
        }
        (Route::Blob(name, d), Method::DELETE) => blobs::delete(ctx, &name, &d).await,
        (Route::UploadStart(name), Method::POST) => {
            uploads::start(ctx, &name, params, headers, body).await
        }
        (Route::Upload(name, id), Method::GET | Method::HEAD) => {
            uploads::status(ctx, &name, &id).await
        }
        (Route::Upload(name, id), Method::PATCH) => {
            uploads::patch(ctx, &name, &id, headers, body).await
        }
        (Route::Upload(name, id), Method::PUT) => {
            uploads::put(ctx, &name, &id, params, headers, body).await
        }
        (Route::Upload(name, id), Method::DELETE) => uploads::cancel(ctx, &name, &id).await,
        (Route::Referrers(name, d), Method::GET | Method::HEAD) => {
            referrers::list(ctx, &name, &d, params).await
        }
        (Route::Unknown, _) => Err(OciError::no_route()),
        (_, method) => Err(OciError::method_not_allowed(method.as_str())),
    }
}

/// The registry request a route and method make, or `None` for those that
/// need no decision (`/v2/` itself, the catalog, unknown routes).
pub(crate) fn registry_request(
    route: &Route,
    method: &Method,
    params: &Params,
) -> Option<RegistryRequest> {
    use RegistryRequest as R;
    Some(match (route, method) {
        (Route::Tags(_), _) => R::ListTags,
        (Route::Manifest(..), &Method::PUT) => R::PushManifest,
        (Route::Manifest(..) | Route::Blob(..), &Method::DELETE) => R::Delete,
        (Route::Manifest(..) | Route::Referrers(..), _) => R::PullManifest,
        (Route::Blob(..), &Method::HEAD) => R::CheckBlob,
        (Route::Blob(..), _) => R::PullBlob,
        (Route::UploadStart(_), &Method::POST) if params.contains_key("digest") => {
            R::MonolithicUpload
        }
        (Route::UploadStart(_), _) => R::StartUpload,
        (Route::Upload(..), &Method::PATCH) => R::UploadChunk,
        (Route::Upload(..), &Method::PUT) => R::CompleteUpload,
        (Route::Upload(..), _) => R::StartUpload,
        (Route::Base | Route::Catalog | Route::Unknown, _) => return None,
    })
}

/// Asks the domain whether the caller may make this request: the route and
/// method name the registry request, the domain's table its ECR actions.
/// The catalog is filtered per repository instead (`tags::catalog`).
fn authorize(
    app: &AppState,
    caller: &Caller,
    scope: &Scope,
    route: &Route,
    method: &Method,
    params: &Params,
) -> OciResult<()> {
    let Some(request) = registry_request(route, method, params) else {
        return Ok(());
    };
    let mount_from = match route {
        Route::UploadStart(_) if *method == Method::POST => params
            .get("from")
            .map(String::as_str)
            .filter(|f| !f.is_empty()),
        _ => None,
    };
    app.ecr
        .authorize_registry_request(caller, request, scope, route.repository(), mount_from)?;
    Ok(())
}

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An answer without a body, with the given headers (invalid values are
/// skipped: every value passed here is built from parsed names and digests).
pub(crate) fn empty_response(status: StatusCode, headers: &[(&'static str, String)]) -> Response {
    let mut response = status.into_response();
    let map = response.headers_mut();
    map.insert(
        axum::http::header::CONTENT_LENGTH,
        HeaderValue::from_static("0"),
    );
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            map.insert(*name, v);
        }
    }
    response
}

/// Query string parameters.
pub type Params = HashMap<String, String>;

/// The query string's parameters (the last of a repeated name wins).
pub(crate) fn query(uri: &Uri) -> OciResult<Params> {
    axum::extract::Query::<Params>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                format!("malformed query string: {e}"),
            )
        })
}

/// A request body as the blob store takes it: streamed, never buffered.
pub(crate) fn byte_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// Whether a request carries body bytes.
pub(crate) fn has_body(headers: &HeaderMap, body: &Body) -> bool {
    use axum::body::HttpBody;
    let declared_empty = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0");
    !declared_empty && !body.is_end_stream()
}

//! The control plane's way in: who is calling is settled from the request's
//! head before its body is read, and the body is buffered within the
//! process-wide byte budget ([`crate::budget`]).
//!
//! In strict mode the head proves (SigV4, `auth::sigv4::verify_head`) the
//! Authorization header's shape, date and scope, that the access key is
//! known and, when the client signed `x-amz-content-sha256` (botocore and
//! the Rust SDK do not, the CLI's S3 commands do), the signature itself.
//! Only then is the body read; it is checked against the signed hash last.
//! A body without a declared hash is hashed once read and the signature
//! checked then: the protocol leaves no earlier point. In permissive mode
//! (unsafe outside tests) anyone passes the head, so anyone's body is read,
//! within the same limits.
//!
//! A body larger than `--max-api-body` is refused with
//! `413 RequestEntityTooLargeException` as soon as its `Content-Length` (or
//! the bytes received) says so. When the budget (`--api-body-budget`) cannot
//! hold a body, the answer is `400 ThrottlingException` "Rate exceeded", the
//! error AWS's JSON services send when they shed load: every AWS SDK retries
//! it with backoff, where a 503 would be retried without the throttling
//! token bucket.

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use futures_util::StreamExt;

use super::error::ApiError;
use crate::auth::sigv4::{self, HeadVerified, RequestParts, SecretLookup};
use crate::budget::Reservation;
use crate::config::AuthMode;
use crate::ecr::caller::Caller;
use crate::ecr::names::Region;
use crate::state::AppState;

/// A request whose caller is known, with its body held in the budget.
pub struct Authenticated {
    pub parts: Parts,
    pub body: Bytes,
    pub caller: Caller,
    /// The body's share of the budget, given back when this is dropped.
    _reservation: Reservation,
}

/// The head's verdict, waiting for the body in strict mode.
enum Pending {
    Strict(Box<HeadVerified>),
    Permissive {
        access_key_id: String,
        region: String,
    },
}

/// Authenticates `request` for `service` (`ecr` or `sts`), reading its body
/// only once the head allows it.
pub async fn read_authenticated(
    app: &AppState,
    request: axum::extract::Request,
    service: &str,
) -> Result<Authenticated, ApiError> {
    let (parts, body) = request.into_parts();
    let pending = check_head(app, &parts, service)?;
    let (body, reservation) = read_body(app, &parts, body).await?;
    let (access_key_id, region) = match pending {
        Pending::Strict(head) => {
            let verified = head.finish(&body)?;
            (verified.access_key_id, verified.region)
        }
        Pending::Permissive {
            access_key_id,
            region,
        } => (access_key_id, region),
    };
    let caller = caller(app, &parts, &access_key_id, &region)?;
    Ok(Authenticated {
        parts,
        body,
        caller,
        _reservation: reservation,
    })
}

fn request_parts<'a>(parts: &'a Parts, body: &'a [u8]) -> RequestParts<'a> {
    RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
    }
}

fn check_head(app: &AppState, parts: &Parts, service: &str) -> Result<Pending, ApiError> {
    let req = request_parts(parts, &[]);
    match app.config.auth {
        AuthMode::Strict => {
            // Signature age is a matter between the client's clock and the
            // real one: ecrd's adjustable clock (moved by tests to age
            // images) must not make every SDK call fail with "Signature
            // expired".
            let now = time::OffsetDateTime::now_utc();
            let lookup = |key: &str| {
                app.credentials.get(key).map(|c| SecretLookup {
                    secret_access_key: c.secret_access_key.clone(),
                    session_token: c.session_token.clone(),
                })
            };
            let head = sigv4::verify_head(&req, service, now, &lookup)?;
            Ok(Pending::Strict(Box::new(head)))
        }
        AuthMode::Permissive => {
            let (access_key_id, region) =
                sigv4::parse_scope(&req).unwrap_or_else(|| ("test".into(), "us-east-1".into()));
            Ok(Pending::Permissive {
                access_key_id,
                region,
            })
        }
    }
}

/// Reads the body within `--max-api-body` and the shared budget.
async fn read_body(
    app: &AppState,
    parts: &Parts,
    body: Body,
) -> Result<(Bytes, Reservation), ApiError> {
    let limit = app.config.max_api_body;
    let mut reservation = app.api_bodies.reserve_none();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(length) = declared {
        if length > limit {
            return Err(ApiError::body_too_large(limit));
        }
        if !reservation.grow(length) {
            return Err(throttled());
        }
    }
    let mut buffer = Vec::with_capacity(declared.unwrap_or(0));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::serialization(format!("The request body was not received completely: {e}"))
        })?;
        let total = buffer.len() + chunk.len();
        if total > limit {
            return Err(ApiError::body_too_large(limit));
        }
        if total > reservation.len() && !reservation.grow(total - reservation.len()) {
            return Err(throttled());
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok((Bytes::from(buffer), reservation))
}

/// The answer when the body budget is spent.
fn throttled() -> ApiError {
    tracing::warn!("control-plane body budget spent; request throttled (--api-body-budget)");
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "ThrottlingException",
        "Rate exceeded",
    )
}

/// The caller as the domain sees it.
fn caller(
    app: &AppState,
    parts: &Parts,
    access_key_id: &str,
    region: &str,
) -> Result<Caller, ApiError> {
    let region = Region::parse(region).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidSignatureException",
            "Credential should be scoped to a valid region. ",
        )
    })?;
    let transport = crate::listener::Transport::of(&parts.extensions);
    Ok(app.caller_for_key(access_key_id, region, transport))
}

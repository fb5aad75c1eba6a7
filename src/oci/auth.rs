//! Registry login, the way ECR does it: HTTP Basic with user `AWS` and the
//! password GetAuthorizationToken issued (`aws ecr get-login-password`).
//!
//! The password is a signed token naming an account and a region; the
//! registry a request reaches is the one its host names
//! (`<account>.dkr.ecr.<region>.<anything>`, as in ECR) or else the token's
//! own; another account's registry opens only where its policies allow the
//! token's principal (`ecr::authorize`).
//! Without valid credentials the answer is 401 with the challenge ECR sends:
//! `Www-Authenticate: Basic realm="<scheme>://<host>/",service="ecr.amazonaws.com"`.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use regex::Regex;

use super::error::{OciError, OciResult};
use crate::auth::token::{TokenClaims, TokenError};
use crate::ecr::names::{AccountId, Scope};
use crate::state::AppState;

/// ECR's message for an expired registry password.
pub const EXPIRED_MESSAGE: &str =
    "Your authorization token has expired. Reauthenticate and try again.";

static ECR_HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.").expect("host pattern compiles")
});

/// The request's host, as the client addressed it.
pub fn request_host(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|h| !h.is_empty())
}

/// The Basic realm: the registry's own URL as the client reached it.
pub(crate) fn realm(app: &AppState, headers: &HeaderMap) -> String {
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|s| *s == "https" || *s == "http")
        .unwrap_or("http");
    let host = request_host(headers)
        .map(str::to_string)
        .unwrap_or_else(|| format!("localhost:{}", app.config.port));
    format!("{scheme}://{host}/")
}

/// The user and password of `Basic` credentials (`base64(user:password)`).
pub(crate) fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Proves who is calling, from the Basic credentials.
pub fn authenticate(app: &AppState, headers: &HeaderMap) -> OciResult<TokenClaims> {
    let unauthorized =
        |code, message: &str| OciError::unauthorized(code, message, &realm(app, headers));
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized("UNAUTHORIZED", "authentication required"));
    };
    let value = value.to_str().unwrap_or("");
    let encoded = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => rest.trim(),
        _ => {
            return Err(unauthorized(
                "UNAUTHORIZED",
                "authentication required: use Basic credentials with user 'AWS' and the password from 'aws ecr get-login-password'",
            ))
        }
    };
    let Some((user, password)) = basic_credentials(encoded) else {
        return Err(unauthorized("UNAUTHORIZED", "malformed Basic credentials"));
    };
    if user != "AWS" {
        return Err(unauthorized("UNAUTHORIZED", "the user name must be 'AWS'"));
    }
    let claims = match app.tokens.verify(&password, app.ecr.clock.now()) {
        // An ECR Public password opens the public registry only.
        Ok(claims) if claims.region.is_public() => {
            return Err(unauthorized(
                "UNAUTHORIZED",
                "The authorization token is for Amazon ECR Public; use 'aws ecr get-login-password' for this registry.",
            ))
        }
        Ok(claims) => claims,
        Err(TokenError::Expired) => return Err(unauthorized("DENIED", EXPIRED_MESSAGE)),
        Err(TokenError::Invalid) => {
            return Err(unauthorized(
                "UNAUTHORIZED",
                "The authorization token is invalid. Reauthenticate and try again.",
            ))
        }
    };
    Ok(claims)
}

/// The registry a request addresses: an ECR-shaped host
/// (`<account>.dkr.ecr.<region>.<anything>`) names it, as in ECR; any other
/// host means the caller's own. A password is issued for one region and
/// opens registries of that region only; which accounts it opens is for
/// their policies to say (`ecr::authorize`).
pub fn target_registry(headers: &HeaderMap, claims: &TokenClaims) -> OciResult<Scope> {
    let Some(caps) = request_host(headers).and_then(|h| ECR_HOST.captures(h)) else {
        return Ok(claims.scope());
    };
    let (account, region) = (&caps[1], &caps[2]);
    if region != claims.region.as_str() {
        return Err(OciError::denied(format!(
            "Your authorization token is for the registry '{}' in '{}' and does not grant access to the registry '{account}' in '{region}'",
            claims.account, claims.region
        )));
    }
    let account = AccountId::parse(account).map_err(OciError::denied)?;
    Ok(Scope::new(account, claims.region.clone()))
}

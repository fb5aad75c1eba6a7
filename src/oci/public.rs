//! The ECR Public registry on `/v2/`: image names are
//! `<alias>/<repository>`, anyone may pull, and pushes need the password of
//! `aws ecr-public get-login-password` (user `AWS`).
//!
//! A request reaches it on `--public-port`, or on the main port when its
//! Host is the public host (`--public-host`) or `public.ecr.aws`. As
//! `public.ecr.aws` does, every request needs a bearer token: without one
//! the answer is 401 with `Www-Authenticate: Bearer realm="<scheme>://<host>/token",
//! service="public.ecr.aws",scope="aws"`; the token endpoint hands out an
//! anonymous pull token to anyone, and a token carrying the caller's
//! identity for Basic credentials. docker, skopeo, podman and crane follow
//! this flow by themselves, logged in or not.
//!
//! The alias (the name's first segment) is resolved to its account; the
//! rest of the name is a repository of that account's public registry
//! (`Scope::public`), served by the same handlers as the private registry.
//! Writes are decided by the domain with ECR Public's actions; pulls need
//! no decision.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{OciError, OciResult};
use super::path::Route;
use super::{auth, query, registry_request, serve, Ctx};
use crate::auth::token::{Bearer, TokenClaims, TokenError};
use crate::ecr::authorize::PublicAccess;
use crate::ecr::caller::Caller;
use crate::ecr::names::{RepositoryName, Scope};
use crate::state::AppState;

/// Marks a request that arrived on the public registry's own port.
#[derive(Debug, Clone, Copy)]
pub struct PublicPort;

/// The host name that always means the public registry.
pub const PUBLIC_HOST: &str = "public.ecr.aws";

/// Whether a request is for the public registry: it came in on the public
/// port, or names the public host.
pub fn addresses_public(app: &AppState, request: &Request) -> bool {
    if request.extensions().get::<PublicPort>().is_some() {
        return true;
    }
    let Some(host) = auth::request_host(request.headers()) else {
        return false;
    };
    let bare = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host.eq_ignore_ascii_case(app.ecr.public_host()) || bare.eq_ignore_ascii_case(PUBLIC_HOST)
}

/// The bearer challenge, naming the token endpoint on the host the client used.
fn challenge(app: &AppState, headers: &HeaderMap, code: &'static str, message: &str) -> OciError {
    let realm = format!("{}token", auth::realm(app, headers));
    OciError::new(StatusCode::UNAUTHORIZED, code, message).with_header(
        "www-authenticate",
        &format!("Bearer realm=\"{realm}\",service=\"{PUBLIC_HOST}\",scope=\"aws\""),
    )
}

/// Who a public-registry request is from: `None` for an anonymous token.
fn authenticate(app: &AppState, headers: &HeaderMap) -> OciResult<Option<TokenClaims>> {
    let missing = || challenge(app, headers, "UNAUTHORIZED", "authentication required");
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let (scheme, credentials) = value.split_once(' ').ok_or_else(missing)?;
    let now = app.ecr.clock.now();
    let verdict = if scheme.eq_ignore_ascii_case("bearer") {
        app.tokens.verify_bearer(credentials.trim(), now)
    } else if scheme.eq_ignore_ascii_case("basic") {
        basic_password(credentials)
            .ok_or(TokenError::Invalid)
            .and_then(|password| app.tokens.verify(&password, now).map(Bearer::Claims))
    } else {
        return Err(missing());
    };
    match verdict {
        Ok(Bearer::Anonymous) => Ok(None),
        Ok(Bearer::Claims(claims)) if claims.region.is_public() => Ok(Some(claims)),
        Ok(Bearer::Claims(_)) => Err(challenge(
            app,
            headers,
            "UNAUTHORIZED",
            "The authorization token is for a private registry; use 'aws ecr-public get-login-password' for this registry.",
        )),
        Err(TokenError::Expired) => Err(challenge(app, headers, "DENIED", auth::EXPIRED_MESSAGE)),
        Err(TokenError::Invalid) => Err(challenge(
            app,
            headers,
            "UNAUTHORIZED",
            "The authorization token is invalid. Reauthenticate and try again.",
        )),
    }
}

/// The password of `Basic` credentials whose user is `AWS`.
fn basic_password(encoded: &str) -> Option<String> {
    let (user, password) = auth::basic_credentials(encoded)?;
    (user == "AWS").then_some(password)
}

/// Splits `<alias>/<repository>` and finds the alias's registry.
fn resolve(app: &AppState, name: &str) -> OciResult<(Scope, String)> {
    let unknown = || {
        OciError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("The repository with name '{name}' does not exist in the public registry"),
        )
    };
    let (alias, repository) = name.split_once('/').ok_or_else(unknown)?;
    let account = app
        .ecr
        .public_account_of_alias(alias)?
        .ok_or_else(unknown)?;
    Ok((Scope::public(account), repository.to_string()))
}

/// The caller of an anonymous pull: nobody's principal. Anonymous requests
/// reach the pull handlers only, which make no access decision of their own.
fn anonymous(scope: &Scope, transport: crate::listener::Transport) -> Caller {
    Caller {
        account: scope.account.clone(),
        region: scope.region.clone(),
        principal_arn: "*".to_string(),
        user_id: "anonymous".to_string(),
        access_key_id: String::new(),
        source_ip: transport.source_ip,
        secure_transport: transport.secure,
        tags: Default::default(),
        identity_policy: None,
    }
}

/// Serves one request of the public registry.
pub async fn process(app: Arc<AppState>, route: Route, request: Request) -> OciResult<Response> {
    let claims = authenticate(&app, request.headers())?;
    let transport = crate::listener::Transport::of(request.extensions());
    let (parts, body) = request.into_parts();
    let mut params = query(&parts.uri)?;
    let (scope, route, alias) = match (&route, route.repository()) {
        (Route::Base, _) => {
            return Ok(super::json_response(StatusCode::OK, "{}"));
        }
        (_, Some(name)) => {
            let (scope, repository) = resolve(&app, name)?;
            let alias = name[..name.len() - repository.len() - 1].to_string();
            (scope, route.clone().with_repository(repository), alias)
        }
        // No catalog: public.ecr.aws lists no repositories either.
        _ => return Err(OciError::no_route()),
    };
    crate::request_log::record_registry(scope.account.as_str(), scope.region.as_str());
    let request_kind = registry_request(&route, &parts.method, &params);
    let caller = claims
        .as_ref()
        .map(|claims| app.caller_for_token(claims, transport));
    let access = match request_kind {
        Some(kind) => {
            app.ecr
                .authorize_public_request(caller.as_ref(), kind, &scope, route.repository())?
        }
        // A route that names no registry request (an unknown one): only a
        // logged-in caller hears that it is unknown.
        None if caller.is_some() => PublicAccess::Allowed,
        None => PublicAccess::NeedsLogin,
    };
    if access == PublicAccess::NeedsLogin {
        return Err(challenge(
            &app,
            &parts.headers,
            "UNAUTHORIZED",
            "authentication required: log in with the password from 'aws ecr-public get-login-password' to push",
        ));
    }
    let caller = caller.unwrap_or_else(|| anonymous(&scope, transport));
    // A mount names its source the way the client sees it, alias first;
    // only a source in the same public registry can be mounted.
    if let Some(from) = params.get("from").cloned() {
        match resolve(&app, &from) {
            Ok((from_scope, repository)) if from_scope == scope => {
                params.insert("from".to_string(), repository);
            }
            _ => {
                params.remove("from");
                params.remove("mount");
            }
        }
    }
    let ctx = Ctx { app, caller, scope };
    let mut response = serve(ctx, route, parts, body, &params).await?;
    // The handlers' `Location`s name the repository without the alias the
    // client's paths carry (an upload's next PATCH, a pushed manifest).
    let headers = response.headers_mut();
    if let Some(location) = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.strip_prefix("/v2/"))
        .map(|rest| format!("/v2/{alias}/{rest}"))
    {
        if let Ok(value) = HeaderValue::from_str(&location) {
            headers.insert(header::LOCATION, value);
        }
    }
    Ok(response)
}

/// `GET /token`: the public registry's token endpoint. Basic credentials
/// (user `AWS`, an ECR Public password) get a token that acts as their
/// principal; no credentials get an anonymous pull token.
pub async fn token(State(app): State<Arc<AppState>>, request: Request) -> Response {
    if !addresses_public(&app, &request) {
        return OciError::no_route().into_response();
    }
    let headers = request.headers();
    let now = app.ecr.clock.now();
    let issued = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => app.tokens.issue_anonymous(now),
        Some(value) => {
            let password = value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
                .and_then(|(_, encoded)| basic_password(encoded));
            match password.map(|p| (app.tokens.verify(&p, now), p)) {
                Some((Ok(claims), password)) if claims.region.is_public() => {
                    (password, time::OffsetDateTime::from_unix_timestamp(claims.expires).unwrap_or(now))
                }
                Some((Err(TokenError::Expired), _)) => {
                    return OciError::new(StatusCode::UNAUTHORIZED, "DENIED", auth::EXPIRED_MESSAGE)
                        .into_response()
                }
                _ => {
                    return OciError::new(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHORIZED",
                        "The credentials are not an Amazon ECR Public password (user 'AWS', password from 'aws ecr-public get-login-password').",
                    )
                    .into_response()
                }
            }
        }
    };
    let (token, expires_at) = issued;
    let expires_in = (expires_at - now).whole_seconds().max(0);
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": expires_in,
        "issued_at": now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    });
    super::json_response(StatusCode::OK, body.to_string())
}

/// `GET /_ecrd/public/logos/<account>/<repository>`: a public repository's
/// logo (catalog data's `logoUrl`), to anyone.
pub async fn logo(
    State(app): State<Arc<AppState>>,
    Path((account, repository)): Path<(String, String)>,
) -> Response {
    let found = (|| {
        let account = crate::ecr::names::AccountId::parse(&account).ok()?;
        let name = RepositoryName::parse(&repository).ok()?;
        let catalog = app
            .ecr
            .repository_catalog(&Scope::public(account), &name)
            .ok()?;
        catalog.logo()
    })();
    let Some(bytes) = found else {
        return (StatusCode::NOT_FOUND, "no such logo").into_response();
    };
    let media_type = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF8") {
        "image/gif"
    } else {
        "application/octet-stream"
    };
    let mut response = (StatusCode::OK, Body::from(bytes)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    response
}

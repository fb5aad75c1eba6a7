//! Blobs: `GET|HEAD|DELETE /v2/<name>/blobs/<digest>` and the signed layer
//! URLs `GET /_ecrd/layers/<account>/<region>/<digest>?repository=&expires=&signature=`.
//!
//! Like ECR, a blob GET answers `307 Temporary Redirect` to a short-lived URL
//! that needs no other credentials (ECR's are presigned S3 URLs; ecrd signs
//! its own, the same ones GetDownloadUrlForLayer hands out, or with
//! `--blobs s3://...` presigns the bucket's). With
//! `--blob-redirect=false` the bytes are served on `/v2/` directly. A HEAD
//! always answers directly. Both serve single `Range`s (RFC 9110 §14):
//! `206` with `Content-Range`, `416` when no byte is satisfiable; anything
//! else (several ranges, a malformed header) is ignored and the whole blob
//! is served, as the RFC allows.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{OciError, OciResult};
use super::{empty_response, path, Ctx};
use crate::auth::token::TokenError;
use crate::digest::Digest;
use crate::ecr::images::LayerDeletion;
use crate::ecr::names::{AccountId, Region, RepositoryName, Scope};
use crate::ecr::Ecr;
use crate::state::AppState;
use crate::store::blobs::BlobUrl;

/// `GET|HEAD /v2/<name>/blobs/<digest>`.
pub async fn get(
    ctx: Ctx,
    name: &str,
    digest: &str,
    head: bool,
    headers: &HeaderMap,
) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let digest = path::digest(digest)?;
    let ecr = &ctx.app.ecr;
    // Not cached yet under a pull through cache rule: served while it is
    // fetched (a ranged read waits for the whole blob instead).
    if !head && !headers.contains_key(axum::http::header::RANGE) {
        if let Some(streamed) = ecr
            .stream_blob_through(&ctx.caller, &ctx.scope, &repo, &digest)
            .await?
        {
            let mut response = Response::new(Body::from_stream(streamed.body));
            let h = response.headers_mut();
            if let Some(length) = streamed.length {
                h.insert(axum::http::header::CONTENT_LENGTH, length.into());
            }
            h.insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(value) = HeaderValue::from_str(&digest.to_string()) {
                h.insert("docker-content-digest", value);
            }
            return Ok(response);
        }
    }
    ecr.pull_through_blob(&ctx.caller, &ctx.scope, &repo, &digest)
        .await?;
    let Some(size) = ecr.layer_size(&ctx.scope, &repo, &digest).await? else {
        return Err(OciError::blob_unknown(&digest.to_string()));
    };
    if head {
        return Ok(empty_response(
            StatusCode::OK,
            &[
                ("content-length", size.to_string()),
                ("docker-content-digest", digest.to_string()),
                ("content-type", "application/octet-stream".to_string()),
                ("accept-ranges", "bytes".to_string()),
                ("etag", format!("\"{digest}\"")),
            ],
        ));
    }
    if ctx.app.config.blob_redirect {
        let location = match ecr.blob_url(&digest, size).await? {
            // S3 blobs: straight to the bucket, as ECR redirects.
            BlobUrl::Presigned(url) => url,
            BlobUrl::Missing => return Err(OciError::blob_unknown(&digest.to_string())),
            BlobUrl::Ecrd => ctx.app.tokens.download_path(
                &ctx.scope,
                repo.as_str(),
                &digest.to_string(),
                ecr.clock.now(),
            ),
        };
        return Ok(empty_response(
            StatusCode::TEMPORARY_REDIRECT,
            &[
                ("location", location),
                ("docker-content-digest", digest.to_string()),
            ],
        ));
    }
    serve(ecr, &ctx.scope, &repo, &digest, size, headers).await
}

/// `DELETE /v2/<name>/blobs/<digest>`: unlinks the blob from the repository.
/// A blob an image of the repository uses is not deleted: 405 UNSUPPORTED
/// (the distribution spec's answer when a blob cannot be deleted), naming
/// the images.
pub async fn delete(ctx: Ctx, name: &str, digest: &str) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let digest = path::digest(digest)?;
    match ctx.app.ecr.delete_layer(&ctx.scope, &repo, &digest)? {
        LayerDeletion::Unlinked => Ok(empty_response(StatusCode::ACCEPTED, &[])),
        LayerDeletion::NotLinked => Err(OciError::blob_unknown(&digest.to_string())),
        LayerDeletion::InUse(images) => {
            let images: Vec<String> = images.iter().map(ToString::to_string).collect();
            Err(OciError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                format!(
                    "The blob '{digest}' is used by images of the repository '{repo}' and cannot be deleted: [{}]; delete those images first",
                    images.join(", ")
                ),
            )
            .with_detail(serde_json::json!({ "digest": digest.to_string(), "images": images })))
        }
    }
}

/// What a `Range` header asks of a blob of a known size.
#[derive(Debug, PartialEq, Eq)]
#[doc(hidden)]
pub enum ByteRange {
    Whole,
    /// `start` inclusive, `end` exclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// Public for the fuzz target (`fuzz/fuzz_targets/ranges.rs`).
#[doc(hidden)]
pub fn byte_range(header: Option<&HeaderValue>, size: u64) -> ByteRange {
    let Some(spec) = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.trim().strip_prefix("bytes="))
    else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Part(size.saturating_sub(n), size),
            None => ByteRange::Whole,
        },
        (start, "") => match number(start) {
            Some(s) if s >= size => ByteRange::Unsatisfiable,
            Some(s) => ByteRange::Part(s, size),
            None => ByteRange::Whole,
        },
        (start, end) => match (number(start), number(end)) {
            (Some(s), Some(e)) if s <= e => {
                if s >= size {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Part(s, e.min(size - 1) + 1)
                }
            }
            _ => ByteRange::Whole,
        },
    }
}

/// Streams a blob (or the range asked for) from the store.
async fn serve(
    ecr: &Ecr,
    scope: &Scope,
    repo: &RepositoryName,
    digest: &Digest,
    size: u64,
    headers: &HeaderMap,
) -> OciResult<Response> {
    let (status, start, end) = match byte_range(headers.get(header::RANGE), size) {
        ByteRange::Whole => (StatusCode::OK, 0, size),
        ByteRange::Part(start, end) => (StatusCode::PARTIAL_CONTENT, start, end),
        ByteRange::Unsatisfiable => return Err(OciError::range_not_satisfiable(size)),
    };
    let Some(stream) = ecr
        .read_layer(scope, repo, digest, start, Some(end))
        .await?
    else {
        return Err(OciError::blob_unknown(&digest.to_string()));
    };
    let mut response = (status, Body::from_stream(stream)).into_response();
    let h = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("content-length", (end - start).to_string());
    set("content-type", "application/octet-stream".to_string());
    set("docker-content-digest", digest.to_string());
    set("accept-ranges", "bytes".to_string());
    set("etag", format!("\"{digest}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            "content-range",
            format!("bytes {start}-{}/{size}", end.saturating_sub(1)),
        );
    }
    Ok(response)
}

/// `GET|HEAD /_ecrd/layers/<account>/<region>/<digest>?repository=&expires=&signature=`:
/// a layer download URL. The signature is the only credential; a tampered
/// or expired URL is 403, as S3 answers a bad presigned URL.
pub async fn download(
    State(app): State<Arc<AppState>>,
    Path((account, region, digest)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    crate::request_log::answered_by("oci");
    crate::request_log::record_str("route", "layer_download");
    crate::request_log::record_display("account", &account);
    crate::request_log::record_display("region", &region);
    crate::request_log::record_display("digest", &digest);
    let started = std::time::Instant::now();
    let result = download_inner(&app, &account, &region, &digest, &query, &headers).await;
    match result {
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
    }
}

async fn download_inner(
    app: &AppState,
    account: &str,
    region: &str,
    digest: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> OciResult<Response> {
    let refused = || OciError::denied("The request signature does not match the URL");
    let (Ok(account), Ok(region)) = (AccountId::parse(account), Region::parse_stored(region))
    else {
        return Err(refused());
    };
    let scope = Scope::new(account, region);
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    let repository = param("repository");
    let expires: i64 = param("expires").parse().map_err(|_| refused())?;
    let now = app.ecr.clock.now();
    match app
        .tokens
        .verify_download(&scope, repository, digest, expires, param("signature"), now)
    {
        Ok(()) => {}
        Err(TokenError::Invalid) => return Err(refused()),
        Err(TokenError::Expired) => return Err(OciError::denied("Request has expired")),
    }
    let repo = path::repository(repository)?;
    let digest = path::digest(digest)?;
    let Some(size) = app.ecr.layer_size(&scope, &repo, &digest).await? else {
        return Err(OciError::blob_unknown(&digest.to_string()));
    };
    serve(&app.ecr, &scope, &repo, &digest, size, headers).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn r(s: &str, size: u64) -> ByteRange {
        byte_range(Some(&HeaderValue::from_str(s).unwrap()), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(byte_range(None, 10), ByteRange::Whole);
        assert_eq!(r("bytes=0-4", 10), ByteRange::Part(0, 5));
        assert_eq!(r("bytes=5-", 10), ByteRange::Part(5, 10));
        assert_eq!(r("bytes=-3", 10), ByteRange::Part(7, 10));
        assert_eq!(r("bytes=-30", 10), ByteRange::Part(0, 10));
        assert_eq!(r("bytes=8-100", 10), ByteRange::Part(8, 10));
        assert_eq!(r("bytes=10-", 10), ByteRange::Unsatisfiable);
        assert_eq!(r("bytes=10-20", 10), ByteRange::Unsatisfiable);
        assert_eq!(r("bytes=-0", 10), ByteRange::Unsatisfiable);
        assert_eq!(r("bytes=5-2", 10), ByteRange::Whole);
        assert_eq!(r("bytes=0-1,4-5", 10), ByteRange::Whole);
        assert_eq!(r("items=0-1", 10), ByteRange::Whole);
        assert_eq!(r("bytes=a-b", 10), ByteRange::Whole);
    }
}

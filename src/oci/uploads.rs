//! Blob uploads (OCI Distribution Spec v1.1, "Pushing blobs"):
//!
//! - `POST /v2/<name>/blobs/uploads/` opens a session (202, `Location`,
//!   `Range: 0-0`, `Docker-Upload-UUID`); with `?digest=` and a body it is a
//!   whole monolithic upload (201); with `?mount=<digest>[&from=<repo>]` it
//!   links a blob the registry already holds (201), else opens a session.
//! - `PATCH .../uploads/<id>` appends a chunk, streamed (no
//!   `Content-Range`) or placed (`Content-Range: <start>-<end>`, which must
//!   start where the upload ends, else 416 with the current `Range`).
//! - `PUT .../uploads/<id>?digest=` appends an optional last chunk and
//!   finishes (201, `Location` of the blob, `Docker-Content-Digest`).
//! - `GET` tells how far an upload got (204 + `Range`); `DELETE` drops it.
//!
//! Every answer about an open session carries `Location` and
//! `Range: 0-<last byte>` (docker needs both after each PATCH); with nothing
//! received yet the range reads `0-0`, as the reference registry sends it.
//! Bodies stream straight into the blob store, which hashes as they arrive.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::error::{OciError, OciResult};
use super::{byte_stream, empty_response, has_body, path, Ctx, Params};
use crate::digest::Digest;
use crate::ecr::error::{EcrError, ErrorKind};
use crate::ecr::names::RepositoryName;

fn upload_location(repo: &RepositoryName, id: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

fn range_value(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// The answer about an open session.
fn session_response(status: StatusCode, repo: &RepositoryName, id: &str, size: u64) -> Response {
    empty_response(
        status,
        &[
            ("location", upload_location(repo, id)),
            ("range", range_value(size)),
            ("docker-upload-uuid", id.to_string()),
        ],
    )
}

/// The answer to a finished upload or a mount.
fn blob_created(repo: &RepositoryName, digest: &Digest) -> Response {
    empty_response(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{repo}/blobs/{digest}")),
            ("docker-content-digest", digest.to_string()),
        ],
    )
}

/// `POST /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]`.
pub async fn start(
    ctx: Ctx,
    name: &str,
    params: &Params,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let ecr = &ctx.app.ecr;
    if let Some(mount) = params.get("mount") {
        let digest = path::digest(mount)?;
        let from = match params.get("from").filter(|f| !f.is_empty()) {
            Some(f) => Some(path::repository(f)?),
            None => None,
        };
        if ecr
            .mount_layer(&ctx.scope, &repo, &digest, from.as_ref())
            .await?
            .is_some()
        {
            return Ok(blob_created(&repo, &digest));
        }
        // Not mountable: the client uploads instead, in a new session.
        let id = ecr.start_upload(&ctx.scope, &repo).await?;
        return Ok(session_response(StatusCode::ACCEPTED, &repo, &id, 0));
    }
    if let Some(digest) = params.get("digest") {
        let digest = path::digest(digest)?;
        let id = ecr.start_upload(&ctx.scope, &repo).await?;
        if has_body(headers, &body) {
            if let Err(e) = ecr
                .append_upload(&ctx.scope, &repo, &id, None, byte_stream(body))
                .await
            {
                // A monolithic upload has no session for the client to
                // resume: drop it, so nothing half-received lingers.
                let _ = ecr.cancel_upload(&ctx.scope, &repo, &id).await;
                return Err(body_error(e));
            }
        }
        ecr.complete_upload(&ctx.scope, &repo, &id, &digest).await?;
        return Ok(blob_created(&repo, &digest));
    }
    let id = ecr.start_upload(&ctx.scope, &repo).await?;
    Ok(session_response(StatusCode::ACCEPTED, &repo, &id, 0))
}

/// `GET /v2/<name>/blobs/uploads/<id>`.
pub async fn status(ctx: Ctx, name: &str, id: &str) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let id = path::upload_id(id)?;
    let size = ctx.app.ecr.upload_size(&ctx.scope, &repo, id).await?;
    Ok(session_response(StatusCode::NO_CONTENT, &repo, id, size))
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`.
pub async fn cancel(ctx: Ctx, name: &str, id: &str) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let id = path::upload_id(id)?;
    ctx.app.ecr.cancel_upload(&ctx.scope, &repo, id).await?;
    Ok(empty_response(StatusCode::NO_CONTENT, &[]))
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`.
pub async fn patch(
    ctx: Ctx,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let id = path::upload_id(id)?;
    let offset = chunk_offset(headers)?;
    let size = append(&ctx, &repo, id, offset, byte_stream(body)).await?;
    Ok(session_response(StatusCode::ACCEPTED, &repo, id, size))
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=<digest>`.
pub async fn put(
    ctx: Ctx,
    name: &str,
    id: &str,
    params: &Params,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let id = path::upload_id(id)?;
    let digest = match params.get("digest") {
        Some(d) => path::digest(d)?,
        None => {
            return Err(OciError::digest_invalid(
                "the 'digest' query parameter is required to finish an upload",
            ))
        }
    };
    if has_body(headers, &body) {
        let offset = chunk_offset(headers)?;
        append(&ctx, &repo, id, offset, byte_stream(body)).await?;
    }
    ctx.app
        .ecr
        .complete_upload(&ctx.scope, &repo, id, &digest)
        .await?;
    Ok(blob_created(&repo, &digest))
}

/// Appends a chunk. A chunk out of order is 416 carrying where the upload
/// stands, so the client can resume from there.
async fn append(
    ctx: &Ctx,
    repo: &RepositoryName,
    id: &str,
    offset: Option<u64>,
    body: crate::store::blobs::ByteStream,
) -> OciResult<u64> {
    let ecr = &ctx.app.ecr;
    match ecr.append_upload(&ctx.scope, repo, id, offset, body).await {
        Ok(size) => Ok(size),
        Err(e) if e.kind == ErrorKind::InvalidLayerPart => {
            let size = ecr.upload_size(&ctx.scope, repo, id).await?;
            Err(OciError::from(e)
                .with_header("location", &upload_location(repo, id))
                .with_header("range", &range_value(size))
                .with_header("docker-upload-uuid", id))
        }
        Err(e) => Err(e.into()),
    }
}

/// A body that broke off is the client's fault, not a range problem.
fn body_error(e: EcrError) -> OciError {
    if e.kind == ErrorKind::InvalidLayerPart {
        OciError::upload_invalid(e.message)
    } else {
        e.into()
    }
}

/// Where a chunk says it starts: `Content-Range: <start>-<end>` (also taken
/// in the `bytes <start>-<end>/<total>` form). Its length must agree with
/// `Content-Length` when both are given. Public for the fuzz target
/// (`fuzz/fuzz_targets/ranges.rs`).
#[doc(hidden)]
pub fn chunk_offset(headers: &HeaderMap) -> OciResult<Option<u64>> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        OciError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "Content-Range must have the form '<start>-<end>'",
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    let text = text.strip_prefix("bytes ").unwrap_or(text).trim();
    let text = text.split('/').next().unwrap_or("");
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end: u64 = end.trim().parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = length {
        // `0-18446744073709551615` covers one byte more than u64 counts.
        let covered = u128::from(end - start) + 1;
        if u128::from(length) != covered {
            return Err(OciError::upload_invalid(format!(
                "Content-Range {start}-{end} covers {covered} bytes but Content-Length is {length}"
            )));
        }
    }
    Ok(Some(start))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn headers(range: &str, length: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(range).unwrap());
        if let Some(l) = length {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    #[test]
    fn content_ranges() {
        assert_eq!(chunk_offset(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            chunk_offset(&headers("0-99", Some("100"))).unwrap(),
            Some(0)
        );
        assert_eq!(
            chunk_offset(&headers("bytes 100-199/*", None)).unwrap(),
            Some(100)
        );
        assert_eq!(
            chunk_offset(&headers("0-99", Some("10"))).unwrap_err().code,
            "BLOB_UPLOAD_INVALID"
        );
        assert_eq!(
            chunk_offset(&headers("9-1", None)).unwrap_err().status,
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert!(chunk_offset(&headers("x", None)).is_err());
        // The widest range used to overflow counting its bytes.
        assert_eq!(
            chunk_offset(&headers("0-18446744073709551615", Some("0")))
                .unwrap_err()
                .code,
            "BLOB_UPLOAD_INVALID"
        );
        assert_eq!(range_value(0), "0-0");
        assert_eq!(range_value(10), "0-9");
    }
}

//! Manifests: `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`, the
//! reference a tag or a digest (OCI Distribution Spec v1.1, "Pulling
//! manifests", "Pushing manifests", "Deleting manifests").
//!
//! A manifest is served exactly as pushed, with its stored media type,
//! `Docker-Content-Digest` and `Content-Length`. A GET records the pull
//! (ECR's lastRecordedPullTime), a HEAD does not. A PUT answers 201 with the
//! manifest's `Location`, its digest and, when it names a `subject`,
//! `OCI-Subject`. Manifests are at most 4 MiB (413 beyond).
//!
//! Content negotiation: `Accept` headers are merged (skopeo sends several).
//! When a tag is asked for and the client lists manifest media types that
//! leave out the stored one, the answer is 404 MANIFEST_UNKNOWN, as the
//! reference registry and ECR answer an old client asking for an OCI image.
//! A digest names exact bytes, so it is served whatever the client lists.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{OciError, OciResult};
use super::{empty_response, path, Ctx};
use bytes::Bytes;

use crate::ecr::images::Reference;
use crate::ecr::manifest::{self, MAX_MANIFEST_BYTES};
use crate::ecr::pull_through::cache::FetchedImage;

/// The media types a client lists in its `Accept` headers, parameters dropped.
fn accepted(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

fn is_manifest_type(t: &str) -> bool {
    manifest::MANIFEST_MEDIA_TYPES.contains(&t)
        || t == manifest::DOCKER_V1
        || t == manifest::DOCKER_V1_SIGNED
}

/// Whether a client listing `accept` takes a manifest of `media_type`.
pub(crate) fn acceptable(accept: &[String], media_type: &str) -> bool {
    accept
        .iter()
        .any(|a| a == media_type || a == "*/*" || a == "application/*")
        || !accept.iter().any(|a| is_manifest_type(a))
}

/// `GET|HEAD /v2/<name>/manifests/<reference>`.
pub async fn get(
    ctx: Ctx,
    name: &str,
    reference: &str,
    head: bool,
    headers: &HeaderMap,
) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let reference = path::reference(reference)?;
    let ecr = &ctx.app.ecr;
    let puller = (!head).then_some(ctx.caller.principal_arn.as_str());
    // A manifest just fetched through the cache is answered while its
    // image is still being imported (its pull is recorded at commit).
    let importing = ecr
        .pull_through_manifest(&ctx.caller, &ctx.scope, &repo, &reference, puller)
        .await?;
    let from_cache = importing.is_none();
    let image = match importing {
        Some(fetched) => fetched,
        None => {
            let image = ecr.get_image(&ctx.scope, &repo, &reference, None)?;
            FetchedImage {
                digest: image.digest,
                media_type: image.media_type,
                manifest: Bytes::from(image.manifest),
            }
        }
    };
    if let Reference::Tag(tag) = &reference {
        if !acceptable(&accepted(headers), &image.media_type) {
            return Err(OciError::manifest_unknown(format!(
                "The image '{tag}' has a manifest of media type '{}', which the Accept header does not list",
                image.media_type
            )));
        }
    }
    if let (Some(puller), true) = (puller, from_cache) {
        // The pull is recorded only once the client is sure to get the image.
        ecr.get_image(
            &ctx.scope,
            &repo,
            &Reference::Digest(image.digest.clone()),
            Some(puller),
        )?;
    }
    let length = image.manifest.len();
    let body = if head {
        Body::empty()
    } else {
        Body::from(image.manifest)
    };
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("content-type", &image.media_type);
    set("content-length", &length.to_string());
    set("docker-content-digest", &image.digest.to_string());
    set("etag", &format!("\"{}\"", image.digest));
    Ok(response)
}

/// `PUT /v2/<name>/manifests/<reference>`.
pub async fn put(
    ctx: Ctx,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let reference = path::reference(reference)?;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared_length.is_some_and(|l| l > MAX_MANIFEST_BYTES as u64) {
        return Err(OciError::too_large("manifest", MAX_MANIFEST_BYTES));
    }
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_large {
                OciError::too_large("manifest", MAX_MANIFEST_BYTES)
            } else {
                OciError::new(
                    StatusCode::BAD_REQUEST,
                    "MANIFEST_INVALID",
                    format!("the manifest body was not received completely: {e}"),
                )
            }
        })?;
    let declared_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (tag, expected) = match &reference {
        Reference::Tag(t) => (Some(t.as_str()), None),
        Reference::Digest(d) => (None, Some(d)),
    };
    let pushed =
        ctx.app
            .ecr
            .put_manifest(&ctx.scope, &repo, tag, expected, &bytes, declared_type)?;
    let digest = pushed.image.digest;
    let mut headers = vec![
        ("location", format!("/v2/{repo}/manifests/{digest}")),
        ("docker-content-digest", digest.to_string()),
    ];
    if let Some(subject) = pushed.image.subject {
        headers.push(("oci-subject", subject.to_string()));
    }
    Ok(empty_response(StatusCode::CREATED, &headers))
}

/// `DELETE /v2/<name>/manifests/<reference>`: by digest deletes the image
/// and its tags; by tag removes only the tag (ECR allows both).
pub async fn delete(ctx: Ctx, name: &str, reference: &str) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let reference = path::reference(reference)?;
    let ecr = &ctx.app.ecr;
    match reference {
        Reference::Digest(d) => ecr.delete_image(&ctx.scope, &repo, &d)?,
        Reference::Tag(t) => ecr.untag(&ctx.scope, &repo, &t)?,
    };
    Ok(empty_response(StatusCode::ACCEPTED, &[]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn negotiation() {
        let list = |s: &[&str]| s.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let oci = manifest::OCI_MANIFEST;
        assert!(acceptable(&[], oci));
        assert!(acceptable(&list(&["*/*"]), oci));
        assert!(acceptable(&list(&["application/json"]), oci));
        assert!(acceptable(&list(&[manifest::DOCKER_MANIFEST, oci]), oci));
        assert!(!acceptable(&list(&[manifest::DOCKER_MANIFEST]), oci));
        let mut h = HeaderMap::new();
        h.append(header::ACCEPT, HeaderValue::from_static("a/b;q=0.5, c/d"));
        h.append(header::ACCEPT, HeaderValue::from_static("E/F"));
        assert_eq!(accepted(&h), list(&["a/b", "c/d", "e/f"]));
    }
}

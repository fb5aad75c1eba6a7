//! The referrers API: `GET /v2/<name>/referrers/<digest>[?artifactType=]`
//! (OCI Distribution Spec v1.1, "Listing Referrers"). The answer is always
//! an OCI image index of the descriptors of the manifests whose `subject` is
//! `<digest>` (with their `artifactType` and `annotations`); an unknown
//! subject gives an empty index, only a missing repository is 404. A filter
//! is confirmed with `OCI-Filters-Applied: artifactType`. The list comes
//! whole, in one page.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use super::error::OciResult;
use super::{json_response, path, Ctx, Params};
use crate::ecr::manifest::OCI_INDEX;

pub async fn list(ctx: Ctx, name: &str, digest: &str, params: &Params) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let digest = path::digest(digest)?;
    let artifact_type = params
        .get("artifactType")
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    let manifests = ctx
        .app
        .ecr
        .referrers(&ctx.scope, &repo, &digest, artifact_type)?;
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = json_response(StatusCode::OK, body.to_string());
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(OCI_INDEX));
    if artifact_type.is_some() {
        headers.insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}

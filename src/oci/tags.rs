//! Listing: `GET /v2/<name>/tags/list` and `GET /v2/_catalog` (OCI
//! Distribution Spec v1.1, "Listing Tags"; the catalog is the reference
//! registry's extension, which ECR also serves), both in lexical order and
//! paged with `n` and `last`. When more follow, `Link: <...>; rel="next"`
//! names the next page. Without `n` a page holds up to 1000 entries (ECR's
//! largest page); a larger `n` is lowered to 1000.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use super::error::{OciError, OciResult};
use super::{json_response, path, Ctx, Params};

/// The largest page.
pub const MAX_PAGE: usize = 1000;

/// `n` and `last` from the query string.
fn paging(params: &Params) -> OciResult<(usize, Option<String>)> {
    let n = match params.get("n").map(|n| n.trim()) {
        None | Some("") => MAX_PAGE,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| OciError::pagination_invalid(n))?
            .min(MAX_PAGE),
    };
    let last = params.get("last").filter(|l| !l.is_empty()).cloned();
    Ok((n, last))
}

/// A page as JSON, with the `Link` to the next one when more follow.
fn page(base: &str, body: serde_json::Value, n: usize, next_after: Option<&String>) -> Response {
    let mut response = json_response(StatusCode::OK, body.to_string());
    if let Some(last) = next_after {
        let link = format!(
            "<{base}?n={n}&last={}>; rel=\"next\"",
            utf8_percent_encode(last, NON_ALPHANUMERIC)
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().insert("link", v);
        }
    }
    response
}

/// `GET /v2/<name>/tags/list[?n=&last=]`.
pub async fn list(ctx: Ctx, name: &str, params: &Params) -> OciResult<Response> {
    let repo = path::repository(name)?;
    let (n, last) = paging(params)?;
    let (tags, more) = if n == 0 {
        // Still answers NAME_UNKNOWN for a missing repository.
        ctx.app.ecr.repository(&ctx.scope, &repo)?;
        (Vec::new(), false)
    } else {
        ctx.app
            .ecr
            .list_tags(&ctx.scope, &repo, last.as_deref(), n)?
    };
    let next = if more { tags.last() } else { None };
    Ok(page(
        &format!("/v2/{repo}/tags/list"),
        serde_json::json!({ "name": repo.as_str(), "tags": tags }),
        n,
        next,
    ))
}

/// `GET /v2/_catalog[?n=&last=]`: the repositories of the caller's registry.
pub async fn catalog(ctx: Ctx, params: &Params) -> OciResult<Response> {
    let (n, last) = paging(params)?;
    let (repositories, more) = if n == 0 {
        (Vec::new(), false)
    } else {
        let (names, more) = ctx.app.ecr.catalog(&ctx.scope, last.as_deref(), n)?;
        (
            ctx.app
                .ecr
                .visible_in_catalog(&ctx.caller, &ctx.scope, names),
            more,
        )
    };
    let next = if more { repositories.last() } else { None };
    Ok(page(
        "/v2/_catalog",
        serde_json::json!({ "repositories": repositories }),
        n,
        next,
    ))
}

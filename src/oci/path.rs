//! Routing `/v2/...` paths. Repository names contain slashes, so the router
//! hands the whole path here and the endpoint is read from its last
//! segments (OCI Distribution Spec v1.1, "Endpoints"):
//! `<name>/manifests/<ref>`, `<name>/blobs/<digest>`,
//! `<name>/blobs/uploads/[<id>]`, `<name>/tags/list`,
//! `<name>/referrers/<digest>`, plus `/v2/` and `/v2/_catalog`.
//!
//! The path is read as sent (still percent-encoded) and every part is parsed
//! into its newtype: a name that is not a valid ECR repository name (`..`,
//! `%2e%2e`, empty segments) is NAME_INVALID, a bad digest DIGEST_INVALID, a
//! bad tag TAG_INVALID. Nothing here ever becomes a file path.

use super::error::{OciError, OciResult};
use crate::digest::Digest;
use crate::ecr::images::{check_tag, Reference};
use crate::ecr::names::RepositoryName;

/// A `/v2/` endpoint, with the raw parts still to be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Base,
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
    Referrers(String, String),
    Unknown,
}

impl Route {
    /// The route kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Route::Base => "base",
            Route::Catalog => "catalog",
            Route::Tags(_) => "tags",
            Route::Manifest(..) => "manifest",
            Route::Blob(..) => "blob",
            Route::UploadStart(_) => "upload_start",
            Route::Upload(..) => "upload",
            Route::Referrers(..) => "referrers",
            Route::Unknown => "unknown",
        }
    }

    /// The repository named, if the endpoint has one.
    pub fn repository(&self) -> Option<&str> {
        match self {
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::UploadStart(n)
            | Route::Upload(n, _)
            | Route::Referrers(n, _) => Some(n),
            _ => None,
        }
    }

    /// The same endpoint on another repository name (the public registry
    /// strips its alias from the path's name).
    pub fn with_repository(self, name: String) -> Route {
        match self {
            Route::Tags(_) => Route::Tags(name),
            Route::Manifest(_, r) => Route::Manifest(name, r),
            Route::Blob(_, d) => Route::Blob(name, d),
            Route::UploadStart(_) => Route::UploadStart(name),
            Route::Upload(_, id) => Route::Upload(name, id),
            Route::Referrers(_, d) => Route::Referrers(name, d),
            other => other,
        }
    }

    /// Reads a request path (`/v2` or `/v2/...`).
    pub fn parse(path: &str) -> Route {
        let rest = match path.strip_prefix("/v2") {
            Some("") | Some("/") => return Route::Base,
            Some(rest) => match rest.strip_prefix('/') {
                Some(rest) => rest,
                None => return Route::Unknown,
            },
            None => return Route::Unknown,
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let join = |name: &[&str]| name.join("/");
        match segments.as_slice() {
            ["_catalog"] => Route::Catalog,
            [name @ .., "tags", "list"] if !name.is_empty() => Route::Tags(join(name)),
            [name @ .., "manifests", reference] if !name.is_empty() => {
                Route::Manifest(join(name), reference.to_string())
            }
            [name @ .., "blobs", "uploads", ""] | [name @ .., "blobs", "uploads"]
                if !name.is_empty() =>
            {
                Route::UploadStart(join(name))
            }
            [name @ .., "blobs", "uploads", id] if !name.is_empty() => {
                Route::Upload(join(name), id.to_string())
            }
            [name @ .., "blobs", digest] if !name.is_empty() => {
                Route::Blob(join(name), digest.to_string())
            }
            [name @ .., "referrers", digest] if !name.is_empty() => {
                Route::Referrers(join(name), digest.to_string())
            }
            _ => Route::Unknown,
        }
    }
}

/// A repository name from a path or query, or NAME_INVALID.
pub fn repository(raw: &str) -> OciResult<RepositoryName> {
    RepositoryName::parse(raw).map_err(|e| OciError::name_invalid(raw, &e.constraint))
}

/// A digest from a path or query, or DIGEST_INVALID.
pub fn digest(raw: &str) -> OciResult<Digest> {
    Digest::parse(raw).map_err(|e| OciError::digest_invalid(format!("'{raw}': {e}")))
}

/// A manifest reference: a digest (it has a `:`) or a tag.
pub fn reference(raw: &str) -> OciResult<Reference> {
    if raw.contains(':') {
        return digest(raw).map(Reference::Digest);
    }
    check_tag(raw).map_err(|e| OciError::tag_invalid(format!("'{raw}': {}", e.message)))?;
    Ok(Reference::Tag(raw.to_string()))
}

/// An upload session id as the blob stores issue them (a UUID). Anything
/// else is unknown without asking the store.
pub fn upload_id(raw: &str) -> OciResult<&str> {
    let ok = !raw.is_empty()
        && raw.len() <= 128
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(raw)
    } else {
        Err(OciError::upload_unknown(raw))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::parse("/v2/"), Route::Base);
        assert_eq!(Route::parse("/v2"), Route::Base);
        assert_eq!(Route::parse("/v2/_catalog"), Route::Catalog);
        assert_eq!(Route::parse("/v2/a/b/tags/list"), Route::Tags("a/b".into()));
        assert_eq!(
            Route::parse("/v2/a/manifests/b/manifests/v1"),
            Route::Manifest("a/manifests/b".into(), "v1".into())
        );
        assert_eq!(
            Route::parse("/v2/team/app/blobs/uploads/"),
            Route::UploadStart("team/app".into())
        );
        assert_eq!(
            Route::parse("/v2/team/app/blobs/uploads"),
            Route::UploadStart("team/app".into())
        );
        assert_eq!(
            Route::parse("/v2/team/app/blobs/uploads/abc-1"),
            Route::Upload("team/app".into(), "abc-1".into())
        );
        assert_eq!(
            Route::parse("/v2/x/blobs/sha256:00"),
            Route::Blob("x".into(), "sha256:00".into())
        );
        assert_eq!(
            Route::parse("/v2/x/referrers/sha256:00"),
            Route::Referrers("x".into(), "sha256:00".into())
        );
        assert_eq!(Route::parse("/v2/manifests/v1"), Route::Unknown);
        assert_eq!(Route::parse("/v2/x/y"), Route::Unknown);
        assert_eq!(Route::parse("/v2x/a"), Route::Unknown);
        // Tricks parse as routes whose names then fail to parse.
        match Route::parse("/v2/%2e%2e/a/manifests/v1") {
            Route::Manifest(name, _) => assert!(repository(&name).is_err()),
            other => panic!("{other:?}"),
        }
        match Route::parse("/v2//a/blobs/sha256:00") {
            Route::Blob(name, _) => assert!(repository(&name).is_err()),
            other => panic!("{other:?}"),
        }
        assert!(repository("../a").is_err());
    }

    #[test]
    fn references_and_ids() {
        assert_eq!(reference("v1").unwrap(), Reference::Tag("v1".into()));
        assert_eq!(reference("-v1").unwrap_err().code, "TAG_INVALID");
        assert_eq!(reference("sha256:zz").unwrap_err().code, "DIGEST_INVALID");
        assert!(upload_id("0b6c-aa").is_ok());
        assert!(upload_id("..").is_err());
        assert!(upload_id("a%2fb").is_err());
    }
}

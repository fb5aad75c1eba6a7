//! The registry's one error type and its one rendering:
//! `{"errors":[{"code","message","detail"}]}` with `Content-Type:
//! application/json`, as the OCI Distribution Specification v1.1 ("Error
//! Codes") defines it. Domain errors (`EcrError`) become OCI codes in exactly
//! one `match`, [`From<EcrError>`]; codes that only the data plane raises
//! (paths, digests, Range, auth) have constructors here.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::ecr::error::{EcrError, ErrorKind};

/// An error as the registry answers it.
#[derive(Debug, Clone)]
pub struct OciError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    /// Headers the answer carries besides the JSON body (`Www-Authenticate`
    /// on a 401, `Range` on an out-of-order chunk, ...).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub type OciResult<T> = Result<T, OciError>;

impl OciError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        OciError {
            status,
            code,
            message: message.into(),
            detail: None,
            headers: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Adds a header; a value that is not a valid header value is skipped.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    /// 401 with the Basic challenge ECR sends.
    pub fn unauthorized(code: &'static str, message: impl Into<String>, realm: &str) -> Self {
        let challenge = format!("Basic realm=\"{realm}\",service=\"ecr.amazonaws.com\"");
        Self::new(StatusCode::UNAUTHORIZED, code, message)
            .with_header("www-authenticate", &challenge)
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "DENIED", message)
    }

    pub fn name_invalid(name: &str, constraint: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("Invalid repository name '{name}': {constraint}"),
        )
    }

    pub fn digest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
    }

    pub fn tag_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "TAG_INVALID", message)
    }

    pub fn blob_unknown(digest: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
        )
        .with_detail(serde_json::json!({ "digest": digest }))
    }

    pub fn upload_unknown(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            format!("The upload with id '{id}' does not exist"),
        )
    }

    pub fn upload_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", message)
    }

    pub fn manifest_unknown(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", message)
    }

    /// A body over the size the registry accepts (413 Payload Too Large).
    pub fn too_large(what: &str, limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            format!("The {what} exceeds the maximum size of {limit} bytes"),
        )
    }

    /// A Range that no byte of the blob satisfies (416).
    pub fn range_not_satisfiable(size: u64) -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "SIZE_INVALID",
            format!("The requested range is not satisfiable for a blob of {size} bytes"),
        )
        .with_header("content-range", &format!("bytes */{size}"))
    }

    pub fn pagination_invalid(value: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "PAGINATION_NUMBER_INVALID",
            format!("The 'n' parameter '{value}' is not a non-negative integer"),
        )
    }

    /// A path under `/v2/` that names no endpoint.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No registry endpoint at this path",
        )
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("The method {method} is not supported on this endpoint"),
        )
    }

    pub fn server(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", message)
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(detail) = self.detail {
            error["detail"] = detail;
        }
        let body = serde_json::json!({ "errors": [error] }).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// ECR's `/v2/` message for a manifest it does not hold.
pub const MANIFEST_NOT_FOUND: &str = "Requested image not found";

impl From<EcrError> for OciError {
    /// The one mapping from domain errors to the registry's codes. The
    /// statuses follow the distribution spec (and the reference
    /// implementation where the spec is silent): unknown things are 404,
    /// references a manifest makes to missing content are 400
    /// MANIFEST_BLOB_UNKNOWN, a chunk out of order is 416.
    fn from(e: EcrError) -> Self {
        use StatusCode as S;
        let (status, code) = match e.kind {
            ErrorKind::RepositoryNotFound | ErrorKind::RegistryNotFound => {
                (S::NOT_FOUND, "NAME_UNKNOWN")
            }
            ErrorKind::ImageNotFound => (S::NOT_FOUND, "MANIFEST_UNKNOWN"),
            ErrorKind::ImageTagAlreadyExists => (S::BAD_REQUEST, "TAG_INVALID"),
            ErrorKind::ImageDigestDoesNotMatch => (S::BAD_REQUEST, "DIGEST_INVALID"),
            ErrorKind::LayersNotFound | ErrorKind::ReferencedImagesNotFound => {
                (S::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
            }
            ErrorKind::UploadNotFound => (S::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            ErrorKind::InvalidLayerPart => (S::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"),
            ErrorKind::InvalidLayer => (S::BAD_REQUEST, "DIGEST_INVALID"),
            ErrorKind::EmptyUpload | ErrorKind::LayerPartTooSmall => {
                (S::BAD_REQUEST, "BLOB_UPLOAD_INVALID")
            }
            ErrorKind::LayerAlreadyExists => (S::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            ErrorKind::LayerInaccessible => (S::NOT_FOUND, "BLOB_UNKNOWN"),
            // On /v2/ the domain's parameter checks are the manifest's
            // (the adapter parses names, tags and digests itself).
            ErrorKind::InvalidParameter
            | ErrorKind::Validation
            | ErrorKind::UnsupportedImageType
            | ErrorKind::ImageAlreadyExists => (S::BAD_REQUEST, "MANIFEST_INVALID"),
            ErrorKind::InvalidTagParameter | ErrorKind::TooManyTags => {
                (S::BAD_REQUEST, "TAG_INVALID")
            }
            ErrorKind::RepositoryAlreadyExists | ErrorKind::RepositoryNotEmpty => {
                (S::BAD_REQUEST, "DENIED")
            }
            ErrorKind::LimitExceeded => (S::TOO_MANY_REQUESTS, "TOOMANYREQUESTS"),
            // "Requests to pull the archived image will fail with a 404 error."
            ErrorKind::ImageArchived => (S::NOT_FOUND, "MANIFEST_UNKNOWN"),
            // Control-plane only; never raised on /v2/.
            ErrorKind::ImageStorageClassUpdateNotSupported
            | ErrorKind::LifecyclePolicyNotFound
            | ErrorKind::LifecyclePolicyPreviewInProgress
            | ErrorKind::LifecyclePolicyPreviewNotFound
            | ErrorKind::RepositoryPolicyNotFound
            | ErrorKind::RegistryPolicyNotFound
            | ErrorKind::TemplateAlreadyExists
            | ErrorKind::TemplateNotFound
            | ErrorKind::PullThroughCacheRuleAlreadyExists
            | ErrorKind::PullThroughCacheRuleNotFound
            | ErrorKind::UnsupportedUpstreamRegistry
            | ErrorKind::SecretNotFound
            | ErrorKind::UnableToAccessSecret
            | ErrorKind::UnableToDecryptSecretValue
            | ErrorKind::ExclusionAlreadyExists
            | ErrorKind::ExclusionNotFound
            | ErrorKind::SigningConfigurationNotFound
            | ErrorKind::UnsupportedCommand
            | ErrorKind::ScanNotFound => (S::BAD_REQUEST, "DENIED"),
            // A pull through the cache whose upstream cannot give the
            // content (down, refusing, or not having it): nothing to serve.
            ErrorKind::UnableToGetUpstreamImage => (S::NOT_FOUND, "MANIFEST_UNKNOWN"),
            ErrorKind::UnableToGetUpstreamLayer => (S::NOT_FOUND, "BLOB_UNKNOWN"),
            ErrorKind::AccessDenied => (S::FORBIDDEN, "DENIED"),
            // The distribution spec's answer for a manifest that cannot be
            // deleted ("400 Bad Request or 405 Method Not Allowed").
            ErrorKind::ImageReferencedByManifestList => (S::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            ErrorKind::Server => (S::INTERNAL_SERVER_ERROR, "UNKNOWN"),
        };
        if e.kind == ErrorKind::ImageNotFound {
            // ECR's registry words a missing manifest this way, whatever
            // the reference (docker prints it: "manifest unknown:
            // Requested image not found").
            return OciError::manifest_unknown(MANIFEST_NOT_FOUND);
        }
        OciError::new(status, code, e.message)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_domain_error_has_a_code() {
        for kind in ErrorKind::ALL {
            let e = OciError::from(EcrError::new(*kind, "m"));
            assert!(!e.code.is_empty());
            if *kind != ErrorKind::ImageNotFound {
                assert_eq!(e.message, "m");
            }
        }
        let e = OciError::from(EcrError::repository_not_found("a/b", "000000000000"));
        assert_eq!((e.status, e.code), (StatusCode::NOT_FOUND, "NAME_UNKNOWN"));
        let e = OciError::from(EcrError::new(ErrorKind::ImageNotFound, "m"));
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "Requested image not found"
            )
        );
    }
}

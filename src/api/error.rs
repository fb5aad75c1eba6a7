//! The control plane's one error type and its one rendering:
//! `{"__type": "<code>", "message": "..."}` with `x-amzn-RequestId`,
//! `Content-Type: application/x-amz-json-1.1`, and the status the ECR model
//! gives (ServerException 500, every other modelled error 400).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::model::Violation;
use crate::auth::sigv4::SigV4Error;
use crate::ecr::error::{EcrError, ErrorKind};

pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// An error as the control plane answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Members of the exception shape besides `message`.
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The body was not JSON of the operation's input shape.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "SerializationException", message)
    }

    pub fn unknown_operation(target: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("Unknown operation: '{target}'"),
        )
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("Request body exceeds the maximum size of {limit} bytes"),
        )
    }

    /// Renders a response carrying the request id.
    pub fn into_response_with_id(self, request_id: &str) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("__type".into(), self.code.into());
        for (name, value) in self.fields {
            body.insert(name.into(), value);
        }
        body.insert("message".into(), self.message.into());
        let body = serde_json::Value::Object(body).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-requestid", id);
        }
        response
    }
}

impl From<EcrError> for ApiError {
    fn from(e: EcrError) -> Self {
        let status = match e.kind {
            ErrorKind::Server => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut error = ApiError::new(status, e.kind.code(), e.message);
        error.fields = e.fields;
        error
    }
}

impl From<Violation> for ApiError {
    fn from(v: Violation) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParameter.code(),
            v.message(),
        )
    }
}

impl From<SigV4Error> for ApiError {
    fn from(e: SigV4Error) -> Self {
        ApiError::new(
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
            e.code(),
            e.message(),
        )
    }
}

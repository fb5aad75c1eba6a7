//! AWS STS on the same port, for the one action tools need from it:
//! `GetCallerIdentity` (the AWS CLI's `aws sts get-caller-identity`, boto3,
//! and the Terraform AWS provider, which reads the account id from it).
//!
//! Protocol: awsQuery — `POST /` with a form body
//! `Action=GetCallerIdentity&Version=2011-06-15`, SigV4-signed for service
//! `sts`; answers are XML in the `https://sts.amazonaws.com/doc/2011-06-15/`
//! namespace, errors STS's `<ErrorResponse>` document. Every other STS action
//! answers `InvalidAction` naming it. This adapter holds no rule: who the
//! caller is comes from the same verification the ECR API uses.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::state::AppState;

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const VERSION: &str = "2011-06-15";

/// The actions of the STS API that ecrd does not serve.
const OTHER_ACTIONS: &[&str] = &[
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "AssumeRoot",
    "DecodeAuthorizationMessage",
    "GetAccessKeyInfo",
    "GetDelegatedAccessToken",
    "GetFederationToken",
    "GetSessionToken",
    "GetWebIdentityToken",
];

/// Whether a `POST /` without `X-Amz-Target` is an STS request: signed for
/// service `sts`, or a query-protocol form body.
pub fn is_sts_request(headers: &axum::http::HeaderMap) -> bool {
    if headers.contains_key("x-amz-target") {
        return false;
    }
    let signed_for_sts = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .is_some_and(|c| c.split('/').nth(3) == Some("sts"));
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    signed_for_sts || form
}

/// An STS error: its code, HTTP status and message.
struct StsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl StsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        StsError {
            status,
            code,
            message: message.into(),
        }
    }
}

/// The signature check's errors, under the names STS gives them.
impl From<ApiError> for StsError {
    fn from(e: ApiError) -> Self {
        let (status, code) = match e.code {
            "UnrecognizedClientException" => (StatusCode::FORBIDDEN, "InvalidClientTokenId"),
            "InvalidSignatureException" => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
            "IncompleteSignatureException" => (StatusCode::BAD_REQUEST, "IncompleteSignature"),
            "MissingAuthenticationTokenException" => {
                (StatusCode::FORBIDDEN, "MissingAuthenticationToken")
            }
            "RequestEntityTooLargeException" => (StatusCode::PAYLOAD_TOO_LARGE, "ValidationError"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
        };
        let message = match code {
            "InvalidClientTokenId" => {
                "The security token included in the request is invalid.".into()
            }
            "MissingAuthenticationToken" => "Request is missing Authentication Token".into(),
            _ => e.message,
        };
        StsError::new(status, code, message)
    }
}

/// Axum handler for STS requests on `POST /`.
pub async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let request_id = crate::request_log::RequestId::of(request.extensions());
    let result = process(&app, request, &request_id).await;
    match result {
        Ok(xml) => xml_response(StatusCode::OK, xml, &request_id),
        Err(e) => {
            tracing::info!(
                status = e.status.as_u16(),
                error = e.code,
                error_message = %e.message,
                "sts failed"
            );
            let sender = if e.status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            let xml = format!(
                "<ErrorResponse xmlns=\"{NAMESPACE}\">\n  <Error>\n    <Type>{sender}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
                e.code,
                escape(&e.message)
            );
            xml_response(e.status, xml, &request_id)
        }
    }
}

async fn process(app: &AppState, request: Request, request_id: &str) -> Result<String, StsError> {
    let crate::api::body::Authenticated {
        parts,
        body,
        caller,
        ..
    } = crate::api::body::read_authenticated(app, request, "sts").await?;
    let params: Vec<(String, String)> = form_urlencoded_pairs(&body)
        .chain(form_urlencoded_pairs(
            parts.uri.query().unwrap_or("").as_bytes(),
        ))
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(action) = param("Action") else {
        return Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "Missing Action",
        ));
    };
    if param("Version").is_some_and(|v| v != VERSION) {
        return Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!(
                "Could not find operation {action} for version {}",
                param("Version").unwrap_or_default()
            ),
        ));
    }
    match action {
        "GetCallerIdentity" => {
            tracing::info!(account = caller.account.as_str(), "sts GetCallerIdentity");
            Ok(format!(
                "<GetCallerIdentityResponse xmlns=\"{NAMESPACE}\">\n  <GetCallerIdentityResult>\n    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
                escape(&caller.principal_arn),
                escape(&caller.user_id),
                caller.account
            ))
        }
        known if OTHER_ACTIONS.contains(&known) => Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("The action {known} is not supported by ecrd, which serves only GetCallerIdentity of STS"),
        )),
        other => Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("Could not find operation {other} for version {VERSION}"),
        )),
    }
}

fn form_urlencoded_pairs(bytes: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    bytes
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut kv = pair.splitn(2, |b| *b == b'=');
            let decode = |raw: &[u8]| {
                let spaced: Vec<u8> = raw
                    .iter()
                    .map(|b| if *b == b'+' { b' ' } else { *b })
                    .collect();
                percent_encoding::percent_decode(&spaced)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let key = decode(kv.next().unwrap_or_default());
            let value = decode(kv.next().unwrap_or_default());
            (key, value)
        })
}

fn xml_response(status: StatusCode, xml: String, request_id: &str) -> Response {
    let mut response = (status, Body::from(xml)).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// XML text escaping for the values STS answers carry.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

//! The control plane: ECR's awsJson1_1 protocol on `POST /`.
//!
//! `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>` names the
//! operation; the body is JSON of its input shape. This adapter verifies the
//! SigV4 signature, decodes and checks the input against the model's
//! constraints, calls the operation, and renders the output or the error.
//! It holds no ECR rule: those live in `ecr/`.

pub mod body;
pub mod error;
pub mod model;
pub mod ops;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ecr::caller::Caller;
use crate::ecr::error::EcrError;
use crate::ecr::names::{AccountId, Scope};
use crate::state::AppState;
use error::{ApiError, JSON_CONTENT_TYPE};
use model::{Operation, Validate};

/// The `X-Amz-Target` prefix of every ECR operation.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";

/// What an operation handler gets besides its input.
#[derive(Clone)]
pub struct Ctx {
    pub app: Arc<AppState>,
    pub caller: Caller,
    /// The operation's IAM action, `ecr:<Operation>` (`ecr-public:` for
    /// ECR Public's).
    pub action: String,
    pub request_id: String,
    /// The call is ECR Public's: every registry it names is a public one.
    pub public: bool,
}

impl Ctx {
    /// The registry a request names: `registryId` when given (the model's
    /// pattern has already checked it), else the caller's own.
    pub fn target(&self, registry_id: Option<&String>) -> Scope {
        match registry_id.and_then(|id| AccountId::parse(id).ok()) {
            Some(account) if self.public => Scope::public(account),
            Some(account) => Scope::new(account, self.caller.region.clone()),
            None => self.own(),
        }
    }

    /// The caller's own registry: in the request's region, or its public one.
    pub fn own(&self) -> Scope {
        if self.public {
            Scope::public(self.caller.account.clone())
        } else {
            self.caller.scope()
        }
    }

    /// The registry of an operation on `repository`, once the domain has
    /// decided the caller may perform the operation's action on it.
    pub fn repository(
        &self,
        registry_id: Option<&String>,
        repository: Option<&str>,
    ) -> Result<Scope, EcrError> {
        let scope = self.target(registry_id);
        self.app.ecr.authorize(
            &self.caller,
            &self.action,
            &scope,
            Some(repository.unwrap_or_default()),
        )?;
        Ok(scope)
    }

    /// The registry of a registry-level operation (resource `*`), once the
    /// domain has decided the caller may perform it there.
    pub fn registry(&self, registry_id: Option<&String>) -> Result<Scope, EcrError> {
        let scope = self.target(registry_id);
        self.app
            .ecr
            .authorize(&self.caller, &self.action, &scope, None)?;
        Ok(scope)
    }
}

/// Axum handler for `POST /`.
pub async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    // The id the router's front gave the request: the one its log lines
    // carry (in its log context) and its answer returns.
    let request_id = crate::request_log::RequestId::of(request.extensions());
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let called = Called::of(&target);
    crate::request_log::answered_by("api");
    crate::request_log::record_str("operation", called.name());
    let started = std::time::Instant::now();
    let result = process(app, request, &target, called, &request_id).await;
    match result {
        Ok(body) => {
            tracing::info!(
                status = 200,
                elapsed_us = started.elapsed().as_micros() as u64,
                "done"
            );
            let mut response = (StatusCode::OK, body).into_response();
            let headers = response.headers_mut();
            headers.insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
            if let Ok(id) = HeaderValue::from_str(&request_id) {
                headers.insert("x-amzn-requestid", id);
            }
            response
        }
        Err(e) => {
            crate::request_log::failed(
                e.status.as_u16(),
                e.code,
                &e.message,
                started.elapsed().as_micros() as u64,
            );
            e.into_response_with_id(&request_id)
        }
    }
}

/// The service and operation an `X-Amz-Target` names: ECR's
/// (`AmazonEC2ContainerRegistry_V20150921.`) or ECR Public's
/// (`SpencerFrontendService.`), `None` for an unknown operation.
#[derive(Debug, Clone, Copy)]
enum Called {
    Ecr(Option<Operation>),
    Public(Option<crate::public_api::model::Operation>),
}

impl Called {
    fn of(target: &str) -> Called {
        match target.strip_prefix(crate::public_api::TARGET_PREFIX) {
            Some(name) => Called::Public(crate::public_api::model::Operation::from_name(name)),
            None => Called::Ecr(
                target
                    .strip_prefix(TARGET_PREFIX)
                    .and_then(Operation::from_name),
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Called::Ecr(Some(op)) => op.name(),
            Called::Public(Some(op)) => op.name(),
            _ => "unknown",
        }
    }

    /// The SigV4 signing name of the service.
    fn signing_name(self) -> &'static str {
        match self {
            Called::Ecr(_) => "ecr",
            Called::Public(_) => "ecr-public",
        }
    }
}

async fn process(
    app: Arc<AppState>,
    request: Request,
    target: &str,
    called: Called,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let request = body::read_authenticated(&app, request, called.signing_name()).await?;
    let caller = request.caller.clone();
    crate::request_log::record_registry(caller.account.as_str(), caller.region.as_str());
    let mut ctx = Ctx {
        app,
        caller,
        action: String::new(),
        request_id: request_id.to_string(),
        public: false,
    };
    match called {
        Called::Ecr(operation) => {
            let operation = operation.ok_or_else(|| ApiError::unknown_operation(target))?;
            ctx.action = format!("ecr:{}", operation.name());
            ops::dispatch(operation, ctx, &request.body).await
        }
        Called::Public(operation) => {
            let operation = operation.ok_or_else(|| ApiError::unknown_operation(target))?;
            ctx.action = format!("ecr-public:{}", operation.name());
            ctx.public = true;
            crate::public_api::dispatch(operation, ctx, &request.body).await
        }
    }
}

/// Decodes, checks, runs and encodes one operation.
pub async fn call<I, O, F, Fut>(ctx: Ctx, body: &[u8], handler: F) -> Result<Vec<u8>, ApiError>
where
    I: DeserializeOwned + Validate,
    O: Serialize,
    F: FnOnce(Ctx, I) -> Fut,
    Fut: Future<Output = Result<O, EcrError>>,
{
    let input: I = decode(body)?;
    let mut violations = Vec::new();
    input.validate("", &mut violations);
    if let Some(first) = violations.into_iter().next() {
        return Err(first.into());
    }
    let output = handler(ctx, input).await?;
    serde_json::to_vec(&output).map_err(|e| {
        ApiError::from(EcrError::new(
            crate::ecr::error::ErrorKind::Server,
            e.to_string(),
        ))
    })
}

/// JSON → input shape; an empty body is an empty object, as AWS treats it.
fn decode<I: DeserializeOwned>(body: &[u8]) -> Result<I, ApiError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| ApiError::serialization(format!("The request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::serialization(
            "The request body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::serialization(describe_type_error(&e)))
}

/// serde's message, reworded the way AWS reports a value of the wrong type.
fn describe_type_error(e: &serde_json::Error) -> String {
    format!("The request body does not match the operation's input: {e}")
}

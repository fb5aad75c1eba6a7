//! What the log says about a request. It owns three things:
//!
//! - the request id: one per request, made where the request arrives
//!   (`metrics::track`), carried in the request's extensions to whichever
//!   plane answers, and returned in `x-amzn-RequestId` on every answer,
//!   errors included, so a line in the log and an answer in a client's
//!   hands can be matched;
//! - the request's [`Context`]: the id and what the plane that answers
//!   learns (operation, route, account, region), which every log line of
//!   the request carries, written by the line formats (`log_format`) the
//!   way a span's fields are written: `api{request_id=… operation=…}:`;
//! - the one line each plane logs for a request that failed, at a level
//!   that says whose fault it was: a client's mistake (4xx) and an
//!   operation ecrd does not implement (501: nothing is broken, the feature
//!   is absent) are `info`; every other 5xx is a server error, logged at
//!   `error` so it stands out.
//!
//! Why the context is not a `tracing` span: a span per request costs a
//! slot in the subscriber's registry, its fields formatted into a string
//! at creation, and an enter and exit through the subscriber on every poll
//! of the request's future; on the control plane that was about a third of
//! what the request log cost (benches/api_bench.py, `ECRD_LOG` info against
//! warn). The context is a task-local value instead: set once around the
//! request's future, read only by a line that is written.

use std::borrow::Cow;
use std::cell::RefCell;
use std::future::Future;

use axum::http::Extensions;

/// The header every answer carries the request id in (the control plane's
/// name for it, which AWS SDKs read into their error's request id).
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// The id of one request, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// A fresh id (a random UUID, the form ECR's ids take).
    pub fn new() -> Self {
        RequestId(uuid::Uuid::new_v4().to_string())
    }

    /// The id a request was given when it arrived; a fresh one for a
    /// request that did not pass through the router's front (a handler
    /// called directly).
    pub fn of(extensions: &Extensions) -> String {
        extensions
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(|| RequestId::new().0)
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

/// What every log line of one request carries: a name (the plane that
/// answers it: `api`, `oci`, or `request` until one does) and fields in
/// the order they were recorded, the request id first.
#[derive(Debug, Clone)]
pub struct Context {
    name: &'static str,
    fields: Vec<(&'static str, ContextValue)>,
}

/// A context field's value, and how a plain-text line writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    /// Written as is (an id, a method, a digest): a `%value` span field.
    Bare(String),
    /// Written as a quoted string (a name, an account, a region): a
    /// string span field.
    Quoted(Cow<'static, str>),
}

impl ContextValue {
    pub fn text(&self) -> &str {
        match self {
            ContextValue::Bare(text) => text,
            ContextValue::Quoted(text) => text,
        }
    }
}

impl Context {
    fn new(id: &RequestId) -> Self {
        let mut fields = Vec::with_capacity(6);
        fields.push(("request_id", ContextValue::Bare(id.0.clone())));
        Context {
            name: "request",
            fields,
        }
    }

    /// The name a line writes before the fields' braces.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The fields, in the order they were recorded.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &ContextValue)> + '_ {
        self.fields.iter().map(|(name, value)| (*name, value))
    }

    fn record(&mut self, name: &'static str, value: ContextValue) {
        match self.fields.iter_mut().find(|(field, _)| *field == name) {
            Some((_, slot)) => *slot = value,
            None => self.fields.push((name, value)),
        }
    }
}

tokio::task_local! {
    static CONTEXT: RefCell<Context>;
}

/// Runs `request` (the rest of the router, and the line the router's
/// front logs) with a context holding `id`.
pub async fn in_context<F: Future>(id: &RequestId, request: F) -> F::Output {
    CONTEXT.scope(RefCell::new(Context::new(id)), request).await
}

/// Names the plane answering the current request (`api`, `oci`); nothing
/// outside a request's context.
pub fn answered_by(plane: &'static str) {
    let _ = CONTEXT.try_with(|context| {
        if let Ok(mut context) = context.try_borrow_mut() {
            context.name = plane;
        }
    });
}

/// Records a field of the current request's context (replacing a field of
/// the same name); nothing outside a request's context.
pub fn record(name: &'static str, value: ContextValue) {
    let _ = CONTEXT.try_with(|context| {
        if let Ok(mut context) = context.try_borrow_mut() {
            context.record(name, value);
        }
    });
}

/// Records a string field, written quoted.
pub fn record_str(name: &'static str, value: impl Into<Cow<'static, str>>) {
    record(name, ContextValue::Quoted(value.into()));
}

/// Records the registry a request addresses: its `account` and `region`.
pub fn record_registry(account: &str, region: &str) {
    record_str("account", account.to_string());
    record_str("region", region.to_string());
}

/// Records a field written as its `Display` text.
pub fn record_display(name: &'static str, value: &dyn std::fmt::Display) {
    record(name, ContextValue::Bare(value.to_string()));
}

/// Calls `read` with the context of the request the current task is
/// answering, if it is answering one.
pub fn with_context<R>(read: impl FnOnce(&Context) -> R) -> Option<R> {
    CONTEXT
        .try_with(|context| context.try_borrow().ok().map(|context| read(&context)))
        .ok()
        .flatten()
}

/// Logs a failed request, in the request's context. The error's own message is
/// `error_message`: a field named `message` would be the event's message
/// (a second `"message"` key in a JSON line, hiding `"failed"`).
pub fn failed(status: u16, code: &str, message: &str, elapsed_us: u64) {
    if is_server_fault(status) {
        tracing::error!(
            status,
            error = code,
            error_message = message,
            elapsed_us,
            "failed"
        );
    } else {
        tracing::info!(
            status,
            error = code,
            error_message = message,
            elapsed_us,
            "failed"
        );
    }
}

/// Whether an answer with `status` means ecrd itself went wrong.
pub fn is_server_fault(status: u16) -> bool {
    (500..600).contains(&status) && status != 501
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_server_errors_are_faults() {
        assert!(is_server_fault(500));
        assert!(is_server_fault(503));
        assert!(!is_server_fault(501), "not implemented is not a fault");
        assert!(!is_server_fault(400));
        assert!(!is_server_fault(404));
    }

    #[tokio::test]
    async fn a_context_holds_the_id_first_then_fields_in_recorded_order() {
        let id = RequestId("id-1".into());
        let (name, fields) = in_context(&id, async {
            answered_by("api");
            record_str("operation", "DescribeImages");
            record_str("account", String::from("123456789012"));
            tokio::task::yield_now().await;
            record_display("digest", &"sha256:ab");
            // A second value for a field replaces the first in place.
            record_str("operation", "ListImages");
            with_context(|c| {
                let fields: Vec<(String, ContextValue)> = c
                    .fields()
                    .map(|(name, value)| (name.to_string(), value.clone()))
                    .collect();
                (c.name(), fields)
            })
            .unwrap()
        })
        .await;
        assert_eq!(name, "api");
        assert_eq!(
            fields,
            vec![
                ("request_id".to_string(), ContextValue::Bare("id-1".into())),
                (
                    "operation".to_string(),
                    ContextValue::Quoted("ListImages".into())
                ),
                (
                    "account".to_string(),
                    ContextValue::Quoted("123456789012".into())
                ),
                ("digest".to_string(), ContextValue::Bare("sha256:ab".into())),
            ]
        );
        // Outside a request nothing is recorded and there is nothing to read.
        record_str("operation", "Lost");
        assert!(with_context(|c| c.name()).is_none());
    }
}

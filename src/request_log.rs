//! The one line each plane logs for a request that failed, at a level that
//! says whose fault it was: a client's mistake (4xx) and an operation ecrd
//! does not implement (501: nothing is broken, the feature is absent) are
//! `info`; every other 5xx is a server error, logged at `error` so it
//! stands out. It also owns the request id: one per request, made where the
//! request arrives (`metrics::track`), carried in the request's extensions
//! to whichever plane answers, recorded on the span that every log line
//! of the request sits in (the plane's own, `api` or `oci`, or else a
//! `request` span the router's front opens), and returned in `x-amzn-RequestId` on
//! every answer, errors included, so a line in the log and an answer in a
//! client's hands can be matched.

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

/// Logs a failed request in the current span. The error's own message is
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
}

//! The one line each plane logs for a request that failed, at a level that
//! says whose fault it was: a client's mistake (4xx) and an operation ecrd
//! does not implement (501: nothing is broken, the feature is absent) are
//! `info`; every other 5xx is a server error, logged at `error` so it
//! stands out.

/// Logs a failed request in the current span.
pub fn failed(status: u16, code: &str, message: &str, elapsed_us: u64) {
    if is_server_fault(status) {
        tracing::error!(status, error = code, message, elapsed_us, "failed");
    } else {
        tracing::info!(status, error = code, message, elapsed_us, "failed");
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

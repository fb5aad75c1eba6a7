//! SigV4 verification of arbitrary request heads, header and query forms:
//! the input is split into a query string and header lines, and every
//! refusal must be an error, never a panic.
#![no_main]

use ecrd::auth::sigv4::{self, RequestParts, SecretLookup};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (query, rest) = text.split_once('\n').unwrap_or(("", text));
    let (head, body) = rest.split_once("\n\n").unwrap_or((rest, ""));
    let mut headers = http::HeaderMap::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let request = RequestParts {
        method: "POST",
        path: "/",
        query,
        headers: &headers,
        body: body.as_bytes(),
    };
    let lookup = |key: &str| {
        (key == "test").then(|| SecretLookup {
            secret_access_key: "test".to_string(),
            session_token: None,
        })
    };
    let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let _ = sigv4::parse_scope(&request);
    let _ = sigv4::verify(&request, "ecr", now, &lookup);
});

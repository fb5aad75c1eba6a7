//! How the console writes numbers, times, digests and links: one place, so
//! every view shows a size or a time the same way.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a query value may keep unescaped (RFC 3986 unreserved, plus `/`
/// and `:` so repository names and digests stay readable in a pasted URL).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b':');

/// Escapes one query-string value.
pub fn query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// A link to a console view with the given query pairs (empty values left
/// out).
pub fn link(view: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", query_value(v)))
        .collect();
    if query.is_empty() {
        format!("{}{view}", super::BASE)
    } else {
        format!("{}{view}?{}", super::BASE, query.join("&"))
    }
}

/// Bytes in binary units with three significant digits: `512 B`,
/// `1.50 KiB`, `23.4 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else if value >= 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// An epoch-milliseconds time as `2026-12-02 18:40:05 UTC`.
pub fn time_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => ms.to_string(),
    }
}

/// An optional time, or a dash.
pub fn maybe_time_ms(ms: Option<i64>) -> String {
    ms.map(time_ms).unwrap_or_else(|| "—".to_string())
}

/// The first 12 hex digits of a digest, as docker shows image ids.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// JSON text re-indented for reading; the text as given when it does not
/// parse.
pub fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(24_536_000), "23.4 MiB");
        assert_eq!(bytes(300 * 1024 * 1024), "300 MiB");
    }

    #[test]
    fn links_escape_values_but_keep_names_readable() {
        assert_eq!(
            link(
                "repository",
                &[("name", "team/app"), ("q", "a b&c"), ("x", "")]
            ),
            "/_ecrd/console/repository?name=team/app&q=a%20b%26c"
        );
        assert_eq!(link("", &[]), "/_ecrd/console/");
    }

    #[test]
    fn times_and_digests() {
        assert_eq!(time_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(maybe_time_ms(None), "—");
    }
}

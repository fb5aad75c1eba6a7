//! `ecrd health`: asks a running ecrd whether it is healthy, for a
//! container's `HEALTHCHECK` (a `FROM scratch` image has no shell and no
//! curl). Exit 0 when `GET /_ecrd/health` answers 200, 1 otherwise.
//!
//! Plain HTTP/1.1 over `std::net`, nothing more: the port that serves TLS
//! answers plain HTTP too, so a health check never needs TLS.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// Why a health check failed, in words for the operator.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("{0}")]
    BadUrl(String),
    #[error("cannot reach {url}: {source}")]
    Unreachable { url: String, source: std::io::Error },
    #[error("{url} answered {status_line:?}")]
    Unhealthy { url: String, status_line: String },
}

/// The parts of an `http://host[:port][/path]` URL.
fn parse(url: &str) -> Result<(String, u16, String), HealthError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        HealthError::BadUrl(format!(
            "{url}: give an http:// URL (the TLS port answers plain HTTP too)"
        ))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/_ecrd/health"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            let port = port
                .parse::<u16>()
                .map_err(|_| HealthError::BadUrl(format!("{url}: bad port {port:?}")))?;
            (host, port)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(HealthError::BadUrl(format!("{url}: no host")));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// Checks `url` within `timeout`.
pub fn check(url: &str, timeout: Duration) -> Result<(), HealthError> {
    let (host, port, path) = parse(url)?;
    let unreachable = |source| HealthError::Unreachable {
        url: url.to_string(),
        source,
    };
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| unreachable(std::io::ErrorKind::NotFound.into()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(unreachable)?;
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\nUser-Agent: ecrd-health\r\n\r\n"
    )
    .map_err(unreachable)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf).map_err(unreachable)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("").to_string();
    let status = status_line.split_whitespace().nth(1);
    if status == Some("200") {
        Ok(())
    } else {
        Err(HealthError::Unhealthy {
            url: url.to_string(),
            status_line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse("http://127.0.0.1:4566/_ecrd/health").unwrap(),
            ("127.0.0.1".into(), 4566, "/_ecrd/health".into())
        );
        assert_eq!(
            parse("http://localhost:9").unwrap(),
            ("localhost".into(), 9, "/_ecrd/health".into())
        );
        assert_eq!(
            parse("http://[::1]:4566/x").unwrap(),
            ("::1".into(), 4566, "/x".into())
        );
        assert!(parse("https://localhost:4566").is_err());
    }

    #[test]
    fn a_closed_port_is_unhealthy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/_ecrd/health");
        assert!(matches!(
            check(&url, Duration::from_secs(2)),
            Err(HealthError::Unreachable { .. })
        ));
    }
}

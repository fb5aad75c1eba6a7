//! Logging in to an ECR upstream that is another ECR service (a remote
//! ecrd, or ECR itself), the way ECR's pull through cache does: call
//! `GetAuthorizationToken` at the upstream's control-plane endpoint
//! (awsJson1_1, `X-Amz-Target:
//! AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken`, SigV4 with
//! service `ecr` in the upstream's region), decode the returned
//! base64(`AWS:<password>`), and answer the registry's Basic challenge with
//! it. The password is kept until shortly before the `expiresAt` the
//! upstream gave (ECR's last 12 hours), so a pull does not log in again.
//!
//! The request is signed by [`crate::auth::sigv4::sign`], the same
//! canonical request and signing key the server verifies with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use super::UpstreamError;
use crate::auth::sigv4::{self, SigningKeys};

const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A password is fetched again this long before the upstream says it
/// expires (or at half its life, when that is sooner), so a pull never
/// starts with a password about to lapse.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Passwords by endpoint, region and keys; shared by every client the
/// pull through cache makes. On the wall clock, as the upstream keeps its
/// own.
#[derive(Clone, Default)]
pub struct LoginCache(Arc<Mutex<HashMap<String, (String, SystemTime)>>>);

/// How to log in to one ECR upstream.
#[derive(Clone)]
pub struct EcrLogin {
    /// The control plane's base URL (`http://127.0.0.1:5001`,
    /// `https://api.ecr.eu-west-1.amazonaws.com`).
    pub endpoint: String,
    pub region: String,
    pub keys: SigningKeys,
    pub cache: LoginCache,
}

impl EcrLogin {
    fn cache_key(&self) -> String {
        // The secret enters the key only hashed: a changed secret is a new
        // login, and the cache never holds it in the clear.
        let secret = hex::encode(Sha256::digest(self.keys.secret_access_key.as_bytes()));
        format!(
            "{}\n{}\n{}\n{secret}\n{}",
            self.endpoint,
            self.region,
            self.keys.access_key_id,
            self.keys.session_token.as_deref().unwrap_or("")
        )
    }

    /// The registry password: cached, or fetched with GetAuthorizationToken.
    pub async fn password(&self, http: &reqwest::Client) -> Result<String, UpstreamError> {
        let key = self.cache_key();
        let now = SystemTime::now();
        if let Some((password, _)) = self
            .cache
            .0
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
            .filter(|(_, refresh_at)| now < *refresh_at)
        {
            return Ok(password);
        }
        let (password, expires_at) = self.fetch(http).await?;
        let life = expires_at.duration_since(now).unwrap_or_default();
        let refresh_at = now + life.saturating_sub(REFRESH_MARGIN.min(life / 2));
        if let Ok(mut cache) = self.cache.0.lock() {
            cache.insert(key, (password.clone(), refresh_at));
        }
        Ok(password)
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(String, SystemTime), UpstreamError> {
        let url = reqwest::Url::parse(&format!("{}/", self.endpoint.trim_end_matches('/')))
            .map_err(|e| UpstreamError::Protocol(format!("bad upstream endpoint: {e}")))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => {
                return Err(UpstreamError::Protocol(
                    "the upstream endpoint has no host".to_string(),
                ))
            }
        };
        let body = b"{}".to_vec();
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", TARGET),
        ] {
            let value = HeaderValue::from_str(value)
                .map_err(|e| UpstreamError::Protocol(format!("bad header {name}: {e}")))?;
            headers.insert(name, value);
        }
        let signed = sigv4::sign(
            &sigv4::RequestParts {
                method: "POST",
                path: url.path(),
                query: url.query().unwrap_or(""),
                headers: &headers,
                body: &body,
            },
            &self.keys,
            &self.region,
            "ecr",
            time::OffsetDateTime::now_utc(),
        );
        // reqwest derives the same `host` from the URL; the others go as signed.
        let mut request = http
            .post(url)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", TARGET);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(|e| {
            UpstreamError::Unreachable(format!(
                "the upstream registry's GetAuthorizationToken could not be reached: {e}"
            ))
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            UpstreamError::Unreachable(format!(
                "the upstream registry's GetAuthorizationToken broke off: {e}"
            ))
        })?;
        let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if !status.is_success() {
            let kind = answer["__type"].as_str().unwrap_or("");
            let kind = kind.rsplit('#').next().unwrap_or(kind);
            // The first line only: a signature mismatch goes on with the
            // canonical request, which a pull's error need not carry.
            let message = answer["message"]
                .as_str()
                .or_else(|| answer["Message"].as_str())
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("");
            return Err(UpstreamError::Unauthorized(format!(
                "the upstream registry refused GetAuthorizationToken ({status} {kind}: {message})"
            )));
        }
        parse_answer(&answer)
    }
}

/// The password and expiry in a GetAuthorizationToken answer.
fn parse_answer(answer: &serde_json::Value) -> Result<(String, SystemTime), UpstreamError> {
    let bad = |why: &str| {
        UpstreamError::Protocol(format!(
            "the upstream registry's GetAuthorizationToken answer is unusable: {why}"
        ))
    };
    let data = &answer["authorizationData"][0];
    let token = data["authorizationToken"]
        .as_str()
        .ok_or_else(|| bad("no authorizationToken"))?;
    let decoded = STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| bad("the token is not base64 text"))?;
    let password = match decoded.split_once(':') {
        Some(("AWS", password)) if !password.is_empty() => password.to_string(),
        _ => return Err(bad("the token is not AWS:<password>")),
    };
    // An answer without `expiresAt` is taken to last ECR's 12 hours.
    let expires_at = data["expiresAt"]
        .as_f64()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s))
        .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(12 * 3600));
    Ok((password, expires_at))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers() {
        let token = STANDARD.encode("AWS:secret-password");
        let (password, expires) = parse_answer(&serde_json::json!({
            "authorizationData": [{"authorizationToken": token, "expiresAt": 4102444800.5,
                                   "proxyEndpoint": "https://x"}]
        }))
        .unwrap();
        assert_eq!(password, "secret-password");
        assert!(expires > SystemTime::UNIX_EPOCH + Duration::from_secs(4102444800));
        let other = STANDARD.encode("root:pw");
        assert!(parse_answer(&serde_json::json!({
            "authorizationData": [{"authorizationToken": other}]
        }))
        .is_err());
        assert!(parse_answer(&serde_json::json!({})).is_err());
    }
}

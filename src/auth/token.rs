//! Registry passwords: what GetAuthorizationToken hands out and what
//! `docker login --username AWS` sends back as Basic auth.
//!
//! Like ECR's, the password is an opaque base64 JSON envelope valid for 12
//! hours. Ours carries the account, region, access key and expiry, signed
//! with HMAC-SHA256 under a per-server secret, so the registry can verify it
//! without any lookup and a token for one account never opens another.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use crate::ecr::names::{AccountId, Region, Scope};

/// How long a registry password stays valid (ECR: 12 hours).
pub const TOKEN_LIFETIME: Duration = Duration::hours(12);

/// What a password proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    pub account: AccountId,
    pub region: Region,
    pub access_key_id: String,
    /// The principal the password was issued to; absent in passwords of
    /// earlier versions, which were the account's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_arn: Option<String>,
    /// Expiry, epoch seconds.
    pub expires: i64,
}

impl TokenClaims {
    pub fn scope(&self) -> Scope {
        Scope::new(self.account.clone(), self.region.clone())
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    version: String,
    payload: String,
    signature: String,
}

/// Why a password was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Well-formed and genuine, but past its expiry.
    Expired,
    /// Not a password this server issued.
    Invalid,
}

/// Issues and verifies registry passwords.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

const VERSION: &str = "ecrd-1";

impl TokenSigner {
    pub fn new(key: Vec<u8>) -> Self {
        TokenSigner { key }
    }

    /// A signer with a fresh random secret.
    pub fn random() -> Self {
        let key: [u8; 32] = rand::random();
        TokenSigner { key: key.to_vec() }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(VERSION.as_bytes());
        mac.update(b"\n");
        mac.update(payload.as_bytes());
        mac
    }

    /// A password for the root of `scope`'s account.
    pub fn issue(
        &self,
        scope: &Scope,
        access_key_id: &str,
        now: OffsetDateTime,
    ) -> (String, OffsetDateTime) {
        self.issue_to(scope, access_key_id, None, now)
    }

    /// A password for a principal (`None`: the account's root).
    pub fn issue_to(
        &self,
        scope: &Scope,
        access_key_id: &str,
        principal_arn: Option<&str>,
        now: OffsetDateTime,
    ) -> (String, OffsetDateTime) {
        let expires_at = now + TOKEN_LIFETIME;
        let claims = TokenClaims {
            account: scope.account.clone(),
            region: scope.region.clone(),
            access_key_id: access_key_id.to_string(),
            principal_arn: principal_arn.map(str::to_string),
            expires: expires_at.unix_timestamp(),
        };
        let payload = STANDARD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signature = hex::encode(self.mac(&payload).finalize().into_bytes());
        let envelope = Envelope {
            version: VERSION.to_string(),
            payload,
            signature,
        };
        let password = STANDARD.encode(serde_json::to_vec(&envelope).unwrap_or_default());
        (password, expires_at)
    }

    /// Checks a password's signature, then its expiry.
    pub fn verify(&self, password: &str, now: OffsetDateTime) -> Result<TokenClaims, TokenError> {
        let raw = STANDARD
            .decode(password.trim())
            .map_err(|_| TokenError::Invalid)?;
        let envelope: Envelope = serde_json::from_slice(&raw).map_err(|_| TokenError::Invalid)?;
        if envelope.version != VERSION {
            return Err(TokenError::Invalid);
        }
        let signature = hex::decode(&envelope.signature).map_err(|_| TokenError::Invalid)?;
        // verify_slice compares in constant time.
        self.mac(&envelope.payload)
            .verify_slice(&signature)
            .map_err(|_| TokenError::Invalid)?;
        let claims: TokenClaims = STANDARD
            .decode(&envelope.payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(TokenError::Invalid)?;
        if now.unix_timestamp() >= claims.expires {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// How long a layer download URL stays valid (ECR's presigned S3 URLs: 1 hour).
pub const DOWNLOAD_URL_LIFETIME: Duration = Duration::hours(1);

impl TokenSigner {
    fn download_mac(
        &self,
        scope: &Scope,
        repository: &str,
        digest: &str,
        expires: i64,
    ) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(
            format!(
                "download\n{}\n{}\n{repository}\n{digest}\n{expires}",
                scope.account, scope.region
            )
            .as_bytes(),
        );
        mac
    }

    /// The path and query of a short-lived URL that serves one layer without
    /// other credentials, the way ECR's presigned layer URLs do:
    /// `/_ecrd/layers/<account>/<region>/<digest>?repository=..&expires=..&signature=..`.
    pub fn download_path(
        &self,
        scope: &Scope,
        repository: &str,
        digest: &str,
        now: OffsetDateTime,
    ) -> String {
        let expires = (now + DOWNLOAD_URL_LIFETIME).unix_timestamp();
        let signature = hex::encode(
            self.download_mac(scope, repository, digest, expires)
                .finalize()
                .into_bytes(),
        );
        let repository_q =
            percent_encoding::utf8_percent_encode(repository, percent_encoding::NON_ALPHANUMERIC);
        format!(
            "/_ecrd/layers/{}/{}/{digest}?repository={repository_q}&expires={expires}&signature={signature}",
            scope.account, scope.region
        )
    }

    /// Checks a download URL's signature (in constant time) and expiry.
    pub fn verify_download(
        &self,
        scope: &Scope,
        repository: &str,
        digest: &str,
        expires: i64,
        signature: &str,
        now: OffsetDateTime,
    ) -> Result<(), TokenError> {
        let signature = hex::decode(signature).map_err(|_| TokenError::Invalid)?;
        self.download_mac(scope, repository, digest, expires)
            .verify_slice(&signature)
            .map_err(|_| TokenError::Invalid)?;
        if now.unix_timestamp() >= expires {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

/// The envelope version of an anonymous pull token of the public registry.
const ANONYMOUS_VERSION: &str = "ecrd-anonymous-1";

/// What a bearer token of the public registry proves: a public-registry
/// password's claims, or nobody (an anonymous pull token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    Anonymous,
    Claims(TokenClaims),
}

impl TokenSigner {
    /// A token that lets anyone pull from public registries (what the
    /// public registry's token endpoint hands out without credentials),
    /// valid as long as a password.
    pub fn issue_anonymous(&self, now: OffsetDateTime) -> (String, OffsetDateTime) {
        let expires_at = now + TOKEN_LIFETIME;
        let payload = expires_at.unix_timestamp().to_string();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(ANONYMOUS_VERSION.as_bytes());
        mac.update(b"\n");
        mac.update(payload.as_bytes());
        let envelope = Envelope {
            version: ANONYMOUS_VERSION.to_string(),
            payload,
            signature: hex::encode(mac.finalize().into_bytes()),
        };
        let token = STANDARD.encode(serde_json::to_vec(&envelope).unwrap_or_default());
        (token, expires_at)
    }

    /// Checks a bearer token: a password this server issued, or an
    /// anonymous pull token.
    pub fn verify_bearer(&self, token: &str, now: OffsetDateTime) -> Result<Bearer, TokenError> {
        let raw = STANDARD
            .decode(token.trim())
            .map_err(|_| TokenError::Invalid)?;
        let envelope: Envelope = serde_json::from_slice(&raw).map_err(|_| TokenError::Invalid)?;
        if envelope.version != ANONYMOUS_VERSION {
            return self.verify(token, now).map(Bearer::Claims);
        }
        let signature = hex::decode(&envelope.signature).map_err(|_| TokenError::Invalid)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(ANONYMOUS_VERSION.as_bytes());
        mac.update(b"\n");
        mac.update(envelope.payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::Invalid)?;
        let expires: i64 = envelope.payload.parse().map_err(|_| TokenError::Invalid)?;
        if now.unix_timestamp() >= expires {
            return Err(TokenError::Expired);
        }
        Ok(Bearer::Anonymous)
    }
}

/// `authorizationToken` as ECR returns it: base64 of `AWS:<password>`.
pub fn authorization_token(password: &str) -> String {
    STANDARD.encode(format!("AWS:{password}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new(
            AccountId::parse("111111111111").unwrap(),
            Region::parse("eu-west-1").unwrap(),
        )
    }

    #[test]
    fn issue_verify_expire_tamper() {
        let signer = TokenSigner::random();
        let now = OffsetDateTime::now_utc();
        let (password, expires) = signer.issue(&scope(), "AKID", now);
        assert_eq!(expires - now, Duration::hours(12));
        let claims = signer.verify(&password, now).unwrap();
        assert_eq!(claims.scope(), scope());
        assert_eq!(claims.access_key_id, "AKID");
        assert_eq!(
            signer.verify(&password, now + Duration::hours(12)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            TokenSigner::random().verify(&password, now),
            Err(TokenError::Invalid)
        );
        assert_eq!(signer.verify("not-a-token", now), Err(TokenError::Invalid));

        // Changing the claims without re-signing is refused.
        let raw = STANDARD.decode(&password).unwrap();
        let mut env: Envelope = serde_json::from_slice(&raw).unwrap();
        let mut c: TokenClaims =
            serde_json::from_slice(&STANDARD.decode(&env.payload).unwrap()).unwrap();
        c.account = AccountId::parse("222222222222").unwrap();
        env.payload = STANDARD.encode(serde_json::to_vec(&c).unwrap());
        let forged = STANDARD.encode(serde_json::to_vec(&env).unwrap());
        assert_eq!(signer.verify(&forged, now), Err(TokenError::Invalid));
    }

    #[test]
    fn download_urls() {
        let signer = TokenSigner::random();
        let now = OffsetDateTime::now_utc();
        let path = signer.download_path(&scope(), "team/app", "sha256:abc", now);
        assert!(path.starts_with(
            "/_ecrd/layers/111111111111/eu-west-1/sha256:abc?repository=team%2Fapp&expires="
        ));
        let query: std::collections::HashMap<&str, &str> = path
            .split_once('?')
            .unwrap()
            .1
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        let expires: i64 = query["expires"].parse().unwrap();
        let sig = query["signature"];
        assert_eq!(
            signer.verify_download(&scope(), "team/app", "sha256:abc", expires, sig, now),
            Ok(())
        );
        assert_eq!(
            signer.verify_download(&scope(), "team/other", "sha256:abc", expires, sig, now),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            signer.verify_download(
                &scope(),
                "team/app",
                "sha256:abc",
                expires,
                sig,
                now + Duration::hours(2)
            ),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn anonymous_tokens_verify_and_expire() {
        let signer = TokenSigner::random();
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let (token, _) = signer.issue_anonymous(now);
        assert_eq!(signer.verify_bearer(&token, now), Ok(Bearer::Anonymous));
        assert_eq!(
            signer.verify_bearer(&token, now + TOKEN_LIFETIME),
            Err(TokenError::Expired)
        );
        // Not a password, and not another server's.
        assert_eq!(signer.verify(&token, now), Err(TokenError::Invalid));
        assert_eq!(
            TokenSigner::random().verify_bearer(&token, now),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn authorization_token_shape() {
        let t = authorization_token("pw");
        assert_eq!(STANDARD.decode(t).unwrap(), b"AWS:pw");
    }
}

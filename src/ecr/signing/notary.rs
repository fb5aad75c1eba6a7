//! The Notary Project signature ecrd attaches to a signed image, and the
//! local key of a signing profile that makes it.
//!
//! Implements the Notary Project specifications (`signature-specification.md`,
//! `signature-envelope-jws.md`, `signing-scheme.md`): the payload is
//! `{"targetArtifact": <descriptor of the signed manifest>}` (media type
//! `application/vnd.cncf.notary.payload.v1+json`); the envelope is flattened
//! JWS JSON (`application/jose+json`) whose protected header carries `alg`,
//! `cty`, `crit` (`io.cncf.notary.signingScheme`),
//! `io.cncf.notary.signingScheme: notary.x509` and
//! `io.cncf.notary.signingTime`, and whose unprotected header carries the
//! `x5c` certificate chain and `io.cncf.notary.signingAgent`. The signature
//! is over `BASE64URL(protected) '.' BASE64URL(payload)`.
//!
//! Each signing profile gets an ECDSA P-256 key (JWS `ES256`, one of the
//! spec's approved algorithms) and a self-signed code-signing certificate
//! for it, generated once and kept in the metadata store, so a data
//! directory keeps them across restarts. There is no AWS Signer here: the
//! certificate is the trust anchor a verifier is given (ecrd exposes it at
//! `/_ecrd/signing/certificate`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::ecr::error::{EcrError, EcrResult, ErrorKind};

/// The signature manifest's `artifactType`.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// The envelope blob's media type.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/jose+json";
/// The payload's media type (the protected header's `cty`).
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// The JWS algorithm of every profile key.
pub const ALGORITHM: &str = "ES256";
/// How long a profile's certificate is valid.
const CERTIFICATE_YEARS: i64 = 10;

/// A signing profile's key (PKCS#8) and certificate (DER), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileKey {
    pub profile_arn: String,
    /// Base64 of the PKCS#8 document of the ECDSA P-256 key.
    pub pkcs8: String,
    /// Base64 of the self-signed certificate's DER.
    pub certificate: String,
}

fn failed(what: &str, e: impl std::fmt::Display) -> EcrError {
    EcrError::new(ErrorKind::Server, format!("{what}: {e}"))
}

impl ProfileKey {
    /// A new key and certificate for the profile, the certificate naming
    /// the profile (its last path segment) as its subject.
    pub fn generate(profile_arn: &str, now: OffsetDateTime) -> EcrResult<ProfileKey> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| failed("generating a signing key", e))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| failed("certificate parameters", e))?;
        let name = profile_arn.rsplit('/').next().unwrap_or(profile_arn);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "ecrd managed signing");
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365 * CERTIFICATE_YEARS);
        let certificate = params
            .self_signed(&key)
            .map_err(|e| failed("self-signing the certificate", e))?;
        Ok(ProfileKey {
            profile_arn: profile_arn.to_string(),
            pkcs8: STANDARD.encode(key.serialize_der()),
            certificate: STANDARD.encode(certificate.der()),
        })
    }

    fn certificate_der(&self) -> EcrResult<Vec<u8>> {
        STANDARD
            .decode(&self.certificate)
            .map_err(|e| failed("stored certificate", e))
    }

    /// The certificate as PEM.
    pub fn certificate_pem(&self) -> String {
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        let bytes = self.certificate.as_bytes();
        for line in bytes.chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// The certificate's SHA-256 thumbprint, hex (the signature manifest's
    /// `io.cncf.notary.x509chain.thumbprint#S256` annotation).
    pub fn thumbprint(&self) -> EcrResult<String> {
        Ok(hex::encode(Sha256::digest(self.certificate_der()?)))
    }

    /// The JWS envelope signing `target` (the signed manifest's descriptor)
    /// at `signing_time`.
    pub fn sign(
        &self,
        target: &serde_json::Value,
        signing_time: OffsetDateTime,
    ) -> EcrResult<Vec<u8>> {
        let pkcs8 = STANDARD
            .decode(&self.pkcs8)
            .map_err(|e| failed("stored signing key", e))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|e| failed("stored signing key", e))?;
        let payload = serde_json::to_vec(&json!({ "targetArtifact": target }))?;
        // RFC 3339 without fractional seconds, as the spec asks.
        let signing_time = signing_time
            .replace_nanosecond(0)
            .unwrap_or(signing_time)
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| failed("signing time", e))?;
        let protected = serde_json::to_vec(&json!({
            "alg": ALGORITHM,
            "cty": PAYLOAD_MEDIA_TYPE,
            "crit": ["io.cncf.notary.signingScheme"],
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": signing_time,
        }))?;
        let protected = URL_SAFE_NO_PAD.encode(protected);
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let signing_input = format!("{protected}.{payload}");
        let signature = key
            .sign(&rng, signing_input.as_bytes())
            .map_err(|e| failed("signing", e))?;
        let envelope = json!({
            "payload": payload,
            "protected": protected,
            "header": {
                "x5c": [self.certificate],
                "io.cncf.notary.signingAgent": concat!("ecrd/", env!("CARGO_PKG_VERSION")),
            },
            "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
        });
        Ok(serde_json::to_vec(&envelope)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    #[test]
    fn the_envelope_verifies_with_the_key_and_names_its_target() {
        let now = OffsetDateTime::now_utc();
        let key = ProfileKey::generate(
            "arn:aws:signer:us-east-1:111111111111:/signing-profiles/prod_signer",
            now,
        )
        .unwrap();
        let target = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:00", "size": 3});
        let envelope: serde_json::Value =
            serde_json::from_slice(&key.sign(&target, now).unwrap()).unwrap();
        let protected = envelope["protected"].as_str().unwrap();
        let payload = envelope["payload"].as_str().unwrap();
        let signature = URL_SAFE_NO_PAD
            .decode(envelope["signature"].as_str().unwrap())
            .unwrap();
        let pkcs8 = STANDARD.decode(&key.pkcs8).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .unwrap();
        use ring::signature::KeyPair as _;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref())
            .verify(format!("{protected}.{payload}").as_bytes(), &signature)
            .unwrap();
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(payload["targetArtifact"], target);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(protected).unwrap()).unwrap();
        assert_eq!(header["io.cncf.notary.signingScheme"], "notary.x509");
        assert!(!header["io.cncf.notary.signingTime"]
            .as_str()
            .unwrap()
            .contains('.'));
        assert!(key
            .certificate_pem()
            .starts_with("-----BEGIN CERTIFICATE-----\n"));
    }
}

//! Reading image manifests: what a pushed document is (image or index), its
//! media type, and which blobs and manifests it references.
//!
//! Follows the OCI image specification (image manifest, image index,
//! `artifactType`, `subject`) and Docker's image manifest v2 schema 2 and
//! manifest list. The document itself is never rewritten: ecrd stores the
//! bytes it received and serves them back unchanged.

use serde::Deserialize;

use super::error::{EcrError, EcrResult};
use crate::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// OCI's empty config, used by artifacts without a config of their own.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Every manifest media type ecrd stores.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// The largest manifest accepted (the OCI distribution spec's suggested 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    #[serde(default)]
    pub size: i64,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What a manifest is and what it points at.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    pub media_type: String,
    /// The artifact type: `artifactType`, else the config's media type.
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    /// Child manifests, for an index.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ParsedManifest {
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }

    /// Blobs the registry must hold before this manifest is accepted.
    /// Layers that name external `urls` (Docker's foreign layers) may live elsewhere.
    pub fn required_blobs(&self) -> Vec<&Descriptor> {
        self.config
            .iter()
            .chain(
                self.layers
                    .iter()
                    .filter(|l| l.urls.as_ref().is_none_or(|u| u.is_empty())),
            )
            .collect()
    }

    /// The size ECR reports for an image: the sum of its layers.
    pub fn layer_bytes(&self) -> i64 {
        self.layers.iter().map(|l| l.size.max(0)).sum()
    }
}

fn invalid(reason: &str) -> EcrError {
    EcrError::invalid_parameter("imageManifest", reason)
}

/// Parses a manifest. `declared` is the media type the client gave (the
/// `Content-Type` of a PUT, or PutImage's `imageManifestMediaType`).
pub fn parse(bytes: &[u8], declared: Option<&str>) -> EcrResult<ParsedManifest> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(invalid("must be at most 4194304 bytes"));
    }
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|_| invalid("Invalid JSON syntax"))?;
    let declared = declared
        .map(|d| d.split(';').next().unwrap_or("").trim())
        .filter(|d| !d.is_empty() && *d != "application/json" && *d != "application/octet-stream");
    let media_type = match (declared, raw.media_type.as_deref()) {
        (Some(d), Some(m)) if d != m => {
            return Err(invalid(&format!(
                "mediaType '{m}' in the manifest does not match the declared media type '{d}'"
            )))
        }
        (Some(d), _) => d.to_string(),
        (None, Some(m)) => m.to_string(),
        // OCI manifests may omit mediaType; tell an index by its `manifests`.
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    if media_type == DOCKER_V1 || media_type == DOCKER_V1_SIGNED || raw.schema_version == Some(1) {
        return Err(invalid("schema 1 manifests are not supported"));
    }
    if !MANIFEST_MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(invalid(&format!(
            "unsupported manifest media type '{media_type}'"
        )));
    }
    if raw.schema_version != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let index = media_type == OCI_INDEX || media_type == DOCKER_LIST;
    if index {
        if raw.manifests.is_none() {
            return Err(invalid("an image index must have 'manifests'"));
        }
    } else if raw.config.is_none() {
        return Err(invalid("an image manifest must have 'config'"));
    }
    let artifact_type = raw.artifact_type.clone().or_else(|| {
        raw.config
            .as_ref()
            .map(|c| c.media_type.clone())
            .filter(|t| !t.is_empty())
    });
    Ok(ParsedManifest {
        media_type,
        artifact_type,
        config: raw.config,
        layers: raw.layers.unwrap_or_default(),
        manifests: raw.manifests.unwrap_or_default(),
        subject: raw.subject,
        annotations: raw.annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn images_indexes_and_artifacts() {
        let image = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{D}","size":2}},"layers":[{{"mediaType":"x","digest":"{D}","size":10}},{{"mediaType":"y","digest":"{D}","size":5}}]}}"#
        );
        let parsed = parse(image.as_bytes(), None).unwrap();
        assert_eq!(parsed.media_type, DOCKER_MANIFEST);
        assert_eq!(parsed.layer_bytes(), 15);
        assert_eq!(parsed.required_blobs().len(), 3);
        assert_eq!(
            parsed.artifact_type.as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
        assert!(parse(image.as_bytes(), Some(OCI_MANIFEST)).is_err());

        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":1}}]}}"#
        );
        let parsed = parse(index.as_bytes(), None).unwrap();
        assert!(parsed.is_index());
        assert_eq!(parsed.manifests.len(), 1);

        let artifact = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example+type","config":{{"mediaType":"{OCI_EMPTY}","digest":"{D}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":3}},"unknownField":[1,2]}}"#
        );
        let parsed = parse(artifact.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(
            parsed.artifact_type.as_deref(),
            Some("application/vnd.example+type")
        );
        assert!(parsed.subject.is_some());

        assert!(parse(b"not json", None).is_err());
        assert!(parse(br#"{"schemaVersion":1}"#, None).is_err());
        assert!(parse(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
            None
        )
        .is_err());
        let bad_digest = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:nothex","size":1},"layers":[]}"#;
        assert!(parse(bad_digest.as_bytes(), None).is_err());
    }
}

//! Declarative seeding at startup (`ecrd serve --init FILE`, `ECRD_INIT`):
//! a YAML or JSON file declaring accounts' credentials and, per account and
//! region, registry settings and repositories with images loaded from local
//! OCI layouts and archives. The shape is in `schema`, the README's
//! "Seeding and snapshots" section documents it, and `examples/seed/` has
//! an example.
//!
//! - Every setting is applied as the ECR API call that sets it
//!   (CreateRepository, PutLifecyclePolicy, ...), run in-process through the
//!   API's own decoding, constraint checks and domain calls; images go
//!   through the domain's layer upload and manifest push. So a seed file is
//!   refused with the very error ECR gives, and the message names the file,
//!   the line and column, and the field.
//! - Nothing is half-applied: the seed runs against a staging copy of the
//!   metadata (a memory store), and only when all of it succeeded is the
//!   difference written to the real store, in one transaction. Blobs go to
//!   the real blob store as they are read (content-addressed, so harmless;
//!   a failed seed's blobs are unreferenced and garbage collection frees
//!   them).
//! - Idempotent: what already holds is not written again (an existing
//!   repository is brought to the declared settings; a tag already on the
//!   image stays; a policy already set is not set again), so starting again
//!   with the same file over `--data-dir` changes nothing.

pub mod apply;
pub mod document;
pub mod schema;
pub mod sources;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::auth::credentials::{check_principal_arn, Credential};
use crate::ecr::access::{Policy, PolicyKind};
use crate::ecr::names::AccountId;
use document::{Document, Position};
use schema::SeedFile;

pub use apply::{apply, SeedReport};

/// Why a seed file was refused.
#[derive(Debug)]
pub struct SeedError {
    pub file: PathBuf,
    pub position: Option<Position>,
    /// The field, as `accounts[0].regions[0].repositories[1].imageTagMutability`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed file {}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ", line {}, column {}", p.line, p.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ", {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SeedError {}

/// A parsed seed file.
pub struct Seed {
    pub file: PathBuf,
    document: Document,
    pub spec: SeedFile,
}

impl Seed {
    /// Reads and parses a seed file.
    pub fn load(file: &Path) -> Result<Seed, SeedError> {
        let bare = |position, path: &str, message: String| SeedError {
            file: file.to_path_buf(),
            position,
            path: path.to_string(),
            message,
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| bare(None, "", format!("cannot read: {e}")))?;
        let document = Document::parse(&text).map_err(|e| {
            bare(
                Some(e.position),
                "",
                format!("not valid YAML or JSON: {}", e.message),
            )
        })?;
        let spec: SeedFile = serde_path_to_error::deserialize(&document.value).map_err(|e| {
            let mut path = e.path().to_string();
            if path == "." {
                path.clear();
            }
            let message = e.inner().to_string();
            // Point at the unknown key itself, not at its mapping.
            let lookup = match message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
            {
                Some(key) if !path.ends_with(key) => {
                    if path.is_empty() {
                        key.to_string()
                    } else {
                        format!("{path}.{key}")
                    }
                }
                _ => path.clone(),
            };
            bare(document.position(&lookup), &path, message)
        })?;
        Ok(Seed {
            file: file.to_path_buf(),
            document,
            spec,
        })
    }

    /// An error about the field at `path`.
    pub fn error(&self, path: &str, message: impl Into<String>) -> SeedError {
        SeedError {
            file: self.file.clone(),
            position: self.document.position(path),
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// The directory image sources are relative to.
    pub fn base_dir(&self) -> PathBuf {
        match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The credentials the file declares, checked as `--credentials-file`
    /// lines are.
    pub fn credentials(&self) -> Result<Vec<Credential>, SeedError> {
        let mut out = Vec::new();
        for (a, account) in self.spec.accounts.iter().enumerate() {
            let at = format!("accounts[{a}]");
            let id = AccountId::parse(&account.account)
                .map_err(|e| self.error(&format!("{at}.account"), e))?;
            for (c, seed) in account.credentials.iter().enumerate() {
                let at = format!("{at}.credentials[{c}]");
                if seed.access_key_id.is_empty() || seed.secret_access_key.is_empty() {
                    return Err(
                        self.error(&at, "accessKeyId and secretAccessKey must not be empty")
                    );
                }
                let mut credential =
                    Credential::root(&seed.access_key_id, &seed.secret_access_key, id.clone());
                if let Some(arn) = &seed.principal_arn {
                    check_principal_arn(arn, &id)
                        .map_err(|e| self.error(&format!("{at}.principalArn"), e))?;
                    credential.principal_arn = arn.clone();
                }
                credential.session_token = seed.session_token.clone();
                credential.tags = seed.tags.clone();
                if let Some(policy) = &seed.policy {
                    let parsed =
                        Policy::parse(&policy.text(), PolicyKind::Identity).map_err(|e| {
                            self.error(
                                &format!("{at}.policy"),
                                format!("the identity policy is not valid: {}", e.reason),
                            )
                        })?;
                    credential.identity_policy = Some(Arc::new(parsed));
                }
                out.push(credential);
            }
        }
        Ok(out)
    }
}

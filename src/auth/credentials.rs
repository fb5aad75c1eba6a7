//! The credential table: which access key belongs to which account, and the
//! secret that signs its requests.
//!
//! Sources, later ones overriding earlier ones for the same key:
//! 1. the built-in pair `test`/`test` in the default account;
//! 2. `ECRD_CREDENTIALS` / `--credentials`: `KEY:SECRET:ACCOUNT[,...]`;
//! 3. `--credentials-file`: one `KEY SECRET ACCOUNT [SESSION_TOKEN]` per line,
//!    blank lines and `#` comments ignored.

use std::collections::HashMap;
use std::path::Path;

use crate::ecr::names::AccountId;

/// One configured access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account: AccountId,
    /// When set, requests with this key must carry exactly this session token.
    pub session_token: Option<String>,
}

/// Access key id → credential.
#[derive(Debug, Clone, Default)]
pub struct CredentialTable {
    by_key: HashMap<String, Credential>,
}

/// A configuration mistake in a credential source.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("credentials entry {entry:?}: {reason}")]
    BadEntry { entry: String, reason: String },
    #[error("credentials file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("credentials file {path}, line {line}: {reason}")]
    BadLine {
        path: String,
        line: usize,
        reason: String,
    },
}

impl CredentialTable {
    /// The table with only the built-in `test`/`test` pair.
    pub fn with_default(account: AccountId) -> Self {
        let mut table = CredentialTable::default();
        table.insert(Credential {
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            account,
            session_token: None,
        });
        table
    }

    pub fn insert(&mut self, credential: Credential) {
        self.by_key
            .insert(credential.access_key_id.clone(), credential);
    }

    pub fn get(&self, access_key_id: &str) -> Option<&Credential> {
        self.by_key.get(access_key_id)
    }

    /// Adds the entries of a `KEY:SECRET:ACCOUNT[,...]` list.
    pub fn add_list(&mut self, list: &str) -> Result<(), CredentialError> {
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parts: Vec<&str> = entry.split(':').collect();
            let bad = |reason: &str| CredentialError::BadEntry {
                entry: entry.to_string(),
                reason: reason.to_string(),
            };
            let [key, secret, account] = parts.as_slice() else {
                return Err(bad("expected KEY:SECRET:ACCOUNT"));
            };
            let account =
                AccountId::parse(account).map_err(|_| bad("the account must be 12 digits"))?;
            if key.is_empty() || secret.is_empty() {
                return Err(bad("key and secret must not be empty"));
            }
            self.insert(Credential {
                access_key_id: key.to_string(),
                secret_access_key: secret.to_string(),
                account,
                session_token: None,
            });
        }
        Ok(())
    }

    /// Adds the entries of a credentials file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), CredentialError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CredentialError::Io {
            path: shown.clone(),
            source,
        })?;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |reason: &str| CredentialError::BadLine {
                path: shown.clone(),
                line: index + 1,
                reason: reason.to_string(),
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (key, secret, account, token) = match fields.as_slice() {
                [k, s, a] => (*k, *s, *a, None),
                [k, s, a, t] => (*k, *s, *a, Some(t.to_string())),
                _ => return Err(bad("expected KEY SECRET ACCOUNT [SESSION_TOKEN]")),
            };
            let account =
                AccountId::parse(account).map_err(|_| bad("the account must be 12 digits"))?;
            self.insert(Credential {
                access_key_id: key.to_string(),
                secret_access_key: secret.to_string(),
                account,
                session_token: token,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_and_file_sources() {
        let mut table = CredentialTable::with_default(AccountId::parse("000000000000").unwrap());
        table
            .add_list("AKIA1:secret1:111111111111, AKIA2:secret2:222222222222")
            .unwrap();
        assert_eq!(table.get("AKIA2").unwrap().account.as_str(), "222222222222");
        assert!(table.add_list("bad").is_err());
        assert!(table.add_list("k:s:123").is_err());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds");
        std::fs::write(
            &path,
            "# team keys\nAKIA3 s3 333333333333\n\nAKIA4 s4 444444444444 tok # ci\n",
        )
        .unwrap();
        table.add_file(&path).unwrap();
        assert_eq!(
            table.get("AKIA4").unwrap().session_token.as_deref(),
            Some("tok")
        );
        assert_eq!(table.get("test").unwrap().secret_access_key, "test");
        std::fs::write(&path, "only-two fields\n").unwrap();
        let err = table.add_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}

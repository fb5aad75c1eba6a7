//! The credential table: which access key belongs to which account and
//! principal, the secret that signs its requests, and the identity policy
//! (if any) that limits what the principal may do.
//!
//! Sources, later ones overriding earlier ones for the same key:
//! 1. the built-in pair `test`/`test`, the root of the default account;
//! 2. `ECRD_CREDENTIALS` / `--credentials`:
//!    `KEY:SECRET:ACCOUNT[:PRINCIPAL_ARN][,...]` (the ARN is everything after
//!    the third colon);
//! 3. `--credentials-file`: one credential per line,
//!    `KEY SECRET ACCOUNT [SESSION_TOKEN] [PRINCIPAL_ARN] [tag:K=V ...] [policy=PATH|policy={json}]`,
//!    the optional fields recognised by their form (a field starting with
//!    `arn:` is the principal, `tag:` a principal tag, `policy=` the identity
//!    policy: a file path relative to the credentials file, or inline JSON
//!    running to the end of the line); blank lines and `#` comments ignored
//!    (`#` inside an inline policy is kept).
//!
//! The principal defaults to the account's root, `arn:aws:iam::<ACCOUNT>:root`.
//! A user (`arn:aws:iam::<ACCOUNT>:user/...`), role (`...:role/...`) or
//! assumed-role session (`arn:aws:sts::<ACCOUNT>:assumed-role/<role>/<session>`)
//! may be named; its account must be the credential's.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::ecr::access::{Policy, PolicyKind};
use crate::ecr::names::AccountId;

/// One configured access key.
#[derive(Debug, Clone)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account: AccountId,
    /// When set, requests with this key must carry exactly this session token.
    pub session_token: Option<String>,
    /// The IAM principal the key belongs to.
    pub principal_arn: String,
    /// Principal tags (`aws:PrincipalTag/<key>` in policy conditions).
    pub tags: BTreeMap<String, String>,
    /// The identity policy limiting the principal; `None` is full access
    /// within its own account.
    pub identity_policy: Option<Arc<Policy>>,
    /// STS's `UserId` of the principal, derived once when the credential
    /// enters the table (empty before).
    user_id: String,
}

impl Credential {
    /// A credential for the root of `account`, without policy or tags.
    pub fn root(access_key_id: &str, secret_access_key: &str, account: AccountId) -> Self {
        Credential {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            principal_arn: root_arn(&account),
            user_id: String::new(),
            account,
            session_token: None,
            tags: BTreeMap::new(),
            identity_policy: None,
        }
    }

    /// STS's `UserId` for the principal: the account id for the root, a
    /// stable `AIDA...` id for a user, `AROA...:<session>` for a role session.
    pub fn user_id(&self) -> String {
        if self.user_id.is_empty() {
            user_id(&self.principal_arn, &self.account)
        } else {
            self.user_id.clone()
        }
    }
}

/// `arn:aws:iam::<account>:root`.
pub fn root_arn(account: &AccountId) -> String {
    format!("arn:aws:iam::{account}:root")
}

static PRINCIPAL_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^arn:aws:(?:iam::([0-9]{12}):(?:root|user/[\w+=,.@/-]+|role/[\w+=,.@/-]+)|sts::([0-9]{12}):assumed-role/[\w+=,.@-]+/[\w+=,.@-]+)$",
    )
    .expect("principal pattern compiles")
});

/// Checks a principal ARN and that it belongs to `account`.
pub fn check_principal_arn(arn: &str, account: &AccountId) -> Result<(), String> {
    let caps = PRINCIPAL_ARN.captures(arn).ok_or_else(|| {
        "the principal must be arn:aws:iam::<ACCOUNT>:root|user/NAME|role/NAME or arn:aws:sts::<ACCOUNT>:assumed-role/ROLE/SESSION".to_string()
    })?;
    let owner = caps.get(1).or_else(|| caps.get(2)).map(|m| m.as_str());
    if owner != Some(account.as_str()) {
        return Err(format!(
            "the principal {arn} is not in the credential's account {account}"
        ));
    }
    Ok(())
}

/// STS's `UserId` for a principal ARN.
pub fn user_id(arn: &str, account: &AccountId) -> String {
    let stable = |prefix: &str, name: &str| {
        // IAM unique ids: a 4-letter type prefix and 17 base-32 characters.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let digest = Sha256::digest(name.as_bytes());
        let tail: String = digest
            .iter()
            .take(17)
            .map(|b| ALPHABET[(*b as usize) % 32] as char)
            .collect();
        format!("{prefix}{tail}")
    };
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    if resource == "root" {
        account.to_string()
    } else if let Some(rest) = resource.strip_prefix("assumed-role/") {
        let (role, session) = rest.rsplit_once('/').unwrap_or((rest, ""));
        let role_arn = format!("arn:aws:iam::{account}:role/{role}");
        format!("{}:{session}", stable("AROA", &role_arn))
    } else if resource.starts_with("role/") {
        stable("AROA", arn)
    } else {
        stable("AIDA", arn)
    }
}

/// Parses an identity policy for a credential.
fn identity_policy(text: &str) -> Result<Arc<Policy>, String> {
    Policy::parse(text, PolicyKind::Identity)
        .map(Arc::new)
        .map_err(|e| format!("the identity policy is not valid: {}", e.reason))
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
        table.insert(Credential::root("test", "test", account));
        table
    }

    pub fn insert(&mut self, mut credential: Credential) {
        credential.user_id = user_id(&credential.principal_arn, &credential.account);
        self.by_key
            .insert(credential.access_key_id.clone(), credential);
    }

    pub fn get(&self, access_key_id: &str) -> Option<&Credential> {
        self.by_key.get(access_key_id)
    }

    /// The accounts the table's credentials belong to, each once, in order.
    pub fn accounts(&self) -> Vec<AccountId> {
        let mut accounts: Vec<AccountId> =
            self.by_key.values().map(|c| c.account.clone()).collect();
        accounts.sort();
        accounts.dedup();
        accounts
    }

    /// Adds the entries of a `KEY:SECRET:ACCOUNT[:PRINCIPAL_ARN][,...]` list.
    pub fn add_list(&mut self, list: &str) -> Result<(), CredentialError> {
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.splitn(4, ':');
            let (key, secret, account, principal) =
                (parts.next(), parts.next(), parts.next(), parts.next());
            // Never echo the secret: name the entry by its key alone.
            let bad = |reason: &str| CredentialError::BadEntry {
                entry: format!("{}:…", key.unwrap_or("")),
                reason: reason.to_string(),
            };
            let (Some(key), Some(secret), Some(account)) = (key, secret, account) else {
                return Err(bad("expected KEY:SECRET:ACCOUNT[:PRINCIPAL_ARN]"));
            };
            let account =
                AccountId::parse(account).map_err(|_| bad("the account must be 12 digits"))?;
            if key.is_empty() || secret.is_empty() {
                return Err(bad("key and secret must not be empty"));
            }
            let mut credential = Credential::root(key, secret, account);
            if let Some(arn) = principal {
                check_principal_arn(arn, &credential.account).map_err(|r| bad(&r))?;
                credential.principal_arn = arn.to_string();
            }
            self.insert(credential);
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
        let base = path.parent().unwrap_or(Path::new("."));
        for (index, raw) in text.lines().enumerate() {
            let bad = |reason: &str| CredentialError::BadLine {
                path: shown.clone(),
                line: index + 1,
                reason: reason.to_string(),
            };
            let credential = parse_line(raw, base).map_err(|r| bad(&r))?;
            if let Some(credential) = credential {
                self.insert(credential);
            }
        }
        Ok(())
    }
}

/// One line of a credentials file; `None` for a blank or comment line.
fn parse_line(raw: &str, base: &Path) -> Result<Option<Credential>, String> {
    // An inline policy runs to the end of the line and may contain `#`.
    let (head, inline_policy) = match raw.find("policy={") {
        Some(at) => (&raw[..at], Some(raw[at + "policy=".len()..].trim())),
        None => (raw.split('#').next().unwrap_or(""), None),
    };
    let fields: Vec<&str> = head.split_whitespace().collect();
    if fields.is_empty() && inline_policy.is_none() {
        return Ok(None);
    }
    const FORM: &str = "expected KEY SECRET ACCOUNT [SESSION_TOKEN] [PRINCIPAL_ARN] [tag:K=V ...] [policy=PATH|policy={json}]";
    let [key, secret, account, rest @ ..] = fields.as_slice() else {
        return Err(FORM.to_string());
    };
    let account = AccountId::parse(account).map_err(|_| "the account must be 12 digits")?;
    let mut credential = Credential::root(key, secret, account);
    for field in rest {
        if field.starts_with("arn:") {
            check_principal_arn(field, &credential.account)?;
            credential.principal_arn = field.to_string();
        } else if let Some(tag) = field.strip_prefix("tag:") {
            let (k, v) = tag
                .split_once('=')
                .ok_or_else(|| format!("the principal tag '{tag}' must be tag:KEY=VALUE"))?;
            credential.tags.insert(k.to_string(), v.to_string());
        } else if let Some(file) = field.strip_prefix("policy=") {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("policy file {}: {e}", path.display()))?;
            credential.identity_policy = Some(identity_policy(&text)?);
        } else if credential.session_token.is_none() {
            credential.session_token = Some(field.to_string());
        } else {
            return Err(format!("unexpected field '{field}': {FORM}"));
        }
    }
    if let Some(text) = inline_policy {
        credential.identity_policy = Some(identity_policy(text)?);
    }
    Ok(Some(credential))
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
        let err = table.add_list("k:topsecret:123").unwrap_err().to_string();
        assert!(!err.contains("topsecret"), "{err}");
        table
            .add_list("AKIA5:s5:555555555555:arn:aws:iam::555555555555:user/ci")
            .unwrap();
        let ci = table.get("AKIA5").unwrap();
        assert_eq!(ci.principal_arn, "arn:aws:iam::555555555555:user/ci");
        assert!(ci.user_id().starts_with("AIDA"));
        assert_eq!(
            table.get("AKIA1").unwrap().principal_arn,
            "arn:aws:iam::111111111111:root"
        );
        assert!(table
            .add_list("AKIA6:s6:555555555555:arn:aws:iam::666666666666:user/ci")
            .is_err());

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
        std::fs::write(dir.path().join("ro.json"), r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:Describe*","Resource":"*"}]}"#).unwrap();
        std::fs::write(
            &path,
            "AKIA7 s7 777777777777 arn:aws:sts::777777777777:assumed-role/deploy/job-1 tag:team=ci policy=ro.json\n\
             AKIA8 s8 888888888888 policy={\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}}\n",
        )
        .unwrap();
        table.add_file(&path).unwrap();
        let job = table.get("AKIA7").unwrap();
        assert_eq!(job.tags.get("team").map(String::as_str), Some("ci"));
        assert!(job.identity_policy.is_some());
        assert!(job.user_id().starts_with("AROA") && job.user_id().ends_with(":job-1"));
        assert!(table.get("AKIA8").unwrap().identity_policy.is_some());
        std::fs::write(&path, "only-two fields\n").unwrap();
        let err = table.add_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}

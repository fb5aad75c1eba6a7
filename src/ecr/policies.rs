//! Repository policies (SetRepositoryPolicy, GetRepositoryPolicy,
//! DeleteRepositoryPolicy) and registry policies (PutRegistryPolicy,
//! GetRegistryPolicy, DeleteRegistryPolicy): validation the way ECR does it,
//! storage with the repository (so a policy goes when its repository goes)
//! or the registry, and the lock-out guard of SetRepositoryPolicy's `force`.
//!
//! ECR refuses an invalid document with InvalidParameterException "Invalid
//! parameter at 'PolicyText' failed to satisfy constraint: 'Invalid
//! repository policy provided'" (registry: "... 'Invalid registry policy
//! provided'"); the Terraform AWS provider retries on that text, so it is
//! answered only for a document that is really invalid.

use super::access::{Policy, PolicyKind};
use super::authorize::REGISTRY_POLICY_V1_ACTIONS;
use super::caller::Caller;
use super::error::{EcrError, EcrResult, ErrorKind};
use super::names::Scope;
use super::records::RepositoryRecord;
use super::repositories::{get_repository, parse_name, repository_key};
use super::Ecr;
use crate::store::{ReadTxn, Table};

pub(crate) fn invalid(what: &str, reason: &str) -> EcrError {
    tracing::debug!(reason, "policy refused");
    EcrError::new(
        ErrorKind::InvalidParameter,
        format!("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid {what} policy provided'"),
    )
}

/// A repository policy as ECR answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryPolicy {
    pub repository_name: String,
    pub policy_text: String,
}

/// A stored policy's text.
fn read_text(tx: &(impl ReadTxn + ?Sized), table: Table, key: &str) -> EcrResult<Option<String>> {
    match tx.get(table, key)? {
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| EcrError::new(ErrorKind::Server, "a stored policy is not UTF-8")),
        None => Ok(None),
    }
}

impl Ecr {
    /// SetRepositoryPolicy. Without `force`, a policy that would keep the
    /// caller from setting the repository's policy again is refused.
    pub fn set_repository_policy(
        &self,
        caller: &Caller,
        scope: &Scope,
        name: &str,
        text: &str,
        force: bool,
    ) -> EcrResult<RepositoryPolicy> {
        let name = parse_name(name)?;
        let (kind, set_action) = if scope.is_public() {
            (
                PolicyKind::PublicRepository,
                "ecr-public:SetRepositoryPolicy",
            )
        } else {
            (PolicyKind::Repository, "ecr:SetRepositoryPolicy")
        };
        let parsed = Policy::parse(text, kind).map_err(|e| invalid("repository", &e.reason))?;
        let key = repository_key(scope, name.as_str());
        let mut tx = self.store.write()?;
        let record = get_repository(&*tx, scope, &name)?;
        if !force {
            let registry = self.registry_policies(&*tx, scope)?;
            let decision = self.decide(
                caller,
                set_action,
                scope,
                Some(name.as_str()),
                Some(&record),
                Some(&parsed),
                &registry,
            )?;
            if !decision.is_allowed() {
                return Err(EcrError::new(
                    ErrorKind::InvalidParameter,
                    "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'The repository policy would prevent the caller from setting a repository policy in the future; set force to true to apply it anyway'",
                ));
            }
        }
        tx.put(Table::RepositoryPolicies, &key, text.as_bytes().to_vec())?;
        tx.commit()?;
        Ok(RepositoryPolicy {
            repository_name: record.name,
            policy_text: text.to_string(),
        })
    }

    pub fn get_repository_policy(&self, scope: &Scope, name: &str) -> EcrResult<RepositoryPolicy> {
        let name = parse_name(name)?;
        let tx = self.store.read()?;
        let record = get_repository(&*tx, scope, &name)?;
        let text = read_text(
            &*tx,
            Table::RepositoryPolicies,
            &repository_key(scope, name.as_str()),
        )?;
        policy_of(scope, record, text)
    }

    pub fn delete_repository_policy(
        &self,
        scope: &Scope,
        name: &str,
    ) -> EcrResult<RepositoryPolicy> {
        let name = parse_name(name)?;
        let key = repository_key(scope, name.as_str());
        let mut tx = self.store.write()?;
        let record = get_repository(&*tx, scope, &name)?;
        let removed = policy_of(
            scope,
            record,
            read_text(&*tx, Table::RepositoryPolicies, &key)?,
        )?;
        tx.delete(Table::RepositoryPolicies, &key)?;
        tx.commit()?;
        Ok(removed)
    }

    /// PutRegistryPolicy. Under registry policy scope `V1` a registry policy
    /// may only grant the actions that scope enforces.
    pub fn put_registry_policy(&self, scope: &Scope, text: &str) -> EcrResult<String> {
        let policy = Policy::parse(text, PolicyKind::Registry)
            .map_err(|e| invalid("registry", &e.reason))?;
        let v1 = self.get_account_setting(scope, "REGISTRY_POLICY_SCOPE")?.1 == "V1";
        if v1 {
            let outside_v1 = policy.uses_not_action()
                || policy.action_patterns().iter().any(|pattern| {
                    !REGISTRY_POLICY_V1_ACTIONS
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(pattern))
                });
            if outside_v1 {
                return Err(invalid(
                    "registry",
                    "registry policy scope V1 allows only ecr:ReplicateImage, ecr:BatchImportUpstreamImage and ecr:CreateRepository",
                ));
            }
        }
        let mut tx = self.store.write()?;
        tx.put(
            Table::RegistryPolicies,
            &scope.key_prefix(),
            text.as_bytes().to_vec(),
        )?;
        tx.commit()?;
        Ok(text.to_string())
    }

    pub fn get_registry_policy(&self, scope: &Scope) -> EcrResult<String> {
        let tx = self.store.read()?;
        read_text(&*tx, Table::RegistryPolicies, &scope.key_prefix())?
            .ok_or_else(|| EcrError::registry_policy_not_found(scope.account.as_str()))
    }

    pub fn delete_registry_policy(&self, scope: &Scope) -> EcrResult<String> {
        let key = scope.key_prefix();
        let mut tx = self.store.write()?;
        let text = read_text(&*tx, Table::RegistryPolicies, &key)?
            .ok_or_else(|| EcrError::registry_policy_not_found(scope.account.as_str()))?;
        tx.delete(Table::RegistryPolicies, &key)?;
        tx.commit()?;
        Ok(text)
    }
}

fn policy_of(
    scope: &Scope,
    record: RepositoryRecord,
    text: Option<String>,
) -> EcrResult<RepositoryPolicy> {
    match text {
        Some(policy_text) => Ok(RepositoryPolicy {
            repository_name: record.name,
            policy_text,
        }),
        None => Err(EcrError::repository_policy_not_found(
            &record.name,
            scope.account.as_str(),
        )),
    }
}

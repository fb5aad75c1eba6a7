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
use super::records::{RegistryRecord, RepositoryRecord};
use super::repositories::{get_repository, parse_name, repository_key};
use super::{load, save, Ecr};
use crate::store::Table;

fn invalid(what: &str, reason: &str) -> EcrError {
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
        Policy::parse(text, PolicyKind::Repository)
            .map_err(|e| invalid("repository", &e.reason))?;
        let mut tx = self.store.write()?;
        let mut record = get_repository(&*tx, scope, &name)?;
        record.repository_policy = Some(text.to_string());
        if !force {
            let registry = self.registry_policies(&*tx, scope)?;
            let decision = self.decide(
                caller,
                "ecr:SetRepositoryPolicy",
                scope,
                Some(name.as_str()),
                Some(&record),
                &registry,
            )?;
            if !decision.is_allowed() {
                return Err(EcrError::new(
                    ErrorKind::InvalidParameter,
                    "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'The repository policy would prevent the caller from setting a repository policy in the future; set force to true to apply it anyway'",
                ));
            }
        }
        save(
            &mut *tx,
            Table::Repositories,
            &repository_key(scope, name.as_str()),
            &record,
        )?;
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
        policy_of(scope, record)
    }

    pub fn delete_repository_policy(
        &self,
        scope: &Scope,
        name: &str,
    ) -> EcrResult<RepositoryPolicy> {
        let name = parse_name(name)?;
        let mut tx = self.store.write()?;
        let mut record = get_repository(&*tx, scope, &name)?;
        let removed = policy_of(scope, record.clone())?;
        record.repository_policy = None;
        save(
            &mut *tx,
            Table::Repositories,
            &repository_key(scope, name.as_str()),
            &record,
        )?;
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
        self.update_registry(scope, |r| {
            r.registry_policy = Some(text.to_string());
            Ok(())
        })?;
        Ok(text.to_string())
    }

    pub fn get_registry_policy(&self, scope: &Scope) -> EcrResult<String> {
        self.registry_record(scope)?
            .registry_policy
            .ok_or_else(|| EcrError::registry_policy_not_found(scope.account.as_str()))
    }

    pub fn delete_registry_policy(&self, scope: &Scope) -> EcrResult<String> {
        let mut removed = None;
        self.update_registry(scope, |r| {
            removed = r.registry_policy.take();
            match removed {
                Some(_) => Ok(()),
                None => Err(EcrError::registry_policy_not_found(scope.account.as_str())),
            }
        })?;
        removed.ok_or_else(|| EcrError::registry_policy_not_found(scope.account.as_str()))
    }

    /// Reads, changes and writes back a registry's configuration in one
    /// transaction.
    pub(crate) fn update_registry(
        &self,
        scope: &Scope,
        change: impl FnOnce(&mut RegistryRecord) -> EcrResult<()>,
    ) -> EcrResult<RegistryRecord> {
        let key = scope.key_prefix();
        let mut tx = self.store.write()?;
        let mut record: RegistryRecord = load(&*tx, Table::Registries, &key)?.unwrap_or_default();
        change(&mut record)?;
        save(&mut *tx, Table::Registries, &key, &record)?;
        tx.commit()?;
        Ok(record)
    }
}

fn policy_of(scope: &Scope, record: RepositoryRecord) -> EcrResult<RepositoryPolicy> {
    match record.repository_policy {
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

//! The access decision of every domain operation, on both planes: which
//! policies apply to a request (the caller's identity policy, the target
//! repository's policy, the target registry's policy for the actions its
//! scope covers), the facts their conditions see, and the answer AWS gives
//! when they do not allow it. The evaluation itself is `ecr::access`.
//!
//! The action of a control-plane operation is `ecr:<Operation>`; the actions
//! of the registry's `/v2/` routes are those the ECR user guide lists for
//! pull and push ([`RegistryRequest::actions`]). The resource is the
//! repository ARN, or `*` for registry-level operations, as the ECR
//! authorization reference gives them.
//!
//! Registry policy scope (account setting `REGISTRY_POLICY_SCOPE`): under
//! `V2` (the default) a registry policy applies to every ECR action; under
//! `V1` only to `ecr:ReplicateImage`, `ecr:BatchImportUpstreamImage` and
//! `ecr:CreateRepository`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::access::{self, Context, Decision, Policy, PolicyKind, Principal};
use super::caller::Caller;
use super::clock::epoch_seconds;
use super::error::{EcrError, EcrResult, ErrorKind};
use super::names::Scope;
use super::records::{RegistryRecord, RepositoryRecord};
use super::repositories::repository_key;
use super::{load, Ecr};
use crate::store::{ReadTxn, Table};

/// The actions a registry policy covers under scope `V1`.
pub const REGISTRY_POLICY_V1_ACTIONS: &[&str] = &[
    "ecr:ReplicateImage",
    "ecr:BatchImportUpstreamImage",
    "ecr:CreateRepository",
];

/// A `/v2/` request, as far as access is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryRequest {
    /// `GET /v2/_catalog`.
    Catalog,
    /// `GET /v2/<name>/tags/list`.
    ListTags,
    /// `GET|HEAD /v2/<name>/manifests/<ref>`, and the referrers listing.
    PullManifest,
    /// `GET /v2/<name>/blobs/<digest>`.
    PullBlob,
    /// `HEAD /v2/<name>/blobs/<digest>`.
    CheckBlob,
    /// `POST /v2/<name>/blobs/uploads/` and an upload's status.
    StartUpload,
    /// `PATCH` of an upload.
    UploadChunk,
    /// The final `PUT` of an upload.
    CompleteUpload,
    /// `PUT /v2/<name>/manifests/<ref>`.
    PushManifest,
    /// `DELETE` of a manifest or a blob.
    Delete,
}

impl RegistryRequest {
    /// The ECR actions the request needs, all of them.
    pub fn actions(self) -> &'static [&'static str] {
        use RegistryRequest as R;
        match self {
            R::Catalog => &["ecr:DescribeRepositories"],
            R::ListTags => &["ecr:ListImages"],
            R::PullManifest => &["ecr:BatchGetImage"],
            R::PullBlob => &["ecr:GetDownloadUrlForLayer"],
            R::CheckBlob => &["ecr:BatchCheckLayerAvailability"],
            R::StartUpload => &["ecr:InitiateLayerUpload"],
            R::UploadChunk => &["ecr:UploadLayerPart"],
            R::CompleteUpload => &["ecr:CompleteLayerUpload"],
            R::PushManifest => &["ecr:PutImage"],
            R::Delete => &["ecr:BatchDeleteImage"],
        }
    }
}

/// Parsed policies by their text: stored policies are parsed once, not on
/// every request.
#[derive(Default)]
pub struct PolicyCache {
    parsed: RwLock<HashMap<String, Arc<Policy>>>,
}

/// Distinct policy texts kept parsed; past this the cache starts over.
const POLICY_CACHE_LIMIT: usize = 4096;

impl PolicyCache {
    /// The parsed form of a stored policy.
    fn get(&self, text: &str, kind: PolicyKind) -> EcrResult<Arc<Policy>> {
        let key = format!("{kind:?}\n{text}");
        if let Some(policy) = self.parsed.read().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(policy);
        }
        let policy = Arc::new(Policy::parse(text, kind).map_err(|e| {
            EcrError::new(
                ErrorKind::Server,
                format!("a stored policy no longer parses: {}", e.reason),
            )
        })?);
        if let Ok(mut map) = self.parsed.write() {
            if map.len() >= POLICY_CACHE_LIMIT {
                map.clear();
            }
            map.insert(key, policy.clone());
        }
        Ok(policy)
    }
}

/// The registry-level facts a decision needs, read once per request.
pub(crate) struct RegistryPolicies {
    policy: Option<Arc<Policy>>,
    covers_all_actions: bool,
}

/// The ARN of a repository, or `*` for a registry-level request.
pub fn resource_arn(scope: &Scope, repository: Option<&str>) -> String {
    match repository {
        Some(name) => format!(
            "arn:aws:ecr:{}:{}:repository/{name}",
            scope.region, scope.account
        ),
        None => "*".to_string(),
    }
}

impl Ecr {
    /// Refuses, with AWS's AccessDeniedException, unless `caller` may
    /// perform `action` (`ecr:<Action>`) on `repository` (or, with `None`,
    /// on the registry) of `scope`.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        scope: &Scope,
        repository: Option<&str>,
    ) -> EcrResult<()> {
        self.authorize_all(caller, &[action], scope, repository)
    }

    /// [`Ecr::authorize`] for several actions that one request needs.
    pub fn authorize_all(
        &self,
        caller: &Caller,
        actions: &[&str],
        scope: &Scope,
        repository: Option<&str>,
    ) -> EcrResult<()> {
        let tx = self.store.read()?;
        let registry = self.registry_policies(&*tx, scope)?;
        let record: Option<RepositoryRecord> = match repository {
            Some(name) => load(&*tx, Table::Repositories, &repository_key(scope, name))?,
            None => None,
        };
        drop(tx);
        for action in actions {
            self.check(
                caller,
                action,
                scope,
                repository,
                record.as_ref(),
                &registry,
            )?;
        }
        Ok(())
    }

    /// Whether `caller` may perform `action` on an already loaded
    /// repository: listings show only what the caller may see.
    pub fn may_see(
        &self,
        caller: &Caller,
        action: &str,
        scope: &Scope,
        records: &[RepositoryRecord],
    ) -> EcrResult<Vec<bool>> {
        let tx = self.store.read()?;
        let registry = self.registry_policies(&*tx, scope)?;
        drop(tx);
        records
            .iter()
            .map(|r| {
                Ok(self
                    .decide(caller, action, scope, Some(&r.name), Some(r), &registry)?
                    .is_allowed())
            })
            .collect()
    }

    pub(crate) fn registry_policies(
        &self,
        tx: &(impl ReadTxn + ?Sized),
        scope: &Scope,
    ) -> EcrResult<RegistryPolicies> {
        let record: RegistryRecord =
            load(tx, Table::Registries, &scope.key_prefix())?.unwrap_or_default();
        let Some(text) = record.registry_policy else {
            return Ok(RegistryPolicies {
                policy: None,
                covers_all_actions: true,
            });
        };
        let policy = self.policies.get(&text, PolicyKind::Registry)?;
        let v1 = load::<String>(
            tx,
            Table::AccountSettings,
            &format!("{}REGISTRY_POLICY_SCOPE", scope.key_prefix()),
        )?
        .is_some_and(|v| v == "V1");
        Ok(RegistryPolicies {
            policy: Some(policy),
            covers_all_actions: !v1,
        })
    }

    fn check(
        &self,
        caller: &Caller,
        action: &str,
        scope: &Scope,
        repository: Option<&str>,
        record: Option<&RepositoryRecord>,
        registry: &RegistryPolicies,
    ) -> EcrResult<()> {
        let decision = self.decide(caller, action, scope, repository, record, registry)?;
        match decision.denial_message(
            &caller.principal_arn,
            action,
            &resource_arn(scope, repository),
        ) {
            None => Ok(()),
            Some(message) => Err(EcrError::new(ErrorKind::AccessDenied, message)),
        }
    }

    /// The decision for one action, with the repository policy of `record`
    /// (when the repository exists) and the registry's policy.
    pub(crate) fn decide(
        &self,
        caller: &Caller,
        action: &str,
        scope: &Scope,
        repository: Option<&str>,
        record: Option<&RepositoryRecord>,
        registry: &RegistryPolicies,
    ) -> EcrResult<Decision> {
        let repository_policy = match record.and_then(|r| r.repository_policy.as_deref()) {
            Some(text) => Some(self.policies.get(text, PolicyKind::Repository)?),
            None => None,
        };
        let registry_policy = registry.policy.as_ref().filter(|_| {
            registry.covers_all_actions
                || REGISTRY_POLICY_V1_ACTIONS
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(action))
        });
        let same_account = caller.account == scope.account;
        if same_account
            && caller.identity_policy.is_none()
            && repository_policy.is_none()
            && registry_policy.is_none()
        {
            // Nothing can deny, and an unrestricted principal may act in
            // its own account.
            return Ok(Decision::Allow);
        }
        let resource_policies: Vec<&Policy> = repository_policy
            .iter()
            .map(|p| &**p)
            .chain(registry_policy.map(|p| &**p))
            .collect();
        let context = self.condition_context(caller, record);
        let principal = Principal {
            arn: &caller.principal_arn,
            account: caller.account.as_str(),
            service: None,
        };
        Ok(access::evaluate(
            &principal,
            action,
            &resource_arn(scope, repository),
            scope.account.as_str(),
            &context,
            caller.identity_policy.as_deref(),
            &resource_policies,
        ))
    }

    /// The facts policy conditions see: the caller's, the clock's (ecrd's
    /// clock, so tests can move `aws:CurrentTime`), and the repository's tags.
    fn condition_context(&self, caller: &Caller, record: Option<&RepositoryRecord>) -> Context {
        let mut context = Context::new();
        context.set("aws:PrincipalAccount", caller.account.as_str());
        context.set("aws:PrincipalArn", caller.principal_arn.as_str());
        context.set("aws:PrincipalType", caller.principal_type());
        context.set("aws:userid", caller.user_id.as_str());
        if let Some(name) = caller.user_name() {
            context.set("aws:username", name);
        }
        if let Some(ip) = caller.source_ip {
            context.set("aws:SourceIp", ip.to_string());
        }
        context.set(
            "aws:SecureTransport",
            if caller.secure_transport {
                "true"
            } else {
                "false"
            },
        );
        let now = self.clock.now();
        context.set(
            "aws:CurrentTime",
            now.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        );
        context.set("aws:EpochTime", (epoch_seconds(now) as i64).to_string());
        for (key, value) in &caller.tags {
            context.set(&format!("aws:PrincipalTag/{key}"), value.as_str());
        }
        if let Some(record) = record {
            for tag in &record.tags {
                context.set(&format!("aws:ResourceTag/{}", tag.key), tag.value.as_str());
                context.set(&format!("ecr:ResourceTag/{}", tag.key), tag.value.as_str());
            }
        }
        context
    }
}

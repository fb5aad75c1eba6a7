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
use super::records::RepositoryRecord;
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
    /// `POST /v2/<name>/blobs/uploads/?digest=`: a whole layer push in one
    /// request.
    MonolithicUpload,
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
    /// Whether the request only reads: on a public registry anyone may.
    pub fn is_pull(self) -> bool {
        use RegistryRequest as R;
        matches!(
            self,
            R::Catalog | R::ListTags | R::PullManifest | R::PullBlob | R::CheckBlob
        )
    }

    /// The ECR Public actions a request that writes needs (the public
    /// registry's pulls need none).
    pub fn public_actions(self) -> &'static [&'static str] {
        use RegistryRequest as R;
        match self {
            R::Catalog | R::ListTags | R::PullManifest | R::PullBlob | R::CheckBlob => &[],
            R::StartUpload => &["ecr-public:InitiateLayerUpload"],
            R::MonolithicUpload => &[
                "ecr-public:InitiateLayerUpload",
                "ecr-public:UploadLayerPart",
                "ecr-public:CompleteLayerUpload",
            ],
            R::UploadChunk => &["ecr-public:UploadLayerPart"],
            R::CompleteUpload => &["ecr-public:CompleteLayerUpload"],
            R::PushManifest => &["ecr-public:PutImage"],
            R::Delete => &["ecr-public:BatchDeleteImage"],
        }
    }

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
            R::MonolithicUpload => &[
                "ecr:InitiateLayerUpload",
                "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload",
            ],
            R::UploadChunk => &["ecr:UploadLayerPart"],
            R::CompleteUpload => &["ecr:CompleteLayerUpload"],
            R::PushManifest => &["ecr:PutImage"],
            R::Delete => &["ecr:BatchDeleteImage"],
        }
    }
}

/// What [`Ecr::authorize_public_request`] decided short of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicAccess {
    Allowed,
    /// An anonymous request that writes: it must log in first.
    NeedsLogin,
}

/// Parsed policies by their text: stored policies are parsed once, not on
/// every request. One map per kind, looked up by the text without copying it.
#[derive(Default)]
pub struct PolicyCache {
    repository: RwLock<HashMap<String, Arc<Policy>>>,
    registry: RwLock<HashMap<String, Arc<Policy>>>,
}

/// Distinct policy texts kept parsed per kind; past this the cache starts over.
const POLICY_CACHE_LIMIT: usize = 4096;

impl PolicyCache {
    /// The parsed form of a stored policy.
    fn get(&self, text: &str, kind: PolicyKind) -> EcrResult<Arc<Policy>> {
        let map = match kind {
            PolicyKind::Registry => &self.registry,
            _ => &self.repository,
        };
        if let Some(policy) = map.read().ok().and_then(|m| m.get(text).cloned()) {
            return Ok(policy);
        }
        let policy = Arc::new(Policy::parse(text, kind).map_err(|e| {
            EcrError::new(
                ErrorKind::Server,
                format!("a stored policy no longer parses: {}", e.reason),
            )
        })?);
        if let Ok(mut map) = map.write() {
            if map.len() >= POLICY_CACHE_LIMIT {
                map.clear();
            }
            map.insert(text.to_string(), policy.clone());
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
        Some(name) => super::arn::repository_arn_of(scope, name),
        None => "*".to_string(),
    }
}

/// A stored policy's text, without copying or decoding it twice.
fn stored_text(bytes: &[u8]) -> EcrResult<&str> {
    std::str::from_utf8(bytes)
        .map_err(|_| EcrError::new(ErrorKind::Server, "a stored policy is not UTF-8"))
}

/// Actions that start or finish a push (create-on-push applies to them).
const PUSH_ACTIONS: &[&str] = &[
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
];

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

    /// Refuses a `/v2/` request unless the caller may make it: every action
    /// the request needs on `repository`, and, for a cross-repository mount,
    /// reading the layer from `mount_from`.
    pub fn authorize_registry_request(
        &self,
        caller: &Caller,
        request: RegistryRequest,
        scope: &Scope,
        repository: Option<&str>,
        mount_from: Option<&str>,
    ) -> EcrResult<()> {
        self.authorize_all(caller, request.actions(), scope, repository)?;
        if let Some(from) = mount_from {
            self.authorize_all(
                caller,
                RegistryRequest::PullBlob.actions(),
                scope,
                Some(from),
            )?;
        }
        Ok(())
    }

    /// The public registry's rule (ECR Public): anyone, logged in or not,
    /// may pull; a write needs a caller (`NeedsLogin` without one) whom
    /// ECR Public's actions allow on the repository.
    pub fn authorize_public_request(
        &self,
        caller: Option<&Caller>,
        request: RegistryRequest,
        scope: &Scope,
        repository: Option<&str>,
    ) -> EcrResult<PublicAccess> {
        if request.is_pull() {
            return Ok(PublicAccess::Allowed);
        }
        let Some(caller) = caller else {
            return Ok(PublicAccess::NeedsLogin);
        };
        self.authorize_all(caller, request.public_actions(), scope, repository)?;
        Ok(PublicAccess::Allowed)
    }

    /// The repositories of a catalog page the caller may see.
    pub fn visible_in_catalog(
        &self,
        caller: &Caller,
        scope: &Scope,
        names: Vec<String>,
    ) -> Vec<String> {
        names
            .into_iter()
            .filter(|name| {
                self.authorize_all(
                    caller,
                    RegistryRequest::Catalog.actions(),
                    scope,
                    Some(name),
                )
                .is_ok()
            })
            .collect()
    }

    /// [`Ecr::authorize`] for several actions that one request needs.
    /// A push that would create its repository from a CREATE_ON_PUSH
    /// template also needs `ecr:CreateRepository`.
    pub fn authorize_all(
        &self,
        caller: &Caller,
        actions: &[&str],
        scope: &Scope,
        repository: Option<&str>,
    ) -> EcrResult<()> {
        let tx = self.store.read()?;
        let registry = self.registry_policies(&*tx, scope)?;
        let (policy, record) = match repository {
            Some(name) => {
                let key = repository_key(scope, name);
                let policy = self.repository_policy(&*tx, &key)?;
                // The record is read only for conditions on its tags.
                let needs_tags = tests_resource_tags(&[
                    caller.identity_policy.as_deref(),
                    policy.as_deref(),
                    registry.policy.as_deref(),
                ]);
                let record: Option<RepositoryRecord> = if needs_tags {
                    load(&*tx, Table::Repositories, &key)?
                } else {
                    None
                };
                (policy, record)
            }
            None => (None, None),
        };
        let mut needed: Vec<&str> = actions.to_vec();
        if let Some(name) = repository {
            // A push to a missing repository that a CREATE_ON_PUSH template
            // covers creates it: the pusher must also be allowed to create
            // it (ECR user guide, "Repository creation templates").
            if actions.iter().any(|a| PUSH_ACTIONS.contains(a))
                && record.is_none()
                && tx
                    .get(Table::Repositories, &repository_key(scope, name))?
                    .is_none()
                && self
                    .matching_template(&*tx, scope, name, super::templates::CREATE_ON_PUSH)?
                    .is_some()
            {
                needed.push("ecr:CreateRepository");
            }
        }
        drop(tx);
        for action in &needed {
            let decision = self.decide(
                caller,
                action,
                scope,
                repository,
                record.as_ref(),
                policy.as_deref(),
                &registry,
            )?;
            if let Some(message) = decision.denial_message(
                &caller.principal_arn,
                action,
                &resource_arn(scope, repository),
            ) {
                return Err(EcrError::new(ErrorKind::AccessDenied, message));
            }
        }
        Ok(())
    }

    /// Whether `caller` may perform `action` on each of some already loaded
    /// repositories: listings show only what the caller may see.
    pub fn may_see(
        &self,
        caller: &Caller,
        action: &str,
        scope: &Scope,
        records: &[RepositoryRecord],
    ) -> EcrResult<Vec<bool>> {
        let tx = self.store.read()?;
        let registry = self.registry_policies(&*tx, scope)?;
        records
            .iter()
            .map(|r| {
                let policy = self.repository_policy(&*tx, &repository_key(scope, &r.name))?;
                Ok(self
                    .decide(
                        caller,
                        action,
                        scope,
                        Some(&r.name),
                        Some(r),
                        policy.as_deref(),
                        &registry,
                    )?
                    .is_allowed())
            })
            .collect()
    }

    /// The parsed policy of the repository stored under `key`, if it has one.
    fn repository_policy(
        &self,
        tx: &(impl ReadTxn + ?Sized),
        key: &str,
    ) -> EcrResult<Option<Arc<Policy>>> {
        // A public repository's key is in the public namespace.
        let kind = if key.split('/').nth(1) == Some(super::names::PUBLIC_NAMESPACE) {
            PolicyKind::PublicRepository
        } else {
            PolicyKind::Repository
        };
        match tx.get(Table::RepositoryPolicies, key)? {
            Some(bytes) => Ok(Some(self.policies.get(stored_text(&bytes)?, kind)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn registry_policies(
        &self,
        tx: &(impl ReadTxn + ?Sized),
        scope: &Scope,
    ) -> EcrResult<RegistryPolicies> {
        let Some(bytes) = tx.get(Table::RegistryPolicies, &scope.key_prefix())? else {
            return Ok(RegistryPolicies {
                policy: None,
                covers_all_actions: true,
            });
        };
        let policy = self
            .policies
            .get(stored_text(&bytes)?, PolicyKind::Registry)?;
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

    /// The decision for one action, given the repository (when it exists),
    /// its policy and the registry's policies.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decide(
        &self,
        caller: &Caller,
        action: &str,
        scope: &Scope,
        repository: Option<&str>,
        record: Option<&RepositoryRecord>,
        repository_policy: Option<&Policy>,
        registry: &RegistryPolicies,
    ) -> EcrResult<Decision> {
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
            .into_iter()
            .chain(registry_policy.map(|p| &**p))
            .collect();
        let all_policies: Vec<&Policy> = caller
            .identity_policy
            .as_deref()
            .into_iter()
            .chain(resource_policies.iter().copied())
            .collect();
        let context = self.condition_context(caller, record, &all_policies);
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
    /// The facts policy conditions see — only those some applicable policy
    /// tests: the caller's, the clock's (ecrd's clock, so tests can move
    /// `aws:CurrentTime`), and the repository's tags.
    fn condition_context(
        &self,
        caller: &Caller,
        record: Option<&RepositoryRecord>,
        policies: &[&Policy],
    ) -> Context {
        let mut context = Context::new();
        for key in policies.iter().flat_map(|p| p.condition_keys()) {
            if context.get(key).is_some() {
                continue;
            }
            let lower = key.to_ascii_lowercase();
            let tag = |prefix: &str| lower.strip_prefix(prefix).map(|_| &key[prefix.len()..]);
            let value: Option<String> = match lower.as_str() {
                "aws:principalaccount" => Some(caller.account.to_string()),
                "aws:principalarn" => Some(caller.principal_arn.clone()),
                "aws:principaltype" => Some(caller.principal_type().to_string()),
                "aws:userid" => Some(caller.user_id.clone()),
                "aws:username" => caller.user_name().map(str::to_string),
                "aws:sourceip" => caller.source_ip.map(|ip| ip.to_string()),
                "aws:securetransport" => Some(caller.secure_transport.to_string()),
                "aws:currenttime" => self
                    .clock
                    .now()
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok(),
                "aws:epochtime" => Some((epoch_seconds(self.clock.now()) as i64).to_string()),
                _ => {
                    if let Some(name) = tag("aws:principaltag/") {
                        caller
                            .tags
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                            .map(|(_, v)| v.clone())
                    } else if let Some(name) =
                        tag("aws:resourcetag/").or_else(|| tag("ecr:resourcetag/"))
                    {
                        record.and_then(|r| {
                            r.tags
                                .iter()
                                .find(|t| t.key.eq_ignore_ascii_case(name))
                                .map(|t| t.value.clone())
                        })
                    } else {
                        None
                    }
                }
            };
            if let Some(value) = value {
                context.set(key, value);
            }
        }
        context
    }
}

/// Whether any of the policies tests a repository's tags (so the
/// repository record must be read for the decision).
fn tests_resource_tags(policies: &[Option<&Policy>]) -> bool {
    policies.iter().flatten().any(|p| {
        p.condition_keys().any(|k| {
            let k = k.to_ascii_lowercase();
            k.starts_with("aws:resourcetag/") || k.starts_with("ecr:resourcetag/")
        })
    })
}

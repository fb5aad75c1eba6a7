//! The caller of a domain operation: who is asking (account, principal,
//! tags, identity policy) and from where (region, source address,
//! transport). Adapters build it from what they verified — a SigV4
//! signature on the control plane, a registry password on `/v2/` — and pass
//! it down; the domain decides what it may do (`ecr::authorize`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::access::Policy;
use super::names::{AccountId, Region, Scope};

/// Who is calling, as the adapter proved it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's own account.
    pub account: AccountId,
    /// The region the request was signed for (or the password issued in).
    pub region: Region,
    /// The IAM principal: `arn:aws:iam::<account>:root`, a user, role or
    /// assumed-role session ARN.
    pub principal_arn: String,
    /// STS's `UserId` of the principal.
    pub user_id: String,
    pub access_key_id: String,
    /// The client's address, for `aws:SourceIp`.
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// Principal tags (`aws:PrincipalTag/<key>`).
    pub tags: BTreeMap<String, String>,
    /// The identity policy limiting the principal; `None` is full access in
    /// its own account.
    pub identity_policy: Option<Arc<Policy>>,
}

impl Caller {
    /// The caller's own registry in the request's region.
    pub fn scope(&self) -> Scope {
        Scope::new(self.account.clone(), self.region.clone())
    }

    /// `aws:PrincipalType`: `Account` (root), `User` or `AssumedRole`.
    pub fn principal_type(&self) -> &'static str {
        let resource = self.principal_arn.splitn(6, ':').nth(5).unwrap_or("");
        if resource == "root" {
            "Account"
        } else if resource.starts_with("assumed-role/") {
            "AssumedRole"
        } else if resource.starts_with("role/") {
            "Role"
        } else {
            "User"
        }
    }

    /// `aws:username`: the user's name, for IAM users only.
    pub fn user_name(&self) -> Option<&str> {
        let resource = self.principal_arn.splitn(6, ':').nth(5)?;
        resource
            .strip_prefix("user/")
            .map(|path| path.rsplit('/').next().unwrap_or(path))
    }
}

//! The decision: does this caller get to perform this action on this
//! resource, given the caller's identity policy and the resource's policies?
//!
//! Implements the IAM User Guide's "Policy evaluation logic" for the two
//! policy types ecrd has (identity-based and resource-based; no SCPs,
//! permissions boundaries or session policies):
//! - an explicit `Deny` in any applicable policy wins ("The difference
//!   between explicit and implicit denies");
//! - within one account an `Allow` in either policy type suffices ("Policy
//!   evaluation for requests within a single account");
//! - across accounts both the resource's policy and the caller's identity
//!   policy must allow ("Cross-account policy evaluation logic").
//!
//! Statement matching follows "IAM JSON policy elements": `Action` and
//! `NotAction` (case-insensitive wildcards), `Resource` and `NotResource`
//! (case-sensitive wildcards), `Principal` and `NotPrincipal` (resource
//! policies only; a role names its sessions too), then `Condition`.

use super::conditions::Context;
use super::glob;
use super::policy::{AwsPrincipal, Effect, PatternMatch, Policy, PrincipalMatch, Statement};

/// The caller as the evaluator sees it.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// `arn:aws:iam::111111111111:root`, `...:user/ci`, `...:role/R` or
    /// `arn:aws:sts::111111111111:assumed-role/R/S`.
    pub arn: &'a str,
    /// The caller's 12-digit account.
    pub account: &'a str,
    /// A service principal such as `ecr.amazonaws.com`; `None` for IAM callers.
    pub service: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDenyInResourcePolicy,
    ExplicitDenyInIdentityPolicy,
    NoResourcePolicyAllows,
    NoIdentityPolicyAllows,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        *self == Decision::Allow
    }

    /// AWS's sentence for a denial, e.g. "User: arn:aws:iam::222222222222:root
    /// is not authorized to perform: ecr:DescribeImages on resource:
    /// arn:aws:ecr:us-east-1:111111111111:repository/prod/api because no
    /// resource-based policy allows the ecr:DescribeImages action"; `None`
    /// for `Allow`.
    pub fn denial_message(
        &self,
        principal_arn: &str,
        action: &str,
        resource: &str,
    ) -> Option<String> {
        let why = match self {
            Decision::Allow => return None,
            Decision::NoResourcePolicyAllows => {
                format!("because no resource-based policy allows the {action} action")
            }
            Decision::NoIdentityPolicyAllows => {
                format!("because no identity-based policy allows the {action} action")
            }
            Decision::ExplicitDenyInResourcePolicy => {
                "with an explicit deny in a resource-based policy".to_string()
            }
            Decision::ExplicitDenyInIdentityPolicy => {
                "with an explicit deny in an identity-based policy".to_string()
            }
        };
        Some(format!(
            "User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {why}"
        ))
    }
}

/// Decides one request.
///
/// `identity`: the caller's identity policy; `None` means none is
/// configured, which ecrd treats as full permissions inside the caller's own
/// account (like an administrator).
/// `resource_policies`: the resource-based policies that apply (a
/// repository policy and/or a registry policy); a statement without
/// `Resource`/`NotResource` applies to `resource` implicitly.
/// `resource_account`: the account that owns the resource.
pub fn evaluate(
    principal: &Principal,
    action: &str,
    resource: &str,
    resource_account: &str,
    context: &Context,
    identity: Option<&Policy>,
    resource_policies: &[&Policy],
) -> Decision {
    let request = Request {
        action,
        resource,
        context,
    };
    let resource_says = |effect| {
        resource_policies
            .iter()
            .any(|policy| request.any_statement(policy, effect, Some(principal)))
    };
    let identity_says =
        |effect| identity.is_some_and(|policy| request.any_statement(policy, effect, None));

    // Denies first, resource policies before the identity policy, so the
    // message names the resource policy when both deny.
    if resource_says(Effect::Deny) {
        return Decision::ExplicitDenyInResourcePolicy;
    }
    if identity_says(Effect::Deny) {
        return Decision::ExplicitDenyInIdentityPolicy;
    }
    let identity_allows = identity.is_none() || identity_says(Effect::Allow);
    let resource_allows = resource_says(Effect::Allow);
    if principal.account == resource_account {
        if identity_allows || resource_allows {
            Decision::Allow
        } else {
            Decision::NoIdentityPolicyAllows
        }
    } else if !resource_allows {
        Decision::NoResourcePolicyAllows
    } else if !identity_allows {
        Decision::NoIdentityPolicyAllows
    } else {
        Decision::Allow
    }
}

/// What is being asked, independent of who asks.
struct Request<'a> {
    action: &'a str,
    resource: &'a str,
    context: &'a Context,
}

impl Request<'_> {
    /// Whether any statement of `policy` with this effect applies. `who` is
    /// the caller for a resource policy, `None` for an identity policy
    /// (which applies to whoever holds it).
    fn any_statement(&self, policy: &Policy, effect: Effect, who: Option<&Principal>) -> bool {
        policy
            .statements
            .iter()
            .any(|statement| statement.effect == effect && self.applies(statement, who))
    }

    fn applies(&self, statement: &Statement, who: Option<&Principal>) -> bool {
        // Cheapest and most selective first; conditions last.
        if !action_matches(&statement.action, self.action) {
            return false;
        }
        if let Some(caller) = who {
            match &statement.principal {
                Some(principal) if principal_matches(principal, caller) => {}
                // A resource-policy statement without a principal grants
                // nobody anything (the parser never produces one).
                _ => return false,
            }
        }
        if let Some(resource) = &statement.resource {
            if !resource_matches(resource, self.resource) {
                return false;
            }
        }
        statement.condition.is_satisfied(self.context)
    }
}

fn action_matches(element: &PatternMatch, action: &str) -> bool {
    let named = element
        .patterns
        .iter()
        .any(|pattern| pattern == "*" || glob::matches_ignore_case(pattern, action));
    named != element.negated
}

fn resource_matches(element: &PatternMatch, resource: &str) -> bool {
    let named = element
        .patterns
        .iter()
        .any(|pattern| glob::matches(pattern, resource));
    named != element.negated
}

fn principal_matches(element: &PrincipalMatch, caller: &Principal) -> bool {
    let named = element.anyone
        || caller
            .service
            .is_some_and(|service| element.services.iter().any(|s| s == service))
        || (caller.service.is_none()
            && element
                .aws
                .iter()
                .any(|aws| aws_principal_matches(aws, caller)));
    named != element.negated
}

fn aws_principal_matches(aws: &AwsPrincipal, caller: &Principal) -> bool {
    match aws {
        AwsPrincipal::AnyAws => true,
        AwsPrincipal::Account(account) => caller.account == account,
        AwsPrincipal::Exact(arn) => caller.arn == arn,
        AwsPrincipal::Role {
            arn,
            session_prefix,
        } => {
            caller.arn == arn
                || caller
                    .arn
                    .strip_prefix(session_prefix.as_str())
                    .is_some_and(|session| !session.is_empty() && !session.contains('/'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecr::access::PolicyKind;
    use serde_json::{json, Value};

    const OWNER: &str = "111111111111";
    const OTHER: &str = "222222222222";
    const REPO: &str = "arn:aws:ecr:us-east-1:111111111111:repository/prod/api";

    fn policy(kind: PolicyKind, document: Value) -> Policy {
        Policy::parse(&document.to_string(), kind)
            .unwrap_or_else(|e| panic!("{document}: {}", e.reason))
    }

    fn identity(statements: Value) -> Policy {
        policy(
            PolicyKind::Identity,
            json!({"Version": "2012-10-17", "Statement": statements}),
        )
    }

    fn repository(statements: Value) -> Policy {
        policy(
            PolicyKind::Repository,
            json!({"Version": "2012-10-17", "Statement": statements}),
        )
    }

    fn registry(statements: Value) -> Policy {
        policy(
            PolicyKind::Registry,
            json!({"Version": "2012-10-17", "Statement": statements}),
        )
    }

    fn iam(arn: &'static str) -> Principal<'static> {
        let account = arn.split(':').nth(4).unwrap_or_default();
        Principal {
            arn,
            account,
            service: None,
        }
    }

    /// One request against some policies, with the decision expected.
    struct Case {
        name: &'static str,
        caller: Principal<'static>,
        action: &'static str,
        resource: &'static str,
        facts: Vec<(&'static str, &'static str)>,
        identity: Option<Policy>,
        resource_policies: Vec<Policy>,
        expected: Decision,
    }

    impl Case {
        fn new(
            name: &'static str,
            caller: Principal<'static>,
            action: &'static str,
            expected: Decision,
        ) -> Case {
            Case {
                name,
                caller,
                action,
                resource: REPO,
                facts: Vec::new(),
                identity: None,
                resource_policies: Vec::new(),
                expected,
            }
        }
        fn on(mut self, resource: &'static str) -> Case {
            self.resource = resource;
            self
        }
        fn with_identity(mut self, policy: Policy) -> Case {
            self.identity = Some(policy);
            self
        }
        fn with_resource_policy(mut self, policy: Policy) -> Case {
            self.resource_policies.push(policy);
            self
        }
        fn fact(mut self, key: &'static str, value: &'static str) -> Case {
            self.facts.push((key, value));
            self
        }
        fn run(&self) {
            let mut context = Context::new();
            for (key, value) in &self.facts {
                context.set(key, *value);
            }
            let resource_policies: Vec<&Policy> = self.resource_policies.iter().collect();
            let resource_account = self
                .resource
                .split(':')
                .nth(4)
                .filter(|a| !a.is_empty())
                .unwrap_or(OWNER);
            let decision = evaluate(
                &self.caller,
                self.action,
                self.resource,
                resource_account,
                &context,
                self.identity.as_ref(),
                &resource_policies,
            );
            assert_eq!(decision, self.expected, "{}", self.name);
        }
    }

    fn pull_from(principal: Value) -> Policy {
        repository(json!([{
            "Effect": "Allow",
            "Principal": principal,
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        }]))
    }

    fn allow_all_ecr() -> Policy {
        identity(json!([{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]))
    }

    #[test]
    fn decision_table() {
        use Decision::*;
        let owner_root = iam("arn:aws:iam::111111111111:root");
        let owner_ci = iam("arn:aws:iam::111111111111:user/ci");
        let other_root = iam("arn:aws:iam::222222222222:root");
        let other_ci = iam("arn:aws:iam::222222222222:user/ci");
        let other_deployer = iam("arn:aws:iam::222222222222:role/Deployer");
        let other_session = iam("arn:aws:sts::222222222222:assumed-role/Deployer/build-42");
        let other_wrong_session = iam("arn:aws:sts::222222222222:assumed-role/DeployerX/build-42");
        let lambda = Principal {
            arn: "arn:aws:iam::111111111111:root",
            account: OWNER,
            service: Some("lambda.amazonaws.com"),
        };
        let lambda_cross = Principal {
            arn: "lambda.amazonaws.com",
            account: OTHER,
            service: Some("lambda.amazonaws.com"),
        };

        let cases = vec![
            // --- Same account.
            Case::new("no policies at all: the owner acts freely", owner_ci, "ecr:PutImage", Allow),
            Case::new("identity policy allows", owner_ci, "ecr:PutImage", Allow).with_identity(allow_all_ecr()),
            Case::new("identity policy does not name the action", owner_ci, "ecr:PutImage", NoIdentityPolicyAllows)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "ecr:Describe*", "Resource": "*"}))),
            Case::new("identity policy names another repository", owner_ci, "ecr:PutImage", NoIdentityPolicyAllows)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:111111111111:repository/dev/*"}))),
            Case::new("identity policy's repository wildcard", owner_ci, "ecr:PutImage", Allow)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:111111111111:repository/prod/*"}))),
            Case::new("resource wildcards are case-sensitive", owner_ci, "ecr:PutImage", NoIdentityPolicyAllows)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:111111111111:repository/PROD/*"}))),
            Case::new("action wildcards are case-insensitive", owner_ci, "ecr:PutImage", Allow)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "ECR:put*", "Resource": "*"}))),
            Case::new("a bare * action", owner_ci, "ecr:PutImage", Allow)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "*", "Resource": "*"}))),
            Case::new("? stands for one character", owner_ci, "ecr:PutImage", Allow)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "ecr:PutImag?", "Resource": "*"}))),
            Case::new("another service's actions do not count", owner_ci, "ecr:PutImage", NoIdentityPolicyAllows)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))),
            Case::new("same account: a resource policy alone suffices", owner_ci, "ecr:BatchGetImage", Allow)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"})))
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:iam::111111111111:user/ci"}))),
            Case::new("same account: neither allows", owner_ci, "ecr:PutImage", NoIdentityPolicyAllows)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"})))
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:iam::111111111111:user/ci"}))),
            Case::new("same account, no identity policy, resource policy silent: allowed", owner_ci, "ecr:PutImage", Allow)
                .with_resource_policy(pull_from(json!({"AWS": OTHER}))),
            // --- Explicit denies.
            Case::new("identity deny beats identity allow", owner_ci, "ecr:DeleteRepository", ExplicitDenyInIdentityPolicy)
                .with_identity(identity(json!([
                    {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "ecr:Delete*", "Resource": "*"}
                ]))),
            Case::new("identity deny beats a resource allow", owner_ci, "ecr:BatchGetImage", ExplicitDenyInIdentityPolicy)
                .with_identity(identity(json!({"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": REPO})))
                .with_resource_policy(pull_from(json!("*"))),
            Case::new("resource deny beats the owner's administrator rights", owner_ci, "ecr:BatchDeleteImage", ExplicitDenyInResourcePolicy)
                .with_resource_policy(repository(json!({"Effect": "Deny", "Principal": "*", "Action": "ecr:BatchDeleteImage"}))),
            Case::new("both deny: the resource policy is named", owner_ci, "ecr:BatchDeleteImage", ExplicitDenyInResourcePolicy)
                .with_identity(identity(json!({"Effect": "Deny", "Action": "*", "Resource": "*"})))
                .with_resource_policy(repository(json!({"Effect": "Deny", "Principal": {"AWS": OWNER}, "Action": "ecr:*"}))),
            Case::new("a deny in the registry policy counts too", owner_ci, "ecr:CreateRepository", ExplicitDenyInResourcePolicy)
                .with_resource_policy(pull_from(json!("*")))
                .with_resource_policy(registry(json!({
                    "Effect": "Deny", "Principal": "*", "Action": "ecr:CreateRepository",
                    "Resource": "arn:aws:ecr:us-east-1:111111111111:repository/*"
                }))),
            Case::new("a deny for another principal does not apply", owner_ci, "ecr:BatchDeleteImage", Allow)
                .with_resource_policy(repository(json!({"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111111111111:user/intern"}, "Action": "ecr:*"}))),
            Case::new("a deny whose condition fails does not apply", owner_ci, "ecr:BatchDeleteImage", Allow)
                .fact("aws:SourceIp", "10.1.2.3")
                .with_resource_policy(repository(json!({
                    "Effect": "Deny", "Principal": "*", "Action": "ecr:*",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
                }))),
            Case::new("a deny whose condition holds applies", owner_ci, "ecr:BatchDeleteImage", ExplicitDenyInResourcePolicy)
                .fact("aws:SourceIp", "192.0.2.1")
                .with_resource_policy(repository(json!({
                    "Effect": "Deny", "Principal": "*", "Action": "ecr:*",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
                }))),
            Case::new("deny unless TLS, request over TLS", owner_ci, "ecr:PutImage", Allow)
                .fact("aws:SecureTransport", "true")
                .with_identity(identity(json!([
                    {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                ]))),
            Case::new("deny unless TLS, plain request", owner_ci, "ecr:PutImage", ExplicitDenyInIdentityPolicy)
                .fact("aws:SecureTransport", "false")
                .with_identity(identity(json!([
                    {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                ]))),
            // --- NotAction, NotResource, NotPrincipal.
            Case::new("NotAction allow covers other actions", owner_ci, "ecr:PutImage", Allow)
                .with_identity(identity(json!({"Effect": "Allow", "NotAction": "ecr:Delete*", "Resource": "*"}))),
            Case::new("NotAction allow excludes the named ones", owner_ci, "ecr:DeleteRepository", NoIdentityPolicyAllows)
                .with_identity(identity(json!({"Effect": "Allow", "NotAction": "ecr:Delete*", "Resource": "*"}))),
            Case::new("NotAction deny: everything but reads", owner_ci, "ecr:PutImage", ExplicitDenyInIdentityPolicy)
                .with_identity(identity(json!([
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "NotAction": ["ecr:Describe*", "ecr:List*", "ecr:BatchGetImage"], "Resource": "*"}
                ]))),
            Case::new("NotAction deny lets the named reads through", owner_ci, "ecr:ListImages", Allow)
                .with_identity(identity(json!([
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "NotAction": ["ecr:Describe*", "ecr:List*"], "Resource": "*"}
                ]))),
            Case::new("NotResource deny outside the team prefix", owner_ci, "ecr:PutImage", ExplicitDenyInIdentityPolicy)
                .with_identity(identity(json!([
                    {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "ecr:*", "NotResource": "arn:aws:ecr:*:*:repository/team/*"}
                ]))),
            Case::new("NotResource deny spares the team prefix", owner_ci, "ecr:PutImage", Allow)
                .on("arn:aws:ecr:us-east-1:111111111111:repository/team/app")
                .with_identity(identity(json!([
                    {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "ecr:*", "NotResource": "arn:aws:ecr:*:*:repository/team/*"}
                ]))),
            Case::new("NotPrincipal deny hits everyone else", owner_ci, "ecr:BatchDeleteImage", ExplicitDenyInResourcePolicy)
                .with_resource_policy(repository(json!({
                    "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111111111111:role/Janitor"}, "Action": "ecr:BatchDeleteImage"
                }))),
            Case::new("NotPrincipal deny spares the named role's sessions", iam("arn:aws:sts::111111111111:assumed-role/Janitor/nightly"), "ecr:BatchDeleteImage", Allow)
                .with_resource_policy(repository(json!({
                    "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111111111111:role/Janitor"}, "Action": "ecr:BatchDeleteImage"
                }))),
            Case::new("NotPrincipal allow grants everyone else", other_ci, "ecr:BatchGetImage", Allow)
                .with_resource_policy(repository(json!({
                    "Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::222222222222:user/intern"}, "Action": "ecr:BatchGetImage"
                }))),
            Case::new("NotPrincipal allow skips the named user", iam("arn:aws:iam::222222222222:user/intern"), "ecr:BatchGetImage", NoResourcePolicyAllows)
                .with_resource_policy(repository(json!({
                    "Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::222222222222:user/intern"}, "Action": "ecr:BatchGetImage"
                }))),
            // --- Cross account.
            Case::new("cross account, no resource policy", other_root, "ecr:DescribeImages", NoResourcePolicyAllows),
            Case::new("cross account, identity allows but the repository does not", other_ci, "ecr:BatchGetImage", NoResourcePolicyAllows)
                .with_identity(allow_all_ecr()),
            Case::new("cross account, the repository names the account", other_ci, "ecr:BatchGetImage", Allow)
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:iam::222222222222:root"}))),
            Case::new("cross account, the account as a bare id", other_ci, "ecr:GetDownloadUrlForLayer", Allow)
                .with_resource_policy(pull_from(json!({"AWS": OTHER}))),
            Case::new("cross account, the repository names the account, identity silent", other_ci, "ecr:BatchGetImage", NoIdentityPolicyAllows)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"})))
                .with_resource_policy(pull_from(json!({"AWS": OTHER}))),
            Case::new("cross account, both allow", other_ci, "ecr:BatchGetImage", Allow)
                .with_identity(identity(json!({"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "arn:aws:ecr:us-east-1:111111111111:repository/*"})))
                .with_resource_policy(pull_from(json!({"AWS": OTHER}))),
            Case::new("cross account, action outside the grant", other_ci, "ecr:PutImage", NoResourcePolicyAllows)
                .with_resource_policy(pull_from(json!({"AWS": OTHER}))),
            Case::new("cross account, a different account is named", other_ci, "ecr:BatchGetImage", NoResourcePolicyAllows)
                .with_resource_policy(pull_from(json!({"AWS": "333333333333"}))),
            Case::new("cross account, a user ARN matches that user", other_ci, "ecr:BatchGetImage", Allow)
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:iam::222222222222:user/ci"}))),
            Case::new("cross account, a user ARN does not match the account root", other_root, "ecr:BatchGetImage", NoResourcePolicyAllows)
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:iam::222222222222:user/ci"}))),
            Case::new("cross account, a role ARN matches the role", other_deployer, "ecr:BatchGetImage", Allow)
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:iam::222222222222:role/Deployer"}))),
            Case::new("cross account, a role ARN matches its sessions", other_session, "ecr:BatchGetImage", Allow)
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:iam::222222222222:role/Deployer"}))),
            Case::new("cross account, a role with a path still matches its sessions", other_session, "ecr:BatchGetImage", Allow)
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:iam::222222222222:role/ci/Deployer"}))),
            Case::new("cross account, a role ARN does not match a similarly named role's session", other_wrong_session, "ecr:BatchGetImage", NoResourcePolicyAllows)
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:iam::222222222222:role/Deployer"}))),
            Case::new("cross account, a session ARN matches only that session", other_session, "ecr:BatchGetImage", Allow)
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:sts::222222222222:assumed-role/Deployer/build-42"}))),
            Case::new("cross account, another session of the role", iam("arn:aws:sts::222222222222:assumed-role/Deployer/build-43"), "ecr:BatchGetImage", NoResourcePolicyAllows)
                .with_resource_policy(pull_from(json!({"AWS": "arn:aws:sts::222222222222:assumed-role/Deployer/build-42"}))),
            Case::new("cross account, everyone", other_ci, "ecr:BatchGetImage", Allow).with_resource_policy(pull_from(json!("*"))),
            Case::new("cross account, every AWS principal", other_ci, "ecr:BatchGetImage", Allow)
                .with_resource_policy(pull_from(json!({"AWS": "*"}))),
            Case::new("cross account, everyone but a denied action", other_ci, "ecr:BatchGetImage", ExplicitDenyInResourcePolicy)
                .with_resource_policy(repository(json!([
                    {"Effect": "Allow", "Principal": "*", "Action": "ecr:*"},
                    {"Effect": "Deny", "Principal": {"AWS": OTHER}, "Action": "ecr:BatchGetImage"}
                ]))),
            Case::new("cross account, resource allows but identity denies", other_ci, "ecr:BatchGetImage", ExplicitDenyInIdentityPolicy)
                .with_identity(identity(json!([
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": "arn:aws:ecr:*:111111111111:*"}
                ])))
                .with_resource_policy(pull_from(json!({"AWS": OTHER}))),
            Case::new("cross account, the grant's condition holds", other_ci, "ecr:BatchGetImage", Allow)
                .fact("aws:PrincipalTag/team", "payments")
                .with_resource_policy(repository(json!({
                    "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "ecr:BatchGetImage",
                    "Condition": {"StringEquals": {"aws:PrincipalTag/Team": "payments"}}
                }))),
            Case::new("cross account, the grant's condition fails", other_ci, "ecr:BatchGetImage", NoResourcePolicyAllows)
                .fact("aws:PrincipalTag/team", "search")
                .with_resource_policy(repository(json!({
                    "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "ecr:BatchGetImage",
                    "Condition": {"StringEquals": {"aws:PrincipalTag/Team": "payments"}}
                }))),
            Case::new("cross account, grant with an organization-style ArnLike", other_session, "ecr:BatchGetImage", Allow)
                .fact("aws:PrincipalArn", "arn:aws:iam::222222222222:role/Deployer")
                .with_resource_policy(repository(json!({
                    "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage",
                    "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/Deploy*"}}
                }))),
            Case::new("cross account, time-limited grant still open", other_ci, "ecr:BatchGetImage", Allow)
                .fact("aws:CurrentTime", "2026-12-02T09:00:00Z")
                .with_resource_policy(repository(json!({
                    "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "ecr:BatchGetImage",
                    "Condition": {"DateLessThan": {"aws:CurrentTime": "2027-01-01"}}
                }))),
            Case::new("cross account, time-limited grant expired", other_ci, "ecr:BatchGetImage", NoResourcePolicyAllows)
                .fact("aws:CurrentTime", "2027-02-02T09:00:00Z")
                .with_resource_policy(repository(json!({
                    "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "ecr:BatchGetImage",
                    "Condition": {"DateLessThan": {"aws:CurrentTime": "2027-01-01"}}
                }))),
            // --- Registry policies: explicit resources.
            Case::new("registry policy grants replication into the registry", other_root, "ecr:ReplicateImage", Allow)
                .on("arn:aws:ecr:us-east-1:111111111111:repository/mirrored/app")
                .with_resource_policy(registry(json!({
                    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                    "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
                    "Resource": "arn:aws:ecr:us-east-1:111111111111:repository/*"
                }))),
            Case::new("registry policy for another region does not apply", other_root, "ecr:ReplicateImage", NoResourcePolicyAllows)
                .on("arn:aws:ecr:eu-west-1:111111111111:repository/mirrored/app")
                .with_resource_policy(registry(json!({
                    "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "ecr:ReplicateImage",
                    "Resource": "arn:aws:ecr:us-east-1:111111111111:repository/*"
                }))),
            Case::new("registry policy NotResource", other_root, "ecr:CreateRepository", Allow)
                .on("arn:aws:ecr:us-east-1:111111111111:repository/cache/app")
                .with_resource_policy(registry(json!({
                    "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "ecr:CreateRepository",
                    "NotResource": "arn:aws:ecr:us-east-1:111111111111:repository/prod/*"
                }))),
            Case::new("registry-level action on *", other_root, "ecr:DescribeRegistry", Allow)
                .on("*")
                .with_resource_policy(registry(json!({
                    "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "ecr:Describe*", "Resource": "*"
                }))),
            // --- Service principals.
            Case::new("a service principal named by Service", lambda, "ecr:BatchGetImage", Allow)
                .fact("aws:sourceArn", "arn:aws:lambda:us-east-1:111111111111:function:thumbnail")
                .with_identity(identity(json!({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"})))
                .with_resource_policy(repository(json!({
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    "Condition": {"StringLike": {"aws:sourceArn": "arn:aws:lambda:us-east-1:111111111111:function:*"}}
                }))),
            Case::new("a service principal whose source is another account's function", lambda_cross, "ecr:BatchGetImage", NoResourcePolicyAllows)
                .fact("aws:SourceArn", "arn:aws:lambda:us-east-1:222222222222:function:thumbnail")
                .with_resource_policy(repository(json!({
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "ecr:BatchGetImage",
                    "Condition": {"StringLike": {"aws:sourceArn": "arn:aws:lambda:us-east-1:111111111111:function:*"}}
                }))),
            Case::new("AWS * does not name a service principal", lambda_cross, "ecr:BatchGetImage", NoResourcePolicyAllows)
                .with_resource_policy(pull_from(json!({"AWS": "*"}))),
            Case::new("* names a service principal", lambda_cross, "ecr:BatchGetImage", Allow).with_resource_policy(pull_from(json!("*"))),
            Case::new("an account does not name a service principal", lambda_cross, "ecr:BatchGetImage", NoResourcePolicyAllows)
                .with_resource_policy(pull_from(json!({"AWS": OTHER}))),
            Case::new("Service does not name an IAM caller", other_ci, "ecr:BatchGetImage", NoResourcePolicyAllows)
                .with_resource_policy(pull_from(json!({"Service": "lambda.amazonaws.com"}))),
            // --- The owner's root and a resource policy that names no one
            // of the owner's account: the identity side still allows.
            Case::new("owner root with an unrelated repository policy", owner_root, "ecr:SetRepositoryPolicy", Allow)
                .with_resource_policy(pull_from(json!({"AWS": OTHER}))),
        ];
        for case in &cases {
            case.run();
        }
    }

    /// The IAM User Guide's single-account example, restated: a user's
    /// identity policy allows listing everywhere and everything on the
    /// bucket named after the user, and denies everything on any bucket
    /// whose name holds "log". Writing to the "...-logs" bucket is an
    /// explicit deny, writing to the user's bucket is allowed, and another
    /// bucket is implicitly denied.
    #[test]
    fn single_account_documentation_example() {
        use Decision::*;
        let carlos = iam("arn:aws:iam::123456789012:user/carlossalazar");
        let identity = identity(json!([
            {
                "Sid": "AllowS3ListRead", "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:GetAccountPublicAccessBlock", "s3:ListAccessPoints", "s3:ListAllMyBuckets"],
                "Resource": "arn:aws:s3:::*"
            },
            {
                "Sid": "AllowS3Self", "Effect": "Allow", "Action": "s3:*",
                "Resource": ["arn:aws:s3:::example-carlossalazar/*", "arn:aws:s3:::example-carlossalazar"]
            },
            {"Sid": "DenyS3Logs", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*log*"}
        ]));
        let context = Context::new();
        let decide = |action: &str, resource: &str| {
            evaluate(
                &carlos,
                action,
                resource,
                "123456789012",
                &context,
                Some(&identity),
                &[],
            )
        };
        assert_eq!(
            decide(
                "s3:PutObject",
                "arn:aws:s3:::example-carlossalazar-logs/today.txt"
            ),
            ExplicitDenyInIdentityPolicy
        );
        assert_eq!(
            decide(
                "s3:PutObject",
                "arn:aws:s3:::example-carlossalazar/notes.txt"
            ),
            Allow
        );
        assert_eq!(
            decide("s3:ListAllMyBuckets", "arn:aws:s3:::anything"),
            Allow
        );
        assert_eq!(
            decide("s3:PutObject", "arn:aws:s3:::someone-else/x"),
            NoIdentityPolicyAllows
        );
    }

    /// The same example with the resource side in ECR terms: a repository
    /// policy that allows the user everything. Within one account it grants
    /// what the identity policy does not, but cannot lift the identity
    /// policy's explicit deny.
    #[test]
    fn single_account_resource_policy_cannot_lift_a_deny() {
        use Decision::*;
        let carlos = iam("arn:aws:iam::123456789012:user/carlossalazar");
        let identity = identity(json!([
            {"Effect": "Allow", "Action": "ecr:Describe*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:*:repository/*log*"}
        ]));
        let repository_policy = repository(json!({
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:user/carlossalazar"},
            "Action": "ecr:*"
        }));
        let context = Context::new();
        let decide = |resource: &str, resource_policies: &[&Policy]| {
            evaluate(
                &carlos,
                "ecr:PutImage",
                resource,
                "123456789012",
                &context,
                Some(&identity),
                resource_policies,
            )
        };
        let own = "arn:aws:ecr:us-east-1:123456789012:repository/carlossalazar";
        let logs = "arn:aws:ecr:us-east-1:123456789012:repository/carlossalazar-logs";
        assert_eq!(decide(own, &[]), NoIdentityPolicyAllows);
        assert_eq!(decide(own, &[&repository_policy]), Allow);
        assert_eq!(
            decide(logs, &[&repository_policy]),
            ExplicitDenyInIdentityPolicy
        );
    }

    /// The IAM User Guide's cross-account logic, restated as the four
    /// combinations of "the trusting account's resource policy allows" and
    /// "the trusted account's identity policy allows", plus a deny on
    /// either side.
    #[test]
    fn cross_account_documentation_matrix() {
        use Decision::*;
        let caller = iam("arn:aws:iam::222222222222:user/ana");
        let grant = pull_from(json!({"AWS": "arn:aws:iam::222222222222:user/ana"}));
        let unrelated = pull_from(json!({"AWS": "333333333333"}));
        let allows = allow_all_ecr();
        let silent = identity(
            json!({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}),
        );
        let denies = identity(json!([
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": "*"}
        ]));
        let context = Context::new();
        let cases: [(&Policy, &Policy, Decision); 5] = [
            (&grant, &allows, Allow),
            (&grant, &silent, NoIdentityPolicyAllows),
            (&unrelated, &allows, NoResourcePolicyAllows),
            (&unrelated, &silent, NoResourcePolicyAllows),
            (&grant, &denies, ExplicitDenyInIdentityPolicy),
        ];
        for (index, (resource_policy, identity, expected)) in cases.into_iter().enumerate() {
            let decision = evaluate(
                &caller,
                "ecr:BatchGetImage",
                REPO,
                OWNER,
                &context,
                Some(identity),
                &[resource_policy],
            );
            assert_eq!(decision, expected, "combination {index}");
        }
    }

    #[test]
    fn denial_messages() {
        let p = "arn:aws:iam::222222222222:root";
        let a = "ecr:DescribeImages";
        let cases = [
            (Decision::Allow, None),
            (
                Decision::NoResourcePolicyAllows,
                Some("User: arn:aws:iam::222222222222:root is not authorized to perform: ecr:DescribeImages on resource: arn:aws:ecr:us-east-1:111111111111:repository/prod/api because no resource-based policy allows the ecr:DescribeImages action"),
            ),
            (
                Decision::NoIdentityPolicyAllows,
                Some("User: arn:aws:iam::222222222222:root is not authorized to perform: ecr:DescribeImages on resource: arn:aws:ecr:us-east-1:111111111111:repository/prod/api because no identity-based policy allows the ecr:DescribeImages action"),
            ),
            (
                Decision::ExplicitDenyInResourcePolicy,
                Some("User: arn:aws:iam::222222222222:root is not authorized to perform: ecr:DescribeImages on resource: arn:aws:ecr:us-east-1:111111111111:repository/prod/api with an explicit deny in a resource-based policy"),
            ),
            (
                Decision::ExplicitDenyInIdentityPolicy,
                Some("User: arn:aws:iam::222222222222:root is not authorized to perform: ecr:DescribeImages on resource: arn:aws:ecr:us-east-1:111111111111:repository/prod/api with an explicit deny in an identity-based policy"),
            ),
        ];
        for (decision, expected) in cases {
            assert_eq!(decision.is_allowed(), expected.is_none());
            assert_eq!(
                decision.denial_message(p, a, REPO).as_deref(),
                expected,
                "{decision:?}"
            );
        }
    }
}

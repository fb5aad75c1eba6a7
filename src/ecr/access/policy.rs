//! Parsing and validating policy documents, once, into the form the
//! evaluator reads.
//!
//! Follows the IAM User Guide's "IAM JSON policy elements reference"
//! (Version, Id, Statement, Sid, Effect, Principal/NotPrincipal,
//! Action/NotAction, Resource/NotResource, Condition) and "AWS JSON policy
//! elements: Principal" for the accepted principal forms, narrowed by what
//! Amazon ECR accepts: repository policies ("Private repository policies in
//! Amazon ECR") name principals and `ecr:` actions but no resource, and
//! registry policies ("Private registry permissions in Amazon ECR") name
//! principals, `ecr:` actions and repository ARNs.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

use super::actions;
use super::conditions::Condition;
use super::glob;

/// Where a policy is attached, which decides the elements it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to a caller: no principal, a resource, any service's actions.
    Identity,
    /// A repository policy: a principal, `ecr:` actions, no resource.
    Repository,
    /// A registry policy: a principal, `ecr:` actions, repository ARNs.
    Registry,
    /// An ECR Public repository policy: a principal, `ecr-public:` actions,
    /// no resource.
    PublicRepository,
}

/// Why a policy document was refused; a human reason for logs and tests
/// (the caller words ECR's own message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub reason: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for PolicyError {}

/// A valid policy document, parsed.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(super) statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub(super) struct Statement {
    pub(super) effect: Effect,
    /// `None` in identity policies, which apply to whoever holds them.
    pub(super) principal: Option<PrincipalMatch>,
    pub(super) action: PatternMatch,
    /// `None` when the statement applies to its resource implicitly (a
    /// repository policy).
    pub(super) resource: Option<PatternMatch>,
    pub(super) condition: Condition,
}

/// `Action`/`Resource` patterns, or with `negated` their `Not...` forms.
#[derive(Debug, Clone)]
pub(super) struct PatternMatch {
    pub(super) negated: bool,
    pub(super) patterns: Vec<String>,
}

/// `Principal`, or with `negated` `NotPrincipal`.
#[derive(Debug, Clone)]
pub(super) struct PrincipalMatch {
    pub(super) negated: bool,
    /// `"Principal": "*"`: everyone, service principals included.
    pub(super) anyone: bool,
    pub(super) aws: Vec<AwsPrincipal>,
    pub(super) services: Vec<String>,
    // `Federated` and `CanonicalUser` entries are validated but not kept:
    // ecrd has no web-identity or S3-canonical callers they could match.
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AwsPrincipal {
    /// `{"AWS": "*"}`: every AWS (IAM) principal.
    AnyAws,
    /// A 12-digit account id or `arn:aws:iam::<account>:root`: every
    /// principal of that account.
    Account(String),
    /// A user, federated user or assumed-role session, matched exactly.
    Exact(String),
    /// A role: the role itself and every session of it, whose ARNs start
    /// with `session_prefix` (`arn:aws:sts::<account>:assumed-role/<name>/`).
    Role { arn: String, session_prefix: String },
}

const TOP_LEVEL_KEYS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_KEYS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];
const PRINCIPAL_KEYS: &[&str] = &["AWS", "Service", "Federated", "CanonicalUser"];

fn fail<T>(reason: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError {
        reason: reason.into(),
    })
}

impl Policy {
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let document: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return fail(format!("not JSON: {e}")),
        };
        let Value::Object(top) = document else {
            return fail("the policy must be a JSON object");
        };
        reject_unknown_keys(&top, TOP_LEVEL_KEYS, "the policy")?;
        match top.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(_) => return fail("Version must be \"2012-10-17\" or \"2008-10-17\""),
        }
        if let Some(id) = top.get("Id") {
            if !id.is_string() {
                return fail("Id must be a string");
            }
        }
        let statements: Vec<&Map<String, Value>> = match top.get("Statement") {
            Some(Value::Object(one)) => vec![one],
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|s| s.as_object())
                .collect::<Option<_>>()
                .ok_or_else(|| PolicyError {
                    reason: "every Statement must be an object".into(),
                })?,
            Some(Value::Array(_)) => return fail("Statement must not be empty"),
            Some(_) => return fail("Statement must be an object or a list of objects"),
            None => return fail("the policy has no Statement"),
        };
        let mut sids = HashSet::new();
        let mut parsed = Vec::with_capacity(statements.len());
        for (index, statement) in statements.into_iter().enumerate() {
            if let Some(sid) = statement.get("Sid") {
                let Some(sid) = sid.as_str() else {
                    return fail(format!("statement {}: Sid must be a string", index + 1));
                };
                if !sids.insert(sid) {
                    return fail(format!("duplicate Sid {sid:?}"));
                }
            }
            let statement = parse_statement(statement, kind).map_err(|reason| PolicyError {
                reason: format!("statement {}: {reason}", index + 1),
            })?;
            parsed.push(statement);
        }
        Ok(Policy { statements: parsed })
    }

    /// Every action pattern the policy's statements name via `Action` (not
    /// `NotAction`), as written.
    pub fn action_patterns(&self) -> Vec<String> {
        self.statements
            .iter()
            .filter(|s| !s.action.negated)
            .flat_map(|s| s.action.patterns.iter().cloned())
            .collect()
    }

    pub fn uses_not_action(&self) -> bool {
        self.statements.iter().any(|s| s.action.negated)
    }

    /// Every condition key the policy's statements test, as written (the
    /// caller builds only the request facts some policy looks at).
    pub fn condition_keys(&self) -> impl Iterator<Item = &str> {
        self.statements.iter().flat_map(|s| s.condition.keys())
    }
}

fn reject_unknown_keys(
    object: &Map<String, Value>,
    allowed: &[&str],
    what: &str,
) -> Result<(), PolicyError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => fail(format!("{what} has an unknown element {key:?}")),
        None => Ok(()),
    }
}

/// One statement; errors are bare reasons the caller prefixes.
fn parse_statement(statement: &Map<String, Value>, kind: PolicyKind) -> Result<Statement, String> {
    if let Some(key) = statement
        .keys()
        .find(|k| !STATEMENT_KEYS.contains(&k.as_str()))
    {
        return Err(format!("unknown element {key:?}"));
    }
    let effect = match statement.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => {
            return Err(format!(
                "Effect must be \"Allow\" or \"Deny\", not {other:?}"
            ))
        }
        None => return Err("Effect is required and must be \"Allow\" or \"Deny\"".into()),
    };

    let principal = match pick_one(statement, "Principal", "NotPrincipal")? {
        None if kind == PolicyKind::Identity => None,
        Some(_) if kind == PolicyKind::Identity => {
            return Err("an identity policy cannot name a Principal or NotPrincipal".into())
        }
        None => return Err("a Principal or NotPrincipal is required".into()),
        Some((negated, value)) => Some(parse_principal(value, negated)?),
    };

    let action = match pick_one(statement, "Action", "NotAction")? {
        None => return Err("an Action or NotAction is required".into()),
        Some((negated, value)) => {
            let element = if negated { "NotAction" } else { "Action" };
            let patterns = string_list(value, element)?;
            for pattern in &patterns {
                check_action(pattern, kind)?;
            }
            PatternMatch { negated, patterns }
        }
    };

    let resource = match (kind, pick_one(statement, "Resource", "NotResource")?) {
        (PolicyKind::Repository | PolicyKind::PublicRepository, Some(_)) => {
            // ECR answers "Invalid repository policy provided": a repository
            // policy's statements apply to that repository only.
            return Err("a repository policy cannot name a Resource or NotResource".into());
        }
        (PolicyKind::Repository | PolicyKind::PublicRepository, None) => None,
        (_, None) => return Err("a Resource or NotResource is required".into()),
        (_, Some((negated, value))) => {
            let element = if negated { "NotResource" } else { "Resource" };
            let patterns = string_list(value, element)?;
            for pattern in &patterns {
                if pattern.is_empty() {
                    return Err(format!("{element} entries must not be empty"));
                }
                if kind == PolicyKind::Registry && !is_registry_resource(pattern) {
                    return Err(format!(
                        "{element} {pattern:?} is not * or arn:aws:ecr:<region>:<account>:repository/<name>"
                    ));
                }
            }
            Some(PatternMatch { negated, patterns })
        }
    };

    let condition = match statement.get("Condition") {
        None => Condition::default(),
        Some(value) => Condition::parse(value)?,
    };

    Ok(Statement {
        effect,
        principal,
        action,
        resource,
        condition,
    })
}

/// At most one of an element and its `Not...` form; `Some((negated, value))`.
fn pick_one<'a>(
    statement: &'a Map<String, Value>,
    positive: &str,
    negative: &str,
) -> Result<Option<(bool, &'a Value)>, String> {
    match (statement.get(positive), statement.get(negative)) {
        (Some(_), Some(_)) => Err(format!("{positive} and {negative} cannot both be given")),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

/// A string or a non-empty list of strings.
fn string_list(value: &Value, element: &str) -> Result<Vec<String>, String> {
    let invalid = || format!("{element} must be a string or a non-empty list of strings");
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

/// `*`, or `service:Name` where the name may hold `*` and `?`.
fn check_action(pattern: &str, kind: PolicyKind) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    let invalid = || format!("action {pattern:?} is not * or service:action");
    let (service, name) = pattern.split_once(':').ok_or_else(invalid)?;
    let service_ok = !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'?' | b'-' | b'_'));
    if !service_ok || !name_ok {
        return Err(invalid());
    }
    let is_ecr = service.eq_ignore_ascii_case("ecr");
    let is_public = service.eq_ignore_ascii_case("ecr-public");
    match kind {
        PolicyKind::PublicRepository if !is_public => {
            return Err(format!("action {pattern:?} is not an ecr-public: action"))
        }
        PolicyKind::Repository | PolicyKind::Registry if !is_ecr => {
            return Err(format!("action {pattern:?} is not an ecr: action"))
        }
        _ => {}
    }
    if is_ecr && !glob::has_wildcard(name) && actions::canonical(name).is_none() {
        return Err(format!("action {pattern:?} is not an Amazon ECR action"));
    }
    if is_public && !glob::has_wildcard(name) && actions::canonical_public(name).is_none() {
        return Err(format!(
            "action {pattern:?} is not an Amazon ECR Public action"
        ));
    }
    Ok(())
}

/// A registry policy's resource: `*` or a repository ARN whose region and
/// name may hold wildcards.
fn is_registry_resource(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let region_ok = !region.is_empty()
        && region.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'*' | b'?')
        });
    let name_ok = resource
        .strip_prefix("repository/")
        .is_some_and(|name| !name.is_empty() && !name.contains(char::is_whitespace));
    *prefix == "arn"
        && is_partition(partition)
        && *service == "ecr"
        && region_ok
        && is_account_id(account)
        && name_ok
}

fn is_partition(s: &str) -> bool {
    matches!(s, "aws" | "aws-cn" | "aws-us-gov")
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_principal(value: &Value, negated: bool) -> Result<PrincipalMatch, String> {
    let element = if negated { "NotPrincipal" } else { "Principal" };
    let mut principal = PrincipalMatch {
        negated,
        anyone: false,
        aws: Vec::new(),
        services: Vec::new(),
    };
    let entries = match value {
        Value::String(s) if s == "*" => {
            principal.anyone = true;
            return Ok(principal);
        }
        Value::Object(entries) if !entries.is_empty() => entries,
        _ => {
            return Err(format!(
                "{element} must be \"*\" or an object of AWS, Service, Federated or CanonicalUser"
            ))
        }
    };
    for (key, value) in entries {
        if !PRINCIPAL_KEYS.contains(&key.as_str()) {
            return Err(format!("{element} has an unknown type {key:?}"));
        }
        let names = string_list(value, &format!("{element}.{key}"))?;
        for name in names {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!("{element}.{key} {name:?} is not a principal"));
            }
            match key.as_str() {
                "AWS" => {
                    principal
                        .aws
                        .push(parse_aws_principal(&name).ok_or_else(|| {
                            format!("{element}.AWS {name:?} is not a valid principal")
                        })?)
                }
                "Service" => principal.services.push(name),
                _ => {}
            }
        }
    }
    Ok(principal)
}

/// The forms IAM accepts for an AWS principal. Wildcards are only allowed
/// as the whole value: ECR refuses `arn:aws:iam::123456789012:*`.
fn parse_aws_principal(name: &str) -> Option<AwsPrincipal> {
    if name == "*" {
        return Some(AwsPrincipal::AnyAws);
    }
    if is_account_id(name) {
        return Some(AwsPrincipal::Account(name.to_string()));
    }
    if glob::has_wildcard(name) {
        return None;
    }
    let parts: Vec<&str> = name.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return None;
    };
    if *prefix != "arn" || !is_partition(partition) || !region.is_empty() || !is_account_id(account)
    {
        return None;
    }
    match *service {
        "iam" if *resource == "root" => Some(AwsPrincipal::Account(account.to_string())),
        "iam" => {
            if let Some(path_and_name) = resource.strip_prefix("role/") {
                let role_name = iam_path_name(path_and_name)?;
                Some(AwsPrincipal::Role {
                    arn: name.to_string(),
                    session_prefix: format!(
                        "arn:{partition}:sts::{account}:assumed-role/{role_name}/"
                    ),
                })
            } else {
                let path_and_name = resource.strip_prefix("user/")?;
                iam_path_name(path_and_name)?;
                Some(AwsPrincipal::Exact(name.to_string()))
            }
        }
        "sts" => {
            if let Some(role_and_session) = resource.strip_prefix("assumed-role/") {
                let (role, session) = role_and_session.split_once('/')?;
                (is_iam_name(role) && is_iam_name(session))
                    .then(|| AwsPrincipal::Exact(name.to_string()))
            } else {
                let user = resource.strip_prefix("federated-user/")?;
                is_iam_name(user).then(|| AwsPrincipal::Exact(name.to_string()))
            }
        }
        _ => None,
    }
}

/// `path/to/name` (the path optional): the final name, if all parts are
/// IAM names.
fn iam_path_name(path_and_name: &str) -> Option<&str> {
    let mut parts = path_and_name.split('/');
    let name = parts.next_back()?;
    (is_iam_name(name) && parts.all(is_iam_name)).then_some(name)
}

/// IAM user, role and session names: letters, digits and `+=,.@_-`.
fn is_iam_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ANY: &str = r#""Principal": "*""#;

    fn statement_doc(body: &str) -> String {
        format!(r#"{{"Version": "2012-10-17", "Statement": [{{{body}}}]}}"#)
    }

    #[test]
    fn rejections() {
        use PolicyKind::*;
        let repo_ok = format!(r#""Effect": "Allow", {ANY}, "Action": "ecr:BatchGetImage""#);
        let cases: Vec<(PolicyKind, String, &str)> = vec![
            (Repository, "not json".into(), "not JSON"),
            (Repository, "[]".into(), "JSON object"),
            (Repository, r#""text""#.into(), "JSON object"),
            (
                Repository,
                format!(r#"{{"Statement": [{{{repo_ok}}}], "Extra": 1}}"#),
                "unknown element \"Extra\"",
            ),
            (
                Repository,
                format!(r#"{{"Version": "2012-10-18", "Statement": [{{{repo_ok}}}]}}"#),
                "Version",
            ),
            (
                Repository,
                format!(r#"{{"Version": 2012, "Statement": [{{{repo_ok}}}]}}"#),
                "Version",
            ),
            (
                Repository,
                format!(r#"{{"Id": 7, "Statement": [{{{repo_ok}}}]}}"#),
                "Id",
            ),
            (
                Repository,
                r#"{"Version": "2012-10-17"}"#.into(),
                "no Statement",
            ),
            (Repository, r#"{"Statement": []}"#.into(), "empty"),
            (
                Repository,
                r#"{"Statement": "Allow"}"#.into(),
                "Statement must be",
            ),
            (Repository, r#"{"Statement": [1]}"#.into(), "object"),
            (
                Repository,
                statement_doc(&format!(r#"{repo_ok}, "Principals": "*""#)),
                "unknown element \"Principals\"",
            ),
            (
                Repository,
                format!(
                    r#"{{"Statement": [{{"Sid": "A", {repo_ok}}}, {{"Sid": "A", {repo_ok}}}]}}"#
                ),
                "duplicate Sid",
            ),
            (
                Repository,
                statement_doc(&format!(r#""Sid": 1, {repo_ok}"#)),
                "Sid must be a string",
            ),
            (
                Repository,
                statement_doc(&format!(r#"{ANY}, "Action": "ecr:BatchGetImage""#)),
                "Effect is required",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#""Effect": "allow", {ANY}, "Action": "ecr:BatchGetImage""#
                )),
                "Effect must be",
            ),
            (
                Repository,
                statement_doc(&format!(r#""Effect": "Allow", {ANY}"#)),
                "Action or NotAction is required",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#""Effect": "Allow", {ANY}, "Action": "ecr:BatchGetImage", "NotAction": "ecr:PutImage""#
                )),
                "cannot both",
            ),
            (
                Repository,
                statement_doc(&format!(r#""Effect": "Allow", {ANY}, "Action": []"#)),
                "non-empty list",
            ),
            (
                Repository,
                statement_doc(&format!(r#""Effect": "Allow", {ANY}, "Action": [1]"#)),
                "non-empty list",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#""Effect": "Allow", {ANY}, "Action": "BatchGetImage""#
                )),
                "service:action",
            ),
            (
                Repository,
                statement_doc(&format!(r#""Effect": "Allow", {ANY}, "Action": "ecr:""#)),
                "service:action",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#""Effect": "Allow", {ANY}, "Action": "ec*:BatchGetImage""#
                )),
                "service:action",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#""Effect": "Allow", {ANY}, "Action": "s3:GetObject""#
                )),
                "not an ecr: action",
            ),
            (
                Registry,
                statement_doc(&format!(
                    r#""Effect": "Allow", {ANY}, "Action": "s3:*", "Resource": "*""#
                )),
                "not an ecr: action",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#""Effect": "Allow", {ANY}, "Action": "ecr:PullImage""#
                )),
                "not an Amazon ECR action",
            ),
            (
                Identity,
                statement_doc(r#""Effect": "Allow", "Action": "ecr:PullImage", "Resource": "*""#),
                "not an Amazon ECR action",
            ),
            // Principals.
            (
                Identity,
                statement_doc(&format!(
                    r#""Effect": "Allow", {ANY}, "Action": "ecr:*", "Resource": "*""#
                )),
                "identity policy cannot",
            ),
            (
                Identity,
                statement_doc(
                    r#""Effect": "Allow", "NotPrincipal": {"AWS": "111111111111"}, "Action": "ecr:*", "Resource": "*""#,
                ),
                "identity policy cannot",
            ),
            (
                Repository,
                statement_doc(r#""Effect": "Allow", "Action": "ecr:*""#),
                "Principal or NotPrincipal is required",
            ),
            (
                Registry,
                statement_doc(r#""Effect": "Allow", "Action": "ecr:*", "Resource": "*""#),
                "Principal or NotPrincipal is required",
            ),
            (
                Repository,
                statement_doc(
                    r#""Effect": "Allow", "Principal": "*", "NotPrincipal": {"AWS": "*"}, "Action": "ecr:*""#,
                ),
                "cannot both",
            ),
            (
                Repository,
                statement_doc(r#""Effect": "Allow", "Principal": "AWS", "Action": "ecr:*""#),
                "Principal must be",
            ),
            (
                Repository,
                statement_doc(r#""Effect": "Allow", "Principal": {}, "Action": "ecr:*""#),
                "Principal must be",
            ),
            (
                Repository,
                statement_doc(r#""Effect": "Allow", "Principal": ["*"], "Action": "ecr:*""#),
                "Principal must be",
            ),
            (
                Repository,
                statement_doc(r#""Effect": "Allow", "Principal": {"IAM": "*"}, "Action": "ecr:*""#),
                "unknown type",
            ),
            (
                Repository,
                statement_doc(r#""Effect": "Allow", "Principal": {"AWS": []}, "Action": "ecr:*""#),
                "non-empty list",
            ),
            (
                Repository,
                statement_doc(
                    r#""Effect": "Allow", "Principal": {"Service": ""}, "Action": "ecr:*""#,
                ),
                "not a principal",
            ),
            // Resources.
            (
                Repository,
                statement_doc(&format!(r#"{repo_ok}, "Resource": "*""#)),
                "cannot name a Resource",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#"{repo_ok}, "NotResource": "arn:aws:ecr:us-east-1:111111111111:repository/x""#
                )),
                "cannot name a Resource",
            ),
            (
                Registry,
                statement_doc(
                    r#""Effect": "Allow", "Principal": "*", "Action": "ecr:ReplicateImage""#,
                ),
                "Resource or NotResource is required",
            ),
            (
                Identity,
                statement_doc(r#""Effect": "Allow", "Action": "ecr:*""#),
                "Resource or NotResource is required",
            ),
            (
                Identity,
                statement_doc(
                    r#""Effect": "Allow", "Action": "ecr:*", "Resource": "*", "NotResource": "*""#,
                ),
                "cannot both",
            ),
            (
                Identity,
                statement_doc(r#""Effect": "Allow", "Action": "ecr:*", "Resource": """#),
                "must not be empty",
            ),
            (
                Identity,
                statement_doc(r#""Effect": "Allow", "Action": "ecr:*", "Resource": []"#),
                "non-empty list",
            ),
            (
                Registry,
                statement_doc(
                    r#""Effect": "Allow", "Principal": "*", "Action": "ecr:ReplicateImage", "Resource": "arn:aws:s3:::bucket""#,
                ),
                "is not * or arn:aws:ecr",
            ),
            (
                Registry,
                statement_doc(
                    r#""Effect": "Allow", "Principal": "*", "Action": "ecr:ReplicateImage", "Resource": "arn:aws:ecr:us-east-1:*:repository/*""#,
                ),
                "is not * or arn:aws:ecr",
            ),
            (
                Registry,
                statement_doc(
                    r#""Effect": "Allow", "Principal": "*", "Action": "ecr:ReplicateImage", "Resource": "arn:aws:ecr:us-east-1:111111111111:repo/*""#,
                ),
                "is not * or arn:aws:ecr",
            ),
            (
                Registry,
                statement_doc(
                    r#""Effect": "Allow", "Principal": "*", "Action": "ecr:ReplicateImage", "Resource": "arn:aws:ecr:us-east-1:111111111111:repository/""#,
                ),
                "is not * or arn:aws:ecr",
            ),
            // Conditions.
            (
                Repository,
                statement_doc(&format!(r#"{repo_ok}, "Condition": []"#)),
                "Condition must be an object",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#"{repo_ok}, "Condition": {{"StringEqualsAny": {{"aws:username": "x"}}}}"#
                )),
                "unknown condition operator",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#"{repo_ok}, "Condition": {{"IpAddress": {{"aws:SourceIp": "300.1.1.1/8"}}}}"#
                )),
                "cannot use the value",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#"{repo_ok}, "Condition": {{"NumericLessThan": {{"aws:EpochTime": "soon"}}}}"#
                )),
                "cannot use the value",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#"{repo_ok}, "Condition": {{"DateLessThan": {{"aws:CurrentTime": "tomorrow"}}}}"#
                )),
                "cannot use the value",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#"{repo_ok}, "Condition": {{"Bool": {{"aws:SecureTransport": "1"}}}}"#
                )),
                "cannot use the value",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#"{repo_ok}, "Condition": {{"Null": {{"aws:SourceIp": "no"}}}}"#
                )),
                "cannot use the value",
            ),
            (
                Repository,
                statement_doc(&format!(
                    r#"{repo_ok}, "Condition": {{"NullIfExists": {{"aws:SourceIp": "true"}}}}"#
                )),
                "IfExists",
            ),
        ];
        for (kind, text, reason) in cases {
            match Policy::parse(&text, kind) {
                Ok(_) => panic!("{kind:?} accepted {text}"),
                Err(e) => assert!(
                    e.reason.contains(reason),
                    "{kind:?} {text}: got {:?}, wanted {reason:?}",
                    e.reason
                ),
            }
        }
    }

    #[test]
    fn aws_principal_forms() {
        let valid = [
            "*",
            "123456789012",
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:user/ci",
            "arn:aws:iam::123456789012:user/division/team/ci",
            "arn:aws:iam::123456789012:role/Deploy",
            "arn:aws:iam::123456789012:role/service-role/Deploy",
            "arn:aws:sts::123456789012:assumed-role/Deploy/session-1",
            "arn:aws:sts::123456789012:federated-user/bob",
            "arn:aws-cn:iam::123456789012:root",
        ];
        let invalid = [
            "arn:aws:iam::123456789012:*",
            "arn:aws:iam::*:root",
            "arn:aws:iam::123456789012:role/*",
            "arn:aws:iam::123456789012:user/ci?",
            "arn:aws:iam::12345678901:root",
            "1234567890123",
            "arn:aws:iam:us-east-1:123456789012:root",
            "arn:aws:iam::123456789012:group/devs",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:user/a//b",
            "arn:aws:sts::123456789012:assumed-role/Deploy",
            "arn:aws:sts::123456789012:assumed-role/Deploy/s/extra",
            "arn:aws:ecr:us-east-1:123456789012:repository/x",
            "arn:nope:iam::123456789012:root",
            "root",
        ];
        for name in valid {
            assert!(parse_aws_principal(name).is_some(), "{name}");
            let text = statement_doc(&format!(
                r#""Effect": "Allow", "Principal": {{"AWS": "{name}"}}, "Action": "ecr:*""#
            ));
            assert!(
                Policy::parse(&text, PolicyKind::Repository).is_ok(),
                "{text}"
            );
        }
        for name in invalid {
            assert!(parse_aws_principal(name).is_none(), "{name}");
            let text = statement_doc(&format!(
                r#""Effect": "Allow", "Principal": {{"AWS": ["111111111111", "{name}"]}}, "Action": "ecr:*""#
            ));
            assert!(
                Policy::parse(&text, PolicyKind::Repository).is_err(),
                "{text}"
            );
        }
        assert_eq!(
            parse_aws_principal("arn:aws:iam::123456789012:root"),
            Some(AwsPrincipal::Account("123456789012".into()))
        );
        assert_eq!(
            parse_aws_principal("arn:aws:iam::123456789012:role/path/Deploy"),
            Some(AwsPrincipal::Role {
                arn: "arn:aws:iam::123456789012:role/path/Deploy".into(),
                session_prefix: "arn:aws:sts::123456789012:assumed-role/Deploy/".into(),
            })
        );
    }

    #[test]
    fn real_world_policies_are_accepted() {
        let cases: Vec<(PolicyKind, Value)> = vec![
            // Cross-account pull, as the ECR user guide's repository policy
            // examples grant it.
            (
                PolicyKind::Repository,
                json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "AllowCrossAccountPull",
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
                    }]
                }),
            ),
            // Lambda's service principal, limited to the account's functions.
            (
                PolicyKind::Repository,
                json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "LambdaECRImageRetrievalPolicy",
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                        "Condition": {
                            "StringLike": {"aws:sourceArn": "arn:aws:lambda:us-east-1:123456789012:function:*"}
                        }
                    }]
                }),
            ),
            // Several principals, a deny with NotPrincipal, 2008 version.
            (
                PolicyKind::Repository,
                json!({
                    "Version": "2008-10-17",
                    "Id": "repo-policy",
                    "Statement": [
                        {
                            "Sid": "Push",
                            "Effect": "Allow",
                            "Principal": {"AWS": ["arn:aws:iam::111111111111:role/ci", "222222222222"]},
                            "Action": ["ecr:Put*", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"]
                        },
                        {
                            "Sid": "Only CI deletes",
                            "Effect": "Deny",
                            "NotPrincipal": {"AWS": "arn:aws:iam::111111111111:role/ci"},
                            "Action": "ecr:BatchDeleteImage"
                        },
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "ecr:*",
                            "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}
                        }
                    ]
                }),
            ),
            // Registry replication policy.
            (
                PolicyKind::Registry,
                json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "ReplicationAccessCrossAccount",
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
                        "Resource": "arn:aws:ecr:us-east-1:111111111111:repository/*"
                    }]
                }),
            ),
            // Registry pull-through-cache policy with a principal condition.
            (
                PolicyKind::Registry,
                json!({
                    "Version": "2012-10-17",
                    "Statement": {
                        "Effect": "Allow",
                        "Principal": {"AWS": "*"},
                        "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
                        "Resource": ["arn:aws:ecr:*:111111111111:repository/docker-hub/*", "*"],
                        "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/app-*"}}
                    }
                }),
            ),
            // An identity policy over several services, with NotResource.
            (
                PolicyKind::Identity,
                json!({
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "sts:GetCallerIdentity"], "Resource": "*"},
                        {"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:*:repository/team/*"},
                        {"Effect": "Deny", "NotAction": "ecr:Describe*", "NotResource": "arn:aws:ecr:*:*:repository/team/*"},
                        {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::bucket", "arn:aws:s3:::bucket/*"]}
                    ]
                }),
            ),
        ];
        for (kind, document) in cases {
            let text = document.to_string();
            if let Err(e) = Policy::parse(&text, kind) {
                panic!("{kind:?} refused {text}: {}", e.reason);
            }
        }
    }

    #[test]
    fn action_patterns_and_not_action() {
        let policy = Policy::parse(
            &json!({
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"], "Resource": "*"},
                    {"Effect": "Deny", "Principal": "*", "Action": "ecr:batchimportupstreamimage", "Resource": "*"}
                ]
            })
            .to_string(),
            PolicyKind::Registry,
        )
        .unwrap();
        assert_eq!(
            policy.action_patterns(),
            [
                "ecr:ReplicateImage",
                "ecr:CreateRepository",
                "ecr:batchimportupstreamimage"
            ]
        );
        assert!(!policy.uses_not_action());

        let policy = Policy::parse(
            &json!({
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "NotAction": "ecr:DeleteRepository", "Resource": "*"},
                    {"Effect": "Allow", "Principal": "*", "Action": "ecr:ReplicateImage", "Resource": "*"}
                ]
            })
            .to_string(),
            PolicyKind::Registry,
        )
        .unwrap();
        assert_eq!(policy.action_patterns(), ["ecr:ReplicateImage"]);
        assert!(policy.uses_not_action());
    }
}

//! Pull through cache: the rules (CreatePullThroughCacheRule,
//! DescribePullThroughCacheRules, UpdatePullThroughCacheRule,
//! DeletePullThroughCacheRule, ValidatePullThroughCacheRule) and, in
//! `cache`, serving a pull of a repository under a rule's prefix from the
//! upstream registry the rule names.
//!
//! From the ECR User Guide ("Sync an upstream registry with an Amazon ECR
//! private registry", "Creating a pull through cache rule", "Customizing
//! repository prefixes for ECR to ECR pull through cache") and the API
//! reference of CreatePullThroughCacheRule:
//! - a rule's `ecrRepositoryPrefix` is a repository namespace (`hub` covers
//!   `hub/...`; a trailing `/` is always assumed) or `ROOT`, which covers
//!   every repository no other rule covers;
//! - each upstream kind has its registry URL: `registry-1.docker.io`,
//!   `public.ecr.aws`, `quay.io`, `registry.k8s.io`, `ghcr.io`,
//!   `registry.gitlab.com`, `<name>.azurecr.io`, `cgr.dev`,
//!   `<account>.dkr.ecr.<region>.amazonaws.com`; a URL of none of them is
//!   refused with UnsupportedUpstreamRegistryException;
//! - Docker Hub, GitHub, Azure and GitLab need a Secrets Manager secret
//!   whose name starts with `ecr-pullthroughcache/` (`credentialArn`);
//! - `customRoleArn` (the role ECR assumes) and `upstreamRepositoryPrefix`
//!   are for ECR upstreams; an upstream repository prefix needs a
//!   non-`ROOT` ECR repository prefix;
//! - a registry holds at most 50 rules (the "Pull through cache rules per
//!   registry" quota).
//!
//! ecrd has no Secrets Manager: secrets come from `--secrets-file` (see
//! [`UpstreamSettings`]), and an upstream kind may be pointed at a local
//! registry with `--upstream KIND=URL`.

pub mod cache;
pub mod in_flight;

use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::error::{EcrError, EcrResult, ErrorKind};
use super::names::{AccountId, Region, Scope};
use super::{load, save, Ecr};
use crate::auth::sigv4::SigningKeys;
use crate::store::{ReadTxn, Table};
use crate::upstream::ecr_login::EcrLogin;
use crate::upstream::{Credentials, RegistryClient};

/// The prefix that covers every repository no other rule covers.
pub const ROOT: &str = "ROOT";
/// Rules a registry may hold (ECR's service quota).
pub const MAX_RULES: usize = 50;
/// DescribePullThroughCacheRules' page size without `maxResults`.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// A stored rule. Optional fields are kept only when the user set them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleRecord {
    pub prefix: String,
    pub upstream_registry_url: String,
    /// The model's `UpstreamRegistry` value, given or inferred from the URL.
    pub upstream_registry: String,
    #[serde(default)]
    pub credential_arn: Option<String>,
    #[serde(default)]
    pub custom_role_arn: Option<String>,
    #[serde(default)]
    pub upstream_repository_prefix: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What CreatePullThroughCacheRule asks for.
#[derive(Debug, Clone, Default)]
pub struct NewRule {
    pub prefix: String,
    pub upstream_registry_url: String,
    pub upstream_registry: Option<String>,
    pub credential_arn: Option<String>,
    pub custom_role_arn: Option<String>,
    pub upstream_repository_prefix: Option<String>,
}

/// A page of rules and the token for the next one.
#[derive(Debug, Clone)]
pub struct RulePage {
    pub rules: Vec<RuleRecord>,
    pub next_token: Option<String>,
}

/// ValidatePullThroughCacheRule's verdict.
#[derive(Debug, Clone)]
pub struct Validation {
    pub rule: RuleRecord,
    pub is_valid: bool,
    pub failure: Option<String>,
}

/// A secret's value, as ECR's pull through cache secrets hold it
/// (`username`, `accessToken`), or, keyed by a role ARN, the AWS keys that
/// stand for assuming the role toward a remote `ecr` upstream
/// (`accessKeyId`, `secretAccessKey`, optional `sessionToken`).
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
pub struct SecretValue {
    pub username: Option<String>,
    #[serde(rename = "accessToken")]
    pub access_token: Option<String>,
    #[serde(rename = "accessKeyId")]
    pub access_key_id: Option<String>,
    #[serde(rename = "secretAccessKey")]
    pub secret_access_key: Option<String>,
    #[serde(rename = "sessionToken")]
    pub session_token: Option<String>,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("username", &self.username)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl SecretValue {
    /// The AWS keys the value holds, if it holds both halves.
    fn signing_keys(&self) -> Option<SigningKeys> {
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Some(SigningKeys {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: self.session_token.clone().filter(|t| !t.is_empty()),
            }),
            _ => None,
        }
    }
}

/// Where upstreams are reached and the secrets their rules name: from
/// `--upstream KIND=URL` and `--secrets-file`.
#[derive(Debug, Clone, Default)]
pub struct UpstreamSettings {
    /// Upstream kind → base URL (`http://127.0.0.1:5000`).
    pub endpoints: HashMap<String, String>,
    /// Secret ARN (or role ARN) → value.
    pub secrets: HashMap<String, SecretValue>,
    /// The ecrd process's own AWS keys (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`): how a remote `ecr`
    /// upstream is logged in to when the secrets file has no keys for the
    /// rule's role.
    pub environment_keys: Option<SigningKeys>,
    /// This ecrd's own registry, where an `ecr` upstream
    /// (`<account>.dkr.ecr.<region>.amazonaws.com`) without an `--upstream
    /// ecr=` endpoint is found: another account or region of the same ecrd.
    pub local: Option<LocalRegistry>,
}

/// How the pull through cache reaches this ecrd's own registry: its
/// address, and the signer of the registry passwords it logs in with.
#[derive(Debug, Clone)]
pub struct LocalRegistry {
    pub addr: std::net::SocketAddr,
    pub signer: crate::auth::token::TokenSigner,
}

impl UpstreamSettings {
    /// Reads the flags' values; the message names what is wrong.
    pub fn from_config(secrets_file: Option<&Path>, upstreams: &[String]) -> Result<Self, String> {
        let mut settings = UpstreamSettings::default();
        for entry in upstreams.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let (kind, url) = entry
                .split_once('=')
                .ok_or_else(|| format!("--upstream {entry}: expected KIND=URL"))?;
            if !UPSTREAM_KINDS.contains(&kind) {
                return Err(format!(
                    "--upstream {entry}: unknown kind '{kind}' (one of {})",
                    UPSTREAM_KINDS.join(", ")
                ));
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "--upstream {entry}: the URL must start with http:// or https://"
                ));
            }
            settings
                .endpoints
                .insert(kind.to_string(), url.trim_end_matches('/').to_string());
        }
        if let Some(path) = secrets_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--secrets-file {}: {e}", path.display()))?;
            let raw: HashMap<String, serde_json::Value> = serde_json::from_str(&text)
                .map_err(|e| format!("--secrets-file {}: {e}", path.display()))?;
            for (arn, value) in raw {
                // A value that is not the expected object is kept as
                // unreadable: a rule naming it fails as ECR fails on a
                // secret it cannot decrypt.
                let parsed = serde_json::from_value(value).unwrap_or_default();
                settings.secrets.insert(arn, parsed);
            }
        }
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        settings.environment_keys = SecretValue {
            access_key_id: env("AWS_ACCESS_KEY_ID"),
            secret_access_key: env("AWS_SECRET_ACCESS_KEY"),
            session_token: env("AWS_SESSION_TOKEN"),
            ..SecretValue::default()
        }
        .signing_keys();
        Ok(settings)
    }
}

/// The model's `UpstreamRegistry` values.
pub const UPSTREAM_KINDS: &[&str] = &[
    "ecr",
    "ecr-public",
    "quay",
    "k8s",
    "docker-hub",
    "github-container-registry",
    "azure-container-registry",
    "gitlab-container-registry",
    "chainguard",
];

static ECR_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
        .expect("ECR URL pattern compiles")
});
static AZURE_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]{5,50}\.azurecr\.io$").expect("Azure URL pattern compiles")
});
static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws(-[a-z]+)*:iam::([0-9]{12}):role/[\w+=,.@/-]+$")
        .expect("role ARN pattern compiles")
});
static SECRET_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws(-[a-z]+)*:secretsmanager:([a-z0-9-]+):([0-9]{12}):secret:")
        .expect("secret ARN pattern compiles")
});

/// The upstream kind a registry URL belongs to.
pub fn kind_of_url(url: &str) -> Option<&'static str> {
    match url {
        "registry-1.docker.io" => Some("docker-hub"),
        "public.ecr.aws" => Some("ecr-public"),
        "quay.io" => Some("quay"),
        "registry.k8s.io" => Some("k8s"),
        "ghcr.io" => Some("github-container-registry"),
        "registry.gitlab.com" => Some("gitlab-container-registry"),
        "cgr.dev" => Some("chainguard"),
        u if AZURE_URL.is_match(u) => Some("azure-container-registry"),
        u if ECR_URL.is_match(u) => Some("ecr"),
        _ => None,
    }
}

/// Kinds that need a secret (the user guide's "upstream registries that
/// require authentication").
fn needs_credentials(kind: &str) -> bool {
    matches!(
        kind,
        "docker-hub"
            | "github-container-registry"
            | "azure-container-registry"
            | "gitlab-container-registry"
    )
}

/// Kinds that may take a secret.
fn takes_credentials(kind: &str) -> bool {
    needs_credentials(kind) || kind == "chainguard"
}

fn rule_key(scope: &Scope, prefix: &str) -> String {
    format!("{}{}", scope.key_prefix(), canonical_prefix(prefix))
}

/// A prefix with the assumed trailing `/` dropped: `hub/` and `hub` are
/// the same rule.
pub fn canonical_prefix(prefix: &str) -> &str {
    if prefix == ROOT {
        prefix
    } else {
        prefix.trim_end_matches('/')
    }
}

pub(crate) fn not_found(scope: &Scope, prefix: &str) -> EcrError {
    EcrError::new(
        ErrorKind::PullThroughCacheRuleNotFound,
        format!(
            "The pull through cache rule with prefix '{prefix}' does not exist in the registry with id '{}'",
            scope.account
        ),
    )
}

fn unsupported_url(url: &str) -> EcrError {
    EcrError::new(
        ErrorKind::UnsupportedUpstreamRegistry,
        format!("The upstream registry URL {url} is invalid. Specify a valid upstream registry URL and try again"),
    )
}

fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("ptc:{last}"))
}

fn decode_token(token: &str) -> EcrResult<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("ptc:").map(str::to_string))
        .ok_or_else(|| {
            EcrError::invalid_parameter(
                "nextToken",
                "must be a nextToken returned by an earlier call",
            )
        })
}

/// Why an upstream cannot be used, as the pull that needed it is told.
fn upstream_unusable(host: &str, why: &str) -> EcrError {
    EcrError::new(
        ErrorKind::UnableToGetUpstreamImage,
        format!("The upstream registry {host} cannot be used: {why}"),
    )
}

/// The account and region an ECR upstream's host name
/// (`<account>.dkr.ecr.<region>.amazonaws.com`) names.
fn ecr_upstream_of(host: &str) -> EcrResult<(String, String)> {
    let caps = ECR_URL
        .captures(host)
        .ok_or_else(|| upstream_unusable(host, "it is not an ECR registry URL"))?;
    Ok((caps[1].to_string(), caps[2].to_string()))
}

/// An `ecr` upstream that is another ECR service (`--upstream ecr=URL`: a
/// remote ecrd, which serves its control plane and registry on one port),
/// logged in to as ECR logs in: GetAuthorizationToken in the upstream's
/// region, signed with the keys that stand for the rule's role (ecrd has no
/// STS to assume it): the secrets file's entry keyed by the `customRoleArn`,
/// else the process's AWS environment keys. The registry is addressed
/// under its ECR host name, so the remote picks the registry the rule names.
fn remote_ecr_client(
    rule: &RuleRecord,
    endpoint: &str,
    settings: &UpstreamSettings,
    cache: &crate::upstream::ecr_login::LoginCache,
) -> EcrResult<RegistryClient> {
    let host = rule.upstream_registry_url.trim_end_matches('/');
    let unavailable = |why: &str| upstream_unusable(host, why);
    let (_, region) = ecr_upstream_of(host)?;
    let keys = rule
        .custom_role_arn
        .as_ref()
        .and_then(|role| settings.secrets.get(role))
        .and_then(SecretValue::signing_keys)
        .or_else(|| settings.environment_keys.clone())
        .ok_or_else(|| {
            unavailable(
                "no AWS keys for the rule's role in the secrets file, and none in the environment",
            )
        })?;
    let login = EcrLogin {
        endpoint: endpoint.to_string(),
        region,
        keys,
        cache: cache.clone(),
    };
    // A plain-HTTP endpoint on an IP address is reached under the registry's
    // host name (as ECR's registry is); any other is used as given.
    let direct = endpoint.strip_prefix("http://").and_then(|rest| {
        rest.trim_end_matches('/')
            .parse::<std::net::SocketAddr>()
            .ok()
    });
    let client = match direct {
        Some(addr) => RegistryClient::resolving(host, addr, None),
        None => RegistryClient::new(endpoint, None),
    };
    Ok(client.with_login(login))
}

impl Ecr {
    /// Replaces the upstream endpoints and secrets (at start).
    pub fn set_upstreams(&self, settings: UpstreamSettings) {
        if let Ok(mut current) = self.upstreams.write() {
            *current = settings;
        }
    }

    fn upstream_settings(&self) -> UpstreamSettings {
        self.upstreams.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The credentials a secret holds, checked as ECR checks a rule's
    /// secret: present, reachable by the registry, readable.
    fn secret_credentials(&self, scope: &Scope, arn: &str) -> EcrResult<Credentials> {
        let settings = self.upstream_settings();
        let Some(value) = settings.secrets.get(arn) else {
            return Err(EcrError::new(
                ErrorKind::SecretNotFound,
                format!("The specified secret {arn} does not exist. Specify a valid secret ARN and try again"),
            ));
        };
        if let Some(c) = SECRET_ARN.captures(arn) {
            let region = c.get(2).map(|m| m.as_str());
            let account = c.get(3).map(|m| m.as_str());
            if account != Some(scope.account.as_str()) || region != Some(scope.region.as_str()) {
                return Err(EcrError::new(
                    ErrorKind::UnableToAccessSecret,
                    format!("Unable to access the secret {arn}. The secret must be in the same account and region as the registry"),
                ));
            }
        }
        match (&value.username, &value.access_token) {
            (Some(u), Some(t)) if !u.is_empty() && !t.is_empty() => Ok(Credentials {
                username: u.clone(),
                password: t.clone(),
            }),
            _ => Err(EcrError::new(
                ErrorKind::UnableToDecryptSecretValue,
                format!("Unable to decrypt the value of the secret {arn}. The secret value must be a JSON object with username and accessToken"),
            )),
        }
    }

    /// Checks a rule's settings together, in ECR's terms.
    fn check_rule(&self, scope: &Scope, rule: &RuleRecord) -> EcrResult<()> {
        let kind = rule.upstream_registry.as_str();
        if kind_of_url(&rule.upstream_registry_url) != Some(kind) {
            return Err(unsupported_url(&rule.upstream_registry_url));
        }
        match &rule.credential_arn {
            None if needs_credentials(kind) => {
                return Err(EcrError::new(
                    ErrorKind::UnsupportedUpstreamRegistry,
                    "The specified upstream registry requires authentication. Specify a valid Secrets Manager ARN and try again",
                ))
            }
            Some(_) if !takes_credentials(kind) => {
                return Err(EcrError::invalid_parameter(
                    "credentialArn",
                    &format!("must not be specified for upstream registry '{kind}'"),
                ))
            }
            Some(arn) => {
                self.secret_credentials(scope, arn)?;
            }
            None => {}
        }
        if let Some(role) = &rule.custom_role_arn {
            if kind != "ecr" {
                return Err(EcrError::invalid_parameter(
                    "customRoleArn",
                    &format!("must not be specified for upstream registry '{kind}'"),
                ));
            }
            if !ROLE_ARN.is_match(role) {
                return Err(EcrError::invalid_parameter(
                    "customRoleArn",
                    "must be the ARN of an IAM role",
                ));
            }
        }
        if kind == "ecr" {
            let upstream_account = ECR_URL
                .captures(&rule.upstream_registry_url)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str());
            if upstream_account != Some(scope.account.as_str()) && rule.custom_role_arn.is_none() {
                return Err(EcrError::invalid_parameter(
                    "customRoleArn",
                    "must be specified when the upstream registry belongs to another account",
                ));
            }
        }
        if let Some(upstream_prefix) = &rule.upstream_repository_prefix {
            if kind != "ecr" {
                return Err(EcrError::invalid_parameter(
                    "upstreamRepositoryPrefix",
                    &format!("must not be specified for upstream registry '{kind}'"),
                ));
            }
            if rule.prefix == ROOT && upstream_prefix != ROOT {
                return Err(EcrError::invalid_parameter(
                    "upstreamRepositoryPrefix",
                    "can only be specified when ecrRepositoryPrefix is not ROOT",
                ));
            }
        }
        Ok(())
    }

    pub fn create_pull_through_rule(&self, scope: &Scope, new: NewRule) -> EcrResult<RuleRecord> {
        let upstream_registry = match new.upstream_registry {
            Some(kind) => kind,
            None => kind_of_url(&new.upstream_registry_url)
                .ok_or_else(|| unsupported_url(&new.upstream_registry_url))?
                .to_string(),
        };
        let now = self.clock.now_ms();
        let rule = RuleRecord {
            prefix: new.prefix,
            upstream_registry_url: new.upstream_registry_url,
            upstream_registry,
            credential_arn: new.credential_arn,
            custom_role_arn: new.custom_role_arn,
            upstream_repository_prefix: new.upstream_repository_prefix,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.check_rule(scope, &rule)?;
        let key = rule_key(scope, &rule.prefix);
        let mut tx = self.store.write()?;
        if tx.get(Table::PullThroughCacheRules, &key)?.is_some() {
            return Err(EcrError::new(
                ErrorKind::PullThroughCacheRuleAlreadyExists,
                format!(
                    "A pull through cache rule with prefix '{}' already exists in the registry with id '{}'",
                    rule.prefix, scope.account
                ),
            ));
        }
        let count = tx
            .scan(
                Table::PullThroughCacheRules,
                &scope.key_prefix(),
                None,
                MAX_RULES,
            )?
            .len();
        if count >= MAX_RULES {
            return Err(EcrError::new(
                ErrorKind::LimitExceeded,
                format!("The maximum number of pull through cache rules ({MAX_RULES}) for the registry with id '{}' has been reached", scope.account),
            ));
        }
        save(&mut *tx, Table::PullThroughCacheRules, &key, &rule)?;
        tx.commit()?;
        Ok(rule)
    }

    /// UpdatePullThroughCacheRule: a new secret and/or role (`None` keeps).
    pub fn update_pull_through_rule(
        &self,
        scope: &Scope,
        prefix: &str,
        credential_arn: Option<String>,
        custom_role_arn: Option<String>,
    ) -> EcrResult<RuleRecord> {
        let key = rule_key(scope, prefix);
        let mut tx = self.store.write()?;
        let mut rule: RuleRecord = load(&*tx, Table::PullThroughCacheRules, &key)?
            .ok_or_else(|| not_found(scope, prefix))?;
        if credential_arn.is_none() && custom_role_arn.is_none() {
            return Err(EcrError::invalid_parameter(
                "credentialArn",
                "either credentialArn or customRoleArn must be specified",
            ));
        }
        if credential_arn.is_some() {
            rule.credential_arn = credential_arn;
        }
        if custom_role_arn.is_some() {
            rule.custom_role_arn = custom_role_arn;
        }
        self.check_rule(scope, &rule)?;
        rule.updated_at_ms = self.clock.now_ms();
        save(&mut *tx, Table::PullThroughCacheRules, &key, &rule)?;
        tx.commit()?;
        Ok(rule)
    }

    pub fn delete_pull_through_rule(&self, scope: &Scope, prefix: &str) -> EcrResult<RuleRecord> {
        let key = rule_key(scope, prefix);
        let mut tx = self.store.write()?;
        let rule: RuleRecord = load(&*tx, Table::PullThroughCacheRules, &key)?
            .ok_or_else(|| not_found(scope, prefix))?;
        tx.delete(Table::PullThroughCacheRules, &key)?;
        tx.commit()?;
        Ok(rule)
    }

    /// DescribePullThroughCacheRules: the named prefixes (every one must
    /// exist: PullThroughCacheRuleNotFoundException otherwise, which the
    /// Terraform provider reads as "gone"), or a page of all rules in
    /// prefix order.
    pub fn describe_pull_through_rules(
        &self,
        scope: &Scope,
        prefixes: Option<Vec<String>>,
        next_token: Option<String>,
        max_results: Option<usize>,
    ) -> EcrResult<RulePage> {
        let tx = self.store.read()?;
        let limit = max_results.unwrap_or(DEFAULT_PAGE_SIZE).max(1);
        let after = next_token.as_deref().map(decode_token).transpose()?;
        if let Some(mut prefixes) = prefixes.filter(|p| !p.is_empty()) {
            prefixes.sort();
            prefixes.dedup();
            let mut rules = Vec::new();
            for prefix in &prefixes {
                let rule: RuleRecord =
                    load(&*tx, Table::PullThroughCacheRules, &rule_key(scope, prefix))?
                        .ok_or_else(|| not_found(scope, prefix))?;
                rules.push(rule);
            }
            let start = rules
                .iter()
                .position(|r| after.as_deref().is_none_or(|a| r.prefix.as_str() > a))
                .unwrap_or(rules.len());
            let rest: Vec<RuleRecord> = rules.into_iter().skip(start).collect();
            let more = rest.len() > limit;
            let rules: Vec<RuleRecord> = rest.into_iter().take(limit).collect();
            let next_token = match rules.last() {
                Some(last) if more => Some(encode_token(&last.prefix)),
                _ => None,
            };
            return Ok(RulePage { rules, next_token });
        }
        let start = after.map(|a| rule_key(scope, &a));
        let entries = tx.scan(
            Table::PullThroughCacheRules,
            &scope.key_prefix(),
            start.as_deref(),
            limit + 1,
        )?;
        let more = entries.len() > limit;
        let rules = entries
            .into_iter()
            .take(limit)
            .map(|(_, b)| serde_json::from_slice::<RuleRecord>(&b))
            .collect::<Result<Vec<_>, _>>()?;
        let next_token = match rules.last() {
            Some(last) if more => Some(encode_token(canonical_prefix(&last.prefix))),
            _ => None,
        };
        Ok(RulePage { rules, next_token })
    }

    /// The rule a repository name falls under: the most specific prefix
    /// whose namespace covers it, else a `ROOT` rule.
    pub(crate) fn rule_for(
        &self,
        tx: &(impl ReadTxn + ?Sized),
        scope: &Scope,
        name: &str,
    ) -> EcrResult<Option<RuleRecord>> {
        // Candidates are the name's own namespaces, longest first: a direct
        // lookup each, no scan of every rule.
        let mut candidate = name;
        while let Some((parent, _)) = candidate.rsplit_once('/') {
            if let Some(rule) = load(tx, Table::PullThroughCacheRules, &rule_key(scope, parent))? {
                return Ok(Some(rule));
            }
            candidate = parent;
        }
        load(tx, Table::PullThroughCacheRules, &rule_key(scope, ROOT))
    }

    /// The client for a rule's upstream, with the rule's credentials.
    pub(crate) fn upstream_client(
        &self,
        scope: &Scope,
        rule: &RuleRecord,
    ) -> EcrResult<RegistryClient> {
        let settings = self.upstream_settings();
        if rule.upstream_registry == "ecr" {
            if let Some(endpoint) = settings.endpoints.get("ecr") {
                return remote_ecr_client(rule, endpoint, &settings, &self.ecr_logins);
            }
            if let Some(local) = &settings.local {
                return self.local_ecr_client(scope, rule, local);
            }
        }
        let base = settings
            .endpoints
            .get(&rule.upstream_registry)
            .cloned()
            .unwrap_or_else(|| format!("https://{}", rule.upstream_registry_url));
        let credentials = match &rule.credential_arn {
            Some(arn) => Some(self.secret_credentials(scope, arn)?),
            None => None,
        };
        Ok(RegistryClient::new(&base, credentials))
    }

    /// An `ecr` upstream in this ecrd: reached over loopback under its ECR
    /// host name (which names the registry, as in ECR), logged in with a
    /// password this ecrd signs for the rule's `customRoleArn` (or the
    /// downstream account's root) in the upstream's region. So the
    /// upstream's own policies decide, as ECR's do for a cross-account or
    /// cross-region rule.
    fn local_ecr_client(
        &self,
        scope: &Scope,
        rule: &RuleRecord,
        local: &LocalRegistry,
    ) -> EcrResult<RegistryClient> {
        let host = rule.upstream_registry_url.trim_end_matches('/');
        let unavailable = |why: &str| upstream_unusable(host, why);
        let (account, region) = ecr_upstream_of(host)?;
        let region = Region::parse(&region).map_err(|e| unavailable(&e))?;
        let upstream_account = AccountId::parse(&account).map_err(|e| unavailable(&e))?;
        if upstream_account == scope.account && region == scope.region {
            return Err(unavailable("it is this registry"));
        }
        let principal = rule
            .custom_role_arn
            .clone()
            .unwrap_or_else(|| crate::auth::credentials::root_arn(&scope.account));
        let (password, _) = local.signer.issue_to(
            &Scope::new(scope.account.clone(), region),
            "pull-through-cache",
            Some(&principal),
            self.clock.now(),
        );
        Ok(RegistryClient::resolving(
            host,
            local.addr,
            Some(Credentials {
                username: "AWS".to_string(),
                password,
            }),
        ))
    }

    /// ValidatePullThroughCacheRule: reaches the upstream with the rule's
    /// credentials and reports whether it answered.
    pub async fn validate_pull_through_rule(
        &self,
        scope: &Scope,
        prefix: &str,
    ) -> EcrResult<Validation> {
        let rule: RuleRecord = {
            let tx = self.store.read()?;
            load(&*tx, Table::PullThroughCacheRules, &rule_key(scope, prefix))?
                .ok_or_else(|| not_found(scope, prefix))?
        };
        let outcome = match self.upstream_client(scope, &rule) {
            Ok(client) => client.ping().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.message),
        };
        Ok(match outcome {
            Ok(()) => Validation {
                rule,
                is_valid: true,
                failure: None,
            },
            Err(failure) => Validation {
                rule,
                is_valid: false,
                failure: Some(failure),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_kind() {
        assert_eq!(kind_of_url("registry-1.docker.io"), Some("docker-hub"));
        assert_eq!(
            kind_of_url("myreg1.azurecr.io"),
            Some("azure-container-registry")
        );
        assert_eq!(
            kind_of_url("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some("ecr")
        );
        assert_eq!(kind_of_url("docker.io"), None);
        assert_eq!(kind_of_url("harbor.example.com"), None);
        for kind in UPSTREAM_KINDS {
            assert!(crate::api::model::ENUM_UPSTREAM_REGISTRY.contains(kind));
        }
        assert_eq!(
            UPSTREAM_KINDS.len(),
            crate::api::model::ENUM_UPSTREAM_REGISTRY.len()
        );
    }

    #[test]
    fn upstream_flags() {
        let s = UpstreamSettings::from_config(None, &["docker-hub=http://127.0.0.1:5000/".into()])
            .expect("parses");
        assert_eq!(s.endpoints["docker-hub"], "http://127.0.0.1:5000");
        assert!(UpstreamSettings::from_config(None, &["nope=http://x".into()]).is_err());
        assert!(UpstreamSettings::from_config(None, &["quay=ftp://x".into()]).is_err());
    }
}

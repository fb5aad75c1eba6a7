//! The registry scanning configuration (PutRegistryScanningConfiguration,
//! GetRegistryScanningConfiguration) and what it means for each repository
//! (BatchGetRepositoryScanningConfiguration): the scan type, the rules, the
//! wildcard repository filters, and which frequency applies to a repository.
//!
//! The rules follow the ECR API reference (`RegistryScanningRule`,
//! `ScanningRepositoryFilter`) and the user guide's "Filters to choose which
//! repositories are scanned" page:
//!
//! - With no configuration put, a registry uses BASIC scanning with no rules.
//! - BASIC supports the SCAN_ON_PUSH frequency; ENHANCED supports
//!   CONTINUOUS_SCAN and SCAN_ON_PUSH. MANUAL is what a repository gets when
//!   no rule applies; it is not a frequency a rule may ask for.
//! - A filter without `*` matches every repository name that contains it; a
//!   filter with `*` matches a whole name, each `*` standing for zero or
//!   more characters.
//! - Under ENHANCED, when filters of both frequencies match, continuous
//!   scanning wins over scan on push. Repositories that no ENHANCED rule
//!   matches are not scanned (reported as MANUAL, the model having no other
//!   value for it).
//! - Under BASIC, a repository matched by a scan-on-push filter, or whose own
//!   `scanOnPush` is set (CreateRepository / PutImageScanningConfiguration),
//!   scans on push; every other repository is MANUAL.
//!
//! The model's limits (at most 2 rules, at most 100 filters a rule, filters
//! of 1 to 255 characters of `[a-z0-9._/*-]`, filter type WILDCARD) are
//! checked by the generated input validation; this module checks them again
//! when it parses, and adds the rules the model cannot express: a frequency
//! the scan type does not support, and two rules for one frequency.

use serde::{Deserialize, Serialize};

use super::error::{EcrError, EcrResult};
use super::names::Scope;
use super::records::RepositoryRecord;
use super::repositories::{parse_name, repository_key};
use super::{load, save, Ecr};
use crate::store::Table;

/// Most rules a configuration may hold (the model's `RegistryScanningRuleList`).
pub const MAX_RULES: usize = 2;
/// Most filters a rule may hold (the model's `ScanningRepositoryFilterList`).
pub const MAX_FILTERS_PER_RULE: usize = 100;
/// Longest filter (the model's `ScanningRepositoryFilterValue`).
pub const MAX_FILTER_LEN: usize = 255;

/// BASIC (ECR's own scanner) or ENHANCED (Amazon Inspector in ECR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanType {
    #[default]
    Basic,
    Enhanced,
}

impl ScanType {
    pub fn parse(value: &str) -> EcrResult<Self> {
        match value {
            "BASIC" => Ok(ScanType::Basic),
            "ENHANCED" => Ok(ScanType::Enhanced),
            _ => Err(EcrError::invalid_parameter(
                "scanType",
                "must satisfy enum value set: [BASIC, ENHANCED]",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScanType::Basic => "BASIC",
            ScanType::Enhanced => "ENHANCED",
        }
    }

    /// The frequencies a rule may ask for under this scan type.
    pub fn rule_frequencies(self) -> &'static [ScanFrequency] {
        match self {
            ScanType::Basic => &[ScanFrequency::ScanOnPush],
            ScanType::Enhanced => &[ScanFrequency::ContinuousScan, ScanFrequency::ScanOnPush],
        }
    }
}

/// How often a repository's images are scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanFrequency {
    ScanOnPush,
    ContinuousScan,
    Manual,
}

impl ScanFrequency {
    pub fn parse(value: &str, path: &str) -> EcrResult<Self> {
        match value {
            "SCAN_ON_PUSH" => Ok(ScanFrequency::ScanOnPush),
            "CONTINUOUS_SCAN" => Ok(ScanFrequency::ContinuousScan),
            "MANUAL" => Ok(ScanFrequency::Manual),
            _ => Err(EcrError::invalid_parameter(
                path,
                "must satisfy enum value set: [SCAN_ON_PUSH, CONTINUOUS_SCAN, MANUAL]",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScanFrequency::ScanOnPush => "SCAN_ON_PUSH",
            ScanFrequency::ContinuousScan => "CONTINUOUS_SCAN",
            ScanFrequency::Manual => "MANUAL",
        }
    }
}

/// A repository filter; `filter_type` is always `WILDCARD`, the only type
/// the model has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryFilter {
    pub filter: String,
    pub filter_type: String,
}

impl RepositoryFilter {
    /// A filter as the request gives it, checked against the model's
    /// constraints (`path` names it in the error).
    pub fn parse(filter: &str, filter_type: &str, path: &str) -> EcrResult<Self> {
        if filter_type != "WILDCARD" {
            return Err(EcrError::invalid_parameter(
                &format!("{path}.filterType"),
                "must satisfy enum value set: [WILDCARD]",
            ));
        }
        let at = format!("{path}.filter");
        if filter.is_empty() {
            return Err(EcrError::invalid_parameter(
                &at,
                "must have length greater than or equal to 1",
            ));
        }
        if filter.len() > MAX_FILTER_LEN {
            return Err(EcrError::invalid_parameter(
                &at,
                "must have length less than or equal to 255",
            ));
        }
        if !filter_is_well_formed(filter) {
            return Err(EcrError::invalid_parameter(
                &at,
                "must satisfy regular expression '^[a-z0-9*](?:[._\\-/a-z0-9*]?[a-z0-9*]+)*$'",
            ));
        }
        Ok(RepositoryFilter {
            filter: filter.to_string(),
            filter_type: filter_type.to_string(),
        })
    }

    /// Whether the filter selects the repository `name`.
    pub fn matches(&self, name: &str) -> bool {
        if self.filter.contains('*') {
            wildcard_match(self.filter.as_bytes(), name.as_bytes())
        } else {
            name.contains(self.filter.as_str())
        }
    }
}

/// The model's pattern for a filter: runs of `[a-z0-9*]` joined by at most
/// one of `._-/`, neither starting nor ending with a separator.
fn filter_is_well_formed(filter: &str) -> bool {
    let word = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'*';
    let separator = |c: u8| matches!(c, b'.' | b'_' | b'-' | b'/');
    let bytes = filter.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !word(first) || !word(last) {
        return false;
    }
    let mut previous_was_separator = false;
    for &c in bytes {
        if separator(c) {
            if previous_was_separator {
                return false;
            }
            previous_was_separator = true;
        } else if word(c) {
            previous_was_separator = false;
        } else {
            return false;
        }
    }
    true
}

/// `*` matches zero or more bytes; everything else matches itself; the
/// whole of `name` must be matched.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where the latest `*` was, and how much of `name` it has taken so far.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// One rule: a frequency for the repositories its filters select.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanningRule {
    pub scan_frequency: ScanFrequency,
    pub repository_filters: Vec<RepositoryFilter>,
}

/// A registry's scanning configuration, as stored and answered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScanningConfiguration {
    pub scan_type: ScanType,
    pub rules: Vec<ScanningRule>,
}

/// A rule as a request gives it, before checking.
#[derive(Debug, Clone, Default)]
pub struct RuleInput {
    pub scan_frequency: String,
    /// `(filter, filterType)` pairs.
    pub repository_filters: Vec<(String, String)>,
}

impl ScanningConfiguration {
    /// Builds a configuration from a PutRegistryScanningConfiguration
    /// request. A missing scan type is BASIC, the registry default.
    pub fn parse(scan_type: Option<&str>, rules: &[RuleInput]) -> EcrResult<Self> {
        let scan_type = match scan_type {
            Some(value) => ScanType::parse(value)?,
            None => ScanType::Basic,
        };
        if rules.len() > MAX_RULES {
            return Err(EcrError::invalid_parameter(
                "rules",
                "must have length less than or equal to 2",
            ));
        }
        let mut parsed: Vec<ScanningRule> = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let path = format!("rules.{}.member", i + 1);
            let frequency =
                ScanFrequency::parse(&rule.scan_frequency, &format!("{path}.scanFrequency"))?;
            if !scan_type.rule_frequencies().contains(&frequency) {
                let supported: Vec<&str> = scan_type
                    .rule_frequencies()
                    .iter()
                    .map(|f| f.as_str())
                    .collect();
                return Err(EcrError::invalid_parameter(
                    &format!("{path}.scanFrequency"),
                    &format!(
                        "Scan frequency {} is not supported for scan type {}; supported: [{}]",
                        frequency.as_str(),
                        scan_type.as_str(),
                        supported.join(", ")
                    ),
                ));
            }
            if parsed.iter().any(|r| r.scan_frequency == frequency) {
                return Err(EcrError::invalid_parameter(
                    "rules",
                    &format!(
                        "Only one rule per scan frequency is allowed; {} is given more than once",
                        frequency.as_str()
                    ),
                ));
            }
            if rule.repository_filters.len() > MAX_FILTERS_PER_RULE {
                return Err(EcrError::invalid_parameter(
                    &format!("{path}.repositoryFilters"),
                    "must have length less than or equal to 100",
                ));
            }
            let mut filters: Vec<RepositoryFilter> =
                Vec::with_capacity(rule.repository_filters.len());
            for (j, (filter, filter_type)) in rule.repository_filters.iter().enumerate() {
                let filter = RepositoryFilter::parse(
                    filter,
                    filter_type,
                    &format!("{path}.repositoryFilters.{}.member", j + 1),
                )?;
                // A repeated filter selects nothing more; keep the first.
                if !filters.contains(&filter) {
                    filters.push(filter);
                }
            }
            parsed.push(ScanningRule {
                scan_frequency: frequency,
                repository_filters: filters,
            });
        }
        Ok(ScanningConfiguration {
            scan_type,
            rules: parsed,
        })
    }

    /// Which frequency applies to the repository `name`, and the filters
    /// that made it so.
    pub fn applied_to(&self, name: &str, scan_on_push: bool) -> RepositoryScanning {
        // Continuous scanning wins over scan on push (user guide, "Filters
        // to choose which repositories are scanned").
        let order = [ScanFrequency::ContinuousScan, ScanFrequency::ScanOnPush];
        for frequency in order {
            for rule in self.rules.iter().filter(|r| r.scan_frequency == frequency) {
                let applied: Vec<RepositoryFilter> = rule
                    .repository_filters
                    .iter()
                    .filter(|f| f.matches(name))
                    .cloned()
                    .collect();
                if !applied.is_empty() {
                    return RepositoryScanning {
                        scan_on_push,
                        scan_frequency: frequency,
                        applied_filters: applied,
                    };
                }
            }
        }
        let scan_frequency = match self.scan_type {
            ScanType::Basic if scan_on_push => ScanFrequency::ScanOnPush,
            _ => ScanFrequency::Manual,
        };
        RepositoryScanning {
            scan_on_push,
            scan_frequency,
            applied_filters: Vec::new(),
        }
    }
}

/// The scanning that applies to one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryScanning {
    /// The repository's own `scanOnPush` setting.
    pub scan_on_push: bool,
    pub scan_frequency: ScanFrequency,
    pub applied_filters: Vec<RepositoryFilter>,
}

/// BatchGetRepositoryScanningConfiguration's answer for one name.
#[derive(Debug, Clone, PartialEq)]
pub enum RepositoryScanningResult {
    Found {
        record: RepositoryRecord,
        scanning: RepositoryScanning,
    },
    /// No such repository: the failure's reason, worded as
    /// RepositoryNotFoundException words it.
    NotFound { name: String, reason: String },
}

impl Ecr {
    /// GetRegistryScanningConfiguration: the stored configuration, or the
    /// default (BASIC, no rules).
    pub fn get_registry_scanning_configuration(
        &self,
        scope: &Scope,
    ) -> EcrResult<ScanningConfiguration> {
        let tx = self.store.read()?;
        Ok(load(&*tx, Table::ScanningConfigurations, &scope.key_prefix())?.unwrap_or_default())
    }

    /// PutRegistryScanningConfiguration: replaces the configuration whole.
    pub fn put_registry_scanning_configuration(
        &self,
        scope: &Scope,
        configuration: ScanningConfiguration,
    ) -> EcrResult<ScanningConfiguration> {
        let mut tx = self.store.write()?;
        save(
            &mut *tx,
            Table::ScanningConfigurations,
            &scope.key_prefix(),
            &configuration,
        )?;
        tx.commit()?;
        Ok(configuration)
    }

    /// The scanning that applies to one repository record of `scope`.
    pub fn repository_scanning(
        &self,
        scope: &Scope,
        record: &RepositoryRecord,
    ) -> EcrResult<RepositoryScanning> {
        let configuration = self.get_registry_scanning_configuration(scope)?;
        Ok(configuration.applied_to(&record.name, record.scan_on_push))
    }

    /// BatchGetRepositoryScanningConfiguration: one answer per distinct
    /// name, in the order asked, all read from one consistent state.
    pub fn batch_get_repository_scanning_configuration(
        &self,
        scope: &Scope,
        names: &[String],
    ) -> EcrResult<Vec<RepositoryScanningResult>> {
        let tx = self.store.read()?;
        let configuration: ScanningConfiguration =
            load(&*tx, Table::ScanningConfigurations, &scope.key_prefix())?.unwrap_or_default();
        let mut seen: Vec<&str> = Vec::with_capacity(names.len());
        let mut results = Vec::with_capacity(names.len());
        for name in names {
            if seen.contains(&name.as_str()) {
                continue;
            }
            seen.push(name);
            let parsed = parse_name(name)?;
            let record: Option<RepositoryRecord> = load(
                &*tx,
                Table::Repositories,
                &repository_key(scope, parsed.as_str()),
            )?;
            results.push(match record {
                Some(record) => {
                    let scanning = configuration.applied_to(&record.name, record.scan_on_push);
                    RepositoryScanningResult::Found { record, scanning }
                }
                None => RepositoryScanningResult::NotFound {
                    name: name.clone(),
                    reason: EcrError::repository_not_found(name, scope.account.as_str()).message,
                },
            });
        }
        Ok(results)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn filter(f: &str) -> RepositoryFilter {
        RepositoryFilter::parse(f, "WILDCARD", "f").unwrap()
    }

    /// The user guide's table of filters against repository names.
    #[test]
    fn filters_match_as_the_user_guide_tabulates() {
        let names = [
            "prod",
            "repo-prod",
            "prod-repo",
            "repo-prod-repo",
            "prodrepo",
        ];
        let table: &[(&str, [bool; 5])] = &[
            ("prod", [true, true, true, true, true]),
            ("*prod", [true, true, false, false, false]),
            ("prod*", [true, false, true, false, true]),
            ("*prod*", [true, true, true, true, true]),
            ("prod*repo", [false, false, true, false, true]),
        ];
        for (f, expected) in table {
            for (name, want) in names.iter().zip(expected) {
                assert_eq!(filter(f).matches(name), *want, "{f} vs {name}");
            }
        }
    }

    #[test]
    fn wildcards_backtrack_and_match_whole_names() {
        assert!(filter("*").matches("anything/at/all"));
        assert!(filter("a*b*c").matches("axxbyyc"));
        assert!(filter("a*b*c").matches("abbbc"));
        assert!(!filter("a*b*c").matches("axxbyy"));
        assert!(filter("team/*").matches("team/api"));
        assert!(!filter("team/*").matches("other/team/api"));
        assert!(filter("team").matches("other/team/api"));
        assert!(filter("**").matches("x"));
    }

    #[test]
    fn filters_follow_the_model_pattern() {
        for ok in ["a", "*", "prod*", "team/api", "a.b_c-d", "a*b"] {
            assert!(RepositoryFilter::parse(ok, "WILDCARD", "f").is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "a./b", "A", "a b", "a:b"] {
            assert!(
                RepositoryFilter::parse(bad, "WILDCARD", "f").is_err(),
                "{bad:?}"
            );
        }
        assert!(RepositoryFilter::parse(&"a".repeat(256), "WILDCARD", "f").is_err());
        assert!(RepositoryFilter::parse(&"a".repeat(255), "WILDCARD", "f").is_ok());
        let e = RepositoryFilter::parse("a", "PREFIX", "rules.1.member.repositoryFilters.1.member")
            .unwrap_err();
        assert_eq!(
            e.message,
            "Invalid parameter at 'rules.1.member.repositoryFilters.1.member.filterType' failed to satisfy constraint: 'must satisfy enum value set: [WILDCARD]'"
        );
    }

    fn rule(frequency: &str, filters: &[&str]) -> RuleInput {
        RuleInput {
            scan_frequency: frequency.to_string(),
            repository_filters: filters
                .iter()
                .map(|f| (f.to_string(), "WILDCARD".to_string()))
                .collect(),
        }
    }

    #[test]
    fn scan_types_allow_only_their_frequencies() {
        let ok: &[(&str, &str)] = &[
            ("BASIC", "SCAN_ON_PUSH"),
            ("ENHANCED", "SCAN_ON_PUSH"),
            ("ENHANCED", "CONTINUOUS_SCAN"),
        ];
        for (t, f) in ok {
            assert!(
                ScanningConfiguration::parse(Some(t), &[rule(f, &["*"])]).is_ok(),
                "{t} {f}"
            );
        }
        let refused: &[(&str, &str)] = &[
            ("BASIC", "CONTINUOUS_SCAN"),
            ("BASIC", "MANUAL"),
            ("ENHANCED", "MANUAL"),
        ];
        for (t, f) in refused {
            let e = ScanningConfiguration::parse(Some(t), &[rule(f, &["*"])]).unwrap_err();
            assert_eq!(e.kind, crate::ecr::error::ErrorKind::InvalidParameter);
            assert!(
                e.message
                    .starts_with("Invalid parameter at 'rules.1.member.scanFrequency'"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn one_rule_per_frequency_and_at_most_two_rules() {
        let e = ScanningConfiguration::parse(
            Some("ENHANCED"),
            &[rule("SCAN_ON_PUSH", &["a"]), rule("SCAN_ON_PUSH", &["b"])],
        )
        .unwrap_err();
        assert!(e.message.contains("SCAN_ON_PUSH is given more than once"));
        let three = [
            rule("SCAN_ON_PUSH", &["a"]),
            rule("CONTINUOUS_SCAN", &["b"]),
            rule("SCAN_ON_PUSH", &["c"]),
        ];
        assert!(ScanningConfiguration::parse(Some("ENHANCED"), &three).is_err());
        let too_many: Vec<String> = (0..101).map(|i| format!("r{i}")).collect();
        let refs: Vec<&str> = too_many.iter().map(String::as_str).collect();
        assert!(ScanningConfiguration::parse(None, &[rule("SCAN_ON_PUSH", &refs)]).is_err());
        assert!(ScanningConfiguration::parse(None, &[rule("SCAN_ON_PUSH", &refs[..100])]).is_ok());
    }

    #[test]
    fn default_is_basic_without_rules() {
        let c = ScanningConfiguration::parse(None, &[]).unwrap();
        assert_eq!(c, ScanningConfiguration::default());
        assert_eq!(c.scan_type, ScanType::Basic);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["scan_type"], "BASIC");
    }

    #[test]
    fn frequency_applied_to_repositories() {
        let basic = ScanningConfiguration::parse(
            Some("BASIC"),
            &[rule("SCAN_ON_PUSH", &["prod-*", "shared"])],
        )
        .unwrap();
        let s = basic.applied_to("prod-api", false);
        assert_eq!(s.scan_frequency, ScanFrequency::ScanOnPush);
        assert_eq!(s.applied_filters, vec![filter("prod-*")]);
        let s = basic.applied_to("dev-api", false);
        assert_eq!(s.scan_frequency, ScanFrequency::Manual);
        assert!(s.applied_filters.is_empty());
        // The repository's own setting still scans on push under BASIC.
        let s = basic.applied_to("dev-api", true);
        assert_eq!(s.scan_frequency, ScanFrequency::ScanOnPush);
        assert!(s.scan_on_push);
        assert!(s.applied_filters.is_empty());

        let enhanced = ScanningConfiguration::parse(
            Some("ENHANCED"),
            &[
                rule("SCAN_ON_PUSH", &["*"]),
                rule("CONTINUOUS_SCAN", &["prod*"]),
            ],
        )
        .unwrap();
        let s = enhanced.applied_to("prod/api", false);
        assert_eq!(s.scan_frequency, ScanFrequency::ContinuousScan);
        assert_eq!(s.applied_filters, vec![filter("prod*")]);
        let s = enhanced.applied_to("dev/api", false);
        assert_eq!(s.scan_frequency, ScanFrequency::ScanOnPush);
        assert_eq!(s.applied_filters, vec![filter("*")]);
        // ENHANCED ignores the repository's own flag.
        let only_prod =
            ScanningConfiguration::parse(Some("ENHANCED"), &[rule("CONTINUOUS_SCAN", &["prod"])])
                .unwrap();
        let s = only_prod.applied_to("dev", true);
        assert_eq!(s.scan_frequency, ScanFrequency::Manual);
        assert!(s.scan_on_push);
    }
}

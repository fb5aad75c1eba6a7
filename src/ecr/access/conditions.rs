//! The `Condition` element: its operators, parsed once from the policy, and
//! the request context they are tested against on every request.
//!
//! Implements the IAM User Guide's "IAM JSON policy elements: Condition
//! operators" (string, numeric, date, Boolean, IP address, ARN, `...IfExists`
//! and `Null`), "Creating a condition with multiple context keys or values"
//! (operators AND, keys AND, a key's values OR) and "Single-valued vs.
//! multivalued context keys" (the `ForAnyValue:` / `ForAllValues:` set
//! operators).
//!
//! Policy values are checked and converted when the policy is parsed (a
//! CIDR, a number, an instant), so evaluation only converts the request's
//! value and compares.

use std::net::IpAddr;

use serde_json::Value;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::glob;

/// Request facts for conditions: key (case-insensitive) → one or more values.
///
/// A key set to an empty list counts as absent, as IAM treats a
/// multivalued key with no values.
#[derive(Debug, Clone, Default)]
pub struct Context {
    // A handful of keys per request: a scanned list beats hashing, and
    // lookups compare names case-insensitively without building a lowercase
    // copy.
    entries: Vec<(String, Vec<String>)>,
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued key, replacing any earlier value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.set_many(key, vec![value.into()]);
    }

    /// Sets a multivalued key (for example `aws:TagKeys`).
    pub fn set_many(&mut self, key: &str, values: Vec<String>) {
        match self
            .entries
            .iter_mut()
            .find(|(k, _)| glob::eq_ignore_case(k, key))
        {
            Some(entry) => entry.1 = values,
            None => self.entries.push((key.to_string(), values)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(k, _)| glob::eq_ignore_case(k, key))
            .map(|(_, values)| values.as_slice())
    }

    /// The key's values, `None` when it is absent or empty.
    fn present(&self, key: &str) -> Option<&[String]> {
        self.get(key).filter(|values| !values.is_empty())
    }
}

/// A parsed `Condition` block: every clause must hold.
#[derive(Debug, Clone, Default)]
pub(super) struct Condition {
    clauses: Vec<Clause>,
}

impl Condition {
    /// The condition keys the block tests, as written.
    pub(super) fn keys(&self) -> impl Iterator<Item = &str> {
        self.clauses.iter().map(|c| c.key.as_str())
    }
}

/// One operator applied to one key, with the policy's values for that key.
#[derive(Debug, Clone)]
struct Clause {
    key: String,
    set: SetOperator,
    if_exists: bool,
    /// `StringNotEquals`, `NotIpAddress`, ...: true when no value matches.
    negated: bool,
    test: Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOperator {
    /// No prefix: the key is treated as single-valued; on a multivalued key
    /// a positive operator holds when any request value matches.
    Plain,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextMatch {
    Exact,
    IgnoreCase,
    Like,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

impl Comparison {
    /// `request <op> policy`, as IAM reads `NumericLessThan` and friends.
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Comparison::Equals => request == policy,
            Comparison::LessThan => request < policy,
            Comparison::LessThanEquals => request <= policy,
            Comparison::GreaterThan => request > policy,
            Comparison::GreaterThanEquals => request >= policy,
        }
    }
}

/// An operator family with the policy's values already converted.
#[derive(Debug, Clone)]
enum Test {
    Text(TextMatch, Vec<String>),
    Numeric(Comparison, Vec<f64>),
    /// Instants as nanoseconds since the Unix epoch.
    Date(Comparison, Vec<i128>),
    Bool(Vec<bool>),
    Ip(Vec<Cidr>),
    Arn(Vec<String>),
    /// `true`: the key must be absent; `false`: it must be present.
    Null(Vec<bool>),
}

/// The operator family named by an operator, before its values are read.
#[derive(Debug, Clone, Copy)]
enum Family {
    Text(TextMatch),
    Numeric(Comparison),
    Date(Comparison),
    Bool,
    Ip,
    Arn,
    Null,
}

impl Condition {
    /// Parses a `Condition` element; the error is a human reason.
    pub(super) fn parse(value: &Value) -> Result<Condition, String> {
        let Value::Object(operators) = value else {
            return Err("Condition must be an object".into());
        };
        let mut clauses = Vec::new();
        for (operator, keys) in operators {
            let (set, if_exists, negated, family) = parse_operator(operator)?;
            let Value::Object(keys) = keys else {
                return Err(format!(
                    "Condition operator {operator} must map keys to values"
                ));
            };
            if keys.is_empty() {
                return Err(format!("Condition operator {operator} names no key"));
            }
            for (key, values) in keys {
                if key.is_empty() {
                    return Err(format!("Condition operator {operator} has an empty key"));
                }
                let values = scalars(values)
                    .ok_or_else(|| format!("{operator} values for {key} must be strings, numbers, booleans or a non-empty list of them"))?;
                let test = parse_values(family, &values)
                    .ok_or_else(|| format!("{operator} cannot use the value given for {key}"))?;
                clauses.push(Clause {
                    key: key.clone(),
                    set,
                    if_exists,
                    negated,
                    test,
                });
            }
        }
        Ok(Condition { clauses })
    }

    /// Whether every clause holds for this request.
    pub(super) fn is_satisfied(&self, context: &Context) -> bool {
        self.clauses.iter().all(|clause| clause.holds(context))
    }
}

impl Clause {
    fn holds(&self, context: &Context) -> bool {
        let request = context.present(&self.key);
        if let Test::Null(wanted) = &self.test {
            let absent = request.is_none();
            return wanted.contains(&absent);
        }
        let Some(request) = request else {
            // IAM: `...IfExists` ignores a missing key; `ForAllValues` over no
            // values is vacuously true and `ForAnyValue` false; otherwise a
            // missing key fails a positive operator and passes a negated one.
            return self.if_exists
                || match self.set {
                    SetOperator::ForAllValues => true,
                    SetOperator::ForAnyValue => false,
                    SetOperator::Plain => self.negated,
                };
        };
        match self.set {
            SetOperator::ForAllValues => request
                .iter()
                .all(|value| self.test.matches(value) != self.negated),
            SetOperator::ForAnyValue => request
                .iter()
                .any(|value| self.test.matches(value) != self.negated),
            SetOperator::Plain => {
                request.iter().any(|value| self.test.matches(value)) != self.negated
            }
        }
    }
}

impl Test {
    /// Whether one request value matches any of the policy's values.
    fn matches(&self, request: &str) -> bool {
        match self {
            Test::Text(how, wanted) => wanted.iter().any(|w| match how {
                TextMatch::Exact => w == request,
                TextMatch::IgnoreCase => glob::eq_ignore_case(w, request),
                TextMatch::Like => glob::matches(w, request),
            }),
            Test::Numeric(cmp, wanted) => match parse_number(request) {
                Some(n) => wanted.iter().any(|&w| cmp.holds(n, w)),
                None => false,
            },
            Test::Date(cmp, wanted) => match parse_instant(request) {
                Some(t) => wanted.iter().any(|&w| cmp.holds(t, w)),
                None => false,
            },
            Test::Bool(wanted) => parse_bool(request).is_some_and(|b| wanted.contains(&b)),
            Test::Ip(wanted) => match request.trim().parse::<IpAddr>() {
                Ok(ip) => wanted.iter().any(|cidr| cidr.contains(ip)),
                Err(_) => false,
            },
            Test::Arn(wanted) => wanted.iter().any(|w| glob::arn_matches(w, request)),
            Test::Null(_) => false,
        }
    }
}

/// Splits `ForAnyValue:StringLikeIfExists` into its parts. Operator names
/// are matched exactly as IAM spells them.
fn parse_operator(name: &str) -> Result<(SetOperator, bool, bool, Family), String> {
    let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (SetOperator::ForAnyValue, rest)
    } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (SetOperator::ForAllValues, rest)
    } else {
        (SetOperator::Plain, name)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    use Comparison::*;
    let (negated, family) = match base {
        "StringEquals" => (false, Family::Text(TextMatch::Exact)),
        "StringNotEquals" => (true, Family::Text(TextMatch::Exact)),
        "StringEqualsIgnoreCase" => (false, Family::Text(TextMatch::IgnoreCase)),
        "StringNotEqualsIgnoreCase" => (true, Family::Text(TextMatch::IgnoreCase)),
        "StringLike" => (false, Family::Text(TextMatch::Like)),
        "StringNotLike" => (true, Family::Text(TextMatch::Like)),
        "NumericEquals" => (false, Family::Numeric(Equals)),
        "NumericNotEquals" => (true, Family::Numeric(Equals)),
        "NumericLessThan" => (false, Family::Numeric(LessThan)),
        "NumericLessThanEquals" => (false, Family::Numeric(LessThanEquals)),
        "NumericGreaterThan" => (false, Family::Numeric(GreaterThan)),
        "NumericGreaterThanEquals" => (false, Family::Numeric(GreaterThanEquals)),
        "DateEquals" => (false, Family::Date(Equals)),
        "DateNotEquals" => (true, Family::Date(Equals)),
        "DateLessThan" => (false, Family::Date(LessThan)),
        "DateLessThanEquals" => (false, Family::Date(LessThanEquals)),
        "DateGreaterThan" => (false, Family::Date(GreaterThan)),
        "DateGreaterThanEquals" => (false, Family::Date(GreaterThanEquals)),
        "Bool" => (false, Family::Bool),
        "IpAddress" => (false, Family::Ip),
        "NotIpAddress" => (true, Family::Ip),
        // IAM documents ArnEquals and ArnLike as the same test: both allow
        // wildcards within each ARN component.
        "ArnEquals" | "ArnLike" => (false, Family::Arn),
        "ArnNotEquals" | "ArnNotLike" => (true, Family::Arn),
        "Null" => (false, Family::Null),
        _ => return Err(format!("unknown condition operator {name}")),
    };
    if if_exists && matches!(family, Family::Null) {
        return Err(format!(
            "condition operator {name}: Null cannot be ...IfExists"
        ));
    }
    Ok((set, if_exists, negated, family))
}

/// A condition value: one scalar, or a non-empty list of scalars.
fn scalars(value: &Value) -> Option<Vec<&Value>> {
    let is_scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(is_scalar) => {
            Some(items.iter().collect())
        }
        v if is_scalar(v) => Some(vec![v]),
        _ => None,
    }
}

/// Converts the policy's values for the operator family; `None` if any does
/// not fit (a CIDR that is not one, a date that does not parse, ...).
fn parse_values(family: Family, values: &[&Value]) -> Option<Test> {
    fn each<T>(values: &[&Value], convert: impl Fn(&Value) -> Option<T>) -> Option<Vec<T>> {
        values.iter().map(|v| convert(v)).collect()
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let string = |v: &Value| v.as_str().map(str::to_string);
    let boolean = |v: &Value| match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool(s),
        _ => None,
    };
    Some(match family {
        Family::Text(how) => Test::Text(how, each(values, text)?),
        Family::Numeric(cmp) => Test::Numeric(
            cmp,
            each(values, |v| match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => parse_number(s),
                _ => None,
            })?,
        ),
        Family::Date(cmp) => Test::Date(
            cmp,
            each(values, |v| match v {
                Value::Number(n) => n.as_f64().and_then(epoch_seconds_to_nanos),
                Value::String(s) => parse_instant(s),
                _ => None,
            })?,
        ),
        Family::Bool => Test::Bool(each(values, boolean)?),
        Family::Ip => Test::Ip(each(values, |v| v.as_str().and_then(Cidr::parse))?),
        Family::Arn => Test::Arn(each(values, string)?),
        Family::Null => Test::Null(each(values, boolean)?),
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_number(s: &str) -> Option<f64> {
    // Rust's float parser also takes "NaN" and "inf"; IAM numbers are finite.
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn epoch_seconds_to_nanos(seconds: f64) -> Option<i128> {
    // Bounds keep the conversion exact enough and far from overflow.
    (seconds.is_finite() && seconds.abs() < 1e13).then_some((seconds * 1e9) as i128)
}

/// An instant as IAM's date operators accept it: ISO 8601 / RFC 3339 date
/// and time (no offset means UTC), a bare date (midnight UTC), or epoch
/// seconds. Nanoseconds since the Unix epoch.
fn parse_instant(s: &str) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && !s[1..].contains('-')
    {
        return s.parse::<f64>().ok().and_then(epoch_seconds_to_nanos);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = PrimitiveDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    let date_only = format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(s, &date_only) {
        return Some(d.midnight().assume_utc().unix_timestamp_nanos());
    }
    None
}

/// An IPv4 or IPv6 network; a plain address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cidr {
    V4 { network: u32, prefix: u32 },
    V6 { network: u128, prefix: u32 },
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (address, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u32>().ok()?)
            }
            Some(_) => return None,
            None => None,
        };
        match address.parse::<IpAddr>().ok()? {
            IpAddr::V4(ip) => {
                let prefix = prefix.unwrap_or(32);
                (prefix <= 32).then(|| Cidr::V4 {
                    network: u32::from(ip) & mask_v4(prefix),
                    prefix,
                })
            }
            IpAddr::V6(ip) => {
                let prefix = prefix.unwrap_or(128);
                (prefix <= 128).then(|| Cidr::V6 {
                    network: u128::from(ip) & mask_v6(prefix),
                    prefix,
                })
            }
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket arrives as
        // `::ffff:a.b.c.d`; it is still that IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (*self, ip) {
            (Cidr::V4 { network, prefix }, IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(prefix) == network
            }
            (Cidr::V6 { network, prefix }, IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(prefix) == network
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u32) -> u32 {
    u32::MAX.checked_shl(32 - prefix).unwrap_or(0)
}

fn mask_v6(prefix: u32) -> u128 {
    u128::MAX.checked_shl(128 - prefix).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Request facts as `(key, values)` pairs.
    type Facts<'a> = &'a [(&'a str, &'a [&'a str])];

    /// A context from `(key, values)` pairs.
    fn context(facts: Facts<'_>) -> Context {
        let mut c = Context::new();
        for (key, values) in facts {
            c.set_many(key, values.iter().map(|v| v.to_string()).collect());
        }
        c
    }

    fn holds(condition: Value, facts: Facts<'_>) -> bool {
        Condition::parse(&condition)
            .unwrap_or_else(|e| panic!("{condition}: {e}"))
            .is_satisfied(&context(facts))
    }

    #[test]
    fn context_keys_are_case_insensitive_and_replaced() {
        let mut c = Context::new();
        c.set("aws:SourceIp", "10.0.0.1");
        c.set("AWS:sourceip", "10.0.0.2");
        assert_eq!(c.get("aws:sourceIP"), Some(&["10.0.0.2".to_string()][..]));
        c.set("aws:ResourceTag/Team", "Blue");
        assert_eq!(
            c.get("aws:resourcetag/team"),
            Some(&["Blue".to_string()][..])
        );
        c.set_many("aws:TagKeys", vec!["a".into(), "b".into()]);
        assert_eq!(c.get("aws:tagkeys").map(<[String]>::len), Some(2));
        assert_eq!(c.get("aws:Nothing"), None);
    }

    #[test]
    fn operator_table() {
        let ip: Facts<'_> = &[("aws:SourceIp", &["203.0.113.7"])];
        let ip6: Facts<'_> = &[("aws:SourceIp", &["2001:db8::42"])];
        let now: Facts<'_> = &[
            ("aws:CurrentTime", &["2026-12-02T09:00:00Z"]),
            ("aws:EpochTime", &["1796202000"]),
        ];
        let team: Facts<'_> = &[("aws:PrincipalTag/team", &["Payments"])];
        let tls: Facts<'_> = &[("aws:SecureTransport", &["true"])];
        let no_tls: Facts<'_> = &[("aws:SecureTransport", &["FALSE"])];
        let arn: Facts<'_> = &[(
            "aws:PrincipalArn",
            &["arn:aws:iam::111111111111:role/ci-build"],
        )];
        let tags: Facts<'_> = &[("aws:TagKeys", &["team", "env"])];
        let none: Facts<'_> = &[];

        let cases: Vec<(Value, Facts<'_>, bool)> = vec![
            // Strings: exact, case-insensitive, wildcards; tag key names
            // are case-insensitive, values are not.
            (
                json!({"StringEquals": {"aws:PrincipalTag/Team": "Payments"}}),
                team,
                true,
            ),
            (
                json!({"StringEquals": {"aws:PrincipalTag/team": "payments"}}),
                team,
                false,
            ),
            (
                json!({"StringEquals": {"aws:PrincipalTag/team": ["Ops", "Payments"]}}),
                team,
                true,
            ),
            (
                json!({"StringNotEquals": {"aws:PrincipalTag/team": "Payments"}}),
                team,
                false,
            ),
            (
                json!({"StringNotEquals": {"aws:PrincipalTag/team": ["Ops", "Dev"]}}),
                team,
                true,
            ),
            (
                json!({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "PAYMENTS"}}),
                team,
                true,
            ),
            (
                json!({"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "PAYMENTS"}}),
                team,
                false,
            ),
            (
                json!({"StringLike": {"aws:PrincipalTag/team": "Pay*"}}),
                team,
                true,
            ),
            (
                json!({"StringLike": {"aws:PrincipalTag/team": "pay*"}}),
                team,
                false,
            ),
            (
                json!({"StringLike": {"aws:PrincipalTag/team": "Pay?ents"}}),
                team,
                true,
            ),
            (
                json!({"StringNotLike": {"aws:PrincipalTag/team": "Pay*"}}),
                team,
                false,
            ),
            (
                json!({"StringNotLike": {"aws:PrincipalTag/team": ["Ops*", "Dev*"]}}),
                team,
                true,
            ),
            // Missing keys: positive false, negated true, IfExists true.
            (
                json!({"StringEquals": {"aws:PrincipalTag/team": "Payments"}}),
                none,
                false,
            ),
            (
                json!({"StringNotEquals": {"aws:PrincipalTag/team": "Payments"}}),
                none,
                true,
            ),
            (
                json!({"StringLikeIfExists": {"aws:PrincipalTag/team": "Ops"}}),
                none,
                true,
            ),
            (
                json!({"StringLikeIfExists": {"aws:PrincipalTag/team": "Ops"}}),
                team,
                false,
            ),
            (
                json!({"StringEqualsIfExists": {"aws:PrincipalTag/team": "Payments"}}),
                team,
                true,
            ),
            (
                json!({"StringNotEqualsIfExists": {"aws:PrincipalTag/team": "Payments"}}),
                team,
                false,
            ),
            // Numbers.
            (
                json!({"NumericLessThan": {"aws:EpochTime": 1796202001}}),
                now,
                true,
            ),
            (
                json!({"NumericLessThan": {"aws:EpochTime": "1796202000"}}),
                now,
                false,
            ),
            (
                json!({"NumericLessThanEquals": {"aws:EpochTime": 1796202000}}),
                now,
                true,
            ),
            (
                json!({"NumericGreaterThan": {"aws:EpochTime": 1796201999.5}}),
                now,
                true,
            ),
            (
                json!({"NumericGreaterThanEquals": {"aws:EpochTime": 1796202001}}),
                now,
                false,
            ),
            (
                json!({"NumericEquals": {"aws:EpochTime": [1, 1796202000]}}),
                now,
                true,
            ),
            (
                json!({"NumericNotEquals": {"aws:EpochTime": 1796202000}}),
                now,
                false,
            ),
            (json!({"NumericNotEquals": {"aws:EpochTime": 5}}), now, true),
            (json!({"NumericEquals": {"aws:EpochTime": 5}}), none, false),
            (
                json!({"NumericLessThanIfExists": {"aws:EpochTime": 5}}),
                none,
                true,
            ),
            // A request value that is not a number matches nothing.
            (
                json!({"NumericEquals": {"aws:PrincipalTag/team": 1}}),
                team,
                false,
            ),
            // Dates, in every accepted spelling.
            (
                json!({"DateGreaterThan": {"aws:CurrentTime": "2026-12-01T00:00:00Z"}}),
                now,
                true,
            ),
            (
                json!({"DateGreaterThan": {"aws:CurrentTime": "2026-12-03"}}),
                now,
                false,
            ),
            (
                json!({"DateLessThan": {"aws:CurrentTime": "2026-12-02T10:00:00+01:00"}}),
                now,
                false,
            ),
            (
                json!({"DateLessThanEquals": {"aws:CurrentTime": "2026-12-02T10:00:00+01:00"}}),
                now,
                true,
            ),
            (
                json!({"DateEquals": {"aws:CurrentTime": "2026-12-02T09:00:00.000Z"}}),
                now,
                true,
            ),
            (
                json!({"DateEquals": {"aws:CurrentTime": 1796202000}}),
                now,
                true,
            ),
            (
                json!({"DateEquals": {"aws:CurrentTime": "1796202000"}}),
                now,
                true,
            ),
            (
                json!({"DateNotEquals": {"aws:CurrentTime": "2026-12-02T09:00:00Z"}}),
                now,
                false,
            ),
            (
                json!({"DateGreaterThanEquals": {"aws:CurrentTime": "2026-12-02T09:00:00"}}),
                now,
                true,
            ),
            (
                json!({"DateLessThan": {"aws:EpochTime": "2027-01-01"}}),
                now,
                true,
            ),
            (
                json!({"DateLessThan": {"aws:CurrentTime": "2026-01-01"}}),
                none,
                false,
            ),
            (
                json!({"DateLessThanIfExists": {"aws:CurrentTime": "2026-01-01"}}),
                none,
                true,
            ),
            // Booleans.
            (json!({"Bool": {"aws:SecureTransport": "true"}}), tls, true),
            (json!({"Bool": {"aws:SecureTransport": true}}), tls, true),
            (
                json!({"Bool": {"aws:SecureTransport": "True"}}),
                no_tls,
                false,
            ),
            (
                json!({"Bool": {"aws:SecureTransport": false}}),
                no_tls,
                true,
            ),
            (
                json!({"Bool": {"aws:SecureTransport": "true"}}),
                none,
                false,
            ),
            (
                json!({"BoolIfExists": {"aws:SecureTransport": "true"}}),
                none,
                true,
            ),
            // IP addresses: CIDR or plain, v4 and v6.
            (
                json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
                ip,
                true,
            ),
            (
                json!({"IpAddress": {"aws:SourceIp": "203.0.113.7"}}),
                ip,
                true,
            ),
            (
                json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}}),
                ip,
                false,
            ),
            (
                json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
                ip,
                true,
            ),
            (
                json!({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}),
                ip6,
                true,
            ),
            (
                json!({"IpAddress": {"aws:SourceIp": "2001:db9::/32"}}),
                ip6,
                false,
            ),
            (
                json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
                ip6,
                false,
            ),
            (
                json!({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
                ip,
                false,
            ),
            (
                json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                ip,
                true,
            ),
            (
                json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                none,
                true,
            ),
            (
                json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                none,
                false,
            ),
            // ARNs.
            (
                json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ci-*"}}),
                arn,
                true,
            ),
            (
                json!({"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/ci-build"}}),
                arn,
                true,
            ),
            (
                json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}),
                arn,
                false,
            ),
            (
                json!({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ci-*"}}),
                arn,
                false,
            ),
            (
                json!({"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/other"}}),
                arn,
                true,
            ),
            (
                json!({"ArnLike": {"aws:SourceArn": "arn:aws:lambda:*"}}),
                none,
                false,
            ),
            (
                json!({"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:lambda:*"}}),
                none,
                true,
            ),
            // Null.
            (
                json!({"Null": {"aws:PrincipalTag/team": "true"}}),
                none,
                true,
            ),
            (
                json!({"Null": {"aws:PrincipalTag/team": true}}),
                team,
                false,
            ),
            (
                json!({"Null": {"aws:PrincipalTag/team": "false"}}),
                team,
                true,
            ),
            (
                json!({"Null": {"aws:PrincipalTag/team": false}}),
                none,
                false,
            ),
            // Set operators over a multivalued key.
            (
                json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env", "owner"]}}),
                tags,
                true,
            ),
            (
                json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}),
                tags,
                false,
            ),
            (
                json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}),
                none,
                true,
            ),
            (
                json!({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}),
                tags,
                true,
            ),
            (
                json!({"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}}),
                tags,
                false,
            ),
            (
                json!({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}),
                none,
                false,
            ),
            (
                json!({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["env"]}}),
                none,
                true,
            ),
            (
                json!({"ForAllValues:StringLike": {"aws:TagKeys": ["t*", "e*"]}}),
                tags,
                true,
            ),
            (
                json!({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["owner"]}}),
                tags,
                true,
            ),
            (
                json!({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["env"]}}),
                tags,
                false,
            ),
            (
                json!({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["env"]}}),
                tags,
                true,
            ),
            (
                json!({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["env", "team"]}}),
                tags,
                false,
            ),
            // No prefix on a multivalued key: any value may match.
            (json!({"StringEquals": {"aws:TagKeys": "env"}}), tags, true),
            (
                json!({"StringNotEquals": {"aws:TagKeys": "env"}}),
                tags,
                false,
            ),
            // Several operators and keys all have to hold.
            (
                json!({
                    "Bool": {"aws:SecureTransport": "true"},
                    "StringEquals": {"aws:PrincipalTag/team": "Payments", "aws:SecureTransport": "true"}
                }),
                &[
                    ("aws:SecureTransport", &["true"]),
                    ("aws:PrincipalTag/team", &["Payments"]),
                ],
                true,
            ),
            (
                json!({
                    "Bool": {"aws:SecureTransport": "true"},
                    "StringEquals": {"aws:PrincipalTag/team": "Payments"}
                }),
                team,
                false,
            ),
            (json!({}), none, true),
        ];
        for (condition, facts, expected) in cases {
            assert_eq!(
                holds(condition.clone(), facts),
                expected,
                "{condition} with {facts:?}"
            );
        }
    }

    #[test]
    fn rejected_conditions() {
        let cases = [
            json!("StringEquals"),
            json!({"StringEquals": "aws:username"}),
            json!({"StringEquals": {}}),
            json!({"StringEquals": {"": "x"}}),
            json!({"StringEquals": {"aws:username": []}}),
            json!({"StringEquals": {"aws:username": null}}),
            json!({"StringEquals": {"aws:username": {"a": "b"}}}),
            json!({"StringEquals": {"aws:username": [["nested"]]}}),
            json!({"stringequals": {"aws:username": "x"}}),
            json!({"StringEqual": {"aws:username": "x"}}),
            json!({"ForSomeValues:StringEquals": {"aws:username": "x"}}),
            json!({"NullIfExists": {"aws:username": "true"}}),
            json!({"Null": {"aws:username": "maybe"}}),
            json!({"NumericEquals": {"aws:EpochTime": "ten"}}),
            json!({"NumericEquals": {"aws:EpochTime": "NaN"}}),
            json!({"NumericEquals": {"aws:EpochTime": true}}),
            json!({"DateLessThan": {"aws:CurrentTime": "next tuesday"}}),
            json!({"DateLessThan": {"aws:CurrentTime": "2026-13-01"}}),
            json!({"Bool": {"aws:SecureTransport": "yes"}}),
            json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/33"}}),
            json!({"IpAddress": {"aws:SourceIp": "203.0.113"}}),
            json!({"IpAddress": {"aws:SourceIp": "2001:db8::/129"}}),
            json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/"}}),
            json!({"IpAddress": {"aws:SourceIp": 10}}),
            json!({"ArnLike": {"aws:SourceArn": 5}}),
        ];
        for condition in cases {
            assert!(Condition::parse(&condition).is_err(), "{condition}");
        }
    }

    #[test]
    fn instants() {
        let t = |s: &str| parse_instant(s).unwrap_or_else(|| panic!("{s}"));
        let noon = t("2026-12-02T12:00:00Z");
        assert_eq!(t("2026-12-02T13:00:00+01:00"), noon);
        assert_eq!(t("2026-12-02T12:00:00"), noon);
        assert_eq!(t("1796212800"), noon);
        assert_eq!(t("2026-12-02"), noon - 12 * 3600 * 1_000_000_000);
        assert!(t("2026-12-02T12:00:00.5Z") > noon);
        assert!(parse_instant("").is_none());
        assert!(parse_instant("12-02-2026").is_none());
    }
}

//! Lifecycle policies: the policy document, its validation with ECR's
//! messages, and the evaluation engine that decides which images a policy
//! expires or archives.
//!
//! Semantics (ECR User Guide, "Lifecycle policies" and "Lifecycle policy
//! properties"), as implemented here:
//! - Rules are applied in ascending `rulePriority`; priorities are unique
//!   positive integers.
//! - `tagStatus`: `tagged` needs exactly one of `tagPrefixList` or
//!   `tagPatternList`; `untagged` and `any` take neither. A rule with
//!   `tagStatus: any` must have the highest `rulePriority` value of the
//!   policy (it is evaluated last).
//! - A tagged rule selects an image when, for every entry of the list, some
//!   tag of the image matches it (prefix, or `*` wildcard pattern). So
//!   `["prod", "release"]` selects images carrying both a `prod*` and a
//!   `release*` tag.
//! - An image selected by a rule's tag conditions is claimed by that rule:
//!   no later (lower-priority) rule acts on it, whether or not the rule's
//!   count condition acted on it.
//! - `imageCountMoreThan N`: of the images the rule selects, the N most
//!   recently pushed are kept and the rest acted on. `sinceImagePushed N
//!   days`: images pushed more than N days ago. `sinceImagePulled`: last
//!   pulled (or, never pulled, pushed) more than N days ago.
//!   `sinceImageTransitioned`: archived more than N days ago.
//! - `selection.storageClass` (`standard` by default, or `archive`) selects
//!   images by storage class; `action.type` is `expire`, or `transition`
//!   with `targetStorageClass: archive`.
//!
//! Example: with rule 1 `{tagged, tagPrefixList [prod], imageCountMoreThan 2}`
//! and rule 2 `{any, sinceImagePushed 30 days}`, three `prod-*` images keep
//! the newest two, expire the oldest, and none of the three is ever expired
//! by rule 2 however old it is; an untagged image older than 30 days is
//! expired by rule 2.

use serde::Deserialize;
use serde_json::Value;

use super::error::{EcrError, EcrResult};
use super::images::wildcard_match;
use crate::digest::Digest;

/// What a rule does to the images it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Expire,
    /// Move to the archive storage class.
    Transition,
}

impl Action {
    pub fn wire(self) -> &'static str {
        match self {
            Action::Expire => "EXPIRE",
            Action::Transition => "TRANSITION",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountType {
    ImageCountMoreThan,
    SinceImagePushed,
    SinceImagePulled,
    SinceImageTransitioned,
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub priority: i64,
    pub description: Option<String>,
    pub tag_status: TagStatus,
    pub tag_prefixes: Vec<String>,
    pub tag_patterns: Vec<String>,
    pub count_type: CountType,
    pub count_number: i64,
    /// Select archived images instead of standard ones.
    pub archived: bool,
    pub action: Action,
}

/// A validated policy, rules sorted by priority.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

/// What the engine needs to know of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFacts {
    pub digest: Digest,
    pub tags: Vec<String>,
    pub pushed_at_ms: i64,
    pub last_pulled_ms: Option<i64>,
    pub archived: bool,
    /// When the image was archived, for `sinceImageTransitioned`.
    pub transitioned_at_ms: Option<i64>,
}

/// One image a policy acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub digest: Digest,
    pub tags: Vec<String>,
    pub pushed_at_ms: i64,
    pub action: Action,
    pub rule_priority: i64,
}

fn invalid(reason: impl AsRef<str>) -> EcrError {
    EcrError::invalid_parameter(
        "LifecyclePolicyText",
        &format!("Lifecycle policy validation failure: {}", reason.as_ref()),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    rules: Option<Vec<Value>>,
}

fn string_field<'a>(
    obj: &'a serde_json::Map<String, Value>,
    name: &str,
) -> EcrResult<Option<&'a str>> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(format!(
            "instance type ({}) of '{name}' does not match any allowed primitive type (allowed: [\"string\"])",
            type_name(other)
        ))),
    }
}

fn int_field(obj: &serde_json::Map<String, Value>, name: &str) -> EcrResult<Option<i64>> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(other) => Err(invalid(format!(
            "instance type ({}) of '{name}' does not match any allowed primitive type (allowed: [\"integer\"])",
            type_name(other)
        ))),
    }
}

fn string_list(obj: &serde_json::Map<String, Value>, name: &str) -> EcrResult<Option<Vec<String>>> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                _ => Err(invalid(format!("'{name}' must be a list of non-empty strings"))),
            })
            .collect::<EcrResult<Vec<_>>>()
            .map(Some),
        Some(other) => Err(invalid(format!(
            "instance type ({}) of '{name}' does not match any allowed primitive type (allowed: [\"array\"])",
            type_name(other)
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check_keys(obj: &serde_json::Map<String, Value>, allowed: &[&str], what: &str) -> EcrResult<()> {
    let unknown: Vec<&String> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!(
            "object instance of '{what}' has properties which are not allowed by the schema: {unknown:?}"
        )))
    }
}

fn parse_rule(value: &Value) -> EcrResult<Rule> {
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("each rule must be an object"))?;
    check_keys(
        obj,
        &["rulePriority", "description", "selection", "action"],
        "rule",
    )?;
    let mut missing = Vec::new();
    for required in ["rulePriority", "selection", "action"] {
        if !obj.contains_key(required) {
            missing.push(required);
        }
    }
    if !missing.is_empty() {
        return Err(invalid(format!(
            "object has missing required properties ({missing:?})"
        )));
    }
    let priority = int_field(obj, "rulePriority")?.unwrap_or(0);
    if priority < 1 {
        return Err(invalid(format!(
            "rulePriority {priority} must be a positive integer"
        )));
    }
    let description = string_field(obj, "description")?.map(str::to_string);

    let selection = obj["selection"]
        .as_object()
        .ok_or_else(|| invalid("'selection' must be an object"))?;
    check_keys(
        selection,
        &[
            "tagStatus",
            "tagPrefixList",
            "tagPatternList",
            "countType",
            "countUnit",
            "countNumber",
            "storageClass",
        ],
        "selection",
    )?;
    let mut missing = Vec::new();
    for required in ["tagStatus", "countType", "countNumber"] {
        if !selection.contains_key(required) {
            missing.push(required);
        }
    }
    if !missing.is_empty() {
        return Err(invalid(format!(
            "object has missing required properties ({missing:?})"
        )));
    }
    let tag_status = match string_field(selection, "tagStatus")? {
        Some("tagged") => TagStatus::Tagged,
        Some("untagged") => TagStatus::Untagged,
        Some("any") => TagStatus::Any,
        Some(other) => {
            return Err(invalid(format!(
                "instance value (\"{other}\") of 'tagStatus' not found in enum (possible values: [\"tagged\",\"untagged\",\"any\"])"
            )))
        }
        None => unreachable_missing()?,
    };
    let tag_prefixes = string_list(selection, "tagPrefixList")?;
    let tag_patterns = string_list(selection, "tagPatternList")?;
    match (tag_status, &tag_prefixes, &tag_patterns) {
        (TagStatus::Tagged, Some(_), Some(_)) => {
            return Err(invalid(
                "tagPrefixList and tagPatternList cannot both be specified in a rule",
            ))
        }
        (TagStatus::Tagged, None, None) => {
            return Err(invalid(
                "tagPrefixList or tagPatternList must be specified when tagStatus is tagged",
            ))
        }
        (TagStatus::Tagged, Some(list), None) | (TagStatus::Tagged, None, Some(list))
            if list.is_empty() =>
        {
            return Err(invalid(
                "tagPrefixList and tagPatternList must not be empty",
            ))
        }
        (TagStatus::Untagged | TagStatus::Any, Some(_), _)
        | (TagStatus::Untagged | TagStatus::Any, _, Some(_)) => {
            return Err(invalid(
                "tagPrefixList and tagPatternList can only be specified when tagStatus is tagged",
            ))
        }
        _ => {}
    }
    if let Some(patterns) = &tag_patterns {
        for p in patterns {
            if p.matches('*').count() > 4 {
                return Err(invalid(format!(
                    "tag pattern '{p}' has more than 4 wildcard characters"
                )));
            }
        }
    }
    let count_type = match string_field(selection, "countType")? {
        Some("imageCountMoreThan") => CountType::ImageCountMoreThan,
        Some("sinceImagePushed") => CountType::SinceImagePushed,
        Some("sinceImagePulled") => CountType::SinceImagePulled,
        Some("sinceImageTransitioned") => CountType::SinceImageTransitioned,
        Some(other) => {
            return Err(invalid(format!(
                "instance value (\"{other}\") of 'countType' not found in enum (possible values: [\"imageCountMoreThan\",\"sinceImagePushed\",\"sinceImagePulled\",\"sinceImageTransitioned\"])"
            )))
        }
        None => unreachable_missing()?,
    };
    let count_unit = string_field(selection, "countUnit")?;
    match (&count_type, count_unit) {
        (CountType::ImageCountMoreThan, Some(_)) => {
            return Err(invalid("countUnit cannot be specified when countType is imageCountMoreThan"))
        }
        (CountType::ImageCountMoreThan, None) | (_, Some("days")) => {}
        (_, Some(other)) => {
            return Err(invalid(format!(
                "instance value (\"{other}\") of 'countUnit' not found in enum (possible values: [\"days\"])"
            )))
        }
        (_, None) => return Err(invalid("countUnit must be specified when countType is a time period")),
    }
    let count_number = int_field(selection, "countNumber")?.unwrap_or(0);
    if count_number < 1 {
        return Err(invalid(format!(
            "countNumber {count_number} must be a positive integer"
        )));
    }
    let archived = match string_field(selection, "storageClass")? {
        None | Some("standard") => false,
        Some("archive") => true,
        Some(other) => {
            return Err(invalid(format!(
                "instance value (\"{other}\") of 'storageClass' not found in enum (possible values: [\"standard\",\"archive\"])"
            )))
        }
    };
    if count_type == CountType::SinceImageTransitioned && !archived {
        return Err(invalid(
            "countType sinceImageTransitioned requires storageClass archive",
        ));
    }

    let action = obj["action"]
        .as_object()
        .ok_or_else(|| invalid("'action' must be an object"))?;
    check_keys(action, &["type", "targetStorageClass"], "action")?;
    let action = match (string_field(action, "type")?, string_field(action, "targetStorageClass")?) {
        (Some("expire"), None) => Action::Expire,
        (Some("expire"), Some(_)) => return Err(invalid("targetStorageClass can only be specified for a transition action")),
        (Some("transition"), Some("archive")) => Action::Transition,
        (Some("transition"), _) => {
            return Err(invalid("a transition action requires targetStorageClass archive"))
        }
        (Some(other), _) => {
            return Err(invalid(format!(
                "instance value (\"{other}\") of 'type' not found in enum (possible values: [\"expire\",\"transition\"])"
            )))
        }
        (None, _) => return Err(invalid("object has missing required properties ([\"type\"])")),
    };
    if action == Action::Transition && archived {
        return Err(invalid("archived images cannot be transitioned again"));
    }
    Ok(Rule {
        priority,
        description,
        tag_status,
        tag_prefixes: tag_prefixes.unwrap_or_default(),
        tag_patterns: tag_patterns.unwrap_or_default(),
        count_type,
        count_number,
        archived,
        action,
    })
}

fn unreachable_missing<T>() -> EcrResult<T> {
    Err(invalid("object has missing required properties"))
}

impl Policy {
    /// Parses and validates a policy document.
    pub fn parse(text: &str) -> EcrResult<Policy> {
        let raw: RawPolicy =
            serde_json::from_str(text).map_err(|e| invalid(format!("invalid JSON: {e}")))?;
        let rules = raw
            .rules
            .ok_or_else(|| invalid("object has missing required properties ([\"rules\"])"))?;
        if rules.is_empty() {
            return Err(invalid(
                "array is too short: must have at least 1 elements but instance has 0 elements",
            ));
        }
        let mut rules = rules
            .iter()
            .map(parse_rule)
            .collect::<EcrResult<Vec<_>>>()?;
        rules.sort_by_key(|r| r.priority);
        for pair in rules.windows(2) {
            if pair[0].priority == pair[1].priority {
                return Err(invalid(format!(
                    "rulePriority {} is used by more than one rule",
                    pair[0].priority
                )));
            }
        }
        if let Some(any) = rules.iter().position(|r| r.tag_status == TagStatus::Any) {
            if any != rules.len() - 1 {
                return Err(invalid(
                    "a rule with tagStatus any must have the highest rulePriority value (it is evaluated last)",
                ));
            }
        }
        Ok(Policy { rules })
    }

    /// Which images the policy acts on at `now_ms`.
    pub fn evaluate(&self, images: &[ImageFacts], now_ms: i64) -> Vec<Decision> {
        let mut claimed = vec![false; images.len()];
        let mut decisions = Vec::new();
        for rule in &self.rules {
            let mut selected: Vec<usize> = (0..images.len())
                .filter(|&i| !claimed[i] && rule.selects(&images[i]))
                .collect();
            for &i in &selected {
                claimed[i] = true;
            }
            let day_ms = 86_400_000i64;
            let acted: Vec<usize> = match rule.count_type {
                CountType::ImageCountMoreThan => {
                    // Newest first; ties broken by digest for a stable answer.
                    selected.sort_by(|&a, &b| {
                        images[b]
                            .pushed_at_ms
                            .cmp(&images[a].pushed_at_ms)
                            .then_with(|| images[a].digest.cmp(&images[b].digest))
                    });
                    selected
                        .into_iter()
                        .skip(rule.count_number as usize)
                        .collect()
                }
                CountType::SinceImagePushed => selected
                    .into_iter()
                    .filter(|&i| now_ms - images[i].pushed_at_ms > rule.count_number * day_ms)
                    .collect(),
                CountType::SinceImagePulled => selected
                    .into_iter()
                    .filter(|&i| {
                        let last = images[i].last_pulled_ms.unwrap_or(images[i].pushed_at_ms);
                        now_ms - last > rule.count_number * day_ms
                    })
                    .collect(),
                CountType::SinceImageTransitioned => selected
                    .into_iter()
                    .filter(|&i| {
                        images[i]
                            .transitioned_at_ms
                            .is_some_and(|t| now_ms - t > rule.count_number * day_ms)
                    })
                    .collect(),
            };
            for i in acted {
                decisions.push(Decision {
                    digest: images[i].digest.clone(),
                    tags: images[i].tags.clone(),
                    pushed_at_ms: images[i].pushed_at_ms,
                    action: rule.action,
                    rule_priority: rule.priority,
                });
            }
        }
        decisions
    }
}

impl Rule {
    /// Whether the rule's tag and storage-class conditions select the image.
    fn selects(&self, image: &ImageFacts) -> bool {
        if image.archived != self.archived {
            return false;
        }
        match self.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => image.tags.is_empty(),
            TagStatus::Tagged => {
                !image.tags.is_empty()
                    && self
                        .tag_prefixes
                        .iter()
                        .all(|p| image.tags.iter().any(|t| t.starts_with(p.as_str())))
                    && self
                        .tag_patterns
                        .iter()
                        .all(|p| image.tags.iter().any(|t| wildcard_match(p, t)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DAY: i64 = 86_400_000;

    fn image(n: u8, tags: &[&str], pushed_days_ago: i64) -> ImageFacts {
        ImageFacts {
            digest: Digest::sha256_of(&[n]),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at_ms: 1000 * DAY - pushed_days_ago * DAY,
            last_pulled_ms: None,
            archived: false,
            transitioned_at_ms: None,
        }
    }

    fn acted(policy: &str, images: &[ImageFacts]) -> Vec<(u8, i64)> {
        let p = Policy::parse(policy).unwrap();
        p.evaluate(images, 1000 * DAY)
            .into_iter()
            .map(|d| {
                let n = images.iter().position(|i| i.digest == d.digest).unwrap() as u8;
                (n, d.rule_priority)
            })
            .collect()
    }

    #[test]
    fn untagged_count_keeps_newest() {
        let images = [
            image(0, &[], 5),
            image(1, &[], 3),
            image(2, &[], 1),
            image(3, &["v1"], 9),
        ];
        let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
        assert_eq!(acted(policy, &images), [(1, 1), (0, 1)]);
    }

    #[test]
    fn since_pushed() {
        let images = [image(0, &["a"], 40), image(1, &[], 10), image(2, &[], 31)];
        let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}"#;
        assert_eq!(acted(policy, &images), [(0, 1), (2, 1)]);
    }

    #[test]
    fn higher_priority_rule_shields_what_it_selects() {
        // Three prod images: rule 1 keeps the newest two and expires one;
        // rule 2 must not expire the kept ones however old they are.
        let images = [
            image(0, &["prod-1"], 100),
            image(1, &["prod-2"], 90),
            image(2, &["prod-3"], 80),
            image(3, &[], 50),
            image(4, &["dev-1"], 1),
        ];
        let policy = r#"{"rules":[
            {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
            {"rulePriority":2,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}"#;
        assert_eq!(acted(policy, &images), [(0, 1), (3, 2)]);
    }

    #[test]
    fn multiple_prefixes_need_every_prefix() {
        let images = [
            image(0, &["alpha-1", "beta-1"], 10),
            image(1, &["alpha-2"], 9),
            image(2, &["beta-2"], 8),
            image(3, &["alpha-3", "beta-3"], 1),
        ];
        let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["alpha","beta"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
        assert_eq!(acted(policy, &images), [(0, 1)]);
    }

    #[test]
    fn patterns_and_priority_order_regardless_of_listing_order() {
        let images = [
            image(0, &["release-1.0"], 10),
            image(1, &["release-1.1"], 5),
            image(2, &["nightly"], 50),
        ];
        let policy = r#"{"rules":[
            {"rulePriority":20,"selection":{"tagStatus":"tagged","tagPatternList":["*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}},
            {"rulePriority":10,"selection":{"tagStatus":"tagged","tagPatternList":["release-*"],"countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#;
        // Rule 10 claims both release images (and keeps them); rule 20 expires only nightly.
        assert_eq!(acted(policy, &images), [(2, 20)]);
    }

    #[test]
    fn pulled_and_transition() {
        let mut old = image(0, &["keep"], 100);
        old.last_pulled_ms = Some(1000 * DAY - 2 * DAY);
        let images = [old, image(1, &["cold"], 100)];
        let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}}]}"#;
        let p = Policy::parse(policy).unwrap();
        let d = p.evaluate(&images, 1000 * DAY);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].action, Action::Transition);
        assert_eq!(d[0].tags, ["cold"]);

        let mut archived = image(2, &["a"], 400);
        archived.archived = true;
        archived.transitioned_at_ms = Some(1000 * DAY - 200 * DAY);
        let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":180},"action":{"type":"expire"}}]}"#;
        assert_eq!(
            acted(policy, &[archived.clone(), image(3, &[], 400)]),
            [(0, 1)]
        );
    }

    #[test]
    fn validation_messages() {
        let bad = [
            (r#"{}"#, "missing required properties"),
            (r#"{"rules":[]}"#, "at least 1"),
            (r#"not json"#, "invalid JSON"),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "must be specified when tagStatus is tagged",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["a"],"tagPatternList":["b*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "cannot both",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","tagPrefixList":["a"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "only be specified when tagStatus is tagged",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#,
                "countUnit cannot",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":1},"action":{"type":"expire"}}]}"#,
                "countUnit must",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"hours","countNumber":1},"action":{"type":"expire"}}]}"#,
                "countUnit",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0},"action":{"type":"expire"}}]}"#,
                "positive",
            ),
            (
                r#"{"rules":[{"rulePriority":0,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "positive",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":"1"},"action":{"type":"expire"}}]}"#,
                "allowed: [\"integer\"]",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"sometimes","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "not found in enum",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"delete"}}]}"#,
                "not found in enum",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"transition"}}]}"#,
                "targetStorageClass",
            ),
            (
                r#"{"rules":[
                {"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
                {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["x"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "more than one rule",
            ),
            (
                r#"{"rules":[
                {"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
                {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "tagStatus any must have the highest",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["a*b*c*d*e*f"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "more than 4 wildcard",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"extra":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "not allowed",
            ),
        ];
        for (policy, expected) in bad {
            let err = Policy::parse(policy).unwrap_err();
            assert_eq!(err.kind, crate::ecr::error::ErrorKind::InvalidParameter);
            assert!(
                err.message.starts_with("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "),
                "{}",
                err.message
            );
            assert!(err.message.contains(expected), "{policy}: {}", err.message);
        }
    }
}

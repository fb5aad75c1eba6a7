//! The vulnerability database a scan matches an inventory against: OSV
//! records (the Open Source Vulnerability format, <https://ossf.github.io/osv-schema/>)
//! read from a directory of `*.json` files and/or OSV's per-ecosystem
//! `all.zip` exports, and the rules that turn "package P at version V on OS
//! O" into findings.
//!
//! What this module owns:
//!
//! - **Loading.** One record per `.json` file, or a JSON array of records;
//!   a `.zip` is read entry by entry (`*.json` only). A record that does not
//!   parse fails the load with the file (and zip entry) named; a
//!   `withdrawn` record is dropped. When the same id appears twice the copy
//!   with the newer `modified` wins.
//! - **Ecosystems.** An inventory package becomes OSV coordinates: dpkg on
//!   `debian` is `Debian:<major>` keyed by *source* package, dpkg on
//!   `ubuntu` is `Ubuntu:<VERSION_ID>` (`:LTS` ignored, `Pro` entries
//!   skipped: they describe Ubuntu Pro archives a plain image does not
//!   use), apk on `alpine` is `Alpine:v<major.minor>` keyed by origin, rpm
//!   on the Red Hat family is `Red Hat` / `Rocky Linux:<major>` /
//!   `AlmaLinux:<major>`; language packages are `PyPI` (PEP 503 names),
//!   `npm`, `Go` (the toolchain as `stdlib`) and `crates.io`. A package of
//!   an OS this does not know is not matched at all: guessing a release
//!   would report another release's fixes.
//! - **Ranges.** The schema's "Evaluation" section: `ECOSYSTEM` and
//!   `SEMVER` ranges, events read in order, `introduced` opening an
//!   interval (`"0"`: from the first version), `fixed` closing it before
//!   the version, `last_affected` after it, `limit` capping every interval
//!   of the range; the explicit `versions` list counts too. `GIT` ranges
//!   name commits, which an image does not carry, and are ignored.
//! - **Findings.** A [`Match`] per (vulnerability name, package, version,
//!   path), named by the CVE the record is or names (as ECR names its
//!   findings), with a severity from the record's CVSS vectors, else its
//!   vendor's word, else the record its aliases name.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::cvss::{self, CvssScore, CvssVersion, Severity};
use super::package::{Inventory, OsRelease, Package, PackageKind};
use super::{version_apk, version_dpkg, version_pep440, version_rpm, version_semver};

/// A loaded set of OSV records, indexed by (ecosystem, package name).
#[derive(Debug, Default)]
pub struct VulnDb {
    records: Vec<Record>,
    /// `(ecosystem base, normalised package name)` → `(record, affected)`.
    index: HashMap<(String, String), Vec<(usize, usize)>>,
    updated_at: Option<i64>,
}

/// One finding: a vulnerability affecting one installed package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// The OSV record id, e.g. `DEBIAN-CVE-2023-38545`, `GHSA-...`.
    pub id: String,
    /// The name ECR shows: the record's CVE id when it is one or names one
    /// (id, aliases, upstream), else the id.
    pub name: String,
    pub aliases: Vec<String>,
    /// OSV `related` + `upstream` + aliases other than `name`, and the ids
    /// of other records that reported the same finding.
    pub related: Vec<String>,
    pub summary: Option<String>,
    pub details: Option<String>,
    /// The inventory's package that matched.
    pub package: Package,
    /// The OSV ecosystem that matched, e.g. `Debian:12`.
    pub ecosystem: String,
    /// The smallest `fixed` above the installed version in the matching
    /// range, if any.
    pub fixed_version: Option<String>,
    pub severity: Severity,
    /// Scored from the record's `severity` vectors, highest CVSS version
    /// first (borrowed from the record its aliases name when it has none).
    pub cvss: Vec<CvssScore>,
    /// The vendor's own word (Ubuntu priority, Debian urgency, GitHub's
    /// `database_specific.severity`), as written.
    pub vendor_severity: Option<String>,
    /// The advisory ECR's basic findings link to.
    pub uri: String,
    pub references: Vec<String>,
    /// Unix seconds.
    pub published: Option<i64>,
    /// Unix seconds.
    pub modified: Option<i64>,
    /// Where the record comes from: `DEBIAN_CVE`, `UBUNTU_CVE`,
    /// `ALPINE_SECDB`, `GITHUB`, `GO`, `RUSTSEC`, `PYSEC`, else `OSV`.
    pub source: String,
}

// ---------------------------------------------------------------------------
// Records as read
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct RawRecord {
    id: String,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    related: Option<Vec<String>>,
    #[serde(default)]
    upstream: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    severity: Option<Vec<RawSeverity>>,
    #[serde(default)]
    affected: Option<Vec<RawAffected>>,
    #[serde(default)]
    references: Option<Vec<RawReference>>,
    #[serde(default)]
    database_specific: Option<Value>,
    #[serde(default)]
    ecosystem_specific: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RawSeverity {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    score: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawReference {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawAffected {
    #[serde(default)]
    package: Option<RawPackage>,
    #[serde(default)]
    ranges: Option<Vec<RawRange>>,
    #[serde(default)]
    versions: Option<Vec<String>>,
    #[serde(default)]
    ecosystem_specific: Option<Value>,
    #[serde(default)]
    database_specific: Option<Value>,
    #[serde(default)]
    severity: Option<Vec<RawSeverity>>,
}

#[derive(Debug, Deserialize)]
struct RawPackage {
    #[serde(default)]
    ecosystem: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawRange {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    events: Option<Vec<HashMap<String, Value>>>,
}

// ---------------------------------------------------------------------------
// Records as kept
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Record {
    id: String,
    name: String,
    aliases: Vec<String>,
    related: Vec<String>,
    /// Ids this record names (aliases, then upstream), for borrowing.
    links: Vec<String>,
    summary: Option<String>,
    details: Option<String>,
    /// Own vectors, highest CVSS version first.
    cvss: Vec<CvssScore>,
    /// Top-level vendor word.
    vendor: Option<String>,
    /// Severity (and vectors) of the record this one's aliases name, set
    /// once everything is loaded; only for records with no severity of
    /// their own.
    borrowed: Option<(Severity, Vec<CvssScore>)>,
    advisory: Option<String>,
    references: Vec<String>,
    published: Option<i64>,
    modified: Option<i64>,
    affected: Vec<Affected>,
}

#[derive(Debug, Clone)]
struct Affected {
    ecosystem: String,
    package: String,
    ranges: Vec<Range>,
    versions: Vec<String>,
    vendor: Option<String>,
}

#[derive(Debug, Clone)]
struct Range {
    /// `SEMVER` ranges compare as SemVer whatever the ecosystem.
    semver: bool,
    events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// How an ecosystem orders its versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Dpkg,
    Apk,
    Rpm,
    Pep440,
    Semver,
}

impl Scheme {
    fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Scheme::Dpkg => version_dpkg::compare(a, b),
            Scheme::Apk => version_apk::compare(a, b),
            Scheme::Rpm => version_rpm::compare(a, b),
            Scheme::Pep440 => version_pep440::compare(a, b),
            Scheme::Semver => version_semver::compare(a, b),
        }
    }
}

/// The part of an OSV ecosystem before the first `:` (`Debian:12` →
/// `Debian`).
fn ecosystem_base(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem).trim()
}

fn normalise_name(base: &str, name: &str) -> String {
    if base == "PyPI" {
        pep503(name)
    } else {
        name.to_string()
    }
}

/// PEP 503 normalisation: lowercase, every run of `-`, `_` and `.` one `-`.
fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// `CVE-YYYY-N...`.
fn is_cve(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CVE-") else {
        return false;
    };
    let mut parts = rest.splitn(2, '-');
    let year = parts.next().unwrap_or("");
    let number = parts.next().unwrap_or("");
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The CVE an id embeds, as distributions spell theirs
/// (`DEBIAN-CVE-2023-38545`, `UBUNTU-CVE-...`, `ALPINE-CVE-...`).
fn embedded_cve(id: &str) -> Option<&str> {
    let at = id.find("CVE-")?;
    let tail = &id[at..];
    is_cve(tail).then_some(tail)
}

fn parse_time(text: Option<&str>) -> Option<i64> {
    let text = text?.trim();
    if text.is_empty() {
        return None;
    }
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    // Debian's converter writes Go's zero time where it knows none.
    (at.year() > 1).then(|| at.unix_timestamp())
}

fn is_withdrawn(withdrawn: Option<&str>) -> bool {
    match withdrawn.map(str::trim) {
        None | Some("") => false,
        // The zero instant stands for "never" in some converters' output.
        Some(text) => match OffsetDateTime::parse(text, &Rfc3339) {
            Ok(at) => at.year() > 1,
            Err(_) => true,
        },
    }
}

fn cvss_rank(version: CvssVersion) -> u8 {
    match version {
        CvssVersion::V4_0 => 4,
        CvssVersion::V3_1 => 3,
        CvssVersion::V3_0 => 2,
        CvssVersion::V2 => 1,
    }
}

fn severity_rank(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 5,
        Severity::High => 4,
        Severity::Medium => 3,
        Severity::Low => 2,
        Severity::Informational => 1,
        Severity::Undefined => 0,
    }
}

/// A vendor severity word in an `ecosystem_specific` or
/// `database_specific` object: `severity`, Debian's `urgency`, the Ubuntu
/// security notices' `ubuntu_priority`.
fn vendor_word(value: Option<&Value>) -> Option<String> {
    let object = value?.as_object()?;
    for key in ["severity", "urgency", "ubuntu_priority"] {
        if let Some(word) = object.get(key).and_then(Value::as_str) {
            let word = word.trim();
            if !word.is_empty() {
                return Some(word.to_string());
            }
        }
    }
    None
}

/// The first word a `severity` list gives as a non-CVSS `type` (OSV's
/// Ubuntu records carry `{"type": "Ubuntu", "score": "medium"}`).
fn severity_list_word(list: Option<&Vec<RawSeverity>>) -> Option<String> {
    list?.iter().find_map(|s| {
        let kind = s.kind.as_deref().unwrap_or("");
        if kind.starts_with("CVSS") {
            return None;
        }
        let word = s.score.as_deref()?.trim();
        (!word.is_empty()).then(|| word.to_string())
    })
}

fn vectors(list: Option<&Vec<RawSeverity>>) -> Vec<CvssScore> {
    let mut scores: Vec<CvssScore> = list
        .into_iter()
        .flatten()
        .filter(|s| s.kind.as_deref().unwrap_or("").starts_with("CVSS"))
        .filter_map(|s| cvss::score(s.score.as_deref()?))
        .collect();
    // Highest version first; stable, so a record's own order breaks ties.
    scores.sort_by_key(|s| std::cmp::Reverse(cvss_rank(s.version)));
    scores.dedup_by(|a, b| a.vector == b.vector);
    scores
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    let item = item.trim();
    if !item.is_empty() && !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

impl Record {
    fn from_raw(raw: RawRecord) -> Record {
        let aliases: Vec<String> = raw.aliases.unwrap_or_default();
        let upstream: Vec<String> = raw.upstream.unwrap_or_default();
        let name = if is_cve(&raw.id) {
            raw.id.clone()
        } else if let Some(cve) = aliases.iter().chain(&upstream).find(|a| is_cve(a)) {
            cve.clone()
        } else if let Some(cve) = embedded_cve(&raw.id) {
            cve.to_string()
        } else {
            raw.id.clone()
        };
        let mut related = Vec::new();
        for id in raw
            .related
            .iter()
            .flatten()
            .chain(&upstream)
            .chain(&aliases)
        {
            if id != &name && id != &raw.id {
                push_unique(&mut related, id);
            }
        }
        let mut links = Vec::new();
        for id in aliases.iter().chain(&upstream) {
            push_unique(&mut links, id);
        }
        if name != raw.id {
            push_unique(&mut links, &name);
        }
        let vendor = vendor_word(raw.database_specific.as_ref())
            .or_else(|| vendor_word(raw.ecosystem_specific.as_ref()))
            .or_else(|| severity_list_word(raw.severity.as_ref()));
        let cvss = vectors(raw.severity.as_ref());
        let mut references = Vec::new();
        let mut advisory = None;
        for reference in raw.references.iter().flatten() {
            let Some(url) = reference.url.as_deref() else {
                continue;
            };
            if advisory.is_none() && reference.kind.as_deref() == Some("ADVISORY") {
                advisory = Some(url.to_string());
            }
            push_unique(&mut references, url);
        }
        let affected = raw
            .affected
            .into_iter()
            .flatten()
            .filter_map(Affected::from_raw)
            .collect();
        Record {
            id: raw.id,
            name,
            aliases,
            related,
            links,
            summary: raw.summary.filter(|s| !s.trim().is_empty()),
            details: raw.details.filter(|s| !s.trim().is_empty()),
            cvss,
            vendor,
            borrowed: None,
            advisory,
            references,
            published: parse_time(raw.published.as_deref()),
            modified: parse_time(raw.modified.as_deref()),
            affected,
        }
    }

    /// The severity this record states itself: its highest CVSS version's
    /// band, else its vendor's word.
    fn own_severity(&self) -> Option<Severity> {
        if let Some(best) = self.cvss.first() {
            let severity = Severity::from_score(best.version, best.base_score);
            if severity != Severity::Undefined {
                return Some(severity);
            }
        }
        let word = Severity::from_name(self.vendor.as_deref()?);
        (word != Severity::Undefined).then_some(word)
    }
}

impl Affected {
    fn from_raw(raw: RawAffected) -> Option<Affected> {
        let package = raw.package?;
        let ecosystem = package.ecosystem?.trim().to_string();
        let name = package.name?.trim().to_string();
        if ecosystem.is_empty() || name.is_empty() {
            return None;
        }
        let ranges = raw
            .ranges
            .into_iter()
            .flatten()
            .filter_map(Range::from_raw)
            .collect();
        let vendor = vendor_word(raw.ecosystem_specific.as_ref())
            .or_else(|| vendor_word(raw.database_specific.as_ref()))
            .or_else(|| severity_list_word(raw.severity.as_ref()));
        Some(Affected {
            ecosystem,
            package: name,
            ranges,
            versions: raw.versions.unwrap_or_default(),
            vendor,
        })
    }

    /// Whether `version` is affected and, if so, the fix to offer.
    fn evaluate(&self, version: &str, scheme: Scheme) -> Option<Option<String>> {
        let listed = self
            .versions
            .iter()
            .any(|v| v == version || scheme.compare(v, version) == Ordering::Equal);
        let mut in_range = false;
        let mut fixes: Vec<&str> = Vec::new();
        for range in &self.ranges {
            let scheme = if range.semver { Scheme::Semver } else { scheme };
            if let Some(fix) = range.contains(version, scheme) {
                in_range = true;
                fixes.extend(fix);
            }
        }
        if !in_range && !listed {
            return None;
        }
        if fixes.is_empty() {
            // Affected by the list alone (or by an interval with no fix):
            // offer the nearest fix any range of this entry names.
            for range in &self.ranges {
                let scheme = if range.semver { Scheme::Semver } else { scheme };
                for event in &range.events {
                    if let Event::Fixed(fix) = event {
                        if scheme.compare(fix, version) == Ordering::Greater {
                            fixes.push(fix);
                        }
                    }
                }
            }
        }
        let best = fixes.into_iter().min_by(|a, b| scheme.compare(a, b));
        Some(best.map(str::to_string))
    }
}

/// The upper end of one interval of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upper<'a> {
    /// Affected up to, not including, this version.
    Fixed(&'a str),
    /// Affected up to and including this version.
    LastAffected(&'a str),
    /// Affected from the lower end on.
    Open,
}

impl Range {
    fn from_raw(raw: RawRange) -> Option<Range> {
        let semver = match raw.kind.as_deref().map(str::trim) {
            Some("SEMVER") => true,
            Some("ECOSYSTEM") => false,
            _ => return None,
        };
        let mut events = Vec::new();
        for event in raw.events.into_iter().flatten() {
            // One key per event object; sorted so an odd object with more
            // than one still reads the same way every time.
            let mut pairs: Vec<(String, Value)> = event.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, value) in pairs {
                let Some(text) = value.as_str() else {
                    continue;
                };
                let text = text.trim().to_string();
                if text.is_empty() {
                    continue;
                }
                events.push(match key.as_str() {
                    "introduced" => Event::Introduced(text),
                    "fixed" => Event::Fixed(text),
                    "last_affected" => Event::LastAffected(text),
                    "limit" => Event::Limit(text),
                    _ => continue,
                });
            }
        }
        Some(Range { semver, events })
    }

    /// The intervals the events describe, read in order (lower end
    /// inclusive, `None` from the first version), and the range's limits.
    fn intervals(&self) -> (Vec<(Option<&str>, Upper<'_>)>, Vec<&str>) {
        let mut out = Vec::new();
        let mut limits = Vec::new();
        let mut open: Option<Option<&str>> = None;
        for event in &self.events {
            match event {
                Event::Introduced(v) => {
                    if open.is_none() {
                        open = Some((v != "0").then_some(v.as_str()));
                    }
                }
                // A fix with no introduction before it covers everything up
                // to it, as a range starting at "0" would.
                Event::Fixed(v) => out.push((open.take().flatten(), Upper::Fixed(v))),
                Event::LastAffected(v) => out.push((open.take().flatten(), Upper::LastAffected(v))),
                Event::Limit(v) => limits.push(v.as_str()),
            }
        }
        if let Some(lower) = open {
            out.push((lower, Upper::Open));
        }
        (out, limits)
    }

    /// `Some(fix)` when `version` falls in one of the range's intervals
    /// (`fix` the nearest `fixed` among those that hold it), else `None`.
    fn contains(&self, version: &str, scheme: Scheme) -> Option<Option<&str>> {
        let (intervals, limits) = self.intervals();
        if limits
            .iter()
            .any(|limit| scheme.compare(version, limit) != Ordering::Less)
        {
            return None;
        }
        let mut hit: Option<Option<&str>> = None;
        for (lower, upper) in intervals {
            if lower.is_some_and(|lower| scheme.compare(version, lower) == Ordering::Less) {
                continue;
            }
            let (inside, fix) = match upper {
                Upper::Fixed(fix) => (scheme.compare(version, fix) == Ordering::Less, Some(fix)),
                Upper::LastAffected(last) => {
                    (scheme.compare(version, last) != Ordering::Greater, None)
                }
                Upper::Open => (true, None),
            };
            if !inside {
                continue;
            }
            hit = Some(match (hit.flatten(), fix) {
                (Some(a), Some(b)) if scheme.compare(b, a) == Ordering::Less => Some(b),
                (Some(a), _) => Some(a),
                (None, fix) => fix,
            });
        }
        hit
    }
}

// ---------------------------------------------------------------------------
// Which ecosystem an installed package belongs to
// ---------------------------------------------------------------------------

/// The release an OS ecosystem entry must name for a package to match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Release {
    /// `Debian:<major>`.
    Debian(String),
    /// `Ubuntu:<VERSION_ID>[:LTS]`, Pro entries excluded.
    Ubuntu(String),
    /// `Alpine:v<major.minor>`.
    Alpine(String),
    /// Any `:`-separated part after the base equals the major version.
    Major(String),
    /// Language ecosystems have no release.
    None,
}

impl Release {
    fn admits(&self, ecosystem: &str) -> bool {
        let mut parts = ecosystem.split(':').map(str::trim);
        let _base = parts.next();
        let rest: Vec<&str> = parts.collect();
        match self {
            Release::None => rest.is_empty(),
            Release::Debian(major) | Release::Alpine(major) => {
                rest.first().is_some_and(|r| r == major)
            }
            Release::Ubuntu(version) => {
                if rest.iter().any(|p| p.eq_ignore_ascii_case("Pro")) {
                    return false;
                }
                rest.iter()
                    .find(|p| !p.eq_ignore_ascii_case("LTS"))
                    .is_some_and(|r| r == version)
            }
            Release::Major(major) => rest.iter().any(|p| p == major),
        }
    }
}

/// One way to look an installed package up.
#[derive(Debug, Clone)]
struct Query {
    base: &'static str,
    name: String,
    version: String,
    scheme: Scheme,
    release: Release,
}

fn debian_major(os: &OsRelease) -> Option<String> {
    if let Some(version) = os.version_id.as_deref() {
        let major = version.trim().split('.').next().unwrap_or("").trim();
        if !major.is_empty() {
            return Some(major.to_string());
        }
    }
    let number = match os.version_codename.as_deref()? {
        "jessie" => "8",
        "stretch" => "9",
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        _ => return None,
    };
    Some(number.to_string())
}

fn alpine_branch(os: &OsRelease) -> Option<String> {
    let version = os.version_id.as_deref()?.trim();
    let mut numbers = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major = numbers.next()?;
    let minor = numbers.next()?;
    Some(format!("v{major}.{minor}"))
}

fn major_of(os: &OsRelease) -> Option<String> {
    let version = os.version_id.as_deref()?.trim();
    let major = version.split('.').next()?.trim();
    (!major.is_empty()).then(|| major.to_string())
}

fn queries(package: &Package, os: Option<&OsRelease>) -> Vec<Query> {
    let plain = |base: &'static str, name: &str, version: &str, scheme: Scheme| Query {
        base,
        name: normalise_name(base, name),
        version: version.to_string(),
        scheme,
        release: Release::None,
    };
    match package.kind {
        PackageKind::Python => vec![plain(
            "PyPI",
            &package.name,
            &package.version,
            Scheme::Pep440,
        )],
        PackageKind::Npm => vec![plain(
            "npm",
            &package.name,
            &package.version,
            Scheme::Semver,
        )],
        PackageKind::Cargo => vec![plain(
            "crates.io",
            &package.name,
            &package.version,
            Scheme::Semver,
        )],
        PackageKind::Go => vec![plain("Go", &package.name, &package.version, Scheme::Semver)],
        PackageKind::GoStdlib => {
            let version = package.version.trim();
            let version = version.strip_prefix("go").unwrap_or(version);
            vec![plain("Go", "stdlib", version, Scheme::Semver)]
        }
        PackageKind::Dpkg => {
            let Some(os) = os else {
                return Vec::new();
            };
            let (base, release) = match os.id.as_str() {
                "debian" => match debian_major(os) {
                    Some(major) => ("Debian", Release::Debian(major)),
                    None => return Vec::new(),
                },
                "ubuntu" => match os.version_id.as_deref().map(str::trim) {
                    Some(v) if !v.is_empty() => ("Ubuntu", Release::Ubuntu(v.to_string())),
                    _ => return Vec::new(),
                },
                _ => return Vec::new(),
            };
            // Debian and Ubuntu data is keyed by source package.
            let name = package.source_name.as_deref().unwrap_or(&package.name);
            let version = package
                .source_version
                .as_deref()
                .unwrap_or(&package.version);
            vec![Query {
                base,
                name: name.to_string(),
                version: version.to_string(),
                scheme: Scheme::Dpkg,
                release,
            }]
        }
        PackageKind::Apk => {
            let Some(os) = os else {
                return Vec::new();
            };
            if os.id != "alpine" {
                return Vec::new();
            }
            let Some(branch) = alpine_branch(os) else {
                return Vec::new();
            };
            let name = package.source_name.as_deref().unwrap_or(&package.name);
            vec![Query {
                base: "Alpine",
                name: name.to_string(),
                version: package.version.clone(),
                scheme: Scheme::Apk,
                release: Release::Alpine(branch),
            }]
        }
        PackageKind::Rpm => {
            let Some(os) = os else {
                return Vec::new();
            };
            let base = match os.id.as_str() {
                "rhel" => "Red Hat",
                "rocky" => "Rocky Linux",
                "almalinux" => "AlmaLinux",
                _ => return Vec::new(),
            };
            let Some(major) = major_of(os) else {
                return Vec::new();
            };
            // Best effort: the binary name, and the source RPM's name when
            // it differs (the distributions do not agree on which).
            let mut names = vec![package.name.clone()];
            if let Some(source) = &package.source_name {
                if source != &package.name {
                    names.push(source.clone());
                }
            }
            names
                .into_iter()
                .map(|name| Query {
                    base,
                    name,
                    version: package.version.clone(),
                    scheme: Scheme::Rpm,
                    release: Release::Major(major.clone()),
                })
                .collect()
        }
    }
}

fn source_of(id: &str, base: &str) -> &'static str {
    const PREFIXES: [(&str, &str); 12] = [
        ("DEBIAN-", "DEBIAN_CVE"),
        ("DSA-", "DEBIAN_CVE"),
        ("DLA-", "DEBIAN_CVE"),
        ("DTSA-", "DEBIAN_CVE"),
        ("UBUNTU-", "UBUNTU_CVE"),
        ("USN-", "UBUNTU_CVE"),
        ("LSN-", "UBUNTU_CVE"),
        ("ALPINE-", "ALPINE_SECDB"),
        ("GHSA-", "GITHUB"),
        ("GO-", "GO"),
        ("RUSTSEC-", "RUSTSEC"),
        ("PYSEC-", "PYSEC"),
    ];
    if let Some((_, source)) = PREFIXES.iter().find(|(p, _)| id.starts_with(p)) {
        return source;
    }
    match base {
        "Debian" => "DEBIAN_CVE",
        "Ubuntu" => "UBUNTU_CVE",
        "Alpine" => "ALPINE_SECDB",
        _ => "OSV",
    }
}

fn uri_of(record: &Record, base: &str) -> String {
    let cve = is_cve(&record.name);
    match base {
        // The tracker answers for DSA and DLA ids as well as CVEs.
        "Debian" => {
            return format!(
                "https://security-tracker.debian.org/tracker/{}",
                record.name
            )
        }
        "Ubuntu" if cve => return format!("https://ubuntu.com/security/{}", record.name),
        "Alpine" if cve => return format!("https://security.alpinelinux.org/vuln/{}", record.name),
        _ => {}
    }
    record
        .advisory
        .clone()
        .unwrap_or_else(|| format!("https://osv.dev/vulnerability/{}", record.id))
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

/// A file the loader reads: `.json` or `.zip`.
fn loadable(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("json") | Some("zip")
    )
}

/// Every loadable file under `dir`, sorted, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        paths.push(entry.path());
    }
    paths.sort();
    for path in paths {
        let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else if meta.is_file() && loadable(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn files_at(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        let mut out = Vec::new();
        walk(path, &mut out)?;
        Ok(out)
    } else if loadable(path) {
        Ok(vec![path.to_path_buf()])
    } else {
        Err(format!(
            "{}: not a directory, a .json file or a .zip file",
            path.display()
        ))
    }
}

/// The records in one JSON document: one record, or an array of them.
fn parse_document(bytes: &[u8], label: &str) -> Result<Vec<RawRecord>, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("{label}: {e}"))?;
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value::<RawRecord>(item).map_err(|e| {
                if bytes.first().is_some_and(|b| *b == b'[') {
                    format!("{label}: record {i}: {e}")
                } else {
                    format!("{label}: {e}")
                }
            })
        })
        .collect()
}

fn read_zip(path: &Path) -> Result<Vec<RawRecord>, String> {
    let label = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| format!("{label}: {e}"))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("{label}: {e}"))?;
    let mut names: Vec<(String, usize)> = Vec::new();
    for i in 0..archive.len() {
        let entry = archive
            .by_index(i)
            .map_err(|e| format!("{label}: entry {i}: {e}"))?;
        if entry.is_file() && entry.name().to_ascii_lowercase().ends_with(".json") {
            names.push((entry.name().to_string(), i));
        }
    }
    names.sort();
    let mut out = Vec::new();
    for (name, i) in names {
        let entry_label = format!("{label}!{name}");
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("{entry_label}: {e}"))?;
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{entry_label}: {e}"))?;
        out.extend(parse_document(&bytes, &entry_label)?);
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<Vec<RawRecord>, String> {
    let is_zip = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if is_zip {
        read_zip(path)
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        parse_document(&bytes, &path.display().to_string())
    }
}

impl VulnDb {
    pub fn empty() -> VulnDb {
        VulnDb::default()
    }

    /// Reads `path`: a directory (searched recursively) of OSV JSON records
    /// (`*.json`, one record per file or a JSON array of records) and/or
    /// OSV's per-ecosystem `all.zip` files, or a single `.json`/`.zip`.
    pub fn load(path: &Path) -> Result<VulnDb, String> {
        let mut records: Vec<Record> = Vec::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for file in files_at(path)? {
            for raw in read_file(&file)? {
                if raw.id.trim().is_empty() {
                    return Err(format!("{}: a record with an empty id", file.display()));
                }
                if is_withdrawn(raw.withdrawn.as_deref()) {
                    continue;
                }
                let record = Record::from_raw(raw);
                match by_id.get(&record.id) {
                    Some(&at) => {
                        if record.modified > records[at].modified {
                            records[at] = record;
                        }
                    }
                    None => {
                        by_id.insert(record.id.clone(), records.len());
                        records.push(record);
                    }
                }
            }
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(VulnDb::from_records(records))
    }

    fn from_records(mut records: Vec<Record>) -> VulnDb {
        borrow_severities(&mut records);
        let mut index: HashMap<(String, String), Vec<(usize, usize)>> = HashMap::new();
        for (ri, record) in records.iter().enumerate() {
            for (ai, affected) in record.affected.iter().enumerate() {
                let base = ecosystem_base(&affected.ecosystem);
                index
                    .entry((base.to_string(), normalise_name(base, &affected.package)))
                    .or_default()
                    .push((ri, ai));
            }
        }
        let updated_at = records.iter().filter_map(|r| r.modified).max();
        VulnDb {
            records,
            index,
            updated_at,
        }
    }

    /// A cheap fingerprint of what is at `path` (the loadable files' names,
    /// sizes and modification times; nothing is parsed). `None` when there
    /// is nothing there.
    pub fn source_stamp(path: &Path) -> Option<String> {
        let files = files_at(path).ok()?;
        let mut hasher = Sha256::new();
        for file in files {
            let meta = std::fs::metadata(&file).ok()?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| (d.as_secs(), d.subsec_nanos()))
                .unwrap_or((0, 0));
            let relative = file.strip_prefix(path).unwrap_or(&file);
            hasher.update(
                format!(
                    "{}\t{}\t{}.{:09}\n",
                    relative.display(),
                    meta.len(),
                    modified.0,
                    modified.1
                )
                .as_bytes(),
            );
        }
        Some(hex::encode(hasher.finalize()))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The newest `modified` among the records (unix seconds).
    pub fn updated_at(&self) -> Option<i64> {
        self.updated_at
    }

    /// Every (vulnerability, package) pair where the installed version is
    /// affected, most severe first, then by name and package.
    pub fn matches(&self, inventory: &Inventory) -> Vec<Match> {
        let mut found: BTreeMap<(String, String, String, String), Candidate> = BTreeMap::new();
        for package in &inventory.packages {
            for query in queries(package, inventory.os.as_ref()) {
                let key = (query.base.to_string(), query.name.clone());
                let Some(hits) = self.index.get(&key) else {
                    continue;
                };
                for &(ri, ai) in hits {
                    let record = &self.records[ri];
                    let affected = &record.affected[ai];
                    if !query.release.admits(&affected.ecosystem) {
                        continue;
                    }
                    let Some(fixed) = affected.evaluate(&query.version, query.scheme) else {
                        continue;
                    };
                    let candidate = Candidate::new(record, affected, package, query.base, fixed);
                    let key = (
                        candidate.found.name.clone(),
                        package.name.clone(),
                        package.version.clone(),
                        package.path.clone(),
                    );
                    let merged = match found.remove(&key) {
                        Some(existing) => existing.merged(candidate, query.scheme),
                        None => candidate,
                    };
                    found.insert(key, merged);
                }
            }
        }
        let mut out: Vec<Match> = found.into_values().map(Candidate::finish).collect();
        out.sort_by(|a, b| {
            severity_rank(b.severity)
                .cmp(&severity_rank(a.severity))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.package.name.cmp(&b.package.name))
                .then_with(|| a.package.version.cmp(&b.package.version))
                .then_with(|| a.package.path.cmp(&b.package.path))
                .then_with(|| a.id.cmp(&b.id))
        });
        out
    }
}

/// For every record with no severity of its own, the severity of a record
/// it names (its aliases and upstream ids, in order), else of another
/// record for the same CVE. A Debian record that carries no vector thus
/// reads the NVD-derived `CVE-...` record's, a PYSEC record its GHSA's.
fn borrow_severities(records: &mut [Record]) {
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, record) in records.iter().enumerate() {
        by_id.insert(record.id.as_str(), i);
        if record.own_severity().is_some() {
            by_name.entry(record.name.as_str()).or_default().push(i);
        }
    }
    let mut lent: Vec<(usize, Severity, Vec<CvssScore>)> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        if record.own_severity().is_some() {
            continue;
        }
        let named = record
            .links
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).copied())
            .find(|&j| j != i && records[j].own_severity().is_some());
        let same_cve = || {
            by_name
                .get(record.name.as_str())
                .and_then(|list| list.iter().copied().find(|&j| j != i))
        };
        if let Some(j) = named.or_else(same_cve) {
            if let Some(severity) = records[j].own_severity() {
                lent.push((i, severity, records[j].cvss.clone()));
            }
        }
    }
    for (i, severity, cvss) in lent {
        records[i].borrowed = Some((severity, cvss));
    }
}

/// A finding under construction, with what decides between two records
/// that report the same one.
struct Candidate {
    found: Match,
    /// The severity came from the record itself, not a record it names.
    own: bool,
}

impl Candidate {
    fn new(
        record: &Record,
        affected: &Affected,
        package: &Package,
        base: &str,
        fixed: Option<String>,
    ) -> Candidate {
        let vendor = affected.vendor.clone().or_else(|| record.vendor.clone());
        let mut cvss = record.cvss.clone();
        let mut own = true;
        let severity = match record.cvss.first() {
            Some(best)
                if Severity::from_score(best.version, best.base_score) != Severity::Undefined =>
            {
                Severity::from_score(best.version, best.base_score)
            }
            _ => {
                let word = vendor
                    .as_deref()
                    .map(Severity::from_name)
                    .unwrap_or(Severity::Undefined);
                if word != Severity::Undefined {
                    word
                } else if let Some((severity, lent)) = &record.borrowed {
                    own = false;
                    if cvss.is_empty() {
                        cvss = lent.clone();
                    }
                    *severity
                } else {
                    own = false;
                    Severity::Undefined
                }
            }
        };
        Candidate {
            found: Match {
                id: record.id.clone(),
                name: record.name.clone(),
                aliases: record.aliases.clone(),
                related: record.related.clone(),
                summary: record.summary.clone(),
                details: record.details.clone(),
                package: package.clone(),
                ecosystem: affected.ecosystem.clone(),
                fixed_version: fixed,
                severity,
                cvss,
                vendor_severity: vendor,
                uri: uri_of(record, base),
                references: record.references.clone(),
                published: record.published,
                modified: record.modified,
                source: source_of(&record.id, base).to_string(),
            },
            own,
        }
    }

    /// Folds a second report of the same finding into this one: the same
    /// record (another `affected` entry) keeps the nearer fix; of two
    /// records, the one that states its own severity wins, then the more
    /// severe, then the smaller id, and the other's ids become related.
    fn merged(mut self, other: Candidate, scheme: Scheme) -> Candidate {
        if other.found.id == self.found.id {
            self.found.fixed_version =
                match (self.found.fixed_version.take(), other.found.fixed_version) {
                    (Some(a), Some(b)) if scheme.compare(&b, &a) == Ordering::Less => Some(b),
                    (Some(a), _) => Some(a),
                    (None, b) => b,
                };
            return self;
        }
        let rank = |c: &Candidate| (c.own, severity_rank(c.found.severity));
        let other_wins = match rank(&other).cmp(&rank(&self)) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => other.found.id < self.found.id,
        };
        let (mut keep, drop) = if other_wins {
            (other, self)
        } else {
            (self, other)
        };
        let name = keep.found.name.clone();
        let keep_id = keep.found.id.clone();
        for id in std::iter::once(&drop.found.id)
            .chain(&drop.found.aliases)
            .chain(&drop.found.related)
        {
            if id != &name && id != &keep_id {
                push_unique(&mut keep.found.related, id);
            }
        }
        if keep.found.fixed_version.is_none() {
            keep.found.fixed_version = drop.found.fixed_version;
        }
        keep
    }

    fn finish(mut self) -> Match {
        let set: BTreeSet<String> = self.found.related.drain(..).collect();
        self.found.related = set.into_iter().collect();
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/osv")
    }

    fn fixture_db() -> VulnDb {
        VulnDb::load(&fixtures()).expect("fixture db loads")
    }

    /// A database of records given inline.
    fn inline_db(records: &[&str]) -> VulnDb {
        let records = records
            .iter()
            .map(|text| Record::from_raw(serde_json::from_str(text).expect("record parses")))
            .collect();
        VulnDb::from_records(records)
    }

    fn os(id: &str, version: &str) -> Option<OsRelease> {
        Some(OsRelease {
            id: id.to_string(),
            version_id: Some(version.to_string()),
            ..OsRelease::default()
        })
    }

    fn pkg(kind: PackageKind, name: &str, version: &str) -> Package {
        Package {
            kind,
            name: name.to_string(),
            version: version.to_string(),
            source_name: None,
            source_version: None,
            arch: None,
            path: "/somewhere".to_string(),
            layer: 0,
        }
    }

    fn from_source(mut package: Package, source: &str) -> Package {
        package.source_name = Some(source.to_string());
        package
    }

    fn scan(db: &VulnDb, os: Option<OsRelease>, packages: Vec<Package>) -> Vec<Match> {
        db.matches(&Inventory { os, packages })
    }

    fn summary(matches: &[Match]) -> Vec<(String, String, String, Severity, Option<String>)> {
        matches
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    m.id.clone(),
                    m.package.name.clone(),
                    m.severity,
                    m.fixed_version.clone(),
                )
            })
            .collect()
    }

    fn range(semver: bool, events: &[(&str, &str)]) -> Range {
        Range {
            semver,
            events: events
                .iter()
                .map(|(kind, v)| match *kind {
                    "introduced" => Event::Introduced(v.to_string()),
                    "fixed" => Event::Fixed(v.to_string()),
                    "last_affected" => Event::LastAffected(v.to_string()),
                    _ => Event::Limit(v.to_string()),
                })
                .collect(),
        }
    }

    fn affected(ranges: Vec<Range>, versions: &[&str]) -> Affected {
        Affected {
            ecosystem: "npm".to_string(),
            package: "p".to_string(),
            ranges,
            versions: versions.iter().map(|v| v.to_string()).collect(),
            vendor: None,
        }
    }

    fn eval(a: &Affected, version: &str) -> Option<Option<String>> {
        a.evaluate(version, Scheme::Semver)
    }

    #[test]
    fn introduced_fixed_is_half_open_and_zero_is_the_start() {
        let a = affected(
            vec![range(false, &[("introduced", "0"), ("fixed", "1.2.0")])],
            &[],
        );
        assert_eq!(eval(&a, "0.0.1"), Some(Some("1.2.0".into())));
        assert_eq!(eval(&a, "1.1.9"), Some(Some("1.2.0".into())));
        assert_eq!(eval(&a, "1.2.0"), None);
        assert_eq!(eval(&a, "2.0.0"), None);
        let a = affected(
            vec![range(false, &[("introduced", "1.0.0"), ("fixed", "1.2.0")])],
            &[],
        );
        assert_eq!(eval(&a, "0.9.0"), None);
        assert_eq!(eval(&a, "1.0.0"), Some(Some("1.2.0".into())));
    }

    #[test]
    fn last_affected_is_inclusive_and_has_no_fix() {
        let a = affected(
            vec![range(
                false,
                &[("introduced", "1.0.0"), ("last_affected", "1.4.0")],
            )],
            &[],
        );
        assert_eq!(eval(&a, "1.4.0"), Some(None));
        assert_eq!(eval(&a, "1.4.1"), None);
        assert_eq!(eval(&a, "0.1.0"), None);
    }

    #[test]
    fn an_open_interval_runs_to_the_limit() {
        let a = affected(vec![range(false, &[("introduced", "2.0.0")])], &[]);
        assert_eq!(eval(&a, "99.0.0"), Some(None));
        let a = affected(
            vec![range(false, &[("introduced", "2.0.0"), ("limit", "3.0.0")])],
            &[],
        );
        assert_eq!(eval(&a, "2.5.0"), Some(None));
        assert_eq!(eval(&a, "3.0.0"), None);
        assert_eq!(eval(&a, "1.0.0"), None);
    }

    #[test]
    fn several_intervals_in_one_range_and_several_ranges() {
        // GO-2022-0493's stdlib range: two intervals, read in order.
        let a = affected(
            vec![range(
                true,
                &[
                    ("introduced", "0"),
                    ("fixed", "1.17.10"),
                    ("introduced", "1.18.0-0"),
                    ("fixed", "1.18.2"),
                ],
            )],
            &[],
        );
        assert_eq!(eval(&a, "1.17.9"), Some(Some("1.17.10".into())));
        assert_eq!(eval(&a, "1.17.10"), None);
        assert_eq!(eval(&a, "1.18.0"), Some(Some("1.18.2".into())));
        assert_eq!(eval(&a, "1.18.1"), Some(Some("1.18.2".into())));
        assert_eq!(eval(&a, "1.18.2"), None);
        let a = affected(
            vec![
                range(false, &[("introduced", "0"), ("fixed", "1.0.5")]),
                range(false, &[("introduced", "2.0.0"), ("fixed", "2.0.3")]),
            ],
            &[],
        );
        assert_eq!(eval(&a, "2.0.1"), Some(Some("2.0.3".into())));
        assert_eq!(eval(&a, "1.5.0"), None);
    }

    #[test]
    fn the_versions_list_counts_and_offers_the_next_fix() {
        let a = affected(
            vec![range(false, &[("introduced", "3.0.0"), ("fixed", "3.0.4")])],
            &["1.0.0", "1.0.1"],
        );
        assert_eq!(eval(&a, "1.0.1"), Some(Some("3.0.4".into())));
        assert_eq!(eval(&a, "1.0.2"), None);
        let only_list = affected(Vec::new(), &["0.9.0"]);
        assert_eq!(eval(&only_list, "0.9.0"), Some(None));
        assert_eq!(eval(&only_list, "0.9.1"), None);
    }

    #[test]
    fn git_ranges_are_ignored() {
        let record = r#"{"id": "X-1", "affected": [{"package": {"ecosystem": "npm", "name": "p"},
            "ranges": [{"type": "GIT", "repo": "https://example.invalid/p",
                        "events": [{"introduced": "0"}, {"fixed": "abc123"}]}]}]}"#;
        let db = inline_db(&[record]);
        assert!(scan(&db, None, vec![pkg(PackageKind::Npm, "p", "1.0.0")]).is_empty());
    }

    #[test]
    fn the_fixture_database_loads_every_record() {
        let db = fixture_db();
        assert_eq!(db.len(), 12);
        assert!(!db.is_empty());
        let newest = OffsetDateTime::parse("2026-07-08T04:32:24.548042624Z", &Rfc3339)
            .expect("time")
            .unix_timestamp();
        assert_eq!(db.updated_at(), Some(newest));
        assert!(VulnDb::empty().is_empty());
        assert_eq!(VulnDb::empty().updated_at(), None);
    }

    #[test]
    fn debian_is_keyed_by_source_package_and_release() {
        let db = fixture_db();
        let libssl = from_source(
            pkg(PackageKind::Dpkg, "libssl1.1", "1.1.0l-1~deb9u5"),
            "openssl",
        );
        let found = scan(&db, os("debian", "9"), vec![libssl.clone()]);
        assert_eq!(
            summary(&found),
            [(
                "CVE-2022-1292".to_string(),
                "DLA-3008-1".to_string(),
                "libssl1.1".to_string(),
                Severity::Undefined,
                Some("1.1.0l-1~deb9u6".to_string())
            )]
        );
        let m = &found[0];
        assert_eq!(m.ecosystem, "Debian:9");
        assert_eq!(m.source, "DEBIAN_CVE");
        assert_eq!(
            m.uri,
            "https://security-tracker.debian.org/tracker/CVE-2022-1292"
        );
        assert_eq!(m.related, ["DEBIAN-CVE-2022-1292"]);
        assert_eq!(m.package, libssl);
        // The binary name alone is not what Debian's data names.
        let unkeyed = pkg(PackageKind::Dpkg, "libssl1.1", "1.1.0l-1~deb9u5");
        assert!(scan(&db, os("debian", "9"), vec![unkeyed]).is_empty());
        // A Debian:9 record says nothing about Debian 12.
        assert!(scan(&db, os("debian", "12"), vec![libssl.clone()]).is_empty());
        // The source version decides when the database records one.
        let mut rebuilt = libssl.clone();
        rebuilt.version = "1.1.0l-1~deb9u5+b1".to_string();
        rebuilt.source_version = Some("1.1.0l-1~deb9u6".to_string());
        assert!(scan(&db, os("debian", "9"), vec![rebuilt]).is_empty());
        // No OS, or one this does not know: nothing is guessed.
        assert!(scan(&db, None, vec![libssl.clone()]).is_empty());
        assert!(scan(&db, os("raspbian", "9"), vec![libssl]).is_empty());
        // A record without a CVE keeps its own id as the name.
        let tz = pkg(PackageKind::Dpkg, "tzdata", "2021a-0+deb9u3");
        let found = scan(&db, os("debian", "9.13"), vec![tz]);
        assert_eq!(found[0].name, "DLA-3051-1");
        assert_eq!(
            found[0].uri,
            "https://security-tracker.debian.org/tracker/DLA-3051-1"
        );
    }

    #[test]
    fn ubuntu_matches_its_release_and_never_a_pro_entry() {
        let db = fixture_db();
        let libssl3 = from_source(
            pkg(PackageKind::Dpkg, "libssl3", "3.0.2-0ubuntu1.7"),
            "openssl",
        );
        let found = scan(&db, os("ubuntu", "22.04"), vec![libssl3.clone()]);
        let names: Vec<&str> = found.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["CVE-2023-0215", "CVE-2023-0286"]);
        let m = &found[1];
        assert_eq!(m.ecosystem, "Ubuntu:22.04:LTS");
        assert_eq!(m.severity, Severity::High);
        assert_eq!(m.vendor_severity.as_deref(), Some("high"));
        assert_eq!(m.cvss.len(), 1);
        assert_eq!(m.cvss[0].base_score, 7.4);
        assert_eq!(m.uri, "https://ubuntu.com/security/CVE-2023-0286");
        assert_eq!(m.source, "UBUNTU_CVE");
        assert_eq!(m.fixed_version.as_deref(), Some("3.0.2-0ubuntu1.8"));
        // 22.10 is another release.
        assert!(scan(&db, os("ubuntu", "22.10"), vec![libssl3]).is_empty());
        // 16.04 appears only as Ubuntu:Pro:16.04:LTS.
        let xenial = pkg(PackageKind::Dpkg, "openssl", "1.0.2g-1ubuntu4.20");
        assert!(scan(&db, os("ubuntu", "16.04"), vec![xenial]).is_empty());
        // A fixed version is not affected.
        let fixed = from_source(
            pkg(PackageKind::Dpkg, "libnode72", "12.22.9~dfsg-1ubuntu3.3"),
            "nodejs",
        );
        assert!(scan(&db, os("ubuntu", "22.04"), vec![fixed]).is_empty());
    }

    #[test]
    fn alpine_matches_by_origin_and_branch() {
        let db = fixture_db();
        let utils = from_source(pkg(PackageKind::Apk, "musl-utils", "1.2.4-r2"), "musl");
        let found = scan(&db, os("alpine", "3.18.4"), vec![utils.clone()]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "CVE-2025-26519");
        assert_eq!(found[0].ecosystem, "Alpine:v3.18");
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(found[0].fixed_version.as_deref(), Some("1.2.4-r3"));
        assert_eq!(found[0].source, "ALPINE_SECDB");
        assert_eq!(
            found[0].uri,
            "https://security.alpinelinux.org/vuln/CVE-2025-26519"
        );
        let fixed = from_source(pkg(PackageKind::Apk, "musl-utils", "1.2.4-r3"), "musl");
        assert!(scan(&db, os("alpine", "3.18.4"), vec![fixed]).is_empty());
        // 3.20 has no entry in the trimmed record.
        assert!(scan(&db, os("alpine", "3.20.0"), vec![utils]).is_empty());
    }

    #[test]
    fn pypi_names_are_pep_503_normalised() {
        assert_eq!(pep503("Foo.Bar__baz-"), "foo-bar-baz-");
        assert_eq!(pep503("zope.interface"), "zope-interface");
        let db = fixture_db();
        for name in ["requests", "Requests", "REQUESTS"] {
            let found = scan(&db, None, vec![pkg(PackageKind::Python, name, "2.30.0")]);
            assert_eq!(found.len(), 1, "{name}");
            assert_eq!(found[0].name, "CVE-2023-32681");
        }
        let dotted = inline_db(&[
            r#"{"id": "PYSEC-0000-1", "affected": [{"package": {"ecosystem": "PyPI",
            "name": "zope.interface"}, "ranges": [{"type": "ECOSYSTEM",
            "events": [{"introduced": "0"}, {"fixed": "5.0"}]}]}]}"#,
        ]);
        let found = scan(
            &dotted,
            None,
            vec![pkg(PackageKind::Python, "Zope_Interface", "4.7.1")],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].source, "PYSEC");
        assert_eq!(found[0].uri, "https://osv.dev/vulnerability/PYSEC-0000-1");
    }

    #[test]
    fn two_records_for_one_cve_are_one_finding() {
        let db = fixture_db();
        let found = scan(
            &db,
            None,
            vec![pkg(PackageKind::Python, "requests", "2.30.0")],
        );
        assert_eq!(found.len(), 1);
        let m = &found[0];
        // The GHSA states its own severity; the PYSEC only borrows it.
        assert_eq!(m.id, "GHSA-j8r2-6x86-q33q");
        assert_eq!(m.severity, Severity::Medium);
        assert_eq!(m.vendor_severity.as_deref(), Some("MODERATE"));
        assert_eq!(m.source, "GITHUB");
        assert!(m.related.contains(&"PYSEC-2023-74".to_string()));
        assert!(!m.related.contains(&"CVE-2023-32681".to_string()));
        let found = scan(&db, None, vec![pkg(PackageKind::Cargo, "tokio", "1.13.0")]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "GHSA-fg7r-2g4j-5cgr");
        assert_eq!(found[0].fixed_version.as_deref(), Some("1.13.1"));
        assert!(found[0].related.contains(&"RUSTSEC-2021-0124".to_string()));
        // Below 1.8.4 the other GHSA entry (and interval) applies.
        let found = scan(&db, None, vec![pkg(PackageKind::Cargo, "tokio", "1.0.0")]);
        assert_eq!(found[0].fixed_version.as_deref(), Some("1.8.4"));
    }

    #[test]
    fn npm_go_and_stdlib_match() {
        let db = fixture_db();
        let found = scan(
            &db,
            None,
            vec![
                pkg(PackageKind::Npm, "lodash", "4.17.20"),
                pkg(PackageKind::Npm, "lodash", "4.17.21"),
                pkg(PackageKind::Npm, "lodash-es", "4.17.15"),
            ],
        );
        let got: Vec<(&str, &str)> = found
            .iter()
            .map(|m| (m.package.name.as_str(), m.package.version.as_str()))
            .collect();
        assert_eq!(got, [("lodash", "4.17.20"), ("lodash-es", "4.17.15")]);
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(
            found[0].uri,
            "https://nvd.nist.gov/vuln/detail/CVE-2021-23337"
        );
        let found = scan(
            &db,
            None,
            vec![
                pkg(PackageKind::GoStdlib, "stdlib", "go1.18.1"),
                pkg(PackageKind::GoStdlib, "stdlib", "1.18.2"),
                pkg(
                    PackageKind::Go,
                    "golang.org/x/sys",
                    "v0.0.0-20220310020820-b874c991c1a5",
                ),
                pkg(PackageKind::Go, "golang.org/x/sys", "v0.1.0"),
            ],
        );
        let got: Vec<(&str, &str, Option<&str>)> = found
            .iter()
            .map(|m| {
                (
                    m.package.name.as_str(),
                    m.package.version.as_str(),
                    m.fixed_version.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "golang.org/x/sys",
                    "v0.0.0-20220310020820-b874c991c1a5",
                    Some("0.0.0-20220412211240-33da011f77ad")
                ),
                ("stdlib", "go1.18.1", Some("1.18.2")),
            ]
        );
        assert!(found
            .iter()
            .all(|m| m.source == "GO" && m.severity == Severity::Undefined));
        assert_eq!(found[0].name, "CVE-2022-29526");
    }

    #[test]
    fn severity_comes_from_vectors_then_the_vendor_then_a_named_record() {
        let affects = r#""affected": [{"package": {"ecosystem": "npm", "name": "p"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]"#;
        let vectors = format!(
            r#"{{"id": "GHSA-aaaa-bbbb-cccc", "aliases": ["CVE-2024-0001"], {affects},
            "database_specific": {{"severity": "LOW"}},
            "severity": [{{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
                         {{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:L/SC:N/SI:N/SA:N"}}]}}"#
        );
        let found = scan(
            &inline_db(&[&vectors]),
            None,
            vec![pkg(PackageKind::Npm, "p", "1.0.0")],
        );
        // The highest version's band, not the vendor word, not the v3.1 score.
        assert_eq!(found[0].cvss[0].version, CvssVersion::V4_0);
        assert_eq!(found[0].cvss.len(), 2);
        assert_eq!(
            found[0].severity,
            Severity::from_score(CvssVersion::V4_0, found[0].cvss[0].base_score)
        );
        assert_ne!(found[0].severity, Severity::Critical);
        assert_eq!(found[0].vendor_severity.as_deref(), Some("LOW"));

        let word = format!(
            r#"{{"id": "OSV-2024-1", {affects}, "database_specific": {{"severity": "important"}}}}"#
        );
        let found = scan(
            &inline_db(&[&word]),
            None,
            vec![pkg(PackageKind::Npm, "p", "1.0.0")],
        );
        assert_eq!(found[0].severity, Severity::High);
        assert!(found[0].cvss.is_empty());

        let ubuntu = format!(
            r#"{{"id": "UBUNTU-CVE-2024-2", {affects}, "severity": [{{"type": "Ubuntu", "score": "medium"}}]}}"#
        );
        let found = scan(
            &inline_db(&[&ubuntu]),
            None,
            vec![pkg(PackageKind::Npm, "p", "1.0.0")],
        );
        assert_eq!(found[0].severity, Severity::Medium);
        assert_eq!(found[0].name, "CVE-2024-2");

        let urgency = r#"{"id": "DEBIAN-CVE-2024-3", "affected": [{"package": {"ecosystem": "Debian:12",
            "name": "curl"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            "ecosystem_specific": {"urgency": "low"}}]}"#;
        let found = scan(
            &inline_db(&[urgency]),
            os("debian", "12"),
            vec![pkg(PackageKind::Dpkg, "curl", "7.88.1-10")],
        );
        assert_eq!(found[0].severity, Severity::Low);
        assert_eq!(found[0].vendor_severity.as_deref(), Some("low"));
        assert_eq!(found[0].name, "CVE-2024-3");

        // No severity of its own: the record its upstream names lends one.
        let debian = r#"{"id": "DEBIAN-CVE-2024-4", "upstream": ["CVE-2024-4"], "affected": [{"package":
            {"ecosystem": "Debian:12", "name": "curl"}, "ranges": [{"type": "ECOSYSTEM",
            "events": [{"introduced": "0"}, {"fixed": "8.0-1"}]}],
            "ecosystem_specific": {"urgency": "not yet assigned"}}]}"#;
        let nvd = r#"{"id": "CVE-2024-4", "severity": [{"type": "CVSS_V3",
            "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}], "affected": []}"#;
        let curl = pkg(PackageKind::Dpkg, "curl", "7.88.1-10");
        let alone = scan(
            &inline_db(&[debian]),
            os("debian", "12"),
            vec![curl.clone()],
        );
        assert_eq!(alone[0].severity, Severity::Undefined);
        assert_eq!(
            alone[0].vendor_severity.as_deref(),
            Some("not yet assigned")
        );
        let lent = scan(&inline_db(&[debian, nvd]), os("debian", "12"), vec![curl]);
        assert_eq!(lent.len(), 1);
        assert_eq!(lent[0].severity, Severity::Critical);
        assert_eq!(lent[0].cvss[0].base_score, 9.8);
        assert_eq!(lent[0].id, "DEBIAN-CVE-2024-4");
    }

    #[test]
    fn matches_are_ordered_by_severity_then_name() {
        let db = fixture_db();
        let found = scan(
            &db,
            None,
            vec![
                pkg(PackageKind::Python, "requests", "2.30.0"),
                pkg(PackageKind::GoStdlib, "stdlib", "1.17.0"),
                pkg(PackageKind::Npm, "lodash", "4.17.20"),
                pkg(PackageKind::Cargo, "tokio", "1.13.0"),
            ],
        );
        let order: Vec<(&str, Severity)> = found
            .iter()
            .map(|m| (m.name.as_str(), m.severity))
            .collect();
        assert_eq!(
            order,
            [
                ("CVE-2021-23337", Severity::High),
                ("CVE-2021-45710", Severity::High),
                ("CVE-2023-32681", Severity::Medium),
                ("CVE-2022-29526", Severity::Undefined),
            ]
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    const SIMPLE: &str = r#"{"id": "OSV-1", "modified": "2024-01-02T00:00:00Z", "affected": [{"package":
        {"ecosystem": "npm", "name": "p"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}"#;

    #[test]
    fn withdrawn_records_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a.json", SIMPLE);
        write(
            dir.path(),
            "b.json",
            &SIMPLE.replace("OSV-1", "OSV-2").replace(
                r#""modified""#,
                r#""withdrawn": "2024-02-01T00:00:00Z", "modified""#,
            ),
        );
        // The zero instant is "never withdrawn".
        write(
            dir.path(),
            "c.json",
            &SIMPLE.replace("OSV-1", "OSV-3").replace(
                r#""modified""#,
                r#""withdrawn": "0001-01-01T00:00:00Z", "published": "0001-01-01T00:00:00Z", "modified""#,
            ),
        );
        let db = VulnDb::load(dir.path()).expect("loads");
        assert_eq!(db.len(), 2);
        let found = scan(&db, None, vec![pkg(PackageKind::Npm, "p", "1.0.0")]);
        let ids: Vec<&str> = found.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["OSV-1", "OSV-3"]);
        assert_eq!(found[1].published, None);
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "good.json", SIMPLE);
        let bad = write(dir.path(), "nested/broken.json", r#"{"id": "#);
        let error = VulnDb::load(dir.path()).expect_err("a broken record fails the load");
        assert!(error.contains(&bad.display().to_string()), "{error}");
        let no_id = write(dir.path(), "nested/broken.json", r#"{"summary": "no id"}"#);
        let error = VulnDb::load(dir.path()).expect_err("a record needs an id");
        assert!(
            error.contains(&no_id.display().to_string()) && error.contains("id"),
            "{error}"
        );
        let missing = dir.path().join("nowhere");
        let error = VulnDb::load(&missing).expect_err("missing");
        assert!(error.contains("nowhere"), "{error}");
        let text = write(dir.path(), "notes.txt", "hello");
        let error = VulnDb::load(&text).expect_err("not json or zip");
        assert!(error.contains("notes.txt"), "{error}");
        let fake_zip = write(dir.path(), "other/all.zip", "not a zip");
        let error = VulnDb::load(&fake_zip).expect_err("not a zip");
        assert!(error.contains("all.zip"), "{error}");
    }

    fn zip_of(path: &Path, entries: &[(&str, &[u8])]) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let file = std::fs::File::create(path).expect("create");
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            zip.start_file(*name, options).expect("start");
            zip.write_all(bytes).expect("write");
        }
        zip.finish().expect("finish");
    }

    #[test]
    fn loads_zips_arrays_and_single_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        // OSV's per-ecosystem all.zip: one record per entry, names as ids.
        let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
        let mut stack = vec![fixtures()];
        while let Some(at) = stack.pop() {
            for entry in std::fs::read_dir(&at).expect("read_dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    let name = path
                        .file_name()
                        .expect("name")
                        .to_string_lossy()
                        .to_string();
                    entries.push((name, std::fs::read(&path).expect("read")));
                }
            }
        }
        entries.sort();
        let mut borrowed: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        borrowed.push(("README.txt", b"not a record"));
        let zip_path = dir.path().join("all.zip");
        zip_of(&zip_path, &borrowed);
        let from_zip = VulnDb::load(&zip_path).expect("zip loads");
        let from_dir = fixture_db();
        assert_eq!(from_zip.len(), from_dir.len());
        let inventory = Inventory {
            os: os("ubuntu", "22.04"),
            packages: vec![
                from_source(
                    pkg(PackageKind::Dpkg, "libssl3", "3.0.2-0ubuntu1.7"),
                    "openssl",
                ),
                pkg(PackageKind::Npm, "lodash", "4.17.20"),
            ],
        };
        assert_eq!(from_zip.matches(&inventory), from_dir.matches(&inventory));
        assert_eq!(from_zip.updated_at(), from_dir.updated_at());

        // A bad entry is named as zip!entry.
        let broken = dir.path().join("broken.zip");
        zip_of(
            &broken,
            &[("OK.json", SIMPLE.as_bytes()), ("BAD-1.json", b"{\"id\": ")],
        );
        let error = VulnDb::load(&broken).expect_err("bad entry");
        assert!(error.contains("broken.zip!BAD-1.json"), "{error}");

        // A JSON array of records, and a directory mixing files and zips,
        // where the same id twice keeps the newer copy.
        let mixed = dir.path().join("mixed");
        let newer = SIMPLE.replace("2024-01-02", "2024-03-01").replace(
            r#"{"introduced": "0"}"#,
            r#"{"introduced": "0"}, {"fixed": "2.0.0"}"#,
        );
        write(
            &mixed,
            "list.json",
            &format!("[{SIMPLE}, {}]", SIMPLE.replace("OSV-1", "OSV-9")),
        );
        zip_of(
            &mixed.join("npm/all.zip"),
            &[("OSV-1.json", newer.as_bytes())],
        );
        let db = VulnDb::load(&mixed).expect("mixed loads");
        assert_eq!(db.len(), 2);
        let found = scan(&db, None, vec![pkg(PackageKind::Npm, "p", "1.0.0")]);
        assert_eq!(found[0].fixed_version.as_deref(), Some("2.0.0"));
        let single = VulnDb::load(&mixed.join("list.json")).expect("one file");
        assert_eq!(single.len(), 2);
    }

    #[test]
    fn the_source_stamp_changes_when_a_file_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(VulnDb::source_stamp(&dir.path().join("nowhere")), None);
        let path = write(dir.path(), "a.json", SIMPLE);
        let first = VulnDb::source_stamp(dir.path()).expect("stamp");
        assert_eq!(
            VulnDb::source_stamp(dir.path()).as_deref(),
            Some(first.as_str())
        );
        write(dir.path(), "a.json", &format!("{SIMPLE}\n"));
        let second = VulnDb::source_stamp(dir.path()).expect("stamp");
        assert_ne!(first, second, "a size change shows");
        // Same size, new modification time.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
            .expect("set mtime");
        let third = VulnDb::source_stamp(dir.path()).expect("stamp");
        assert_ne!(second, third, "an mtime change shows");
        write(dir.path(), "sub/b.json", SIMPLE);
        assert_ne!(
            third,
            VulnDb::source_stamp(dir.path()).expect("stamp"),
            "a new file shows"
        );
        assert!(VulnDb::source_stamp(&path).is_some());
    }

    #[derive(Deserialize)]
    struct Expected {
        images: BTreeMap<String, ExpectedImage>,
    }

    #[derive(Deserialize)]
    struct ExpectedImage {
        inventory: Inventory,
        findings: Vec<ExpectedFinding>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct ExpectedFinding {
        id: String,
        name: String,
        package: String,
        version: String,
        path: String,
        layer: usize,
        ecosystem: String,
        severity: Severity,
        fixed_version: Option<String>,
        source: String,
        uri: String,
        cvss_score: Option<f64>,
        vendor_severity: Option<String>,
    }

    #[test]
    fn fixture_images_have_the_expected_findings() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/scan/expected.json");
        let text = std::fs::read_to_string(path).expect("expected.json");
        let expected: Expected = serde_json::from_str(&text).expect("expected.json parses");
        assert_eq!(expected.images.len(), 6);
        let db = fixture_db();
        for (name, image) in expected.images {
            let got: Vec<ExpectedFinding> = db
                .matches(&image.inventory)
                .into_iter()
                .map(|m| ExpectedFinding {
                    id: m.id,
                    name: m.name,
                    package: m.package.name,
                    version: m.package.version,
                    path: m.package.path,
                    layer: m.package.layer,
                    ecosystem: m.ecosystem,
                    severity: m.severity,
                    fixed_version: m.fixed_version,
                    source: m.source,
                    uri: m.uri,
                    cvss_score: m.cvss.first().map(|c| c.base_score),
                    vendor_severity: m.vendor_severity,
                })
                .collect();
            assert_eq!(got, image.findings, "{name}");
        }
    }
}

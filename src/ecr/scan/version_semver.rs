//! Semantic Versioning precedence (SemVer 2.0.0, section 11), what OSV's
//! `npm`, `crates.io` and `Go` ecosystems mean by `SEMVER` and
//! `ECOSYSTEM` ranges.
//!
//! A version is `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`. Precedence:
//!
//! - major, minor and patch compare as numbers;
//! - a version with a pre-release is earlier than the same version without
//!   (`1.0.0-alpha` < `1.0.0`);
//! - pre-releases compare identifier by identifier (they are separated by
//!   dots): numeric identifiers as numbers, alphanumeric ones as ASCII
//!   text, a numeric one before an alphanumeric one, and with all shared
//!   identifiers equal, more identifiers is later;
//! - build metadata is ignored (`1.0.0+a` equals `1.0.0+b`).
//!
//! The data this reads is looser than the specification, so the parser is
//! too: a leading `v` or `V` (Go module versions, `v1.2.3`) or `=` is
//! ignored, a missing minor or patch number is 0 (`1.2` is `1.2.0`, as Go's
//! `semver` package reads `v1.2`), and leading zeros are accepted and
//! ignored. Go pseudo-versions (`v0.0.0-20210101000000-abcdef123456`,
//! `v1.2.4-0.20210101000000-abcdef123456`) are pre-releases under these
//! rules and so order as Go orders them; `+incompatible` is build metadata.
//!
//! A string that is not a version even so (empty identifiers, characters
//! outside `[0-9A-Za-z-]`, more than three numbers) orders after every
//! valid version, and two such strings order as plain text, so the order
//! stays total and a bad record never panics a scan.

use std::cmp::Ordering;
use std::fmt;

/// Why a string is not a semantic version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError(pub String);

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid semantic version: {}", self.0)
    }
}

impl std::error::Error for VersionError {}

/// Compares two runs of ASCII digits as numbers of any size.
fn compare_digits(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identifier {
    /// Only digits, kept as written.
    Numeric(String),
    Alphanumeric(String),
}

impl Ord for Identifier {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Identifier::Numeric(a), Identifier::Numeric(b)) => compare_digits(a, b),
            (Identifier::Alphanumeric(a), Identifier::Alphanumeric(b)) => a.cmp(b),
            (Identifier::Numeric(_), Identifier::Alphanumeric(_)) => Ordering::Less,
            (Identifier::Alphanumeric(_), Identifier::Numeric(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Identifier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identifier::Numeric(s) | Identifier::Alphanumeric(s) => f.write_str(s),
        }
    }
}

/// A parsed semantic version. Equality is precedence (`1.2` equals
/// `1.2.0+build`).
#[derive(Debug, Clone)]
pub struct SemVersion {
    /// Major, minor, patch as digit strings without leading zeros (empty
    /// for 0).
    numbers: [String; 3],
    pre: Vec<Identifier>,
    /// Kept for display only; it takes no part in precedence.
    build: Option<String>,
}

fn valid_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

impl SemVersion {
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let bad = |why: &str| VersionError(format!("{text:?}: {why}"));
        let trimmed = text.trim();
        let body = trimmed
            .strip_prefix(['v', 'V', '='])
            .unwrap_or(trimmed)
            .trim_start();
        let (rest, build) = match body.split_once('+') {
            Some((rest, build)) => {
                if !build.split('.').all(valid_identifier) {
                    return Err(bad("malformed build metadata"));
                }
                (rest, Some(build.to_string()))
            }
            None => (body, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut numbers: [String; 3] = Default::default();
        for (count, part) in core.split('.').enumerate() {
            if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad("the version numbers are not all numbers"));
            }
            let slot = numbers
                .get_mut(count)
                .ok_or_else(|| bad("more than three version numbers"))?;
            *slot = part.trim_start_matches('0').to_string();
        }
        let pre = match pre {
            None => Vec::new(),
            Some(pre) => pre
                .split('.')
                .map(|id| {
                    if !valid_identifier(id) {
                        Err(bad("malformed pre-release identifier"))
                    } else if id.bytes().all(|c| c.is_ascii_digit()) {
                        Ok(Identifier::Numeric(id.to_string()))
                    } else {
                        Ok(Identifier::Alphanumeric(id.to_string()))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(SemVersion {
            numbers,
            pre,
            build,
        })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

impl Ord for SemVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let numbers = self
            .numbers
            .iter()
            .zip(&other.numbers)
            .map(|(a, b)| compare_digits(a, b))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal);
        numbers.then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&other.pre),
        })
    }
}

impl PartialOrd for SemVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SemVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SemVersion {}

/// The full `MAJOR.MINOR.PATCH` form, without a `v`.
impl fmt::Display for SemVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.numbers.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(if n.is_empty() { "0" } else { n })?;
        }
        for (i, id) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            write!(f, "{id}")?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

/// Compares two version strings by SemVer precedence; a string that is not
/// a version orders as plain text after every valid one.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (SemVersion::parse(a), SemVersion::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn orders_the_specifications_example_chains() {
        // SemVer 2.0.0, section 11, items 2 and 4.
        let chains: &[&[&str]] = &[
            &["1.0.0", "2.0.0", "2.1.0", "2.1.1"],
            &[
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-alpha.beta",
                "1.0.0-beta",
                "1.0.0-beta.2",
                "1.0.0-beta.11",
                "1.0.0-rc.1",
                "1.0.0",
            ],
        ];
        for chain in chains {
            for (i, a) in chain.iter().enumerate() {
                for (j, b) in chain.iter().enumerate() {
                    assert_eq!(compare(a, b), i.cmp(&j), "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn orders_as_semver_does() {
        let table: &[(&str, &str, Ordering)] = &[
            ("1.2.3", "1.2.3", Equal),
            ("1.2.10", "1.2.9", Greater),
            ("1.10.0", "1.9.99", Greater),
            ("0.0.1", "0.1.0", Less),
            // Build metadata takes no part.
            ("1.0.0+build.1", "1.0.0+build.2", Equal),
            ("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta", Equal),
            ("1.0.0+20130313144700", "1.0.0-rc.1", Greater),
            // Pre-release identifiers.
            ("1.0.0-1", "1.0.0-a", Less),
            ("1.0.0-2", "1.0.0-10", Less),
            ("1.0.0-a10", "1.0.0-a9", Less),
            ("1.0.0-Beta", "1.0.0-alpha", Less),
            ("1.0.0-alpha-1", "1.0.0-alpha", Greater),
            ("1.0.0-x.7.z.92", "1.0.0-x.7.z.93", Less),
            // Loose forms: `v`, missing numbers, leading zeros.
            ("v1.2.3", "1.2.3", Equal),
            ("V1.2.3", "=1.2.3", Equal),
            ("1.2", "1.2.0", Equal),
            ("1", "1.0.0", Equal),
            ("v1.2", "v1.2.1", Less),
            ("1.2-beta", "1.2.0-beta", Equal),
            ("01.002.0003", "1.2.3", Equal),
            // Go module versions and pseudo-versions.
            ("v0.0.0-20210101000000-abcdef123456", "v0.0.1", Less),
            (
                "v0.0.0-20210101000000-abcdef123456",
                "v0.0.0-20211231000000-123456abcdef",
                Less,
            ),
            ("v1.2.4-0.20210101000000-abcdef123456", "v1.2.3", Greater),
            ("v1.2.4-0.20210101000000-abcdef123456", "v1.2.4", Less),
            ("v1.2.4-0.20210101000000-abcdef123456", "v1.2.4-rc.1", Less),
            (
                "v1.2.4-rc.1.0.20210101000000-abcdef123456",
                "v1.2.4-rc.1",
                Greater,
            ),
            ("v2.0.0+incompatible", "v2.0.0", Equal),
            ("v2.1.0+incompatible", "v2.0.9", Greater),
            // Big numbers do not overflow.
            (
                "1.0.99999999999999999999999",
                "1.0.100000000000000000000000",
                Less,
            ),
            // Invalid versions sort after valid ones, then as text.
            ("1.2.3", "not a version", Less),
            ("1.2.3.4", "999.0.0", Greater),
            ("1.2.3.4", "1.2.3.5", Less),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), *want, "compare({a}, {b})");
            assert_eq!(compare(b, a), want.reverse(), "compare({b}, {a})");
        }
    }

    #[test]
    fn displays_the_full_form() {
        for (text, full) in [
            ("v1.2", "1.2.0"),
            ("1", "1.0.0"),
            ("1.0.0-rc.1+build.5", "1.0.0-rc.1+build.5"),
            (
                "v0.0.0-20210101000000-abcdef123456",
                "0.0.0-20210101000000-abcdef123456",
            ),
            ("01.0.0", "1.0.0"),
        ] {
            assert_eq!(SemVersion::parse(text).unwrap().to_string(), full, "{text}");
        }
        assert!(SemVersion::parse("1.0.0-rc.1").unwrap().is_prerelease());
        assert!(!SemVersion::parse("1.0.0+rc").unwrap().is_prerelease());
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in [
            "",
            "v",
            "1.",
            ".1",
            "1..2",
            "1.2.3.4",
            "1.2.x",
            "a.b.c",
            "1.2.3-",
            "1.2.3-a..b",
            "1.2.3-a_b",
            "1.2.3+",
            "1.2.3+a+b",
            "1.2.3 beta",
            "^1.2.3",
        ] {
            assert!(SemVersion::parse(bad).is_err(), "{bad:?}");
        }
    }
}

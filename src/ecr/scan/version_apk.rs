//! Alpine package version ordering (apk's), what OSV's `Alpine` ecosystem
//! means by `ECOSYSTEM` ranges.
//!
//! apk versions follow Gentoo's version syntax and comparison (the Package
//! Manager Specification, section 3.2 "Version specifications" and 3.3
//! "Version comparison"), with apk's suffix names (Alpine's APKBUILD
//! reference, `pkgver`): `1.2.3` numbers, an optional single letter
//! (`1.2.3a`), any number of suffixes, each optionally numbered, and an
//! optional `-rN` package release.
//!
//! - The first number compares as a number; each later one compares as a
//!   number too, unless either side starts with `0`, when both compare as
//!   text with trailing zeros removed (`1.01` < `1.1`, `1.010` = `1.01`).
//!   With all shared numbers equal, more numbers is later.
//! - No letter is earlier than any letter.
//! - Suffixes in turn: `_alpha` < `_beta` < `_pre` < `_rc` < no suffix <
//!   `_cvs` < `_svn` < `_git` < `_hg` < `_p`; the same suffix compares by
//!   its number (absent is 0). When one side has more suffixes, its next
//!   one decides: a pre-release suffix is earlier, any other later.
//! - Last, the `-rN` release (absent is `-r0`).

use std::cmp::Ordering;
use std::fmt;

/// Why a string is not an apk version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError(pub String);

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid apk version: {}", self.0)
    }
}

impl std::error::Error for VersionError {}

/// The suffixes, earliest first; those before `NO_SUFFIX` are pre-releases.
const SUFFIXES: &[&str] = &["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
/// Where "no suffix" sorts among `SUFFIXES` (between `rc` and `cvs`).
const FIRST_POST_RELEASE: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Suffix {
    /// Index into `SUFFIXES`.
    rank: usize,
    number: u64,
}

/// A parsed apk version. Equality is apk's (`1.2-r0` equals `1.2`).
#[derive(Debug, Clone)]
pub struct ApkVersion {
    /// The dotted numbers, as written (leading zeros matter).
    numbers: Vec<String>,
    letter: Option<u8>,
    suffixes: Vec<Suffix>,
    release: u64,
    text: String,
}

fn number(digits: &str, text: &str) -> Result<u64, VersionError> {
    digits
        .parse::<u64>()
        .map_err(|_| VersionError(format!("{text:?}: number {digits:?} is too large")))
}

impl ApkVersion {
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let bad = |why: &str| VersionError(format!("{text:?}: {why}"));
        let (main, release) = match text.rsplit_once("-r") {
            Some((main, release)) => {
                if release.is_empty() || !release.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(bad("the release after -r is not a number"));
                }
                (main, number(release, text)?)
            }
            None => (text, 0),
        };
        let mut parts = main.split('_');
        let head = parts.next().unwrap_or_default();
        // The numbers, then at most one letter.
        let (digits, letter) = match head.as_bytes().last() {
            Some(&c) if c.is_ascii_lowercase() => (&head[..head.len() - 1], Some(c)),
            _ => (head, None),
        };
        if digits.is_empty() {
            return Err(bad("no version number"));
        }
        let mut numbers = Vec::new();
        for n in digits.split('.') {
            if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad("the numbers must be digits separated by single dots"));
            }
            numbers.push(n.to_string());
        }
        let mut suffixes = Vec::new();
        for part in parts {
            let split = part
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(part.len());
            let (name, digits) = part.split_at(split);
            let rank = SUFFIXES
                .iter()
                .position(|s| *s == name)
                .ok_or_else(|| bad(&format!("unknown suffix _{name}")))?;
            if !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad(&format!("suffix _{part} has a bad number")));
            }
            let number = if digits.is_empty() {
                0
            } else {
                number(digits, text)?
            };
            suffixes.push(Suffix { rank, number });
        }
        Ok(ApkVersion {
            numbers,
            letter,
            suffixes,
            release,
            text: text.to_string(),
        })
    }
}

/// A later dotted number: as text (trailing zeros off) when either starts
/// with `0`, else as a number.
fn compare_later_number(a: &str, b: &str) -> Ordering {
    if a.starts_with('0') || b.starts_with('0') {
        a.trim_end_matches('0').cmp(b.trim_end_matches('0'))
    } else {
        compare_digits(a, b)
    }
}

/// Two digit strings as numbers of any length.
fn compare_digits(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let first = compare_digits(&self.numbers[0], &other.numbers[0]);
        if first != Ordering::Equal {
            return first;
        }
        for (a, b) in self.numbers.iter().zip(&other.numbers).skip(1) {
            let by = compare_later_number(a, b);
            if by != Ordering::Equal {
                return by;
            }
        }
        let by = self
            .numbers
            .len()
            .cmp(&other.numbers.len())
            .then_with(|| self.letter.cmp(&other.letter));
        if by != Ordering::Equal {
            return by;
        }
        for (a, b) in self.suffixes.iter().zip(&other.suffixes) {
            let by = a.rank.cmp(&b.rank).then_with(|| a.number.cmp(&b.number));
            if by != Ordering::Equal {
                return by;
            }
        }
        let shared = self.suffixes.len().min(other.suffixes.len());
        // The side with one more suffix: a pre-release one makes it earlier.
        let extra = |v: &ApkVersion| {
            v.suffixes.get(shared).map(|s| {
                if s.rank < FIRST_POST_RELEASE {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            })
        };
        match (extra(self), extra(other)) {
            (Some(by), _) => by,
            (None, Some(by)) => by.reverse(),
            (None, None) => self.release.cmp(&other.release),
        }
    }
}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ApkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ApkVersion {}

impl fmt::Display for ApkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Compares two version strings by apk's rule; a string that is not an
/// apk version orders as plain text after every valid one.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (ApkVersion::parse(a), ApkVersion::parse(b)) {
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
    fn orders_as_apk_does() {
        let table: &[(&str, &str, Ordering)] = &[
            ("1.2.3", "1.2.3", Equal),
            ("1.2.3", "1.2.4", Less),
            ("1.10", "1.9", Greater),
            ("3.0.10", "3.0.8", Greater),
            ("10.0", "9.99", Greater),
            ("1.2", "1.2.0", Less),
            ("1.2.3", "1.2", Greater),
            // Leading zeros in later numbers compare as text.
            ("1.01", "1.1", Less),
            ("1.010", "1.01", Equal),
            ("1.001", "1.01", Less),
            ("01.2", "1.2", Equal),
            // Letters.
            ("1.2.3a", "1.2.3", Greater),
            ("1.2.3a", "1.2.3b", Less),
            ("1.2.3z", "1.2.4", Less),
            // Pre-release suffixes, then none, then post-release ones.
            ("1.2.3_alpha", "1.2.3_beta", Less),
            ("1.2.3_beta", "1.2.3_pre", Less),
            ("1.2.3_pre", "1.2.3_rc", Less),
            ("1.2.3_rc", "1.2.3", Less),
            ("1.2.3_rc1", "1.2.3", Less),
            ("1.2.3_rc1", "1.2.3_rc2", Less),
            ("1.2.3_rc10", "1.2.3_rc9", Greater),
            ("1.2.3_rc", "1.2.3_rc0", Equal),
            ("1.2.3", "1.2.3_p1", Less),
            ("1.2.3_p1", "1.2.3_p2", Less),
            ("1.2.3_p1", "1.2.4", Less),
            ("1.2.3_p1", "1.2.4_rc1", Less),
            ("1.2.3_cvs", "1.2.3_svn", Less),
            ("1.2.3_git20230101", "1.2.3_p0", Less),
            ("1.2.3_hg", "1.2.3_p", Less),
            ("9.3_p2", "9.3_p10", Less),
            // More suffixes: the next one decides.
            ("1.0_alpha1_p2", "1.0_alpha1", Greater),
            ("1.0_alpha1_rc1", "1.0_alpha1", Less),
            ("1.0_rc1_p1", "1.0_rc2", Less),
            // Releases come last; absent is -r0.
            ("1.2.3", "1.2.3-r0", Equal),
            ("1.2.3-r0", "1.2.3-r1", Less),
            ("1.2.3-r10", "1.2.3-r9", Greater),
            ("1.2.3_rc1-r5", "1.2.3_rc2", Less),
            ("1.2.3_rc1-r1", "1.2.3_rc1", Greater),
            ("1.2.3-r9", "1.2.3_p1-r0", Less),
            // Real Alpine versions.
            ("3.1.4-r5", "3.1.4-r6", Less),
            ("1.36.1-r15", "1.36.1-r29", Less),
            ("2.4.46-r1", "2.4.48-r0", Less),
            ("1.1.1t-r2", "1.1.1u-r0", Less),
            ("8.5.0-r0", "8.11.1-r0", Less),
        ];
        for (a, b, want) in table {
            let (va, vb) = (ApkVersion::parse(a).unwrap(), ApkVersion::parse(b).unwrap());
            assert_eq!(va.cmp(&vb), *want, "{a} vs {b}");
            assert_eq!(vb.cmp(&va), want.reverse(), "{b} vs {a}");
            assert_eq!(compare(a, b), *want, "compare({a}, {b})");
        }
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in [
            "",
            "a",
            "1..2",
            ".1",
            "1.",
            "1.2_foo",
            "1.2-r",
            "1.2-rx",
            "1.2ab",
            "1.2_rc1a",
            "1.2_",
            "1.2-r1-r2",
        ] {
            assert!(ApkVersion::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(compare("x.y", "1.0"), Greater);
        assert_eq!(
            ApkVersion::parse("1.2_rc1-r3").unwrap().to_string(),
            "1.2_rc1-r3"
        );
    }
}

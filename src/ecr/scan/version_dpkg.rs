//! Debian package version ordering, as dpkg orders versions (the Debian
//! Policy Manual, section 5.6.12 "Version", and deb-version(7)); what OSV's
//! `Debian` and `Ubuntu` ecosystems mean by `ECOSYSTEM` ranges.
//!
//! A version is `[epoch:]upstream_version[-debian_revision]`. Epochs compare
//! as numbers (absent is 0). The upstream version and the revision compare
//! by the same rule: alternately a run of non-digits, compared character by
//! character with letters before every other character and `~` before
//! everything, even the end of the string; then a run of digits, compared
//! as a number (absent is 0, so leading zeros do not matter). An absent
//! revision compares as `0`. So `1.0~rc1` < `1.0` < `1.0a` < `1.0+dfsg`, and
//! `1:0.1` > `2.0`.

use std::cmp::Ordering;
use std::fmt;

/// Why a string is not a Debian version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError(pub String);

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Debian version: {}", self.0)
    }
}

impl std::error::Error for VersionError {}

/// A parsed Debian version. Equality is dpkg's (`1.01` equals `1.1`).
#[derive(Debug, Clone)]
pub struct DpkgVersion {
    pub epoch: u64,
    pub upstream: String,
    /// Empty when the version has no `-revision`.
    pub revision: String,
}

impl DpkgVersion {
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(VersionError("empty".into()));
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((epoch, rest)) => {
                if epoch.is_empty() || !epoch.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(VersionError(format!("epoch of {text:?} is not a number")));
                }
                let epoch = epoch
                    .parse::<u64>()
                    .map_err(|_| VersionError(format!("epoch of {text:?} is too large")))?;
                (epoch, rest)
            }
            None => (0, text),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((upstream, revision)) => {
                if revision.is_empty() {
                    return Err(VersionError(format!("{text:?} has an empty revision")));
                }
                (upstream, revision)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(VersionError(format!("{text:?} has no upstream version")));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if !upstream.chars().all(allowed) {
            return Err(VersionError(format!(
                "upstream version of {text:?} has a character dpkg does not allow"
            )));
        }
        let revision_allowed = |c: char| c.is_ascii_alphanumeric() || ".+~".contains(c);
        if !revision.chars().all(revision_allowed) {
            return Err(VersionError(format!(
                "revision of {text:?} has a character dpkg does not allow"
            )));
        }
        Ok(DpkgVersion {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }
}

impl Ord for DpkgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}

impl PartialOrd for DpkgVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DpkgVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DpkgVersion {}

impl fmt::Display for DpkgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

/// Compares two version strings by dpkg's rule; a string that is not a
/// Debian version orders as plain text after every valid one, so a bad
/// record never panics a scan.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (DpkgVersion::parse(a), DpkgVersion::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Where a character sorts in a non-digit run: `~` first, then the end of
/// the run, then letters, then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's comparison of one upstream version or revision with another.
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit_at = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        // The non-digit run.
        while (i < a.len() && !digit_at(a, i)) || (j < b.len() && !digit_at(b, j)) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        // The digit run, as a number: skip leading zeros, then the longer
        // run is larger, else the first differing digit decides.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let start_a = i;
        while digit_at(a, i) {
            i += 1;
        }
        let start_b = j;
        while digit_at(b, j) {
            j += 1;
        }
        let (run_a, run_b) = (&a[start_a..i], &b[start_b..j]);
        let by_number = run_a.len().cmp(&run_b.len()).then_with(|| run_a.cmp(run_b));
        if by_number != Ordering::Equal {
            return by_number;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn orders_as_dpkg_does() {
        let table: &[(&str, &str, Ordering)] = &[
            // Plain numbers, and digits compared as numbers.
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("2.30", "2.3", Greater),
            ("1.01", "1.1", Equal),
            ("1.002", "1.2", Equal),
            ("10", "9", Greater),
            ("3.0.10", "3.0.8", Greater),
            // Epochs outrank everything; an absent epoch is 0.
            ("1:0.1", "2.0", Greater),
            ("0:1.0", "1.0", Equal),
            ("2:1.0", "1:9.9", Greater),
            // The tilde sorts before everything, even the end.
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~~a", Less),
            ("1.0~~a", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0a", Less),
            ("2.0~beta1", "2.0~alpha9", Greater),
            // Letters before other characters.
            ("1.0a", "1.0+", Less),
            ("1.0a", "1.0.", Less),
            ("1.0+", "1.0.", Less),
            // Repacked upstream sources.
            ("1.2.3+dfsg-1", "1.2.3-1", Greater),
            ("1.2.3+dfsg1-1", "1.2.3.1-1", Less),
            ("1.2.3+dfsg-1", "1.2.4-1", Less),
            ("2.9.14+dfsg-1.3", "2.9.14+dfsg-1.3~deb12u1", Greater),
            // Revisions: absent equals 0; Debian security and backport forms.
            ("1.0", "1.0-0", Equal),
            ("1.0", "1.0-1", Less),
            ("1.0-1ubuntu1", "1.0-1", Greater),
            ("1.0-1~bpo11+1", "1.0-1", Less),
            ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Less),
            ("3.0.11-1~deb12u2", "3.0.11-1", Less),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            // Hyphens in the upstream version: the revision is after the last.
            ("1.0-beta-2", "1.0-beta-10", Less),
            ("1.0-beta-2", "1.0-alpha-9", Greater),
        ];
        for (a, b, want) in table {
            let (va, vb) = (
                DpkgVersion::parse(a).unwrap(),
                DpkgVersion::parse(b).unwrap(),
            );
            assert_eq!(va.cmp(&vb), *want, "{a} vs {b}");
            assert_eq!(vb.cmp(&va), want.reverse(), "{b} vs {a}");
            assert_eq!(compare(a, b), *want, "compare({a}, {b})");
        }
    }

    #[test]
    fn parses_the_parts() {
        let v = DpkgVersion::parse("1:2.3-4+deb12u1").unwrap();
        assert_eq!(
            (v.epoch, v.upstream.as_str(), v.revision.as_str()),
            (1, "2.3", "4+deb12u1")
        );
        let v = DpkgVersion::parse("2.3").unwrap();
        assert_eq!((v.epoch, v.revision.as_str()), (0, ""));
        let v = DpkgVersion::parse("1:2:3-1").unwrap();
        assert_eq!(v.upstream, "2:3");
        assert_eq!(v.to_string(), "1:2:3-1");
        assert_eq!(DpkgVersion::parse("0:1.0").unwrap().to_string(), "1.0");
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in [
            "", " ", "a:1.0", ":1.0", "1.0-", "-1", "1.0 beta", "1_0", "1.0-a_b",
        ] {
            assert!(DpkgVersion::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(compare("not a version!", "1.0"), Greater);
    }
}

//! RPM package version ordering, as rpm orders versions (`rpmvercmp()` in
//! rpm's `rpmio/rpmvercmp.c`, whose behaviour rpm's test suite pins down in
//! `tests/rpmvercmp.at`; the rules are described in the Fedora Packaging
//! Guidelines, "Versioning"); what OSV's Red Hat, Rocky Linux, AlmaLinux,
//! SUSE and openSUSE ecosystems mean by `ECOSYSTEM` ranges.
//!
//! A version is `[epoch:]version[-release]`: the epoch is the digits before
//! a `:` (absent or empty is 0), the release what follows the last `-`.
//! Epochs compare as numbers; then the versions, then the releases, each by
//! `rpmvercmp`:
//!
//! - the string splits into runs of ASCII digits and runs of ASCII letters;
//!   everything else separates runs and is otherwise ignored (`1.0` = `1_0`,
//!   and non-ASCII characters count as separators);
//! - runs compare in turn: two digit runs as numbers (leading zeros do not
//!   matter), two letter runs as ASCII text, and a digit run is later than
//!   a letter run (`1.0` > `1.a`);
//! - `~` sorts before everything, even the end of the string
//!   (`1.0~rc1` < `1.0`);
//! - `^` sorts after the end of the string but before anything else
//!   (`1.0` < `1.0^git1` < `1.0.1`);
//! - when all runs compare equal, the string with runs left over is later
//!   (`1.0a` > `1.0`).
//!
//! A missing release is earlier than any release, even an empty or a
//! `~` one (`1.0` < `1.0-~1` < `1.0-1`), as rpm 4.18's `rpm.vercmp()`
//! orders whole `[epoch:]version[-release]` strings; rpm's dependency
//! matching instead lets a missing release match every release, which is
//! not an order (`1.0` would equal both `1.0-1` and `1.0-2`). Every string
//! is some rpm version, so there is no invalid case.

use std::cmp::Ordering;
use std::fmt;

/// A parsed `[epoch:]version[-release]`.
#[derive(Debug, Clone)]
pub struct RpmVersion {
    /// The epoch's digits, as written; empty when absent.
    pub epoch: String,
    pub version: String,
    pub release: Option<String>,
}

impl RpmVersion {
    /// Splits the way rpm's `parseEVR` does: leading digits followed by `:`
    /// are the epoch, and the release follows the last `-`.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = match text[digits..].strip_prefix(':') {
            Some(rest) => (&text[..digits], rest),
            None => ("", text),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((version, release)) => (version, Some(release.to_string())),
            None => (rest, None),
        };
        RpmVersion {
            epoch: epoch.to_string(),
            version: version.to_string(),
            release,
        }
    }
}

/// An absent epoch is 0.
fn epoch_or_zero(epoch: &str) -> &str {
    if epoch.is_empty() {
        "0"
    } else {
        epoch
    }
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        rpmvercmp(epoch_or_zero(&self.epoch), epoch_or_zero(&other.epoch))
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| match (&self.release, &other.release) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(a), Some(b)) => rpmvercmp(a, b),
            })
    }
}

impl PartialOrd for RpmVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for RpmVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RpmVersion {}

impl fmt::Display for RpmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.epoch.is_empty() {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.version)?;
        if let Some(release) = &self.release {
            write!(f, "-{release}")?;
        }
        Ok(())
    }
}

/// Compares two `[epoch:]version[-release]` strings as rpm does.
pub fn compare(a: &str, b: &str) -> Ordering {
    RpmVersion::parse(a).cmp(&RpmVersion::parse(b))
}

/// rpm's `rpmvercmp()`: compares one version (or release) string with
/// another.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while a.get(i).is_some_and(|&c| separator(c)) {
            i += 1;
        }
        while b.get(j).is_some_and(|&c| separator(c)) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca.is_none() && cb.is_none() {
            return Ordering::Equal;
        }
        // The tilde sorts before everything, even the end.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // The caret sorts after the end but before anything else.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (ca, cb) else {
            // One string ran out: the one with characters left is later.
            return if ca.is_none() {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        };
        // The next run of `a` decides the kind; `b`'s run is of the same
        // kind, and may be empty.
        let numeric = first.is_ascii_digit();
        let in_run = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let run_a = &a[i..i + a[i..].iter().take_while(|c| in_run(c)).count()];
        let run_b = &b[j..j + b[j..].iter().take_while(|c| in_run(c)).count()];
        i += run_a.len();
        j += run_b.len();
        if run_b.is_empty() {
            // Different kinds: a number is later than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let order = if numeric {
            let strip = |run: &[u8]| -> usize { run.iter().take_while(|&&c| c == b'0').count() };
            let (na, nb) = (&run_a[strip(run_a)..], &run_b[strip(run_b)..]);
            na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
        } else {
            run_a.cmp(run_b)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    fn ordering(n: i32) -> Ordering {
        n.cmp(&0)
    }

    #[test]
    fn agrees_with_rpms_own_test_suite() {
        // rpm's tests/rpmvercmp.at, in its order.
        let table: &[(&str, &str, i32)] = &[
            ("1.0", "1.0", 0),
            ("1.0", "2.0", -1),
            ("2.0", "1.0", 1),
            ("2.0.1", "2.0.1", 0),
            ("2.0", "2.0.1", -1),
            ("2.0.1", "2.0", 1),
            ("2.0.1a", "2.0.1a", 0),
            ("2.0.1a", "2.0.1", 1),
            ("2.0.1", "2.0.1a", -1),
            ("5.5p1", "5.5p1", 0),
            ("5.5p1", "5.5p2", -1),
            ("5.5p2", "5.5p1", 1),
            ("5.5p10", "5.5p10", 0),
            ("5.5p1", "5.5p10", -1),
            ("5.5p10", "5.5p1", 1),
            ("10xyz", "10.1xyz", -1),
            ("10.1xyz", "10xyz", 1),
            ("xyz10", "xyz10", 0),
            ("xyz10", "xyz10.1", -1),
            ("xyz10.1", "xyz10", 1),
            ("xyz.4", "xyz.4", 0),
            ("xyz.4", "8", -1),
            ("8", "xyz.4", 1),
            ("xyz.4", "2", -1),
            ("2", "xyz.4", 1),
            ("5.5p2", "5.6p1", -1),
            ("5.6p1", "5.5p2", 1),
            ("5.6p1", "6.5p1", -1),
            ("6.5p1", "5.6p1", 1),
            ("6.0.rc1", "6.0", 1),
            ("6.0", "6.0.rc1", -1),
            ("10b2", "10a1", 1),
            ("10a2", "10b2", -1),
            ("1.0aa", "1.0aa", 0),
            ("1.0a", "1.0aa", -1),
            ("1.0aa", "1.0a", 1),
            ("10.0001", "10.0001", 0),
            ("10.0001", "10.1", 0),
            ("10.1", "10.0001", 0),
            ("10.0001", "10.0039", -1),
            ("10.0039", "10.0001", 1),
            ("4.999.9", "5.0", -1),
            ("5.0", "4.999.9", 1),
            ("20101121", "20101121", 0),
            ("20101121", "20101122", -1),
            ("20101122", "20101121", 1),
            ("2_0", "2_0", 0),
            ("2.0", "2_0", 0),
            ("2_0", "2.0", 0),
            // RhBug:178798.
            ("a", "a", 0),
            ("a+", "a+", 0),
            ("a+", "a_", 0),
            ("a_", "a+", 0),
            ("+a", "+a", 0),
            ("+a", "_a", 0),
            ("_a", "+a", 0),
            ("+_", "+_", 0),
            ("_+", "+_", 0),
            ("_+", "_+", 0),
            ("+", "_", 0),
            ("_", "+", 0),
            // Tilde.
            ("1.0~rc1", "1.0~rc1", 0),
            ("1.0~rc1", "1.0", -1),
            ("1.0", "1.0~rc1", 1),
            ("1.0~rc1", "1.0~rc2", -1),
            ("1.0~rc2", "1.0~rc1", 1),
            ("1.0~rc1~git123", "1.0~rc1~git123", 0),
            ("1.0~rc1~git123", "1.0~rc1", -1),
            ("1.0~rc1", "1.0~rc1~git123", 1),
            // Caret.
            ("1.0^", "1.0^", 0),
            ("1.0^", "1.0", 1),
            ("1.0", "1.0^", -1),
            ("1.0^git1", "1.0^git1", 0),
            ("1.0^git1", "1.0", 1),
            ("1.0", "1.0^git1", -1),
            ("1.0^git1", "1.0^git2", -1),
            ("1.0^git2", "1.0^git1", 1),
            ("1.0^git1", "1.01", -1),
            ("1.01", "1.0^git1", 1),
            ("1.0^20160101", "1.0^20160101", 0),
            ("1.0^20160101", "1.0.1", -1),
            ("1.0.1", "1.0^20160101", 1),
            ("1.0^20160101^git1", "1.0^20160101^git1", 0),
            ("1.0^20160102", "1.0^20160101^git1", 1),
            ("1.0^20160101^git1", "1.0^20160102", -1),
            // Tilde and caret together.
            ("1.0~rc1^git1", "1.0~rc1^git1", 0),
            ("1.0~rc1^git1", "1.0~rc1", 1),
            ("1.0~rc1", "1.0~rc1^git1", -1),
            ("1.0^git1~pre", "1.0^git1~pre", 0),
            ("1.0^git1", "1.0^git1~pre", 1),
            ("1.0^git1~pre", "1.0^git1", -1),
            // The "oddities" the suite documents (RhBug:811992, non-ASCII).
            ("1b.fc17", "1b.fc17", 0),
            ("1b.fc17", "1.fc17", -1),
            ("1.fc17", "1b.fc17", 1),
            ("1g.fc17", "1g.fc17", 0),
            ("1g.fc17", "1.fc17", 1),
            ("1.fc17", "1g.fc17", -1),
            ("1.1.α", "1.1.α", 0),
            ("1.1.α", "1.1.β", 0),
            ("1.1.β", "1.1.α", 0),
            ("1.1.αα", "1.1.α", 0),
            ("1.1.α", "1.1.ββ", 0),
            ("1.1.ββ", "1.1.αα", 0),
        ];
        for (a, b, want) in table {
            assert_eq!(rpmvercmp(a, b), ordering(*want), "rpmvercmp({a}, {b})");
        }
    }

    #[test]
    fn orders_epoch_version_release() {
        let table: &[(&str, &str, Ordering)] = &[
            // Epochs outrank everything; absent or empty is 0.
            ("1:1.0-1", "2.0-1", Greater),
            ("0:1.0-1", "1.0-1", Equal),
            (":1.0-1", "1.0-1", Equal),
            ("2:1.0-1", "10:0.1-1", Less),
            ("01:1.0-1", "1:1.0-1", Equal),
            // Then the version, then the release.
            ("1.0-2", "1.0-10", Less),
            ("1.1-1", "1.0-99", Greater),
            ("4.18.0-348.el8", "4.18.0-348.7.1.el8_5", Less),
            ("0:4.18.0-348.7.1.el8_5", "4.18.0-348.el8", Greater),
            ("1.1.1k-7.el8_6", "1.1.1k-12.el8_9", Less),
            ("1.1.1k-7.el8_6", "1.1.1l-1.el8", Less),
            ("2.28-225.el9", "2.28-225.el9_3.1", Less),
            ("3.0.7-24.el9", "3.0.7-25.el9_3", Less),
            ("1.0~rc1-1", "1.0-1", Less),
            ("1.0-1.el9", "1.0-1.el9^1", Less),
            // A hyphen in the version: the release follows the last one.
            ("1.0-beta-2", "1.0-beta-10", Less),
            // A missing release is earlier than any release.
            ("1.0", "1.0-1", Less),
            ("1.0", "1.0", Equal),
            ("1.0", "1.0-~1", Less),
            ("1.0", "1.0-", Less),
            ("1.0-~1", "1.0-", Less),
            // A non-numeric "epoch" is part of the version.
            ("a:1.0", "a:1.0", Equal),
            ("a:1.0", "1:1.0", Less),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), *want, "compare({a}, {b})");
            assert_eq!(compare(b, a), want.reverse(), "compare({b}, {a})");
        }
    }

    #[test]
    fn parses_the_parts() {
        let v = RpmVersion::parse("1:2.3-4.el9");
        assert_eq!(
            (v.epoch.as_str(), v.version.as_str(), v.release.as_deref()),
            ("1", "2.3", Some("4.el9"))
        );
        assert_eq!(v.to_string(), "1:2.3-4.el9");
        let v = RpmVersion::parse("2.3");
        assert_eq!((v.epoch.as_str(), v.release.as_deref()), ("", None));
        let v = RpmVersion::parse("a:2.3");
        assert_eq!((v.epoch.as_str(), v.version.as_str()), ("", "a:2.3"));
        let v = RpmVersion::parse("1.0-beta-2");
        assert_eq!(
            (v.version.as_str(), v.release.as_deref()),
            ("1.0-beta", Some("2"))
        );
    }
}

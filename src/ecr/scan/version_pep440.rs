//! Python package version ordering, as PEP 440 ("Version Identification and
//! Dependency Specification", the "Version scheme" and "Normalization"
//! sections, now the PyPA "Version specifiers" specification) orders
//! versions; what OSV's `PyPI` ecosystem means by `ECOSYSTEM` ranges.
//!
//! A version is `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, read the way
//! the specification's normalization rules (and `packaging.version`) read
//! it: case-insensitive, surrounding whitespace and a leading `v` ignored,
//! `.`, `-` or `_` (or nothing) before a pre, post or dev part, `alpha`,
//! `beta`, `c`, `pre` and `preview` spelling `a`, `b`, `rc`, `rc` and `rc`,
//! `rev` and `r` spelling `post`, `1.0-1` meaning `1.0.post1`, and a missing
//! pre, post or dev number meaning 0. Ordering, field by field:
//!
//! - the epoch, as a number (absent is 0);
//! - the release numbers, with trailing zeros ignored (`1.0` = `1.0.0`);
//! - the pre-release: `a` < `b` < `rc`, then its number; a version with
//!   none sorts after its pre-releases, except that a dev release with no
//!   pre or post part (`1.0.dev1`) sorts before them;
//! - the post-release number (none sorts first);
//! - the dev number (none sorts last, so `1.0a1.dev1` < `1.0a1`);
//! - the local label (none sorts first); its `.`, `-` or `_` separated
//!   parts compare in turn, numbers as numbers and after every word, words
//!   as lowercase text; more parts win when all shared ones are equal.
//!
//! So `1.0.dev456` < `1.0a1` < `1.0a2.dev456` < `1.0a12` < `1.0b2.post345`
//! < `1.0rc1` < `1.0` < `1.0+abc.5` < `1.0+5` < `1.0.post456.dev34` <
//! `1.0.post456` < `1.0.15` < `1.1.dev1`.
//!
//! A string that is not a PEP 440 version (the pre-PEP 440 "legacy"
//! versions such as `2004d` or `1.0-beta-final`) orders after every valid
//! version, and two such strings order as plain text, so the order stays
//! total and a bad record never panics a scan.

use std::cmp::Ordering;
use std::fmt;

/// Why a string is not a PEP 440 version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError(pub String);

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid PEP 440 version: {}", self.0)
    }
}

impl std::error::Error for VersionError {}

/// A run of digits, compared as a number of any size.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Number(String);

impl Number {
    fn new(digits: &str) -> Self {
        let trimmed = digits.trim_start_matches('0');
        Number(trimmed.to_string())
    }

    fn zero() -> Self {
        Number(String::new())
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("0")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// A pre-release phase, in its normalized spelling; declared in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PreKind {
    Alpha,
    Beta,
    Rc,
}

impl PreKind {
    fn as_str(self) -> &'static str {
        match self {
            PreKind::Alpha => "a",
            PreKind::Beta => "b",
            PreKind::Rc => "rc",
        }
    }
}

/// One part of a local version label.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LocalPart {
    Word(String),
    Number(Number),
}

impl Ord for LocalPart {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (LocalPart::Word(a), LocalPart::Word(b)) => a.cmp(b),
            (LocalPart::Number(a), LocalPart::Number(b)) => a.cmp(b),
            // Words sort before numbers (PEP 440, "Local version
            // identifiers").
            (LocalPart::Word(_), LocalPart::Number(_)) => Ordering::Less,
            (LocalPart::Number(_), LocalPart::Word(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for LocalPart {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A parsed PEP 440 version. Equality is PEP 440's (`1.0` equals `1.0.0`,
/// `1.0alpha1` equals `1.0a1`).
#[derive(Debug, Clone)]
pub struct Pep440Version {
    epoch: Number,
    release: Vec<Number>,
    pre: Option<(PreKind, Number)>,
    post: Option<Number>,
    dev: Option<Number>,
    local: Vec<LocalPart>,
}

/// A cursor over the lowercased text.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn done(&self) -> bool {
        self.at >= self.text.len()
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_separator(&mut self) -> bool {
        matches!(self.peek(), Some(b'.' | b'-' | b'_')) && {
            self.at += 1;
            true
        }
    }

    fn digits(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        self.at += len;
        Some(&rest[..len])
    }

    /// The first of `words` the text continues with; list longer spellings
    /// before their prefixes.
    fn word<T: Copy>(&mut self, words: &[(&str, T)]) -> Option<T> {
        let rest = self.rest();
        let (word, value) = words.iter().find(|(w, _)| rest.starts_with(w))?;
        self.at += word.len();
        Some(*value)
    }

    /// `[-_.]?label[-_.]?N?`, the shape of a pre, post or dev part; the
    /// cursor does not move when the part is absent.
    fn labelled<T: Copy>(&mut self, words: &[(&str, T)]) -> Option<(T, Number)> {
        let start = self.at;
        self.eat_separator();
        let Some(label) = self.word(words) else {
            self.at = start;
            return None;
        };
        // The separator after the label is taken even when no number
        // follows (`1.0a.` is `1.0a0`), as the specification's grammar
        // takes it; every later part's own separator is optional.
        self.eat_separator();
        let number = self.digits().map_or_else(Number::zero, Number::new);
        Some((label, number))
    }
}

const PRE_WORDS: &[(&str, PreKind)] = &[
    ("alpha", PreKind::Alpha),
    ("a", PreKind::Alpha),
    ("beta", PreKind::Beta),
    ("b", PreKind::Beta),
    ("preview", PreKind::Rc),
    ("pre", PreKind::Rc),
    ("rc", PreKind::Rc),
    ("c", PreKind::Rc),
];

const POST_WORDS: &[(&str, ())] = &[("post", ()), ("rev", ()), ("r", ())];

const DEV_WORDS: &[(&str, ())] = &[("dev", ())];

impl Pep440Version {
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let bad = |why: &str| VersionError(format!("{text:?}: {why}"));
        let lower = text.trim().to_ascii_lowercase();
        let mut cur = Cursor {
            text: &lower,
            at: 0,
        };
        cur.eat(b'v');

        // The epoch and the release numbers.
        let first = cur.digits().ok_or_else(|| bad("no release number"))?;
        let (epoch, first) = if cur.eat(b'!') {
            let release = cur
                .digits()
                .ok_or_else(|| bad("no release number after the epoch"))?;
            (Number::new(first), release)
        } else {
            (Number::zero(), first)
        };
        let mut release = vec![Number::new(first)];
        while cur.peek() == Some(b'.')
            && cur
                .text
                .as_bytes()
                .get(cur.at + 1)
                .is_some_and(u8::is_ascii_digit)
        {
            cur.at += 1;
            if let Some(digits) = cur.digits() {
                release.push(Number::new(digits));
            }
        }

        let pre = cur.labelled(PRE_WORDS);

        // `-N` is a post-release; otherwise `[-_.]?(post|rev|r)[-_.]?N?`.
        let post = {
            let start = cur.at;
            let implicit = if cur.eat(b'-') { cur.digits() } else { None };
            match implicit {
                Some(digits) => Some(Number::new(digits)),
                None => {
                    cur.at = start;
                    cur.labelled(POST_WORDS).map(|((), n)| n)
                }
            }
        };

        let dev = cur.labelled(DEV_WORDS).map(|((), n)| n);

        let mut local = Vec::new();
        if cur.eat(b'+') {
            let label = cur.rest();
            for part in label.split(['.', '-', '_']) {
                if part.is_empty() || !part.bytes().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(bad("malformed local version label"));
                }
                local.push(if part.bytes().all(|c| c.is_ascii_digit()) {
                    LocalPart::Number(Number::new(part))
                } else {
                    LocalPart::Word(part.to_string())
                });
            }
            cur.at = cur.text.len();
        }

        if !cur.done() {
            return Err(bad(&format!("unexpected {:?}", cur.rest())));
        }
        Ok(Pep440Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// The release numbers without trailing zeros, which do not count.
    fn significant_release(&self) -> &[Number] {
        let keep = self
            .release
            .iter()
            .rposition(|n| !n.is_zero())
            .map_or(0, |i| i + 1);
        &self.release[..keep]
    }

    /// Where the pre-release part sorts: before everything for a bare dev
    /// release, after every pre-release when there is none.
    fn pre_key(&self) -> (u8, Option<&(PreKind, Number)>) {
        match &self.pre {
            Some(pre) => (1, Some(pre)),
            None if self.post.is_none() && self.dev.is_some() => (0, None),
            None => (2, None),
        }
    }
}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.significant_release().cmp(other.significant_release()))
            .then_with(|| self.pre_key().cmp(&other.pre_key()))
            // `None` sorts before `Some`: no post-release is earliest.
            .then_with(|| self.post.cmp(&other.post))
            // No dev part sorts after every dev release.
            .then_with(|| match (&self.dev, &other.dev) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
            // An empty label (no local part) sorts first.
            .then_with(|| self.local.cmp(&other.local))
    }
}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pep440Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440Version {}

/// The normalized form (`1.0alpha1-1` is `1.0a1.post1`).
impl fmt::Display for Pep440Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.epoch.is_zero() {
            write!(f, "{}!", self.epoch)?;
        }
        for (i, n) in self.release.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        if let Some((kind, n)) = &self.pre {
            write!(f, "{}{n}", kind.as_str())?;
        }
        if let Some(n) = &self.post {
            write!(f, ".post{n}")?;
        }
        if let Some(n) = &self.dev {
            write!(f, ".dev{n}")?;
        }
        for (i, part) in self.local.iter().enumerate() {
            f.write_str(if i == 0 { "+" } else { "." })?;
            match part {
                LocalPart::Word(w) => f.write_str(w)?,
                LocalPart::Number(n) => write!(f, "{n}")?,
            }
        }
        Ok(())
    }
}

/// Compares two version strings by PEP 440; a string that is not a PEP 440
/// version orders as plain text after every valid one.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (Pep440Version::parse(a), Pep440Version::parse(b)) {
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
    fn orders_the_specifications_example_chain() {
        // PEP 440, "Summary of permitted suffixes and relative ordering".
        let chain = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        for (i, a) in chain.iter().enumerate() {
            for (j, b) in chain.iter().enumerate() {
                assert_eq!(compare(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn orders_as_pep_440_does() {
        let table: &[(&str, &str, Ordering)] = &[
            // Release numbers: padding with zeros, numbers as numbers.
            ("1.0", "1.0.0", Equal),
            ("1", "1.0.0.0", Equal),
            ("1.10", "1.9", Greater),
            ("1.01", "1.1", Equal),
            ("2.0", "10.0", Less),
            ("1.0.1", "1.0", Greater),
            // Epochs outrank everything.
            ("1!1.0", "2.0", Greater),
            ("0!1.0", "1.0", Equal),
            ("2!0.1", "1!9.9", Greater),
            // Alternate spellings and separators normalize.
            ("1.0alpha1", "1.0a1", Equal),
            ("1.0-ALPHA.1", "1.0a1", Equal),
            ("1.0beta2", "1.0b2", Equal),
            ("1.0c1", "1.0rc1", Equal),
            ("1.0pre1", "1.0rc1", Equal),
            ("1.0preview1", "1.0rc1", Equal),
            ("1.0.rc.1", "1.0rc1", Equal),
            ("1.0a", "1.0a0", Equal),
            ("1.0-1", "1.0.post1", Equal),
            ("1.0rev1", "1.0.post1", Equal),
            ("1.0-r1", "1.0.post1", Equal),
            ("1.0_post_1", "1.0.post1", Equal),
            ("1.0.post", "1.0.post0", Equal),
            ("1.0-dev", "1.0.dev0", Equal),
            ("1.0a.", "1.0a0", Equal),
            ("2.r.", "2.post0", Equal),
            ("2.0_a2-post-", "2.0a2.post0", Equal),
            ("1.0DEV2", "1.0.dev2", Equal),
            ("v1.0", "1.0", Equal),
            ("  1.0\n", "1.0", Equal),
            ("1.0+Ubuntu-1", "1.0+ubuntu.1", Equal),
            // Pre-releases, dev releases and post-releases.
            ("1.0a1", "1.0b1", Less),
            ("1.0b1", "1.0rc1", Less),
            ("1.0rc1", "1.0", Less),
            ("1.0a2", "1.0a10", Less),
            ("1.0.dev1", "1.0a1", Less),
            ("1.0.dev1", "1.0.dev2", Less),
            ("1.0.post1.dev1", "1.0.post1", Less),
            ("1.0.post1.dev1", "1.0", Greater),
            ("1.0", "1.0.post0", Less),
            ("1.0a1.post1", "1.0a2", Less),
            ("1.0a1.post1", "1.0a1", Greater),
            ("1.0rc1", "1.0.dev1", Greater),
            // Local labels: none first, words before numbers, longer wins.
            ("1.0", "1.0+local", Less),
            ("1.0+abc", "1.0+abd", Less),
            ("1.0+abc", "1.0+1", Less),
            ("1.0+1", "1.0+01", Equal),
            ("1.0+2", "1.0+10", Less),
            ("1.0+abc", "1.0+abc.1", Less),
            ("1.0+cpu", "1.0.post1", Less),
            // Big numbers do not overflow.
            (
                "1.99999999999999999999999",
                "1.100000000000000000000000",
                Less,
            ),
            // Invalid versions sort after valid ones, then as text.
            ("1.0", "not-a-version", Less),
            ("2004d", "1.0", Greater),
            ("1.0-beta-final", "1.0-beta-final", Equal),
            ("abc", "abd", Less),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), *want, "compare({a}, {b})");
            assert_eq!(compare(b, a), want.reverse(), "compare({b}, {a})");
        }
    }

    #[test]
    fn normalizes_when_displayed() {
        for (text, normal) in [
            ("1.0", "1.0"),
            ("v1.0ALPHA-1", "1.0a1"),
            ("1!2.0c3-4.DEV", "1!2.0rc3.post4.dev0"),
            ("1.0_r_2", "1.0.post2"),
            ("1.0+Local-Label_1", "1.0+local.label.1"),
            ("01.002", "1.2"),
        ] {
            assert_eq!(
                Pep440Version::parse(text).unwrap().to_string(),
                normal,
                "{text}"
            );
        }
        assert!(Pep440Version::parse("1.0a1").unwrap().is_prerelease());
        assert!(Pep440Version::parse("1.0.dev0").unwrap().is_prerelease());
        assert!(!Pep440Version::parse("1.0.post1").unwrap().is_prerelease());
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in [
            "",
            "v",
            "1.",
            ".1",
            "1.0-",
            "1.0.",
            "1!",
            "!1.0",
            "1.0+",
            "1.0+a..b",
            "1.0+a!",
            "1.0a1b1",
            "1.0.post1.post2",
            "1.0 beta",
            "1.0-beta-final",
            "2004d",
            "1.0~rc1",
        ] {
            assert!(Pep440Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}

//! Wildcard matching the way IAM policies use it: `*` stands for any run of
//! characters (also none), `?` for exactly one character, and nothing else
//! is special (IAM has no escapes and no character classes).
//!
//! Used by `Action`/`NotAction` (case-insensitive), `Resource`/`NotResource`
//! and `StringLike` (case-sensitive), and `ArnLike`/`ArnEquals` (per ARN
//! component); see the IAM User Guide, "IAM JSON policy elements: Action",
//! "... Resource" and "IAM JSON policy elements: Condition operators".
//!
//! Matching never allocates: it walks both strings once, remembering only
//! the last `*` to backtrack to, so it is linear in practice and cheap
//! enough to run on every request.

/// Whether `text` matches `pattern`, comparing characters exactly.
pub fn matches(pattern: &str, text: &str) -> bool {
    matches_with(pattern, text, |a, b| a == b)
}

/// Whether `text` matches `pattern`, ignoring case (Unicode lowercase).
pub fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    matches_with(pattern, text, chars_equal_ignoring_case)
}

/// Whether a policy string contains a wildcard at all.
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Whole-string equality ignoring case, without allocating.
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// `ArnLike`/`ArnEquals`: the six `:`-separated components of an ARN are
/// matched one by one, so a wildcard never spans a `:` except inside the
/// last (resource) component, which may itself hold `:` and `/`.
///
/// A policy value that is not an ARN at all (for example a bare `*`) is
/// matched against the whole value instead; an ARN with the wrong number of
/// components matches nothing.
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    if !pattern.starts_with("arn:") {
        return matches(pattern, arn);
    }
    let mut wanted = pattern.splitn(6, ':');
    let mut given = arn.splitn(6, ':');
    loop {
        match (wanted.next(), given.next()) {
            (Some(w), Some(g)) if matches(w, g) => continue,
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn chars_equal_ignoring_case(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

/// The classic greedy matcher with single-star backtracking, over byte
/// offsets that always sit on character boundaries.
fn matches_with(pattern: &str, text: &str, same: impl Fn(char, char) -> bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where to resume after the most recent `*`: the pattern just past it,
    // and the text position that `*` has swallowed up to.
    let mut resume: Option<(usize, usize)> = None;
    while let Some(tc) = text[t..].chars().next() {
        match pattern[p..].chars().next() {
            Some('*') => {
                p += 1;
                resume = Some((p, t));
                continue;
            }
            Some(pc) if pc == '?' || same(pc, tc) => {
                p += pc.len_utf8();
                t += tc.len_utf8();
                continue;
            }
            _ => {}
        }
        match resume {
            Some((after_star, swallowed)) => {
                // Let the last `*` take one more character and retry.
                let next = swallowed + text[swallowed..].chars().next().map_or(1, char::len_utf8);
                resume = Some((after_star, next));
                p = after_star;
                t = next;
            }
            None => return false,
        }
    }
    pattern[p..].chars().all(|c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        // (pattern, text, case-sensitive result, case-insensitive result)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("*", "", true, true),
            ("*", "anything at all", true, true),
            ("", "", true, true),
            ("", "x", false, false),
            ("abc", "abc", true, true),
            ("abc", "ABC", false, true),
            ("a?c", "abc", true, true),
            ("a?c", "ac", false, false),
            ("a?c", "aXYc", false, false),
            ("a*c", "ac", true, true),
            ("a*c", "abbbc", true, true),
            ("a*c", "abbbd", false, false),
            ("*log*", "arn:aws:s3:::bucket-logs", true, true),
            ("ecr:Describe*", "ecr:DescribeImages", true, true),
            ("ecr:describe*", "ecr:DescribeImages", false, true),
            ("ecr:*Image", "ecr:BatchGetImage", true, true),
            ("ecr:*Image", "ecr:BatchGetImages", false, false),
            ("ecr:Get*Url*", "ecr:GetDownloadUrlForLayer", true, true),
            ("a*b*c", "aXbYbZc", true, true),
            ("a*b*c", "aXbYbZ", false, false),
            ("**a", "bba", true, true),
            ("?", "é", true, true),
            ("É*", "école", false, true),
            ("repository/prod/*", "repository/prod/api", true, true),
            ("repository/prod/*", "repository/dev/api", false, false),
        ];
        for &(pattern, text, exact, folded) in cases {
            assert_eq!(matches(pattern, text), exact, "{pattern} ~ {text}");
            assert_eq!(
                matches_ignore_case(pattern, text),
                folded,
                "{pattern} ~i {text}"
            );
        }
    }

    #[test]
    fn arn_components_are_matched_separately() {
        let cases: &[(&str, &str, bool)] = &[
            (
                "arn:aws:ecr:us-east-1:111111111111:repository/app",
                "arn:aws:ecr:us-east-1:111111111111:repository/app",
                true,
            ),
            (
                "arn:aws:ecr:*:111111111111:repository/*",
                "arn:aws:ecr:eu-west-1:111111111111:repository/team/app",
                true,
            ),
            // A `*` in the region cannot swallow the account component.
            (
                "arn:aws:ecr:*:repository/app",
                "arn:aws:ecr:us-east-1:111111111111:repository/app",
                false,
            ),
            (
                "arn:aws:ecr:us-*:111111111111:*",
                "arn:aws:ecr:us-east-1:222222222222:repository/app",
                false,
            ),
            // The last component may hold `:` and `/`.
            (
                "arn:aws:lambda:us-east-1:111111111111:function:*",
                "arn:aws:lambda:us-east-1:111111111111:function:my-fn:live",
                true,
            ),
            (
                "arn:aws:iam::*:role/ci-*",
                "arn:aws:iam::111111111111:role/ci-build",
                true,
            ),
            (
                "arn:aws:iam::*:role/ci-*",
                "arn:aws:iam::111111111111:user/ci-build",
                false,
            ),
            // Case matters for ARNs.
            (
                "arn:aws:iam::*:role/CI",
                "arn:aws:iam::111111111111:role/ci",
                false,
            ),
            // Not an ARN at all.
            ("arn:aws:iam::*:role/ci", "ci", false),
            ("*", "not-an-arn", true),
        ];
        for &(pattern, arn, expected) in cases {
            assert_eq!(arn_matches(pattern, arn), expected, "{pattern} ~ {arn}");
        }
    }

    #[test]
    fn helpers() {
        assert!(has_wildcard("ecr:*"));
        assert!(has_wildcard("a?"));
        assert!(!has_wildcard("ecr:GetAuthorizationToken"));
        assert!(eq_ignore_case("StringEquals", "stringequals"));
        assert!(eq_ignore_case("Ärger", "äRGER"));
        assert!(!eq_ignore_case("a", "ab"));
    }
}

//! CVSS base scores, computed from the vector (never copied from a record),
//! and ECR's severity names.
//!
//! - CVSS v2.0: the base equation of "A Complete Guide to the Common
//!   Vulnerability Scoring System Version 2.0" (FIRST, section 3.2.1),
//!   rounded to one decimal.
//! - CVSS v3.0 and v3.1: the base equations of the v3.0 and v3.1
//!   specification documents (FIRST, section 7.1 / 8.1), scope unchanged and
//!   changed. The two differ only in `Roundup`: v3.0's is the plain
//!   "smallest one-decimal number not below the input", v3.1's (Appendix A)
//!   works on the input times 100,000 as an integer so that floating-point
//!   noise (`4.000000000000001`) does not round up a whole tenth.
//! - CVSS v4.0: the MacroVector scoring of the v4.0 specification document
//!   (FIRST, section 8): the vector's six equivalence classes EQ1-EQ6 select
//!   a MacroVector whose score is looked up in the table published with the
//!   specification (the FIRST / Red Hat reference calculator's
//!   `cvss_lookup.js`), then lowered by the mean proportional severity
//!   distance of the vector from that MacroVector's highest-severity
//!   vectors, as the reference calculator's `cvss_score.js` computes it,
//!   rounded half up to one decimal (with its 10⁻⁶ lift against
//!   floating-point ties).
//!
//! A vector's threat/temporal and environmental (and, for v4.0,
//! supplemental) metrics are accepted and their values checked, but the
//! score returned is always the base score: for v4.0 the CVSS-B score,
//! computed from the base metrics alone.

use serde::{Deserialize, Serialize};

/// A CVSS version a vector names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CvssVersion {
    V2,
    V3_0,
    V3_1,
    V4_0,
}

impl CvssVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            CvssVersion::V2 => "2.0",
            CvssVersion::V3_0 => "3.0",
            CvssVersion::V3_1 => "3.1",
            CvssVersion::V4_0 => "4.0",
        }
    }
}

/// A scored vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvssScore {
    pub version: CvssVersion,
    /// The base score, 0.0 to 10.0, one decimal.
    pub base_score: f64,
    /// The vector as given, without surrounding whitespace or parentheses.
    pub vector: String,
}

/// Parses and scores a vector: `CVSS:3.1/...`, `CVSS:3.0/...`,
/// `CVSS:4.0/...`, or a v2 vector, bare (`AV:N/AC:L/Au:N/C:P/I:P/A:P`, as
/// NVD writes them), in parentheses, or after `CVSS:2.0/`. `None` when the
/// vector is not valid: an unknown prefix or metric, a value the metric
/// does not have, a metric given twice, or a base metric missing.
pub fn score(vector: &str) -> Option<CvssScore> {
    let mut text = vector.trim();
    if let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        text = inner.trim();
    }
    let (version, base_score) = if let Some(body) = text.strip_prefix("CVSS:3.1/") {
        (CvssVersion::V3_1, v3::score(body, CvssVersion::V3_1)?)
    } else if let Some(body) = text.strip_prefix("CVSS:3.0/") {
        (CvssVersion::V3_0, v3::score(body, CvssVersion::V3_0)?)
    } else if let Some(body) = text.strip_prefix("CVSS:4.0/") {
        (CvssVersion::V4_0, v4::score(body)?)
    } else if let Some(body) = text.strip_prefix("CVSS:2.0/") {
        (CvssVersion::V2, v2::score(body)?)
    } else if text.starts_with("CVSS:") {
        return None;
    } else {
        (CvssVersion::V2, v2::score(text)?)
    };
    Some(CvssScore {
        version,
        base_score,
        vector: text.to_string(),
    })
}

/// ECR's severity names (`findingSeverityCounts`, `severity` of a
/// finding), most severe last but for `Undefined`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
    Undefined,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "INFORMATIONAL",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
            Severity::Undefined => "UNDEFINED",
        }
    }

    /// The rating a score has: v3.x and v4.0 use their specifications'
    /// qualitative scale (0.0 None, shown as `Informational`; 0.1-3.9 Low;
    /// 4.0-6.9 Medium; 7.0-8.9 High; 9.0-10.0 Critical), v2 NVD's (0.0-3.9
    /// Low, 4.0-6.9 Medium, 7.0-10.0 High). A score outside 0-10 (or NaN)
    /// is `Undefined`.
    pub fn from_score(version: CvssVersion, score: f64) -> Severity {
        if !(0.0..=10.0).contains(&score) {
            return Severity::Undefined;
        }
        match version {
            CvssVersion::V2 => {
                if score < 4.0 {
                    Severity::Low
                } else if score < 7.0 {
                    Severity::Medium
                } else {
                    Severity::High
                }
            }
            CvssVersion::V3_0 | CvssVersion::V3_1 | CvssVersion::V4_0 => {
                if score == 0.0 {
                    Severity::Informational
                } else if score < 4.0 {
                    Severity::Low
                } else if score < 7.0 {
                    Severity::Medium
                } else if score < 9.0 {
                    Severity::High
                } else {
                    Severity::Critical
                }
            }
        }
    }

    /// The rating a vendor's word names, case-insensitive: `critical`;
    /// `high` or `important`; `medium` or `moderate`; `low`; `negligible`,
    /// `unimportant`, `informational` or `none` as `Informational`;
    /// anything else (`unknown`, `not yet assigned`, empty) `Undefined`.
    pub fn from_name(name: &str) -> Severity {
        match name.trim().to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" | "unimportant" | "informational" | "none" => Severity::Informational,
            _ => Severity::Undefined,
        }
    }
}

/// The metrics of a vector body (`AV:N/AC:L/...`), checked against the
/// metrics a version defines.
struct Metrics<'a> {
    values: Vec<(&'a str, &'a str)>,
}

/// A metric a version defines, and the values it may take.
type Definition = (&'static str, &'static [&'static str]);

impl<'a> Metrics<'a> {
    /// `None` for an empty part, an unknown metric or value, a repeated
    /// metric, or a missing one of the first `mandatory` definitions.
    fn parse(body: &'a str, defined: &[Definition], mandatory: usize) -> Option<Self> {
        let mut values: Vec<(&'a str, &'a str)> = Vec::new();
        for part in body.split('/') {
            let (name, value) = part.split_once(':')?;
            let (_, allowed) = defined.iter().find(|(n, _)| *n == name)?;
            if !allowed.contains(&value) || values.iter().any(|(n, _)| *n == name) {
                return None;
            }
            values.push((name, value));
        }
        let metrics = Metrics { values };
        if defined
            .iter()
            .take(mandatory)
            .any(|(name, _)| metrics.get(name).is_none())
        {
            return None;
        }
        Some(metrics)
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// A mandatory metric's value (parse checked it is there).
    fn base(&self, name: &str) -> &'a str {
        self.get(name).unwrap_or_default()
    }
}

mod v2 {
    use super::{Definition, Metrics};

    const METRICS: &[Definition] = &[
        ("AV", &["L", "A", "N"]),
        ("AC", &["H", "M", "L"]),
        ("Au", &["M", "S", "N"]),
        ("C", &["N", "P", "C"]),
        ("I", &["N", "P", "C"]),
        ("A", &["N", "P", "C"]),
        // Temporal.
        ("E", &["U", "POC", "F", "H", "ND"]),
        ("RL", &["OF", "TF", "W", "U", "ND"]),
        ("RC", &["UC", "UR", "C", "ND"]),
        // Environmental.
        ("CDP", &["N", "L", "LM", "MH", "H", "ND"]),
        ("TD", &["N", "L", "M", "H", "ND"]),
        ("CR", &["L", "M", "H", "ND"]),
        ("IR", &["L", "M", "H", "ND"]),
        ("AR", &["L", "M", "H", "ND"]),
    ];

    fn impact(value: &str) -> f64 {
        match value {
            "P" => 0.275,
            "C" => 0.660,
            _ => 0.0,
        }
    }

    /// The v2 base score (guide section 3.2.1).
    pub(super) fn score(body: &str) -> Option<f64> {
        let m = Metrics::parse(body, METRICS, 6)?;
        let access_vector = match m.base("AV") {
            "L" => 0.395,
            "A" => 0.646,
            _ => 1.0,
        };
        let access_complexity = match m.base("AC") {
            "H" => 0.35,
            "M" => 0.61,
            _ => 0.71,
        };
        let authentication = match m.base("Au") {
            "M" => 0.45,
            "S" => 0.56,
            _ => 0.704,
        };
        let (c, i, a) = (
            impact(m.base("C")),
            impact(m.base("I")),
            impact(m.base("A")),
        );
        let impact = 10.41 * (1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a));
        if impact == 0.0 {
            return Some(0.0);
        }
        let exploitability = 20.0 * access_vector * access_complexity * authentication;
        let base = (0.6 * impact + 0.4 * exploitability - 1.5) * 1.176;
        Some((base * 10.0).round() / 10.0)
    }
}

mod v3 {
    use super::{CvssVersion, Definition, Metrics};

    const METRICS: &[Definition] = &[
        ("AV", &["N", "A", "L", "P"]),
        ("AC", &["L", "H"]),
        ("PR", &["N", "L", "H"]),
        ("UI", &["N", "R"]),
        ("S", &["U", "C"]),
        ("C", &["H", "L", "N"]),
        ("I", &["H", "L", "N"]),
        ("A", &["H", "L", "N"]),
        // Temporal.
        ("E", &["X", "U", "P", "F", "H"]),
        ("RL", &["X", "O", "T", "W", "U"]),
        ("RC", &["X", "U", "R", "C"]),
        // Environmental.
        ("CR", &["X", "L", "M", "H"]),
        ("IR", &["X", "L", "M", "H"]),
        ("AR", &["X", "L", "M", "H"]),
        ("MAV", &["X", "N", "A", "L", "P"]),
        ("MAC", &["X", "L", "H"]),
        ("MPR", &["X", "N", "L", "H"]),
        ("MUI", &["X", "N", "R"]),
        ("MS", &["X", "U", "C"]),
        ("MC", &["X", "N", "L", "H"]),
        ("MI", &["X", "N", "L", "H"]),
        ("MA", &["X", "N", "L", "H"]),
    ];

    /// v3.1's Roundup (specification Appendix A).
    pub(super) fn roundup_v31(input: f64) -> f64 {
        let int_input = (input * 100_000.0).round() as i64;
        if int_input % 10_000 == 0 {
            int_input as f64 / 100_000.0
        } else {
            ((int_input / 10_000) as f64 + 1.0) / 10.0
        }
    }

    /// v3.0's Round up: the smallest one-decimal number not below the input.
    pub(super) fn roundup_v30(input: f64) -> f64 {
        (input * 10.0).ceil() / 10.0
    }

    fn impact(value: &str) -> f64 {
        match value {
            "H" => 0.56,
            "L" => 0.22,
            _ => 0.0,
        }
    }

    /// The v3.x base score (specification section 7.1 in v3.1).
    pub(super) fn score(body: &str, version: CvssVersion) -> Option<f64> {
        let m = Metrics::parse(body, METRICS, 8)?;
        let changed = m.base("S") == "C";
        let attack_vector = match m.base("AV") {
            "N" => 0.85,
            "A" => 0.62,
            "L" => 0.55,
            _ => 0.2,
        };
        let attack_complexity = if m.base("AC") == "L" { 0.77 } else { 0.44 };
        let privileges = match (m.base("PR"), changed) {
            ("N", _) => 0.85,
            ("L", false) => 0.62,
            ("L", true) => 0.68,
            (_, false) => 0.27,
            (_, true) => 0.5,
        };
        let user_interaction = if m.base("UI") == "N" { 0.85 } else { 0.62 };
        let (c, i, a) = (
            impact(m.base("C")),
            impact(m.base("I")),
            impact(m.base("A")),
        );
        let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
        let impact = if changed {
            7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
        } else {
            6.42 * iss
        };
        if impact <= 0.0 {
            return Some(0.0);
        }
        let exploitability =
            8.22 * attack_vector * attack_complexity * privileges * user_interaction;
        let raw = if changed {
            (1.08 * (impact + exploitability)).min(10.0)
        } else {
            (impact + exploitability).min(10.0)
        };
        Some(match version {
            CvssVersion::V3_0 => roundup_v30(raw),
            _ => roundup_v31(raw),
        })
    }
}

mod v4 {
    use super::{Definition, Metrics};

    const METRICS: &[Definition] = &[
        ("AV", &["N", "A", "L", "P"]),
        ("AC", &["L", "H"]),
        ("AT", &["N", "P"]),
        ("PR", &["N", "L", "H"]),
        ("UI", &["N", "P", "A"]),
        ("VC", &["H", "L", "N"]),
        ("VI", &["H", "L", "N"]),
        ("VA", &["H", "L", "N"]),
        ("SC", &["H", "L", "N"]),
        ("SI", &["H", "L", "N"]),
        ("SA", &["H", "L", "N"]),
        // Threat.
        ("E", &["X", "A", "P", "U"]),
        // Environmental.
        ("CR", &["X", "H", "M", "L"]),
        ("IR", &["X", "H", "M", "L"]),
        ("AR", &["X", "H", "M", "L"]),
        ("MAV", &["X", "N", "A", "L", "P"]),
        ("MAC", &["X", "L", "H"]),
        ("MAT", &["X", "N", "P"]),
        ("MPR", &["X", "N", "L", "H"]),
        ("MUI", &["X", "N", "P", "A"]),
        ("MVC", &["X", "H", "L", "N"]),
        ("MVI", &["X", "H", "L", "N"]),
        ("MVA", &["X", "H", "L", "N"]),
        ("MSC", &["X", "H", "L", "N"]),
        ("MSI", &["X", "S", "H", "L", "N"]),
        ("MSA", &["X", "S", "H", "L", "N"]),
        // Supplemental.
        ("S", &["X", "N", "P"]),
        ("AU", &["X", "N", "Y"]),
        ("R", &["X", "A", "U", "I"]),
        ("V", &["X", "D", "C"]),
        ("RE", &["X", "L", "M", "H"]),
        ("U", &["X", "Clear", "Green", "Amber", "Red"]),
    ];

    /// The score of each MacroVector (EQ1..EQ6 digits), as published with
    /// the specification (the reference calculator's `cvss_lookup.js`).
    const LOOKUP: &[(&str, f64)] = &[
        ("000000", 10.0),
        ("000001", 9.9),
        ("000010", 9.8),
        ("000011", 9.5),
        ("000020", 9.5),
        ("000021", 9.2),
        ("000100", 10.0),
        ("000101", 9.6),
        ("000110", 9.3),
        ("000111", 8.7),
        ("000120", 9.1),
        ("000121", 8.1),
        ("000200", 9.3),
        ("000201", 9.0),
        ("000210", 8.9),
        ("000211", 8.0),
        ("000220", 8.1),
        ("000221", 6.8),
        ("001000", 9.8),
        ("001001", 9.5),
        ("001010", 9.5),
        ("001011", 9.2),
        ("001020", 9.0),
        ("001021", 8.4),
        ("001100", 9.3),
        ("001101", 9.2),
        ("001110", 8.9),
        ("001111", 8.1),
        ("001120", 8.1),
        ("001121", 6.5),
        ("001200", 8.8),
        ("001201", 8.0),
        ("001210", 7.8),
        ("001211", 7.0),
        ("001220", 6.9),
        ("001221", 4.8),
        ("002001", 9.2),
        ("002011", 8.2),
        ("002021", 7.2),
        ("002101", 7.9),
        ("002111", 6.9),
        ("002121", 5.0),
        ("002201", 6.9),
        ("002211", 5.5),
        ("002221", 2.7),
        ("010000", 9.9),
        ("010001", 9.7),
        ("010010", 9.5),
        ("010011", 9.2),
        ("010020", 9.2),
        ("010021", 8.5),
        ("010100", 9.5),
        ("010101", 9.1),
        ("010110", 9.0),
        ("010111", 8.3),
        ("010120", 8.4),
        ("010121", 7.1),
        ("010200", 9.2),
        ("010201", 8.1),
        ("010210", 8.2),
        ("010211", 7.1),
        ("010220", 7.2),
        ("010221", 5.3),
        ("011000", 9.5),
        ("011001", 9.3),
        ("011010", 9.2),
        ("011011", 8.5),
        ("011020", 8.5),
        ("011021", 7.3),
        ("011100", 9.2),
        ("011101", 8.2),
        ("011110", 8.0),
        ("011111", 7.2),
        ("011120", 7.0),
        ("011121", 5.9),
        ("011200", 8.4),
        ("011201", 7.0),
        ("011210", 7.1),
        ("011211", 5.2),
        ("011220", 5.0),
        ("011221", 3.0),
        ("012001", 8.6),
        ("012011", 7.5),
        ("012021", 5.2),
        ("012101", 7.1),
        ("012111", 5.2),
        ("012121", 2.9),
        ("012201", 6.3),
        ("012211", 2.9),
        ("012221", 1.7),
        ("100000", 9.8),
        ("100001", 9.5),
        ("100010", 9.4),
        ("100011", 8.7),
        ("100020", 9.1),
        ("100021", 8.1),
        ("100100", 9.4),
        ("100101", 8.9),
        ("100110", 8.6),
        ("100111", 7.4),
        ("100120", 7.7),
        ("100121", 6.4),
        ("100200", 8.7),
        ("100201", 7.5),
        ("100210", 7.4),
        ("100211", 6.3),
        ("100220", 6.3),
        ("100221", 4.9),
        ("101000", 9.4),
        ("101001", 8.9),
        ("101010", 8.8),
        ("101011", 7.7),
        ("101020", 7.6),
        ("101021", 6.7),
        ("101100", 8.6),
        ("101101", 7.6),
        ("101110", 7.4),
        ("101111", 5.8),
        ("101120", 5.9),
        ("101121", 5.0),
        ("101200", 7.2),
        ("101201", 5.7),
        ("101210", 5.7),
        ("101211", 5.2),
        ("101220", 5.2),
        ("101221", 2.5),
        ("102001", 8.3),
        ("102011", 7.0),
        ("102021", 5.4),
        ("102101", 6.5),
        ("102111", 5.8),
        ("102121", 2.6),
        ("102201", 5.3),
        ("102211", 2.1),
        ("102221", 1.3),
        ("110000", 9.5),
        ("110001", 9.0),
        ("110010", 8.8),
        ("110011", 7.6),
        ("110020", 7.6),
        ("110021", 7.0),
        ("110100", 9.0),
        ("110101", 7.7),
        ("110110", 7.5),
        ("110111", 6.2),
        ("110120", 6.1),
        ("110121", 5.3),
        ("110200", 7.7),
        ("110201", 6.6),
        ("110210", 6.8),
        ("110211", 5.9),
        ("110220", 5.2),
        ("110221", 3.0),
        ("111000", 8.9),
        ("111001", 7.8),
        ("111010", 7.6),
        ("111011", 6.7),
        ("111020", 6.2),
        ("111021", 5.8),
        ("111100", 7.4),
        ("111101", 5.9),
        ("111110", 5.7),
        ("111111", 5.7),
        ("111120", 4.7),
        ("111121", 2.3),
        ("111200", 6.1),
        ("111201", 5.2),
        ("111210", 5.7),
        ("111211", 2.9),
        ("111220", 2.4),
        ("111221", 1.6),
        ("112001", 7.1),
        ("112011", 5.9),
        ("112021", 3.0),
        ("112101", 5.8),
        ("112111", 2.6),
        ("112121", 1.5),
        ("112201", 2.3),
        ("112211", 1.3),
        ("112221", 0.6),
        ("200000", 9.3),
        ("200001", 8.7),
        ("200010", 8.6),
        ("200011", 7.2),
        ("200020", 7.5),
        ("200021", 5.8),
        ("200100", 8.6),
        ("200101", 7.4),
        ("200110", 7.4),
        ("200111", 6.1),
        ("200120", 5.6),
        ("200121", 3.4),
        ("200200", 7.0),
        ("200201", 5.4),
        ("200210", 5.2),
        ("200211", 4.0),
        ("200220", 4.0),
        ("200221", 2.2),
        ("201000", 8.5),
        ("201001", 7.5),
        ("201010", 7.4),
        ("201011", 5.5),
        ("201020", 6.2),
        ("201021", 5.1),
        ("201100", 7.2),
        ("201101", 5.7),
        ("201110", 5.5),
        ("201111", 4.1),
        ("201120", 4.6),
        ("201121", 1.9),
        ("201200", 5.3),
        ("201201", 3.6),
        ("201210", 3.4),
        ("201211", 1.9),
        ("201220", 1.9),
        ("201221", 0.8),
        ("202001", 6.4),
        ("202011", 5.1),
        ("202021", 2.0),
        ("202101", 4.7),
        ("202111", 2.1),
        ("202121", 1.1),
        ("202201", 2.4),
        ("202211", 0.9),
        ("202221", 0.4),
        ("210000", 8.8),
        ("210001", 7.5),
        ("210010", 7.3),
        ("210011", 5.3),
        ("210020", 6.0),
        ("210021", 5.0),
        ("210100", 7.3),
        ("210101", 5.5),
        ("210110", 5.9),
        ("210111", 4.0),
        ("210120", 4.1),
        ("210121", 2.0),
        ("210200", 5.4),
        ("210201", 4.3),
        ("210210", 4.5),
        ("210211", 2.2),
        ("210220", 2.0),
        ("210221", 1.1),
        ("211000", 7.5),
        ("211001", 5.5),
        ("211010", 5.8),
        ("211011", 4.5),
        ("211020", 4.0),
        ("211021", 2.1),
        ("211100", 6.1),
        ("211101", 5.1),
        ("211110", 4.8),
        ("211111", 1.8),
        ("211120", 2.0),
        ("211121", 0.9),
        ("211200", 4.6),
        ("211201", 1.8),
        ("211210", 1.7),
        ("211211", 0.7),
        ("211220", 0.8),
        ("211221", 0.2),
        ("212001", 5.3),
        ("212011", 2.4),
        ("212021", 1.4),
        ("212101", 2.4),
        ("212111", 1.2),
        ("212121", 0.5),
        ("212201", 1.0),
        ("212211", 0.3),
        ("212221", 0.1),
    ];

    /// A MacroVector's score; `None` for one that does not exist (the
    /// "next lower" MacroVector past the last level).
    pub(super) fn macro_score(eq: [u8; 6]) -> Option<f64> {
        let key: [u8; 6] = eq.map(|d| b'0' + d);
        LOOKUP
            .binary_search_by(|(k, _)| k.as_bytes().cmp(&key[..]))
            .ok()
            .and_then(|i| LOOKUP.get(i))
            .map(|(_, s)| *s)
    }

    /// The values scoring reads, after defaults and modified metrics.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Effective {
        av: u8,
        ac: u8,
        at: u8,
        pr: u8,
        ui: u8,
        vc: u8,
        vi: u8,
        va: u8,
        sc: u8,
        /// `S` (safety) only through `MSI:S`.
        si: u8,
        sa: u8,
        e: u8,
        cr: u8,
        ir: u8,
        ar: u8,
    }

    fn first_byte(value: &str) -> u8 {
        value.as_bytes().first().copied().unwrap_or(b'X')
    }

    impl Effective {
        /// With `all` false only the base metrics count (CVSS-B): the
        /// threat metric is taken as `E:A` and the requirements as `H`, the
        /// worst cases the specification assumes when they are not given.
        /// With `all` true, given threat and environmental metrics count
        /// too (CVSS-BTE).
        pub(super) fn new(m: &Metrics<'_>, all: bool) -> Self {
            let pick = |name: &str| {
                let modified = if all {
                    m.get(&format!("M{name}")).filter(|v| *v != "X")
                } else {
                    None
                };
                first_byte(modified.unwrap_or_else(|| m.base(name)))
            };
            let defaulted = |name: &str, worst: u8| {
                if !all {
                    return worst;
                }
                match m.get(name) {
                    None | Some("X") => worst,
                    Some(v) => first_byte(v),
                }
            };
            Effective {
                av: pick("AV"),
                ac: pick("AC"),
                at: pick("AT"),
                pr: pick("PR"),
                ui: pick("UI"),
                vc: pick("VC"),
                vi: pick("VI"),
                va: pick("VA"),
                sc: pick("SC"),
                si: pick("SI"),
                sa: pick("SA"),
                e: defaulted("E", b'A'),
                cr: defaulted("CR", b'H'),
                ir: defaulted("IR", b'H'),
                ar: defaulted("AR", b'H'),
            }
        }

        /// The MacroVector: the six equivalence classes (specification
        /// section 8.2, Table 24), each 0 for the most severe level.
        fn macro_vector(&self) -> [u8; 6] {
            let eq1 = if self.av == b'N' && self.pr == b'N' && self.ui == b'N' {
                0
            } else if (self.av == b'N' || self.pr == b'N' || self.ui == b'N') && self.av != b'P' {
                1
            } else {
                2
            };
            let eq2 = if self.ac == b'L' && self.at == b'N' {
                0
            } else {
                1
            };
            let eq3 = if self.vc == b'H' && self.vi == b'H' {
                0
            } else if self.vc == b'H' || self.vi == b'H' || self.va == b'H' {
                1
            } else {
                2
            };
            let eq4 = if self.si == b'S' || self.sa == b'S' {
                0
            } else if self.sc == b'H' || self.si == b'H' || self.sa == b'H' {
                1
            } else {
                2
            };
            let eq5 = match self.e {
                b'A' => 0,
                b'P' => 1,
                _ => 2,
            };
            let eq6 = if (self.cr == b'H' && self.vc == b'H')
                || (self.ir == b'H' && self.vi == b'H')
                || (self.ar == b'H' && self.va == b'H')
            {
                0
            } else {
                1
            };
            [eq1, eq2, eq3, eq4, eq5, eq6]
        }
    }

    /// A metric value's severity level within its metric, in tenths, as the
    /// reference calculator measures distance (0.0 the most severe).
    fn level(metric: Metric, value: u8) -> f64 {
        match (metric, value) {
            (Metric::Av, b'N') => 0.0,
            (Metric::Av, b'A') => 0.1,
            (Metric::Av, b'L') => 0.2,
            (Metric::Av, _) => 0.3,
            (Metric::Pr | Metric::Ui, b'N') => 0.0,
            (Metric::Pr, b'L') | (Metric::Ui, b'P') => 0.1,
            (Metric::Pr | Metric::Ui, _) => 0.2,
            (Metric::Ac, b'L') | (Metric::At, b'N') => 0.0,
            (Metric::Ac | Metric::At, _) => 0.1,
            (Metric::Vulnerable, b'H') => 0.0,
            (Metric::Vulnerable, b'L') => 0.1,
            (Metric::Vulnerable, _) => 0.2,
            (Metric::Subsequent, b'S') => 0.0,
            (Metric::Subsequent, b'H') => 0.1,
            (Metric::Subsequent, b'L') => 0.2,
            (Metric::Subsequent, _) => 0.3,
            (Metric::Requirement, b'H') => 0.0,
            (Metric::Requirement, b'M') => 0.1,
            (Metric::Requirement, _) => 0.2,
        }
    }

    /// Which scale of levels a metric uses.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Metric {
        Av,
        Pr,
        Ui,
        Ac,
        At,
        /// VC, VI, VA.
        Vulnerable,
        /// SC, SI, SA.
        Subsequent,
        /// CR, IR, AR.
        Requirement,
    }

    /// The highest-severity vectors of each level of EQ1 (AV, PR, UI),
    /// EQ2 (AC, AT), EQ3 with EQ6 (VC, VI, VA, CR, IR, AR) and EQ4 (SC, SI,
    /// SA), from the reference calculator's `max_composed.js`.
    fn eq1_maxes(level: u8) -> &'static [&'static [u8; 3]] {
        match level {
            0 => &[b"NNN"],
            1 => &[b"ANN", b"NLN", b"NNP"],
            _ => &[b"PNN", b"ALP"],
        }
    }

    fn eq2_maxes(level: u8) -> &'static [&'static [u8; 2]] {
        match level {
            0 => &[b"LN"],
            _ => &[b"HN", b"LP"],
        }
    }

    fn eq3_eq6_maxes(eq3: u8, eq6: u8) -> &'static [&'static [u8; 6]] {
        match (eq3, eq6) {
            (0, 0) => &[b"HHHHHH"],
            (0, _) => &[b"HHLMMH", b"HHHMMM"],
            (1, 0) => &[b"LHHHHH", b"HLHHHH"],
            (1, _) => &[b"LHLHMH", b"LHHHMM", b"HLHMHM", b"HLLMHH", b"LLHHHM"],
            _ => &[b"LLLHHH"],
        }
    }

    fn eq4_maxes(level: u8) -> &'static [u8; 3] {
        match level {
            0 => b"HSS",
            1 => b"HHH",
            _ => b"LLL",
        }
    }

    /// The depth of each EQ level ("max severity distances ... (+1)" of the
    /// reference calculator's `max_severity.js`), in tenths.
    fn max_severity(eq: [u8; 6]) -> [f64; 4] {
        let eq1 = match eq[0] {
            0 => 1.0,
            1 => 4.0,
            _ => 5.0,
        };
        let eq2 = if eq[1] == 0 { 1.0 } else { 2.0 };
        let eq3eq6 = match (eq[2], eq[5]) {
            (0, 0) => 7.0,
            (0, _) => 6.0,
            (1, _) => 8.0,
            _ => 10.0,
        };
        let eq4 = match eq[3] {
            0 => 6.0,
            1 => 5.0,
            _ => 4.0,
        };
        let step = 0.1;
        [eq1 * step, eq2 * step, eq3eq6 * step, eq4 * step]
    }

    /// Severity distances of each metric from one highest-severity vector,
    /// in the reference calculator's order: AV PR UI AC AT VC VI VA SC SI
    /// SA CR IR AR.
    fn distances(
        v: &Effective,
        eq1: &[u8; 3],
        eq2: &[u8; 2],
        eq36: &[u8; 6],
        eq4: &[u8; 3],
    ) -> [f64; 14] {
        use Metric::*;
        let d = |metric, value, max| level(metric, value) - level(metric, max);
        [
            d(Av, v.av, eq1[0]),
            d(Pr, v.pr, eq1[1]),
            d(Ui, v.ui, eq1[2]),
            d(Ac, v.ac, eq2[0]),
            d(At, v.at, eq2[1]),
            d(Vulnerable, v.vc, eq36[0]),
            d(Vulnerable, v.vi, eq36[1]),
            d(Vulnerable, v.va, eq36[2]),
            d(Subsequent, v.sc, eq4[0]),
            d(Subsequent, v.si, eq4[1]),
            d(Subsequent, v.sa, eq4[2]),
            d(Requirement, v.cr, eq36[3]),
            d(Requirement, v.ir, eq36[4]),
            d(Requirement, v.ar, eq36[5]),
        ]
    }

    /// The score of the effective values (specification section 8.3).
    pub(super) fn score_effective(v: &Effective) -> Option<f64> {
        let no_impact = [v.vc, v.vi, v.va, v.sc, v.si, v.sa]
            .iter()
            .all(|&x| x == b'N');
        if no_impact {
            return Some(0.0);
        }
        let eq = v.macro_vector();
        let value = macro_score(eq)?;
        let [eq1, eq2, eq3, eq4, _, eq6] = eq;
        let lower = |i: usize, by: u8| {
            let mut next = eq;
            next[i] += by;
            next
        };

        // The next lower MacroVector along each EQ, when there is one.
        let score_eq1 = macro_score(lower(0, 1));
        let score_eq2 = macro_score(lower(1, 1));
        let score_eq3eq6 = match (eq3, eq6) {
            // 00 goes to 01 or to 10, whichever scores higher.
            (0, 0) => {
                let left = macro_score(lower(5, 1));
                let right = macro_score(lower(2, 1));
                match (left, right) {
                    (Some(l), Some(r)) => Some(if l > r { l } else { r }),
                    _ => None,
                }
            }
            // 10 goes to 11.
            (1, 0) => macro_score(lower(5, 1)),
            // 01 to 11, 11 to 21; 21 has no lower.
            (0 | 1, _) => macro_score(lower(2, 1)),
            _ => None,
        };
        let score_eq4 = macro_score(lower(3, 1));
        let score_eq5 = macro_score(lower(4, 1));

        // The severity distance from the first highest-severity vector of
        // this MacroVector that the vector does not exceed anywhere.
        let mut found = [0.0; 14];
        'search: for m1 in eq1_maxes(eq1) {
            for m2 in eq2_maxes(eq2) {
                for m36 in eq3_eq6_maxes(eq3, eq6) {
                    found = distances(v, m1, m2, m36, eq4_maxes(eq4));
                    if found.iter().all(|&d| d >= 0.0) {
                        break 'search;
                    }
                }
            }
        }
        let [av, pr, ui, ac, at, vc, vi, va, sc, si, sa, cr, ir, ar] = found;
        let distance_eq1 = av + pr + ui;
        let distance_eq2 = ac + at;
        let distance_eq3eq6 = vc + vi + va + cr + ir + ar;
        let distance_eq4 = sc + si + sa;
        let depth = max_severity(eq);

        // Each EQ with a lower MacroVector moves the score down by its
        // share of the gap to it; EQ5 counts but never moves it.
        let mut existing = 0u32;
        let mut total = 0.0;
        for (next, distance, depth) in [
            (score_eq1, distance_eq1, depth[0]),
            (score_eq2, distance_eq2, depth[1]),
            (score_eq3eq6, distance_eq3eq6, depth[2]),
            (score_eq4, distance_eq4, depth[3]),
        ] {
            if let Some(next) = next {
                existing += 1;
                total += (value - next) * (distance / depth);
            }
        }
        if score_eq5.is_some() {
            existing += 1;
        }
        let mean = if existing == 0 {
            0.0
        } else {
            total / f64::from(existing)
        };
        let score = (value - mean).clamp(0.0, 10.0);
        Some(((score + 1e-6) * 10.0).round() / 10.0)
    }

    pub(super) fn parse(body: &str) -> Option<Metrics<'_>> {
        Metrics::parse(body, METRICS, 11)
    }

    /// The CVSS-B score.
    pub(super) fn score(body: &str) -> Option<f64> {
        score_effective(&Effective::new(&parse(body)?, false))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn base(vector: &str) -> f64 {
        score(vector)
            .unwrap_or_else(|| panic!("{vector} did not score"))
            .base_score
    }

    #[test]
    fn scores_v3_1_vectors() {
        let table: &[(&str, f64)] = &[
            // CVE-2014-0160, Heartbleed (the v3.1 examples document).
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
            // CVE-2021-44228, Log4Shell.
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            // A typical reflected XSS: scope changed, medium.
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            // CVE-2014-6271, Shellshock.
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            // CVE-2016-5195, Dirty COW (local, low privileges).
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            // CVE-2015-8213 style: network, low privileges, info leak.
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 6.5),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
            ("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:C/C:L/I:L/A:L", 4.7),
            ("CVSS:3.1/AV:A/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.0),
            ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H", 9.1),
            // No impact scores 0.
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:N/A:N", 0.0),
            // Temporal and environmental metrics do not change the base.
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N/E:P/RL:W/RC:C",
                6.1,
            ),
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:X/RL:X/RC:X/CR:H/IR:M/AR:L/MAV:L/MAC:H/MPR:H/MUI:R/MS:C/MC:N/MI:L/MA:X",
                9.8,
            ),
            // Metrics in another order.
            ("CVSS:3.1/S:U/C:H/I:N/A:N/AV:N/AC:L/PR:N/UI:N", 7.5),
        ];
        for (vector, want) in table {
            let got = score(vector).unwrap();
            assert_eq!(got.base_score, *want, "{vector}");
            assert_eq!(got.version, CvssVersion::V3_1);
        }
    }

    #[test]
    fn scores_v3_0_vectors_with_its_own_rounding() {
        let table: &[(&str, f64)] = &[
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ];
        for (vector, want) in table {
            let got = score(vector).unwrap();
            assert_eq!(got.base_score, *want, "{vector}");
            assert_eq!(got.version, CvssVersion::V3_0);
        }
        // The case v3.1's Roundup was made for: floating-point noise just
        // above a tenth. v3.0 rounds it up a whole tenth, v3.1 does not.
        assert_eq!(v3::roundup_v30(4.000_000_000_000_001), 4.1);
        assert_eq!(v3::roundup_v31(4.000_000_000_000_001), 4.0);
        assert_eq!(v3::roundup_v31(4.02), 4.1);
        assert_eq!(v3::roundup_v31(4.0), 4.0);
        assert_eq!(v3::roundup_v30(4.02), 4.1);
    }

    #[test]
    fn scores_v2_vectors() {
        let table: &[(&str, f64)] = &[
            ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
            ("AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3),
            ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0),
            // CVE-2014-0160, Heartbleed, as NVD scored it in v2.
            ("AV:N/AC:L/Au:N/C:P/I:N/A:N", 5.0),
            // The guide's CVE-2002-0392 example (Apache chunked encoding).
            ("AV:N/AC:L/Au:N/C:N/I:N/A:C", 7.8),
            // The guide's CVE-2003-0818 example (Microsoft ASN.1).
            ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0),
            // The guide's CVE-2003-0062 example (NOD32 buffer overflow).
            ("AV:L/AC:H/Au:N/C:C/I:C/A:C", 6.2),
            ("AV:L/AC:L/Au:N/C:C/I:C/A:C", 7.2),
            ("AV:N/AC:L/Au:S/C:P/I:P/A:P", 6.5),
            ("AV:N/AC:L/Au:N/C:N/I:N/A:N", 0.0),
            // Parentheses, a prefix, temporal and environmental metrics.
            ("(AV:N/AC:L/Au:N/C:P/I:P/A:P)", 7.5),
            ("CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
            (
                "AV:N/AC:L/Au:N/C:N/I:N/A:C/E:F/RL:OF/RC:C/CDP:H/TD:H/CR:M/IR:M/AR:H",
                7.8,
            ),
        ];
        for (vector, want) in table {
            let got = score(vector).unwrap();
            assert_eq!(got.base_score, *want, "{vector}");
            assert_eq!(got.version, CvssVersion::V2);
        }
        assert_eq!(
            score(" (AV:N/AC:L/Au:N/C:P/I:P/A:P) ").unwrap().vector,
            "AV:N/AC:L/Au:N/C:P/I:P/A:P"
        );
    }

    #[test]
    fn scores_v4_vectors() {
        // FIRST's CVSS v4.0 examples and the reference calculator's.
        let table: &[(&str, f64)] = &[
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                9.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
                10.0,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
                0.0,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:H/SI:H/SA:H",
                7.9,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N",
                6.9,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N",
                5.3,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                7.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                7.7,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:L/SC:N/SI:N/SA:N",
                8.3,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
                4.6,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:A/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N",
                5.1,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N",
                6.9,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:N/VI:N/VA:N/SC:H/SI:N/SA:N",
                5.9,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
                9.4,
            ),
            (
                "CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:H/SI:N/SA:H",
                6.4,
            ),
            (
                "CVSS:4.0/AV:P/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
                8.6,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N",
                7.1,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N",
                8.2,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:L",
                8.7,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:P/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N",
                5.1,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                7.7,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N",
                8.3,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                8.5,
            ),
            (
                "CVSS:4.0/AV:P/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                5.4,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N",
                8.7,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N",
                6.9,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:L/SA:N",
                6.9,
            ),
            (
                "CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N",
                8.6,
            ),
            // Supplemental metrics never change a score.
            (
                "CVSS:4.0/AV:P/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:H/SA:N/S:P/V:D",
                8.3,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/R:I",
                9.3,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:P/PR:H/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/R:I",
                8.7,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/S:P/AU:Y/V:C/RE:L",
                9.4,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N/V:C/U:Amber",
                8.7,
            ),
        ];
        for (vector, want) in table {
            let got = score(vector).unwrap();
            assert_eq!(got.base_score, *want, "{vector}");
            assert_eq!(got.version, CvssVersion::V4_0);
        }
    }

    #[test]
    fn v4_base_score_ignores_threat_and_environmental_metrics() {
        // The CVSS-B score of a vector that also carries threat and
        // environmental metrics is that of its base metrics.
        assert_eq!(
            base("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U"),
            7.7
        );
        assert_eq!(
            base("CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N/MSI:S/S:P"),
            8.6
        );
    }

    #[test]
    fn v4_scoring_with_threat_and_environmental_metrics() {
        // The same machinery with every metric counted (CVSS-BTE) matches
        // FIRST's examples, which exercises EQ4's safety level, EQ5 and
        // EQ6 that base-only vectors cannot reach.
        let table: &[(&str, f64)] = &[
            ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U", 5.2),
            (
                "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:L/SC:N/SI:N/SA:N/CR:H/IR:L/AR:L/MAV:N/MAC:H/MVC:H/MVI:L/MVA:L",
                8.1,
            ),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N/E:A", 8.7),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:L/E:U", 6.6),
            ("CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N/E:U", 5.6),
            ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A", 9.2),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U", 9.1),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/MVI:L/MSA:S",
                9.8,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:P/CR:L/IR:H/AR:L/MAV:L/MAC:H/MAT:N/MPR:N/MUI:N/MVC:N/MVI:H/MVA:L/MSC:N/MSI:S/MSA:L",
                7.0,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/MAV:A/MAC:H/MAT:N/MPR:L/MUI:N/MVC:L/MVI:H/MVA:H/MSC:L/MSI:S/MSA:S/CR:L/IR:H/AR:H/E:P",
                7.4,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/MAV:N/MAC:H/MAT:N/MPR:L/MUI:N/MVC:H/MVI:H/MVA:H/MSC:H/MSI:S/MSA:H/CR:M/IR:H/AR:M/E:P",
                8.7,
            ),
            (
                "CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N/MSI:S/S:P",
                9.7,
            ),
        ];
        for (vector, want) in table {
            let body = vector.strip_prefix("CVSS:4.0/").unwrap();
            let metrics = v4::parse(body).unwrap();
            let got = v4::score_effective(&v4::Effective::new(&metrics, true)).unwrap();
            assert_eq!(got, *want, "{vector}");
        }
    }

    #[test]
    fn v4_lookup_table_is_complete() {
        // 3 x 2 x 3 x 3 x 3 x 2 MacroVectors, less the 54 where EQ3 is 2
        // and EQ6 is 0 (no high impact cannot meet a high requirement).
        let mut count = 0;
        for eq1 in 0..3 {
            for eq2 in 0..2 {
                for eq3 in 0..3 {
                    for eq4 in 0..3 {
                        for eq5 in 0..3 {
                            for eq6 in 0..2 {
                                let found = v4::macro_score([eq1, eq2, eq3, eq4, eq5, eq6]);
                                assert_eq!(found.is_some(), !(eq3 == 2 && eq6 == 0));
                                count += usize::from(found.is_some());
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(count, 270);
        assert_eq!(v4::macro_score([0, 0, 0, 0, 0, 0]), Some(10.0));
        assert_eq!(v4::macro_score([2, 1, 2, 2, 2, 1]), Some(0.1));
        assert_eq!(v4::macro_score([3, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn refuses_invalid_vectors() {
        for bad in [
            "",
            "CVSS:3.1/",
            "CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:X",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:Z",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/XX:N",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A",
            "cvss:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/av:n/ac:l/pr:n/ui:n/s:u/c:h/i:h/a:h",
            "AV:N/AC:L/Au:N/C:P/I:P",
            "AV:N/AC:L/Au:N/C:P/I:P/A:X",
            "AV:N/AC:L/AU:N/C:P/I:P/A:P",
            "AV:N/AC:L/Au:N/C:P/I:P/A:P/E:X",
            "(AV:N/AC:L/Au:N/C:P/I:P/A:P",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:S/SA:N",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:Z",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/AV:N",
            "CVSS:4.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "not a vector",
        ] {
            assert!(score(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn severities_from_scores() {
        use CvssVersion::*;
        use Severity::*;
        let table: &[(CvssVersion, f64, Severity)] = &[
            (V3_1, 0.0, Informational),
            (V3_1, 0.1, Low),
            (V3_1, 3.9, Low),
            (V3_1, 4.0, Medium),
            (V3_1, 6.9, Medium),
            (V3_1, 7.0, High),
            (V3_1, 8.9, High),
            (V3_1, 9.0, Critical),
            (V3_1, 10.0, Critical),
            (V3_0, 9.8, Critical),
            (V4_0, 0.0, Informational),
            (V4_0, 9.3, Critical),
            (V4_0, 6.9, Medium),
            (V2, 0.0, Low),
            (V2, 3.9, Low),
            (V2, 4.0, Medium),
            (V2, 6.9, Medium),
            (V2, 7.0, High),
            (V2, 10.0, High),
            (V3_1, -1.0, Undefined),
            (V3_1, 10.5, Undefined),
            (V2, f64::NAN, Undefined),
        ];
        for (version, score, want) in table {
            assert_eq!(
                Severity::from_score(*version, *score),
                *want,
                "{version:?} {score}"
            );
        }
    }

    #[test]
    fn severities_from_names() {
        use Severity::*;
        for (name, want) in [
            ("CRITICAL", Critical),
            ("critical", Critical),
            ("High", High),
            ("Important", High),
            ("MEDIUM", Medium),
            ("moderate", Medium),
            ("Low", Low),
            ("negligible", Informational),
            ("Unimportant", Informational),
            ("INFORMATIONAL", Informational),
            ("none", Informational),
            (" high ", High),
            ("unknown", Undefined),
            ("not yet assigned", Undefined),
            ("", Undefined),
        ] {
            assert_eq!(Severity::from_name(name), want, "{name:?}");
        }
    }

    #[test]
    fn names_and_wire_forms() {
        assert_eq!(CvssVersion::V2.as_str(), "2.0");
        assert_eq!(CvssVersion::V3_0.as_str(), "3.0");
        assert_eq!(CvssVersion::V3_1.as_str(), "3.1");
        assert_eq!(CvssVersion::V4_0.as_str(), "4.0");
        for severity in [
            Severity::Informational,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
            Severity::Undefined,
        ] {
            let json = serde_json::to_string(&severity).unwrap();
            assert_eq!(json, format!("\"{}\"", severity.as_str()));
            assert_eq!(serde_json::from_str::<Severity>(&json).unwrap(), severity);
        }
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Low > Severity::Informational);
        assert!(Severity::Undefined > Severity::Critical);
        let scored = score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N").unwrap();
        assert_eq!(
            scored,
            CvssScore {
                version: CvssVersion::V3_1,
                base_score: 7.5,
                vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N".into(),
            }
        );
    }
}

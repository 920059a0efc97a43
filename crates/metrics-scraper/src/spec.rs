//! Metric specs: which series an engine mapping reads, written as PromQL instant selectors.
//!
//! A spec is a sample name with optional equality matchers, as in the reference's
//! `engineConfigs` (`framework/plugins/datalayer/extractor/metrics/spec.go`):
//!
//! ```text
//! vllm:num_requests_waiting
//! nv_trt_llm_request_metrics{request_type=waiting}
//! nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction", model="tensorrt_llm"}
//! ```
//!
//! Label values may be unquoted (a run of characters other than `"`, `,`, `}` and
//! whitespace), double-quoted or single-quoted; quoted values know the escapes `\\`, `\"`,
//! `\'`, `\n` and `\t`. A trailing comma and whitespace around every token are allowed.
//!
//! A series matches when its name equals the spec's name and it has every listed label with
//! exactly that value; other labels are ignored.
//!
//! # Differs from the reference
//!
//! The reference parses specs with the full PromQL parser and then silently drops everything
//! that is not an `=` matcher on an ordinary label, so `m{a!="x"}` behaves like `m`. Here
//! `!=`, `=~`, `!~`, labels starting with `__`, a label given twice, and anything after the
//! selector (`[5m]`, `offset`) are errors that say so.

use std::fmt;
use std::str::FromStr;

use crate::exposition::{Sample, write_label_escaped};

/// A parsed metric spec: a sample name and label equality matchers.
///
/// # Example
///
/// ```
/// use pointsman_scraper::spec::MetricSpec;
///
/// let spec: MetricSpec = "nv_trt_llm_request_metrics{request_type=waiting}".parse()?;
/// assert_eq!(spec.name(), "nv_trt_llm_request_metrics");
/// assert_eq!(spec.matchers()[0].value, "waiting");
/// assert_eq!(spec.to_string(), r#"nv_trt_llm_request_metrics{request_type="waiting"}"#);
/// # Ok::<(), pointsman_scraper::spec::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricSpec {
    name: String,
    matchers: Vec<LabelMatcher>,
}

/// One `label="value"` equality matcher of a [`MetricSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelMatcher {
    /// The label name.
    pub name: String,
    /// The required value, unescaped.
    pub value: String,
}

impl MetricSpec {
    /// Parses a spec such as `name{label="value",label2=value}`.
    ///
    /// # Errors
    ///
    /// A [`SpecError`] giving the column and what was expected there; an empty string is an
    /// error too (engine configs treat `""` as "disabled" before calling this).
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        SpecParser { spec, pos: 0 }
            .parse()
            .map_err(|(pos, kind)| SpecError {
                spec: spec.to_owned(),
                column: spec.get(..pos).map_or(pos, |p| p.chars().count()) + 1,
                kind,
            })
    }

    /// A spec that matches every series called `name`, without checking the name's syntax.
    pub fn name_only(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            matchers: Vec::new(),
        }
    }

    /// The same matchers on another sample name.
    pub(crate) fn renamed(&self, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            matchers: self.matchers.clone(),
        }
    }

    /// The sample name the spec selects.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The label matchers, in the order written.
    pub fn matchers(&self) -> &[LabelMatcher] {
        &self.matchers
    }

    /// Whether `sample` is a series this spec selects. Never allocates.
    pub fn matches(&self, sample: &Sample<'_>) -> bool {
        sample.name == self.name && self.matches_labels(sample)
    }

    /// Whether `sample` has every label matcher of this spec (the name is not compared).
    pub(crate) fn matches_labels(&self, sample: &Sample<'_>) -> bool {
        self.matchers
            .iter()
            .all(|m| sample.labels.contains(&m.name, &m.value))
    }
}

impl FromStr for MetricSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for MetricSpec {
    /// Writes the canonical form, with quoted values: `name{a="x",b="y"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.matchers.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}=\"", m.name)?;
            write_label_escaped(f, &m.value)?;
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// A spec string that is not a supported instant selector.
///
/// Displays as `invalid metric spec "m{a}": column 4: expected '=' after label name "a", found '}'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid metric spec \"{spec}\": column {column}: {kind}")]
#[non_exhaustive]
pub struct SpecError {
    /// The spec as given.
    pub spec: String,
    /// The 1-based column, in characters.
    pub column: usize,
    /// What was expected.
    pub kind: SpecErrorKind,
}

/// What was wrong with a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecErrorKind {
    /// The spec is empty or blank.
    #[error("expected a metric name, e.g. vllm:num_requests_waiting, found an empty spec")]
    Empty,
    /// No metric name where one must be.
    #[error("expected a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) first, found {found}")]
    ExpectedName {
        /// What was there.
        found: String,
    },
    /// Something other than `{` follows the name.
    #[error("expected '{{' or the end of the spec after the metric name, found {found}")]
    ExpectedBraceOrEnd {
        /// What was there.
        found: String,
    },
    /// Not a label name where one must be.
    #[error("expected a label name or '}}', found {found}")]
    ExpectedLabelName {
        /// What was there.
        found: String,
    },
    /// A pseudo label such as `__name__`.
    #[error("label \"{label}\": labels starting with '__' are not supported")]
    ReservedLabel {
        /// The label name.
        label: String,
    },
    /// A matcher other than `=`.
    #[error("label \"{label}\": only '=' matchers are supported, found \"{op}\"")]
    UnsupportedMatcher {
        /// The label name.
        label: String,
        /// The operator found.
        op: String,
    },
    /// No `=` after a label name.
    #[error("expected '=' after label name \"{label}\", found {found}")]
    ExpectedEquals {
        /// The label name.
        label: String,
        /// What was there.
        found: String,
    },
    /// No value after `=`.
    #[error(
        "expected a value after \"{label}=\", e.g. {label}=waiting or {label}=\"waiting\", found {found}"
    )]
    ExpectedValue {
        /// The label name.
        label: String,
        /// What was there.
        found: String,
    },
    /// A quoted value runs to the end of the spec.
    #[error("the quoted value of label \"{label}\" is not closed")]
    UnterminatedValue {
        /// The label name.
        label: String,
    },
    /// A label is given twice.
    #[error("label \"{label}\" is given twice")]
    DuplicateLabel {
        /// The label name.
        label: String,
    },
    /// Neither `,` nor `}` after a value.
    #[error("expected ',' or '}}' after the value of label \"{label}\", found {found}")]
    ExpectedCommaOrBrace {
        /// The label name.
        label: String,
        /// What was there.
        found: String,
    },
    /// Text after the selector.
    #[error("expected the end of the spec after '}}', found {found}")]
    TrailingText {
        /// What was there.
        found: String,
    },
}

type SpecResult<T> = Result<T, (usize, SpecErrorKind)>;

struct SpecParser<'a> {
    spec: &'a str,
    pos: usize,
}

impl SpecParser<'_> {
    fn rest(&self) -> &str {
        self.spec.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the spec".to_owned(),
            Some(c) => format!("'{c}'"),
        }
    }

    /// Takes `[first][rest]*` as long as the predicates hold.
    fn take_name(&mut self, first: fn(char) -> bool, rest: fn(char) -> bool) -> &str {
        let start = self.pos;
        if self.peek().is_some_and(first) {
            self.bump();
            while self.peek().is_some_and(rest) {
                self.bump();
            }
        }
        self.spec.get(start..self.pos).unwrap_or_default()
    }

    fn parse(mut self) -> SpecResult<MetricSpec> {
        self.skip_ws();
        if self.peek().is_none() {
            return Err((self.pos, SpecErrorKind::Empty));
        }
        let name_pos = self.pos;
        let name = self.take_name(is_metric_start, is_metric_char).to_owned();
        if name.is_empty() {
            return Err((
                name_pos,
                SpecErrorKind::ExpectedName {
                    found: self.found(),
                },
            ));
        }
        let mut matchers = Vec::new();
        self.skip_ws();
        match self.peek() {
            None => return Ok(MetricSpec { name, matchers }),
            Some('{') => {
                self.bump();
            }
            Some(_) => {
                return Err((
                    self.pos,
                    SpecErrorKind::ExpectedBraceOrEnd {
                        found: self.found(),
                    },
                ));
            }
        }
        loop {
            self.skip_ws();
            if self.peek() == Some('}') {
                self.bump();
                break;
            }
            let label_pos = self.pos;
            let label = self.take_name(is_label_start, is_label_char).to_owned();
            if label.is_empty() {
                return Err((
                    label_pos,
                    SpecErrorKind::ExpectedLabelName {
                        found: self.found(),
                    },
                ));
            }
            if label.starts_with("__") {
                return Err((label_pos, SpecErrorKind::ReservedLabel { label }));
            }
            if matchers.iter().any(|m: &LabelMatcher| m.name == label) {
                return Err((label_pos, SpecErrorKind::DuplicateLabel { label }));
            }
            self.skip_ws();
            let op_pos = self.pos;
            let rest = self.rest();
            if let Some(op) = ["!=", "=~", "!~"]
                .into_iter()
                .find(|op| rest.starts_with(op))
            {
                return Err((
                    op_pos,
                    SpecErrorKind::UnsupportedMatcher {
                        label,
                        op: op.to_owned(),
                    },
                ));
            }
            if self.peek() != Some('=') {
                return Err((
                    op_pos,
                    SpecErrorKind::ExpectedEquals {
                        label,
                        found: self.found(),
                    },
                ));
            }
            self.bump();
            self.skip_ws();
            let value = self.value(&label)?;
            matchers.push(LabelMatcher { name: label, value });
            self.skip_ws();
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some('}') => {
                    self.bump();
                    break;
                }
                _ => {
                    let label = matchers.last().map(|m| m.name.clone()).unwrap_or_default();
                    return Err((
                        self.pos,
                        SpecErrorKind::ExpectedCommaOrBrace {
                            label,
                            found: self.found(),
                        },
                    ));
                }
            }
        }
        self.skip_ws();
        if self.peek().is_some() {
            return Err((
                self.pos,
                SpecErrorKind::TrailingText {
                    found: self.found(),
                },
            ));
        }
        Ok(MetricSpec { name, matchers })
    }

    fn value(&mut self, label: &str) -> SpecResult<String> {
        let start = self.pos;
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let mut out = String::new();
                loop {
                    match self.bump() {
                        None => {
                            return Err((
                                start,
                                SpecErrorKind::UnterminatedValue {
                                    label: label.to_owned(),
                                },
                            ));
                        }
                        Some(c) if c == q => return Ok(out),
                        Some('\\') => match self.bump() {
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some(c @ ('\\' | '"' | '\'')) => out.push(c),
                            Some(c) => {
                                out.push('\\');
                                out.push(c);
                            }
                            None => {
                                return Err((
                                    start,
                                    SpecErrorKind::UnterminatedValue {
                                        label: label.to_owned(),
                                    },
                                ));
                            }
                        },
                        Some(c) => out.push(c),
                    }
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, '"' | ',' | '}') && !c.is_whitespace())
                {
                    self.bump();
                }
                let value = self.spec.get(start..self.pos).unwrap_or_default();
                if value.is_empty() {
                    return Err((
                        start,
                        SpecErrorKind::ExpectedValue {
                            label: label.to_owned(),
                            found: self.found(),
                        },
                    ));
                }
                Ok(value.to_owned())
            }
        }
    }
}

fn is_metric_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_metric_char(c: char) -> bool {
    is_metric_start(c) || c.is_ascii_digit()
}

fn is_label_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_label_char(c: char) -> bool {
    is_label_start(c) || c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::exposition::samples;

    fn pairs(spec: &MetricSpec) -> Vec<(&str, &str)> {
        spec.matchers()
            .iter()
            .map(|m| (m.name.as_str(), m.value.as_str()))
            .collect()
    }

    #[test]
    fn accepted_forms() {
        // (spec, name, matchers)
        type Case = (
            &'static str,
            &'static str,
            &'static [(&'static str, &'static str)],
        );
        let cases: &[Case] = &[
            (
                "vllm:num_requests_waiting",
                "vllm:num_requests_waiting",
                &[],
            ),
            ("  m  ", "m", &[]),
            ("m{}", "m", &[]),
            ("m{a=b}", "m", &[("a", "b")]),
            ("m{a=\"b\"}", "m", &[("a", "b")]),
            ("m{a='b'}", "m", &[("a", "b")]),
            (
                "m { a = b , c = \"d e\" , }",
                "m",
                &[("a", "b"), ("c", "d e")],
            ),
            ("m{a=\"x\\\"y\\\\z\\n\"}", "m", &[("a", "x\"y\\z\n")]),
            ("m{a=+Inf}", "m", &[("a", "+Inf")]),
            ("m{a=0.5,b=x-y/z}", "m", &[("a", "0.5"), ("b", "x-y/z")]),
            (
                "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=tokens_per}",
                "nv_trt_llm_kv_cache_block_metrics",
                &[("kv_cache_block_type", "tokens_per")],
            ),
        ];
        for &(text, name, matchers) in cases {
            let spec = MetricSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(spec.name(), name, "{text}");
            assert_eq!(pairs(&spec), matchers, "{text}");
            // Display is canonical and parses back to the same spec.
            assert_eq!(
                MetricSpec::parse(&spec.to_string()).unwrap(),
                spec,
                "{text}"
            );
        }
    }

    #[test]
    fn rejected_forms() {
        // (spec, column, message tail)
        let cases: &[(&str, usize, &str)] = &[
            (
                "",
                1,
                "expected a metric name, e.g. vllm:num_requests_waiting, found an empty spec",
            ),
            ("   ", 4, "found an empty spec"),
            (
                "{a=\"b\"}",
                1,
                "expected a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) first, found '{'",
            ),
            ("9m", 1, "found '9'"),
            (
                "m x",
                3,
                "expected '{' or the end of the spec after the metric name, found 'x'",
            ),
            ("m{a}", 4, "expected '=' after label name \"a\", found '}'"),
            (
                "m{a!=b}",
                4,
                "label \"a\": only '=' matchers are supported, found \"!=\"",
            ),
            (
                "m{a=~b}",
                4,
                "only '=' matchers are supported, found \"=~\"",
            ),
            ("m{a!~b}", 4, "found \"!~\""),
            (
                "m{__name__=m}",
                3,
                "labels starting with '__' are not supported",
            ),
            (
                "m{a=}",
                5,
                "expected a value after \"a=\", e.g. a=waiting or a=\"waiting\", found '}'",
            ),
            (
                "m{a=\"b}",
                5,
                "the quoted value of label \"a\" is not closed",
            ),
            ("m{a=b,a=c}", 7, "label \"a\" is given twice"),
            (
                "m{a=b c=d}",
                7,
                "expected ',' or '}' after the value of label \"a\", found 'c'",
            ),
            (
                "m{a=b",
                6,
                "expected ',' or '}' after the value of label \"a\", found the end of the spec",
            ),
            (
                "m{a=b}[5m]",
                7,
                "expected the end of the spec after '}', found '['",
            ),
            ("m{,}", 3, "expected a label name or '}', found ','"),
        ];
        for &(text, column, tail) in cases {
            let err = MetricSpec::parse(text).unwrap_err();
            assert_eq!(err.column, column, "{text}: {err}");
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!(
                    "invalid metric spec \"{text}\": column {column}: "
                )),
                "{msg}"
            );
            assert!(msg.ends_with(tail), "{text}: {msg}");
        }
    }

    #[test]
    fn matching_series() {
        let text = concat!(
            "nv_trt_llm_request_metrics{model=\"t\",request_type=\"waiting\",version=\"1\"} 1\n",
            "nv_trt_llm_request_metrics{model=\"t\",request_type=\"scheduled\",version=\"1\"} 2\n",
            "nv_trt_llm_request_metrics_total{request_type=\"waiting\"} 3\n",
            "other{request_type=\"waiting\"} 4\n",
            "esc{v=\"a\\\"b\"} 5\n",
        );
        let all: Vec<_> = samples(text).collect::<Result<_, _>>().unwrap();
        let waiting =
            MetricSpec::parse("nv_trt_llm_request_metrics{request_type=waiting}").unwrap();
        let hits: Vec<f64> = all
            .iter()
            .filter(|s| waiting.matches(s))
            .map(|s| s.value)
            .collect();
        assert_eq!(hits, [1.0]);
        let any = MetricSpec::parse("nv_trt_llm_request_metrics").unwrap();
        assert_eq!(all.iter().filter(|s| any.matches(s)).count(), 2);
        let esc = MetricSpec::parse("esc{v='a\"b'}").unwrap();
        assert_eq!(all.iter().filter(|s| esc.matches(s)).count(), 1);
    }
}

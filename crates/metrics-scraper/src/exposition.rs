//! A zero-copy parser for the Prometheus text exposition format, version 0.0.4.
//!
//! Model servers (vLLM, SGLang, trtllm-serve, Triton) answer `GET /metrics` with lines like
//!
//! ```text
//! # HELP vllm:num_requests_running Number of requests in model execution batches.
//! # TYPE vllm:num_requests_running gauge
//! vllm:num_requests_running{engine="0",model_name="tiny-llama"} 4.0
//! vllm:request_success_total{engine="0",finished_reason="stop",model_name="tiny-llama"} 12.0 1712345678901
//! ```
//!
//! Use [`samples`] when only the series matter (the engine mappings do), and [`parse`] to see
//! `# HELP` and `# TYPE` lines as well. Both borrow from the text: a [`Sample`]'s name and
//! [`Labels`] are slices of the input, and label values are unescaped into a
//! [`Cow`] only when they contain a backslash. Nothing is allocated per line
//! unless an error is reported.
//!
//! # What is accepted
//!
//! | element | accepted |
//! | --- | --- |
//! | lines | `\n` or `\r\n` endings, a last line without one; empty and blank lines are skipped; leading blanks (space, tab) are allowed |
//! | comments | `# HELP name text` and `# TYPE name type` are parsed and checked; any other line starting with `#` is ignored |
//! | `# TYPE` | `counter`, `gauge`, `histogram`, `summary`, `untyped` |
//! | metric names | `[a-zA-Z_:][a-zA-Z0-9_:]*`, e.g. `vllm:num_requests_waiting`; `_total`, `_created`, `_bucket`, `_sum`, `_count` series are ordinary samples |
//! | label sets | `{}` or `{name="value",…}` with a trailing comma allowed and blanks around every token; names `[a-zA-Z_][a-zA-Z0-9_]*` |
//! | label values | any UTF-8 except a raw `"`; escapes `\\`, `\"`, `\n`; any other `\x` is kept as the two characters `\x`, as the Prometheus server does (Go's `expfmt` rejects it) |
//! | `# HELP` text | the rest of the line; escapes `\\` and `\n`, any other `\x` kept as it is |
//! | values | what Rust's `f64::from_str` reads: `1`, `-2.5`, `1.7953236355353916e+09`, `.5`, `NaN`, `+Inf`, `-Inf` (case-insensitive, `inf`/`infinity`/`nan`) |
//! | timestamps | an optional signed integer (milliseconds since the epoch) after the value |
//!
//! Not checked, because checking needs memory per family and extraction does not need it:
//! duplicate label names in one sample, duplicate `# HELP`/`# TYPE` lines, `# TYPE` after the
//! family's samples, and whether sample names fit their family's type. Rejected: quoted metric
//! or label names (the UTF-8 names of newer formats), OpenMetrics float timestamps, exemplars
//! and `# EOF`-style trailing tokens after the timestamp.
//!
//! # Errors
//!
//! Every malformed line is reported as a [`ParseError`] with its 1-based line and column and
//! what was expected, e.g. `line 12, column 30: expected '=' after label name "model_name"`.
//! The iterators go on with the next line after an error, so a caller may skip bad lines;
//! `collect::<Result<Vec<_>, _>>()` stops at the first. No input makes the parser panic.
//!
//! # Example
//!
//! ```
//! use pointsman_scraper::exposition::samples;
//!
//! let text = "# TYPE q gauge\nq{model=\"a\\\"b\"} 3 1700000000000\nq{model=\"c\",} NaN\n";
//! let all = samples(text).collect::<Result<Vec<_>, _>>()?;
//! assert_eq!(all.len(), 2);
//! assert_eq!(all[0].labels.get("model").as_deref(), Some("a\"b"));
//! assert_eq!(all[0].timestamp_ms, Some(1_700_000_000_000));
//! assert!(all[1].value.is_nan());
//! # Ok::<(), pointsman_scraper::exposition::ParseError>(())
//! ```
#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;
use std::fmt;
use std::iter::FusedIterator;

use memchr::memchr;

/// Parses `text` into its entries: `# HELP` and `# TYPE` lines and samples, in input order.
///
/// Nothing is parsed until the iterator is advanced. See the [module docs](self) for the
/// accepted syntax.
pub fn parse(text: &str) -> Parser<'_> {
    Parser {
        text,
        pos: 0,
        line: 0,
    }
}

/// Parses `text` and yields only its samples, skipping `# HELP` and `# TYPE` lines (which are
/// still checked).
///
/// # Example
///
/// ```
/// let text = "# HELP up 1 if up\nup 1\nup{job=\"x\"} 0\n";
/// let names: Vec<_> = pointsman_scraper::exposition::samples(text)
///     .map(|s| s.map(|s| s.name))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(names, ["up", "up"]);
/// # Ok::<(), pointsman_scraper::exposition::ParseError>(())
/// ```
pub fn samples(text: &str) -> Samples<'_, 'static> {
    Samples {
        parser: parse(text),
        names: None,
    }
}

/// Yields only the samples of the metrics named in `names`, parsed and checked as
/// [`samples`] does; every other line (comments, other metrics) is skipped after reading its
/// metric name, unchecked.
///
/// Several times faster than [`samples`] on real bodies, where the few metrics a scheduler
/// reads sit among many histogram buckets; the price is that a malformed line of another
/// metric goes unnoticed.
///
/// # Example
///
/// ```
/// use pointsman_scraper::exposition::samples_named;
///
/// let text = "# TYPE a gauge\na 1\nb{not valid at all\na{x=\"y\"} 2\n";
/// let values: Vec<f64> = samples_named(text, &["a"])
///     .map(|s| s.map(|s| s.value))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(values, [1.0, 2.0]);
/// # Ok::<(), pointsman_scraper::exposition::ParseError>(())
/// ```
pub fn samples_named<'a, 'n>(text: &'a str, names: &'n [&'n str]) -> Samples<'a, 'n> {
    Samples {
        parser: parse(text),
        names: Some(names),
    }
}

/// One parsed line of an exposition: metadata or a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP <name> <text>`.
    Help {
        /// The metric family name.
        name: &'a str,
        /// The help text, still escaped (`\\`, `\n`).
        text: EscapedStr<'a>,
    },
    /// `# TYPE <name> <type>`.
    Type {
        /// The metric family name.
        name: &'a str,
        /// The declared type.
        kind: MetricType,
    },
    /// A sample line.
    Sample(Sample<'a>),
}

/// The type named by a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`: its samples are `_bucket{le=…}`, `_sum` and `_count` series.
    Histogram,
    /// `summary`: its samples are `{quantile=…}`, `_sum` and `_count` series.
    Summary,
    /// `untyped`.
    Untyped,
}

impl MetricType {
    /// The keyword as written in a `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
        }
    }

    fn from_keyword(word: &str) -> Option<Self> {
        Some(match word {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "summary" => Self::Summary,
            "untyped" => Self::Untyped,
            _ => return None,
        })
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sample: a series (name and labels) with its value and optional timestamp.
///
/// `Display` writes it back as one exposition line (without the newline) that parses to the
/// same name, labels, value and timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    /// The sample name, e.g. `vllm:num_requests_running` or `foo_bucket`.
    pub name: &'a str,
    /// The label set, parsed lazily.
    pub labels: Labels<'a>,
    /// The value; `NaN`, `+Inf` and `-Inf` included.
    pub value: f64,
    /// The timestamp in milliseconds since the Unix epoch, if the line has one.
    pub timestamp_ms: Option<i64>,
}

impl fmt::Display for Sample<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (name, value)) in self.labels.iter_escaped().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{name}=\"")?;
                if value.has_escapes() {
                    write_label_escaped(f, &value.unescape())?;
                } else {
                    // No backslash; the parser guarantees no raw quote or newline either.
                    f.write_str(value.raw())?;
                }
                f.write_str("\"")?;
            }
            f.write_str("}")?;
        }
        f.write_str(" ")?;
        write_value(f, self.value)?;
        if let Some(ts) = self.timestamp_ms {
            write!(f, " {ts}")?;
        }
        Ok(())
    }
}

/// Writes `value` as the exposition format spells it: `NaN`, `+Inf`, `-Inf`, or the shortest
/// decimal that reads back as the same `f64`.
pub fn write_value(out: &mut impl fmt::Write, value: f64) -> fmt::Result {
    if value.is_nan() {
        out.write_str("NaN")
    } else if value == f64::INFINITY {
        out.write_str("+Inf")
    } else if value == f64::NEG_INFINITY {
        out.write_str("-Inf")
    } else {
        write!(out, "{value:?}")
    }
}

/// Writes `value` escaped for use between the quotes of a label value: `\` as `\\`, `"` as
/// `\"` and a newline as `\n`.
pub fn write_label_escaped(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    let mut rest = value;
    while let Some(i) = rest.find(['\\', '"', '\n']) {
        let (plain, tail) = rest.split_at(i);
        out.write_str(plain)?;
        let mut chars = tail.chars();
        match chars.next() {
            Some('\\') => out.write_str("\\\\")?,
            Some('"') => out.write_str("\\\"")?,
            Some('\n') => out.write_str("\\n")?,
            _ => {}
        }
        rest = chars.as_str();
    }
    out.write_str(rest)
}

/// The label set of a [`Sample`], kept as the checked text between the braces and parsed
/// again on each iteration.
///
/// Iteration yields `(name, value)` pairs in input order; a value is borrowed unless it has
/// escapes. [`Labels::get`] and [`Labels::contains`] never allocate for unescaped values.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Labels<'a> {
    /// The label text after `{`, including the closing `}`; `"}"` when there are no labels.
    body: &'a str,
    /// Whether any value contains a backslash.
    escapes: bool,
}

impl<'a> Labels<'a> {
    /// An empty label set.
    pub const EMPTY: Labels<'static> = Labels {
        body: "}",
        escapes: false,
    };

    /// The text between the braces as written, e.g. `engine="0",model_name="x"`.
    pub fn raw(&self) -> &'a str {
        self.body.strip_suffix('}').unwrap_or(self.body)
    }

    /// Whether the set has no labels (`{}` or no braces at all).
    pub fn is_empty(&self) -> bool {
        self.iter_escaped().next().is_none()
    }

    /// Whether any label value contains an escape sequence.
    pub fn has_escapes(&self) -> bool {
        self.escapes
    }

    /// The `(name, value)` pairs, values unescaped (borrowed when they have no escapes).
    pub fn iter(&self) -> LabelsIter<'a> {
        LabelsIter {
            inner: self.iter_escaped(),
        }
    }

    /// The `(name, value)` pairs with values as written, for allocation-free comparisons.
    pub fn iter_escaped(&self) -> EscapedLabelsIter<'a> {
        EscapedLabelsIter {
            body: self.body,
            pos: 0,
        }
    }

    /// The unescaped value of the first label called `name`.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get_escaped(name).map(|v| v.unescape())
    }

    /// The escaped value of the first label called `name`.
    pub fn get_escaped(&self, name: &str) -> Option<EscapedStr<'a>> {
        self.iter_escaped()
            .find_map(|(n, v)| (n == name).then_some(v))
    }

    /// Whether the label `name` is present with the (unescaped) value `value`. Never allocates.
    pub fn contains(&self, name: &str, value: &str) -> bool {
        self.get_escaped(name)
            .is_some_and(|v| v.eq_unescaped(value))
    }
}

impl Default for Labels<'_> {
    fn default() -> Self {
        Labels::EMPTY
    }
}

impl fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Labels<'a> {
    type Item = (&'a str, Cow<'a, str>);
    type IntoIter = LabelsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &Labels<'a> {
    type Item = (&'a str, Cow<'a, str>);
    type IntoIter = LabelsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over a [`Labels`] set yielding unescaped values; see [`Labels::iter`].
#[derive(Debug, Clone)]
pub struct LabelsIter<'a> {
    inner: EscapedLabelsIter<'a>,
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(n, v)| (n, v.unescape()))
    }
}

impl FusedIterator for LabelsIter<'_> {}

/// Iterator over a [`Labels`] set yielding values as written; see [`Labels::iter_escaped`].
#[derive(Debug, Clone)]
pub struct EscapedLabelsIter<'a> {
    body: &'a str,
    pos: usize,
}

impl<'a> Iterator for EscapedLabelsIter<'a> {
    type Item = (&'a str, EscapedStr<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        // The body was checked when the line was parsed, so an error here cannot happen; if it
        // did, ending the iteration is the safe answer.
        match scan_label(self.body, self.pos) {
            Ok(Some(label)) => {
                self.pos = label.next;
                Some((label.name, label.value))
            }
            Ok(None) | Err(_) => {
                self.pos = self.body.len();
                None
            }
        }
    }
}

impl FusedIterator for EscapedLabelsIter<'_> {}

/// A string as written in the exposition, possibly containing escape sequences.
///
/// Label values know the escapes `\\`, `\"` and `\n`; `# HELP` text knows `\\` and `\n`. Any
/// other backslash sequence is kept as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscapedStr<'a> {
    raw: &'a str,
    /// False when `raw` is known to hold no backslash.
    maybe_escapes: bool,
    quote_escape: bool,
}

impl<'a> EscapedStr<'a> {
    /// A label value as written between the quotes.
    pub fn label_value(raw: &'a str) -> Self {
        Self {
            raw,
            maybe_escapes: true,
            quote_escape: true,
        }
    }

    /// A `# HELP` text as written.
    pub fn help_text(raw: &'a str) -> Self {
        Self {
            raw,
            maybe_escapes: true,
            quote_escape: false,
        }
    }

    /// The text as written.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the text contains a backslash.
    pub fn has_escapes(&self) -> bool {
        self.maybe_escapes && self.raw.contains('\\')
    }

    /// The text with escapes resolved; borrowed when there are none.
    pub fn unescape(&self) -> Cow<'a, str> {
        if !self.has_escapes() {
            return Cow::Borrowed(self.raw);
        }
        let mut out = String::with_capacity(self.raw.len());
        self.for_each_piece(|piece| {
            out.push_str(piece);
            true
        });
        Cow::Owned(out)
    }

    /// Whether the unescaped text equals `other`, without allocating.
    pub fn eq_unescaped(&self, other: &str) -> bool {
        if !self.has_escapes() {
            return self.raw == other;
        }
        let mut rest = other;
        let all_matched = self.for_each_piece(|piece| match rest.strip_prefix(piece) {
            Some(tail) => {
                rest = tail;
                true
            }
            None => false,
        });
        all_matched && rest.is_empty()
    }

    /// Calls `f` with consecutive unescaped pieces; stops early when `f` returns false.
    /// Returns false if stopped early.
    fn for_each_piece(&self, mut f: impl FnMut(&str) -> bool) -> bool {
        let mut rest = self.raw;
        while let Some(i) = rest.find('\\') {
            let (plain, tail) = rest.split_at(i);
            if !f(plain) {
                return false;
            }
            let mut chars = tail.chars();
            chars.next(); // the backslash
            let after = chars.as_str();
            let mut next = after.chars();
            let piece = match next.next() {
                Some('\\') => "\\",
                Some('n') => "\n",
                Some('"') if self.quote_escape => "\"",
                _ => {
                    // Unknown escape or trailing backslash: keep the backslash as written.
                    if !f("\\") {
                        return false;
                    }
                    rest = after;
                    continue;
                }
            };
            if !f(piece) {
                return false;
            }
            rest = next.as_str();
        }
        f(rest)
    }
}

impl fmt::Display for EscapedStr<'_> {
    /// Writes the unescaped text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.unescape())
    }
}

/// Iterator over all entries of an exposition; see [`parse`].
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Parser<'a> {
    /// The 1-based number of the line last read (0 before the first).
    pub fn line(&self) -> usize {
        self.line
    }

    /// Reads the next line, returning it without its line ending.
    fn next_line(&mut self) -> Option<&'a str> {
        let rest = self.text.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let (line, advance) = match memchr(b'\n', rest.as_bytes()) {
            Some(i) => (rest.get(..i)?, i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        self.line += 1;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.next_line()?;
            match parse_line(line) {
                Ok(Some(entry)) => return Some(Ok(entry)),
                Ok(None) => {}
                Err(e) => return Some(Err(ParseError::new(line, self.line, *e))),
            }
        }
    }
}

impl FusedIterator for Parser<'_> {}

/// Iterator over the samples of an exposition; see [`samples`] and [`samples_named`].
#[derive(Debug, Clone)]
pub struct Samples<'a, 'n> {
    parser: Parser<'a>,
    /// Only these metrics, other lines unchecked; `None`: every line, checked.
    names: Option<&'n [&'n str]>,
}

impl Samples<'_, '_> {
    /// The 1-based number of the line last read (0 before the first).
    pub fn line(&self) -> usize {
        self.parser.line
    }
}

impl<'a> Iterator for Samples<'a, '_> {
    type Item = Result<Sample<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.parser.next_line()?;
            let b = line.as_bytes();
            let start = skip_blanks(b, 0);
            let result = match b.get(start) {
                None => continue,
                // Comments are still checked when every line is, but their entry is dropped.
                Some(b'#') => match self.names {
                    Some(_) => continue,
                    None => match parse_comment(line, start + 1) {
                        Ok(_) => continue,
                        Err(e) => Err(e),
                    },
                },
                Some(_) => {
                    if let Some(names) = self.names {
                        if !starts_with_any(b.get(start..).unwrap_or_default(), names) {
                            continue;
                        }
                    }
                    parse_sample(line, start)
                }
            };
            return Some(result.map_err(|e| ParseError::new(line, self.parser.line, *e)));
        }
    }
}

/// Whether `line` starts with the metric name of one of `names`. Most lines are rejected by
/// one byte per name: the one just past where that name would end must end a metric name
/// (`{`, a blank or the line's end).
fn starts_with_any(line: &[u8], names: &[&str]) -> bool {
    names.iter().any(|name| {
        line.get(name.len())
            .is_none_or(|&c| c == b'{' || is_blank(c))
            && !name.is_empty()
            && line.get(..name.len()) == Some(name.as_bytes())
    })
}

impl FusedIterator for Samples<'_, '_> {}

/// A malformed line: where it is and what was expected there.
///
/// Displays as `line 12, column 30: expected '=' after label name "model_name"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
#[non_exhaustive]
pub struct ParseError {
    /// The 1-based line number.
    pub line: usize,
    /// The 1-based column, counted in characters.
    pub column: usize,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    #[cold]
    fn new(line_text: &str, line: usize, (byte_pos, kind): (usize, ParseErrorKind)) -> Self {
        let column = line_text
            .get(..byte_pos)
            .map_or(byte_pos, |prefix| prefix.chars().count())
            + 1;
        Self { line, column, kind }
    }
}

/// What a [`ParseError`] found wrong, phrased as what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A sample line does not start with a metric name.
    #[error("expected a metric name, found {found}")]
    ExpectedMetricName {
        /// What was there instead.
        found: Found,
    },
    /// The metric name is followed by something other than `{` or a blank.
    #[error("expected '{{' or whitespace after metric name \"{name}\", found {found}")]
    ExpectedLabelsOrValue {
        /// The metric name.
        name: String,
        /// What was there instead.
        found: Found,
    },
    /// A label set holds something other than a label name or `}`.
    #[error("expected a label name or '}}', found {found}")]
    ExpectedLabelName {
        /// What was there instead.
        found: Found,
    },
    /// A label name is not followed by `=`.
    #[error("expected '=' after label name \"{label}\", found {found}")]
    ExpectedEquals {
        /// The label name.
        label: String,
        /// What was there instead.
        found: Found,
    },
    /// `label=` is not followed by an opening `"`.
    #[error("expected '\"' to open the value of label \"{label}\", found {found}")]
    ExpectedOpeningQuote {
        /// The label name.
        label: String,
        /// What was there instead.
        found: Found,
    },
    /// A label value runs to the end of the line.
    #[error("expected '\"' to close the value of label \"{label}\", found end of line")]
    UnterminatedLabelValue {
        /// The label name.
        label: String,
    },
    /// A label value is followed by something other than `,` or `}`.
    #[error("expected ',' or '}}' after the value of label \"{label}\", found {found}")]
    ExpectedCommaOrBrace {
        /// The label name.
        label: String,
        /// What was there instead.
        found: Found,
    },
    /// The series has no value.
    #[error("expected a sample value after \"{name}\", found end of line")]
    MissingValue {
        /// The metric name.
        name: String,
    },
    /// The value is not a number.
    #[error("expected a sample value (a float, NaN, +Inf or -Inf), found \"{token}\"")]
    InvalidValue {
        /// The text found.
        token: String,
    },
    /// The timestamp is not an integer.
    #[error("expected an integer timestamp in milliseconds, found \"{token}\"")]
    InvalidTimestamp {
        /// The text found.
        token: String,
    },
    /// Something follows the last field of the line.
    #[error("expected end of line after {after}, found {found}")]
    TrailingText {
        /// The last field read: `the timestamp` or `the metric type`.
        after: &'static str,
        /// What was there instead.
        found: Found,
    },
    /// `# HELP` or `# TYPE` is not followed by a metric name.
    #[error("expected a metric name after '# {keyword}', found {found}")]
    ExpectedMetadataName {
        /// `HELP` or `TYPE`.
        keyword: &'static str,
        /// What was there instead.
        found: Found,
    },
    /// The `# TYPE` keyword is missing or unknown.
    #[error(
        "expected a metric type (counter, gauge, histogram, summary or untyped) after \
         '# TYPE {name}', found {found}"
    )]
    InvalidType {
        /// The metric family name.
        name: String,
        /// What was there instead.
        found: Found,
    },
}

/// What a parser found where it expected something else.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found {
    /// The line ended.
    EndOfLine,
    /// This character.
    Char(char),
    /// This word.
    Word(String),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EndOfLine => f.write_str("end of line"),
            Self::Char(c) if c.is_control() => write!(f, "'{}'", c.escape_debug()),
            Self::Char(c) => write!(f, "'{c}'"),
            Self::Word(w) => write!(f, "\"{}\"", w.escape_debug()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Line parsing. Positions are byte offsets into one line; every delimiter is ASCII, so every
// slice boundary is a char boundary and `str::get` never returns `None` in practice.

/// A line-level error: byte position and kind. Boxed so that the `Ok` path stays small.
type LineError = Box<(usize, ParseErrorKind)>;

#[cold]
#[inline(never)]
fn fail(pos: usize, kind: ParseErrorKind) -> LineError {
    Box::new((pos, kind))
}

const METRIC_START: u8 = 1;
const METRIC_CONT: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL_CONT: u8 = 8;

/// Character classes for names, indexed by byte.
static CLASS: [u8; 256] = build_class();

#[expect(clippy::indexing_slicing, reason = "b < 256 indexes a [u8; 256]")]
const fn build_class() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let alpha = c.is_ascii_alphabetic() || c == b'_';
        let digit = c.is_ascii_digit();
        let mut v = 0;
        if alpha || c == b':' {
            v |= METRIC_START | METRIC_CONT;
        }
        if digit {
            v |= METRIC_CONT | LABEL_CONT;
        }
        if alpha {
            v |= LABEL_START | LABEL_CONT;
        }
        t[b] = v;
        b += 1;
    }
    t
}

#[inline]
fn class(b: u8) -> u8 {
    // A `[u8; 256]` indexed by a `u8` cannot be out of bounds.
    CLASS.get(usize::from(b)).copied().unwrap_or(0)
}

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline]
fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| is_blank(c)) {
        i += 1;
    }
    i
}

/// Returns the end of the name starting at `i`, or `i` if `b[i]` cannot start one.
#[inline]
fn scan_name(b: &[u8], i: usize, start: u8, cont: u8) -> usize {
    match b.get(i) {
        Some(&c) if class(c) & start != 0 => {}
        _ => return i,
    }
    let mut j = i + 1;
    // Eight bytes at a time without a branch per byte: names are 10-50 bytes long.
    while let Some(chunk) = b.get(j..).and_then(<[u8]>::first_chunk::<8>) {
        if chunk.iter().fold(cont, |all, &c| all & class(c)) == 0 {
            break;
        }
        j += 8;
    }
    while b.get(j).is_some_and(|&c| class(c) & cont != 0) {
        j += 1;
    }
    j
}

/// Returns the position of the first `"` or `\` at or after `k`, reading eight bytes at a time
/// (the "has zero byte" bit trick on `x ^ broadcast(byte)`).
#[inline]
fn find_quote_or_backslash(b: &[u8], mut k: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = LO * b'"' as u64;
    const BACKSLASHES: u64 = LO * b'\\' as u64;
    while let Some(chunk) = b.get(k..).and_then(<[u8]>::first_chunk::<8>) {
        let x = u64::from_le_bytes(*chunk);
        let q = x ^ QUOTES;
        let s = x ^ BACKSLASHES;
        // The lowest set bit marks the first matching byte exactly (borrows only propagate
        // upwards).
        let hits = ((q.wrapping_sub(LO) & !q) | (s.wrapping_sub(LO) & !s)) & HI;
        if hits != 0 {
            return Some(k + (hits.trailing_zeros() / 8) as usize);
        }
        k += 8;
    }
    while let Some(&c) = b.get(k) {
        if c == b'"' || c == b'\\' {
            return Some(k);
        }
        k += 1;
    }
    None
}

/// Returns the position of the first blank at or after `i`, or the end. Tokens are short, so a
/// plain loop beats a vectorised search here.
#[inline]
fn scan_until_blank(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| !is_blank(c)) {
        i += 1;
    }
    i
}

fn found_at(line: &str, i: usize) -> Found {
    match line.get(i..).and_then(|s| s.chars().next()) {
        Some(c) => Found::Char(c),
        None => Found::EndOfLine,
    }
}

fn word_at(line: &str, i: usize) -> Found {
    let end = scan_until_blank(line.as_bytes(), i);
    match line.get(i..end) {
        Some("") | None => Found::EndOfLine,
        Some(w) => Found::Word(w.to_owned()),
    }
}

#[inline]
fn slice(line: &str, from: usize, to: usize) -> &str {
    line.get(from..to).unwrap_or_default()
}

fn parse_line(line: &str) -> Result<Option<Entry<'_>>, LineError> {
    let b = line.as_bytes();
    let start = skip_blanks(b, 0);
    match b.get(start) {
        None => Ok(None),
        Some(b'#') => parse_comment(line, start + 1),
        Some(_) => parse_sample(line, start).map(|s| Some(Entry::Sample(s))),
    }
}

fn parse_comment(line: &str, after_hash: usize) -> Result<Option<Entry<'_>>, LineError> {
    let b = line.as_bytes();
    let kw_start = skip_blanks(b, after_hash);
    let kw_end = scan_until_blank(b, kw_start);
    let keyword = match slice(line, kw_start, kw_end) {
        "HELP" => "HELP",
        "TYPE" => "TYPE",
        _ => return Ok(None), // an ordinary comment
    };
    let name_start = skip_blanks(b, kw_end);
    let name_end = scan_name(b, name_start, METRIC_START, METRIC_CONT);
    if name_end == name_start || b.get(name_end).is_some_and(|&c| !is_blank(c)) {
        return Err(fail(
            name_start,
            ParseErrorKind::ExpectedMetadataName {
                keyword,
                found: word_at(line, name_start),
            },
        ));
    }
    let name = slice(line, name_start, name_end);
    let rest_start = skip_blanks(b, name_end);
    if keyword == "HELP" {
        let text = line.get(rest_start..).unwrap_or_default();
        return Ok(Some(Entry::Help {
            name,
            text: EscapedStr::help_text(text),
        }));
    }
    let type_end = scan_until_blank(b, rest_start);
    let kind = MetricType::from_keyword(slice(line, rest_start, type_end)).ok_or_else(|| {
        fail(
            rest_start,
            ParseErrorKind::InvalidType {
                name: name.to_owned(),
                found: word_at(line, rest_start),
            },
        )
    })?;
    let end = skip_blanks(b, type_end);
    if end < b.len() {
        return Err(fail(
            end,
            ParseErrorKind::TrailingText {
                after: "the metric type",
                found: found_at(line, end),
            },
        ));
    }
    Ok(Some(Entry::Type { name, kind }))
}

#[inline]
fn parse_sample(line: &str, start: usize) -> Result<Sample<'_>, LineError> {
    let b = line.as_bytes();
    let name_end = scan_name(b, start, METRIC_START, METRIC_CONT);
    if name_end == start {
        return Err(fail(
            start,
            ParseErrorKind::ExpectedMetricName {
                found: found_at(line, start),
            },
        ));
    }
    let name = slice(line, start, name_end);
    let mut i = skip_blanks(b, name_end);
    let labels = if b.get(i) == Some(&b'{') {
        let (labels, after) = parse_labels(line, i + 1)?;
        i = skip_blanks(b, after);
        labels
    } else {
        if i == name_end && i < b.len() {
            return Err(fail(
                i,
                ParseErrorKind::ExpectedLabelsOrValue {
                    name: name.to_owned(),
                    found: found_at(line, i),
                },
            ));
        }
        Labels::EMPTY
    };
    if i >= b.len() {
        return Err(fail(
            i,
            ParseErrorKind::MissingValue {
                name: name.to_owned(),
            },
        ));
    }
    let value_end = scan_until_blank(b, i);
    let token = slice(line, i, value_end);
    let value = parse_value(token).ok_or_else(|| {
        fail(
            i,
            ParseErrorKind::InvalidValue {
                token: token.to_owned(),
            },
        )
    })?;
    i = skip_blanks(b, value_end);
    let mut timestamp_ms = None;
    if i < b.len() {
        let ts_end = scan_until_blank(b, i);
        let token = slice(line, i, ts_end);
        timestamp_ms = Some(token.parse::<i64>().map_err(|_| {
            fail(
                i,
                ParseErrorKind::InvalidTimestamp {
                    token: token.to_owned(),
                },
            )
        })?);
        i = skip_blanks(b, ts_end);
        if i < b.len() {
            return Err(fail(
                i,
                ParseErrorKind::TrailingText {
                    after: "the timestamp",
                    found: found_at(line, i),
                },
            ));
        }
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// Parses a sample value. Plain decimals without exponent take a short path that is exact
/// (Clinger's fast path); everything else goes to `f64::from_str`.
#[inline]
fn parse_value(token: &str) -> Option<f64> {
    // 10^0 ..= 10^22 are exact in f64.
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let b = token.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, b.get(1..).unwrap_or_default()),
        _ => (false, b),
    };
    let mut mantissa: u64 = 0;
    let mut n_digits = 0usize;
    let mut frac_digits = 0usize;
    let mut seen_dot = false;
    let mut ok = !digits.is_empty() && digits.len() <= 17;
    if ok {
        for &c in digits {
            match c {
                b'0'..=b'9' => {
                    mantissa = mantissa * 10 + u64::from(c - b'0');
                    n_digits += 1;
                    if seen_dot {
                        frac_digits += 1;
                    }
                }
                b'.' if !seen_dot => seen_dot = true,
                _ => {
                    ok = false;
                    break;
                }
            }
        }
    }
    // At most 17 characters, so at most 17 digits: mantissa < 10^17, but only values up to
    // 2^53 are exact.
    if ok && n_digits > 0 && mantissa <= (1u64 << 53) {
        // "11.0", "4653.0": drop fractional zeros so that most values need no division.
        while frac_digits > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            frac_digits -= 1;
        }
        if frac_digits == 0 {
            let v = mantissa as f64; // exact: mantissa <= 2^53
            return Some(if neg { -v } else { v });
        }
        if let Some(&scale) = POW10.get(frac_digits) {
            let m = mantissa as f64; // exact: mantissa <= 2^53
            let v = m / scale;
            return Some(if neg { -v } else { v });
        }
    }
    token.parse::<f64>().ok()
}

fn parse_labels(line: &str, open: usize) -> Result<(Labels<'_>, usize), LineError> {
    let mut pos = open;
    let mut escapes = false;
    loop {
        match scan_label(line, pos)? {
            Some(label) => {
                escapes |= label.value.maybe_escapes;
                pos = label.next;
            }
            None => {
                // scan_label checked that the closing brace follows the blanks at `pos`.
                let close = skip_blanks(line.as_bytes(), pos);
                let body = line.get(open..=close).unwrap_or("}");
                let labels = Labels { body, escapes };
                return Ok((labels, close + 1));
            }
        }
    }
}

struct RawLabel<'a> {
    name: &'a str,
    value: EscapedStr<'a>,
    /// Where the next label (or the closing brace) starts.
    next: usize,
}

/// Scans `blanks name blanks = blanks "value" blanks [,]` starting at `i`. Returns `None` when
/// `i` (after blanks) is at the closing `}`; on success `next` is just after the comma, or at
/// the closing brace.
#[inline]
fn scan_label(s: &str, i: usize) -> Result<Option<RawLabel<'_>>, LineError> {
    let b = s.as_bytes();
    let start = skip_blanks(b, i);
    if b.get(start) == Some(&b'}') {
        return Ok(None);
    }
    let name_end = scan_name(b, start, LABEL_START, LABEL_CONT);
    if name_end == start {
        return Err(fail(
            start,
            ParseErrorKind::ExpectedLabelName {
                found: found_at(s, start),
            },
        ));
    }
    let name = slice(s, start, name_end);
    let mut j = skip_blanks(b, name_end);
    if b.get(j) != Some(&b'=') {
        return Err(fail(
            j,
            ParseErrorKind::ExpectedEquals {
                label: name.to_owned(),
                found: found_at(s, j),
            },
        ));
    }
    j = skip_blanks(b, j + 1);
    if b.get(j) != Some(&b'"') {
        return Err(fail(
            j,
            ParseErrorKind::ExpectedOpeningQuote {
                label: name.to_owned(),
                found: found_at(s, j),
            },
        ));
    }
    let value_start = j + 1;
    let mut k = value_start;
    let mut escapes = false;
    let value_end = loop {
        match find_quote_or_backslash(b, k).map(|p| (p, b.get(p))) {
            Some((p, Some(b'"'))) => break p,
            // A backslash escapes the next byte, whatever it is. If that byte starts a
            // multi-byte character, the scan resumes inside it, which is harmless: continuation
            // bytes are never '"' or '\\'.
            Some((p, _)) => {
                escapes = true;
                k = p + 2;
            }
            None => {
                return Err(fail(
                    b.len(),
                    ParseErrorKind::UnterminatedLabelValue {
                        label: name.to_owned(),
                    },
                ));
            }
        }
    };
    let value = EscapedStr {
        raw: slice(s, value_start, value_end),
        maybe_escapes: escapes,
        quote_escape: true,
    };
    let after = skip_blanks(b, value_end + 1);
    let next = match b.get(after) {
        Some(b',') => after + 1,
        Some(b'}') => after,
        _ => {
            return Err(fail(
                after,
                ParseErrorKind::ExpectedCommaOrBrace {
                    label: name.to_owned(),
                    found: found_at(s, after),
                },
            ));
        }
    };
    Ok(Some(RawLabel { name, value, next }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn one(text: &str) -> Sample<'_> {
        let all: Vec<_> = samples(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 1, "{text:?}");
        all[0]
    }

    fn err(text: &str) -> ParseError {
        samples(text)
            .find_map(Result::err)
            .unwrap_or_else(|| panic!("no error for {text:?}"))
    }

    fn pairs(s: &Sample<'_>) -> Vec<(String, String)> {
        s.labels
            .iter()
            .map(|(n, v)| (n.to_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn plain_sample_without_labels() {
        let s = one("process_open_fds 34.0\n");
        assert_eq!(s.name, "process_open_fds");
        assert!(s.labels.is_empty());
        assert_eq!(s.value, 34.0);
        assert_eq!(s.timestamp_ms, None);
    }

    #[test]
    fn names_with_colons_and_labels() {
        let s = one(r#"vllm:num_requests_running{engine="0",model_name="tiny-llama"} 4.0"#);
        assert_eq!(s.name, "vllm:num_requests_running");
        assert_eq!(
            pairs(&s),
            [
                ("engine".into(), "0".into()),
                ("model_name".into(), "tiny-llama".into())
            ]
        );
        assert_eq!(s.labels.raw(), r#"engine="0",model_name="tiny-llama""#);
        assert!(s.labels.contains("engine", "0"));
        assert!(!s.labels.contains("engine", "1"));
        assert!(!s.labels.contains("missing", "0"));
    }

    #[test]
    fn escapes_in_label_values() {
        // Raw text: a="x\\y" b="say \"hi\"" c="l1\nl2" d="\t kept"
        let s = one(r#"m{a="x\\y",b="say \"hi\"",c="l1\nl2",d="\t kept"} 1"#);
        assert!(s.labels.has_escapes());
        assert_eq!(s.labels.get("a").as_deref(), Some(r"x\y"));
        assert_eq!(s.labels.get("b").as_deref(), Some(r#"say "hi""#));
        assert_eq!(s.labels.get("c").as_deref(), Some("l1\nl2"));
        // Unknown escapes are kept as written (Prometheus server behaviour).
        assert_eq!(s.labels.get("d").as_deref(), Some(r"\t kept"));
        assert!(s.labels.contains("b", r#"say "hi""#));
        assert!(!s.labels.contains("b", r#"say "hi"!"#));
        assert!(!s.labels.contains("b", r#"say "hi"#));
        assert!(matches!(s.labels.get("a"), Some(Cow::Owned(_))));
    }

    #[test]
    fn unescaped_values_are_borrowed() {
        let s = one(r#"m{a="plain"} 1"#);
        assert!(!s.labels.has_escapes());
        assert!(matches!(s.labels.get("a"), Some(Cow::Borrowed("plain"))));
    }

    #[test]
    fn values_with_braces_commas_and_unicode() {
        let s = one(r#"m{a="{x,y}=z",b="naïve ✓"} 1"#);
        assert_eq!(s.labels.get("a").as_deref(), Some("{x,y}=z"));
        assert_eq!(s.labels.get("b").as_deref(), Some("naïve ✓"));
    }

    #[test]
    fn special_values() {
        assert!(one("m NaN").value.is_nan());
        assert_eq!(one("m +Inf").value, f64::INFINITY);
        assert_eq!(one("m -Inf").value, f64::NEG_INFINITY);
        assert_eq!(
            one("m{le=\"+Inf\"} 7").labels.get("le").as_deref(),
            Some("+Inf")
        );
    }

    #[test]
    fn exponent_and_decimal_values() {
        assert_eq!(
            one("m 1.7953237445354342e+09").value,
            1.795_323_744_535_434_2e9
        );
        assert_eq!(one("m 4.716650496e+09").value, 4_716_650_496.0);
        assert_eq!(one("m 1E-3").value, 0.001);
        assert_eq!(one("m -2.5").value, -2.5);
        assert_eq!(one("m .5").value, 0.5);
        assert_eq!(one("m 0.00293040293040292").value, 0.002_930_402_930_402_92);
        assert_eq!(one("m 9.209999999999999").value, 9.209_999_999_999_999);
        assert_eq!(
            one("m 12345678901234567890").value,
            1.234_567_890_123_456_8e19
        );
        assert_eq!(one("m -0").value.to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn fast_path_agrees_with_std() {
        for t in [
            "0",
            "0.0",
            "1",
            "11.0",
            "4653.0",
            "0.1",
            "0.3",
            "123.456",
            "9007199254740993",
            "9007199254740992",
            "0.00000000000000001",
            "99999999999999999",
            "1.",
            "-.5",
            "0.28",
            "86.50814177726902",
            "866964.5791549598",
        ] {
            let expected: f64 = t.parse().unwrap();
            assert_eq!(
                parse_value(t).map(f64::to_bits),
                Some(expected.to_bits()),
                "{t}"
            );
        }
        for bad in ["", "-", ".", "1..2", "1.2.3", "abc", "--1", "0x10", "1_000"] {
            assert_eq!(parse_value(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        let s = one("m{a=\"b\"} 3 1700000000000");
        assert_eq!(s.timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(one("m 3 -5").timestamp_ms, Some(-5));
        let e = err("m 3 1.5e12");
        assert_eq!((e.line, e.column), (1, 5));
        assert!(matches!(e.kind, ParseErrorKind::InvalidTimestamp { .. }));
    }

    #[test]
    fn trailing_comma_and_whitespace() {
        let s = one("  m { a = \"1\" ,\tb=\"2\", }  5 \t 9  ");
        assert_eq!(
            pairs(&s),
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(s.value, 5.0);
        assert_eq!(s.timestamp_ms, Some(9));
        assert!(one("m{} 1").labels.is_empty());
    }

    #[test]
    fn lone_comma_is_rejected() {
        let e = err("m{,} 1");
        assert_eq!(e.column, 3);
        assert!(matches!(e.kind, ParseErrorKind::ExpectedLabelName { .. }));
    }

    #[test]
    fn no_blank_needed_after_labels() {
        assert_eq!(one("m{a=\"b\"}1").value, 1.0);
    }

    #[test]
    fn crlf_and_blank_lines_and_no_final_newline() {
        let text = "# HELP a help\r\n# TYPE a gauge\r\n\r\n   \r\na 1\r\n\n\ta{x=\"y\"} 2";
        let all: Vec<_> = samples(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].value, 1.0);
        assert_eq!(all[1].labels.get("x").as_deref(), Some("y"));
    }

    #[test]
    fn help_and_type_entries() {
        let text = "# HELP m Some \\\\ text\\nmore\n# TYPE m histogram\n# random comment\n#\nm_bucket{le=\"1\"} 0\n";
        let entries: Vec<_> = parse(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.len(), 3);
        match entries[0] {
            Entry::Help { name, text } => {
                assert_eq!(name, "m");
                assert_eq!(text.unescape(), "Some \\ text\nmore");
            }
            _ => panic!("expected HELP"),
        }
        assert_eq!(
            entries[1],
            Entry::Type {
                name: "m",
                kind: MetricType::Histogram
            }
        );
        assert!(matches!(entries[2], Entry::Sample(s) if s.name == "m_bucket"));
        // HELP without text is fine.
        assert!(matches!(
            parse("# HELP m\n").next(),
            Some(Ok(Entry::Help { name: "m", .. }))
        ));
    }

    #[test]
    fn error_positions_and_messages() {
        let cases: &[(&str, usize, usize, &str)] = &[
            (
                "ok 1\nvllm:x{engine=\"0\",model_name \"x\"} 1",
                2,
                30,
                "line 2, column 30: expected '=' after label name \"model_name\", found '\"'",
            ),
            (
                "m{a=1} 2",
                1,
                5,
                "line 1, column 5: expected '\"' to open the value of label \"a\", found '1'",
            ),
            (
                "m{a=\"1} 2",
                1,
                10,
                "line 1, column 10: expected '\"' to close the value of label \"a\", found end of line",
            ),
            (
                "m{a=\"1\" b=\"2\"} 2",
                1,
                9,
                "line 1, column 9: expected ',' or '}' after the value of label \"a\", found 'b'",
            ),
            (
                "m{1a=\"1\"} 2",
                1,
                3,
                "line 1, column 3: expected a label name or '}', found '1'",
            ),
            (
                "m{\"a\"=\"1\"} 2",
                1,
                3,
                "line 1, column 3: expected a label name or '}', found '\"'",
            ),
            (
                "9m 1",
                1,
                1,
                "line 1, column 1: expected a metric name, found '9'",
            ),
            (
                "m",
                1,
                2,
                "line 1, column 2: expected a sample value after \"m\", found end of line",
            ),
            (
                "m{a=\"b\"}",
                1,
                9,
                "line 1, column 9: expected a sample value after \"m\", found end of line",
            ),
            (
                "m-x 1",
                1,
                2,
                "line 1, column 2: expected '{' or whitespace after metric name \"m\", found '-'",
            ),
            (
                "m abc",
                1,
                3,
                "line 1, column 3: expected a sample value (a float, NaN, +Inf or -Inf), found \"abc\"",
            ),
            (
                "m 1 2 3",
                1,
                7,
                "line 1, column 7: expected end of line after the timestamp, found '3'",
            ),
            (
                "# TYPE m gauges",
                1,
                10,
                "line 1, column 10: expected a metric type (counter, gauge, histogram, summary or untyped) after '# TYPE m', found \"gauges\"",
            ),
            (
                "# TYPE m",
                1,
                9,
                "line 1, column 9: expected a metric type (counter, gauge, histogram, summary or untyped) after '# TYPE m', found end of line",
            ),
            (
                "# TYPE m gauge x",
                1,
                16,
                "line 1, column 16: expected end of line after the metric type, found 'x'",
            ),
            (
                "# HELP 1x text",
                1,
                8,
                "line 1, column 8: expected a metric name after '# HELP', found \"1x\"",
            ),
            (
                "m{a=\"é\"} x",
                1,
                10,
                "line 1, column 10: expected a sample value (a float, NaN, +Inf or -Inf), found \"x\"",
            ),
            (
                "a 1\r\n\r\nb{x=\"1\",y} 2\r\n",
                3,
                10,
                "line 3, column 10: expected '=' after label name \"y\", found '}'",
            ),
        ];
        for &(text, line, column, message) in cases {
            let e = err(text);
            assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
            assert_eq!(e.to_string(), message, "{text:?}");
        }
    }

    #[test]
    fn iteration_continues_after_an_error() {
        let results: Vec<_> = samples("a 1\nb{ 2\nc 3\n").collect();
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok());
        assert_eq!(results[1].as_ref().unwrap_err().line, 2);
        assert_eq!(results[2].as_ref().unwrap().name, "c");
    }

    #[test]
    fn display_round_trips() {
        let text = r#"m{a="x\\y",b="q\"",c="n\n",d="\z"} -Inf 17"#;
        let s = one(text);
        let again = s.to_string();
        let t = one(&again);
        assert_eq!(t.name, s.name);
        assert_eq!(pairs(&t), pairs(&s));
        assert_eq!(t.value, s.value);
        assert_eq!(t.timestamp_ms, s.timestamp_ms);
        assert_eq!(one("m 1e300").to_string(), "m 1e300");
        assert_eq!(one("m NaN").to_string(), "m NaN");
        assert_eq!(one("m{} 0.5").to_string(), "m 0.5");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "",
            "\n",
            "#",
            "# ",
            "# HELP",
            "# TYPE",
            "{",
            "m{",
            "m{a",
            "m{a=",
            "m{a=\"",
            "m{a=\"\\",
            "m{a=\"\\\"",
            "m{a=\"x\"",
            "m{a=\"x\",",
            "m 1 ",
            "\r",
            "m\r1",
            "é 1",
            "m{é=\"1\"} 1",
            "m{a=\"\\é\"} 1",
        ] {
            for r in parse(text) {
                let _ = r.map(|e| format!("{e:?}"));
            }
        }
    }

    #[test]
    fn backslash_before_multibyte_char() {
        let s = one("m{a=\"\\é\"} 1");
        assert_eq!(s.labels.get("a").as_deref(), Some("\\é"));
    }
}

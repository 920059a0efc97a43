//! Property tests: random valid expositions parse back to the series they were written from,
//! and no input makes the parser panic or misreport where it failed.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;

use pointsman_scraper::exposition::{Sample, parse, samples, write_label_escaped};
use proptest::prelude::*;

/// One series as generated, before it is written out.
#[derive(Debug, Clone)]
struct Series {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    value_style: u8,
    timestamp_ms: Option<i64>,
}

/// Layout choices that must not change what is parsed.
#[derive(Debug, Clone)]
struct Layout {
    crlf: bool,
    blank: &'static str,
    trailing_comma: bool,
    metadata: bool,
    final_newline: bool,
}

fn metric_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_:][a-zA-Z0-9_:]{0,24}"
}

fn label_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,12}"
}

fn label_value() -> impl Strategy<Value = String> {
    // Escapes, delimiters the parser must not stop at, and multi-byte characters.
    prop::collection::vec(
        prop_oneof![
            4 => "[a-zA-Z0-9 ._/+-]",
            1 => prop::sample::select(vec![
                "\\", "\"", "\n", "{", "}", ",", "=", "#", "\t", "é", "✓", "𝄞", "\\n", "\r",
            ])
            .prop_map(str::to_owned),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        2 => (0u32..100_000).prop_map(f64::from),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        1 => -1.0e6..1.0e6f64,
    ]
}

fn series() -> impl Strategy<Value = Series> {
    (
        metric_name(),
        prop::collection::vec((label_name(), label_value()), 0..5),
        value(),
        any::<u8>(),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(name, labels, value, value_style, timestamp_ms)| Series {
            name,
            labels,
            value,
            value_style,
            timestamp_ms,
        })
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        any::<bool>(),
        prop::sample::select(vec!["", " ", "\t", "  \t "]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(crlf, blank, trailing_comma, metadata, final_newline)| Layout {
                crlf,
                blank,
                trailing_comma,
                metadata,
                final_newline,
            },
        )
}

/// Writes a value in one of the spellings real servers use.
fn write_value(out: &mut String, v: f64, style: u8) {
    if v.is_nan() {
        out.push_str(["NaN", "nan", "NaN"][usize::from(style % 3)]);
    } else if v.is_infinite() {
        let inf = ["Inf", "inf", "Infinity"][usize::from(style % 3)];
        out.push(if v > 0.0 { '+' } else { '-' });
        out.push_str(inf);
    } else {
        match style % 4 {
            0 => write!(out, "{v:?}"),
            1 => write!(out, "{v}"),
            2 => write!(out, "{v:e}"),
            _ => write!(out, "{v:E}"),
        }
        .unwrap();
    }
}

fn render(all: &[Series], layout: &Layout) -> String {
    let nl = if layout.crlf { "\r\n" } else { "\n" };
    let b = layout.blank;
    let mut out = String::new();
    for (i, s) in all.iter().enumerate() {
        if layout.metadata {
            write!(out, "# HELP {} help \\\\ text \\n {i}{nl}", s.name).unwrap();
            write!(out, "# TYPE {} gauge{nl}", s.name).unwrap();
            write!(out, "# a comment {{ \" \\{nl}{b}{nl}").unwrap();
        }
        write!(out, "{b}{}", s.name).unwrap();
        if !s.labels.is_empty() || s.value_style % 5 == 0 {
            write!(out, "{b}{{").unwrap();
            for (j, (k, v)) in s.labels.iter().enumerate() {
                if j > 0 {
                    write!(out, "{b},{b}").unwrap();
                }
                write!(out, "{b}{k}{b}={b}\"").unwrap();
                write_label_escaped(&mut out, v).unwrap();
                out.push('"');
            }
            if layout.trailing_comma && !s.labels.is_empty() {
                out.push(',');
            }
            write!(out, "{b}}}").unwrap();
        }
        out.push(' ');
        out.push_str(b);
        write_value(&mut out, s.value, s.value_style);
        if let Some(ts) = s.timestamp_ms {
            write!(out, " {b}{ts}").unwrap();
        }
        out.push_str(b);
        if i + 1 < all.len() || layout.final_newline {
            out.push_str(nl);
        }
    }
    out
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn check_same(parsed: &Sample<'_>, s: &Series) -> Result<(), TestCaseError> {
    prop_assert_eq!(parsed.name, s.name.as_str());
    let labels: Vec<(String, String)> = parsed
        .labels
        .iter()
        .map(|(k, v)| (k.to_owned(), v.into_owned()))
        .collect();
    prop_assert_eq!(&labels, &s.labels);
    for (k, v) in &s.labels {
        // `contains` finds the first label called `k`.
        let first = s.labels.iter().find(|(k2, _)| k2 == k).map(|(_, v)| v);
        prop_assert_eq!(parsed.labels.contains(k, v), first == Some(v));
    }
    prop_assert!(
        same_value(parsed.value, s.value),
        "{} != {}",
        parsed.value,
        s.value
    );
    prop_assert_eq!(parsed.timestamp_ms, s.timestamp_ms);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn written_series_parse_back(all in prop::collection::vec(series(), 0..12), layout in layout()) {
        let text = render(&all, &layout);
        let parsed: Vec<Sample<'_>> = samples(&text)
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(parsed.len(), all.len(), "{}", text);
        for (p, s) in parsed.iter().zip(&all) {
            check_same(p, s)?;
            // Display writes a line that parses to the same sample.
            let line = p.to_string();
            let again: Vec<Sample<'_>> = samples(&line).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(again.len(), 1);
            check_same(&again[0], s)?;
        }
    }

    #[test]
    fn arbitrary_text_never_panics_and_errors_point_inside_the_text(
        text in prop_oneof![
            any::<String>(),
            "[a-z_:{}=\",\\\\ \t\r\n#0-9.eE+-]{0,80}",
            "(# (HELP|TYPE) )?[a-z:]{1,5}(\\{[a-z]{1,3}=\"[^\"\n]{0,4}\"?,?\\}?)? ?[0-9.eE+-]{0,6}( -?[0-9]{0,4})?\n?",
        ]
    ) {
        let lines = text.split('\n').count();
        for entry in parse(&text) {
            match entry {
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(e.line >= 1 && e.line <= lines, "{e} in {text:?}");
                    let line = text.split('\n').nth(e.line - 1).unwrap();
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    prop_assert!(
                        e.column >= 1 && e.column <= line.chars().count() + 1,
                        "{e} in {line:?}"
                    );
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
        for s in samples(&text).flatten() {
            prop_assert!(!s.name.is_empty());
            let line = s.to_string();
            let again: Vec<Sample<'_>> = samples(&line).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(again.len(), 1);
            prop_assert_eq!(again[0].name, s.name);
            prop_assert!(again[0].labels.iter().eq(s.labels.iter()));
            prop_assert!(same_value(again[0].value, s.value));
            prop_assert_eq!(again[0].timestamp_ms, s.timestamp_ms);
        }
    }
}

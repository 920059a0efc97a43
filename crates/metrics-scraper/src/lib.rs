//! Model-server metrics for pointsman: a zero-copy Prometheus text-exposition parser and the
//! engine metric mappings of the Gateway API Inference Extension's `core-metrics-extractor`.
//!
//! # Overview
//!
//! - [`exposition`] parses a `/metrics` body (text format 0.0.4) into borrowed
//!   [`Sample`](exposition::Sample)s without allocating per line; errors carry line, column
//!   and what was expected.
//! - [`spec`] parses the PromQL-style selectors (`name{label=value}`) that name a series.
//! - [`engine`] holds the per-engine mappings (vLLM, SGLang, trtllm-serve, Triton
//!   TensorRT-LLM), their serde config ([`EngineConfig`](engine::EngineConfig),
//!   [`ExtractorParams`](engine::ExtractorParams)) and the one-pass extraction into an
//!   [`EngineSample`](engine::EngineSample).
//!
//! This crate does not fetch anything and does not depend on the scheduler core yet; the
//! caller GETs the body (capping its size) and stores the [`EngineSample`](engine::EngineSample)
//! on its endpoint.
//!
//! # Example
//!
//! ```
//! use pointsman_scraper::engine::EngineRegistry;
//!
//! let body = "\
//! ## HELP sglang:num_queue_reqs The number of requests in the waiting queue
//! ## TYPE sglang:num_queue_reqs gauge
//! sglang:num_queue_reqs{model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 2826.0
//! sglang:num_running_reqs{model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 162.0
//! sglang:token_usage{model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 0.28
//! ";
//! let registry = EngineRegistry::builtin();
//! let sglang = registry.for_endpoint(Some("sglang")).expect("built in");
//! let out = sglang.extract(body)?;
//! assert_eq!(out.sample.waiting_queue, Some(2826));
//! assert_eq!(out.sample.running, Some(162));
//! assert_eq!(out.sample.kv_cache_usage, Some(0.28));
//! // This SGLang predates sglang:cache_config_info.
//! assert_eq!(out.missing.len(), 1);
//! # Ok::<(), pointsman_scraper::exposition::ParseError>(())
//! ```
//!
//! # Features
//!
//! None; `default = []`.
//!
//! # Guarantees
//!
//! - No `unsafe` code; no input text makes the parser or the extraction panic (fuzzed by
//!   `fuzz/fuzz_targets/metrics_text.rs`).
//! - Parsing borrows from the input; extraction allocates only for LoRA adapter names and
//!   reported problems.
//! - Errors are `Send + Sync` and implement `std::error::Error`.
#![forbid(unsafe_code)]

pub mod engine;
pub mod exposition;
pub mod spec;

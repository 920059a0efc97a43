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
//! - [`scraper`] polls every endpoint's `/metrics` over HTTP/1.1 keep-alive (one tokio task
//!   per endpoint, default every 50 ms with a 1 s timeout and a 16 MiB body cap) and publishes
//!   the extracted values into a [`pointsman::Pool`], batching many endpoints' updates into
//!   one snapshot. [`Scraper`](scraper::Scraper) is configured, then
//!   [spawned](scraper::Scraper::spawn) with a discovery source. By default only the lines
//!   of the metrics the engine reads are parsed ([`Validation`](engine::Validation)).
//! - [`http1`] frames the HTTP/1.1 responses the scraper reads (head via `httparse`, chunked
//!   bodies decoded in place).
//! - [`apply`] maps an [`EngineSample`](engine::EngineSample) onto the core's
//!   [`Metrics`](pointsman::Metrics), keeping values the scrape lacked.
//! - [`discovery`] holds the [`Discovery`](discovery::Discovery) trait and its sources: a
//!   static list, a watched YAML/JSON file and (feature `kubernetes`) InferencePool and Pod
//!   watches.
//! - [`stats`] exposes per-endpoint scrape latency and error counts by kind as plain structs.
//! - [`error`] holds [`ScrapeError`](error::ScrapeError), which names the endpoint and says
//!   whether the failure is transient.
//!
//! # Scraping a server
//!
//! ```no_run
//! use std::sync::Arc;
//! use pointsman::{Endpoint, Pool};
//! use pointsman_scraper::discovery::StaticDiscovery;
//! use pointsman_scraper::engine::EngineRegistry;
//! use pointsman_scraper::scraper::{Scraper, ScraperConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Arc::new(Pool::new());
//! let scraper = Scraper::new(pool.clone(), ScraperConfig::default(), EngineRegistry::builtin())?;
//! let handle = scraper.spawn(StaticDiscovery::new([Endpoint::new("vllm-0", "127.0.0.1", 8000)]));
//! tokio::time::sleep(std::time::Duration::from_millis(200)).await;
//! let snapshot = pool.snapshot();
//! let metrics = snapshot.by_name("vllm-0").map(|e| e.metrics());
//! println!("{metrics:?} {:?}", handle.stats().snapshot().endpoint("vllm-0"));
//! # Ok(()) }
//! ```
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
//! - `kubernetes` (off by default): [`discovery::kubernetes`], watching InferencePool v1 and
//!   Pods with kube-rs.
//!
//! # Guarantees
//!
//! - No `unsafe` code; no input text makes the parser, the extraction or the HTTP framing
//!   panic (fuzzed by `fuzz/fuzz_targets/metrics_text.rs` and `http_response.rs`).
//! - Parsing borrows from the input; extraction allocates only for LoRA adapter names and
//!   reported problems.
//! - Errors are `Send + Sync` and implement `std::error::Error`.
//! - The scraper never panics on server input or faults and no task ends for good on an
//!   error: a failed poll is counted, logged on change, and leaves the endpoint's metrics as
//!   they were (so they turn stale). Memory is bounded by the body cap per endpoint and a
//!   bounded publication queue.
//! - Schedulers never wait for the scraper: it publishes new pool snapshots with `arc-swap`.
#![forbid(unsafe_code)]

pub mod apply;
pub mod discovery;
pub mod engine;
pub mod error;
pub mod exposition;
mod fetch;
pub mod http1;
pub mod scraper;
pub mod spec;
pub mod stats;

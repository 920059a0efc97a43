//! **pointsman**: the endpoint-picker core for LLM inference gateways.
//!
//! Given a pool of model-server endpoints (vLLM, SGLang, TensorRT-LLM) with their scraped load
//! metrics, pointsman decides which endpoint serves each inference request, the way the
//! Kubernetes Gateway API Inference Extension's reference Endpoint Picker does — same plugin
//! type names, same parameters, same `EndpointPickerConfig` YAML — as a library with no I/O and
//! no async runtime, at microsecond cost.
//!
//! # Overview
//! - [`Pool`] holds [`Endpoint`]s and their [`Metrics`], published as immutable
//!   [`PoolSnapshot`]s: writers (discovery, the scraper) never block readers.
//! - [`Scheduler`] runs the reference's scheduling cycle over a snapshot: admission, data
//!   producers, profiles of [`Filter`](plugin::Filter)s, weighted [`Scorer`](plugin::Scorer)s and a
//!   [`Picker`](plugin::Picker), then lifecycle hooks. It returns a [`Decision`] or a
//!   [`SchedulingError`] carrying the reference's HTTP status.
//! - [`config`] loads `EndpointPickerConfig` YAML; [`registry`] maps plugin type names to
//!   factories, and users register their own.
//! - [`plugins`] holds every built-in plugin, one file each; [`prefix`] the prefix-cache index.
//! - [`time`] and [`random`] make the clock and randomness injectable, so a fixed seed gives
//!   reproducible decisions.
//!
//! # Example
//! ```
//! use pointsman::{ChatMessage, Endpoint, Metrics, Prompt, Request, Scheduler};
//! use pointsman::time::{Clock, ManualClock, Timestamp};
//! use std::sync::Arc;
//!
//! let clock = Arc::new(ManualClock::new(Timestamp::from_nanos(1)));
//! let scheduler = Scheduler::builder().seed(42).clock(clock.clone()).build_default();
//! for (i, queue) in [4u32, 0, 9].into_iter().enumerate() {
//!     let name = format!("vllm-{i}");
//!     scheduler.pool().upsert(Endpoint::new(name.as_str(), "10.0.0.1", 8000 + i as u16));
//!     let metrics = Metrics { waiting_queue_size: queue, kv_cache_usage: 0.3,
//!                             updated_at: Some(clock.now()), ..Metrics::default() };
//!     scheduler.pool().update_metrics(&name, metrics).unwrap();
//! }
//! let messages = [ChatMessage::new("user", "Why is the sky blue?")];
//! let request = Request::new("req-1", "llama-3-8b").with_prompt(Prompt::Chat(&messages));
//! let decision = scheduler.schedule(&request).unwrap();
//! assert_eq!(decision.destination(), "10.0.0.1:8001"); // the idle endpoint
//! scheduler.complete(&decision);
//! ```
//!
//! # Differences from the reference, on purpose
//! - Endpoints with stale metrics never win while a fresh one exists (reference issue #1497);
//!   see [`SchedulerBuilder::metrics_staleness`].
//! - `lruCapacityPerServer` is honoured and `prefix-cache-scorer` parameters work; see
//!   [`plugins::producer::approx_prefix_cache_producer`].
//! - Everything else (formulas, defaults, status codes, tie-breaking) follows the reference;
//!   each plugin's documentation says where it differs.
//!
//! # Features
//! None: the crate has no optional parts.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod cycle;
pub mod decision;
pub mod endpoint;
pub mod error;
pub mod metrics;
pub mod plugin;
pub mod plugins;
pub mod pool;
pub mod prefix;
pub mod random;
pub mod registry;
pub mod request;
pub mod scheduler;
pub mod testing;
pub mod time;

/// The README's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

pub use config::EndpointPickerConfig;
pub use decision::{Decision, ProfileResult, ScheduleResult};
pub use endpoint::{Endpoint, EndpointId, EndpointUid, Role};
pub use error::{ConfigError, ErrorCode, SchedulingError};
pub use metrics::{AdapterSet, Metrics};
pub use pool::{EndpointState, Pool, PoolSnapshot};
pub use request::{ChatMessage, Headers, Prompt, Request};
pub use scheduler::{ScheduleOptions, Scheduler, SchedulerBuilder};

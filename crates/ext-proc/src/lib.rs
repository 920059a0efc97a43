//! **pointsman-extproc**: `pointsman-epp`, a drop-in Endpoint Picker for Envoy-based gateways.
//!
//! Envoy's `ext_proc` filter streams each inference request to the picker; the picker buffers
//! the body, parses what scheduling needs, asks the [`pointsman`] scheduler for an endpoint and
//! answers with the header `x-gateway-destination-endpoint` (and the same value in the
//! `envoy.lb` dynamic metadata), which an `ORIGINAL_DST` cluster routes to. The protocol is the
//! reference picker's (`epp-reference.md` §6): FULL_DUPLEX_STREAMED or BUFFERED bodies, the
//! subset hint, status codes and error bodies.
//!
//! # Overview
//! - [`stream::StreamProcessor`]: the per-stream state machine, without I/O.
//! - [`body`]: lazy OpenAI request parsing; [`response`]: usage and model rewrite-back.
//! - [`server`]: the tonic ext_proc service, TLS, gRPC health, metrics HTTP and the scraper;
//!   [`server::run`] is what the binary calls.
//! - [`metrics`]: Prometheus metrics under the reference's names.
//! - [`objectives`]: objective name → priority; [`endpoints`]: static endpoint lists.
//!
//! # Example
//! ```
//! use pointsman::{Endpoint, Scheduler};
//! use pointsman_extproc::stream::{build, ProcessorContext, StreamProcessor};
//! use std::sync::Arc;
//!
//! let scheduler = Arc::new(Scheduler::builder().seed(1).build_default());
//! scheduler.pool().upsert(Endpoint::new("a", "10.0.0.1", 8000));
//! let ctx = Arc::new(ProcessorContext {
//!     scheduler,
//!     objectives: Default::default(),
//!     metrics: Default::default(),
//!     options: Default::default(),
//! });
//! let mut p = StreamProcessor::new(ctx);
//! let mut out = Vec::new();
//! p.on_message(build::request_headers(&[(":path", "/v1/completions")], false), &mut out).unwrap();
//! assert!(out.is_empty()); // the answer waits for the body
//! p.on_message(build::request_body(br#"{"model":"m","prompt":"hi"}"#, true), &mut out).unwrap();
//! assert_eq!(out.len(), 2); // headers with the destination, then the body
//! ```
//!
//! # Differences from the reference, on purpose
//! - Client-sent control headers are removed, not trusted (`RemoveHeaders`); the reference
//!   never removes them.
//! - The request body is not re-serialised; only a rewritten `model` value is spliced in.
//! - Bodies above a configurable size get 413.
//! - Body-less requests are scheduled (load-aware) rather than sent to a random endpoint; an
//!   empty pool still answers 500 `no pods available in datastore`.
//!
//! # Features
//! None.
#![forbid(unsafe_code)]

pub mod body;
pub mod endpoints;
pub mod metrics;
pub mod objectives;
pub mod response;
pub mod server;
pub mod stream;

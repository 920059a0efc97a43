//! The per-stream state machine: one Envoy ext_proc stream is one HTTP request and its
//! response.
//!
//! [`StreamProcessor::on_message`] takes each `ProcessingRequest` and appends the responses to
//! send; it does no I/O, so it is unit-tested and fuzzed directly. Message order:
//!
//! ```text
//! RequestHeaders ─┬─ end_of_stream ──────────────► schedule (no body) ─► HeadersResponse
//!                 └─ RequestBody* (buffered, ≤ max_body_bytes, else 413)
//!                     └─ end_of_stream / RequestTrailers ─► parse ─► schedule
//!                          FULL_DUPLEX_STREAMED: HeadersResponse(destination) + body in ≤ 62,000-byte chunks
//!                          BUFFERED:             (HeadersResponse sent at once) BodyResponse(destination, body)
//! ResponseHeaders ─► HeadersResponse; text/event-stream or `stream: true` ⇒ streaming
//! ResponseBody*   ─► streaming: each chunk forwarded at once (usage scanned, model rewritten back)
//!                    otherwise: buffered to end_of_stream, then usage, rewrite, re-chunked
//! end_of_stream / ResponseTrailers ─► Scheduler::complete, metrics
//! ```
//!
//! Errors become an `ImmediateResponse` with body `inference error: <Code> - <msg>` and end the
//! stream. Messages out of this order are a [`ProtocolError`]. Dropping the processor before
//! the response ended (client disconnect, Envoy reset) releases the request's in-flight state.
//!
//! # Security
//! The system-owned headers ([`SYSTEM_HEADERS`]) are never trusted from the client: they are
//! removed (`RemoveHeaders`) and the destination header is overwritten, so a client can never
//! choose its backend. The subset hint is read from Envoy's metadata only.

use crate::body::{Api, BodyError, ParsedBody, parse_request};
use crate::metrics::{EppMetrics, ErrorLabels, ModelLabels, PriorityLabels};
use crate::objectives::Objectives;
use crate::response::{ModelRewriter, SseScanner, usage_from_json};
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::BodySendMode;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyMutation, BodyResponse, CommonResponse, HeaderMutation, HeadersResponse, HttpBody,
    HttpHeaders, ImmediateResponse, ProcessingRequest, ProcessingResponse, StreamedBodyResponse,
    TrailersResponse, body_mutation, processing_request, processing_response,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::{Struct, Value, value};
use pointsman::{Decision, Request, Scheduler, SchedulingError};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Largest body chunk sent back to Envoy, as the reference (`BodyByteLimit`).
pub const BODY_CHUNK_BYTES: usize = 62_000;
/// The destination header (and `envoy.lb` metadata key).
pub const DESTINATION_HEADER: &str = "x-gateway-destination-endpoint";
/// The served-endpoint metadata key Envoy reports under `envoy.lb`.
pub const SERVED_KEY: &str = "x-gateway-destination-endpoint-served";
/// The subset-hint metadata namespace.
pub const SUBSET_NAMESPACE: &str = "envoy.lb.subset_hint";
/// The subset-hint key inside [`SUBSET_NAMESPACE`].
pub const SUBSET_KEY: &str = "x-gateway-destination-endpoint-subset";
/// The destination metadata namespace.
pub const LB_NAMESPACE: &str = "envoy.lb";
/// The objective header.
pub const OBJECTIVE_HEADER: &str = "x-gateway-inference-objective";
/// The model-rewrite header.
pub const MODEL_REWRITE_HEADER: &str = "x-gateway-model-name-rewrite";
/// Headers owned by the gateway and the picker, never taken from the client.
pub const SYSTEM_HEADERS: &[&str] = &[
    DESTINATION_HEADER,
    SERVED_KEY,
    SUBSET_KEY,
    OBJECTIVE_HEADER,
    MODEL_REWRITE_HEADER,
    "x-gateway-inference-fairness-id",
    "x-gateway-destination-endpoint-fallbacks",
    "x-llm-d-inference-objective",
    "x-llm-d-model-name-rewrite",
    "x-llm-d-inference-fairness-id",
];

/// Settings of the request path.
#[derive(Debug, Clone)]
pub struct ProcessorOptions {
    /// Largest request body buffered; larger ones get 413. Default 64 MiB.
    pub max_body_bytes: usize,
    /// Ignore Envoy's subset hint (`--disable-endpoint-subset-filter`).
    pub disable_subset_filter: bool,
    /// Trust `x-gateway-inference-objective` and `x-gateway-model-name-rewrite` from the
    /// incoming request (set by the gateway's route, as in the reference). Default true; the
    /// headers are removed before the request goes upstream either way.
    pub trust_request_control_headers: bool,
}

impl Default for ProcessorOptions {
    fn default() -> Self {
        ProcessorOptions {
            max_body_bytes: 64 << 20,
            disable_subset_filter: false,
            trust_request_control_headers: true,
        }
    }
}

/// What every stream shares.
#[derive(Debug)]
pub struct ProcessorContext {
    /// The scheduler.
    pub scheduler: Arc<Scheduler>,
    /// Objective name → priority.
    pub objectives: Objectives,
    /// Metrics.
    pub metrics: Arc<EppMetrics>,
    /// Options.
    pub options: ProcessorOptions,
}

/// A stream that broke the protocol; the server ends it with a gRPC error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A message arrived that the current phase does not accept.
    #[error("unexpected {message} while {phase}")]
    Unexpected {
        /// The message kind.
        message: &'static str,
        /// What the stream was waiting for.
        phase: &'static str,
    },
    /// A `ProcessingRequest` without a request.
    #[error("empty ProcessingRequest")]
    Empty,
}

/// Whether the stream goes on after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// An immediate response was sent: end the stream.
    Close,
}

/// An error answered to the client with an `ImmediateResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status.
    pub status: u16,
    /// The reference's error code name, e.g. `BadRequest`.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

impl HttpError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        HttpError {
            status,
            code,
            message: message.into(),
        }
    }

    fn from_scheduling(e: &SchedulingError) -> Self {
        HttpError::new(e.http_status(), e.code().as_str(), e.to_string())
    }

    fn from_body(e: &BodyError) -> Self {
        HttpError::new(400, "BadRequest", e.to_string())
    }

    /// `inference error: <Code> - <msg>`.
    pub fn body(&self) -> String {
        format!("inference error: {} - {}", self.code, self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    FullDuplex,
    Buffered,
    Other,
}

impl Mode {
    fn from_i32(v: i32) -> Mode {
        match BodySendMode::try_from(v) {
            Ok(BodySendMode::FullDuplexStreamed) => Mode::FullDuplex,
            Ok(BodySendMode::Buffered | BodySendMode::BufferedPartial) => Mode::Buffered,
            _ => Mode::Other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    RequestHeaders,
    RequestBody,
    ResponseHeaders,
    ResponseBody,
    Done,
    Closed,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::RequestHeaders => "waiting for request headers",
            Phase::RequestBody => "reading the request body",
            Phase::ResponseHeaders => "waiting for response headers",
            Phase::ResponseBody => "reading the response body",
            Phase::Done => "done",
            Phase::Closed => "closed",
        }
    }
}

/// The incoming request as far as it matters.
#[derive(Debug, Default)]
struct Incoming {
    path: String,
    request_id: Option<String>,
    objective: Option<String>,
    model_rewrite: Option<String>,
    /// Every header except pseudo-headers and system ones, for plugins.
    headers: Vec<(String, String)>,
    /// System headers present in the request, to remove.
    remove: Vec<String>,
    subset: Option<Vec<String>>,
    body: Vec<u8>,
    /// The request id was generated here and must be sent upstream.
    generated_id: bool,
}

/// A scheduled request whose response is awaited.
#[derive(Debug)]
struct InFlight {
    decision: Decision,
    incoming_model: String,
    target_model: String,
    stream_requested: bool,
    streaming: bool,
    started: Instant,
    response_bytes: u64,
    sse: SseScanner,
    buffered: Vec<u8>,
    passthrough: bool,
    rewriter: Option<ModelRewriter>,
    served: Option<String>,
    running_counted: bool,
}

/// One ext_proc stream's state.
#[derive(Debug)]
pub struct StreamProcessor {
    ctx: Arc<ProcessorContext>,
    phase: Phase,
    request_mode: Mode,
    response_mode: Mode,
    incoming: Incoming,
    inflight: Option<InFlight>,
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

impl StreamProcessor {
    /// A processor for a new stream.
    pub fn new(ctx: Arc<ProcessorContext>) -> Self {
        StreamProcessor {
            ctx,
            phase: Phase::RequestHeaders,
            request_mode: Mode::FullDuplex,
            response_mode: Mode::FullDuplex,
            incoming: Incoming::default(),
            inflight: None,
        }
    }

    /// Whether the response finished (or an immediate response was sent).
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Closed)
    }

    /// Handles one message, appending the responses to send to `out`.
    ///
    /// # Errors
    /// A [`ProtocolError`] when the message does not fit the stream's phase; the stream should
    /// then end (in-flight state is released when the processor is dropped).
    pub fn on_message(
        &mut self,
        msg: ProcessingRequest,
        out: &mut Vec<ProcessingResponse>,
    ) -> Result<Flow, ProtocolError> {
        if let Some(pc) = &msg.protocol_config {
            self.request_mode = Mode::from_i32(pc.request_body_mode);
            self.response_mode = Mode::from_i32(pc.response_body_mode);
        }
        let metadata = msg.metadata_context;
        let Some(request) = msg.request else {
            return Err(ProtocolError::Empty);
        };
        use processing_request::Request as R;
        let unexpected = |message, phase: Phase| ProtocolError::Unexpected {
            message,
            phase: phase.name(),
        };
        if self.phase == Phase::Closed {
            // After an immediate response Envoy may still have messages in flight.
            return Ok(Flow::Close);
        }
        match (request, self.phase) {
            (R::RequestHeaders(h), Phase::RequestHeaders) => {
                self.on_request_headers(h, metadata.as_ref(), out)
            }
            (R::RequestBody(b), Phase::RequestBody) => self.on_request_body(b, out),
            (R::RequestTrailers(_), Phase::RequestBody) => {
                let flow = self.finish_request(true, out);
                if flow == Flow::Continue {
                    out.push(wrap(processing_response::Response::RequestTrailers(
                        TrailersResponse::default(),
                    )));
                }
                Ok(flow)
            }
            (R::RequestTrailers(_), Phase::ResponseHeaders | Phase::ResponseBody) => {
                out.push(wrap(processing_response::Response::RequestTrailers(
                    TrailersResponse::default(),
                )));
                Ok(Flow::Continue)
            }
            (R::ResponseHeaders(h), Phase::ResponseHeaders) => {
                self.on_response_headers(h, metadata.as_ref(), out);
                Ok(Flow::Continue)
            }
            (R::ResponseBody(b), Phase::ResponseBody) => {
                self.on_response_body(b, out);
                Ok(Flow::Continue)
            }
            (R::ResponseTrailers(_), Phase::ResponseBody | Phase::ResponseHeaders) => {
                self.flush_response(false, out);
                self.finish_response();
                out.push(wrap(processing_response::Response::ResponseTrailers(
                    TrailersResponse::default(),
                )));
                Ok(Flow::Continue)
            }
            (other, phase) => Err(unexpected(kind_name(&other), phase)),
        }
    }

    fn on_request_headers(
        &mut self,
        h: HttpHeaders,
        metadata: Option<&envoy_types::pb::envoy::config::core::v3::Metadata>,
        out: &mut Vec<ProcessingResponse>,
    ) -> Result<Flow, ProtocolError> {
        let trust = self.ctx.options.trust_request_control_headers;
        for hv in h.headers.map(|m| m.headers).unwrap_or_default() {
            let key = hv.key.to_ascii_lowercase();
            let value = header_value(&hv);
            if SYSTEM_HEADERS.contains(&key.as_str()) {
                if trust && (key == OBJECTIVE_HEADER || key == "x-llm-d-inference-objective") {
                    self.incoming.objective = Some(value.clone());
                }
                if trust && (key == MODEL_REWRITE_HEADER || key == "x-llm-d-model-name-rewrite") {
                    self.incoming.model_rewrite = Some(value.clone());
                }
                if !self.incoming.remove.contains(&key) {
                    self.incoming.remove.push(key);
                }
                continue;
            }
            match key.as_str() {
                ":path" => self.incoming.path = value.clone(),
                "x-original-path" | "x-forwarded-path" if self.incoming.path.is_empty() => {
                    self.incoming.path = value.clone()
                }
                "x-request-id" => self.incoming.request_id = Some(value.clone()),
                _ => {}
            }
            if !key.starts_with(':') {
                self.incoming.headers.push((key, value));
            }
        }
        if !self.ctx.options.disable_subset_filter {
            self.incoming.subset = metadata.and_then(subset_hint);
        }
        if h.end_of_stream {
            return Ok(self.schedule_headers_only(out));
        }
        self.phase = Phase::RequestBody;
        if self.request_mode != Mode::FullDuplex {
            // Envoy waits for this answer before sending the body.
            let mutation = HeaderMutation {
                remove_headers: self.incoming.remove.clone(),
                ..HeaderMutation::default()
            };
            out.push(wrap(processing_response::Response::RequestHeaders(
                HeadersResponse {
                    response: Some(CommonResponse {
                        header_mutation: Some(mutation),
                        ..CommonResponse::default()
                    }),
                },
            )));
        }
        Ok(Flow::Continue)
    }

    fn on_request_body(
        &mut self,
        b: HttpBody,
        out: &mut Vec<ProcessingResponse>,
    ) -> Result<Flow, ProtocolError> {
        let limit = self.ctx.options.max_body_bytes;
        if self.incoming.body.len().saturating_add(b.body.len()) > limit {
            self.immediate(
                &HttpError::new(
                    413,
                    "PayloadTooLarge",
                    format!("request body exceeds {limit} bytes"),
                ),
                "",
                "",
                out,
            );
            return Ok(Flow::Close);
        }
        if self.incoming.body.is_empty() && b.end_of_stream {
            self.incoming.body = b.body;
        } else {
            self.incoming.body.extend_from_slice(&b.body);
        }
        if b.end_of_stream {
            return Ok(self.finish_request(false, out));
        }
        if self.request_mode == Mode::Other {
            // STREAMED mode: each chunk must be answered; routing already happened.
            out.push(wrap(processing_response::Response::RequestBody(
                BodyResponse::default(),
            )));
        }
        Ok(Flow::Continue)
    }

    fn schedule_headers_only(&mut self, out: &mut Vec<ProcessingResponse>) -> Flow {
        let id = self.request_id();
        let result = self.schedule_timed(Request::new(&id, ""));
        match result {
            Ok(decision) => {
                let dest = decision.destination();
                let mut common = self.destination_common(&dest, None);
                common.clear_route_cache = true;
                out.push(ProcessingResponse {
                    dynamic_metadata: Some(destination_metadata(&dest)),
                    response: Some(processing_response::Response::RequestHeaders(
                        HeadersResponse {
                            response: Some(common),
                        },
                    )),
                    ..ProcessingResponse::default()
                });
                self.start_inflight(decision, String::new(), String::new(), false);
                self.phase = Phase::ResponseHeaders;
                Flow::Continue
            }
            Err(e) => {
                let err = match e {
                    SchedulingError::NoCandidates => {
                        HttpError::new(500, "Internal", "no pods available in datastore")
                    }
                    other => HttpError::from_scheduling(&other),
                };
                self.immediate(&err, "", "", out);
                Flow::Close
            }
        }
    }

    fn request_id(&mut self) -> String {
        if let Some(id) = &self.incoming.request_id {
            return id.clone();
        }
        // The process id is read once: `getpid` is a system call.
        static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        let pid = *PID.get_or_init(std::process::id);
        let n = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("pointsman-{pid:x}-{n:x}");
        self.incoming.request_id = Some(id.clone());
        self.incoming
            .headers
            .push(("x-request-id".to_string(), id.clone()));
        self.incoming.generated_id = true;
        id
    }

    fn finish_request(&mut self, trailers: bool, out: &mut Vec<ProcessingResponse>) -> Flow {
        let api = Api::from_path(&self.incoming.path);
        let body = std::mem::take(&mut self.incoming.body);
        let parsed = match parse_request(&body, api) {
            Ok(p) => p,
            Err(e) => {
                self.immediate(&HttpError::from_body(&e), "", "", out);
                return Flow::Close;
            }
        };
        let incoming_model = parsed.model.to_string();
        let target_model = self
            .incoming
            .model_rewrite
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| incoming_model.clone());
        let priority = self
            .incoming
            .objective
            .as_deref()
            .map_or(0, |o| self.ctx.objectives.priority(o));
        let rewritten = parsed.rewrite_model(&body, &target_model);
        let outgoing_len = rewritten.as_ref().map_or(body.len(), Vec::len);
        let id = self.request_id();
        let result = self.schedule_parsed(&id, &parsed, &target_model, priority, body.len());
        let stream_requested = parsed.stream;
        drop(parsed);
        self.ctx
            .metrics
            .request_total
            .get_or_create(&PriorityLabels {
                model_name: incoming_model.clone(),
                target_model_name: target_model.clone(),
                priority: priority.to_string(),
            })
            .inc();
        self.ctx
            .metrics
            .request_sizes
            .get_or_create(&ModelLabels {
                model_name: incoming_model.clone(),
                target_model_name: target_model.clone(),
            })
            .observe(body.len() as f64);
        let decision = match result {
            Ok(d) => d,
            Err(e) => {
                self.immediate(
                    &HttpError::from_scheduling(&e),
                    &incoming_model,
                    &target_model,
                    out,
                );
                return Flow::Close;
            }
        };
        let dest = decision.destination();
        tracing::debug!(request_id = %id, model = %incoming_model, target = %target_model, priority, destination = %dest, "scheduled");
        let outgoing = rewritten.unwrap_or(body);
        let mut common = self.destination_common(&dest, Some(outgoing_len));
        common.clear_route_cache = true;
        let metadata = destination_metadata(&dest);
        if self.request_mode == Mode::FullDuplex {
            out.push(ProcessingResponse {
                dynamic_metadata: Some(metadata),
                response: Some(processing_response::Response::RequestHeaders(
                    HeadersResponse {
                        response: Some(common),
                    },
                )),
                ..ProcessingResponse::default()
            });
            push_streamed_chunks(&outgoing, !trailers, out, true);
        } else {
            common.body_mutation = Some(BodyMutation {
                mutation: Some(body_mutation::Mutation::Body(outgoing)),
            });
            out.push(ProcessingResponse {
                dynamic_metadata: Some(metadata),
                response: Some(processing_response::Response::RequestBody(BodyResponse {
                    response: Some(common),
                })),
                ..ProcessingResponse::default()
            });
        }
        self.start_inflight(decision, incoming_model, target_model, stream_requested);
        self.phase = Phase::ResponseHeaders;
        Flow::Continue
    }

    fn schedule_parsed(
        &self,
        id: &str,
        parsed: &ParsedBody<'_>,
        target_model: &str,
        priority: i32,
        body_len: usize,
    ) -> Result<Decision, SchedulingError> {
        let headers: Vec<(&str, &str)> = self
            .incoming
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut request = Request::new(id, target_model)
            .with_prompt(parsed.prompt.as_prompt())
            .with_priority(priority)
            .with_headers(&headers)
            .with_body_bytes(body_len);
        if let Some(salt) = parsed.cache_salt.as_deref() {
            request = request.with_cache_salt(salt);
        }
        let result = self.schedule_timed(request);
        self.ctx.metrics.attempt(result.is_ok(), target_model);
        result
    }

    /// Schedules `request` with the stream's subset hint, if any, recording the scheduling
    /// latency.
    fn schedule_timed(&self, request: Request<'_>) -> Result<Decision, SchedulingError> {
        let subset: Vec<&str> = self
            .incoming
            .subset
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let request = if self.incoming.subset.is_some() {
            request.with_subset_hint(&subset)
        } else {
            request
        };
        let started = Instant::now();
        let result = self.ctx.scheduler.schedule(&request);
        self.ctx
            .metrics
            .scheduler_e2e
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// The header mutation carrying the destination; removes client-sent system headers.
    fn destination_common(&self, dest: &str, body_len: Option<usize>) -> CommonResponse {
        let mut set = vec![set_header(DESTINATION_HEADER, dest)];
        if let Some(n) = body_len.filter(|&n| n > 0) {
            set.push(set_header("content-length", &n.to_string()));
        }
        if self.incoming.generated_id {
            if let Some(id) = &self.incoming.request_id {
                set.push(set_header("x-request-id", id));
            }
        }
        let remove = self
            .incoming
            .remove
            .iter()
            .filter(|h| *h != DESTINATION_HEADER)
            .cloned()
            .collect();
        CommonResponse {
            header_mutation: Some(HeaderMutation {
                set_headers: set,
                remove_headers: remove,
            }),
            ..CommonResponse::default()
        }
    }

    fn start_inflight(
        &mut self,
        decision: Decision,
        incoming_model: String,
        target_model: String,
        stream_requested: bool,
    ) {
        let rewriter = (incoming_model != target_model)
            .then(|| ModelRewriter::new(&target_model, &incoming_model));
        self.ctx.metrics.running(&incoming_model, 1);
        self.inflight = Some(InFlight {
            decision,
            incoming_model,
            target_model,
            stream_requested,
            streaming: stream_requested,
            started: Instant::now(),
            response_bytes: 0,
            sse: SseScanner::default(),
            buffered: Vec::new(),
            passthrough: false,
            rewriter,
            served: None,
            running_counted: true,
        });
    }

    fn on_response_headers(
        &mut self,
        h: HttpHeaders,
        metadata: Option<&envoy_types::pb::envoy::config::core::v3::Metadata>,
        out: &mut Vec<ProcessingResponse>,
    ) {
        if let Some(f) = self.inflight.as_mut() {
            for hv in h.headers.iter().flat_map(|m| m.headers.iter()) {
                if hv.key.eq_ignore_ascii_case("content-type")
                    && header_value(hv).contains("text/event-stream")
                {
                    f.streaming = true;
                }
            }
            f.served = metadata.and_then(served_endpoint);
            if let Some(served) = &f.served {
                tracing::debug!(served = %served, "served endpoint");
            }
            self.ctx.scheduler.response_started(&f.decision);
        }
        out.push(wrap(processing_response::Response::ResponseHeaders(
            HeadersResponse::default(),
        )));
        if h.end_of_stream {
            self.finish_response();
        } else {
            self.phase = Phase::ResponseBody;
        }
    }

    fn on_response_body(&mut self, b: HttpBody, out: &mut Vec<ProcessingResponse>) {
        let duplex = self.response_mode == Mode::FullDuplex;
        let max = self.ctx.options.max_body_bytes;
        let Some(f) = self.inflight.as_mut() else {
            return;
        };
        f.response_bytes += b.body.len() as u64;
        let eos = b.end_of_stream;
        if f.streaming || f.passthrough || !duplex {
            if f.streaming {
                f.sse.feed(&b.body);
            } else if eos && f.buffered.is_empty() && !f.passthrough {
                if let Some(u) = usage_from_json(&b.body) {
                    f.sse = SseScanner::default();
                    record_usage(&self.ctx.metrics, f, u);
                }
            }
            let rewritten = f.rewriter.as_ref().and_then(|r| r.apply(&b.body));
            if duplex {
                let body = rewritten.unwrap_or(b.body);
                out.push(streamed(body, eos, false));
            } else {
                let mut resp = BodyResponse::default();
                if let Some(body) = rewritten {
                    resp.response = Some(CommonResponse {
                        body_mutation: Some(BodyMutation {
                            mutation: Some(body_mutation::Mutation::Body(body)),
                        }),
                        ..CommonResponse::default()
                    });
                }
                out.push(wrap(processing_response::Response::ResponseBody(resp)));
            }
        } else {
            f.buffered.extend_from_slice(&b.body);
            if f.buffered.len() > max {
                // Too big to hold: send what we have and pass the rest through.
                f.passthrough = true;
                let held = std::mem::take(&mut f.buffered);
                out.push(streamed(held, eos, false));
            } else if eos {
                self.flush_response(true, out);
            }
        }
        if eos {
            self.finish_response();
        }
    }

    /// Sends the buffered (non-streaming) response body.
    fn flush_response(&mut self, eos: bool, out: &mut Vec<ProcessingResponse>) {
        let Some(f) = self.inflight.as_mut() else {
            return;
        };
        if f.streaming || f.passthrough || self.response_mode != Mode::FullDuplex {
            return;
        }
        let held = std::mem::take(&mut f.buffered);
        if let Some(u) = usage_from_json(&held) {
            record_usage(&self.ctx.metrics, f, u);
        }
        let body = f
            .rewriter
            .as_ref()
            .and_then(|r| r.apply(&held))
            .unwrap_or(held);
        if body.is_empty() && !eos {
            return;
        }
        push_streamed_chunks(&body, eos, out, false);
    }

    fn finish_response(&mut self) {
        self.phase = Phase::Done;
        let Some(mut f) = self.inflight.take() else {
            return;
        };
        f.sse.finish();
        if let Some(u) = f.sse.usage() {
            record_usage(&self.ctx.metrics, &f, u);
        }
        let labels = ModelLabels {
            model_name: f.incoming_model.clone(),
            target_model_name: f.target_model.clone(),
        };
        let m = &self.ctx.metrics;
        m.request_duration
            .get_or_create(&labels)
            .observe(f.started.elapsed().as_secs_f64());
        m.response_sizes
            .get_or_create(&labels)
            .observe(f.response_bytes as f64);
        tracing::debug!(model = %f.incoming_model, stream = f.stream_requested, bytes = f.response_bytes, "response complete");
        self.release(&mut f);
    }

    fn release(&self, f: &mut InFlight) {
        self.ctx.scheduler.complete(&f.decision);
        if f.running_counted {
            f.running_counted = false;
            self.ctx.metrics.running(&f.incoming_model, -1);
        }
    }

    fn immediate(
        &mut self,
        err: &HttpError,
        model: &str,
        target: &str,
        out: &mut Vec<ProcessingResponse>,
    ) {
        self.phase = Phase::Closed;
        self.ctx
            .metrics
            .request_error_total
            .get_or_create(&ErrorLabels {
                model_name: model.to_string(),
                target_model_name: target.to_string(),
                error_code: err.code.to_string(),
            })
            .inc();
        tracing::debug!(status = err.status, code = err.code, message = %err.message, "immediate response");
        out.push(wrap(processing_response::Response::ImmediateResponse(
            ImmediateResponse {
                status: Some(HttpStatus {
                    code: i32::from(err.status),
                }),
                headers: Some(HeaderMutation {
                    set_headers: vec![set_header("content-type", "text/plain")],
                    remove_headers: Vec::new(),
                }),
                body: err.body().into_bytes(),
                grpc_status: None,
                details: err.code.to_string(),
            },
        )));
    }
}

impl Drop for StreamProcessor {
    fn drop(&mut self) {
        if let Some(mut f) = self.inflight.take() {
            tracing::debug!(model = %f.incoming_model, "stream ended before the response finished; releasing");
            self.release(&mut f);
        }
    }
}

fn record_usage(m: &EppMetrics, f: &InFlight, u: crate::response::Usage) {
    let labels = ModelLabels {
        model_name: f.incoming_model.clone(),
        target_model_name: f.target_model.clone(),
    };
    m.input_tokens
        .get_or_create(&labels)
        .observe(u.prompt_tokens as f64);
    m.output_tokens
        .get_or_create(&labels)
        .observe(u.completion_tokens as f64);
    m.cached_tokens
        .get_or_create(&labels)
        .observe(u.cached_tokens as f64);
    if u.completion_tokens > 0 {
        m.tpot
            .get_or_create(&labels)
            .observe(f.started.elapsed().as_secs_f64() / u.completion_tokens as f64);
    }
}

fn kind_name(r: &processing_request::Request) -> &'static str {
    use processing_request::Request as R;
    match r {
        R::RequestHeaders(_) => "request_headers",
        R::ResponseHeaders(_) => "response_headers",
        R::RequestBody(_) => "request_body",
        R::ResponseBody(_) => "response_body",
        R::RequestTrailers(_) => "request_trailers",
        R::ResponseTrailers(_) => "response_trailers",
    }
}

fn wrap(r: processing_response::Response) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(r),
        ..ProcessingResponse::default()
    }
}

fn streamed(body: Vec<u8>, eos: bool, request: bool) -> ProcessingResponse {
    let common = CommonResponse {
        body_mutation: Some(BodyMutation {
            mutation: Some(body_mutation::Mutation::StreamedResponse(
                StreamedBodyResponse {
                    body,
                    end_of_stream: eos,
                    ..StreamedBodyResponse::default()
                },
            )),
        }),
        ..CommonResponse::default()
    };
    let resp = BodyResponse {
        response: Some(common),
    };
    wrap(if request {
        processing_response::Response::RequestBody(resp)
    } else {
        processing_response::Response::ResponseBody(resp)
    })
}

/// Streams `body` back in chunks of at most [`BODY_CHUNK_BYTES`]; an empty body is one empty
/// chunk.
fn push_streamed_chunks(body: &[u8], eos: bool, out: &mut Vec<ProcessingResponse>, request: bool) {
    if body.is_empty() {
        out.push(streamed(Vec::new(), eos, request));
        return;
    }
    let n = body.len().div_ceil(BODY_CHUNK_BYTES);
    for (i, chunk) in body.chunks(BODY_CHUNK_BYTES).enumerate() {
        out.push(streamed(chunk.to_vec(), eos && i + 1 == n, request));
    }
}

fn set_header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_string(),
            value: String::new(),
            raw_value: value.as_bytes().to_vec(),
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

fn header_value(hv: &HeaderValue) -> String {
    if hv.raw_value.is_empty() {
        hv.value.clone()
    } else {
        String::from_utf8_lossy(&hv.raw_value).into_owned()
    }
}

fn string_value(s: &str) -> Value {
    Value {
        kind: Some(value::Kind::StringValue(s.to_string())),
    }
}

/// `{"envoy.lb": {"x-gateway-destination-endpoint": dest}}`.
fn destination_metadata(dest: &str) -> Struct {
    let inner = Struct {
        fields: HashMap::from([(DESTINATION_HEADER.to_string(), string_value(dest))]),
    };
    Struct {
        fields: HashMap::from([(
            LB_NAMESPACE.to_string(),
            Value {
                kind: Some(value::Kind::StructValue(inner)),
            },
        )]),
    }
}

/// The subset hint: `None` when the key is absent, `Some(vec![])` when present but empty.
fn subset_hint(md: &envoy_types::pb::envoy::config::core::v3::Metadata) -> Option<Vec<String>> {
    let ns = md.filter_metadata.get(SUBSET_NAMESPACE)?;
    let v = ns.fields.get(SUBSET_KEY)?;
    Some(match &v.kind {
        Some(value::Kind::ListValue(l)) => l
            .values
            .iter()
            .filter_map(|v| match &v.kind {
                Some(value::Kind::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        Some(value::Kind::StringValue(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    })
}

fn served_endpoint(md: &envoy_types::pb::envoy::config::core::v3::Metadata) -> Option<String> {
    let ns = md.filter_metadata.get(LB_NAMESPACE)?;
    match &ns.fields.get(SERVED_KEY)?.kind {
        Some(value::Kind::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Helpers to build `ProcessingRequest`s, for tests, benches and fuzzing.
pub mod build {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::Metadata;
    use envoy_types::pb::envoy::service::ext_proc::v3::{HttpTrailers, ProtocolConfiguration};

    fn message(request: processing_request::Request) -> ProcessingRequest {
        ProcessingRequest {
            request: Some(request),
            ..ProcessingRequest::default()
        }
    }

    fn http_headers(headers: &[(&str, &str)], end_of_stream: bool) -> HttpHeaders {
        HttpHeaders {
            headers: Some(header_map(headers)),
            end_of_stream,
            ..HttpHeaders::default()
        }
    }

    fn http_body(body: &[u8], end_of_stream: bool) -> HttpBody {
        HttpBody {
            body: body.to_vec(),
            end_of_stream,
            ..HttpBody::default()
        }
    }

    /// Request headers (`end_of_stream` when there is no body).
    pub fn request_headers(headers: &[(&str, &str)], end_of_stream: bool) -> ProcessingRequest {
        message(processing_request::Request::RequestHeaders(http_headers(
            headers,
            end_of_stream,
        )))
    }

    /// Response headers.
    pub fn response_headers(headers: &[(&str, &str)], end_of_stream: bool) -> ProcessingRequest {
        message(processing_request::Request::ResponseHeaders(http_headers(
            headers,
            end_of_stream,
        )))
    }

    /// A request body chunk.
    pub fn request_body(body: &[u8], end_of_stream: bool) -> ProcessingRequest {
        message(processing_request::Request::RequestBody(http_body(
            body,
            end_of_stream,
        )))
    }

    /// A response body chunk.
    pub fn response_body(body: &[u8], end_of_stream: bool) -> ProcessingRequest {
        message(processing_request::Request::ResponseBody(http_body(
            body,
            end_of_stream,
        )))
    }

    /// Request trailers.
    pub fn request_trailers() -> ProcessingRequest {
        message(processing_request::Request::RequestTrailers(
            HttpTrailers::default(),
        ))
    }

    /// Response trailers.
    pub fn response_trailers() -> ProcessingRequest {
        message(processing_request::Request::ResponseTrailers(
            HttpTrailers::default(),
        ))
    }

    /// Adds `protocol_config` announcing BUFFERED (`buffered`) or FULL_DUPLEX_STREAMED modes.
    pub fn with_mode(mut msg: ProcessingRequest, buffered: bool) -> ProcessingRequest {
        let mode = if buffered {
            BodySendMode::Buffered
        } else {
            BodySendMode::FullDuplexStreamed
        } as i32;
        msg.protocol_config = Some(ProtocolConfiguration {
            request_body_mode: mode,
            response_body_mode: mode,
            send_body_without_waiting_for_header_response: false,
        });
        msg
    }

    /// Adds the subset hint `endpoints` to the metadata.
    pub fn with_subset(mut msg: ProcessingRequest, endpoints: &[&str]) -> ProcessingRequest {
        let list = Value {
            kind: Some(value::Kind::ListValue(
                envoy_types::pb::google::protobuf::ListValue {
                    values: endpoints.iter().map(|e| string_value(e)).collect(),
                },
            )),
        };
        let mut md = Metadata::default();
        md.filter_metadata.insert(
            SUBSET_NAMESPACE.to_string(),
            Struct {
                fields: HashMap::from([(SUBSET_KEY.to_string(), list)]),
            },
        );
        msg.metadata_context = Some(md);
        msg
    }

    fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
        HeaderMap {
            headers: headers
                .iter()
                .map(|(k, v)| HeaderValue {
                    key: (*k).to_string(),
                    value: String::new(),
                    raw_value: v.as_bytes().to_vec(),
                })
                .collect(),
        }
    }
}

//! The picker's own work per request, without transport: one `StreamProcessor` taking a
//! request through FULL_DUPLEX_STREAMED (request headers, body, response headers, body) over
//! 4 endpoints, and the protobuf encoding of what it answers.
//!
//! - `stream_processor/full_request`: the state machine alone (parse, schedule, respond,
//!   account, release).
//! - `stream_processor/full_request_encoded`: the same plus `prost` encoding of every response,
//!   as tonic does before writing.
//! - `stream_processor/echo_encoded` (baseline): building and encoding the four responses an
//!   echo ext_proc server sends for the same request, as in the load bench's echo floor.
//!
//! Run: `cargo bench -p pointsman-extproc --bench stream_processor`.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyMutation, BodyResponse, CommonResponse, HeadersResponse, ProcessingRequest,
    ProcessingResponse, StreamedBodyResponse, body_mutation::Mutation,
    processing_request::Request as Q, processing_response::Response as P,
};
use pointsman::time::{Clock, ManualClock, Timestamp};
use pointsman::{Endpoint, Metrics, Scheduler};
use pointsman_extproc::stream::{ProcessorContext, ProcessorOptions, StreamProcessor, build};
use prost::Message;

fn context() -> Arc<ProcessorContext> {
    let clock = Arc::new(ManualClock::new(Timestamp::from_nanos(1_000_000)));
    let scheduler = Arc::new(
        Scheduler::builder()
            .seed(7)
            .clock(clock.clone())
            .build_default(),
    );
    for i in 0..4u8 {
        let name = format!("ep-{i}");
        scheduler
            .pool()
            .upsert(Endpoint::new(name.clone(), format!("10.0.0.{i}"), 8000));
        scheduler
            .pool()
            .update_metrics(
                &name,
                Metrics {
                    waiting_queue_size: u32::from(i),
                    kv_cache_usage: 0.1,
                    updated_at: Some(clock.now()),
                    ..Metrics::default()
                },
            )
            .expect("endpoint exists");
    }
    Arc::new(ProcessorContext {
        scheduler,
        objectives: Default::default(),
        metrics: Default::default(),
        options: ProcessorOptions::default(),
    })
}

fn messages() -> Vec<ProcessingRequest> {
    let body = serde_json::to_vec(&serde_json::json!({
        "model": "llama",
        "messages": [{"role": "system", "content": "lorem ipsum dolor sit amet lorem ipsum"},
                     {"role": "user", "content": "question 1"}],
    }))
    .expect("json");
    vec![
        build::request_headers(
            &[(":path", "/v1/chat/completions"), (":method", "POST")],
            false,
        ),
        build::request_body(&body, true),
        build::response_headers(&[(":status", "200")], false),
        build::response_body(
            br#"{"model":"llama","usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
            true,
        ),
    ]
}

fn echo(msg: &ProcessingRequest) -> Option<ProcessingResponse> {
    let streamed = |body: &[u8], end_of_stream| {
        Some(BodyResponse {
            response: Some(CommonResponse {
                body_mutation: Some(BodyMutation {
                    mutation: Some(Mutation::StreamedResponse(StreamedBodyResponse {
                        body: body.to_vec(),
                        end_of_stream,
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            }),
        })
    };
    let response = match msg.request.as_ref()? {
        Q::RequestHeaders(_) => P::RequestHeaders(HeadersResponse::default()),
        Q::ResponseHeaders(_) => P::ResponseHeaders(HeadersResponse::default()),
        Q::RequestBody(b) => P::RequestBody(streamed(&b.body, b.end_of_stream)?),
        Q::ResponseBody(b) => P::ResponseBody(streamed(&b.body, b.end_of_stream)?),
        _ => return None,
    };
    Some(ProcessingResponse {
        response: Some(response),
        ..Default::default()
    })
}

fn bench(c: &mut Criterion) {
    let ctx = context();
    let msgs = messages();
    let mut out = Vec::new();
    let mut encoded = Vec::with_capacity(4096);
    let mut group = c.benchmark_group("stream_processor");
    for (name, encode) in [("full_request", false), ("full_request_encoded", true)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut processor = StreamProcessor::new(ctx.clone());
                for m in &msgs {
                    out.clear();
                    processor
                        .on_message(m.clone(), &mut out)
                        .expect("valid sequence");
                    if !encode {
                        black_box(&out);
                        continue;
                    }
                    for r in out.drain(..) {
                        encoded.clear();
                        r.encode(&mut encoded).expect("Vec grows");
                        black_box(&encoded);
                    }
                }
            });
        });
    }
    group.bench_function("echo_encoded", |b| {
        b.iter(|| {
            for m in &msgs {
                let m = m.clone();
                if let Some(r) = echo(&m) {
                    encoded.clear();
                    r.encode(&mut encoded).expect("Vec grows");
                    black_box(&encoded);
                }
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

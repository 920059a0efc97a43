//! The stream state machine, message sequence by message sequence.
#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use envoy_types::pb::envoy::service::ext_proc::v3::{
    CommonResponse, ProcessingResponse, body_mutation, processing_response::Response as P,
};
use envoy_types::pb::google::protobuf::value::Kind;
use pointsman::time::{Clock, ManualClock, Timestamp};
use pointsman::{Endpoint, Metrics, Scheduler};
use pointsman_extproc::objectives::Objectives;
use pointsman_extproc::stream::{
    BODY_CHUNK_BYTES, Flow, ProcessorContext, ProcessorOptions, StreamProcessor, build,
};
use std::sync::Arc;

fn ctx_with(queues: &[(&str, &str, u32)], options: ProcessorOptions) -> Arc<ProcessorContext> {
    let clock = Arc::new(ManualClock::new(Timestamp::from_nanos(1_000_000)));
    let scheduler = Arc::new(
        Scheduler::builder()
            .seed(7)
            .clock(clock.clone())
            .build_default(),
    );
    for (name, ip, q) in queues {
        scheduler.pool().upsert(Endpoint::new(*name, *ip, 8000));
        scheduler
            .pool()
            .update_metrics(
                name,
                Metrics {
                    waiting_queue_size: *q,
                    kv_cache_usage: 0.1,
                    updated_at: Some(clock.now()),
                    ..Metrics::default()
                },
            )
            .unwrap();
    }
    let mut objectives = Objectives::default();
    objectives.add_entry("batch=-1").unwrap();
    Arc::new(ProcessorContext {
        scheduler,
        objectives,
        metrics: Default::default(),
        options,
    })
}

fn ctx() -> Arc<ProcessorContext> {
    ctx_with(
        &[("a", "10.0.0.1", 5), ("b", "10.0.0.2", 0)],
        ProcessorOptions::default(),
    )
}

fn common(r: &ProcessingResponse) -> &CommonResponse {
    match r.response.as_ref().unwrap() {
        P::RequestHeaders(h) | P::ResponseHeaders(h) => h.response.as_ref().unwrap(),
        P::RequestBody(b) | P::ResponseBody(b) => b.response.as_ref().unwrap(),
        other => panic!("no common response in {other:?}"),
    }
}

fn set_header(c: &CommonResponse, key: &str) -> Option<String> {
    c.header_mutation
        .as_ref()?
        .set_headers
        .iter()
        .filter_map(|o| o.header.as_ref())
        .find(|h| h.key == key)
        .map(|h| String::from_utf8_lossy(&h.raw_value).into_owned())
}

fn streamed(r: &ProcessingResponse) -> (Vec<u8>, bool) {
    match common(r)
        .body_mutation
        .as_ref()
        .unwrap()
        .mutation
        .as_ref()
        .unwrap()
    {
        body_mutation::Mutation::StreamedResponse(s) => (s.body.clone(), s.end_of_stream),
        other => panic!("not streamed: {other:?}"),
    }
}

fn immediate(r: &ProcessingResponse) -> (i32, String) {
    match r.response.as_ref().unwrap() {
        P::ImmediateResponse(i) => (
            i.status.as_ref().unwrap().code,
            String::from_utf8_lossy(&i.body).into_owned(),
        ),
        other => panic!("not immediate: {other:?}"),
    }
}

const CHAT: &[u8] = br#"{"model":"llama","messages":[{"role":"user","content":"hello"}]}"#;

fn send(
    p: &mut StreamProcessor,
    msg: envoy_types::pb::envoy::service::ext_proc::v3::ProcessingRequest,
) -> (Flow, Vec<ProcessingResponse>) {
    let mut out = Vec::new();
    let flow = p.on_message(msg, &mut out).unwrap();
    (flow, out)
}

#[test]
fn full_duplex_request_goes_to_the_idle_endpoint_with_metadata() {
    let mut p = StreamProcessor::new(ctx());
    let (_, out) = send(
        &mut p,
        build::request_headers(
            &[
                (":path", "/v1/chat/completions"),
                ("x-gateway-destination-endpoint", "6.6.6.6:1"),
                ("x-gateway-destination-endpoint-served", "6.6.6.6:1"),
            ],
            false,
        ),
    );
    assert!(out.is_empty());
    let (_, out) = send(&mut p, build::request_body(&CHAT[..10], false));
    assert!(out.is_empty());
    let (flow, out) = send(&mut p, build::request_body(&CHAT[10..], true));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(out.len(), 2);
    let c = common(&out[0]);
    assert!(c.clear_route_cache);
    assert_eq!(
        set_header(c, "x-gateway-destination-endpoint").unwrap(),
        "10.0.0.2:8000"
    );
    assert_eq!(
        set_header(c, "content-length").unwrap(),
        CHAT.len().to_string()
    );
    let removed = &c.header_mutation.as_ref().unwrap().remove_headers;
    assert!(removed.contains(&"x-gateway-destination-endpoint-served".to_string()));
    assert!(
        !removed.contains(&"x-gateway-destination-endpoint".to_string()),
        "overwritten, not removed"
    );
    let md = out[0].dynamic_metadata.as_ref().unwrap();
    let Some(Kind::StructValue(lb)) = &md.fields["envoy.lb"].kind else {
        panic!()
    };
    assert_eq!(
        lb.fields["x-gateway-destination-endpoint"].kind,
        Some(Kind::StringValue("10.0.0.2:8000".into()))
    );
    assert_eq!(streamed(&out[1]), (CHAT.to_vec(), true));
    // Response.
    let (_, out) = send(
        &mut p,
        build::response_headers(&[("content-type", "application/json")], false),
    );
    assert_eq!(out.len(), 1);
    let resp = br#"{"model":"llama","usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
    let (_, out) = send(&mut p, build::response_body(&resp[..5], false));
    assert!(out.is_empty(), "non-streaming responses are buffered");
    let (_, out) = send(&mut p, build::response_body(&resp[5..], true));
    assert_eq!(streamed(&out[0]), (resp.to_vec(), true));
    assert!(p.is_finished());
}

#[test]
fn large_bodies_come_back_in_62000_byte_chunks() {
    let mut p = StreamProcessor::new(ctx());
    let content = "x".repeat(200_000);
    let body = format!(r#"{{"model":"m","prompt":"{content}"}}"#);
    send(
        &mut p,
        build::request_headers(&[(":path", "/v1/completions")], false),
    );
    let (_, out) = send(&mut p, build::request_body(body.as_bytes(), true));
    let chunks: Vec<_> = out[1..].iter().map(streamed).collect();
    assert_eq!(chunks.len(), body.len().div_ceil(BODY_CHUNK_BYTES));
    assert!(chunks.iter().all(|(c, _)| c.len() <= BODY_CHUNK_BYTES));
    assert!(chunks.last().unwrap().1 && chunks.iter().filter(|c| c.1).count() == 1);
    let joined: Vec<u8> = chunks.into_iter().flat_map(|c| c.0).collect();
    assert_eq!(joined, body.as_bytes());
}

#[test]
fn buffered_mode_answers_in_the_body_response() {
    let mut p = StreamProcessor::new(ctx());
    let (_, out) = send(
        &mut p,
        build::with_mode(
            build::request_headers(
                &[
                    (":path", "/v1/chat/completions"),
                    ("x-gateway-model-name-rewrite", "llama-v2"),
                ],
                false,
            ),
            true,
        ),
    );
    assert_eq!(out.len(), 1, "headers answered at once in BUFFERED mode");
    let removed = &common(&out[0])
        .header_mutation
        .as_ref()
        .unwrap()
        .remove_headers;
    assert_eq!(removed, &vec!["x-gateway-model-name-rewrite".to_string()]);
    let (_, out) = send(&mut p, build::request_body(CHAT, true));
    assert_eq!(out.len(), 1);
    assert!(matches!(out[0].response, Some(P::RequestBody(_))));
    let c = common(&out[0]);
    assert_eq!(
        set_header(c, "x-gateway-destination-endpoint").unwrap(),
        "10.0.0.2:8000"
    );
    let Some(body_mutation::Mutation::Body(b)) = &c.body_mutation.as_ref().unwrap().mutation else {
        panic!()
    };
    let v: serde_json::Value = serde_json::from_slice(b).unwrap();
    assert_eq!(v["model"], "llama-v2");
    // The response's model is rewritten back.
    send(&mut p, build::response_headers(&[], false));
    let (_, out) = send(
        &mut p,
        build::response_body(br#"{"model":"llama-v2"}"#, true),
    );
    let Some(body_mutation::Mutation::Body(b)) =
        &common(&out[0]).body_mutation.as_ref().unwrap().mutation
    else {
        panic!()
    };
    assert_eq!(b, br#"{"model":"llama"}"#);
}

#[test]
fn streaming_responses_are_forwarded_chunk_by_chunk_with_model_rewritten() {
    let mut p = StreamProcessor::new(ctx());
    send(
        &mut p,
        build::request_headers(
            &[
                (":path", "/v1/completions"),
                ("x-gateway-model-name-rewrite", "t"),
            ],
            false,
        ),
    );
    let (_, out) = send(
        &mut p,
        build::request_body(br#"{"model":"m","prompt":"p","stream":true}"#, true),
    );
    let (body, _) = streamed(&out[1]);
    assert_eq!(body, br#"{"model":"t","prompt":"p","stream":true}"#);
    send(
        &mut p,
        build::response_headers(&[("content-type", "text/event-stream")], false),
    );
    let (_, out) = send(
        &mut p,
        build::response_body(b"data: {\"model\":\"t\"}\n\n", false),
    );
    assert_eq!(
        streamed(&out[0]),
        (b"data: {\"model\":\"m\"}\n\n".to_vec(), false)
    );
    let (_, out) = send(&mut p, build::response_body(b"data: [DONE]\n\n", true));
    assert!(streamed(&out[0]).1);
    assert!(p.is_finished());
}

#[test]
fn subset_hint_narrows_and_empty_subset_is_503() {
    let mut p = StreamProcessor::new(ctx());
    send(
        &mut p,
        build::with_subset(
            build::request_headers(&[(":path", "/v1/chat/completions")], false),
            &["10.0.0.1:8000"],
        ),
    );
    let (_, out) = send(&mut p, build::request_body(CHAT, true));
    assert_eq!(
        set_header(common(&out[0]), "x-gateway-destination-endpoint").unwrap(),
        "10.0.0.1:8000"
    );

    let mut p = StreamProcessor::new(ctx());
    send(
        &mut p,
        build::with_subset(
            build::request_headers(&[(":path", "/v1/chat/completions")], false),
            &[],
        ),
    );
    let (flow, out) = send(&mut p, build::request_body(CHAT, true));
    assert_eq!(flow, Flow::Close);
    let (status, body) = immediate(&out[0]);
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "inference error: ServiceUnavailable - failed to find endpoint candidates for serving the request"
    );
}

#[test]
fn error_codes() {
    let cases: [(&[u8], &str, i32, &str); 3] = [
        (
            b"{not json",
            "/v1/completions",
            400,
            "inference error: BadRequest - invalid request body",
        ),
        (
            br#"{"prompt":"x"}"#,
            "/v1/completions",
            400,
            "inference error: BadRequest - model not found in request body",
        ),
        (
            br#"{"model":"m","messages":[]}"#,
            "/v1/chat/completions",
            400,
            "inference error: BadRequest - chat completions",
        ),
    ];
    for (body, path, status, prefix) in cases {
        let mut p = StreamProcessor::new(ctx());
        send(&mut p, build::request_headers(&[(":path", path)], false));
        let (flow, out) = send(&mut p, build::request_body(body, true));
        assert_eq!(flow, Flow::Close);
        let (s, b) = immediate(&out[0]);
        assert_eq!(s, status);
        assert!(b.starts_with(prefix), "{b}");
    }
    // Empty pool: 503 with a body, 500 without.
    let empty = ctx_with(&[], ProcessorOptions::default());
    let mut p = StreamProcessor::new(empty.clone());
    send(
        &mut p,
        build::request_headers(&[(":path", "/v1/completions")], false),
    );
    let (_, out) = send(
        &mut p,
        build::request_body(br#"{"model":"m","prompt":"x"}"#, true),
    );
    assert_eq!(immediate(&out[0]).0, 503);
    let mut p = StreamProcessor::new(empty);
    let (_, out) = send(
        &mut p,
        build::request_headers(&[(":path", "/v1/models")], true),
    );
    assert_eq!(
        immediate(&out[0]),
        (
            500,
            "inference error: Internal - no pods available in datastore".into()
        )
    );
    // Sheddable on a saturated pool: 429.
    let saturated = ctx_with(&[("a", "10.0.0.1", 50)], ProcessorOptions::default());
    let mut p = StreamProcessor::new(saturated);
    send(
        &mut p,
        build::request_headers(
            &[
                (":path", "/v1/completions"),
                ("x-gateway-inference-objective", "batch"),
            ],
            false,
        ),
    );
    let (_, out) = send(
        &mut p,
        build::request_body(br#"{"model":"m","prompt":"x"}"#, true),
    );
    let (s, b) = immediate(&out[0]);
    assert_eq!(s, 429);
    assert!(
        b.starts_with("inference error: ResourceExhausted - system saturated"),
        "{b}"
    );
    // Too large: 413.
    let small = ctx_with(
        &[("a", "10.0.0.1", 0)],
        ProcessorOptions {
            max_body_bytes: 10,
            ..Default::default()
        },
    );
    let mut p = StreamProcessor::new(small);
    send(
        &mut p,
        build::request_headers(&[(":path", "/v1/completions")], false),
    );
    let (_, out) = send(&mut p, build::request_body(&[b' '; 6], false));
    assert!(out.is_empty());
    let (flow, out) = send(&mut p, build::request_body(&[b' '; 6], false));
    assert_eq!(flow, Flow::Close);
    assert_eq!(immediate(&out[0]).0, 413);
}

#[test]
fn header_only_request_is_scheduled_at_once() {
    let mut p = StreamProcessor::new(ctx());
    let (_, out) = send(
        &mut p,
        build::request_headers(&[(":path", "/v1/models"), (":method", "GET")], true),
    );
    assert_eq!(out.len(), 1);
    assert!(set_header(common(&out[0]), "x-gateway-destination-endpoint").is_some());
    assert!(
        set_header(common(&out[0]), "x-request-id").is_some(),
        "generated id is added"
    );
    let (_, out) = send(&mut p, build::response_headers(&[], true));
    assert_eq!(out.len(), 1);
    assert!(p.is_finished());
}

#[test]
fn trailers_end_the_body_and_are_answered() {
    let mut p = StreamProcessor::new(ctx());
    send(
        &mut p,
        build::request_headers(&[(":path", "/v1/chat/completions")], false),
    );
    send(&mut p, build::request_body(CHAT, false));
    let (_, out) = send(&mut p, build::request_trailers());
    assert_eq!(out.len(), 3);
    assert_eq!(streamed(&out[1]), (CHAT.to_vec(), false));
    assert!(matches!(out[2].response, Some(P::RequestTrailers(_))));
    send(&mut p, build::response_headers(&[], false));
    let (_, out) = send(&mut p, build::response_body(b"{}", false));
    assert!(out.is_empty());
    let (_, out) = send(&mut p, build::response_trailers());
    assert_eq!(streamed(&out[0]), (b"{}".to_vec(), false));
    assert!(matches!(out[1].response, Some(P::ResponseTrailers(_))));
    assert!(p.is_finished());
}

#[test]
fn out_of_order_messages_are_protocol_errors() {
    let mut p = StreamProcessor::new(ctx());
    let mut out = Vec::new();
    assert!(
        p.on_message(build::request_body(b"x", true), &mut out)
            .is_err()
    );
    assert!(
        p.on_message(build::response_headers(&[], false), &mut out)
            .is_err()
    );
    let mut p = StreamProcessor::new(ctx());
    send(&mut p, build::request_headers(&[], false));
    assert!(
        p.on_message(build::request_headers(&[], false), &mut out)
            .is_err()
    );
}

#[test]
fn disconnect_releases_in_flight_state() {
    // With a concurrency detector in the config, in-flight counts are visible; here we check
    // via the running-requests gauge that every path releases exactly once.
    let c = ctx();
    for finish in [false, true] {
        let mut p = StreamProcessor::new(c.clone());
        send(
            &mut p,
            build::request_headers(&[(":path", "/v1/chat/completions")], false),
        );
        send(&mut p, build::request_body(CHAT, true));
        if finish {
            send(&mut p, build::response_headers(&[], false));
            send(&mut p, build::response_body(b"{}", true));
        }
        drop(p);
    }
    let text = c.metrics.encode(
        "p",
        c.scheduler.pool(),
        &**c.scheduler.clock(),
        std::time::Duration::from_secs(2),
        None,
    );
    assert!(
        text.contains("inference_objective_running_requests{model_name=\"llama\"} 0"),
        "{text}"
    );
    assert!(text.contains("inference_objective_request_total{model_name=\"llama\",target_model_name=\"llama\",priority=\"0\"} 2"), "{text}");
}

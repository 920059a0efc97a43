//! Fuzzes the ext_proc stream state machine with message sequences in any order: it never
//! panics, answers nothing after closing a stream, and releases every request (the
//! running-requests gauge is back to 0 once the processors are dropped).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pointsman::{Endpoint, Scheduler};
use pointsman_extproc::stream::{Flow, ProcessorContext, ProcessorOptions, StreamProcessor, build};
use std::sync::{Arc, OnceLock};

fn ctx() -> Arc<ProcessorContext> {
    static CTX: OnceLock<Arc<ProcessorContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        let scheduler = Arc::new(Scheduler::builder().seed(1).build_default());
        scheduler
            .pool()
            .upsert(Endpoint::new("a", "10.0.0.1", 8000));
        scheduler
            .pool()
            .upsert(Endpoint::new("b", "10.0.0.2", 8000));
        Arc::new(ProcessorContext {
            scheduler,
            objectives: Default::default(),
            metrics: Default::default(),
            options: ProcessorOptions {
                max_body_bytes: 4096,
                ..Default::default()
            },
        })
    })
    .clone()
}

const PATHS: [&str; 4] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/embeddings",
];

fuzz_target!(|data: &[u8]| {
    let ctx = ctx();
    let mut p = StreamProcessor::new(ctx.clone());
    let mut out = Vec::new();
    let mut closed = false;
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let len = usize::from(tail.first().copied().unwrap_or(0));
        let payload = tail
            .get(1..1 + len)
            .unwrap_or(tail.get(1..).unwrap_or_default());
        rest = tail.get(1 + payload.len()..).unwrap_or_default();
        let eos = op & 0x80 != 0;
        let path = PATHS[usize::from(op >> 5 & 3)];
        let msg = match op & 0x0f {
            0 => build::request_headers(
                &[(":path", path), ("x-gateway-model-name-rewrite", "t")],
                eos,
            ),
            1 => build::with_mode(
                build::request_headers(&[(":path", path)], eos),
                op & 0x10 != 0,
            ),
            2 => build::with_subset(
                build::request_headers(&[(":path", path)], eos),
                &["10.0.0.2:1"],
            ),
            3 | 4 => build::request_body(payload, eos),
            5 => build::request_trailers(),
            6 => build::response_headers(
                &[(
                    "content-type",
                    if op & 0x10 != 0 {
                        "text/event-stream"
                    } else {
                        "application/json"
                    },
                )],
                eos,
            ),
            7 | 8 => build::response_body(payload, eos),
            9 => build::response_trailers(),
            _ => build::request_body(
                br#"{"model":"t","messages":[{"role":"user","content":"x"}],"stream":true}"#,
                eos,
            ),
        };
        out.clear();
        match p.on_message(msg, &mut out) {
            Ok(Flow::Close) => {
                assert!(!closed || out.is_empty(), "output after close");
                closed = true;
            }
            Ok(Flow::Continue) => assert!(!closed),
            Err(_) => break,
        }
    }
    drop(p);
    let text = ctx.metrics.encode(
        "p",
        ctx.scheduler.pool(),
        &**ctx.scheduler.clock(),
        std::time::Duration::from_secs(2),
        None,
    );
    for line in text
        .lines()
        .filter(|l| l.starts_with("inference_objective_running_requests{"))
    {
        assert!(line.ends_with(" 0"), "leaked in-flight request: {line}");
    }
});

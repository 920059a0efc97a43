//! The Rust side of the Python binding's overhead measurement: one `schedule` plus `complete`
//! on the fixture `crates/py-bindings/bench/overhead.py` rebuilds in Python (64 endpoints from
//! `fill_pool(…, 1)`, the 8 KiB chat prompt `chat_prompt(8192, 7)`, the same warm-up), so the
//! difference between the two figures is what the binding adds per call.
//!
//! Also measures what recording every candidate's score costs (`record_scores`, which the
//! binding turns on by default for `Decision.scores`).

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use pointsman::{Prompt, Request, ScheduleOptions, Scheduler};
use pointsman_benches::{Fixture, chat_prompt, default_scheduler};
use std::hint::black_box;

/// Endpoints in the pool.
const ENDPOINTS: usize = 64;
/// Bytes of the benchmark prompt.
const PROMPT_BYTES: usize = 8 * 1024;

/// The warm-up `overhead.py` repeats: every endpoint serves unrelated prompts, then the
/// benchmark prompt is sent three times. Every decision is completed.
fn warm(s: &Scheduler) {
    let mut f = Fixture::new(99);
    for i in 0..(ENDPOINTS * 8) {
        let other = chat_prompt(PROMPT_BYTES, 1000 + f.below(1 << 20));
        let id = format!("warm-{i}");
        if let Ok(d) =
            s.schedule(&Request::new(&id, "llama-3-8b").with_prompt(Prompt::Chat(&other)))
        {
            s.complete(&d);
        }
    }
    let msgs = chat_prompt(PROMPT_BYTES, 7);
    for i in 0..3 {
        let id = format!("seed-{i}");
        if let Ok(d) = s.schedule(&Request::new(&id, "llama-3-8b").with_prompt(Prompt::Chat(&msgs)))
        {
            s.complete(&d);
        }
    }
}

fn baseline(c: &mut Criterion) {
    let mut g = c.benchmark_group("python_overhead_baseline");
    let s = default_scheduler(ENDPOINTS, 1);
    warm(&s);
    let msgs = chat_prompt(PROMPT_BYTES, 7);
    let req = Request::new("bench", "llama-3-8b").with_prompt(Prompt::Chat(&msgs));
    for (label, record_scores) in [
        ("schedule_complete", false),
        ("schedule_complete_scores", true),
    ] {
        let options = ScheduleOptions { record_scores };
        g.bench_function(label, |b| {
            b.iter(|| {
                let d = s
                    .schedule_with(black_box(&req), options)
                    .expect("schedules");
                s.complete(&d);
                black_box(d)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, baseline);
criterion_main!(benches);

//! One scheduling decision end to end (`Scheduler::schedule`, including prompt hashing, prefix
//! matching, scoring, picking and recording the prompt in the index), against a floor: the
//! same framework with only a random picker.

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pointsman::plugins::producer::approx_prefix_cache_producer::ApproxPrefixCacheProducer;
use pointsman::time::ManualClock;
use pointsman::{EndpointPickerConfig, Prompt, Request, Scheduler};
use pointsman_benches::{Fixture, NOW, chat_prompt, default_scheduler, fill_pool};
use std::hint::black_box;
use std::sync::Arc;

/// Warms the prefix index like a running system: every endpoint has served unrelated prompts,
/// and the benchmark prompt's prefix was sent to a few of them.
fn warm(s: &Scheduler, prompt_bytes: usize) {
    let mut f = Fixture::new(99);
    for i in 0..(s.pool().snapshot().len() * 8) {
        let other = chat_prompt(prompt_bytes, 1000 + f.below(1 << 20));
        let id = format!("warm-{i}");
        let _ = s.schedule(&Request::new(&id, "llama-3-8b").with_prompt(Prompt::Chat(&other)));
    }
    let msgs = chat_prompt(prompt_bytes, 7);
    for i in 0..3 {
        let id = format!("seed-{i}");
        let _ = s.schedule(&Request::new(&id, "llama-3-8b").with_prompt(Prompt::Chat(&msgs)));
    }
}

/// How many endpoints hold at least the first block of `req`'s prompt.
fn prefix_holders(s: &Scheduler, req: &Request<'_>) -> usize {
    let producer = s
        .plugins()
        .iter()
        .find_map(|p| p.plugin.downcast_ref::<ApproxPrefixCacheProducer>())
        .expect("the default profile has a prefix producer");
    let (mut scratch, mut hashes) = (Vec::new(), Vec::new());
    pointsman::prefix::hash_prompt(req, 64, 16, 256, &mut scratch, &mut hashes);
    let snap = s.pool().snapshot();
    producer.with_index(|index| {
        snap.endpoints()
            .iter()
            .filter(|e| index.match_prefix(e.id(), e.uid(), &hashes) > 0)
            .count()
    })
}

fn decision(c: &mut Criterion) {
    let mut g = c.benchmark_group("decision");
    for (endpoints, kib) in [(64usize, 8usize), (256, 32)] {
        let label = format!("{endpoints}ep_{kib}KiB");
        g.throughput(Throughput::Elements(1));

        let s = default_scheduler(endpoints, 1);
        warm(&s, kib * 1024);
        let msgs = chat_prompt(kib * 1024, 7);
        let req = Request::new("bench", "llama-3-8b").with_prompt(Prompt::Chat(&msgs));
        assert!(
            prefix_holders(&s, &req) >= 3,
            "the benchmark prompt's prefix is in the index"
        );
        g.bench_with_input(
            BenchmarkId::new("default_profile_prefix_hit", &label),
            &req,
            |b, req| b.iter(|| black_box(s.schedule(black_box(req)).expect("schedules"))),
        );

        // Floor: the same cycle with no producer and no scorer, only a random picker.
        let floor_yaml = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: random-picker\n";
        let floor = Scheduler::builder()
            .seed(1)
            .clock(Arc::new(ManualClock::new(NOW)))
            .build(&EndpointPickerConfig::from_yaml(floor_yaml).expect("yaml"))
            .expect("config");
        fill_pool(floor.pool(), endpoints, 1);
        g.bench_with_input(
            BenchmarkId::new("baseline_random_picker", &label),
            &req,
            |b, req| b.iter(|| black_box(floor.schedule(black_box(req)).expect("schedules"))),
        );
    }
    g.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);

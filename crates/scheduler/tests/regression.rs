//! Behaviours where pointsman deliberately differs from the reference, named after its issues.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use pointsman::config::{EndpointPickerConfig, resolve};
use pointsman::plugins::producer::approx_prefix_cache_producer::ApproxPrefixCacheProducer;
use pointsman::registry::Registry;
use pointsman::testing::{TEST_NOW, pool};
use pointsman::time::{ManualClock, Timestamp};
use pointsman::{Prompt, Request, Scheduler};
use std::sync::Arc;
use std::time::Duration;

fn default_scheduler(clock: Arc<ManualClock>) -> Scheduler {
    Scheduler::builder().seed(1).clock(clock).build_default()
}

/// Reference #1497: an endpoint whose metrics stopped updating looks idle forever and keeps
/// winning. Here it cannot win while a fresher endpoint exists.
#[test]
fn ref_1497_stale_metrics_never_win() {
    let clock = Arc::new(ManualClock::new(TEST_NOW));
    let s = default_scheduler(clock.clone());
    let long_ago = Timestamp::from_nanos(TEST_NOW.as_nanos() - 10_000_000_000);
    pool()
        .endpoint("dead-but-idle-looking")
        .queue(0)
        .kv(0.0)
        .scraped_at(Some(long_ago))
        .endpoint("alive-and-busy")
        .queue(7)
        .kv(0.7)
        .endpoint("never-scraped")
        .scraped_at(None)
        .fill(s.pool());
    for i in 0..50 {
        let d = s.schedule(&Request::new(&i.to_string(), "m")).unwrap();
        assert_eq!(d.primary().unwrap().endpoint().name(), "alive-and-busy");
    }
    // When every endpoint is stale, scheduling still works on what is known (fail-open).
    clock.advance(Duration::from_secs(60));
    let d = s.schedule(&Request::new("x", "m")).unwrap();
    assert_ne!(
        d.primary().unwrap().endpoint().name(),
        "alive-and-busy",
        "all stale: numbers decide"
    );
    // The guard can be turned off, restoring the reference's behaviour.
    let s = Scheduler::builder()
        .seed(1)
        .clock(Arc::new(ManualClock::new(TEST_NOW)))
        .metrics_staleness(None)
        .build_default();
    pool()
        .endpoint("dead-but-idle-looking")
        .queue(0)
        .kv(0.0)
        .scraped_at(Some(long_ago))
        .endpoint("alive-and-busy")
        .queue(7)
        .kv(0.7)
        .fill(s.pool());
    let d = s.schedule(&Request::new("y", "m")).unwrap();
    assert_eq!(
        d.primary().unwrap().endpoint().name(),
        "dead-but-idle-looking"
    );
}

/// GIE-last ignores `lruCapacityPerServer`; it is honoured here.
#[test]
fn lru_capacity_per_server_is_honoured() {
    let yaml = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: approx-prefix-cache-producer\n  parameters: {lruCapacityPerServer: 10}\n- type: prefix-cache-scorer\n";
    let resolved = resolve(
        &EndpointPickerConfig::from_yaml(yaml).unwrap(),
        &Registry::with_builtins(),
    )
    .unwrap();
    let producer = resolved
        .plugin("approx-prefix-cache-producer")
        .unwrap()
        .plugin
        .clone();
    let s = Scheduler::builder()
        .seed(1)
        .clock(Arc::new(ManualClock::new(TEST_NOW)))
        .build_resolved(resolved);
    pool().endpoint("only").fill(s.pool());
    let text = "z".repeat(64 * 40); // 40 blocks of 64 characters
    s.schedule(&Request::new("r", "m").with_prompt(Prompt::Text(&text)))
        .unwrap();
    let snap = s.pool().snapshot();
    let id = snap.by_name("only").unwrap().id();
    let held = producer
        .downcast_ref::<ApproxPrefixCacheProducer>()
        .expect("the registry builds the concrete producer")
        .with_index(|index| index.endpoint_len(id));
    assert_eq!(held, 10, "capacity 10 blocks, not 31,250");
}

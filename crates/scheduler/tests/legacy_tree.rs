//! The v0.3–v0.5 filter-tree scheduler, rebuilt from the legacy filters, on hand-made pools.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use pointsman::testing::{TEST_NOW, pool};
use pointsman::time::ManualClock;
use pointsman::{EndpointPickerConfig, Request, Scheduler, SchedulingError};
use std::collections::HashSet;
use std::sync::Arc;

/// The reference's default tree (v0.4/v0.5) with a random picker, plus the shedding rule as
/// the saturation detector: `queue ≤ 5 and kv ≤ 0.8` somewhere, or sheddable requests are
/// dropped.
const TREE: &str = r#"
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: low-queue-filter
- type: lora-affinity-filter
- type: least-queue-filter
- type: least-kv-cache-filter
- name: tree
  type: decision-tree-filter
  parameters:
    current: {pluginRef: low-queue-filter}
    nextOnSuccess:
      decisionTree:
        current: {pluginRef: lora-affinity-filter}
        nextOnSuccessOrFailure:
          decisionTree:
            current: {pluginRef: least-queue-filter}
            nextOnSuccessOrFailure: {decisionTree: {current: {pluginRef: least-kv-cache-filter}}}
    nextOnFailure:
      decisionTree:
        current: {pluginRef: least-queue-filter}
        nextOnSuccessOrFailure:
          decisionTree:
            current: {pluginRef: lora-affinity-filter}
            nextOnSuccessOrFailure: {decisionTree: {current: {pluginRef: least-kv-cache-filter}}}
- type: random-picker
- type: utilization-detector
  parameters: {queueDepthThreshold: 6, kvCacheUtilThreshold: 0.81}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: tree}, {pluginRef: random-picker}]
"#;

fn tree(seed: u64) -> Scheduler {
    Scheduler::builder()
        .seed(seed)
        .clock(Arc::new(ManualClock::new(TEST_NOW)))
        .build(&EndpointPickerConfig::from_yaml(TREE).unwrap())
        .unwrap()
}

fn picks(s: &Scheduler, model: &str, priority: i32, n: u64) -> HashSet<String> {
    (0..n)
        .filter_map(|i| {
            let id = i.to_string();
            s.schedule(&Request::new(&id, model).with_priority(priority))
                .ok()
        })
        .map(|d| d.primary().unwrap().endpoint().name().to_string())
        .collect()
}

#[test]
fn low_queue_then_lora_affinity_then_least_queue_then_least_kv() {
    let s = tree(1);
    pool()
        .endpoint("affine-busy")
        .active(&["sql"])
        .max_adapters(4)
        .queue(10)
        .kv(0.2)
        .endpoint("affine-idle")
        .active(&["sql"])
        .max_adapters(4)
        .queue(1)
        .kv(0.7)
        .endpoint("affine-idle-lowkv")
        .active(&["sql"])
        .max_adapters(4)
        .queue(1)
        .kv(0.1)
        .endpoint("plain-idle")
        .max_adapters(4)
        .queue(0)
        .kv(0.0)
        .fill(s.pool());
    // Low queue keeps all (≤128); LoRA affinity (p=.999) keeps the three "affine" ones; least
    // queue: min 1, max 10, N 3 → limit 1 + 9/3 = 4 keeps the two idle ones; least KV: min 0.1,
    // max 0.7, N 2 → limit 0.4 keeps "affine-idle-lowkv".
    assert_eq!(
        picks(&s, "sql", 0, 200),
        HashSet::from(["affine-idle-lowkv".to_string()])
    );
}

#[test]
fn queues_over_the_threshold_take_the_failure_branch() {
    let s = tree(2);
    pool()
        .endpoint("a")
        .active(&["sql"])
        .max_adapters(1)
        .queue(300)
        .endpoint("b")
        .max_adapters(2)
        .queue(200)
        .endpoint("c")
        .max_adapters(2)
        .queue(500)
        .fill(s.pool());
    // No endpoint has q ≤ 128: failure branch gets the full input. Least queue: min 200, max
    // 500, N 3 → limit 300 keeps a and b; LoRA affinity keeps a (0.999); least KV keeps it.
    let got = picks(&s, "sql", 0, 300);
    assert!(got.contains("a"), "{got:?}");
    assert!(!got.contains("c"), "{got:?}");
}

#[test]
fn critical_requests_pass_sheddable_ones_are_dropped_when_saturated() {
    let s = tree(3);
    // queue 6 ≥ 6 or kv 0.9 ≥ 0.81 everywhere: saturated by the detector's rule.
    pool()
        .endpoint("a")
        .queue(6)
        .endpoint("b")
        .kv(0.9)
        .fill(s.pool());
    let err = s
        .schedule(&Request::new("r", "m").with_priority(-1))
        .unwrap_err();
    assert!(matches!(err, SchedulingError::Saturated { .. }));
    assert_eq!(err.http_status(), 429);
    assert!(
        !picks(&s, "m", 0, 10).is_empty(),
        "critical (priority ≥ 0) requests are served"
    );
    // Capacity somewhere: a sheddable request is admitted when the mean drops below 1.
    pool().endpoint("c").fill(s.pool());
    pool().endpoint("d").fill(s.pool());
    assert!(
        s.schedule(&Request::new("r", "m").with_priority(-1))
            .is_ok()
    );
}

#[test]
fn final_choice_is_uniform_among_survivors() {
    let s = tree(4);
    pool()
        .endpoint("a")
        .endpoint("b")
        .endpoint("c")
        .fill(s.pool());
    let mut counts = std::collections::HashMap::<String, u32>::new();
    for i in 0..3000 {
        let id = i.to_string();
        let d = s.schedule(&Request::new(&id, "m")).unwrap();
        *counts
            .entry(d.primary().unwrap().endpoint().name().to_string())
            .or_default() += 1;
    }
    for c in counts.values() {
        assert!((850..1150).contains(c), "{counts:?}");
    }
}

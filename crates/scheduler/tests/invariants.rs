//! Properties that hold for any pool and any request.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use pointsman::testing::{PoolBuilder, TEST_NOW, pool};
use pointsman::time::ManualClock;
use pointsman::{EndpointPickerConfig, Prompt, Request, Scheduler};
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

const CONFIGS: [&str; 4] = [
    // The reference default.
    "",
    "plugins:\n- type: queue-scorer\n- type: lora-affinity-scorer\n- type: weighted-random-picker\n  parameters: {maxNumOfEndpoints: 2}\n",
    "plugins:\n- type: utilization-detector\n- type: prefix-cache-affinity-filter\n- type: kv-cache-utilization-scorer\n- type: random-picker\n",
    "plugins:\n- type: low-queue-filter\n  parameters: {threshold: 4}\n- type: least-kv-cache-filter\n- type: running-requests-size-scorer\n- type: max-score-picker\n  parameters: {maxNumOfEndpoints: 3}\n",
];

fn build(config: usize, seed: u64) -> Scheduler {
    let b = Scheduler::builder()
        .seed(seed)
        .clock(Arc::new(ManualClock::new(TEST_NOW)));
    if CONFIGS[config].is_empty() {
        return b.build_default();
    }
    let yaml = format!(
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n{}",
        CONFIGS[config]
    );
    b.build(&EndpointPickerConfig::from_yaml(&yaml).unwrap())
        .unwrap()
}

fn arb_pool() -> impl Strategy<Value = PoolBuilder> {
    proptest::collection::vec(
        (
            0u32..20,
            0u32..20,
            0.0f64..1.0,
            any::<bool>(),
            any::<bool>(),
        ),
        1..24,
    )
    .prop_map(|eps| {
        let mut b = pool();
        for (i, (q, r, kv, lora, stale)) in eps.into_iter().enumerate() {
            b = b
                .endpoint(&format!("e{i}"))
                .queue(q)
                .running(r)
                .kv(kv)
                .max_adapters(2);
            if lora {
                b = b.active(&["lora-a"]);
            }
            if stale {
                b = b.scraped_at(None);
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every pick is an endpoint of the pool (and of the subset, when hinted); picks are distinct.
    #[test]
    fn picks_are_candidates(config in 0..CONFIGS.len(), seed in any::<u64>(), p in arb_pool(), subset_mask in any::<u32>(), prompt_len in 0usize..2000) {
        let s = build(config, seed);
        p.fill(s.pool());
        let snap = s.pool().snapshot();
        let hint: Vec<String> = snap.endpoints().iter().enumerate()
            .filter(|(i, _)| subset_mask & (1 << (i % 32)) != 0)
            .map(|(_, e)| e.endpoint().host_port().to_string()).collect();
        let hint_refs: Vec<&str> = hint.iter().map(String::as_str).collect();
        let text = "p".repeat(prompt_len);
        for with_hint in [false, true] {
            let mut req = Request::new("r", "lora-a").with_prompt(Prompt::Text(&text));
            if with_hint { req = req.with_subset_hint(&hint_refs); }
            match s.schedule(&req) {
                Ok(d) => {
                    let names: Vec<&str> = d.endpoints().map(|e| e.endpoint().name()).collect();
                    prop_assert!(!names.is_empty());
                    let distinct: HashSet<&str> = names.iter().copied().collect();
                    prop_assert_eq!(distinct.len(), names.len());
                    for e in d.endpoints() {
                        prop_assert!(snap.by_name(e.endpoint().name()).is_some());
                        if with_hint {
                            prop_assert!(hint.contains(&e.endpoint().host_port().to_string()));
                        }
                    }
                    s.complete(&d);
                }
                Err(e) => {
                    // Only an empty subset or an over-strict filter may fail here.
                    prop_assert!(e.http_status() == 503 || e.http_status() == 429, "{}", e);
                    if e.http_status() == 503 { prop_assert!(with_hint && hint.is_empty()); }
                }
            }
        }
    }

    /// The same seed and inputs give the same decisions.
    #[test]
    fn fixed_seed_reproduces(config in 0..CONFIGS.len(), seed in any::<u64>(), p in arb_pool()) {
        let run = || {
            let s = build(config, seed);
            p.clone().fill(s.pool());
            (0..8).map(|i| {
                let text = format!("{}{}", "shared ".repeat(30), i % 3);
                s.schedule(&Request::new("r", "lora-a").with_prompt(Prompt::Text(&text)))
                    .map(|d| d.destination()).map_err(|e| e.to_string())
            }).collect::<Vec<_>>()
        };
        prop_assert_eq!(run(), run());
    }
}

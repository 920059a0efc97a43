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

/// Every built-in filter, as configured in a profile: (plugins YAML, the profile's filter).
const FILTERS: [(&str, &str); 9] = [
    (
        "- type: low-queue-filter\n  parameters: {threshold: 5}\n",
        "low-queue-filter",
    ),
    ("- type: least-queue-filter\n", "least-queue-filter"),
    ("- type: least-kv-cache-filter\n", "least-kv-cache-filter"),
    ("- type: lora-affinity-filter\n", "lora-affinity-filter"),
    (
        "- type: prefix-cache-affinity-filter\n  parameters: {explorationProbability: 0}\n",
        "prefix-cache-affinity-filter",
    ),
    ("- type: utilization-detector\n", "utilization-detector"),
    (
        "- type: concurrency-detector\n  parameters: {maxConcurrency: 2}\n",
        "concurrency-detector",
    ),
    (
        "- type: low-queue-filter\n- type: least-queue-filter\n- name: tree\n  type: decision-tree-filter\n  parameters: {current: {pluginRef: low-queue-filter}, nextOnFailure: {decisionTree: {current: {pluginRef: least-queue-filter}}}}\n",
        "tree",
    ),
    (
        "- type: lora-affinity-filter\n- type: least-kv-cache-filter\n- name: tree\n  type: decision-tree-filter\n  parameters: {current: {pluginRef: lora-affinity-filter}, nextOnSuccessOrFailure: {decisionTree: {current: {pluginRef: least-kv-cache-filter}}}}\n",
        "tree",
    ),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Filters only ever remove endpoints: whatever a filter-only profile returns (all of its
    /// survivors, through a picker asked for every endpoint) is a subset of the candidates.
    #[test]
    fn filters_never_add_endpoints(filter in 0..FILTERS.len(), seed in any::<u64>(), p in arb_pool(), subset_mask in any::<u32>()) {
        let (body, tree_name) = FILTERS[filter];
        let yaml = format!(
            "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n{body}- type: random-picker\n  parameters: {{maxNumOfEndpoints: 1000}}\nschedulingProfiles:\n- name: default\n  plugins: [{{pluginRef: {tree_name}}}, {{pluginRef: random-picker}}]\n"
        );
        let config = EndpointPickerConfig::from_yaml(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        let s = Scheduler::builder().seed(seed).clock(Arc::new(ManualClock::new(TEST_NOW))).metrics_staleness(None)
            .build(&config).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        p.fill(s.pool());
        let snap = s.pool().snapshot();
        let hint: Vec<String> = snap.endpoints().iter().enumerate()
            .filter(|(i, _)| subset_mask & (1 << (i % 32)) != 0)
            .map(|(_, e)| e.endpoint().host_port().to_string()).collect();
        let hint_refs: Vec<&str> = hint.iter().map(String::as_str).collect();
        let text = "x".repeat(300);
        let req = Request::new("r", "lora-a").with_prompt(Prompt::Text(&text)).with_subset_hint(&hint_refs);
        if let Ok(d) = s.schedule(&req) {
            let survivors: HashSet<String> = d.endpoints().map(|e| e.endpoint().host_port().to_string()).collect();
            let offered: HashSet<String> = hint.iter().cloned().collect();
            prop_assert!(survivors.is_subset(&offered), "{:?} ⊄ {:?}", survivors, offered);
        }
    }

    /// With one pick, weighted-random chooses each endpoint with probability ∝ its total score
    /// (here a single scorer whose scores are 1 − kv).
    #[test]
    fn weighted_random_follows_weights(kvs in proptest::collection::vec(0.0f64..0.95, 2..5), seed in any::<u64>()) {
        let yaml = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: kv-cache-utilization-scorer\n- type: weighted-random-picker\n";
        let s = Scheduler::builder().seed(seed).clock(Arc::new(ManualClock::new(TEST_NOW)))
            .build(&EndpointPickerConfig::from_yaml(yaml).unwrap()).unwrap();
        let mut b = pool();
        for (i, kv) in kvs.iter().enumerate() { b = b.endpoint(&format!("e{i}")).kv(*kv); }
        b.fill(s.pool());
        let n = 4000;
        let mut counts = vec![0u32; kvs.len()];
        for i in 0..n {
            let d = s.schedule(&Request::new(&i.to_string(), "m")).unwrap();
            let name = d.primary().unwrap().endpoint().name().to_string();
            counts[name[1..].parse::<usize>().unwrap()] += 1;
        }
        let total: f64 = kvs.iter().map(|kv| 1.0 - kv).sum();
        for (c, kv) in counts.iter().zip(&kvs) {
            let expected = f64::from(n) * (1.0 - kv) / total;
            // Four standard deviations of a binomial count.
            let sd = (expected * (1.0 - expected / f64::from(n))).sqrt();
            prop_assert!((f64::from(*c) - expected).abs() <= 4.0 * sd + 1.0, "{:?} vs weights {:?}", counts, kvs);
        }
    }
}

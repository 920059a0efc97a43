//! The sanity checks a fleet simulator must pass before its comparisons mean anything.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use pointsman_sim::compare;
use pointsman_sim::policy::Policy;
use pointsman_sim::report::PolicyResult;
use pointsman_sim::sim::SimConfig;
use pointsman_sim::workload::{Arrivals, SharedPrefix, read_mooncake};
use std::path::PathBuf;

fn shared_prefix(rate: f64, requests: usize) -> SharedPrefix {
    SharedPrefix {
        groups: 150,
        prompts_per_group: 5,
        system_tokens: 6000,
        question_tokens: 1200,
        output_tokens: 100,
        requests,
        arrivals: Arrivals::Poisson { rate },
        ..SharedPrefix::default()
    }
}

fn run(w: &SharedPrefix, names: &[&str]) -> Vec<PolicyResult> {
    let policies: Vec<Policy> = names.iter().map(|n| Policy::baseline(n).unwrap()).collect();
    compare(
        &w.generate(16, 7).unwrap(),
        &policies,
        &SimConfig::default(),
    )
    .unwrap()
}

#[test]
fn same_seed_same_results() {
    let w = shared_prefix(40.0, 600);
    let a = run(&w, &["random", "pointsman"]);
    let b = run(&w, &["random", "pointsman"]);
    assert_eq!(a, b);
}

#[test]
fn at_low_load_sensible_policies_are_close() {
    let w = SharedPrefix {
        groups: 8,
        system_tokens: 1000,
        question_tokens: 200,
        ..shared_prefix(2.0, 300)
    };
    let r = run(
        &w,
        &[
            "round-robin",
            "least-queue",
            "load-aware",
            "reference-default",
            "pointsman",
        ],
    );
    let e2e: Vec<f64> = r.iter().map(|p| p.e2e.p50).collect();
    let (lo, hi) = (
        e2e.iter().copied().fold(f64::MAX, f64::min),
        e2e.iter().copied().fold(0.0, f64::max),
    );
    assert!(hi / lo < 1.15, "median e2e within 15%: {e2e:?}");
    for p in &r {
        assert_eq!(p.completed, 300, "{}", p.policy);
        assert!(
            p.slo_attainment > 0.99,
            "{}: {}",
            p.policy,
            p.slo_attainment
        );
    }
}

#[test]
fn near_saturation_prefix_aware_policies_beat_round_robin_widely() {
    let r = run(
        &shared_prefix(60.0, 3000),
        &["round-robin", "reference-default", "pointsman"],
    );
    let (rr, reference, ours) = (&r[0], &r[1], &r[2]);
    for p in [reference, ours] {
        assert!(
            p.ttft.p90 * 10.0 < rr.ttft.p90,
            "{}: TTFT p90 {} vs round-robin {}",
            p.policy,
            p.ttft.p90,
            rr.ttft.p90
        );
        assert!(
            p.prefix_hit_rate > rr.prefix_hit_rate + 0.3,
            "{}: hit rate {} vs {}",
            p.policy,
            p.prefix_hit_rate,
            rr.prefix_hit_rate
        );
        assert!(
            p.goodput_rps > 2.0 * rr.goodput_rps,
            "{}: goodput {} vs {}",
            p.policy,
            p.goodput_rps,
            rr.goodput_rps
        );
    }
}

#[test]
fn load_only_and_random_are_close() {
    let r = run(&shared_prefix(60.0, 3000), &["load-aware", "random"]);
    let (load, random) = (&r[0], &r[1]);
    let ratio = load.ttft.p90 / random.ttft.p90;
    assert!(
        (0.67..1.5).contains(&ratio),
        "TTFT p90 load-only {} vs random {}",
        load.ttft.p90,
        random.ttft.p90
    );
    assert!((load.prefix_hit_rate - random.prefix_hit_rate).abs() < 0.05);
}

#[test]
fn shedding_shows_as_rejections_not_as_better_latency() {
    let base = shared_prefix(70.0, 2000);
    let shed = SharedPrefix {
        sheddable: 0.5,
        ..base.clone()
    };
    let r_base = run(&base, &["round-robin"]);
    let r_shed = run(&shed, &["round-robin"]);
    let (b, s) = (&r_base[0], &r_shed[0]);
    assert_eq!(b.rejected, 0);
    assert!(
        s.rejected > 100,
        "sheddable requests are refused on a saturated fleet: {}",
        s.rejected
    );
    assert_eq!(
        s.completed + s.rejected,
        s.requests,
        "every request is accounted for"
    );
    assert!(
        s.slo_attainment <= 1.0 - s.rejected as f64 / s.requests as f64 + 1e-9,
        "shed requests count as SLO misses"
    );
}

#[test]
fn lora_affinity_keeps_adapters_where_they_are_loaded() {
    let w = SharedPrefix {
        loras: (0..12)
            .map(|i| pointsman_sim::workload::LoraShare {
                name: format!("adapter-{i}"),
                share: 0.08,
            })
            .collect(),
        groups: 8,
        system_tokens: 500,
        question_tokens: 200,
        ..shared_prefix(30.0, 1500)
    };
    let lora_yaml = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: lora-affinity-scorer\n- type: queue-scorer\nschedulingProfiles:\n- name: default\n  plugins: [{pluginRef: lora-affinity-scorer, weight: 3}, {pluginRef: queue-scorer, weight: 1}]\n";
    let policies = [
        Policy::baseline("round-robin").unwrap(),
        Policy::from_yaml("lora", lora_yaml),
    ];
    let r = compare(
        &w.generate(16, 3).unwrap(),
        &policies,
        &SimConfig::default(),
    )
    .unwrap();
    assert!(
        r[1].e2e.p50 <= r[0].e2e.p50 * 1.05,
        "{} vs {}",
        r[1].e2e.p50,
        r[0].e2e.p50
    );
}

#[test]
fn mooncake_trace_replays() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/traces/mooncake/synthetic_trace.jsonl");
    let requests = read_mooncake(&path, 16, 4.0).unwrap();
    assert_eq!(requests.len(), 3993);
    let short = &requests[..600];
    let r = compare(
        short,
        &[Policy::baseline("reference-default").unwrap()],
        &SimConfig::default(),
    )
    .unwrap();
    assert_eq!(r[0].completed + r[0].rejected, 600);
    // Upper bound: an infinite cache shared by the whole fleet.
    let mut seen = std::collections::HashSet::new();
    let (mut hits, mut total) = (0u64, 0u64);
    for q in short {
        let lead = q
            .block_keys
            .iter()
            .take_while(|k| seen.contains(*k))
            .count() as u64;
        hits += (lead * 16).min(u64::from(q.input_tokens - 1) / 16 * 16);
        total += u64::from(q.input_tokens);
        seen.extend(q.block_keys.iter().copied());
    }
    let bound = hits as f64 / total as f64;
    let got = r[0].prefix_hit_rate;
    assert!(
        got <= bound + 1e-9 && got >= 0.5 * bound,
        "hit rate {got} against the infinite-cache bound {bound}"
    );
}

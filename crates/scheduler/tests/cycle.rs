//! The whole scheduling cycle through `Scheduler`: decisions, errors and their status codes,
//! lifecycle hooks.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use pointsman::testing::{TEST_NOW, pool};
use pointsman::time::ManualClock;
use pointsman::{ChatMessage, Prompt, Request, ScheduleOptions, Scheduler, SchedulingError};
use std::sync::Arc;

const HEADER: &str =
    "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n";

fn scheduler(yaml: Option<&str>, seed: u64) -> Scheduler {
    let b = Scheduler::builder()
        .seed(seed)
        .clock(Arc::new(ManualClock::new(TEST_NOW)));
    match yaml {
        None => b.build_default(),
        Some(y) => b
            .build(&pointsman::EndpointPickerConfig::from_yaml(&format!("{HEADER}{y}")).unwrap())
            .unwrap(),
    }
}

fn primary(s: &Scheduler, req: &Request<'_>) -> String {
    let d = s.schedule(req).unwrap();
    let name = d.primary().unwrap().endpoint().name().to_string();
    s.complete(&d);
    name
}

#[test]
fn default_config_picks_the_least_loaded() {
    let s = scheduler(None, 1);
    pool()
        .endpoint("busy")
        .queue(10)
        .kv(0.9)
        .endpoint("idle")
        .queue(0)
        .kv(0.1)
        .endpoint("mid")
        .queue(3)
        .kv(0.5)
        .fill(s.pool());
    for i in 0..20 {
        let id = format!("r{i}");
        assert_eq!(primary(&s, &Request::new(&id, "m")), "idle");
    }
}

#[test]
fn repeated_long_prompt_goes_back_to_the_endpoint_holding_its_prefix() {
    let s = scheduler(None, 2);
    pool()
        .endpoint("a")
        .endpoint("b")
        .endpoint("c")
        .endpoint("d")
        .fill(s.pool());
    let system = "You are a meticulous assistant. ".repeat(100);
    let msgs = [
        ChatMessage::new("system", system.as_str()),
        ChatMessage::new("user", "question one"),
    ];
    let req = Request::new("r1", "m").with_prompt(Prompt::Chat(&msgs));
    let first = primary(&s, &req);
    // Same load everywhere: only the prefix differs now.
    let msgs2 = [
        ChatMessage::new("system", system.as_str()),
        ChatMessage::new("user", "question two"),
    ];
    for i in 0..10 {
        let id = format!("again{i}");
        let req2 = Request::new(&id, "m").with_prompt(Prompt::Chat(&msgs2));
        assert_eq!(primary(&s, &req2), first, "prefix affinity");
    }
    // A different model does not share the prefix: with seed-varied ties it spreads.
    let others: std::collections::HashSet<String> = (0..40)
        .map(|i| {
            let id = format!("o{i}");
            let model = format!("model-{i}");
            primary(
                &s,
                &Request::new(&id, &model).with_prompt(Prompt::Chat(&msgs)),
            )
        })
        .collect();
    assert!(others.len() > 1, "other models are not pinned: {others:?}");
}

#[test]
fn lora_affinity_wins_with_the_scorer() {
    let y = "plugins:\n- type: lora-affinity-scorer\n- type: queue-scorer\nschedulingProfiles:\n- name: default\n  plugins: [{pluginRef: lora-affinity-scorer, weight: 2}, {pluginRef: queue-scorer, weight: 1}]\n";
    let s = scheduler(Some(y), 3);
    pool()
        .endpoint("has-adapter")
        .active(&["sql-lora"])
        .max_adapters(1)
        .queue(4)
        .endpoint("empty")
        .queue(0)
        .max_adapters(0)
        .fill(s.pool());
    // has-adapter: 2·1.0 + 1·0 = 2; empty: 2·0 + 1·1 = 1
    assert_eq!(primary(&s, &Request::new("r", "sql-lora")), "has-adapter");
    assert_eq!(primary(&s, &Request::new("r", "base")), "empty");
}

#[test]
fn sheddable_requests_get_429_on_a_saturated_pool_others_pass() {
    let s = scheduler(None, 4);
    pool()
        .endpoint("a")
        .queue(9)
        .endpoint("b")
        .kv(0.95)
        .fill(s.pool());
    let shed = Request::new("r", "m").with_priority(-1);
    let err = s.schedule(&shed).unwrap_err();
    assert!(matches!(err, SchedulingError::Saturated { .. }), "{err}");
    assert_eq!(err.http_status(), 429);
    assert!(
        s.schedule(&Request::new("r", "m")).is_ok(),
        "priority 0 is never shed"
    );
    // One endpoint with capacity makes the mean < 1: admitted.
    pool().endpoint("c").fill(s.pool());
    // (min(9/5…)=1.8 + 0.95/0.8=1.1875 + 0) / 3 = 0.996 < 1
    assert!(s.schedule(&shed).is_ok());
}

#[test]
fn empty_pool_and_empty_subset_are_503() {
    let s = scheduler(None, 5);
    assert_eq!(
        s.schedule(&Request::new("r", "m"))
            .unwrap_err()
            .http_status(),
        503
    );
    pool().endpoint("a").fill(s.pool());
    let none: [&str; 0] = [];
    let err = s
        .schedule(&Request::new("r", "m").with_subset_hint(&none))
        .unwrap_err();
    assert_eq!(err, SchedulingError::NoCandidates);
}

#[test]
fn subset_hint_restricts_candidates() {
    let s = scheduler(None, 6);
    pool()
        .endpoint("a")
        .queue(0)
        .endpoint("b")
        .queue(5)
        .fill(s.pool());
    let b_addr = s
        .pool()
        .snapshot()
        .by_name("b")
        .unwrap()
        .endpoint()
        .host_port()
        .to_string();
    let hint = [b_addr.as_str()];
    assert_eq!(
        primary(&s, &Request::new("r", "m").with_subset_hint(&hint)),
        "b"
    );
}

#[test]
fn everything_filtered_out_is_429_naming_the_filter() {
    let y = "plugins:\n- name: strict\n  type: low-queue-filter\n  parameters: {threshold: 1}\n";
    let s = scheduler(Some(y), 7);
    pool().endpoint("a").queue(5).fill(s.pool());
    let err = s.schedule(&Request::new("r", "m")).unwrap_err();
    assert_eq!(err.http_status(), 429);
    assert!(err.to_string().contains("filter \"strict\""), "{err}");
}

#[test]
fn fallbacks_follow_the_picker_order() {
    let y = "plugins:\n- type: queue-scorer\n- type: max-score-picker\n  parameters: {maxNumOfEndpoints: 3}\n";
    let s = scheduler(Some(y), 8);
    pool()
        .endpoint("q4")
        .queue(4)
        .endpoint("q0")
        .queue(0)
        .endpoint("q8")
        .queue(8)
        .endpoint("q2")
        .queue(2)
        .fill(s.pool());
    let d = s.schedule(&Request::new("r", "m")).unwrap();
    let names: Vec<&str> = d.endpoints().map(|e| e.endpoint().name()).collect();
    assert_eq!(names, vec!["q0", "q2", "q4"]);
    let snap = s.pool().snapshot();
    let expected: Vec<&str> = ["q0", "q2", "q4"]
        .iter()
        .map(|n| snap.by_name(n).unwrap().endpoint().host_port())
        .collect();
    assert_eq!(d.destination(), expected.join(","));
}

#[test]
fn recorded_scores_are_weighted_sums() {
    let s = scheduler(None, 9);
    pool()
        .endpoint("a")
        .queue(0)
        .kv(0.5)
        .endpoint("b")
        .queue(10)
        .kv(0.0)
        .fill(s.pool());
    let d = s
        .schedule_with(
            &Request::new("r", "m"),
            ScheduleOptions {
                record_scores: true,
            },
        )
        .unwrap();
    let scores = &d.result().primary().unwrap().result.scores;
    // a: 2·1 + 2·0.5 + 3·0 = 3; b: 2·0 + 2·1 + 3·0 = 2
    let snap = s.pool().snapshot();
    let of = |n: &str| {
        scores
            .iter()
            .find(|(id, _)| *id == snap.by_name(n).unwrap().id())
            .unwrap()
            .1
    };
    assert!(
        (of("a") - 3.0).abs() < 1e-12 && (of("b") - 2.0).abs() < 1e-12,
        "{scores:?}"
    );
    assert!(
        s.schedule(&Request::new("r", "m"))
            .unwrap()
            .result()
            .primary()
            .unwrap()
            .result
            .scores
            .is_empty()
    );
}

#[test]
fn in_flight_counts_rise_with_decisions_and_fall_on_completion() {
    let y = "plugins:\n- type: token-load-scorer\n  parameters: {queueThresholdTokens: 100}\n- type: concurrency-detector\n  parameters: {maxConcurrency: 2}\nsaturationDetector: {pluginRef: concurrency-detector}\nschedulingProfiles:\n- name: default\n  plugins: [{pluginRef: concurrency-detector}, {pluginRef: token-load-scorer}]\n";
    let s = scheduler(Some(y), 10);
    pool().endpoint("a").endpoint("b").fill(s.pool());
    let text = "x".repeat(400); // 100 tokens in, 150 out
    let req = Request::new("r", "m").with_prompt(Prompt::Text(&text));
    let d1 = s.schedule(&req).unwrap();
    let d2 = s.schedule(&req).unwrap();
    let first = d1.primary().unwrap().endpoint().name().to_string();
    assert_ne!(
        first,
        d2.primary().unwrap().endpoint().name(),
        "token load spreads"
    );
    let d3 = s.schedule(&req).unwrap();
    let d4 = s.schedule(&req).unwrap();
    // Both endpoints now hold 2 = maxConcurrency: the detector filter (no fail-open) empties the
    // candidate list, and sheddable requests see saturation 4/4 = 1.
    assert_eq!(s.schedule(&req).unwrap_err().http_status(), 429);
    assert!(matches!(
        s.schedule(&req.with_priority(-1)).unwrap_err(),
        SchedulingError::Saturated { .. }
    ));
    for d in [&d1, &d2, &d3, &d4] {
        s.complete(d);
        s.complete(d); // idempotent
    }
    assert!(s.schedule(&req).is_ok(), "released");
}

#[test]
fn fixed_seed_reproduces_decisions() {
    let run = |seed| {
        let s = scheduler(Some("plugins:\n- type: random-picker\n"), seed);
        pool()
            .endpoint("a")
            .endpoint("b")
            .endpoint("c")
            .endpoint("d")
            .fill(s.pool());
        (0..50)
            .map(|i| primary(&s, &Request::new(&format!("{i}"), "m")))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

#[test]
fn departed_endpoints_lose_prefix_state() {
    let s = scheduler(None, 13);
    pool().endpoint("a").endpoint("b").fill(s.pool());
    let long = "shared prefix ".repeat(200);
    let req = Request::new("r", "m").with_prompt(Prompt::Text(&long));
    let first = primary(&s, &req);
    s.pool().remove(&first);
    let other = if first == "a" { "b" } else { "a" };
    assert_eq!(primary(&s, &req), other);
    // Re-adding the same name is a new incarnation: its old prefix entries are gone, so the
    // endpoint that served the last request keeps the affinity.
    pool().endpoint(&first).fill(s.pool());
    assert_eq!(primary(&s, &req), other);
}

//! Schedules a realistic batch of requests over a pool of model servers with the reference
//! picker's default profile, and prints what it decided and why.
//!
//! The fleet: 16 vLLM-like endpoints, two of them with LoRA adapters loaded, one whose metrics
//! stopped updating. The traffic: 4,000 chat requests from 24 "applications", each with its own
//! long system prompt (so prefix-cache affinity matters), some for LoRA adapters, some sheddable.
//! Between requests the fleet's queues evolve: each endpoint drains and receives what was routed
//! to it, and metrics are re-published every 50 ms of simulated time, as a scraper would.
//!
//! Run: `cargo run --release --example schedule_batch`

use pointsman::time::{ManualClock, Timestamp};
use pointsman::{ChatMessage, Endpoint, Metrics, Prompt, Request, Scheduler};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ENDPOINTS: usize = 16;
const APPS: usize = 24;
const REQUESTS: usize = 4_000;
/// Simulated arrival gap.
const GAP: Duration = Duration::from_millis(2);

struct Server {
    queue: f64,
    running: f64,
    kv: f64,
}

/// The reference default plus LoRA affinity and this picker's own in-flight token counts, which
/// keep a burst from piling onto the endpoint that looked idlest at the last scrape.
const WITH_INFLIGHT: &str = r#"
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: lora-affinity-scorer
- type: token-load-scorer
  parameters: {queueThresholdTokens: 200000}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: lora-affinity-scorer, weight: 2}
  - {pluginRef: token-load-scorer, weight: 2}
"#;

fn main() {
    println!("== reference default profile (queue 2, kv-cache 2, prefix 3) ==");
    run(None);
    println!("\n== default + lora-affinity-scorer 2 + token-load-scorer 2 (in-flight) ==");
    run(Some(WITH_INFLIGHT));
}

fn run(config: Option<&str>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_nanos(1)));
    let builder = Scheduler::builder().seed(2026).clock(clock.clone());
    let scheduler = match config {
        None => builder.build_default(),
        Some(yaml) => {
            match pointsman::EndpointPickerConfig::from_yaml(yaml).and_then(|c| builder.build(&c)) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            }
        }
    };
    let pool = scheduler.pool();

    let mut servers: Vec<Server> = (0..ENDPOINTS)
        .map(|i| Server {
            queue: (i % 5) as f64,
            running: 8.0,
            kv: 0.2 + 0.03 * i as f64,
        })
        .collect();
    for i in 0..ENDPOINTS {
        pool.upsert(Endpoint::new(
            format!("vllm-{i}-rank-0"),
            format!("10.0.0.{}", 10 + i),
            8000,
        ));
    }
    let publish = |servers: &[Server], now: Timestamp| {
        pool.update(|tx| {
            for (i, s) in servers.iter().enumerate() {
                // vllm-15 stopped answering /metrics at startup: its last numbers look idle.
                if i == 15 && now.as_nanos() > 1 {
                    continue;
                }
                let m = Metrics {
                    waiting_queue_size: s.queue.round() as u32,
                    running_requests_size: s.running.round() as u32,
                    kv_cache_usage: s.kv.clamp(0.0, 1.0),
                    active_adapters: if i < 2 {
                        ["sql-lora"].into_iter().collect()
                    } else {
                        Default::default()
                    },
                    max_active_adapters: 4,
                    cache_block_size: 16,
                    cache_num_blocks: 31_250,
                    updated_at: Some(now),
                    ..Metrics::default()
                };
                let _ = tx.set_metrics(&format!("vllm-{i}-rank-0"), m);
            }
        });
    };
    publish(&servers, clock.now_ts());

    let system_prompts: Vec<String> = (0..APPS)
        .map(|a| format!("You are assistant #{a} for a team. ").repeat(60 + 7 * a))
        .collect();

    let mut per_endpoint: BTreeMap<String, usize> = BTreeMap::new();
    let mut app_homes: Vec<BTreeMap<String, usize>> = vec![BTreeMap::new(); APPS];
    let mut errors: BTreeMap<u16, usize> = BTreeMap::new();
    let mut lora_on_adapter_hosts = (0, 0);
    let mut shown = 0;
    let mut last_publish = Timestamp::from_nanos(1);
    let mut decision_time = Duration::ZERO;
    let mut in_flight = std::collections::VecDeque::new();

    for n in 0..REQUESTS {
        let app = (n * 7 + n / 3) % APPS;
        let lora = n % 10 == 0;
        let sheddable = n % 13 == 0;
        let question = format!("Question {n}: what should I do next?");
        let messages = [
            ChatMessage::new("system", system_prompts[app].as_str()),
            ChatMessage::new("user", question.as_str()),
        ];
        let id = format!("req-{n}");
        let model = if lora { "sql-lora" } else { "llama-3.1-8b" };
        let request = Request::new(&id, model)
            .with_prompt(Prompt::Chat(&messages))
            .with_priority(if sheddable { -1 } else { 0 });

        let started = Instant::now();
        let result = scheduler.schedule(&request);
        decision_time += started.elapsed();

        match result {
            Ok(decision) => {
                let target = decision
                    .primary()
                    .map(|e| e.endpoint().name().to_string())
                    .unwrap_or_default();
                if shown < 4 {
                    println!(
                        "{id:>9} app={app:>2} model={model:<12} priority={:>2} -> {} ({})",
                        request.priority,
                        decision.destination(),
                        target
                    );
                    shown += 1;
                }
                *per_endpoint.entry(target.clone()).or_default() += 1;
                *app_homes[app].entry(target.clone()).or_default() += 1;
                if lora {
                    lora_on_adapter_hosts.1 += 1;
                    if target == "vllm-0-rank-0" || target == "vllm-1-rank-0" {
                        lora_on_adapter_hosts.0 += 1;
                    }
                }
                if let Some(i) = target
                    .strip_prefix("vllm-")
                    .and_then(|s| s.split('-').next())
                    .and_then(|s| s.parse::<usize>().ok())
                {
                    servers[i].queue += 1.0;
                    servers[i].kv += 0.002;
                }
                in_flight.push_back(decision);
                // A request's response ends about 80 ms of simulated time later.
                if in_flight.len() > 40
                    && let Some(done) = in_flight.pop_front()
                {
                    scheduler.complete(&done);
                }
            }
            Err(e) => *errors.entry(e.http_status()).or_default() += 1,
        }

        // Simulated time passes; servers drain; metrics are re-published every 50 ms.
        clock.advance(GAP);
        for s in servers.iter_mut() {
            s.queue = (s.queue - 0.06).max(0.0);
            s.kv = (s.kv - 0.0001).max(0.05);
        }
        let now = clock.now_ts();
        if now.saturating_since(last_publish) >= Duration::from_millis(50) {
            publish(&servers, now);
            last_publish = now;
        }
    }

    println!("requests per endpoint:");
    for (name, count) in &per_endpoint {
        println!("  {name:<16} {count:>5} {}", "#".repeat(count / 20));
    }
    let sticky: usize = app_homes
        .iter()
        .map(|homes| homes.values().max().copied().unwrap_or(0))
        .sum();
    let served: usize = per_endpoint.values().sum();
    println!(
        "prefix affinity: {:.1}% of requests went to their application's most used endpoint",
        100.0 * sticky as f64 / served.max(1) as f64
    );
    println!(
        "LoRA affinity: {}/{} sql-lora requests went to the 2 endpoints holding the adapter",
        lora_on_adapter_hosts.0, lora_on_adapter_hosts.1
    );
    println!(
        "stale endpoint vllm-15 (idle-looking, metrics frozen): {} requests",
        per_endpoint.get("vllm-15-rank-0").copied().unwrap_or(0)
    );
    println!("errors by HTTP status: {errors:?}");
    println!(
        "mean decision time: {:.2} µs over {REQUESTS} decisions (wall clock, including prompt hashing and index updates)",
        decision_time.as_secs_f64() * 1e6 / REQUESTS as f64
    );
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        pointsman::time::Clock::now(self)
    }
}

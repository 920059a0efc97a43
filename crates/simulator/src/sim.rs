//! The discrete-event loop: arrivals, server steps and metric scrapes, with the real pointsman
//! [`Scheduler`] making every routing decision.
//!
//! Every `scrape_interval` (50 ms by default) each server's metrics are published into the
//! scheduler's pool, stamped with the simulated time, exactly as the scraper would; between
//! scrapes the picker sees stale numbers, as in production. The scheduler's clock is the
//! simulated clock. Events at the same instant run in a fixed order, so a seed fixes the result.

use crate::policy::{Policy, registry};
use crate::report::{PolicyResult, RequestOutcome};
use crate::server::{Progress, Server, ServerConfig, ServerStats};
use crate::workload::{RequestSpec, prompt_tokens};
use pointsman::time::{ManualClock, Timestamp};
use pointsman::{Decision, Endpoint, EndpointPickerConfig, Prompt, Request, Scheduler};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

/// Fleet and measurement settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Number of servers.
    pub servers: usize,
    /// Each server's configuration.
    pub server: ServerConfig,
    /// Servers' speeds spread uniformly over `[1 − h, 1 + h]` (deterministic by seed).
    pub heterogeneity: f64,
    /// Seconds between metric scrapes.
    pub scrape_interval: f64,
    /// Seed for the scheduler and the fleet.
    pub seed: u64,
    /// Goodput SLO on time to first token, seconds.
    pub slo_ttft: f64,
    /// Goodput SLO on time per output token, seconds.
    pub slo_tpot: f64,
    /// Prompt tokens handed to the picker (it hashes at most its `maxPrefixBlocksToMatch`).
    pub max_prompt_tokens: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            servers: 8,
            server: ServerConfig::default(),
            heterogeneity: 0.0,
            scrape_interval: 0.05,
            seed: 1,
            slo_ttft: 2.0,
            slo_tpot: 0.1,
            max_prompt_tokens: 8192,
        }
    }
}

/// Errors from a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The policy's configuration is invalid.
    #[error("policy {policy:?}: {source}")]
    Config {
        /// The policy.
        policy: String,
        /// The loader's error.
        source: pointsman::ConfigError,
    },
    /// The settings are unusable.
    #[error("invalid simulation settings: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Scrapes sort first at equal times, then step ends, then arrivals.
    Scrape,
    StepEnd(usize),
    Arrival(usize),
}

fn nanos(t: f64) -> u64 {
    (t.max(0.0) * 1e9).round() as u64
}

/// Runs `requests` (sorted by arrival) under `policy`.
///
/// # Errors
/// [`SimError`] for an invalid policy or settings.
pub fn run(
    policy: &Policy,
    requests: &[RequestSpec],
    cfg: &SimConfig,
) -> Result<PolicyResult, SimError> {
    if cfg.servers == 0 || cfg.scrape_interval.is_nan() || cfg.scrape_interval <= 0.0 {
        return Err(SimError::Invalid(
            "servers and scrape_interval must be > 0".into(),
        ));
    }
    let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
    let builder = Scheduler::builder()
        .seed(cfg.seed)
        .clock(clock.clone())
        .registry(registry());
    let config = match &policy.config {
        None => EndpointPickerConfig::default_config(),
        Some(yaml) => EndpointPickerConfig::from_yaml(yaml).map_err(|source| SimError::Config {
            policy: policy.name.clone(),
            source,
        })?,
    };
    let scheduler = builder.build(&config).map_err(|source| SimError::Config {
        policy: policy.name.clone(),
        source,
    })?;

    let mut fleet_rng = crate::workload::Rng::new(cfg.seed ^ 0x0066_6c65_6574);
    let mut servers: Vec<Server> = (0..cfg.servers)
        .map(|_| {
            let mut c = cfg.server.clone();
            c.speed *= 1.0 + cfg.heterogeneity * (2.0 * fleet_rng.next_f64() - 1.0);
            Server::new(c)
        })
        .collect();
    let pool = scheduler.pool();
    let names: Vec<String> = (0..cfg.servers).map(|i| format!("sim-{i}")).collect();
    pool.update(|tx| {
        for (i, name) in names.iter().enumerate() {
            tx.upsert(Endpoint::new(
                name.as_str(),
                format!("10.1.{}.{}", i / 250, i % 250),
                8000,
            ));
        }
    });
    let slot_to_server: Vec<usize> = {
        let snap = pool.snapshot();
        let mut map = vec![usize::MAX; snap.slot_capacity()];
        for (i, name) in names.iter().enumerate() {
            if let Some(e) = snap.by_name(name) {
                map[e.id().index()] = i;
            }
        }
        map
    };

    let mut events: BinaryHeap<Reverse<(u64, Event)>> = BinaryHeap::new();
    for (i, r) in requests.iter().enumerate() {
        events.push(Reverse((nanos(r.arrival), Event::Arrival(i))));
    }
    events.push(Reverse((0, Event::Scrape)));
    let block = cfg.server.block_size;
    let mut outcomes = vec![RequestOutcome::default(); requests.len()];
    let mut decisions: Vec<Option<Decision>> = (0..requests.len()).map(|_| None).collect();
    let mut tokens = Vec::new();
    let mut progress = Vec::new();
    let mut remaining = requests.len();
    let mut id = String::new();
    let interval = nanos(cfg.scrape_interval).max(1);

    while let Some(Reverse((t, event))) = events.pop() {
        clock.set(Timestamp::from_nanos(t));
        let now = t as f64 / 1e9;
        match event {
            Event::Scrape => {
                let at = Timestamp::from_nanos(t);
                pool.update(|tx| {
                    for (name, s) in names.iter().zip(&servers) {
                        let _ = tx.set_metrics(name, s.metrics(requests, at));
                    }
                });
                if remaining > 0 {
                    events.push(Reverse((t + interval, Event::Scrape)));
                }
            }
            Event::Arrival(i) => {
                let r = &requests[i];
                prompt_tokens(r, block, cfg.max_prompt_tokens, &mut tokens);
                id.clear();
                id.push_str("req-");
                id.push_str(&i.to_string());
                let model = r.lora.as_deref().unwrap_or("base-model");
                let request = Request::new(&id, model)
                    .with_prompt(Prompt::TokenIds(&tokens))
                    .with_priority(r.priority);
                match scheduler.schedule(&request) {
                    Ok(d) => {
                        let server = d
                            .primary()
                            .and_then(|e| slot_to_server.get(e.id().index()).copied())
                            .unwrap_or(0);
                        outcomes[i].server = Some(server);
                        decisions[i] = Some(d);
                        servers[server].enqueue(i);
                        progress.clear();
                        if let Some(end) = servers[server].start_step(now, requests, &mut progress)
                        {
                            events.push(Reverse((nanos(end), Event::StepEnd(server))));
                        }
                        remaining -=
                            record(&progress, now, &mut outcomes, &mut decisions, &scheduler);
                    }
                    Err(e) => {
                        outcomes[i].rejected = Some(e.http_status());
                        remaining -= 1;
                    }
                }
            }
            Event::StepEnd(s) => {
                progress.clear();
                servers[s].finish_step(&mut progress);
                if let Some(end) = servers[s].start_step(now, requests, &mut progress) {
                    events.push(Reverse((nanos(end), Event::StepEnd(s))));
                }
                remaining -= record(&progress, now, &mut outcomes, &mut decisions, &scheduler);
            }
        }
    }
    let stats: Vec<ServerStats> = servers.iter().map(Server::stats).collect();
    Ok(PolicyResult::compute(
        &policy.name,
        requests,
        &outcomes,
        &stats,
        cfg,
    ))
}

/// Applies a step's progress; returns how many requests ended.
fn record(
    progress: &[Progress],
    now: f64,
    outcomes: &mut [RequestOutcome],
    decisions: &mut [Option<Decision>],
    scheduler: &Scheduler,
) -> usize {
    let mut ended = 0;
    for p in progress {
        match *p {
            Progress::FirstToken { index } => {
                outcomes[index].first_token = Some(now);
                if let Some(d) = &decisions[index] {
                    scheduler.response_started(d);
                }
            }
            Progress::Finished { index } => {
                outcomes[index].finished = Some(now);
                if let Some(d) = decisions[index].take() {
                    scheduler.complete(&d);
                }
                ended += 1;
            }
            Progress::Dropped { index } => {
                outcomes[index].rejected = Some(413);
                if let Some(d) = decisions[index].take() {
                    scheduler.complete(&d);
                }
                ended += 1;
            }
        }
    }
    ended
}

/// The simulated duration of a scrape interval.
pub fn scrape_duration(cfg: &SimConfig) -> Duration {
    Duration::from_secs_f64(cfg.scrape_interval)
}

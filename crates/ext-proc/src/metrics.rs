//! The picker's own Prometheus metrics, under the reference's names (`epp-reference.md` §8).
//!
//! | name | type | labels |
//! | --- | --- | --- |
//! | `inference_objective_request_total` | counter | `model_name`, `target_model_name`, `priority` |
//! | `inference_objective_request_error_total` | counter | `model_name`, `target_model_name`, `error_code` |
//! | `inference_objective_request_duration_seconds` | histogram | `model_name`, `target_model_name` |
//! | `inference_objective_request_sizes` / `response_sizes` | histogram (bytes) | same |
//! | `inference_objective_input_tokens` / `output_tokens` / `prompt_cached_tokens` | histogram | same |
//! | `inference_objective_normalized_time_per_output_token_seconds` | histogram | same |
//! | `inference_objective_running_requests` | gauge | `model_name` |
//! | `inference_pool_average_kv_cache_utilization`, `_average_queue_size`, `_average_running_requests`, `_ready_pods` | gauge | `name` |
//! | `inference_pool_per_pod_queue_size` | gauge | `name`, `model_server_pod` |
//! | `inference_extension_info` | gauge | `commit`, `build_ref` |
//! | `inference_extension_scheduler_e2e_duration_seconds` | histogram | none |
//! | `inference_extension_scheduler_attempts_total` | counter | `status`, `target_model_name` |
//! | `pointsman_scraper_polls_total`, `pointsman_scraper_poll_errors_total` | counter | `endpoint` |
//!
//! Pool gauges are computed from the pool snapshot when `/metrics` is read, over endpoints
//! whose metrics are fresher than the staleness threshold (the reference refreshes them every
//! 5 s).

use parking_lot::Mutex;
use pointsman::Pool;
use pointsman::time::Clock;
use pointsman_scraper::stats::StatsHandle;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// `{model_name, target_model_name}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// The model the client asked for.
    pub model_name: String,
    /// The model sent upstream.
    pub target_model_name: String,
}

/// `{model_name, target_model_name, priority}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PriorityLabels {
    /// The model the client asked for.
    pub model_name: String,
    /// The model sent upstream.
    pub target_model_name: String,
    /// The objective's priority.
    pub priority: String,
}

/// `{model_name, target_model_name, error_code}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The model the client asked for.
    pub model_name: String,
    /// The model sent upstream.
    pub target_model_name: String,
    /// The reference's error code, e.g. `ResourceExhausted`.
    pub error_code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunningLabels {
    model_name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodLabels {
    name: String,
    model_server_pod: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    commit: String,
    build_ref: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    status: String,
    target_model_name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn size_hist() -> Histogram {
    Histogram::new(exponential_buckets(64.0, 4.0, 13))
}
fn token_hist() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 12))
}
fn duration_hist() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}
fn tpot_hist() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// Every metric, registered once; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct EppMetrics {
    registry: Registry,
    pub(crate) request_total: Family<PriorityLabels, Counter>,
    pub(crate) request_error_total: Family<ErrorLabels, Counter>,
    pub(crate) request_duration: HistFamily<ModelLabels>,
    pub(crate) request_sizes: HistFamily<ModelLabels>,
    pub(crate) response_sizes: HistFamily<ModelLabels>,
    pub(crate) input_tokens: HistFamily<ModelLabels>,
    pub(crate) output_tokens: HistFamily<ModelLabels>,
    pub(crate) cached_tokens: HistFamily<ModelLabels>,
    pub(crate) tpot: HistFamily<ModelLabels>,
    running: Family<RunningLabels, Gauge>,
    pub(crate) scheduler_e2e: Histogram,
    attempts: Family<AttemptLabels, Counter>,
    pool_kv: Family<PoolLabels, Gauge<f64, AtomicU64>>,
    pool_queue: Family<PoolLabels, Gauge<f64, AtomicU64>>,
    pool_running: Family<PoolLabels, Gauge<f64, AtomicU64>>,
    pool_ready: Family<PoolLabels, Gauge>,
    pod_queue: Family<PodLabels, Gauge>,
    scrape_polls: Family<EndpointLabels, Counter>,
    scrape_errors: Family<EndpointLabels, Counter>,
    encode_lock: Mutex<()>,
}

impl Default for EppMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl EppMetrics {
    /// Registers every metric in a new registry.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let m = EppMetrics {
            registry: Registry::default(),
            request_total: Family::default(),
            request_error_total: Family::default(),
            request_duration: Family::new_with_constructor(duration_hist),
            request_sizes: Family::new_with_constructor(size_hist),
            response_sizes: Family::new_with_constructor(size_hist),
            input_tokens: Family::new_with_constructor(token_hist),
            output_tokens: Family::new_with_constructor(token_hist),
            cached_tokens: Family::new_with_constructor(token_hist),
            tpot: Family::new_with_constructor(tpot_hist),
            running: Family::default(),
            scheduler_e2e: Histogram::new(exponential_buckets(0.0001, 2.0, 11)),
            attempts: Family::default(),
            pool_kv: Family::default(),
            pool_queue: Family::default(),
            pool_running: Family::default(),
            pool_ready: Family::default(),
            pod_queue: Family::default(),
            scrape_polls: Family::default(),
            scrape_errors: Family::default(),
            encode_lock: Mutex::new(()),
        };
        {
            let o = root.sub_registry_with_prefix("inference_objective");
            o.register(
                "request",
                "Counter of inference objective requests",
                m.request_total.clone(),
            );
            o.register(
                "request_error",
                "Counter of inference objective requests errors",
                m.request_error_total.clone(),
            );
            o.register(
                "request_duration_seconds",
                "Inference objective response latency distribution in seconds",
                m.request_duration.clone(),
            );
            o.register(
                "request_sizes",
                "Inference objective requests size distribution in bytes",
                m.request_sizes.clone(),
            );
            o.register(
                "response_sizes",
                "Inference objective responses size distribution in bytes",
                m.response_sizes.clone(),
            );
            o.register(
                "input_tokens",
                "Inference objective input token count distribution",
                m.input_tokens.clone(),
            );
            o.register(
                "output_tokens",
                "Inference objective output token count distribution",
                m.output_tokens.clone(),
            );
            o.register(
                "prompt_cached_tokens",
                "Inference objective prompt cached token count distribution",
                m.cached_tokens.clone(),
            );
            o.register(
                "normalized_time_per_output_token_seconds",
                "Inference objective latency divided by output tokens",
                m.tpot.clone(),
            );
            o.register(
                "running_requests",
                "Inference objective running requests",
                m.running.clone(),
            );
        }
        {
            let p = root.sub_registry_with_prefix("inference_pool");
            p.register(
                "average_kv_cache_utilization",
                "Average KV cache utilization of fresh endpoints",
                m.pool_kv.clone(),
            );
            p.register(
                "average_queue_size",
                "Average waiting queue of fresh endpoints",
                m.pool_queue.clone(),
            );
            p.register(
                "average_running_requests",
                "Average running requests of fresh endpoints",
                m.pool_running.clone(),
            );
            p.register(
                "ready_pods",
                "Endpoints with fresh metrics",
                m.pool_ready.clone(),
            );
            p.register(
                "per_pod_queue_size",
                "Waiting queue per endpoint",
                m.pod_queue.clone(),
            );
        }
        {
            let e = root.sub_registry_with_prefix("inference_extension");
            let info: Family<InfoLabels, Gauge> = Family::default();
            info.get_or_create(&InfoLabels {
                commit: option_env!("POINTSMAN_COMMIT")
                    .unwrap_or("unknown")
                    .to_string(),
                build_ref: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
            e.register("info", "General information of the current build", info);
            e.register(
                "scheduler_e2e_duration_seconds",
                "End-to-end scheduling latency in seconds",
                m.scheduler_e2e.clone(),
            );
            e.register(
                "scheduler_attempts",
                "Scheduling attempts by outcome",
                m.attempts.clone(),
            );
        }
        {
            let s = root.sub_registry_with_prefix("pointsman_scraper");
            s.register(
                "polls",
                "Metrics polls attempted per endpoint",
                m.scrape_polls.clone(),
            );
            s.register(
                "poll_errors",
                "Metrics polls failed per endpoint",
                m.scrape_errors.clone(),
            );
        }
        EppMetrics {
            registry: root,
            ..m
        }
    }

    /// Counts a scheduling attempt.
    pub(crate) fn attempt(&self, ok: bool, target_model: &str) {
        self.attempts
            .get_or_create(&AttemptLabels {
                status: if ok { "success" } else { "failure" }.to_string(),
                target_model_name: target_model.to_string(),
            })
            .inc();
    }

    /// Adds `delta` to the running-requests gauge of `model`.
    pub(crate) fn running(&self, model: &str, delta: i64) {
        self.running
            .get_or_create(&RunningLabels {
                model_name: model.to_string(),
            })
            .inc_by(delta);
    }

    /// The text exposition, after refreshing the pool gauges from `pool` and the scraper
    /// counters from `scraper`.
    pub fn encode(
        &self,
        pool_name: &str,
        pool: &Pool,
        clock: &dyn Clock,
        staleness: Duration,
        scraper: Option<&StatsHandle>,
    ) -> String {
        let _guard = self.encode_lock.lock();
        let snapshot = pool.snapshot();
        let now = clock.now();
        let (mut n, mut kv, mut q, mut run) = (0u32, 0.0, 0.0, 0.0);
        self.pod_queue.clear();
        for state in snapshot.endpoints() {
            let m = state.metrics();
            self.pod_queue
                .get_or_create(&PodLabels {
                    name: pool_name.to_string(),
                    model_server_pod: state.endpoint().name().to_string(),
                })
                .set(i64::from(m.waiting_queue_size));
            if !m.is_stale(now, staleness) {
                n += 1;
                kv += m.kv_cache_usage;
                q += f64::from(m.waiting_queue_size);
                run += f64::from(m.running_requests_size);
            }
        }
        let labels = PoolLabels {
            name: pool_name.to_string(),
        };
        let avg = |x: f64| if n == 0 { 0.0 } else { x / f64::from(n) };
        self.pool_kv.get_or_create(&labels).set(avg(kv));
        self.pool_queue.get_or_create(&labels).set(avg(q));
        self.pool_running.get_or_create(&labels).set(avg(run));
        self.pool_ready.get_or_create(&labels).set(i64::from(n));
        if let Some(stats) = scraper {
            for e in stats.snapshot().endpoints {
                let l = EndpointLabels {
                    endpoint: e.name.to_string(),
                };
                let polls = self.scrape_polls.get_or_create(&l);
                polls.inc_by(e.attempts.saturating_sub(polls.get()));
                let errs = self.scrape_errors.get_or_create(&l);
                errs.inc_by(e.errors.total().saturating_sub(errs.get()));
            }
        }
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pointsman::time::{ManualClock, Timestamp};
    use pointsman::{Endpoint, Metrics};

    #[test]
    fn names_follow_the_reference() {
        let m = EppMetrics::new();
        let l = PriorityLabels {
            model_name: "a".into(),
            target_model_name: "b".into(),
            priority: "0".into(),
        };
        m.request_total.get_or_create(&l).inc();
        m.attempt(true, "b");
        let pool = Pool::new();
        let clock = ManualClock::new(Timestamp::from_nanos(1_000));
        pool.upsert(Endpoint::new("e0", "10.0.0.1", 8000));
        pool.update_metrics(
            "e0",
            Metrics {
                waiting_queue_size: 3,
                kv_cache_usage: 0.5,
                updated_at: Some(clock.now()),
                ..Metrics::default()
            },
        )
        .unwrap();
        let text = m.encode("p", &pool, &clock, Duration::from_secs(2), None);
        for want in [
            "inference_objective_request_total{model_name=\"a\",target_model_name=\"b\",priority=\"0\"} 1",
            "inference_pool_average_kv_cache_utilization{name=\"p\"} 0.5",
            "inference_pool_ready_pods{name=\"p\"} 1",
            "inference_pool_per_pod_queue_size{name=\"p\",model_server_pod=\"e0\"} 3",
            "inference_extension_scheduler_attempts_total{status=\"success\",target_model_name=\"b\"} 1",
            "inference_extension_info{",
            "# TYPE inference_extension_scheduler_e2e_duration_seconds histogram",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}

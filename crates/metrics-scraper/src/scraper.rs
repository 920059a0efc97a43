//! The polling loop: one task per endpoint, one publisher batching their results into the pool.
//!
//! ```text
//!  Discovery ──sets──▶ supervisor ──upsert/remove──▶ Pool
//!                          │ spawns / aborts                ▲
//!                          ▼                                │ one Pool::update per batch
//!               endpoint task × N ──(sample, time)──▶ publisher
//!               (GET /metrics every `interval`,
//!                keep-alive, parse, extract)
//! ```
//!
//! - **Polling.** Each endpoint's task GETs `http://<address>:<port><path>` every
//!   [`interval`](ScraperConfig::interval) (default 50 ms, like the reference's
//!   `--refresh-metrics-interval`) over its own HTTP/1.1 keep-alive connection, with a
//!   [`timeout`](ScraperConfig::timeout) (default 1 s) over connect, request and body, and a
//!   body cap ([`max_body_bytes`](ScraperConfig::max_body_bytes), default 16 MiB). Start times
//!   are spread over the interval by a hash of the endpoint name so that a thousand endpoints
//!   are not polled in one burst. A poll that overruns the interval delays the next one; polls
//!   of one endpoint never overlap.
//! - **Engine.** The endpoint's label [`EngineRegistry::engine_label_key`] (default
//!   `inference.networking.k8s.io/engine-type`) chooses the mapping; without it the registry's
//!   default engine applies.
//! - **Publication.** A successful extraction is sent, with the [`Clock`] time at which it
//!   finished, to one publisher task, which applies every pending result with one
//!   [`Pool::update`] (so one snapshot per batch, not per endpoint) and then waits
//!   [`publish_interval`](ScraperConfig::publish_interval) (default 5 ms) before the next batch.
//!   Present values replace the previous ones and missing ones are kept
//!   ([`apply_sample`]); [`Metrics::updated_at`](pointsman::Metrics::updated_at) is set to the
//!   extraction time. Schedulers reading the pool never wait for any of this.
//! - **Staleness.** A failed poll (any [`ScrapeError`]) and a poll that finds none of the
//!   engine's metrics publish nothing, so `updated_at` keeps the time of the last successful
//!   extraction and the endpoint's metrics age.
//! - **Membership.** Endpoints that discovery reports are upserted into the pool; those it
//!   stops reporting stop being polled and are removed. Endpoints the scraper never saw are
//!   left alone.
//! - **Faults.** No input or server behaviour panics or ends a task; every error is counted
//!   per endpoint by kind ([`stats`](crate::stats)) and logged with `tracing` when the kind
//!   changes. Memory is bounded: one body buffer per endpoint (at most the cap, shrunk back
//!   after a large body) and a bounded queue to the publisher.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pointsman::time::{Clock, SystemClock, Timestamp};
use pointsman::{Endpoint, Pool};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::apply::apply_sample;
use crate::discovery::{Discovery, EndpointSet, EndpointSink};
use crate::engine::{EngineMapping, EngineRegistry, EngineSample, Validation};
use crate::error::{ConfigError, ScrapeError, ScrapeErrorKind};
use crate::fetch::Fetcher;
use crate::stats::{EndpointCounters, StatsHandle, StatsRegistry};

/// Bodies above this size are not kept in an endpoint's buffer between polls.
const KEEP_BUFFER_BYTES: usize = 1 << 20;
/// Results queued for the publisher before polling tasks wait.
const QUEUE_CAPACITY: usize = 4096;

/// The scraper's settings.
///
/// | field | default | reference |
/// | --- | --- | --- |
/// | `interval` | 50 ms | `--refresh-metrics-interval` |
/// | `timeout` | 1 s | the per-poll context timeout |
/// | `max_body_bytes` | 16 MiB | none (Go reads any size) |
/// | `path` | `/metrics` | `--model-server-metrics-path` |
/// | `publish_interval` | 5 ms | none (one store per endpoint per poll) |
/// | `discovery_retry` | 1 s | controller-runtime's requeue |
/// | `validation` | [`Validation::Watched`] | every line checked ([`Validation::Full`]) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScraperConfig {
    /// Time between the starts of two polls of one endpoint; > 0.
    pub interval: Duration,
    /// Limit on one poll: connect, request and the whole body; > 0.
    pub timeout: Duration,
    /// Largest body accepted, in bytes; ≥ 1. Larger bodies fail with
    /// [`ScrapeErrorKind::BodyTooLarge`].
    pub max_body_bytes: usize,
    /// The metrics path, starting with `/`.
    pub path: String,
    /// Least time between two snapshots published with metrics; zero publishes each batch as
    /// soon as it is received. Adds at most this much to the age of published metrics.
    pub publish_interval: Duration,
    /// Wait before calling a failed [`Discovery::run`] again; > 0.
    pub discovery_retry: Duration,
    /// Which lines of a body are parsed and checked: only those of the metrics the engine
    /// reads (default), or all of them, failing the poll on any malformed line as the
    /// reference does.
    pub validation: Validation,
}

impl ScraperConfig {
    /// Default [`interval`](Self::interval): 50 ms.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(50);
    /// Default [`timeout`](Self::timeout): 1 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
    /// Default [`max_body_bytes`](Self::max_body_bytes): 16 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;
    /// Default [`path`](Self::path).
    pub const DEFAULT_PATH: &'static str = "/metrics";
    /// Default [`publish_interval`](Self::publish_interval): 5 ms.
    pub const DEFAULT_PUBLISH_INTERVAL: Duration = Duration::from_millis(5);
    /// Default [`discovery_retry`](Self::discovery_retry): 1 s.
    pub const DEFAULT_DISCOVERY_RETRY: Duration = Duration::from_secs(1);

    /// Checks every field.
    ///
    /// ```
    /// use pointsman_scraper::scraper::ScraperConfig;
    /// use std::time::Duration;
    ///
    /// let config = ScraperConfig { interval: Duration::ZERO, ..ScraperConfig::default() };
    /// assert_eq!(config.validate().unwrap_err().to_string(),
    ///            "interval: expected a duration > 0, got 0ns");
    /// ```
    ///
    /// # Errors
    ///
    /// The first invalid field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |field, d: Duration| {
            if d.is_zero() {
                Err(ConfigError {
                    field,
                    expected: "a duration > 0",
                    got: format!("{d:?}"),
                })
            } else {
                Ok(())
            }
        };
        positive("interval", self.interval)?;
        positive("timeout", self.timeout)?;
        positive("discoveryRetry", self.discovery_retry)?;
        if self.max_body_bytes == 0 {
            return Err(ConfigError {
                field: "maxBodyBytes",
                expected: "a size ≥ 1",
                got: "0".into(),
            });
        }
        // An origin-form request target: visible ASCII only (no spaces, no CR/LF).
        if !self.path.starts_with('/') || !self.path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError {
                field: "path",
                expected: "an absolute URI path, e.g. /metrics",
                got: format!("{:?}", self.path),
            });
        }
        Ok(())
    }
}

impl Default for ScraperConfig {
    fn default() -> Self {
        Self {
            interval: Self::DEFAULT_INTERVAL,
            timeout: Self::DEFAULT_TIMEOUT,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            path: Self::DEFAULT_PATH.into(),
            publish_interval: Self::DEFAULT_PUBLISH_INTERVAL,
            discovery_retry: Self::DEFAULT_DISCOVERY_RETRY,
            validation: Validation::default(),
        }
    }
}

/// A configured scraper, not yet running; [`spawn`](Scraper::spawn) starts it.
#[derive(Debug)]
pub struct Scraper {
    pool: Arc<Pool>,
    config: ScraperConfig,
    registry: Arc<EngineRegistry>,
    clock: Arc<dyn Clock>,
}

impl Scraper {
    /// A scraper feeding `pool`, choosing engines from `registry`, timing with
    /// [`SystemClock`].
    ///
    /// # Errors
    ///
    /// The first invalid field of `config` (see [`ScraperConfig::validate`]).
    pub fn new(
        pool: Arc<Pool>,
        config: ScraperConfig,
        registry: EngineRegistry,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            pool,
            config,
            registry: Arc::new(registry),
            clock: Arc::new(SystemClock),
        })
    }

    /// Stamps metrics with `clock` instead; use the scheduler's clock so that staleness is
    /// measured on one timeline.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Starts discovery, the supervisor and the publisher on the current tokio runtime.
    ///
    /// The returned handle stops everything when dropped or [shut down](ScraperHandle::shutdown).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`tokio::spawn`] does.
    pub fn spawn<D: Discovery>(self, discovery: D) -> ScraperHandle {
        let stats = Arc::new(StatsRegistry::default());
        let (sink, sets) = EndpointSink::with_stats(stats.clone());
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let shared = Arc::new(Shared {
            pool: self.pool,
            registry: self.registry,
            clock: self.clock,
            path: self.config.path.as_str().into(),
            config: self.config,
            stats: stats.clone(),
        });
        let tasks = vec![
            tokio::spawn(run_discovery(
                discovery,
                sink,
                shared.config.discovery_retry,
            ))
            .abort_handle(),
            tokio::spawn(supervise(shared.clone(), sets, tx)).abort_handle(),
            tokio::spawn(publish(shared, rx)).abort_handle(),
        ];
        ScraperHandle {
            stats: StatsHandle(stats),
            tasks,
        }
    }
}

/// A running scraper. Dropping it stops discovery and every poll; the pool keeps its last
/// contents.
#[derive(Debug)]
pub struct ScraperHandle {
    stats: StatsHandle,
    tasks: Vec<AbortHandle>,
}

impl ScraperHandle {
    /// A reader of the scraper's statistics, usable after the handle is gone.
    pub fn stats(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// Stops the scraper (the same as dropping the handle).
    pub fn shutdown(self) {}
}

impl Drop for ScraperHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[derive(Debug)]
struct Shared {
    pool: Arc<Pool>,
    registry: Arc<EngineRegistry>,
    clock: Arc<dyn Clock>,
    config: ScraperConfig,
    path: Arc<str>,
    stats: Arc<StatsRegistry>,
}

/// One successful extraction on its way to the pool.
#[derive(Debug)]
struct Update {
    endpoint: Arc<Endpoint>,
    sample: EngineSample,
    at: Timestamp,
}

async fn run_discovery<D: Discovery>(mut discovery: D, sink: EndpointSink, retry: Duration) {
    loop {
        match discovery.run(&sink).await {
            Ok(()) => break,
            Err(error) => {
                sink.report_error(&error);
                tokio::time::sleep(retry).await;
            }
        }
    }
    // Keep the sink (and so the last set) alive; the handle aborts this task.
    std::future::pending::<()>().await;
}

/// The polling tasks; aborts them all when dropped.
#[derive(Debug, Default)]
struct Tasks(HashMap<Arc<str>, Running>);

#[derive(Debug)]
struct Running {
    endpoint: Arc<Endpoint>,
    counters: Arc<EndpointCounters>,
    task: AbortHandle,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for running in self.0.values() {
            running.task.abort();
        }
    }
}

async fn supervise(
    shared: Arc<Shared>,
    mut sets: watch::Receiver<Option<EndpointSet>>,
    tx: mpsc::Sender<Update>,
) {
    let mut tasks = Tasks::default();
    while sets.changed().await.is_ok() {
        let Some(set) = sets.borrow_and_update().clone() else {
            continue;
        };
        reconcile(&shared, &mut tasks, &set, &tx);
    }
}

fn reconcile(shared: &Arc<Shared>, tasks: &mut Tasks, set: &[Endpoint], tx: &mpsc::Sender<Update>) {
    let wanted: HashMap<&str, &Endpoint> = set.iter().map(|e| (e.name(), e)).collect();
    let gone: Vec<Arc<str>> = tasks
        .0
        .keys()
        .filter(|name| !wanted.contains_key(&***name))
        .cloned()
        .collect();
    let changed: Vec<&Endpoint> = set
        .iter()
        .filter(|e| {
            tasks
                .0
                .get(e.name())
                .is_none_or(|running| *running.endpoint != **e)
        })
        .collect();
    if gone.is_empty() && changed.is_empty() {
        return;
    }
    // Membership first, so that results of the new tasks find their endpoint.
    shared.pool.update(|pool| {
        for name in &gone {
            pool.remove(name);
        }
        for endpoint in &changed {
            pool.upsert((*endpoint).clone());
        }
    });
    for name in gone {
        if let Some(running) = tasks.0.remove(&name) {
            running.task.abort();
        }
        shared.stats.unregister(&name);
        tracing::debug!(endpoint = %name, "stopped polling");
    }
    for endpoint in changed {
        let endpoint = Arc::new(endpoint.clone());
        let name = endpoint.name_arc().clone();
        let counters = match tasks.0.remove(&name) {
            Some(old) => {
                old.task.abort();
                old.counters.clone()
            }
            None => shared.stats.register(name.clone()),
        };
        let task = tokio::spawn(poll_endpoint(
            shared.clone(),
            endpoint.clone(),
            counters.clone(),
            tx.clone(),
        ))
        .abort_handle();
        tracing::debug!(endpoint = %name, target = endpoint.host_port(), "polling");
        tasks.0.insert(
            name,
            Running {
                endpoint,
                counters,
                task,
            },
        );
    }
}

/// The first poll's delay: a fraction of the interval fixed by the endpoint's name.
fn start_offset(name: &str, interval: Duration) -> Duration {
    let mut hasher = std::hash::DefaultHasher::new();
    name.hash(&mut hasher);
    let nanos = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_nanos(hasher.finish() % nanos)
}

async fn poll_endpoint(
    shared: Arc<Shared>,
    endpoint: Arc<Endpoint>,
    counters: Arc<EndpointCounters>,
    tx: mpsc::Sender<Update>,
) {
    let name = endpoint.name_arc().clone();
    let engine_label = endpoint.label(shared.registry.engine_label_key());
    let mapping: Result<EngineMapping, Arc<str>> = shared
        .registry
        .for_endpoint(engine_label)
        .cloned()
        .ok_or_else(|| engine_label.unwrap_or_default().into());
    let config = &shared.config;
    let mut fetcher = Fetcher::new(
        endpoint.host_port().into(),
        endpoint.address().into(),
        endpoint.port(),
        &shared.path,
        config.max_body_bytes,
    );
    let mut buf = Vec::new();
    let start = Instant::now() + start_offset(&name, config.interval);
    let mut ticker = tokio::time::interval_at(start, config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let started = Instant::now();
        let outcome = scrape_once(&shared, &mapping, &mut fetcher, &mut buf).await;
        let latency = started.elapsed();
        if buf.capacity() > KEEP_BUFFER_BYTES {
            buf = Vec::new();
        }
        match outcome {
            Ok((sample, at)) => {
                if counters.consecutive_failures() > 0 {
                    tracing::info!(endpoint = %name, "scraping recovered");
                }
                counters.record_success(latency, at);
                let update = Update {
                    endpoint: endpoint.clone(),
                    sample,
                    at,
                };
                if tx.send(update).await.is_err() {
                    return; // The publisher is gone: the scraper is shutting down.
                }
            }
            Err(detail) => {
                let error = ScrapeError::new(name.clone(), detail);
                if counters.record_error(latency, &error) {
                    tracing::warn!(%error);
                } else {
                    tracing::trace!(%error);
                }
            }
        }
    }
}

async fn scrape_once(
    shared: &Shared,
    mapping: &Result<EngineMapping, Arc<str>>,
    fetcher: &mut Fetcher,
    buf: &mut Vec<u8>,
) -> Result<(EngineSample, Timestamp), ScrapeErrorKind> {
    let mapping = mapping
        .as_ref()
        .map_err(|engine| ScrapeErrorKind::UnknownEngine {
            engine: engine.clone(),
        })?;
    let body = fetcher.fetch(buf, shared.config.timeout).await?;
    let text = std::str::from_utf8(buf.get(body).unwrap_or_default()).map_err(|e| {
        ScrapeErrorKind::NotUtf8 {
            offset: e.valid_up_to(),
        }
    })?;
    let extraction = mapping
        .extract_with(text, shared.config.validation)
        .map_err(|e| ScrapeErrorKind::Parse {
            source: Box::new(e),
        })?;
    if !extraction.found_any() {
        return Err(ScrapeErrorKind::NoMetrics {
            engine: mapping.name().into(),
            missing: extraction.missing,
        });
    }
    Ok((extraction.sample, shared.clock.now()))
}

async fn publish(shared: Arc<Shared>, mut rx: mpsc::Receiver<Update>) {
    let mut batch = Vec::with_capacity(256);
    loop {
        if rx.recv_many(&mut batch, QUEUE_CAPACITY).await == 0 {
            return;
        }
        let applied = shared.pool.update(|pool| {
            let mut applied = 0u64;
            for update in batch.drain(..) {
                let name = update.endpoint.name();
                let Some(state) = pool.get(name) else {
                    continue; // Removed since the poll.
                };
                let current = state.endpoint();
                if current.address() != update.endpoint.address()
                    || current.port() != update.endpoint.port()
                {
                    continue; // A result from the endpoint's previous address.
                }
                let mut metrics = state.metrics().clone();
                if metrics.updated_at.is_some_and(|t| t > update.at) {
                    continue;
                }
                apply_sample(&update.sample, &mut metrics);
                metrics.updated_at = Some(update.at);
                if pool.set_metrics(name, metrics).is_ok() {
                    applied += 1;
                }
            }
            applied
        });
        if applied > 0 {
            shared.stats.publishes.fetch_add(1, Ordering::Relaxed);
            shared
                .stats
                .updates_applied
                .fetch_add(applied, Ordering::Relaxed);
        }
        if !shared.config.publish_interval.is_zero() {
            tokio::time::sleep(shared.config.publish_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_stay_within_the_interval_and_spread() {
        let interval = Duration::from_millis(50);
        let offsets: Vec<Duration> = (0..100)
            .map(|i| start_offset(&format!("ep-{i}"), interval))
            .collect();
        assert!(offsets.iter().all(|o| *o < interval));
        let early = offsets.iter().filter(|o| **o < interval / 2).count();
        assert!(
            (20..=80).contains(&early),
            "{early} of 100 in the first half"
        );
    }

    #[test]
    fn config_defaults_validate_and_bad_paths_do_not() {
        assert!(ScraperConfig::default().validate().is_ok());
        let bad = ScraperConfig {
            path: "metrics".into(),
            ..ScraperConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "path");
        let zero = ScraperConfig {
            max_body_bytes: 0,
            ..ScraperConfig::default()
        };
        assert_eq!(zero.validate().unwrap_err().field, "maxBodyBytes");
    }
}

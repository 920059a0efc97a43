//! The scraper's own metrics: per-endpoint scrape latency and error counts by kind.
//!
//! Polling tasks record into lock-free counters; [`StatsHandle::snapshot`] copies them into
//! plain structs ([`ScraperStats`], [`EndpointStats`]) that a gateway can serve with any
//! metrics library, e.g. as
//!
//! | series | from |
//! | --- | --- |
//! | `scrape_duration_seconds{endpoint}` histogram | [`EndpointStats::latency`] |
//! | `scrape_total{endpoint}` counter | [`EndpointStats::attempts`] |
//! | `scrape_errors_total{endpoint, kind}` counter | [`EndpointStats::errors`], [`ErrorKind::as_str`] |
//! | `scrape_last_success_age_seconds{endpoint}` gauge | [`EndpointStats::last_success`] |
//! | `scraper_publishes_total` counter | [`ScraperStats::publishes`] |
//!
//! An endpoint's counters start at zero when it joins and are dropped when it leaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use pointsman::time::Timestamp;

use crate::error::{ErrorKind, ScrapeError};

/// Upper bounds (seconds) of the latency histogram buckets; a last, implicit bucket is `+Inf`.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Scrape errors counted by [`ErrorKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorCounts([u64; ErrorKind::ALL.len()]);

impl ErrorCounts {
    /// The count of `kind`.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0.get(kind.index()).copied().unwrap_or(0)
    }

    /// Every kind with its count (zeros included), in [`ErrorKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL.into_iter().zip(self.0.iter().copied())
    }

    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// A latency histogram in Prometheus's shape: cumulative bucket counts, sum and count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LatencyHistogram {
    /// `(upper bound in seconds, observations ≤ bound)` for every bound of
    /// [`LATENCY_BUCKETS`]; the `+Inf` bucket is [`count`](Self::count).
    pub buckets: Vec<(f64, u64)>,
    /// Sum of all observations, in seconds.
    pub sum_seconds: f64,
    /// Number of observations.
    pub count: u64,
}

/// One endpoint's scrape statistics at one moment.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    /// The endpoint's name.
    pub name: Arc<str>,
    /// Polls attempted (successes plus errors).
    pub attempts: u64,
    /// Polls that extracted at least one metric and were published.
    pub successes: u64,
    /// Failed polls by kind.
    pub errors: ErrorCounts,
    /// Failed polls since the last success.
    pub consecutive_failures: u64,
    /// Duration of every poll, successful or not (connect, request, body, parse).
    pub latency: LatencyHistogram,
    /// The most recent error, if any poll failed.
    pub last_error: Option<ScrapeError>,
    /// When metrics were last extracted successfully (the scraper's clock).
    pub last_success: Option<Timestamp>,
}

/// The whole scraper's statistics at one moment.
#[derive(Debug, Clone, Default)]
pub struct ScraperStats {
    /// One entry per polled endpoint, sorted by name.
    pub endpoints: Vec<EndpointStats>,
    /// Snapshots published to the pool with metrics (each may carry many endpoints' updates).
    pub publishes: u64,
    /// Endpoint metrics updates applied by those publishes.
    pub updates_applied: u64,
    /// Discovery errors so far.
    pub discovery_errors: u64,
    /// The most recent discovery error, displayed.
    pub last_discovery_error: Option<String>,
}

impl ScraperStats {
    /// The entry of `name`.
    pub fn endpoint(&self, name: &str) -> Option<&EndpointStats> {
        self.endpoints.iter().find(|e| &*e.name == name)
    }

    /// Errors of `kind` over all endpoints.
    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.endpoints.iter().map(|e| e.errors.get(kind)).sum()
    }
}

/// The live counters of one endpoint, written by its polling task.
#[derive(Debug)]
pub(crate) struct EndpointCounters {
    name: Arc<str>,
    successes: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    consecutive_failures: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_nanos: AtomicU64,
    last_success: AtomicU64,
    last_error: Mutex<Option<ScrapeError>>,
}

impl EndpointCounters {
    pub(crate) fn new(name: Arc<str>) -> Self {
        Self {
            name,
            successes: AtomicU64::new(0),
            errors: Default::default(),
            consecutive_failures: AtomicU64::new(0),
            buckets: Default::default(),
            latency_count: AtomicU64::new(0),
            latency_sum_nanos: AtomicU64::new(0),
            last_success: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    fn observe(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            if let Some(b) = self.buckets.get(i) {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn record_success(&self, latency: Duration, at: Timestamp) {
        self.observe(latency);
        self.successes.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        // 0 means "never"; a success at the epoch itself is recorded as 1 ns.
        self.last_success
            .store(at.as_nanos().max(1), Ordering::Relaxed);
    }

    /// Records `error`; returns whether it is the first failure after a success (or ever),
    /// so that callers log transitions only.
    pub(crate) fn record_error(&self, latency: Duration, error: &ScrapeError) -> bool {
        self.observe(latency);
        if let Some(c) = self.errors.get(error.kind().index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let previous = self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_error.lock();
        let changed = last.as_ref().map(ScrapeError::kind) != Some(error.kind());
        *last = Some(error.clone());
        previous == 0 || changed
    }

    pub(crate) fn consecutive_failures(&self) -> u64 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> EndpointStats {
        let mut cumulative = 0;
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        let mut errors = ErrorCounts::default();
        for (slot, n) in errors.0.iter_mut().zip(&self.errors) {
            *slot = n.load(Ordering::Relaxed);
        }
        let successes = self.successes.load(Ordering::Relaxed);
        let last_success = match self.last_success.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Timestamp::from_nanos(n)),
        };
        EndpointStats {
            name: self.name.clone(),
            attempts: successes + errors.total(),
            successes,
            errors,
            consecutive_failures: self.consecutive_failures.load(Ordering::Relaxed),
            latency: LatencyHistogram {
                buckets,
                sum_seconds: Duration::from_nanos(self.latency_sum_nanos.load(Ordering::Relaxed))
                    .as_secs_f64(),
                count: self.latency_count.load(Ordering::Relaxed),
            },
            last_error: self.last_error.lock().clone(),
            last_success,
        }
    }
}

/// Counters shared by the scraper's tasks.
#[derive(Debug, Default)]
pub(crate) struct StatsRegistry {
    endpoints: Mutex<HashMap<Arc<str>, Arc<EndpointCounters>>>,
    pub(crate) publishes: AtomicU64,
    pub(crate) updates_applied: AtomicU64,
    discovery_errors: AtomicU64,
    last_discovery_error: Mutex<Option<String>>,
}

impl StatsRegistry {
    /// Fresh counters for `name`, replacing any previous ones.
    pub(crate) fn register(&self, name: Arc<str>) -> Arc<EndpointCounters> {
        let counters = Arc::new(EndpointCounters::new(name.clone()));
        self.endpoints.lock().insert(name, counters.clone());
        counters
    }

    pub(crate) fn unregister(&self, name: &str) {
        self.endpoints.lock().remove(name);
    }

    pub(crate) fn record_discovery_error(&self, message: String) {
        self.discovery_errors.fetch_add(1, Ordering::Relaxed);
        *self.last_discovery_error.lock() = Some(message);
    }

    pub(crate) fn discovery_error_count(&self) -> u64 {
        self.discovery_errors.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> ScraperStats {
        let counters: Vec<Arc<EndpointCounters>> =
            self.endpoints.lock().values().cloned().collect();
        let mut endpoints: Vec<EndpointStats> = counters.iter().map(|c| c.snapshot()).collect();
        endpoints.sort_by(|a, b| a.name.cmp(&b.name));
        ScraperStats {
            endpoints,
            publishes: self.publishes.load(Ordering::Relaxed),
            updates_applied: self.updates_applied.load(Ordering::Relaxed),
            discovery_errors: self.discovery_errors.load(Ordering::Relaxed),
            last_discovery_error: self.last_discovery_error.lock().clone(),
        }
    }
}

/// A cheap, cloneable reader of a running scraper's statistics.
#[derive(Debug, Clone)]
pub struct StatsHandle(pub(crate) Arc<StatsRegistry>);

impl StatsHandle {
    /// Copies every counter. `O(endpoints)`; takes a short lock on the endpoint table and on
    /// each endpoint's last error, never blocking a poll for longer than that copy.
    pub fn snapshot(&self) -> ScraperStats {
        self.0.snapshot()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::error::ScrapeErrorKind;

    #[test]
    fn histogram_is_cumulative_and_errors_are_counted_by_kind() {
        let c = EndpointCounters::new("a".into());
        // 0.3 ms → bucket 0.0005; 20 ms → 0.025; 3 s → +Inf only.
        c.record_success(Duration::from_micros(300), Timestamp::from_nanos(5));
        c.record_success(Duration::from_millis(20), Timestamp::from_nanos(7));
        let timeout = ScrapeError::new(
            "a",
            ScrapeErrorKind::Timeout {
                after: Duration::from_secs(1),
            },
        );
        assert!(c.record_error(Duration::from_secs(3), &timeout));
        assert!(
            !c.record_error(Duration::from_secs(3), &timeout),
            "same kind again"
        );
        let s = c.snapshot();
        assert_eq!(s.attempts, 4);
        assert_eq!(s.successes, 2);
        assert_eq!(s.errors.get(ErrorKind::Timeout), 2);
        assert_eq!(s.errors.total(), 2);
        assert_eq!(s.consecutive_failures, 2);
        assert_eq!(s.latency.count, 4);
        assert_eq!(s.latency.buckets[0], (0.0005, 1));
        assert_eq!(s.latency.buckets[5], (0.025, 2));
        assert_eq!(s.latency.buckets[10], (1.0, 2));
        assert!((s.latency.sum_seconds - 6.0203).abs() < 1e-9);
        assert_eq!(s.last_success, Some(Timestamp::from_nanos(7)));
        assert_eq!(s.last_error.unwrap().kind(), ErrorKind::Timeout);
    }
}

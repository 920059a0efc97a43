//! Per-endpoint load metrics, as scraped from a model server's `/metrics`.

use crate::time::Timestamp;
use std::sync::Arc;
use std::time::Duration;

/// A small set of LoRA adapter names.
///
/// Lookups are linear: servers load a handful of adapters at a time (vLLM's `max_lora`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdapterSet(Vec<Arc<str>>);

impl AdapterSet {
    /// An empty set.
    pub const fn new() -> Self {
        AdapterSet(Vec::new())
    }

    /// Whether `name` is in the set.
    #[inline]
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|a| &**a == name)
    }

    /// The number of adapters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `name` unless present.
    pub fn insert(&mut self, name: impl Into<Arc<str>>) {
        let name = name.into();
        if !self.contains(&name) {
            self.0.push(name);
        }
    }

    /// The adapters, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|a| &**a)
    }
}

impl<S: Into<Arc<str>>> FromIterator<S> for AdapterSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut set = AdapterSet::new();
        for s in iter {
            set.insert(s);
        }
        set
    }
}

/// One endpoint's load, as of [`updated_at`](Metrics::updated_at).
///
/// Field names follow the reference picker's metrics struct; see
/// `epp-reference.md` §1.2 and §5.1 for the engine metric each one is read from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Requests waiting in the server's queue (`vllm:num_requests_waiting`).
    pub waiting_queue_size: u32,
    /// Requests being processed (`vllm:num_requests_running`).
    pub running_requests_size: u32,
    /// KV-cache usage as a fraction in `[0, 1]` (`vllm:kv_cache_usage_perc`).
    pub kv_cache_usage: f64,
    /// LoRA adapters loaded and serving (`running_lora_adapters`).
    pub active_adapters: AdapterSet,
    /// LoRA adapters requested but waiting for a slot (`waiting_lora_adapters`).
    pub waiting_adapters: AdapterSet,
    /// Maximum adapters the server holds at once (`max_lora`); 0 when unknown.
    pub max_active_adapters: u32,
    /// KV-cache block size in tokens (`block_size`); 0 when unknown.
    pub cache_block_size: u32,
    /// Number of KV-cache blocks (`num_gpu_blocks`); 0 when unknown.
    pub cache_num_blocks: u64,
    /// When these values were last extracted successfully; `None` if never.
    pub updated_at: Option<Timestamp>,
}

impl Metrics {
    /// How old the metrics are at `now`; `None` if they were never extracted.
    pub fn age(&self, now: Timestamp) -> Option<Duration> {
        self.updated_at.map(|t| now.saturating_since(t))
    }

    /// Whether the metrics are missing or older than `threshold` at `now`.
    #[inline]
    pub fn is_stale(&self, now: Timestamp, threshold: Duration) -> bool {
        match self.updated_at {
            None => true,
            Some(t) => now.saturating_since(t) > threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness() {
        let mut m = Metrics::default();
        let now = Timestamp::from_nanos(1_000_000_000);
        assert!(m.is_stale(now, Duration::from_secs(10)));
        m.updated_at = Some(Timestamp::from_nanos(900_000_000));
        assert!(!m.is_stale(now, Duration::from_millis(100)));
        assert!(m.is_stale(now, Duration::from_millis(99)));
        assert_eq!(m.age(now), Some(Duration::from_millis(100)));
    }

    #[test]
    fn adapter_set_dedups() {
        let s: AdapterSet = ["a", "b", "a"].into_iter().collect();
        assert_eq!(s.len(), 2);
        assert!(s.contains("b"));
        assert!(!s.contains("c"));
    }
}

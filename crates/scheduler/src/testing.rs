//! Builders and runners for testing plugins and policies, in the style of Kubernetes'
//! `scheduler/testing` wrappers: `pool().endpoint("a").queue(3).kv(0.4)` reads like the data.
//!
//! ```
//! use pointsman::testing::{pool, score};
//! use pointsman::plugins::scorer::queue_scorer::QueueScorer;
//!
//! let snap = pool().endpoint("a").queue(2).endpoint("b").queue(8).snapshot();
//! assert_eq!(score(&QueueScorer::new(), &snap, "model"), vec![1.0, 0.0]);
//! ```

use crate::cycle::{CandidateList, Candidates, CycleContext, CycleData};
use crate::endpoint::Endpoint;
use crate::metrics::Metrics;
use crate::plugin::{Filter, Scorer};
use crate::pool::{Pool, PoolSnapshot};
use crate::random::CycleRng;
use crate::request::Request;
use crate::time::Timestamp;
use std::sync::Arc;

/// The time test snapshots are "scraped" at, and the time [`score`] and [`filter`] run at.
pub const TEST_NOW: Timestamp = Timestamp::from_nanos(1_000_000_000_000);

/// Starts a pool description.
pub fn pool() -> PoolBuilder {
    PoolBuilder::default()
}

/// Describes a pool endpoint by endpoint; each setter applies to the last endpoint added.
#[derive(Debug, Default, Clone)]
pub struct PoolBuilder {
    entries: Vec<(Endpoint, Metrics)>,
}

impl PoolBuilder {
    /// Adds endpoint `name` at `10.0.0.<n>:8000`, with fresh, empty metrics.
    pub fn endpoint(mut self, name: &str) -> Self {
        let n = self.entries.len() + 1;
        let e = Endpoint::new(name, format!("10.0.{}.{}", n / 250, n % 250), 8000);
        let m = Metrics {
            updated_at: Some(TEST_NOW),
            ..Metrics::default()
        };
        self.entries.push((e, m));
        self
    }

    fn last(&mut self) -> &mut (Endpoint, Metrics) {
        if self.entries.is_empty() {
            *self = std::mem::take(self).endpoint("e0");
        }
        let n = self.entries.len() - 1;
        &mut self.entries[n]
    }

    /// Sets the waiting queue.
    pub fn queue(mut self, q: u32) -> Self {
        self.last().1.waiting_queue_size = q;
        self
    }

    /// Sets the running requests.
    pub fn running(mut self, r: u32) -> Self {
        self.last().1.running_requests_size = r;
        self
    }

    /// Sets the KV-cache usage.
    pub fn kv(mut self, kv: f64) -> Self {
        self.last().1.kv_cache_usage = kv;
        self
    }

    /// Sets the active LoRA adapters.
    pub fn active(mut self, adapters: &[&str]) -> Self {
        self.last().1.active_adapters = adapters.iter().copied().collect();
        self
    }

    /// Sets the waiting LoRA adapters.
    pub fn waiting(mut self, adapters: &[&str]) -> Self {
        self.last().1.waiting_adapters = adapters.iter().copied().collect();
        self
    }

    /// Sets the maximum adapters.
    pub fn max_adapters(mut self, n: u32) -> Self {
        self.last().1.max_active_adapters = n;
        self
    }

    /// Sets the KV-cache block size (tokens) and block count.
    pub fn cache(mut self, block_size: u32, num_blocks: u64) -> Self {
        let m = &mut self.last().1;
        m.cache_block_size = block_size;
        m.cache_num_blocks = num_blocks;
        self
    }

    /// Sets when the metrics were scraped (default [`TEST_NOW`]); `None` means never.
    pub fn scraped_at(mut self, t: Option<Timestamp>) -> Self {
        self.last().1.updated_at = t;
        self
    }

    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> Self {
        let e = &mut self.last().0;
        *e = e.clone().with_label(k, v);
        self
    }

    /// Writes the endpoints into `pool`.
    pub fn fill(self, pool: &Pool) {
        pool.update(|tx| {
            for (e, m) in self.entries {
                let name = e.name().to_string();
                tx.upsert(e);
                let _ = tx.set_metrics(&name, m);
            }
        });
    }

    /// A new pool holding the endpoints.
    pub fn build(self) -> Arc<Pool> {
        let pool = Arc::new(Pool::new());
        self.fill(&pool);
        pool
    }

    /// A snapshot of a new pool holding the endpoints.
    pub fn snapshot(self) -> Arc<PoolSnapshot> {
        self.build().snapshot()
    }
}

/// Runs `scorer` over every endpoint of `snapshot` for a prompt-less request for `model`, at
/// [`TEST_NOW`], and returns the scores in endpoint order.
pub fn score(scorer: &dyn Scorer, snapshot: &PoolSnapshot, model: &str) -> Vec<f64> {
    score_request(
        scorer,
        snapshot,
        &Request::new("test", model),
        &CycleData::empty(),
    )
}

/// Runs `scorer` for `request` with producer `data`.
pub fn score_request(
    scorer: &dyn Scorer,
    snapshot: &PoolSnapshot,
    request: &Request<'_>,
    data: &CycleData,
) -> Vec<f64> {
    let positions: Vec<u32> = (0..snapshot.len() as u32).collect();
    let cx = CycleContext {
        request,
        pool: snapshot,
        now: TEST_NOW,
        data,
    };
    let mut out = vec![0.0; positions.len()];
    scorer.score(
        &cx,
        Candidates::new(snapshot.endpoints(), &positions),
        &mut out,
    );
    out
}

/// Runs `filter` over every endpoint of `snapshot` for a prompt-less request for `model`, with
/// a generator seeded by `seed`, and returns the names kept.
pub fn filter(filter: &dyn Filter, snapshot: &PoolSnapshot, model: &str, seed: u64) -> Vec<String> {
    filter_request(
        filter,
        snapshot,
        &Request::new("test", model),
        &CycleData::empty(),
        seed,
    )
}

/// Runs `filter` for `request` with producer `data`.
pub fn filter_request(
    filter: &dyn Filter,
    snapshot: &PoolSnapshot,
    request: &Request<'_>,
    data: &CycleData,
    seed: u64,
) -> Vec<String> {
    let mut positions: Vec<u32> = (0..snapshot.len() as u32).collect();
    let cx = CycleContext {
        request,
        pool: snapshot,
        now: TEST_NOW,
        data,
    };
    let mut rng = CycleRng::seed_from_u64(seed);
    let mut list = CandidateList::new(snapshot.endpoints(), &mut positions);
    filter.filter(&cx, &mut rng, &mut list);
    list.iter()
        .map(|e| e.endpoint().name().to_string())
        .collect()
}

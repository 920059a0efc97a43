//! `least-kv-cache-filter` (legacy): keep the endpoints in the lowest band of KV-cache usage.
//!
//! ```text
//! keep e  iff  kv(e) ≤ min_kv + (max_kv − min_kv) / N        N = number of candidates
//! ```
//!
//! Never returns an empty result for a non-empty input. Parameters: none.
//!
//! ```yaml
//! plugins:
//! - type: least-kv-cache-filter
//! ```

use crate::cycle::{CandidateList, CycleContext};
use crate::plugin::{Filter, Plugin};
use crate::random::CycleRng;

/// The registered type name.
pub const TYPE_NAME: &str = "least-kv-cache-filter";

/// See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastKvCacheFilter;

impl Filter for LeastKvCacheFilter {
    fn filter(
        &self,
        _cx: &CycleContext<'_>,
        _rng: &mut CycleRng,
        candidates: &mut CandidateList<'_>,
    ) {
        let n = candidates.len();
        if n == 0 {
            return;
        }
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for e in candidates.iter() {
            min = min.min(e.metrics().kv_cache_usage);
            max = max.max(e.metrics().kv_cache_usage);
        }
        let limit = min + (max - min) / n as f64;
        candidates.retain(|e| e.metrics().kv_cache_usage <= limit);
    }
}

impl Plugin for LeastKvCacheFilter {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{filter, pool};

    #[test]
    fn lowest_band() {
        // kv = [0.1, 0.3, 0.9], N = 3 → limit 0.1 + 0.8/3 ≈ 0.367
        let snap = pool()
            .endpoint("a")
            .kv(0.1)
            .endpoint("b")
            .kv(0.3)
            .endpoint("c")
            .kv(0.9)
            .snapshot();
        assert_eq!(filter(&LeastKvCacheFilter, &snap, "m", 0), vec!["a", "b"]);
    }
}

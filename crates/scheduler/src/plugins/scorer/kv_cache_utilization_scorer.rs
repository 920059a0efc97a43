//! `kv-cache-utilization-scorer` (formerly `kv-cache-scorer`): prefer endpoints with free KV
//! cache.
//!
//! ```text
//! score = 1 − kv        kv = KV-cache usage as a fraction in [0, 1]
//! ```
//!
//! - Usage outside `[0, 1]` (a misreporting server) is clamped by the cycle: above 1 scores 0.
//! - Never-scraped metrics read as 0 usage (score 1); the staleness guard handles them.
//!
//! Category: Distribution. Metrics read: `kv_cache_usage` (`vllm:kv_cache_usage_perc`).
//! Parameters: none. Both type names register the same scorer.
//!
//! ```yaml
//! plugins:
//! - type: kv-cache-utilization-scorer
//! ```

use crate::cycle::{Candidates, CycleContext};
use crate::plugin::{Plugin, Scorer, ScorerCategory};

/// The registered type name.
pub const TYPE_NAME: &str = "kv-cache-utilization-scorer";
/// The v0.5 type name, still accepted.
pub const LEGACY_TYPE_NAME: &str = "kv-cache-scorer";

/// See the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct KvCacheUtilizationScorer {
    type_name: &'static str,
}

impl KvCacheUtilizationScorer {
    /// A KV-cache scorer registered as `type_name`.
    pub const fn new(type_name: &'static str) -> Self {
        KvCacheUtilizationScorer { type_name }
    }
}

impl Default for KvCacheUtilizationScorer {
    fn default() -> Self {
        Self::new(TYPE_NAME)
    }
}

impl Scorer for KvCacheUtilizationScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Distribution
    }

    fn score(&self, _cx: &CycleContext<'_>, candidates: Candidates<'_>, out: &mut [f64]) {
        for (o, e) in out.iter_mut().zip(candidates.iter()) {
            *o = 1.0 - e.metrics().kv_cache_usage;
        }
    }
}

impl Plugin for KvCacheUtilizationScorer {
    fn type_name(&self) -> &str {
        self.type_name
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, score};

    #[test]
    fn one_minus_usage() {
        // kv = [0.0, 0.25, 1.0] → 1, 0.75, 0
        let snap = pool()
            .endpoint("a")
            .kv(0.0)
            .endpoint("b")
            .kv(0.25)
            .endpoint("c")
            .kv(1.0)
            .snapshot();
        assert_eq!(
            score(&KvCacheUtilizationScorer::default(), &snap, "m"),
            vec![1.0, 0.75, 0.0]
        );
    }

    #[test]
    fn legacy_name() {
        assert_eq!(
            KvCacheUtilizationScorer::new(LEGACY_TYPE_NAME).type_name(),
            "kv-cache-scorer"
        );
    }
}

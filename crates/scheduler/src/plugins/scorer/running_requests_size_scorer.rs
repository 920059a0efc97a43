//! `running-requests-size-scorer`: prefer endpoints running fewer requests.
//!
//! ```text
//! score = (max_r − r) / (max_r − min_r)        r = running requests, over the candidates
//! ```
//!
//! - All equal: every endpoint scores 1.0.
//!
//! Category: Distribution. Metrics read: `running_requests_size` (`vllm:num_requests_running`).
//! Parameters: none.
//!
//! ```yaml
//! plugins:
//! - type: running-requests-size-scorer
//! ```

use super::min_max_lower_is_better;
use crate::cycle::{Candidates, CycleContext};
use crate::plugin::{Plugin, Scorer, ScorerCategory};

/// The registered type name.
pub const TYPE_NAME: &str = "running-requests-size-scorer";

/// See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunningRequestsSizeScorer;

impl RunningRequestsSizeScorer {
    /// A running-requests scorer.
    pub const fn new() -> Self {
        RunningRequestsSizeScorer
    }
}

impl Scorer for RunningRequestsSizeScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Distribution
    }

    fn score(&self, _cx: &CycleContext<'_>, candidates: Candidates<'_>, out: &mut [f64]) {
        min_max_lower_is_better(candidates, out, |e| e.metrics().running_requests_size);
    }
}

impl Plugin for RunningRequestsSizeScorer {
    fn type_name(&self) -> &str {
        TYPE_NAME
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
    fn min_max_table() {
        // r = [4, 0, 2] → (4−4)/4 = 0, 1, (4−2)/4 = 0.5
        let snap = pool()
            .endpoint("a")
            .running(4)
            .endpoint("b")
            .running(0)
            .endpoint("c")
            .running(2)
            .snapshot();
        assert_eq!(
            score(&RunningRequestsSizeScorer, &snap, "m"),
            vec![0.0, 1.0, 0.5]
        );
    }

    #[test]
    fn all_equal_scores_one() {
        let snap = pool()
            .endpoint("a")
            .running(7)
            .endpoint("b")
            .running(7)
            .snapshot();
        assert_eq!(
            score(&RunningRequestsSizeScorer, &snap, "m"),
            vec![1.0, 1.0]
        );
    }
}

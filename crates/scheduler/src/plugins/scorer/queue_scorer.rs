//! `queue-scorer`: prefer endpoints with shorter waiting queues.
//!
//! ```text
//! score = (max_q − q) / (max_q − min_q)        q = waiting queue, over the candidates
//! ```
//!
//! - All queues equal (including a single candidate): every endpoint scores 1.0.
//! - Never-scraped metrics read as 0; the scheduler's staleness guard keeps stale endpoints
//!   from winning on such numbers while a fresh endpoint exists.
//!
//! Category: Distribution. Metrics read: `waiting_queue_size` (`vllm:num_requests_waiting`).
//! Parameters: none.
//!
//! ```yaml
//! plugins:
//! - type: queue-scorer
//! ```

use super::min_max_lower_is_better;
use crate::cycle::{Candidates, CycleContext};
use crate::plugin::{Plugin, Scorer, ScorerCategory};

/// The registered type name.
pub const TYPE_NAME: &str = "queue-scorer";

/// See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueScorer;

impl QueueScorer {
    /// A queue scorer.
    pub const fn new() -> Self {
        QueueScorer
    }
}

impl Scorer for QueueScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Distribution
    }

    fn score(&self, _cx: &CycleContext<'_>, candidates: Candidates<'_>, out: &mut [f64]) {
        min_max_lower_is_better(candidates, out, |e| e.metrics().waiting_queue_size);
    }
}

impl Plugin for QueueScorer {
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
        // q = [2, 5, 8] → (8−2)/6 = 1, (8−5)/6 = 0.5, (8−8)/6 = 0
        let snap = pool()
            .endpoint("a")
            .queue(2)
            .endpoint("b")
            .queue(5)
            .endpoint("c")
            .queue(8)
            .snapshot();
        assert_eq!(score(&QueueScorer, &snap, "m"), vec![1.0, 0.5, 0.0]);
        // q = [0, 10, 1] → 1, 0, 0.9
        let snap = pool()
            .endpoint("a")
            .queue(0)
            .endpoint("b")
            .queue(10)
            .endpoint("c")
            .queue(1)
            .snapshot();
        assert_eq!(score(&QueueScorer, &snap, "m"), vec![1.0, 0.0, 0.9]);
    }

    #[test]
    fn all_equal_and_empty_metrics_score_one() {
        let snap = pool()
            .endpoint("a")
            .queue(3)
            .endpoint("b")
            .queue(3)
            .snapshot();
        assert_eq!(score(&QueueScorer, &snap, "m"), vec![1.0, 1.0]);
        let snap = pool()
            .endpoint("a")
            .scraped_at(None)
            .endpoint("b")
            .scraped_at(None)
            .snapshot();
        assert_eq!(score(&QueueScorer, &snap, "m"), vec![1.0, 1.0]);
        let snap = pool().endpoint("only").queue(99).snapshot();
        assert_eq!(score(&QueueScorer, &snap, "m"), vec![1.0]);
    }
}

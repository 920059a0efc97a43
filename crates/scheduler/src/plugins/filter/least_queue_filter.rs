//! `least-queue-filter` (legacy): keep the endpoints in the lowest band of queue lengths.
//!
//! ```text
//! keep e  iff  q(e) ≤ min_q + ⌊(max_q − min_q) / N⌋        N = number of candidates
//! ```
//!
//! The band is computed with integer division, as the reference's integer metrics do. Never
//! returns an empty result for a non-empty input. Parameters: none.
//!
//! ```yaml
//! plugins:
//! - type: least-queue-filter
//! ```

use crate::cycle::{CandidateList, CycleContext};
use crate::plugin::{Filter, Plugin};
use crate::random::CycleRng;

/// The registered type name.
pub const TYPE_NAME: &str = "least-queue-filter";

/// See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastQueueFilter;

impl Filter for LeastQueueFilter {
    fn filter(
        &self,
        _cx: &CycleContext<'_>,
        _rng: &mut CycleRng,
        candidates: &mut CandidateList<'_>,
    ) {
        let n = candidates.len() as u32;
        if n == 0 {
            return;
        }
        let (mut min, mut max) = (u32::MAX, 0);
        for e in candidates.iter() {
            min = min.min(e.metrics().waiting_queue_size);
            max = max.max(e.metrics().waiting_queue_size);
        }
        let limit = min + (max - min) / n;
        candidates.retain(|e| e.metrics().waiting_queue_size <= limit);
    }
}

impl Plugin for LeastQueueFilter {
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
        // q = [0, 3, 10, 12], N = 4 → limit 0 + ⌊12/4⌋ = 3
        let snap = pool()
            .endpoint("a")
            .queue(0)
            .endpoint("b")
            .queue(3)
            .endpoint("c")
            .queue(10)
            .endpoint("d")
            .queue(12)
            .snapshot();
        assert_eq!(filter(&LeastQueueFilter, &snap, "m", 0), vec!["a", "b"]);
        // all equal → all kept
        let snap = pool()
            .endpoint("a")
            .queue(5)
            .endpoint("b")
            .queue(5)
            .snapshot();
        assert_eq!(filter(&LeastQueueFilter, &snap, "m", 0), vec!["a", "b"]);
    }
}

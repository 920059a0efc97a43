//! `low-queue-filter` (legacy): keep endpoints whose waiting queue is at most a threshold.
//!
//! ```text
//! keep e  iff  q(e) ≤ threshold
//! ```
//!
//! May return no endpoints (the decision tree then takes its failure branch).
//!
//! | name | type | default |
//! |---|---|---|
//! | `threshold` | integer ≥ 0 | 128 |
//!
//! ```yaml
//! plugins:
//! - type: low-queue-filter
//!   parameters: {threshold: 128}
//! ```

use crate::cycle::{CandidateList, CycleContext};
use crate::plugin::{Filter, Plugin};
use crate::random::CycleRng;
use crate::registry::PluginParams;
use serde::{Deserialize, Serialize};

/// The registered type name.
pub const TYPE_NAME: &str = "low-queue-filter";

/// Parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Params {
    /// The largest queue kept. Default 128.
    pub threshold: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params { threshold: 128 }
    }
}

impl PluginParams for Params {}

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct LowQueueFilter {
    threshold: u32,
}

impl LowQueueFilter {
    /// A filter with `params`.
    pub fn new(params: Params) -> Self {
        LowQueueFilter {
            threshold: params.threshold,
        }
    }
}

impl Filter for LowQueueFilter {
    fn filter(
        &self,
        _cx: &CycleContext<'_>,
        _rng: &mut CycleRng,
        candidates: &mut CandidateList<'_>,
    ) {
        candidates.retain(|e| e.metrics().waiting_queue_size <= self.threshold);
    }
}

impl Plugin for LowQueueFilter {
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
    fn keeps_at_most_threshold() {
        let snap = pool()
            .endpoint("a")
            .queue(128)
            .endpoint("b")
            .queue(129)
            .endpoint("c")
            .queue(0)
            .snapshot();
        assert_eq!(
            filter(&LowQueueFilter::new(Params::default()), &snap, "m", 0),
            vec!["a", "c"]
        );
        assert!(
            filter(
                &LowQueueFilter::new(Params { threshold: 0 }),
                &pool().endpoint("x").queue(1).snapshot(),
                "m",
                0
            )
            .is_empty()
        );
    }
}

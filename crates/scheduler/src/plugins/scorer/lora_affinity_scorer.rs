//! `lora-affinity-scorer`: prefer endpoints that already run the request's LoRA adapter, then
//! ones with a free adapter slot.
//!
//! ```text
//! score = 1.0  if model ∈ active adapters
//!         0.8  else if |active| + |waiting| < max adapters
//!         0.6  else if model ∈ waiting adapters
//!         0.0  otherwise
//! ```
//!
//! - An endpoint reporting no adapter information (max 0, nothing active) scores 0 unless the
//!   model is active, as in the reference.
//!
//! Category: Affinity. Metrics read: `active_adapters`, `waiting_adapters`,
//! `max_active_adapters` (`vllm:lora_requests_info`). Parameters: none.
//!
//! ```yaml
//! plugins:
//! - type: lora-affinity-scorer
//! ```

use crate::cycle::{Candidates, CycleContext};
use crate::plugin::{Plugin, Scorer, ScorerCategory};

/// The registered type name.
pub const TYPE_NAME: &str = "lora-affinity-scorer";

/// See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoraAffinityScorer;

impl LoraAffinityScorer {
    /// A LoRA-affinity scorer.
    pub const fn new() -> Self {
        LoraAffinityScorer
    }
}

impl Scorer for LoraAffinityScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Affinity
    }

    fn score(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>, out: &mut [f64]) {
        let model = cx.request.target_model;
        for (o, e) in out.iter_mut().zip(candidates.iter()) {
            let m = e.metrics();
            *o = if m.active_adapters.contains(model) {
                1.0
            } else if m.active_adapters.len() + m.waiting_adapters.len()
                < m.max_active_adapters as usize
            {
                0.8
            } else if m.waiting_adapters.contains(model) {
                0.6
            } else {
                0.0
            };
        }
    }
}

impl Plugin for LoraAffinityScorer {
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
    fn tiers() {
        let snap = pool()
            .endpoint("active")
            .active(&["sql"])
            .max_adapters(1)
            .endpoint("free-slot")
            .active(&["x"])
            .max_adapters(2)
            .endpoint("waiting")
            .active(&["x"])
            .waiting(&["sql"])
            .max_adapters(2)
            .endpoint("full")
            .active(&["x", "y"])
            .max_adapters(2)
            .endpoint("no-info")
            .snapshot();
        // active → 1.0; 1 + 0 < 2 → 0.8; 1 + 1 = 2, sql waiting → 0.6; full → 0; 0 < 0 false → 0
        assert_eq!(
            score(&LoraAffinityScorer, &snap, "sql"),
            vec![1.0, 0.8, 0.6, 0.0, 0.0]
        );
    }
}

//! `lora-affinity-filter` (legacy): keep endpoints that already have the request's adapter,
//! or, sometimes and otherwise, endpoints with room to load it.
//!
//! ```text
//! affinity  = { e : model ∈ active(e) ∪ waiting(e) }
//! available = { e : |active(e)| + |waiting(e)| < max_adapters(e) }
//! keep affinity  with probability `threshold` when both are non-empty, else available;
//!      whichever is non-empty when only one is; nothing when both are empty
//! ```
//!
//! | name | type | default | range |
//! |---|---|---|---|
//! | `threshold` | float | 0.999 | [0, 1] |
//!
//! ```yaml
//! plugins:
//! - type: lora-affinity-filter
//!   parameters: {threshold: 0.999}
//! ```

use crate::cycle::{CandidateList, CycleContext};
use crate::error::ParamError;
use crate::plugin::{Filter, Plugin};
use crate::pool::EndpointState;
use crate::random::CycleRng;
use crate::registry::PluginParams;
use serde::{Deserialize, Serialize};

/// The registered type name.
pub const TYPE_NAME: &str = "lora-affinity-filter";

/// Parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Params {
    /// Probability of keeping the affinity set when both sets are non-empty. Default 0.999.
    pub threshold: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params { threshold: 0.999 }
    }
}

impl PluginParams for Params {
    fn validate(&self) -> Result<(), ParamError> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(ParamError::new(
                "threshold",
                format!("expected a number in [0, 1], got {}", self.threshold),
            ));
        }
        Ok(())
    }
}

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct LoraAffinityFilter {
    threshold: f64,
}

impl LoraAffinityFilter {
    /// A filter with `params`.
    pub fn new(params: Params) -> Self {
        LoraAffinityFilter {
            threshold: params.threshold,
        }
    }
}

impl Filter for LoraAffinityFilter {
    fn filter(
        &self,
        cx: &CycleContext<'_>,
        rng: &mut CycleRng,
        candidates: &mut CandidateList<'_>,
    ) {
        let model = cx.request.target_model;
        let affinity = |e: &EndpointState| {
            let m = e.metrics();
            m.active_adapters.contains(model) || m.waiting_adapters.contains(model)
        };
        let available = |e: &EndpointState| {
            let m = e.metrics();
            m.active_adapters.len() + m.waiting_adapters.len() < m.max_active_adapters as usize
        };
        let any_affinity = candidates.iter().any(affinity);
        let any_available = candidates.iter().any(available);
        let use_affinity = match (any_affinity, any_available) {
            (true, true) => rng.chance(self.threshold),
            (true, false) => true,
            (false, _) => false,
        };
        if use_affinity {
            candidates.retain(affinity);
        } else {
            candidates.retain(available);
        }
    }
}

impl Plugin for LoraAffinityFilter {
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
    fn affinity_then_availability() {
        let snap = pool()
            .endpoint("has")
            .active(&["sql"])
            .max_adapters(2)
            .endpoint("room")
            .active(&["x"])
            .max_adapters(2)
            .endpoint("full")
            .active(&["x", "y"])
            .max_adapters(2)
            .snapshot();
        let always = LoraAffinityFilter::new(Params { threshold: 1.0 });
        assert_eq!(filter(&always, &snap, "sql", 0), vec!["has"]);
        let never = LoraAffinityFilter::new(Params { threshold: 0.0 });
        // "has" also has room (1 < 2)
        assert_eq!(filter(&never, &snap, "sql", 0), vec!["has", "room"]);
        // no affinity anywhere → available endpoints
        assert_eq!(filter(&always, &snap, "other", 0), vec!["has", "room"]);
        // both empty → nothing (the tree's failure branch)
        let full = pool()
            .endpoint("full")
            .active(&["x"])
            .max_adapters(1)
            .snapshot();
        assert!(filter(&always, &full, "sql", 0).is_empty());
    }

    #[test]
    fn default_threshold_mostly_sticks() {
        let snap = pool()
            .endpoint("has")
            .active(&["sql"])
            .max_adapters(1)
            .endpoint("room")
            .max_adapters(1)
            .snapshot();
        let f = LoraAffinityFilter::new(Params::default());
        let sticky = (0..2000)
            .filter(|&s| filter(&f, &snap, "sql", s) == vec!["has"])
            .count();
        assert!(sticky >= 1990, "{sticky}");
    }
}

//! `prefix-cache-affinity-filter`: when some endpoints hold most of the prompt's prefix, keep
//! only those (with a little exploration).
//!
//! ```text
//! sticky = { e : matched(e) / total ≥ affinityThreshold }
//! keep sticky if it is non-empty, else everything;
//! with probability explorationProbability, keep everything
//! ```
//!
//! - No match info, or a prompt shorter than one block: everything is kept.
//!
//! Consumes `PrefixCacheMatchInfo` (an `approx-prefix-cache-producer` is added if missing).
//!
//! | name | type | default | range |
//! |---|---|---|---|
//! | `affinityThreshold` | float | 0.80 | [0, 1] |
//! | `explorationProbability` | float | 0.01 | [0, 1] |
//! | `maxTTFTPenaltyMs` | float | 5000 | ≥ 0; 0 = always stick |
//!
//! `maxTTFTPenaltyMs` compares predicted TTFTs; pointsman has no latency predictor yet, so, as
//! the reference does without predictions, the filter then always sticks.
//!
//! ```yaml
//! plugins:
//! - name: strict-prefix
//!   type: prefix-cache-affinity-filter
//!   parameters: {affinityThreshold: 0.99}
//! ```

use crate::cycle::{CandidateList, CycleContext};
use crate::error::ParamError;
use crate::plugin::{DataKey, Filter, Plugin};
use crate::pool::EndpointState;
use crate::random::CycleRng;
use crate::registry::PluginParams;
use serde::{Deserialize, Serialize};

/// The registered type name.
pub const TYPE_NAME: &str = "prefix-cache-affinity-filter";

/// Parameters (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Params {
    /// Minimum prefix score to stick. Default 0.80.
    pub affinity_threshold: f64,
    /// Probability of skipping the filter. Default 0.01.
    pub exploration_probability: f64,
    /// Largest predicted-TTFT penalty accepted for sticking, in ms. Default 5000.
    #[serde(rename = "maxTTFTPenaltyMs")]
    pub max_ttft_penalty_ms: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            affinity_threshold: 0.80,
            exploration_probability: 0.01,
            max_ttft_penalty_ms: 5000.0,
        }
    }
}

impl PluginParams for Params {
    fn validate(&self) -> Result<(), ParamError> {
        for (field, v) in [
            ("affinityThreshold", self.affinity_threshold),
            ("explorationProbability", self.exploration_probability),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ParamError::new(
                    field,
                    format!("expected a number in [0, 1], got {v}"),
                ));
            }
        }
        if !(self.max_ttft_penalty_ms >= 0.0 && self.max_ttft_penalty_ms.is_finite()) {
            return Err(ParamError::new(
                "maxTTFTPenaltyMs",
                format!("expected a number ≥ 0, got {}", self.max_ttft_penalty_ms),
            ));
        }
        Ok(())
    }
}

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct PrefixCacheAffinityFilter {
    params: Params,
}

impl PrefixCacheAffinityFilter {
    /// A filter with `params`.
    pub fn new(params: Params) -> Self {
        PrefixCacheAffinityFilter { params }
    }
}

impl Filter for PrefixCacheAffinityFilter {
    fn filter(
        &self,
        cx: &CycleContext<'_>,
        rng: &mut CycleRng,
        candidates: &mut CandidateList<'_>,
    ) {
        if rng.chance(self.params.exploration_probability) {
            return;
        }
        let sticky = |e: &EndpointState| match cx.data.prefix_match(e.id()) {
            Some(m) if m.total_blocks > 0 => {
                f64::from(m.matched_blocks) / f64::from(m.total_blocks)
                    >= self.params.affinity_threshold
            }
            _ => false,
        };
        if candidates.iter().any(sticky) {
            candidates.retain(sticky);
        }
    }
}

impl Plugin for PrefixCacheAffinityFilter {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
    fn consumes(&self) -> &[DataKey] {
        &[DataKey::PrefixCacheMatchInfo]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::CycleData;
    use crate::request::Request;
    use crate::testing::{filter_request, pool};

    #[test]
    fn sticks_to_high_matches_else_keeps_all() {
        let snap = pool().endpoint("a").endpoint("b").endpoint("c").snapshot();
        let mut data = CycleData::empty();
        let (m, _) = data.begin_prefix_matches(snap.slot_capacity(), 10, 16);
        // 9/10 and 8/10 ≥ 0.8; 2/10 not
        m.copy_from_slice(&[9, 8, 2]);
        let req = Request::new("t", "m");
        let no_explore = PrefixCacheAffinityFilter::new(Params {
            exploration_probability: 0.0,
            ..Params::default()
        });
        assert_eq!(
            filter_request(&no_explore, &snap, &req, &data, 0),
            vec!["a", "b"]
        );
        let strict = PrefixCacheAffinityFilter::new(Params {
            affinity_threshold: 0.95,
            exploration_probability: 0.0,
            ..Params::default()
        });
        assert_eq!(
            filter_request(&strict, &snap, &req, &data, 0),
            vec!["a", "b", "c"],
            "none qualify: keep all"
        );
        let explore = PrefixCacheAffinityFilter::new(Params {
            exploration_probability: 1.0,
            ..Params::default()
        });
        assert_eq!(
            filter_request(&explore, &snap, &req, &data, 0),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            filter_request(&no_explore, &snap, &req, &CycleData::empty(), 0),
            vec!["a", "b", "c"]
        );
    }
}

//! `token-load-scorer`: prefer endpoints with fewer in-flight tokens sent by this picker.
//!
//! ```text
//! score = 1                     if t ≤ 0
//!       = 1 − min(t, T) / T     otherwise        t = in-flight estimated tokens, T = threshold
//! ```
//!
//! Category: Distribution. Consumes `InFlightLoad` (from `inflight-load-producer`, added
//! automatically when missing).
//!
//! | name | type | default | meaning |
//! |---|---|---|---|
//! | `queueThresholdTokens` | integer | 4,194,304 | tokens at which the score reaches 0; ≤ 0 means the default |
//!
//! ```yaml
//! plugins:
//! - type: token-load-scorer
//!   parameters: {queueThresholdTokens: 1000000}
//! ```

use crate::cycle::{Candidates, CycleContext};
use crate::plugin::{DataKey, Plugin, Scorer, ScorerCategory};
use crate::registry::PluginParams;
use serde::{Deserialize, Serialize};

/// The registered type name.
pub const TYPE_NAME: &str = "token-load-scorer";
/// Default `queueThresholdTokens` (128 requests at 32K tokens).
pub const DEFAULT_QUEUE_THRESHOLD_TOKENS: i64 = 4_194_304;

const fn default_threshold() -> i64 {
    DEFAULT_QUEUE_THRESHOLD_TOKENS
}

/// Parameters (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// Tokens at which the score reaches 0.
    #[serde(default = "default_threshold")]
    pub queue_threshold_tokens: i64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            queue_threshold_tokens: DEFAULT_QUEUE_THRESHOLD_TOKENS,
        }
    }
}

impl PluginParams for Params {}

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct TokenLoadScorer {
    threshold: f64,
}

impl TokenLoadScorer {
    /// A scorer with `params` (a threshold ≤ 0 reverts to the default, as in the reference).
    pub fn new(params: Params) -> Self {
        let t = if params.queue_threshold_tokens <= 0 {
            DEFAULT_QUEUE_THRESHOLD_TOKENS
        } else {
            params.queue_threshold_tokens
        };
        TokenLoadScorer {
            threshold: t as f64,
        }
    }
}

impl Scorer for TokenLoadScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Distribution
    }

    fn score(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>, out: &mut [f64]) {
        for (o, e) in out.iter_mut().zip(candidates.iter()) {
            let t = cx.data.in_flight(e.id()).map_or(0, |l| l.tokens) as f64;
            *o = if t <= 0.0 {
                1.0
            } else {
                1.0 - t.min(self.threshold) / self.threshold
            };
        }
    }
}

impl Plugin for TokenLoadScorer {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        Some(self)
    }
    fn consumes(&self) -> &[DataKey] {
        &[DataKey::InFlightLoad]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::{CycleData, InFlightLoad};
    use crate::request::Request;
    use crate::testing::{pool, score_request};

    #[test]
    fn formula() {
        let snap = pool().endpoint("a").endpoint("b").endpoint("c").snapshot();
        let mut data = CycleData::empty();
        let loads = data.begin_in_flight(snap.slot_capacity());
        // T = 100: t = [0, 25, 400] → 1, 0.75, 0
        for (l, t) in loads.iter_mut().zip([0u64, 25, 400]) {
            *l = InFlightLoad {
                requests: 1,
                tokens: t,
            };
        }
        let s = TokenLoadScorer::new(Params {
            queue_threshold_tokens: 100,
        });
        assert_eq!(
            score_request(&s, &snap, &Request::new("t", "m"), &data),
            vec![1.0, 0.75, 0.0]
        );
        let d = TokenLoadScorer::new(Params {
            queue_threshold_tokens: -5,
        });
        assert_eq!(d.threshold, DEFAULT_QUEUE_THRESHOLD_TOKENS as f64);
    }
}

//! `concurrency-detector`: saturation from this picker's own in-flight counts; as a filter,
//! drops endpoints at their concurrency limit.
//!
//! ```text
//! saturation = Σ in-flight / (max × candidates)     (in the configured unit; 1.0 if capacity 0)
//! filter     = keep e with in-flight(e) < ⌊max · (1 + h)⌋          (does not fail open)
//! ```
//!
//! Consumes `InFlightLoad` (from `inflight-load-producer`, added automatically).
//!
//! | name | type | default | meaning |
//! |---|---|---|---|
//! | `concurrencyMode` | `requests` \| `tokens` | `requests` | the unit counted |
//! | `maxConcurrency` | integer ≥ 1 | 100 | per-endpoint limit in requests |
//! | `maxTokenConcurrency` | integer ≥ 1 | 1,000,000 | per-endpoint limit in tokens |
//! | `headroom` | float ≥ 0 | 0.0 | extra room when filtering |
//!
//! ```yaml
//! plugins:
//! - type: concurrency-detector
//!   parameters: {concurrencyMode: requests, maxConcurrency: 64}
//! ```

use crate::cycle::{CandidateList, Candidates, CycleContext};
use crate::error::ParamError;
use crate::plugin::{DataKey, Filter, Plugin, SaturationDetector};
use crate::pool::EndpointState;
use crate::random::CycleRng;
use crate::registry::PluginParams;
use serde::{Deserialize, Serialize};

/// The registered type name.
pub const TYPE_NAME: &str = "concurrency-detector";

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConcurrencyMode {
    /// Requests in flight.
    #[default]
    Requests,
    /// Estimated tokens in flight.
    Tokens,
}

/// Parameters (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Params {
    /// The unit counted.
    pub concurrency_mode: ConcurrencyMode,
    /// Requests per endpoint. Default 100.
    pub max_concurrency: i64,
    /// Tokens per endpoint. Default 1,000,000.
    pub max_token_concurrency: i64,
    /// Extra room when filtering. Default 0.
    pub headroom: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            concurrency_mode: ConcurrencyMode::Requests,
            max_concurrency: 100,
            max_token_concurrency: 1_000_000,
            headroom: 0.0,
        }
    }
}

impl PluginParams for Params {
    fn validate(&self) -> Result<(), ParamError> {
        if self.max_concurrency <= 0 {
            return Err(ParamError::new(
                "maxConcurrency",
                format!("expected an integer > 0, got {}", self.max_concurrency),
            ));
        }
        if self.max_token_concurrency <= 0 {
            return Err(ParamError::new(
                "maxTokenConcurrency",
                format!(
                    "expected an integer > 0, got {}",
                    self.max_token_concurrency
                ),
            ));
        }
        if !(self.headroom >= 0.0 && self.headroom.is_finite()) {
            return Err(ParamError::new(
                "headroom",
                format!("expected a number ≥ 0, got {}", self.headroom),
            ));
        }
        Ok(())
    }
}

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ConcurrencyDetector {
    params: Params,
}

impl ConcurrencyDetector {
    /// A detector with `params`.
    pub fn new(params: Params) -> Self {
        ConcurrencyDetector { params }
    }

    fn limit(&self) -> f64 {
        match self.params.concurrency_mode {
            ConcurrencyMode::Requests => self.params.max_concurrency as f64,
            ConcurrencyMode::Tokens => self.params.max_token_concurrency as f64,
        }
    }

    fn in_flight(&self, cx: &CycleContext<'_>, e: &EndpointState) -> f64 {
        let load = cx.data.in_flight(e.id()).unwrap_or_default();
        match self.params.concurrency_mode {
            ConcurrencyMode::Requests => load.requests as f64,
            ConcurrencyMode::Tokens => load.tokens as f64,
        }
    }
}

impl Default for ConcurrencyDetector {
    fn default() -> Self {
        Self::new(Params::default())
    }
}

impl SaturationDetector for ConcurrencyDetector {
    fn saturation(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>) -> f64 {
        let capacity = self.limit() * candidates.len() as f64;
        if capacity <= 0.0 {
            return 1.0;
        }
        candidates
            .iter()
            .map(|e| self.in_flight(cx, e))
            .sum::<f64>()
            / capacity
    }
}

impl Filter for ConcurrencyDetector {
    fn filter(
        &self,
        cx: &CycleContext<'_>,
        _rng: &mut CycleRng,
        candidates: &mut CandidateList<'_>,
    ) {
        let limit = (self.limit() * (1.0 + self.params.headroom)).floor();
        candidates.retain(|e| self.in_flight(cx, e) < limit);
    }
}

impl Plugin for ConcurrencyDetector {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
    fn as_saturation_detector(&self) -> Option<&dyn SaturationDetector> {
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
    use crate::testing::{TEST_NOW, filter_request, pool};

    #[test]
    fn saturation_and_filter() {
        let snap = pool().endpoint("a").endpoint("b").snapshot();
        let mut data = CycleData::empty();
        let loads = data.begin_in_flight(snap.slot_capacity());
        loads[0] = InFlightLoad {
            requests: 4,
            tokens: 0,
        };
        loads[1] = InFlightLoad {
            requests: 1,
            tokens: 0,
        };
        let d = ConcurrencyDetector::new(Params {
            max_concurrency: 4,
            ..Params::default()
        });
        let req = Request::new("t", "m");
        let cx = CycleContext {
            request: &req,
            pool: &snap,
            now: TEST_NOW,
            data: &data,
        };
        let pos = [0u32, 1];
        // (4 + 1) / (4 × 2) = 0.625
        assert_eq!(
            d.saturation(&cx, Candidates::new(snap.endpoints(), &pos)),
            0.625
        );
        // a has 4 ≥ 4: dropped; b kept
        assert_eq!(filter_request(&d, &snap, &req, &data, 0), vec!["b"]);
        // headroom 0.5: limit ⌊6⌋ keeps both
        let d = ConcurrencyDetector::new(Params {
            max_concurrency: 4,
            headroom: 0.5,
            ..Params::default()
        });
        assert_eq!(filter_request(&d, &snap, &req, &data, 0), vec!["a", "b"]);
        // no fail-open: limit 1 drops both
        let d = ConcurrencyDetector::new(Params {
            max_concurrency: 1,
            ..Params::default()
        });
        assert!(filter_request(&d, &snap, &req, &data, 0).is_empty());
    }
}

//! `utilization-detector` (the default saturation detector): saturation from queue depth and
//! KV-cache usage; as a filter, drops endpoints over either limit.
//!
//! ```text
//! saturation = mean over candidates of max(q / Q, kv / K)     (stale or no metrics: 1.0)
//! filter     = keep fresh e with q < Q·(1 + h) and kv < K·(1 + h); if none, keep all
//! ```
//!
//! - No candidates: saturation 1.0 (saturated).
//! - "Fresh" means metrics no older than `metricsStalenessThreshold`.
//!
//! | name | type | default | range |
//! |---|---|---|---|
//! | `queueDepthThreshold` | integer | 5 | > 0 |
//! | `kvCacheUtilThreshold` | float | 0.8 | (0, 1] |
//! | `metricsStalenessThreshold` | duration | `200ms` | > 0 |
//! | `headroom` | float | 0.0 | ≥ 0 (filter only) |
//!
//! ```yaml
//! plugins:
//! - type: utilization-detector
//!   parameters: {queueDepthThreshold: 8, kvCacheUtilThreshold: 0.85, metricsStalenessThreshold: 200ms, headroom: 0.2}
//! ```

use crate::config::go_duration;
use crate::cycle::{CandidateList, Candidates, CycleContext};
use crate::error::ParamError;
use crate::plugin::{Filter, Plugin, SaturationDetector};
use crate::pool::EndpointState;
use crate::random::CycleRng;
use crate::registry::PluginParams;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The registered type name.
pub const TYPE_NAME: &str = "utilization-detector";

/// Parameters (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Params {
    /// Queue depth at which an endpoint counts as saturated. Default 5.
    pub queue_depth_threshold: i64,
    /// KV-cache usage at which an endpoint counts as saturated. Default 0.8.
    pub kv_cache_util_threshold: f64,
    /// Metrics older than this count as saturated. Default 200 ms.
    #[serde(with = "go_duration")]
    pub metrics_staleness_threshold: Duration,
    /// Extra room over the thresholds when filtering. Default 0.
    pub headroom: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            queue_depth_threshold: 5,
            kv_cache_util_threshold: 0.8,
            metrics_staleness_threshold: Duration::from_millis(200),
            headroom: 0.0,
        }
    }
}

impl PluginParams for Params {
    fn validate(&self) -> Result<(), ParamError> {
        if self.queue_depth_threshold <= 0 {
            return Err(ParamError::new(
                "queueDepthThreshold",
                format!(
                    "expected an integer > 0, got {}",
                    self.queue_depth_threshold
                ),
            ));
        }
        if !(self.kv_cache_util_threshold > 0.0 && self.kv_cache_util_threshold <= 1.0) {
            return Err(ParamError::new(
                "kvCacheUtilThreshold",
                format!(
                    "expected a number in (0, 1], got {}",
                    self.kv_cache_util_threshold
                ),
            ));
        }
        if self.metrics_staleness_threshold.is_zero() {
            return Err(ParamError::new(
                "metricsStalenessThreshold",
                "expected a duration > 0, got 0",
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
pub struct UtilizationDetector {
    params: Params,
}

impl UtilizationDetector {
    /// A detector with `params`.
    pub fn new(params: Params) -> Self {
        UtilizationDetector { params }
    }

    fn fresh(&self, e: &EndpointState, now: Timestamp) -> bool {
        !e.metrics()
            .is_stale(now, self.params.metrics_staleness_threshold)
    }
}

impl Default for UtilizationDetector {
    fn default() -> Self {
        Self::new(Params::default())
    }
}

impl SaturationDetector for UtilizationDetector {
    fn saturation(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>) -> f64 {
        if candidates.is_empty() {
            return 1.0;
        }
        let q = self.params.queue_depth_threshold as f64;
        let k = self.params.kv_cache_util_threshold;
        let sum: f64 = candidates
            .iter()
            .map(|e| {
                if !self.fresh(e, cx.now) {
                    return 1.0;
                }
                let m = e.metrics();
                (f64::from(m.waiting_queue_size) / q).max(m.kv_cache_usage / k)
            })
            .sum();
        sum / candidates.len() as f64
    }
}

impl Filter for UtilizationDetector {
    fn filter(
        &self,
        cx: &CycleContext<'_>,
        _rng: &mut CycleRng,
        candidates: &mut CandidateList<'_>,
    ) {
        let h = 1.0 + self.params.headroom;
        let q = self.params.queue_depth_threshold as f64 * h;
        let k = self.params.kv_cache_util_threshold * h;
        let keep = |e: &EndpointState| {
            self.fresh(e, cx.now)
                && f64::from(e.metrics().waiting_queue_size) < q
                && e.metrics().kv_cache_usage < k
        };
        if candidates.iter().any(keep) {
            candidates.retain(keep);
        }
    }
}

impl Plugin for UtilizationDetector {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
    fn as_saturation_detector(&self) -> Option<&dyn SaturationDetector> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::{Candidates, CycleData};
    use crate::request::Request;
    use crate::testing::{TEST_NOW, filter, pool};

    fn saturation(d: &UtilizationDetector, snap: &crate::PoolSnapshot) -> f64 {
        let req = Request::new("t", "m");
        let cx = CycleContext {
            request: &req,
            pool: snap,
            now: TEST_NOW,
            data: &CycleData::empty(),
        };
        let pos: Vec<u32> = (0..snap.len() as u32).collect();
        d.saturation(&cx, Candidates::new(snap.endpoints(), &pos))
    }

    #[test]
    fn saturation_is_mean_of_worst_ratio() {
        let d = UtilizationDetector::default();
        // a: max(5/5, 0.4/0.8) = 1.0; b: max(0/5, 0.4/0.8) = 0.5 → 0.75
        let snap = pool()
            .endpoint("a")
            .queue(5)
            .kv(0.4)
            .endpoint("b")
            .kv(0.4)
            .snapshot();
        assert!((saturation(&d, &snap) - 0.75).abs() < 1e-12);
        // a stale endpoint counts as 1.0: (1.0 + 0.0) / 2
        let stale = pool()
            .endpoint("a")
            .scraped_at(Some(Timestamp::ZERO))
            .endpoint("b")
            .snapshot();
        assert!((saturation(&d, &stale) - 0.5).abs() < 1e-12);
        assert_eq!(
            saturation(&d, &pool().snapshot()),
            1.0,
            "no candidates is saturated"
        );
    }

    #[test]
    fn filter_keeps_fresh_endpoints_under_limits_and_fails_open() {
        let d = UtilizationDetector::new(Params {
            headroom: 0.2,
            ..Params::default()
        });
        // Q·1.2 = 6, K·1.2 = 0.96: a (q 5) kept, b (q 6) dropped, c (kv 0.96) dropped, d stale
        let snap = pool()
            .endpoint("a")
            .queue(5)
            .endpoint("b")
            .queue(6)
            .endpoint("c")
            .kv(0.96)
            .endpoint("d")
            .scraped_at(None)
            .snapshot();
        assert_eq!(filter(&d, &snap, "m", 0), vec!["a"]);
        let all_bad = pool()
            .endpoint("x")
            .queue(50)
            .endpoint("y")
            .kv(1.0)
            .snapshot();
        assert_eq!(filter(&d, &all_bad, "m", 0), vec!["x", "y"]);
    }

    #[test]
    fn params_validate() {
        let p = Params {
            kv_cache_util_threshold: 1.5,
            ..Params::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "kvCacheUtilThreshold");
        let p = Params {
            queue_depth_threshold: 0,
            ..Params::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "queueDepthThreshold");
    }
}

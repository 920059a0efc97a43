//! Scorers: rate each candidate in `[0, 1]`.
//!
//! | type | category | formula |
//! |---|---|---|
//! | [`queue-scorer`](queue_scorer) | Distribution | `(max_q − q) / (max_q − min_q)` |
//! | [`running-requests-size-scorer`](running_requests_size_scorer) | Distribution | `(max_r − r) / (max_r − min_r)` |
//! | [`kv-cache-utilization-scorer`](kv_cache_utilization_scorer) | Distribution | `1 − kv` |
//! | [`lora-affinity-scorer`](lora_affinity_scorer) | Affinity | 1 / 0.8 / 0.6 / 0 |
//! | [`prefix-cache-scorer`](prefix_cache_scorer) | Affinity | `matched / total` blocks |
//! | [`token-load-scorer`](token_load_scorer) | Distribution | `1 − min(t, T) / T` |

pub mod kv_cache_utilization_scorer;
pub mod lora_affinity_scorer;
pub mod prefix_cache_scorer;
pub mod queue_scorer;
pub mod running_requests_size_scorer;
pub mod token_load_scorer;

use crate::cycle::Candidates;
use crate::pool::EndpointState;

/// Min–max normalisation, lower is better: `(max − x) / (max − min)`, all 1.0 when
/// `max == min`. Shared by the queue and running-requests scorers.
pub(crate) fn min_max_lower_is_better(
    candidates: Candidates<'_>,
    out: &mut [f64],
    value: impl Fn(&EndpointState) -> u32,
) {
    let (mut min, mut max) = (u32::MAX, 0u32);
    for e in candidates.iter() {
        let v = value(e);
        min = min.min(v);
        max = max.max(v);
    }
    if max <= min {
        out.fill(1.0);
        return;
    }
    let range = f64::from(max - min);
    for (o, e) in out.iter_mut().zip(candidates.iter()) {
        *o = f64::from(max - value(e)) / range;
    }
}

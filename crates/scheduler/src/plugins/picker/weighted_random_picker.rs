//! `weighted-random-picker`: candidates drawn with probability proportional to their totals
//! (A-Res weighted reservoir sampling, Efraimidis–Spirakis).
//!
//! ```text
//! key_i = U_i ^ (1 / score_i)    U_i ~ Uniform(0, 1), U = 0 replaced by 1e-10
//! key_i = 0                      if score_i ≤ 0
//! picks = the k largest keys
//! ```
//!
//! - Every score ≤ 0: behaves as `random-picker`.
//! - With k = 1, `P(i) = score_i / Σ score`; scaling all scores changes nothing.
//!
//! Parameters: `maxNumOfEndpoints` (integer, default 1; ≤ 0 means 1).
//!
//! ```yaml
//! plugins:
//! - type: weighted-random-picker
//!   parameters: {maxNumOfEndpoints: 2}
//! ```

use super::PickerParams;
use super::random_picker::pick_uniform;
use crate::cycle::{CycleContext, ScoredCandidate};
use crate::plugin::{Picker, Plugin};
use crate::random::CycleRng;

/// The registered type name.
pub const TYPE_NAME: &str = "weighted-random-picker";

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct WeightedRandomPicker {
    picks: usize,
}

impl WeightedRandomPicker {
    /// A picker with `params`.
    pub fn new(params: PickerParams) -> Self {
        WeightedRandomPicker {
            picks: params.picks(),
        }
    }
}

impl Default for WeightedRandomPicker {
    fn default() -> Self {
        Self::new(PickerParams::default())
    }
}

#[inline]
fn key(rng: &mut CycleRng, score: f64) -> f64 {
    if score <= 0.0 {
        return 0.0;
    }
    let mut u = rng.next_f64();
    if u == 0.0 {
        u = 1e-10;
    }
    u.powf(1.0 / score)
}

impl Picker for WeightedRandomPicker {
    fn pick(
        &self,
        _cx: &CycleContext<'_>,
        rng: &mut CycleRng,
        scored: &mut [ScoredCandidate],
    ) -> usize {
        if scored.iter().all(|s| s.score <= 0.0) {
            return pick_uniform(rng, scored, self.picks);
        }
        if self.picks == 1 {
            let mut best = 0;
            let mut best_key = f64::NEG_INFINITY;
            for (i, s) in scored.iter().enumerate() {
                let k = key(rng, s.score);
                if k > best_key {
                    best_key = k;
                    best = i;
                }
            }
            scored.swap(0, best);
            return 1;
        }
        // The keys replace the totals in this (picker-owned) buffer.
        for s in scored.iter_mut() {
            s.score = key(rng, s.score);
        }
        scored.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));
        self.picks.min(scored.len())
    }
}

impl Plugin for WeightedRandomPicker {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_picker(&self) -> Option<&dyn Picker> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::picker::max_score_picker::tests::run;

    #[test]
    fn frequencies_follow_weights() {
        let p = WeightedRandomPicker::default();
        let weights = [1.0, 2.0, 3.0, 0.0];
        let mut counts = [0u32; 4];
        let n = 12_000;
        for seed in 0..n {
            counts[run(&p, &weights, seed)[0] as usize] += 1;
        }
        // Expected 2000, 4000, 6000, 0; allow ±6%.
        for (c, w) in counts.iter().zip(weights) {
            let expected = n as f64 * w / 6.0;
            assert!(
                (f64::from(*c) - expected).abs() <= 0.06 * n as f64 / 3.0,
                "{counts:?}"
            );
        }
        assert_eq!(
            counts[3], 0,
            "zero weight is never picked while others are positive"
        );
    }

    #[test]
    fn all_zero_is_uniform_and_k_picks_are_distinct() {
        let p = WeightedRandomPicker::default();
        let mut counts = [0u32; 2];
        for seed in 0..2000 {
            counts[run(&p, &[0.0, 0.0], seed)[0] as usize] += 1;
        }
        assert!((900..1100).contains(&counts[0]), "{counts:?}");
        let p = WeightedRandomPicker::new(PickerParams {
            max_num_of_endpoints: 3,
        });
        let mut picks = run(&p, &[1.0, 0.5, 0.0], 3);
        assert_eq!(picks.len(), 3);
        picks.sort();
        assert_eq!(picks, vec![0, 1, 2]);
    }
}

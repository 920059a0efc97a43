//! `random-picker`: uniformly random candidates, ignoring scores.
//!
//! ```text
//! picks = k candidates drawn uniformly without replacement
//! ```
//!
//! Parameters: `maxNumOfEndpoints` (integer, default 1; ≤ 0 means 1).
//!
//! ```yaml
//! plugins:
//! - type: random-picker
//! ```

use super::PickerParams;
use crate::cycle::{CycleContext, ScoredCandidate};
use crate::plugin::{Picker, Plugin};
use crate::random::CycleRng;

/// The registered type name.
pub const TYPE_NAME: &str = "random-picker";

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct RandomPicker {
    picks: usize,
}

impl RandomPicker {
    /// A picker with `params`.
    pub fn new(params: PickerParams) -> Self {
        RandomPicker {
            picks: params.picks(),
        }
    }
}

impl Default for RandomPicker {
    fn default() -> Self {
        Self::new(PickerParams::default())
    }
}

/// Moves `k` uniformly chosen entries to the front (partial Fisher–Yates); returns `k`.
pub(crate) fn pick_uniform(rng: &mut CycleRng, scored: &mut [ScoredCandidate], k: usize) -> usize {
    let k = k.min(scored.len());
    for i in 0..k {
        let j = i + rng.below(scored.len() - i);
        scored.swap(i, j);
    }
    k
}

impl Picker for RandomPicker {
    fn pick(
        &self,
        _cx: &CycleContext<'_>,
        rng: &mut CycleRng,
        scored: &mut [ScoredCandidate],
    ) -> usize {
        pick_uniform(rng, scored, self.picks)
    }
}

impl Plugin for RandomPicker {
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
    fn uniform_and_distinct() {
        let p = RandomPicker::default();
        let mut counts = [0u32; 3];
        for seed in 0..3000 {
            counts[run(&p, &[9.0, 0.0, 0.0], seed)[0] as usize] += 1;
        }
        for &c in &counts {
            assert!((850..1150).contains(&c), "scores ignored: {counts:?}");
        }
        let p = RandomPicker::new(PickerParams {
            max_num_of_endpoints: 3,
        });
        let mut picks = run(&p, &[1.0, 2.0, 3.0], 5);
        picks.sort();
        assert_eq!(picks, vec![0, 1, 2]);
    }
}

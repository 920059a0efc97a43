//! `max-score-picker`: the candidates with the highest totals.
//!
//! ```text
//! picks = the k highest totals; ties broken uniformly at random
//! ```
//!
//! With k = 1 this is one pass keeping a uniformly chosen maximum (reservoir sampling over the
//! tied maxima), which has the same distribution as the reference's shuffle-then-stable-sort
//! without sorting. With k > 1 the candidates are shuffled, then sorted by total, descending.
//!
//! Parameters: `maxNumOfEndpoints` (integer, default 1; ≤ 0 means 1).
//!
//! ```yaml
//! plugins:
//! - type: max-score-picker
//!   parameters: {maxNumOfEndpoints: 2}
//! ```

use super::PickerParams;
use crate::cycle::{CycleContext, ScoredCandidate};
use crate::plugin::{Picker, Plugin};
use crate::random::CycleRng;

/// The registered type name.
pub const TYPE_NAME: &str = "max-score-picker";

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct MaxScorePicker {
    picks: usize,
}

impl MaxScorePicker {
    /// A picker with `params`.
    pub fn new(params: PickerParams) -> Self {
        MaxScorePicker {
            picks: params.picks(),
        }
    }
}

impl Default for MaxScorePicker {
    fn default() -> Self {
        Self::new(PickerParams::default())
    }
}

impl Picker for MaxScorePicker {
    fn pick(
        &self,
        _cx: &CycleContext<'_>,
        rng: &mut CycleRng,
        scored: &mut [ScoredCandidate],
    ) -> usize {
        if scored.is_empty() {
            return 0;
        }
        if self.picks == 1 {
            let mut best = 0;
            let mut ties = 1usize;
            for i in 1..scored.len() {
                let s = scored[i].score;
                if s > scored[best].score {
                    best = i;
                    ties = 1;
                } else if s == scored[best].score {
                    ties += 1;
                    if rng.below(ties) == 0 {
                        best = i;
                    }
                }
            }
            scored.swap(0, best);
            return 1;
        }
        rng.shuffle(scored);
        scored.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));
        self.picks.min(scored.len())
    }
}

impl Plugin for MaxScorePicker {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_picker(&self) -> Option<&dyn Picker> {
        Some(self)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cycle::CycleData;
    use crate::endpoint::EndpointId;
    use crate::request::Request;
    use crate::testing::{TEST_NOW, pool};

    pub(crate) fn run(picker: &dyn Picker, scores: &[f64], seed: u64) -> Vec<u32> {
        let snap = pool().endpoint("x").snapshot();
        let req = Request::new("t", "m");
        let cx = CycleContext {
            request: &req,
            pool: &snap,
            now: TEST_NOW,
            data: &CycleData::empty(),
        };
        let mut scored: Vec<ScoredCandidate> = scores
            .iter()
            .enumerate()
            .map(|(i, &s)| ScoredCandidate {
                endpoint: EndpointId::from_index(i as u32),
                position: i as u32,
                score: s,
            })
            .collect();
        let mut rng = CycleRng::seed_from_u64(seed);
        let n = picker.pick(&cx, &mut rng, &mut scored);
        scored[..n].iter().map(|s| s.position).collect()
    }

    #[test]
    fn picks_the_maximum() {
        let p = MaxScorePicker::default();
        assert_eq!(run(&p, &[0.2, 3.5, 1.0], 1), vec![1]);
        let p = MaxScorePicker::new(PickerParams {
            max_num_of_endpoints: 2,
        });
        assert_eq!(run(&p, &[0.2, 3.5, 1.0], 1), vec![1, 2]);
        let p = MaxScorePicker::new(PickerParams {
            max_num_of_endpoints: 10,
        });
        assert_eq!(run(&p, &[0.2, 3.5, 1.0], 1), vec![1, 2, 0]);
        let p = MaxScorePicker::new(PickerParams {
            max_num_of_endpoints: -3,
        });
        assert_eq!(run(&p, &[0.2, 3.5, 1.0], 1).len(), 1, "≤ 0 means 1");
    }

    #[test]
    fn ties_are_broken_uniformly() {
        let p = MaxScorePicker::default();
        let mut counts = [0u32; 4];
        for seed in 0..4000 {
            counts[run(&p, &[1.0, 2.0, 2.0, 2.0], seed)[0] as usize] += 1;
        }
        assert_eq!(counts[0], 0);
        for &c in &counts[1..] {
            assert!((1150..1520).contains(&c), "{counts:?}");
        }
        let p2 = MaxScorePicker::new(PickerParams {
            max_num_of_endpoints: 2,
        });
        let mut firsts = [0u32; 3];
        for seed in 0..3000 {
            firsts[run(&p2, &[5.0, 5.0, 5.0], seed)[0] as usize] += 1;
        }
        for &c in &firsts {
            assert!((850..1150).contains(&c), "{firsts:?}");
        }
    }
}

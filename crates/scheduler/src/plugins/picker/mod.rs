//! Pickers: choose the destination (and fallbacks) among scored candidates.
//!
//! | type | rule |
//! |---|---|
//! | [`max-score-picker`](max_score_picker) | highest total, ties broken uniformly at random |
//! | [`random-picker`](random_picker) | uniform, scores ignored |
//! | [`weighted-random-picker`](weighted_random_picker) | probability ∝ score (A-Res) |
//!
//! All take `maxNumOfEndpoints` (default 1; values ≤ 0 mean 1): picks beyond the first become
//! the gateway's fallback endpoints.

pub mod max_score_picker;
pub mod random_picker;
pub mod weighted_random_picker;

use crate::registry::PluginParams;
use serde::{Deserialize, Serialize};

/// The parameter every picker takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PickerParams {
    /// How many endpoints to pick (primary + fallbacks). Default 1; values ≤ 0 mean 1.
    #[serde(default = "one")]
    pub max_num_of_endpoints: i64,
}

const fn one() -> i64 {
    1
}

impl Default for PickerParams {
    fn default() -> Self {
        PickerParams {
            max_num_of_endpoints: 1,
        }
    }
}

impl PickerParams {
    /// The effective number of picks.
    pub fn picks(&self) -> usize {
        usize::try_from(self.max_num_of_endpoints)
            .unwrap_or(1)
            .max(1)
    }
}

impl PluginParams for PickerParams {}

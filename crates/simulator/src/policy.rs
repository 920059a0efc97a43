//! Policies to compare: any `EndpointPickerConfig`, plus named baselines.
//!
//! | name | what |
//! |---|---|
//! | `round-robin` | endpoints in turn (the `round-robin-picker` this crate registers) |
//! | `random` | `random-picker` |
//! | `least-queue` | `queue-scorer` + `max-score-picker` |
//! | `load-aware` | `queue-scorer` + `kv-cache-utilization-scorer` (llm-d's "load-only") |
//! | `reference-default` | the reference picker's default profile: queue 2, kv-cache 2, prefix 3 |
//! | `pointsman` | pointsman's recommended profile (see [`RECOMMENDED`]) |

use pointsman::cycle::{CycleContext, ScoredCandidate};
use pointsman::plugin::{Picker, Plugin};
use pointsman::random::CycleRng;
use pointsman::registry::{NoParams, Registry};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A policy: a name and its configuration (`None` = the reference default).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Display name.
    pub name: String,
    /// EndpointPickerConfig YAML; `None` for the reference default.
    pub config: Option<String>,
}

const HEADER: &str =
    "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n";

/// pointsman's recommended profile: the reference default plus LoRA affinity and the picker's
/// own in-flight token load, which sees the work sent since the last scrape. With vLLM's chunked
/// prefill, waiting queues stay near zero while long prefills pile up on a prefix holder; the
/// in-flight term spreads them. Chosen on this simulator: on the Mooncake conversation trace it
/// lifts SLO attainment from 72.6% (reference default) to 95.9% and matches the reference on
/// the shared-prefix default workload.
pub const RECOMMENDED: &str = "plugins:
- type: prefix-cache-scorer
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: lora-affinity-scorer
- type: token-load-scorer
  parameters: {queueThresholdTokens: 200000}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: lora-affinity-scorer, weight: 1}
  - {pluginRef: token-load-scorer, weight: 2}
";

impl Policy {
    /// A policy from YAML text.
    pub fn from_yaml(name: &str, yaml: &str) -> Self {
        Policy {
            name: name.to_string(),
            config: Some(yaml.to_string()),
        }
    }

    /// A baseline by name (see the [module docs](self)).
    pub fn baseline(name: &str) -> Option<Self> {
        let body = match name {
            "round-robin" => "plugins:\n- type: round-robin-picker\n",
            "random" => "plugins:\n- type: random-picker\n",
            "least-queue" => "plugins:\n- type: queue-scorer\n- type: max-score-picker\n",
            "load-aware" => "plugins:\n- type: queue-scorer\n- type: kv-cache-utilization-scorer\n",
            "reference-default" => {
                return Some(Policy {
                    name: name.to_string(),
                    config: None,
                });
            }
            "pointsman" => RECOMMENDED,
            _ => return None,
        };
        Some(Policy::from_yaml(name, &format!("{HEADER}{body}")))
    }

    /// Every baseline, in the order of the comparison table.
    pub fn baselines() -> Vec<Self> {
        [
            "round-robin",
            "random",
            "least-queue",
            "load-aware",
            "reference-default",
            "pointsman",
        ]
        .iter()
        .filter_map(|n| Self::baseline(n))
        .collect()
    }
}

/// The registry policies are built with: the built-ins plus `round-robin-picker`.
pub fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    // The name is not a built-in one, so registration cannot fail.
    let _ = r.register(
        ROUND_ROBIN,
        |_: NoParams, _| Ok(RoundRobinPicker::default()),
    );
    r
}

/// Type name of [`RoundRobinPicker`].
pub const ROUND_ROBIN: &str = "round-robin-picker";

/// `round-robin-picker`: candidates in turn, ignoring scores.
#[derive(Debug, Default)]
pub struct RoundRobinPicker {
    next: AtomicUsize,
}

impl Picker for RoundRobinPicker {
    fn pick(
        &self,
        _cx: &CycleContext<'_>,
        _rng: &mut CycleRng,
        scored: &mut [ScoredCandidate],
    ) -> usize {
        if scored.is_empty() {
            return 0;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % scored.len();
        scored.swap(0, i);
        1
    }
}

impl Plugin for RoundRobinPicker {
    fn type_name(&self) -> &str {
        ROUND_ROBIN
    }
    fn as_picker(&self) -> Option<&dyn Picker> {
        Some(self)
    }
}

//! **pointsman-sim**: a discrete-event simulator of a fleet of vLLM-like model servers in which
//! the real pointsman core makes every routing decision. It replays traces or generated
//! workloads against the fleet under several policies and compares them.
//!
//! - [`server`]: one server — continuous batching, chunked prefill, a prefix-cached KV cache
//!   ([`kv`]), LoRA slots, a step-time model calibrated to Llama-3.1-8B on one H100.
//! - [`workload`]: shared-prefix generators (`inference-perf`'s knobs), multi-turn chat, LoRA
//!   mixes, Poisson or constant arrivals; Mooncake and Azure trace readers.
//! - [`sim`]: the event loop, with metrics scraped into the scheduler's pool every 50 ms.
//! - [`policy`]: policies as `EndpointPickerConfig` YAML, plus named baselines.
//! - [`report`]: statistics, the comparison table, JSON and SVG.
//!
//! ```
//! use pointsman_sim::{compare, policy::Policy, sim::SimConfig, workload::SharedPrefix};
//!
//! let workload = SharedPrefix { requests: 200, ..SharedPrefix::default() }.generate(16, 1).unwrap();
//! let policies = [Policy::baseline("round-robin").unwrap(), Policy::baseline("reference-default").unwrap()];
//! let results = compare(&workload, &policies, &SimConfig::default()).unwrap();
//! assert_eq!(results.len(), 2);
//! assert!(results[1].prefix_hit_rate >= results[0].prefix_hit_rate);
//! ```

pub mod kv;
pub mod policy;
pub mod report;
pub mod server;
pub mod sim;
pub mod workload;

use policy::Policy;
use report::PolicyResult;
use sim::{SimConfig, SimError};
use workload::RequestSpec;

/// Runs `requests` under every policy (in parallel threads; each run is deterministic) and
/// returns the results in the order of `policies`.
///
/// # Errors
/// The first policy's [`SimError`].
pub fn compare(
    requests: &[RequestSpec],
    policies: &[Policy],
    cfg: &SimConfig,
) -> Result<Vec<PolicyResult>, SimError> {
    type Slot = Option<Result<PolicyResult, SimError>>;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = policies.len().div_ceil(threads).max(1);
    let mut results: Vec<Slot> = (0..policies.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        for (slots, chunk) in results.chunks_mut(per).zip(policies.chunks(per)) {
            scope.spawn(move || {
                for (slot, policy) in slots.iter_mut().zip(chunk) {
                    *slot = Some(sim::run(policy, requests, cfg));
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Err(SimError::Invalid("a policy run did not complete".into())))
        })
        .collect()
}

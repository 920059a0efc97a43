//! Filters: narrow the candidates before scoring.
//!
//! | type | keeps |
//! |---|---|
//! | [`prefix-cache-affinity-filter`](prefix_cache_affinity_filter) | endpoints with prefix score ≥ threshold (unless none, or exploring) |
//! | [`decision-tree-filter`](decision_tree_filter) | the result of a tree of filters (legacy, v0.5) |
//! | [`low-queue-filter`](low_queue_filter) | `q ≤ threshold` (legacy) |
//! | [`least-queue-filter`](least_queue_filter) | `q ≤ min + (max − min) / N` (legacy) |
//! | [`least-kv-cache-filter`](least_kv_cache_filter) | `kv ≤ min + (max − min) / N` (legacy) |
//! | [`lora-affinity-filter`](lora_affinity_filter) | endpoints with the adapter, or with room for it (legacy) |
//!
//! The saturation detectors (`utilization-detector`, `concurrency-detector`) are filters too.
//!
//! The legacy filters and the tree reproduce the reference's v0.3–v0.5 scheduler. Its default
//! tree, with a `random-picker`, is:
//!
//! ```yaml
//! apiVersion: inference.networking.x-k8s.io/v1alpha1
//! kind: EndpointPickerConfig
//! plugins:
//! - type: low-queue-filter
//! - type: lora-affinity-filter
//! - type: least-queue-filter
//! - type: least-kv-cache-filter
//! - name: tree
//!   type: decision-tree-filter
//!   parameters:
//!     current: {pluginRef: low-queue-filter}
//!     nextOnSuccess:
//!       decisionTree:
//!         current: {pluginRef: lora-affinity-filter}
//!         nextOnSuccessOrFailure:
//!           decisionTree:
//!             current: {pluginRef: least-queue-filter}
//!             nextOnSuccessOrFailure: {decisionTree: {current: {pluginRef: least-kv-cache-filter}}}
//!     nextOnFailure:
//!       decisionTree:
//!         current: {pluginRef: least-queue-filter}
//!         nextOnSuccessOrFailure:
//!           decisionTree:
//!             current: {pluginRef: lora-affinity-filter}
//!             nextOnSuccessOrFailure: {decisionTree: {current: {pluginRef: least-kv-cache-filter}}}
//! - type: random-picker
//! schedulingProfiles:
//! - name: default
//!   plugins: [{pluginRef: tree}, {pluginRef: random-picker}]
//! ```

pub mod decision_tree_filter;
pub mod least_kv_cache_filter;
pub mod least_queue_filter;
pub mod lora_affinity_filter;
pub mod low_queue_filter;
pub mod prefix_cache_affinity_filter;

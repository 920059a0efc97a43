//! Saturation detectors: how loaded the candidates are, for admission; each is also a filter.
//!
//! | type | saturation | as a filter |
//! |---|---|---|
//! | [`utilization-detector`](utilization_detector) | mean of `max(q/Q, kv/K)`, stale = 1 | keeps fresh endpoints under the limits; fails open |
//! | [`concurrency-detector`](concurrency_detector) | in-flight / capacity | keeps endpoints under the limit; does not fail open |

pub mod concurrency_detector;
pub mod utilization_detector;

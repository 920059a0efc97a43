//! The extension points: every kind of plugin the scheduling cycle calls, and when.
//!
//! A plugin is one value implementing [`Plugin`]; it takes part in the cycle through the roles
//! it exposes (`as_filter`, `as_scorer`, …), so one instance can be several things at once, as
//! `utilization-detector` is both a [`Filter`] and a [`SaturationDetector`]. The cycle, in order
//! (see [`crate::cycle`] for the runner):
//!
//! 1. **Candidates**: the pool snapshot's endpoints, narrowed by the gateway's subset hint.
//! 2. **PrepareData**: every [`DataProducer`] writes per-candidate data (prefix matches, in-flight
//!    load) into [`CycleData`], in dependency order.
//! 3. **Admission**: a sheddable request (priority < 0) is refused with 429 when the
//!    [`SaturationDetector`] reports saturation ≥ 1.0.
//! 4. **Staleness guard**: endpoints whose metrics are older than the scheduler's bound drop
//!    out, unless every candidate is stale (see
//!    [`SchedulerBuilder::metrics_staleness`](crate::SchedulerBuilder::metrics_staleness)).
//! 5. **Profiles**: the [`ProfileHandler`] chooses profiles to run, repeatedly, until it chooses
//!    none. Each profile runs its [`Filter`]s in order (stopping at the first empty result), then
//!    its [`Scorer`]s (each score clamped to `[0, 1]`, multiplied by its weight and summed — no
//!    division by the sum of weights, as in the reference), then its [`Picker`].
//! 6. **ProcessResults**: the handler names the primary profile, whose picks are the destination.
//! 7. **PreRequest**: every [`RequestHooks`] plugin sees the result (the prefix index records the
//!    prompt's blocks on the chosen endpoint; in-flight counters go up).
//! 8. Later, the caller reports [`RequestHooks::on_response_start`] and
//!    [`RequestHooks::on_complete`] through the scheduler, so counters go down.
//!
//! # Be careful
//! Hooks run on the caller's thread, inside `schedule`; plugins hold no lock across calls and
//! must not call back into the scheduler.

use crate::cycle::{CandidateList, Candidates, CycleContext, CycleData, ScoredCandidate};
use crate::decision::{Decision, ScheduleResult};
use crate::random::CycleRng;
use std::fmt::Debug;
use std::sync::Arc;

/// A plugin instance: a type name plus the roles it plays.
///
/// Only [`type_name`](Plugin::type_name) is required; each `as_*` method defaults to `None`.
///
/// ```
/// use pointsman::plugin::{Plugin, Scorer, ScorerCategory};
/// use pointsman::cycle::{Candidates, CycleContext};
///
/// /// Prefers endpoints with fewer running requests, in a crude way.
/// #[derive(Debug)]
/// struct FewRunning;
///
/// impl Scorer for FewRunning {
///     fn category(&self) -> ScorerCategory { ScorerCategory::Distribution }
///     fn score(&self, _cx: &CycleContext<'_>, candidates: Candidates<'_>, out: &mut [f64]) {
///         for (slot, e) in out.iter_mut().zip(candidates.iter()) {
///             *slot = 1.0 / (1.0 + e.metrics().running_requests_size as f64);
///         }
///     }
/// }
///
/// impl Plugin for FewRunning {
///     fn type_name(&self) -> &str { "few-running-scorer" }
///     fn as_scorer(&self) -> Option<&dyn Scorer> { Some(self) }
/// }
/// ```
pub trait Plugin: std::any::Any + Send + Sync + Debug {
    /// The registered type name, e.g. `queue-scorer`.
    fn type_name(&self) -> &str;

    /// This plugin as a filter.
    fn as_filter(&self) -> Option<&dyn Filter> {
        None
    }
    /// This plugin as a scorer.
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        None
    }
    /// This plugin as a picker.
    fn as_picker(&self) -> Option<&dyn Picker> {
        None
    }
    /// This plugin as a profile handler.
    fn as_profile_handler(&self) -> Option<&dyn ProfileHandler> {
        None
    }
    /// This plugin as a data producer.
    fn as_data_producer(&self) -> Option<&dyn DataProducer> {
        None
    }
    /// This plugin as request-lifecycle hooks.
    fn as_request_hooks(&self) -> Option<&dyn RequestHooks> {
        None
    }
    /// This plugin as a saturation detector.
    fn as_saturation_detector(&self) -> Option<&dyn SaturationDetector> {
        None
    }
    /// The per-request data this plugin reads; the loader creates a default producer for any key
    /// nobody produces.
    fn consumes(&self) -> &[DataKey] {
        &[]
    }
    /// Called when the pool's membership changed: drop per-endpoint state of endpoints that are
    /// no longer in `pool` (by [`EndpointUid`](crate::EndpointUid)).
    fn retain_endpoints(&self, _pool: &crate::PoolSnapshot) {}
}

impl dyn Plugin {
    /// This plugin as its concrete type, e.g. to inspect an
    /// [`ApproxPrefixCacheProducer`](crate::plugins::producer::approx_prefix_cache_producer::ApproxPrefixCacheProducer)'s
    /// index.
    pub fn downcast_ref<T: Plugin>(&self) -> Option<&T> {
        (self as &dyn std::any::Any).downcast_ref::<T>()
    }
}

impl<P: Plugin + ?Sized> Plugin for Arc<P> {
    fn type_name(&self) -> &str {
        (**self).type_name()
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        (**self).as_filter()
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        (**self).as_scorer()
    }
    fn as_picker(&self) -> Option<&dyn Picker> {
        (**self).as_picker()
    }
    fn as_profile_handler(&self) -> Option<&dyn ProfileHandler> {
        (**self).as_profile_handler()
    }
    fn as_data_producer(&self) -> Option<&dyn DataProducer> {
        (**self).as_data_producer()
    }
    fn as_request_hooks(&self) -> Option<&dyn RequestHooks> {
        (**self).as_request_hooks()
    }
    fn as_saturation_detector(&self) -> Option<&dyn SaturationDetector> {
        (**self).as_saturation_detector()
    }
    fn consumes(&self) -> &[DataKey] {
        (**self).consumes()
    }
    fn retain_endpoints(&self, pool: &crate::PoolSnapshot) {
        (**self).retain_endpoints(pool)
    }
}

/// Per-request data passed from producers to consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DataKey {
    /// Prefix-cache matches per candidate; default producer `approx-prefix-cache-producer`.
    PrefixCacheMatchInfo,
    /// In-flight requests and tokens per candidate; default producer `inflight-load-producer`.
    InFlightLoad,
}

impl DataKey {
    /// The registered type of the producer the loader creates when nothing produces this key.
    pub const fn default_producer(self) -> &'static str {
        match self {
            DataKey::PrefixCacheMatchInfo => "approx-prefix-cache-producer",
            DataKey::InFlightLoad => "inflight-load-producer",
        }
    }
}

/// Narrows the candidate list.
///
/// Called once per profile run, in the profile's order, on the previous filter's output. A
/// filter can only remove candidates ([`CandidateList`] has no way to add one). If it removes
/// all of them, the profile fails and no later filter runs.
pub trait Filter: Send + Sync {
    /// Removes unsuitable candidates from `candidates`.
    fn filter(&self, cx: &CycleContext<'_>, rng: &mut CycleRng, candidates: &mut CandidateList<'_>);
}

/// What a scorer's signal is about; informational, as in the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScorerCategory {
    /// Prefers endpoints that already hold something useful (prefix cache, LoRA adapter).
    Affinity,
    /// Spreads load.
    Distribution,
    /// Balances the two.
    Balance,
}

/// Rates each candidate in `[0, 1]`, higher is better.
///
/// `out[i]` is the score of `candidates.get(i)`; `out` arrives zeroed, and a candidate left at 0
/// simply gets no credit. The cycle clamps scores into `[0, 1]` (NaN counts as 0), multiplies by
/// the scorer's weight and adds them up.
///
/// # Be careful
/// Scores must not depend on the order of candidates, or decisions change when discovery
/// reorders endpoints. Normalise against the candidate set (min–max), not against the pool.
pub trait Scorer: Send + Sync {
    /// The scorer's category.
    fn category(&self) -> ScorerCategory;
    /// Writes one score per candidate into `out`.
    fn score(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>, out: &mut [f64]);
}

/// Chooses among scored candidates.
///
/// The picker reorders `scored` so that its picks come first, in preference order, and returns
/// how many it picked (at least 1 when `scored` is not empty). The first pick is the primary
/// destination; the others are fallbacks.
pub trait Picker: Send + Sync {
    /// Reorders `scored` and returns the number of picks.
    fn pick(
        &self,
        cx: &CycleContext<'_>,
        rng: &mut CycleRng,
        scored: &mut [ScoredCandidate],
    ) -> usize;
}

/// The outcome of one profile run, as the profile handler sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileOutcome {
    /// Not run (yet).
    NotRun,
    /// Ran and failed.
    Failed(crate::SchedulingError),
    /// Ran and picked endpoints.
    Picked(crate::decision::ProfileResult),
}

/// Decides which profiles run and which result is primary.
///
/// The cycle calls [`pick_profiles`](ProfileHandler::pick_profiles) in a loop, running what it
/// returns, until it returns nothing; then [`process_results`](ProfileHandler::process_results).
/// At most one profile handler exists per scheduler.
pub trait ProfileHandler: Send + Sync {
    /// Pushes into `out` the indices (into `profiles`) of profiles to run next; nothing means done.
    fn pick_profiles(
        &self,
        cx: &CycleContext<'_>,
        profiles: &[Arc<str>],
        outcomes: &[ProfileOutcome],
        out: &mut Vec<usize>,
    );

    /// Returns the index of the primary profile.
    ///
    /// # Errors
    /// A [`SchedulingError`](crate::SchedulingError) when the results cannot serve the request.
    fn process_results(
        &self,
        cx: &CycleContext<'_>,
        profiles: &[Arc<str>],
        outcomes: &[ProfileOutcome],
    ) -> Result<usize, crate::SchedulingError>;
}

/// Writes per-candidate data for consumers, before admission and scheduling.
///
/// Called once per request, in an order where producers of a key run before its consumers.
pub trait DataProducer: Send + Sync {
    /// The keys this producer writes.
    fn produces(&self) -> &[DataKey];
    /// Writes data for `candidates` into `data`.
    fn prepare(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>, data: &mut CycleData);
}

/// Request-lifecycle hooks: after scheduling, when the response starts, when it ends.
///
/// # Be careful
/// [`on_complete`](RequestHooks::on_complete) may be called for a request whose response never
/// started (error, client disconnect) and must tolerate being called once per decision only;
/// the scheduler guarantees it calls it at most once per [`Decision`] it is given.
pub trait RequestHooks: Send + Sync {
    /// After a successful schedule, before the gateway is answered.
    fn pre_request(&self, _cx: &CycleContext<'_>, _result: &ScheduleResult) {}
    /// The first response bytes arrived.
    fn on_response_start(&self, _decision: &Decision) {}
    /// The response ended (completed, failed or abandoned).
    fn on_complete(&self, _decision: &Decision) {}
}

/// Says how saturated the candidates are; at 1.0 or more, sheddable requests are refused.
pub trait SaturationDetector: Send + Sync {
    /// The saturation of `candidates` (any non-negative value; 1.0 means saturated).
    fn saturation(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>) -> f64;
}

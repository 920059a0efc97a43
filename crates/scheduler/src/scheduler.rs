//! The [`Scheduler`]: one configured set of profiles over one [`Pool`], making decisions.

use crate::config::{EndpointPickerConfig, ResolvedConfig, resolve};
use crate::cycle::{
    Candidates, CycleContext, CycleData, NamedPlugin, Profile, RunOptions, Scratch, run_profile,
};
use crate::decision::{Decision, ProfileRun, ScheduleResult};
use crate::error::{ConfigError, SchedulingError};
use crate::plugin::ProfileOutcome;
use crate::plugins::producer::inflight_load_producer::estimate_tokens;
use crate::pool::Pool;
use crate::random::{CycleRng, RandomSource, SeededRandom};
use crate::registry::Registry;
use crate::request::Request;
use crate::time::{Clock, SystemClock};
use smallvec::SmallVec;
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The default bound on metrics age beyond which an endpoint cannot win while a fresher one
/// exists: 2 s, the reference's `--metrics-staleness-threshold` (40 missed scrapes at 50 ms).
pub const DEFAULT_METRICS_STALENESS: Duration = Duration::from_secs(2);

/// Per-call options for [`Scheduler::schedule_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ScheduleOptions {
    /// Record every candidate's total score in each [`ProfileResult`](crate::ProfileResult)
    /// (allocates; for inspection and research, not the hot path).
    pub record_scores: bool,
}

/// Builds a [`Scheduler`].
#[derive(Debug)]
pub struct SchedulerBuilder {
    registry: Option<Registry>,
    pool: Option<Arc<Pool>>,
    clock: Arc<dyn Clock>,
    random: Option<Arc<dyn RandomSource>>,
    staleness: Option<Duration>,
}

impl Default for SchedulerBuilder {
    fn default() -> Self {
        SchedulerBuilder {
            registry: None,
            pool: None,
            clock: Arc::new(SystemClock),
            random: None,
            staleness: Some(DEFAULT_METRICS_STALENESS),
        }
    }
}

impl SchedulerBuilder {
    /// Uses `registry` (default: [`Registry::with_builtins`]).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Schedules over `pool` (default: a new empty pool).
    pub fn pool(mut self, pool: Arc<Pool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Reads the time from `clock` (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Draws cycle seeds from `random` (default: [`SeededRandom::from_entropy`]).
    pub fn random(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = Some(random);
        self
    }

    /// Shorthand for `random(Arc::new(SeededRandom::new(seed)))`: reproducible decisions.
    pub fn seed(self, seed: u64) -> Self {
        self.random(Arc::new(SeededRandom::new(seed)))
    }

    /// Endpoints whose metrics are older than `threshold` (or were never scraped) drop out of
    /// the candidates while at least one candidate is fresher; `None` turns the guard off.
    /// Default [`DEFAULT_METRICS_STALENESS`].
    pub fn metrics_staleness(mut self, threshold: Option<Duration>) -> Self {
        self.staleness = threshold;
        self
    }

    /// Resolves `config` and builds the scheduler.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every problem in `config`.
    pub fn build(mut self, config: &EndpointPickerConfig) -> Result<Scheduler, ConfigError> {
        let registry = self.registry.take().unwrap_or_else(Registry::with_builtins);
        let resolved = resolve(config, &registry)?;
        Ok(self.build_resolved(resolved))
    }

    /// Builds the scheduler from an already resolved configuration.
    pub fn build_resolved(self, resolved: ResolvedConfig) -> Scheduler {
        let plugins = resolved.plugins().to_vec();
        let producers = plugins
            .iter()
            .filter(|p| p.plugin.as_data_producer().is_some())
            .cloned()
            .collect();
        let hooks = plugins
            .iter()
            .filter(|p| p.plugin.as_request_hooks().is_some())
            .cloned()
            .collect();
        let profiles: Vec<Profile> = resolved.profiles().to_vec();
        Scheduler {
            pool: self.pool.unwrap_or_default(),
            profile_names: profiles.iter().map(|p| p.name.clone()).collect(),
            profiles,
            handler: resolved.profile_handler().clone(),
            detector: resolved.saturation_detector().clone(),
            producers,
            hooks,
            plugins,
            clock: self.clock,
            random: self
                .random
                .unwrap_or_else(|| Arc::new(SeededRandom::from_entropy())),
            staleness: self.staleness,
            seen_membership: AtomicU64::new(0),
            config: resolved,
        }
    }
}

/// Makes scheduling decisions: the reference picker's director and scheduler, as a library.
///
/// A `Scheduler` is `Send + Sync`; call [`schedule`](Self::schedule) from any number of threads.
/// Reads of the pool never block; the only lock on the decision path is the prefix index's.
///
/// ```
/// use pointsman::{Endpoint, Metrics, Request, Scheduler};
/// use pointsman::time::{ManualClock, Timestamp};
/// use std::sync::Arc;
///
/// let clock = Arc::new(ManualClock::new(Timestamp::from_nanos(1)));
/// let scheduler = Scheduler::builder().seed(7).clock(clock.clone()).build_default();
/// let pool = scheduler.pool();
/// for (name, queue) in [("a", 5), ("b", 0)] {
///     pool.upsert(Endpoint::new(name, "10.0.0.1", if name == "a" { 8000 } else { 8001 }));
///     let m = Metrics { waiting_queue_size: queue, updated_at: Some(clock.now()), ..Metrics::default() };
///     pool.update_metrics(name, m).unwrap();
/// }
/// # use pointsman::time::Clock;
/// let decision = scheduler.schedule(&Request::new("r1", "llama")).unwrap();
/// assert_eq!(decision.primary().unwrap().endpoint().name(), "b");
/// assert_eq!(decision.destination(), "10.0.0.1:8001");
/// scheduler.complete(&decision);
/// ```
#[derive(Debug)]
pub struct Scheduler {
    pool: Arc<Pool>,
    profiles: Vec<Profile>,
    profile_names: Vec<Arc<str>>,
    handler: NamedPlugin,
    detector: NamedPlugin,
    producers: Vec<NamedPlugin>,
    hooks: Vec<NamedPlugin>,
    plugins: Vec<NamedPlugin>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    staleness: Option<Duration>,
    seen_membership: AtomicU64,
    config: ResolvedConfig,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        // Re-entered from a plugin (a Python scorer scheduling inside `score`): use a fresh one.
        Err(_) => f(&mut Scratch::default()),
    })
}

impl SchedulerBuilder {
    /// Builds with the reference's default configuration (§4.3 of the reference notes).
    pub fn build_default(mut self) -> Scheduler {
        let registry = self.registry.take().unwrap_or_else(Registry::with_builtins);
        let default = EndpointPickerConfig::default_config();
        // A custom registry without the built-in types falls back to the built-ins.
        let resolved =
            resolve(&default, &registry).or_else(|_| resolve(&default, &Registry::with_builtins()));
        match resolved {
            Ok(resolved) => self.build_resolved(resolved),
            Err(e) => unreachable_default(e),
        }
    }
}

#[cold]
fn unreachable_default(e: ConfigError) -> ! {
    // The default configuration resolving is asserted by `default_config_resolves` in the tests.
    panic!("the built-in default configuration failed to resolve: {e}")
}

impl Scheduler {
    /// A builder.
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder::default()
    }

    /// A scheduler with the given YAML configuration and default everything else.
    ///
    /// # Errors
    /// A [`ConfigError`] if the YAML is malformed or invalid.
    pub fn from_yaml(yaml: &str) -> Result<Self, ConfigError> {
        Self::builder().build(&EndpointPickerConfig::from_yaml(yaml)?)
    }

    /// The pool this scheduler reads.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The resolved configuration.
    pub fn config(&self) -> &ResolvedConfig {
        &self.config
    }

    /// The profiles.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    /// Every plugin instance.
    pub fn plugins(&self) -> &[NamedPlugin] {
        &self.plugins
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Schedules `request`.
    ///
    /// # Errors
    /// A [`SchedulingError`]; [`SchedulingError::http_status`] gives the gateway's answer.
    pub fn schedule(&self, request: &Request<'_>) -> Result<Decision, SchedulingError> {
        self.schedule_with(request, ScheduleOptions::default())
    }

    /// Schedules `request` with `options`.
    ///
    /// # Errors
    /// As [`schedule`](Self::schedule).
    pub fn schedule_with(
        &self,
        request: &Request<'_>,
        options: ScheduleOptions,
    ) -> Result<Decision, SchedulingError> {
        let snapshot = self.pool.snapshot();
        if snapshot.membership_version() != self.seen_membership.load(Ordering::Relaxed) {
            self.seen_membership
                .store(snapshot.membership_version(), Ordering::Relaxed);
            for p in &self.plugins {
                p.plugin.retain_endpoints(&snapshot);
            }
        }
        let now = self.clock.now();
        let mut rng = CycleRng::seed_from_u64(self.random.next_seed());
        let states = snapshot.endpoints();
        static NO_DATA: CycleData = CycleData::empty();

        with_scratch(|s| {
            let Scratch {
                candidates,
                profile: buffers,
                data,
                to_run,
            } = s;
            data.clear();

            // 1. Candidates, narrowed by the gateway's subset hint.
            candidates.clear();
            match request.subset_hint {
                None => candidates.extend(0..states.len() as u32),
                Some(hint) => {
                    // Parse each hint entry once, not once per endpoint.
                    let hosts: SmallVec<[&str; 16]> = hint.iter().map(|h| hint_host(h)).collect();
                    candidates.extend(
                        states
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| hosts.contains(&s.endpoint().address()))
                            .map(|(i, _)| i as u32),
                    );
                }
            }
            if candidates.is_empty() {
                return Err(SchedulingError::NoCandidates);
            }
            let bare = CycleContext {
                request,
                pool: &snapshot,
                now,
                data: &NO_DATA,
            };

            // 2. PrepareData, over every candidate (the reference runs it after admission; running
            // it first lets a detector such as `concurrency-detector` see in-flight counts).
            for p in &self.producers {
                if let Some(producer) = p.plugin.as_data_producer() {
                    producer.prepare(&bare, Candidates::new(states, candidates), data);
                }
            }

            // 3. Admission: sheddable requests on a saturated pool are refused.
            if request.is_sheddable() {
                if let Some(detector) = self.detector.plugin.as_saturation_detector() {
                    let cx = CycleContext { data, ..bare };
                    let saturation = detector.saturation(&cx, Candidates::new(states, candidates));
                    if saturation >= 1.0 {
                        return Err(SchedulingError::Saturated { saturation });
                    }
                }
            }

            // 4. Staleness guard (reference issue #1497): stale endpoints never win on stale numbers
            // while a fresh endpoint exists.
            if let Some(threshold) = self.staleness {
                let fresh = candidates
                    .iter()
                    .filter(|&&p| !states[p as usize].metrics().is_stale(now, threshold))
                    .count();
                if fresh > 0 && fresh < candidates.len() {
                    candidates.retain(|&p| !states[p as usize].metrics().is_stale(now, threshold));
                }
            }

            // 5. Profiles.
            let cx = CycleContext {
                request,
                pool: &snapshot,
                now,
                data,
            };
            let handler = self.handler.plugin.as_profile_handler().ok_or_else(|| {
                SchedulingError::Internal {
                    reason: format!("plugin {:?} is not a profile handler", self.handler.name),
                }
            })?;
            let mut outcomes: SmallVec<[ProfileOutcome; 2]> = (0..self.profiles.len())
                .map(|_| ProfileOutcome::NotRun)
                .collect();
            let mut ran_any = false;
            for _round in 0..=self.profiles.len() {
                to_run.clear();
                handler.pick_profiles(&cx, &self.profile_names, &outcomes, to_run);
                if to_run.is_empty() {
                    break;
                }
                for &i in to_run.iter() {
                    let Some(profile) = self.profiles.get(i) else {
                        continue;
                    };
                    ran_any = true;
                    outcomes[i] = match run_profile(
                        profile,
                        &cx,
                        &mut rng,
                        candidates,
                        buffers,
                        RunOptions {
                            record_scores: options.record_scores,
                        },
                    ) {
                        Ok(r) => ProfileOutcome::Picked(r),
                        Err(e) => ProfileOutcome::Failed(e),
                    };
                }
            }
            if !ran_any {
                return Err(SchedulingError::Internal {
                    reason: format!(
                        "failed to run any scheduler profile for request {}",
                        request.id
                    ),
                });
            }

            // 6. ProcessResults.
            let primary_profile = handler.process_results(&cx, &self.profile_names, &outcomes)?;
            let mut profiles = SmallVec::new();
            let mut primary = None;
            for (i, outcome) in outcomes.into_iter().enumerate() {
                if let ProfileOutcome::Picked(result) = outcome {
                    if i == primary_profile {
                        primary = Some(profiles.len());
                    }
                    profiles.push(ProfileRun {
                        name: self.profile_names[i].clone(),
                        result,
                    });
                }
            }
            let Some(primary) = primary else {
                return Err(SchedulingError::ProfileFailed {
                    reason: format!(
                        "primary profile {:?} has no result",
                        self.profile_names
                            .get(primary_profile)
                            .map(|n| &**n)
                            .unwrap_or("?")
                    ),
                });
            };
            let result = ScheduleResult {
                profiles,
                primary,
                token_estimate: estimate_tokens(request),
            };

            // 7. PreRequest.
            for h in &self.hooks {
                if let Some(hooks) = h.plugin.as_request_hooks() {
                    hooks.pre_request(&cx, &result);
                }
            }
            Ok(Decision::new(Arc::clone(&snapshot), result))
        })
    }

    /// Reports that the response to `decision` started (releases prefill-side state).
    /// Idempotent.
    pub fn response_started(&self, decision: &Decision) {
        if !decision.started.swap(true, Ordering::AcqRel) {
            for h in &self.hooks {
                if let Some(hooks) = h.plugin.as_request_hooks() {
                    hooks.on_response_start(decision);
                }
            }
        }
    }

    /// Reports that the request of `decision` ended, however it ended (releases in-flight
    /// state). Idempotent.
    pub fn complete(&self, decision: &Decision) {
        if !decision.completed.swap(true, Ordering::AcqRel) {
            for h in &self.hooks {
                if let Some(hooks) = h.plugin.as_request_hooks() {
                    hooks.on_complete(decision);
                }
            }
        }
    }

    /// Makes stateful plugins drop state of endpoints no longer in the pool now, rather than at
    /// the next decision after a membership change.
    pub fn retain_endpoints(&self) {
        let snapshot = self.pool.snapshot();
        for p in &self.plugins {
            p.plugin.retain_endpoints(&snapshot);
        }
    }
}

/// The host part of a subset-hint entry (`ip`, `ip:port`, `[v6]:port` or bare `v6`).
fn hint_host(entry: &str) -> &str {
    let entry = entry.trim();
    if entry.parse::<SocketAddr>().is_ok() {
        if let Some(rest) = entry.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        return entry.rsplit_once(':').map_or(entry, |(h, _)| h);
    }
    if entry.parse::<IpAddr>().is_ok() {
        return entry;
    }
    entry.rsplit_once(':').map_or(entry, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_hosts() {
        assert_eq!(hint_host("10.0.0.1:8000"), "10.0.0.1");
        assert_eq!(hint_host("10.0.0.1"), "10.0.0.1");
        assert_eq!(hint_host("[fd00::1]:80"), "fd00::1");
        assert_eq!(hint_host("fd00::1"), "fd00::1");
        assert_eq!(hint_host("host:80"), "host");
    }

    #[test]
    fn default_config_resolves() {
        let s = Scheduler::builder().build(&EndpointPickerConfig::default_config());
        assert!(s.is_ok(), "{:?}", s.err());
    }
}

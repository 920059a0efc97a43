//! `pointsman.Scheduler`: the core [`pointsman::Scheduler`] with its pool, clock and a map from
//! request id to in-flight decision.

use crate::errors::{BindingError, BindingResult};
use crate::plugins::{self, Kind};
use crate::types::{PyDecision, PyEndpoint, PyEndpointState, PyRequest, secs};
use parking_lot::Mutex;
use pointsman::registry::Registry;
use pointsman::time::{Clock, ManualClock, SystemClock, Timestamp};
use pointsman::{
    AdapterSet, ChatMessage, Decision, EndpointPickerConfig, Metrics, Prompt, Request,
    ScheduleOptions,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping, PyString, PyTuple};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a `Scheduler` and its `Decision`s share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) scheduler: pointsman::Scheduler,
    /// The manual clock, when the caller drives time.
    manual: Option<Arc<ManualClock>>,
    in_flight: Mutex<HashMap<String, Arc<Decision>>>,
    next_id: AtomicU64,
    options: ScheduleOptions,
    /// Whether Python plugins are registered (then `schedule()` hands them a `Request`).
    python_plugins: bool,
}

impl Shared {
    /// Completes `decision` and forgets it under `request_id` (if it is still the one stored
    /// there). Returns whether this call released it.
    pub(crate) fn complete_decision(&self, request_id: &str, decision: &Arc<Decision>) -> bool {
        {
            let mut map = self.in_flight.lock();
            if map
                .get(request_id)
                .is_some_and(|d| Arc::ptr_eq(d, decision))
            {
                map.remove(request_id);
            }
        }
        let released = !decision.is_completed();
        self.scheduler.complete(decision);
        released
    }

    fn now(&self) -> Timestamp {
        self.scheduler.clock().now()
    }
}

/// Metric fields to change; `None` keeps the current value.
#[derive(Debug, Default)]
struct MetricsUpdate {
    waiting: Option<u32>,
    running: Option<u32>,
    kv_cache_usage: Option<f64>,
    active_adapters: Option<Vec<String>>,
    waiting_adapters: Option<Vec<String>>,
    max_adapters: Option<u32>,
    block_size: Option<u32>,
    num_blocks: Option<u64>,
}

impl MetricsUpdate {
    const FIELDS: [&'static str; 8] = [
        "waiting",
        "running",
        "kv_cache_usage",
        "active_adapters",
        "waiting_adapters",
        "max_adapters",
        "block_size",
        "num_blocks",
    ];

    fn from_mapping(m: &Bound<'_, PyAny>) -> BindingResult<Self> {
        let m = m.cast::<PyMapping>().map_err(|_| {
            BindingError::Type("expected a mapping of metric names to values".into())
        })?;
        let mut u = MetricsUpdate::default();
        for item in m.items()?.iter() {
            let (key, value): (String, Bound<'_, PyAny>) = item.extract()?;
            if value.is_none() {
                continue;
            }
            match key.as_str() {
                "waiting" => u.waiting = Some(value.extract()?),
                "running" => u.running = Some(value.extract()?),
                "kv_cache_usage" => u.kv_cache_usage = Some(value.extract()?),
                "active_adapters" => u.active_adapters = Some(value.extract()?),
                "waiting_adapters" => u.waiting_adapters = Some(value.extract()?),
                "max_adapters" => u.max_adapters = Some(value.extract()?),
                "block_size" => u.block_size = Some(value.extract()?),
                "num_blocks" => u.num_blocks = Some(value.extract()?),
                other => {
                    return Err(BindingError::Type(format!(
                        "unknown metric {other:?}; expected one of {}",
                        Self::FIELDS.join(", ")
                    )));
                }
            }
        }
        Ok(u)
    }

    fn apply(self, mut m: Metrics, at: Timestamp) -> BindingResult<Metrics> {
        if let Some(kv) = self.kv_cache_usage {
            if !(0.0..=1.0).contains(&kv) {
                return Err(BindingError::Value(format!(
                    "kv_cache_usage: expected a fraction in [0, 1], got {kv}"
                )));
            }
            m.kv_cache_usage = kv;
        }
        let adapters = |v: Vec<String>| v.into_iter().collect::<AdapterSet>();
        if let Some(v) = self.waiting {
            m.waiting_queue_size = v;
        }
        if let Some(v) = self.running {
            m.running_requests_size = v;
        }
        if let Some(v) = self.active_adapters {
            m.active_adapters = adapters(v);
        }
        if let Some(v) = self.waiting_adapters {
            m.waiting_adapters = adapters(v);
        }
        if let Some(v) = self.max_adapters {
            m.max_active_adapters = v;
        }
        if let Some(v) = self.block_size {
            m.cache_block_size = v;
        }
        if let Some(v) = self.num_blocks {
            m.cache_num_blocks = v;
        }
        m.updated_at = Some(at);
        Ok(m)
    }
}

/// Seconds as a [`Timestamp`], refusing negative or non-finite values.
fn timestamp(what: &str, t: f64) -> BindingResult<Timestamp> {
    if t.is_finite() && t >= 0.0 {
        Ok(Timestamp::from_secs_f64(t))
    } else {
        Err(BindingError::Value(format!(
            "{what}: expected a finite number of seconds ≥ 0, got {t}"
        )))
    }
}

fn duration(what: &str, t: f64) -> BindingResult<Duration> {
    Duration::try_from_secs_f64(t).map_err(|_| {
        BindingError::Value(format!(
            "{what}: expected a finite number of seconds ≥ 0, got {t}"
        ))
    })
}

/// The endpoint picker: a pool of endpoints with their metrics, a configured scheduling cycle,
/// and the requests in flight.
///
/// Arguments:
///     config: EndpointPickerConfig YAML text; None for the reference's default profile.
///     seed: seeds tie-breaking and random pickers (same calls, same decisions); None: from the OS.
///     clock: 'wall' (system clock) or 'manual' (moves only with set_time/advance).
///     start_time: the manual clock's start, in seconds.
///     metrics_staleness: seconds after which an endpoint's metrics are stale and it cannot win
///         while a fresher endpoint exists; None turns the guard off.
///     record_scores: record every candidate's score in Decision.scores.
///     scorers, filters: Python plugins by type name, usable in the YAML beside the built-ins.
///
/// Raises ConfigError (with .plugin, .path, .expected) for an invalid configuration.
/// Safe to share between Python threads; the GIL is released while Rust schedules.
#[pyclass(frozen, module = "pointsman", name = "Scheduler")]
#[derive(Debug)]
pub(crate) struct PyScheduler {
    shared: Arc<Shared>,
}

#[pymethods]
impl PyScheduler {
    #[new]
    #[pyo3(signature = (
        config = None,
        *,
        seed = None,
        clock = "wall",
        start_time = 0.0,
        metrics_staleness = Some(2.0),
        record_scores = true,
        scorers = None,
        filters = None,
    ))]
    #[pyo3(
        text_signature = "(config=None, *, seed=None, clock='wall', start_time=0.0, metrics_staleness=2.0, record_scores=True, scorers=None, filters=None)"
    )]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn new(
        config: Option<&str>,
        seed: Option<u64>,
        clock: &str,
        start_time: f64,
        metrics_staleness: Option<f64>,
        record_scores: bool,
        scorers: Option<&Bound<'_, PyDict>>,
        filters: Option<&Bound<'_, PyDict>>,
    ) -> BindingResult<Self> {
        let (clock_impl, manual): (Arc<dyn Clock>, _) = match clock {
            "wall" => (Arc::new(SystemClock), None),
            "manual" => {
                let c = Arc::new(ManualClock::new(timestamp("start_time", start_time)?));
                (c.clone(), Some(c))
            }
            other => {
                return Err(BindingError::Value(format!(
                    "clock: expected 'wall' or 'manual', got {other:?}"
                )));
            }
        };
        let staleness = metrics_staleness
            .map(|s| duration("metrics_staleness", s))
            .transpose()?;

        let mut registry = Registry::with_builtins();
        let mut python_plugins = false;
        for (kind, table) in [(Kind::Scorer, scorers), (Kind::Filter, filters)] {
            for (name, spec) in table.into_iter().flat_map(|t| t.iter()) {
                let name: String = name.extract()?;
                registry
                    .register_dynamic(&name, plugins::factory(kind, spec.unbind()))
                    .map_err(BindingError::Registry)?;
                python_plugins = true;
            }
        }

        let mut builder = pointsman::Scheduler::builder()
            .registry(registry)
            .clock(clock_impl)
            .metrics_staleness(staleness);
        if let Some(seed) = seed {
            builder = builder.seed(seed);
        }
        let scheduler = match config {
            None => builder.build_default(),
            Some(yaml) => {
                let parsed = EndpointPickerConfig::from_yaml(yaml).map_err(BindingError::Config)?;
                builder.build(&parsed).map_err(BindingError::Config)?
            }
        };
        Ok(PyScheduler {
            shared: Arc::new(Shared {
                scheduler,
                manual,
                in_flight: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                options: ScheduleOptions { record_scores },
                python_plugins,
            }),
        })
    }

    /// Chooses endpoints for one request and returns the Decision (primary endpoint first).
    ///
    /// Give at most one of prompt (text), messages (dicts with role and content, or
    /// (role, content) tuples) and token_ids. priority < 0 makes the request sheddable.
    /// request_id must not be in flight; None generates 'pointsman-<n>'. cache_salt separates
    /// prefix-cache sharing; subset limits candidates to the listed addresses.
    ///
    /// Raises SchedulingError (.status_code 429/503/500/400) or PluginError.
    #[pyo3(signature = (
        model,
        prompt = None,
        messages = None,
        token_ids = None,
        headers = None,
        priority = 0,
        request_id = None,
        *,
        cache_salt = None,
        subset = None,
    ))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn schedule(
        &self,
        py: Python<'_>,
        model: &Bound<'_, PyString>,
        prompt: Option<&Bound<'_, PyString>>,
        messages: Option<&Bound<'_, PyAny>>,
        token_ids: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        priority: i32,
        request_id: Option<&Bound<'_, PyString>>,
        cache_salt: Option<&str>,
        subset: Option<Vec<String>>,
    ) -> BindingResult<PyDecision> {
        let given = [prompt.is_some(), messages.is_some(), token_ids.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(BindingError::Value(
                "give at most one of prompt, messages and token_ids".into(),
            ));
        }
        let shared = &*self.shared;

        // Request id: the caller's, or a fresh one; never one already in flight.
        let generated;
        let id: &str = match request_id {
            Some(s) => s.to_str()?,
            None => {
                let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
                generated = format!("pointsman-{n}");
                &generated
            }
        };
        if shared.in_flight.lock().contains_key(id) {
            return Err(in_flight_already(id));
        }

        // Borrow the strings from the Python objects: nothing is copied.
        let message_strings = messages.map(chat_strings).transpose()?;
        let chat: Vec<ChatMessage<'_>> = match &message_strings {
            Some(pairs) => pairs
                .iter()
                .map(|(r, c)| Ok(ChatMessage::new(r.to_str()?, c.to_str()?)))
                .collect::<PyResult<_>>()?,
            None => Vec::new(),
        };
        let tokens: Option<Vec<u32>> = token_ids.map(|t| t.extract()).transpose()?;
        let header_pairs: Vec<(String, String)> = match headers {
            None => Vec::new(),
            Some(h) => h
                .cast::<PyMapping>()
                .map_err(|_| {
                    BindingError::Type("headers: expected a mapping of str to str".into())
                })?
                .items()?
                .extract()?,
        };
        let header_refs: Vec<(&str, &str)> = header_pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let subset_refs: Option<Vec<&str>> = subset
            .as_ref()
            .map(|s| s.iter().map(String::as_str).collect());

        let mut request = Request::new(id, model.to_str()?)
            .with_priority(priority)
            .with_headers(&header_refs);
        request.prompt = match (prompt, &message_strings, &tokens) {
            (Some(p), _, _) => Prompt::Text(p.to_str()?),
            (_, Some(_), _) => Prompt::Chat(&chat),
            (_, _, Some(t)) => Prompt::TokenIds(t),
            _ => Prompt::None,
        };
        if let Some(salt) = cache_salt {
            request = request.with_cache_salt(salt);
        }
        if let Some(s) = &subset_refs {
            request = request.with_subset_hint(s);
        }

        // Python plugins see the caller's own objects.
        let for_plugins = if shared.python_plugins {
            let none = || py.None();
            let obj = |o: Option<&Bound<'_, PyAny>>| o.map_or_else(none, |o| o.clone().unbind());
            let headers_obj = match headers {
                Some(h) => h.clone().unbind(),
                None => PyDict::new(py).into_any().unbind(),
            };
            let rid = match request_id {
                Some(r) => r.clone().into_any().unbind(),
                None => PyString::new(py, id).into_any().unbind(),
            };
            Some(Py::new(
                py,
                PyRequest {
                    request_id: rid,
                    model: model.clone().into_any().unbind(),
                    prompt: obj(prompt.map(|p| p.as_any())),
                    messages: obj(messages),
                    token_ids: obj(token_ids),
                    headers: headers_obj,
                    priority,
                },
            )?)
        } else {
            None
        };

        let previous = plugins::begin_call(for_plugins);
        let result = py.detach(|| shared.scheduler.schedule_with(&request, shared.options));
        let plugin_failure = plugins::end_call(previous);

        let decision = Arc::new(match (result, plugin_failure) {
            (Ok(d), Some(failure)) => {
                py.detach(|| shared.scheduler.complete(&d));
                return Err(failure);
            }
            (Err(_), Some(failure)) => return Err(failure),
            (Err(e), None) => return Err(BindingError::Scheduling(e)),
            (Ok(d), None) => d,
        });
        let id = id.to_string();
        {
            let mut map = shared.in_flight.lock();
            if map.contains_key(&id) {
                // Another thread scheduled the same id meanwhile: keep its decision.
                drop(map);
                py.detach(|| shared.scheduler.complete(&decision));
                return Err(in_flight_already(&id));
            }
            map.insert(id.clone(), Arc::clone(&decision));
        }
        Ok(PyDecision {
            request_id: id,
            inner: decision,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Releases the in-flight state of request `request_id` (the response ended, however it
    /// ended). Returns False if no such request is in flight.
    fn complete(&self, py: Python<'_>, request_id: &str) -> bool {
        let shared = &*self.shared;
        py.detach(|| {
            let decision = shared.in_flight.lock().remove(request_id);
            match decision {
                Some(d) => {
                    let released = !d.is_completed();
                    shared.scheduler.complete(&d);
                    released
                }
                None => false,
            }
        })
    }

    /// Reports that the response to `request_id` started streaming. Returns False if no such
    /// request is in flight.
    fn response_started(&self, py: Python<'_>, request_id: &str) -> bool {
        let decision = self.shared.in_flight.lock().get(request_id).cloned();
        match decision {
            Some(d) => {
                py.detach(|| self.shared.scheduler.response_started(&d));
                true
            }
            None => false,
        }
    }

    /// The ids of the requests scheduled and not yet completed, sorted.
    fn in_flight(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.shared.in_flight.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Replaces the pool's membership: endpoints not listed are removed, listed ones added or
    /// updated (metrics of an endpoint whose address and port are unchanged are kept).
    fn set_endpoints(&self, py: Python<'_>, endpoints: &Bound<'_, PyAny>) -> BindingResult<()> {
        let list: Vec<pointsman::Endpoint> = endpoints
            .try_iter()?
            .map(|e| endpoint_from(&e?))
            .collect::<BindingResult<_>>()?;
        py.detach(|| self.shared.scheduler.pool().set_endpoints(list));
        Ok(())
    }

    /// Adds endpoint `name`, or replaces its description (keeping its metrics if its address
    /// and port are unchanged).
    #[pyo3(signature = (name, address, port, labels = None))]
    fn upsert_endpoint(
        &self,
        name: &str,
        address: &str,
        port: u16,
        labels: Option<BTreeMap<String, String>>,
    ) {
        let e = pointsman::Endpoint::new(name, address, port);
        let e = match labels {
            Some(l) => e.with_labels(l),
            None => e,
        };
        self.shared.scheduler.pool().upsert(e);
    }

    /// Removes endpoint `name`; returns whether it was in the pool.
    fn remove_endpoint(&self, name: &str) -> bool {
        self.shared.scheduler.pool().remove(name).is_some()
    }

    /// Updates endpoint `name`'s metrics. Fields not given keep their values; the metrics are
    /// stamped `at` (seconds on the scheduler's clock; default: now).
    #[pyo3(signature = (
        name,
        *,
        waiting = None,
        running = None,
        kv_cache_usage = None,
        active_adapters = None,
        waiting_adapters = None,
        max_adapters = None,
        block_size = None,
        num_blocks = None,
        at = None,
    ))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn update_metrics(
        &self,
        name: &str,
        waiting: Option<u32>,
        running: Option<u32>,
        kv_cache_usage: Option<f64>,
        active_adapters: Option<Vec<String>>,
        waiting_adapters: Option<Vec<String>>,
        max_adapters: Option<u32>,
        block_size: Option<u32>,
        num_blocks: Option<u64>,
        at: Option<f64>,
    ) -> BindingResult<()> {
        let update = MetricsUpdate {
            waiting,
            running,
            kv_cache_usage,
            active_adapters,
            waiting_adapters,
            max_adapters,
            block_size,
            num_blocks,
        };
        self.apply_updates(vec![(name.to_string(), update)], at)
    }

    /// Updates many endpoints' metrics at once, published as one pool change:
    /// ``{"vllm-0": {"waiting": 3, "kv_cache_usage": 0.4}, ...}``. Same fields and rules as
    /// `update_metrics`.
    #[pyo3(signature = (updates, *, at = None))]
    fn update_metrics_many(
        &self,
        updates: &Bound<'_, PyAny>,
        at: Option<f64>,
    ) -> BindingResult<()> {
        let updates = updates.cast::<PyMapping>().map_err(|_| {
            BindingError::Type("updates: expected a mapping of endpoint name to metrics".into())
        })?;
        let mut list = Vec::with_capacity(updates.len().unwrap_or(0));
        for item in updates.items()?.iter() {
            let (name, fields): (String, Bound<'_, PyAny>) = item.extract()?;
            list.push((name, MetricsUpdate::from_mapping(&fields)?));
        }
        self.apply_updates(list, at)
    }

    /// Every endpoint with its current metrics, in pool order.
    fn endpoints(&self) -> Vec<PyEndpointState> {
        self.shared
            .scheduler
            .pool()
            .snapshot()
            .endpoints()
            .iter()
            .map(|s| PyEndpointState {
                inner: Arc::clone(s),
            })
            .collect()
    }

    /// Endpoint `name` with its current metrics.
    fn endpoint(&self, name: &str) -> BindingResult<PyEndpointState> {
        let snapshot = self.shared.scheduler.pool().snapshot();
        snapshot
            .by_name(name)
            .and_then(|s| plugins::arc_of(&snapshot, s))
            .map(|inner| PyEndpointState { inner })
            .ok_or_else(|| {
                BindingError::Pool(pointsman::pool::PoolError::UnknownEndpoint {
                    name: name.to_string(),
                })
            })
    }

    /// The current time in seconds on the scheduler's clock.
    fn now(&self) -> f64 {
        secs(self.shared.now())
    }

    /// Sets the manual clock to `t` seconds (not earlier than now).
    fn set_time(&self, t: f64) -> BindingResult<()> {
        let clock = self.manual_clock()?;
        let t = timestamp("t", t)?;
        if t < clock.now() {
            return Err(BindingError::Value(format!(
                "t: the clock only moves forward; it shows {} s, got {} s",
                secs(clock.now()),
                secs(t)
            )));
        }
        clock.set(t);
        Ok(())
    }

    /// Moves the manual clock forward by `dt` seconds.
    fn advance(&self, dt: f64) -> BindingResult<()> {
        let clock = self.manual_clock()?;
        clock.advance(duration("dt", dt)?);
        Ok(())
    }

    /// `'manual'` or `'wall'`.
    #[getter]
    fn clock(&self) -> &'static str {
        if self.shared.manual.is_some() {
            "manual"
        } else {
            "wall"
        }
    }

    /// The scheduling profiles' names.
    #[getter]
    fn profiles(&self) -> Vec<String> {
        self.shared
            .scheduler
            .profiles()
            .iter()
            .map(|p| p.name.to_string())
            .collect()
    }

    /// The configuration in effect, as YAML (the default configuration when none was given).
    #[getter]
    fn config_yaml(&self) -> String {
        self.shared.scheduler.config().config().to_yaml()
    }

    fn __repr__(&self) -> String {
        let shared = &*self.shared;
        let profiles: Vec<String> = self.profiles().iter().map(|p| format!("'{p}'")).collect();
        format!(
            "Scheduler(endpoints={}, profiles=[{}], clock='{}', now={:.3}, in_flight={})",
            shared.scheduler.pool().snapshot().len(),
            profiles.join(", "),
            self.clock(),
            self.now(),
            shared.in_flight.lock().len()
        )
    }
}

impl PyScheduler {
    fn manual_clock(&self) -> BindingResult<&ManualClock> {
        self.shared.manual.as_deref().ok_or_else(|| {
            BindingError::Value(
                "this scheduler reads the wall clock; create it with clock='manual' to drive time"
                    .into(),
            )
        })
    }

    fn apply_updates(
        &self,
        updates: Vec<(String, MetricsUpdate)>,
        at: Option<f64>,
    ) -> BindingResult<()> {
        let at = match at {
            Some(t) => timestamp("at", t)?,
            None => self.shared.now(),
        };
        self.shared.scheduler.pool().update(|tx| {
            // Check every name first so a failed batch changes nothing.
            if let Some((name, _)) = updates.iter().find(|(n, _)| tx.get(n).is_none()) {
                return Err(BindingError::Pool(
                    pointsman::pool::PoolError::UnknownEndpoint { name: name.clone() },
                ));
            }
            let mut merged = Vec::with_capacity(updates.len());
            for (name, update) in updates {
                let old = tx
                    .get(&name)
                    .map(|s| s.metrics().clone())
                    .unwrap_or_default();
                merged.push((name, update.apply(old, at)?));
            }
            for (name, metrics) in merged {
                tx.set_metrics(&name, metrics).map_err(BindingError::Pool)?;
            }
            Ok(())
        })
    }
}

fn in_flight_already(id: &str) -> BindingError {
    BindingError::Value(format!(
        "request id {id:?} is already in flight; complete it first or use a new id"
    ))
}

/// An endpoint from an `Endpoint` or a `(name, address, port[, labels])` tuple.
fn endpoint_from(e: &Bound<'_, PyAny>) -> BindingResult<pointsman::Endpoint> {
    if let Ok(e) = e.cast::<PyEndpoint>() {
        return Ok(e.get().inner.clone());
    }
    if let Ok(t) = e.cast::<PyTuple>() {
        if t.len() == 3 {
            let (name, address, port): (String, String, u16) = t.extract()?;
            return Ok(pointsman::Endpoint::new(name, address, port));
        }
        if t.len() == 4 {
            let (name, address, port, labels): (String, String, u16, BTreeMap<String, String>) =
                t.extract()?;
            return Ok(pointsman::Endpoint::new(name, address, port).with_labels(labels));
        }
    }
    Err(BindingError::Type(format!(
        "expected an Endpoint or a (name, address, port[, labels]) tuple, got {}",
        e.get_type().name()?
    )))
}

/// `(role, content)` string pairs from chat messages given as dicts or 2-tuples; non-string
/// content (a list of parts) becomes its JSON text.
fn chat_strings<'py>(
    messages: &Bound<'py, PyAny>,
) -> BindingResult<Vec<(Bound<'py, PyString>, Bound<'py, PyString>)>> {
    let py = messages.py();
    let mut out = Vec::new();
    let as_text = |v: Bound<'py, PyAny>| -> BindingResult<Bound<'py, PyString>> {
        match v.cast_into::<PyString>() {
            Ok(s) => Ok(s),
            Err(e) => {
                let v = e.into_inner();
                let json = py
                    .import("json")?
                    .call_method1("dumps", (v,))?
                    .cast_into::<PyString>()
                    .map_err(PyErr::from)?;
                Ok(json)
            }
        }
    };
    let bad = || {
        BindingError::Type(
            "messages: expected dicts with 'role' and 'content', or (role, content) tuples".into(),
        )
    };
    for m in messages.try_iter()? {
        let m = m?;
        let (role, content) = if let Ok(d) = m.cast::<PyDict>() {
            let role = d.get_item("role")?.ok_or_else(bad)?;
            let content = d.get_item("content")?.ok_or_else(bad)?;
            (role, content)
        } else if let Ok(t) = m.cast::<PyTuple>() {
            if t.len() != 2 {
                return Err(bad());
            }
            (t.get_item(0)?, t.get_item(1)?)
        } else {
            return Err(bad());
        };
        let role = role.cast_into::<PyString>().map_err(|_| bad())?;
        out.push((role, as_text(content)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn an_update_keeps_fields_not_given_and_stamps_the_time() {
        let old = Metrics {
            waiting_queue_size: 4,
            running_requests_size: 7,
            kv_cache_usage: 0.5,
            active_adapters: ["a"].into_iter().collect(),
            ..Metrics::default()
        };
        let update = MetricsUpdate {
            waiting: Some(1),
            ..MetricsUpdate::default()
        };
        let at = Timestamp::from_nanos(5);
        let m = update.apply(old, at).unwrap();
        assert_eq!(m.waiting_queue_size, 1);
        assert_eq!(m.running_requests_size, 7);
        assert_eq!(m.kv_cache_usage, 0.5);
        assert!(m.active_adapters.contains("a"));
        assert_eq!(m.updated_at, Some(at));
    }

    #[test]
    fn kv_cache_usage_outside_zero_one_is_refused() {
        for kv in [-0.1, 1.5, f64::NAN] {
            let update = MetricsUpdate {
                kv_cache_usage: Some(kv),
                ..MetricsUpdate::default()
            };
            assert!(
                update.apply(Metrics::default(), Timestamp::ZERO).is_err(),
                "{kv}"
            );
        }
    }

    #[test]
    fn times_must_be_finite_and_not_negative() {
        assert_eq!(timestamp("t", 1.5).unwrap().as_nanos(), 1_500_000_000);
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(timestamp("t", bad).is_err(), "{bad}");
            assert!(duration("dt", bad).is_err(), "{bad}");
        }
    }
}

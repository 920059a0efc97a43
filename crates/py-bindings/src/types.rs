//! Value classes: `Endpoint` (what discovery knows), `EndpointState` (an endpoint with its
//! metrics, as a decision saw it), `Request` (what a Python plugin sees) and `Decision`.

use crate::errors::{BindingError, BindingResult};
use crate::scheduler::Shared;
use pointsman::time::Timestamp;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Seconds on the scheduler's timeline, as Python sees them.
pub(crate) fn secs(t: Timestamp) -> f64 {
    t.as_secs_f64()
}

/// A Python repr of a string (quotes and escapes as `repr()` would, for plain text).
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A model-server endpoint to put in the pool: name, address, port and labels.
///
/// ``Endpoint("vllm-0", "10.0.0.1", 8000, labels={"zone": "a"})``
#[pyclass(frozen, module = "pointsman", name = "Endpoint")]
#[derive(Debug, Clone)]
pub(crate) struct PyEndpoint {
    pub(crate) inner: pointsman::Endpoint,
}

#[pymethods]
impl PyEndpoint {
    #[new]
    #[pyo3(signature = (name, address, port, labels = None))]
    fn new(name: &str, address: &str, port: u16, labels: Option<BTreeMap<String, String>>) -> Self {
        let e = pointsman::Endpoint::new(name, address, port);
        PyEndpoint {
            inner: match labels {
                Some(l) => e.with_labels(l),
                None => e,
            },
        }
    }

    /// The endpoint's unique name in the pool.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The IP address or host name.
    #[getter]
    fn address(&self) -> &str {
        self.inner.address()
    }

    /// The serving port.
    #[getter]
    fn port(&self) -> u16 {
        self.inner.port()
    }

    /// `address:port` (IPv6 addresses in brackets).
    #[getter]
    fn host_port(&self) -> &str {
        self.inner.host_port()
    }

    /// The labels (a new dict on each access).
    #[getter]
    fn labels(&self) -> BTreeMap<String, String> {
        self.inner.labels().clone()
    }

    fn __repr__(&self) -> String {
        endpoint_repr("Endpoint", &self.inner, None)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyEndpoint>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }
}

fn endpoint_repr(
    class: &str,
    e: &pointsman::Endpoint,
    metrics: Option<&pointsman::Metrics>,
) -> String {
    let mut s = format!(
        "{class}({}, {}, {}",
        quoted(e.name()),
        quoted(e.address()),
        e.port()
    );
    if !e.labels().is_empty() {
        s.push_str(", labels={");
        for (i, (k, v)) in e.labels().iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{}: {}", quoted(k), quoted(v));
        }
        s.push('}');
    }
    if let Some(m) = metrics {
        let _ = write!(
            s,
            ", waiting={}, running={}, kv_cache_usage={:?}",
            m.waiting_queue_size, m.running_requests_size, m.kv_cache_usage
        );
        if !m.active_adapters.is_empty() {
            let names: Vec<String> = m.active_adapters.iter().map(quoted).collect();
            let _ = write!(s, ", active_adapters=[{}]", names.join(", "));
        }
        match m.updated_at {
            Some(t) => {
                let _ = write!(s, ", updated_at={:?}", secs(t));
            }
            None => s.push_str(", updated_at=None"),
        }
    }
    s.push(')');
    s
}

/// An endpoint with its metrics, as one pool snapshot holds it. Read-only.
///
/// Returned by `Scheduler.endpoints()` and passed to Python scorers and filters.
#[pyclass(frozen, module = "pointsman", name = "EndpointState")]
#[derive(Debug, Clone)]
pub(crate) struct PyEndpointState {
    pub(crate) inner: Arc<pointsman::EndpointState>,
}

#[pymethods]
impl PyEndpointState {
    /// The endpoint's unique name in the pool.
    #[getter]
    fn name(&self) -> &str {
        self.inner.endpoint().name()
    }

    /// The IP address or host name.
    #[getter]
    fn address(&self) -> &str {
        self.inner.endpoint().address()
    }

    /// The serving port.
    #[getter]
    fn port(&self) -> u16 {
        self.inner.endpoint().port()
    }

    /// `address:port` (IPv6 addresses in brackets).
    #[getter]
    fn host_port(&self) -> &str {
        self.inner.endpoint().host_port()
    }

    /// The labels (a new dict on each access).
    #[getter]
    fn labels(&self) -> BTreeMap<String, String> {
        self.inner.endpoint().labels().clone()
    }

    /// The endpoint description alone.
    #[getter]
    fn endpoint(&self) -> PyEndpoint {
        PyEndpoint {
            inner: self.inner.endpoint().clone(),
        }
    }

    /// Requests waiting in the server's queue.
    #[getter]
    fn waiting(&self) -> u32 {
        self.inner.metrics().waiting_queue_size
    }

    /// Requests being processed.
    #[getter]
    fn running(&self) -> u32 {
        self.inner.metrics().running_requests_size
    }

    /// KV-cache usage as a fraction in `[0, 1]`.
    #[getter]
    fn kv_cache_usage(&self) -> f64 {
        self.inner.metrics().kv_cache_usage
    }

    /// LoRA adapters loaded and serving.
    #[getter]
    fn active_adapters(&self) -> Vec<&str> {
        self.inner.metrics().active_adapters.iter().collect()
    }

    /// LoRA adapters waiting for a slot.
    #[getter]
    fn waiting_adapters(&self) -> Vec<&str> {
        self.inner.metrics().waiting_adapters.iter().collect()
    }

    /// Maximum adapters loaded at once (0 when unknown).
    #[getter]
    fn max_adapters(&self) -> u32 {
        self.inner.metrics().max_active_adapters
    }

    /// KV-cache block size in tokens (0 when unknown).
    #[getter]
    fn block_size(&self) -> u32 {
        self.inner.metrics().cache_block_size
    }

    /// Number of KV-cache blocks (0 when unknown).
    #[getter]
    fn num_blocks(&self) -> u64 {
        self.inner.metrics().cache_num_blocks
    }

    /// When the metrics were last updated, in seconds on the scheduler's clock; `None` if never.
    #[getter]
    fn updated_at(&self) -> Option<f64> {
        self.inner.metrics().updated_at.map(secs)
    }

    fn __repr__(&self) -> String {
        endpoint_repr(
            "EndpointState",
            self.inner.endpoint(),
            Some(self.inner.metrics()),
        )
    }
}

/// The request as a Python plugin sees it: the arguments given to `Scheduler.schedule()`.
#[pyclass(frozen, module = "pointsman", name = "Request")]
#[derive(Debug)]
pub(crate) struct PyRequest {
    /// The request id.
    #[pyo3(get)]
    pub(crate) request_id: Py<PyAny>,
    /// The target model (or LoRA adapter).
    #[pyo3(get)]
    pub(crate) model: Py<PyAny>,
    /// The completion prompt, if given.
    #[pyo3(get)]
    pub(crate) prompt: Py<PyAny>,
    /// The chat messages, if given.
    #[pyo3(get)]
    pub(crate) messages: Py<PyAny>,
    /// The token ids, if given.
    #[pyo3(get)]
    pub(crate) token_ids: Py<PyAny>,
    /// The headers (a dict; empty when none were given).
    #[pyo3(get)]
    pub(crate) headers: Py<PyAny>,
    /// The priority; below 0 means sheddable.
    #[pyo3(get)]
    pub(crate) priority: i32,
}

#[pymethods]
impl PyRequest {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Request(request_id={}, model={}, priority={})",
            self.request_id.bind(py).repr()?,
            self.model.bind(py).repr()?,
            self.priority
        ))
    }
}

impl PyRequest {
    /// A request object built from the core's view (used when a plugin runs outside a Python
    /// `schedule()` call, which the binding does not do today; kept so a plugin never fails for
    /// lack of one).
    pub(crate) fn from_core(py: Python<'_>, r: &pointsman::Request<'_>) -> PyResult<Self> {
        let headers = PyDict::new(py);
        for (k, v) in r.headers.0 {
            headers.set_item(*k, *v)?;
        }
        let none = || py.None();
        let (prompt, messages, token_ids) = match r.prompt {
            pointsman::Prompt::Text(t) => {
                (t.into_pyobject(py)?.into_any().unbind(), none(), none())
            }
            pointsman::Prompt::Chat(ms) => {
                let list: Vec<Bound<'_, PyDict>> = ms
                    .iter()
                    .map(|m| {
                        let d = PyDict::new(py);
                        d.set_item("role", &*m.role)?;
                        d.set_item("content", &*m.content)?;
                        Ok(d)
                    })
                    .collect::<PyResult<_>>()?;
                (none(), list.into_pyobject(py)?.into_any().unbind(), none())
            }
            pointsman::Prompt::TokenIds(t) => (none(), none(), t.into_pyobject(py)?.unbind()),
            _ => (none(), none(), none()),
        };
        Ok(PyRequest {
            request_id: r.id.into_pyobject(py)?.into_any().unbind(),
            model: r.target_model.into_pyobject(py)?.into_any().unbind(),
            prompt,
            messages,
            token_ids,
            headers: headers.into_any().unbind(),
            priority: r.priority,
        })
    }
}

/// Where a request goes: the primary endpoint first, then fallbacks.
///
/// Call `complete()` (or `Scheduler.complete(request_id)`) when the simulated or real response
/// ends, so in-flight state is released.
#[pyclass(frozen, module = "pointsman", name = "Decision")]
#[derive(Debug)]
pub(crate) struct PyDecision {
    pub(crate) request_id: String,
    pub(crate) inner: Arc<pointsman::Decision>,
    pub(crate) shared: Arc<Shared>,
}

impl PyDecision {
    fn names_of<'a>(it: impl Iterator<Item = &'a pointsman::EndpointState>) -> Vec<&'a str> {
        it.map(|e| e.endpoint().name()).collect()
    }
}

#[pymethods]
impl PyDecision {
    /// The request id (given to `schedule()` or generated).
    #[getter]
    fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The primary profile's picks by endpoint name, primary first, then fallbacks.
    #[getter]
    fn endpoints(&self) -> Vec<&str> {
        Self::names_of(self.inner.endpoints())
    }

    /// The primary endpoint's name.
    #[getter]
    fn primary(&self) -> BindingResult<&str> {
        self.inner
            .primary()
            .map(|e| e.endpoint().name())
            .ok_or_else(|| BindingError::Value("the decision has no primary endpoint".into()))
    }

    /// The `x-gateway-destination-endpoint` value: `ip:port[,ip:port…]`.
    #[getter]
    fn destination(&self) -> String {
        self.inner.destination()
    }

    /// The picked endpoints with the metrics the decision saw, primary first.
    #[getter]
    fn states(&self) -> Vec<PyEndpointState> {
        let snapshot = self.inner.snapshot();
        self.inner
            .endpoints()
            .filter_map(|e| crate::plugins::arc_of(snapshot, e))
            .map(|inner| PyEndpointState { inner })
            .collect()
    }

    /// The primary profile's total score of every candidate, by endpoint name (weights applied,
    /// as the picker saw them). Empty when the scheduler was built with `record_scores=False`.
    #[getter]
    fn scores(&self) -> BTreeMap<&str, f64> {
        let snapshot = self.inner.snapshot();
        self.inner
            .result()
            .primary()
            .map(|run| {
                run.result
                    .scores
                    .iter()
                    .filter_map(|(id, s)| snapshot.get(*id).map(|e| (e.endpoint().name(), *s)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The name of the primary profile.
    #[getter]
    fn profile(&self) -> &str {
        self.inner.result().primary().map_or("", |run| &*run.name)
    }

    /// Every profile that ran and picked, by profile name → endpoint names.
    #[getter]
    fn profiles(&self) -> BTreeMap<&str, Vec<&str>> {
        self.inner
            .result()
            .profiles
            .iter()
            .map(|run| {
                (
                    &*run.name,
                    Self::names_of(self.inner.profile_endpoints(&run.name)),
                )
            })
            .collect()
    }

    /// Whether the decision has been completed.
    #[getter]
    fn completed(&self) -> bool {
        self.inner.is_completed()
    }

    /// Releases the request's in-flight state (same as `Scheduler.complete(request_id)`).
    /// Returns whether this call released it (False if it was already completed).
    fn complete(&self, py: Python<'_>) -> bool {
        py.detach(|| self.shared.complete_decision(&self.request_id, &self.inner))
    }

    /// Reports that the response started streaming (releases prefill-side state). Idempotent.
    fn response_started(&self, py: Python<'_>) {
        py.detach(|| self.shared.scheduler.response_started(&self.inner));
    }

    fn __repr__(&self) -> String {
        let names: Vec<String> = self
            .inner
            .endpoints()
            .map(|e| quoted(e.endpoint().name()))
            .collect();
        let mut s = format!(
            "Decision(request_id={}, endpoints=[{}]",
            quoted(&self.request_id),
            names.join(", ")
        );
        let scores = self.scores();
        if !scores.is_empty() {
            let mut ranked: Vec<(&str, f64)> = scores.into_iter().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let shown: Vec<String> = ranked
                .iter()
                .take(4)
                .map(|(n, v)| format!("{}: {v:.3}", quoted(n)))
                .collect();
            let more = if ranked.len() > 4 { ", …" } else { "" };
            let _ = write!(s, ", scores={{{}{more}}}", shown.join(", "));
        }
        if self.inner.is_completed() {
            s.push_str(", completed=True");
        }
        s.push(')');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reprs_quote_like_python() {
        assert_eq!(quoted("a'b\\c"), "'a\\'b\\\\c'");
        let e = pointsman::Endpoint::new("a", "fd00::1", 80).with_label("k", "v");
        assert_eq!(
            endpoint_repr("Endpoint", &e, None),
            "Endpoint('a', 'fd00::1', 80, labels={'k': 'v'})"
        );
        let m = pointsman::Metrics {
            waiting_queue_size: 2,
            ..pointsman::Metrics::default()
        };
        assert_eq!(
            endpoint_repr("EndpointState", &e, Some(&m)),
            "EndpointState('a', 'fd00::1', 80, labels={'k': 'v'}, waiting=2, running=0, kv_cache_usage=0.0, updated_at=None)"
        );
    }
}

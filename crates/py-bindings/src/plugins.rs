//! Scorers and filters written in Python, registered under a type name and used from the YAML
//! configuration beside the built-ins.
//!
//! A [`PyPlugin`] is a core [`Plugin`] whose [`Scorer::score`] (or [`Filter::filter`]) takes the
//! GIL, builds a list of `EndpointState` objects for the candidates and calls the Python
//! callable with `(request, endpoints)`:
//!
//! - a scorer returns one number per endpoint, in order (clamped into `[0, 1]` by the cycle);
//! - a filter returns one truth value per endpoint, in order: keep or drop.
//!
//! The core's traits cannot fail, so a Python exception (or a bad return value) is parked in a
//! per-thread slot; the scorer leaves its scores at 0 and the filter keeps every candidate, later
//! Python plugins of the same cycle are skipped, and `Scheduler.schedule()` releases the decision
//! and raises `PluginError` with the original exception as `__cause__`.
//!
//! # Cost
//! Per plugin call: taking the GIL back from the detached scheduling thread, one Python object per
//! candidate, one Python call, one float extraction per candidate. `bench/overhead.py` measures
//! it; the crate README gives the figures.

use crate::errors::BindingError;
use crate::types::{PyEndpointState, PyRequest};
use pointsman::cycle::{CandidateList, Candidates, CycleContext};
use pointsman::error::ParamError;
use pointsman::plugin::{Filter, Plugin, Scorer, ScorerCategory};
use pointsman::random::CycleRng;
use pointsman::registry::BuildContext;
use pointsman::{EndpointState, PoolSnapshot};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};
use std::cell::RefCell;
use std::sync::Arc;

/// Which extension point a Python plugin fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `score(request, endpoints) -> Sequence[float]`.
    Scorer,
    /// `filter(request, endpoints) -> Sequence[bool]`.
    Filter,
}

impl Kind {
    fn method(self) -> &'static str {
        match self {
            Kind::Scorer => "score",
            Kind::Filter => "filter",
        }
    }
}

/// What the current `schedule()` call on this thread shares with Python plugins.
#[derive(Default)]
struct CallState {
    /// The request object plugins receive.
    request: Option<Py<PyRequest>>,
    /// The first plugin failure of the cycle.
    error: Option<BindingError>,
}

thread_local! {
    static CALL: RefCell<CallState> = RefCell::new(CallState::default());
}

/// Installs `request` for the plugins of the cycle about to run on this thread; returns what was
/// installed before (a `schedule()` re-entered from a plugin restores it afterwards).
pub(crate) fn begin_call(
    request: Option<Py<PyRequest>>,
) -> (Option<Py<PyRequest>>, Option<BindingError>) {
    CALL.with(|c| {
        let mut c = c.borrow_mut();
        (std::mem::replace(&mut c.request, request), c.error.take())
    })
}

/// Ends the cycle: restores the previous call's state and returns this cycle's plugin failure.
pub(crate) fn end_call(
    previous: (Option<Py<PyRequest>>, Option<BindingError>),
) -> Option<BindingError> {
    CALL.with(|c| {
        let mut c = c.borrow_mut();
        c.request = previous.0;
        std::mem::replace(&mut c.error, previous.1)
    })
}

fn failed_already() -> bool {
    CALL.with(|c| c.borrow().error.is_some())
}

fn record_failure(plugin: &str, cause: PyErr) {
    CALL.with(|c| {
        let mut c = c.borrow_mut();
        if c.error.is_none() {
            c.error = Some(BindingError::Plugin {
                plugin: plugin.to_string(),
                cause,
            });
        }
    });
}

fn current_request(py: Python<'_>, cx: &CycleContext<'_>) -> PyResult<Py<PyRequest>> {
    let installed = CALL.with(|c| c.borrow().request.as_ref().map(|r| r.clone_ref(py)));
    match installed {
        Some(r) => Ok(r),
        None => Py::new(py, PyRequest::from_core(py, cx.request)?),
    }
}

/// The shared state of `state` in `snapshot` (slot order is id order, so a binary search finds
/// it), or `None` if it is not from that snapshot.
pub(crate) fn arc_of(snapshot: &PoolSnapshot, state: &EndpointState) -> Option<Arc<EndpointState>> {
    let all = snapshot.endpoints();
    let i = all.binary_search_by_key(&state.id(), |s| s.id()).ok()?;
    all.get(i).filter(|s| s.uid() == state.uid()).cloned()
}

/// A scorer or filter implemented by a Python callable.
#[derive(Debug)]
pub(crate) struct PyPlugin {
    type_name: String,
    /// `name (type)`, for error messages.
    label: String,
    kind: Kind,
    call: Py<PyAny>,
    category: ScorerCategory,
}

impl PyPlugin {
    /// Calls the Python callable on `candidates`; returns what it returned.
    fn call<'py>(
        &self,
        py: Python<'py>,
        cx: &CycleContext<'_>,
        candidates: Candidates<'_>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = current_request(py, cx)?;
        let mut states = Vec::with_capacity(candidates.len());
        for e in candidates.iter() {
            let inner = arc_of(cx.pool, e).unwrap_or_else(|| Arc::new(e.clone()));
            states.push(PyEndpointState { inner });
        }
        let endpoints = PyList::new(py, states)?;
        self.call.bind(py).call1((request, endpoints))
    }

    fn wrong_length(&self, got: usize, want: usize) -> PyErr {
        pyo3::exceptions::PyValueError::new_err(format!(
            "{}() returned {got} values for {want} endpoints; return one per endpoint, in order",
            self.kind.method()
        ))
    }
}

impl Scorer for PyPlugin {
    fn category(&self) -> ScorerCategory {
        self.category
    }

    fn score(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>, out: &mut [f64]) {
        if failed_already() {
            return;
        }
        Python::attach(|py| {
            let result = self.call(py, cx, candidates).and_then(|values| {
                let mut n = 0;
                for v in values.try_iter()? {
                    let v: f64 = v?.extract()?;
                    if let Some(slot) = out.get_mut(n) {
                        *slot = v;
                    }
                    n += 1;
                }
                if n == out.len() {
                    Ok(())
                } else {
                    out.fill(0.0);
                    Err(self.wrong_length(n, out.len()))
                }
            });
            if let Err(e) = result {
                record_failure(&self.label, e);
            }
        });
    }
}

impl Filter for PyPlugin {
    fn filter(
        &self,
        cx: &CycleContext<'_>,
        _rng: &mut CycleRng,
        candidates: &mut CandidateList<'_>,
    ) {
        if failed_already() {
            return;
        }
        let keep = Python::attach(|py| {
            let result = self
                .call(py, cx, candidates.as_candidates())
                .and_then(|values| {
                    let keep = values
                        .try_iter()?
                        .map(|v| v?.is_truthy())
                        .collect::<PyResult<Vec<bool>>>()?;
                    if keep.len() == candidates.len() {
                        Ok(keep)
                    } else {
                        Err(self.wrong_length(keep.len(), candidates.len()))
                    }
                });
            result.map_err(|e| record_failure(&self.label, e)).ok()
        });
        if let Some(keep) = keep {
            candidates.retain_indexed(|i, _| keep.get(i).copied().unwrap_or(true));
        }
    }
}

impl Plugin for PyPlugin {
    fn type_name(&self) -> &str {
        &self.type_name
    }

    fn as_scorer(&self) -> Option<&dyn Scorer> {
        (self.kind == Kind::Scorer).then_some(self as &dyn Scorer)
    }

    fn as_filter(&self) -> Option<&dyn Filter> {
        (self.kind == Kind::Filter).then_some(self as &dyn Filter)
    }
}

/// The registry factory for a Python plugin registered as `spec`:
///
/// - a class is instantiated with the YAML `parameters` as keyword arguments, and its instance's
///   `score` / `filter` method is called;
/// - an object with a `score` / `filter` method, or a plain callable, is used as it is and takes
///   no parameters.
pub(crate) fn factory(
    kind: Kind,
    spec: Py<PyAny>,
) -> impl Fn(Option<&serde_json::Value>, &BuildContext<'_>) -> Result<Arc<dyn Plugin>, ParamError>
+ Send
+ Sync
+ 'static {
    move |params, cx| {
        Python::attach(|py| build(py, kind, spec.bind(py), params, cx))
            .map(|p| Arc::new(p) as Arc<dyn Plugin>)
    }
}

fn build(
    py: Python<'_>,
    kind: Kind,
    spec: &Bound<'_, PyAny>,
    params: Option<&serde_json::Value>,
    cx: &BuildContext<'_>,
) -> Result<PyPlugin, ParamError> {
    let method = kind.method();
    let py_err = |e: PyErr| ParamError::new("", e.to_string());
    let has_params = match params {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
    };
    let (target, call) = if spec.is_instance_of::<PyType>() {
        let kwargs = match params {
            None | Some(serde_json::Value::Null) => None,
            Some(v @ serde_json::Value::Object(_)) => Some(json_to_py(py, v).map_err(py_err)?),
            Some(_) => {
                return Err(ParamError::new(
                    "",
                    "expected a mapping (passed to the class as keyword arguments)",
                ));
            }
        };
        let kwargs = kwargs
            .as_ref()
            .map(|k| k.cast::<PyDict>())
            .transpose()
            .map_err(|e| py_err(e.into()))?;
        let instance = spec.call((), kwargs).map_err(py_err)?;
        let call = instance.getattr(method).map_err(|_| {
            ParamError::new(
                "",
                format!("expected the class to define {method}(self, request, endpoints)"),
            )
        })?;
        (instance, call)
    } else {
        if has_params {
            return Err(ParamError::new(
                "",
                format!(
                    "a {method} function takes no parameters; register a class, which is called \
                     with the parameters as keyword arguments"
                ),
            ));
        }
        let call = match spec.getattr(method) {
            Ok(m) if m.is_callable() => m,
            _ if spec.is_callable() => spec.clone(),
            _ => {
                return Err(ParamError::new(
                    "",
                    format!(
                        "expected a callable {method}(request, endpoints), or a class defining it"
                    ),
                ));
            }
        };
        (spec.clone(), call)
    };
    let category = match target.getattr("category") {
        Ok(c) => match c.extract::<String>().as_deref() {
            Ok("affinity") => ScorerCategory::Affinity,
            Ok("balance") => ScorerCategory::Balance,
            Ok("distribution") => ScorerCategory::Distribution,
            _ => {
                return Err(ParamError::new(
                    "",
                    "expected `category` to be 'affinity', 'distribution' or 'balance'",
                ));
            }
        },
        Err(_) => ScorerCategory::Distribution,
    };
    Ok(PyPlugin {
        type_name: cx.type_name.to_string(),
        label: format!("{} ({})", cx.name, cx.type_name),
        kind,
        call: call.unbind(),
        category,
    })
}

/// A Python object for a JSON value, through the `json` module (build time only).
fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

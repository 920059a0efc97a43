//! `pointsman.sim`: the fleet simulator of `pointsman-sim`, from Python.
//!
//! A [`PyWorkload`] holds generated or replayed requests; `_sim_compare` runs it under several
//! policies (each an `EndpointPickerConfig` YAML text or a baseline name) with the GIL released,
//! and returns a [`PyComparison`] with the results as dictionaries, a text table, JSON and SVG.

use pointsman_sim::policy::Policy;
use pointsman_sim::report::{PolicyResult, svg_bars, table};
use pointsman_sim::sim::SimConfig;
use pointsman_sim::workload::{
    Arrivals, LoraShare, RequestSpec, SharedPrefix, read_azure, read_mooncake,
};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::path::PathBuf;
use std::sync::Arc;

/// Simulated servers' KV block size, in tokens (vLLM's default).
const BLOCK: u32 = 16;

/// A workload: requests with arrival times, token counts and shareable prefix blocks.
#[pyclass(name = "Workload", module = "pointsman._pointsman", frozen)]
#[derive(Debug, Clone)]
pub(crate) struct PyWorkload {
    requests: Arc<Vec<RequestSpec>>,
    label: String,
}

#[pymethods]
impl PyWorkload {
    /// The number of requests.
    fn __len__(&self) -> usize {
        self.requests.len()
    }

    /// A description of the workload.
    #[getter]
    fn label(&self) -> &str {
        &self.label
    }

    /// The arrival times, in seconds.
    #[getter]
    fn arrivals(&self) -> Vec<f64> {
        self.requests.iter().map(|r| r.arrival).collect()
    }

    fn __repr__(&self) -> String {
        format!("Workload({} requests: {})", self.requests.len(), self.label)
    }
}

/// The results of one comparison.
#[pyclass(name = "Comparison", module = "pointsman._pointsman", frozen)]
#[derive(Debug)]
pub(crate) struct PyComparison {
    results: Vec<PolicyResult>,
    label: String,
}

#[pymethods]
impl PyComparison {
    /// One dictionary per policy (TTFT/TPOT/E2E percentiles in seconds, throughput, goodput,
    /// prefix hit rate, rejections, requests per server).
    #[getter]
    fn results<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(&self.results)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// The comparison as an aligned text table.
    fn table(&self) -> String {
        table(&self.results)
    }

    /// The results as JSON text.
    fn json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.results)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// An SVG chart of TTFT percentiles and throughput per policy.
    fn svg(&self) -> String {
        svg_bars(&self.label, &self.results)
    }

    fn __repr__(&self) -> String {
        format!("Comparison({})\n{}", self.label, table(&self.results))
    }
}

/// Generates a shared-prefix workload (`inference-perf`'s knobs); `None` keeps the embedded
/// default's value.
#[pyfunction]
#[pyo3(signature = (*, groups=None, prompts_per_group=None, system_tokens=None, question_tokens=None, output_tokens=None, turns=None, requests=None, rate=None, constant=false, loras=None, sheddable=None, seed=1))]
#[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
pub(crate) fn _sim_shared_prefix(
    groups: Option<usize>,
    prompts_per_group: Option<usize>,
    system_tokens: Option<u32>,
    question_tokens: Option<u32>,
    output_tokens: Option<u32>,
    turns: Option<u32>,
    requests: Option<usize>,
    rate: Option<f64>,
    constant: bool,
    loras: Option<Vec<(String, f64)>>,
    sheddable: Option<f64>,
    seed: u64,
) -> PyResult<PyWorkload> {
    let d = SharedPrefix::embedded_default();
    let rate = rate.unwrap_or(d.arrivals.rate());
    let w = SharedPrefix {
        groups: groups.unwrap_or(d.groups),
        prompts_per_group: prompts_per_group.unwrap_or(d.prompts_per_group),
        system_tokens: system_tokens.unwrap_or(d.system_tokens),
        question_tokens: question_tokens.unwrap_or(d.question_tokens),
        output_tokens: output_tokens.unwrap_or(d.output_tokens),
        turns: turns.unwrap_or(d.turns),
        requests: requests.unwrap_or(d.requests),
        arrivals: if constant {
            Arrivals::Constant { rate }
        } else {
            Arrivals::Poisson { rate }
        },
        loras: loras
            .unwrap_or_default()
            .into_iter()
            .map(|(name, share)| LoraShare { name, share })
            .collect(),
        sheddable: sheddable.unwrap_or(d.sheddable),
    };
    let requests = w
        .generate(BLOCK, seed)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let label = w.label();
    Ok(PyWorkload {
        requests: Arc::new(requests),
        label,
    })
}

/// Reads a Mooncake JSONL trace; arrivals are divided by `speedup`.
#[pyfunction]
#[pyo3(signature = (path, speedup=1.0))]
pub(crate) fn _sim_mooncake(path: PathBuf, speedup: f64) -> PyResult<PyWorkload> {
    let requests =
        read_mooncake(&path, BLOCK, speedup).map_err(|e| PyOSError::new_err(e.to_string()))?;
    Ok(PyWorkload {
        label: format!("mooncake trace {} (speedup {speedup})", path.display()),
        requests: Arc::new(requests),
    })
}

/// Reads an Azure LLM inference CSV trace; arrivals are divided by `speedup`.
#[pyfunction]
#[pyo3(signature = (path, speedup=1.0))]
pub(crate) fn _sim_azure(path: PathBuf, speedup: f64) -> PyResult<PyWorkload> {
    let requests =
        read_azure(&path, BLOCK, speedup).map_err(|e| PyOSError::new_err(e.to_string()))?;
    Ok(PyWorkload {
        label: format!("azure trace {} (speedup {speedup})", path.display()),
        requests: Arc::new(requests),
    })
}

/// The names of the baseline policies.
#[pyfunction]
pub(crate) fn _sim_baselines() -> Vec<String> {
    Policy::baselines().into_iter().map(|p| p.name).collect()
}

/// Runs `workload` under `policies` (baseline names, or `(name, yaml)` pairs; default: every
/// baseline) on a fleet of `servers` simulated vLLM servers.
#[pyfunction]
#[pyo3(signature = (workload, policies=None, *, servers=8, heterogeneity=0.0, seed=1, slo_ttft=2.0, slo_tpot=0.1))]
#[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
pub(crate) fn _sim_compare(
    py: Python<'_>,
    workload: &PyWorkload,
    policies: Option<Bound<'_, PyList>>,
    servers: usize,
    heterogeneity: f64,
    seed: u64,
    slo_ttft: f64,
    slo_tpot: f64,
) -> PyResult<PyComparison> {
    let policies = match policies {
        None => Policy::baselines(),
        Some(list) => list
            .iter()
            .map(|item| {
                if let Ok(name) = item.extract::<String>() {
                    Policy::baseline(&name).ok_or_else(|| {
                        PyValueError::new_err(format!("unknown baseline {name:?}; expected one of {:?} or a (name, yaml) pair", _sim_baselines()))
                    })
                } else {
                    let (name, yaml): (String, String) = item.extract()?;
                    Ok(Policy::from_yaml(&name, &yaml))
                }
            })
            .collect::<PyResult<Vec<_>>>()?,
    };
    let cfg = SimConfig {
        servers,
        heterogeneity,
        seed,
        slo_ttft,
        slo_tpot,
        ..SimConfig::default()
    };
    let requests = Arc::clone(&workload.requests);
    let results = py
        .detach(move || pointsman_sim::compare(&requests, &policies, &cfg))
        .map_err(|e| match e {
            pointsman_sim::sim::SimError::Config { .. } => {
                crate::errors::ConfigError::new_err(e.to_string())
            }
            other => PyValueError::new_err(other.to_string()),
        })?;
    Ok(PyComparison {
        results,
        label: workload.label.clone(),
    })
}

/// Registers the simulator's classes and functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWorkload>()?;
    m.add_class::<PyComparison>()?;
    m.add_function(wrap_pyfunction!(_sim_shared_prefix, m)?)?;
    m.add_function(wrap_pyfunction!(_sim_mooncake, m)?)?;
    m.add_function(wrap_pyfunction!(_sim_azure, m)?)?;
    m.add_function(wrap_pyfunction!(_sim_baselines, m)?)?;
    m.add_function(wrap_pyfunction!(_sim_compare, m)?)?;
    Ok(())
}

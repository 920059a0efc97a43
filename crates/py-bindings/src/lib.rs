//! **pointsman-py**: the Python module `pointsman`, for cluster simulators and policy research.
//!
//! The native part is the private module `pointsman._pointsman`; `python/pointsman/__init__.py`
//! re-exports it and `_pointsman.pyi` types it (the layout of pydantic-core).
//!
//! # Overview
//! - `Scheduler` (module `scheduler`) wraps [`pointsman::Scheduler`] with its pool, a wall or manual
//!   clock, and a map from request id to in-flight [`pointsman::Decision`].
//! - `Endpoint`, `EndpointState`, `Request` and `Decision` (module `types`) are read-only values.
//! - Python scorers and filters (module `plugins`) are core plugins registered with
//!   [`pointsman::registry::Registry::register_dynamic`] and used from the YAML configuration.
//! - Errors (module `errors`) form one hierarchy rooted at `pointsman.PointsmanError`, mapped from Rust
//!   in one `match`.
//!
//! # Guarantees
//! - The GIL is released while the core works (`Python::detach`); a `Scheduler` may be shared
//!   between Python threads.
//! - With `seed=` and `clock="manual"`, the same calls give the same decisions.
//!
//! # Features
//! None.

#![forbid(unsafe_code)]

mod errors;
mod plugins;
mod scheduler;
mod sim;
mod types;

use pyo3::prelude::*;

/// The registered plugin type names (built-ins), sorted.
#[pyfunction]
fn plugin_types() -> Vec<String> {
    pointsman::registry::Registry::with_builtins()
        .type_names()
        .map(str::to_string)
        .collect()
}

/// The reference's default EndpointPickerConfig, as YAML.
#[pyfunction]
fn default_config() -> String {
    pointsman::EndpointPickerConfig::default_config().to_yaml()
}

/// The native module `pointsman._pointsman`.
#[pymodule]
fn _pointsman(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<scheduler::PyScheduler>()?;
    m.add_class::<types::PyDecision>()?;
    m.add_class::<types::PyEndpoint>()?;
    m.add_class::<types::PyEndpointState>()?;
    m.add_class::<types::PyRequest>()?;
    m.add_function(wrap_pyfunction!(plugin_types, m)?)?;
    m.add_function(wrap_pyfunction!(default_config, m)?)?;
    errors::register(m)?;
    sim::register(m)?;
    Ok(())
}

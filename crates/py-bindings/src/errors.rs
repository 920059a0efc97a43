//! The Python exception hierarchy and the one place Rust errors become Python exceptions.
//!
//! ```text
//! PointsmanError
//! ├── ConfigError           .plugin .path .expected .issues
//! ├── SchedulingError       .status_code .code
//! ├── PluginError           .plugin (the Python exception is __cause__)
//! └── UnknownEndpointError  .endpoint
//! ```
//!
//! Every fallible function in the binding returns [`BindingError`]; [`BindingError::into_pyerr`]
//! (used by the `From` impl PyO3 calls on `?`) is the single `match` that chooses the exception
//! and its attributes, as polars does in `exceptions.rs`.

use pointsman::error::ConfigIssue;
use pointsman::pool::PoolError;
use pointsman::registry::RegistryError;
use pointsman::{ConfigError as CoreConfigError, SchedulingError as CoreSchedulingError};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

pyo3::create_exception!(
    pointsman,
    PointsmanError,
    PyException,
    "Base class of every error pointsman raises."
);
pyo3::create_exception!(
    pointsman,
    ConfigError,
    PointsmanError,
    "The EndpointPickerConfig could not be loaded.\n\n`.plugin`, `.path` and `.expected` describe \
     the first problem; `.issues` lists every problem as dicts with keys `path`, `plugin`, `message`."
);
pyo3::create_exception!(
    pointsman,
    SchedulingError,
    PointsmanError,
    "No endpoint could be chosen for the request.\n\n`.status_code` is the HTTP status the \
     reference gateway answers with (429, 503, 500 or 400); `.code` its name, e.g. \
     `ResourceExhausted`."
);
pyo3::create_exception!(
    pointsman,
    PluginError,
    PointsmanError,
    "A Python scorer or filter raised, or returned something unusable, during `schedule()`.\n\n\
     `.plugin` names the plugin instance; the original exception is `__cause__`."
);
pyo3::create_exception!(
    pointsman,
    UnknownEndpointError,
    PointsmanError,
    "The named endpoint is not in the pool. `.endpoint` is the name."
);

/// Every error the binding can raise.
#[derive(Debug)]
pub(crate) enum BindingError {
    /// A configuration problem from the core.
    Config(CoreConfigError),
    /// A plugin type could not be registered.
    Registry(RegistryError),
    /// A decision could not be made.
    Scheduling(CoreSchedulingError),
    /// A pool write named an unknown endpoint.
    Pool(PoolError),
    /// A Python plugin failed; `cause` is what it raised (or a `TypeError` describing a bad
    /// return value).
    Plugin { plugin: String, cause: PyErr },
    /// A bad argument from the caller (`ValueError`).
    Value(String),
    /// A wrong argument type from the caller (`TypeError`).
    Type(String),
    /// A Python exception to re-raise unchanged.
    Python(PyErr),
}

impl From<PyErr> for BindingError {
    fn from(e: PyErr) -> Self {
        BindingError::Python(e)
    }
}

impl From<BindingError> for PyErr {
    fn from(e: BindingError) -> Self {
        Python::attach(|py| e.into_pyerr(py))
    }
}

/// The result type of fallible binding functions.
pub(crate) type BindingResult<T> = Result<T, BindingError>;

impl BindingError {
    /// The Python exception for this error: the one mapping from Rust errors to Python.
    pub(crate) fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            BindingError::Config(e) => {
                let err = ConfigError::new_err(e.to_string());
                let first = e.issues().first();
                let attrs = [
                    ("plugin", first.and_then(|i| i.plugin.clone())),
                    (
                        "path",
                        first.map(|i| i.path.clone()).filter(|p| !p.is_empty()),
                    ),
                    ("expected", first.map(|i| i.message.clone())),
                ];
                with_attrs(py, err, |value| {
                    for (name, v) in attrs {
                        value.setattr(name, v)?;
                    }
                    value.setattr("issues", issues_list(py, e.issues())?)
                })
            }
            BindingError::Registry(e) => {
                let plugin = match &e {
                    RegistryError::Duplicate(name) => Some(name.clone()),
                    _ => None,
                };
                let message = format!(
                    "{e}; choose a type name that no built-in plugin and no other Python plugin uses"
                );
                BindingError::Config(CoreConfigError::single("", plugin, message)).into_pyerr(py)
            }
            BindingError::Scheduling(e) => {
                let err = SchedulingError::new_err(e.to_string());
                with_attrs(py, err, |value| {
                    value.setattr("status_code", e.http_status())?;
                    value.setattr("code", e.code().as_str())
                })
            }
            BindingError::Pool(e) => {
                let endpoint = match &e {
                    PoolError::UnknownEndpoint { name } => Some(name.clone()),
                    _ => None,
                };
                let err = UnknownEndpointError::new_err(e.to_string());
                with_attrs(py, err, |value| value.setattr("endpoint", endpoint))
            }
            BindingError::Plugin { plugin, cause } => {
                let err = PluginError::new_err(format!(
                    "Python plugin {plugin:?} failed: {}",
                    cause.value(py)
                ));
                err.set_cause(py, Some(cause));
                with_attrs(py, err, |value| value.setattr("plugin", plugin))
            }
            BindingError::Value(message) => PyValueError::new_err(message),
            BindingError::Type(message) => PyTypeError::new_err(message),
            BindingError::Python(e) => e,
        }
    }
}

/// Sets attributes on the exception instance; a failure to set them (out of memory) replaces
/// the exception with that failure rather than losing it.
fn with_attrs(
    py: Python<'_>,
    err: PyErr,
    set: impl FnOnce(&Bound<'_, pyo3::exceptions::PyBaseException>) -> PyResult<()>,
) -> PyErr {
    match set(err.value(py)) {
        Ok(()) => err,
        Err(e) => e,
    }
}

fn issues_list<'py>(py: Python<'py>, issues: &[ConfigIssue]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for issue in issues {
        let d = PyDict::new(py);
        d.set_item("path", &issue.path)?;
        d.set_item("plugin", issue.plugin.as_deref())?;
        d.set_item("message", &issue.message)?;
        list.append(d)?;
    }
    Ok(list)
}

/// Adds the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PointsmanError", py.get_type::<PointsmanError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("SchedulingError", py.get_type::<SchedulingError>())?;
    m.add("PluginError", py.get_type::<PluginError>())?;
    m.add(
        "UnknownEndpointError",
        py.get_type::<UnknownEndpointError>(),
    )?;
    Ok(())
}

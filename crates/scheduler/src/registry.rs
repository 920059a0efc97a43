//! Plugin types by name: the table the config loader builds instances from.
//!
//! [`Registry::with_builtins`] registers every built-in type (the list is in
//! [`crate::plugins::register_builtins`]); users add their own with [`Registry::register`] before
//! building a scheduler. A factory is generic over its parameter type: parameters are
//! deserialised strictly (unknown fields are errors), defaults filled in, then validated, and the
//! normalised parameters are kept so a resolved configuration can be printed with every default.

use crate::cycle::NamedPlugin;
use crate::error::ParamError;
use crate::plugin::Plugin;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A plugin's parameter struct.
///
/// Implementors derive `Deserialize` with `#[serde(default, rename_all = "camelCase",
/// deny_unknown_fields)]` and `Serialize`, and check ranges in [`validate`](Self::validate).
pub trait PluginParams: DeserializeOwned + Serialize + Default {
    /// Checks ranges and combinations.
    ///
    /// # Errors
    /// A [`ParamError`] naming the field.
    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

/// No parameters: accepts only an absent or empty `parameters`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl PluginParams for NoParams {}

/// What a factory sees besides its parameters.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The instance name.
    pub name: &'a str,
    /// The type name.
    pub type_name: &'a str,
    /// Instances created before this one, in config order (for plugins that refer to others,
    /// like `decision-tree-filter`).
    pub earlier: &'a [NamedPlugin],
}

impl BuildContext<'_> {
    /// The earlier instance named `name`.
    pub fn plugin(&self, name: &str) -> Option<&NamedPlugin> {
        self.earlier.iter().find(|p| &*p.name == name)
    }
}

/// Roles that only other parts of the system act on (the gateway binding, the scraper, flow
/// control); the core validates their parameters and keeps them in the resolved config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExternalRole {
    /// A request parser (`openai-parser`).
    Parser,
    /// A data source (`metrics-data-source`).
    DataSource,
    /// A data extractor (`core-metrics-extractor`).
    DataExtractor,
    /// A flow-control fairness policy.
    FairnessPolicy,
    /// A flow-control ordering policy.
    OrderingPolicy,
    /// A flow-control usage-limit policy.
    UsageLimitPolicy,
}

/// A built instance with its normalised parameters.
pub type Built = (Arc<dyn Plugin>, serde_json::Value);

type BuildFn = dyn Fn(
        Option<&serde_json::Value>,
        &BuildContext<'_>,
    ) -> Result<(Arc<dyn Plugin>, serde_json::Value), ParamError>
    + Send
    + Sync;

struct Factory {
    build: Box<BuildFn>,
    external: Option<ExternalRole>,
}

/// Errors from [`Registry::register`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The type name is taken.
    #[error("plugin type {0:?} is already registered")]
    Duplicate(String),
    /// The type name is empty.
    #[error("plugin type names must not be empty")]
    EmptyName,
}

/// Plugin type name → factory.
#[derive(Default)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("types", &self.factories.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// A registry with no types.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A registry with every built-in type.
    pub fn with_builtins() -> Self {
        let mut r = Self::empty();
        crate::plugins::register_builtins(&mut r);
        r
    }

    /// Registers type `type_name`, built by `ctor` from parameters of type `P`.
    ///
    /// # Errors
    /// [`RegistryError::Duplicate`] if the name is taken.
    ///
    /// ```
    /// use pointsman::registry::{NoParams, Registry};
    /// use pointsman::plugins::scorer::queue_scorer::QueueScorer;
    /// let mut r = Registry::with_builtins();
    /// r.register("my-queue-scorer", |_: NoParams, _| Ok(QueueScorer::new())).unwrap();
    /// assert!(r.register("my-queue-scorer", |_: NoParams, _| Ok(QueueScorer::new())).is_err());
    /// ```
    pub fn register<P, T, F>(&mut self, type_name: &str, ctor: F) -> Result<(), RegistryError>
    where
        P: PluginParams + 'static,
        T: Plugin + 'static,
        F: Fn(P, &BuildContext<'_>) -> Result<T, ParamError> + Send + Sync + 'static,
    {
        self.insert(type_name, None, move |raw, cx| {
            let params: P = deserialize_params(raw)?;
            params.validate()?;
            let normalised = serde_json::to_value(&params)
                .map_err(|e| ParamError::new("", format!("cannot serialise parameters: {e}")))?;
            let plugin = ctor(params, cx)?;
            Ok((Arc::new(plugin) as Arc<dyn Plugin>, normalised))
        })
    }

    /// Registers a type whose factory takes the raw JSON parameters (for bindings whose
    /// parameters are not a Rust type). `None` means `parameters` was absent.
    ///
    /// # Errors
    /// [`RegistryError::Duplicate`] if the name is taken.
    pub fn register_dynamic<F>(&mut self, type_name: &str, build: F) -> Result<(), RegistryError>
    where
        F: Fn(Option<&serde_json::Value>, &BuildContext<'_>) -> Result<Arc<dyn Plugin>, ParamError>
            + Send
            + Sync
            + 'static,
    {
        self.insert(type_name, None, move |raw, cx| {
            let plugin = build(raw, cx)?;
            Ok((plugin, raw.cloned().unwrap_or(serde_json::Value::Null)))
        })
    }

    /// Registers a type that only another component acts on (see [`ExternalRole`]).
    pub(crate) fn register_external<P: PluginParams + 'static>(
        &mut self,
        type_name: &'static str,
        role: ExternalRole,
    ) {
        let _ = self.insert(type_name, Some(role), move |raw, _| {
            let params: P = deserialize_params(raw)?;
            params.validate()?;
            let normalised = serde_json::to_value(&params)
                .map_err(|e| ParamError::new("", format!("cannot serialise parameters: {e}")))?;
            Ok((
                Arc::new(crate::plugins::external::ExternalPlugin::new(
                    type_name, role,
                )) as Arc<dyn Plugin>,
                normalised,
            ))
        });
    }

    fn insert(
        &mut self,
        type_name: &str,
        external: Option<ExternalRole>,
        build: impl Fn(
            Option<&serde_json::Value>,
            &BuildContext<'_>,
        ) -> Result<(Arc<dyn Plugin>, serde_json::Value), ParamError>
        + Send
        + Sync
        + 'static,
    ) -> Result<(), RegistryError> {
        if type_name.is_empty() {
            return Err(RegistryError::EmptyName);
        }
        if self.factories.contains_key(type_name) {
            return Err(RegistryError::Duplicate(type_name.to_string()));
        }
        self.factories.insert(
            type_name.to_string(),
            Factory {
                build: Box::new(build),
                external,
            },
        );
        Ok(())
    }

    /// Whether `type_name` is registered.
    pub fn contains(&self, type_name: &str) -> bool {
        self.factories.contains_key(type_name)
    }

    /// The registered type names, sorted.
    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// The external role of `type_name`, if it is acted on outside the core.
    pub fn external_role(&self, type_name: &str) -> Option<ExternalRole> {
        self.factories.get(type_name).and_then(|f| f.external)
    }

    /// Builds an instance of `type_name` from `parameters`; returns it with its normalised
    /// parameters. `None` when the type is unknown.
    pub fn build(
        &self,
        type_name: &str,
        parameters: Option<&serde_json::Value>,
        cx: &BuildContext<'_>,
    ) -> Option<Result<Built, ParamError>> {
        let factory = self.factories.get(type_name)?;
        Some((factory.build)(parameters, cx))
    }
}

/// Deserialises parameters strictly, reporting the failing field's path.
///
/// # Errors
/// A [`ParamError`] naming the field and what was expected.
pub fn deserialize_params<P: DeserializeOwned + Default>(
    raw: Option<&serde_json::Value>,
) -> Result<P, ParamError> {
    match raw {
        None | Some(serde_json::Value::Null) => Ok(P::default()),
        Some(v) => serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            ParamError::new(field, e.into_inner().to_string())
        }),
    }
}

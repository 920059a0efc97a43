//! Plugin types that other components act on: request parsers (the gateway binding), metrics
//! sources and extractors (the scraper), and flow-control policies. The core validates their
//! parameters so a configuration is checked whole, and keeps them in the resolved config.

use crate::error::ParamError;
use crate::plugin::Plugin;
use crate::registry::{ExternalRole, NoParams, PluginParams, Registry};
use serde::{Deserialize, Serialize};

/// A plugin instance with no role in the scheduling cycle.
#[derive(Debug, Clone)]
pub struct ExternalPlugin {
    type_name: &'static str,
    role: ExternalRole,
}

impl ExternalPlugin {
    pub(crate) fn new(type_name: &'static str, role: ExternalRole) -> Self {
        ExternalPlugin { type_name, role }
    }

    /// What acts on it.
    pub fn role(&self) -> ExternalRole {
        self.role
    }
}

impl Plugin for ExternalPlugin {
    fn type_name(&self) -> &str {
        self.type_name
    }
}

fn default_scheme() -> String {
    "http".to_string()
}
fn default_path() -> String {
    "/metrics".to_string()
}
const fn default_true() -> bool {
    true
}

/// `metrics-data-source` parameters: where to scrape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricsDataSourceParams {
    /// `http` or `https`. Default `http`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// The metrics path. Default `/metrics`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Skip TLS verification for `https`. Default `true`.
    #[serde(default = "default_true")]
    pub insecure_skip_verify: bool,
}

impl Default for MetricsDataSourceParams {
    fn default() -> Self {
        MetricsDataSourceParams {
            scheme: default_scheme(),
            path: default_path(),
            insecure_skip_verify: true,
        }
    }
}

impl PluginParams for MetricsDataSourceParams {
    fn validate(&self) -> Result<(), ParamError> {
        if self.scheme != "http" && self.scheme != "https" {
            return Err(ParamError::new(
                "scheme",
                format!("expected \"http\" or \"https\", got {:?}", self.scheme),
            ));
        }
        if !self.path.starts_with('/') {
            return Err(ParamError::new(
                "path",
                format!("expected a path starting with '/', got {:?}", self.path),
            ));
        }
        Ok(())
    }
}

fn default_engine_label_key() -> String {
    "inference.networking.k8s.io/engine-type".to_string()
}
fn default_engine() -> String {
    "vllm".to_string()
}

/// `core-metrics-extractor` parameters: which metric means what, per engine. The engine
/// entries are checked in full by the scraper, which owns the metric mappings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CoreMetricsExtractorParams {
    /// The pod label naming the engine. Default `inference.networking.k8s.io/engine-type`.
    #[serde(default = "default_engine_label_key")]
    pub engine_label_key: String,
    /// The engine of pods without the label. Default `vllm`.
    #[serde(default = "default_engine")]
    pub default_engine: String,
    /// Engine mappings replacing or adding to the built-in ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engine_configs: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl Default for CoreMetricsExtractorParams {
    fn default() -> Self {
        CoreMetricsExtractorParams {
            engine_label_key: default_engine_label_key(),
            default_engine: default_engine(),
            engine_configs: Vec::new(),
        }
    }
}

impl PluginParams for CoreMetricsExtractorParams {
    fn validate(&self) -> Result<(), ParamError> {
        for (i, e) in self.engine_configs.iter().enumerate() {
            match e.get("name").and_then(|n| n.as_str()) {
                None | Some("") => {
                    return Err(ParamError::new(
                        format!("engineConfigs[{i}].name"),
                        "expected a non-empty engine name",
                    ));
                }
                Some("default") => {
                    return Err(ParamError::new(
                        format!("engineConfigs[{i}].name"),
                        "the name \"default\" is reserved",
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

const fn default_threshold() -> f64 {
    1.0
}

/// `static-usage-limit-policy` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticUsageLimitParams {
    /// The saturation ceiling for every band. Default 1.0.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

impl Default for StaticUsageLimitParams {
    fn default() -> Self {
        StaticUsageLimitParams { threshold: 1.0 }
    }
}

impl PluginParams for StaticUsageLimitParams {
    fn validate(&self) -> Result<(), ParamError> {
        if !(self.threshold > 0.0 && self.threshold.is_finite()) {
            return Err(ParamError::new(
                "threshold",
                format!("expected a number > 0, got {}", self.threshold),
            ));
        }
        Ok(())
    }
}

pub(crate) fn register(r: &mut Registry) {
    use ExternalRole::*;
    r.register_external::<NoParams>("openai-parser", Parser);
    r.register_external::<NoParams>("passthrough-parser", Parser);
    r.register_external::<NoParams>("vllmgrpc-parser", Parser);
    r.register_external::<MetricsDataSourceParams>("metrics-data-source", DataSource);
    r.register_external::<NoParams>("k8s-notification-source", DataSource);
    r.register_external::<NoParams>("endpoint-notification-source", DataSource);
    r.register_external::<CoreMetricsExtractorParams>("core-metrics-extractor", DataExtractor);
    r.register_external::<NoParams>("global-strict-fairness-policy", FairnessPolicy);
    r.register_external::<NoParams>("round-robin-fairness-policy", FairnessPolicy);
    r.register_external::<NoParams>("fcfs-ordering-policy", OrderingPolicy);
    r.register_external::<NoParams>("edf-ordering-policy", OrderingPolicy);
    r.register_external::<NoParams>("slo-deadline-ordering-policy", OrderingPolicy);
    r.register_external::<StaticUsageLimitParams>("static-usage-limit-policy", UsageLimitPolicy);
}

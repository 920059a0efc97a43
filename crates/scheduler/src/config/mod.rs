//! `EndpointPickerConfig`: the reference picker's YAML configuration, loaded unchanged.
//!
//! Loading has two steps, as in ripgrep's flags: [`EndpointPickerConfig::from_yaml`] decodes the
//! YAML strictly into raw types shaped like the reference's (unknown fields are errors, with
//! their line and column); [`resolve`] then applies the reference's system defaults, builds every
//! plugin through a [`Registry`](crate::registry::Registry), and validates references, reporting
//! every problem at once with its path and plugin. The result, a [`ResolvedConfig`], builds a
//! [`Scheduler`](crate::Scheduler) and prints back as YAML with every default filled in.
//!
//! With no configuration, [`EndpointPickerConfig::default_config`] is the reference's default:
//! `queue-scorer` (weight 2), `kv-cache-utilization-scorer` (2), `prefix-cache-scorer` (3),
//! `max-score-picker`, `single-profile-handler`, plus the auto-created
//! `approx-prefix-cache-producer`, `utilization-detector` and `openai-parser`.
//!
//! ```
//! use pointsman::config::{resolve, EndpointPickerConfig};
//! use pointsman::registry::Registry;
//!
//! let yaml = r#"
//! apiVersion: inference.networking.x-k8s.io/v1alpha1
//! kind: EndpointPickerConfig
//! plugins:
//! - type: queue-scorer
//! - type: max-score-picker
//!   parameters: {maxNumOfEndpoints: 2}
//! schedulingProfiles:
//! - name: default
//!   plugins:
//!   - pluginRef: queue-scorer
//!     weight: 2
//!   - pluginRef: max-score-picker
//! "#;
//! let config = EndpointPickerConfig::from_yaml(yaml)?;
//! let resolved = resolve(&config, &Registry::with_builtins())?;
//! assert_eq!(resolved.profiles()[0].scorers[0].1, 2.0);
//! # Ok::<(), pointsman::ConfigError>(())
//! ```

mod duration;
mod quantity;
mod resolve;

pub use duration::{format_go_duration, go_duration, parse_go_duration};
pub use quantity::{Quantity, parse_quantity};
pub use resolve::{ResolvedConfig, resolve};

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

/// The `apiVersion` the reference uses.
pub const API_VERSION: &str = "inference.networking.x-k8s.io/v1alpha1";
/// The `kind`.
pub const KIND: &str = "EndpointPickerConfig";
/// Feature gates the reference knows.
pub const FEATURE_GATES: [&str; 3] = ["dataLayer", "enableLegacyMetrics", "flowControl"];

/// The configuration, as written (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointPickerConfig {
    /// Must be [`API_VERSION`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Must be [`KIND`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Feature gates: `flowControl`, `enableLegacyMetrics`, `dataLayer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_gates: Vec<String>,
    /// Plugin instances.
    #[serde(default)]
    pub plugins: Vec<PluginSpec>,
    /// Scheduling profiles.
    #[serde(default)]
    pub scheduling_profiles: Vec<SchedulingProfileSpec>,
    /// The saturation detector (default `utilization-detector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation_detector: Option<PluginRef>,
    /// Metrics sources and extractors (acted on by the scraper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_layer: Option<DataLayerSpec>,
    /// Flow control (acted on when the `flowControl` gate is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_control: Option<FlowControlSpec>,
    /// The request parser (default `openai-parser`; acted on by the gateway binding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parser: Option<PluginRef>,
}

/// One plugin instance: `{name?, type, parameters?}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// The instance name; defaults to the type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The registered type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Parameters, as free-form JSON for the type's factory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

impl PluginSpec {
    /// The instance name: `name`, or the type when there is none.
    pub fn instance_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.type_name)
    }
}

/// A scheduling profile: `{name, plugins: [{pluginRef, weight?}]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchedulingProfileSpec {
    /// The profile's name.
    pub name: String,
    /// Its filters, scorers and picker, by reference.
    #[serde(default)]
    pub plugins: Vec<ProfilePluginRef>,
}

/// A plugin used in a profile, with a weight for scorers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfilePluginRef {
    /// The instance name.
    pub plugin_ref: String,
    /// The scorer weight (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// `{pluginRef}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginRef {
    /// The instance name.
    pub plugin_ref: String,
}

/// The `dataLayer` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataLayerSpec {
    /// Sources; an explicit empty list disables scraping.
    #[serde(default)]
    pub sources: Vec<DataSourceSpec>,
}

/// One data source with its extractors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataSourceSpec {
    /// The source instance.
    pub plugin_ref: String,
    /// Its extractors.
    #[serde(default)]
    pub extractors: Vec<PluginRef>,
}

/// The `flowControl` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowControlSpec {
    /// Global byte limit (a Kubernetes quantity; 0 = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<Quantity>,
    /// Global request limit (0 = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<Quantity>,
    /// Time a request may wait in the queue (Go duration).
    #[serde(
        default,
        rename = "defaultRequestTTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_request_ttl: Option<String>,
    /// Settings for priorities without a band of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_priority_band: Option<PriorityBandSpec>,
    /// Bands by priority.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority_bands: Vec<PriorityBandSpec>,
    /// The usage-limit policy instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit_policy_plugin_ref: Option<String>,
}

/// One flow-control priority band.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriorityBandSpec {
    /// The band's priority (required in `priorityBands`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Byte limit (default 1 GB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<Quantity>,
    /// Request limit (0 = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<Quantity>,
    /// The fairness policy instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness_policy_ref: Option<String>,
    /// The ordering policy instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_policy_ref: Option<String>,
}

impl EndpointPickerConfig {
    /// Decodes YAML (or JSON) strictly.
    ///
    /// # Errors
    /// A [`ConfigError`] with the YAML location and what was expected.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        serde_yaml_ng::from_str(text).map_err(|e| {
            let location = e
                .location()
                .map(|l| format!("line {}, column {}", l.line(), l.column()))
                .unwrap_or_default();
            ConfigError::single(location, None, e.to_string())
        })
    }

    /// The reference's configuration when none is given (§4.3 of the reference notes).
    pub fn default_config() -> Self {
        let plugin = |t: &str| PluginSpec {
            type_name: t.to_string(),
            ..PluginSpec::default()
        };
        let weighted = |r: &str, w: f64| ProfilePluginRef {
            plugin_ref: r.to_string(),
            weight: Some(w),
        };
        EndpointPickerConfig {
            api_version: Some(API_VERSION.to_string()),
            kind: Some(KIND.to_string()),
            plugins: vec![
                plugin("queue-scorer"),
                plugin("kv-cache-utilization-scorer"),
                plugin("prefix-cache-scorer"),
                plugin("metrics-data-source"),
                plugin("core-metrics-extractor"),
            ],
            scheduling_profiles: vec![SchedulingProfileSpec {
                name: "default".to_string(),
                plugins: vec![
                    weighted("queue-scorer", 2.0),
                    weighted("kv-cache-utilization-scorer", 2.0),
                    weighted("prefix-cache-scorer", 3.0),
                ],
            }],
            data_layer: Some(DataLayerSpec {
                sources: vec![DataSourceSpec {
                    plugin_ref: "metrics-data-source".to_string(),
                    extractors: vec![PluginRef {
                        plugin_ref: "core-metrics-extractor".to_string(),
                    }],
                }],
            }),
            ..EndpointPickerConfig::default()
        }
    }

    /// Encodes as YAML.
    pub fn to_yaml(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }
}

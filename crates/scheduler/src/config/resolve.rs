//! From the configuration as written to the validated plugin graph.

use super::{
    API_VERSION, DataLayerSpec, DataSourceSpec, EndpointPickerConfig, FEATURE_GATES, KIND,
    PluginRef, PluginSpec, ProfilePluginRef, SchedulingProfileSpec,
};
use crate::cycle::{NamedPlugin, Profile};
use crate::error::{ConfigError, ConfigIssue};
use crate::plugin::DataKey;
use crate::registry::{BuildContext, ExternalRole, Registry};
use std::collections::HashSet;
use std::sync::Arc;

/// A validated configuration: plugin instances wired into profiles, ready to build a
/// [`Scheduler`](crate::Scheduler).
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    config: EndpointPickerConfig,
    plugins: Vec<NamedPlugin>,
    profiles: Vec<Profile>,
    handler: NamedPlugin,
    detector: NamedPlugin,
    warnings: Vec<String>,
}

impl ResolvedConfig {
    /// The configuration with every default made explicit (plugin names, parameters with
    /// defaults, weights, pickers, handler, detector, parser, data layer).
    pub fn config(&self) -> &EndpointPickerConfig {
        &self.config
    }

    /// Every plugin instance, in config order, defaults last.
    pub fn plugins(&self) -> &[NamedPlugin] {
        &self.plugins
    }

    /// The instance named `name`.
    pub fn plugin(&self, name: &str) -> Option<&NamedPlugin> {
        self.plugins.iter().find(|p| &*p.name == name)
    }

    /// The profiles.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    /// The profile handler.
    pub fn profile_handler(&self) -> &NamedPlugin {
        &self.handler
    }

    /// The saturation detector.
    pub fn saturation_detector(&self) -> &NamedPlugin {
        &self.detector
    }

    /// Settings that were accepted but have no effect in this build, in words.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The parameters of the instance named `name`, normalised (for components outside the core,
    /// such as the scraper's `core-metrics-extractor`).
    pub fn parameters_of(&self, name: &str) -> Option<&serde_json::Value> {
        self.config
            .plugins
            .iter()
            .find(|p| p.instance_name() == name)
            .and_then(|p| p.parameters.as_ref())
    }

    /// Whether feature gate `gate` is on.
    pub fn feature_gate(&self, gate: &str) -> bool {
        self.config.feature_gates.iter().any(|g| g == gate)
    }
}

struct Resolver<'r> {
    registry: &'r Registry,
    issues: Vec<ConfigIssue>,
    warnings: Vec<String>,
    instances: Vec<NamedPlugin>,
    types: Vec<String>,
    out: EndpointPickerConfig,
}

impl Resolver<'_> {
    fn issue(
        &mut self,
        path: impl Into<String>,
        plugin: Option<String>,
        message: impl Into<String>,
    ) {
        self.issues.push(ConfigIssue {
            path: path.into(),
            plugin,
            message: message.into(),
        });
    }

    fn find(&self, name: &str) -> Option<(usize, &NamedPlugin)> {
        self.instances
            .iter()
            .enumerate()
            .find(|(_, p)| &*p.name == name)
    }

    fn label(&self, index: usize) -> String {
        format!("{} ({})", self.instances[index].name, self.types[index])
    }

    /// Adds a default instance of `type_name` (named after the type when free); returns its name.
    fn add_default(&mut self, type_name: &str) -> Option<Arc<str>> {
        if let Some((i, p)) = self.find(type_name) {
            if self.types[i] == type_name {
                return Some(p.name.clone());
            }
        }
        let mut name = type_name.to_string();
        let mut n = 1;
        while self.find(&name).is_some() {
            n += 1;
            name = format!("{type_name}-{n}");
        }
        let cx = BuildContext {
            name: &name,
            type_name,
            earlier: &self.instances,
        };
        match self.registry.build(type_name, None, &cx) {
            Some(Ok((plugin, params))) => {
                let name: Arc<str> = name.into();
                self.instances.push(NamedPlugin {
                    name: name.clone(),
                    plugin,
                });
                self.types.push(type_name.to_string());
                self.out.plugins.push(PluginSpec {
                    name: Some(name.to_string()),
                    type_name: type_name.to_string(),
                    parameters: non_empty(params),
                });
                Some(name)
            }
            Some(Err(e)) => {
                self.issue(
                    "plugins",
                    Some(type_name.to_string()),
                    format!("default instance: {e}"),
                );
                None
            }
            None => {
                self.issue(
                    "plugins",
                    None,
                    format!("the default plugin type {type_name:?} is not registered"),
                );
                None
            }
        }
    }
}

fn non_empty(v: serde_json::Value) -> Option<serde_json::Value> {
    match &v {
        serde_json::Value::Null => None,
        serde_json::Value::Object(m) if m.is_empty() => None,
        _ => Some(v),
    }
}

/// Resolves `config` against `registry`: applies the reference's system defaults, builds every
/// plugin and checks every reference.
///
/// # Errors
/// A [`ConfigError`] listing every problem, each with its path and plugin.
pub fn resolve(
    config: &EndpointPickerConfig,
    registry: &Registry,
) -> Result<ResolvedConfig, ConfigError> {
    let mut r = Resolver {
        registry,
        issues: Vec::new(),
        warnings: Vec::new(),
        instances: Vec::new(),
        types: Vec::new(),
        out: config.clone(),
    };
    r.out.plugins.clear();

    match config.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => r.issue(
            "apiVersion",
            None,
            format!("expected {API_VERSION:?}, got {other:?}"),
        ),
        None => r.issue(
            "apiVersion",
            None,
            format!("missing; expected {API_VERSION:?}"),
        ),
    }
    match config.kind.as_deref() {
        Some(KIND) => {}
        Some(other) => r.issue("kind", None, format!("expected {KIND:?}, got {other:?}")),
        None => r.issue("kind", None, format!("missing; expected {KIND:?}")),
    }
    for (i, gate) in config.feature_gates.iter().enumerate() {
        if !FEATURE_GATES.contains(&gate.as_str()) {
            r.issue(
                format!("featureGates[{i}]"),
                None,
                format!("unknown feature gate {gate:?}; expected one of {FEATURE_GATES:?}"),
            );
        }
    }

    // Instantiate plugins in list order.
    for (i, spec) in config.plugins.iter().enumerate() {
        let path = format!("plugins[{i}]");
        if spec.type_name.is_empty() {
            r.issue(
                format!("{path}.type"),
                spec.name.clone(),
                "missing plugin type",
            );
            continue;
        }
        let name = spec.instance_name().to_string();
        let label = format!("{name} ({})", spec.type_name);
        if r.find(&name).is_some() {
            r.issue(
                format!("{path}.name"),
                Some(label),
                format!("duplicate plugin name {name:?}"),
            );
            continue;
        }
        let cx = BuildContext {
            name: &name,
            type_name: &spec.type_name,
            earlier: &r.instances,
        };
        match registry.build(&spec.type_name, spec.parameters.as_ref(), &cx) {
            None => {
                let known: Vec<&str> = registry.type_names().collect();
                r.issue(
                    format!("{path}.type"),
                    Some(label),
                    format!(
                        "unknown plugin type {:?}; expected one of: {}",
                        spec.type_name,
                        known.join(", ")
                    ),
                );
            }
            Some(Err(e)) => {
                let field = if e.field.is_empty() {
                    format!("{path}.parameters")
                } else {
                    format!("{path}.parameters.{}", e.field)
                };
                r.issue(field, Some(label), e.message);
            }
            Some(Ok((plugin, params))) => {
                r.instances.push(NamedPlugin {
                    name: name.as_str().into(),
                    plugin,
                });
                r.types.push(spec.type_name.clone());
                r.out.plugins.push(PluginSpec {
                    name: Some(name),
                    type_name: spec.type_name.clone(),
                    parameters: non_empty(params),
                });
            }
        }
    }

    // No profiles: one `default` profile with every filter, scorer and picker.
    let mut profile_specs = config.scheduling_profiles.clone();
    if profile_specs.is_empty() {
        let plugins = r
            .instances
            .iter()
            .filter(|p| {
                p.plugin.as_filter().is_some()
                    || p.plugin.as_scorer().is_some()
                    || p.plugin.as_picker().is_some()
            })
            .map(|p| ProfilePluginRef {
                plugin_ref: p.name.to_string(),
                weight: None,
            })
            .collect();
        profile_specs.push(SchedulingProfileSpec {
            name: "default".to_string(),
            plugins,
        });
    }

    // Exactly one profile handler.
    let handlers: Vec<usize> = (0..r.instances.len())
        .filter(|&i| r.instances[i].plugin.as_profile_handler().is_some())
        .collect();
    let handler = match handlers.as_slice() {
        [] if profile_specs.len() == 1 => r
            .add_default("single-profile-handler")
            .and_then(|n| r.find(&n).map(|(_, p)| p.clone())),
        [] => {
            r.issue(
                "plugins",
                None,
                format!(
                    "{} scheduling profiles need a profile handler plugin; none is defined",
                    profile_specs.len()
                ),
            );
            None
        }
        [one] => Some(r.instances[*one].clone()),
        [_, second, ..] => {
            let label = r.label(*second);
            r.issue(
                "plugins",
                Some(label),
                "only one profile handler may be defined",
            );
            None
        }
    };
    if let Some(h) = &handler {
        let (i, _) = r.find(&h.name).unwrap_or((0, h));
        if r.types.get(i).map(String::as_str) == Some("single-profile-handler")
            && profile_specs.len() > 1
        {
            r.issue(
                "schedulingProfiles",
                Some(r.label(i)),
                format!(
                    "single-profile-handler runs exactly one profile, but {} are defined",
                    profile_specs.len()
                ),
            );
        }
    }

    // Profiles.
    let mut profiles = Vec::new();
    let mut profile_names = HashSet::new();
    for (j, spec) in profile_specs.iter_mut().enumerate() {
        let path = format!("schedulingProfiles[{j}]");
        if spec.name.is_empty() {
            r.issue(
                format!("{path}.name"),
                None,
                "profile names must not be empty",
            );
        } else if !profile_names.insert(spec.name.clone()) {
            r.issue(
                format!("{path}.name"),
                None,
                format!("duplicate profile name {:?}", spec.name),
            );
        }
        let mut filters = Vec::new();
        let mut scorers = Vec::new();
        let mut picker: Option<NamedPlugin> = None;
        for (k, pref) in spec.plugins.iter_mut().enumerate() {
            let ppath = format!("{path}.plugins[{k}]");
            let Some((i, p)) = r.find(&pref.plugin_ref).map(|(i, p)| (i, p.clone())) else {
                r.issue(
                    format!("{ppath}.pluginRef"),
                    None,
                    format!(
                        "no plugin named {:?} is defined under plugins",
                        pref.plugin_ref
                    ),
                );
                continue;
            };
            let label = r.label(i);
            let mut used = false;
            if p.plugin.as_filter().is_some() {
                filters.push(p.clone());
                used = true;
            }
            if p.plugin.as_scorer().is_some() {
                let w = *pref.weight.get_or_insert(1.0);
                if !w.is_finite() {
                    r.issue(
                        format!("{ppath}.weight"),
                        Some(label.clone()),
                        format!("expected a finite number, got {w}"),
                    );
                }
                scorers.push((p.clone(), w));
                used = true;
            } else if pref.weight.is_some() {
                r.warnings.push(format!(
                    "{ppath}: weight is ignored: {label} is not a scorer"
                ));
            }
            if p.plugin.as_picker().is_some() {
                if picker.is_some() {
                    r.issue(
                        format!("{ppath}.pluginRef"),
                        Some(label.clone()),
                        "a profile may have only one picker",
                    );
                } else {
                    picker = Some(p.clone());
                }
                used = true;
            }
            if !used {
                r.issue(
                    format!("{ppath}.pluginRef"),
                    Some(label),
                    "expected a filter, scorer or picker in a scheduling profile",
                );
            }
        }
        let picker = match picker {
            Some(p) => Some(p),
            None => {
                let first = r
                    .instances
                    .iter()
                    .find(|p| p.plugin.as_picker().is_some())
                    .cloned();
                let p = match first {
                    Some(p) => Some(p),
                    None => r
                        .add_default("max-score-picker")
                        .and_then(|n| r.find(&n).map(|(_, p)| p.clone())),
                };
                if let Some(p) = &p {
                    spec.plugins.push(ProfilePluginRef {
                        plugin_ref: p.name.to_string(),
                        weight: None,
                    });
                }
                p
            }
        };
        if let Some(picker) = picker {
            profiles.push(Profile {
                name: spec.name.as_str().into(),
                filters,
                scorers,
                picker,
            });
        }
    }
    r.out.scheduling_profiles = profile_specs;

    // Saturation detector.
    let detector = match &config.saturation_detector {
        Some(sd) => match r.find(&sd.plugin_ref).map(|(i, p)| (i, p.clone())) {
            Some((_, p)) if p.plugin.as_saturation_detector().is_some() => Some(p),
            Some((i, _)) => {
                let label = r.label(i);
                r.issue(
                    "saturationDetector.pluginRef",
                    Some(label),
                    "expected a saturation detector",
                );
                None
            }
            None => {
                r.issue(
                    "saturationDetector.pluginRef",
                    None,
                    format!(
                        "no plugin named {:?} is defined under plugins",
                        sd.plugin_ref
                    ),
                );
                None
            }
        },
        None => {
            let p = r
                .add_default("utilization-detector")
                .and_then(|n| r.find(&n).map(|(_, p)| p.clone()));
            if let Some(p) = &p {
                r.out.saturation_detector = Some(PluginRef {
                    plugin_ref: p.name.to_string(),
                });
            }
            p
        }
    };

    // Parser (acted on by the gateway binding).
    check_external_ref(
        &mut r,
        config.parser.as_ref().map(|p| p.plugin_ref.as_str()),
        "parser.pluginRef",
        ExternalRole::Parser,
    );
    if config.parser.is_none() {
        if let Some(n) = r.add_default("openai-parser") {
            r.out.parser = Some(PluginRef {
                plugin_ref: n.to_string(),
            });
        }
    }

    // Data layer (acted on by the scraper).
    let legacy_metrics = config
        .feature_gates
        .iter()
        .any(|g| g == "enableLegacyMetrics");
    match &config.data_layer {
        Some(dl) => {
            for (i, src) in dl.sources.iter().enumerate() {
                check_external_ref(
                    &mut r,
                    Some(&src.plugin_ref),
                    &format!("dataLayer.sources[{i}].pluginRef"),
                    ExternalRole::DataSource,
                );
                for (k, ex) in src.extractors.iter().enumerate() {
                    check_external_ref(
                        &mut r,
                        Some(&ex.plugin_ref),
                        &format!("dataLayer.sources[{i}].extractors[{k}].pluginRef"),
                        ExternalRole::DataExtractor,
                    );
                }
            }
        }
        None if !legacy_metrics => {
            let source = r.add_default("metrics-data-source");
            let extractor = r.add_default("core-metrics-extractor");
            if let (Some(s), Some(e)) = (source, extractor) {
                r.out.data_layer = Some(DataLayerSpec {
                    sources: vec![DataSourceSpec {
                        plugin_ref: s.to_string(),
                        extractors: vec![PluginRef {
                            plugin_ref: e.to_string(),
                        }],
                    }],
                });
            }
        }
        None => {}
    }

    // Flow control.
    let flow_gate = config.feature_gates.iter().any(|g| g == "flowControl");
    if let Some(fc) = &config.flow_control {
        if !flow_gate {
            r.warnings
                .push("flowControl is ignored: the flowControl feature gate is off".to_string());
        }
        for (field, q) in [
            ("maxBytes", &fc.max_bytes),
            ("maxRequests", &fc.max_requests),
        ] {
            if let Some(Err(e)) = q.as_ref().map(|q| q.value()) {
                r.issue(format!("flowControl.{field}"), None, e);
            }
        }
        if let Some(ttl) = &fc.default_request_ttl {
            if let Err(e) = super::parse_go_duration(ttl) {
                r.issue("flowControl.defaultRequestTTL", None, e);
            }
        }
        check_external_ref(
            &mut r,
            fc.usage_limit_policy_plugin_ref.as_deref(),
            "flowControl.usageLimitPolicyPluginRef",
            ExternalRole::UsageLimitPolicy,
        );
        let bands = fc
            .priority_bands
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("flowControl.priorityBands[{i}]"), b, true))
            .chain(
                fc.default_priority_band
                    .iter()
                    .map(|b| ("flowControl.defaultPriorityBand".to_string(), b, false)),
            );
        let mut priorities = HashSet::new();
        for (path, band, needs_priority) in bands {
            match band.priority {
                Some(p) if needs_priority && !priorities.insert(p) => r.issue(
                    format!("{path}.priority"),
                    None,
                    format!("duplicate priority {p}"),
                ),
                None if needs_priority => r.issue(
                    format!("{path}.priority"),
                    None,
                    "missing; expected an integer",
                ),
                _ => {}
            }
            for (field, q) in [
                ("maxBytes", &band.max_bytes),
                ("maxRequests", &band.max_requests),
            ] {
                if let Some(Err(e)) = q.as_ref().map(|q| q.value()) {
                    r.issue(format!("{path}.{field}"), None, e);
                }
            }
            check_external_ref(
                &mut r,
                band.fairness_policy_ref.as_deref(),
                &format!("{path}.fairnessPolicyRef"),
                ExternalRole::FairnessPolicy,
            );
            check_external_ref(
                &mut r,
                band.ordering_policy_ref.as_deref(),
                &format!("{path}.orderingPolicyRef"),
                ExternalRole::OrderingPolicy,
            );
        }
    }
    if flow_gate {
        for t in [
            "fcfs-ordering-policy",
            "global-strict-fairness-policy",
            "static-usage-limit-policy",
        ] {
            if !r.types.iter().any(|x| x == t) {
                r.add_default(t);
            }
        }
        r.warnings.push(
            "flowControl: pointsman's core does not queue requests; admission uses the saturation detector (sheddable requests get 429 when saturated)".to_string(),
        );
    }

    // Auto-create producers for consumed keys nobody produces.
    let mut missing: Vec<DataKey> = Vec::new();
    for p in &r.instances {
        for key in p.plugin.consumes() {
            let produced = r.instances.iter().any(|q| {
                q.plugin
                    .as_data_producer()
                    .is_some_and(|d| d.produces().contains(key))
            });
            if !produced && !missing.contains(key) {
                missing.push(*key);
            }
        }
    }
    for key in missing {
        r.add_default(key.default_producer());
    }

    if !r.issues.is_empty() {
        return Err(ConfigError::new(r.issues));
    }
    let (Some(handler), Some(detector)) = (handler, detector) else {
        return Err(ConfigError::single(
            "",
            None,
            "no profile handler or saturation detector could be created",
        ));
    };
    Ok(ResolvedConfig {
        config: r.out,
        plugins: r.instances,
        profiles,
        handler,
        detector,
        warnings: r.warnings,
    })
}

fn check_external_ref(r: &mut Resolver<'_>, name: Option<&str>, path: &str, role: ExternalRole) {
    let Some(name) = name else { return };
    match r.find(name).map(|(i, _)| i) {
        None => r.issue(
            path,
            None,
            format!("no plugin named {name:?} is defined under plugins"),
        ),
        Some(i) => {
            if r.registry.external_role(&r.types[i]) != Some(role) {
                let label = r.label(i);
                r.issue(
                    path,
                    Some(label),
                    format!("expected a plugin of role {role:?}"),
                );
            }
        }
    }
}

//! Loading EndpointPickerConfig YAML: the reference's examples, defaults, and errors that say
//! what, where and what was expected.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use pointsman::config::{EndpointPickerConfig, ResolvedConfig, resolve};
use pointsman::registry::Registry;

fn load(yaml: &str) -> Result<ResolvedConfig, pointsman::ConfigError> {
    resolve(
        &EndpointPickerConfig::from_yaml(yaml)?,
        &Registry::with_builtins(),
    )
}

fn error(yaml: &str) -> String {
    match load(yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

const HEADER: &str =
    "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n";

/// The realistic example of the reference notes, §4.2, verbatim.
const REFERENCE_4_2: &str = r#"
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl]
plugins:
- type: approx-prefix-cache-producer        # tuning for the prefix index
  parameters: {autoTune: true, blockSizeTokens: 16, maxPrefixBlocksToMatch: 256}
- type: prefix-cache-scorer                  # reads PrefixCacheMatchInfo
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: lora-affinity-scorer
- name: picker
  type: max-score-picker
  parameters: {maxNumOfEndpoints: 2}         # primary + 1 fallback
- type: utilization-detector
  parameters: {queueDepthThreshold: 8, kvCacheUtilThreshold: 0.85, metricsStalenessThreshold: 200ms, headroom: 0.2}
- type: round-robin-fairness-policy
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: lora-affinity-scorer, weight: 1}
  - {pluginRef: picker}
saturationDetector: {pluginRef: utilization-detector}
flowControl:
  maxBytes: 10Gi
  defaultRequestTTL: 60s
  priorityBands:
  - {priority: 100, maxRequests: 500, fairnessPolicyRef: round-robin-fairness-policy}
  - {priority: -1,  maxRequests: 200}
"#;

#[test]
fn reference_example_4_2_loads_with_its_defaults() {
    let r = load(REFERENCE_4_2).expect("§4.2 loads");
    let p = &r.profiles()[0];
    let weights: Vec<(&str, f64)> = p.scorers.iter().map(|(s, w)| (&*s.name, *w)).collect();
    assert_eq!(
        weights,
        vec![
            ("prefix-cache-scorer", 3.0),
            ("queue-scorer", 2.0),
            ("kv-cache-utilization-scorer", 2.0),
            ("lora-affinity-scorer", 1.0)
        ]
    );
    assert_eq!(&*p.picker.name, "picker");
    assert_eq!(
        r.profile_handler().plugin.type_name(),
        "single-profile-handler"
    );
    assert_eq!(&*r.saturation_detector().name, "utilization-detector");
    // "Defaults then add single-profile-handler, openai-parser, fcfs-ordering-policy,
    // global-strict-fairness-policy, static-usage-limit-policy, and the metrics source plus
    // extractor."
    for t in [
        "single-profile-handler",
        "openai-parser",
        "fcfs-ordering-policy",
        "global-strict-fairness-policy",
        "static-usage-limit-policy",
        "metrics-data-source",
        "core-metrics-extractor",
    ] {
        assert!(r.plugin(t).is_some(), "default {t} added");
    }
    // The explicit producer is used; no second one is created.
    let producers = r
        .plugins()
        .iter()
        .filter(|p| p.plugin.type_name() == "approx-prefix-cache-producer")
        .count();
    assert_eq!(producers, 1);
    assert!(r.feature_gate("flowControl"));
    assert!(
        !r.warnings().is_empty(),
        "flow-control queueing is reported as not acted on"
    );
}

#[test]
fn reference_default_4_3() {
    let r = resolve(
        &EndpointPickerConfig::default_config(),
        &Registry::with_builtins(),
    )
    .unwrap();
    let p = &r.profiles()[0];
    assert_eq!(&*p.name, "default");
    let weights: Vec<(&str, f64)> = p.scorers.iter().map(|(s, w)| (&*s.name, *w)).collect();
    assert_eq!(
        weights,
        vec![
            ("queue-scorer", 2.0),
            ("kv-cache-utilization-scorer", 2.0),
            ("prefix-cache-scorer", 3.0)
        ]
    );
    assert_eq!(p.picker.plugin.type_name(), "max-score-picker");
    for t in [
        "approx-prefix-cache-producer",
        "utilization-detector",
        "openai-parser",
        "single-profile-handler",
    ] {
        assert!(r.plugin(t).is_some(), "{t} added by default");
    }
    assert!(
        r.plugin("fcfs-ordering-policy").is_none(),
        "flow control stays off"
    );
}

#[test]
fn resolved_config_round_trips_through_yaml() {
    let r = load(REFERENCE_4_2).unwrap();
    let printed = r.config().to_yaml();
    let again = load(&printed).expect("the printed config loads");
    assert_eq!(
        again.config(),
        r.config(),
        "printing is a fixed point:\n{printed}"
    );
    assert!(
        printed.contains("lruCapacityPerServer: 31250"),
        "defaults are explicit:\n{printed}"
    );
}

#[test]
fn no_profiles_means_one_default_profile_with_everything() {
    let r = load(&format!(
        "{HEADER}plugins:\n- type: queue-scorer\n- type: low-queue-filter\n- type: random-picker\n"
    ))
    .unwrap();
    let p = &r.profiles()[0];
    assert_eq!(&*p.name, "default");
    assert_eq!(p.filters.len(), 1);
    assert_eq!(p.scorers[0].1, 1.0, "weight defaults to 1");
    assert_eq!(p.picker.plugin.type_name(), "random-picker");
}

#[test]
fn bad_parameter_names_plugin_field_and_expectation() {
    let e = error(&format!(
        "{HEADER}plugins:\n- type: queue-scorer\n- name: prefix\n  type: approx-prefix-cache-producer\n  parameters: {{blockSizeTokens: 0}}\n"
    ));
    assert!(
        e.contains("plugins[1].parameters.blockSizeTokens (prefix (approx-prefix-cache-producer)): expected an integer ≥ 1, got 0"),
        "{e}"
    );
    let e = error(&format!(
        "{HEADER}plugins:\n- type: max-score-picker\n  parameters: {{maxNumOfEndpoints: many}}\n"
    ));
    assert!(e.contains("plugins[0].parameters.maxNumOfEndpoints (max-score-picker (max-score-picker)): invalid type"), "{e}");
    let e = error(&format!(
        "{HEADER}plugins:\n- type: utilization-detector\n  parameters: {{metricsStalenessThreshold: soon}}\n"
    ));
    assert!(
        e.contains("metricsStalenessThreshold") && e.contains("expected a duration"),
        "{e}"
    );
}

#[test]
fn unknown_fields_types_and_references_are_errors() {
    let e = error(&format!(
        "{HEADER}plugins:\n- type: queue-scorer\n  paramters: {{}}\n"
    ));
    assert!(
        e.contains("unknown field `paramters`") && e.contains("line"),
        "{e}"
    );
    let e = error(&format!(
        "{HEADER}plugins:\n- type: queue-scorer\n  parameters: {{foo: 1}}\n"
    ));
    assert!(
        e.contains("plugins[0].parameters") && e.contains("unknown field `foo`"),
        "{e}"
    );
    let e = error(&format!("{HEADER}plugins:\n- type: qeueu-scorer\n"));
    assert!(e.contains("plugins[0].type (qeueu-scorer (qeueu-scorer)): unknown plugin type \"qeueu-scorer\"; expected one of:"), "{e}");
    assert!(e.contains("queue-scorer"), "lists the known types: {e}");
    let e = error(&format!(
        "{HEADER}plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue\n"
    ));
    assert!(
        e.contains("schedulingProfiles[0].plugins[0].pluginRef: no plugin named \"queue\""),
        "{e}"
    );
    let e = error(&format!(
        "{HEADER}plugins:\n- type: queue-scorer\nsaturationDetector: {{pluginRef: queue-scorer}}\n"
    ));
    assert!(e.contains("saturationDetector.pluginRef (queue-scorer (queue-scorer)): expected a saturation detector"), "{e}");
}

#[test]
fn structural_errors_are_all_reported() {
    let yaml = "apiVersion: v2\nkind: EndpointPickerConfig\nfeatureGates: [warpDrive]\nplugins:\n- type: queue-scorer\n- type: queue-scorer\n- type: max-score-picker\n- name: p2\n  type: random-picker\nschedulingProfiles:\n- name: a\n  plugins: [{pluginRef: max-score-picker}, {pluginRef: p2}]\n";
    let e = error(yaml);
    assert!(e.contains("4 problems"), "{e}");
    assert!(e.contains("apiVersion: expected"), "{e}");
    assert!(
        e.contains("featureGates[0]: unknown feature gate \"warpDrive\""),
        "{e}"
    );
    assert!(
        e.contains("plugins[1].name (queue-scorer (queue-scorer)): duplicate plugin name"),
        "{e}"
    );
    assert!(e.contains("a profile may have only one picker"), "{e}");
}

#[test]
fn several_profiles_need_a_handler_and_not_the_single_one() {
    let two = "plugins:\n- type: random-picker\nschedulingProfiles:\n- {name: a, plugins: [{pluginRef: random-picker}]}\n- {name: b, plugins: [{pluginRef: random-picker}]}\n";
    let e = error(&format!("{HEADER}{two}"));
    assert!(
        e.contains("2 scheduling profiles need a profile handler"),
        "{e}"
    );
    let e = error(&format!(
        "{HEADER}{}",
        two.replacen(
            "plugins:\n",
            "plugins:\n- type: single-profile-handler\n",
            1
        )
    ));
    assert!(
        e.contains("single-profile-handler runs exactly one profile, but 2 are defined"),
        "{e}"
    );
}

#[test]
fn missing_header_and_malformed_yaml() {
    let e = error("plugins: []\n");
    assert!(
        e.contains("apiVersion: missing") && e.contains("kind: missing"),
        "{e}"
    );
    let e = error(&format!("{HEADER}plugins: [\n"));
    assert!(e.contains("line"), "{e}");
}

#[test]
fn legacy_type_names_and_v05_parameters_load() {
    let r = load(&format!(
        "{HEADER}plugins:\n- type: kv-cache-scorer\n- type: prefix-cache-scorer\n  parameters: {{hashBlockSize: 64, maxPrefixBlocksToMatch: 128, lruCapacityPerServer: 5000}}\n"
    ))
    .unwrap();
    assert!(r.plugin("kv-cache-scorer").is_some());
    assert!(
        r.plugin("approx-prefix-cache-producer").is_none(),
        "a scorer with producer parameters runs its own producer"
    );
    assert_eq!(
        r.parameters_of("prefix-cache-scorer")
            .and_then(|p| p.get("blockSize"))
            .and_then(|v| v.as_u64()),
        Some(64)
    );
}

#[test]
fn decision_tree_references_are_checked() {
    let e = error(&format!(
        "{HEADER}plugins:\n- type: decision-tree-filter\n  parameters: {{current: {{pluginRef: low-queue-filter}}}}\n- type: low-queue-filter\n"
    ));
    assert!(
        e.contains("plugins[0].parameters.current.pluginRef") && e.contains("undefined plugin"),
        "{e}"
    );
    let e = error(&format!(
        "{HEADER}plugins:\n- type: queue-scorer\n- type: decision-tree-filter\n  parameters: {{current: {{pluginRef: queue-scorer}}}}\n"
    ));
    assert!(e.contains("\"queue-scorer\" is not a filter"), "{e}");
    let e = error(&format!(
        "{HEADER}plugins:\n- type: low-queue-filter\n- type: decision-tree-filter\n  parameters: {{current: {{pluginRef: low-queue-filter}}, nextOnFailure: {{}}}}\n"
    ));
    assert!(
        e.contains("nextOnFailure") && e.contains("either pluginRef or decisionTree"),
        "{e}"
    );
}

//! The public API: thread-safety, custom plugins registered by users.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use pointsman::cycle::{Candidates, CycleContext};
use pointsman::plugin::{Plugin, Scorer, ScorerCategory};
use pointsman::registry::{PluginParams, Registry};
use pointsman::testing::{TEST_NOW, pool};
use pointsman::time::ManualClock;
use pointsman::{EndpointPickerConfig, Request, Scheduler};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Scheduler>();
    check::<pointsman::Pool>();
    check::<pointsman::PoolSnapshot>();
    check::<pointsman::Decision>();
    check::<pointsman::SchedulingError>();
    check::<pointsman::ConfigError>();
    check::<Registry>();
    check::<Arc<dyn Plugin>>();
}

/// A user-defined scorer: prefer endpoints carrying a label value.
#[derive(Debug)]
struct LabelScorer {
    key: String,
    value: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LabelParams {
    key: String,
    value: String,
}

impl PluginParams for LabelParams {
    fn validate(&self) -> Result<(), pointsman::error::ParamError> {
        if self.key.is_empty() {
            return Err(pointsman::error::ParamError::new(
                "key",
                "expected a non-empty label key",
            ));
        }
        Ok(())
    }
}

impl Scorer for LabelScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Affinity
    }
    fn score(&self, _cx: &CycleContext<'_>, candidates: Candidates<'_>, out: &mut [f64]) {
        for (o, e) in out.iter_mut().zip(candidates.iter()) {
            *o = if e.endpoint().label(&self.key) == Some(self.value.as_str()) {
                1.0
            } else {
                0.0
            };
        }
    }
}

impl Plugin for LabelScorer {
    fn type_name(&self) -> &str {
        "label-scorer"
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        Some(self)
    }
}

#[test]
fn user_plugins_load_from_yaml_beside_builtins() {
    let mut registry = Registry::with_builtins();
    registry
        .register("label-scorer", |p: LabelParams, _| {
            Ok(LabelScorer {
                key: p.key,
                value: p.value,
            })
        })
        .unwrap();
    let yaml = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n- type: label-scorer\n  parameters: {key: zone, value: near}\nschedulingProfiles:\n- name: default\n  plugins: [{pluginRef: queue-scorer}, {pluginRef: label-scorer, weight: 5}]\n";
    let s = Scheduler::builder()
        .registry(registry)
        .seed(1)
        .clock(Arc::new(ManualClock::new(TEST_NOW)))
        .build(&EndpointPickerConfig::from_yaml(yaml).unwrap())
        .unwrap();
    pool()
        .endpoint("far")
        .queue(0)
        .label("zone", "far")
        .endpoint("near")
        .queue(9)
        .label("zone", "near")
        .fill(s.pool());
    let d = s.schedule(&Request::new("r", "m")).unwrap();
    assert_eq!(d.primary().unwrap().endpoint().name(), "near");

    let mut registry = Registry::with_builtins();
    registry
        .register("label-scorer", |p: LabelParams, _| {
            Ok(LabelScorer {
                key: p.key,
                value: p.value,
            })
        })
        .unwrap();
    let bad = yaml.replace("key: zone", "key: ''");
    let err = Scheduler::builder()
        .registry(registry)
        .build(&EndpointPickerConfig::from_yaml(&bad).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("plugins[1].parameters.key (label-scorer (label-scorer)): expected a non-empty label key"), "{err}");
}

#[test]
fn registering_a_builtin_name_again_is_refused() {
    let mut r = Registry::with_builtins();
    let err = r.register("queue-scorer", |_: pointsman::registry::NoParams, _| {
        Ok(LabelScorer {
            key: String::new(),
            value: String::new(),
        })
    });
    assert!(err.is_err());
    assert!(r.type_names().count() >= 30, "every built-in is registered");
}

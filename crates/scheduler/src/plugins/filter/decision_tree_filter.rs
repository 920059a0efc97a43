//! `decision-tree-filter` (legacy, v0.5): a flow chart of filters.
//!
//! ```text
//! run(node, input):
//!   out = current(input)
//!   if out is non-empty: next = nextOnSuccess ?? nextOnSuccessOrFailure; return next ? run(next, out) : out
//!   else:                next = nextOnFailure ?? nextOnSuccessOrFailure; return next ? run(next, input) : out
//! ```
//!
//! On failure the *original* input goes to the next node. Each entry is either
//! `{pluginRef: <filter instance defined earlier in plugins>}` or `{decisionTree: {…}}`.
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `current` | entry (required) | the filter at this node |
//! | `nextOnSuccess` | entry | applied to the result when it is non-empty |
//! | `nextOnFailure` | entry | applied to the input when the result is empty |
//! | `nextOnSuccessOrFailure` | entry | either, when the specific one is absent |
//!
//! See [the filter module](super) for the reference's default tree as YAML.

use crate::cycle::{CandidateList, CycleContext, NamedPlugin};
use crate::error::ParamError;
use crate::plugin::{Filter, Plugin};
use crate::random::CycleRng;
use crate::registry::{BuildContext, PluginParams};
use serde::{Deserialize, Serialize};

/// The registered type name.
pub const TYPE_NAME: &str = "decision-tree-filter";

/// One node's parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// The filter at this node.
    #[serde(default)]
    pub current: Option<Entry>,
    /// Applied to a non-empty result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_on_success: Option<Entry>,
    /// Applied to the input when the result is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_on_failure: Option<Entry>,
    /// Applied either way when the specific branch is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_on_success_or_failure: Option<Entry>,
}

/// A reference to a filter instance, or a nested tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// A filter instance defined earlier under `plugins`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_ref: Option<String>,
    /// A nested tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_tree: Option<Box<Params>>,
}

impl PluginParams for Params {
    fn validate(&self) -> Result<(), ParamError> {
        fn check(p: &Params, path: &str) -> Result<(), ParamError> {
            let Some(current) = &p.current else {
                return Err(ParamError::new(
                    format!("{path}current"),
                    "a current filter must be specified",
                ));
            };
            for (name, e) in [
                ("current", Some(current)),
                ("nextOnSuccess", p.next_on_success.as_ref()),
                ("nextOnFailure", p.next_on_failure.as_ref()),
                (
                    "nextOnSuccessOrFailure",
                    p.next_on_success_or_failure.as_ref(),
                ),
            ] {
                let Some(e) = e else { continue };
                match (&e.plugin_ref, &e.decision_tree) {
                    (Some(_), Some(_)) => {
                        return Err(ParamError::new(
                            format!("{path}{name}"),
                            "both pluginRef and decisionTree may not be specified",
                        ));
                    }
                    (None, None) => {
                        return Err(ParamError::new(
                            format!("{path}{name}"),
                            "either pluginRef or decisionTree must be specified",
                        ));
                    }
                    (None, Some(tree)) => check(tree, &format!("{path}{name}.decisionTree."))?,
                    (Some(_), None) => {}
                }
            }
            Ok(())
        }
        check(self, "")
    }
}

#[derive(Debug, Clone)]
enum Node {
    Filter(NamedPlugin),
    Tree(Box<DecisionTreeFilter>),
}

impl Node {
    fn run(&self, cx: &CycleContext<'_>, rng: &mut CycleRng, list: &mut CandidateList<'_>) {
        match self {
            Node::Filter(p) => {
                if let Some(f) = p.plugin.as_filter() {
                    f.filter(cx, rng, list);
                }
            }
            Node::Tree(t) => t.filter(cx, rng, list),
        }
    }
}

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct DecisionTreeFilter {
    current: Node,
    on_success: Option<Node>,
    on_failure: Option<Node>,
    on_either: Option<Node>,
}

impl DecisionTreeFilter {
    /// Builds the tree, resolving `pluginRef`s among the instances defined before it.
    ///
    /// # Errors
    /// A [`ParamError`] naming the entry whose reference is undefined or not a filter.
    pub fn build(params: &Params, cx: &BuildContext<'_>) -> Result<Self, ParamError> {
        Self::build_at(params, cx, "")
    }

    fn build_at(params: &Params, cx: &BuildContext<'_>, path: &str) -> Result<Self, ParamError> {
        let node = |name: &str, e: &Option<Entry>| -> Result<Option<Node>, ParamError> {
            let Some(e) = e else { return Ok(None) };
            let at = format!("{path}{name}");
            if let Some(r) = &e.plugin_ref {
                let p = cx.plugin(r).ok_or_else(|| {
                    ParamError::new(format!("{at}.pluginRef"), format!("{r:?} is a reference to an undefined plugin (filters must be defined before the tree)"))
                })?;
                if p.plugin.as_filter().is_none() {
                    return Err(ParamError::new(
                        format!("{at}.pluginRef"),
                        format!("{r:?} is not a filter"),
                    ));
                }
                return Ok(Some(Node::Filter(p.clone())));
            }
            match &e.decision_tree {
                Some(t) => Ok(Some(Node::Tree(Box::new(Self::build_at(
                    t,
                    cx,
                    &format!("{at}.decisionTree."),
                )?)))),
                None => Err(ParamError::new(
                    at,
                    "either pluginRef or decisionTree must be specified",
                )),
            }
        };
        let current = node("current", &params.current)?.ok_or_else(|| {
            ParamError::new(
                format!("{path}current"),
                "a current filter must be specified",
            )
        })?;
        Ok(DecisionTreeFilter {
            current,
            on_success: node("nextOnSuccess", &params.next_on_success)?,
            on_failure: node("nextOnFailure", &params.next_on_failure)?,
            on_either: node("nextOnSuccessOrFailure", &params.next_on_success_or_failure)?,
        })
    }
}

impl Filter for DecisionTreeFilter {
    fn filter(&self, cx: &CycleContext<'_>, rng: &mut CycleRng, list: &mut CandidateList<'_>) {
        let input = list.save();
        self.current.run(cx, rng, list);
        if !list.is_empty() {
            if let Some(next) = self.on_success.as_ref().or(self.on_either.as_ref()) {
                next.run(cx, rng, list);
            }
        } else if let Some(next) = self.on_failure.as_ref().or(self.on_either.as_ref()) {
            list.restore(&input);
            next.run(cx, rng, list);
        }
    }
}

impl Plugin for DecisionTreeFilter {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

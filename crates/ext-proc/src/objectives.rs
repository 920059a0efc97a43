//! Objective name → priority, the picker's stand-in for `InferenceObjective` resources.
//!
//! The header `x-gateway-inference-objective` names an objective; its priority orders
//! admission (negative priorities are sheddable, `epp-reference.md` §7.1). Unknown objectives
//! and requests without the header get priority 0, as in the reference.
//!
//! A file maps names to priorities, in YAML or JSON:
//!
//! ```yaml
//! batch: -1
//! interactive: 10
//! ```

use std::collections::HashMap;

/// A problem in an objectives table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectivesError {
    /// The file is not a map of names to integers.
    #[error(
        "objectives: expected a map of objective name to integer priority, e.g. `batch: -1`: {0}"
    )]
    Format(String),
    /// A `NAME=PRIORITY` entry is malformed.
    #[error("objective {0:?}: expected NAME=PRIORITY, e.g. batch=-1")]
    Entry(String),
}

/// Objective name → priority.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Objectives(HashMap<String, i32>);

impl Objectives {
    /// Parses a YAML or JSON map.
    ///
    /// ```
    /// use pointsman_extproc::objectives::Objectives;
    /// let o = Objectives::from_yaml("batch: -1\ninteractive: 10\n")?;
    /// assert_eq!(o.priority("batch"), -1);
    /// assert_eq!(o.priority("unknown"), 0);
    /// # Ok::<(), pointsman_extproc::objectives::ObjectivesError>(())
    /// ```
    ///
    /// # Errors
    /// [`ObjectivesError::Format`] when the text is not such a map.
    pub fn from_yaml(text: &str) -> Result<Self, ObjectivesError> {
        if text.trim().is_empty() {
            return Ok(Objectives::default());
        }
        serde_yaml_ng::from_str::<HashMap<String, i32>>(text)
            .map(Objectives)
            .map_err(|e| ObjectivesError::Format(e.to_string()))
    }

    /// Adds `NAME=PRIORITY`.
    ///
    /// # Errors
    /// [`ObjectivesError::Entry`] when `entry` is not of that form.
    pub fn add_entry(&mut self, entry: &str) -> Result<(), ObjectivesError> {
        let bad = || ObjectivesError::Entry(entry.to_string());
        let (name, priority) = entry.split_once('=').ok_or_else(bad)?;
        let priority = priority.trim().parse().map_err(|_| bad())?;
        if name.trim().is_empty() {
            return Err(bad());
        }
        self.0.insert(name.trim().to_string(), priority);
        Ok(())
    }

    /// The priority of `name`; 0 when unknown.
    pub fn priority(&self, name: &str) -> i32 {
        self.0.get(name).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let mut o = Objectives::default();
        o.add_entry("a=-3").unwrap();
        assert_eq!(o.priority("a"), -3);
        assert!(o.add_entry("a").is_err());
        assert!(o.add_entry("=1").is_err());
        assert!(o.add_entry("a=x").is_err());
        assert!(Objectives::from_yaml("- a").is_err());
    }
}

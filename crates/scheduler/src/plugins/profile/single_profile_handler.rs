//! `single-profile-handler`: runs the one profile once; its result is primary.
//!
//! ```text
//! pick:    every profile, if none has run yet; then nothing
//! results: the single profile's result, or its error
//! ```
//!
//! A configuration with more than one profile and this handler is rejected at load time.
//! Parameters: none.
//!
//! ```yaml
//! plugins:
//! - type: single-profile-handler
//! ```
//!
//! # Differs from the reference
//! A failed profile's own error (for example which filter left no endpoints) is returned, with
//! the same status (429), instead of "failed to run scheduler profile".

use crate::cycle::CycleContext;
use crate::error::SchedulingError;
use crate::plugin::{Plugin, ProfileHandler, ProfileOutcome};
use std::sync::Arc;

/// The registered type name.
pub const TYPE_NAME: &str = "single-profile-handler";

/// See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProfileHandler;

impl ProfileHandler for SingleProfileHandler {
    fn pick_profiles(
        &self,
        _cx: &CycleContext<'_>,
        profiles: &[Arc<str>],
        outcomes: &[ProfileOutcome],
        out: &mut Vec<usize>,
    ) {
        if outcomes.iter().all(|o| matches!(o, ProfileOutcome::NotRun)) {
            out.extend(0..profiles.len());
        }
    }

    fn process_results(
        &self,
        _cx: &CycleContext<'_>,
        profiles: &[Arc<str>],
        outcomes: &[ProfileOutcome],
    ) -> Result<usize, SchedulingError> {
        match outcomes {
            [ProfileOutcome::Picked(_)] => Ok(0),
            [ProfileOutcome::Failed(e)] => Err(e.clone()),
            [ProfileOutcome::NotRun] => Err(SchedulingError::ProfileFailed {
                reason: format!(
                    "failed to run scheduler profile '{}'",
                    profiles.first().map_or("", |p| &**p)
                ),
            }),
            _ => Err(SchedulingError::ProfileFailed {
                reason: format!(
                    "single profile handler expects exactly one profile, got {}",
                    outcomes.len()
                ),
            }),
        }
    }
}

impl Plugin for SingleProfileHandler {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_profile_handler(&self) -> Option<&dyn ProfileHandler> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::CycleData;
    use crate::request::Request;
    use crate::testing::{TEST_NOW, pool};

    #[test]
    fn runs_once_and_returns_the_result() {
        let snap = pool().endpoint("a").snapshot();
        let req = Request::new("t", "m");
        let cx = CycleContext {
            request: &req,
            pool: &snap,
            now: TEST_NOW,
            data: &CycleData::empty(),
        };
        let names: Vec<Arc<str>> = vec!["default".into()];
        let mut out = Vec::new();
        SingleProfileHandler.pick_profiles(&cx, &names, &[ProfileOutcome::NotRun], &mut out);
        assert_eq!(out, vec![0]);
        out.clear();
        let picked = ProfileOutcome::Picked(Default::default());
        SingleProfileHandler.pick_profiles(&cx, &names, std::slice::from_ref(&picked), &mut out);
        assert!(out.is_empty());
        assert_eq!(
            SingleProfileHandler.process_results(&cx, &names, &[picked]),
            Ok(0)
        );
        let failed = ProfileOutcome::Failed(SchedulingError::NoCandidates);
        assert_eq!(
            SingleProfileHandler.process_results(&cx, &names, &[failed]),
            Err(SchedulingError::NoCandidates)
        );
        let e = SingleProfileHandler
            .process_results(&cx, &names, &[ProfileOutcome::NotRun])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to find target endpoint: failed to run scheduler profile 'default'"
        );
    }
}

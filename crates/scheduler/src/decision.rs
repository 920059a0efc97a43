//! The result of scheduling one request.

use crate::endpoint::EndpointId;
use crate::pool::{EndpointState, PoolSnapshot};
use smallvec::SmallVec;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What one profile picked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileResult {
    /// The picked endpoints, primary first, then fallbacks.
    pub targets: SmallVec<[EndpointId; 2]>,
    /// Their positions in the snapshot's endpoint list.
    pub(crate) positions: SmallVec<[u32; 2]>,
    /// Every candidate's total score, when scores were recorded (see
    /// [`ScheduleOptions::record_scores`](crate::ScheduleOptions::record_scores)).
    pub scores: Vec<(EndpointId, f64)>,
}

/// One profile that ran and picked.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRun {
    /// The profile's name.
    pub name: Arc<str>,
    /// What it picked.
    pub result: ProfileResult,
}

/// The results of every profile that picked, and which one is primary.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleResult {
    /// The successful profile runs.
    pub profiles: SmallVec<[ProfileRun; 1]>,
    /// The index in `profiles` of the primary profile.
    pub primary: usize,
    /// The request's estimated tokens (input + output), used by in-flight accounting.
    pub token_estimate: u64,
}

impl ScheduleResult {
    /// The primary profile's run.
    pub fn primary(&self) -> Option<&ProfileRun> {
        self.profiles.get(self.primary)
    }

    /// The run of the profile named `name`.
    pub fn profile(&self, name: &str) -> Option<&ProfileRun> {
        self.profiles.iter().find(|p| &*p.name == name)
    }
}

/// A scheduling decision: where the request goes, with the snapshot it was made on.
///
/// Hand it back to [`Scheduler::complete`](crate::Scheduler::complete) when the response ends, so
/// that stateful plugins (in-flight counters) release it.
#[derive(Debug)]
pub struct Decision {
    pub(crate) snapshot: Arc<PoolSnapshot>,
    pub(crate) result: ScheduleResult,
    pub(crate) started: AtomicBool,
    pub(crate) completed: AtomicBool,
}

impl Decision {
    pub(crate) fn new(snapshot: Arc<PoolSnapshot>, result: ScheduleResult) -> Self {
        Decision {
            snapshot,
            result,
            started: AtomicBool::new(false),
            completed: AtomicBool::new(false),
        }
    }

    /// The full result.
    pub fn result(&self) -> &ScheduleResult {
        &self.result
    }

    /// The pool snapshot the decision was made on.
    pub fn snapshot(&self) -> &Arc<PoolSnapshot> {
        &self.snapshot
    }

    /// The primary profile's picks, primary first, then fallbacks.
    pub fn endpoints(&self) -> impl Iterator<Item = &EndpointState> {
        let snapshot = &self.snapshot;
        self.result
            .primary()
            .into_iter()
            .flat_map(|run| run.result.positions.iter())
            .filter_map(move |&p| snapshot.endpoints().get(p as usize).map(|s| &**s))
    }

    /// The primary destination.
    pub fn primary(&self) -> Option<&EndpointState> {
        self.endpoints().next()
    }

    /// The endpoints a profile picked, by profile name.
    pub fn profile_endpoints<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a EndpointState> {
        let snapshot = &self.snapshot;
        self.result
            .profile(name)
            .into_iter()
            .flat_map(|run| run.result.positions.iter())
            .filter_map(move |&p| snapshot.endpoints().get(p as usize).map(|s| &**s))
    }

    /// The value of `x-gateway-destination-endpoint`: the primary profile's picks as
    /// `ip:port[,ip:port…]`.
    pub fn destination(&self) -> String {
        let mut s = String::new();
        self.write_destination(&mut s);
        s
    }

    /// Appends [`destination`](Self::destination) to `out`.
    pub fn write_destination(&self, out: &mut String) {
        for (i, e) in self.endpoints().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = out.write_str(e.endpoint().host_port());
        }
    }

    /// Whether the decision was already completed.
    pub fn is_completed(&self) -> bool {
        self.completed.load(Ordering::Acquire)
    }
}

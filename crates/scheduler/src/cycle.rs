//! The scheduling cycle's working data and the profile runner.
//!
//! A cycle sees the request, one [`PoolSnapshot`], the time, and the [`CycleData`] that data
//! producers wrote. Candidates are positions into the snapshot's endpoint list
//! ([`Candidates`] to read them, [`CandidateList`] to narrow them); every buffer lives in a
//! per-thread scratch area reused from cycle to cycle, so a cycle allocates nothing once warm.
//!
//! # Running a profile
//! 1. Filters run in order, each on the previous one's output; the first that leaves no candidate
//!    ends the profile with [`SchedulingError::AllFilteredOut`].
//! 2. Every candidate's total starts at 0. For each scorer, in order, its scores are clamped into
//!    `[0, 1]` (NaN counts as 0) and `weight × score` is added. Totals are not divided by the sum
//!    of weights (the reference does not either; it changes no pick).
//! 3. The picker reorders the scored candidates; its first picks are the profile's result.

use crate::decision::ProfileResult;
use crate::endpoint::EndpointId;
use crate::error::SchedulingError;
use crate::plugin::Plugin;
use crate::pool::{EndpointState, PoolSnapshot};
use crate::random::CycleRng;
use crate::request::Request;
use crate::time::Timestamp;
use smallvec::SmallVec;
use std::sync::Arc;

/// What every plugin sees during a cycle.
#[derive(Debug, Clone, Copy)]
pub struct CycleContext<'a> {
    /// The request being scheduled.
    pub request: &'a Request<'a>,
    /// The pool snapshot the whole cycle uses.
    pub pool: &'a PoolSnapshot,
    /// The time at the start of the cycle.
    pub now: Timestamp,
    /// Data written by producers (empty while producers run).
    pub data: &'a CycleData,
}

/// A read-only list of candidates.
#[derive(Debug, Clone, Copy)]
pub struct Candidates<'a> {
    states: &'a [Arc<EndpointState>],
    positions: &'a [u32],
}

impl<'a> Candidates<'a> {
    pub(crate) fn new(states: &'a [Arc<EndpointState>], positions: &'a [u32]) -> Self {
        Candidates { states, positions }
    }

    /// The number of candidates.
    #[inline]
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The `i`-th candidate.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a EndpointState> {
        let p = *self.positions.get(i)? as usize;
        self.states.get(p).map(|s| &**s)
    }

    /// The candidates in order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a EndpointState> + use<'a> {
        let states = self.states;
        // Positions are produced from `states` itself and only ever narrowed, so they are in
        // bounds; `filter_map` keeps this panic-free regardless.
        self.positions
            .iter()
            .map(move |&p| states.get(p as usize).map_or_else(missing_state, |s| &**s))
    }
}

#[cold]
fn missing_state<'a>() -> &'a EndpointState {
    // Unreachable: candidate positions index the snapshot they were taken from. Returning a
    // placeholder (rather than panicking) keeps library code panic-free.
    static PLACEHOLDER: std::sync::OnceLock<EndpointState> = std::sync::OnceLock::new();
    PLACEHOLDER.get_or_init(EndpointState::placeholder)
}

/// The candidate list a filter narrows. It can only shrink.
#[derive(Debug)]
pub struct CandidateList<'a> {
    states: &'a [Arc<EndpointState>],
    positions: &'a mut Vec<u32>,
}

impl<'a> CandidateList<'a> {
    pub(crate) fn new(states: &'a [Arc<EndpointState>], positions: &'a mut Vec<u32>) -> Self {
        CandidateList { states, positions }
    }

    /// The number of candidates.
    #[inline]
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// A read-only view.
    #[inline]
    pub fn as_candidates(&self) -> Candidates<'_> {
        Candidates::new(self.states, self.positions)
    }

    /// The candidates in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &EndpointState> + '_ {
        Candidates::new(self.states, self.positions).iter()
    }

    /// Keeps the candidates for which `keep` returns `true`, in order.
    #[inline]
    pub fn retain(&mut self, mut keep: impl FnMut(&EndpointState) -> bool) {
        let states = self.states;
        self.positions
            .retain(|&p| states.get(p as usize).is_some_and(|s| keep(s)));
    }

    /// Keeps the candidates whose index `i` (in the current order) satisfies `keep(i, state)`.
    pub fn retain_indexed(&mut self, mut keep: impl FnMut(usize, &EndpointState) -> bool) {
        let states = self.states;
        let mut i = 0;
        self.positions.retain(|&p| {
            let k = states.get(p as usize).is_some_and(|s| keep(i, s));
            i += 1;
            k
        });
    }

    /// Saves the current list, to be restored by [`restore`](Self::restore) (used by filters
    /// that try a branch and fall back, like `decision-tree-filter`).
    pub fn save(&self) -> SavedCandidates {
        SavedCandidates(self.positions.iter().copied().collect())
    }

    /// Restores a list saved from this list earlier in the same filter call. Positions not in
    /// the snapshot are dropped, so the list can never gain endpoints the cycle did not offer.
    pub fn restore(&mut self, saved: &SavedCandidates) {
        let n = self.states.len();
        self.positions.clear();
        self.positions
            .extend(saved.0.iter().copied().filter(|&p| (p as usize) < n));
    }
}

/// A saved candidate list; see [`CandidateList::save`].
#[derive(Debug, Clone, Default)]
pub struct SavedCandidates(SmallVec<[u32; 16]>);

impl SavedCandidates {
    /// The number of saved candidates.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether none were saved.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One candidate with its total score, as pickers see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredCandidate {
    /// The endpoint.
    pub endpoint: EndpointId,
    /// Its position in the snapshot's endpoint list.
    pub position: u32,
    /// The weighted sum of its clamped scores.
    pub score: f64,
}

/// A prefix-cache match for one endpoint (the reference's `PrefixCacheMatchInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrefixCacheMatchInfo {
    /// Leading blocks of the prompt the endpoint is believed to hold.
    pub matched_blocks: u32,
    /// Blocks in the prompt.
    pub total_blocks: u32,
    /// Block size in tokens.
    pub block_size_tokens: u32,
}

/// In-flight load on one endpoint, as counted by the picker itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InFlightLoad {
    /// Requests scheduled to the endpoint and not yet complete.
    pub requests: u64,
    /// Their estimated tokens (input + output).
    pub tokens: u64,
}

/// Per-request data written by producers and read by scorers and filters.
///
/// Values are indexed by endpoint slot ([`EndpointId::index`]).
#[derive(Debug, Default)]
pub struct CycleData {
    prefix_present: bool,
    prefix_total_blocks: u32,
    prefix_block_size_tokens: u32,
    prefix_matched: Vec<u32>,
    prefix_hashes: Vec<u64>,
    inflight_present: bool,
    inflight: Vec<InFlightLoad>,
}

impl CycleData {
    /// Empty data, as producers see it while they run.
    pub const fn empty() -> Self {
        CycleData {
            prefix_present: false,
            prefix_total_blocks: 0,
            prefix_block_size_tokens: 0,
            prefix_matched: Vec::new(),
            prefix_hashes: Vec::new(),
            inflight_present: false,
            inflight: Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.prefix_present = false;
        self.prefix_hashes.clear();
        self.inflight_present = false;
    }

    /// The prefix match of endpoint `id`, if a prefix producer ran.
    #[inline]
    pub fn prefix_match(&self, id: EndpointId) -> Option<PrefixCacheMatchInfo> {
        if !self.prefix_present {
            return None;
        }
        Some(PrefixCacheMatchInfo {
            matched_blocks: self.prefix_matched.get(id.index()).copied().unwrap_or(0),
            total_blocks: self.prefix_total_blocks,
            block_size_tokens: self.prefix_block_size_tokens,
        })
    }

    /// Starts writing prefix matches for a prompt of `total_blocks` blocks: returns the zeroed
    /// per-slot match counts (length `slots`) and the buffer for the prompt's block hashes.
    pub fn begin_prefix_matches(
        &mut self,
        slots: usize,
        total_blocks: u32,
        block_size_tokens: u32,
    ) -> (&mut [u32], &mut Vec<u64>) {
        self.prefix_present = true;
        self.prefix_total_blocks = total_blocks;
        self.prefix_block_size_tokens = block_size_tokens;
        self.prefix_matched.clear();
        self.prefix_matched.resize(slots, 0);
        (&mut self.prefix_matched, &mut self.prefix_hashes)
    }

    /// Sets the number of prompt blocks after hashing (see
    /// [`begin_prefix_matches`](Self::begin_prefix_matches)).
    pub fn set_prefix_total_blocks(&mut self, total_blocks: u32) {
        self.prefix_total_blocks = total_blocks;
    }

    /// The prompt's block hashes, as the prefix producer computed them.
    pub fn prefix_hashes(&self) -> &[u64] {
        &self.prefix_hashes
    }

    /// The in-flight load of endpoint `id`, if an in-flight producer ran.
    #[inline]
    pub fn in_flight(&self, id: EndpointId) -> Option<InFlightLoad> {
        if !self.inflight_present {
            return None;
        }
        Some(self.inflight.get(id.index()).copied().unwrap_or_default())
    }

    /// Starts writing in-flight loads: returns the zeroed per-slot loads (length `slots`).
    pub fn begin_in_flight(&mut self, slots: usize) -> &mut [InFlightLoad] {
        self.inflight_present = true;
        self.inflight.clear();
        self.inflight.resize(slots, InFlightLoad::default());
        &mut self.inflight
    }
}

/// A plugin instance with its configured name.
#[derive(Debug, Clone)]
pub struct NamedPlugin {
    /// The instance name (defaults to the type name).
    pub name: Arc<str>,
    /// The instance.
    pub plugin: Arc<dyn Plugin>,
}

/// A scheduling profile, resolved: filters, weighted scorers and one picker.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile name.
    pub name: Arc<str>,
    /// Filters, in order.
    pub filters: Vec<NamedPlugin>,
    /// Scorers with their weights.
    pub scorers: Vec<(NamedPlugin, f64)>,
    /// The picker.
    pub picker: NamedPlugin,
}

/// Reusable buffers for one cycle.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) candidates: Vec<u32>,
    pub(crate) profile: ProfileBuffers,
    pub(crate) data: CycleData,
    pub(crate) to_run: Vec<usize>,
}

/// Reusable buffers for one profile run.
#[derive(Debug, Default)]
pub(crate) struct ProfileBuffers {
    working: Vec<u32>,
    scores: Vec<f64>,
    totals: Vec<f64>,
    scored: Vec<ScoredCandidate>,
}

/// Options for one profile run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RunOptions {
    pub(crate) record_scores: bool,
}

/// Runs `profile` on `candidates` (positions into `cx.pool`).
pub(crate) fn run_profile(
    profile: &Profile,
    cx: &CycleContext<'_>,
    rng: &mut CycleRng,
    candidates: &[u32],
    buffers: &mut ProfileBuffers,
    options: RunOptions,
) -> Result<ProfileResult, SchedulingError> {
    let ProfileBuffers {
        working,
        scores,
        totals,
        scored,
    } = buffers;
    let states = cx.pool.endpoints();
    working.clear();
    working.extend_from_slice(candidates);

    for f in &profile.filters {
        if let Some(filter) = f.plugin.as_filter() {
            filter.filter(cx, rng, &mut CandidateList::new(states, working));
            if working.is_empty() {
                return Err(SchedulingError::AllFilteredOut {
                    profile: profile.name.clone(),
                    filter: f.name.clone(),
                });
            }
        }
    }

    let n = working.len();
    totals.clear();
    totals.resize(n, 0.0);
    for (s, weight) in &profile.scorers {
        if let Some(scorer) = s.plugin.as_scorer() {
            scores.clear();
            scores.resize(n, 0.0);
            scorer.score(cx, Candidates::new(states, working), scores);
            for (t, &v) in totals.iter_mut().zip(scores.iter()) {
                let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
                *t += v * weight;
            }
        }
    }

    scored.clear();
    scored.extend(
        working
            .iter()
            .zip(totals.iter())
            .filter_map(|(&p, &score)| {
                let state = states.get(p as usize)?;
                Some(ScoredCandidate {
                    endpoint: state.id(),
                    position: p,
                    score,
                })
            }),
    );
    let recorded: Vec<(EndpointId, f64)> = if options.record_scores {
        scored.iter().map(|s| (s.endpoint, s.score)).collect()
    } else {
        Vec::new()
    };

    let picked = match profile.picker.plugin.as_picker() {
        Some(picker) => picker.pick(cx, rng, scored),
        None => 0,
    }
    .min(scored.len());
    if picked == 0 {
        return Err(SchedulingError::NothingPicked {
            profile: profile.name.clone(),
        });
    }
    Ok(ProfileResult {
        targets: scored[..picked].iter().map(|s| s.endpoint).collect(),
        positions: scored[..picked].iter().map(|s| s.position).collect(),
        scores: recorded,
    })
}

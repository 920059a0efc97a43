//! `inflight-load-producer`: counts the requests and estimated tokens this picker has sent to
//! each endpoint and not yet seen complete.
//!
//! ```text
//! tokens_in  = max(body_bytes / 4, 1)          if the body size is known
//!            = number of token ids             if the prompt is token ids
//!            = max(1, round(prompt_chars / 4)) otherwise
//! tokens_out = round(1.5 × tokens_in)
//! estimate   = tokens_in + tokens_out
//! ```
//!
//! - PrepareData writes `InFlightLoad{requests, tokens}` for every candidate.
//! - PreRequest adds one request and the estimate to endpoint 0 of every profile's result.
//! - When the response starts, the `prefill` profile's endpoint is released; on completion every
//!   other profile's endpoint (and `prefill`'s, if the response never started).
//! - Counters are lock-free atomics; an endpoint that leaves the pool (or is replaced in its slot)
//!   starts again from zero.
//!
//! Category: producer of `InFlightLoad` (read by `concurrency-detector` and
//! `token-load-scorer`). Parameters: none.
//!
//! ```yaml
//! plugins:
//! - type: inflight-load-producer
//! ```
//!
//! # Differs from the reference
//! A request whose response never started still releases its prefill endpoint on completion.

use crate::cycle::{Candidates, CycleContext, CycleData, InFlightLoad};
use crate::decision::{Decision, ScheduleResult};
use crate::endpoint::{EndpointId, EndpointUid};
use crate::plugin::{DataKey, DataProducer, Plugin, RequestHooks};
use crate::pool::PoolSnapshot;
use crate::request::{Prompt, Request};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The registered type name.
pub const TYPE_NAME: &str = "inflight-load-producer";

/// The reference's token estimate for `request` (see the [module docs](self)).
pub fn estimate_tokens(request: &Request<'_>) -> u64 {
    let input = match (request.body_bytes, request.prompt) {
        (Some(bytes), _) => (bytes as u64 / 4).max(1),
        (None, Prompt::TokenIds(t)) => t.len() as u64,
        (None, p) => ((p.approx_chars() as f64 / 4.0).round() as u64).max(1),
    };
    let output = (input as f64 * 1.5).round() as u64;
    input + output
}

#[derive(Debug, Default)]
struct Counter {
    uid: AtomicU64,
    requests: AtomicU64,
    tokens: AtomicU64,
}

/// See the [module docs](self).
#[derive(Debug, Default)]
pub struct InflightLoadProducer {
    counters: RwLock<Vec<Counter>>,
}

impl InflightLoadProducer {
    /// A producer with all counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current load of endpoint `id` (incarnation `uid`).
    pub fn load(&self, id: EndpointId, uid: EndpointUid) -> InFlightLoad {
        let counters = self.counters.read();
        match counters.get(id.index()) {
            Some(c) if c.uid.load(Ordering::Acquire) == uid.get() => InFlightLoad {
                requests: c.requests.load(Ordering::Relaxed),
                tokens: c.tokens.load(Ordering::Relaxed),
            },
            _ => InFlightLoad::default(),
        }
    }

    fn add(&self, id: EndpointId, uid: EndpointUid, tokens: u64) {
        if self.counters.read().len() <= id.index() {
            let mut w = self.counters.write();
            if w.len() <= id.index() {
                w.resize_with(id.index() + 1, Counter::default);
            }
        }
        let counters = self.counters.read();
        let Some(c) = counters.get(id.index()) else {
            return;
        };
        let current = c.uid.load(Ordering::Acquire);
        if current != uid.get()
            && c.uid
                .compare_exchange(current, uid.get(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // A new incarnation in this slot: start from zero.
            c.requests.store(0, Ordering::Relaxed);
            c.tokens.store(0, Ordering::Relaxed);
        }
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.tokens.fetch_add(tokens, Ordering::Relaxed);
    }

    fn release(&self, id: EndpointId, uid: EndpointUid, tokens: u64) {
        let counters = self.counters.read();
        let Some(c) = counters.get(id.index()) else {
            return;
        };
        if c.uid.load(Ordering::Acquire) != uid.get() {
            return;
        }
        let _ = c
            .requests
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
        let _ = c
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(tokens))
            });
    }

    fn release_profiles(&self, decision: &Decision, prefill: bool) {
        let result = decision.result();
        for run in &result.profiles {
            if (&*run.name == "prefill") != prefill {
                continue;
            }
            let Some(&id) = run.result.targets.first() else {
                continue;
            };
            if let Some(state) = decision.snapshot().get(id) {
                self.release(id, state.uid(), result.token_estimate);
            }
        }
    }
}

impl DataProducer for InflightLoadProducer {
    fn produces(&self) -> &[DataKey] {
        &[DataKey::InFlightLoad]
    }

    fn prepare(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>, data: &mut CycleData) {
        let loads = data.begin_in_flight(cx.pool.slot_capacity());
        for e in candidates.iter() {
            if let Some(l) = loads.get_mut(e.id().index()) {
                *l = self.load(e.id(), e.uid());
            }
        }
    }
}

impl RequestHooks for InflightLoadProducer {
    fn pre_request(&self, cx: &CycleContext<'_>, result: &ScheduleResult) {
        for run in &result.profiles {
            let Some(&id) = run.result.targets.first() else {
                continue;
            };
            if let Some(state) = cx.pool.get(id) {
                self.add(id, state.uid(), result.token_estimate);
            }
        }
    }

    fn on_response_start(&self, decision: &Decision) {
        self.release_profiles(decision, true);
    }

    fn on_complete(&self, decision: &Decision) {
        if !decision.started.load(Ordering::Acquire) {
            self.release_profiles(decision, true);
        }
        self.release_profiles(decision, false);
    }
}

impl Plugin for InflightLoadProducer {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_data_producer(&self) -> Option<&dyn DataProducer> {
        Some(self)
    }
    fn as_request_hooks(&self) -> Option<&dyn RequestHooks> {
        Some(self)
    }
    fn retain_endpoints(&self, pool: &PoolSnapshot) {
        let counters = self.counters.read();
        for (i, c) in counters.iter().enumerate() {
            let live = pool
                .get(EndpointId::from_index(i as u32))
                .is_some_and(|s| s.uid().get() == c.uid.load(Ordering::Acquire));
            if !live {
                c.uid.store(0, Ordering::Release);
                c.requests.store(0, Ordering::Relaxed);
                c.tokens.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ChatMessage;

    #[test]
    fn token_estimates() {
        // body 4000 bytes → in 1000, out 1500
        assert_eq!(
            estimate_tokens(&Request::new("r", "m").with_body_bytes(4000)),
            2500
        );
        // 10 token ids → 10 + 15
        let t = [1u32; 10];
        assert_eq!(
            estimate_tokens(&Request::new("r", "m").with_prompt(Prompt::TokenIds(&t))),
            25
        );
        // 10 chars → round(2.5) = 3 (round half away from zero) → 3 + round(4.5) = 3 + 5
        let r = Request::new("r", "m").with_prompt(Prompt::Text("0123456789"));
        assert_eq!(estimate_tokens(&r), 8);
        // empty → in 1, out round(1.5) = 2
        assert_eq!(estimate_tokens(&Request::new("r", "m")), 3);
        let msgs = [ChatMessage::new("user", "abcd")];
        // "user" + "abcd" = 8 chars → 2 + 3
        assert_eq!(
            estimate_tokens(&Request::new("r", "m").with_prompt(Prompt::Chat(&msgs))),
            5
        );
    }

    #[test]
    fn counts_add_and_release_by_incarnation() {
        let p = InflightLoadProducer::new();
        let (id, uid) = (EndpointId::from_index(3), EndpointUid(9));
        p.add(id, uid, 10);
        p.add(id, uid, 5);
        assert_eq!(
            p.load(id, uid),
            InFlightLoad {
                requests: 2,
                tokens: 15
            }
        );
        p.release(id, uid, 10);
        assert_eq!(
            p.load(id, uid),
            InFlightLoad {
                requests: 1,
                tokens: 5
            }
        );
        p.release(id, EndpointUid(10), 5);
        assert_eq!(
            p.load(id, uid).requests,
            1,
            "another incarnation does not release"
        );
        p.add(id, EndpointUid(10), 1);
        assert_eq!(
            p.load(id, EndpointUid(10)),
            InFlightLoad {
                requests: 1,
                tokens: 1
            }
        );
        assert_eq!(p.load(id, uid), InFlightLoad::default());
        p.release(id, EndpointUid(10), 100);
        assert_eq!(
            p.load(id, EndpointUid(10)),
            InFlightLoad::default(),
            "saturates at zero"
        );
    }
}

//! The approximate prefix-cache index: which endpoint probably holds which prompt prefix.
//!
//! The index never sees the model servers' caches. It records, for every request it routes,
//! the chained block hashes of the prompt on the endpoint it chose, and later estimates how many
//! leading blocks of a new prompt each candidate still holds.
//!
//! ```text
//!  prompt ──► [blk0][blk1][blk2][blk3~]        (64-byte blocks, last one partial)
//!               │     │     │     │
//!  hashes       h1 ─► h2 ─► h3 ─► h4           (hᵢ₊₁ = xxh3(blockᵢ, seed = hᵢ); h₀ from model+salt)
//!
//!  endpoint #0  LRU table { h1 h2 h3 … }  ◄─ most recent … least recent
//!  endpoint #1  LRU table { h1 … }
//!  endpoint #2  (empty)
//! ```
//!
//! # Operations
//! - **Record** (after a pick, [`PrefixIndex::record`]): touch `h_{n−1}, …, h₁, h₀` in that order
//!   on the chosen endpoint's table, so that earlier blocks are always at least as recent as
//!   later ones. LRU eviction then removes a chain's tail before its head, like vLLM's own
//!   block eviction, and every table stays *prefix-closed*: holding `hᵢ` implies holding every
//!   `hⱼ, j < i` of the same chain.
//! - **Match** ([`PrefixIndex::match_prefix`]): for each candidate, the number of leading blocks
//!   it holds. Prefix-closure makes that a monotone predicate over positions, so it is found by
//!   galloping then binary search: `O(log m)` lookups for a match of `m` blocks, and one lookup
//!   for a candidate that lacks `h₁` (the common case).
//! - **Retain** ([`PrefixIndex::retain`]): drop the tables of endpoints no longer in the pool.
//!
//! # Complexity and size
//! | operation | cost |
//! |---|---|
//! | record `n` blocks | `n` table touches, `O(1)` expected each (+ evictions) |
//! | match, per candidate | `1 + 2⌈log₂(m+1)⌉` lookups, `O(1)` expected each |
//! | memory | 16-byte entries at ≤ 0.85 load: ≈ 18.8 bytes per (block, endpoint) when full |
//!
//! # Differs from the reference
//! The reference keeps one `hash → set of pods` map plus a per-pod LRU (two structures, tens of
//! bytes per entry), credits a pod for every block it holds up to the first block *no* pod holds,
//! and records blocks head first, so its LRU evicts a prefix's head before its tail. Here a
//! candidate's match is its own contiguous prefix, which is what its server can actually reuse,
//! and recency order keeps heads alive longest.

mod hasher;
mod table;

pub use hasher::{chain_seed, hash_prompt};

use crate::endpoint::{EndpointId, EndpointUid};
use crate::pool::PoolSnapshot;
use table::LruTable;

#[derive(Debug, Clone)]
struct EndpointEntries {
    uid: EndpointUid,
    table: LruTable,
}

/// Per-endpoint LRU sets of prompt-block hashes (see the [module docs](self)).
///
/// Not synchronised: wrap it in a lock to share it (the prefix producer uses an `RwLock`, read
/// for matching and written for recording).
#[derive(Debug, Clone, Default)]
pub struct PrefixIndex {
    endpoints: Vec<Option<EndpointEntries>>,
}

impl PrefixIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leading hashes of `hashes` that endpoint `id` (incarnation `uid`) holds.
    #[inline]
    pub fn match_prefix(&self, id: EndpointId, uid: EndpointUid, hashes: &[u64]) -> usize {
        let Some(Some(entry)) = self.endpoints.get(id.index()) else {
            return 0;
        };
        if entry.uid != uid || hashes.is_empty() {
            return 0;
        }
        let holds = |i: usize| entry.table.contains(hashes[i]);
        if !holds(0) {
            return 0;
        }
        // Gallop: `lo` blocks are known held; find a miss at `hi`.
        let n = hashes.len();
        let mut lo = 1;
        let mut step = 1;
        let hi = loop {
            let probe = lo + step;
            if probe > n {
                if holds(n - 1) {
                    return n;
                }
                break n - 1;
            }
            if holds(probe - 1) {
                lo = probe;
                step *= 2;
            } else {
                break probe - 1;
            }
        };
        // Invariant: blocks [0, lo) held, block `hi` not held, lo ≤ hi.
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if holds(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The number of leading hashes endpoint `id` holds, by walking block by block (the
    /// definition [`match_prefix`](Self::match_prefix) computes faster; for tests and checks).
    pub fn match_prefix_linear(&self, id: EndpointId, uid: EndpointUid, hashes: &[u64]) -> usize {
        match self.endpoints.get(id.index()) {
            Some(Some(entry)) if entry.uid == uid => hashes
                .iter()
                .take_while(|&&h| entry.table.contains(h))
                .count(),
            _ => 0,
        }
    }

    /// Records that endpoint `id` (incarnation `uid`, holding at most `capacity` blocks) was
    /// sent a prompt with block hashes `hashes`.
    pub fn record(&mut self, id: EndpointId, uid: EndpointUid, capacity: usize, hashes: &[u64]) {
        if hashes.is_empty() {
            return;
        }
        let i = id.index();
        if self.endpoints.len() <= i {
            self.endpoints.resize_with(i + 1, || None);
        }
        let slot = &mut self.endpoints[i];
        match slot {
            Some(entry) if entry.uid == uid => {
                if entry.table.capacity() != capacity.max(1) {
                    entry.table.set_capacity(capacity);
                }
            }
            _ => {
                *slot = Some(EndpointEntries {
                    uid,
                    table: LruTable::new(capacity),
                });
            }
        }
        if let Some(entry) = slot {
            for &h in hashes.iter().rev() {
                entry.table.touch(h);
            }
        }
    }

    /// Drops the entries of endpoints that are not in `pool` (or are a different incarnation).
    pub fn retain(&mut self, pool: &PoolSnapshot) {
        for (i, slot) in self.endpoints.iter_mut().enumerate() {
            let keep = match (slot.as_ref(), pool.get(EndpointId::from_index(i as u32))) {
                (Some(entry), Some(state)) => entry.uid == state.uid(),
                _ => false,
            };
            if !keep {
                *slot = None;
            }
        }
        while matches!(self.endpoints.last(), Some(None)) {
            self.endpoints.pop();
        }
    }

    /// Removes every entry of endpoint `id`.
    pub fn clear_endpoint(&mut self, id: EndpointId) {
        if let Some(Some(entry)) = self.endpoints.get_mut(id.index()) {
            entry.table.clear();
        }
    }

    /// The number of (block, endpoint) entries.
    pub fn len(&self) -> usize {
        self.endpoints.iter().flatten().map(|e| e.table.len()).sum()
    }

    /// Whether the index holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of entries of endpoint `id`.
    pub fn endpoint_len(&self, id: EndpointId) -> usize {
        match self.endpoints.get(id.index()) {
            Some(Some(e)) => e.table.len(),
            _ => 0,
        }
    }

    /// Heap bytes used by the index (tables and the per-endpoint vector).
    pub fn heap_bytes(&self) -> usize {
        self.endpoints.capacity() * std::mem::size_of::<Option<EndpointEntries>>()
            + self
                .endpoints
                .iter()
                .flatten()
                .map(|e| e.table.heap_bytes())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UID: EndpointUid = EndpointUid(7);

    fn id(i: u32) -> EndpointId {
        EndpointId::from_index(i)
    }

    #[test]
    fn match_counts_leading_blocks() {
        let mut idx = PrefixIndex::new();
        idx.record(id(0), UID, 100, &[11, 12, 13, 14]);
        assert_eq!(idx.match_prefix(id(0), UID, &[11, 12, 13, 14, 15]), 4);
        assert_eq!(idx.match_prefix(id(0), UID, &[11, 12, 99]), 2);
        assert_eq!(idx.match_prefix(id(0), UID, &[99, 12]), 0);
        assert_eq!(idx.match_prefix(id(1), UID, &[11]), 0, "unknown endpoint");
        assert_eq!(
            idx.match_prefix(id(0), EndpointUid(8), &[11]),
            0,
            "other incarnation"
        );
    }

    #[test]
    fn eviction_removes_tails_first() {
        let mut idx = PrefixIndex::new();
        idx.record(id(0), UID, 4, &[1, 2, 3, 4]);
        idx.record(id(0), UID, 4, &[1, 20]);
        // Touching 20 evicted the least recent block, 4 (the first chain's tail), not its head.
        assert_eq!(idx.match_prefix(id(0), UID, &[1, 2, 3, 4]), 3);
        idx.record(id(0), UID, 4, &[1, 30]);
        // Now 3 went too: the chain shrinks from its tail.
        assert_eq!(idx.match_prefix(id(0), UID, &[1, 2, 3, 4]), 2);
        assert_eq!(idx.match_prefix(id(0), UID, &[1, 20]), 2);
    }

    #[test]
    fn retain_drops_departed_endpoints() {
        let pool = crate::Pool::new();
        pool.upsert(crate::Endpoint::new("a", "1.1.1.1", 1));
        let snap = pool.snapshot();
        let state = snap.by_name("a").map(|s| (s.id(), s.uid()));
        let (a, uid) = state.unwrap_or((id(0), UID));
        let mut idx = PrefixIndex::new();
        idx.record(a, uid, 10, &[1, 2]);
        idx.record(id(5), UID, 10, &[1, 2]);
        idx.retain(&snap);
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.match_prefix(a, uid, &[1, 2]), 2);
    }

    proptest! {
        /// Galloping search equals the block-by-block walk on any history of records.
        #[test]
        fn galloping_equals_linear(
            cap in 1usize..64,
            prompts in proptest::collection::vec((0u64..4, 1usize..40), 1..60),
            query in (0u64..4, 1usize..50),
        ) {
            // Prompts are chains from a few roots, so they share prefixes.
            let chain = |root: u64, n: usize| -> Vec<u64> {
                (1..=n as u64).map(|i| root * 1000 + i).collect()
            };
            let mut idx = PrefixIndex::new();
            for (root, n) in prompts {
                idx.record(id(0), UID, cap, &chain(root, n));
            }
            let q = chain(query.0, query.1);
            prop_assert_eq!(idx.match_prefix(id(0), UID, &q), idx.match_prefix_linear(id(0), UID, &q));
        }
    }
}

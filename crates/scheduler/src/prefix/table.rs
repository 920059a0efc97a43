//! One endpoint's LRU set of block hashes: a Robin Hood hash table whose entries are also the
//! nodes of an intrusive doubly-linked recency list.
//!
//! Each entry is 16 bytes (`hash: u64`, `prev: u32`, `next: u32`); there is no separate map and
//! no per-entry allocation. Slots are addressed by `fastrange` (`hash × slots >> 64`), so the slot
//! count need not be a power of two and a full table holds `capacity / MAX_LOAD` slots: about
//! 18.8 bytes per entry. Deletion shifts later entries back (no tombstones) and patches the
//! recency links of every entry it moves.

/// Marks an empty slot; real hashes are never 0 (the hasher maps 0 to 1).
const EMPTY: u64 = 0;
/// "No entry" in the recency links.
const NIL: u32 = u32::MAX;
/// Largest fraction of slots in use before the table grows.
const MAX_LOAD: f64 = 0.85;
/// Slots in a new table.
const MIN_SLOTS: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    prev: u32,
    next: u32,
}

const VACANT: Entry = Entry {
    hash: EMPTY,
    prev: NIL,
    next: NIL,
};

/// A bounded set of non-zero `u64` hashes with least-recently-used eviction.
#[derive(Debug, Clone)]
pub(crate) struct LruTable {
    entries: Box<[Entry]>,
    len: usize,
    capacity: usize,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
}

impl LruTable {
    /// An empty table that will hold at most `capacity` hashes (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        LruTable {
            entries: vec![VACANT; slots_for(capacity.min(MIN_SLOTS))].into_boxed_slice(),
            len: 0,
            capacity,
            head: NIL,
            tail: NIL,
        }
    }

    /// The number of hashes held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The most hashes it will hold.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>()
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.entries.len() as u128) >> 64) as usize
    }

    #[inline]
    fn displacement(&self, slot: usize, hash: u64) -> usize {
        let home = self.home(hash);
        if slot >= home {
            slot - home
        } else {
            slot + self.entries.len() - home
        }
    }

    #[inline]
    fn next_slot(&self, slot: usize) -> usize {
        if slot + 1 == self.entries.len() {
            0
        } else {
            slot + 1
        }
    }

    /// The slot holding `hash`.
    #[inline]
    fn find(&self, hash: u64) -> Option<usize> {
        let mut slot = self.home(hash);
        let mut dist = 0;
        loop {
            let e = self.entries.get(slot)?;
            if e.hash == hash {
                return Some(slot);
            }
            // Robin Hood invariant: a resident closer to its home than we are to ours means
            // `hash` would have displaced it, so `hash` is absent.
            if e.hash == EMPTY || self.displacement(slot, e.hash) < dist {
                return None;
            }
            slot = self.next_slot(slot);
            dist += 1;
            if dist > self.entries.len() {
                return None;
            }
        }
    }

    /// Whether `hash` is held (does not change recency).
    #[inline]
    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.find(hash).is_some()
    }

    /// Inserts `hash` as most recently used, or marks it most recently used if present;
    /// evicts the least recently used hash when full.
    pub(crate) fn touch(&mut self, hash: u64) {
        debug_assert_ne!(hash, EMPTY);
        if let Some(slot) = self.find(hash) {
            self.unlink(slot as u32);
            self.push_front(slot as u32);
            return;
        }
        if self.len >= self.capacity {
            self.evict_lru();
        }
        if (self.len + 1) as f64 > self.entries.len() as f64 * MAX_LOAD {
            self.grow();
        }
        self.insert_new(hash);
    }

    /// Changes the capacity, evicting least recently used hashes if it shrinks.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        let capacity = capacity.max(1);
        self.capacity = capacity;
        while self.len > capacity {
            self.evict_lru();
        }
        let wanted = slots_for(self.len.max(MIN_SLOTS.min(capacity)));
        if self.entries.len() > 2 * wanted {
            self.rebuild(wanted);
        }
    }

    /// Removes every hash.
    pub(crate) fn clear(&mut self) {
        self.entries.fill(VACANT);
        self.len = 0;
        self.head = NIL;
        self.tail = NIL;
    }

    fn evict_lru(&mut self) {
        if self.tail != NIL {
            let slot = self.tail;
            self.unlink(slot);
            self.remove_slot(slot as usize);
        }
    }

    fn grow(&mut self) {
        let target = slots_for(self.capacity);
        let doubled = self.entries.len().saturating_mul(2);
        let new_slots = doubled.min(target).max(self.entries.len() + 1);
        self.rebuild(new_slots);
    }

    /// Re-inserts every entry into `slots` slots, keeping recency order.
    fn rebuild(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.entries, vec![VACANT; slots].into_boxed_slice());
        let old_tail = self.tail;
        self.len = 0;
        self.head = NIL;
        self.tail = NIL;
        // Walk from least to most recent, pushing each to the front.
        let mut cur = old_tail;
        while cur != NIL {
            let Some(e) = old.get(cur as usize).copied() else {
                break;
            };
            self.insert_new(e.hash);
            cur = e.prev;
        }
    }

    /// Inserts a hash known to be absent, with room available, as most recently used.
    ///
    /// With linear probing, Robin Hood order keeps each cluster sorted by home slot, so an
    /// insertion is: find the first resident closer to its home than we would be to ours, shift
    /// the rest of the cluster one slot on (each entry moving into the slot just freed, so the
    /// recency links can be patched one move at a time), and take its place.
    fn insert_new(&mut self, hash: u64) {
        let n = self.entries.len();
        let mut slot = self.home(hash);
        let mut target = None;
        for dist in 0..n {
            let resident = self.entries[slot];
            if resident.hash == EMPTY || self.displacement(slot, resident.hash) < dist {
                target = Some(slot);
                break;
            }
            slot = self.next_slot(slot);
        }
        // The load limit keeps a free slot, so a target always exists.
        let Some(target) = target else { return };
        if self.entries[target].hash != EMPTY {
            // Find the end of the cluster, then shift [target, end) one slot on, last first.
            let mut end = self.next_slot(target);
            while self.entries[end].hash != EMPTY {
                end = self.next_slot(end);
                if end == target {
                    return;
                }
            }
            let mut j = end;
            while j != target {
                let from = if j == 0 { n - 1 } else { j - 1 };
                self.entries[j] = self.entries[from];
                self.entries[from] = VACANT;
                self.relink(j);
                j = from;
            }
        }
        self.entries[target] = Entry {
            hash,
            prev: NIL,
            next: NIL,
        };
        self.len += 1;
        self.push_front(target as u32);
    }

    /// Points the neighbours of the entry now at `slot` back at `slot`.
    fn relink(&mut self, slot: usize) {
        let e = self.entries[slot];
        let s = slot as u32;
        if e.prev == NIL {
            self.head = s;
        } else {
            self.entries[e.prev as usize].next = s;
        }
        if e.next == NIL {
            self.tail = s;
        } else {
            self.entries[e.next as usize].prev = s;
        }
    }

    /// Empties `slot` (already unlinked) and shifts the following cluster back.
    fn remove_slot(&mut self, slot: usize) {
        self.entries[slot] = VACANT;
        self.len -= 1;
        let mut hole = slot;
        let mut next = self.next_slot(hole);
        loop {
            let e = self.entries[next];
            if e.hash == EMPTY || self.displacement(next, e.hash) == 0 {
                break;
            }
            self.entries[hole] = e;
            self.entries[next] = VACANT;
            self.relink(hole);
            hole = next;
            next = self.next_slot(hole);
        }
    }

    fn unlink(&mut self, slot: u32) {
        let e = self.entries[slot as usize];
        if e.prev == NIL {
            self.head = e.next;
        } else {
            self.entries[e.prev as usize].next = e.next;
        }
        if e.next == NIL {
            self.tail = e.prev;
        } else {
            self.entries[e.next as usize].prev = e.prev;
        }
        let e = &mut self.entries[slot as usize];
        e.prev = NIL;
        e.next = NIL;
    }

    fn push_front(&mut self, slot: u32) {
        let old_head = self.head;
        {
            let e = &mut self.entries[slot as usize];
            e.prev = NIL;
            e.next = old_head;
        }
        if old_head != NIL {
            self.entries[old_head as usize].prev = slot;
        } else {
            self.tail = slot;
        }
        self.head = slot;
    }

    /// Hashes from most to least recently used (for tests and debugging).
    #[cfg(test)]
    pub(crate) fn recency_order(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.len);
        let mut cur = self.head;
        while cur != NIL {
            let e = self.entries[cur as usize];
            out.push(e.hash);
            cur = e.next;
        }
        out
    }
}

fn slots_for(entries: usize) -> usize {
    ((entries as f64 / MAX_LOAD).ceil() as usize)
        .max(entries + 1)
        .max(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[test]
    fn evicts_least_recently_used() {
        let mut t = LruTable::new(3);
        for h in [1u64, 2, 3] {
            t.touch(h);
        }
        t.touch(1); // order: 1, 3, 2
        t.touch(4); // evicts 2
        assert!(!t.contains(2));
        assert!(t.contains(1) && t.contains(3) && t.contains(4));
        assert_eq!(t.recency_order(), vec![4, 1, 3]);
    }

    #[test]
    fn shrinking_capacity_evicts() {
        let mut t = LruTable::new(10);
        for h in 1..=10u64 {
            t.touch(h);
        }
        t.set_capacity(4);
        assert_eq!(t.len(), 4);
        assert_eq!(t.recency_order(), vec![10, 9, 8, 7]);
    }

    #[test]
    fn full_table_stays_compact() {
        let cap = 31_250;
        let mut t = LruTable::new(cap);
        for h in 1..=(2 * cap as u64) {
            t.touch(h.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        }
        assert_eq!(t.len(), cap);
        let per_entry = t.heap_bytes() as f64 / t.len() as f64;
        assert!(per_entry <= 24.0, "{per_entry} bytes per entry");
    }

    proptest! {
        /// The table behaves exactly like a naive LRU list, whatever the operations.
        #[test]
        fn matches_a_naive_lru(cap in 1usize..40, ops in proptest::collection::vec((1u64..60, any::<bool>()), 0..400)) {
            let mut t = LruTable::new(cap);
            let mut model: VecDeque<u64> = VecDeque::new();
            for (h, insert) in ops {
                // Spread small keys over the hash space, but keep them non-zero.
                let key = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                if insert {
                    t.touch(key);
                    if let Some(pos) = model.iter().position(|&k| k == key) {
                        model.remove(pos);
                    } else if model.len() == cap {
                        model.pop_back();
                    }
                    model.push_front(key);
                } else {
                    prop_assert_eq!(t.contains(key), model.contains(&key));
                }
            }
            prop_assert_eq!(t.len(), model.len());
            prop_assert_eq!(t.recency_order(), model.iter().copied().collect::<Vec<_>>());
        }

        /// Colliding homes (a tiny table of many keys) keep every key findable.
        #[test]
        fn dense_clusters(keys in proptest::collection::hash_set(1u64..u64::MAX, 1..200)) {
            let mut t = LruTable::new(keys.len());
            for &k in &keys { t.touch(k); }
            for &k in &keys { prop_assert!(t.contains(k)); }
            prop_assert_eq!(t.len(), keys.len());
        }
    }
}

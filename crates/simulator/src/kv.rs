//! A server's KV cache: fixed-size blocks, prefix caching by chained block key, LRU eviction of
//! blocks no running request references — the vLLM V1 block manager, reduced to what routing
//! sees.
//!
//! - A request's full prompt blocks are identified by chained keys (equal keys = equal prefix).
//! - Admission looks up the longest cached prefix (capped so at least one prompt token is
//!   computed, as vLLM does), takes references on those blocks, and allocates the rest.
//! - Freed blocks that carry a key stay cached, evictable, in a free queue; a request's blocks
//!   are released tail first, so a prefix's head outlives its tail (vLLM `free_block_queue`).
//! - Blocks for the output are reserved at admission (no preemption is modelled).

use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Block index inside one cache.
type BlockId = u32;

#[derive(Debug, Clone, Default)]
struct Block {
    key: Option<u64>,
    refs: u32,
    /// Position stamp in the free queue (to skip stale queue entries).
    free_stamp: u64,
}

/// One server's KV cache.
#[derive(Debug, Clone)]
pub struct KvCache {
    blocks: Vec<Block>,
    by_key: FxHashMap<u64, BlockId>,
    /// Evictable blocks, least recently freed first; entries whose stamp no longer matches the
    /// block's are stale and skipped.
    free: VecDeque<(BlockId, u64)>,
    /// Blocks referenced by no request (cached or empty).
    free_count: usize,
    /// Blocks promised to running requests for output not yet generated.
    reserved: usize,
    stamp: u64,
}

/// What admission took from the cache for one request.
#[derive(Debug, Clone, Default)]
pub struct Allocation {
    /// Blocks held, in prompt order.
    pub blocks: Vec<BlockId>,
    /// Prompt tokens served from the cache.
    pub cached_tokens: u32,
    /// Output blocks still reserved.
    pub reserved: usize,
}

impl KvCache {
    /// A cache of `num_blocks` blocks.
    pub fn new(num_blocks: usize) -> Self {
        let num_blocks = num_blocks.max(1);
        KvCache {
            blocks: vec![Block::default(); num_blocks],
            by_key: FxHashMap::default(),
            free: (0..num_blocks as BlockId).map(|b| (b, 0)).collect(),
            free_count: num_blocks,
            reserved: 0,
            stamp: 0,
        }
    }

    /// Blocks neither referenced nor reserved: grows only when memory is freed.
    pub fn unpromised(&self) -> usize {
        self.free_count.saturating_sub(self.reserved)
    }

    /// Total blocks.
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Fraction of blocks referenced by requests (what vLLM reports as KV-cache usage).
    pub fn usage(&self) -> f64 {
        (self.blocks.len() - self.free_count) as f64 / self.blocks.len() as f64
    }

    /// How many leading keys of `keys` are cached.
    pub fn cached_prefix(&self, keys: &[u64]) -> usize {
        keys.iter()
            .take_while(|k| self.by_key.contains_key(k))
            .count()
    }

    /// Admits a request whose full prompt blocks have `keys`, `prompt_blocks` blocks in all
    /// (including a partial last one), `input_tokens` tokens, and `output_blocks` blocks of
    /// output. Returns `None` when the cache cannot hold it now.
    pub fn admit(
        &mut self,
        keys: &[u64],
        prompt_blocks: usize,
        input_tokens: u32,
        output_blocks: usize,
        block_size: u32,
    ) -> Option<Allocation> {
        // At least one prompt token must be computed.
        let max_hit = (input_tokens.saturating_sub(1) / block_size) as usize;
        let mut blocks = Vec::with_capacity(prompt_blocks + output_blocks);
        let mut hit_blocks_free = 0;
        for k in keys.iter().take(max_hit) {
            let Some(&b) = self.by_key.get(k) else { break };
            hit_blocks_free += usize::from(self.blocks[b as usize].refs == 0);
            blocks.push(b);
        }
        let hits = blocks.len();
        let new_blocks = prompt_blocks.saturating_sub(hits);
        let available = self
            .free_count
            .saturating_sub(hit_blocks_free)
            .saturating_sub(self.reserved);
        if new_blocks + output_blocks > available {
            return None;
        }
        for &b in &blocks {
            self.take(b);
        }
        for i in hits..prompt_blocks {
            let b = self.allocate()?;
            if let Some(&k) = keys.get(i) {
                // A full prompt block: cacheable under its key.
                self.blocks[b as usize].key = Some(k);
                self.by_key.insert(k, b);
            }
            blocks.push(b);
        }
        self.reserved += output_blocks;
        Some(Allocation {
            blocks,
            cached_tokens: hits as u32 * block_size,
            reserved: output_blocks,
        })
    }

    /// Turns one reserved output block into an allocated one.
    pub fn grow(&mut self, alloc: &mut Allocation) {
        if alloc.reserved == 0 {
            return;
        }
        alloc.reserved -= 1;
        self.reserved -= 1;
        if let Some(b) = self.allocate() {
            alloc.blocks.push(b);
        }
    }

    /// Releases a finished request's blocks, tail first.
    pub fn release(&mut self, alloc: Allocation) {
        self.reserved -= alloc.reserved;
        for &b in alloc.blocks.iter().rev() {
            let block = &mut self.blocks[b as usize];
            block.refs -= 1;
            if block.refs == 0 {
                self.stamp += 1;
                block.free_stamp = self.stamp;
                self.free.push_back((b, self.stamp));
                self.free_count += 1;
            }
        }
    }

    /// Takes a reference on a cached block (removing it from the free queue if it was free).
    fn take(&mut self, b: BlockId) {
        let block = &mut self.blocks[b as usize];
        if block.refs == 0 {
            self.free_count -= 1;
            // Its queue entry becomes stale.
            block.free_stamp = u64::MAX;
        }
        block.refs += 1;
    }

    /// Allocates the least recently freed block, evicting its cached key.
    fn allocate(&mut self) -> Option<BlockId> {
        while let Some((b, stamp)) = self.free.pop_front() {
            let block = &mut self.blocks[b as usize];
            if block.refs != 0 || block.free_stamp != stamp {
                continue;
            }
            if let Some(k) = block.key.take() {
                if self.by_key.get(&k) == Some(&b) {
                    self.by_key.remove(&k);
                }
            }
            block.refs = 1;
            block.free_stamp = u64::MAX;
            self.free_count -= 1;
            return Some(b);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_hits_and_tail_first_eviction() {
        let mut kv = KvCache::new(6);
        // 3 full blocks + 1 output block.
        let a = kv.admit(&[1, 2, 3], 3, 48, 1, 16).unwrap();
        assert_eq!(a.cached_tokens, 0);
        assert!((kv.usage() - 0.5).abs() < 1e-9);
        kv.release(a);
        assert_eq!(kv.usage(), 0.0);
        assert_eq!(kv.cached_prefix(&[1, 2, 3]), 3);
        // Same prefix, 49 tokens: all 3 blocks hit (one token left to compute in block 4).
        let b = kv.admit(&[1, 2, 3], 4, 49, 0, 16).unwrap();
        assert_eq!(b.cached_tokens, 48);
        kv.release(b);
        // Fill with another request needing 5 new blocks: evicts the oldest free blocks; the
        // tail (3) was freed before the head (1), so 3 goes first.
        let c = kv.admit(&[7, 8, 9, 10, 11], 5, 80, 0, 16).unwrap();
        assert_eq!(
            kv.cached_prefix(&[1, 2, 3]),
            1,
            "head kept, tail evicted: {:?}",
            kv.by_key
        );
        kv.release(c);
    }

    #[test]
    fn admission_respects_capacity_and_reservations() {
        let mut kv = KvCache::new(4);
        let a = kv.admit(&[1], 1, 16, 2, 16).unwrap(); // 1 block + 2 reserved
        assert!(
            kv.admit(&[5, 6], 2, 32, 0, 16).is_none(),
            "only 1 block left unreserved"
        );
        let b = kv.admit(&[5], 1, 16, 0, 16).unwrap();
        kv.release(a);
        kv.release(b);
        assert!(kv.admit(&[9, 10, 11, 12], 4, 64, 0, 16).is_some());
    }

    #[test]
    fn a_fully_cached_prompt_still_computes_one_token() {
        let mut kv = KvCache::new(8);
        let a = kv.admit(&[1, 2], 2, 32, 0, 16).unwrap();
        kv.release(a);
        let b = kv.admit(&[1, 2], 2, 32, 0, 16).unwrap();
        assert_eq!(b.cached_tokens, 16, "the last block is recomputed");
    }
}

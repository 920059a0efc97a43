//! Shared fixtures for pointsman's criterion benchmarks: realistic pools and prompts, and a
//! heap-counting allocator for measuring bytes per index entry; per-thread CPU time for
//! benches that report cores ([`cpu`]).

pub mod cpu;

use pointsman::time::{ManualClock, Timestamp};
use pointsman::{ChatMessage, Endpoint, Metrics, Pool, Scheduler};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

/// A global allocator that counts live heap bytes.
#[derive(Debug)]
pub struct CountingAlloc;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to `System` unchanged, only counting sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Live heap bytes counted by [`CountingAlloc`] (when it is the global allocator).
pub fn live_heap_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// A tiny deterministic generator (SplitMix64) for fixtures.
#[derive(Debug, Clone)]
pub struct Fixture(u64);

impl Fixture {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Fixture(seed)
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The time metrics are stamped with and the schedulers run at.
pub const NOW: Timestamp = Timestamp::from_nanos(1_000_000_000_000);

/// Fills `pool` with `n` vLLM-like endpoints with varied, fresh metrics.
pub fn fill_pool(pool: &Pool, n: usize, seed: u64) {
    let mut f = Fixture::new(seed);
    pool.update(|tx| {
        for i in 0..n {
            let name = format!("vllm-{i}-rank-0");
            tx.upsert(Endpoint::new(
                name.as_str(),
                format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
                8000,
            ));
            let m = Metrics {
                waiting_queue_size: f.below(12) as u32,
                running_requests_size: f.below(64) as u32,
                kv_cache_usage: f.below(900) as f64 / 1000.0,
                cache_block_size: 16,
                cache_num_blocks: 31_250,
                updated_at: Some(NOW),
                ..Metrics::default()
            };
            let _ = tx.set_metrics(&name, m);
        }
    });
}

/// A chat conversation of about `bytes` bytes: a long system prompt and a short question.
pub fn chat_prompt(bytes: usize, seed: u64) -> Vec<ChatMessage<'static>> {
    let mut f = Fixture::new(seed);
    let words = [
        "model", "token", "cache", "prefix", "route", "gateway", "latency", "the", "of", "and",
    ];
    let mut system = String::with_capacity(bytes);
    while system.len() + 64 < bytes {
        system.push_str(words[f.below(words.len() as u64) as usize]);
        system.push(' ');
    }
    vec![
        ChatMessage::new("system", system),
        ChatMessage::new("user", "Summarise the routing policy in one paragraph."),
    ]
}

/// A scheduler with the reference default profile over a new pool of `n` endpoints.
pub fn default_scheduler(n: usize, seed: u64) -> Scheduler {
    let s = Scheduler::builder()
        .seed(seed)
        .clock(Arc::new(ManualClock::new(NOW)))
        .build_default();
    fill_pool(s.pool(), n, seed);
    s
}

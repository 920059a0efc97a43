//! The prefix index: cost per block of recording and matching, prompt hashing, and heap bytes
//! per (block, endpoint) entry, against a baseline shaped like the reference's two-level index
//! (`HashMap<hash, HashSet<endpoint>>` plus an `lru::LruCache` per endpoint) in the same run.

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lru::LruCache;
use pointsman::prefix::{PrefixIndex, hash_prompt};
use pointsman::{EndpointId, Prompt, Request};
use pointsman_benches::{CountingAlloc, Fixture, chat_prompt, live_heap_bytes};
use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::num::NonZeroUsize;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const ENDPOINTS: u32 = 64;
const CAPACITY: usize = 31_250;
const BLOCKS: usize = 128;

/// The reference's structure: hash → set of endpoints, plus a per-endpoint LRU.
#[derive(Default)]
struct TwoLevelIndex {
    holders: HashMap<u64, HashSet<u32>>,
    lrus: HashMap<u32, LruCache<u64, ()>>,
}

impl TwoLevelIndex {
    fn record(&mut self, endpoint: u32, hashes: &[u64]) {
        let lru = self
            .lrus
            .entry(endpoint)
            .or_insert_with(|| LruCache::new(NonZeroUsize::new(CAPACITY).expect("non-zero")));
        for &h in hashes {
            if let Some((evicted, ())) = lru.push(h, ())
                && evicted != h
                && let Some(set) = self.holders.get_mut(&evicted)
            {
                set.remove(&endpoint);
                if set.is_empty() {
                    self.holders.remove(&evicted);
                }
            }
            self.holders.entry(h).or_default().insert(endpoint);
        }
    }

    fn match_all(&self, hashes: &[u64], out: &mut [u32]) {
        for &h in hashes {
            let Some(set) = self.holders.get(&h) else {
                break;
            };
            for &e in set {
                out[e as usize] += 1;
            }
        }
    }
}

fn chain(f: &mut Fixture, n: usize) -> Vec<u64> {
    let mut prev = f.next_u64();
    (0..n)
        .map(|_| {
            prev = xxhash_rust::xxh3::xxh3_64_with_seed(&prev.to_le_bytes(), 1).max(1);
            prev
        })
        .collect()
}

/// Fills both indexes to capacity on every endpoint with random 128-block prompts.
fn filled() -> (PrefixIndex, TwoLevelIndex, Vec<Vec<u64>>, f64, f64) {
    let mut f = Fixture::new(5);
    let prompts: Vec<Vec<u64>> = (0..(ENDPOINTS as usize * CAPACITY / BLOCKS + 64))
        .map(|_| chain(&mut f, BLOCKS))
        .collect();
    let before = live_heap_bytes();
    let mut ours = PrefixIndex::new();
    for (i, p) in prompts.iter().enumerate() {
        let e = i as u32 % ENDPOINTS;
        ours.record(EndpointId::from_index(e), uid(e), CAPACITY, p);
    }
    let ours_bytes = (live_heap_bytes() - before) as f64 / ours.len() as f64;
    let before = live_heap_bytes();
    let mut theirs = TwoLevelIndex::default();
    for (i, p) in prompts.iter().enumerate() {
        theirs.record(i as u32 % ENDPOINTS, p);
    }
    let entries: usize = theirs.lrus.values().map(|l| l.len()).sum();
    let theirs_bytes = (live_heap_bytes() - before) as f64 / entries as f64;
    (ours, theirs, prompts, ours_bytes, theirs_bytes)
}

fn uid(e: u32) -> pointsman::EndpointUid {
    pointsman::EndpointUid::from_raw(u64::from(e) + 1)
}

fn index(c: &mut Criterion) {
    let (mut ours, mut theirs, prompts, ours_bytes, theirs_bytes) = filled();
    println!(
        "memory: pointsman {ours_bytes:.1} bytes per (block, endpoint) entry; two-level baseline {theirs_bytes:.1} ({} entries each)",
        ours.len()
    );

    let mut g = c.benchmark_group("prefix_index");
    g.throughput(Throughput::Elements(BLOCKS as u64));
    // Matching a 128-block prompt that endpoint 3 holds, over all 64 endpoints.
    let hit = prompts[prompts.len() - ENDPOINTS as usize + 3].clone();
    let miss = chain(&mut Fixture::new(77), BLOCKS);
    for (name, q) in [("hit", &hit), ("miss", &miss)] {
        g.bench_function(format!("match_64ep_{name}/pointsman"), |b| {
            b.iter(|| {
                let mut total = 0;
                for e in 0..ENDPOINTS {
                    total += ours.match_prefix(EndpointId::from_index(e), uid(e), black_box(q));
                }
                black_box(total)
            })
        });
        let mut out = vec![0u32; ENDPOINTS as usize];
        g.bench_function(format!("match_64ep_{name}/baseline_two_level"), |b| {
            b.iter(|| {
                out.fill(0);
                theirs.match_all(black_box(q), &mut out);
                black_box(out.iter().sum::<u32>())
            })
        });
    }
    // Recording a new 128-block prompt on a full endpoint (each block evicts one).
    let mut f = Fixture::new(11);
    g.bench_function("record_full_endpoint/pointsman", |b| {
        b.iter_batched(
            || chain(&mut f, BLOCKS),
            |p| ours.record(EndpointId::from_index(7), uid(7), CAPACITY, &p),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("record_full_endpoint/baseline_two_level", |b| {
        b.iter_batched(
            || chain(&mut f, BLOCKS),
            |p| theirs.record(7, &p),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("prompt_hashing");
    for kib in [8usize, 32] {
        let msgs = chat_prompt(kib * 1024, 3);
        let req = Request::new("r", "llama-3-8b").with_prompt(Prompt::Chat(&msgs));
        g.throughput(Throughput::Bytes((kib * 1024) as u64));
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        g.bench_function(format!("chat_{kib}KiB_64B_blocks"), |b| {
            b.iter(|| {
                hash_prompt(black_box(&req), 64, 16, 2048, &mut scratch, &mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, index);
criterion_main!(benches);

//! Randomness as the scheduler sees it: an injectable [`RandomSource`] that seeds one
//! [`CycleRng`] per scheduling cycle.
//!
//! Pickers break ties and sample with the cycle's generator; filters such as
//! `prefix-cache-affinity-filter` explore with it. Because every cycle draws its seed from the
//! scheduler's source, a scheduler built with [`SeededRandom::new`] and fed the same sequence of
//! inputs makes the same sequence of decisions. [`SeededRandom::from_entropy`] seeds from the
//! operating system for production use; both constructors sit side by side so that seeding is
//! never something only tests do.

use rand::{Rng, RngCore, SeedableRng};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of per-cycle seeds. Must be cheap and callable from many threads.
pub trait RandomSource: Send + Sync + std::fmt::Debug {
    /// The seed for the next scheduling cycle.
    fn next_seed(&self) -> u64;
}

/// A lock-free seed sequence: SplitMix64 over an atomic counter.
///
/// The n-th call to [`next_seed`](RandomSource::next_seed) returns the same value for the same
/// initial seed, whatever thread makes it.
#[derive(Debug)]
pub struct SeededRandom {
    state: AtomicU64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl SeededRandom {
    /// A reproducible sequence starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom {
            state: AtomicU64::new(seed),
        }
    }

    /// A sequence seeded from the operating system's randomness (through the standard library's
    /// randomly keyed hasher).
    pub fn from_entropy() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x706f_696e_7473_6d61);
        Self::new(h.finish())
    }
}

impl RandomSource for SeededRandom {
    fn next_seed(&self) -> u64 {
        let z = self
            .state
            .fetch_add(GOLDEN_GAMMA, Ordering::Relaxed)
            .wrapping_add(GOLDEN_GAMMA);
        splitmix64_mix(z)
    }
}

fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator one scheduling cycle uses (PCG-64 MCG from `rand_pcg`).
///
/// It implements [`rand::RngCore`], so plugins may use the whole `rand` API on it; the helper
/// methods cover what the built-in plugins need.
#[derive(Debug, Clone)]
pub struct CycleRng(rand_pcg::Pcg64Mcg);

impl CycleRng {
    /// A generator seeded with `seed`.
    pub fn seed_from_u64(seed: u64) -> Self {
        CycleRng(rand_pcg::Pcg64Mcg::seed_from_u64(seed))
    }

    /// A uniform float in `[0, 1)`.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// A uniform integer in `0..n`; `n` must be at least 1 (0 is treated as 1).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 { 0 } else { self.0.random_range(0..n) }
    }

    /// `true` with probability `p` (clamped to `[0, 1]`).
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.next_f64() < p
        }
    }

    /// Shuffles `items` uniformly (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

impl RngCore for CycleRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let a = SeededRandom::new(7);
        let b = SeededRandom::new(7);
        let xs: Vec<u64> = (0..5).map(|_| a.next_seed()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_seed()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], xs[1]);
        assert_ne!(SeededRandom::new(8).next_seed(), xs[0]);
    }

    #[test]
    fn below_stays_in_range_and_chance_edges() {
        let mut r = CycleRng::seed_from_u64(1);
        for n in 1..50 {
            assert!(r.below(n) < n);
        }
        assert_eq!(r.below(0), 0);
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
    }
}

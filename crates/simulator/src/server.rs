//! One vLLM-like model server: continuous batching with chunked prefill, a prefix-cached KV
//! cache, LoRA adapter slots, and a step-time model.
//!
//! # Step-time model
//! ```text
//! step = speed × ( overhead
//!                + prefill_per_token × prefill tokens in the step
//!                + decode_per_seq    × decoding sequences
//!                + decode_per_ctx    × context tokens of decoding sequences
//!                + lora_load         × adapters loaded in the step )
//! ```
//!
//! # Defaults: Llama-3.1-8B, BF16, one H100 80 GB (SXM), vLLM V1
//! | parameter | default | source |
//! |---|---|---|
//! | `max_num_seqs` | 256 | vLLM's default |
//! | `max_num_batched_tokens` | 8192 | vLLM V1's default for the OpenAI server on ≥ 70 GiB GPUs |
//! | `block_size` | 16 tokens | vLLM's default |
//! | `num_blocks` | 31,250 | ≈ 500K tokens of KV: (80 GB × 0.9 − 16 GB weights) / 128 KiB per token (32 layers × 8 KV heads × 128 dims × 2 × 2 bytes); the reference picker's `lruCapacityPerServer` rationale |
//! | `overhead` | 6 ms | reading 16 GB of weights at 3.35 TB/s (4.8 ms) plus ~1 ms of scheduling: the decode step of a small batch |
//! | `prefill_per_token` | 30 µs | 2 × 8 B = 16 GFLOP per token at ~55 % of the H100's 989 dense BF16 TFLOPS |
//! | `decode_per_seq` | 20 µs | per-sequence sampling and small-matrix work |
//! | `decode_per_ctx` | 39 ns | reading 128 KiB of KV per context token at 3.35 TB/s |
//! | `max_loras` | 4 | (vLLM's default is 1; 4 suits multi-LoRA workloads) |
//! | `lora_load` | 25 ms | assumption: copying a rank-16 adapter (~40 MB) from host memory |

use crate::kv::{Allocation, KvCache};
use crate::workload::RequestSpec;
use pointsman::{AdapterSet, Metrics};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// A server's configuration (see the [module docs](self) for defaults and sources).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Most sequences running at once.
    pub max_num_seqs: usize,
    /// Most tokens (prefill + decode) per step.
    pub max_num_batched_tokens: u32,
    /// KV-cache block size in tokens.
    pub block_size: u32,
    /// KV-cache blocks.
    pub num_blocks: usize,
    /// Fixed time per step, seconds.
    pub overhead: f64,
    /// Time per prefilled token, seconds.
    pub prefill_per_token: f64,
    /// Time per decoding sequence, seconds.
    pub decode_per_seq: f64,
    /// Time per context token of a decoding sequence, seconds.
    pub decode_per_ctx: f64,
    /// LoRA adapters loaded at once.
    pub max_loras: usize,
    /// Time to load an adapter, seconds.
    pub lora_load: f64,
    /// Multiplier on step time (1.0 = nominal; > 1 is slower).
    pub speed: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_num_seqs: 256,
            max_num_batched_tokens: 8192,
            block_size: 16,
            num_blocks: 31_250,
            overhead: 0.006,
            prefill_per_token: 30e-6,
            decode_per_seq: 20e-6,
            decode_per_ctx: 39e-9,
            max_loras: 4,
            lora_load: 0.025,
            speed: 1.0,
        }
    }
}

/// A request on a server.
#[derive(Debug)]
struct Active {
    index: usize,
    prefill_left: u32,
    context: u32,
    generated: u32,
    output: u32,
    alloc: Allocation,
    lora: Option<Arc<str>>,
    /// Whether the current step includes this request.
    scheduled: bool,
}

/// Something that happened at the end of a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress {
    /// Request `index`'s first token.
    FirstToken {
        /// The request.
        index: usize,
    },
    /// Request `index` finished.
    Finished {
        /// The request.
        index: usize,
    },
    /// Request `index` can never fit this server's KV cache and was dropped.
    Dropped {
        /// The request.
        index: usize,
    },
}

/// Per-server counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ServerStats {
    /// Prompt tokens of admitted requests.
    pub prompt_tokens: u64,
    /// Of which served from the prefix cache.
    pub cached_tokens: u64,
    /// Adapter loads.
    pub lora_loads: u64,
    /// Steps run.
    pub steps: u64,
}

/// One simulated server.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    kv: KvCache,
    waiting: VecDeque<usize>,
    running: Vec<Active>,
    /// Loaded adapters, least recently used first.
    loras: Vec<Arc<str>>,
    busy_until: Option<f64>,
    stats: ServerStats,
    /// The head request that last failed admission, and the unpromised blocks then: until
    /// memory is freed, retrying it cannot succeed.
    blocked: Option<(usize, usize)>,
}

impl Server {
    /// A server with `config`.
    pub fn new(config: ServerConfig) -> Self {
        Server {
            kv: KvCache::new(config.num_blocks),
            config,
            waiting: VecDeque::new(),
            running: Vec::new(),
            loras: Vec::new(),
            busy_until: None,
            stats: ServerStats::default(),
            blocked: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Whether a step is in progress.
    pub fn is_busy(&self) -> bool {
        self.busy_until.is_some()
    }

    /// Whether anything is queued or running.
    pub fn has_work(&self) -> bool {
        !self.waiting.is_empty() || !self.running.is_empty()
    }

    /// Queues request `index`.
    pub fn enqueue(&mut self, index: usize) {
        self.waiting.push_back(index);
    }

    /// What the server's `/metrics` would say now, stamped `at`.
    pub fn metrics(&self, requests: &[RequestSpec], at: pointsman::time::Timestamp) -> Metrics {
        let running_adapters: AdapterSet =
            self.running.iter().filter_map(|a| a.lora.clone()).collect();
        let waiting_adapters: AdapterSet = self
            .waiting
            .iter()
            .filter_map(|&i| requests[i].lora.clone())
            .collect();
        Metrics {
            waiting_queue_size: self.waiting.len() as u32,
            running_requests_size: self.running.len() as u32,
            kv_cache_usage: self.kv.usage(),
            active_adapters: running_adapters,
            waiting_adapters,
            max_active_adapters: self.config.max_loras as u32,
            cache_block_size: self.config.block_size,
            cache_num_blocks: self.config.num_blocks as u64,
            updated_at: Some(at),
        }
    }

    /// Starts a step at `now` if idle and there is work; returns when it ends. Requests that can
    /// never fit are reported in `dropped`.
    pub fn start_step(
        &mut self,
        now: f64,
        requests: &[RequestSpec],
        dropped: &mut Vec<Progress>,
    ) -> Option<f64> {
        if self.busy_until.is_some() {
            return None;
        }
        let block = self.config.block_size;
        let mut budget = self.config.max_num_batched_tokens;
        let mut prefill_tokens = 0u64;
        let mut decode_seqs = 0u64;
        let mut decode_ctx = 0u64;
        let mut loads = 0u32;

        // Running requests first: continue prefills (chunked), then one token per decode.
        for a in &mut self.running {
            a.scheduled = budget > 0;
            if budget == 0 {
                continue;
            }
            if a.prefill_left > 0 {
                let chunk = a.prefill_left.min(budget);
                a.prefill_left -= chunk;
                budget -= chunk;
                prefill_tokens += u64::from(chunk);
                a.context += chunk;
            } else {
                budget -= 1;
                decode_seqs += 1;
                decode_ctx += u64::from(a.context);
            }
        }
        // Then waiting requests, first come first served, while there is room.
        let mut skipped = VecDeque::new();
        while budget > 0 && self.running.len() < self.config.max_num_seqs {
            let Some(index) = self.waiting.pop_front() else {
                break;
            };
            if self.blocked == Some((index, self.kv.unpromised())) {
                self.waiting.push_front(index);
                break;
            }
            let r = &requests[index];
            if let Some(lora) = &r.lora {
                if !self.loras.iter().any(|l| l == lora) {
                    let in_use =
                        |l: &Arc<str>| self.running.iter().any(|a| a.lora.as_ref() == Some(l));
                    if self.loras.len() >= self.config.max_loras {
                        match self.loras.iter().position(|l| !in_use(l)) {
                            Some(evict) => {
                                self.loras.remove(evict);
                            }
                            None => {
                                // No slot: this request waits; others may still run.
                                skipped.push_back(index);
                                continue;
                            }
                        }
                    }
                    self.loras.push(lora.clone());
                    loads += 1;
                    self.stats.lora_loads += 1;
                } else if let Some(p) = self.loras.iter().position(|l| l == lora) {
                    let l = self.loras.remove(p);
                    self.loras.push(l);
                }
            }
            let prompt_blocks = r.input_tokens.div_ceil(block) as usize;
            let output_blocks =
                (r.input_tokens + r.output_tokens).div_ceil(block) as usize - prompt_blocks;
            let Some(alloc) = self.kv.admit(
                &r.block_keys,
                prompt_blocks,
                r.input_tokens,
                output_blocks,
                block,
            ) else {
                if self.running.is_empty() && prompt_blocks + output_blocks > self.kv.num_blocks() {
                    dropped.push(Progress::Dropped { index });
                    continue;
                }
                // Head of line blocks on memory, as in vLLM.
                self.blocked = Some((index, self.kv.unpromised()));
                self.waiting.push_front(index);
                break;
            };
            self.stats.prompt_tokens += u64::from(r.input_tokens);
            self.stats.cached_tokens += u64::from(alloc.cached_tokens);
            let to_compute = r.input_tokens - alloc.cached_tokens;
            let chunk = to_compute.min(budget);
            budget -= chunk;
            prefill_tokens += u64::from(chunk);
            self.running.push(Active {
                index,
                prefill_left: to_compute - chunk,
                context: alloc.cached_tokens + chunk,
                generated: 0,
                output: r.output_tokens.max(1),
                alloc,
                lora: r.lora.clone(),
                scheduled: true,
            });
        }
        while let Some(i) = skipped.pop_back() {
            self.waiting.push_front(i);
        }
        if prefill_tokens == 0 && decode_seqs == 0 {
            return None;
        }
        let c = &self.config;
        let step = c.speed
            * (c.overhead
                + c.prefill_per_token * prefill_tokens as f64
                + c.decode_per_seq * decode_seqs as f64
                + c.decode_per_ctx * decode_ctx as f64
                + c.lora_load * f64::from(loads));
        self.stats.steps += 1;
        let end = now + step;
        self.busy_until = Some(end);
        Some(end)
    }

    /// Ends the current step: produces tokens, finishes requests, frees their blocks.
    pub fn finish_step(&mut self, out: &mut Vec<Progress>) {
        self.busy_until = None;
        let block = self.config.block_size;
        let kv = &mut self.kv;
        self.running.retain_mut(|a| {
            if !a.scheduled || a.prefill_left > 0 {
                return true;
            }
            if a.generated == 0 {
                // The step that completes a prefill samples the first token.
                a.generated = 1;
                out.push(Progress::FirstToken { index: a.index });
            } else {
                a.generated += 1;
                a.context += 1;
                if a.context % block == 1 {
                    kv.grow(&mut a.alloc);
                }
            }
            if a.generated < a.output {
                return true;
            }
            out.push(Progress::Finished { index: a.index });
            kv.release(std::mem::take(&mut a.alloc));
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::keys_from_segments;

    fn request(input: u32, output: u32, lora: Option<&str>) -> RequestSpec {
        let (block_keys, tail_key, input_tokens) = keys_from_segments(&[(1, input)], 16, 0);
        RequestSpec {
            arrival: 0.0,
            input_tokens,
            output_tokens: output,
            block_keys,
            tail_key,
            lora: lora.map(Arc::from),
            priority: 0,
        }
    }

    fn drive(server: &mut Server, requests: &[RequestSpec]) -> Vec<(f64, Progress)> {
        let mut t = 0.0;
        let mut log = Vec::new();
        let mut out = Vec::new();
        while let Some(end) = server.start_step(t, requests, &mut out) {
            t = end;
            out.clear();
            server.finish_step(&mut out);
            log.extend(out.iter().map(|p| (t, *p)));
        }
        log
    }

    #[test]
    fn prefill_then_decode_timing() {
        let c = ServerConfig::default();
        let mut s = Server::new(c.clone());
        let reqs = [request(1000, 3, None)];
        s.enqueue(0);
        let log = drive(&mut s, &reqs);
        // Step 1: prefill 1000 tokens → first token. Steps 2, 3: one decode each.
        let prefill = c.overhead + 1000.0 * c.prefill_per_token;
        assert!((log[0].0 - prefill).abs() < 1e-12);
        assert_eq!(log[0].1, Progress::FirstToken { index: 0 });
        let decode1 = c.overhead + c.decode_per_seq + 1000.0 * c.decode_per_ctx;
        let decode2 = c.overhead + c.decode_per_seq + 1001.0 * c.decode_per_ctx;
        assert!(
            (log[1].0 - (prefill + decode1 + decode2)).abs() < 1e-12,
            "{log:?}"
        );
        assert_eq!(log[1].1, Progress::Finished { index: 0 });
        assert!(!s.has_work());
    }

    #[test]
    fn long_prompts_are_chunked_and_prefixes_reused() {
        let c = ServerConfig {
            max_num_batched_tokens: 512,
            ..ServerConfig::default()
        };
        let mut s = Server::new(c);
        let reqs = [request(2000, 1, None), request(2000, 1, None)];
        s.enqueue(0);
        let first = drive(&mut s, &reqs);
        assert_eq!(s.stats().steps, 4, "2000 tokens in 512-token chunks");
        s.enqueue(1);
        let _ = drive(&mut s, &reqs);
        assert_eq!(
            s.stats().cached_tokens,
            1984,
            "the second prompt reuses 124 full blocks"
        );
        assert!(!first.is_empty());
    }

    #[test]
    fn lora_slots_limit_adapters() {
        let c = ServerConfig {
            max_loras: 1,
            ..ServerConfig::default()
        };
        let mut s = Server::new(c);
        let reqs = [request(100, 50, Some("a")), request(100, 5, Some("b"))];
        s.enqueue(0);
        s.enqueue(1);
        let log = drive(&mut s, &reqs);
        let finish = |i| {
            log.iter()
                .find(|(_, p)| *p == Progress::Finished { index: i })
                .map(|(t, _)| *t)
                .unwrap()
        };
        assert!(finish(1) > finish(0), "b waits for a's slot");
        assert_eq!(s.stats().lora_loads, 2);
    }
}

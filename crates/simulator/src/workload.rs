//! Workloads: generated (shared-prefix chat à la `inference-perf`, multi-LoRA mixes, Poisson or
//! constant arrivals) or replayed from traces (Mooncake JSONL, Azure LLM CSV).
//!
//! Every request is reduced to what routing and caching see: arrival time, token counts, the
//! chained keys of its full KV blocks (equal keys at equal positions = shareable prefix), an
//! optional LoRA adapter and a priority. A prompt is built from *segments* (a system prompt, a
//! question, an earlier answer, a Mooncake 512-token block), each with an id and a length;
//! requests that share leading segments share leading blocks.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// One request, as the simulator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    /// Arrival, seconds from the start.
    pub arrival: f64,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Tokens to generate (at least 1).
    pub output_tokens: u32,
    /// Chained keys of the prompt's full blocks.
    pub block_keys: Vec<u64>,
    /// A key for the partial last block (unique content).
    pub tail_key: u64,
    /// The LoRA adapter, if the request is for one.
    pub lora: Option<Arc<str>>,
    /// The priority (below 0: sheddable).
    pub priority: i32,
}

/// Errors reading workloads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// The file could not be read.
    #[error("cannot read trace {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the trace is malformed.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The path.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// The workload parameters are unusable.
    #[error("invalid workload: {0}")]
    Invalid(String),
}

/// SplitMix64's finaliser: a cheap, well-mixed hash of a `u64`.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic generator for workloads (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// Exponential with rate `rate`.
    pub fn exp(&mut self, rate: f64) -> f64 {
        -(1.0 - self.next_f64()).ln() / rate
    }
}

/// Builds the chained block keys of a prompt made of `segments` (`(id, tokens)`), for a model
/// or adapter `model_seed`. Returns the full blocks' keys, the tail key and the token count.
pub fn keys_from_segments(
    segments: &[(u64, u32)],
    block: u32,
    model_seed: u64,
) -> (Vec<u64>, u64, u32) {
    let total: u32 = segments.iter().map(|s| s.1).sum();
    let full = (total / block) as usize;
    let mut keys = Vec::with_capacity(full);
    let mut prev = mix(model_seed);
    // Walk blocks, folding in the (segment, offset) pieces each covers.
    let (mut seg, mut offset) = (0usize, 0u32);
    let mut content_for = |want: u32| -> u64 {
        let mut h = 0u64;
        let mut left = want;
        while left > 0 && seg < segments.len() {
            let (id, len) = segments[seg];
            let take = (len - offset).min(left);
            h = mix(h ^ mix(id) ^ u64::from(offset) << 32 ^ u64::from(take));
            offset += take;
            left -= take;
            if offset == len {
                seg += 1;
                offset = 0;
            }
        }
        h
    };
    for _ in 0..full {
        let c = content_for(block);
        prev = mix(prev ^ c).max(1);
        keys.push(prev);
    }
    let tail = content_for(total % block);
    (keys, mix(prev ^ tail ^ 0x7461_696c), total)
}

/// Fills `out` with token ids for the first `max_tokens` prompt tokens of `r`: each full block's
/// tokens derive from its chained key, so equal prefixes give equal tokens.
pub fn prompt_tokens(r: &RequestSpec, block: u32, max_tokens: usize, out: &mut Vec<u32>) {
    out.clear();
    let limit = (r.input_tokens as usize).min(max_tokens);
    for &k in &r.block_keys {
        for i in 0..block {
            if out.len() >= limit {
                return;
            }
            out.push(mix(k ^ u64::from(i)) as u32);
        }
    }
    let mut i = 0u64;
    while out.len() < limit {
        out.push(mix(r.tail_key ^ i) as u32);
        i += 1;
    }
}

/// How requests arrive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Arrivals {
    /// Exponential gaps with mean `1 / rate`.
    Poisson {
        /// Requests per second.
        rate: f64,
    },
    /// Equal gaps of `1 / rate`.
    Constant {
        /// Requests per second.
        rate: f64,
    },
}

impl Arrivals {
    fn times(self, n: usize, rng: &mut Rng) -> Vec<f64> {
        let mut t = 0.0;
        (0..n)
            .map(|_| {
                t += match self {
                    Arrivals::Poisson { rate } => rng.exp(rate),
                    Arrivals::Constant { rate } => 1.0 / rate,
                };
                t
            })
            .collect()
    }

    /// The rate.
    pub fn rate(self) -> f64 {
        match self {
            Arrivals::Poisson { rate } | Arrivals::Constant { rate } => rate,
        }
    }

    /// The same shape at another rate.
    pub fn with_rate(self, rate: f64) -> Self {
        match self {
            Arrivals::Poisson { .. } => Arrivals::Poisson { rate },
            Arrivals::Constant { .. } => Arrivals::Constant { rate },
        }
    }
}

/// A LoRA adapter in the mix, with its share of requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraShare {
    /// Adapter name.
    pub name: String,
    /// Fraction of all requests, in `[0, 1]`.
    pub share: f64,
}

/// `inference-perf`'s shared-prefix data, with multi-turn chat and LoRA mixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharedPrefix {
    /// Prompt groups, each with its own system prompt (`num_groups`).
    pub groups: usize,
    /// Distinct questions (conversations) per group (`num_prompts_per_group`).
    pub prompts_per_group: usize,
    /// System prompt tokens (`system_prompt_len`).
    pub system_tokens: u32,
    /// Question tokens (`question_len`).
    pub question_tokens: u32,
    /// Output tokens (`output_len`).
    pub output_tokens: u32,
    /// Turns per conversation: turn `t` carries the earlier turns' questions and answers.
    pub turns: u32,
    /// Requests in all.
    pub requests: usize,
    /// Arrivals.
    pub arrivals: Arrivals,
    /// LoRA adapters and their shares; the rest goes to the base model.
    pub loras: Vec<LoraShare>,
    /// Fraction of requests that are sheddable (priority −1).
    pub sheddable: f64,
}

impl Default for SharedPrefix {
    fn default() -> Self {
        SharedPrefix {
            groups: 32,
            prompts_per_group: 8,
            system_tokens: 4000,
            question_tokens: 600,
            output_tokens: 200,
            turns: 1,
            requests: 3000,
            arrivals: Arrivals::Poisson { rate: 40.0 },
            loras: Vec::new(),
            sheddable: 0.0,
        }
    }
}

impl SharedPrefix {
    /// The embedded default of `pointsman-sim compare`: 8 servers near the prefix-aware
    /// policies' saturation on a workload shaped like llm-d's `73-capacity` benchmark (150
    /// groups × 5 prompts, 6,000-token system prompts, 1,200-token questions), with 300-token
    /// outputs to keep the run short, at 70 requests/s.
    pub fn embedded_default() -> Self {
        SharedPrefix {
            groups: 150,
            prompts_per_group: 5,
            system_tokens: 6000,
            question_tokens: 1200,
            output_tokens: 300,
            turns: 1,
            requests: 6000,
            arrivals: Arrivals::Poisson { rate: 70.0 },
            loras: Vec::new(),
            sheddable: 0.0,
        }
    }

    /// A one-line description, for tables and charts.
    pub fn label(&self) -> String {
        format!(
            "shared-prefix: {} groups × {} prompts, system {} + question {} tokens, output {}, {} requests at {} req/s",
            self.groups,
            self.prompts_per_group,
            self.system_tokens,
            self.question_tokens,
            self.output_tokens,
            self.requests,
            self.arrivals.rate()
        )
    }

    /// Generates the requests.
    ///
    /// # Errors
    /// [`WorkloadError::Invalid`] for unusable parameters.
    pub fn generate(&self, block: u32, seed: u64) -> Result<Vec<RequestSpec>, WorkloadError> {
        if self.groups == 0 || self.prompts_per_group == 0 || self.requests == 0 || self.turns == 0
        {
            return Err(WorkloadError::Invalid(
                "groups, prompts_per_group, turns and requests must be ≥ 1".into(),
            ));
        }
        if !(self.arrivals.rate() > 0.0 && self.arrivals.rate().is_finite()) {
            return Err(WorkloadError::Invalid(format!(
                "arrival rate must be > 0, got {}",
                self.arrivals.rate()
            )));
        }
        let lora_total: f64 = self.loras.iter().map(|l| l.share).sum();
        if !(0.0..=1.0).contains(&lora_total) || !(0.0..=1.0).contains(&self.sheddable) {
            return Err(WorkloadError::Invalid(
                "LoRA shares and the sheddable fraction must lie in [0, 1]".into(),
            ));
        }
        let mut rng = Rng::new(seed);
        let times = self.arrivals.times(self.requests, &mut rng);
        let conversations = self.groups * self.prompts_per_group;
        let mut turn_of = vec![0u32; conversations];
        let loras: Vec<(Arc<str>, f64)> = self
            .loras
            .iter()
            .map(|l| (Arc::from(l.name.as_str()), l.share))
            .collect();
        let mut out = Vec::with_capacity(self.requests);
        for (n, arrival) in times.into_iter().enumerate() {
            let conv = rng.below(conversations);
            let group = conv / self.prompts_per_group;
            let turn = turn_of[conv];
            turn_of[conv] = (turn + 1) % self.turns;
            let mut segments = vec![(mix(0x5359_5300 ^ group as u64), self.system_tokens)];
            for t in 0..turn {
                segments.push((
                    mix(0x5155_0000 ^ (conv as u64) << 8 ^ u64::from(t)),
                    self.question_tokens,
                ));
                segments.push((
                    mix(0x414e_0000 ^ (conv as u64) << 8 ^ u64::from(t)),
                    self.output_tokens,
                ));
            }
            segments.push((
                mix(0x5155_0000 ^ (conv as u64) << 8 ^ u64::from(turn)),
                self.question_tokens,
            ));
            let mut lora = None;
            let mut u = rng.next_f64();
            for (name, share) in &loras {
                if u < *share {
                    lora = Some(name.clone());
                    break;
                }
                u -= share;
            }
            let model_seed = lora.as_deref().map_or(0, |n: &str| {
                n.bytes().fold(7u64, |h, b| mix(h ^ u64::from(b)))
            });
            let (block_keys, tail_key, input_tokens) =
                keys_from_segments(&segments, block, model_seed);
            out.push(RequestSpec {
                arrival,
                input_tokens,
                output_tokens: self.output_tokens.max(1),
                block_keys,
                tail_key: tail_key ^ n as u64,
                lora,
                priority: if rng.next_f64() < self.sheddable {
                    -1
                } else {
                    0
                },
            });
        }
        Ok(out)
    }
}

fn read(path: &Path) -> Result<String, WorkloadError> {
    std::fs::read_to_string(path).map_err(|source| WorkloadError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[derive(Deserialize)]
struct MooncakeLine {
    timestamp: f64,
    input_length: u32,
    output_length: u32,
    hash_ids: Vec<u64>,
}

/// Token count of one Mooncake `hash_ids` block.
pub const MOONCAKE_BLOCK_TOKENS: u32 = 512;

/// Reads a Mooncake trace (JSONL: `timestamp` in ms, `input_length`, `output_length`,
/// `hash_ids` of 512-token blocks). Arrivals are divided by `speedup`.
///
/// # Errors
/// [`WorkloadError`] naming the file and line.
pub fn read_mooncake(
    path: &Path,
    block: u32,
    speedup: f64,
) -> Result<Vec<RequestSpec>, WorkloadError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |message: String| WorkloadError::Malformed {
            path: path.display().to_string(),
            line: i + 1,
            message,
        };
        let l: MooncakeLine = serde_json::from_str(line)
            .map_err(|e| malformed(format!("expected a Mooncake record: {e}")))?;
        if l.hash_ids.len() as u64 * u64::from(MOONCAKE_BLOCK_TOKENS) < u64::from(l.input_length) {
            return Err(malformed(format!(
                "{} hash_ids cannot cover {} input tokens",
                l.hash_ids.len(),
                l.input_length
            )));
        }
        let mut left = l.input_length;
        let segments: Vec<(u64, u32)> = l
            .hash_ids
            .iter()
            .map(|&h| {
                let len = left.min(MOONCAKE_BLOCK_TOKENS);
                left -= len;
                (h, len)
            })
            .filter(|s| s.1 > 0)
            .collect();
        let (block_keys, tail_key, input_tokens) = keys_from_segments(&segments, block, 0);
        out.push(RequestSpec {
            arrival: l.timestamp / 1000.0 / speedup,
            input_tokens,
            output_tokens: l.output_length.max(1),
            block_keys,
            tail_key: tail_key ^ mix(i as u64),
            lora: None,
            priority: 0,
        });
    }
    Ok(out)
}

/// Reads an Azure LLM inference trace (CSV `TIMESTAMP,ContextTokens,GeneratedTokens`). It has no
/// prefix information: every prompt is unique. Arrivals are divided by `speedup`.
///
/// # Errors
/// [`WorkloadError`] naming the file and line.
pub fn read_azure(
    path: &Path,
    block: u32,
    speedup: f64,
) -> Result<Vec<RequestSpec>, WorkloadError> {
    let text = read(path)?;
    let mut out = Vec::new();
    let mut first = None;
    for (i, line) in text.lines().enumerate() {
        if i == 0 || line.trim().is_empty() {
            continue;
        }
        let malformed = |message: &str| WorkloadError::Malformed {
            path: path.display().to_string(),
            line: i + 1,
            message: message.to_string(),
        };
        let mut cols = line.split(',');
        let (Some(ts), Some(ctx), Some(generated)) = (cols.next(), cols.next(), cols.next()) else {
            return Err(malformed(
                "expected TIMESTAMP,ContextTokens,GeneratedTokens",
            ));
        };
        let t = parse_timestamp(ts.trim())
            .ok_or_else(|| malformed("expected a timestamp like 2023-11-16 18:15:46.6805900"))?;
        let input: u32 = ctx
            .trim()
            .parse()
            .map_err(|_| malformed("expected an integer ContextTokens"))?;
        let output: u32 = generated
            .trim()
            .parse()
            .map_err(|_| malformed("expected an integer GeneratedTokens"))?;
        let start = *first.get_or_insert(t);
        let (block_keys, tail_key, input_tokens) =
            keys_from_segments(&[(mix(i as u64 ^ 0x617a), input.max(1))], block, 0);
        out.push(RequestSpec {
            arrival: (t - start).max(0.0) / speedup,
            input_tokens,
            output_tokens: output.max(1),
            block_keys,
            tail_key,
            lora: None,
            priority: 0,
        });
    }
    Ok(out)
}

/// Seconds since 1970 of `YYYY-MM-DD HH:MM:SS[.fraction]` (UTC).
fn parse_timestamp(s: &str) -> Option<f64> {
    let (date, time) = s.split_once(' ')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (hh, mm, ss) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + hh * 3600.0 + mm * 60.0 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_segments_share_leading_keys() {
        let (a, _, n) = keys_from_segments(&[(1, 100), (2, 30)], 16, 0);
        let (b, _, _) = keys_from_segments(&[(1, 100), (3, 30)], 16, 0);
        assert_eq!(n, 130);
        assert_eq!(a.len(), 8);
        assert_eq!(a[..6], b[..6], "blocks fully inside the shared 100 tokens");
        assert_ne!(a[6], b[6], "the block straddling into the question differs");
        let (c, _, _) = keys_from_segments(&[(1, 100), (2, 30)], 16, 5);
        assert_ne!(a[0], c[0], "another adapter shares nothing");
    }

    #[test]
    fn timestamps() {
        let a = parse_timestamp("2023-11-16 18:15:46.6805900").unwrap();
        let b = parse_timestamp("2023-11-17 00:00:00").unwrap();
        assert!((b - a - (5.0 * 3600.0 + 44.0 * 60.0 + 13.31941)).abs() < 1e-3);
        assert_eq!(parse_timestamp("1970-01-01 00:00:01"), Some(1.0));
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn generator_is_deterministic_and_validates() {
        let w = SharedPrefix {
            requests: 50,
            ..SharedPrefix::default()
        };
        assert_eq!(w.generate(16, 1).unwrap(), w.generate(16, 1).unwrap());
        assert_ne!(w.generate(16, 1).unwrap(), w.generate(16, 2).unwrap());
        let bad = SharedPrefix {
            groups: 0,
            ..SharedPrefix::default()
        };
        assert!(bad.generate(16, 1).is_err());
    }

    #[test]
    fn multi_turn_prompts_grow_and_share_their_history() {
        let w = SharedPrefix {
            groups: 1,
            prompts_per_group: 1,
            turns: 3,
            requests: 3,
            ..SharedPrefix::default()
        };
        let r = w.generate(16, 1).unwrap();
        assert!(r[1].input_tokens > r[0].input_tokens && r[2].input_tokens > r[1].input_tokens);
        let shared = (w.system_tokens + w.question_tokens) / 16;
        assert_eq!(
            r[0].block_keys[..shared as usize],
            r[1].block_keys[..shared as usize]
        );
    }
}

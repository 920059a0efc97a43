//! `approx-prefix-cache-producer`: estimates, per candidate, how many leading blocks of the
//! prompt its server still caches, and records each routed prompt on the chosen endpoint.
//!
//! ```text
//! block_tokens = candidates[0].cache_block_size   if autoTune and it is > 0
//!              = blockSizeTokens                   otherwise
//! block_chars  = 4 × block_tokens                  (or blockSize, if given)
//! max_blocks   = maxPrefixTokensToMatch / block_tokens   if maxPrefixTokensToMatch > 0
//!              = maxPrefixBlocksToMatch                  otherwise
//! match(e)     = leading prompt blocks held by e   (see crate::prefix)
//! capacity(e)  = e.cache_num_blocks if autoTune and it is > 0, else lruCapacityPerServer
//! ```
//!
//! At PreRequest the prompt's hashes are recorded on endpoint 0 of the primary profile's result
//! and of a profile named `prefill`, if any. Nothing is removed when a request fails (as in the
//! reference). Endpoints that leave the pool lose their entries at the next decision.
//!
//! Parameters:
//!
//! | name | type | default | meaning |
//! |---|---|---|---|
//! | `autoTune` | bool | `true` | take block size and LRU capacity from the endpoints' cache config |
//! | `blockSizeTokens` | integer ≥ 1 | 16 | block size in tokens (× 4 characters) |
//! | `blockSize` | integer ≥ 1 | — | deprecated block size in characters; exclusive with `blockSizeTokens` |
//! | `maxPrefixBlocksToMatch` | integer ≥ 1 | 256 | blocks hashed at most |
//! | `maxPrefixTokensToMatch` | integer ≥ 0 | 0 | if > 0, `max_blocks = this / block_tokens` |
//! | `lruCapacityPerServer` | integer ≥ 1 | 31,250 | blocks remembered per endpoint |
//!
//! ```yaml
//! plugins:
//! - type: approx-prefix-cache-producer
//!   parameters: {autoTune: false, blockSizeTokens: 16, lruCapacityPerServer: 50000}
//! ```
//!
//! # Differs from the reference
//! - `lruCapacityPerServer` is honoured (GIE-last passes the constant 31,250 instead).
//! - Capacity follows the endpoint's current `num_gpu_blocks` instead of being fixed when its
//!   table is first created.
//! - Matching is per endpoint and contiguous, and recording keeps prefix heads most recent (see
//!   [`crate::prefix`]).
//! - `blockSize` (characters) is honoured when `blockSizeTokens` is not given, rather than being
//!   an error-or-ignored field.

use crate::cycle::{Candidates, CycleContext, CycleData};
use crate::decision::ScheduleResult;
use crate::error::ParamError;
use crate::plugin::{DataKey, DataProducer, Plugin, RequestHooks};
use crate::pool::PoolSnapshot;
use crate::prefix::{PrefixIndex, hash_prompt};
use crate::registry::PluginParams;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// The registered type name.
pub const TYPE_NAME: &str = "approx-prefix-cache-producer";

/// Default `blockSizeTokens`.
pub const DEFAULT_BLOCK_SIZE_TOKENS: u32 = 16;
/// Default `maxPrefixBlocksToMatch`.
pub const DEFAULT_MAX_PREFIX_BLOCKS: u32 = 256;
/// Default `lruCapacityPerServer` (Llama-3-8B on an H100: ~500K tokens / 16 per block).
pub const DEFAULT_LRU_CAPACITY_PER_SERVER: u32 = 31_250;
/// Characters per token, for converting token block sizes to characters.
pub const AVERAGE_CHARACTERS_PER_TOKEN: u32 = 4;

const fn default_true() -> bool {
    true
}
const fn default_max_blocks() -> u32 {
    DEFAULT_MAX_PREFIX_BLOCKS
}
const fn default_lru() -> u32 {
    DEFAULT_LRU_CAPACITY_PER_SERVER
}

/// Parameters (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// Take block size and capacity from endpoint metrics. Default `true`.
    #[serde(default = "default_true")]
    pub auto_tune: bool,
    /// Block size in tokens. Default 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size_tokens: Option<u32>,
    /// Deprecated block size in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// Blocks hashed at most. Default 256.
    #[serde(default = "default_max_blocks")]
    pub max_prefix_blocks_to_match: u32,
    /// Tokens matched at most (0 = use `maxPrefixBlocksToMatch`). Default 0.
    #[serde(default)]
    pub max_prefix_tokens_to_match: u32,
    /// Blocks remembered per endpoint. Default 31,250.
    #[serde(default = "default_lru")]
    pub lru_capacity_per_server: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            auto_tune: true,
            block_size_tokens: None,
            block_size: None,
            max_prefix_blocks_to_match: DEFAULT_MAX_PREFIX_BLOCKS,
            max_prefix_tokens_to_match: 0,
            lru_capacity_per_server: DEFAULT_LRU_CAPACITY_PER_SERVER,
        }
    }
}

impl PluginParams for Params {
    fn validate(&self) -> Result<(), ParamError> {
        if self.block_size_tokens == Some(0) {
            return Err(ParamError::new(
                "blockSizeTokens",
                "expected an integer ≥ 1, got 0",
            ));
        }
        if self.block_size == Some(0) {
            return Err(ParamError::new(
                "blockSize",
                "expected an integer ≥ 1, got 0",
            ));
        }
        if self.block_size.is_some() && self.block_size_tokens.is_some() {
            return Err(ParamError::new(
                "blockSize",
                "set either blockSizeTokens (tokens) or the deprecated blockSize (characters), not both",
            ));
        }
        if self.max_prefix_blocks_to_match == 0 {
            return Err(ParamError::new(
                "maxPrefixBlocksToMatch",
                "expected an integer ≥ 1, got 0",
            ));
        }
        if self.lru_capacity_per_server == 0 {
            return Err(ParamError::new(
                "lruCapacityPerServer",
                "expected an integer ≥ 1, got 0",
            ));
        }
        Ok(())
    }
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct ApproxPrefixCacheProducer {
    type_name: &'static str,
    params: Params,
    index: RwLock<PrefixIndex>,
}

thread_local! {
    static BLOCK_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl ApproxPrefixCacheProducer {
    /// A producer with `params`.
    pub fn new(params: Params) -> Self {
        Self::with_type_name(TYPE_NAME, params)
    }

    /// A producer registered under another type name (the prefix scorer embeds one).
    pub(crate) fn with_type_name(type_name: &'static str, params: Params) -> Self {
        ApproxPrefixCacheProducer {
            type_name,
            params,
            index: RwLock::new(PrefixIndex::new()),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Runs `f` on the index (read-locked).
    pub fn with_index<R>(&self, f: impl FnOnce(&PrefixIndex) -> R) -> R {
        f(&self.index.read())
    }

    fn configured_block_tokens(&self) -> u32 {
        match (self.params.block_size_tokens, self.params.block_size) {
            (Some(t), _) => t,
            (None, Some(chars)) => chars.div_ceil(AVERAGE_CHARACTERS_PER_TOKEN),
            (None, None) => DEFAULT_BLOCK_SIZE_TOKENS,
        }
    }

    /// Block size in tokens and characters for a cycle whose first candidate reports
    /// `endpoint_block_size` tokens per block (0 if unknown).
    fn block_size(&self, endpoint_block_size: u32) -> (u32, usize) {
        if self.params.auto_tune && endpoint_block_size > 0 {
            return (
                endpoint_block_size,
                (endpoint_block_size * AVERAGE_CHARACTERS_PER_TOKEN) as usize,
            );
        }
        match (self.params.block_size_tokens, self.params.block_size) {
            (None, Some(chars)) => (self.configured_block_tokens(), chars as usize),
            _ => {
                let t = self.configured_block_tokens();
                (t, (t * AVERAGE_CHARACTERS_PER_TOKEN) as usize)
            }
        }
    }

    fn max_blocks(&self, block_tokens: u32) -> usize {
        if self.params.max_prefix_tokens_to_match > 0 {
            (self.params.max_prefix_tokens_to_match / block_tokens.max(1)).max(1) as usize
        } else {
            self.params.max_prefix_blocks_to_match as usize
        }
    }

    fn capacity_of(&self, num_blocks: u64) -> usize {
        if self.params.auto_tune && num_blocks > 0 {
            usize::try_from(num_blocks).unwrap_or(usize::MAX)
        } else {
            self.params.lru_capacity_per_server as usize
        }
    }
}

impl DataProducer for ApproxPrefixCacheProducer {
    fn produces(&self) -> &[DataKey] {
        &[DataKey::PrefixCacheMatchInfo]
    }

    fn prepare(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>, data: &mut CycleData) {
        let endpoint_block = candidates
            .get(0)
            .map_or(0, |e| e.metrics().cache_block_size);
        let (block_tokens, block_chars) = self.block_size(endpoint_block);
        let max_blocks = self.max_blocks(block_tokens);
        let (matched, hashes) = data.begin_prefix_matches(cx.pool.slot_capacity(), 0, block_tokens);
        BLOCK_SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => hash_prompt(
                cx.request,
                block_chars,
                block_tokens as usize,
                max_blocks,
                &mut scratch,
                hashes,
            ),
            Err(_) => hash_prompt(
                cx.request,
                block_chars,
                block_tokens as usize,
                max_blocks,
                &mut Vec::new(),
                hashes,
            ),
        });
        if !hashes.is_empty() {
            let index = self.index.read();
            for e in candidates.iter() {
                if let Some(m) = matched.get_mut(e.id().index()) {
                    *m = index.match_prefix(e.id(), e.uid(), hashes) as u32;
                }
            }
        }
        let total = hashes.len() as u32;
        data.set_prefix_total_blocks(total);
    }
}

impl RequestHooks for ApproxPrefixCacheProducer {
    fn pre_request(&self, cx: &CycleContext<'_>, result: &ScheduleResult) {
        let hashes = cx.data.prefix_hashes();
        if hashes.is_empty() {
            return;
        }
        let primary = result.primary();
        let prefill = result
            .profile("prefill")
            .filter(|p| primary.is_none_or(|q| q.name != p.name));
        let mut index = self.index.write();
        for run in primary.into_iter().chain(prefill) {
            let Some(&id) = run.result.targets.first() else {
                continue;
            };
            if let Some(state) = cx.pool.get(id) {
                let capacity = self.capacity_of(state.metrics().cache_num_blocks);
                index.record(id, state.uid(), capacity, hashes);
            }
        }
    }
}

impl Plugin for ApproxPrefixCacheProducer {
    fn type_name(&self) -> &str {
        self.type_name
    }
    fn as_data_producer(&self) -> Option<&dyn DataProducer> {
        Some(self)
    }
    fn as_request_hooks(&self) -> Option<&dyn RequestHooks> {
        Some(self)
    }
    fn retain_endpoints(&self, pool: &PoolSnapshot) {
        self.index.write().retain(pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::deserialize_params;

    fn params(json: &str) -> Result<Params, ParamError> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| ParamError::new("", e.to_string()))?;
        let p: Params = deserialize_params(Some(&v))?;
        p.validate()?;
        Ok(p)
    }

    #[test]
    fn block_size_rules() {
        let p = ApproxPrefixCacheProducer::new(Params::default());
        assert_eq!(
            p.block_size(0),
            (16, 64),
            "default 16 tokens = 64 characters"
        );
        assert_eq!(p.block_size(32), (32, 128), "autoTune follows the endpoint");
        let p = ApproxPrefixCacheProducer::new(
            params(r#"{"autoTune": false, "blockSizeTokens": 8}"#).unwrap(),
        );
        assert_eq!(p.block_size(32), (8, 32));
        let p = ApproxPrefixCacheProducer::new(
            params(r#"{"autoTune": false, "blockSize": 100}"#).unwrap(),
        );
        assert_eq!(
            p.block_size(0),
            (25, 100),
            "deprecated character size honoured"
        );
    }

    #[test]
    fn max_blocks_and_capacity_rules() {
        let p =
            ApproxPrefixCacheProducer::new(params(r#"{"maxPrefixTokensToMatch": 1024}"#).unwrap());
        assert_eq!(p.max_blocks(16), 64);
        let p = ApproxPrefixCacheProducer::new(params(r#"{"lruCapacityPerServer": 777}"#).unwrap());
        assert_eq!(p.capacity_of(0), 777, "lruCapacityPerServer honoured");
        assert_eq!(
            p.capacity_of(5000),
            5000,
            "num_gpu_blocks wins under autoTune"
        );
        let p = ApproxPrefixCacheProducer::new(
            params(r#"{"autoTune": false, "lruCapacityPerServer": 777}"#).unwrap(),
        );
        assert_eq!(p.capacity_of(5000), 777);
    }

    #[test]
    fn bad_params_name_the_field() {
        let e = params(r#"{"blockSizeTokens": 0}"#).unwrap_err();
        assert_eq!(e.field, "blockSizeTokens");
        let e = params(r#"{"blockSize": 64, "blockSizeTokens": 16}"#).unwrap_err();
        assert_eq!(e.field, "blockSize");
        let e = params(r#"{"lruCapacityPerServer": "many"}"#).unwrap_err();
        assert_eq!(e.field, "lruCapacityPerServer");
        let e = params(r#"{"nope": 1}"#).unwrap_err();
        assert!(e.message.contains("unknown field `nope`"), "{e}");
    }
}

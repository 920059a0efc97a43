//! `prefix-cache-scorer`: prefer endpoints that already cache more of the prompt's prefix.
//!
//! ```text
//! score = matched_blocks / total_blocks        (PrefixCacheMatchInfo of the candidate)
//! ```
//!
//! - No match info (no producer ran) or a prompt shorter than one block: 0 for everyone.
//!
//! Category: Affinity. Consumes `PrefixCacheMatchInfo`; when nothing produces it the loader adds
//! an `approx-prefix-cache-producer` with default parameters.
//!
//! Parameters: none of its own. The producer's parameters (`autoTune`, `blockSizeTokens`,
//! `blockSize`, `maxPrefixBlocksToMatch`, `maxPrefixTokensToMatch`, `lruCapacityPerServer`;
//! see [`approx_prefix_cache_producer`](crate::plugins::producer::approx_prefix_cache_producer))
//! may be given here, as v0.5-era configurations do; the scorer then runs its own producer with
//! them, and no separate producer may be configured.
//!
//! ```yaml
//! plugins:
//! - type: prefix-cache-scorer
//!   parameters: {blockSizeTokens: 16, lruCapacityPerServer: 50000}
//! ```
//!
//! # Differs from the reference
//! GIE-last discards this plugin's parameters silently; here they configure the prefix index.

use crate::cycle::{Candidates, CycleContext, CycleData};
use crate::decision::ScheduleResult;
use crate::error::ParamError;
use crate::plugin::{DataKey, DataProducer, Plugin, RequestHooks, Scorer, ScorerCategory};
use crate::plugins::producer::approx_prefix_cache_producer::{
    self as producer, ApproxPrefixCacheProducer,
};
use crate::pool::PoolSnapshot;
use crate::registry::PluginParams;
use serde::{Deserialize, Serialize};

/// The registered type name.
pub const TYPE_NAME: &str = "prefix-cache-scorer";

/// Parameters: optional producer settings (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// See the producer's `autoTune`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_tune: Option<bool>,
    /// See the producer's `blockSizeTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size_tokens: Option<u32>,
    /// See the producer's `blockSize`; `hashBlockSize` (v0.5) is accepted as an alias.
    #[serde(
        default,
        alias = "hashBlockSize",
        skip_serializing_if = "Option::is_none"
    )]
    pub block_size: Option<u32>,
    /// See the producer's `maxPrefixBlocksToMatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefix_blocks_to_match: Option<u32>,
    /// See the producer's `maxPrefixTokensToMatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefix_tokens_to_match: Option<u32>,
    /// See the producer's `lruCapacityPerServer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lru_capacity_per_server: Option<u32>,
}

impl Params {
    /// The producer parameters these imply, or `None` when none are set.
    pub fn producer_params(&self) -> Option<producer::Params> {
        if *self == Params::default() {
            return None;
        }
        let d = producer::Params::default();
        Some(producer::Params {
            auto_tune: self.auto_tune.unwrap_or(d.auto_tune),
            block_size_tokens: self.block_size_tokens,
            block_size: self.block_size,
            max_prefix_blocks_to_match: self
                .max_prefix_blocks_to_match
                .unwrap_or(d.max_prefix_blocks_to_match),
            max_prefix_tokens_to_match: self
                .max_prefix_tokens_to_match
                .unwrap_or(d.max_prefix_tokens_to_match),
            lru_capacity_per_server: self
                .lru_capacity_per_server
                .unwrap_or(d.lru_capacity_per_server),
        })
    }
}

impl PluginParams for Params {
    fn validate(&self) -> Result<(), ParamError> {
        self.producer_params().map_or(Ok(()), |p| p.validate())
    }
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct PrefixCacheScorer {
    own_producer: Option<ApproxPrefixCacheProducer>,
}

impl PrefixCacheScorer {
    /// A scorer reading another producer's match info.
    pub fn new() -> Self {
        PrefixCacheScorer { own_producer: None }
    }

    /// A scorer built from `params`: with producer settings, it runs its own producer.
    pub fn from_params(params: &Params) -> Self {
        PrefixCacheScorer {
            own_producer: params
                .producer_params()
                .map(|p| ApproxPrefixCacheProducer::with_type_name(TYPE_NAME, p)),
        }
    }
}

impl Default for PrefixCacheScorer {
    fn default() -> Self {
        Self::new()
    }
}

impl Scorer for PrefixCacheScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Affinity
    }

    fn score(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>, out: &mut [f64]) {
        for (o, e) in out.iter_mut().zip(candidates.iter()) {
            *o = match cx.data.prefix_match(e.id()) {
                Some(m) if m.total_blocks > 0 => {
                    f64::from(m.matched_blocks) / f64::from(m.total_blocks)
                }
                _ => 0.0,
            };
        }
    }
}

impl DataProducer for PrefixCacheScorer {
    fn produces(&self) -> &[DataKey] {
        &[DataKey::PrefixCacheMatchInfo]
    }
    fn prepare(&self, cx: &CycleContext<'_>, candidates: Candidates<'_>, data: &mut CycleData) {
        if let Some(p) = &self.own_producer {
            p.prepare(cx, candidates, data);
        }
    }
}

impl RequestHooks for PrefixCacheScorer {
    fn pre_request(&self, cx: &CycleContext<'_>, result: &ScheduleResult) {
        if let Some(p) = &self.own_producer {
            p.pre_request(cx, result);
        }
    }
}

impl Plugin for PrefixCacheScorer {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        Some(self)
    }
    fn as_data_producer(&self) -> Option<&dyn DataProducer> {
        self.own_producer
            .as_ref()
            .map(|_| self as &dyn DataProducer)
    }
    fn as_request_hooks(&self) -> Option<&dyn RequestHooks> {
        self.own_producer
            .as_ref()
            .map(|_| self as &dyn RequestHooks)
    }
    fn consumes(&self) -> &[DataKey] {
        &[DataKey::PrefixCacheMatchInfo]
    }
    fn retain_endpoints(&self, pool: &PoolSnapshot) {
        if let Some(p) = &self.own_producer {
            p.retain_endpoints(pool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;
    use crate::testing::{pool, score_request};

    #[test]
    fn ratio_of_matched_blocks() {
        let snap = pool().endpoint("a").endpoint("b").endpoint("c").snapshot();
        let mut data = CycleData::empty();
        let (matched, _) = data.begin_prefix_matches(snap.slot_capacity(), 4, 16);
        // matched = [4, 1, 0] of 4 → 1.0, 0.25, 0
        matched.copy_from_slice(&[4, 1, 0]);
        let r = Request::new("t", "m");
        assert_eq!(
            score_request(&PrefixCacheScorer::new(), &snap, &r, &data),
            vec![1.0, 0.25, 0.0]
        );
    }

    #[test]
    fn no_info_or_no_blocks_scores_zero() {
        let snap = pool().endpoint("a").endpoint("b").snapshot();
        let r = Request::new("t", "m");
        assert_eq!(
            score_request(&PrefixCacheScorer::new(), &snap, &r, &CycleData::empty()),
            vec![0.0, 0.0]
        );
        let mut data = CycleData::empty();
        data.begin_prefix_matches(snap.slot_capacity(), 0, 16);
        assert_eq!(
            score_request(&PrefixCacheScorer::new(), &snap, &r, &data),
            vec![0.0, 0.0]
        );
    }

    #[test]
    fn params_configure_an_own_producer() {
        assert!(
            PrefixCacheScorer::from_params(&Params::default())
                .as_data_producer()
                .is_none()
        );
        let p = Params {
            lru_capacity_per_server: Some(10),
            ..Params::default()
        };
        let s = PrefixCacheScorer::from_params(&p);
        assert!(s.as_data_producer().is_some());
        let bad = Params {
            block_size_tokens: Some(0),
            ..Params::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "blockSizeTokens");
    }
}

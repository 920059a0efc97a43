//! From an [`EngineSample`] to the core's [`Metrics`].
//!
//! As in the reference (`epp-reference.md` §5.1, "All present specs are applied to a clone of
//! the metrics"): every value the sample holds replaces the field it feeds; a value the sample
//! lacks (its metric disabled, missing or invalid in this scrape) leaves the previous one. The
//! caller sets [`Metrics::updated_at`] only when at least one signal was found.
//!
//! | [`EngineSample`] | [`Metrics`] |
//! | --- | --- |
//! | `waiting_queue` | `waiting_queue_size` |
//! | `running` | `running_requests_size` |
//! | `kv_cache_usage` | `kv_cache_usage` (as reported, not clamped) |
//! | `lora.running` / `lora.waiting` | `active_adapters` / `waiting_adapters` |
//! | `lora.max_lora` | `max_active_adapters` |
//! | `cache_block_size` | `cache_block_size` |
//! | `cache_num_blocks` | `cache_num_blocks` |

use pointsman::{AdapterSet, Metrics};

use crate::engine::EngineSample;

/// Applies the values present in `sample` to `metrics`, leaving the others unchanged.
///
/// ```
/// use pointsman::Metrics;
/// use pointsman_scraper::apply::apply_sample;
/// use pointsman_scraper::engine::EngineSample;
///
/// let mut m = Metrics { waiting_queue_size: 7, kv_cache_usage: 0.5, ..Metrics::default() };
/// apply_sample(&EngineSample { waiting_queue: Some(2), ..EngineSample::default() }, &mut m);
/// assert_eq!((m.waiting_queue_size, m.kv_cache_usage), (2, 0.5));
/// ```
pub fn apply_sample(sample: &EngineSample, metrics: &mut Metrics) {
    if let Some(v) = sample.waiting_queue {
        metrics.waiting_queue_size = v;
    }
    if let Some(v) = sample.running {
        metrics.running_requests_size = v;
    }
    if let Some(v) = sample.kv_cache_usage {
        metrics.kv_cache_usage = v;
    }
    if let Some(lora) = &sample.lora {
        metrics.active_adapters = lora
            .running
            .iter()
            .map(String::as_str)
            .collect::<AdapterSet>();
        metrics.waiting_adapters = lora
            .waiting
            .iter()
            .map(String::as_str)
            .collect::<AdapterSet>();
        if let Some(max) = lora.max_lora {
            metrics.max_active_adapters = max;
        }
    }
    if let Some(v) = sample.cache_block_size {
        metrics.cache_block_size = v;
    }
    if let Some(v) = sample.cache_num_blocks {
        metrics.cache_num_blocks = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LoraInfo;

    #[test]
    fn present_values_replace_missing_ones_keep() {
        let mut m = Metrics {
            waiting_queue_size: 1,
            running_requests_size: 2,
            kv_cache_usage: 0.3,
            max_active_adapters: 4,
            cache_block_size: 16,
            cache_num_blocks: 100,
            ..Metrics::default()
        };
        let sample = EngineSample {
            running: Some(9),
            lora: Some(LoraInfo {
                running: vec!["a".into()],
                waiting: vec!["b".into(), "c".into()],
                max_lora: None,
            }),
            cache_num_blocks: Some(200),
            ..EngineSample::default()
        };
        apply_sample(&sample, &mut m);
        assert_eq!(m.waiting_queue_size, 1, "missing: kept");
        assert_eq!(m.running_requests_size, 9);
        assert_eq!(m.kv_cache_usage, 0.3);
        assert!(m.active_adapters.contains("a"));
        assert_eq!(m.waiting_adapters.len(), 2);
        assert_eq!(m.max_active_adapters, 4, "max_lora absent: kept");
        assert_eq!((m.cache_block_size, m.cache_num_blocks), (16, 200));
        assert_eq!(m.updated_at, None, "the caller stamps the time");
    }
}

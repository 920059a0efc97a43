//! Every built-in plugin, one file each, grouped by extension point.
//!
//! A YAML `type:` leads to its file: `queue-scorer` is [`scorer::queue_scorer`]. Each file's
//! documentation gives the formula, edge cases, parameters and where it differs from the
//! reference. [`register_builtins`] is the one list of every built-in type.

pub mod detector;
pub mod external;
pub mod filter;
pub mod picker;
pub mod producer;
pub mod profile;
pub mod scorer;

use crate::registry::{NoParams, Registry};

/// Registers every built-in type (the reference's GIE-last set, the v0.5 legacy filters and old
/// names, and the types other components act on).
pub fn register_builtins(r: &mut Registry) {
    use detector::*;
    use filter::*;
    use picker::*;
    use producer::*;
    use scorer::*;

    let reg = |result: Result<(), crate::registry::RegistryError>| {
        // Built-in names are distinct; a duplicate is a programming error caught by the tests.
        debug_assert!(result.is_ok(), "{result:?}");
    };

    // Scorers.
    reg(r.register(queue_scorer::TYPE_NAME, |_: NoParams, _| {
        Ok(queue_scorer::QueueScorer)
    }));
    reg(
        r.register(running_requests_size_scorer::TYPE_NAME, |_: NoParams, _| {
            Ok(running_requests_size_scorer::RunningRequestsSizeScorer)
        }),
    );
    reg(
        r.register(kv_cache_utilization_scorer::TYPE_NAME, |_: NoParams, _| {
            Ok(kv_cache_utilization_scorer::KvCacheUtilizationScorer::new(
                kv_cache_utilization_scorer::TYPE_NAME,
            ))
        }),
    );
    reg(r.register(
        kv_cache_utilization_scorer::LEGACY_TYPE_NAME,
        |_: NoParams, _| {
            Ok(kv_cache_utilization_scorer::KvCacheUtilizationScorer::new(
                kv_cache_utilization_scorer::LEGACY_TYPE_NAME,
            ))
        },
    ));
    reg(
        r.register(lora_affinity_scorer::TYPE_NAME, |_: NoParams, _| {
            Ok(lora_affinity_scorer::LoraAffinityScorer)
        }),
    );
    reg(r.register(
        prefix_cache_scorer::TYPE_NAME,
        |p: prefix_cache_scorer::Params, _| {
            Ok(prefix_cache_scorer::PrefixCacheScorer::from_params(&p))
        },
    ));
    reg(r.register(token_load_scorer::TYPE_NAME, |p, _| {
        Ok(token_load_scorer::TokenLoadScorer::new(p))
    }));

    // Pickers.
    reg(r.register(max_score_picker::TYPE_NAME, |p, _| {
        Ok(max_score_picker::MaxScorePicker::new(p))
    }));
    reg(r.register(random_picker::TYPE_NAME, |p, _| {
        Ok(random_picker::RandomPicker::new(p))
    }));
    reg(r.register(weighted_random_picker::TYPE_NAME, |p, _| {
        Ok(weighted_random_picker::WeightedRandomPicker::new(p))
    }));

    // Profile handler.
    reg(r.register(
        profile::single_profile_handler::TYPE_NAME,
        |_: NoParams, _| Ok(profile::single_profile_handler::SingleProfileHandler),
    ));

    // Filters.
    reg(r.register(prefix_cache_affinity_filter::TYPE_NAME, |p, _| {
        Ok(prefix_cache_affinity_filter::PrefixCacheAffinityFilter::new(p))
    }));
    reg(r.register(
        decision_tree_filter::TYPE_NAME,
        |p: decision_tree_filter::Params, cx| {
            decision_tree_filter::DecisionTreeFilter::build(&p, cx)
        },
    ));
    reg(r.register(low_queue_filter::TYPE_NAME, |p, _| {
        Ok(low_queue_filter::LowQueueFilter::new(p))
    }));
    reg(r.register(least_queue_filter::TYPE_NAME, |_: NoParams, _| {
        Ok(least_queue_filter::LeastQueueFilter)
    }));
    reg(
        r.register(least_kv_cache_filter::TYPE_NAME, |_: NoParams, _| {
            Ok(least_kv_cache_filter::LeastKvCacheFilter)
        }),
    );
    reg(r.register(lora_affinity_filter::TYPE_NAME, |p, _| {
        Ok(lora_affinity_filter::LoraAffinityFilter::new(p))
    }));

    // Saturation detectors (also filters).
    reg(r.register(utilization_detector::TYPE_NAME, |p, _| {
        Ok(utilization_detector::UtilizationDetector::new(p))
    }));
    reg(r.register(concurrency_detector::TYPE_NAME, |p, _| {
        Ok(concurrency_detector::ConcurrencyDetector::new(p))
    }));

    // Data producers.
    reg(r.register(approx_prefix_cache_producer::TYPE_NAME, |p, _| {
        Ok(approx_prefix_cache_producer::ApproxPrefixCacheProducer::new(p))
    }));
    reg(
        r.register(inflight_load_producer::TYPE_NAME, |_: NoParams, _| {
            Ok(inflight_load_producer::InflightLoadProducer::new())
        }),
    );

    external::register(r);
}

//! Data producers: per-request data that scorers and filters consume.
//!
//! | type | produces | also |
//! |---|---|---|
//! | [`approx-prefix-cache-producer`](approx_prefix_cache_producer) | `PrefixCacheMatchInfo` | records prompts at PreRequest |
//! | [`inflight-load-producer`](inflight_load_producer) | `InFlightLoad` | counts at PreRequest, releases on completion |

pub mod approx_prefix_cache_producer;
pub mod inflight_load_producer;
